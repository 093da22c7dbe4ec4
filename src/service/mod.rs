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
mod flat;
mod health;
mod jp2;
mod negotiate;
mod render;
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

use crate::base_uri::{BaseUri, PublicIdentifier};
use crate::cache::{AnyCache, CacheBackend, CacheKey, CachedDerivative, DerivativeCache};
use crate::codec::{self, EncodeOptions, Header, SourceFormat};
use crate::info::{ImageInfo, InfoOptions, InfoServices};
use crate::pixels::Budget;
use crate::pixels::Rect;
use crate::plan::{Limits, OverLimit, PlanOptions};
use crate::pyramid::TiffPyramid;
use crate::request::{
    ApiVersion, Format, Identifier, IdentifierOptions, IiifRequest, ImageRequest, Quality, Rotation,
};
use crate::source::{Source, SourceObject};
use crate::{Error, ErrorKind};

/// How many bytes of a file are read first to find its header; the whole file is read only
/// when the header is not within them.
const HEADER_PREFIX: u64 = 64 * 1024;

/// What makes the bytes of a render besides the request and the source, in cache keys and
/// entity tags: the crate version, a revision of the render paths (bumped when they change the
/// output), and the JPEG codec.
#[cfg(feature = "turbojpeg")]
const RENDERER: &str = concat!(env!("CARGO_PKG_VERSION"), "/r3/libjpeg-turbo");
#[cfg(not(feature = "turbojpeg"))]
const RENDERER: &str = concat!(env!("CARGO_PKG_VERSION"), "/r3");

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
struct Shared {
    info_cache: quick_cache::sync::Cache<InfoKey, Header>,
    /// Tiled TIFF pyramids by source version; `None` remembers "not a usable pyramid".
    pyramids: quick_cache::sync::Cache<InfoKey, Option<Arc<TiffPyramid>>>,
    /// JPEG 2000 main headers by source version.
    jp2_info: quick_cache::sync::Cache<InfoKey, crate::codec::jp2::Jp2Info>,
    /// JPEG 2000 tile-part indexes by source version, weighed by bytes; `None` remembers "no
    /// usable index".
    codestreams: jp2::IndexCache,
    renders: Arc<Semaphore>,
    /// The configured number of render permits (the semaphore only knows the free ones).
    render_permits: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    renders_done: std::sync::atomic::AtomicU64,
}

/// An info cache key: the identifier and the version of its file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct InfoKey {
    id: Identifier,
    len: u64,
    modified: Option<SystemTime>,
    etag: Option<String>,
}

impl InfoKey {
    fn new(id: &Identifier, meta: &crate::source::SourceMetadata) -> Self {
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
            }),
            source,
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The API version served (3.0 by default).
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
    pub fn identifier_options(mut self, opts: IdentifierOptions) -> Self {
        self.config_mut().identifiers = opts;
        self
    }

    /// The smallest side of the tiles advertised in info.json (512 by default): the tiles of an
    /// untiled image are this square; a tiled source's own tiles are doubled until both sides
    /// reach it (Cantaloupe's policy), so that a tile request covers whole stored tiles.
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
    pub fn max_width(self, px: u32) -> Self {
        self.update_limits(|l| l.max_width(px))
    }

    /// The tallest image returned, advertised as `maxHeight`.
    pub fn max_height(self, px: u32) -> Self {
        self.update_limits(|l| l.max_height(px))
    }

    /// The most pixels returned, advertised as `maxArea`.
    pub fn max_area(self, px: u64) -> Self {
        self.update_limits(|l| l.max_area(px))
    }

    /// Whether images larger than their region may be returned (`^` sizes in 3.0, sizes above
    /// full in 2.1). On by default.
    pub fn upscaling(mut self, on: bool) -> Self {
        let c = self.config_mut();
        c.plan = c.plan.upscaling(on);
        c.info.upscaling = on;
        self
    }

    /// Turn upscaling off: `^` sizes that need it answer 501 (3.0) or 400 (2.1).
    pub fn no_upscaling(self) -> Self {
        self.upscaling(false)
    }

    /// The `rights` (3.0) / `license` (2.1) URI of every info.json.
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
    pub fn info_property(mut self, key: impl Into<String>, value: Value) -> Self {
        self.config_mut().info.extra.insert(key.into(), value);
        self
    }

    /// The most bytes one decoded image buffer may take (1 GiB by default). Larger source
    /// images are refused before any pixel memory is allocated.
    ///
    /// It also caps the output: a request whose result (after rotation) would take more than
    /// this at 4 bytes a pixel is a 400.
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        let c = self.config_mut();
        c.budget = Budget::new(bytes);
        c.plan = c.plan.max_output_area((bytes / 4).max(1));
        self
    }

    /// The largest source file read into memory to render from (1 GiB by default); larger
    /// files answer 500 with a message. Tiled formats read by range arrive later.
    pub fn max_source_bytes(mut self, bytes: u64) -> Self {
        self.config_mut().max_source_bytes = bytes;
        self
    }

    /// Keep rendered images in `backend` ([`MemoryCache`](crate::cache::MemoryCache),
    /// [`FsCache`](crate::cache::FsCache) or your own), keyed by the identifier, the source's
    /// version and the canonical request, so a changed source is never served stale; concurrent
    /// misses of one key render once. Clones made after this call share the cache. The cache sits
    /// behind every layer, so `Authorize` runs before any cached byte is sent.
    pub fn derivative_cache(mut self, backend: impl CacheBackend) -> Self {
        self.config_mut().derivatives = Some(DerivativeCache::new(AnyCache::new(backend)));
        self
    }

    /// Remove every cached derivative and the cached header of `identifier` (e.g. after the
    /// source file was replaced in place with the same size and time), and its reduced pyramid
    /// from memory and from the [pyramid store](Self::reduced_pyramid_store). Returns how many
    /// derivatives and stored pyramids were removed.
    pub async fn purge(&self, identifier: &str) -> usize {
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
    pub fn jpeg_quality(mut self, quality: u8) -> Self {
        self.config_mut().encode.jpeg_quality = quality.clamp(1, 100);
        self
    }

    /// Whether a request for whole stored JPEG tiles of a pyramid level, at their own size (a
    /// JPEG, upright, in the quality the level is stored in), is answered from the stored
    /// bytes: one tile sent as it is stored, several joined into one JPEG without decoding
    /// (see [`join_jpeg_tiles`](crate::pyramid::join_jpeg_tiles)). On by default: it costs a
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

    /// Answer one request. Never fails: errors become error responses.
    async fn handle(self, parts: Parts) -> Response<IiifBody> {
        let head = parts.method == Method::HEAD;
        let mut res = match parts.method {
            Method::OPTIONS => respond::preflight(&parts),
            Method::GET | Method::HEAD => match self.get(&parts).await {
                Ok(res) => res,
                Err(e) => respond::error(&e),
            },
            _ => respond::error(&Error::new(
                ErrorKind::MethodNotAllowed,
                "only GET, HEAD and OPTIONS are allowed",
            )),
        };
        respond::cors(&mut res);
        if head {
            *res.body_mut() = IiifBody::empty();
        }
        res
    }

    async fn get(&self, parts: &Parts) -> Result<Response<IiifBody>, Error> {
        let parsed = self.parser().parse(parts)?;
        let base = self.public_base(parts);
        match parsed {
            IiifRequest::Base(id) => Ok(respond::redirect(&format!(
                "{}/info.json",
                self.image_base(parts, &base, &id)
            ))),
            IiifRequest::Info(id) => {
                let object = self.source.open(&id).await?;
                let header = self.header(&id, &object).await?;
                let limits = self.limits(parts);
                let mut info_opts = self.config.info.clone();
                info_opts.limits = limits;
                info_opts.upscaling &= limits.scale().is_none_or(|s| s > 1.0);
                let image_id = self.image_base(parts, &base, &id);
                let mut doc = self
                    .image_info_of(&id, &object, &header)
                    .await
                    .to_json(&image_id, &info_opts);
                if let Some(services) = parts.extensions.get::<InfoServices>() {
                    services.apply(&mut doc, &image_id, self.config.version);
                }
                let mut res = respond::info(&doc, self.config.version, parts);
                let content_type = res.headers()[http::header::CONTENT_TYPE].clone();
                let body = doc.to_string();
                let validators = conditional::Validators::new(
                    &[body.as_bytes(), content_type.as_bytes()],
                    object.metadata().modified,
                );
                if validators.not_modified(&parts.headers) {
                    res = respond::not_modified();
                    res.headers_mut()
                        .insert(http::header::VARY, "Accept".parse().expect("valid"));
                }
                validators.apply(res.headers_mut());
                Ok(res)
            }
            IiifRequest::Image(req) => self.image(parts, &base, &req).await,
        }
    }

    async fn image(
        &self,
        parts: &Parts,
        base: &BaseUri,
        req: &ImageRequest,
    ) -> Result<Response<IiifBody>, Error> {
        let object = self
            .source
            .open(&req.identifier)
            .instrument(tracing::debug_span!("resolve"))
            .await?;
        let header = self
            .header(&req.identifier, &object)
            .instrument(tracing::debug_span!("header"))
            .await?;
        let policy = parts
            .extensions
            .get::<OverLimit>()
            .copied()
            .unwrap_or_default();
        let opts = self
            .config
            .plan
            .limits(self.limits(parts))
            .over_limit(policy);
        let plan = crate::plan::plan(req, header.width, header.height, &opts)?;
        let canonical = format!(
            "{}/{}",
            self.image_base(parts, base, &req.identifier),
            plan.canonical
        );
        let meta = object.metadata().clone();
        let validators = self.image_validators(req, &plan, &meta);
        if validators.not_modified(&parts.headers) {
            let mut res = respond::not_modified();
            validators.apply(res.headers_mut());
            return Ok(res);
        }
        if parts.method == Method::HEAD {
            // Everything but the length is known without rendering.
            let mut res = respond::image_head(plan.format, self.config.version, &canonical);
            validators.apply(res.headers_mut());
            return Ok(res);
        }
        let pyramid = match header.format {
            SourceFormat::Tiff => self.pyramid(&req.identifier, &object, &header).await,
            _ => None,
        };
        let jp2 = match header.format {
            SourceFormat::Jp2 => {
                let info = self
                    .jp2_info(&req.identifier, &object)
                    .await
                    .ok_or_else(|| Error::internal("the JPEG 2000 header could not be kept"))?;
                // The whole image at full resolution is decoded from the whole file: no index
                // needed. (At a reduction, the index may cut the tiles' higher resolutions.)
                let full = jp2::is_whole(&info, plan.region) && jp2::reduce_for(&info, &plan) == 0;
                let index = match full {
                    true => None,
                    false => jp2::index(&self.shared.codestreams, &req.identifier, &object).await,
                };
                Some((info, index))
            }
            _ => None,
        };
        if let Some(jpeg) = match &pyramid {
            Some(p) if self.config.stored_tiles => passthrough(p, &plan, &object).await?,
            _ => None,
        } {
            let mut res = respond::image(jpeg, plan.format, self.config.version, &canonical);
            validators.apply(res.headers_mut());
            return Ok(res);
        }
        let job = {
            let shared = Arc::clone(&self.shared);
            let (plan, budget, encode) = (plan.clone(), self.config.budget, self.config.encode);
            let max_source_bytes = self.config.max_source_bytes;
            let reduced = self.config.reduced.clone();
            let key = InfoKey::new(&req.identifier, &meta);
            let stored_tiles = self.config.stored_tiles;
            move || async move {
                // Shared: a reduced pyramid's build holds it in a task of its own.
                let object = Arc::new(object);
                let input = match (pyramid, jp2) {
                    (Some(p), _) => RenderInput::pyramid(p, &plan, stored_tiles),
                    (None, Some((info, index))) => {
                        jp2::input(&info, index, &plan, object.metadata().len, budget)?
                    }
                    (None, None) => {
                        flat::input(
                            reduced.as_ref(),
                            key,
                            &object,
                            &header,
                            &plan,
                            &shared,
                            budget,
                            max_source_bytes,
                        )
                        .await?
                    }
                };
                let body = render_job(shared, object, input, &plan, budget, encode).await?;
                Ok(CachedDerivative::new(body, plan.format.media_type()))
            }
        };
        let body = match &self.config.derivatives {
            Some(cache) => {
                let key = self.cache_key(req, &plan, &meta);
                cache
                    .get_or_render(key, job)
                    .instrument(tracing::debug_span!("cache"))
                    .await?
                    .body
            }
            None => job().await?.body,
        };
        let mut res = respond::image(body, plan.format, self.config.version, &canonical);
        validators.apply(res.headers_mut());
        Ok(res)
    }

    /// The derivative cache key: the identifier, and everything that decides the bytes: the
    /// resolved plan, not the canonical form, whose `max` depends on the limits in force.
    fn cache_key(
        &self,
        req: &ImageRequest,
        plan: &crate::plan::Plan,
        meta: &crate::source::SourceMetadata,
    ) -> CacheKey {
        let modified = meta
            .modified
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        CacheKey::new(
            req.identifier.as_str(),
            format!(
                "{}|{}|{modified}|{}|q{}{}|{}",
                RENDERER,
                meta.len,
                meta.etag.as_deref().unwrap_or(""),
                self.config.encode.jpeg_quality,
                if self.config.stored_tiles {
                    ""
                } else {
                    "|encoded"
                },
                plan.resolved(),
            ),
        )
    }

    /// The validators of a rendered image: the crate version, the source's version, the
    /// identifier, the resolved plan and the settings that change the bytes.
    fn image_validators(
        &self,
        req: &ImageRequest,
        plan: &crate::plan::Plan,
        meta: &crate::source::SourceMetadata,
    ) -> conditional::Validators {
        let modified = meta
            .modified
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        conditional::Validators::new(
            &[
                RENDERER.as_bytes(),
                req.identifier.as_str().as_bytes(),
                &meta.len.to_le_bytes(),
                &modified.to_le_bytes(),
                meta.etag.as_deref().unwrap_or("").as_bytes(),
                plan.resolved().as_bytes(),
                &[
                    self.config.encode.jpeg_quality,
                    self.config.stored_tiles.into(),
                ],
            ],
            meta.modified,
        )
    }

    /// Take a place in the render queue, or answer 503 when it is full.
    #[cfg(test)]
    fn reserve_render_slot(&self) -> Result<SlotGuard, Error> {
        reserve_render_slot(&self.shared)
    }

    /// How many images this service and its clones have rendered (decoded and encoded) since it
    /// was created: cache hits and 304s do not count. For metrics and tests.
    pub fn renders(&self) -> u64 {
        self.shared.renders_done.load(Ordering::Relaxed)
    }

    /// The tiled pyramid of a TIFF source, from the cache or read by range; `None` when the file
    /// is not a tiled pyramid this reader handles (it is then decoded whole). Concurrent first
    /// requests read it once.
    async fn pyramid(
        &self,
        id: &Identifier,
        object: &S::Object,
        header: &Header,
    ) -> Option<Arc<TiffPyramid>> {
        let key = InfoKey::new(id, object.metadata());
        let read = async {
            let pyramid = read_usable_pyramid(object).await;
            Ok::<_, Infallible>(pyramid)
        };
        let pyramid = match self.shared.pyramids.get_or_insert_async(&key, read).await {
            Ok(p) => p,
            Err(never) => match never {},
        };
        // A header that disagrees is left to the whole-file decoder.
        pyramid.filter(|p| (p.width(), p.height()) == (header.width, header.height))
    }

    /// What info.json says of an image: its header, and the levels and tile size of its
    /// pyramid, if it has one.
    async fn image_info_of(
        &self,
        id: &Identifier,
        object: &S::Object,
        header: &Header,
    ) -> ImageInfo {
        let info = ImageInfo::new(header.width, header.height).with_gray(header.gray);
        let pyramid = match header.format {
            SourceFormat::Tiff => self.pyramid(id, object, header).await,
            _ => None,
        };
        if header.format == SourceFormat::Jp2
            && let Some(j) = self.jp2_info(id, object).await
        {
            let info = info.with_levels(jp2::levels(&j));
            return match j.tiles_x.saturating_mul(j.tiles_y) > 1 {
                true => info.with_tile(j.tile_width, j.tile_height),
                false => info,
            };
        }
        match pyramid
            .as_deref()
            .and_then(|p| Some((p, p.levels().first()?)))
        {
            Some((p, first)) => {
                let levels = p.levels().iter().map(|l| (l.width, l.height)).collect();
                info.with_levels(levels)
                    .with_tile(first.tile_width, first.tile_height)
            }
            None => info,
        }
    }

    /// The main header of a JPEG 2000 source (read with its [`Header`]).
    async fn jp2_info(
        &self,
        id: &Identifier,
        object: &S::Object,
    ) -> Option<crate::codec::jp2::Jp2Info> {
        let key = InfoKey::new(id, object.metadata());
        if let Some(info) = self.shared.jp2_info.get(&key) {
            return Some(info);
        }
        // Evicted: read the header again, which caches it.
        self.shared.info_cache.remove(&key);
        self.header(id, object).await.ok()?;
        self.shared.jp2_info.get(&key)
    }

    /// The image's header, from the info cache or read from the source; concurrent first
    /// requests read it once. A tiled TIFF's header comes from its pyramid, read by range (its
    /// IFDs may be anywhere in the file).
    async fn header(&self, id: &Identifier, object: &S::Object) -> Result<Header, Error> {
        let key = InfoKey::new(id, object.metadata());
        let read = async {
            let meta = object.metadata();
            let prefix = object.read_range(0..HEADER_PREFIX.min(meta.len)).await?;
            if codec::sniff(&prefix) == Some(SourceFormat::Tiff) {
                let read = async { Ok::<_, Infallible>(read_usable_pyramid(object).await) };
                let pyramid = match self.shared.pyramids.get_or_insert_async(&key, read).await {
                    Ok(p) => p,
                    Err(never) => match never {},
                };
                if let Some(p) = pyramid {
                    return Ok(Header {
                        format: SourceFormat::Tiff,
                        width: p.width(),
                        height: p.height(),
                        orientation: p.orientation(),
                        gray: p.levels().first().is_some_and(|l| l.layout().is_gray()),
                    });
                }
            }
            if codec::sniff(&prefix) == Some(SourceFormat::Jp2) {
                let parse = |b: &[u8]| codec::jp2::read_info(b).map_err(codec::jp2_error);
                let info = self.parse_header(object, prefix, parse).await?;
                self.shared.jp2_info.insert(key.clone(), info);
                return codec::jp2_header(&info);
            }
            self.parse_header(object, prefix, codec::read_header).await
        };
        self.shared.info_cache.get_or_insert_async(&key, read).await
    }

    /// `parse` the header from `prefix` (the first [`HEADER_PREFIX`] bytes), else from the first
    /// MiB, else from the whole file (refused past `max_source_bytes`).
    async fn parse_header<T>(
        &self,
        object: &S::Object,
        prefix: Bytes,
        parse: impl Fn(&[u8]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        const WIDER: u64 = 1 << 20;
        let len = object.metadata().len;
        let err = match parse(&prefix) {
            Ok(v) => return Ok(v),
            Err(e) if len <= prefix.len() as u64 => return Err(e),
            Err(e) => e,
        };
        let wider = object.read_range(0..WIDER.min(len)).await?;
        match parse(&wider) {
            Ok(v) => Ok(v),
            Err(_) if len > WIDER && len <= self.config.max_source_bytes => {
                parse(&object.read_all().await?)
            }
            Err(e) if len <= WIDER => Err(e),
            Err(_) => Err(Error::source(format!(
                "no header in the first MiB ({}) and the file is larger than this server reads whole",
                err.message()
            ))),
        }
    }

    /// The configured limits, tightened by a [`Limits`] request extension if one is present.
    fn limits(&self, parts: &Parts) -> Limits {
        let own = *self.config.plan.get_limits();
        match parts.extensions.get::<Limits>() {
            Some(ext) => own.tighten(ext),
            None => own,
        }
    }

    /// The public URL of this mount: the app's public URL (a [`BaseUri`] extension, else the
    /// configured base URI, else the `Host` header) and the mount path.
    fn public_base(&self, parts: &Parts) -> BaseUri {
        let app = match (parts.extensions.get::<BaseUri>(), &self.config.base_uri) {
            (Some(b), _) | (None, Some(b)) => b.clone(),
            (None, None) => BaseUri::from_request(parts),
        };
        BaseUri::new(format!(
            "{}{}",
            app.as_str(),
            mount_path(parts, &self.config.path_prefix)
        ))
    }

    /// The base URI of one image: `{base}/{encoded identifier}`, where the identifier is the
    /// [`PublicIdentifier`] extension when a proxy rewrote it.
    fn image_base(&self, parts: &Parts, base: &BaseUri, id: &Identifier) -> String {
        let public = parts
            .extensions
            .get::<PublicIdentifier>()
            .and_then(|p| Identifier::new(p.as_str()).ok());
        format!(
            "{}/{}",
            base.as_str(),
            public
                .as_ref()
                .unwrap_or(id)
                .encoded_with(&self.config.identifiers)
        )
    }

    fn parser(&self) -> RequestParser {
        RequestParser {
            version: self.config.version,
            path_prefix: self.config.path_prefix.clone(),
            identifiers: self.config.identifiers.clone(),
        }
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
        let object = self.source.open(id).await?;
        let h = self.header(id, &object).await?;
        Ok(self.image_info_of(id, &object, &h).await)
    }

    /// A health-check service over this service's source.
    pub fn health(&self) -> Health<S> {
        Health {
            source: self.source.clone(),
        }
    }

    /// A handle for the layers in front of this service: its request parser and a lookup of
    /// image dimensions that shares this service's source and info cache.
    fn context(&self) -> IiifContext {
        let this = self.clone();
        let lookup = ImageLookup(Arc::new(move |id: Identifier| {
            let this = this.clone();
            Box::pin(async move {
                let object = this.source.open(&id).await?;
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

/// The path the service is mounted at: the configured path prefix or, with the `axum` feature,
/// what axum's `nest_service` stripped (the `OriginalUri` path less the path the service sees).
fn mount_path<'a>(parts: &'a Parts, configured: &'a str) -> &'a str {
    if !configured.is_empty() {
        return configured;
    }
    #[cfg(feature = "axum")]
    if let Some(original) = parts.extensions.get::<axum::extract::OriginalUri>() {
        let (full, seen) = (original.0.path(), parts.uri.path());
        let stripped = if seen == "/" && !full.ends_with('/') {
            Some(full)
        } else {
            full.strip_suffix(seen)
        };
        if let Some(mount) = stripped
            .map(|m| m.trim_end_matches('/'))
            .filter(|m| m.starts_with('/'))
        {
            return mount;
        }
    }
    #[cfg(not(feature = "axum"))]
    let _ = parts;
    ""
}

/// The tiled pyramid of a TIFF file, read by range, when the render path can use it: stored
/// upright (other orientations are left to the whole-file decoder, which applies them).
async fn read_usable_pyramid<O: SourceObject>(object: &O) -> Option<Arc<TiffPyramid>> {
    match crate::pyramid::read_pyramid(object)
        .instrument(tracing::debug_span!("pyramid"))
        .await
    {
        Ok(p) if p.orientation() == crate::codec::Orientation::NORMAL => Some(Arc::new(p)),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!("not rendered as a pyramid: {}", e.message());
            None
        }
    }
}

/// Take a place in the render queue, or answer 503 when it is full.
fn reserve_render_slot(shared: &Arc<Shared>) -> Result<SlotGuard, Error> {
    let max = shared.max_in_flight.load(Ordering::Relaxed);
    let before = shared.in_flight.fetch_add(1, Ordering::AcqRel);
    let guard = SlotGuard(Arc::clone(shared));
    if before >= max {
        return Err(Error::new(
            ErrorKind::Unavailable,
            "the server is busy; retry shortly",
        ));
    }
    Ok(guard)
}

/// The stored JPEG tile that `plan` asks for exactly, read and made a standalone JPEG: a JPEG
/// without mirroring or rotation, in the colours the tile has.
async fn passthrough<O: SourceObject>(
    pyramid: &TiffPyramid,
    plan: &crate::plan::Plan,
    object: &O,
) -> Result<Option<Bytes>, Error> {
    if plan.format != Format::Jpg || plan.rotation != Rotation::NONE {
        return Ok(None);
    }
    let Some((index, tile)) =
        crate::pyramid::stored_jpeg_tile(pyramid, plan.region, plan.width, plan.height)
    else {
        return Ok(None);
    };
    let Some(level) = pyramid.level(index) else {
        return Ok(None);
    };
    if !stored_quality(plan, level) {
        return Ok(None);
    }
    let stored = object
        .read_range(tile.range.clone())
        .instrument(tracing::debug_span!("passthrough", level = index))
        .await?;
    // A file cut short (or shrinking under us): render instead, which reports it.
    if stored.len() as u64 != tile.range.end - tile.range.start {
        return Ok(None);
    }
    Ok(crate::pyramid::standalone_jpeg(level, &stored))
}

/// Whether `plan` asks for a level's stored JPEG tiles as they are: JPEG, upright, unmirrored,
/// in the quality the level is stored in (default, or colour / gray matching it).
fn stored_quality(plan: &crate::plan::Plan, level: &crate::pyramid::Level) -> bool {
    let gray = level.layout().is_gray();
    let quality = match plan.quality {
        Quality::Default => true,
        Quality::Color => !gray,
        Quality::Gray => gray,
        Quality::Bitonal => false,
    };
    quality && plan.format == Format::Jpg && plan.rotation == Rotation::NONE
}

/// What a render reads: the whole file, or the tiles of one pyramid level.
enum RenderInput {
    /// The whole file, decoded whole (refused past this size).
    Whole { max_source_bytes: u64 },
    /// `rect` of pyramid level `level`: only its tiles are read. `join`: whole stored JPEG
    /// tiles at their size are joined, not decoded.
    Level {
        pyramid: Arc<TiffPyramid>,
        level: usize,
        rect: Rect,
        join: bool,
    },
    /// The plan's region of a JPEG 2000 source decoded at resolution reduction `reduce`: with
    /// a tile-part index, from a codestream of the region's tiles only (fetched first); else
    /// reading what OpenJPEG asks for.
    Jp2 {
        info: crate::codec::jp2::Jp2Info,
        index: Option<Arc<crate::codestream::CodestreamIndex>>,
        reduce: u32,
        area: Rect,
    },
    /// `rect` of level `level` of a flat source's reduced pyramid, in memory.
    Reduced {
        pyramid: Arc<crate::reduced::ReducedPyramid>,
        level: usize,
        rect: Rect,
    },
    /// `rect` of a PNG (stored upright), its rows decoded down to the region's last one.
    PngRegion { rect: Rect, max_source_bytes: u64 },
    /// `rect` of a JPEG decoded at 1/2^`shift` (libjpeg-turbo), from the whole file.
    #[cfg(feature = "turbojpeg")]
    JpegRegion {
        shift: u32,
        rect: Rect,
        max_source_bytes: u64,
    },
}

impl RenderInput {
    /// The smallest level that still covers the output size, and the plan's region in that
    /// level's pixels (widened to whole pixels).
    fn pyramid(pyramid: Arc<TiffPyramid>, plan: &crate::plan::Plan, join: bool) -> Self {
        let r = plan.region;
        let level = pyramid.level_for(flat::plan_scale(plan));
        let (lw, lh) = pyramid
            .level(level)
            .map_or((pyramid.width(), pyramid.height()), |l| (l.width, l.height));
        let (dx, dy) = pyramid.downsample(level).unwrap_or((1.0, 1.0));
        let rect = r.scaled_cover(dx, dy, (lw, lh));
        RenderInput::Level {
            pyramid,
            level,
            rect,
            join,
        }
    }
}

/// Read what the render needs and render `plan` on the blocking pool. The queue slot and the
/// render permit move into the blocking task: they are released when the render really ends,
/// even if the client has gone away meanwhile.
async fn render_job<O: SourceObject>(
    shared: Arc<Shared>,
    object: O,
    input: RenderInput,
    plan: &crate::plan::Plan,
    budget: Budget,
    encode: EncodeOptions,
) -> Result<Bytes, Error> {
    let slot = reserve_render_slot(&shared)?;
    let acquire = || async {
        Arc::clone(&shared.renders)
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("render pool closed"))
    };
    // A whole-file read takes its render permit first: requests waiting for a permit then hold
    // no file in memory (at most `render_concurrency` whole files at once). Tile reads are
    // small and overlap the renders in progress.
    #[cfg(feature = "turbojpeg")]
    let reads_whole = matches!(
        input,
        RenderInput::Whole { .. } | RenderInput::JpegRegion { .. }
    );
    #[cfg(not(feature = "turbojpeg"))]
    let reads_whole = matches!(input, RenderInput::Whole { .. });
    let early = match reads_whole {
        true => Some(acquire().await?),
        false => None,
    };
    enum Fetched {
        Whole(Bytes),
        Codestream(Vec<u8>),
        Tiles(Vec<(crate::pyramid::TileRef, Bytes)>),
        Nothing,
    }
    let fetched = match &input {
        // A remote source: the tile-parts are fetched here. A local file is read on the
        // render's own blocking thread (no extra thread, no extra copy).
        RenderInput::Jp2 {
            info,
            index: Some(index),
            area,
            reduce,
        } if object.read_at_blocking(0, &mut []).is_none()
            && jp2::reads_index(info, index, *area, *reduce) =>
        {
            Fetched::Codestream(
                index
                    .read_region(
                        &object,
                        area.x,
                        area.y,
                        area.w,
                        area.h,
                        *reduce,
                        budget.max_bytes() / 2,
                    )
                    .instrument(tracing::debug_span!("fetch tile-parts"))
                    .await?,
            )
        }
        RenderInput::Reduced { .. } | RenderInput::Jp2 { .. } | RenderInput::PngRegion { .. } => {
            Fetched::Nothing
        }
        #[cfg(feature = "turbojpeg")]
        RenderInput::JpegRegion {
            max_source_bytes, ..
        } => {
            let len = object.metadata().len;
            if len > *max_source_bytes {
                return Err(Error::source(format!(
                    "the source file ({len} bytes) is larger than this server reads whole"
                )));
            }
            Fetched::Whole(object.read_all().await?)
        }
        RenderInput::Whole { max_source_bytes } => {
            let len = object.metadata().len;
            if len > *max_source_bytes {
                return Err(Error::source(format!(
                    "the source file ({len} bytes) is larger than this server reads whole"
                )));
            }
            Fetched::Whole(object.read_all().await?)
        }
        RenderInput::Level {
            pyramid,
            level,
            rect,
            ..
        } => Fetched::Tiles(
            crate::pyramid::fetch_tiles(&object, pyramid.tiles(*level, *rect), budget)
                .instrument(tracing::debug_span!("fetch tiles", level = *level))
                .await?,
        ),
    };
    let permit = match early {
        Some(p) => p,
        None => acquire().await?,
    };
    let plan = plan.clone();
    shared.renders_done.fetch_add(1, Ordering::Relaxed);
    let span = tracing::debug_span!("render", canonical = %plan.canonical);
    let handle = tokio::runtime::Handle::current();
    let body = tokio::task::spawn_blocking(move || {
        let _held = (slot, permit);
        let _span = span.entered();
        match (fetched, input) {
            (
                fetched @ (Fetched::Nothing | Fetched::Codestream(_)),
                RenderInput::Jp2 {
                    info,
                    index,
                    reduce,
                    area,
                },
            ) => {
                let req = jp2::request(&info, reduce, area, budget.max_bytes());
                let decode = |src: &dyn crate::codec::jp2::ReadAt| {
                    tracing::debug_span!("decode", reduce).in_scope(|| {
                        crate::codec::jp2::decode(src, &req)
                            .map_err(codec::jp2_error)
                            .and_then(codec::jp2_pixels)
                    })
                };
                let reader = jp2::SourceReader {
                    object: &object,
                    handle,
                };
                let px = match (fetched, index) {
                    (Fetched::Codestream(cs), _) => decode(&cs)?,
                    (_, Some(index)) if jp2::reads_index(&info, &index, area, reduce) => {
                        let (a, max) = (area, budget.max_bytes() / 2);
                        let cs = tracing::debug_span!("read tile-parts").in_scope(|| {
                            index.read_region_at(&reader, a.x, a.y, a.w, a.h, reduce, max)
                        })?;
                        decode(&cs)?
                    }
                    _ => decode(&reader)?,
                };
                let whole = Rect::new(0, 0, px.width(), px.height());
                render::finish(px, whole, &plan, budget, &encode)
            }
            (
                Fetched::Tiles(tiles),
                RenderInput::Level {
                    pyramid,
                    level,
                    rect,
                    join,
                },
            ) => {
                let lv = pyramid
                    .level(level)
                    .ok_or_else(|| Error::internal("pyramid level vanished"))?;
                // Whole stored JPEG tiles at their own size: joined, not decoded.
                if join
                    && (plan.width, plan.height) == (rect.w, rect.h)
                    && stored_quality(&plan, lv)
                    && let Some(jpeg) = tracing::debug_span!("join")
                        .in_scope(|| crate::pyramid::join_jpeg_tiles(lv, rect, &tiles))
                {
                    return Ok(jpeg);
                }
                let px = tracing::debug_span!("assemble")
                    .in_scope(|| crate::pyramid::assemble(lv, rect, &tiles, budget))?;
                let whole = Rect::new(0, 0, px.width(), px.height());
                render::finish(px, whole, &plan, budget, &encode)
            }
            (
                Fetched::Nothing,
                RenderInput::Reduced {
                    pyramid,
                    level,
                    rect,
                },
            ) => {
                let px = pyramid
                    .level(level)
                    .ok_or_else(|| Error::internal("reduced level vanished"))?;
                render::finish_ref(px, rect, &plan, budget, &encode)
            }
            (
                Fetched::Nothing,
                RenderInput::PngRegion {
                    rect,
                    max_source_bytes,
                },
            ) => {
                let reader = jp2::SourceReader {
                    object: &object,
                    handle,
                };
                flat::render_png_region(&reader, rect, max_source_bytes, &plan, budget, &encode)
            }
            #[cfg(feature = "turbojpeg")]
            (Fetched::Whole(bytes), RenderInput::JpegRegion { shift, rect, .. }) => {
                match codec::turbo::decode(&bytes, shift, Some(rect), budget) {
                    Ok(px) => {
                        let whole = Rect::new(0, 0, px.width(), px.height());
                        render::finish(px, whole, &plan, budget, &encode)
                    }
                    Err(_) => render::render(&bytes, &plan, budget, &encode),
                }
            }
            (Fetched::Whole(bytes), _) => render::render(&bytes, &plan, budget, &encode),
            _ => Err(Error::internal("render input mismatch")),
        }
    })
    .await
    .map_err(|e| Error::internal(format!("render task failed: {e}")))??;
    Ok(Bytes::from(body))
}

/// Releases a place in the render queue when dropped.
struct SlotGuard(Arc<Shared>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
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
