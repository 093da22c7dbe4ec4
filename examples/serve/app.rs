//! The demo server's app: its arguments, the layer stack in front of each mount of the service,
//! the pages, and a server loop with the timeouts and connection limit of a production server.
//! `tests/serve_example.rs` includes this file to test it as the example runs it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware;
use axum::response::{Html, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_iiif::admin::Admin;
use tower_iiif::auth::{AuthRequest, AuthTarget, AuthorizeLayer, Decision, Denied, ResponseBody};
use tower_iiif::base_uri::SetBaseUriLayer;
use tower_iiif::cache::{FsCache, MemoryCache, ObjectStoreCache, RedisCache, TieredCache};
use tower_iiif::cache_control::{CacheControl, SetCacheControlLayer};
use tower_iiif::limit::{Limits, PixelLimitLayer};
use tower_iiif::request::{ApiVersion, Identifier};
use tower_iiif::source::{
    FsSource, HttpSource, KeyTemplate, Keyed, ObjectStoreSource, Routes, SourceCache,
};
use tower_iiif::{IiifBody, IiifService, samples};

#[path = "viewer.rs"]
mod viewer;

#[path = "server.rs"]
mod server;
#[allow(unused_imports)] // the files that include this one use a part each
pub use server::{ServerLimits, limit_malloc_arenas, log, serve};

/// The usage line.
pub const USAGE: &str = "usage: serve [--addr HOST:PORT] [--images DIR | --samples DIR] \
[--trusted-proxy CIDR]... [--base-uri URI] [--cache-control VALUE] [--max-pixels N] \
[--cache-mem BYTES] [--cache-dir DIR] [--pyramid-mem BYTES] [--pyramid-dir DIR] \
[--jpeg-quality Q] [--no-stored-tiles] [--demo-auth] [--s3 s3://BUCKET/PREFIX] \
[--s3-endpoint URL] [--http-allow URL_PREFIX]... [--forward-header NAME]... \
[--source-cache-dir DIR] [--source-cache-bytes N] [--chunk-size BYTES] [--cache-s3 s3://BUCKET/PREFIX] \
[--cache-redis redis://HOST:PORT] [--cache-ttl SECONDS] [--admin-token TOKEN]";

/// The demo server's settings.
#[derive(Clone, Debug)]
pub struct Args {
    /// Where to listen.
    pub addr: SocketAddr,
    /// A directory of the user's images, served as it is: nothing is written into it.
    pub images: Option<PathBuf>,
    /// Where the sample images are generated and served from when `images` is not given.
    pub samples: PathBuf,
    /// Networks whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<String>,
    /// The app's fixed public URL, without the mount path.
    pub base_uri: Option<String>,
    /// The Cache-Control value of images and info.json.
    pub cache_control: CacheControl,
    /// The most pixels of a returned image (0: no limit).
    pub max_pixels: u64,
    /// Bytes of the in-memory derivative cache (0: none).
    pub cache_mem: u64,
    /// A directory for a derivative cache on disk (instead of memory).
    pub cache_dir: Option<PathBuf>,
    /// Bytes of reduced pyramids of large flat images (0: none).
    pub pyramid_mem: u64,
    /// A directory that keeps the reduced pyramids across restarts.
    pub pyramid_dir: Option<PathBuf>,
    /// JPEG output quality, 1 to 100.
    pub jpeg_quality: u8,
    /// `--no-stored-tiles`: re-encode whole stored JPEG tiles instead of sending them.
    pub stored_tiles: bool,
    /// Identifiers starting with `private` need a token; anonymous users get 1000 px at most.
    pub demo_auth: bool,
    /// `--s3 s3://BUCKET/PREFIX`: images are objects `PREFIX` + identifier (instead of a
    /// directory).
    pub s3: Option<(String, String)>,
    /// An S3-compatible server (path-style); else AWS.
    pub s3_endpoint: Option<String>,
    /// URL prefixes whose files may be fetched, identifiers being URLs (repeatable).
    pub http_allow: Vec<String>,
    /// Request headers passed to the HTTP upstream (repeatable).
    pub forward_headers: Vec<String>,
    /// A directory for local copies of remote files read whole.
    pub source_cache_dir: Option<PathBuf>,
    /// Bytes of `source_cache_dir`.
    pub source_cache_bytes: u64,
    /// Bytes per range request of the remote sources (0: the sources' default).
    pub chunk_size: u64,
    /// `--cache-s3 s3://BUCKET/PREFIX`: a derivative cache shared by instances, in S3.
    pub cache_s3: Option<(String, String)>,
    /// `--cache-redis URL`: a derivative cache shared by instances, in Redis.
    pub cache_redis: Option<String>,
    /// Seconds a shared cache entry lives (0: until evicted).
    pub cache_ttl: u64,
    /// Bearer token of the admin routes (`POST /admin/purge[/{id}]`); none: no admin routes.
    pub admin_token: Option<String>,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            images: None,
            samples: PathBuf::from("samples"),
            trusted_proxies: Vec::new(),
            base_uri: None,
            cache_control: CacheControl::default(),
            max_pixels: 0,
            cache_mem: 256 << 20,
            cache_dir: None,
            pyramid_mem: 256 << 20,
            pyramid_dir: None,
            jpeg_quality: 85,
            stored_tiles: true,
            demo_auth: false,
            s3: None,
            s3_endpoint: None,
            http_allow: Vec::new(),
            forward_headers: Vec::new(),
            source_cache_dir: None,
            source_cache_bytes: 10 << 30,
            chunk_size: 0,
            cache_s3: None,
            cache_redis: None,
            cache_ttl: 0,
            admin_token: None,
        }
    }
}

/// `s3://BUCKET/PREFIX` as the bucket and the prefix (`""` or ending in `/`).
fn s3_url(flag: &str, url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or(format!("{flag}: expected s3://BUCKET/PREFIX"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{flag}: no bucket in {url:?}"));
    }
    let prefix = match prefix {
        "" => String::new(),
        p if p.ends_with('/') => p.to_owned(),
        p => format!("{p}/"),
    };
    Ok((bucket.to_owned(), prefix))
}

/// Parse the command line (without the program name).
pub fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--images" => args.images = Some(PathBuf::from(value()?)),
            "--samples" => args.samples = PathBuf::from(value()?),
            "--trusted-proxy" => args.trusted_proxies.push(value()?),
            "--base-uri" => args.base_uri = Some(value()?.trim_end_matches('/').to_owned()),
            "--cache-control" => {
                args.cache_control = value()?
                    .parse()
                    .map_err(|e| format!("--cache-control: {e}"))?
            }
            "--max-pixels" => {
                args.max_pixels = value()?.parse().map_err(|e| format!("--max-pixels: {e}"))?
            }
            "--cache-mem" => {
                args.cache_mem = value()?.parse().map_err(|e| format!("--cache-mem: {e}"))?
            }
            "--cache-dir" => args.cache_dir = Some(PathBuf::from(value()?)),
            "--pyramid-mem" => {
                args.pyramid_mem = value()?
                    .parse()
                    .map_err(|e| format!("--pyramid-mem: {e}"))?
            }
            "--jpeg-quality" => {
                args.jpeg_quality = value()?
                    .parse()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or("--jpeg-quality: a number from 1 to 100")?
            }
            "--pyramid-dir" => args.pyramid_dir = Some(PathBuf::from(value()?)),
            "--no-stored-tiles" => args.stored_tiles = false,
            "--demo-auth" => args.demo_auth = true,
            "--s3" => args.s3 = Some(s3_url("--s3", &value()?)?),
            "--s3-endpoint" => args.s3_endpoint = Some(value()?),
            "--http-allow" => args.http_allow.push(value()?),
            "--forward-header" => args.forward_headers.push(value()?),
            "--source-cache-dir" => args.source_cache_dir = Some(PathBuf::from(value()?)),
            "--source-cache-bytes" => {
                args.source_cache_bytes = value()?
                    .parse()
                    .map_err(|e| format!("--source-cache-bytes: {e}"))?
            }
            "--chunk-size" => {
                args.chunk_size = value()?.parse().map_err(|e| format!("--chunk-size: {e}"))?
            }
            "--cache-s3" => args.cache_s3 = Some(s3_url("--cache-s3", &value()?)?),
            "--cache-redis" => args.cache_redis = Some(value()?),
            "--cache-ttl" => {
                args.cache_ttl = value()?.parse().map_err(|e| format!("--cache-ttl: {e}"))?
            }
            "--admin-token" => args.admin_token = Some(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(args)
}

/// The `--demo-auth` rule: identifiers starting with `private` answer 401 unless
/// `Authorization: Bearer demo` is sent; anonymous users get at most 1000 pixels on the long
/// side. Without `--demo-auth`, everything is allowed.
async fn demo_rule(demo: bool, req: AuthRequest) -> Decision {
    if !demo {
        return Decision::Allow;
    }
    if req.bearer_token() == Some("demo") {
        return Decision::AllowRestricted;
    }
    let private = req.identifier().as_str().starts_with("private");
    if private && !matches!(req.target(), AuthTarget::Info(_)) {
        return Decision::Deny(
            Denied::unauthorized("log in to see this image").challenge("Bearer"),
        );
    }
    Decision::Degrade(Limits::default().max_width(1000).max_height(1000))
}

type Stacked = BoxCloneSyncService<Request, Response<ResponseBody<IiifBody>>, Infallible>;

/// Every layer in front of one mount of the service. The mount path is the one given to
/// `nest_service`: the service reads it from axum (feature `axum`).
fn stack(svc: IiifService<Routes>, args: &Args) -> Result<Stacked, String> {
    let base = match &args.base_uri {
        Some(uri) => SetBaseUriLayer::fixed(uri),
        None => SetBaseUriLayer::forwarded(),
    }
    .trusted_proxies(&args.trusted_proxies)
    .map_err(|e| format!("--trusted-proxy: {e}"))?;
    let demo = args.demo_auth;
    let mut auth = AuthorizeLayer::new(move |req| demo_rule(demo, req));
    if demo {
        auth = auth.auth2_probe(vec![serde_json::json!({
            "type": "AuthAccessService2",
            "profile": "external",
            "label": {"en": ["Demo access (token: demo)"]},
            "service": [{"id": format!("{}/auth/token", args.base_uri.clone().unwrap_or_default()),
                         "type": "AuthAccessTokenService2"}]
        })]);
    }
    let mut limit = PixelLimitLayer::new();
    if args.max_pixels > 0 {
        limit = limit.max_area(args.max_pixels);
    }
    Ok(BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(base)
            .layer(SetCacheControlLayer::new().both(args.cache_control.clone()))
            .layer(auth)
            .layer(limit)
            .service(svc),
    ))
}

/// The demo's Auth 2 token service: hands out the token `demo` by postMessage. Every value
/// taken from the query is escaped before it goes into the script.
async fn token_page(
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Html<String> {
    let message = serde_json::json!({
        "@context": "http://iiif.io/api/auth/2/context.json",
        "type": "AuthAccessToken2",
        "accessToken": "demo",
        "expiresIn": 3600,
        "messageId": q.get("messageId").cloned().unwrap_or_default(),
    });
    let origin = serde_json::Value::from(q.get("origin").map_or("*", String::as_str));
    Html(format!(
        "<!doctype html><html><body><script>window.parent.postMessage({}, {});</script></body></html>",
        viewer::script_json(&message),
        viewer::script_json(&origin)
    ))
}

/// The directory served: the user's `--images` as it is, or the samples directory, where the
/// sample images are written (never following a link, never over an existing file). Returns
/// the directory and the identifiers the viewer lists first.
pub fn image_dir(args: &Args) -> Result<(PathBuf, Vec<String>), String> {
    match &args.images {
        Some(dir) => Ok((dir.clone(), list_images(dir))),
        None => {
            let mut ids = samples::write_samples(&args.samples).map_err(|e| {
                format!("cannot write samples into {}: {e}", args.samples.display())
            })?;
            ids.sort_by_key(|id| id != "landscape");
            Ok((args.samples.clone(), ids))
        }
    }
}

/// Up to 50 image files at the top of `dir`, by name, for the viewer's list.
fn list_images(dir: &Path) -> Vec<String> {
    const EXTENSIONS: [&str; 10] = [
        "jpg", "jpeg", "png", "tif", "tiff", "jp2", "j2k", "gif", "webp", "bmp",
    ];
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            n.rsplit_once('.')
                .is_some_and(|(_, ext)| EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
        })
        .collect();
    names.sort();
    names.truncate(50);
    names
}

/// The image sources: URLs under `--http-allow` prefixes from their servers, the rest from
/// `--s3` or the image directory.
fn sources(args: &Args, dir: &Path) -> Result<Routes, String> {
    let source_cache = match &args.source_cache_dir {
        Some(d) => Some(
            SourceCache::new(d, args.source_cache_bytes)
                .map_err(|e| format!("--source-cache-dir {}: {e}", d.display()))?,
        ),
        None => None,
    };
    let mut routes = Routes::new();
    if !args.http_allow.is_empty() {
        let mut http = HttpSource::builder();
        for prefix in &args.http_allow {
            http = http.allow(prefix);
        }
        for name in &args.forward_headers {
            http = http.forward_header(name);
        }
        if let Some(cache) = &source_cache {
            http = http.source_cache(cache.clone());
        }
        if args.chunk_size > 0 {
            http = http.chunk_size(args.chunk_size);
        }
        let http = http.build().map_err(|e| format!("--http-allow: {e}"))?;
        routes = routes.scheme("https", http.clone()).scheme("http", http);
    }
    Ok(match &args.s3 {
        Some((bucket, prefix)) => {
            let mut s3 = ObjectStoreSource::s3(bucket, args.s3_endpoint.as_deref())
                .map_err(|e| format!("--s3: {e}"))?;
            if let Some(cache) = source_cache {
                s3 = s3.source_cache(cache);
            }
            if args.chunk_size > 0 {
                s3 = s3.chunk_size(args.chunk_size);
            }
            routes.fallback(Keyed::new(s3, KeyTemplate::prefix(prefix.clone())))
        }
        None => routes.fallback(
            FsSource::new(dir).map_err(|e| format!("cannot serve {}: {e}", dir.display()))?,
        ),
    })
}

/// The derivative cache: memory (`--cache-mem`), or a directory (`--cache-dir`), in front of
/// the shared tiers (`--cache-redis`, `--cache-s3`), if any.
async fn derivative_cache<S: tower_iiif::source::Source>(
    svc: IiifService<S>,
    args: &Args,
) -> Result<IiifService<S>, String> {
    let ttl = Duration::from_secs(args.cache_ttl);
    let redis = match &args.cache_redis {
        Some(url) => Some(
            RedisCache::connect(url)
                .await
                .map_err(|e| format!("--cache-redis: {e}"))?
                .ttl(ttl),
        ),
        None => None,
    };
    let s3 = match &args.cache_s3 {
        Some((bucket, prefix)) => {
            let cache = ObjectStoreCache::s3(bucket, prefix, args.s3_endpoint.as_deref())
                .map_err(|e| format!("--cache-s3: {e}"))?
                .ttl(ttl);
            if args.cache_ttl > 0 {
                // Cantaloupe's cache worker: expired entries deleted in the background.
                cache.spawn_sweeper(ttl.min(Duration::from_secs(3600)));
            }
            Some(cache)
        }
        None => None,
    };
    let front = MemoryCache::new(args.cache_mem.max(1 << 20));
    Ok(match (&args.cache_dir, redis, s3) {
        (Some(dir), None, None) => svc.derivative_cache(
            FsCache::new(dir)
                .map_err(|e| format!("cannot use cache directory {}: {e}", dir.display()))?,
        ),
        (_, Some(r), Some(s)) => {
            svc.derivative_cache(TieredCache::new(front, TieredCache::new(r, s)))
        }
        (_, Some(r), None) => svc.derivative_cache(TieredCache::new(front, r)),
        (_, None, Some(s)) => svc.derivative_cache(TieredCache::new(front, s)),
        (None, None, None) if args.cache_mem > 0 => svc.derivative_cache(front),
        (None, None, None) => svc,
    })
}

/// The Prometheus recorder of this process (installed once), for `/metrics`.
fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed already (tests): this one then records nothing.
        let _ = metrics::set_global_recorder(recorder);
        // Histogram samples pile up until they are drained into their summaries: drained every
        // 5 s, whether `/metrics` is scraped or not (else a long run grows without end: the
        // soak of docs/RELIABILITY.md found it).
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread for the metrics upkeep");
        handle
    })
}

/// The whole app: `/iiif/3`, `/iiif/2`, `/health`, `/metrics`, `/admin` (with
/// `--admin-token`), `/auth/token` and the viewer pages.
pub async fn app(args: &Args) -> Result<axum::Router, String> {
    let (dir, ids) = match &args.s3 {
        Some(_) => (PathBuf::new(), Vec::new()),
        None => image_dir(args)?,
    };
    let source = sources(args, &dir)?;
    let mut v3 = IiifService::new(source)
        .reduced_pyramids(args.pyramid_mem, 16_000_000)
        .jpeg_quality(args.jpeg_quality)
        .stored_tiles(args.stored_tiles);
    if let Some(dir) = &args.pyramid_dir {
        let store = FsCache::new(dir)
            .map_err(|e| format!("cannot use pyramid directory {}: {e}", dir.display()))?;
        v3 = v3.reduced_pyramid_store(store.max_bytes(8 << 30));
    }
    v3 = derivative_cache(v3, args).await?;
    let v2 = v3.clone().version(ApiVersion::V2); // shares the caches
    let health = v3.health();
    // The viewer's list, with each image's size (for the Presentation manifest).
    let mut images = Vec::new();
    for id in ids {
        let Ok(identifier) = Identifier::new(&id) else {
            continue;
        };
        if let Ok(info) = v3.image_info(&identifier).await {
            images.push((id, info.width, info.height));
        }
    }
    let metrics = prometheus();
    let mut router = viewer::routes(&images)
        .route("/auth/token", get(token_page))
        .route("/metrics", get(move || async move { metrics.render() }))
        .route_service("/health", health);
    if let Some(token) = &args.admin_token {
        router = router.nest_service(
            "/admin",
            Admin::new(token.clone()).purging(&v3).purging(&v2),
        );
    }
    Ok(router
        .nest_service("/iiif/3", stack(v3, args)?)
        .nest_service("/iiif/2", stack(v2, args)?)
        .layer(middleware::from_fn(server::log)))
}
