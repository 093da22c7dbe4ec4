//! End-to-end over a real socket: the service mounted under axum (`nest_service` for both
//! versions, `fallback_service` at the root) and under plain hyper, requested with raw HTTP/1.1.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

mod common;

use common::Reply;
use tokio::net::TcpListener;
use tower_iiif::IiifService;
use tower_iiif::request::ApiVersion;
use tower_iiif::samples::{self, VALIDATOR_ID, square_color};
use tower_iiif::source::FsSource;

fn samples_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tower-iiif-e2e-{}", std::process::id()));
        samples::write_samples(&dir).unwrap();
        // An identifier with a slash and one with a space in it.
        std::fs::create_dir_all(dir.join("folder")).unwrap();
        std::fs::copy(dir.join("gray.tif"), dir.join("folder/inner.tif")).unwrap();
        std::fs::copy(dir.join("gray.tif"), dir.join("with space.tif")).unwrap();
        dir
    })
}

fn source() -> FsSource {
    FsSource::new(samples_dir()).unwrap()
}

/// axum with 3.0 at /iiif/3 and 2.1 at /iiif/2.
async fn axum_server() -> SocketAddr {
    let v3 = IiifService::new(source()).path_prefix("/iiif/3");
    let v2 = v3.clone().version(ApiVersion::V2).path_prefix("/iiif/2");
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "home" }))
        .nest_service("/iiif/3", v3)
        .nest_service("/iiif/2", v2);
    spawn_axum(app).await
}

async fn spawn_axum(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A GET with no extra headers.
async fn get(addr: SocketAddr, path: &str) -> Reply {
    common::get(addr, path, &[]).await
}

#[tokio::test]
async fn both_versions_side_by_side_under_axum() {
    let addr = axum_server().await;
    let v3 = get(addr, &format!("/iiif/3/{VALIDATOR_ID}/info.json")).await;
    assert_eq!(v3.status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&v3.body).unwrap();
    assert_eq!(doc["id"], format!("http://{addr}/iiif/3/{VALIDATOR_ID}"));
    let v2 = get(addr, &format!("/iiif/2/{VALIDATOR_ID}/info.json")).await;
    assert_eq!(v2.status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&v2.body).unwrap();
    assert_eq!(doc["@id"], format!("http://{addr}/iiif/2/{VALIDATOR_ID}"));
    // The app's own routes still work.
    assert_eq!(get(addr, "/").await.body, b"home");

    let img = get(
        addr,
        &format!("/iiif/2/{VALIDATOR_ID}/full/pct:25/0/default.png"),
    )
    .await;
    assert_eq!(img.status, 200);
    assert_eq!(img.header("content-type"), Some("image/png"));
    let px = img.image();
    assert_eq!((px.width(), px.height()), (250, 250));
    assert_eq!(px.pixel(240, 10), &square_color(9, 0));
}

#[tokio::test]
async fn redirect_cors_and_link_over_the_wire() {
    let addr = axum_server().await;
    let r = get(addr, &format!("/iiif/3/{VALIDATOR_ID}")).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some(format!("http://{addr}/iiif/3/{VALIDATOR_ID}/info.json").as_str())
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    let img = get(
        addr,
        &format!("/iiif/3/{VALIDATOR_ID}/full/max/0/default.jpg"),
    )
    .await;
    assert_eq!(img.status, 200);
    assert_eq!(
        img.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("link"))
            .count(),
        1
    );
    let link = img.header("link").unwrap();
    assert!(
        link.contains("<http://iiif.io/api/image/3/level2.json>;rel=\"profile\""),
        "{link}"
    );
    assert!(link.contains(&format!(
        "<http://{addr}/iiif/3/{VALIDATOR_ID}/full/max/0/default.jpg>;rel=\"canonical\""
    )));
    assert_eq!(
        img.header("content-length"),
        Some(img.body.len().to_string().as_str())
    );

    let pre = common::request(
        addr,
        "OPTIONS",
        &format!("/iiif/3/{VALIDATOR_ID}/info.json"),
        &[
            ("Origin", "http://iiif.io"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "Authorization"),
        ],
    )
    .await;
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("Authorization")
    );

    let head = common::request(
        addr,
        "HEAD",
        &format!("/iiif/3/{VALIDATOR_ID}/info.json"),
        &[],
    )
    .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(
        head.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 100
    );
}

#[tokio::test]
async fn encoded_identifiers_survive_the_router() {
    let addr = axum_server().await;
    let slash = get(addr, "/iiif/3/folder%2Finner/info.json").await;
    assert_eq!(
        slash.status,
        200,
        "{}",
        String::from_utf8_lossy(&slash.body)
    );
    let doc: serde_json::Value = serde_json::from_slice(&slash.body).unwrap();
    assert_eq!(doc["id"], format!("http://{addr}/iiif/3/folder%2Finner"));
    // `+` and `%20` both mean a space.
    for path in [
        "/iiif/3/with+space/info.json",
        "/iiif/3/with%20space/info.json",
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 200, "{path}");
        let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(doc["id"], format!("http://{addr}/iiif/3/with%20space"));
    }
    let escaped = get(
        addr,
        &format!(
            "/iiif/3/{}/full/max/0/default.jpg",
            VALIDATOR_ID.replace('-', "%2D")
        ),
    )
    .await;
    assert_eq!(escaped.status, 200);
    // An unencoded slash makes the path one segment too long: 404.
    assert_eq!(
        get(addr, "/iiif/3/folder/inner/info.json").await.status,
        404
    );
}

#[tokio::test]
async fn hostile_requests_get_client_errors() {
    let addr = axum_server().await;
    let long = "a".repeat(5000);
    let rows = [
        ("/iiif/3/[frob]/info.json".to_owned(), &[400u16, 404][..]),
        (
            "/iiif/3/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd/info.json".to_owned(),
            &[404],
        ),
        ("/iiif/3/%00/info.json".to_owned(), &[400]),
        (format!("/iiif/3/{long}/info.json"), &[404, 414, 431]),
        (
            format!("/iiif/3/{VALIDATOR_ID}/full/99999999999,/0/default.jpg"),
            &[400],
        ),
        (
            format!("/iiif/3/{VALIDATOR_ID}/full/^pct:99999/0/default.jpg"),
            &[400],
        ),
        (
            format!("/iiif/3/{VALIDATOR_ID}/pct:NaN,0,1,1/max/0/default.jpg"),
            &[400],
        ),
        (
            format!("/iiif/3/{VALIDATOR_ID}/full/max/inf/default.jpg"),
            &[400],
        ),
        (
            format!("/iiif/3/{VALIDATOR_ID}/full/max/0/default.exe"),
            &[400],
        ),
        // Malformed percent-encoding is a malformed request.
        ("/iiif/3/%/info.json".to_owned(), &[400]),
        ("/iiif/3/100%25%zz/info.json".to_owned(), &[400]),
        ("/iiif/3/a%2/full/max/0/default.jpg".to_owned(), &[400]),
        // An empty identifier is never redirected (to `info.json/info.json`).
        ("/iiif/3//info.json".to_owned(), &[400, 404]),
        ("/iiif/3//".to_owned(), &[400, 404]),
        ("/iiif/2//info.json".to_owned(), &[400, 404]),
        ("/iiif/3//full/max/0/default.jpg".to_owned(), &[400, 404]),
    ];
    for (path, allowed) in rows {
        let r = get(addr, &path).await;
        assert!(allowed.contains(&r.status), "{path}: {}", r.status);
        assert!(r.status < 500);
        assert_eq!(r.header("location"), None, "{path}");
    }
    // The server is still up.
    assert_eq!(
        get(addr, &format!("/iiif/3/{VALIDATOR_ID}/info.json"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn fallback_service_at_the_root() {
    let svc = IiifService::new(source());
    let app = axum::Router::new().fallback_service(svc);
    let addr = spawn_axum(app).await;
    let r = get(addr, "/gray/info.json").await;
    assert_eq!(r.status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(doc["id"], format!("http://{addr}/gray"));
}

#[tokio::test]
async fn plain_hyper_with_tower_to_hyper_service() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let svc = IiifService::new(source()).path_prefix("/iiif/3");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let r = get(
        addr,
        &format!("/iiif/3/{VALIDATOR_ID}/pct:50,50,50,50/100,/0/gray.png"),
    )
    .await;
    assert_eq!(r.status, 200);
    let px = r.image();
    assert_eq!((px.width(), px.height()), (100, 100));
    assert_eq!(px.layout(), tower_iiif::__private::Layout::Gray);
}

#[tokio::test]
async fn concurrent_tile_burst() {
    let addr = axum_server().await;
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let (x, y) = ((i % 4) * 250, (i / 4 % 4) * 250);
        let path = format!("/iiif/3/{VALIDATOR_ID}/{x},{y},250,250/125,125/0/default.jpg");
        tasks.push(tokio::spawn(async move { (x, y, get(addr, &path).await) }));
    }
    for t in tasks {
        let (x, y, r) = t.await.unwrap();
        assert_eq!(r.status, 200);
        let px = r.image();
        assert_eq!((px.width(), px.height()), (125, 125));
        let want = square_color((x / 100) as usize, (y / 100) as usize);
        let got = px.pixel(10, 10);
        for c in 0..3 {
            assert!(
                got[c].abs_diff(want[c]) <= 12,
                "tile {x},{y}: {got:?} vs {want:?}"
            );
        }
    }
}

/// GIF, WebP and BMP sources (Cantaloupe reads them): info.json, a scaled image and a region, with
/// the colours of the source where they belong; a file of no format we read is a 501 and a
/// broken PNG a 500, each with one line and no decoder's debug output.
#[tokio::test]
async fn gif_webp_and_bmp_sources_and_clean_errors_for_the_rest() {
    use tower_iiif::__private::{EncodeOptions, Layout, Pixels, encode};
    use tower_iiif::request::Format;
    let dir = std::env::temp_dir().join(format!("tower-iiif-e2e-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 64x48: red left half, blue right half, a green bottom-right quarter.
    let mut data = Vec::new();
    for y in 0..48 {
        for x in 0..64 {
            data.extend_from_slice(match (x < 32, y < 24) {
                (true, _) => &[220u8, 20, 20][..],
                (false, true) => &[20, 20, 220],
                (false, false) => &[20, 200, 20],
            });
        }
    }
    let px = Pixels::from_vec(64, 48, Layout::Rgb, data).unwrap();
    for (name, format) in [("pic.gif", Format::Gif), ("pic.webp", Format::Webp)] {
        let bytes = encode(&px, format, &EncodeOptions::default()).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // The same picture as a 24-bit BMP: bottom-up rows of B, G, R (64 * 3 bytes: no padding).
    let mut bmp = Vec::new();
    let data_len = 64u32 * 48 * 3;
    bmp.extend_from_slice(b"BM");
    bmp.extend_from_slice(&(54 + data_len).to_le_bytes());
    bmp.extend_from_slice(&[0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0]);
    bmp.extend_from_slice(&64u32.to_le_bytes());
    bmp.extend_from_slice(&48u32.to_le_bytes());
    bmp.extend_from_slice(&[1, 0, 24, 0, 0, 0, 0, 0]);
    bmp.extend_from_slice(&data_len.to_le_bytes());
    bmp.extend_from_slice(&[0; 16]);
    for y in (0..48).rev() {
        for p in px.data()[y * 64 * 3..][..64 * 3].chunks(3) {
            bmp.extend_from_slice(&[p[2], p[1], p[0]]);
        }
    }
    std::fs::write(dir.join("pic.bmp"), bmp).unwrap();
    let mut broken_png = b"\x89PNG\r\n\x1a\n".to_vec();
    broken_png.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
    std::fs::write(dir.join("broken.png"), broken_png).unwrap();
    std::fs::write(dir.join("pic.bmp.txt"), b"BM6\0\0\0 not an image we read").unwrap();
    let v3 = IiifService::new(FsSource::new(&dir).unwrap());
    let addr = spawn_axum(axum::Router::new().nest_service("/iiif/3", v3)).await;

    for id in ["pic.gif", "pic.webp", "pic.bmp", "pic"] {
        let info = get(addr, &format!("/iiif/3/{id}/info.json")).await;
        assert_eq!(info.status, 200, "{id}");
        assert_eq!(
            (info.json()["width"].clone(), info.json()["height"].clone()),
            (64.into(), 48.into())
        );
        let img = get(addr, &format!("/iiif/3/{id}/full/32,/0/default.png")).await;
        assert_eq!(img.status, 200, "{id}");
        let out = img.image();
        assert_eq!((out.width(), out.height()), (32, 24));
        let at = |p: &Pixels, x: u32, y: u32| {
            let c = p.layout().channels();
            p.data()[((y * p.width() + x) as usize) * c..][..3].to_vec()
        };
        let near = |a: Vec<u8>, b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12);
        assert!(
            near(at(&out, 4, 4), [220, 20, 20]),
            "{id}: {:?}",
            at(&out, 4, 4)
        );
        assert!(
            near(at(&out, 28, 4), [20, 20, 220]),
            "{id}: {:?}",
            at(&out, 28, 4)
        );
        assert!(
            near(at(&out, 28, 20), [20, 200, 20]),
            "{id}: {:?}",
            at(&out, 28, 20)
        );
        // A region of the green quarter, at full size.
        let img = get(addr, &format!("/iiif/3/{id}/40,30,8,8/max/0/default.png")).await;
        let out = img.image();
        assert_eq!((out.width(), out.height()), (8, 8));
        assert!(near(at(&out, 4, 4), [20, 200, 20]), "{id}");
    }
    for (id, status) in [("pic.bmp.txt", 501), ("broken.png", 500)] {
        let r = get(addr, &format!("/iiif/3/{id}/info.json")).await;
        assert_eq!(r.status, status, "{id}");
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(body.trim().lines().count(), 1, "{id}: {body}");
        assert!(
            !body.contains(['{', '}']) && !body.contains("::"),
            "{id}: {body}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
