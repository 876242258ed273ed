//! Bearer tokens for the staff API and /metrics. The gateway stores only
//! SHA-256 hashes of tokens, and compares hashes in constant time, so neither
//! a copy of the config nor response timing gives a token away.

use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;

/// Hex SHA-256 of `bytes`: how a token's hash is written in the config.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Accepted token hashes.
#[derive(Debug, Clone, Default)]
pub struct TokenHashes(Vec<[u8; 32]>);

impl TokenHashes {
    /// From parsed hashes.
    pub fn new(hashes: Vec<[u8; 32]>) -> Self {
        TokenHashes(hashes)
    }

    /// True if the request carries `Authorization: Bearer <token>` with a
    /// token whose hash is accepted.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes());
        // Check every hash, without early exit, so timing says nothing.
        self.0
            .iter()
            .fold(false, |found, h| found | ct_eq(h, digest.as_ref()))
    }
}

/// Constant-time equality of two byte strings of public length.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_are_lower_case_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_a_listed_token_is_allowed() {
        let good = "s3cret-token";
        let hashes = TokenHashes::new(vec![crate::config::parse_sha256_hex(&sha256_hex(
            good.as_bytes(),
        ))
        .unwrap()]);
        let mut h = HeaderMap::new();
        assert!(!hashes.allows(&h));
        h.insert(AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(!hashes.allows(&h));
        h.insert(AUTHORIZATION, format!("Bearer {good}").parse().unwrap());
        assert!(hashes.allows(&h));
    }
}
