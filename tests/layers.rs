//! End-to-end over a real socket with every layer stacked as a host app would:
//! SetBaseUri -> SetCacheControl -> Authorize -> PixelLimit -> IiifService (with a derivative
//! cache), under axum's `nest_service` with the `axum` feature.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use axum::extract::Request;
use axum::response::Response;
mod common;

use common::get;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied, ResponseBody};
use tower_iiif::base_uri::SetBaseUriLayer;
use tower_iiif::cache::MemoryCache;
use tower_iiif::cache_control::SetCacheControlLayer;
use tower_iiif::limit::PixelLimitLayer;
use tower_iiif::samples::{self, VALIDATOR_ID};
use tower_iiif::source::FsSource;
use tower_iiif::{IiifBody, IiifService};

fn samples_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tower-iiif-layers-{}", std::process::id()));
        samples::write_samples(&dir).unwrap();
        std::fs::copy(dir.join("gray.tif"), dir.join("private-gray.tif")).unwrap();
        dir
    })
}

async fn rule(req: AuthRequest) -> Decision {
    let private = req.identifier().as_str().starts_with("private");
    match (private, req.bearer_token()) {
        (true, Some("demo")) => Decision::AllowRestricted,
        (true, _) => Decision::Deny(Denied::unauthorized("log in first").challenge("Bearer")),
        (false, _) => Decision::Allow,
    }
}

/// Serve the stacked service at /iiif/3, trusting `trusted` as proxies.
async fn server(trusted: &str) -> (SocketAddr, IiifService<FsSource>) {
    // No path prefix and no peer-address function: with the `axum` feature the service reads
    // the mount path from `nest_service` and the layer the peer from `ConnectInfo`.
    let svc = IiifService::new(FsSource::new(samples_dir()).unwrap())
        .derivative_cache(MemoryCache::new(64 << 20));
    let stacked: BoxCloneSyncService<Request, Response<ResponseBody<IiifBody>>, Infallible> =
        BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(
                    SetBaseUriLayer::forwarded()
                        .trusted_proxies([trusted])
                        .unwrap(),
                )
                .layer(SetCacheControlLayer::new())
                .layer(AuthorizeLayer::new(rule))
                .layer(PixelLimitLayer::new().max_area(4_000_000))
                .service(svc.clone()),
        );
    let app = axum::Router::new().nest_service("/iiif/3", stacked);
    let addr = common::serve_axum(app).await;
    (addr, svc)
}

#[tokio::test]
async fn spoofed_forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let (addr, _) = server("10.0.0.0/8").await;
    let r = get(
        addr,
        &format!("/iiif/3/{VALIDATOR_ID}/info.json"),
        &[
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Path", "/x"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["id"],
        format!("http://{addr}/iiif/3/{VALIDATOR_ID}")
    );
}

#[tokio::test]
async fn trusted_proxy_path_and_prefix_give_the_public_id() {
    let (addr, _) = server("127.0.0.1").await;
    let r = get(
        addr,
        &format!("/iiif/3/{VALIDATOR_ID}/info.json"),
        &[
            ("X-Forwarded-Host", "images.example.org"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Port", "443"),
            ("X-Forwarded-Prefix", "/gateway"),
            ("X-Forwarded-Path", "/cantaloupe"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["id"],
        format!("https://images.example.org/gateway/cantaloupe/iiif/3/{VALIDATOR_ID}")
    );
    let redirect = get(
        addr,
        "/iiif/3/gray",
        &[("X-Forwarded-Host", "images.example.org")],
    )
    .await;
    assert_eq!(redirect.status, 303);
    assert_eq!(
        redirect.header("location"),
        Some("http://images.example.org/iiif/3/gray/info.json")
    );
}

#[tokio::test]
async fn a_cached_protected_derivative_is_refused_to_anonymous_clients() {
    let (addr, svc) = server("10.0.0.0/8").await;
    let path = "/iiif/3/private-gray/full/200,/0/default.png";
    // The token holder renders it and fills the cache; the response is private.
    let allowed = get(addr, path, &[("Authorization", "Bearer demo")]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("cache-control"),
        Some("max-age=2592000, private, no-cache, no-transform")
    );
    let again = get(addr, path, &[("Authorization", "Bearer demo")]).await;
    assert_eq!(again.body, allowed.body);
    assert_eq!(svc.renders(), 1, "the second one was a cache hit");
    // Anonymous: refused, though the bytes are in the cache.
    let anonymous = get(addr, path, &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    assert!(!anonymous.body.starts_with(b"\x89PNG"));
    assert_eq!(anonymous.header("cache-control"), Some("no-store"));
    // Public images are public.
    let public = get(
        addr,
        &format!("/iiif/3/{VALIDATOR_ID}/full/100,/0/default.jpg"),
        &[],
    )
    .await;
    assert_eq!(
        public.header("cache-control"),
        Some("max-age=2592000, public, no-transform")
    );
}

#[tokio::test]
async fn etag_gives_304_through_every_layer() {
    let (addr, _) = server("10.0.0.0/8").await;
    let path = format!("/iiif/3/{VALIDATOR_ID}/full/150,/0/default.jpg");
    let first = get(addr, &path, &[]).await;
    let etag = first.header("etag").unwrap().to_owned();
    let second = get(addr, &path, &[("If-None-Match", &etag)]).await;
    assert_eq!(second.status, 304);
    assert!(second.body.is_empty());
    assert_eq!(second.header("etag"), Some(etag.as_str()));
    assert_eq!(
        second.header("cache-control"),
        Some("max-age=2592000, public, no-transform")
    );
}

#[tokio::test]
async fn pixel_limit_over_the_wire() {
    let (addr, _) = server("10.0.0.0/8").await;
    let r = get(addr, "/iiif/3/landscape/full/full/0/default.jpg", &[]).await;
    assert_eq!(r.status, 400, "3.0 has no size full");
    let r = get(addr, "/iiif/3/landscape/full/4000,/0/default.jpg", &[]).await;
    assert_eq!(r.status, 403);
    let r = get(addr, "/iiif/3/landscape/info.json", &[]).await;
    assert_eq!(r.json()["maxArea"], 4_000_000);
}
