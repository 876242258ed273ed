//! `verify-key`: is the key this gateway hands to reporters really ours?
//!
//! Fetches `GET /v1/key` and verifies it against the hotline's signing key:
//! either its PEM file, or only its fingerprint (`--pin`). With a fingerprint
//! alone the candidate signing key is the document's `signer` field (SPEC
//! section 10) or, for a gateway that does not send one, the key its web
//! form shows (`<meta name="hotline-signing-key">`, which the browser checks
//! the same way); either is accepted only if its fingerprint matches the pin.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use hotline_https::Transport;
use hotline_protocol::{fingerprint, KeyDocError, KeyDocument, VerifyingKey};
use hyper::Method;

use crate::StaffError;

/// How the signing key is pinned.
#[derive(Debug, Clone)]
pub enum Pin {
    /// The fingerprint (any spacing and case).
    Fingerprint(String),
    /// The SPKI PEM file of the signing key.
    SigningKey(PathBuf),
}

/// A verified document and what to print about it.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The document.
    pub document: KeyDocument,
    /// The signing key that verified it.
    pub signing_fingerprint: String,
}

fn normalize(fp: &str) -> String {
    fp.chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// Fetches and verifies the served key document.
pub async fn verify_key(
    url: &str,
    pin: &Pin,
    ca: Option<&std::path::Path>,
) -> Result<Verified, StaffError> {
    let transport = Transport::new(url, ca)?.timeout(Duration::from_secs(30));
    let answer = transport
        .send(Method::GET, "/v1/key", &[], Vec::new())
        .await?;
    if answer.status != 200 {
        return Err(StaffError::gateway(&answer));
    }
    let signing = match pin {
        Pin::SigningKey(path) => VerifyingKey::from_pem(&crate::read_text(path)?).map_err(|e| {
            StaffError::Usage(format!(
                "{}: not an Ed25519 public key: {e}",
                path.display()
            ))
        })?,
        Pin::Fingerprint(fp) => {
            let candidate = match signer_of(&answer.body) {
                Some(raw) => VerifyingKey(raw),
                None => served_signing_key(&transport).await?,
            };
            if normalize(&fingerprint(&candidate.0)) != normalize(fp) {
                return Err(StaffError::Usage(format!(
                    "MISMATCH: the gateway's signing key has fingerprint {}, not the pinned {fp}. \
                     Do not trust this gateway's key.",
                    candidate.fingerprint()
                )));
            }
            candidate
        }
    };
    let now = hotline_protocol::time::unix_now();
    match KeyDocument::verify(&answer.body, &signing, now) {
        Ok(document) => Ok(Verified {
            document,
            signing_fingerprint: signing.fingerprint(),
        }),
        Err(KeyDocError::BadSignature) => Err(StaffError::Usage(format!(
            "MISMATCH: the key document served by {url} is NOT signed by the pinned signing key \
             {}. Reports sealed to it could be read by someone else. Do not use this gateway \
             until the hotline has checked it.",
            signing.fingerprint()
        ))),
        Err(KeyDocError::Expired { not_after, now }) => Err(StaffError::Usage(format!(
            "EXPIRED: the key document served by {url} is signed by the pinned key but expired \
             {} day(s) ago (not_after {not_after}); run `hotline-staff keygen` and install the \
             new document on the gateway.",
            now.saturating_sub(not_after) / hotline_protocol::time::DAY
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The optional `signer` of a signed key document (not yet verified).
fn signer_of(signed: &[u8]) -> Option<[u8; 32]> {
    let mut r =
        hotline_protocol::cbor::Reader::new(signed, hotline_protocol::Limits::ENVELOPE).ok()?;
    let mut signer = None;
    r.for_each_entry("key document", |r, key| {
        if key == "signer" {
            signer = Some(r.fixed_bytes::<32>("signer")?);
        } else {
            r.raw_value()?;
        }
        Ok(())
    })
    .ok()?;
    signer
}

/// Reads the signing key the web form embeds.
async fn served_signing_key(transport: &Transport) -> Result<VerifyingKey, StaffError> {
    let answer = transport
        .send(Method::GET, "/", &[("accept", "text/html")], Vec::new())
        .await?;
    if answer.status != 200 {
        return Err(StaffError::gateway(&answer));
    }
    let page = String::from_utf8_lossy(&answer.body);
    let b64 = meta_content(&page, "hotline-signing-key").ok_or_else(|| {
        StaffError::Usage(
            "the gateway's web form does not show its signing key; use --signing-key PEM".into(),
        )
    })?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| StaffError::Usage("the served signing key is not base64".into()))?;
    let raw: [u8; 32] = raw
        .try_into()
        .map_err(|_| StaffError::Usage("the served signing key is not 32 bytes".into()))?;
    Ok(VerifyingKey(raw))
}

/// The `content` of `<meta name="NAME" content="...">` in an HTML page.
fn meta_content<'a>(page: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!("name=\"{name}\"");
    let at = page.find(&marker)?;
    let tag_start = page[..at].rfind('<')?;
    let tag_end = at + page[at..].find('>')?;
    let tag = &page[tag_start..tag_end];
    let c = tag.find("content=\"")? + "content=\"".len();
    let len = tag[c..].find('"')?;
    Some(&tag[c..c + len])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_the_meta_tag_and_normalizes_fingerprints() {
        let page = r#"<head><meta charset="utf-8"><meta name="hotline-signing-key" content="AbC=="></head>"#;
        assert_eq!(meta_content(page, "hotline-signing-key"), Some("AbC=="));
        assert_eq!(meta_content(page, "other"), None);
        assert_eq!(normalize("d19b f3f0"), normalize("D19BF3F0"));
    }

    #[test]
    fn finds_the_optional_signer() {
        let mut w = hotline_protocol::cbor::Writer::new();
        w.map(3)
            .text("key")
            .bytes(b"k")
            .text("sig")
            .bytes(&[0u8; 64])
            .text("signer")
            .bytes(&[7u8; 32]);
        assert_eq!(signer_of(&w.into_bytes()), Some([7u8; 32]));
        let mut w = hotline_protocol::cbor::Writer::new();
        w.map(1).text("key").bytes(b"k");
        assert_eq!(signer_of(&w.into_bytes()), None);
    }
}
