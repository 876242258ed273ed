//! `export`: the archive as one file for triage.
//!
//! JSON Lines (one report per line, as kept, minus the envelope) or CSV with
//! a fixed column set. In CSV, a text cell a spreadsheet would take for a
//! formula (starting with `=`, `+`, `-`, `@`, tab or CR) is prefixed with `'`:
//! the text comes from the public and must not run in an analyst's
//! spreadsheet.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::StaffError;

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 11] = [
    "id",
    "received_at",
    "channel",
    "category",
    "urls",
    "description",
    "platform",
    "seen_at",
    "lang",
    "contact",
    "hashes",
];

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// Reads every `*.json` report in `dir`, oldest first (then by id).
pub fn read_archive(dir: &Path) -> Result<Vec<Value>, StaffError> {
    let mut reports = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StaffError::io(dir, e))? {
        let entry = entry.map_err(|e| StaffError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let path = entry.path();
        let bytes = fs::read(&path).map_err(|e| StaffError::io(&path, e))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            StaffError::Usage(format!("{}: not a report file: {e}", path.display()))
        })?;
        reports.push(value);
    }
    reports.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                v["received_at"].as_u64().unwrap_or(0),
                v["id"].as_str().unwrap_or("").to_owned(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(reports)
}

/// Writes the archive in `format` to `out`; returns how many reports.
pub fn export(dir: &Path, format: Format, out: &mut dyn Write) -> Result<usize, StaffError> {
    let reports = read_archive(dir)?;
    let io = |e| StaffError::io(Path::new("<output>"), e);
    match format {
        Format::Jsonl => {
            for mut r in reports.iter().cloned() {
                if let Some(m) = r.as_object_mut() {
                    m.remove("envelope");
                }
                serde_json::to_writer(&mut *out, &r)?;
                out.write_all(b"\n").map_err(io)?;
            }
        }
        Format::Csv => {
            out.write_all(CSV_COLUMNS.join(",").as_bytes())
                .map_err(io)?;
            out.write_all(b"\r\n").map_err(io)?;
            for r in &reports {
                let row: Vec<String> = csv_row(r).iter().map(|c| csv_cell(c)).collect();
                out.write_all(row.join(",").as_bytes()).map_err(io)?;
                out.write_all(b"\r\n").map_err(io)?;
            }
        }
    }
    out.flush().map_err(io)?;
    Ok(reports.len())
}

/// The cells of one report, in [`CSV_COLUMNS`] order.
pub fn csv_row(r: &Value) -> Vec<String> {
    let text = |k: &str| match &r[k] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let urls = r["urls"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let hashes = r["hashes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    format!(
                        "{}:{}",
                        h["alg"].as_str().unwrap_or(""),
                        h["value"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    vec![
        text("id"),
        text("received_at"),
        text("channel"),
        text("category"),
        urls,
        text("description"),
        text("platform"),
        text("seen_at"),
        text("lang"),
        text("contact"),
        hashes,
    ]
}

/// One CSV cell: formula-like text defused, quoted when needed (RFC 4180).
pub fn csv_cell(s: &str) -> String {
    let defused = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_is_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn exports_both_formats_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = json!({"id": "b", "received_at": 7200, "channel": "api", "category": "csam",
            "urls": ["https://x.invalid/1", "https://x.invalid/2"], "description": "d, e",
            "hashes": [{"alg": "md5", "value": "00ff"}], "envelope": "AAAA"});
        let b = json!({"id": "a", "received_at": 3600, "channel": "web", "category": "other",
            "urls": [], "hashes": []});
        fs::write(dir.path().join("b.json"), a.to_string()).unwrap();
        fs::write(dir.path().join("a.json"), b.to_string()).unwrap();
        fs::write(dir.path().join(".tmp.json.x.tmp"), "junk").unwrap();
        let mut out = Vec::new();
        assert_eq!(export(dir.path(), Format::Csv, &mut out).unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert!(lines[1].starts_with("a,3600,web,other,"));
        assert!(lines[2].contains("https://x.invalid/1 https://x.invalid/2"));
        assert!(lines[2].contains("\"d, e\""));
        assert!(lines[2].ends_with("md5:00ff"));
        let mut out = Vec::new();
        export(dir.path(), Format::Jsonl, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!text.contains("envelope"));
    }
}
