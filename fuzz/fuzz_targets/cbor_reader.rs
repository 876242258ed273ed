//! The bounded CBOR reader under random limits, driven by a random list of
//! reads. Input layout: 6 bytes of limits, 1 byte `n`, `n % 16` operation
//! bytes, then the CBOR input (no operations: one `raw_value` walk).
//!
//! Properties: no panic; `Reader::new` refuses exactly the inputs above
//! `max_input`; no string longer than `max_string`, no array or map above
//! its limit is ever handed out; a raw value read back on its own is the
//! same single item.
#![no_main]
#![forbid(unsafe_code)]

use hotline_protocol::cbor::{Limits, Reader};
use hotline_protocol::DecodeError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<7>() else {
        return;
    };
    let limits = Limits {
        max_input: usize::from(u16::from_le_bytes([head[0], head[1]])),
        max_depth: usize::from(head[2] % 12),
        max_string: usize::from(head[3]) * 64,
        max_array: usize::from(head[4]),
        max_map: usize::from(head[5]),
    };
    let n = usize::from(head[6] % 16).min(rest.len());
    let (ops, input) = rest.split_at(n);
    let mut r = match Reader::new(input, limits) {
        Ok(r) => r,
        Err(DecodeError::InputTooLarge { len, limit }) => {
            assert!(len > limit && limit == limits.max_input && len == input.len());
            return;
        }
        Err(e) => panic!("Reader::new failed with {e:?}"),
    };
    assert!(input.len() <= limits.max_input);
    if ops.is_empty() {
        if let Ok(v) = r.raw_value() {
            check_raw(v, limits);
            let _ = r.finish();
        }
        return;
    }
    for op in ops {
        if step(&mut r, *op, limits).is_err() {
            return;
        }
    }
    let _ = r.finish();
});

fn step(r: &mut Reader<'_>, op: u8, limits: Limits) -> Result<(), DecodeError> {
    match op % 10 {
        0 => assert!(r.map("m")? <= limits.max_map),
        1 => assert!(r.array("a")? <= limits.max_array),
        2 => assert!(r.text("t")?.len() <= limits.max_string),
        3 => assert!(r.bytes("b")?.len() <= limits.max_string),
        4 => {
            r.uint("u")?;
        }
        5 => {
            r.null()?;
        }
        6 => check_raw(r.raw_value()?, limits),
        7 => r.leave(),
        8 => {
            r.fixed_bytes::<32>("f")?;
        }
        _ => r.for_each_entry("e", |r, key| {
            assert!(key.len() <= limits.max_string);
            check_raw(r.raw_value()?, limits);
            Ok(())
        })?,
    }
    Ok(())
}

/// A value `raw_value` handed out is one whole item that reads again,
/// alone, under the same limits.
fn check_raw(v: &[u8], limits: Limits) {
    assert!(!v.is_empty(), "an empty raw value");
    let mut again = Reader::new(v, limits).expect("a raw value fits max_input");
    let back = again
        .raw_value()
        .unwrap_or_else(|e| panic!("a raw value does not read again: {e}"));
    assert_eq!(back, v);
    again.finish().expect("a raw value is exactly one item");
}
