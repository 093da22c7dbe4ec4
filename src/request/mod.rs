//! Parsing request paths: pure functions, no I/O.
//!
//! A path relative to the service's mount point is one of three things: the base URI of an image
//! (`{id}`, answered with a 303 to its info.json), its image information (`{id}/info.json`), or an
//! image request (`{id}/{region}/{size}/{rotation}/{quality}.{format}`). Anything else is a 404;
//! a path of the right shape with a bad parameter is a 400.
//!
//! Each parameter type's `Display` writes its canonical form.
//!
//! # Example
//!
//! ```
//! use tower_iiif::request::{ApiVersion, IiifRequest, IdentifierOptions, Quality};
//!
//! let opts = IdentifierOptions::default();
//! let req = IiifRequest::parse("/abc/full/max/0/default.jpg", ApiVersion::V3, &opts).unwrap();
//! let IiifRequest::Image(img) = req else { panic!() };
//! assert_eq!(img.identifier.as_str(), "abc");
//! assert_eq!(img.quality, Quality::Default);
//! assert_eq!(img.to_string(), "abc/full/max/0/default.jpg");
//!
//! let err = IiifRequest::parse("/a/b/info.json", ApiVersion::V3, &opts).unwrap_err();
//! assert_eq!(err.status(), 404);
//! ```

mod format;
mod identifier;
mod number;
mod quality;
mod region;
mod rotation;
mod size;
mod version;

use std::fmt;

pub use format::Format;
pub use identifier::{Identifier, IdentifierOptions};
pub use quality::Quality;
pub use region::Region;
pub use rotation::Rotation;
pub use size::{Size, SizeKind};
pub use version::ApiVersion;

use crate::Error;

/// An image request: the five parameters and the identifier.
///
/// ```
/// use tower_iiif::request::{ApiVersion, IiifRequest, IdentifierOptions, Region, Rotation};
///
/// let opts = IdentifierOptions::default();
/// let req = IiifRequest::parse("/a%2Fb/square/max/090/gray.png", ApiVersion::V3, &opts).unwrap();
/// let IiifRequest::Image(img) = req else { panic!("an image request") };
/// assert_eq!((img.identifier.as_str(), img.region), ("a/b", Region::Square));
/// assert_eq!(img.rotation, "90".parse::<Rotation>().unwrap());
/// assert_eq!(img.to_string(), "a%2Fb/square/max/90/gray.png"); // canonical spelling
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    /// The image.
    pub identifier: Identifier,
    /// Which part of it.
    pub region: Region,
    /// Scaled to what size.
    pub size: Size,
    /// Mirrored and rotated how.
    pub rotation: Rotation,
    /// In which colours.
    pub quality: Quality,
    /// Encoded how.
    pub format: Format,
}

impl fmt::Display for ImageRequest {
    /// The path as requested, parameters in canonical spelling, identifier percent-encoded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}/{}.{}",
            self.identifier.encoded(),
            self.region,
            self.size,
            self.rotation,
            self.quality,
            self.format
        )
    }
}

/// A parsed IIIF request path.
///
/// This is the "parsed request" extension of the design: the first IIIF-aware layer that parses
/// the path inserts it into the request's extensions, and the others and `IiifService` reuse it.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq)]
pub enum IiifRequest {
    /// `{id}`: redirect to the image information.
    Base(Identifier),
    /// `{id}/info.json`.
    Info(Identifier),
    /// `{id}/{region}/{size}/{rotation}/{quality}.{format}`.
    Image(ImageRequest),
}

impl IiifRequest {
    /// Parse a path relative to the mount point (a leading `/` is optional).
    ///
    /// ```
    /// use tower_iiif::request::{ApiVersion, IiifRequest, IdentifierOptions};
    /// let opts = IdentifierOptions::default();
    /// assert!(matches!(
    ///     IiifRequest::parse("a%2Fb/info.json", ApiVersion::V2, &opts),
    ///     Ok(IiifRequest::Info(id)) if id.as_str() == "a/b"
    /// ));
    /// ```
    pub fn parse(path: &str, version: ApiVersion, opts: &IdentifierOptions) -> Result<Self, Error> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            // `{prefix}//info.json` reaches a service under a router that merges slashes (axum's
            // `nest_service`) as `/info.json`: no identifier, not the base URI of an image
            // named `info.json` (a redirect to `info.json/info.json`).
            ["info.json"] => Err(Error::bad_request(
                "identifier: empty (nothing before info.json)",
            )),
            [id] | [id, ""] if !id.is_empty() => Ok(Self::Base(Identifier::decode(id, opts)?)),
            [id, "info.json"] => Ok(Self::Info(Identifier::decode(id, opts)?)),
            [id, region, size, rotation, last] => {
                let identifier = Identifier::decode(id, opts)?;
                let (quality, format) = last
                    .rsplit_once('.')
                    .ok_or_else(|| Error::bad_request(format!("{last:?} is not quality.format")))?;
                Ok(Self::Image(ImageRequest {
                    identifier,
                    region: region.parse()?,
                    size: Size::parse(size, version)?,
                    rotation: rotation.parse()?,
                    quality: quality.parse()?,
                    format: format.parse()?,
                }))
            }
            _ => Err(Error::not_found("not an IIIF Image API path")),
        }
    }

    /// The identifier the request is about.
    ///
    /// ```
    /// use tower_iiif::request::{ApiVersion, IiifRequest, IdentifierOptions};
    /// let r = IiifRequest::parse("x", ApiVersion::V3, &IdentifierOptions::default()).unwrap();
    /// assert_eq!(r.identifier().as_str(), "x");
    /// ```
    pub fn identifier(&self) -> &Identifier {
        match self {
            Self::Base(id) | Self::Info(id) => id,
            Self::Image(img) => &img.identifier,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str, v: ApiVersion) -> Result<IiifRequest, Error> {
        IiifRequest::parse(path, v, &IdentifierOptions::default())
    }

    #[test]
    fn shapes() {
        let v = ApiVersion::V3;
        assert!(matches!(parse("/id", v), Ok(IiifRequest::Base(_))));
        assert!(matches!(parse("/id/", v), Ok(IiifRequest::Base(_))));
        assert!(matches!(
            parse("/id/info.json", v),
            Ok(IiifRequest::Info(_))
        ));
        assert!(matches!(
            parse("id/full/max/0/default.jpg", v),
            Ok(IiifRequest::Image(_))
        ));
    }

    #[test]
    fn statuses() {
        let table: &[(&str, ApiVersion, u16)] = &[
            ("/", ApiVersion::V3, 404),
            ("", ApiVersion::V3, 404),
            ("/info.json", ApiVersion::V3, 400),
            ("//info.json", ApiVersion::V3, 400),
            ("/info.json/info.json", ApiVersion::V3, 200),
            ("/100%/info.json", ApiVersion::V3, 400),
            ("/a/b/info.json", ApiVersion::V3, 404),
            ("/a/b/full/max/0/default.jpg", ApiVersion::V3, 404),
            ("/a/full/max/0", ApiVersion::V3, 404),
            ("/a/info.xml", ApiVersion::V3, 404),
            ("/a/full/max/0/default", ApiVersion::V3, 400),
            ("/a/full/max/0/default.", ApiVersion::V3, 400),
            ("/a/full/max/0/default.bmp", ApiVersion::V3, 400),
            ("/a/full/max/0/native.jpg", ApiVersion::V3, 400),
            ("/a/full/full/0/default.jpg", ApiVersion::V3, 400),
            ("/a/full/full/0/default.jpg", ApiVersion::V2, 200),
            ("/a/full/^max/0/default.jpg", ApiVersion::V2, 400),
            ("/a/nope/max/0/default.jpg", ApiVersion::V3, 400),
            ("/a/full/max/x/default.jpg", ApiVersion::V3, 400),
            ("/%FF/info.json", ApiVersion::V3, 400),
            ("/a/full/max/0/default.jpg.png", ApiVersion::V3, 400),
        ];
        for (path, v, status) in table {
            let got = match parse(path, *v) {
                Ok(_) => 200,
                Err(e) => e.status().as_u16(),
            };
            assert_eq!(got, *status, "{path} {v}");
        }
    }

    #[test]
    fn display_is_canonical_spelling() {
        let r = parse(
            "/a%2Db/pct:10.50,0,50,50/!10,20/090/gray.png",
            ApiVersion::V3,
        )
        .unwrap();
        let IiifRequest::Image(img) = r else { panic!() };
        assert_eq!(img.to_string(), "a-b/pct:10.5,0,50,50/!10,20/90/gray.png");
    }
}
