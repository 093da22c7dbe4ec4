//! [`IiifService`]: the tower `Service` that answers IIIF Image API requests.
//!
//! # Example
//!
//! ```
//! use tower::ServiceExt;
//! use tower_iiif::{IiifService, source::FsSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let dir = std::env::temp_dir();
//! let svc = IiifService::new(FsSource::new(&dir).unwrap()).path_prefix("/iiif/3");
//! let req = http::Request::get("/iiif/3/abc")
//!     .header("host", "example.org")
//!     .body(())
//!     .unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), 303);
//! assert_eq!(res.headers()["location"], "http://example.org/iiif/3/abc/info.json");
//! # }
//! ```

mod body;
mod conditional;
mod context;
mod handle;
mod health;
mod job;
mod lookup;
mod memory;
mod negotiate;
pub(crate) mod render;
mod respond;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response};
use serde_json::Value;
use tokio::sync::Semaphore;
use tower_service::Service;
use tracing::Instrument;

pub use body::IiifBody;
pub use context::{HasIiifContext, IiifContext};
pub(crate) use context::{ImageLookup, RequestParser};
pub use health::Health;
pub(crate) use health::json_response;

use crate::base_uri::{BaseUri, PublicIdentifier};
use crate::cache::{AnyCache, CacheBackend, CacheKey, CachedDerivative, DerivativeCache};
use crate::codec::{self, EncodeOptions, Header, SourceFormat};
use crate::info::{ImageInfo, InfoOptions, InfoServices};
use crate::pixels::Budget;
use crate::plan::{Limits, OverLimit, PlanOptions};
use crate::request::{
    ApiVersion, Format, Identifier, IdentifierOptions, IiifRequest, ImageRequest,
};
use crate::source::{Source, SourceObject, SourceRequest};
use crate::tiff::TiffPyramid;
use crate::{Error, ErrorKind, flat, jp2};

pub(crate) use job::{RenderInput, reserve_render_slot};

/// How many bytes of a file are read first to find its header; the whole file is read only
/// when the header is not within them.
const HEADER_PREFIX: u64 = 64 * 1024;

/// What makes the bytes of a render besides the request and the source, in cache keys and
/// entity tags: the crate version, a revision of the render paths (bumped when they change the
/// output), and the JPEG codec.
#[cfg(feature = "turbojpeg")]
pub(crate) const RENDERER: &str = concat!(env!("CARGO_PKG_VERSION"), "/r3/libjpeg-turbo");
#[cfg(not(feature = "turbojpeg"))]
pub(crate) const RENDERER: &str = concat!(env!("CARGO_PKG_VERSION"), "/r3");

/// The service's configuration; cloned on write, so services built from one another share
/// their caches but not their settings.
#[derive(Debug, Clone)]
struct Config {
    version: ApiVersion,
    path_prefix: String,
    base_uri: Option<BaseUri>,
    identifiers: IdentifierOptions,
    info: InfoOptions,
    plan: PlanOptions,
    budget: Budget,
    max_source_bytes: u64,
    encode: EncodeOptions,
    /// Whether requests for whole stored JPEG tiles at their size get the stored bytes
    /// (one tile: passthrough; several: joined) instead of a decode and an encode.
    stored_tiles: bool,
    derivatives: Option<DerivativeCache<AnyCache>>,
    /// Reduced pyramids of large flat sources; `None` turns them off.
    reduced: Option<flat::ReducedCache>,
}

/// State shared by every clone of a service: caches and the render pool's bounds.
#[derive(Debug)]
pub(crate) struct Shared {
    info_cache: quick_cache::sync::Cache<InfoKey, Header>,
    /// Tiled TIFF pyramids by source version; `None` remembers "not a usable pyramid".
    pyramids: quick_cache::sync::Cache<InfoKey, Option<Arc<TiffPyramid>>>,
    /// JPEG 2000 main headers by source version.
    jp2_info: quick_cache::sync::Cache<InfoKey, crate::jp2::Jp2Info>,
    /// JPEG 2000 tile-part indexes by source version, weighed by bytes; `None` remembers "no
    /// usable index".
    codestreams: jp2::IndexCache,
    pub(crate) renders: Arc<Semaphore>,
    /// The configured number of render permits (the semaphore only knows the free ones).
    render_permits: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    pub(crate) renders_done: std::sync::atomic::AtomicU64,
    /// The memory ceiling of renders.
    pub(crate) memory: Arc<memory::Ceiling>,
    /// Recent render times and the longest expected wait in the queue.
    pub(crate) queue: memory::Queue,
}

/// An info cache key: the identifier and the version of its file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct InfoKey {
    pub(crate) id: Identifier,
    pub(crate) len: u64,
    pub(crate) modified: Option<SystemTime>,
    pub(crate) etag: Option<String>,
}

impl InfoKey {
    pub(crate) fn new(id: &Identifier, meta: &crate::source::SourceMetadata) -> Self {
        Self {
            id: id.clone(),
            len: meta.len,
            modified: meta.modified,
            etag: meta.etag.clone(),
        }
    }
}

/// The IIIF Image API as a tower [`Service`]: base URI redirects, info.json and images, for one
/// API version, from one [`Source`].
///
/// Cheap to clone (two `Arc`s and the source), `Send + Sync`, always ready, and it never fails:
/// every error becomes a response with the right status. Clones share their caches and render
/// pool, so serving 2.1 beside 3.0 is one clone with another version and prefix:
///
/// ```
/// use tower_iiif::{IiifService, request::ApiVersion, source::FsSource};
///
/// let v3 = IiifService::new(FsSource::new(".").unwrap()).path_prefix("/iiif/3");
/// let v2 = v3.clone().version(ApiVersion::V2).path_prefix("/iiif/2");
/// let app: axum::Router = axum::Router::new()
///     .nest_service("/iiif/3", v3)
///     .nest_service("/iiif/2", v2);
/// # let _ = app;
/// ```
///
#[derive(Clone)]
#[must_use]
pub struct IiifService<S> {
    config: Arc<Config>,
    shared: Arc<Shared>,
    source: S,
}

impl<S> std::fmt::Debug for IiifService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IiifService")
            .field("version", &self.config.version)
            .field("path_prefix", &self.config.path_prefix)
            .finish_non_exhaustive()
    }
}

impl<S: Source> IiifService<S> {
    /// Create a new [`IiifService`] serving API 3.0 from `source`, mounted at the root.
    ///
    /// ```
    /// use tower::ServiceExt;
    /// use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-new", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # async fn body_json(res: http::Response<tower_iiif::IiifBody>) -> serde_json::Value {
    /// #     use http_body_util::BodyExt;
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    ///
    /// let svc = IiifService::new(FsSource::new(&dir).unwrap());
    /// let req = http::Request::get("/gray/info.json").header("host", "localhost:8080").body(());
    /// let res = svc.oneshot(req.unwrap()).await.unwrap();
    /// let info = body_json(res).await;
    /// assert_eq!(info["id"], "http://localhost:8080/gray");
    /// assert_eq!(info["type"], "ImageService3");
    /// assert_eq!((info["width"].as_u64(), info["height"].as_u64()), (Some(700), Some(500)));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn new(source: S) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            config: Arc::new(Config {
                version: ApiVersion::V3,
                path_prefix: String::new(),
                base_uri: None,
                identifiers: IdentifierOptions::default(),
                info: InfoOptions::new(ApiVersion::V3),
                plan: PlanOptions::new(ApiVersion::V3),
                budget: Budget::default(),
                max_source_bytes: 1 << 30,
                derivatives: None,
                encode: EncodeOptions::default(),
                stored_tiles: true,
                reduced: Some(flat::ReducedCache::new(256 << 20, 16_000_000)),
            }),
            shared: Arc::new(Shared {
                info_cache: quick_cache::sync::Cache::new(10_000),
                pyramids: quick_cache::sync::Cache::new(256),
                jp2_info: quick_cache::sync::Cache::new(10_000),
                codestreams: jp2::index_cache(),
                renders: Arc::new(Semaphore::new(cores)),
                render_permits: AtomicUsize::new(cores),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(cores + 64),
                renders_done: std::sync::atomic::AtomicU64::new(0),
                memory: Arc::new(memory::Ceiling::new(512 << 20)),
                queue: memory::Queue::new(std::time::Duration::from_secs(5)),
            }),
            source,
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The API version served (3.0 by default).
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # use tower_iiif::request::ApiVersion;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-version", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// # async fn info_json(svc: IiifService<FsSource>, path: &str) -> serde_json::Value {
    /// #     let res = svc.oneshot(http::Request::get(path).body(()).unwrap()).await.unwrap();
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// let svc = IiifService::new(source).version(ApiVersion::V2);
    /// let info = info_json(svc, "/gray/info.json").await;
    /// assert_eq!(info["@context"], "http://iiif.io/api/image/2/context.json");
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn version(mut self, version: ApiVersion) -> Self {
        let c = self.config_mut();
        c.version = version;
        c.info.version = version;
        c.plan = PlanOptions::new(version)
            .upscaling(c.plan.is_upscaling())
            .limits(*c.plan.get_limits());
        self
    }

    /// The path under which the service is mounted, e.g. `/iiif/3`. It is used to build the
    /// public base URI, and stripped from request paths that still carry it (a router that
    /// strips it itself, like axum's `nest_service`, works too). Under axum's `nest_service`
    /// with the `axum` feature it is not needed: the service reads the nested path from axum's
    /// `OriginalUri`.
    ///
    /// ```
    /// use tower_iiif::{IiifService, source::FsSource};
    /// // Under plain hyper, which does not strip the path:
    /// let svc = IiifService::new(FsSource::new(".").unwrap()).path_prefix("/iiif/3");
    /// ```
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        let mut p: String = prefix.into();
        while p.ends_with('/') {
            p.pop();
        }
        if !p.is_empty() && !p.starts_with('/') {
            p.insert(0, '/');
        }
        self.config_mut().path_prefix = p;
        self
    }

    /// The public URL of the app this service is mounted in (`scheme://host[:port][/path]`,
    /// without the mount path, like Cantaloupe's `base_uri`), used instead of the `Host`
    /// header; the mount path is appended. A [`BaseUri`] request extension (from
    /// [`SetBaseUri`](crate::base_uri::SetBaseUri)) still takes precedence.
    ///
    /// ```
    /// use tower_iiif::{IiifService, source::FsSource};
    /// // ids are https://images.example.org/iiif/3/{identifier}
    /// let svc = IiifService::new(FsSource::new(".").unwrap())
    ///     .path_prefix("/iiif/3")
    ///     .base_uri("https://images.example.org");
    /// ```
    pub fn base_uri(mut self, uri: impl Into<String>) -> Self {
        self.config_mut().base_uri = Some(BaseUri::new(uri));
        self
    }

    /// How identifiers are decoded (`+` as space, slash substitute).
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # use tower_iiif::request::IdentifierOptions;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-id-options", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// # async fn info_json(svc: IiifService<FsSource>, path: &str) -> serde_json::Value {
    /// #     let res = svc.oneshot(http::Request::get(path).body(()).unwrap()).await.unwrap();
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// // `books/gray.tif` is asked for as `books$gray`.
    /// # samples::write_samples(&dir.join("books")).unwrap();
    /// let opts = IdentifierOptions::default().slash_substitute("$");
    /// let svc = IiifService::new(source).identifier_options(opts);
    /// let res = svc.oneshot(get("/books$gray/full/100,/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 200);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn identifier_options(mut self, opts: IdentifierOptions) -> Self {
        self.config_mut().identifiers = opts;
        self
    }

    /// The smallest side of the tiles advertised in info.json (512 by default): the tiles of an
    /// untiled image are this square; a tiled source's own tiles are doubled until both sides
    /// reach it (Cantaloupe's policy), so that a tile request covers whole stored tiles.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-tile-size", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// # async fn info_json(svc: IiifService<FsSource>, path: &str) -> serde_json::Value {
    /// #     let res = svc.oneshot(http::Request::get(path).body(()).unwrap()).await.unwrap();
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// let svc = IiifService::new(source).tile_size(256);
    /// let info = info_json(svc, "/gray/info.json").await;
    /// assert_eq!(info["tiles"][0]["width"], 256);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn tile_size(mut self, px: u32) -> Self {
        let c = self.config_mut();
        c.info = c.info.clone().tile_size(px);
        self
    }

    fn update_limits(mut self, f: impl FnOnce(Limits) -> Limits) -> Self {
        let c = self.config_mut();
        let limits = f(*c.plan.get_limits());
        c.plan = c.plan.limits(limits);
        c.info.limits = limits;
        self
    }

    /// The widest image returned, advertised as `maxWidth`.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-max-width", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// # async fn info_json(svc: IiifService<FsSource>, path: &str) -> serde_json::Value {
    /// #     let res = svc.oneshot(http::Request::get(path).body(()).unwrap()).await.unwrap();
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// let svc = IiifService::new(source).max_width(400);
    /// let info = info_json(svc.clone(), "/gray/info.json").await;
    /// assert_eq!((info["maxWidth"].as_u64(), info["maxHeight"].as_u64()), (Some(400), Some(400)));
    /// let res = svc.oneshot(get("/gray/full/500,/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 400);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn max_width(self, px: u32) -> Self {
        self.update_limits(|l| l.max_width(px))
    }

    /// The tallest image returned, advertised as `maxHeight`.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-max-height", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// # async fn info_json(svc: IiifService<FsSource>, path: &str) -> serde_json::Value {
    /// #     let res = svc.oneshot(http::Request::get(path).body(()).unwrap()).await.unwrap();
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// let svc = IiifService::new(source).max_width(400).max_height(300);
    /// let info = info_json(svc, "/gray/info.json").await;
    /// assert_eq!((info["maxWidth"].as_u64(), info["maxHeight"].as_u64()), (Some(400), Some(300)));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn max_height(self, px: u32) -> Self {
        self.update_limits(|l| l.max_height(px))
    }

    /// The most pixels returned, advertised as `maxArea`.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-max-area", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// # async fn info_json(svc: IiifService<FsSource>, path: &str) -> serde_json::Value {
    /// #     let res = svc.oneshot(http::Request::get(path).body(()).unwrap()).await.unwrap();
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// let svc = IiifService::new(source).max_area(100_000);
    /// let info = info_json(svc.clone(), "/gray/info.json").await; // 700 x 500
    /// assert_eq!(info["maxArea"], 100_000);
    /// let res = svc.oneshot(get("/gray/full/max/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 200); // `max` is fitted within the limit
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn max_area(self, px: u64) -> Self {
        self.update_limits(|l| l.max_area(px))
    }

    /// Whether images larger than their region may be returned (`^` sizes in 3.0, sizes above
    /// full in 2.1). On by default.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-upscaling", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// # async fn info_json(svc: IiifService<FsSource>, path: &str) -> serde_json::Value {
    /// #     let res = svc.oneshot(http::Request::get(path).body(()).unwrap()).await.unwrap();
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// let svc = IiifService::new(source).upscaling(false);
    /// let info = info_json(svc, "/gray/info.json").await;
    /// let features = info["extraFeatures"].as_array().unwrap();
    /// assert!(!features.contains(&serde_json::json!("sizeUpscaling")));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn upscaling(mut self, on: bool) -> Self {
        let c = self.config_mut();
        c.plan = c.plan.upscaling(on);
        c.info.upscaling = on;
        self
    }

    /// Turn upscaling off: `^` sizes that need it answer 501 (3.0) or 400 (2.1).
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-no-upscaling", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let svc = IiifService::new(source).no_upscaling();
    /// let res = svc.clone().oneshot(get("/gray/full/^1400,/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 501); // the image is 700 wide
    /// let res = svc.oneshot(get("/gray/full/^350,/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 200); // `^` that does not scale up is fine
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn no_upscaling(self) -> Self {
        self.upscaling(false)
    }

    /// The `rights` (3.0) / `license` (2.1) URI of every info.json.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # use tower_iiif::request::ApiVersion;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-rights", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// # async fn info_json(svc: IiifService<FsSource>, path: &str) -> serde_json::Value {
    /// #     let res = svc.oneshot(http::Request::get(path).body(()).unwrap()).await.unwrap();
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// let cc0 = "http://creativecommons.org/publicdomain/zero/1.0/";
    /// let svc = IiifService::new(source).rights(cc0);
    /// assert_eq!(info_json(svc.clone(), "/gray/info.json").await["rights"], cc0);
    /// let v2 = svc.version(ApiVersion::V2);
    /// assert_eq!(info_json(v2, "/gray/info.json").await["license"], cc0);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn rights(mut self, uri: impl Into<String>) -> Self {
        let c = self.config_mut();
        c.info = c.info.clone().rights(uri);
        self
    }

    /// The `preferredFormats` of every 3.0 info.json, most preferred first.
    ///
    /// ```
    /// use tower::ServiceExt;
    /// use tower_iiif::{IiifService, request::Format, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir().join(format!("tower-iiif-pf-{}", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// let svc = IiifService::new(FsSource::new(&dir).unwrap())
    ///     .preferred_formats([Format::Webp, Format::Jpg]);
    /// let res = svc.oneshot(http::Request::get("/gray/info.json").body(()).unwrap()).await.unwrap();
    /// let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
    /// let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    /// assert_eq!(doc["preferredFormats"], serde_json::json!(["webp", "jpg"]));
    /// # }
    /// ```
    pub fn preferred_formats(mut self, formats: impl IntoIterator<Item = Format>) -> Self {
        self.config_mut().info.preferred_formats = formats.into_iter().collect();
        self
    }

    /// A further top-level property of every info.json (e.g. `partOf`, `seeAlso`, `service`).
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-info-property", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// # async fn info_json(svc: IiifService<FsSource>, path: &str) -> serde_json::Value {
    /// #     let res = svc.oneshot(http::Request::get(path).body(()).unwrap()).await.unwrap();
    /// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    /// # }
    /// let collection = "https://example.org/collection";
    /// let part_of = serde_json::json!([{"id": collection, "type": "Collection"}]);
    /// let svc = IiifService::new(source).info_property("partOf", part_of.clone());
    /// assert_eq!(info_json(svc, "/gray/info.json").await["partOf"], part_of);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn info_property(mut self, key: impl Into<String>, value: Value) -> Self {
        self.config_mut().info.extra.insert(key.into(), value);
        self
    }

    /// The most bytes one decoded image buffer may take (1 GiB by default). Larger source
    /// images are refused before any pixel memory is allocated.
    ///
    /// It also caps the output: a request whose result (after rotation) would take more than
    /// this at 4 bytes a pixel is a 400.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-memory-budget", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let svc = IiifService::new(source).memory_budget(1 << 20); // 1 MiB
    /// let res = svc.clone().oneshot(get("/gray/full/max/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 400); // 700 x 500 x 4 bytes is more
    /// let res = svc.oneshot(get("/gray/full/200,/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 200);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        let c = self.config_mut();
        c.budget = Budget::new(bytes);
        c.plan = c.plan.max_output_area((bytes / 4).max(1));
        self
    }

    /// The largest source file read into memory to render from (1 GiB by default); larger
    /// files answer 500 with a message. Tiled formats read by range arrive later.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-max-source", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let svc = IiifService::new(source).max_source_bytes(1000);
    /// let path = format!("/{}/full/100,/0/default.png", samples::VALIDATOR_ID); // a PNG file
    /// assert_eq!(svc.oneshot(get(&path)).await.unwrap().status(), 500);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn max_source_bytes(mut self, bytes: u64) -> Self {
        self.config_mut().max_source_bytes = bytes;
        self
    }

    /// Keep rendered images in `backend` ([`MemoryCache`](crate::cache::MemoryCache),
    /// [`FsCache`](crate::cache::FsCache) or your own), keyed by the identifier, the source's
    /// version and the canonical request, so a changed source is never served stale; concurrent
    /// misses of one key render once. Clones made after this call share the cache. The cache sits
    /// behind every layer, so `Authorize` runs before any cached byte is sent.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # use tower_iiif::cache::MemoryCache;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-deriv-cache", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let cache = MemoryCache::new(64 << 20);
    /// let svc = IiifService::new(source).derivative_cache(cache.clone());
    /// for _ in 0..2 {
    ///     let res = svc.clone().oneshot(get("/gray/full/100,/0/default.jpg")).await.unwrap();
    ///     assert_eq!(res.status(), 200);
    /// }
    /// assert_eq!((svc.renders(), cache.len()), (1, 1)); // the second came from the cache
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn derivative_cache(mut self, backend: impl CacheBackend) -> Self {
        self.config_mut().derivatives = Some(DerivativeCache::new(AnyCache::new(backend)));
        self
    }

    /// Remove every cached derivative and the cached header of `identifier` (e.g. after the
    /// source file was replaced in place with the same size and time), and its reduced pyramid
    /// from memory and from the [pyramid store](Self::reduced_pyramid_store). Returns how many
    /// derivatives and stored pyramids were removed.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # use tower_iiif::cache::MemoryCache;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-purge", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let cache = MemoryCache::new(64 << 20);
    /// let svc = IiifService::new(source).derivative_cache(cache.clone());
    /// let res = svc.clone().oneshot(get("/gray/full/100,/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 200);
    /// assert_eq!(svc.purge("gray").await, 1);
    /// assert!(cache.is_empty());
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub async fn purge(&self, identifier: &str) -> usize {
        if let Ok(id) = Identifier::new(identifier) {
            self.source.purge(&id).await;
        }
        self.shared
            .info_cache
            .retain(|k, _| k.id.as_str() != identifier);
        self.shared
            .pyramids
            .retain(|k, _| k.id.as_str() != identifier);
        self.shared
            .jp2_info
            .retain(|k, _| k.id.as_str() != identifier);
        self.shared
            .codestreams
            .retain(|k, _| k.id.as_str() != identifier);
        let mut stored = 0;
        if let Some(r) = &self.config.reduced {
            r.cache.retain(|k, _| k.id.as_str() != identifier);
            if let Some(store) = &r.store {
                stored = store.purge_identifier(identifier).await;
            }
        }
        stored
            + match &self.config.derivatives {
                Some(cache) => cache.purge_identifier(identifier).await,
                None => 0,
            }
    }

    /// Forget everything this service keeps of every image, in every tier of its derivative
    /// cache (shared tiers included, so every instance of a fleet misses afterwards), its
    /// pyramid store and its source (metadata, chunks, local copies:
    /// [`Source::purge_all`](crate::source::Source::purge_all)); the number of derivatives and
    /// stored pyramids removed.
    ///
    /// ```
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # use tower_iiif::cache::MemoryCache;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-purge-all", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let cache = MemoryCache::new(64 << 20);
    /// let svc = IiifService::new(source).derivative_cache(cache.clone());
    /// svc.clone().oneshot(get("/gray/full/100,/0/default.jpg")).await.unwrap();
    /// svc.clone().oneshot(get("/landscape/full/100,/0/default.jpg")).await.unwrap();
    /// assert_eq!(svc.purge_all().await, 2);
    /// assert!(cache.is_empty());
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub async fn purge_all(&self) -> usize {
        self.source.purge_all().await;
        self.shared.info_cache.clear();
        self.shared.pyramids.clear();
        self.shared.jp2_info.clear();
        self.shared.codestreams.clear();
        let mut stored = 0;
        if let Some(r) = &self.config.reduced {
            r.cache.clear();
            if let Some(store) = &r.store {
                stored = store.purge_all().await;
            }
        }
        stored
            + match &self.config.derivatives {
                Some(cache) => cache.backend().purge_all().await,
                None => 0,
            }
    }

    /// Reduced-resolution pyramids of large flat JPEG and PNG sources: built on the first
    /// request that a reduced copy can answer (one decode of the file), kept in a cache of at
    /// most `max_bytes` (256 MiB by default; one image's pyramid takes at most half), and used
    /// by later requests at those scales as a pyramidal TIFF's levels are. `0` turns them off.
    /// Shared by the services built from this one.
    ///
    /// ```
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// let svc = IiifService::new(FsSource::new(".").unwrap()).reduced_pyramids(512 << 20, 16_000_000);
    /// # let _ = svc;
    /// ```
    ///
    /// Sources of fewer than `min_pixels` pixels (16 million by default) are decoded whole
    /// for every render, as before.
    pub fn reduced_pyramids(mut self, max_bytes: u64, min_pixels: u64) -> Self {
        let store = self.config.reduced.as_ref().and_then(|r| r.store.clone());
        self.config_mut().reduced = (max_bytes > 0).then(|| flat::ReducedCache {
            store,
            ..flat::ReducedCache::new(max_bytes, min_pixels)
        });
        self
    }

    /// Keep the reduced pyramids (see [`reduced_pyramids`](Self::reduced_pyramids)) in
    /// `store` too, typically an [`FsCache`](crate::cache::FsCache) of their own directory: a
    /// pyramid built is written there in the background, and one missing from memory (evicted,
    /// or after a restart) is read back from it instead of decoding the source again. Entries
    /// are keyed by the identifier and the source's version, so a changed source is never
    /// served from a stale pyramid. No effect while reduced pyramids are off. An `FsCache`
    /// keeps no entry larger than an eighth of its `max_bytes`: a 25167x12483 RGB image's
    /// pyramid (from 1/4) is about 80 MB.
    ///
    /// ```
    /// # use tower_iiif::{IiifService, cache::FsCache, source::FsSource};
    /// # let dir = std::env::temp_dir().join("tower-iiif-doc-pyramids");
    /// let store = FsCache::new(dir).unwrap().max_bytes(4 << 30);
    /// let svc = IiifService::new(FsSource::new(".").unwrap()).reduced_pyramid_store(store);
    /// # let _ = svc;
    /// ```
    pub fn reduced_pyramid_store(mut self, store: impl CacheBackend) -> Self {
        if let Some(r) = &mut self.config_mut().reduced {
            r.store = Some(AnyCache::new(store));
        }
        self
    }

    /// JPEG output quality, 1 to 100 (85 by default).
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-jpeg-quality", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let bytes = |quality| {
    ///     let svc = IiifService::new(source.clone()).jpeg_quality(quality);
    ///     let res = svc.oneshot(get("/gray/full/max/0/default.jpg"));
    ///     async move { res.await.unwrap().into_body().collect().await.unwrap().to_bytes().len() }
    /// };
    /// assert!(bytes(20).await < bytes(95).await);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn jpeg_quality(mut self, quality: u8) -> Self {
        self.config_mut().encode.jpeg_quality = quality.clamp(1, 100);
        self
    }

    /// Whether a request for whole stored JPEG tiles of a pyramid level, at their own size (a
    /// JPEG, upright, in the quality the level is stored in), is answered from the stored
    /// bytes: one tile sent as it is stored, several joined into one JPEG without decoding
    /// (see [`join_jpeg_tiles`](crate::tiff::join_jpeg_tiles)). On by default: it costs a
    /// fraction of a decode and an encode, and the pixels are the stored ones. The bytes are
    /// at the file's quality, not [`jpeg_quality`](Self::jpeg_quality): turn it off to
    /// re-encode every tile when the files are stored at a much higher quality than clients
    /// need.
    ///
    /// ```
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// let svc = IiifService::new(FsSource::new(".").unwrap()).stored_tiles(false);
    /// # let _ = svc;
    /// ```
    pub fn stored_tiles(mut self, on: bool) -> Self {
        self.config_mut().stored_tiles = on;
        self
    }

    /// How many renders run at once on the blocking pool (the number of cores by default),
    /// and how many more may wait (64 by default); past that the service answers 503 with
    /// `Retry-After`. Shared by every clone of this service.
    ///
    /// Set it while building, before the service takes requests: it changes every clone.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-concurrency", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// // One render at a time and none waiting (a render past that answers 503).
    /// let svc = IiifService::new(source).render_concurrency(1, 0);
    /// let res = svc.clone().oneshot(get("/gray/full/100,/0/default.jpg")).await.unwrap();
    /// assert_eq!(res.status(), 200);
    /// assert_eq!(svc.renders(), 1);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn render_concurrency(self, running: usize, queued: usize) -> Self {
        let running = running.clamp(1, Semaphore::MAX_PERMITS);
        let before = self.shared.render_permits.swap(running, Ordering::AcqRel);
        if running > before {
            self.shared.renders.add_permits(running - before);
        } else {
            self.shared.renders.forget_permits(before - running);
        }
        self.shared
            .max_in_flight
            .store(running.saturating_add(queued), Ordering::Relaxed);
        self
    }

    /// The memory ceiling of every render of this service and its clones together (512 MiB
    /// by default): each render reserves an estimate of its peak memory (source bytes held,
    /// decoded input, scaled and rotated intermediates, encoded output) once it has a render
    /// permit, before it decodes, and gives it back when it ends. A request whose render could never fit is
    /// refused at once with a 400; one that fits later waits within
    /// [`max_queue_wait`](Self::max_queue_wait), then gets a 503 with `Retry-After`. Caches
    /// (derivatives, reduced pyramids, chunks) have their own caps outside it.
    ///
    /// Set it while building, before the service takes requests: it changes every clone.
    ///
    /// ```
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-ceiling", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let svc = IiifService::new(FsSource::new(&dir).unwrap()).memory_ceiling(16 << 20);
    /// let res = svc.clone().oneshot(get("/gray/full/^3000,/0/default.png")).await.unwrap();
    /// assert_eq!(res.status(), 400); // 3000 x 2143 x 4 bytes, twice over, and more
    /// let res = svc.clone().oneshot(get("/gray/full/300,/0/default.png")).await.unwrap();
    /// assert_eq!(res.status(), 200);
    /// assert!(svc.memory_peak() > 0 && svc.memory_peak() <= 16 << 20);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn memory_ceiling(self, bytes: u64) -> Self {
        self.shared.memory.set(bytes);
        self
    }

    /// The most memory the renders of this service and its clones have reserved at once
    /// under [`memory_ceiling`](Self::memory_ceiling), in bytes. For metrics and tests.
    ///
    /// ```
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// assert_eq!(IiifService::new(FsSource::new(".").unwrap()).memory_peak(), 0);
    /// ```
    pub fn memory_peak(&self) -> u64 {
        self.shared.memory.peak()
    }

    /// The longest a render waits for its turn (5 s by default): a request is queued only if
    /// the renders ahead of it can be expected, from the recent render times, to let it start
    /// within this; otherwise it is answered 503 at once with a `Retry-After` of that expected
    /// wait. A queued render that has still not started (its render permit and its room under
    /// the memory ceiling) when this has passed is answered 503 then. Cheap requests
    /// (info.json, cache hits, 304, HEAD) never queue.
    ///
    /// ```
    /// # use tower_iiif::{IiifService, source::FsSource};
    /// let svc = IiifService::new(FsSource::new(".").unwrap())
    ///     .max_queue_wait(std::time::Duration::from_secs(2));
    /// # let _ = svc;
    /// ```
    pub fn max_queue_wait(self, wait: std::time::Duration) -> Self {
        self.shared.queue.set_max_wait(wait);
        self
    }

    /// Take a place in the render queue, or answer 503 when it is full.
    #[cfg(test)]
    fn reserve_render_slot(&self) -> Result<job::SlotGuard, Error> {
        reserve_render_slot(&self.shared)
    }

    /// How many images this service and its clones have rendered (decoded and encoded) since it
    /// was created: cache hits and 304s do not count. For metrics and tests.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-renders", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let svc = IiifService::new(source);
    /// assert_eq!(svc.renders(), 0);
    /// svc.clone().oneshot(get("/gray/info.json")).await.unwrap(); // no render
    /// svc.clone().oneshot(get("/gray/full/100,/0/default.jpg")).await.unwrap();
    /// assert_eq!(svc.renders(), 1);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn renders(&self) -> u64 {
        self.shared.renders_done.load(Ordering::Relaxed)
    }

    /// The information of one image (its size after orientation, its stored sizes and
    /// tiles), read through this service's source and shared info cache, or the error a
    /// request for it would answer with (404 for an unknown identifier).
    ///
    /// ```no_run
    /// use tower_iiif::{IiifService, request::Identifier, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_iiif::Error> {
    /// let svc = IiifService::new(FsSource::new("images").unwrap());
    /// let info = svc.image_info(&Identifier::new("page1").unwrap()).await?;
    /// println!("{} x {}", info.width, info.height);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn image_info(&self, id: &Identifier) -> Result<ImageInfo, Error> {
        let object = self.source.open(id, &SourceRequest::default()).await?;
        let h = self.header(id, &object).await?;
        Ok(self.image_info_of(id, &object, &h).await)
    }

    /// A health-check service over this service's source.
    ///
    /// ```
    /// # use http_body_util::BodyExt;
    /// # use tower::ServiceExt;
    /// # use tower_iiif::{IiifService, samples, source::FsSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "service-health", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
    /// let health = IiifService::new(source).health();
    /// let res = health.oneshot(get("/health")).await.unwrap();
    /// assert_eq!(res.status(), 200);
    /// let body = res.into_body().collect().await.unwrap().to_bytes();
    /// let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    /// assert_eq!(doc["status"], "ok");
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn health(&self) -> Health<S> {
        Health {
            source: self.source.clone(),
            cache: self
                .config
                .derivatives
                .as_ref()
                .map(|c| c.backend().clone()),
        }
    }

    /// A handle for the layers in front of this service: its request parser and a lookup of
    /// image dimensions that shares this service's source and info cache.
    fn context(&self) -> IiifContext {
        let this = self.clone();
        let lookup = ImageLookup(Arc::new(move |id: Identifier, request: SourceRequest| {
            let this = this.clone();
            Box::pin(async move {
                let object = this.source.open(&id, &request).await?;
                let h = this.header(&id, &object).await?;
                Ok(this.image_info_of(&id, &object, &h).await)
            })
        }));
        IiifContext {
            parser: self.parser(),
            lookup,
        }
    }
}

impl<S: Source> HasIiifContext for IiifService<S> {
    fn iiif_context(&self) -> IiifContext {
        self.context()
    }
}

impl<S: Source, B> Service<Request<B>> for IiifService<S> {
    type Response = Response<IiifBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let (parts, _body) = req.into_parts();
        let this = self.clone();
        let span = tracing::debug_span!("iiif", method = %parts.method, path = %parts.uri.path());
        ResponseFuture {
            inner: Box::pin(async move { Ok(this.handle(parts).await) }.instrument(span)),
        }
    }
}

/// Response future for [`IiifService`].
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<IiifBody>, Infallible>> + Send>>,
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<IiifBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile_tests;
