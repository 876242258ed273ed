//! A bounded CBOR reader and a small writer.
//!
//! Every message of the protocol is decoded through [`Reader`], which checks the
//! [`Limits`] *before* anything is allocated: a header that declares a 4 GiB string
//! fails on the declaration, a 100,000-deep array fails at the configured depth,
//! and the memory a decode uses never exceeds a small multiple of its input,
//! because strings are borrowed from the input and collections are bounded by
//! the length limits. Indefinite-length items are refused: v1 encoders use
//! definite lengths only, which keeps every size knowable up front.

use minicbor::data::Type;
use minicbor::Decoder;

/// Hard limits for one decode. Defaults fit protocol v1 messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input in bytes.
    pub max_input: usize,
    /// Deepest accepted nesting of arrays and maps (the top-level map is depth 1).
    pub max_depth: usize,
    /// Longest accepted text or byte string, in bytes.
    pub max_string: usize,
    /// Most items accepted in one array.
    pub max_array: usize,
    /// Most entries accepted in one map.
    pub max_map: usize,
}

impl Limits {
    /// Limits for envelopes and other gateway-facing messages: the largest
    /// plaintext bucket (64 KiB) plus the AEAD tag and framing.
    pub const ENVELOPE: Limits = Limits {
        max_input: 66 * 1024,
        max_depth: 4,
        max_string: 65 * 1024,
        max_array: 8,
        max_map: 32,
    };

    /// Limits for the plaintext report, opened by the hotline.
    pub const REPORT: Limits = Limits {
        max_input: 64 * 1024,
        max_depth: 8,
        max_string: 64 * 1024,
        max_array: 256,
        max_map: 64,
    };

    /// Limits for staff list answers, which carry many envelopes.
    pub const STAFF_LIST: Limits = Limits {
        max_input: 64 * 1024 * 1024,
        max_depth: 4,
        max_string: 66 * 1024,
        max_array: 1000,
        max_map: 16,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::ENVELOPE
    }
}

/// Why a message could not be decoded. Each limit has its own variant so that
/// a client (and a test) can tell which bound it hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input of {len} bytes exceeds the limit of {limit}")]
    InputTooLarge { len: usize, limit: usize },
    #[error("nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("string of {declared} bytes exceeds the limit of {limit}")]
    StringTooLong { declared: u64, limit: usize },
    #[error("array of {declared} items exceeds the limit of {limit}")]
    ArrayTooLong { declared: u64, limit: usize },
    #[error("map of {declared} entries exceeds the limit of {limit}")]
    MapTooLong { declared: u64, limit: usize },
    #[error("indefinite-length item; v1 requires definite lengths")]
    IndefiniteLength,
    #[error("input ends before the message does")]
    Truncated,
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    #[error("field {field}: expected {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("missing required field {0}")]
    MissingField(&'static str),
    #[error("field {0} appears twice")]
    DuplicateField(String),
    #[error("field {field}: {reason}")]
    InvalidValue {
        field: &'static str,
        reason: &'static str,
    },
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u64),
    #[error("unsupported HPKE suite {0:?}; v1 allows [32, 1, 3] and [32, 1, 1]")]
    UnsupportedSuite([u64; 3]),
}

impl From<minicbor::decode::Error> for DecodeError {
    fn from(e: minicbor::decode::Error) -> Self {
        if e.is_end_of_input() {
            DecodeError::Truncated
        } else {
            DecodeError::Malformed(e.to_string())
        }
    }
}

/// A decoder over a borrowed input that enforces [`Limits`].
#[derive(Debug)]
pub struct Reader<'b> {
    dec: Decoder<'b>,
    limits: Limits,
    depth: usize,
}

impl<'b> Reader<'b> {
    /// Starts a decode; refuses inputs above `limits.max_input` at once.
    pub fn new(input: &'b [u8], limits: Limits) -> Result<Self, DecodeError> {
        if input.len() > limits.max_input {
            return Err(DecodeError::InputTooLarge {
                len: input.len(),
                limit: limits.max_input,
            });
        }
        Ok(Reader {
            dec: Decoder::new(input),
            limits,
            depth: 0,
        })
    }

    /// The limits this reader enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Fails unless the whole input was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        let rest = self.dec.input().len() - self.dec.position();
        if rest == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(rest))
        }
    }

    fn remaining(&self) -> usize {
        self.dec.input().len().saturating_sub(self.dec.position())
    }

    fn datatype(&self) -> Result<Type, DecodeError> {
        Ok(self.dec.datatype()?)
    }

    /// Enters a map and returns its entry count; call [`Reader::leave`] after it.
    pub fn map(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        match self.datatype()? {
            Type::Map => {}
            Type::MapIndef => return Err(DecodeError::IndefiniteLength),
            _ => {
                return Err(DecodeError::WrongType {
                    field,
                    expected: "map",
                })
            }
        }
        self.enter()?;
        let declared = self.dec.map()?.ok_or(DecodeError::IndefiniteLength)?;
        // Each entry takes at least two bytes, so a count beyond the input is a lie.
        if declared > self.limits.max_map as u64 {
            return Err(DecodeError::MapTooLong {
                declared,
                limit: self.limits.max_map,
            });
        }
        if declared.saturating_mul(2) > self.remaining() as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(declared as usize)
    }

    /// Enters an array and returns its length; call [`Reader::leave`] after it.
    pub fn array(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        match self.datatype()? {
            Type::Array => {}
            Type::ArrayIndef => return Err(DecodeError::IndefiniteLength),
            _ => {
                return Err(DecodeError::WrongType {
                    field,
                    expected: "array",
                })
            }
        }
        self.enter()?;
        let declared = self.dec.array()?.ok_or(DecodeError::IndefiniteLength)?;
        if declared > self.limits.max_array as u64 {
            return Err(DecodeError::ArrayTooLong {
                declared,
                limit: self.limits.max_array,
            });
        }
        if declared > self.remaining() as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(declared as usize)
    }

    /// Leaves the map or array entered last.
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        if self.depth >= self.limits.max_depth {
            return Err(DecodeError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        self.depth += 1;
        Ok(())
    }

    /// Reads the length argument of a string header without consuming it and
    /// checks it against the limits, so a huge declaration never allocates.
    fn check_string_header(&self) -> Result<(), DecodeError> {
        let input = self.dec.input();
        let pos = self.dec.position();
        let initial = *input.get(pos).ok_or(DecodeError::Truncated)?;
        let info = initial & 0x1f;
        let width = match info {
            0..=23 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Err(DecodeError::IndefiniteLength),
            _ => return Err(DecodeError::Malformed("reserved length encoding".into())),
        };
        let declared = if width == 0 {
            u64::from(info)
        } else {
            let arg = input
                .get(pos + 1..pos + 1 + width)
                .ok_or(DecodeError::Truncated)?;
            arg.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        };
        if declared > self.limits.max_string as u64 {
            return Err(DecodeError::StringTooLong {
                declared,
                limit: self.limits.max_string,
            });
        }
        if declared > (self.remaining().saturating_sub(1 + width)) as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }

    /// Reads a text string borrowed from the input.
    pub fn text(&mut self, field: &'static str) -> Result<&'b str, DecodeError> {
        match self.datatype()? {
            Type::String => {}
            Type::StringIndef => return Err(DecodeError::IndefiniteLength),
            _ => {
                return Err(DecodeError::WrongType {
                    field,
                    expected: "text string",
                })
            }
        }
        self.check_string_header()?;
        Ok(self.dec.str()?)
    }

    /// Reads a byte string borrowed from the input.
    pub fn bytes(&mut self, field: &'static str) -> Result<&'b [u8], DecodeError> {
        match self.datatype()? {
            Type::Bytes => {}
            Type::BytesIndef => return Err(DecodeError::IndefiniteLength),
            _ => {
                return Err(DecodeError::WrongType {
                    field,
                    expected: "byte string",
                })
            }
        }
        self.check_string_header()?;
        Ok(self.dec.bytes()?)
    }

    /// Reads a byte string of exactly `N` bytes.
    pub fn fixed_bytes<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(field)?;
        b.try_into().map_err(|_| DecodeError::InvalidValue {
            field,
            reason: "wrong length",
        })
    }

    /// Reads an unsigned integer.
    pub fn uint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        match self.datatype()? {
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => Ok(self.dec.u64()?),
            _ => Err(DecodeError::WrongType {
                field,
                expected: "unsigned integer",
            }),
        }
    }

    /// Reads a `null`, returning true, or leaves the input alone and returns false.
    pub fn null(&mut self) -> Result<bool, DecodeError> {
        if self.datatype()? == Type::Null {
            self.dec.null()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Skips one item of any type, within the limits, and returns its raw bytes.
    /// Unknown fields are kept this way, byte for byte.
    pub fn raw_value(&mut self) -> Result<&'b [u8], DecodeError> {
        let start = self.dec.position();
        self.skip_value()?;
        let end = self.dec.position();
        self.dec
            .input()
            .get(start..end)
            .ok_or(DecodeError::Truncated)
    }

    fn skip_value(&mut self) -> Result<(), DecodeError> {
        match self.datatype()? {
            Type::Array | Type::ArrayIndef => {
                let n = self.array("value")?;
                for _ in 0..n {
                    self.skip_value()?;
                }
                self.leave();
            }
            Type::Map | Type::MapIndef => {
                let n = self.map("value")?;
                for _ in 0..n {
                    self.skip_value()?;
                    self.skip_value()?;
                }
                self.leave();
            }
            Type::String | Type::StringIndef => {
                self.text("value")?;
            }
            Type::Bytes | Type::BytesIndef => {
                self.bytes("value")?;
            }
            Type::Tag => {
                self.enter()?;
                self.dec.tag()?;
                self.skip_value()?;
                self.leave();
            }
            Type::Break => return Err(DecodeError::Malformed("unexpected break".into())),
            Type::Unknown(b) => {
                return Err(DecodeError::Malformed(format!(
                    "unknown initial byte {b:#04x}"
                )))
            }
            // Scalars: minicbor's skip handles them without recursion.
            _ => self.dec.skip()?,
        }
        Ok(())
    }

    /// Reads a map's entries as (key, value reader position) pairs, refusing
    /// duplicate keys. `visit` is called with each key and must consume its value.
    pub fn for_each_entry(
        &mut self,
        field: &'static str,
        mut visit: impl FnMut(&mut Self, &'b str) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let n = self.map(field)?;
        let mut seen: Vec<&'b str> = Vec::with_capacity(n);
        for _ in 0..n {
            let key = self.text("map key")?;
            if seen.contains(&key) {
                return Err(DecodeError::DuplicateField(key.to_owned()));
            }
            seen.push(key);
            visit(self, key)?;
        }
        self.leave();
        Ok(())
    }
}

/// A small definite-length CBOR writer; encoding cannot fail into a `Vec`.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// An empty writer that will not reallocate before `capacity` bytes: a
    /// plaintext encoded into it leaves no stray copy in freed memory.
    pub fn with_capacity(capacity: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// The encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn head(&mut self, major: u8, arg: u64) {
        let m = major << 5;
        if arg < 24 {
            self.buf.push(m | arg as u8);
        } else if arg <= u64::from(u8::MAX) {
            self.buf.extend_from_slice(&[m | 24, arg as u8]);
        } else if arg <= u64::from(u16::MAX) {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(arg as u16).to_be_bytes());
        } else if arg <= u64::from(u32::MAX) {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(arg as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&arg.to_be_bytes());
        }
    }

    /// An unsigned integer.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        self.head(0, v);
        self
    }

    /// A byte string.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.head(2, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    /// A text string.
    pub fn text(&mut self, v: &str) -> &mut Self {
        self.head(3, v.len() as u64);
        self.buf.extend_from_slice(v.as_bytes());
        self
    }

    /// An array header for `n` items.
    pub fn array(&mut self, n: usize) -> &mut Self {
        self.head(4, n as u64);
        self
    }

    /// A map header for `n` entries.
    pub fn map(&mut self, n: usize) -> &mut Self {
        self.head(5, n as u64);
        self
    }

    /// `null`.
    pub fn null(&mut self) -> &mut Self {
        self.buf.push(0xf6);
        self
    }

    /// Already-encoded CBOR, such as a kept unknown field.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
}

/// Length in bytes of a CBOR head carrying `arg`.
pub const fn head_len(arg: u64) -> usize {
    match arg {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_declared_string_fails_before_allocating() {
        // bstr with a 4-byte length of 0xffff_ffff and nothing after it.
        let input = [0x5a, 0xff, 0xff, 0xff, 0xff];
        let mut r = Reader::new(&input, Limits::ENVELOPE).unwrap();
        assert!(matches!(
            r.bytes("x"),
            Err(DecodeError::StringTooLong {
                declared: 0xffff_ffff,
                ..
            })
        ));
    }

    #[test]
    fn writer_heads_match_head_len() {
        for v in [0u64, 23, 24, 255, 256, 65535, 65536, u32::MAX as u64 + 1] {
            let mut w = Writer::new();
            w.uint(v);
            assert_eq!(w.into_bytes().len(), head_len(v));
        }
    }
}
