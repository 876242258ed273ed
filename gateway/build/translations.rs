//! Reads one web form translation file: a JSON object whose values are all
//! strings, no key twice. Used by `build.rs`, so a broken file fails the
//! build, and by the gateway's unit tests, which pin these rules.

use std::fmt;

use serde::de::{Deserializer as _, Error as _, MapAccess, Visitor};

/// The `(key, text)` pairs of a translation file, in file order.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let pairs = de.deserialize_map(Pairs).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(pairs)
}

/// Collects the object's entries, refusing a key seen before (serde_json
/// would keep the last one silently).
struct Pairs;

impl<'de> Visitor<'de> for Pairs {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, String>()? {
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(A::Error::custom(format!("duplicate key {key:?}")));
            }
            pairs.push((key, value));
        }
        Ok(pairs)
    }
}
