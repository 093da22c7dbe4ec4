//! The `format` parameter: the encoding of the returned image.
//!
//! # Example
//!
//! ```
//! use tower_iiif::request::Format;
//!
//! let f: Format = "png".parse().unwrap();
//! assert_eq!(f, Format::Png);
//! assert_eq!(f.media_type(), "image/png");
//! assert_eq!(f.to_string(), "png");
//! assert_eq!("bmp".parse::<Format>().unwrap_err().status(), 400);
//! ```

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// An output format the service can encode.
///
/// ```
/// use tower_iiif::request::Format;
///
/// let f: Format = "webp".parse().unwrap();
/// assert_eq!((f, f.media_type()), (Format::Webp, "image/webp"));
/// assert_eq!(f.to_string(), "webp");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `jpg`, `image/jpeg`.
    Jpg,
    /// `png`, `image/png`.
    Png,
    /// `gif`, `image/gif`.
    Gif,
    /// `tif`, `image/tiff`.
    Tif,
    /// `webp`, `image/webp` (lossless).
    Webp,
}

impl Format {
    /// Every format, in the order info.json lists them.
    ///
    /// ```
    /// use tower_iiif::request::Format;
    ///
    /// let extensions: Vec<&str> = Format::ALL.iter().map(|f| f.extension()).collect();
    /// assert_eq!(extensions, ["jpg", "png", "gif", "tif", "webp"]);
    /// ```
    pub const ALL: [Format; 5] = [
        Format::Jpg,
        Format::Png,
        Format::Gif,
        Format::Tif,
        Format::Webp,
    ];

    /// The extension as it appears in the URL.
    ///
    /// ```
    /// assert_eq!(tower_iiif::request::Format::Tif.extension(), "tif");
    /// ```
    pub const fn extension(self) -> &'static str {
        match self {
            Format::Jpg => "jpg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Tif => "tif",
            Format::Webp => "webp",
        }
    }

    /// The media type for `Content-Type`.
    ///
    /// ```
    /// assert_eq!(tower_iiif::request::Format::Jpg.media_type(), "image/jpeg");
    /// ```
    pub const fn media_type(self) -> &'static str {
        match self {
            Format::Jpg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::Tif => "image/tiff",
            Format::Webp => "image/webp",
        }
    }

    /// The longest side this format can encode: 65535 for JPEG and GIF, 16384 for WebP.
    ///
    /// ```
    /// assert_eq!(tower_iiif::request::Format::Webp.max_side(), 16384);
    /// ```
    pub const fn max_side(self) -> u32 {
        match self {
            Format::Jpg | Format::Gif => 65535,
            Format::Webp => 16384,
            Format::Png | Format::Tif => u32::MAX,
        }
    }

    /// Whether the format can carry transparency (used for the background of arbitrary
    /// rotations).
    ///
    /// ```
    /// assert!(!tower_iiif::request::Format::Jpg.supports_alpha());
    /// ```
    pub const fn supports_alpha(self) -> bool {
        !matches!(self, Format::Jpg)
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Format::ALL
            .into_iter()
            .find(|f| f.extension() == s)
            .ok_or_else(|| Error::bad_request(format!("format: unsupported format {s:?}")))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_extension_and_round_trips() {
        for f in Format::ALL {
            assert_eq!(f.extension().parse::<Format>().unwrap(), f);
            assert_eq!(f.to_string(), f.extension());
        }
    }

    #[test]
    fn rejects_unknown_and_case_variants() {
        for s in ["", "JPG", "jpeg", "jp2", "pdf", "tiff", "png ", "x"] {
            assert_eq!(s.parse::<Format>().unwrap_err().status(), 400, "{s:?}");
        }
    }
}
