//! The version of the Image API a service speaks.

use std::fmt;

/// A version of the IIIF Image API.
///
/// ```
/// use tower_iiif::request::ApiVersion;
/// assert_eq!(ApiVersion::V3.context(), "http://iiif.io/api/image/3/context.json");
/// assert_eq!(ApiVersion::V2.profile_uri(), "http://iiif.io/api/image/2/level2.json");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ApiVersion {
    /// Image API 2.1.1.
    V2,
    /// Image API 3.0.0.
    #[default]
    V3,
}

impl ApiVersion {
    /// The JSON-LD context of info.json.
    ///
    /// ```
    /// assert!(tower_iiif::request::ApiVersion::V2.context().ends_with("/2/context.json"));
    /// ```
    pub const fn context(self) -> &'static str {
        match self {
            ApiVersion::V2 => "http://iiif.io/api/image/2/context.json",
            ApiVersion::V3 => "http://iiif.io/api/image/3/context.json",
        }
    }

    /// The compliance level document this service claims (level 2).
    ///
    /// ```
    /// assert!(tower_iiif::request::ApiVersion::V3.profile_uri().ends_with("/3/level2.json"));
    /// ```
    pub const fn profile_uri(self) -> &'static str {
        match self {
            ApiVersion::V2 => "http://iiif.io/api/image/2/level2.json",
            ApiVersion::V3 => "http://iiif.io/api/image/3/level2.json",
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiVersion::V2 => "2.1",
            ApiVersion::V3 => "3.0",
        })
    }
}
