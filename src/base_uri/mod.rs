//! The public base URI of a mount, and who the client is: the `SetBaseUri` middleware and the
//! request extensions it inserts ([`BaseUri`], [`ClientIp`], [`PublicIdentifier`]).
//!
//! [`BaseUri`] decides the `id` in info.json, the canonical `Link` and the 303 `Location`.
//! Behind a reverse proxy the service cannot know it from the request alone: the proxy
//! terminated TLS, answered on another host and port, maybe under another path.
//! [`SetBaseUriLayer::fixed`] sets it once for all requests; [`SetBaseUriLayer::forwarded`]
//! rebuilds it per request from what trusted proxies say, in `X-Forwarded-{Proto,Host,Port,
//! Path,Prefix}` or, when [`SetBaseUriLayer::forwarded_header`] turns it on, in RFC 7239
//! `Forwarded`:
//!
//! - proxy headers are read only when the immediate peer is in the trusted list (none by
//!   default); from anyone else they are ignored, so a client cannot choose the URIs the
//!   service writes;
//! - one family only is read, `X-Forwarded-*` by default or `Forwarded` when turned on (a proxy
//!   that writes one family passes a client's headers of the other through untouched); the
//!   first value of a list is the one the proxy nearest the client wrote;
//! - `X-Forwarded-Port` wins over a port in the host; default ports are dropped;
//! - the path is `X-Forwarded-Prefix` (Traefik's `stripPrefix`) + `X-Forwarded-Path`, and the
//!   service appends its mount path: `X-Forwarded-Path` is Cantaloupe's context path, which
//!   stands in front of the IIIF route (Islandora sends `X-Forwarded-Path: /cantaloupe` and
//!   expects `…/cantaloupe/iiif/2`);
//! - a value that could inject anything into a URI (a host with other than host characters, a
//!   path with `?`, `#` or spaces, a scheme other than `http`/`https`) is ignored.
//!
//! The client's address ([`ClientIp`]) is the peer's, or, from a trusted peer, the first address
//! of `X-Forwarded-For` (or `Forwarded: for=`) read from the right that is not itself a trusted
//! proxy. A trusted peer's `X-Forwarded-ID` becomes the [`PublicIdentifier`].
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//!
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt, service_fn};
//! use tower_iiif::base_uri::{BaseUri, ClientIp, SetBaseUriLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let svc = SetBaseUriLayer::forwarded()
//!     .trusted_proxies(["10.0.0.0/8"])
//!     .unwrap()
//!     .layer(service_fn(|req: Request<()>| async move {
//!         let e = req.extensions();
//!         let seen = (e.get::<BaseUri>().cloned(), e.get::<ClientIp>().copied());
//!         Ok::<_, Infallible>(Response::new(seen))
//!     }));
//!
//! let mut req = Request::get("/iiif/3/page1/info.json")
//!     .header("host", "iiif:8080")
//!     .header("x-forwarded-proto", "https")
//!     .header("x-forwarded-host", "images.example.org")
//!     .header("x-forwarded-for", "203.0.113.7")
//!     .body(())
//!     .unwrap();
//! // The address of the immediate peer, here a proxy on the private network. A server puts it
//! // there (axum's `ConnectInfo` is read too with the `axum` feature; or see
//! // `SetBaseUriLayer::peer_addr`).
//! req.extensions_mut().insert(SocketAddr::from(([10, 0, 0, 2], 41234)));
//!
//! let (base, client) = svc.oneshot(req).await.unwrap().into_body();
//! // The service appends its mount path, e.g. `/iiif/3`.
//! assert_eq!(base.unwrap().as_str(), "https://images.example.org");
//! assert_eq!(client.unwrap().0.to_string(), "203.0.113.7");
//! # }
//! ```

mod forwarded;
pub(crate) use forwarded::fuzz_parse;
mod layer;

use http::request::Parts;

pub use layer::{InvalidProxy, SetBaseUri, SetBaseUriLayer, parse_proxy};

/// The public URL of the app the service is mounted in, without the mount path and without a
/// trailing slash: `scheme://host[:port][/path]`, e.g. `https://example.org` or, behind a
/// proxy that adds a context path, `https://example.org/cantaloupe` (Cantaloupe's `base_uri`).
///
/// A request extension. [`SetBaseUri`] (or the host app) inserts it, from a fixed address or,
/// behind a proxy, from `X-Forwarded-*` / `Forwarded`; `IiifService` reads it and appends its
/// mount path (`https://example.org/iiif/3`). When it is absent, the service falls back to its
/// configured fixed base URI, and then to the request's `Host` header.
///
/// ```
/// use tower_iiif::base_uri::BaseUri;
/// let b = BaseUri::new("https://example.org/cantaloupe/");
/// assert_eq!(b.as_str(), "https://example.org/cantaloupe");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseUri(String);

impl BaseUri {
    /// Create a new [`BaseUri`]; trailing slashes are removed.
    ///
    /// ```
    /// use tower_iiif::base_uri::BaseUri;
    ///
    /// assert_eq!(BaseUri::new("https://example.org//").as_str(), "https://example.org");
    /// assert_eq!(BaseUri::new(String::from("http://a/b")), BaseUri::new("http://a/b/"));
    /// ```
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
    /// assert_eq!(tower_iiif::base_uri::BaseUri::new("http://a/b").as_str(), "http://a/b");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The base URI of a request that reached the service directly: the request's scheme (or
    /// `http`) and its `Host` header (or URI authority).
    pub(crate) fn from_request(parts: &Parts) -> Self {
        let scheme = parts.uri.scheme_str().unwrap_or("http");
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| forwarded::valid_host(h).is_some())
            .or_else(|| {
                parts
                    .uri
                    .authority()
                    .map(|a| a.as_str())
                    .filter(|h| forwarded::valid_host(h).is_some())
            })
            .unwrap_or("localhost");
        Self::new(format!("{scheme}://{host}"))
    }
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
        assert_eq!(BaseUri::from_request(&parts).as_str(), "http://localhost");
    }

    #[test]
    fn from_the_host_header() {
        let req = http::Request::get("/x/info.json")
            .header("host", "127.0.0.1:8080")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(
            BaseUri::from_request(&parts).as_str(),
            "http://127.0.0.1:8080"
        );
    }
}

/// The address of the client that made the request, as far as trusted proxies tell.
///
/// A request extension inserted by [`SetBaseUri`] (from the peer address, or `X-Forwarded-For` /
/// `Forwarded: for=` of trusted proxies); read by authorization hooks and logging.
///
/// ```
/// let ip = tower_iiif::base_uri::ClientIp("192.0.2.7".parse().unwrap());
/// assert_eq!(ip.0.to_string(), "192.0.2.7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub std::net::IpAddr);

/// The identifier to show the client instead of the one in the path, for proxies that rewrite
/// identifiers (Cantaloupe's `X-Forwarded-ID`).
///
/// A request extension inserted by [`SetBaseUri`] from a trusted proxy's `X-Forwarded-ID`;
/// `IiifService` echoes it, percent-encoded, in `id`, `Link` and `Location`.
///
/// ```
/// let id = tower_iiif::base_uri::PublicIdentifier::new("public/name");
/// assert_eq!(id.as_str(), "public/name");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicIdentifier(String);

impl PublicIdentifier {
    /// Create a new [`PublicIdentifier`] (the decoded identifier).
    ///
    /// ```
    /// use tower_iiif::base_uri::PublicIdentifier;
    ///
    /// let id = PublicIdentifier::new(String::from("ark:/12025/654"));
    /// assert_eq!(id, PublicIdentifier::new("ark:/12025/654"));
    /// ```
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The decoded identifier.
    ///
    /// ```
    /// assert_eq!(tower_iiif::base_uri::PublicIdentifier::new("a b").as_str(), "a b");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
