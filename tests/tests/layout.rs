//! The shape of the source tree, checked so it does not drift back: no
//! source file under a `src/` folder is over 800 lines, and inside each
//! crate no two modules use each other (directly or round a longer circle).
//! A module may use its ancestors (the parent declares it) and the crate
//! root; every other `crate::` and `super::` path is an edge of the graph.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may be: past it, a file is doing several jobs.
const MAX_LINES: usize = 800;

/// Every crate's `src` folder, as listed by the workspace.
fn src_dirs() -> Vec<PathBuf> {
    let root = hotline_e2e::workspace();
    [
        "protocol",
        "store",
        "gateway",
        "https",
        "clients/cli",
        "clients/staff",
        "tests",
    ]
    .iter()
    .map(|c| root.join(c).join("src"))
    .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut long = Vec::new();
    for dir in src_dirs() {
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        assert!(!files.is_empty(), "no sources under {}", dir.display());
        for f in files {
            let lines = std::fs::read_to_string(&f).unwrap().lines().count();
            if lines > MAX_LINES {
                long.push(format!("{} ({lines} lines)", f.display()));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:#?}");
}

/// A module's path (`web::nojs`) from its file (`src/web/nojs.rs`,
/// `src/web/mod.rs` is `web`); the crate root and binaries are `None`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    match parts.as_slice() {
        [] => None,
        [only] if only == "lib" || only == "main" => None,
        [first, ..] if first == "bin" => None,
        _ => Some(parts.join("::")),
    }
}

/// The code of a file without comments and without its unit tests, which
/// may reach anywhere.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths named after `prefix` (`crate::`, `super::`): `a::b::C` as
/// `["a", "b", "C"]`, with `{x, y::z}` groups expanded.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let boundary = at == 0 || {
            let b = rest.as_bytes()[at - 1];
            !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        };
        rest = &rest[at + prefix.len()..];
        if boundary {
            expand(rest, Vec::new(), &mut out);
        }
    }
    out
}

/// Reads one path (or brace group) at the start of `s`, prefixed by `base`.
fn expand(s: &str, base: Vec<String>, out: &mut Vec<Vec<String>>) {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        let mut depth = 1;
        let mut start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    expand(&group[start..i], base.clone(), out);
                    start = i + 1;
                    if c == '}' {
                        return;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        return;
    }
    let word: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if word.is_empty() {
        if !base.is_empty() {
            out.push(base);
        }
        return;
    }
    let mut path = base;
    path.push(word.clone());
    match s[word.len()..].strip_prefix("::") {
        Some(next) => expand(next, path, out),
        None => out.push(path),
    }
}

/// `pub use module::{Name, ...}` in the crate root: which module a
/// `crate::Name` really is.
fn root_reexports(root_code: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for path in paths_after(
        &root_code.replace("pub use ", "pub use crate::"),
        "pub use crate::",
    ) {
        if let (Some(first), Some(last)) = (path.first(), path.last()) {
            map.insert(last.clone(), first.clone());
        }
    }
    map
}

/// The module graph of one crate: module -> the modules it uses.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let root = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .find(|p| p.exists())
        .map(|p| code_of(&std::fs::read_to_string(p).unwrap()))
        .unwrap_or_default();
    let reexports = root_reexports(&root);
    let modules: BTreeMap<String, String> = files
        .iter()
        .filter_map(|f| {
            Some((
                module_of(src, f)?,
                code_of(&std::fs::read_to_string(f).ok()?),
            ))
        })
        .collect();
    let resolve = |path: &[String]| -> Option<String> {
        (1..=path.len())
            .rev()
            .map(|k| path[..k].join("::"))
            .find(|m| modules.contains_key(m))
    };
    let mut edges = BTreeMap::new();
    for (module, code) in &modules {
        let parent: Vec<String> = {
            let mut p: Vec<String> = module.split("::").map(str::to_owned).collect();
            p.pop();
            p
        };
        let mut targets = BTreeSet::new();
        for path in paths_after(code, "crate::") {
            let target = resolve(&path).or_else(|| reexports.get(&path[0]).cloned());
            targets.extend(target);
        }
        for path in paths_after(code, "super::") {
            let mut full = parent.clone();
            full.extend(path);
            targets.extend(resolve(&full));
        }
        // Its ancestors declare it: using them is not a circle.
        targets.retain(|t| t != module && !module.starts_with(&format!("{t}::")));
        edges.insert(module.clone(), targets);
    }
    edges
}

/// One circle in the graph, if there is any.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == m) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if !done.insert(m.to_owned()) {
            return None;
        }
        stack.push(m.to_owned());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, done, stack) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|m| visit(m, edges, &mut done, &mut Vec::new()))
}

#[test]
fn no_crate_has_modules_that_import_each_other() {
    for src in src_dirs() {
        let edges = graph(&src);
        assert!(
            edges.len() > 1 || src.ends_with("https/src"),
            "{}: no modules found",
            src.display()
        );
        if let Some(cycle) = find_cycle(&edges) {
            panic!(
                "{}: modules import in a circle: {}",
                src.display(),
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_checker_finds_a_circle_and_expands_groups() {
    // The check must be able to fail: a made-up pair that uses each other.
    let mut edges = BTreeMap::new();
    edges.insert("api".to_owned(), BTreeSet::from(["web".to_owned()]));
    edges.insert("web".to_owned(), BTreeSet::from(["api".to_owned()]));
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["api".into(), "web".into(), "api".into()])
    );
    let paths = paths_after("use crate::{app::{App, Peer}, http};", "crate::");
    assert_eq!(
        paths,
        vec![
            vec!["app".to_owned(), "App".to_owned()],
            vec!["app".to_owned(), "Peer".to_owned()],
            vec!["http".to_owned()],
        ]
    );
}

#[test]
fn unsafe_code_is_only_in_the_one_justified_module() {
    // Only gateway/src/trim.rs (one call into glibc) may allow unsafe code;
    // every other crate root forbids it.
    let allowed = hotline_e2e::workspace().join("gateway/src/trim.rs");
    let mut found = Vec::new();
    for dir in src_dirs() {
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for f in files.into_iter().filter(|f| *f != allowed) {
            let code = code_of(&std::fs::read_to_string(&f).unwrap());
            if ["unsafe {", "unsafe fn", "unsafe impl", "allow(unsafe_code)"]
                .iter()
                .any(|w| code.contains(w))
            {
                found.push(f.display().to_string());
            }
        }
    }
    assert!(
        found.is_empty(),
        "unsafe code outside gateway/src/trim.rs: {found:#?}"
    );
    let trim = std::fs::read_to_string(&allowed).unwrap();
    assert_eq!(
        trim.matches("unsafe {").count(),
        1,
        "trim.rs holds exactly one unsafe block"
    );
}
