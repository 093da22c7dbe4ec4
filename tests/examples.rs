//! The examples as users copy them, over real sockets: the README's stack (`examples/axum.rs`)
//! behind a proxy, and the demo server (`examples/serve/`): escaped pages, nothing written into
//! the images it serves or through planted links, and a server loop that slow clients cannot
//! take over.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;
use tower_iiif::samples::{self, VALIDATOR_ID};

mod common;

#[allow(dead_code)]
#[path = "../examples/axum.rs"]
mod readme_stack;

#[allow(dead_code)]
#[path = "../examples/serve/app.rs"]
mod serve_app;

/// A new empty directory of this test's own.
fn fresh_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tower-iiif-examples-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One GET from the local address `from` (any address of the loopback range), whole reply.
async fn get_from(from: [u8; 4], addr: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[tokio::test]
async fn the_readme_stack_behind_a_proxy_writes_the_proxys_urls() {
    let dir = fresh_dir("readme");
    samples::write_samples(&dir).unwrap();
    std::fs::copy(dir.join("gray.tif"), dir.join("private-gray.tif")).unwrap();
    let app = readme_stack::app(&dir).unwrap();
    let addr = common::serve_axum(app).await;
    let proxy = "X-Forwarded-Host: images.example.org\r\nX-Forwarded-Proto: https\r\n";
    // From the trusted proxy (127.0.0.1): the proxy's URL, with the mount path nest_service
    // was given, for both versions.
    let (status, body) = get_from([127, 0, 0, 1], addr, "/iiif/3/gray/info.json", proxy).await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["id"], "https://images.example.org/iiif/3/gray");
    let path = format!("/iiif/2/{VALIDATOR_ID}/info.json");
    let (status, body) = get_from([127, 0, 0, 1], addr, &path, proxy).await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["@id"],
        format!("https://images.example.org/iiif/2/{VALIDATOR_ID}")
    );
    // From an untrusted peer (127.0.0.2) the same headers are ignored.
    let (status, body) = get_from([127, 0, 0, 2], addr, "/iiif/3/gray/info.json", proxy).await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["id"], format!("http://{addr}/iiif/3/gray"));
    // The other layers are there: authorization, then the pixel limit, then Cache-Control.
    let (status, _) = get_from(
        [127, 0, 0, 1],
        addr,
        "/iiif/3/private-gray/full/max/0/default.jpg",
        "",
    )
    .await;
    assert_eq!(status, 401);
    let reply = common::get(addr, "/iiif/3/landscape/full/4000,/0/default.jpg", &[]).await;
    assert_eq!(reply.status, 403, "4000x2600 is over 10,000,000 pixels");
    let reply = common::get(addr, "/iiif/3/landscape/full/400,/0/default.jpg", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("cache-control"),
        Some("max-age=2592000, public, no-transform")
    );
    let px = reply.image();
    assert_eq!((px.width(), px.height()), (400, 260));
}

/// The demo app on a free port, with these arguments and limits.
async fn spawn_demo(args: serve_app::Args, limits: serve_app::ServerLimits) -> SocketAddr {
    let router = serve_app::app(&args).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_app::serve(listener, router, limits));
    addr
}

#[tokio::test]
async fn the_token_page_escapes_what_it_echoes() {
    let dir = fresh_dir("token");
    let args = serve_app::Args {
        samples: dir.join("samples"),
        ..Default::default()
    };
    let addr = spawn_demo(args, Default::default()).await;
    let reply = common::get(
        addr,
        "/auth/token?messageId=%3C/script%3E%3Cscript%3Ealert(2)%3C/script%3E&origin=%3C/script%3E%3Cscript%3Ealert(1)%3C/script%3E",
        &[],
    )
    .await;
    assert_eq!(reply.status, 200);
    let body = String::from_utf8(reply.body).unwrap();
    assert_eq!(body.matches("<script").count(), 1, "{body}");
    assert_eq!(body.matches("</script>").count(), 1, "{body}");
    assert!(body.contains(r#""\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e""#));
    assert!(!body.contains("alert(1)</script>"));
}

#[tokio::test]
async fn the_demo_writes_nothing_into_the_images_it_serves_nor_through_links() {
    let dir = fresh_dir("writes");
    // The user's own images: one file, with a name that is hostile in HTML.
    let images = dir.join("archive");
    std::fs::create_dir_all(&images).unwrap();
    let made = dir.join("made");
    samples::write_samples(&made).unwrap();
    let hostile = "x<b>&y.png";
    std::fs::copy(made.join("transparent.png"), images.join(hostile)).unwrap();
    let args = serve_app::Args {
        images: Some(images.clone()),
        samples: dir.join("unused"),
        ..Default::default()
    };
    let addr = spawn_demo(args, Default::default()).await;
    let listed: Vec<_> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(listed, [hostile]);
    assert!(!dir.join("unused").exists());
    // The viewer lists it, escaped.
    let page = String::from_utf8(common::get(addr, "/", &[]).await.body).unwrap();
    assert!(!page.contains("x<b>"), "{page}");
    assert!(page.contains(r"x\u003cb\u003e\u0026y.png"), "{page}");
    let reply = common::get(addr, "/iiif/3/x%3Cb%3E%26y.png/full/40,/0/default.png", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.image().width(), 40);

    // Samples go to their own directory, and a link planted there is never written through.
    let samples = dir.join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, samples.join("landscape.partial")).unwrap();
    std::os::unix::fs::symlink(&victim, samples.join("gray.tif")).unwrap();
    let args = serve_app::Args {
        samples: samples.clone(),
        ..Default::default()
    };
    let addr = spawn_demo(args, Default::default()).await;
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let reply = common::get(addr, "/iiif/3/landscape/full/100,/0/default.jpg", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.image().width(), 100);
}

/// Read until the server closes the connection; `None` if it is still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    match timeout(wait, stream.read_to_end(&mut buf)).await {
        Ok(_) => Some(buf),
        Err(_) => None,
    }
}

#[tokio::test]
async fn slow_and_idle_clients_are_cut_off_and_cannot_starve_others() {
    let dir = fresh_dir("slow");
    let args = serve_app::Args {
        samples: dir.join("samples"),
        ..Default::default()
    };
    let limits = serve_app::ServerLimits {
        header_read_timeout: Duration::from_millis(500),
        max_connections: 8,
    };
    let addr = spawn_demo(args, limits).await;
    // Five times the connection limit, each sending half a request and then nothing.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // A real client is still answered.
    let reply = timeout(Duration::from_secs(30), common::get(addr, "/health", &[]))
        .await
        .expect("answered despite 40 half-open connections");
    assert_eq!(reply.status, 200);
    // The half-open connections were closed by the server.
    for s in &mut slow[..8] {
        assert!(
            closed_within(s, Duration::from_secs(5)).await.is_some(),
            "a half-open connection is still open"
        );
    }
    // An idle keep-alive connection is closed too, after its response.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = closed_within(&mut idle, Duration::from_secs(5))
        .await
        .expect("an idle keep-alive connection is still open");
    assert!(got.starts_with(b"HTTP/1.1 200"));
}

#[tokio::test]
async fn the_viewers_work_offline_with_a_manifest_of_the_images() {
    let dir = fresh_dir("viewers");
    let args = serve_app::Args {
        samples: dir.join("samples"),
        ..Default::default()
    };
    let addr = spawn_demo(args, Default::default()).await;
    // OpenSeadragon from the binary, not from a CDN.
    let page = String::from_utf8(common::get(addr, "/", &[]).await.body).unwrap();
    assert!(
        page.contains("\"/viewer/openseadragon/openseadragon.min.js\""),
        "{page}"
    );
    assert!(
        !page.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    let js = common::get(addr, "/viewer/openseadragon/openseadragon.min.js", &[]).await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("application/javascript; charset=utf-8")
    );
    assert!(String::from_utf8_lossy(&js.body).contains("OpenSeadragon"));
    let version = common::get(addr, "/viewer/openseadragon/VERSION", &[]).await;
    assert!(String::from_utf8_lossy(&version.body).starts_with("6."));
    let button = common::get(addr, "/viewer/openseadragon/images/button_rest.png", &[]).await;
    assert_eq!(button.header("content-type"), Some("image/png"));
    assert!(button.image().width() > 0);
    // Mirador on a Presentation 3 manifest whose image services answer.
    let mirador = String::from_utf8(common::get(addr, "/mirador", &[]).await.body).unwrap();
    assert!(mirador.contains("/viewer/mirador/mirador.min.js"));
    let manifest = common::get(addr, "/manifest.json", &[]).await.json();
    assert_eq!(manifest["type"], "Manifest");
    let canvases = manifest["items"].as_array().unwrap();
    assert_eq!(canvases.len(), 4);
    let first = &canvases[0];
    assert_eq!(
        (first["width"].as_u64(), first["height"].as_u64()),
        (Some(4000), Some(2600))
    );
    let service = &first["items"][0]["items"][0]["body"]["service"][0];
    assert_eq!(service["type"], "ImageService3");
    let id = service["id"].as_str().unwrap();
    assert_eq!(id, format!("http://{addr}/iiif/3/landscape"));
    let info = common::get(
        addr,
        &format!("{}/info.json", &id[id.find("/iiif").unwrap()..]),
        &[],
    )
    .await
    .json();
    assert_eq!(info["width"], 4000);
}
