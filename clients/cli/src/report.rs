//! Building a report from what a person or a partner's system gives: CLI
//! flags, a JSON line, image files hashed on the device.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use hotline_protocol::{Category, HashAlg, ImageHash, Report};
use md5::{Digest, Md5};
use serde::Deserialize;

use crate::pdq::{hash_image_bytes, DEFAULT_MAX_FILE_BYTES};

pub use hotline_protocol::MAX_URLS;

/// Report fields as JSON (one line of a batch file).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    /// `csam`, `grooming`, `sextortion`, `livestream`, `self-generated` or `other`.
    pub category: String,
    /// Where it is.
    #[serde(default)]
    pub urls: Vec<String>,
    /// What was seen.
    pub description: Option<String>,
    /// Which platform or app.
    pub platform: Option<String>,
    /// When: unix seconds or `YYYY-MM-DD`.
    pub seen_at: Option<SeenAt>,
    /// The reporter's language, BCP 47.
    pub lang: Option<String>,
    /// How to reach the reporter.
    pub contact: Option<String>,
    /// Hashes computed by the partner.
    #[serde(default)]
    pub hashes: Vec<HashInput>,
}

/// A time as unix seconds or a `YYYY-MM-DD` date.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SeenAt {
    /// Unix seconds.
    Unix(u64),
    /// `YYYY-MM-DD` or digits.
    Text(String),
}

/// One hash as JSON: `{"alg": "sha256" | "md5" | "pdq", "value": hex}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashInput {
    /// The algorithm.
    pub alg: String,
    /// The value in hex.
    pub value: String,
}

/// Why report fields were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("unknown category {0:?}; use csam, grooming, sextortion, livestream, self-generated or other")]
    Category(String),
    #[error("seen_at {0:?} is neither a date YYYY-MM-DD nor unix seconds")]
    SeenAt(String),
    #[error("hash {index}: {reason}")]
    Hash { index: usize, reason: String },
    #[error("{0} urls; at most {MAX_URLS} fit in a report")]
    TooManyUrls(usize),
}

/// Parses a category name.
pub fn parse_category(text: &str) -> Result<Category, InputError> {
    text.trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| InputError::Category(text.to_owned()))
}

/// Parses `YYYY-MM-DD` (midnight UTC) or unix seconds.
pub fn parse_seen_at(text: &str) -> Result<u64, InputError> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| InputError::SeenAt(text.to_owned()));
    }
    hotline_protocol::time::parse_civil_date(t)
        .map(|d| d * hotline_protocol::time::DAY)
        .ok_or_else(|| InputError::SeenAt(text.to_owned()))
}

impl ReportInput {
    /// Checks the fields and makes a report.
    pub fn into_report(self) -> Result<Report, InputError> {
        let mut r = Report::new(parse_category(&self.category)?);
        if self.urls.len() > MAX_URLS {
            return Err(InputError::TooManyUrls(self.urls.len()));
        }
        r.urls = self.urls;
        r.description = self.description;
        r.platform = self.platform;
        r.lang = self.lang;
        r.contact = self.contact;
        r.seen_at = match self.seen_at {
            None => None,
            Some(SeenAt::Unix(t)) => Some(t),
            Some(SeenAt::Text(t)) => Some(parse_seen_at(&t)?),
        };
        for (index, h) in self.hashes.into_iter().enumerate() {
            let alg: HashAlg = h.alg.parse().map_err(|_| InputError::Hash {
                index,
                reason: format!("unknown alg {:?}; use sha256, md5 or pdq", h.alg),
            })?;
            let value = hex::decode(h.value.trim()).map_err(|_| InputError::Hash {
                index,
                reason: "value is not hex".into(),
            })?;
            if value.len() != alg.value_len() {
                return Err(InputError::Hash {
                    index,
                    reason: format!(
                        "a {} value has {} bytes ({} hex digits), not {}",
                        alg.as_str(),
                        alg.value_len(),
                        2 * alg.value_len(),
                        value.len()
                    ),
                });
            }
            r.hashes.push(ImageHash { alg, value });
        }
        Ok(r)
    }
}

/// The hashes of one image file, computed on the device: SHA-256 and MD5 of
/// the bytes and PDQ of the pixels. Only these leave the device, never the
/// image. A file that is not a decodable image (or is too large to decode)
/// still gets SHA-256 and MD5; the second value says why PDQ is missing.
pub fn hash_image_file(path: &Path) -> io::Result<(Vec<ImageHash>, Option<String>)> {
    let size = std::fs::metadata(path)?.len();
    if size > DEFAULT_MAX_FILE_BYTES as u64 {
        let (sha256, md5) = stream_digests(path)?;
        return Ok((
            vec![sha(sha256), md(md5)],
            Some(format!("{size} bytes is too large to decode; PDQ left out")),
        ));
    }
    let bytes = std::fs::read(path)?;
    match hash_image_bytes(&bytes) {
        Ok(h) => Ok((
            vec![
                sha(h.sha256),
                md(h.md5),
                ImageHash {
                    alg: HashAlg::Pdq,
                    value: h.pdq.bits.to_vec(),
                },
            ],
            None,
        )),
        Err(e) => {
            let d = crate::pdq::file_digests(&bytes);
            Ok((
                vec![sha(d.sha256), md(d.md5)],
                Some(format!("{e}; PDQ left out")),
            ))
        }
    }
}

fn sha(v: [u8; 32]) -> ImageHash {
    ImageHash {
        alg: HashAlg::Sha256,
        value: v.to_vec(),
    }
}

fn md(v: [u8; 16]) -> ImageHash {
    ImageHash {
        alg: HashAlg::Md5,
        value: v.to_vec(),
    }
}

fn stream_digests(path: &Path) -> io::Result<([u8; 32], [u8; 16])> {
    let mut f = File::open(path)?;
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
    }
    let mut s = [0u8; 32];
    s.copy_from_slice(sha.finish().as_ref());
    Ok((s, md5.finalize().into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn json_lines_become_reports() {
        let line = r#"{"category":"csam","urls":["https://x.invalid/1"],"seen_at":"2024-05-01",
            "hashes":[{"alg":"md5","value":"00112233445566778899aabbccddeeff"}]}"#;
        let input: ReportInput = serde_json::from_str(line).unwrap();
        let r = input.into_report().unwrap();
        assert_eq!(r.category, Category::Csam);
        assert_eq!(r.seen_at, Some(1_714_521_600));
        assert_eq!(r.hashes[0].value.len(), 16);
        let bad = |l: &str| -> String {
            match serde_json::from_str::<ReportInput>(l) {
                Err(e) => e.to_string(),
                Ok(i) => i.into_report().unwrap_err().to_string(),
            }
        };
        assert!(bad(r#"{"category":"spam"}"#).contains("unknown category"));
        assert!(bad(r#"{"category":"csam","seen_at":"yesterday"}"#).contains("seen_at"));
        assert!(
            bad(r#"{"category":"csam","hashes":[{"alg":"sha1","value":"00"}]}"#)
                .contains("unknown alg")
        );
        assert!(
            bad(r#"{"category":"csam","hashes":[{"alg":"md5","value":"00"}]}"#)
                .contains("16 bytes")
        );
        assert!(bad(r#"{"category":"csam","colour":"red"}"#).contains("unknown field"));
        assert!(bad(r#"{"urls":[]}"#).contains("missing field"));
    }

    #[test]
    fn seen_at_accepts_dates_and_unix_seconds() {
        assert_eq!(parse_seen_at("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_seen_at("1970-01-02").unwrap(), 86_400);
        assert!(parse_seen_at("02/01/1970").is_err());
        assert!(parse_seen_at("").is_err());
    }
}
