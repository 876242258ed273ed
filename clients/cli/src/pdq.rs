//! On-device image hashing: PDQ perceptual hash plus MD5 and SHA-256 of the file bytes.
//!
//! The reporter's image never leaves the device; only these hashes are sent. PDQ follows
//! Meta's reference (facebook/ThreatExchange `pdq/cpp`): RGB -> luma, two-pass Jarosz
//! (tent) blur, decimation to 64x64, 16x16 DCT, median threshold. Hex output uses the
//! reference's text layout, so hashes compare directly with hash lists from other tools.
//! Like the reference, EXIF orientation is not applied: the pixels are hashed as stored.

use std::borrow::Cow;
use std::io::Cursor;

use image::{DynamicImage, ImageError, ImageReader, Limits};
use md5::{Digest, Md5};

/// Luma weights (ITU-R BT.601), as in the reference's `fillFloatLumaFromRGB`.
const LUMA_FROM_R: f32 = 0.299;
const LUMA_FROM_G: f32 = 0.587;
const LUMA_FROM_B: f32 = 0.114;
/// Images with a side shorter than this hash to all zeros with quality 0 (reference rule).
const MIN_HASHABLE_DIM: usize = 5;
/// Side of the decimated luma image the DCT runs on.
const DOWNSAMPLE_DIM: usize = 64;
/// Side of the kept block of low DCT frequencies: 16x16 = 256 hash bits.
const DCT_DIM: usize = 16;
/// X,Y box-filter pass pairs; two pairs make the Jarosz tent filter.
const NUM_JAROSZ_XY_PASSES: usize = 2;
/// Box window = ceil(dimension / (2 * 64)): two passes together cover one output cell.
const JAROSZ_WINDOW_DIVISOR: usize = 2 * DOWNSAMPLE_DIM;
/// Quality heuristic: gradients are scaled to percent of full range, summed, divided by this.
const QUALITY_GRADIENT_DIVISOR: i32 = 90;
/// Highest quality score.
const MAX_QUALITY: i32 = 100;

/// Default refusal threshold on input file size, checked before any decoding.
pub const DEFAULT_MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// Default refusal threshold on width x height, checked from the header before decoding.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;
/// Decoder allocation budget per pixel (RGBA, 16 bits per channel is the widest we decode).
const MAX_DECODED_BYTES_PER_PIXEL: u64 = 8;

/// A 256-bit PDQ hash with its quality score; near-duplicate images have close hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PdqHash {
    /// Hash bits, most significant first: byte 0 is the first two hex digits of `to_hex`.
    pub bits: [u8; 32],
    /// 0..=100; the reference suggests not trusting matches on hashes with quality < 50.
    pub quality: u8,
}

impl PdqHash {
    /// 64 lowercase hex digits, the same text the reference tools print and ingest.
    pub fn to_hex(&self) -> String {
        self.bits.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the 64-hex-digit form (e.g. from a hash list); `None` if malformed.
    pub fn from_hex(hex: &str, quality: u8) -> Option<Self> {
        let digits = hex.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let mut bits = [0u8; 32];
        for (byte, pair) in bits.iter_mut().zip(digits.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(text, 16).ok()?;
        }
        Some(Self { bits, quality })
    }

    /// Number of differing bits (0..=256); the reference treats <= 31 as a likely match.
    pub fn hamming_distance(&self, other: &PdqHash) -> u32 {
        self.bits
            .iter()
            .zip(&other.bits)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }
}

/// Everything the client reports about one image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHashes {
    /// SHA-256 of the file bytes, for exact matching.
    pub sha256: [u8; 32],
    /// MD5 of the file bytes, because many existing hash lists only carry MD5.
    pub md5: [u8; 16],
    /// PDQ of the decoded pixels, for matching re-encoded or resized copies.
    pub pdq: PdqHash,
}

/// Cryptographic digests alone, for files that cannot (or need not) be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigests {
    /// SHA-256 of the file bytes.
    pub sha256: [u8; 32],
    /// MD5 of the file bytes.
    pub md5: [u8; 16],
}

/// Bounds on untrusted input, so a hostile file cannot exhaust memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// Files longer than this are refused before decoding.
    pub max_file_bytes: usize,
    /// Images with more pixels than this (from the header) are refused before decoding.
    pub max_pixels: u64,
}

impl Default for HashLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// Why an image could not be hashed; the file digests are still available via [`file_digests`].
#[derive(Debug, thiserror::Error)]
pub enum ImageHashError {
    /// The file is over [`HashLimits::max_file_bytes`].
    #[error("file is {size} bytes, over the {limit}-byte limit")]
    FileTooLarge {
        /// Actual file size.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// The header announces more pixels than [`HashLimits::max_pixels`].
    #[error("image is {width}x{height}, over the {limit}-pixel limit")]
    TooManyPixels {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// Configured limit.
        limit: u64,
    },
    /// The decoder hit its memory or dimension limits.
    #[error("image exceeds decoder limits: {0}")]
    DecoderLimit(ImageError),
    /// Unknown format, corrupt or truncated data.
    #[error("image could not be decoded: {0}")]
    Undecodable(ImageError),
}

impl From<ImageError> for ImageHashError {
    fn from(err: ImageError) -> Self {
        match err {
            ImageError::Limits(_) => Self::DecoderLimit(err),
            other => Self::Undecodable(other),
        }
    }
}

/// SHA-256 and MD5 of raw bytes; never fails, so even undecodable files can be reported.
pub fn file_digests(bytes: &[u8]) -> FileDigests {
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    FileDigests {
        sha256,
        md5: Md5::digest(bytes).into(),
    }
}

/// Decodes and hashes an image file with [`HashLimits::default`].
pub fn hash_image_bytes(bytes: &[u8]) -> Result<ImageHashes, ImageHashError> {
    hash_image_bytes_with_limits(bytes, &HashLimits::default())
}

/// Decodes and hashes an image file, refusing inputs over `limits` before decoding them.
pub fn hash_image_bytes_with_limits(
    bytes: &[u8],
    limits: &HashLimits,
) -> Result<ImageHashes, ImageHashError> {
    if bytes.len() > limits.max_file_bytes {
        return Err(ImageHashError::FileTooLarge {
            size: bytes.len(),
            limit: limits.max_file_bytes,
        });
    }
    let mut decoder_limits = Limits::default();
    decoder_limits.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(MAX_DECODED_BYTES_PER_PIXEL),
    );
    let reader = || -> Result<_, ImageHashError> {
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ImageHashError::Undecodable(ImageError::IoError(e)))?;
        reader.limits(decoder_limits.clone());
        Ok(reader)
    };
    let (width, height) = reader()?.into_dimensions()?;
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageHashError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    let img = reader()?.decode()?;
    let pdq = pdq_from_image(&img);
    drop(img);
    let FileDigests { sha256, md5 } = file_digests(bytes);
    Ok(ImageHashes { sha256, md5, pdq })
}

/// PDQ hash of decoded pixels (alpha ignored, greyscale used as luma, as the reference does).
pub fn pdq_from_image(img: &DynamicImage) -> PdqHash {
    let (cols, rows) = (img.width() as usize, img.height() as usize);
    if rows < MIN_HASHABLE_DIM || cols < MIN_HASHABLE_DIM {
        return PdqHash {
            bits: [0; 32],
            quality: 0,
        };
    }
    let mut luma = luma_from_image(img);
    jarosz_filter(&mut luma, rows, cols);
    let block = decimate(&luma, rows, cols);
    drop(luma);
    let quality = quality_metric(&block);
    let bits = bits_from_dct(&dct_64_to_16(&block));
    PdqHash { bits, quality }
}

/// Row-major float luma, computed in f32 in the reference's order of operations.
fn luma_from_image(img: &DynamicImage) -> Vec<f32> {
    if !img.color().has_color() {
        let grey = match img.as_luma8() {
            Some(g) => Cow::Borrowed(g),
            None => Cow::Owned(img.to_luma8()),
        };
        return grey.as_raw().iter().map(|&v| f32::from(v)).collect();
    }
    let rgb = match img.as_rgb8() {
        Some(rgb) => Cow::Borrowed(rgb),
        None => Cow::Owned(img.to_rgb8()),
    };
    let weigh = |p: &[u8]| match p {
        [r, g, b] => {
            LUMA_FROM_R * f32::from(*r) + LUMA_FROM_G * f32::from(*g) + LUMA_FROM_B * f32::from(*b)
        }
        _ => 0.0,
    };
    rgb.as_raw().chunks_exact(3).map(weigh).collect()
}

/// Jarosz tent filter: X then Y box passes, repeated; window sizes round up like the reference.
fn jarosz_filter(buf: &mut [f32], rows: usize, cols: usize) {
    let window_along_rows = cols.div_ceil(JAROSZ_WINDOW_DIVISOR);
    let window_along_cols = rows.div_ceil(JAROSZ_WINDOW_DIVISOR);
    let mut scratch_in = vec![0f32; rows.max(cols)];
    let mut scratch_out = vec![0f32; rows];
    for _ in 0..NUM_JAROSZ_XY_PASSES {
        for row in buf.chunks_exact_mut(cols) {
            scratch_in[..cols].copy_from_slice(row);
            box_1d(&scratch_in[..cols], row, window_along_rows);
        }
        for j in 0..cols {
            let column = buf.iter().skip(j).step_by(cols);
            scratch_in.iter_mut().zip(column).for_each(|(s, v)| *s = *v);
            box_1d(&scratch_in[..rows], &mut scratch_out, window_along_cols);
            let column = buf.iter_mut().skip(j).step_by(cols);
            column.zip(&scratch_out).for_each(|(v, s)| *v = *s);
        }
    }
}

/// Running-mean box filter; output `o` averages input `[o - (w - h), o + h - 1]` clipped to
/// the vector, where `h = (w + 2) / 2`. Adds before subtracts, as the reference does, so the
/// float rounding matches it.
fn box_1d(input: &[f32], output: &mut [f32], window: usize) {
    let half = (window + 2) / 2;
    let lag = window + 1 - half; // distance from `o` to the element that leaves the window
    let (mut sum, mut count) = (0f32, 0usize);
    for &v in input.iter().take(half - 1) {
        sum += v;
        count += 1;
    }
    for (o, out) in output.iter_mut().enumerate().take(input.len()) {
        if let Some(&v) = input.get(o + half - 1) {
            sum += v;
            count += 1;
        }
        if let Some(&v) = o.checked_sub(lag).and_then(|l| input.get(l)) {
            sum -= v;
            count -= 1;
        }
        *out = sum / count as f32;
    }
}

/// Samples the blurred image at the centres of a 64x64 grid.
fn decimate(buf: &[f32], rows: usize, cols: usize) -> [[f32; DOWNSAMPLE_DIM]; DOWNSAMPLE_DIM] {
    let centre =
        |k: usize, len: usize| ((k as f64 + 0.5) * len as f64 / DOWNSAMPLE_DIM as f64) as usize;
    let mut out = [[0f32; DOWNSAMPLE_DIM]; DOWNSAMPLE_DIM];
    for (i, out_row) in out.iter_mut().enumerate() {
        let row_start = centre(i, rows) * cols;
        for (j, cell) in out_row.iter_mut().enumerate() {
            *cell = buf.get(row_start + centre(j, cols)).copied().unwrap_or(0.0);
        }
    }
    out
}

/// Heuristic 0..=100 score from the sum of quantised neighbour gradients (flat images score low).
fn quality_metric(block: &[[f32; DOWNSAMPLE_DIM]; DOWNSAMPLE_DIM]) -> u8 {
    let step = |u: f32, v: f32| (((u - v) * 100.0 / 255.0) as i32).abs();
    let mut gradient_sum = 0i32;
    for pair in block.windows(2) {
        gradient_sum += pair[0]
            .iter()
            .zip(&pair[1])
            .map(|(&u, &v)| step(u, v))
            .sum::<i32>();
    }
    for row in block {
        gradient_sum += row.windows(2).map(|p| step(p[0], p[1])).sum::<i32>();
    }
    let quality = (gradient_sum / QUALITY_GRADIENT_DIVISOR).min(MAX_QUALITY);
    u8::try_from(quality).unwrap_or(0)
}

/// Rows 1..=16 of the 64-point DCT-II basis, scaled by sqrt(2/64), stored as f32.
fn dct_matrix() -> [[f32; DOWNSAMPLE_DIM]; DCT_DIM] {
    let n = DOWNSAMPLE_DIM as f64;
    let scale = f64::from((2.0 / n).sqrt() as f32);
    let mut d = [[0f32; DOWNSAMPLE_DIM]; DCT_DIM];
    for (i, row) in d.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            let angle = (std::f64::consts::PI / 2.0 / n) * (i + 1) as f64 * (2 * j + 1) as f64;
            *cell = (scale * angle.cos()) as f32;
        }
    }
    d
}

/// B = D A D^T: the 16x16 lowest non-DC frequencies of the 64x64 block.
fn dct_64_to_16(a: &[[f32; DOWNSAMPLE_DIM]; DOWNSAMPLE_DIM]) -> [[f32; DCT_DIM]; DCT_DIM] {
    let d = dct_matrix();
    let mut t = [[0f32; DOWNSAMPLE_DIM]; DCT_DIM];
    for (t_row, d_row) in t.iter_mut().zip(&d) {
        for (j, cell) in t_row.iter_mut().enumerate() {
            *cell = d_row
                .iter()
                .zip(a)
                .fold(0.0, |acc, (&dk, a_row)| acc + dk * a_row[j]);
        }
    }
    let mut b = [[0f32; DCT_DIM]; DCT_DIM];
    for (b_row, t_row) in b.iter_mut().zip(&t) {
        for (cell, d_row) in b_row.iter_mut().zip(&d) {
            *cell = t_row
                .iter()
                .zip(d_row)
                .fold(0.0, |acc, (&tk, &dk)| acc + tk * dk);
        }
    }
    b
}

/// Bit `16 * i + j` is set when coefficient (i, j) exceeds the median (the lower middle
/// value, as Torben's method in the reference returns). Bit k is worth 2^k in the 256-bit
/// number whose big-endian hex the reference prints, so it lands in byte `31 - k / 8`.
fn bits_from_dct(b: &[[f32; DCT_DIM]; DCT_DIM]) -> [u8; 32] {
    let mut sorted: Vec<f32> = b.iter().flatten().copied().collect();
    sorted.sort_unstable_by(f32::total_cmp);
    let lower_middle = sorted.len().div_ceil(2).saturating_sub(1);
    let median = sorted.get(lower_middle).copied().unwrap_or(0.0);
    let mut bits = [0u8; 32];
    for (k, &v) in b.iter().flatten().enumerate() {
        if v > median {
            bits[31 - k / 8] |= 1 << (k % 8);
        }
    }
    bits
}
