//! The `size` parameter, whose grammar differs between the versions.
//!
//! 3.0: `max`, `w,`, `,h`, `pct:n`, `w,h`, `!w,h`, each optionally prefixed with `^` to allow
//! upscaling. 2.1: `full`, `max`, `w,`, `,h`, `pct:n`, `w,h`, `!w,h`, and no `^`.
//!
//! # Example
//!
//! ```
//! use tower_iiif::request::{ApiVersion, Size, SizeKind};
//!
//! let s = Size::parse("^!200,100", ApiVersion::V3).unwrap();
//! assert!(s.upscale());
//! assert_eq!(s.kind(), SizeKind::BestFit(200, 100));
//! assert_eq!(s.to_string(), "^!200,100");
//! assert_eq!(Size::parse("full", ApiVersion::V3).unwrap_err().status(), 400);
//! assert_eq!(Size::parse("^max", ApiVersion::V2).unwrap_err().status(), 400);
//! ```

use std::fmt;

use super::{ApiVersion, number};
use crate::Error;

/// The form of a size request, without the `^`.
///
/// ```
/// use tower_iiif::request::{ApiVersion, Size, SizeKind};
///
/// assert_eq!(Size::parse("300,", ApiVersion::V3).unwrap().kind(), SizeKind::Width(300));
/// assert_eq!(Size::parse("pct:50", ApiVersion::V3).unwrap().kind(), SizeKind::Percent(50.0));
/// let best_fit = Size::parse("!200,100", ApiVersion::V2).unwrap();
/// assert_eq!(best_fit.kind(), SizeKind::BestFit(200, 100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeKind {
    /// `full` (2.1 only): the region's size.
    Full,
    /// `max`: the region's size, or the largest the limits allow.
    Max,
    /// `w,`: this width, height in proportion.
    Width(u32),
    /// `,h`: this height, width in proportion.
    Height(u32),
    /// `pct:n`: n percent of the region.
    Percent(f64),
    /// `w,h`: exactly this size.
    Exact(u32, u32),
    /// `!w,h`: the largest size in proportion that fits in w x h.
    BestFit(u32, u32),
}

/// The requested size of the returned image.
///
/// ```
/// use tower_iiif::request::{ApiVersion, Size, SizeKind};
///
/// let s = Size::parse("^,200", ApiVersion::V3).unwrap();
/// assert_eq!((s.upscale(), s.kind()), (true, SizeKind::Height(200)));
/// assert_eq!(s.to_string(), "^,200");
/// assert_eq!(Size::new(false, SizeKind::Exact(10, 20)).to_string(), "10,20");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    upscale: bool,
    kind: SizeKind,
}

impl Size {
    /// `max` (3.0) / `full` (2.1 canonical for the region's size).
    ///
    /// ```
    /// use tower_iiif::request::{ApiVersion, Size};
    ///
    /// assert_eq!(Size::parse("max", ApiVersion::V3).unwrap(), Size::MAX);
    /// assert_eq!(Size::MAX.to_string(), "max");
    /// ```
    pub const MAX: Size = Size {
        upscale: false,
        kind: SizeKind::Max,
    };

    /// Create a new [`Size`].
    ///
    /// ```
    /// use tower_iiif::request::{Size, SizeKind};
    /// assert_eq!(Size::new(true, SizeKind::Max).to_string(), "^max");
    /// ```
    pub fn new(upscale: bool, kind: SizeKind) -> Self {
        Self { upscale, kind }
    }

    /// Parse a size in the grammar of `version`.
    ///
    /// ```
    /// use tower_iiif::request::{ApiVersion, Size, SizeKind};
    /// assert_eq!(Size::parse("full", ApiVersion::V2).unwrap().kind(), SizeKind::Full);
    /// ```
    pub fn parse(s: &str, version: ApiVersion) -> Result<Self, Error> {
        Self::parse_inner(s, version).map_err(|e| e.context("size"))
    }

    fn parse_inner(s: &str, version: ApiVersion) -> Result<Self, Error> {
        let (upscale, rest) = match s.strip_prefix('^') {
            Some(rest) if version == ApiVersion::V3 => (true, rest),
            Some(_) => return Err(Error::bad_request("^ (upscaling) is not part of API 2.1")),
            None => (false, s),
        };
        let kind = match rest {
            "max" => SizeKind::Max,
            "full" if version == ApiVersion::V2 => SizeKind::Full,
            "full" => {
                return Err(Error::bad_request(
                    "\"full\" was removed in API 3.0; use max",
                ));
            }
            _ => {
                if let Some(n) = rest.strip_prefix("pct:") {
                    let n = number::decimal(n)?;
                    if n == 0.0 {
                        return Err(Error::bad_request("pct:0 selects no pixels"));
                    }
                    SizeKind::Percent(n)
                } else if let Some(wh) = rest.strip_prefix('!') {
                    let (w, h) = wh
                        .split_once(',')
                        .ok_or_else(|| Error::bad_request(format!("{s:?} is not !w,h")))?;
                    SizeKind::BestFit(positive(w)?, positive(h)?)
                } else {
                    match rest.split_once(',') {
                        Some(("", h)) => SizeKind::Height(positive(h)?),
                        Some((w, "")) => SizeKind::Width(positive(w)?),
                        Some((w, h)) => SizeKind::Exact(positive(w)?, positive(h)?),
                        None => return Err(Error::bad_request(format!("{s:?} is not a size"))),
                    }
                }
            }
        };
        Ok(Self { upscale, kind })
    }

    /// Whether `^` was given: the result may be larger than the region.
    ///
    /// ```
    /// assert!(!tower_iiif::request::Size::MAX.upscale());
    /// ```
    pub fn upscale(&self) -> bool {
        self.upscale
    }

    /// The form of the request.
    ///
    /// ```
    /// use tower_iiif::request::{Size, SizeKind};
    /// assert_eq!(Size::MAX.kind(), SizeKind::Max);
    /// ```
    pub fn kind(&self) -> SizeKind {
        self.kind
    }
}

fn positive(s: &str) -> Result<u32, Error> {
    match number::integer(s)? {
        0 => Err(Error::bad_request(
            "a width or height of 0 selects no pixels",
        )),
        n => Ok(n),
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.upscale {
            f.write_str("^")?;
        }
        match self.kind {
            SizeKind::Full => f.write_str("full"),
            SizeKind::Max => f.write_str("max"),
            SizeKind::Width(w) => write!(f, "{w},"),
            SizeKind::Height(h) => write!(f, ",{h}"),
            SizeKind::Percent(n) => write!(f, "pct:{}", number::canonical(n)),
            SizeKind::Exact(w, h) => write!(f, "{w},{h}"),
            SizeKind::BestFit(w, h) => write!(f, "!{w},{h}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApiVersion::{V2, V3};

    #[test]
    fn parses_both_grammars() {
        let table: &[(&str, ApiVersion, bool, SizeKind)] = &[
            ("max", V3, false, SizeKind::Max),
            ("^max", V3, true, SizeKind::Max),
            ("max", V2, false, SizeKind::Max),
            ("full", V2, false, SizeKind::Full),
            ("100,", V3, false, SizeKind::Width(100)),
            ("^100,", V3, true, SizeKind::Width(100)),
            (",50", V2, false, SizeKind::Height(50)),
            ("^,50", V3, true, SizeKind::Height(50)),
            ("pct:50", V3, false, SizeKind::Percent(50.0)),
            ("^pct:150.5", V3, true, SizeKind::Percent(150.5)),
            ("pct:50", V2, false, SizeKind::Percent(50.0)),
            ("10,20", V2, false, SizeKind::Exact(10, 20)),
            ("^10,20", V3, true, SizeKind::Exact(10, 20)),
            ("!10,20", V3, false, SizeKind::BestFit(10, 20)),
            ("^!10,20", V3, true, SizeKind::BestFit(10, 20)),
        ];
        for (s, v, up, kind) in table {
            let size = Size::parse(s, *v).unwrap();
            assert_eq!((size.upscale(), size.kind()), (*up, *kind), "{s} {v}");
            assert_eq!(size.to_string(), *s);
        }
    }

    #[test]
    fn refuses() {
        let table: &[(&str, ApiVersion)] = &[
            ("full", V3),
            ("^full", V3),
            ("^max", V2),
            ("^100,", V2),
            ("", V3),
            (",", V3),
            ("0,", V3),
            (",0", V3),
            ("0,0", V3),
            ("!0,10", V3),
            ("pct:0", V3),
            ("pct:", V3),
            ("pct:-5", V3),
            ("pct:1e2", V3),
            ("pct:inf", V3),
            ("1.5,", V3),
            ("+10,", V3),
            ("10,10,10", V3),
            ("!10", V3),
            ("^^max", V3),
            ("MAX", V3),
            ("!max", V3),
            ("10", V2),
        ];
        for (s, v) in table {
            assert_eq!(Size::parse(s, *v).unwrap_err().status(), 400, "{s:?} {v}");
        }
    }
}
