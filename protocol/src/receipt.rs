//! Receipt codes a frightened person can read aloud on a phone and copy
//! without error: sixteen digits in groups of four, the last one a Damm check
//! digit, which catches every single-digit error and every swap of two
//! neighbouring digits.

use core::fmt;
use core::str::FromStr;

use ring::rand::SecureRandom;

/// Number of digits, check digit included (15 random digits: about 50 bits).
pub const RECEIPT_DIGITS: usize = 16;

/// A receipt code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiptCode([u8; RECEIPT_DIGITS]);

/// Why a typed receipt code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("a receipt code has 16 digits")]
    Length,
    #[error("a receipt code has only digits, spaces and dashes")]
    Character,
    #[error("the code has a typing error (check digit)")]
    CheckDigit,
    #[error("the system random number generator failed")]
    Random,
}

/// The Damm algorithm's quasigroup of order 10 (Damm 2004).
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

fn damm(digits: &[u8]) -> u8 {
    digits.iter().fold(0u8, |interim, &d| {
        DAMM[usize::from(interim)][usize::from(d)]
    })
}

impl ReceiptCode {
    /// Draws a new code.
    pub fn generate(rng: &dyn SecureRandom) -> Result<ReceiptCode, ReceiptError> {
        let mut digits = [0u8; RECEIPT_DIGITS];
        let mut i = 0;
        while i < RECEIPT_DIGITS - 1 {
            let mut b = [0u8; 16];
            rng.fill(&mut b).map_err(|_| ReceiptError::Random)?;
            // Rejection sampling keeps every digit uniform.
            for byte in b.into_iter().filter(|&b| b < 250) {
                if i < RECEIPT_DIGITS - 1 {
                    digits[i] = byte % 10;
                    i += 1;
                }
            }
        }
        digits[RECEIPT_DIGITS - 1] = damm(&digits[..RECEIPT_DIGITS - 1]);
        Ok(ReceiptCode(digits))
    }

    /// The code as 16 plain digits, the form used as a lookup key.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

impl FromStr for ReceiptCode {
    type Err = ReceiptError;

    /// Accepts the code as people type it: with or without spaces and dashes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut digits = [0u8; RECEIPT_DIGITS];
        let mut n = 0;
        for c in s.chars() {
            match c {
                '0'..='9' => {
                    *digits.get_mut(n).ok_or(ReceiptError::Length)? = c as u8 - b'0';
                    n += 1;
                }
                ' ' | '-' => {}
                _ => return Err(ReceiptError::Character),
            }
        }
        if n != RECEIPT_DIGITS {
            return Err(ReceiptError::Length);
        }
        if damm(&digits) != 0 {
            return Err(ReceiptError::CheckDigit);
        }
        Ok(ReceiptCode(digits))
    }
}

impl fmt::Display for ReceiptCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        write!(f, "{}-{}-{}-{}", &d[0..4], &d[4..8], &d[8..12], &d[12..16])
    }
}

impl fmt::Debug for ReceiptCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiptCode({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damm_reference_example() {
        // Wikipedia's worked example: 572 has check digit 4.
        assert_eq!(damm(&[5, 7, 2]), 4);
        assert_eq!(damm(&[5, 7, 2, 4]), 0);
    }

    #[test]
    fn every_single_digit_error_and_adjacent_swap_is_caught() {
        let rng = ring::rand::SystemRandom::new();
        let code = ReceiptCode::generate(&rng).unwrap();
        let text = code.digits();
        assert_eq!(text.parse::<ReceiptCode>().unwrap(), code);
        assert_eq!(code.to_string().parse::<ReceiptCode>().unwrap(), code);
        let digits: Vec<u8> = text.bytes().map(|b| b - b'0').collect();
        for i in 0..RECEIPT_DIGITS {
            for d in 0..10u8 {
                if d != digits[i] {
                    let mut typo = digits.clone();
                    typo[i] = d;
                    assert_ne!(damm(&typo), 0, "typo at {i} undetected");
                }
            }
            if i + 1 < RECEIPT_DIGITS && digits[i] != digits[i + 1] {
                let mut swap = digits.clone();
                swap.swap(i, i + 1);
                assert_ne!(damm(&swap), 0, "swap at {i} undetected");
            }
        }
    }

    #[test]
    fn typed_codes_are_checked() {
        assert_eq!("12".parse::<ReceiptCode>(), Err(ReceiptError::Length));
        assert_eq!(
            "1234-5678-9012-345x".parse::<ReceiptCode>(),
            Err(ReceiptError::Character)
        );
    }
}
