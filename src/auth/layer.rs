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
use crate::service::IiifContext;

/// Layer that applies [`Authorize`] which asks an [`AuthorizeImage`] hook about every info and
/// image request.
///
/// See the [module docs](crate::auth) for an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthorizeLayer<A> {
    context: IiifContext,
    hook: A,
    services: InfoServices,
}

impl<A: AuthorizeImage> AuthorizeLayer<A> {
    /// Create a new [`AuthorizeLayer`] for the `IiifService` that `context` came from
    /// (`IiifService::context()`), asking `hook`.
    pub fn new(context: IiifContext, hook: A) -> Self {
        Self {
            context,
            hook,
            services: InfoServices::new(),
        }
    }

    /// Declare an IIIF Authorization Flow 2.0 probe service in info.json, with these access
    /// services (`AuthAccessService2` objects, each with its token and logout services, as the
    /// app implements them), and answer `{image id}/probe` with an `AuthProbeResult2`.
    pub fn auth2_probe(mut self, access_services: Vec<Value>) -> Self {
        self.services = self.services.auth2_probe(access_services);
        self
    }

    /// Add another service description to info.json (e.g. an Auth 1.0 cookie service).
    pub fn info_service(mut self, service: Value) -> Self {
        self.services = self.services.service(service);
        self
    }
}

impl<S, A: Clone> Layer<S> for AuthorizeLayer<A> {
    type Service = Authorize<S, A>;

    fn layer(&self, inner: S) -> Authorize<S, A> {
        Authorize {
            inner,
            context: self.context.clone(),
            hook: self.hook.clone(),
            services: self.services.clone(),
        }
    }
}

/// Middleware that asks an [`AuthorizeImage`] hook about every info and image request before
/// the inner service (and any cache in it) sees the request.
///
/// See the [module docs](crate::auth) for an example.
#[derive(Debug, Clone)]
pub struct Authorize<S, A> {
    inner: S,
    context: IiifContext,
    hook: A,
    services: InfoServices,
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
