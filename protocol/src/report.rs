//! The report: what the reporter saw, as the hotline reads it after opening.
//!
//! Unknown fields are kept byte for byte so that a v1 reader passes on what a
//! newer client added. `pad` is never kept: it only hides the length.

use core::fmt;
use core::str::FromStr;

use zeroize::{Zeroize, Zeroizing};

use crate::cbor::{head_len, DecodeError, Limits, Reader, Writer};
use crate::VERSION;

/// What kind of abuse the report is about, after the Luxembourg Terminology
/// Guidelines (2016).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Child sexual abuse material.
    Csam,
    /// An adult building trust with a child to abuse them.
    Grooming,
    /// Threats to share sexual images unless demands are met.
    Sextortion,
    /// Abuse streamed live.
    Livestream,
    /// Images a child made of themselves, now shared.
    SelfGenerated,
    /// Anything else.
    Other,
}

impl Category {
    /// Every category, in the order a form lists them.
    pub const ALL: [Category; 6] = [
        Category::Csam,
        Category::Grooming,
        Category::Sextortion,
        Category::Livestream,
        Category::SelfGenerated,
        Category::Other,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Csam => "csam",
            Category::Grooming => "grooming",
            Category::Sextortion => "sextortion",
            Category::Livestream => "livestream",
            Category::SelfGenerated => "self-generated",
            Category::Other => "other",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(DecodeError::InvalidValue {
                field: "category",
                reason: "not a v1 category",
            })
    }
}

/// Hash algorithms for images hashed on the device instead of being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256 of the file, 32 bytes.
    Sha256,
    /// PDQ perceptual hash, 32 bytes.
    Pdq,
    /// MD5 of the file, 16 bytes (still what many hash lists use).
    Md5,
}

impl HashAlg {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Pdq => "pdq",
            HashAlg::Md5 => "md5",
        }
    }

    /// The length of a value of this algorithm.
    pub fn value_len(self) -> usize {
        match self {
            HashAlg::Sha256 | HashAlg::Pdq => 32,
            HashAlg::Md5 => 16,
        }
    }
}

impl FromStr for HashAlg {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(HashAlg::Sha256),
            "pdq" => Ok(HashAlg::Pdq),
            "md5" => Ok(HashAlg::Md5),
            _ => Err(DecodeError::InvalidValue {
                field: "hashes.alg",
                reason: "not sha256, pdq or md5",
            }),
        }
    }
}

/// One image hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHash {
    /// The algorithm.
    pub alg: HashAlg,
    /// The hash value, of `alg.value_len()` bytes.
    pub value: Vec<u8>,
}

/// A report, the plaintext of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// What it is about.
    pub category: Category,
    /// Where it is.
    pub urls: Vec<String>,
    /// What the reporter saw, in their words.
    pub description: Option<String>,
    /// The reporter's language, BCP 47.
    pub lang: Option<String>,
    /// When they saw it, unix seconds.
    pub seen_at: Option<u64>,
    /// Which platform or app.
    pub platform: Option<String>,
    /// Hashes of images, computed on the device.
    pub hashes: Vec<ImageHash>,
    /// How to reach the reporter, if they want to be reached.
    pub contact: Option<String>,
    /// An X25519 public key for an encrypted reply.
    pub reply_key: Option<[u8; 32]>,
    /// Fields this version does not know, as (key, raw CBOR value).
    pub extra: Vec<(String, Vec<u8>)>,
}

/// Wipes every field that holds what the reporter wrote, so a holder of
/// plaintext (the gateway's no-JS path, a client after sealing) can use
/// `Zeroizing<Report>`. The category and dates are cleared too.
impl Zeroize for Report {
    fn zeroize(&mut self) {
        let Report {
            category: _,
            urls,
            description,
            lang,
            seen_at,
            platform,
            hashes,
            contact,
            reply_key,
            extra,
        } = self;
        urls.zeroize();
        description.zeroize();
        lang.zeroize();
        seen_at.zeroize();
        platform.zeroize();
        for h in hashes.iter_mut() {
            h.value.zeroize();
        }
        hashes.clear();
        contact.zeroize();
        reply_key.zeroize();
        for (k, v) in extra.iter_mut() {
            k.zeroize();
            v.zeroize();
        }
        extra.clear();
    }
}

/// The plaintext size buckets: a padded report is exactly one of these long.
pub const PAD_BUCKETS: [usize; 4] = [1024, 4096, 16 * 1024, 64 * 1024];

/// The largest plaintext: the largest bucket.
pub const MAX_PLAINTEXT_LEN: usize = PAD_BUCKETS[PAD_BUCKETS.len() - 1];

/// Most links in one report: the report decoder's array limit
/// ([`Limits::REPORT`]), so every form and client stops where the hotline
/// would refuse.
pub const MAX_URLS: usize = Limits::REPORT.max_array;

/// The unknown field the web form puts a `seen_at` in when it is not a
/// `YYYY-MM-DD` date (an old browser's text box), so it is kept, not lost.
pub const SEEN_AT_TEXT: &str = "seen_at_text";

/// The report fields v1 defines; any other key is an unknown field, kept as is.
pub const KNOWN_FIELDS: [&str; 11] = [
    "v",
    "category",
    "urls",
    "description",
    "lang",
    "seen_at",
    "platform",
    "hashes",
    "contact",
    "reply_key",
    "pad",
];

impl Report {
    /// A report with only a category; fill the rest as needed.
    pub fn new(category: Category) -> Report {
        Report {
            category,
            urls: Vec::new(),
            description: None,
            lang: None,
            seen_at: None,
            platform: None,
            hashes: Vec::new(),
            contact: None,
            reply_key: None,
            extra: Vec::new(),
        }
    }

    /// Decodes a report within [`Limits::REPORT`].
    pub fn decode(input: &[u8]) -> Result<Report, DecodeError> {
        let mut r = Reader::new(input, Limits::REPORT)?;
        let mut report = Report::new(Category::Other);
        let mut v = None;
        let mut category = None;
        r.for_each_entry("report", |r, key| {
            match key {
                "v" => v = Some(r.uint("v")?),
                "category" => category = Some(r.text("category")?.parse()?),
                "urls" => {
                    let n = r.array("urls")?;
                    for _ in 0..n {
                        report.urls.push(r.text("urls")?.to_owned());
                    }
                    r.leave();
                }
                "description" => report.description = Some(r.text("description")?.to_owned()),
                "lang" => report.lang = Some(r.text("lang")?.to_owned()),
                "seen_at" => report.seen_at = Some(r.uint("seen_at")?),
                "platform" => report.platform = Some(r.text("platform")?.to_owned()),
                "hashes" => {
                    let n = r.array("hashes")?;
                    for _ in 0..n {
                        report.hashes.push(read_hash(r)?);
                    }
                    r.leave();
                }
                "contact" => report.contact = Some(r.text("contact")?.to_owned()),
                "reply_key" => report.reply_key = Some(r.fixed_bytes("reply_key")?),
                "pad" => {
                    r.bytes("pad")?;
                }
                other => report
                    .extra
                    .push((other.to_owned(), r.raw_value()?.to_vec())),
            }
            Ok(())
        })?;
        r.finish()?;
        match v {
            None => return Err(DecodeError::MissingField("v")),
            Some(VERSION) => {}
            Some(other) => return Err(DecodeError::UnsupportedVersion(other)),
        }
        report.category = category.ok_or(DecodeError::MissingField("category"))?;
        Ok(report)
    }

    /// Number of map entries [`Report::encode`] writes, without `pad`.
    fn entry_count(&self) -> usize {
        2 + usize::from(!self.urls.is_empty())
            + usize::from(self.description.is_some())
            + usize::from(self.lang.is_some())
            + usize::from(self.seen_at.is_some())
            + usize::from(self.platform.is_some())
            + usize::from(!self.hashes.is_empty())
            + usize::from(self.contact.is_some())
            + usize::from(self.reply_key.is_some())
            + self.extra.len()
    }

    /// The entries of the map, without its head.
    fn encode_entries(&self, mut w: Writer) -> Writer {
        w.text("v").uint(VERSION);
        w.text("category").text(self.category.as_str());
        if !self.urls.is_empty() {
            w.text("urls").array(self.urls.len());
            for u in &self.urls {
                w.text(u);
            }
        }
        let texts = [("description", &self.description), ("lang", &self.lang)];
        for (k, v) in texts {
            if let Some(v) = v {
                w.text(k).text(v);
            }
        }
        if let Some(t) = self.seen_at {
            w.text("seen_at").uint(t);
        }
        if let Some(p) = &self.platform {
            w.text("platform").text(p);
        }
        if !self.hashes.is_empty() {
            w.text("hashes").array(self.hashes.len());
            for h in &self.hashes {
                w.map(2)
                    .text("alg")
                    .text(h.alg.as_str())
                    .text("value")
                    .bytes(&h.value);
            }
        }
        if let Some(c) = &self.contact {
            w.text("contact").text(c);
        }
        if let Some(k) = &self.reply_key {
            w.text("reply_key").bytes(k);
        }
        for (k, v) in &self.extra {
            w.text(k).raw(v);
        }
        w
    }

    /// Encodes without padding.
    pub fn encode(&self) -> Vec<u8> {
        let body = self.encode_entries(Writer::new()).into_bytes();
        let mut w = Writer::new();
        w.map(self.entry_count()).raw(&body);
        w.into_bytes()
    }

    /// Encodes with a `pad` field so the result is exactly one of
    /// [`PAD_BUCKETS`] long: the smallest that fits. Fails if the report is
    /// larger than the largest bucket.
    ///
    /// This is the plaintext of a sealed report: the intermediate buffer is
    /// wiped and neither buffer grows (which would leave a copy in freed
    /// memory) unless the report is too large anyway. The caller wipes the
    /// result once sealed (`Zeroizing`, as [`crate::seal_report`] does).
    pub fn encode_padded(&self) -> Result<Vec<u8>, PadError> {
        let body = Zeroizing::new(
            self.encode_entries(Writer::with_capacity(MAX_PLAINTEXT_LEN))
                .into_bytes(),
        );
        let entries = self.entry_count() + 1;
        // map head + body + "pad" key (4 bytes) + bstr head + padding
        let fixed = head_len(entries as u64) + body.len() + 4;
        let (bucket, pad_len) = PAD_BUCKETS
            .iter()
            .find_map(|&bucket| Some((bucket, pad_length(bucket, fixed)?)))
            .ok_or(PadError(fixed))?;
        let mut w = Writer::with_capacity(bucket);
        w.map(entries)
            .raw(&body)
            .text("pad")
            .bytes(&vec![0u8; pad_len]);
        Ok(w.into_bytes())
    }

    /// Sets when the reporter saw it from what they typed: a `YYYY-MM-DD`
    /// date becomes `seen_at` (midnight UTC); anything else is kept as text
    /// in the unknown field [`SEEN_AT_TEXT`]. The web form and its script
    /// follow this rule (SPEC.md section 4).
    pub fn set_seen_at_text(&mut self, typed: &str) {
        match crate::time::parse_civil_date(typed) {
            Some(day) => self.seen_at = Some(day * crate::time::DAY),
            None => {
                // Sized for the text and its head (at most 9 bytes), so
                // the buffer never grows and leaves no copy behind.
                let mut w = Writer::with_capacity(typed.len() + 9);
                w.text(typed);
                self.extra.retain(|(k, _)| k != SEEN_AT_TEXT);
                self.extra.push((SEEN_AT_TEXT.to_owned(), w.into_bytes()));
            }
        }
    }

    /// Checks the fields a v1 client must get right before sealing, so a
    /// mistake is caught on the device, not by the hotline.
    pub fn validate(&self) -> Result<(), DecodeError> {
        for h in &self.hashes {
            if h.value.len() != h.alg.value_len() {
                return Err(DecodeError::InvalidValue {
                    field: "hashes.value",
                    reason: "wrong length for its algorithm",
                });
            }
        }
        if self.urls.len() > MAX_URLS {
            return Err(DecodeError::ArrayTooLong {
                declared: self.urls.len() as u64,
                limit: MAX_URLS,
            });
        }
        if let Some((k, _)) = self
            .extra
            .iter()
            .find(|(k, _)| KNOWN_FIELDS.contains(&k.as_str()))
        {
            return Err(DecodeError::DuplicateField(k.clone()));
        }
        Ok(())
    }
}

/// The padding length that makes `fixed` plus a bstr head plus padding equal
/// `bucket`, if there is one.
fn pad_length(bucket: usize, fixed: usize) -> Option<usize> {
    [1usize, 2, 3, 5].into_iter().find_map(|head| {
        let pad = bucket.checked_sub(fixed + head)?;
        (head_len(pad as u64) == head).then_some(pad)
    })
}

/// The report does not fit the largest bucket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("report of {0} bytes does not fit the largest size bucket (64 KiB)")]
pub struct PadError(pub usize);

fn read_hash(r: &mut Reader<'_>) -> Result<ImageHash, DecodeError> {
    let mut alg: Option<HashAlg> = None;
    let mut value: Option<&[u8]> = None;
    r.for_each_entry("hashes", |r, key| {
        match key {
            "alg" => alg = Some(r.text("hashes.alg")?.parse()?),
            "value" => value = Some(r.bytes("hashes.value")?),
            _ => {
                r.raw_value()?;
            }
        }
        Ok(())
    })?;
    let alg = alg.ok_or(DecodeError::MissingField("hashes.alg"))?;
    let value = value.ok_or(DecodeError::MissingField("hashes.value"))?;
    if value.len() != alg.value_len() {
        return Err(DecodeError::InvalidValue {
            field: "hashes.value",
            reason: "wrong length for its algorithm",
        });
    }
    Ok(ImageHash {
        alg,
        value: value.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn zeroize_leaves_only_the_category_and_padding_still_fills_a_bucket() {
        let mut r = Report::new(Category::Grooming);
        r.urls = vec!["https://a.example/x".into(); 3];
        r.description = Some("what I saw".into());
        r.lang = Some("fr".into());
        r.seen_at = Some(86_400);
        r.platform = Some("chat".into());
        r.hashes = vec![ImageHash {
            alg: HashAlg::Md5,
            value: vec![7; 16],
        }];
        r.contact = Some("me@example.org".into());
        r.reply_key = Some([9; 32]);
        r.set_seen_at_text("last tuesday");
        let padded = r.encode_padded().unwrap();
        assert!(PAD_BUCKETS.contains(&padded.len()));
        assert_eq!(padded.capacity(), padded.len(), "one buffer, never grown");
        assert_eq!(Report::decode(&padded).unwrap(), r);
        r.zeroize();
        assert_eq!(r, Report::new(Category::Grooming));
    }
}
