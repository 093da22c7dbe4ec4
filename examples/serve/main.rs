//! The demo server: IIIF 3.0 at `/iiif/3` and 2.1 at `/iiif/2` over a directory of images, with
//! an OpenSeadragon viewer at `/`, a health check at `/health`, and every layer of the crate
//! stacked in front of the service.
//!
//! ```text
//! cargo run --release --example serve -- [--addr 127.0.0.1:8080] [--images samples]
//!     [--trusted-proxy CIDR]... [--base-uri URI] [--cache-control VALUE] [--max-pixels N]
//!     [--cache-mem BYTES] [--cache-dir DIR] [--pyramid-mem BYTES] [--pyramid-dir DIR]
//!     [--jpeg-quality Q] [--no-stored-tiles] [--demo-auth]
//! ```
//!
//! The sample images (among them the IIIF validator's test image) are generated into the
//! images directory on first run when they are missing.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::{Html, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_iiif::auth::{AuthRequest, AuthTarget, AuthorizeLayer, Decision, Denied, ResponseBody};
use tower_iiif::cache::{FsCache, MemoryCache};
use tower_iiif::cache_control::{CacheControl, SetCacheControlLayer};
use tower_iiif::limit::{Limits, PixelLimitLayer};
use tower_iiif::request::ApiVersion;
use tower_iiif::source::FsSource;
use tower_iiif::{IiifBody, IiifService, SetBaseUriLayer, samples};

const USAGE: &str = "usage: serve [--addr HOST:PORT] [--images DIR] [--trusted-proxy CIDR]... \
[--base-uri URI] [--cache-control VALUE] [--max-pixels N] [--cache-mem BYTES] [--cache-dir DIR] \
[--pyramid-mem BYTES] [--pyramid-dir DIR] [--jpeg-quality Q] [--no-stored-tiles] [--demo-auth]";

#[derive(Clone)]
struct Args {
    addr: SocketAddr,
    images: PathBuf,
    trusted_proxies: Vec<String>,
    base_uri: Option<String>,
    cache_control: CacheControl,
    max_pixels: u64,
    cache_mem: u64,
    cache_dir: Option<PathBuf>,
    /// Bytes of reduced pyramids of large flat images (0: none).
    pyramid_mem: u64,
    /// A directory that keeps the reduced pyramids across restarts.
    pyramid_dir: Option<PathBuf>,
    /// JPEG output quality, 1 to 100.
    jpeg_quality: u8,
    /// `--no-stored-tiles`: re-encode whole stored JPEG tiles instead of sending them.
    stored_tiles: bool,
    demo_auth: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:8080".parse().expect("valid default"),
        images: PathBuf::from("samples"),
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
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--images" => args.images = PathBuf::from(value()?),
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

/// Every layer in front of one mount of the service.
fn stack(svc: IiifService<FsSource>, mount: &str, args: &Args) -> Result<Stacked, String> {
    let base = match &args.base_uri {
        Some(uri) => SetBaseUriLayer::fixed(format!("{uri}{mount}")),
        None => SetBaseUriLayer::forwarded(mount),
    }
    .trusted_proxies(&args.trusted_proxies)
    .map_err(|e| format!("--trusted-proxy: {e}"))?
    .peer_addr(|p| {
        p.extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    });
    let demo = args.demo_auth;
    let mut auth = AuthorizeLayer::new(svc.context(), move |req| demo_rule(demo, req));
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

/// The demo's Auth 2 token service: hands out the token `demo` by postMessage.
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
    let origin =
        serde_json::to_string(q.get("origin").map_or("*", String::as_str)).expect("string");
    Html(format!(
        "<html><body><script>window.parent.postMessage({message}, {origin});</script></body></html>"
    ))
}

/// One log line per request: method, path, status, milliseconds.
async fn log(req: Request, next: Next) -> Response {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let start = Instant::now();
    let res = next.run(req).await;
    eprintln!(
        "{method} {uri} {} {:.1}ms",
        res.status().as_u16(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    res
}

const PAGE: &str = r##"<!doctype html>
<html><head><meta charset="utf-8"><title>tower-iiif demo</title>
<style>body{margin:0;font-family:sans-serif}#osd{width:100vw;height:calc(100vh - 3em)}
header{height:3em;display:flex;gap:1em;align-items:center;padding:0 1em}</style>
<script src="https://cdn.jsdelivr.net/npm/openseadragon@4.1/build/openseadragon/openseadragon.min.js"></script>
</head><body>
<header><b>tower-iiif</b> <span id="ids"></span></header>
<div id="osd"></div>
<script>
const ids = IDS;
const viewer = OpenSeadragon({id: "osd", prefixUrl: "https://cdn.jsdelivr.net/npm/openseadragon@4.1/build/openseadragon/images/",
  tileSources: "/iiif/3/" + encodeURIComponent(ids[0]) + "/info.json"});
document.getElementById("ids").innerHTML = ids.map(id =>
  `<a href="#" onclick="viewer.open('/iiif/3/${encodeURIComponent(id)}/info.json');return false">${id}</a>
   (<a href="/iiif/3/${encodeURIComponent(id)}/info.json">3.0</a>, <a href="/iiif/2/${encodeURIComponent(id)}/info.json">2.1</a>)`).join(" · ");
</script></body></html>"##;

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let mut ids = samples::write_samples(&args.images).unwrap_or_else(|e| {
        eprintln!("cannot write samples into {}: {e}", args.images.display());
        std::process::exit(1);
    });
    ids.sort_by_key(|id| id != "landscape");
    let source = FsSource::new(&args.images).unwrap_or_else(|e| {
        eprintln!("cannot serve {}: {e}", args.images.display());
        std::process::exit(1);
    });

    let mut v3 = IiifService::new(source)
        .path_prefix("/iiif/3")
        .reduced_pyramids(args.pyramid_mem, 16_000_000)
        .jpeg_quality(args.jpeg_quality)
        .stored_tiles(args.stored_tiles);
    if let Some(dir) = &args.pyramid_dir {
        let store = FsCache::new(dir).unwrap_or_else(|e| {
            eprintln!("cannot use pyramid directory {}: {e}", dir.display());
            std::process::exit(1);
        });
        v3 = v3.reduced_pyramid_store(store.max_bytes(8 << 30));
    }
    if let Some(dir) = &args.cache_dir {
        let cache = FsCache::new(dir).unwrap_or_else(|e| {
            eprintln!("cannot use cache directory {}: {e}", dir.display());
            std::process::exit(1);
        });
        v3 = v3.derivative_cache(cache);
    } else if args.cache_mem > 0 {
        v3 = v3.derivative_cache(MemoryCache::new(args.cache_mem));
    }
    let v2 = v3.clone().version(ApiVersion::V2).path_prefix("/iiif/2");
    let health = v3.health();
    let (v3, v2) = match (stack(v3, "/iiif/3", &args), stack(v2, "/iiif/2", &args)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let page = PAGE.replace("IDS", &serde_json::to_string(&ids).expect("strings"));
    let app = axum::Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route("/auth/token", get(token_page))
        .route_service("/health", health)
        .nest_service("/iiif/3", v3)
        .nest_service("/iiif/2", v2)
        .layer(middleware::from_fn(log));

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {}: {e}", args.addr);
            std::process::exit(1);
        });
    let addr = listener.local_addr().expect("bound");
    eprintln!(
        "listening on http://{addr} (images in {}; open http://{addr}/ for the viewer)",
        args.images.display()
    );
    // No Nagle delay between a response's head and body on keep-alive connections.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("server error");
}
