//! Helpers shared by the fuzz targets.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// A scratch folder for this process, on tmpfs where there is one:
/// `<base>/hotline-fuzz-<name>-<pid>`. libFuzzer ends the process without
/// running destructors, so folders of processes that are gone are removed
/// here instead, at the next start.
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = ["/dev/shm", "/tmp"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let prefix = format!("hotline-fuzz-{name}-");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(pid) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !PathBuf::from(format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}
