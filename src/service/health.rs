//! The health endpoint: `IiifService::health()`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use serde_json::json;
use tower_service::Service;

use super::IiifBody;
use crate::cache::{AnyCache, CacheBackend};
use crate::source::Source;

/// A tower service answering health checks: 200 `{"status":"ok",…}` when the source is
/// reachable, 503 `{"status":"error","message":…}` when not; never cached. Mount it anywhere
/// (e.g. `Router::route_service("/health", iiif.health())`).
///
/// ```
/// use tower::ServiceExt;
/// use tower_iiif::{IiifService, source::FsSource};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = IiifService::new(FsSource::new(".").unwrap()).health();
/// let res = health.oneshot(http::Request::get("/health").body(()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), 200);
/// assert_eq!(res.headers()["cache-control"], "no-cache");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Health<S> {
    pub(super) source: S,
    pub(super) cache: Option<AnyCache>,
}

impl<S: Source, B> Service<Request<B>> for Health<S> {
    type Response = Response<IiifBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<IiifBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        let (source, cache) = (self.source.clone(), self.cache.clone());
        Box::pin(async move {
            let source_check = source.check().await;
            let cache_check = match &cache {
                Some(c) => Some((c.tier(), c.check().await)),
                None => None,
            };
            let mut checks = serde_json::Map::new();
            let word = |r: &Result<(), crate::Error>| match r {
                Ok(()) => json!("ok"),
                Err(e) => json!(e.message()),
            };
            checks.insert("source".into(), word(&source_check));
            if let Some((tier, r)) = &cache_check {
                checks.insert(format!("cache ({tier})"), word(r));
            }
            let failed = source_check
                .err()
                .or_else(|| cache_check.and_then(|(_, r)| r.err()));
            let (status, doc) = match failed {
                None => (
                    StatusCode::OK,
                    json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "checks": checks}),
                ),
                Some(e) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"status": "error", "message": e.message(), "checks": checks}),
                ),
            };
            let res = json_response(status, &doc, "no-cache");
            Ok(res)
        })
    }
}

/// A JSON document as a response, with its length and `Cache-Control`.
pub(crate) fn json_response(
    status: StatusCode,
    doc: &serde_json::Value,
    cache_control: &'static str,
) -> Response<IiifBody> {
    let body = doc.to_string();
    let len = body.len();
    let mut res = Response::new(IiifBody::from(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FsSource;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn unreachable_source_is_503() {
        let dir = std::env::temp_dir().join(format!("tower-iiif-health-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let health = crate::IiifService::new(FsSource::new(&dir).unwrap()).health();
        let ok = health.clone().oneshot(Request::new(())).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        std::fs::remove_dir_all(&dir).unwrap();
        let res = health.oneshot(Request::new(())).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["status"], "error");
        assert!(doc["message"].as_str().unwrap().contains("unreadable"));
    }
}
