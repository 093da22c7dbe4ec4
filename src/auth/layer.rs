//! [`AuthorizeLayer`], [`Authorize`] and its [`ResponseFuture`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tower_layer::Layer;
use tower_service::Service;

use super::{AuthRequest, AuthTarget, AuthorizeImage, Decision, Denied, ResponseBody};
use crate::cache_control::Restricted;
use crate::info::InfoServices;
use crate::plan::Limits;
use crate::request::{Identifier, IiifRequest};
use crate::service::{HasIiifContext, IiifContext};

/// Layer that applies [`Authorize`] which asks an [`AuthorizeImage`] hook about every info and
/// image request.
///
/// It reads the mount path, API version and identifier options from the service it wraps
/// ([`HasIiifContext`]: `IiifService` or one of this crate's layers around it), so one layer
/// can wrap the 3.0 and the 2.1 service alike and cannot get out of step with their settings.
///
/// See the [module docs](crate::auth) for an example.
///
/// ```
/// use tower::{Layer, ServiceExt};
/// use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision};
/// use tower_iiif::{IiifService, source::FsSource};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
///
/// let iiif = IiifService::new(FsSource::new(".").unwrap()).path_prefix("/iiif/3");
/// let layer = AuthorizeLayer::new(|_req: AuthRequest| async {
///     Decision::Redirect("https://example.org/login".into())
/// });
/// let svc = layer.layer(iiif); // parses paths as `iiif` does: under /iiif/3
/// let res = svc.oneshot(http::Request::get("/iiif/3/a/info.json").body(()).unwrap()).await;
/// assert_eq!(res.unwrap().headers()["location"], "https://example.org/login");
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct AuthorizeLayer<A> {
    hook: A,
    services: InfoServices,
}

impl<A: AuthorizeImage> AuthorizeLayer<A> {
    /// Create a new [`AuthorizeLayer`] asking `hook`.
    ///
    /// ```
    /// use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision};
    /// let layer = AuthorizeLayer::new(|_req: AuthRequest| async { Decision::Allow });
    /// ```
    pub fn new(hook: A) -> Self {
        Self {
            hook,
            services: InfoServices::new(),
        }
    }

    /// Declare an IIIF Authorization Flow 2.0 probe service in info.json, with these access
    /// services (`AuthAccessService2` objects, each with its token and logout services, as the
    /// app implements them), and answer `{image id}/probe` with an `AuthProbeResult2`.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// # use serde_json::json;
    /// # type Res = http::Response<tower_iiif::auth::ResponseBody<tower_iiif::IiifBody>>;
    /// # async fn body_json(res: Res) -> serde_json::Value {
    /// #     use http_body_util::BodyExt;
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let iiif = IiifService::new(FsSource::new(".").unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let login = json!({"id": "https://auth.example/login", "type": "AuthAccessService2"});
    /// let hook = |_req: AuthRequest| async { Decision::Deny(Denied::unauthorized("log in")) };
    /// let svc = AuthorizeLayer::new(hook).auth2_probe(vec![login]).layer(iiif);
    /// let res = svc.oneshot(get("/page1/probe")).await.unwrap();
    /// assert_eq!(res.status(), 200); // the probe itself always answers 200
    /// let probe_result = body_json(res).await;
    /// assert_eq!(probe_result["type"], "AuthProbeResult2");
    /// assert_eq!(probe_result["status"], 401); // what an image request would get
    /// # }
    /// ```
    pub fn auth2_probe(mut self, access_services: Vec<Value>) -> Self {
        self.services = self.services.auth2_probe(access_services);
        self
    }

    /// Add another service description to info.json (e.g. an Auth 1.0 cookie service).
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # use serde_json::json;
    /// # type Res = http::Response<tower_iiif::auth::ResponseBody<tower_iiif::IiifBody>>;
    /// # async fn body_json(res: Res) -> serde_json::Value {
    /// #     use http_body_util::BodyExt;
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "info-service", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let iiif = IiifService::new(FsSource::new(&dir).unwrap());
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let service = json!({"@id": "https://example.org/login", "@type": "AuthCookieService1"});
    /// let hook = |_req: AuthRequest| async { Decision::Allow };
    /// let svc = AuthorizeLayer::new(hook).info_service(service.clone()).layer(iiif);
    /// let res = svc.oneshot(get("/gray/info.json")).await.unwrap();
    /// assert_eq!(body_json(res).await["service"], json!([service]));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn info_service(mut self, service: Value) -> Self {
        self.services = self.services.service(service);
        self
    }
}

impl<S: HasIiifContext, A: Clone> Layer<S> for AuthorizeLayer<A> {
    type Service = Authorize<S, A>;

    fn layer(&self, inner: S) -> Authorize<S, A> {
        Authorize {
            context: inner.iiif_context(),
            inner,
            hook: self.hook.clone(),
            services: self.services.clone(),
        }
    }
}

/// Middleware that asks an [`AuthorizeImage`] hook about every info and image request before
/// the inner service (and any cache in it) sees the request.
///
/// See the [module docs](crate::auth) for an example.
///
/// ```
/// use tower::ServiceExt;
/// use tower_iiif::auth::{AuthRequest, Authorize, Decision, Denied};
/// use tower_iiif::{IiifService, source::FsSource};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
///
/// let iiif = IiifService::new(FsSource::new(".").unwrap());
/// let svc = Authorize::new(iiif, |_req: AuthRequest| async {
///     Decision::Deny(Denied::forbidden("members only"))
/// });
/// let res = svc.oneshot(http::Request::get("/a/info.json").body(()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), 403);
/// assert_eq!(res.headers()["cache-control"], "no-store");
/// # }
/// ```
#[derive(Clone)]
pub struct Authorize<S, A> {
    inner: S,
    context: IiifContext,
    hook: A,
    services: InfoServices,
}

impl<S: HasIiifContext, A: AuthorizeImage> Authorize<S, A> {
    /// Wrap `inner`, asking `hook`; the same as `AuthorizeLayer::new(hook).layer(inner)`.
    ///
    /// ```
    /// use tower_iiif::auth::{AuthRequest, Authorize, Decision};
    /// use tower_iiif::{IiifService, source::FsSource};
    /// let iiif = IiifService::new(FsSource::new(".").unwrap());
    /// let svc = Authorize::new(iiif, |_req: AuthRequest| async { Decision::Allow });
    /// ```
    pub fn new(inner: S, hook: A) -> Self {
        AuthorizeLayer::new(hook).layer(inner)
    }
}

impl<A: AuthorizeImage> Authorize<(), A> {
    /// Returns a new [`Layer`] that wraps services with an [`Authorize`] middleware.
    ///
    /// ```
    /// use tower_iiif::auth::{AuthRequest, Authorize, Decision};
    /// let layer = Authorize::layer(|_req: AuthRequest| async { Decision::Allow });
    /// ```
    pub fn layer(hook: A) -> AuthorizeLayer<A> {
        AuthorizeLayer::new(hook)
    }
}

impl<S, A> Authorize<S, A> {
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

impl<S, A> HasIiifContext for Authorize<S, A> {
    fn iiif_context(&self) -> IiifContext {
        self.context.clone()
    }
}

impl<A> std::fmt::Debug for AuthorizeLayer<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizeLayer")
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl<S: std::fmt::Debug, A> std::fmt::Debug for Authorize<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorize")
            .field("inner", &self.inner)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

type BoxedResponse<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

/// Response future for [`Authorize`].
pub struct ResponseFuture<B, E> {
    inner: BoxedResponse<B, E>,
}

impl<B, E> std::fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<S, A, ReqB, ResB> Service<Request<ReqB>> for Authorize<S, A>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    A: AuthorizeImage,
    ReqB: Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays behind (tower's pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (context, hook, services) = (
            self.context.clone(),
            self.hook.clone(),
            self.services.clone(),
        );
        let fut = async move {
            let (mut parts, body) = req.into_parts();
            let pass = |inner: &mut S, parts, body| {
                let fut = inner.call(Request::from_parts(parts, body));
                async move { fut.await.map(|res| res.map(ResponseBody::inner)) }
            };
            // Preflights pass untouched (they carry no credentials).
            if parts.method == Method::OPTIONS {
                return pass(&mut inner, parts, body).await;
            }
            if services.has_probe()
                && let Some(id) = probe_identifier(&context, parts.uri.path())
            {
                let request =
                    AuthRequest::new(AuthTarget::Probe(id), &parts, context.lookup().clone());
                return Ok(probe_result(hook.authorize(request).await));
            }
            let target = match context.parser().parse(&parts) {
                Ok(IiifRequest::Info(id)) => {
                    parts.extensions.insert(IiifRequest::Info(id.clone()));
                    AuthTarget::Info(id)
                }
                Ok(IiifRequest::Image(r)) => {
                    parts.extensions.insert(IiifRequest::Image(r.clone()));
                    AuthTarget::Image(r)
                }
                // Base URI redirects reveal nothing: the inner service answers them.
                Ok(IiifRequest::Base(_)) => return pass(&mut inner, parts, body).await,
                // What we cannot parse is never passed on unasked: answered here.
                Err(e) => {
                    let status = e.status();
                    return Ok(synthesized(
                        status,
                        "text/plain; charset=utf-8",
                        format!("{}\n", e.message()),
                    ));
                }
            };
            if matches!(target, AuthTarget::Info(_)) && services != InfoServices::new() {
                parts.extensions.insert(services.clone());
            }
            let request = AuthRequest::new(target, &parts, context.lookup().clone());
            let restricted = match hook.authorize(request).await {
                Decision::Allow => false,
                Decision::AllowRestricted => true,
                Decision::Degrade(limits) => {
                    let tighter = match parts.extensions.get::<Limits>() {
                        Some(outer) => outer.tighten(&limits),
                        None => limits,
                    };
                    parts.extensions.insert(tighter);
                    true
                }
                Decision::Deny(denied) => return Ok(refusal(&denied)),
                Decision::Redirect(location) => return Ok(redirect(&location)),
            };
            let mut res = pass(&mut inner, parts, body).await?;
            if restricted {
                res.extensions_mut().insert(Restricted);
                // Whatever the layer order, a restricted response never leaves `public`.
                let public = res
                    .headers()
                    .get(header::CACHE_CONTROL)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.to_ascii_lowercase().contains("public"));
                if public {
                    res.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("private, no-cache"),
                    );
                }
            }
            Ok(res)
        };
        ResponseFuture {
            inner: Box::pin(fut),
        }
    }
}

/// `{id}/probe` relative to the mount point: the decoded identifier.
fn probe_identifier(context: &IiifContext, path: &str) -> Option<Identifier> {
    let rel = context.parser().relative_path(path);
    let segment = rel
        .strip_prefix('/')
        .unwrap_or(rel)
        .strip_suffix("/probe")?;
    if segment.is_empty() || segment.contains('/') {
        return None;
    }
    Identifier::decode(segment, context.parser().identifier_options()).ok()
}

fn synthesized<B>(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<ResponseBody<B>> {
    let len = body.len();
    let mut res = Response::new(ResponseBody::synthesized(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn refusal<B>(denied: &Denied) -> Response<ResponseBody<B>> {
    let message = denied
        .message
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut res = synthesized(
        denied.status,
        "text/plain; charset=utf-8",
        format!("{message}\n"),
    );
    if let (true, Some(c)) = (denied.status == StatusCode::UNAUTHORIZED, &denied.challenge) {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, c.clone());
    }
    res
}

fn redirect<B>(location: &str) -> Response<ResponseBody<B>> {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut res = synthesized(
                StatusCode::FOUND,
                "text/plain; charset=utf-8",
                String::new(),
            );
            res.headers_mut().insert(header::LOCATION, v);
            res
        }
        Err(_) => synthesized(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "the authorization hook gave an invalid redirect\n".into(),
        ),
    }
}

/// The `AuthProbeResult2` for a decision: always HTTP 200, the would-be status inside.
fn probe_result<B>(decision: Decision) -> Response<ResponseBody<B>> {
    let mut doc = json!({
        "@context": "http://iiif.io/api/auth/2/context.json",
        "type": "AuthProbeResult2",
    });
    let status = match &decision {
        Decision::Allow | Decision::AllowRestricted | Decision::Degrade(_) => 200,
        Decision::Deny(d) => {
            doc["heading"] = json!({"en": [d.message.clone()]});
            d.status.as_u16()
        }
        Decision::Redirect(location) => {
            doc["location"] = json!({"id": location, "type": "Image"});
            302
        }
    };
    doc["status"] = json!(status);
    synthesized(StatusCode::OK, "application/ld+json", doc.to_string())
}
