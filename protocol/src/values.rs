//! The small values every party names on the wire: how a report came in
//! ([`Channel`]), which record it is ([`RecordId`]) and what a receipt says
//! ([`ReceiptState`]). Each has one spelling and one validity rule, here, so
//! the gateway, the store, the staff tool and the CLI cannot drift apart.

use core::fmt;
use core::str::FromStr;

use ring::rand::SecureRandom;

use crate::cbor::DecodeError;

/// How a report reached the gateway. Staff see it with every record, and
/// the push backend gets it in `Hotline-Channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `POST /v1/reports` from an app or partner, sealed on their device.
    Api,
    /// `POST /v1/reports` from the public web form's script, sealed in the browser.
    Web,
    /// The HTML form without script, sealed by the gateway in memory.
    WebNojs,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 3] = [Channel::Api, Channel::Web, Channel::WebNojs];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Api => "api",
            Channel::Web => "web",
            Channel::WebNojs => "web-nojs",
        }
    }

    /// The channel of a `POST /v1/reports`, from the client's optional
    /// `Hotline-Channel` header: only `web` can be claimed (the form's
    /// script); anything else, or nothing, is `api`. `web-nojs` is never
    /// taken from a client, since only the gateway seals those.
    pub fn of_submission(header: Option<&[u8]>) -> Channel {
        match header.and_then(headers::parse_channel) {
            Some(Channel::Web) => Channel::Web,
            _ => Channel::Api,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = DecodeError;

    /// Exactly one of the wire names; anything else is `invalid_value`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(DecodeError::InvalidValue {
                field: "channel",
                reason: "not api, web or web-nojs",
            })
    }
}

impl PartialEq<&str> for Channel {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A record id as the gateway makes it: 128 random bits as 32 lower-case
/// hex digits. It names a report in the staff API, in the push
/// `Idempotency-Key`, in the store's index and as the staff archive's file
/// name, so it must carry no information and must be safe as a file name;
/// anything else is refused wherever an id is read.
///
/// Held inline (`heapless`), since its length is fixed: a page of a thousand
/// ids costs no allocation per id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(heapless::String<RECORD_ID_LEN>);

/// Number of random bytes in a record id.
pub const RECORD_ID_BYTES: usize = 16;
/// Number of hex digits in a record id.
pub const RECORD_ID_LEN: usize = 2 * RECORD_ID_BYTES;

impl RecordId {
    /// The id of these random bytes.
    pub fn from_bytes(raw: [u8; RECORD_ID_BYTES]) -> RecordId {
        let mut digits = [0u8; RECORD_ID_LEN];
        // Cannot fail: the buffer is exactly twice the input.
        let _ = hex::encode_to_slice(raw, &mut digits);
        RecordId(id_text(&digits))
    }

    /// Draws a new id.
    pub fn generate(rng: &dyn SecureRandom) -> Result<RecordId, crate::KeyError> {
        let mut raw = [0u8; RECORD_ID_BYTES];
        rng.fill(&mut raw).map_err(|_| crate::KeyError::Random)?;
        Ok(RecordId::from_bytes(raw))
    }

    /// The 32 hex digits.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether `s` is a record id (32 lower-case hex digits).
    pub fn is_valid(s: &str) -> bool {
        s.len() == RECORD_ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

/// The inline text of 32 checked hex digits.
fn id_text(digits: &[u8]) -> heapless::String<RECORD_ID_LEN> {
    let mut text = heapless::String::new();
    for &d in digits.iter().take(RECORD_ID_LEN) {
        // Cannot overflow: at most RECORD_ID_LEN ASCII digits.
        let _ = text.push(char::from(d));
    }
    text
}

impl FromStr for RecordId {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if RecordId::is_valid(s) {
            Ok(RecordId(id_text(s.as_bytes())))
        } else {
            Err(DecodeError::InvalidValue {
                field: "id",
                reason: "not a record id (32 lower-case hex digits)",
            })
        }
    }
}

impl core::ops::Deref for RecordId {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for RecordId {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({})", self.0)
    }
}

impl PartialEq<str> for RecordId {
    fn eq(&self, other: &str) -> bool {
        self.0.as_str() == other
    }
}

impl PartialEq<&str> for RecordId {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_str() == *other
    }
}

impl PartialEq<String> for RecordId {
    fn eq(&self, other: &String) -> bool {
        self.0.as_str() == other.as_str()
    }
}

impl PartialEq<RecordId> for String {
    fn eq(&self, other: &RecordId) -> bool {
        self.as_str() == other.0.as_str()
    }
}

impl PartialEq<RecordId> for &str {
    fn eq(&self, other: &RecordId) -> bool {
        *self == other.0
    }
}

/// What a receipt code says about its report (`GET /v1/receipts/{code}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptState {
    /// Received, not yet delivered to the hotline (or dead-lettered, awaiting staff).
    Queued,
    /// Pulled and acked, or pushed: the hotline has it.
    Delivered,
    /// No such code, forgotten, or malformed: the answer does not say which.
    Unknown,
}

impl ReceiptState {
    /// Every state.
    pub const ALL: [ReceiptState; 3] = [
        ReceiptState::Queued,
        ReceiptState::Delivered,
        ReceiptState::Unknown,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptState::Queued => "queued",
            ReceiptState::Delivered => "delivered",
            ReceiptState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ReceiptState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReceiptState {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReceiptState::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(DecodeError::InvalidValue {
                field: "status",
                reason: "not queued, delivered or unknown",
            })
    }
}

impl PartialEq<&str> for ReceiptState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The HTTP headers of the protocol, lower-case as HTTP/2 sends them, and
/// the one way each is read.
pub mod headers {
    use super::{Channel, RecordId};

    /// `Idempotency-Key`: on `POST /v1/reports`, 16 random bytes in
    /// base64url; on a push delivery, the record id.
    pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
    /// `Hotline-Received-At`: a push delivery's receive time (unix seconds,
    /// rounded down to the hour).
    pub const RECEIVED_AT: &str = "hotline-received-at";
    /// `Hotline-Channel`: a push delivery's channel; on `POST /v1/reports`,
    /// the web form's script sends `web` (see [`Channel::of_submission`]).
    pub const CHANNEL: &str = "hotline-channel";

    fn text(value: &[u8]) -> Option<&str> {
        core::str::from_utf8(value).ok().map(str::trim)
    }

    /// Reads `Hotline-Channel`: exactly one channel name (surrounding
    /// spaces ignored), else `None`.
    pub fn parse_channel(value: &[u8]) -> Option<Channel> {
        text(value)?.parse().ok()
    }

    /// Reads `Hotline-Received-At`: a decimal unsigned integer.
    pub fn parse_received_at(value: &[u8]) -> Option<u64> {
        let t = text(value)?;
        t.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| t.parse().ok())?
    }

    /// Reads a push delivery's `Idempotency-Key`: a record id.
    pub fn parse_record_id(value: &[u8]) -> Option<RecordId> {
        text(value)?.parse().ok()
    }

    /// The headers of one push delivery besides `Content-Type`, in the
    /// order SPEC.md section 13 lists them.
    pub fn push(id: &RecordId, received_at: u64, channel: Channel) -> [(&'static str, String); 3] {
        [
            (IDEMPOTENCY_KEY, id.as_str().to_owned()),
            (RECEIVED_AT, received_at.to_string()),
            (CHANNEL, channel.as_str().to_owned()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_have_one_spelling() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), c);
            assert_eq!(headers::parse_channel(c.as_str().as_bytes()), Some(c));
        }
        assert!("web-sealed-by-gateway".parse::<Channel>().is_err());
        assert!("WEB".parse::<Channel>().is_err());
        assert_eq!(Channel::of_submission(Some(b"web")), Channel::Web);
        assert_eq!(Channel::of_submission(Some(b" web ")), Channel::Web);
        assert_eq!(Channel::of_submission(Some(b"web-nojs")), Channel::Api);
        assert_eq!(Channel::of_submission(Some(b"x")), Channel::Api);
        assert_eq!(Channel::of_submission(None), Channel::Api);
    }

    #[test]
    fn record_ids_are_32_lower_hex_digits() {
        let rng = ring::rand::SystemRandom::new();
        let id = RecordId::generate(&rng).unwrap();
        assert!(RecordId::is_valid(&id));
        assert_eq!(id.as_str().parse::<RecordId>().unwrap(), id);
        assert_eq!(RecordId::from_bytes([0xab; 16]), "ab".repeat(16).as_str());
        for bad in [
            "",
            "abc",
            &"A".repeat(32),
            &"a".repeat(31),
            &"a".repeat(33),
            "../../../../etc/passwd0000000000",
            &"g".repeat(32),
        ] {
            assert!(bad.parse::<RecordId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn receipt_states_round_trip() {
        for s in ReceiptState::ALL {
            assert_eq!(s.as_str().parse::<ReceiptState>().unwrap(), s);
        }
        assert!("lost".parse::<ReceiptState>().is_err());
    }

    #[test]
    fn push_headers_read_back() {
        let id = RecordId::from_bytes([7; 16]);
        let h = headers::push(&id, 7200, Channel::WebNojs);
        assert_eq!(headers::parse_record_id(h[0].1.as_bytes()), Some(id));
        assert_eq!(headers::parse_received_at(h[1].1.as_bytes()), Some(7200));
        assert_eq!(
            headers::parse_channel(h[2].1.as_bytes()),
            Some(Channel::WebNojs)
        );
        assert_eq!(headers::parse_received_at(b"+5"), None);
        assert_eq!(headers::parse_received_at(b""), None);
    }
}
