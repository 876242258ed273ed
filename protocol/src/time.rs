//! Time as the protocol writes it: unix seconds, whole UTC days, and the
//! civil dates (`YYYY-MM-DD`) people type and read.
//!
//! One clock ([`unix_now`]) and one calendar for every crate, so a day
//! number the gateway writes is the date the CLI prints and the date the web
//! form parses. Reading the clock is not I/O; nothing here touches a file or
//! the network.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in a UTC day (the protocol has no leap seconds).
pub const DAY: u64 = 86_400;
/// Seconds in an hour: the resolution of `received_at`.
pub const HOUR: u64 = 3_600;

/// Seconds since the Unix epoch; 0 if the clock is set before 1970, so a
/// broken clock makes documents look expired rather than panicking.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The UTC day (days since 1970-01-01) of a unix time.
pub fn day_of(unix: u64) -> u64 {
    unix / DAY
}

/// Days since 1970-01-01 of a civil date written exactly `YYYY-MM-DD`, if it
/// is a real date (no 02-30) from 1970 on. Nothing else is accepted: no
/// signs, spaces or short fields, so the web form, its script and the CLI
/// agree on every input.
pub fn parse_civil_date(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if y < 1970 || d == 0 || d > month_days(y, m)? {
        return None;
    }
    u64::try_from(days_from_civil(i64::from(y), i64::from(m), i64::from(d))).ok()
}

/// The `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub fn civil_date(days: u64) -> String {
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX / 2));
    format!("{y:04}-{m:02}-{d:02}")
}

fn month_days(y: u32, m: u32) -> Option<u32> {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if leap => Some(29),
        2 => Some(28),
        _ => None,
    }
}

/// Howard Hinnant's `days_from_civil` (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(parse_civil_date("1970-01-01"), Some(0));
        assert_eq!(parse_civil_date("2000-03-01"), Some(11_017));
        assert_eq!(civil_date(11_017), "2000-03-01");
        assert_eq!(
            parse_civil_date("2024-02-29").map(civil_date).as_deref(),
            Some("2024-02-29")
        );
        for d in (0..80_000).step_by(37) {
            assert_eq!(parse_civil_date(&civil_date(d)), Some(d));
        }
    }

    #[test]
    fn only_real_dates_in_the_one_form_parse() {
        for bad in [
            "",
            "2023-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-04-31",
            "1969-12-31",
            "23-01-01",
            "2023-1-01",
            "2023/01/01",
            "+202-01-01",
            "2023-+1-01",
            " 2023-01-01",
            "２０２３-01-01",
            "2023-01-00",
            "2024-13-01",
            "2024-1-01",
            "x",
            "2024-01-00",
        ] {
            assert_eq!(parse_civil_date(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_civil_date("2100-02-28").map(civil_date).as_deref(),
            Some("2100-02-28")
        );
        assert_eq!(parse_civil_date("2100-02-29"), None);
    }

    #[test]
    fn the_clock_is_after_2020() {
        assert!(unix_now() > 1_577_836_800);
        assert_eq!(day_of(DAY * 3 + 5), 3);
    }
}
