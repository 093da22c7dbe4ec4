//! The admin service: purges by identifier and of everything, through every cache tier, behind
//! a bearer token. The host mounts it where it likes (e.g. `/admin` with axum's
//! `nest_service`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::json;
use tower_service::Service;

use crate::IiifBody;
use crate::IiifService;
use crate::request::Identifier;
use crate::source::Source;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

trait Purger: Send + Sync {
    fn purge(&self, identifier: String) -> BoxFuture<usize>;
    fn purge_all(&self) -> BoxFuture<usize>;
}

impl<S: Source> Purger for IiifService<S> {
    fn purge(&self, identifier: String) -> BoxFuture<usize> {
        let this = self.clone();
        Box::pin(async move { this.purge(&identifier).await })
    }

    fn purge_all(&self) -> BoxFuture<usize> {
        let this = self.clone();
        Box::pin(async move { this.purge_all().await })
    }
}

/// Purges through HTTP: `POST {mount}/purge/{identifier}` forgets one image (its source's
/// metadata and chunks, its header, its derivatives in every tier, shared tiers included, so
/// every instance misses afterwards), `POST {mount}/purge` forgets everything. Each needs
/// `Authorization: Bearer <token>` (else 401); answers `{"purged": N}` with the number of
/// entries removed. Other methods are 405, other paths 404.
///
/// ```
/// use http_body_util::BodyExt;
/// use tower::ServiceExt;
/// use tower_iiif::{IiifService, admin::Admin, cache::MemoryCache, samples, source::FsSource};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir().join(format!("tower-iiif-doc-admin-{}", std::process::id()));
/// # samples::write_samples(&dir).unwrap();
/// let iiif = IiifService::new(FsSource::new(&dir).unwrap()).derivative_cache(MemoryCache::new(1 << 26));
/// let admin = Admin::new("s3cret").purging(&iiif);
/// let get = |p: &str| http::Request::get(p).body(()).unwrap();
/// iiif.clone().oneshot(get("/gray/full/64,/0/default.jpg")).await.unwrap();
///
/// let post = |p: &str, token: &str| {
///     http::Request::post(p).header("authorization", format!("Bearer {token}")).body(()).unwrap()
/// };
/// assert_eq!(admin.clone().oneshot(post("/purge/gray", "wrong")).await.unwrap().status(), 401);
/// let res = admin.clone().oneshot(post("/purge/gray", "s3cret")).await.unwrap();
/// assert_eq!(res.status(), 200);
/// let body = res.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["purged"], 1);
/// assert_eq!(admin.oneshot(get("/purge")).await.unwrap().status(), 405);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct Admin {
    token: Arc<str>,
    targets: Arc<Vec<Arc<dyn Purger>>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("services", &self.targets.len())
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// An admin service that accepts `token`. An empty token accepts nobody.
    ///
    /// ```
    /// let admin = tower_iiif::admin::Admin::new("s3cret");
    /// # let _ = admin;
    /// ```
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: token.into().into(),
            targets: Arc::default(),
        }
    }

    /// Purge through `service` too (e.g. both the Image API 3 and 2 services).
    ///
    /// ```
    /// use tower_iiif::{IiifService, admin::Admin, source::FsSource};
    /// let v3 = IiifService::new(FsSource::new(".").unwrap());
    /// let admin = Admin::new("s3cret").purging(&v3);
    /// # let _ = admin;
    /// ```
    pub fn purging<S: Source>(mut self, service: &IiifService<S>) -> Self {
        Arc::make_mut(&mut self.targets).push(Arc::new(service.clone()));
        self
    }

    fn authorized(&self, headers: &http::HeaderMap) -> bool {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Compared in time independent of where they differ.
        let (a, b) = (given.as_bytes(), self.token.as_bytes());
        let differ =
            a.len() != b.len() || a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) != 0;
        !self.token.is_empty() && !differ
    }
}

fn json_response(status: StatusCode, doc: serde_json::Value) -> Response<IiifBody> {
    crate::service::json_response(status, &doc, "no-store")
}

impl<B> Service<Request<B>> for Admin {
    type Response = Response<IiifBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<IiifBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        let (parts, _body) = req.into_parts();
        Box::pin(async move {
            // `.../purge` or `.../purge/{id}` (an image may be called `purge`).
            let path = parts.uri.path().trim_end_matches('/');
            let segments: Vec<&str> = path.split('/').collect();
            let target = match segments.as_slice() {
                [.., "purge", id] => Some(Some((*id).to_owned())),
                [.., "purge"] => Some(None),
                _ => None,
            };
            let Some(target) = target else {
                return Ok(json_response(
                    StatusCode::NOT_FOUND,
                    json!({"error": "not an admin path"}),
                ));
            };
            if parts.method != Method::POST {
                let mut res = json_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!({"error": "only POST is allowed"}),
                );
                res.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
                return Ok(res);
            }
            if !this.authorized(&parts.headers) {
                let mut res = json_response(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": "a valid bearer token is required"}),
                );
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"admin\""),
                );
                return Ok(res);
            }
            let mut purged = 0;
            match target {
                Some(encoded) => {
                    let id = match Identifier::decode(&encoded, &Default::default()) {
                        Ok(id) => id,
                        Err(e) => {
                            return Ok(json_response(
                                StatusCode::BAD_REQUEST,
                                json!({"error": e.message()}),
                            ));
                        }
                    };
                    for t in this.targets.iter() {
                        purged += t.purge(id.as_str().to_owned()).await;
                    }
                    tracing::info!(identifier = id.as_str(), purged, "admin: purge");
                    Ok(json_response(
                        StatusCode::OK,
                        json!({"identifier": id.as_str(), "purged": purged}),
                    ))
                }
                None => {
                    for t in this.targets.iter() {
                        purged += t.purge_all().await;
                    }
                    tracing::info!(purged, "admin: purge everything");
                    Ok(json_response(StatusCode::OK, json!({"purged": purged})))
                }
            }
        })
    }
}
