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
use crate::info::ImageInfo;
use crate::plan::Limits;
use crate::request::{Identifier, ImageRequest};
use crate::service::ImageLookup;
use crate::source::SourceRequest;

/// What a request asks for.
///
/// ```
/// # use tower::{Layer, ServiceExt};
/// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
/// # use tower_iiif::{IiifService, samples, source::FsSource};
/// # use tower_iiif::auth::AuthTarget;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir()
/// #     .join(format!("tower-iiif-doc-{}-{}", "auth-target", std::process::id()));
/// # samples::write_samples(&dir).unwrap();
/// # let iiif = IiifService::new(FsSource::new(&dir).unwrap());
/// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
/// // Image information for all, images for no one.
/// let hook = |req: AuthRequest| async move {
///     match req.target() {
///         AuthTarget::Info(_) => Decision::Allow,
///         _ => Decision::Deny(Denied::forbidden("no images today")),
///     }
/// };
/// let svc = AuthorizeLayer::new(hook).layer(iiif);
/// assert_eq!(svc.clone().oneshot(get("/gray/info.json")).await.unwrap().status(), 200);
/// assert_eq!(svc.oneshot(get("/gray/full/max/0/default.png")).await.unwrap().status(), 403);
/// # let _ = std::fs::remove_dir_all(&dir);
/// # }
/// ```
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
///
/// ```
/// # use tower::{Layer, ServiceExt};
/// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
/// # use tower_iiif::{IiifService, samples, source::FsSource};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir()
/// #     .join(format!("tower-iiif-doc-{}-{}", "auth-request", std::process::id()));
/// # samples::write_samples(&dir).unwrap();
/// # let iiif = IiifService::new(FsSource::new(&dir).unwrap());
/// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
/// // info.json for all; images with a token only.
/// let hook = |req: AuthRequest| async move {
///     if req.uri().path().ends_with("/info.json") || req.bearer_token().is_some() {
///         Decision::Allow
///     } else {
///         Decision::Deny(Denied::unauthorized("images need a token"))
///     }
/// };
/// let svc = AuthorizeLayer::new(hook).layer(iiif);
/// assert_eq!(svc.clone().oneshot(get("/gray/info.json")).await.unwrap().status(), 200);
/// assert_eq!(svc.oneshot(get("/gray/full/max/0/default.jpg")).await.unwrap().status(), 401);
/// # let _ = std::fs::remove_dir_all(&dir);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AuthRequest {
    target: AuthTarget,
    uri: Uri,
    source_request: SourceRequest,
    lookup: ImageLookup,
}

impl AuthRequest {
    /// What is asked for.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # use tower_iiif::auth::AuthTarget;
    /// # use tower_iiif::request::Size;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "auth-target-fn", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let iiif = IiifService::new(FsSource::new(&dir).unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// // Any size but the largest.
    /// let hook = |req: AuthRequest| async move {
    ///     match req.target() {
    ///         AuthTarget::Image(img) if img.size == Size::MAX => {
    ///             Decision::Deny(Denied::forbidden("no full-size images"))
    ///         }
    ///         _ => Decision::Allow,
    ///     }
    /// };
    /// let svc = AuthorizeLayer::new(hook).layer(iiif);
    /// let res = svc.clone().oneshot(get("/gray/full/max/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 403);
    /// assert_eq!(svc.oneshot(get("/gray/full/100,/0/default.jpg")).await.unwrap().status(), 200);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn target(&self) -> &AuthTarget {
        &self.target
    }

    /// The identifier of the image asked about.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let iiif = IiifService::new(FsSource::new(".").unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let hook = |req: AuthRequest| async move {
    ///     Decision::Redirect(format!("/login?next={}", req.identifier().encoded()))
    /// };
    /// let svc = AuthorizeLayer::new(hook).layer(iiif);
    /// let res = svc.oneshot(get("/a%2Fb/full/max/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 302);
    /// assert_eq!(res.headers()["location"], "/login?next=a%2Fb");
    /// # }
    /// ```
    pub fn identifier(&self) -> &Identifier {
        match &self.target {
            AuthTarget::Info(id) | AuthTarget::Probe(id) => id,
            AuthTarget::Image(r) => &r.identifier,
        }
    }

    /// The request URI.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let iiif = IiifService::new(FsSource::new(".").unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let hook = |req: AuthRequest| async move {
    ///     Decision::Redirect(format!("/login?next={}", req.uri().path()))
    /// };
    /// let svc = AuthorizeLayer::new(hook).layer(iiif);
    /// let res = svc.oneshot(get("/page1/info.json")).await.unwrap();
    /// assert_eq!(res.headers()["location"], "/login?next=/page1/info.json");
    /// # }
    /// ```
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request headers.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let iiif = IiifService::new(FsSource::new(".").unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let hook = |req: AuthRequest| async move {
    ///     match req.headers().get("x-api-key") {
    ///         Some(key) if key == "k1" => Decision::Redirect("/welcome".into()),
    ///         _ => Decision::Deny(Denied::forbidden("an API key is needed")),
    ///     }
    /// };
    /// let svc = AuthorizeLayer::new(hook).layer(iiif);
    /// assert_eq!(svc.clone().oneshot(get("/a/info.json")).await.unwrap().status(), 403);
    /// let req = http::Request::get("/a/info.json").header("x-api-key", "k1").body(()).unwrap();
    /// assert_eq!(svc.oneshot(req).await.unwrap().headers()["location"], "/welcome");
    /// # }
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        self.source_request.headers()
    }

    /// The client's address: the [`ClientIp`](crate::base_uri::ClientIp) extension (set by `SetBaseUri`), else none.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// # use tower_iiif::base_uri::ClientIp;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let iiif = IiifService::new(FsSource::new(".").unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let hook = |req: AuthRequest| async move {
    ///     match req.client_ip() {
    ///         Some(ip) if ip.is_loopback() => Decision::Redirect("/local".into()),
    ///         _ => Decision::Deny(Denied::forbidden("local users only")),
    ///     }
    /// };
    /// let svc = AuthorizeLayer::new(hook).layer(iiif);
    /// // No `ClientIp` extension (`SetBaseUri` inserts one): the client is unknown.
    /// assert_eq!(svc.clone().oneshot(get("/a/info.json")).await.unwrap().status(), 403);
    /// let mut req = get("/a/info.json");
    /// req.extensions_mut().insert(ClientIp("127.0.0.1".parse().unwrap()));
    /// assert_eq!(svc.oneshot(req).await.unwrap().headers()["location"], "/local");
    /// # }
    /// ```
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.source_request.client_ip()
    }

    /// The token of an `Authorization: Bearer …` header.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "auth-bearer", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let iiif = IiifService::new(FsSource::new(&dir).unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// # let with_token = |token: &str| {
    /// #     let value = format!("Bearer {token}");
    /// #     let req = http::Request::get("/gray/info.json").header("authorization", value);
    /// #     req.body(()).unwrap()
    /// # };
    /// let hook = |req: AuthRequest| async move {
    ///     match req.bearer_token() {
    ///         Some("secret") => Decision::Allow,
    ///         Some(_) => Decision::Deny(Denied::forbidden("wrong token")),
    ///         None => Decision::Deny(Denied::unauthorized("token needed").challenge("Bearer")),
    ///     }
    /// };
    /// let svc = AuthorizeLayer::new(hook).layer(iiif);
    /// assert_eq!(svc.clone().oneshot(get("/gray/info.json")).await.unwrap().status(), 401);
    /// assert_eq!(svc.clone().oneshot(with_token("nope")).await.unwrap().status(), 403);
    /// assert_eq!(svc.oneshot(with_token("secret")).await.unwrap().status(), 200);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self
            .source_request
            .headers()
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// The value of the cookie `name`, if sent.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "auth-cookie", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let iiif = IiifService::new(FsSource::new(&dir).unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let hook = |req: AuthRequest| async move {
    ///     match req.cookie("session") {
    ///         Some("abc") => Decision::Allow,
    ///         _ => Decision::Deny(Denied::unauthorized("log in first")),
    ///     }
    /// };
    /// let svc = AuthorizeLayer::new(hook).layer(iiif);
    /// let req = http::Request::get("/gray/info.json").header("cookie", "theme=dark; session=abc");
    /// assert_eq!(svc.clone().oneshot(req.body(()).unwrap()).await.unwrap().status(), 200);
    /// assert_eq!(svc.oneshot(get("/gray/info.json")).await.unwrap().status(), 401);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.source_request
            .headers()
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
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # use tower_iiif::limit::Limits;
    /// # type Res = http::Response<tower_iiif::auth::ResponseBody<tower_iiif::IiifBody>>;
    /// # async fn body_json(res: Res) -> serde_json::Value {
    /// #     use http_body_util::BodyExt;
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "auth-image-info", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let iiif = IiifService::new(FsSource::new(&dir).unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let hook = |req: AuthRequest| async move {
    ///     match req.image_info().await {
    ///         Ok(info) if info.width > 500 => Decision::Degrade(Limits::default().max_width(500)),
    ///         _ => Decision::Allow,
    ///     }
    /// };
    /// let svc = AuthorizeLayer::new(hook).layer(iiif);
    /// let res = svc.clone().oneshot(get("/landscape/info.json")).await.unwrap(); // 4000 x 2600
    /// assert_eq!(body_json(res).await["maxWidth"], 500);
    /// let res = svc.oneshot(get("/transparent/info.json")).await.unwrap(); // 400 x 300
    /// assert!(body_json(res).await.get("maxWidth").is_none());
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub async fn image_info(&self) -> Result<ImageInfo, Error> {
        self.lookup
            .info(self.identifier(), &self.source_request)
            .await
    }
}

/// A refusal: 401 (with an optional `WWW-Authenticate` challenge) or 403, and a one-line message.
///
/// ```
/// # use tower::{Layer, ServiceExt};
/// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
/// # use tower_iiif::{IiifService, source::FsSource};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let iiif = IiifService::new(FsSource::new(".").unwrap());
/// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
/// let hook = |_req: AuthRequest| async {
///     Decision::Deny(Denied::unauthorized("log in first").challenge("Bearer realm=\"iiif\""))
/// };
/// let svc = AuthorizeLayer::new(hook).layer(iiif);
/// let res = svc.oneshot(get("/a/info.json")).await.unwrap();
/// assert_eq!(res.status(), 401);
/// assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"iiif\"");
/// # }
/// ```
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
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let iiif = IiifService::new(FsSource::new(".").unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let hook = |_req: AuthRequest| async {
    ///     Decision::Deny(Denied::unauthorized("log in first").challenge("Bearer"))
    /// };
    /// let svc = AuthorizeLayer::new(hook).layer(iiif);
    /// let res = svc.oneshot(get("/a/info.json")).await.unwrap();
    /// assert_eq!(res.headers()["www-authenticate"], "Bearer");
    /// # }
    /// ```
    #[must_use]
    pub fn challenge(mut self, challenge: &str) -> Self {
        self.challenge = HeaderValue::from_str(challenge).ok();
        self
    }

    /// The status the refusal is answered with.
    ///
    /// ```
    /// use tower_iiif::auth::Denied;
    ///
    /// assert_eq!(Denied::unauthorized("log in first").status(), http::StatusCode::UNAUTHORIZED);
    /// assert_eq!(Denied::forbidden("not for you").status(), 403);
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// The hook's answer.
///
/// ```
/// # use tower::{Layer, ServiceExt};
/// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
/// # use tower_iiif::{IiifService, samples, source::FsSource};
/// # use tower_iiif::limit::Limits;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir()
/// #     .join(format!("tower-iiif-doc-{}-{}", "auth-decision", std::process::id()));
/// # samples::write_samples(&dir).unwrap();
/// # let iiif = IiifService::new(FsSource::new(&dir).unwrap());
/// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
/// let hook = |req: AuthRequest| async move {
///     match req.identifier().as_str() {
///         "gray" => Decision::Allow,
///         "landscape" => Decision::Degrade(Limits::default().max_width(100)),
///         _ => Decision::Deny(Denied::forbidden("no")),
///     }
/// };
/// let svc = AuthorizeLayer::new(hook).layer(iiif);
/// let send = |path: &str| svc.clone().oneshot(get(path));
/// assert_eq!(send("/gray/full/max/0/default.jpg").await.unwrap().status(), 200);
/// assert_eq!(send("/landscape/full/max/0/default.jpg").await.unwrap().status(), 200); // 100 wide
/// assert_eq!(send("/transparent/full/max/0/default.jpg").await.unwrap().status(), 403);
/// # let _ = std::fs::remove_dir_all(&dir);
/// # }
/// ```
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
///
/// ```
/// use tower::{Layer, ServiceExt};
/// use tower_iiif::auth::{AuthRequest, AuthorizeImage, AuthorizeLayer, Decision, Denied};
///
/// // A named hook, in place of a closure.
/// #[derive(Clone)]
/// struct StaffOnly;
///
/// impl AuthorizeImage for StaffOnly {
///     async fn authorize(&self, request: AuthRequest) -> Decision {
///         match request.cookie("role") {
///             Some("staff") => Decision::Allow,
///             _ => Decision::Deny(Denied::forbidden("staff only")),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let iiif = tower_iiif::IiifService::new(tower_iiif::source::FsSource::new(".").unwrap());
/// let svc = AuthorizeLayer::new(StaffOnly).layer(iiif);
/// let res = svc.oneshot(http::Request::get("/a/info.json").body(()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), 403); // no `role=staff` cookie
/// # }
/// ```
pub trait AuthorizeImage: Clone + Send + Sync + 'static {
    /// Decide what this request gets.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// # use tower_iiif::auth::AuthorizeImage;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let iiif = IiifService::new(FsSource::new(".").unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// // Ask one hook, and another when the first does not allow.
    /// #[derive(Clone)]
    /// struct OrElse<A, B>(A, B);
    ///
    /// impl<A: AuthorizeImage, B: AuthorizeImage> AuthorizeImage for OrElse<A, B> {
    ///     async fn authorize(&self, request: AuthRequest) -> Decision {
    ///         match self.0.authorize(request.clone()).await {
    ///             Decision::Allow => Decision::Allow,
    ///             _ => self.1.authorize(request).await,
    ///         }
    ///     }
    /// }
    ///
    /// let staff_only = |_req: AuthRequest| async { Decision::Deny(Denied::forbidden("staff")) };
    /// let login = |_req: AuthRequest| async { Decision::Redirect("/login".into()) };
    /// let svc = AuthorizeLayer::new(OrElse(staff_only, login)).layer(iiif);
    /// let res = svc.oneshot(get("/gray/info.json")).await.unwrap();
    /// assert_eq!(res.headers()["location"], "/login");
    /// # }
    /// ```
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
            source_request: SourceRequest::from_parts(parts),
            lookup,
        }
    }
}

#[cfg(test)]
mod tests;
