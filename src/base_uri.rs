//! The public base URI of a mount: the extension that decides `id`, `Link` and `Location`.

use http::request::Parts;

/// The public base URI under which the service is reached, without a trailing slash:
/// `scheme://host[:port]/path-of-the-mount`, e.g. `https://example.org/iiif/3`.
///
/// A request extension. A layer that knows the public address (behind a proxy, from
/// `Forwarded` / `X-Forwarded-*`) inserts it; `IiifService` reads it and, when it is absent,
/// falls back to its configured fixed base URI, and then to the `Host` header plus its path prefix.
///
/// ```
/// use tower_iiif::BaseUri;
/// let b = BaseUri::new("https://example.org/iiif/3/");
/// assert_eq!(b.as_str(), "https://example.org/iiif/3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseUri(String);

impl BaseUri {
    /// Create a new [`BaseUri`]; trailing slashes are removed.
    pub fn new(uri: impl Into<String>) -> Self {
        let mut s: String = uri.into();
        while s.ends_with('/') {
            s.pop();
        }
        Self(s)
    }

    /// The base URI as a string, without a trailing slash.
    ///
    /// ```
    /// assert_eq!(tower_iiif::BaseUri::new("http://a/b").as_str(), "http://a/b");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The base URI of a request that reached the service directly: the request's scheme (or
    /// `http`), its `Host` header (or URI authority) and `path_prefix`.
    ///
    /// ```
    /// use tower_iiif::BaseUri;
    /// let req = http::Request::get("/x/info.json").header("host", "127.0.0.1:8080").body(()).unwrap();
    /// let (parts, _) = req.into_parts();
    /// assert_eq!(BaseUri::from_request(&parts, "/iiif/3").as_str(), "http://127.0.0.1:8080/iiif/3");
    /// ```
    pub fn from_request(parts: &Parts, path_prefix: &str) -> Self {
        let scheme = parts.uri.scheme_str().unwrap_or("http");
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| is_plausible_host(h))
            .or_else(|| {
                parts
                    .uri
                    .authority()
                    .map(|a| a.as_str())
                    .filter(|h| is_plausible_host(h))
            })
            .unwrap_or("localhost");
        Self::new(format!("{scheme}://{host}{path_prefix}"))
    }
}

/// A Host header that cannot inject anything into the URIs we write.
fn is_plausible_host(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_host_headers_fall_back() {
        let req = http::Request::get("/x")
            .header("host", "evil\"><script>")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(
            BaseUri::from_request(&parts, "").as_str(),
            "http://localhost"
        );
    }
}

/// The address of the client that made the request, as far as trusted proxies tell.
///
/// A request extension inserted by `SetBaseUri` (from the peer address, or `X-Forwarded-For` /
/// `Forwarded: for=` of trusted proxies); read by authorization hooks and logging.
///
/// ```
/// let ip = tower_iiif::ClientIp("192.0.2.7".parse().unwrap());
/// assert_eq!(ip.0.to_string(), "192.0.2.7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub std::net::IpAddr);

/// The identifier to show the client instead of the one in the path, for proxies that rewrite
/// identifiers (Cantaloupe's `X-Forwarded-ID`).
///
/// A request extension inserted by `SetBaseUri` from a trusted proxy's `X-Forwarded-ID`;
/// `IiifService` echoes it, percent-encoded, in `id`, `Link` and `Location`.
///
/// ```
/// let id = tower_iiif::PublicIdentifier::new("public/name");
/// assert_eq!(id.as_str(), "public/name");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicIdentifier(String);

impl PublicIdentifier {
    /// Create a new [`PublicIdentifier`] (the decoded identifier).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The decoded identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
