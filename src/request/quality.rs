//! The `quality` parameter.
//!
//! # Example
//!
//! ```
//! use tower_iiif::request::Quality;
//! assert_eq!("gray".parse::<Quality>().unwrap(), Quality::Gray);
//! assert_eq!("grey".parse::<Quality>().unwrap_err().status(), 400);
//! assert_eq!(Quality::Bitonal.to_string(), "bitonal");
//! ```

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The colour quality of the returned image.
///
/// ```
/// use tower_iiif::request::Quality;
///
/// let q: Quality = "bitonal".parse().unwrap();
/// assert_eq!(q, Quality::Bitonal);
/// assert_eq!(q.to_string(), "bitonal");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quality {
    /// The image as it is.
    Default,
    /// Full colour (a gray source comes back as RGB).
    Color,
    /// Grayscale.
    Gray,
    /// Black and white only.
    Bitonal,
}

impl Quality {
    /// Every quality.
    ///
    /// ```
    /// use tower_iiif::request::Quality;
    ///
    /// let names: Vec<&str> = Quality::ALL.iter().map(|q| q.as_str()).collect();
    /// assert_eq!(names, ["default", "color", "gray", "bitonal"]);
    /// ```
    pub const ALL: [Quality; 4] = [
        Quality::Default,
        Quality::Color,
        Quality::Gray,
        Quality::Bitonal,
    ];

    /// The name as it appears in the URL.
    ///
    /// ```
    /// assert_eq!(tower_iiif::request::Quality::Color.as_str(), "color");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Quality::Default => "default",
            Quality::Color => "color",
            Quality::Gray => "gray",
            Quality::Bitonal => "bitonal",
        }
    }
}

impl FromStr for Quality {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Quality::ALL
            .into_iter()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| Error::bad_request(format!("quality: unsupported quality {s:?}")))
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        for q in Quality::ALL {
            assert_eq!(q.as_str().parse::<Quality>().unwrap(), q);
        }
        for bad in ["native", "grey", "Gray", "", "colour"] {
            assert!(bad.parse::<Quality>().is_err(), "{bad}");
        }
    }
}
