//! Every reason an error body can carry, with its HTTP status: the one list
//! SPEC.md's tables are checked against (`protocol/tests/spec_reasons.rs`),
//! so a reason cannot be sent without being documented, or documented
//! without being sent.

use core::fmt;
use core::str::FromStr;

use crate::cbor::DecodeError;

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = ($name:literal, $status:literal), )*) => {
        /// A stable, machine-readable reason for a rejection (the `error` of
        /// an `error-body`), also the label of the gateway's rejection metric.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason, in the order of SPEC.md.
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            /// The wire name (snake_case).
            pub fn as_str(self) -> &'static str {
                match self { $( Reason::$variant => $name, )* }
            }

            /// The HTTP status that carries this reason.
            pub fn status(self) -> u16 {
                match self { $( Reason::$variant => $status, )* }
            }
        }
    };
}

reasons! {
    // Decode failures (DecodeError::reason).
    /// The body is larger than the message's input limit.
    CborInputTooLarge = ("cbor_input_too_large", 413),
    /// Nesting deeper than the limit.
    CborTooDeep = ("cbor_too_deep", 400),
    /// A string longer than the limit.
    CborStringTooLong = ("cbor_string_too_long", 400),
    /// An array longer than the limit.
    CborArrayTooLong = ("cbor_array_too_long", 400),
    /// A map longer than the limit.
    CborMapTooLong = ("cbor_map_too_long", 400),
    /// An indefinite-length item.
    CborIndefiniteLength = ("cbor_indefinite_length", 400),
    /// The input ends inside the message.
    CborTruncated = ("cbor_truncated", 400),
    /// Bytes after the message.
    CborTrailingBytes = ("cbor_trailing_bytes", 400),
    /// Not CBOR.
    CborMalformed = ("cbor_malformed", 400),
    /// A known field of the wrong type.
    WrongType = ("wrong_type", 400),
    /// A required field is missing.
    MissingField = ("missing_field", 400),
    /// A key appears twice.
    DuplicateField = ("duplicate_field", 400),
    /// A field's value is not allowed.
    InvalidValue = ("invalid_value", 400),
    /// Another protocol version.
    UnsupportedVersion = ("unsupported_version", 422),
    /// Another HPKE suite.
    UnsupportedSuite = ("unsupported_suite", 422),

    // The gateway's API.
    /// `Idempotency-Key` is not 16 bytes in base64url.
    BadIdempotencyKey = ("bad_idempotency_key", 400),
    /// The staff list's `after` is not a cursor.
    BadCursor = ("bad_cursor", 400),
    /// The staff list's `limit` is not 1 to 1000.
    BadLimit = ("bad_limit", 400),
    /// The body was cut short.
    BodyIncomplete = ("body_incomplete", 400),
    /// Plain HTTP on the TLS port (answered in plain HTTP, then closed).
    TlsRequired = ("tls_required", 400),
    /// The staff API or /metrics without a valid token.
    Unauthenticated = ("unauthenticated", 401),
    /// No such resource.
    NotFound = ("not_found", 404),
    /// The path exists, the method does not.
    MethodNotAllowed = ("method_not_allowed", 405),
    /// The body took too long to arrive.
    BodyTimeout = ("body_timeout", 408),
    /// The body is above the endpoint's limit.
    BodyTooLarge = ("body_too_large", 413),
    /// The body is not of the endpoint's media type.
    WrongMediaType = ("wrong_media_type", 415),
    /// Sealed to a key the gateway does not serve.
    UnknownKid = ("unknown_kid", 422),
    /// An ack names an id that is not a record id.
    UnknownIds = ("unknown_ids", 422),
    /// Too many requests from this client.
    RateLimited = ("rate_limited", 429),
    /// More request headers than the gateway accepts.
    TooManyHeaders = ("too_many_headers", 431),
    /// A fault inside the gateway (its random number generator, a task).
    Internal = ("internal", 500),
    /// The intake queue is full.
    Overloaded = ("overloaded", 503),
    /// The store failed; nothing was stored.
    StoreUnavailable = ("store_unavailable", 503),
    /// The store's byte cap or disk is full.
    StorageFull = ("storage_full", 507),

    // The web form without script (`POST /report`).
    /// No category chosen.
    MissingCategory = ("missing_category", 400),
    /// The form data is not UTF-8.
    BadForm = ("bad_form", 400),
    /// Posted from another site (`Sec-Fetch-Site` or `Origin`): refused
    /// before the body is read, so a foreign page cannot file reports in a
    /// visitor's name.
    CrossSite = ("cross_site", 403),
    /// More than `MAX_URLS` links.
    TooManyUrls = ("too_many_urls", 413),
    /// The report does not fit the largest padding bucket.
    ReportTooLarge = ("report_too_large", 413),
    /// A category that is not one of v1's.
    UnknownCategory = ("unknown_category", 422),
    /// The gateway could not seal the report.
    SealFailed = ("seal_failed", 500),

    // A push backend (the reference one: `hotline-staff receive`).
    /// The envelope does not open with the hotline key (permanent: dead-letter).
    Undecryptable = ("undecryptable", 422),
    /// The backend could not store the report (retry).
    NotStored = ("not_stored", 503),
}

impl Reason {
    /// Whether a client should send the same request again later (408,
    /// 429, 503), as SPEC.md section 9 says.
    pub fn is_retryable(self) -> bool {
        matches!(self.status(), 408 | 429 | 503)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DecodeError {
    /// The error body's reason for this failure (its status follows from
    /// it: 413 for the input limit, 422 for another version or suite, else 400).
    pub fn code(&self) -> Reason {
        match self {
            DecodeError::InputTooLarge { .. } => Reason::CborInputTooLarge,
            DecodeError::TooDeep { .. } => Reason::CborTooDeep,
            DecodeError::StringTooLong { .. } => Reason::CborStringTooLong,
            DecodeError::ArrayTooLong { .. } => Reason::CborArrayTooLong,
            DecodeError::MapTooLong { .. } => Reason::CborMapTooLong,
            DecodeError::IndefiniteLength => Reason::CborIndefiniteLength,
            DecodeError::Truncated => Reason::CborTruncated,
            DecodeError::TrailingBytes(_) => Reason::CborTrailingBytes,
            DecodeError::Malformed(_) => Reason::CborMalformed,
            DecodeError::WrongType { .. } => Reason::WrongType,
            DecodeError::MissingField(_) => Reason::MissingField,
            DecodeError::DuplicateField(_) => Reason::DuplicateField,
            DecodeError::InvalidValue { .. } => Reason::InvalidValue,
            DecodeError::UnsupportedVersion(_) => Reason::UnsupportedVersion,
            DecodeError::UnsupportedSuite(_) => Reason::UnsupportedSuite,
        }
    }
}

impl FromStr for Reason {
    type Err = DecodeError;

    /// Exactly one of [`Reason::ALL`]'s names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or(DecodeError::InvalidValue {
                field: "error",
                reason: "not a v1 error reason",
            })
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Reason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.as_str()), "{r} twice");
            assert!(r
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), *r);
            assert!((400..600).contains(&r.status()));
        }
        assert!("bad_envelope".parse::<Reason>().is_err());
    }
}
