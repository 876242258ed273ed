//! PDQ against the reference vectors in tests/vectors/pdq (C++ reference output; see its
//! README.md for provenance),
//! plus error paths: corrupt input, size limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use hotline_client::pdq::{
    file_digests, hash_image_bytes, hash_image_bytes_with_limits, pdq_from_image, HashLimits,
    ImageHashError, PdqHash,
};

const VECTORS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/pdq");

/// Hamming tolerance for images the reference rates quality >= 80 (its own correctness bar).
const MAX_DISTANCE_GOOD: u32 = 10;
/// Looser tolerance for low-quality (near-flat) images, where decoders' rounding dominates.
const MAX_DISTANCE_LOW_QUALITY: u32 = 32;
/// Allowed quality-score difference from the reference.
const MAX_QUALITY_DELTA: i32 = 2;

fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(VECTORS_DIR).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn expected() -> Vec<(String, PdqHash)> {
    let tsv = String::from_utf8(vector("expected.tsv")).unwrap();
    tsv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "bad row {line:?}");
            let quality: u8 = fields[2].parse().unwrap();
            (
                fields[0].to_string(),
                PdqHash::from_hex(fields[1], quality).unwrap(),
            )
        })
        .collect()
}

#[test]
fn matches_reference_vectors() {
    let rows = expected();
    assert_eq!(rows.len(), 12);
    let mut failures = Vec::new();
    for (file, want) in &rows {
        let got = hash_image_bytes(&vector(file)).unwrap().pdq;
        let distance = got.hamming_distance(want);
        let quality_delta = i32::from(got.quality) - i32::from(want.quality);
        eprintln!(
            "{file}: distance {distance}, quality {} (reference {})",
            got.quality, want.quality
        );
        let limit = if want.quality >= 80 {
            MAX_DISTANCE_GOOD
        } else {
            MAX_DISTANCE_LOW_QUALITY
        };
        if distance > limit || quality_delta.abs() > MAX_QUALITY_DELTA {
            failures.push(format!(
                "{file}: got {} q{}, want {} q{}",
                got.to_hex(),
                got.quality,
                want.to_hex(),
                want.quality
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn rotated_and_flipped_bridge_are_far_from_original() {
    // The reference's own hashes for these files are 120 and 124 bits apart from the original.
    let original = hash_image_bytes(&vector("bridge-1-original.jpg"))
        .unwrap()
        .pdq;
    for file in ["bridge-2-rotate-90.jpg", "bridge-5-flipx.jpg"] {
        let other = hash_image_bytes(&vector(file)).unwrap().pdq;
        let distance = original.hamming_distance(&other);
        eprintln!("bridge-1-original vs {file}: distance {distance}");
        assert!(distance > 31, "{file} only {distance} bits from original");
    }
}

#[test]
fn hex_round_trips_and_distance_counts_bits() {
    let hex = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let hash = PdqHash::from_hex(hex, 100).unwrap();
    assert_eq!(hash.to_hex(), hex);
    let mut flipped = hash;
    flipped.bits[0] ^= 0b1000_0001;
    flipped.bits[31] ^= 0b0000_0100;
    assert_eq!(hash.hamming_distance(&flipped), 3);
    assert!(PdqHash::from_hex("zz", 0).is_none());
    assert!(PdqHash::from_hex(&"g".repeat(64), 0).is_none());
    assert!(PdqHash::from_hex(&"é".repeat(32), 0).is_none());
}

#[test]
fn digests_match_known_values() {
    let d = file_digests(b"abc");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(hex(&d.md5), "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        hex(&d.sha256),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let bytes = vector("q0122.jpg");
    let all = hash_image_bytes(&bytes).unwrap();
    assert_eq!(
        (all.sha256, all.md5),
        (file_digests(&bytes).sha256, file_digests(&bytes).md5)
    );
}

#[test]
fn corrupt_input_is_an_error_not_a_panic() {
    // A JPEG start-of-image marker followed by garbage.
    let mut corrupt = vec![0xFF, 0xD8, 0xFF, 0xE0];
    corrupt.extend((0u8..=255).cycle().take(4096));
    assert!(matches!(
        hash_image_bytes(&corrupt),
        Err(ImageHashError::Undecodable(_))
    ));
    assert!(matches!(
        hash_image_bytes(b""),
        Err(ImageHashError::Undecodable(_))
    ));
    assert!(matches!(
        hash_image_bytes(b"not an image"),
        Err(ImageHashError::Undecodable(_))
    ));
    // Truncations and bit flips of a real JPEG: any result is fine, a panic is not.
    let good = vector("bridge-1-original.jpg");
    for cut in [2, 20, 200, 2_000, 20_000, good.len() / 2, good.len() - 1] {
        let _ = hash_image_bytes(&good[..cut]);
    }
    for (i, step) in [(0usize, 97usize), (5, 1031), (11, 7919)] {
        let mut damaged = good.clone();
        damaged
            .iter_mut()
            .skip(i)
            .step_by(step)
            .for_each(|b| *b ^= 0x5A);
        let _ = hash_image_bytes(&damaged);
    }
}

/// Offset of the JPEG start-of-frame marker, found by walking the header segments.
fn start_of_frame(jpeg: &[u8]) -> usize {
    let mut at = 2; // after SOI
    loop {
        let marker = jpeg[at + 1];
        if matches!(marker, 0xC0..=0xC3) {
            return at;
        }
        at += 2 + usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
    }
}

#[test]
fn limits_refuse_before_decoding() {
    let bytes = vector("bridge-1-original.jpg"); // 1600x1004
    let small_pixels = HashLimits {
        max_pixels: 1_000_000,
        ..HashLimits::default()
    };
    let err = hash_image_bytes_with_limits(&bytes, &small_pixels).unwrap_err();
    assert!(
        matches!(
            err,
            ImageHashError::TooManyPixels {
                width: 1600,
                height: 1004,
                ..
            }
        ),
        "{err}"
    );
    let small_file = HashLimits {
        max_file_bytes: 1024,
        ..HashLimits::default()
    };
    let err = hash_image_bytes_with_limits(&bytes, &small_file).unwrap_err();
    assert!(matches!(err, ImageHashError::FileTooLarge { .. }), "{err}");
    // A header claiming 65535x65535 is refused without allocating for it.
    let mut huge = vector("wee.jpg");
    let sof = start_of_frame(&huge);
    huge[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let err = hash_image_bytes(&huge).unwrap_err();
    assert!(
        matches!(
            err,
            ImageHashError::TooManyPixels {
                width: 65535,
                height: 65535,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn tiny_and_flat_images_get_quality_zero() {
    let tiny = image::DynamicImage::new_rgb8(4, 100);
    assert_eq!(
        pdq_from_image(&tiny),
        PdqHash {
            bits: [0; 32],
            quality: 0
        }
    );
    let flat =
        image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(300, 200, image::Luma([128])));
    assert_eq!(pdq_from_image(&flat).quality, 0);
}
