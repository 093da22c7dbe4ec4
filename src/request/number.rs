//! The strict number grammar of IIIF parameters.
//!
//! Integers are ASCII digits only; decimals are digits with at most one `.` between digits.
//! Everything `str::parse` would also accept (`inf`, `NaN`, `1e3`, `+1`, `-0`, ` 1`) is refused.

use crate::Error;

/// Longest accepted run of digits: enough for any real image, short enough to never overflow.
const MAX_DIGITS: usize = 9;

/// A non-negative integer of at most nine digits.
pub(crate) fn integer(s: &str) -> Result<u32, Error> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::bad_request(format!("{s:?} is not a whole number")));
    }
    if s.len() > MAX_DIGITS {
        return Err(Error::bad_request(format!("{s:?} is too large")));
    }
    s.parse()
        .map_err(|_| Error::bad_request(format!("{s:?} is not a whole number")))
}

/// A non-negative decimal: `digits` or `digits.digits`.
pub(crate) fn decimal(s: &str) -> Result<f64, Error> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) || int.len() > MAX_DIGITS {
        return Err(Error::bad_request(format!("{s:?} is not a number")));
    }
    s.parse()
        .map_err(|_| Error::bad_request(format!("{s:?} is not a number")))
}

/// Write a decimal in canonical form: an integer when whole, else the shortest decimal with no
/// trailing zeros (`90`, `22.5`, `0.25`).
pub(crate) fn canonical(v: f64) -> String {
    // `Display` for f64 writes the shortest decimal that reads back exactly, never an exponent.
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(integer("0").unwrap(), 0);
        assert_eq!(integer("007").unwrap(), 7);
        assert_eq!(integer("999999999").unwrap(), 999_999_999);
        for bad in [
            "",
            "+1",
            "-1",
            "1.0",
            "1e3",
            " 1",
            "1 ",
            "inf",
            "NaN",
            "0x10",
            "1000000000",
        ] {
            assert!(integer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decimals() {
        assert_eq!(decimal("12.5").unwrap(), 12.5);
        assert_eq!(decimal("0").unwrap(), 0.0);
        assert_eq!(decimal("100").unwrap(), 100.0);
        for bad in [
            "", ".5", "5.", "1.2.3", "+1", "-1", "1e3", "inf", "NaN", "infinity", "1,5", " 1",
        ] {
            assert!(decimal(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn canonical_numbers() {
        assert_eq!(canonical(90.0), "90");
        assert_eq!(canonical(22.5), "22.5");
        assert_eq!(canonical(0.25), "0.25");
        assert_eq!(canonical(0.0), "0");
        assert_eq!(canonical(0.00000000001), "0.00000000001");
        assert_eq!(canonical(22.12345678912), "22.12345678912");
    }
}
