//! The `rotation` parameter: `n` or `!n`, n clockwise degrees from 0 to 360.
//!
//! # Example
//!
//! ```
//! use tower_iiif::request::Rotation;
//! let r: Rotation = "!90".parse().unwrap();
//! assert!(r.mirror());
//! assert_eq!(r.degrees(), 90.0);
//! assert_eq!(r.to_string(), "!90");
//! assert_eq!("22.50".parse::<Rotation>().unwrap().to_string(), "22.5");
//! assert_eq!("361".parse::<Rotation>().unwrap_err().status(), 400);
//! ```

use std::fmt;
use std::str::FromStr;

use super::number;
use crate::Error;

/// Mirroring and clockwise rotation.
///
/// ```
/// use tower_iiif::request::Rotation;
///
/// let r = Rotation::new(true, 180.0).unwrap();
/// assert_eq!(r.to_string(), "!180");
/// assert_eq!("!180".parse::<Rotation>().unwrap(), r);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation {
    mirror: bool,
    degrees: f64,
}

impl Rotation {
    /// No mirroring, no rotation.
    ///
    /// ```
    /// use tower_iiif::request::Rotation;
    ///
    /// assert_eq!("0".parse::<Rotation>().unwrap(), Rotation::NONE);
    /// assert_eq!(Rotation::NONE.to_string(), "0");
    /// ```
    pub const NONE: Rotation = Rotation {
        mirror: false,
        degrees: 0.0,
    };

    /// Create a new [`Rotation`]; `degrees` must be within 0..=360 (360 is read as 0).
    ///
    /// ```
    /// use tower_iiif::request::Rotation;
    /// assert_eq!(Rotation::new(false, 360.0).unwrap().degrees(), 0.0);
    /// assert!(Rotation::new(false, -1.0).is_err());
    /// ```
    pub fn new(mirror: bool, degrees: f64) -> Result<Self, Error> {
        if !(0.0..=360.0).contains(&degrees) {
            return Err(Error::bad_request(format!(
                "rotation: {degrees} is not between 0 and 360"
            )));
        }
        let degrees = if degrees == 360.0 { 0.0 } else { degrees };
        Ok(Self { mirror, degrees })
    }

    /// Whether the image is mirrored left-right before rotating.
    ///
    /// ```
    /// assert!(!tower_iiif::request::Rotation::NONE.mirror());
    /// ```
    pub fn mirror(self) -> bool {
        self.mirror
    }

    /// Clockwise degrees, in `0.0..360.0`.
    ///
    /// ```
    /// assert_eq!(tower_iiif::request::Rotation::NONE.degrees(), 0.0);
    /// ```
    pub fn degrees(self) -> f64 {
        self.degrees
    }

    /// Quarter turns when the angle is a multiple of 90, else `None`.
    ///
    /// ```
    /// use tower_iiif::request::Rotation;
    /// assert_eq!("270".parse::<Rotation>().unwrap().quarter_turns(), Some(3));
    /// assert_eq!("45".parse::<Rotation>().unwrap().quarter_turns(), None);
    /// ```
    pub fn quarter_turns(self) -> Option<u8> {
        (self.degrees % 90.0 == 0.0).then(|| (self.degrees / 90.0) as u8 % 4)
    }
}

impl FromStr for Rotation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let (mirror, n) = match s.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let degrees = number::decimal(n).map_err(|e| e.context("rotation"))?;
        Rotation::new(mirror, degrees)
    }
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mirror {
            f.write_str("!")?;
        }
        f.write_str(&number::canonical(self.degrees))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok = [
            ("0", false, 0.0, "0"),
            ("90", false, 90.0, "90"),
            ("!0", true, 0.0, "!0"),
            ("!180", true, 180.0, "!180"),
            ("360", false, 0.0, "0"),
            ("22.5", false, 22.5, "22.5"),
            ("0.50", false, 0.5, "0.5"),
            ("090", false, 90.0, "90"),
        ];
        for (s, m, d, canon) in ok {
            let r: Rotation = s.parse().unwrap();
            assert_eq!((r.mirror(), r.degrees()), (m, d), "{s}");
            assert_eq!(r.to_string(), canon, "{s}");
        }
        for bad in [
            "", "!", "!!90", "-90", "+90", "360.1", "1e2", "inf", "NaN", "90!", "a", " 90",
        ] {
            assert_eq!(
                bad.parse::<Rotation>().unwrap_err().status(),
                400,
                "{bad:?}"
            );
        }
    }
}
