//! What a source sees of the request it opens an image for.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;
use http::request::Parts;

use crate::base_uri::{ClientIp, PublicIdentifier};

/// The request a [`Source`](super::Source) opens an image for: its headers, the client's
/// address and the identifier the client was shown, so that a source or a resolver can act with
/// the caller's credentials (Cantaloupe's delegate context). Cheap to clone.
///
/// Requests that come from no client (e.g. [`IiifService::image_info`](crate::IiifService::image_info))
/// open with [`SourceRequest::default`]: no headers, no address.
///
/// ```
/// use tower_iiif::source::SourceRequest;
///
/// let req = http::Request::get("/iiif/3/a/info.json")
///     .header("authorization", "Bearer tok")
///     .body(())
///     .unwrap();
/// let (parts, _) = req.into_parts();
/// let source_request = SourceRequest::from_parts(&parts);
/// assert_eq!(source_request.headers()["authorization"], "Bearer tok");
/// assert_eq!(source_request.client_ip(), None); // set by SetBaseUri
/// assert!(SourceRequest::default().headers().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct SourceRequest {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    headers: HeaderMap,
    client_ip: Option<IpAddr>,
    public_identifier: Option<String>,
}

impl SourceRequest {
    /// The source's view of a request: its headers, and the [`ClientIp`] and
    /// [`PublicIdentifier`] extensions that [`SetBaseUri`](crate::base_uri::SetBaseUri) inserts.
    ///
    /// ```
    /// use tower_iiif::base_uri::ClientIp;
    /// use tower_iiif::source::SourceRequest;
    ///
    /// let mut req = http::Request::get("/a/info.json").body(()).unwrap();
    /// req.extensions_mut().insert(ClientIp("192.0.2.7".parse().unwrap()));
    /// let (parts, _) = req.into_parts();
    /// let ip = SourceRequest::from_parts(&parts).client_ip().unwrap();
    /// assert_eq!(ip.to_string(), "192.0.2.7");
    /// ```
    pub fn from_parts(parts: &Parts) -> Self {
        Self::new(
            parts.headers.clone(),
            parts.extensions.get::<ClientIp>().map(|c| c.0),
            parts
                .extensions
                .get::<PublicIdentifier>()
                .map(|p| p.as_str().to_owned()),
        )
    }

    /// A request from its parts, e.g. for a source's tests.
    ///
    /// ```
    /// use tower_iiif::source::SourceRequest;
    ///
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("cookie", "session=1".parse().unwrap());
    /// let req = SourceRequest::new(headers, Some([127, 0, 0, 1].into()), Some("page-1".into()));
    /// assert_eq!(req.headers()["cookie"], "session=1");
    /// assert_eq!(req.public_identifier(), Some("page-1"));
    /// ```
    pub fn new(
        headers: HeaderMap,
        client_ip: Option<IpAddr>,
        public_identifier: Option<String>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                headers,
                client_ip,
                public_identifier,
            }),
        }
    }

    /// The request's headers, as the service received them.
    ///
    /// ```
    /// # use tower_iiif::source::SourceRequest;
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("authorization", "Bearer t".parse().unwrap());
    /// let req = SourceRequest::new(headers, None, None);
    /// assert_eq!(req.headers().get("authorization").unwrap(), "Bearer t");
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The client's address, when [`SetBaseUri`](crate::base_uri::SetBaseUri) (or the host app,
    /// through the [`ClientIp`] extension) knows it.
    ///
    /// ```
    /// # use tower_iiif::source::SourceRequest;
    /// let req = SourceRequest::new(Default::default(), Some([10, 0, 0, 1].into()), None);
    /// assert_eq!(req.client_ip().unwrap().to_string(), "10.0.0.1");
    /// ```
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.inner.client_ip
    }

    /// The identifier the client was shown, when a proxy rewrites identifiers
    /// ([`PublicIdentifier`], Cantaloupe's `X-Forwarded-ID`).
    ///
    /// ```
    /// # use tower_iiif::source::SourceRequest;
    /// let req = SourceRequest::new(Default::default(), None, Some("public-1".into()));
    /// assert_eq!(req.public_identifier(), Some("public-1"));
    /// assert_eq!(SourceRequest::default().public_identifier(), None);
    /// ```
    pub fn public_identifier(&self) -> Option<&str> {
        self.inner.public_identifier.as_deref()
    }
}
