//! The identifier: percent-decoded from the URL, percent-encoded again wherever it is echoed
//! (`id`, `Link`, `Location`).
//!
//! # Example
//!
//! ```
//! use tower_iiif::request::{Identifier, IdentifierOptions};
//!
//! let opts = IdentifierOptions::default();
//! let id = Identifier::decode("ark:%2F12025%2F654+xz", &opts).unwrap();
//! assert_eq!(id.as_str(), "ark:/12025/654 xz");
//! assert_eq!(id.encoded(), "ark:%2F12025%2F654%20xz");
//! ```

use std::fmt;
use std::sync::Arc;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::Error;

/// What is percent-encoded when an identifier is written into a URL: the IIIF list
/// (`/ ? # [ ] @ %`), everything that may not stand in a path segment, and `+` (read back as a
/// space by default). Non-ASCII is always encoded.
const ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'+')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// How identifiers are read from the URL.
///
/// ```
/// use tower_iiif::request::{Identifier, IdentifierOptions};
/// let opts = IdentifierOptions::default().plus_as_space(false).slash_substitute("~");
/// assert_eq!(Identifier::decode("a+b~c", &opts).unwrap().as_str(), "a+b/c");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct IdentifierOptions {
    plus_as_space: bool,
    slash_substitute: Option<String>,
}

impl Default for IdentifierOptions {
    /// `+` read as a space (as Cantaloupe does, for PHP `urlencode`d identifiers); no slash
    /// substitute.
    fn default() -> Self {
        Self {
            plus_as_space: true,
            slash_substitute: None,
        }
    }
}

impl IdentifierOptions {
    /// Whether a literal `+` in the identifier means a space. On by default.
    ///
    /// ```
    /// use tower_iiif::request::{Identifier, IdentifierOptions};
    ///
    /// let opts = IdentifierOptions::default();
    /// assert_eq!(Identifier::decode("a+b", &opts).unwrap().as_str(), "a b");
    /// let opts = opts.plus_as_space(false);
    /// assert_eq!(Identifier::decode("a+b", &opts).unwrap().as_str(), "a+b");
    /// ```
    pub fn plus_as_space(mut self, on: bool) -> Self {
        self.plus_as_space = on;
        self
    }

    /// A string that stands for `/` in identifiers (Cantaloupe's `slash_substitute`), for
    /// proxies that cannot pass `%2F`.
    ///
    /// ```
    /// use tower_iiif::request::{Identifier, IdentifierOptions};
    ///
    /// let opts = IdentifierOptions::default().slash_substitute("$");
    /// let id = Identifier::decode("books$page1", &opts).unwrap();
    /// assert_eq!(id.as_str(), "books/page1");
    /// assert_eq!(id.encoded_with(&opts), "books$page1");
    /// ```
    pub fn slash_substitute(mut self, s: impl Into<String>) -> Self {
        let s = s.into();
        self.slash_substitute = (!s.is_empty()).then_some(s);
        self
    }
}

/// The identifier of an image, decoded.
///
/// ```
/// use tower_iiif::request::{Identifier, IdentifierOptions};
///
/// let id = Identifier::decode("caf%C3%A9%2F1", &IdentifierOptions::default()).unwrap();
/// assert_eq!(id.as_str(), "café/1");
/// assert_eq!(id.to_string(), "café/1");
/// assert_eq!(id.encoded(), "caf%C3%A9%2F1");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier(Arc<str>);

impl Identifier {
    /// Decode one raw path segment into an identifier.
    ///
    /// An empty identifier, a malformed percent-encoding (`%` not followed by two hex digits),
    /// one that is not UTF-8 once decoded, or one that contains NUL is a 400.
    ///
    /// ```
    /// use tower_iiif::request::{Identifier, IdentifierOptions};
    /// let opts = IdentifierOptions::default();
    /// assert_eq!(Identifier::decode("a%2Db", &opts).unwrap().as_str(), "a-b");
    /// assert_eq!(Identifier::decode("%FF", &opts).unwrap_err().status(), 400);
    /// assert_eq!(Identifier::decode("100%", &opts).unwrap_err().status(), 400);
    /// assert_eq!(Identifier::decode("a%zzb", &opts).unwrap_err().status(), 400);
    /// ```
    pub fn decode(segment: &str, opts: &IdentifierOptions) -> Result<Self, Error> {
        let bytes = segment.as_bytes();
        let malformed = bytes.iter().enumerate().any(|(i, &b)| {
            b == b'%'
                && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        });
        if malformed {
            return Err(Error::bad_request(
                "identifier: malformed percent-encoding (% must be followed by two hex digits)",
            ));
        }
        let plus_fixed;
        let segment = if opts.plus_as_space && segment.contains('+') {
            plus_fixed = segment.replace('+', " ");
            plus_fixed.as_str()
        } else {
            segment
        };
        let decoded = percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| Error::bad_request("identifier: not UTF-8 once percent-decoded"))?;
        let decoded = match &opts.slash_substitute {
            Some(sub) => decoded.replace(sub.as_str(), "/").into(),
            None => decoded,
        };
        Self::new(decoded)
    }

    /// An identifier from its decoded text.
    ///
    /// ```
    /// assert_eq!(tower_iiif::request::Identifier::new("a/b").unwrap().encoded(), "a%2Fb");
    /// ```
    pub fn new(decoded: impl AsRef<str>) -> Result<Self, Error> {
        let s = decoded.as_ref();
        if s.is_empty() {
            return Err(Error::bad_request("identifier: empty"));
        }
        if s.contains('\0') {
            return Err(Error::bad_request("identifier: contains NUL"));
        }
        Ok(Self(s.into()))
    }

    /// The decoded identifier.
    ///
    /// ```
    /// assert_eq!(tower_iiif::request::Identifier::new("x").unwrap().as_str(), "x");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier percent-encoded for a URL path segment.
    ///
    /// ```
    /// assert_eq!(tower_iiif::request::Identifier::new("a b:c").unwrap().encoded(), "a%20b:c");
    /// ```
    pub fn encoded(&self) -> String {
        utf8_percent_encode(&self.0, ENCODE).to_string()
    }
}

impl Identifier {
    /// The identifier encoded for a URL path segment the way `opts` reads it back: with a slash
    /// substitute configured, slashes are written as the substitute rather than `%2F`.
    ///
    /// ```
    /// use tower_iiif::request::{Identifier, IdentifierOptions};
    /// let opts = IdentifierOptions::default().slash_substitute("~");
    /// assert_eq!(Identifier::new("a/b c").unwrap().encoded_with(&opts), "a~b%20c");
    /// ```
    pub fn encoded_with(&self, opts: &IdentifierOptions) -> String {
        match &opts.slash_substitute {
            Some(sub) => self
                .0
                .split('/')
                .map(|part| utf8_percent_encode(part, ENCODE).to_string())
                .collect::<Vec<_>>()
                .join(sub),
            None => self.encoded(),
        }
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_encodes() {
        let opts = IdentifierOptions::default();
        let table = [
            (
                "67352ccc-d1b0-11e1-89ae-279075081939",
                "67352ccc-d1b0-11e1-89ae-279075081939",
            ),
            ("67352ccc%2Dd1b0", "67352ccc-d1b0"),
            ("a%2Fb", "a/b"),
            ("a+b", "a b"),
            ("a%2Bb", "a+b"),
            ("%253C", "%3C"),
            ("caf%C3%A9", "café"),
            ("[frob]", "[frob]"),
        ];
        for (raw, want) in table {
            let id = Identifier::decode(raw, &opts).unwrap();
            assert_eq!(id.as_str(), want, "{raw}");
            // Encoding and decoding again gives the same identifier.
            assert_eq!(
                Identifier::decode(&id.encoded(), &opts).unwrap(),
                id,
                "{raw}"
            );
        }
    }

    #[test]
    fn plus_can_stay_a_plus() {
        let opts = IdentifierOptions::default().plus_as_space(false);
        assert_eq!(Identifier::decode("a+b", &opts).unwrap().as_str(), "a+b");
    }

    #[test]
    fn refuses_empty_nul_and_bad_utf8() {
        let opts = IdentifierOptions::default();
        for raw in ["", "%00", "a%00b", "%C3", "%FF%FE"] {
            assert_eq!(
                Identifier::decode(raw, &opts).unwrap_err().status(),
                400,
                "{raw}"
            );
        }
    }

    #[test]
    fn encodes_the_iiif_set() {
        let id = Identifier::new("a/b?c#d[e]f@g%h i+j").unwrap();
        assert_eq!(id.encoded(), "a%2Fb%3Fc%23d%5Be%5Df%40g%25h%20i%2Bj");
        assert_eq!(
            Identifier::new("ark:x-y_z.~").unwrap().encoded(),
            "ark:x-y_z.~"
        );
    }
}
