//! `hotline-report`: submit reports from the command line.
#![forbid(unsafe_code)]

fn main() {
    eprintln!("hotline-report: not yet implemented");
    std::process::exit(2);
}
