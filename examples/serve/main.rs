//! The demo server: IIIF 3.0 at `/iiif/3` and 2.1 at `/iiif/2` over a directory of images, with
//! an OpenSeadragon viewer at `/` and Mirador at `/mirador` (both served from copies in the
//! repository, so the demo works offline), a health check at `/health`, and every layer of the
//! crate stacked in front of the service.
//!
//! ```text
//! cargo run --release --features axum --example serve -- [--addr 127.0.0.1:8080]
//!     [--images DIR | --samples DIR] [--trusted-proxy CIDR]... [--base-uri URI]
//!     [--cache-control VALUE] [--max-pixels N] [--cache-mem BYTES] [--cache-dir DIR]
//!     [--pyramid-mem BYTES] [--pyramid-dir DIR] [--jpeg-quality Q] [--no-stored-tiles]
//!     [--demo-auth]
//! ```
//!
//! `--images DIR` serves your own images and writes nothing into DIR. Without it, sample images
//! (among them the IIIF validator's test image) are generated into the samples directory
//! (`samples` by default) on first run, and served from there.

mod app;

#[tokio::main]
async fn main() {
    app::limit_malloc_arenas();
    let args = app::parse_args(std::env::args().skip(1)).unwrap_or_else(|msg| {
        eprintln!("{msg}");
        std::process::exit(2);
    });
    let router = app::app(&args).await.unwrap_or_else(|msg| {
        eprintln!("{msg}");
        std::process::exit(1);
    });
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {}: {e}", args.addr);
            std::process::exit(1);
        });
    let addr = listener.local_addr().expect("bound");
    let dir = args.images.as_ref().unwrap_or(&args.samples);
    eprintln!(
        "listening on http://{addr} (images in {}; open http://{addr}/ for the viewer)",
        dir.display()
    );
    app::serve(listener, router, app::ServerLimits::default()).await;
}
