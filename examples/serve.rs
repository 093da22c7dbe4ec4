//! The demo server: IIIF 3.0 at `/iiif/3` and 2.1 at `/iiif/2` over a directory of images, with
//! an OpenSeadragon viewer at `/`.
//!
//! ```text
//! cargo run --release --example serve -- [--addr 127.0.0.1:8080] [--images samples]
//! ```
//!
//! The sample images (among them the IIIF validator's test image) are generated into the
//! images directory on first run when they are missing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{Html, Response};
use axum::routing::get;
use tower_iiif::request::ApiVersion;
use tower_iiif::source::FsSource;
use tower_iiif::{IiifService, samples};

struct Args {
    addr: SocketAddr,
    images: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:8080".parse().expect("valid default"),
        images: PathBuf::from("samples"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--images" => args.images = PathBuf::from(value()?),
            "-h" | "--help" => {
                return Err("usage: serve [--addr HOST:PORT] [--images DIR]".into());
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(args)
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

    let v3 = IiifService::new(source).path_prefix("/iiif/3");
    let v2 = v3.clone().version(ApiVersion::V2).path_prefix("/iiif/2");
    let page = PAGE.replace("IDS", &serde_json::to_string(&ids).expect("strings"));
    let app = axum::Router::new()
        .route("/", get(move || async move { Html(page) }))
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
    axum::serve(listener, app).await.expect("server error");
}
