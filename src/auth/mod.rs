//! Authorization: the `Authorize` middleware and its hook, with the IIIF Authorization Flow API
//! 2.0 probe service.
//!
//! The hook ([`AuthorizeImage`], implemented for async closures) sees what is asked for (the
//! parsed [`AuthTarget`]), the request's headers, cookies and client IP, and on demand the image's
//! dimensions; it answers with a [`Decision`]: allow, allow but mark the response restricted,
//! degrade (tighter [`Limits`]), deny (401 with a challenge, or 403), or redirect. It runs on
//! every info and image request, in front of any cache, so no cached byte reaches a client the
//! hook refused. Responses it restricted carry the [`Restricted`](crate::cache_control::Restricted) marker, so `SetCacheControl`
//! never makes them `public`.
//!
//! With [`AuthorizeLayer::auth2_probe`], info.json declares an `AuthProbeService2` at
//! `{image id}/probe` with the access services the app describes, and the layer answers that
//! probe (`AuthProbeResult2`, always HTTP 200, with the status the image request would get).
//!
//! # Example
//!
//! ```
//! use tower::{Layer, ServiceExt};
//! use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
//! use tower_iiif::limit::Limits;
//! use tower_iiif::{IiifService, samples, source::FsSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let dir = std::env::temp_dir().join(format!("tower-iiif-auth-doc-{}", std::process::id()));
//! # samples::write_samples(&dir).unwrap();
//! let iiif = IiifService::new(FsSource::new(&dir).unwrap());
//! let rule = |req: AuthRequest| async move {
//!     if req.bearer_token() == Some("secret") {
//!         Decision::AllowRestricted
//!     } else if req.identifier().as_str().starts_with("gray") {
//!         Decision::Deny(Denied::unauthorized("log in first").challenge("Bearer"))
//!     } else {
//!         Decision::Degrade(Limits::default().max_width(100))
//!     }
//! };
//! let svc = AuthorizeLayer::new(rule).layer(iiif);
//! let get = |path: &str| http::Request::get(path).body(()).unwrap();
//!
//! let res = svc.clone().oneshot(get("/gray/full/max/0/default.jpg")).await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert_eq!(res.headers()["www-authenticate"], "Bearer");
//! let res = svc.oneshot(get("/landscape/full/max/0/default.jpg")).await.unwrap();
//! assert_eq!(res.status(), 200); // degraded to 100 pixels wide
//! # }
//! ```

mod body;
mod layer;

use std::future::Future;
use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Uri};

pub use body::ResponseBody;
pub use layer::{Authorize, AuthorizeLayer, ResponseFuture};

use crate::Error;
use crate::base_uri::ClientIp;
use crate::info::ImageInfo;
use crate::plan::Limits;
use crate::request::{Identifier, ImageRequest};
use crate::service::ImageLookup;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthTarget {
    /// Image information (`info.json`).
    Info(Identifier),
    /// An image.
    Image(ImageRequest),
    /// An IIIF Auth 2.0 probe: what would an image request of this identifier get?
    Probe(Identifier),
}

/// What the authorization hook sees of one request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    target: AuthTarget,
    uri: Uri,
    headers: HeaderMap,
    client_ip: Option<IpAddr>,
    lookup: ImageLookup,
}

impl AuthRequest {
    /// What is asked for.
    pub fn target(&self) -> &AuthTarget {
        &self.target
    }

    /// The identifier of the image asked about.
    pub fn identifier(&self) -> &Identifier {
        match &self.target {
            AuthTarget::Info(id) | AuthTarget::Probe(id) => id,
            AuthTarget::Image(r) => &r.identifier,
        }
    }

    /// The request URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The client's address: the [`ClientIp`] extension (set by `SetBaseUri`), else none.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The token of an `Authorization: Bearer …` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// The value of the cookie `name`, if sent.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The image's dimensions and colour, looked up through the service's source and info cache
    /// (only when the hook asks). An unknown identifier is an error with status 404.
    pub async fn image_info(&self) -> Result<ImageInfo, Error> {
        self.lookup.info(self.identifier()).await
    }
}

/// A refusal: 401 (with an optional `WWW-Authenticate` challenge) or 403, and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    status: StatusCode,
    message: String,
    challenge: Option<HeaderValue>,
}

impl Denied {
    /// 401 Unauthorized: the client must authenticate.
    ///
    /// ```
    /// assert_eq!(tower_iiif::auth::Denied::unauthorized("log in").status(), 401);
    /// ```
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
            challenge: None,
        }
    }

    /// 403 Forbidden: the client may not have this.
    ///
    /// ```
    /// assert_eq!(tower_iiif::auth::Denied::forbidden("no").status(), 403);
    /// ```
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
            challenge: None,
        }
    }

    /// The `WWW-Authenticate` challenge sent with a 401 (ignored when not a valid header value).
    #[must_use]
    pub fn challenge(mut self, challenge: &str) -> Self {
        self.challenge = HeaderValue::from_str(challenge).ok();
        self
    }

    /// The status the refusal is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// The hook's answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decision {
    /// Serve it, cacheable by anyone.
    Allow,
    /// Serve it, but only to this client: the response is marked [`Restricted`](crate::cache_control::Restricted) (never
    /// `Cache-Control: public`).
    AllowRestricted,
    /// Serve a degraded version: these limits apply on top of the others (e.g. at most 1000
    /// pixels for anonymous users), and info.json advertises them. Marked [`Restricted`](crate::cache_control::Restricted).
    Degrade(Limits),
    /// Refuse.
    Deny(Denied),
    /// Send the client elsewhere (302 to this URI).
    Redirect(String),
}

/// The authorization hook: decides, per request, what a client gets.
///
/// Implemented for every `Fn(AuthRequest) -> impl Future<Output = Decision>` closure that is
/// `Clone + Send + Sync + 'static`; see the [module docs](crate::auth) for an example.
pub trait AuthorizeImage: Clone + Send + Sync + 'static {
    /// Decide what this request gets.
    fn authorize(&self, request: AuthRequest) -> impl Future<Output = Decision> + Send;
}

impl<F, Fut> AuthorizeImage for F
where
    F: Fn(AuthRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Decision> + Send,
{
    fn authorize(&self, request: AuthRequest) -> impl Future<Output = Decision> + Send {
        self(request)
    }
}

impl AuthRequest {
    pub(crate) fn new(
        target: AuthTarget,
        parts: &http::request::Parts,
        lookup: ImageLookup,
    ) -> Self {
        Self {
            target,
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            client_ip: parts.extensions.get::<ClientIp>().map(|c| c.0),
            lookup,
        }
    }
}

#[cfg(test)]
mod tests;
