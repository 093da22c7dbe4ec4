//! The README's stack: IIIF 3.0 and 2.1 side by side under axum's `nest_service`, every layer
//! of the crate in front of each, behind a reverse proxy. Needs the `axum` feature, with which
//! the mount path is said once (in `nest_service`) and the peer address is read from axum's
//! `ConnectInfo`. `tests/examples.rs` runs this app behind a proxy header.
//!
//! ```text
//! cargo run --features axum --example axum -- [IMAGES_DIR]
//! curl -H 'X-Forwarded-Host: images.example.org' -H 'X-Forwarded-Proto: https' \
//!     http://127.0.0.1:8080/iiif/3/{identifier}/info.json
//! ```

use std::net::SocketAddr;
use std::path::Path;

use tower::ServiceBuilder;
use tower_iiif::IiifService;
use tower_iiif::auth::{AuthRequest, AuthorizeLayer, Decision, Denied};
use tower_iiif::base_uri::SetBaseUriLayer;
use tower_iiif::cache::MemoryCache;
use tower_iiif::cache_control::SetCacheControlLayer;
use tower_iiif::limit::PixelLimitLayer;
use tower_iiif::request::ApiVersion;
use tower_iiif::source::FsSource;

/// Identifiers starting with `private` need `Authorization: Bearer secret`.
async fn rule(req: AuthRequest) -> Decision {
    if req.identifier().as_str().starts_with("private") && req.bearer_token() != Some("secret") {
        return Decision::Deny(Denied::unauthorized("log in first").challenge("Bearer"));
    }
    Decision::Allow
}

/// The app: `/iiif/3` and `/iiif/2` over the images in `dir`, sharing one source and one
/// derivative cache, with the proxies on `127.0.0.1` and `10.0.0.0/8` trusted.
pub fn app(dir: &Path) -> std::io::Result<axum::Router> {
    let v3 = IiifService::new(FsSource::new(dir)?).derivative_cache(MemoryCache::new(256 << 20));
    let v2 = v3.clone().version(ApiVersion::V2); // shares the source and the caches
    let layers = ServiceBuilder::new()
        .layer(
            SetBaseUriLayer::forwarded() // X-Forwarded-* of trusted proxies
                .trusted_proxies(["127.0.0.1", "10.0.0.0/8"])
                .expect("valid networks"),
        )
        .layer(SetCacheControlLayer::new()) // max-age=2592000, public; private when restricted
        .layer(AuthorizeLayer::new(rule)) // runs before any cached byte is sent
        .layer(PixelLimitLayer::new().max_area(10_000_000)); // Cantaloupe's max_pixels
    Ok(axum::Router::new()
        .nest_service("/iiif/3", layers.service(v3))
        .nest_service("/iiif/2", layers.service(v2)))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "images".into());
    let app = app(Path::new(&dir))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    // The peer address (for the trusted proxies) comes from `ConnectInfo`.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
