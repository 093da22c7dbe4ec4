//! `Cache-Control` for IIIF responses: the `SetCacheControl` middleware.
//!
//! [`SetCacheControl`] sets a `Cache-Control` header on successful responses (2xx and 304), with
//! one value for images and one for info.json, as Cantaloupe's `cache.client.*` settings do. The
//! defaults are Cantaloupe's: `max-age=2592000, public, no-transform` (30 days).
//!
//! - The value is chosen by the response's `Content-Type`: `application/json` and
//!   `application/ld+json` get the info value, `image/*` the images value, anything else
//!   (`text/plain` errors, redirects) none. A 304 usually has no `Content-Type`; it gets the info
//!   value when the request path ends in `/info.json`, otherwise the images value.
//! - Other statuses (errors, 303 redirects) never get a `Cache-Control` from this middleware.
//! - A `Cache-Control` the inner service already set is kept.
//! - A response that carries the [`Restricted`] extension (inserted by an authorizing layer) gets
//!   the [`restricted`](CacheControl::restricted) form of the value: `private`, never `public`,
//!   and no `s-maxage`.
//!
//! A [`CacheControl`] also parses from a header-like string (`"max-age=3600, public"`), so a
//! command-line flag or a config file can carry it.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//!
//! use http::{Request, Response, header};
//! use tower::{Layer, ServiceExt, service_fn};
//! use tower_iiif::cache_control::{CacheControl, SetCacheControlLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Stands in for `IiifService`: info.json for paths ending in it, an image otherwise.
//! let inner = service_fn(|req: Request<()>| async move {
//!     let media_type = if req.uri().path().ends_with("/info.json") {
//!         "application/ld+json"
//!     } else {
//!         "image/jpeg"
//!     };
//!     let res = Response::builder().header(header::CONTENT_TYPE, media_type).body(());
//!     Ok::<_, Infallible>(res.unwrap())
//! });
//! let svc = SetCacheControlLayer::new()
//!     .info("max-age=3600, public".parse::<CacheControl>().unwrap())
//!     .layer(inner);
//! let get = |path: &str| Request::get(path).body(()).unwrap();
//!
//! let res = svc.clone().oneshot(get("/a.jpg/full/max/0/default.jpg")).await.unwrap();
//! assert_eq!(res.headers()[header::CACHE_CONTROL], "max-age=2592000, public, no-transform");
//! let res = svc.oneshot(get("/a.jpg/info.json")).await.unwrap();
//! assert_eq!(res.headers()[header::CACHE_CONTROL], "max-age=3600, public");
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::service::{HasIiifContext, IiifContext};

/// A response extension that marks a response as restricted by authorization (only this user
/// may see it, or a degraded version was served). `SetCacheControl` then never sends `public`.
///
/// Inserted by the `Authorize` middleware (or the host app); read by `SetCacheControl`.
///
/// ```
/// let mut res = http::Response::new(());
/// res.extensions_mut().insert(tower_iiif::cache_control::Restricted);
/// assert!(res.extensions().get::<tower_iiif::cache_control::Restricted>().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Restricted;

/// A `Cache-Control` value: the directives Cantaloupe's `cache.client.*` settings offer.
///
/// [`CacheControl::new`] is empty (no header is sent); [`Default`] is Cantaloupe's default,
/// `max-age=2592000, public, no-transform`. Durations are sent in whole seconds.
///
/// ```
/// use std::time::Duration;
/// use tower_iiif::cache_control::CacheControl;
///
/// let cc = CacheControl::new().max_age(Duration::from_secs(3600)).public(true);
/// assert_eq!(cc.to_header_value(), "max-age=3600, public");
/// assert_eq!(cc.restricted().to_header_value(), "max-age=3600, private, no-cache");
/// assert_eq!("max-age=3600, PUBLIC".parse::<CacheControl>().unwrap(), cc);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct CacheControl {
    max_age: Option<u64>,
    s_maxage: Option<u64>,
    public: bool,
    private: bool,
    no_cache: bool,
    no_store: bool,
    must_revalidate: bool,
    proxy_revalidate: bool,
    no_transform: bool,
}

impl Default for CacheControl {
    /// Cantaloupe's default: `max-age=2592000, public, no-transform`.
    fn default() -> Self {
        Self::new()
            .max_age(Duration::from_secs(2_592_000))
            .public(true)
            .no_transform(true)
    }
}

impl CacheControl {
    /// Create an empty [`CacheControl`], with no directives.
    ///
    /// ```
    /// use tower_iiif::cache_control::CacheControl;
    ///
    /// assert_eq!(CacheControl::new().to_header_value(), "");
    /// assert_eq!("".parse::<CacheControl>().unwrap(), CacheControl::new());
    /// ```
    pub fn new() -> Self {
        Self {
            max_age: None,
            s_maxage: None,
            public: false,
            private: false,
            no_cache: false,
            no_store: false,
            must_revalidate: false,
            proxy_revalidate: false,
            no_transform: false,
        }
    }

    /// How long any cache may keep the response (`max-age`, Cantaloupe's `max_age`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_iiif::cache_control::CacheControl;
    /// let cc = CacheControl::new().max_age(Duration::from_secs(60));
    /// assert_eq!(cc.to_header_value(), "max-age=60");
    /// ```
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age.as_secs());
        self
    }

    /// How long a shared cache may keep the response (`s-maxage`, Cantaloupe's
    /// `shared_max_age`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_iiif::cache_control::CacheControl;
    /// let cc = CacheControl::new().s_maxage(Duration::from_millis(30_900)); // whole seconds
    /// assert_eq!(cc.to_header_value(), "s-maxage=30");
    /// ```
    pub fn s_maxage(mut self, age: Duration) -> Self {
        self.s_maxage = Some(age.as_secs());
        self
    }

    /// Whether shared caches may store the response (`public`); `true` drops `private`.
    ///
    /// ```
    /// # use tower_iiif::cache_control::CacheControl;
    /// let cc = CacheControl::new().private(true).public(true);
    /// assert_eq!(cc.to_header_value(), "public");
    /// ```
    pub fn public(mut self, public: bool) -> Self {
        self.public = public;
        if public {
            self.private = false;
        }
        self
    }

    /// Whether only the user's own cache may store the response (`private`); `true` drops
    /// `public`.
    ///
    /// ```
    /// # use tower_iiif::cache_control::CacheControl;
    /// let cc = CacheControl::default().private(true);
    /// assert_eq!(cc.to_header_value(), "max-age=2592000, private, no-transform");
    /// ```
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        if private {
            self.public = false;
        }
        self
    }

    /// Whether caches must revalidate before every reuse (`no-cache`).
    ///
    /// ```
    /// # use tower_iiif::cache_control::CacheControl;
    /// assert_eq!(CacheControl::new().no_cache(true).to_header_value(), "no-cache");
    /// ```
    pub fn no_cache(mut self, no_cache: bool) -> Self {
        self.no_cache = no_cache;
        self
    }

    /// Whether caches must not store the response at all (`no-store`).
    ///
    /// ```
    /// # use tower_iiif::cache_control::CacheControl;
    /// assert_eq!(CacheControl::new().no_store(true).to_header_value(), "no-store");
    /// ```
    pub fn no_store(mut self, no_store: bool) -> Self {
        self.no_store = no_store;
        self
    }

    /// Whether caches must revalidate a stale response before reuse (`must-revalidate`).
    ///
    /// ```
    /// # use tower_iiif::cache_control::CacheControl;
    /// let cc = CacheControl::new().must_revalidate(true);
    /// assert_eq!(cc.to_header_value(), "must-revalidate");
    /// ```
    pub fn must_revalidate(mut self, must_revalidate: bool) -> Self {
        self.must_revalidate = must_revalidate;
        self
    }

    /// Whether shared caches must revalidate a stale response before reuse
    /// (`proxy-revalidate`).
    ///
    /// ```
    /// # use tower_iiif::cache_control::CacheControl;
    /// let cc = CacheControl::new().proxy_revalidate(true);
    /// assert_eq!(cc.to_header_value(), "proxy-revalidate");
    /// ```
    pub fn proxy_revalidate(mut self, proxy_revalidate: bool) -> Self {
        self.proxy_revalidate = proxy_revalidate;
        self
    }

    /// Whether intermediaries must not transform (e.g. recompress) the body (`no-transform`).
    ///
    /// ```
    /// # use tower_iiif::cache_control::CacheControl;
    /// let cc = CacheControl::default().no_transform(false);
    /// assert_eq!(cc.to_header_value(), "max-age=2592000, public");
    /// ```
    pub fn no_transform(mut self, no_transform: bool) -> Self {
        self.no_transform = no_transform;
        self
    }

    /// The same value for a restricted response: without `public` and `s-maxage`, with
    /// `private` and `no-cache`, so that even the user's own browser asks again (and the
    /// authorization hook runs again, with a 304 when nothing changed) before reusing it.
    ///
    /// ```
    /// # use tower_iiif::cache_control::CacheControl;
    /// let cc: CacheControl = "max-age=60, s-maxage=30, public".parse().unwrap();
    /// assert_eq!(cc.restricted().to_header_value(), "max-age=60, private, no-cache");
    /// ```
    pub fn restricted(&self) -> CacheControl {
        let mut cc = self.clone().private(true).no_cache(true);
        cc.s_maxage = None;
        cc
    }

    /// The header value: `max-age`, `s-maxage`, `public` or `private`, `no-cache`, `no-store`,
    /// `must-revalidate`, `proxy-revalidate`, `no-transform`, in that order, comma-separated.
    /// Empty for an empty [`CacheControl`].
    ///
    /// ```
    /// # use tower_iiif::cache_control::CacheControl;
    /// let value = CacheControl::default().to_header_value();
    /// assert_eq!(value, "max-age=2592000, public, no-transform");
    /// assert_eq!(value, CacheControl::default().to_string());
    /// ```
    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.to_string()).expect("directives are visible ASCII")
    }

    fn is_empty(&self) -> bool {
        *self == Self::new()
    }
}

/// Writes the comma-separated directives one at a time.
struct Directives<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl Directives<'_, '_> {
    fn put(&mut self, directive: impl fmt::Display) -> fmt::Result {
        if !self.first {
            self.f.write_str(", ")?;
        }
        self.first = false;
        write!(self.f, "{directive}")
    }
}

impl fmt::Display for CacheControl {
    /// Writes the header value, as [`to_header_value`](CacheControl::to_header_value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Directives { f, first: true };
        if let Some(secs) = self.max_age {
            out.put(format_args!("max-age={secs}"))?;
        }
        if let Some(secs) = self.s_maxage {
            out.put(format_args!("s-maxage={secs}"))?;
        }
        let flags = [
            (self.public, "public"),
            (self.private, "private"),
            (self.no_cache, "no-cache"),
            (self.no_store, "no-store"),
            (self.must_revalidate, "must-revalidate"),
            (self.proxy_revalidate, "proxy-revalidate"),
            (self.no_transform, "no-transform"),
        ];
        for (set, name) in flags {
            if set {
                out.put(name)?;
            }
        }
        Ok(())
    }
}

impl FromStr for CacheControl {
    type Err = ParseCacheControlError;

    /// Parses a header-like value, e.g. `"max-age=3600, public"`. Directive names are
    /// case-insensitive; unknown, repeated or malformed directives, and `public` with `private`,
    /// are errors. An empty string is an empty [`CacheControl`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut cc = CacheControl::new();
        for part in s.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let err = |reason| ParseCacheControlError {
                directive: part.to_owned(),
                reason,
            };
            let (name, value) = match part.split_once('=') {
                Some((name, value)) => (name.trim(), Some(unquote(value.trim()))),
                None => (part, None),
            };
            let name = name.to_ascii_lowercase();
            match name.as_str() {
                "max-age" | "s-maxage" => {
                    let secs = seconds(value).map_err(err)?;
                    let slot = if name == "max-age" {
                        &mut cc.max_age
                    } else {
                        &mut cc.s_maxage
                    };
                    if slot.replace(secs).is_some() {
                        return Err(err("repeated"));
                    }
                }
                _ => {
                    let flag = match name.as_str() {
                        "public" => &mut cc.public,
                        "private" => &mut cc.private,
                        "no-cache" => &mut cc.no_cache,
                        "no-store" => &mut cc.no_store,
                        "must-revalidate" => &mut cc.must_revalidate,
                        "proxy-revalidate" => &mut cc.proxy_revalidate,
                        "no-transform" => &mut cc.no_transform,
                        _ => return Err(err("unknown directive")),
                    };
                    if value.is_some() {
                        return Err(err("takes no value"));
                    }
                    if std::mem::replace(flag, true) {
                        return Err(err("repeated"));
                    }
                    if cc.public && cc.private {
                        return Err(err("public and private together"));
                    }
                }
            }
        }
        Ok(cc)
    }
}

/// A directive value without its quotes, if quoted.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Delta-seconds: ASCII digits only.
fn seconds(value: Option<&str>) -> Result<u64, &'static str> {
    let value = value.ok_or("expected =seconds")?;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number of seconds");
    }
    value.parse().map_err(|_| "too many seconds")
}

/// The error returned when a string is not a [`CacheControl`] value.
///
/// ```
/// use tower_iiif::cache_control::CacheControl;
///
/// let err = "public, private".parse::<CacheControl>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid Cache-Control directive `private`: public and private together"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCacheControlError {
    directive: String,
    reason: &'static str,
}

impl fmt::Display for ParseCacheControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid Cache-Control directive `{}`: {}",
            self.directive, self.reason
        )
    }
}

impl std::error::Error for ParseCacheControlError {}

/// Layer that applies [`SetCacheControl`] which sets `Cache-Control` on successful image and
/// info.json responses.
///
/// See the [module docs](crate::cache_control) for an example.
///
/// ```
/// # use std::convert::Infallible;
/// # use http::{Request, Response, header};
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_iiif::cache_control::SetCacheControlLayer;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let inner = service_fn(|_req: Request<()>| async {
/// #     let res = Response::builder().header(header::CONTENT_TYPE, "image/jpeg").body(());
/// #     Ok::<_, Infallible>(res.unwrap())
/// # });
///
/// let svc = SetCacheControlLayer::new().layer(inner);
/// let req = Request::get("/a.jpg/full/max/0/default.jpg").body(()).unwrap();
/// let res = svc.oneshot(req).await.unwrap();
/// assert_eq!(res.headers()[header::CACHE_CONTROL], "max-age=2592000, public, no-transform");
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SetCacheControlLayer {
    images: CacheControl,
    info: CacheControl,
}

impl SetCacheControlLayer {
    /// Create a new [`SetCacheControlLayer`] with Cantaloupe's default value for both images and
    /// info.json: `max-age=2592000, public, no-transform`.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use http::{Request, Response, header};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use tower_iiif::cache_control::SetCacheControlLayer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let inner = service_fn(|_req: Request<()>| async {
    /// #     let json = "application/json";
    /// #     let res = Response::builder().header(header::CONTENT_TYPE, json).body(());
    /// #     Ok::<_, Infallible>(res.unwrap())
    /// # });
    ///
    /// let svc = SetCacheControlLayer::new().layer(inner); // the same as `default()`
    /// let res = svc.oneshot(Request::get("/a.jpg/info.json").body(()).unwrap()).await.unwrap();
    /// assert_eq!(res.headers()[header::CACHE_CONTROL], "max-age=2592000, public, no-transform");
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The value for image responses (`image/*`); an empty [`CacheControl`] sends none.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use http::{Request, Response, header};
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::cache_control::{CacheControl, SetCacheControlLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let inner = service_fn(|_req: Request<()>| async {
    /// #     let res = Response::builder().header(header::CONTENT_TYPE, "image/png").body(());
    /// #     Ok::<_, Infallible>(res.unwrap())
    /// # });
    /// let no_store = CacheControl::new().no_store(true);
    /// let svc = SetCacheControlLayer::new().images(no_store).layer(inner);
    /// let req = Request::get("/a.jpg/full/max/0/default.png").body(()).unwrap();
    /// let res = svc.oneshot(req).await;
    /// assert_eq!(res.unwrap().headers()[header::CACHE_CONTROL], "no-store");
    /// # }
    /// ```
    pub fn images(mut self, value: CacheControl) -> Self {
        self.images = value;
        self
    }

    /// The value for info.json responses (`application/json`, `application/ld+json`); an empty
    /// [`CacheControl`] sends none.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use http::{Request, Response, header};
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::cache_control::{CacheControl, SetCacheControlLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let inner = service_fn(|_req: Request<()>| async {
    /// #     let json = "application/ld+json";
    /// #     let res = Response::builder().header(header::CONTENT_TYPE, json).body(());
    /// #     Ok::<_, Infallible>(res.unwrap())
    /// # });
    /// let info = "max-age=60, must-revalidate".parse::<CacheControl>().unwrap();
    /// let svc = SetCacheControlLayer::new().info(info).layer(inner);
    /// let res = svc.oneshot(Request::get("/a.jpg/info.json").body(()).unwrap()).await;
    /// assert_eq!(res.unwrap().headers()[header::CACHE_CONTROL], "max-age=60, must-revalidate");
    /// # }
    /// ```
    pub fn info(mut self, value: CacheControl) -> Self {
        self.info = value;
        self
    }

    /// The same value for images and info.json.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use http::{Request, Response, header};
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::cache_control::{CacheControl, SetCacheControlLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let inner = service_fn(|_req: Request<()>| async {
    /// #     let res = Response::builder().header(header::CONTENT_TYPE, "image/jpeg").body(());
    /// #     Ok::<_, Infallible>(res.unwrap())
    /// # });
    /// // An empty value: no `Cache-Control` at all.
    /// let svc = SetCacheControlLayer::new().both(CacheControl::new()).layer(inner);
    /// let req = Request::get("/a.jpg/full/max/0/default.jpg").body(()).unwrap();
    /// let res = svc.oneshot(req).await;
    /// assert!(res.unwrap().headers().get(header::CACHE_CONTROL).is_none());
    /// # }
    /// ```
    pub fn both(mut self, value: CacheControl) -> Self {
        self.images = value.clone();
        self.info = value;
        self
    }
}

impl<S> Layer<S> for SetCacheControlLayer {
    type Service = SetCacheControl<S>;

    fn layer(&self, inner: S) -> SetCacheControl<S> {
        SetCacheControl {
            inner,
            values: Arc::new(Values {
                images: Pair::new(&self.images),
                info: Pair::new(&self.info),
            }),
        }
    }
}

/// The header values, made once per layered service.
#[derive(Debug)]
struct Values {
    images: Pair,
    info: Pair,
}

#[derive(Debug)]
struct Pair {
    /// `None` for an empty value: no header.
    normal: Option<HeaderValue>,
    /// Always sent on restricted responses, so shared caches never keep them by heuristic.
    restricted: HeaderValue,
}

impl Pair {
    fn new(cc: &CacheControl) -> Self {
        Self {
            normal: (!cc.is_empty()).then(|| cc.to_header_value()),
            restricted: cc.restricted().to_header_value(),
        }
    }
}

/// Middleware that sets `Cache-Control` on successful image and info.json responses, `private`
/// on restricted ones, and keeps any the inner service set.
///
/// See the [module docs](crate::cache_control) for an example.
///
/// ```
/// # use std::convert::Infallible;
/// # use http::{Request, Response, header};
/// use tower::{ServiceExt, service_fn};
/// use tower_iiif::cache_control::SetCacheControl;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let inner = service_fn(|_req: Request<()>| async {
/// #     let res = Response::builder().header(header::CONTENT_TYPE, "image/webp").body(());
/// #     Ok::<_, Infallible>(res.unwrap())
/// # });
///
/// let svc = SetCacheControl::new(inner);
/// let req = Request::get("/a.jpg/full/max/0/default.webp").body(()).unwrap();
/// let res = svc.oneshot(req).await.unwrap();
/// assert_eq!(res.headers()[header::CACHE_CONTROL], "max-age=2592000, public, no-transform");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SetCacheControl<S> {
    inner: S,
    values: Arc<Values>,
}

impl<S> SetCacheControl<S> {
    /// Create a new [`SetCacheControl`] with Cantaloupe's default value for images and
    /// info.json.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use http::{Request, Response, StatusCode};
    /// use tower::{ServiceExt, service_fn};
    /// use tower_iiif::cache_control::SetCacheControl;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    ///
    /// let inner = service_fn(|_req: Request<()>| async {
    ///     Ok::<_, Infallible>(Response::builder().status(404).body(()).unwrap())
    /// });
    /// let req = Request::get("/nope").body(()).unwrap();
    /// let res = SetCacheControl::new(inner).oneshot(req).await.unwrap();
    /// assert!(res.headers().get(http::header::CACHE_CONTROL).is_none()); // not on errors
    /// # }
    /// ```
    pub fn new(inner: S) -> Self {
        SetCacheControlLayer::new().layer(inner)
    }

    /// Gets a reference to the underlying service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Gets a mutable reference to the underlying service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the underlying service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl SetCacheControl<()> {
    /// Returns a new [`Layer`] that wraps services with a [`SetCacheControl`] middleware.
    ///
    /// ```
    /// let layer = tower_iiif::cache_control::SetCacheControl::layer();
    /// ```
    pub fn layer() -> SetCacheControlLayer {
        SetCacheControlLayer::new()
    }
}

impl<S: HasIiifContext> HasIiifContext for SetCacheControl<S> {
    fn iiif_context(&self) -> IiifContext {
        self.inner.iiif_context()
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for SetCacheControl<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let info_path = req.uri().path().ends_with("/info.json");
        ResponseFuture {
            inner: self.inner.call(req),
            values: Arc::clone(&self.values),
            info_path,
        }
    }
}

pin_project! {
    /// Response future for [`SetCacheControl`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        values: Arc<Values>,
        info_path: bool,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        set_cache_control(this.values, *this.info_path, &mut res);
        Poll::Ready(Ok(res))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Images,
    Info,
}

fn set_cache_control<B>(values: &Values, info_path: bool, res: &mut Response<B>) {
    let status = res.status();
    let not_modified = status == StatusCode::NOT_MODIFIED;
    if !(status.is_success() || not_modified) || res.headers().contains_key(CACHE_CONTROL) {
        return;
    }
    let kind = match kind_of(res.headers().get(CONTENT_TYPE)) {
        Some(kind) => kind,
        None if not_modified && info_path => Kind::Info,
        None if not_modified => Kind::Images,
        None => return,
    };
    let pair = match kind {
        Kind::Images => &values.images,
        Kind::Info => &values.info,
    };
    let value = if res.extensions().get::<Restricted>().is_some() {
        Some(pair.restricted.clone())
    } else {
        pair.normal.clone()
    };
    if let Some(value) = value {
        res.headers_mut().insert(CACHE_CONTROL, value);
    }
}

/// Which value a `Content-Type` gets, parameters ignored.
fn kind_of(content_type: Option<&HeaderValue>) -> Option<Kind> {
    let content_type = content_type?.to_str().ok()?;
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case("application/ld+json")
    {
        Some(Kind::Info)
    } else if essence.len() > "image/".len()
        && essence.as_bytes()[.."image/".len()].eq_ignore_ascii_case(b"image/")
    {
        Some(Kind::Images)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    fn response(status: u16, content_type: Option<&str>) -> Response<()> {
        let mut res = Response::builder().status(status);
        if let Some(content_type) = content_type {
            res = res.header(CONTENT_TYPE, content_type);
        }
        res.body(()).unwrap()
    }

    /// The `Cache-Control` sent for `res` to a request for `path`.
    async fn sent(layer: SetCacheControlLayer, path: &str, res: Response<()>) -> Option<String> {
        let mut res = Some(res);
        let svc = layer.layer(tower::service_fn(move |_req: Request<()>| {
            let res = res.take().unwrap();
            async move { Ok::<_, Infallible>(res) }
        }));
        let req = Request::get(path).body(()).unwrap();
        let res = svc.oneshot(req).await.unwrap();
        let value = res.headers().get(CACHE_CONTROL)?;
        Some(value.to_str().unwrap().to_owned())
    }

    const DEFAULT: &str = "max-age=2592000, public, no-transform";
    const IMAGE: &str = "/a.jpg/full/max/0/default.jpg";
    const INFO: &str = "/a.jpg/info.json";

    fn info_value() -> CacheControl {
        CacheControl::new()
            .max_age(Duration::from_secs(60))
            .must_revalidate(true)
    }

    #[tokio::test]
    async fn defaults_on_an_image() {
        let res = response(200, Some("image/jpeg"));
        let got = sent(SetCacheControlLayer::new(), IMAGE, res).await;
        assert_eq!(got.as_deref(), Some(DEFAULT));
        let res = response(206, Some("Image/PNG"));
        let got = sent(SetCacheControlLayer::new(), IMAGE, res).await;
        assert_eq!(got.as_deref(), Some(DEFAULT));
    }

    #[tokio::test]
    async fn info_json_gets_the_info_value() {
        let layer = SetCacheControlLayer::new().info(info_value());
        for content_type in [
            "application/json",
            "application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\"",
            "Application/JSON; charset=utf-8",
        ] {
            let res = response(200, Some(content_type));
            let got = sent(layer.clone(), INFO, res).await;
            assert_eq!(got.as_deref(), Some("max-age=60, must-revalidate"));
        }
        let res = response(200, Some("image/webp"));
        let got = sent(layer, IMAGE, res).await;
        assert_eq!(got.as_deref(), Some(DEFAULT));
    }

    #[tokio::test]
    async fn errors_redirects_and_other_types_get_none() {
        for status in [404, 500, 303, 400, 403, 503] {
            for content_type in [Some("image/jpeg"), Some("application/json"), None] {
                let res = response(status, content_type);
                let got = sent(SetCacheControlLayer::new(), IMAGE, res).await;
                assert_eq!(got, None, "{status} {content_type:?}");
            }
        }
        for content_type in [Some("text/plain; charset=utf-8"), Some("image/"), None] {
            let res = response(200, content_type);
            let got = sent(SetCacheControlLayer::new(), INFO, res).await;
            assert_eq!(got, None, "{content_type:?}");
        }
    }

    #[tokio::test]
    async fn not_modified_by_path() {
        let layer = SetCacheControlLayer::new().info(info_value());
        let got = sent(layer.clone(), "/x/info.json", response(304, None)).await;
        assert_eq!(got.as_deref(), Some("max-age=60, must-revalidate"));
        let got = sent(layer.clone(), IMAGE, response(304, None)).await;
        assert_eq!(got.as_deref(), Some(DEFAULT));
        // A Content-Type, when there is one, decides.
        let res = response(304, Some("application/json"));
        let got = sent(layer, IMAGE, res).await;
        assert_eq!(got.as_deref(), Some("max-age=60, must-revalidate"));
    }

    #[tokio::test]
    async fn keeps_an_existing_value() {
        let mut res = response(200, Some("image/jpeg"));
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let got = sent(SetCacheControlLayer::new(), IMAGE, res).await;
        assert_eq!(got.as_deref(), Some("no-store"));
    }

    #[tokio::test]
    async fn restricted_is_private() {
        let mut res = response(200, Some("image/jpeg"));
        res.extensions_mut().insert(Restricted);
        let got = sent(SetCacheControlLayer::new(), IMAGE, res).await;
        assert_eq!(
            got.as_deref(),
            Some("max-age=2592000, private, no-cache, no-transform")
        );

        let shared = CacheControl::default().s_maxage(Duration::from_secs(30));
        let mut res = response(304, None);
        res.extensions_mut().insert(Restricted);
        let got = sent(SetCacheControlLayer::new().both(shared), INFO, res).await;
        assert_eq!(
            got.as_deref(),
            Some("max-age=2592000, private, no-cache, no-transform")
        );
    }

    #[tokio::test]
    async fn empty_value_sends_none_but_restricted_sends_private() {
        let layer = SetCacheControlLayer::new().images(CacheControl::new());
        let got = sent(layer.clone(), IMAGE, response(200, Some("image/png"))).await;
        assert_eq!(got, None);
        let mut res = response(200, Some("image/png"));
        res.extensions_mut().insert(Restricted);
        let got = sent(layer.clone(), IMAGE, res).await;
        assert_eq!(got.as_deref(), Some("private, no-cache"));
        let got = sent(layer, INFO, response(200, Some("application/json"))).await;
        assert_eq!(got.as_deref(), Some(DEFAULT));
    }

    #[test]
    fn header_values() {
        assert_eq!(CacheControl::default().to_header_value(), DEFAULT);
        assert_eq!(CacheControl::new().to_header_value(), "");
        let all = CacheControl::new()
            .no_transform(true)
            .proxy_revalidate(true)
            .must_revalidate(true)
            .no_store(true)
            .no_cache(true)
            .private(true)
            .s_maxage(Duration::from_millis(30_900))
            .max_age(Duration::from_secs(60));
        assert_eq!(
            all.to_header_value(),
            "max-age=60, s-maxage=30, private, no-cache, no-store, must-revalidate, \
             proxy-revalidate, no-transform"
        );
        assert_eq!(
            all.clone()
                .public(true)
                .to_string()
                .matches("private")
                .count(),
            0
        );
        let restricted = CacheControl::default()
            .s_maxage(Duration::from_secs(30))
            .restricted();
        assert_eq!(
            restricted.to_string(),
            "max-age=2592000, private, no-cache, no-transform"
        );
    }

    #[test]
    fn parses() {
        let s = "max-age=60, s-maxage=30, public, no-transform";
        let cc: CacheControl = s.parse().unwrap();
        assert_eq!(cc.to_header_value(), s);
        let cc: CacheControl = " MAX-AGE=\"60\" ,No-Store,, ".parse().unwrap();
        assert_eq!(cc.to_string(), "max-age=60, no-store");
        assert_eq!("".parse::<CacheControl>().unwrap(), CacheControl::new());
        let all = "max-age=1, s-maxage=2, private, no-cache, no-store, must-revalidate, \
                   proxy-revalidate, no-transform";
        assert_eq!(all.parse::<CacheControl>().unwrap().to_string(), all);
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "max-age=abc",
            "bogus",
            "max-age",
            "max-age=",
            "max-age=+5",
            "max-age=-1",
            "max-age=99999999999999999999999",
            "public=1",
            "public, private",
            "max-age=1, max-age=2",
            "no-store, no-store",
            "immutable",
        ] {
            assert!(bad.parse::<CacheControl>().is_err(), "{bad}");
        }
        let err = "max-age=abc".parse::<CacheControl>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid Cache-Control directive `max-age=abc`: expected a whole number of seconds"
        );
        let err = "public, Bogus".parse::<CacheControl>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid Cache-Control directive `Bogus`: unknown directive"
        );
    }
}
