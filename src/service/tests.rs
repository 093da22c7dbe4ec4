//! `IiifService` driven with `oneshot`: statuses, headers, and decoded image content.

use std::path::PathBuf;
use std::sync::OnceLock;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::codec::testutil::mean_abs_diff;
use crate::pixels::Rect;
use crate::samples::{VALIDATOR_ID, square_color};
use crate::source::{FsSource, Source, SourceObject};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A directory of generated samples, shared by the tests of this process.
fn samples_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tower-iiif-svc-{}", std::process::id()));
        crate::samples::write_samples(&dir).unwrap();
        std::fs::write(
            dir.join("corrupt.jpg"),
            b"\xFF\xD8\xFF\xE0 this is not a jpeg",
        )
        .unwrap();
        std::fs::write(dir.join("text.jpg"), b"hello, not an image").unwrap();
        dir
    })
}

fn service(version: ApiVersion) -> IiifService<FsSource> {
    let prefix = match version {
        ApiVersion::V2 => "/iiif/2",
        _ => "/iiif/3",
    };
    IiifService::new(FsSource::new(samples_dir()).unwrap())
        .version(version)
        .path_prefix(prefix)
}

struct Got {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

async fn send(
    svc: &IiifService<FsSource>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Got {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "iiif.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = svc.clone().oneshot(req.body(()).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    Got {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

async fn get(svc: &IiifService<FsSource>, path: &str) -> Got {
    send(svc, "GET", path, &[]).await
}

fn v3_image(params: &str) -> String {
    format!("/iiif/3/{VALIDATOR_ID}/{params}")
}

fn v2_image(params: &str) -> String {
    format!("/iiif/2/{VALIDATOR_ID}/{params}")
}

/// Decode a response body of any output format to pixels.
fn decode(body: &[u8], media_type: &str) -> crate::pixels::Pixels {
    use crate::pixels::{Layout, Pixels};
    match media_type {
        "image/gif" => {
            let mut opts = gif::DecodeOptions::new();
            opts.set_color_output(gif::ColorOutput::RGBA);
            let mut d = opts.read_info(body).unwrap();
            let frame = d.read_next_frame().unwrap().unwrap();
            Pixels::from_vec(
                u32::from(frame.width),
                u32::from(frame.height),
                Layout::Rgba,
                frame.buffer.to_vec(),
            )
            .unwrap()
        }
        "image/webp" => {
            let mut d = image_webp::WebPDecoder::new(std::io::Cursor::new(body)).unwrap();
            let (w, h) = d.dimensions();
            let layout = if d.has_alpha() {
                Layout::Rgba
            } else {
                Layout::Rgb
            };
            let mut buf = vec![0; d.output_buffer_size().unwrap()];
            d.read_image(&mut buf).unwrap();
            Pixels::from_vec(w, h, layout, buf).unwrap()
        }
        _ => crate::codec::decode(body, crate::pixels::Budget::default()).unwrap(),
    }
}

fn content_type(got: &Got) -> &str {
    got.headers["content-type"].to_str().unwrap()
}

/// Assert the colour at (x, y) is within `tol` of `want` on every colour channel.
fn assert_color(px: &crate::pixels::Pixels, x: u32, y: u32, want: [u8; 3], tol: u8, what: &str) {
    let p = px.pixel(x, y);
    let rgb = if px.layout().is_gray() {
        [p[0]; 3]
    } else {
        [p[0], p[1], p[2]]
    };
    for c in 0..3 {
        assert!(
            rgb[c].abs_diff(want[c]) <= tol,
            "{what}: pixel ({x},{y}) is {rgb:?}, want {want:?} ±{tol}"
        );
    }
}

#[tokio::test]
async fn base_uri_redirects_to_info_json() {
    for (svc, path, want) in [
        (
            service(ApiVersion::V3),
            "/iiif/3/abc",
            "http://iiif.test/iiif/3/abc/info.json",
        ),
        (
            service(ApiVersion::V3),
            "/abc",
            "http://iiif.test/iiif/3/abc/info.json",
        ),
        (
            service(ApiVersion::V2),
            "/iiif/2/a%2Fb",
            "http://iiif.test/iiif/2/a%2Fb/info.json",
        ),
        (
            service(ApiVersion::V3),
            "/iiif/3/a+b",
            "http://iiif.test/iiif/3/a%20b/info.json",
        ),
    ] {
        let got = get(&svc, path).await;
        assert_eq!(got.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(got.headers["location"], want, "{path}");
        assert_eq!(got.headers["access-control-allow-origin"], "*");
    }
}

#[tokio::test]
async fn info_json_v3() {
    let svc = service(ApiVersion::V3);
    let got = get(&svc, &format!("/iiif/3/{VALIDATOR_ID}/info.json")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        content_type(&got),
        "application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\""
    );
    assert_eq!(got.headers["access-control-allow-origin"], "*");
    assert_eq!(got.headers["vary"], "Accept");
    assert_eq!(
        got.headers["content-length"],
        got.body.len().to_string().as_str()
    );
    let doc: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(doc["id"], format!("http://iiif.test/iiif/3/{VALIDATOR_ID}"));
    assert_eq!(
        (doc["width"].as_u64(), doc["height"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(doc["type"], "ImageService3");

    let json = send(
        &svc,
        "GET",
        &format!("/iiif/3/{VALIDATOR_ID}/info.json"),
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(content_type(&json), "application/json");
    // The escaped identifier is the same image.
    let escaped = get(
        &svc,
        &format!("/iiif/3/{}/info.json", VALIDATOR_ID.replace('-', "%2D")),
    )
    .await;
    assert_eq!(escaped.status, StatusCode::OK);
}

#[tokio::test]
async fn info_json_v2() {
    let svc = service(ApiVersion::V2);
    let path = format!("/iiif/2/{VALIDATOR_ID}/info.json");
    let got = get(&svc, &path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(content_type(&got), "application/json");
    let doc: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        doc["@id"],
        format!("http://iiif.test/iiif/2/{VALIDATOR_ID}")
    );
    assert_eq!(doc["@context"], "http://iiif.io/api/image/2/context.json");
    let ld = send(&svc, "GET", &path, &[("accept", "application/ld+json")]).await;
    assert_eq!(content_type(&ld), "application/ld+json");
}

#[tokio::test]
async fn gray_and_exif_sources_report_their_real_shape() {
    let svc = service(ApiVersion::V3);
    let got = get(&svc, "/iiif/3/gray/info.json").await;
    let doc: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        (doc["width"].as_u64(), doc["height"].as_u64()),
        (Some(700), Some(500))
    );
    assert!(
        !doc["extraQualities"]
            .as_array()
            .unwrap()
            .contains(&"color".into())
    );
}

#[tokio::test]
async fn image_requests_v3_sizes_and_colours() {
    let svc = service(ApiVersion::V3);
    // (params, expected size, [(x, y) in output, square (col,row)])
    type Row = (
        &'static str,
        (u32, u32),
        &'static [((u32, u32), (usize, usize))],
    );
    let rows: &[Row] = &[
        (
            "full/max/0/default.png",
            (1000, 1000),
            &[
                ((50, 50), (0, 0)),
                ((950, 950), (9, 9)),
                ((150, 50), (1, 0)),
            ],
        ),
        (
            "full/500,/0/default.png",
            (500, 500),
            &[((25, 25), (0, 0)), ((475, 25), (9, 0))],
        ),
        (
            "full/,250/0/default.png",
            (250, 250),
            &[((12, 237), (0, 9))],
        ),
        (
            "full/pct:50/0/default.png",
            (500, 500),
            &[((275, 275), (5, 5))],
        ),
        (
            "full/400,200/0/default.png",
            (400, 200),
            &[((20, 10), (0, 0)), ((380, 190), (9, 9))],
        ),
        (
            "full/!400,200/0/default.png",
            (200, 200),
            &[((10, 10), (0, 0))],
        ),
        (
            "100,200,100,100/max/0/default.png",
            (100, 100),
            &[((50, 50), (1, 2))],
        ),
        (
            "100,200,100,100/37,37/0/default.png",
            (37, 37),
            &[((18, 18), (1, 2))],
        ),
        (
            "pct:10,20,10,10/max/0/default.png",
            (100, 100),
            &[((50, 50), (1, 2))],
        ),
        (
            "950,950,100,100/max/0/default.png",
            (50, 50),
            &[((25, 25), (9, 9))],
        ),
        (
            "square/max/0/default.png",
            (1000, 1000),
            &[((50, 50), (0, 0))],
        ),
        (
            "full/^1200,/0/default.png",
            (1200, 1200),
            &[((60, 60), (0, 0)), ((1140, 1140), (9, 9))],
        ),
        (
            "full/^pct:150/0/default.png",
            (1500, 1500),
            &[((1425, 75), (9, 0))],
        ),
        ("full/^max/0/default.png", (1000, 1000), &[]),
        ("full/^!2000,500/0/default.png", (500, 500), &[]),
        ("full/^!2000,3000/0/default.png", (2000, 2000), &[]),
        (
            "0,0,200,100/max/90/default.png",
            (100, 200),
            &[((50, 50), (0, 0)), ((50, 150), (1, 0))],
        ),
        (
            "0,0,200,100/max/180/default.png",
            (200, 100),
            &[((50, 50), (1, 0)), ((150, 50), (0, 0))],
        ),
        (
            "0,0,200,100/max/270/default.png",
            (100, 200),
            &[((50, 50), (1, 0)), ((50, 150), (0, 0))],
        ),
        (
            "0,0,200,100/max/!0/default.png",
            (200, 100),
            &[((50, 50), (1, 0))],
        ),
        (
            "full/max/!0/default.png",
            (1000, 1000),
            &[((50, 50), (9, 0)), ((950, 950), (0, 9))],
        ),
        (
            "full/max/!180/default.png",
            (1000, 1000),
            &[((50, 50), (0, 9)), ((950, 950), (9, 0))],
        ),
        (
            "full/max/90/default.png",
            (1000, 1000),
            &[((50, 50), (0, 9)), ((950, 950), (9, 0))],
        ),
        (
            "200,200,100,100/max/45/default.png",
            (141, 141),
            &[((70, 70), (2, 2))],
        ),
        (
            "full/max/0/default.jpg",
            (1000, 1000),
            &[((50, 50), (0, 0)), ((450, 650), (4, 6))],
        ),
        (
            "full/max/0/color.tif",
            (1000, 1000),
            &[((750, 350), (7, 3))],
        ),
        (
            "full/200,/0/default.gif",
            (200, 200),
            &[((10, 10), (0, 0)), ((190, 190), (9, 9))],
        ),
        (
            "full/200,/0/default.webp",
            (200, 200),
            &[((10, 10), (0, 0)), ((190, 190), (9, 9))],
        ),
    ];
    for (params, (w, h), checks) in rows {
        let got = get(&svc, &v3_image(params)).await;
        assert_eq!(
            got.status,
            StatusCode::OK,
            "{params}: {}",
            String::from_utf8_lossy(&got.body)
        );
        let ext = params.rsplit('.').next().unwrap();
        let ct = content_type(&got).to_owned();
        assert_eq!(
            ct,
            ext.parse::<crate::request::Format>().unwrap().media_type(),
            "{params}"
        );
        assert_eq!(
            got.headers["content-length"],
            got.body.len().to_string().as_str()
        );
        let px = decode(&got.body, &ct);
        assert_eq!((px.width(), px.height()), (*w, *h), "{params}");
        let tol = if ext == "jpg" || ext == "gif" { 12 } else { 2 };
        for ((x, y), (col, row)) in *checks {
            assert_color(&px, *x, *y, square_color(*col, *row), tol, params);
        }
    }
}

#[tokio::test]
async fn arbitrary_rotation_background() {
    let svc = service(ApiVersion::V3);
    // JPEG: black corners. PNG: transparent corners.
    let jpg = get(&svc, &v3_image("full/200,/30/default.jpg")).await;
    let px = decode(&jpg.body, "image/jpeg");
    assert_color(&px, 1, 1, [0, 0, 0], 8, "jpg corner");
    let png = get(&svc, &v3_image("full/200,/30/default.png")).await;
    let px = decode(&png.body, "image/png");
    assert_eq!(px.layout(), crate::pixels::Layout::Rgba);
    assert_eq!(px.pixel(1, 1)[3], 0, "png corner is transparent");
    let (cx, cy) = (px.width() / 2, px.height() / 2);
    assert_eq!(px.pixel(cx, cy)[3], 255, "png centre is opaque");
}

#[tokio::test]
async fn qualities() {
    let svc = service(ApiVersion::V3);
    let gray = decode(
        &get(&svc, &v3_image("full/100,/0/gray.png")).await.body,
        "image/png",
    );
    assert_eq!(gray.layout(), crate::pixels::Layout::Gray);
    let [r, g, b] = square_color(0, 0).map(u32::from);
    let luma = ((299 * r + 587 * g + 114 * b + 500) / 1000) as u8;
    assert!(gray.pixel(5, 5)[0].abs_diff(luma) <= 2);
    let bitonal = decode(
        &get(&svc, &v3_image("full/100,/0/bitonal.png")).await.body,
        "image/png",
    );
    assert!(bitonal.data().iter().all(|&v| v == 0 || v == 255));
    assert!(bitonal.data().contains(&0) && bitonal.data().contains(&255));
    // color of a gray source comes back as RGB.
    let color = decode(
        &get(&svc, "/iiif/3/gray/full/100,/0/color.png").await.body,
        "image/png",
    );
    assert_eq!(color.layout(), crate::pixels::Layout::Rgb);
}

#[tokio::test]
async fn v2_image_requests() {
    let svc = service(ApiVersion::V2);
    let rows: &[(&str, (u32, u32))] = &[
        ("full/full/0/default.jpg", (1000, 1000)),
        ("full/max/0/default.png", (1000, 1000)),
        ("full/500,/0/default.png", (500, 500)),
        ("full/,1100/0/default.png", (1100, 1100)),
        ("full/pct:50/0/default.png", (500, 500)),
        ("full/!300,400/0/default.png", (300, 300)),
        ("full/300,400/0/default.png", (300, 400)),
        ("square/full/0/bitonal.png", (1000, 1000)),
    ];
    for (params, (w, h)) in rows {
        let got = get(&svc, &v2_image(params)).await;
        assert_eq!(got.status, StatusCode::OK, "{params}");
        let px = decode(&got.body, content_type(&got));
        assert_eq!((px.width(), px.height()), (*w, *h), "{params}");
    }
}

#[tokio::test]
async fn link_header_is_one_line_with_profile_and_canonical() {
    let svc = service(ApiVersion::V3);
    let got = get(&svc, &v3_image("0,0,1000,1000/500,/0/default.jpg")).await;
    let links: Vec<_> = got.headers.get_all("link").iter().collect();
    assert_eq!(links.len(), 1);
    assert_eq!(
        links[0],
        &format!(
            "<http://iiif.io/api/image/3/level2.json>;rel=\"profile\", \
             <http://iiif.test/iiif/3/{VALIDATOR_ID}/full/500,500/0/default.jpg>;rel=\"canonical\""
        )
    );
    let v2 = service(ApiVersion::V2);
    let got = get(&v2, &v2_image("full/pct:50/0/default.jpg")).await;
    assert!(got.headers["link"].to_str().unwrap().contains(&format!(
        "<http://iiif.test/iiif/2/{VALIDATOR_ID}/full/500,/0/default.jpg>;rel=\"canonical\""
    )));
}

#[tokio::test]
async fn error_statuses() {
    let v3 = service(ApiVersion::V3);
    let v2 = service(ApiVersion::V2);
    let rows: &[(&IiifService<FsSource>, &str, &str, u16)] = &[
        (&v3, "GET", "/iiif/3/nope/info.json", 404),
        (&v3, "GET", "/iiif/3/nope/full/max/0/default.jpg", 404),
        (&v3, "GET", "/iiif/3/a/b/info.json", 404),
        (
            &v3,
            "GET",
            &format!("/iiif/3/{VALIDATOR_ID}/x/full/max/0/default.jpg"),
            404,
        ),
        (&v3, "GET", "/iiif/3/", 404),
        (&v3, "GET", "/iiif/3/%5Bfrob%5D/info.json", 404),
        (&v3, "GET", "/iiif/3/..%2F..%2Fetc%2Fpasswd/info.json", 404),
        (&v3, "GET", &v3_image("full/full/0/default.jpg"), 400),
        (&v3, "GET", &v3_image("full/1001,/0/default.jpg"), 400),
        (&v3, "GET", &v3_image("full/!2000,3000/0/default.jpg"), 400),
        (&v3, "GET", &v3_image("full/pct:101/0/default.jpg"), 400),
        (&v3, "GET", &v3_image("1000,0,10,10/max/0/default.jpg"), 400),
        (&v3, "GET", &v3_image("full/max/0/native.jpg"), 400),
        (&v3, "GET", &v3_image("full/max/0/default.bmp"), 400),
        (&v3, "GET", &v3_image("full/max/0/default.jp2"), 400),
        (&v3, "GET", &v3_image("full/max/361/default.jpg"), 400),
        (&v3, "GET", &v3_image("full/max/1e2/default.jpg"), 400),
        (&v3, "GET", &v3_image("full/^pct:100000/0/default.jpg"), 400),
        (&v3, "GET", &v3_image("abcdef/max/0/default.jpg"), 400),
        (&v3, "GET", "/iiif/3/corrupt/info.json", 500),
        (&v3, "GET", "/iiif/3/text/info.json", 501), // no format we read
        (&v3, "POST", &v3_image("full/max/0/default.jpg"), 405),
        (&v3, "DELETE", "/iiif/3/x/info.json", 405),
        (&v2, "GET", &v2_image("full/^max/0/default.jpg"), 400),
        (&v2, "GET", &v2_image("full/0,/0/default.jpg"), 400),
    ];
    for (svc, method, path, want) in rows {
        let got = send(svc, method, path, &[]).await;
        assert_eq!(got.status.as_u16(), *want, "{method} {path}");
        assert_eq!(got.headers["access-control-allow-origin"], "*", "{path}");
        assert_eq!(content_type(&got), "text/plain; charset=utf-8", "{path}");
        let text = String::from_utf8(got.body).unwrap();
        assert!(
            text.ends_with('\n') && text.lines().count() == 1 && text.len() > 5,
            "{path}: {text:?}"
        );
    }
    let got = send(&v3, "POST", "/iiif/3/x/info.json", &[]).await;
    assert_eq!(got.headers["allow"], "GET, HEAD, OPTIONS");
}

#[tokio::test]
async fn upscaling_off_answers_501_in_v3() {
    let svc = service(ApiVersion::V3).no_upscaling();
    assert_eq!(
        get(&svc, &v3_image("full/^1100,/0/default.jpg"))
            .await
            .status,
        501
    );
    assert_eq!(
        get(&svc, &v3_image("full/^500,/0/default.png"))
            .await
            .status,
        200
    );
    let doc: Value = serde_json::from_slice(
        &get(&svc, &format!("/iiif/3/{VALIDATOR_ID}/info.json"))
            .await
            .body,
    )
    .unwrap();
    assert!(
        !doc["extraFeatures"]
            .as_array()
            .unwrap()
            .contains(&"sizeUpscaling".into())
    );
}

#[tokio::test]
async fn limits_are_advertised_and_enforced() {
    let svc = service(ApiVersion::V3).max_width(400);
    let doc: Value = serde_json::from_slice(
        &get(&svc, &format!("/iiif/3/{VALIDATOR_ID}/info.json"))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(
        (doc["maxWidth"].as_u64(), doc["maxHeight"].as_u64()),
        (Some(400), Some(400))
    );
    let got = get(&svc, &v3_image("full/max/0/default.png")).await;
    let px = decode(&got.body, "image/png");
    assert_eq!((px.width(), px.height()), (400, 400));
    assert_eq!(
        get(&svc, &v3_image("full/500,/0/default.png")).await.status,
        400
    );
    // A Limits extension from an outer layer tightens them further.
    let mut req = Request::get(v3_image("full/max/0/default.png"))
        .body(())
        .unwrap();
    req.extensions_mut()
        .insert(Limits::default().max_area(10_000));
    let res = svc.clone().oneshot(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let px = decode(&body, "image/png");
    assert_eq!((px.width(), px.height()), (100, 100));
}

#[tokio::test]
async fn options_head_and_cors() {
    let svc = service(ApiVersion::V3);
    for path in [
        format!("/iiif/3/{VALIDATOR_ID}/info.json"),
        v3_image("full/max/0/default.jpg"),
    ] {
        let got = send(
            &svc,
            "OPTIONS",
            &path,
            &[("access-control-request-headers", "authorization")],
        )
        .await;
        assert_eq!(got.status, StatusCode::NO_CONTENT);
        assert_eq!(got.headers["access-control-allow-origin"], "*");
        assert_eq!(got.headers["access-control-allow-headers"], "authorization");
        assert_eq!(
            got.headers["access-control-allow-methods"],
            "GET, HEAD, OPTIONS"
        );
        // A bare OPTIONS (no preflight headers) still carries the origin header.
        let bare = send(&svc, "OPTIONS", &path, &[]).await;
        assert_eq!(bare.headers["access-control-allow-origin"], "*");
    }
    // HEAD of info.json: the same headers as GET, Content-Length included, no body.
    let info = format!("/iiif/3/{VALIDATOR_ID}/info.json");
    let full = get(&svc, &info).await;
    let head = send(&svc, "HEAD", &info, &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(
        head.headers["content-length"],
        full.body.len().to_string().as_str()
    );
    assert_eq!(head.headers["etag"], full.headers["etag"]);
}

#[tokio::test]
async fn fixed_and_extension_base_uris() {
    // The app's public URL; the service appends its mount path.
    let svc = service(ApiVersion::V3).base_uri("https://images.example.org/");
    let doc: Value =
        serde_json::from_slice(&get(&svc, "/iiif/3/gray/info.json").await.body).unwrap();
    assert_eq!(doc["id"], "https://images.example.org/iiif/3/gray");
    let mut req = Request::get("/iiif/3/gray").body(()).unwrap();
    req.extensions_mut()
        .insert(BaseUri::new("https://proxy.example/p"));
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(
        res.headers()["location"],
        "https://proxy.example/p/iiif/3/gray/info.json"
    );
}

#[tokio::test]
async fn parsed_request_extension_is_reused() {
    let svc = service(ApiVersion::V3);
    // The path says one thing; a layer already parsed another. The extension wins.
    let parsed = IiifRequest::parse(
        "/gray/info.json",
        ApiVersion::V3,
        &IdentifierOptions::default(),
    )
    .unwrap();
    let mut req = Request::get("/iiif/3/does-not-exist/info.json")
        .body(())
        .unwrap();
    req.extensions_mut().insert(parsed);
    assert_eq!(svc.oneshot(req).await.unwrap().status(), 200);
}

/// A render admitted to the queue that does not get its render permit within the queue wait
/// (the renders ahead took longer than reckoned) is answered 503 then, not started late.
#[tokio::test]
async fn a_render_that_cannot_start_within_the_queue_wait_is_shed() {
    let wait = std::time::Duration::from_millis(200);
    let svc = service(ApiVersion::V3)
        .render_concurrency(1, 4)
        .max_queue_wait(wait);
    // Hold the only render permit, as a render slower than any reckoning would.
    let permit = Arc::clone(&svc.shared.renders)
        .acquire_owned()
        .await
        .unwrap();
    let asked = std::time::Instant::now();
    let got = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        get(&svc, &v3_image("full/100,/0/default.jpg")),
    )
    .await
    .expect("a request stuck in the queue past its wait");
    assert_eq!(got.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(asked.elapsed() >= wait, "shed before its wait");
    // No render timed yet: retry after the queue wait, rounded up.
    assert_eq!(got.headers["retry-after"], "1");
    assert_eq!(svc.shared.in_flight.load(Ordering::Relaxed), 0);
    drop(permit);
    let got = get(&svc, &v3_image("full/100,/0/default.jpg")).await;
    assert_eq!(got.status, StatusCode::OK);
}

#[tokio::test]
async fn memory_budget_refuses_big_sources_before_decoding() {
    let svc = service(ApiVersion::V3).memory_budget(1 << 20);
    let got = get(&svc, &v3_image("full/100,/0/default.jpg")).await;
    assert_eq!(got.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(String::from_utf8_lossy(&got.body).contains("memory budget"));
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let svc = service(ApiVersion::V3).render_concurrency(1, 0);
    // Hold the only slot, as a running render would.
    let slot = svc.reserve_render_slot().unwrap();
    let got = get(&svc, &v3_image("full/100,/0/default.jpg")).await;
    assert_eq!(got.status, StatusCode::SERVICE_UNAVAILABLE);
    // No render timed yet: retry after the queue wait (5 s by default), rounded up.
    assert_eq!(got.headers["retry-after"], "6");
    // Once renders have been timed, a full queue says how long it can be expected to take:
    // one round of 3 s renders ahead, so 4 s (rounded up).
    svc.shared.queue.record(std::time::Duration::from_secs(3));
    let got = get(&svc, &v3_image("full/100,/0/default.jpg")).await;
    assert_eq!(got.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(got.headers["retry-after"], "4");
    drop(slot);
    assert_eq!(
        get(&svc, &v3_image("full/100,/0/default.jpg")).await.status,
        StatusCode::OK
    );
}

#[test]
fn service_is_send_sync_clone() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<IiifService<FsSource>>();
}

#[tokio::test]
async fn exif_orientation_6_jpeg_is_served_upright() {
    use crate::codec::testutil::{exif_payload, with_exif};
    use crate::pixels::{Layout, Pixels};
    // 40x20 as stored: the left half red, the right half blue.
    let data = (0..20)
        .flat_map(|_| (0..40).flat_map(|x| if x < 20 { [255, 0, 0] } else { [0, 0, 255] }))
        .collect();
    let stored = Pixels::from_vec(40, 20, Layout::Rgb, data).unwrap();
    let jpeg = crate::codec::encode(
        &stored,
        crate::request::Format::Jpg,
        &crate::codec::EncodeOptions::default(),
    )
    .unwrap();
    let id = "exif-orientation-6-red-left-blue-right";
    std::fs::write(
        samples_dir().join(format!("{id}.jpg")),
        with_exif(&jpeg, &exif_payload(6)),
    )
    .unwrap();

    let svc = service(ApiVersion::V3);
    let info = get(&svc, &format!("/iiif/3/{id}/info.json")).await;
    assert_eq!(info.status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&info.body).unwrap();
    assert_eq!(
        (doc["width"].as_u64(), doc["height"].as_u64()),
        (Some(20), Some(40))
    );

    // Rotated 90° clockwise for display: the stored left half becomes the top.
    let got = get(&svc, &format!("/iiif/3/{id}/full/max/0/default.png")).await;
    assert_eq!(got.status, StatusCode::OK);
    let px = decode(&got.body, content_type(&got));
    assert_eq!((px.width(), px.height()), (20, 40));
    for x in [2, 10, 17] {
        assert_color(&px, x, 8, [255, 0, 0], 12, "top");
        assert_color(&px, x, 36, [0, 0, 255], 12, "bottom");
    }
}

#[tokio::test]
async fn slash_substitute_is_read_and_echoed() {
    let dir = samples_dir();
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::copy(dir.join("gray.tif"), dir.join("nested/copy.tif")).unwrap();
    let svc = service(ApiVersion::V3)
        .identifier_options(IdentifierOptions::default().slash_substitute("~"));
    let info = get(&svc, "/iiif/3/nested~copy/info.json").await;
    assert_eq!(info.status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&info.body).unwrap();
    assert_eq!(doc["id"], "http://iiif.test/iiif/3/nested~copy");
    let redirect = get(&svc, "/iiif/3/nested%2Fcopy").await;
    assert_eq!(
        redirect.headers["location"],
        "http://iiif.test/iiif/3/nested~copy/info.json"
    );
    let img = get(&svc, "/iiif/3/nested~copy/full/max/0/default.jpg").await;
    assert!(img.headers["link"].to_str().unwrap().contains(
        "<http://iiif.test/iiif/3/nested~copy/full/max/0/default.jpg>;rel=\"canonical\""
    ));
}

#[tokio::test]
async fn etag_and_last_modified_answer_304_without_rendering() {
    let svc = service(ApiVersion::V3);
    let path = v3_image("full/200,/0/default.jpg");
    let first = get(&svc, &path).await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let modified = first.headers["last-modified"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    // Same request, same tag; another request, another tag.
    assert_eq!(get(&svc, &path).await.headers["etag"], etag.as_str());
    assert_ne!(
        get(&svc, &v3_image("full/201,/0/default.jpg"))
            .await
            .headers["etag"],
        etag.as_str()
    );

    // A full render queue proves the 304 needs no render: it still answers.
    let busy = svc.clone().render_concurrency(1, 0);
    let _slot = busy.reserve_render_slot().unwrap();
    let cached = send(&busy, "GET", &path, &[("if-none-match", &etag)]).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.body.is_empty());
    assert_eq!(cached.headers["etag"], etag.as_str());
    assert_eq!(cached.headers["access-control-allow-origin"], "*");
    let by_date = send(&busy, "GET", &path, &[("if-modified-since", &modified)]).await;
    assert_eq!(by_date.status, StatusCode::NOT_MODIFIED);
    let stale = send(&busy, "GET", &path, &[("if-none-match", "\"nope\"")]).await;
    assert_eq!(stale.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn info_json_has_validators_and_304() {
    let svc = service(ApiVersion::V3);
    let path = format!("/iiif/3/{VALIDATOR_ID}/info.json");
    let first = get(&svc, &path).await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let again = send(&svc, "GET", &path, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers["vary"], "Accept");
    // The JSON representation is another entity.
    let json = send(
        &svc,
        "GET",
        &path,
        &[("accept", "application/json"), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!(json.status, StatusCode::OK);
}

#[tokio::test]
async fn head_image_does_not_render() {
    let svc = service(ApiVersion::V3).render_concurrency(1, 0);
    let _slot = svc.reserve_render_slot().unwrap();
    let head = send(&svc, "HEAD", &v3_image("full/300,/0/default.png"), &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.headers["content-type"], "image/png");
    assert!(head.headers.contains_key("etag"));
    assert!(head.headers.contains_key("link"));
    assert!(!head.headers.contains_key("content-length"));
}

#[tokio::test]
async fn public_identifier_is_echoed() {
    let svc = service(ApiVersion::V3);
    let mut req = Request::get("/iiif/3/gray/info.json")
        .header("host", "iiif.test")
        .body(())
        .unwrap();
    req.extensions_mut()
        .insert(crate::base_uri::PublicIdentifier::new("public/gray"));
    let res = svc.clone().oneshot(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["id"], "http://iiif.test/iiif/3/public%2Fgray");
}

#[tokio::test]
async fn pixel_limit_layer_through_the_service() {
    use crate::limit::PixelLimitLayer;
    use tower::Layer;
    let inner = service(ApiVersion::V2);
    let call = |layer: PixelLimitLayer, path: String| {
        let svc = layer.layer(inner.clone());
        async move {
            let res = svc
                .oneshot(
                    Request::get(path)
                        .header("host", "iiif.test")
                        .body(())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = res.status();
            (status, res.into_body().collect().await.unwrap().to_bytes())
        }
    };
    let limit = || PixelLimitLayer::new().max_area(250_000);
    // Cantaloupe's behaviour: 2.1 full/full over max_pixels is a 403 ...
    let (status, body) = call(limit(), v2_image("full/full/0/default.jpg")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("limits"));
    // ... unless clamped; max is always fitted.
    let (status, body) = call(limit().clamp(), v2_image("full/full/0/default.png")).await;
    assert_eq!(status, StatusCode::OK);
    let px = decode(&body, "image/png");
    assert_eq!((px.width(), px.height()), (500, 500));
    let (status, _) = call(limit(), v2_image("full/max/0/default.png")).await;
    assert_eq!(status, StatusCode::OK);
    // info.json advertises the limit and keeps sizes and tiles within it.
    let (_, body) = call(limit(), format!("/iiif/2/{VALIDATOR_ID}/info.json")).await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["profile"][1]["maxArea"], 250_000);
    assert!(
        doc["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["width"].as_u64().unwrap() * s["height"].as_u64().unwrap() <= 250_000)
    );
    // max_scale 1.0: no upscaling, and none advertised.
    let (status, _) = call(
        PixelLimitLayer::new().max_scale(1.0),
        v2_image("full/1100,/0/default.jpg"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, body) = call(
        PixelLimitLayer::new().max_scale(1.0),
        format!("/iiif/2/{VALIDATOR_ID}/info.json"),
    )
    .await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        !doc["profile"][1]["supports"]
            .as_array()
            .unwrap()
            .contains(&"sizeAboveFull".into())
    );
}

#[tokio::test]
async fn derivative_cache_renders_once_for_100_concurrent_misses() {
    let svc = service(ApiVersion::V3).derivative_cache(crate::cache::MemoryCache::new(64 << 20));
    let path = v3_image("full/333,/0/default.jpg");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (svc, path) = (svc.clone(), path.clone());
        tasks.push(tokio::spawn(async move { get(&svc, &path).await }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        assert_eq!(got.status, StatusCode::OK);
        bodies.push(got.body);
    }
    assert_eq!(
        svc.renders(),
        1,
        "100 concurrent identical misses, one render"
    );
    // Junk query strings and non-canonical spellings of the same image share the entry.
    for other in [
        format!("{path}?x=1"),
        format!("{path}?cache=false&y=2"),
        v3_image("0,0,1000,1000/333,333/0/default.jpg"),
    ] {
        assert_eq!(get(&svc, &other).await.status, StatusCode::OK, "{other}");
    }
    assert_eq!(svc.renders(), 1, "same canonical request, same cache entry");
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let px = decode(&bodies[0], "image/jpeg");
    assert_eq!((px.width(), px.height()), (333, 333));
    // A hit needs no render slot at all.
    let busy = svc.clone().render_concurrency(1, 0);
    let _slot = busy.reserve_render_slot().unwrap();
    assert_eq!(get(&busy, &path).await.status, StatusCode::OK);
    assert_eq!(svc.renders(), 1);
}

#[tokio::test]
async fn a_changed_source_is_never_served_stale_and_purge_works() {
    let dir = std::env::temp_dir().join(format!("tower-iiif-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |color: [u8; 3], w: u32| {
        let data = color
            .iter()
            .copied()
            .cycle()
            .take((w * 10 * 3) as usize)
            .collect();
        let px = crate::pixels::Pixels::from_vec(w, 10, crate::pixels::Layout::Rgb, data).unwrap();
        let png =
            crate::codec::encode(&px, crate::request::Format::Png, &Default::default()).unwrap();
        std::fs::write(dir.join("img.png"), png).unwrap();
    };
    write([255, 0, 0], 10);
    let svc = IiifService::new(FsSource::new(&dir).unwrap())
        .derivative_cache(crate::cache::MemoryCache::new(16 << 20));
    let path = "/img/full/max/0/default.png";
    let first = decode(&get(&svc, path).await.body, "image/png");
    assert_eq!(first.pixel(0, 0), &[255, 0, 0]);
    get(&svc, path).await;
    assert_eq!(svc.renders(), 1);
    // Replaced by a larger blue image: a new length (and time) means a new key.
    write([0, 0, 255], 12);
    let second = decode(&get(&svc, path).await.body, "image/png");
    assert_eq!(
        (second.width(), second.pixel(0, 0)),
        (12, &[0u8, 0, 255][..])
    );
    assert_eq!(svc.renders(), 2);
    assert!(svc.purge("img").await >= 1);
    get(&svc, path).await;
    assert_eq!(svc.renders(), 3, "purged entries render again");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An in-memory source that counts the bytes it is asked for.
#[derive(Clone)]
struct CountingSource {
    files: Arc<std::collections::HashMap<String, bytes::Bytes>>,
    read: Arc<std::sync::atomic::AtomicU64>,
}

struct CountingObject {
    data: bytes::Bytes,
    meta: crate::source::SourceMetadata,
    read: Arc<std::sync::atomic::AtomicU64>,
}

impl Source for CountingSource {
    type Object = CountingObject;
    async fn open(
        &self,
        id: &Identifier,
        _request: &SourceRequest,
    ) -> Result<CountingObject, Error> {
        let data = self
            .files
            .get(id.as_str())
            .cloned()
            .ok_or_else(|| Error::not_found("no"))?;
        let meta = crate::source::SourceMetadata::new(
            data.len() as u64,
            Some(std::time::UNIX_EPOCH),
            None,
        );
        Ok(CountingObject {
            data,
            meta,
            read: Arc::clone(&self.read),
        })
    }
}

impl SourceObject for CountingObject {
    fn metadata(&self) -> &crate::source::SourceMetadata {
        &self.meta
    }
    async fn read_range(&self, range: std::ops::Range<u64>) -> Result<bytes::Bytes, Error> {
        let end = range.end.min(self.data.len() as u64) as usize;
        let start = (range.start as usize).min(end);
        self.read.fetch_add((end - start) as u64, Ordering::Relaxed);
        Ok(self.data.slice(start..end))
    }
}

/// A JPEG pyramid as the one file `pyr`, and the bytes of its level 0's tile (1, 2): 300x200 in
/// 64-pixel tiles, five across, so the 12th.
async fn pyramid_and_tile_bytes() -> (Vec<u8>, u64) {
    let (file, _) = crate::tiff::tests::jpeg_rgb_pyramid(false);
    let p = crate::tiff::read_pyramid(&crate::tiff::tests::Counting::new(file.clone()))
        .await
        .unwrap();
    let tile_bytes = p.levels()[0].tile_byte_counts[2 * 5 + 1];
    (file, tile_bytes)
}

/// Two instances sharing a tier (a disk cache here): the second renders a tile the first never
/// did from the pyramid the first read, rebuilt from the shared tier, reading nothing of the
/// file but the tile (not its header, not its IFDs).
#[tokio::test]
async fn a_second_instance_reads_a_pyramid_from_the_shared_tier_not_the_file() {
    let (file, tile_bytes) = pyramid_and_tile_bytes().await;
    let dir = crate::cache::fs::tests::TempDir::new("pyramid-fact");
    let instance = || {
        let (svc, read) = counting_service("pyr", file.clone());
        (
            svc.derivative_cache(crate::cache::FsCache::new(&dir.0).unwrap()),
            read,
        )
    };
    let (a, _) = instance();
    fetch_bytes(&a, "/pyr/full/150,/0/default.png").await;

    let (b, read) = instance();
    let tile = "/pyr/64,128,64,64/64,/0/default.jpg";
    let got = fetch_bytes(&b, tile).await;
    assert_eq!(read.load(Ordering::Relaxed), tile_bytes);
    // The same bytes as an instance with no tier sends (the stored tile, its tables spliced).
    let (lone, _) = counting_service("pyr", file);
    assert_eq!(got, fetch_bytes(&lone, tile).await);
}

/// A pyramid fact damaged in the shared tier is not used: the instance reads the file, renders
/// what the file says, and keeps a sound fact again.
#[tokio::test]
async fn a_damaged_pyramid_fact_is_read_again_from_the_file() {
    use crate::cache::{CacheBackend, CachedDerivative, FsCache};
    let (file, tile_bytes) = pyramid_and_tile_bytes().await;
    let dir = crate::cache::fs::tests::TempDir::new("pyramid-fact-damaged");
    let (a, _) = counting_service("pyr", file.clone());
    let a = a.derivative_cache(FsCache::new(&dir.0).unwrap());
    fetch_bytes(&a, "/pyr/full/150,/0/default.png").await;

    // One bit of the kept structure flipped, in the middle of its bytes. (CountingSource's
    // metadata: the length, and the epoch for a modification time.)
    let cache = FsCache::new(&dir.0).unwrap();
    let meta =
        crate::source::SourceMetadata::new(file.len() as u64, Some(std::time::UNIX_EPOCH), None);
    let key = IiifService::<CountingSource>::facts_key(
        &Identifier::new("pyr").unwrap(),
        &meta,
        "pyramid",
    );
    let kept = cache.get(&key).await.unwrap().body;
    let mut damaged = kept.to_vec();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x04;
    cache
        .put(
            key.clone(),
            CachedDerivative::new(damaged, "application/octet-stream"),
        )
        .await;

    let (b, read) = counting_service("pyr", file.clone());
    let b = b.derivative_cache(cache.clone());
    let tile = "/pyr/64,128,64,64/64,/0/default.jpg";
    let got = fetch_bytes(&b, tile).await;
    assert!(
        read.load(Ordering::Relaxed) > tile_bytes,
        "the file's structure was read"
    );
    let (lone, _) = counting_service("pyr", file);
    assert_eq!(got, fetch_bytes(&lone, tile).await);
    assert_eq!(
        cache.get(&key).await.unwrap().body,
        kept,
        "a sound fact kept again"
    );
}

#[tokio::test]
async fn pyramidal_tiff_renders_from_the_right_level_reading_only_its_tiles() {
    let (file, levels) = crate::tiff::tests::deflate_rgb_pyramid();
    let file_len = file.len() as u64;
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let source = CountingSource {
        files: Arc::new(
            [("pyr".to_owned(), bytes::Bytes::from(file))]
                .into_iter()
                .collect(),
        ),
        read: Arc::clone(&read),
    };
    let svc = IiifService::new(source);
    let fetch = |path: &'static str| {
        let svc = svc.clone();
        async move {
            let res = svc
                .oneshot(Request::get(path).body(()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            let body = res.into_body().collect().await.unwrap().to_bytes();
            decode(&body, "image/png")
        }
    };
    // Full size: level 0, exact (Deflate is lossless).
    let full = fetch("/pyr/full/max/0/default.png").await;
    assert_eq!((full.width(), full.height()), (300, 200));
    assert_eq!(full.data(), levels[0].data());
    // Half size: level 1's own pixels (each level of the fixture has its own pattern), so the
    // smaller level was read, not level 0 scaled down.
    let half = fetch("/pyr/full/150,/0/default.png").await;
    assert_eq!(half.data(), levels[1].data());
    // One tile's region, once the header and the pyramid are cached: only that tile is read.
    read.store(0, Ordering::Relaxed);
    let tile = fetch("/pyr/64,64,64,64/max/0/default.png").await;
    let bytes_read = read.load(Ordering::Relaxed);
    assert!(
        bytes_read > 0 && bytes_read < file_len / 10,
        "read {bytes_read} of {file_len}"
    );
    for (y, row) in tile.data().chunks_exact(64 * 3).enumerate() {
        let src = &levels[0].data()[((64 + y) * 300 + 64) * 3..][..64 * 3];
        assert_eq!(row, src, "row {y}");
    }
}

#[tokio::test]
async fn pyramid_info_json_advertises_its_levels_and_whole_stored_tiles() {
    let (file, _) = crate::tiff::tests::deflate_rgb_pyramid();
    let source = CountingSource {
        files: Arc::new(
            [("pyr".to_owned(), bytes::Bytes::from(file))]
                .into_iter()
                .collect(),
        ),
        read: Arc::default(),
    };
    let info = |svc: IiifService<CountingSource>| async move {
        let res = svc
            .oneshot(Request::get("/pyr/info.json").body(()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    // Stored tiles of 64, doubled up to the 512 minimum; levels 300x200, 150x100, 75x50.
    let doc = info(IiifService::new(source.clone())).await;
    assert_eq!(
        doc["tiles"],
        serde_json::json!([{"width": 512, "height": 512, "scaleFactors": [1]}])
    );
    assert_eq!(
        doc["sizes"],
        serde_json::json!([
            {"width": 75, "height": 50},
            {"width": 150, "height": 100},
            {"width": 300, "height": 200}
        ])
    );
    // A smaller minimum: two stored tiles across.
    let doc = info(IiifService::new(source).tile_size(100)).await;
    assert_eq!(
        doc["tiles"],
        serde_json::json!([{"width": 128, "height": 128, "scaleFactors": [1, 2, 4]}])
    );
}

#[tokio::test]
async fn a_request_for_exactly_one_stored_jpeg_tile_gets_its_bytes() {
    for raw in [false, true] {
        let (file, levels) = crate::tiff::tests::jpeg_rgb_pyramid(raw);
        let data = bytes::Bytes::from(file);
        let source = CountingSource {
            files: Arc::new([("pyr".to_owned(), data.clone())].into_iter().collect()),
            read: Arc::default(),
        };
        let svc = IiifService::new(source);
        let fetch = |path: String| {
            let svc = svc.clone();
            async move {
                let res = svc
                    .oneshot(Request::get(&path).body(()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK, "{path}");
                res.into_body().collect().await.unwrap().to_bytes()
            }
        };
        let pyramid = crate::tiff::read_pyramid(&CountingObject {
            meta: crate::source::SourceMetadata::new(data.len() as u64, None, None),
            data: data.clone(),
            read: Arc::default(),
        })
        .await
        .unwrap();
        // Tile (1, 0) of level 1 (150x100, 64-pixel tiles): region 128,0,128,128 at 64,64.
        for path in [
            "/pyr/128,0,128,128/64,64/0/default.jpg",
            "/pyr/128,0,128,128/64,/0/color.jpg",
        ] {
            let body = fetch(path.to_owned()).await;
            let (_, t) =
                crate::tiff::stored_jpeg_tile(&pyramid, Rect::new(128, 0, 128, 128), 64, 64)
                    .unwrap();
            let stored = &data[t.range.start as usize..t.range.end as usize];
            let want = crate::tiff::standalone_jpeg(&pyramid.levels()[1], stored).unwrap();
            assert_eq!(body, want, "raw {raw} {path}");
            // And it shows level 1's pixels of that tile.
            let px = decode(&body, "image/jpeg");
            assert_eq!((px.width(), px.height()), (64, 64));
            let src = &levels[1];
            let mut diff = 0u64;
            for y in 0..64 {
                for x in 0..64 {
                    for (a, b) in px.pixel(x, y).iter().zip(src.pixel(64 + x, y)) {
                        diff += u64::from(a.abs_diff(*b));
                    }
                }
            }
            let mean = diff as f64 / (64.0 * 64.0 * 3.0);
            assert!(mean < 4.0, "raw {raw}: mean difference {mean}");
        }
        assert_eq!(svc.renders(), 0, "passthrough renders nothing");
        // Mirrored, gray, PNG, or a size off by one: rendered.
        for path in [
            "/pyr/128,0,128,128/64,64/!0/default.jpg",
            "/pyr/128,0,128,128/64,64/0/gray.jpg",
            "/pyr/128,0,128,128/64,64/0/default.png",
            "/pyr/128,0,128,128/63,63/0/default.jpg",
        ] {
            fetch(path.to_owned()).await;
        }
        assert_eq!(svc.renders(), 4);
    }
}

#[tokio::test]
async fn a_request_for_several_whole_stored_jpeg_tiles_gets_them_joined() {
    for raw in [false, true] {
        let (file, levels) = crate::tiff::tests::jpeg_rgb_pyramid(raw);
        let (svc, _) = counting_service("pyr", file.clone());
        let pyramid = crate::tiff::read_pyramid(&CountingObject {
            meta: crate::source::SourceMetadata::new(file.len() as u64, None, None),
            data: bytes::Bytes::from(file.clone()),
            read: Arc::default(),
        })
        .await
        .unwrap();
        // The tiles of `rect` of level 0 joined, as the service should send them.
        let joined = |rect: Rect| {
            let tiles: Vec<_> = pyramid
                .tiles(0, rect)
                .into_iter()
                .map(|t| {
                    let range = t.range.start as usize..t.range.end as usize;
                    (t, bytes::Bytes::copy_from_slice(&file[range]))
                })
                .collect();
            crate::tiff::join_jpeg_tiles(&pyramid.levels()[0], rect, &tiles).unwrap()
        };
        let fetch = |path: &'static str| {
            let svc = svc.clone();
            async move {
                let res = svc
                    .oneshot(Request::get(path).body(()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK, "{path}");
                assert_eq!(res.headers()["content-type"], "image/jpeg");
                res.into_body().collect().await.unwrap().to_bytes()
            }
        };
        // Level 0 is 300x200 in 64-pixel tiles: 2x2 tiles, and the bottom-right corner (an
        // edge tile cut to the image).
        for (path, rect) in [
            (
                "/pyr/64,64,128,128/128,128/0/default.jpg",
                Rect::new(64, 64, 128, 128),
            ),
            (
                "/pyr/256,128,44,72/44,/0/color.jpg",
                Rect::new(256, 128, 44, 72),
            ),
        ] {
            let body = fetch(path).await;
            assert!(
                body == joined(rect),
                "raw {raw} {path}: not the joined tiles"
            );
            let px = decode(&body, "image/jpeg");
            assert_eq!((px.width(), px.height()), (rect.w, rect.h));
            let mut diff = 0u64;
            for y in 0..rect.h {
                for x in 0..rect.w {
                    let src = levels[0].pixel(rect.x + x, rect.y + y);
                    for (a, b) in px.pixel(x, y).iter().zip(src) {
                        diff += u64::from(a.abs_diff(*b));
                    }
                }
            }
            let mean = diff as f64 / f64::from(rect.w * rect.h * 3);
            assert!(mean < 4.0, "raw {raw} {path}: mean difference {mean}");
        }
        // Mirrored, or scaled: decoded and encoded, not joined.
        for path in [
            "/pyr/64,64,128,128/128,128/!0/default.jpg",
            "/pyr/64,64,128,128/127,127/0/default.jpg",
        ] {
            assert!(
                fetch(path).await != joined(Rect::new(64, 64, 128, 128)),
                "{path}"
            );
        }
        // Turned off: encoded at the service's quality, for several tiles and for one.
        let off = svc.clone().stored_tiles(false);
        let renders = off.renders();
        for (path, rect) in [
            (
                "/pyr/64,64,128,128/128,128/0/default.jpg",
                Rect::new(64, 64, 128, 128),
            ),
            (
                "/pyr/64,64,64,64/64,64/0/default.jpg",
                Rect::new(64, 64, 64, 64),
            ),
        ] {
            let res = off
                .clone()
                .oneshot(Request::get(path).body(()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert!(body != joined(rect), "{path}");
            let px = decode(&body, "image/jpeg");
            assert_eq!((px.width(), px.height()), (rect.w, rect.h));
        }
        assert_eq!(off.renders(), renders + 2, "the one tile is rendered too");
    }
}

#[tokio::test]
async fn concurrent_cold_requests_read_a_pyramid_once_and_never_whole() {
    let (file, _) = crate::tiff::tests::deflate_rgb_pyramid();
    let file_len = file.len() as u64;
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let source = CountingSource {
        files: Arc::new(
            [("pyr".to_owned(), bytes::Bytes::from(file))]
                .into_iter()
                .collect(),
        ),
        read: Arc::clone(&read),
    };
    let burst = |svc: IiifService<CountingSource>, n: usize| {
        let read = Arc::clone(&read);
        async move {
            read.store(0, Ordering::Relaxed);
            let requests: Vec<_> = (0..n)
                .map(|_| {
                    let svc = svc.clone();
                    tokio::spawn(async move {
                        let req = Request::get("/pyr/64,64,64,64/max/0/default.png").body(());
                        let res = svc.oneshot(req.unwrap()).await.unwrap();
                        assert_eq!(res.status(), StatusCode::OK);
                    })
                })
                .collect();
            for r in requests {
                r.await.unwrap();
            }
            read.load(Ordering::Relaxed)
        }
    };
    // What one cold request reads (header, pyramid, one tile) and what a warm one reads (the
    // tile): eight concurrent cold requests read the header and the pyramid once.
    let svc = IiifService::new(source.clone());
    let cold = burst(svc.clone(), 1).await;
    let warm = burst(svc, 1).await;
    let concurrent = burst(IiifService::new(source), 8).await;
    assert!(
        warm > 0 && warm < cold && cold < file_len,
        "{warm} {cold} {file_len}"
    );
    assert_eq!(concurrent, cold + 7 * warm);
}

/// A service over one in-memory file, counting the bytes read, and the counter.
fn counting_service(
    name: &str,
    file: Vec<u8>,
) -> (
    IiifService<CountingSource>,
    Arc<std::sync::atomic::AtomicU64>,
) {
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let source = CountingSource {
        files: Arc::new(
            [(name.to_owned(), bytes::Bytes::from(file))]
                .into_iter()
                .collect(),
        ),
        read: Arc::clone(&read),
    };
    (IiifService::new(source), read)
}

async fn fetch_png<S: Source>(svc: &IiifService<S>, path: &str) -> crate::pixels::Pixels {
    decode(&fetch_bytes(svc, path).await, "image/png")
}

/// The body of a GET that must answer 200.
async fn fetch_bytes<S: Source>(svc: &IiifService<S>, path: &str) -> bytes::Bytes {
    let res = svc
        .clone()
        .oneshot(Request::get(path).body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn reduced_pyramids_are_kept_in_a_store_and_read_back_by_a_new_service() {
    let file = std::fs::read(samples_dir().join("landscape.jpg")).unwrap();
    let file_len = file.len() as u64;
    let dir = crate::cache::fs::tests::TempDir::new("pyramid-store");
    let store = || {
        crate::cache::FsCache::new(&dir.0)
            .unwrap()
            .max_bytes(1 << 30)
    };
    let path = "/big/500,500,1000,1000/250,/0/default.png";

    // A service with pyramids from 1 Mpx and the store, over `file`, and its read counter.
    let with_store = |file: Vec<u8>| {
        let (svc, read) = counting_service("big", file);
        let svc = svc
            .reduced_pyramids(8 << 20, 1_000_000)
            .reduced_pyramid_store(store());
        (svc, read)
    };

    // The first service builds the pyramid from the file and stores it in the background.
    let (first, read) = with_store(file.clone());
    let built = fetch_png(&first, path).await;
    assert!(read.load(Ordering::Relaxed) >= file_len);
    let mut stored = 0;
    for _ in 0..500 {
        // Finished entries only (a write in progress is a dot-file).
        stored = walk(&dir.0)
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .count();
        if stored > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(stored, 1, "the pyramid was written to the store");

    // A new service (a restart): the pyramid comes from the store, the file is not read but
    // for its header; the pixels are the same.
    let (second, read) = with_store(file.clone());
    let again = fetch_png(&second, path).await;
    assert!(read.load(Ordering::Relaxed) <= 64 << 10, "header only");
    assert_eq!((again.width(), again.height()), (250, 250));
    assert_eq!(again.data(), built.data());

    // A changed source (another length) does not use the stored pyramid.
    let mut changed = file;
    changed.extend_from_slice(&[0; 16]);
    let changed_len = changed.len() as u64;
    let (third, read) = with_store(changed);
    fetch_png(&third, path).await;
    assert!(read.load(Ordering::Relaxed) >= changed_len);

    // A damaged store entry is a miss, not an error: the pyramid is built again.
    for entry in walk(&dir.0) {
        std::fs::write(&entry, b"junk").unwrap();
    }
    let (fourth, read) = with_store(std::fs::read(samples_dir().join("landscape.jpg")).unwrap());
    assert_eq!(fetch_png(&fourth, path).await.data(), built.data());
    assert!(read.load(Ordering::Relaxed) >= file_len);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn large_flat_images_are_rendered_from_a_reduced_pyramid_built_once() {
    // landscape.jpg: 4000x2600. Pyramids from 1 Mpx, in 8 MiB (4 MiB per image: from 1/4).
    let file = std::fs::read(samples_dir().join("landscape.jpg")).unwrap();
    let file_len = file.len() as u64;
    let (svc, read) = counting_service("big", file.clone());
    let svc = svc.reduced_pyramids(8 << 20, 1_000_000);
    let (plain, _) = counting_service("big", file);
    let plain = plain.reduced_pyramids(0, 0);

    // Eight concurrent cold requests at 1/4 scale: the file is read once, for the pyramid.
    let paths: Vec<String> = (0..8)
        .map(|i| format!("/big/{},0,500,500/125,/0/default.png", i * 500))
        .collect();
    let mut tasks = Vec::new();
    for path in &paths {
        let (svc, path) = (svc.clone(), path.clone());
        tasks.push(tokio::spawn(async move { fetch_png(&svc, &path).await }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    let after_burst = read.load(Ordering::Relaxed);
    assert!(
        after_burst >= file_len && after_burst < file_len + (256 << 10),
        "read {after_burst} of {file_len}"
    );
    // The same pixels as a whole decode renders, closely.
    for (path, px) in paths.iter().zip(&got) {
        let want = fetch_png(&plain, path).await;
        let d = mean_abs_diff(px, &want);
        assert!(d < 3.0, "{path}: mean difference {d}");
    }
    // Smaller scales and the thumbnail: no byte of the file read again.
    read.store(0, Ordering::Relaxed);
    for path in [
        "/big/full/500,/0/default.png",
        "/big/1000,1000,2000,1000/250,/0/default.png",
    ] {
        let px = fetch_png(&svc, path).await;
        let d = mean_abs_diff(&px, &fetch_png(&plain, path).await);
        assert!(d < 3.0, "{path}: mean difference {d}");
    }
    assert_eq!(read.load(Ordering::Relaxed), 0);
    // Full scale is beyond the pyramid: read from the file, and right.
    let path = "/big/1000,1000,300,200/max/0/default.png";
    let px = fetch_png(&svc, path).await;
    assert!(read.load(Ordering::Relaxed) > 0);
    assert!(mean_abs_diff(&px, &fetch_png(&plain, path).await) < 1.5);
}

/// An in-memory source whose whole-file reads (a reduced pyramid's build) are counted,
/// announced on `started` and held until `gate` has permits.
#[derive(Clone)]
struct GatedSource {
    data: bytes::Bytes,
    meta: crate::source::SourceMetadata,
    whole_reads: Arc<std::sync::atomic::AtomicU64>,
    started: Arc<tokio::sync::Notify>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl Source for GatedSource {
    type Object = GatedSource;
    async fn open(&self, _: &Identifier, _: &SourceRequest) -> Result<GatedSource, Error> {
        Ok(self.clone())
    }
}

impl SourceObject for GatedSource {
    fn metadata(&self) -> &crate::source::SourceMetadata {
        &self.meta
    }
    async fn read_range(&self, range: std::ops::Range<u64>) -> Result<bytes::Bytes, Error> {
        let len = self.data.len() as u64;
        if range.start == 0 && range.end >= len {
            self.whole_reads.fetch_add(1, Ordering::Relaxed);
            self.started.notify_one();
            drop(self.gate.acquire().await.unwrap());
        }
        let end = range.end.min(len) as usize;
        Ok(self.data.slice((range.start as usize).min(end)..end))
    }
}

#[tokio::test]
async fn a_reduced_pyramid_build_outlives_the_request_that_started_it() {
    // No derivative cache: the pyramid's build is the only work that outlives a request.
    let file = std::fs::read(samples_dir().join("landscape.jpg")).unwrap();
    let source = GatedSource {
        meta: crate::source::SourceMetadata::new(file.len() as u64, None, None),
        data: bytes::Bytes::from(file.clone()),
        whole_reads: Arc::default(),
        started: Arc::default(),
        gate: Arc::new(tokio::sync::Semaphore::new(0)),
    };
    let svc = IiifService::new(source.clone()).reduced_pyramids(8 << 20, 1_000_000);
    let path = "/big/full/500,/0/default.png";
    // The first request starts the build; its client goes away while the file is read.
    let first = fetch_png(&svc, path);
    tokio::select! {
        _ = first => panic!("rendered before the file was read"),
        _ = source.started.notified() => {}
    }
    source.gate.add_permits(1 << 20);
    // The build goes on without it: the next request is rendered from that pyramid, and the
    // file was read once.
    let px = fetch_png(&svc, path).await;
    assert_eq!((px.width(), px.height()), (500, 325));
    assert_eq!(source.whole_reads.load(Ordering::Relaxed), 1);
    let (plain, _) = counting_service("big", file);
    let want = fetch_png(&plain.reduced_pyramids(0, 0), path).await;
    assert!(mean_abs_diff(&px, &want) < 3.0);
}

/// A source of one file that records the ranges read of it.
#[derive(Clone)]
struct RangesSource {
    data: bytes::Bytes,
    ranges: Arc<std::sync::Mutex<Vec<std::ops::Range<u64>>>>,
}

struct RangesObject {
    source: RangesSource,
    meta: crate::source::SourceMetadata,
}

impl RangesSource {
    fn new(data: Vec<u8>) -> Self {
        Self {
            data: data.into(),
            ranges: Arc::default(),
        }
    }

    fn take(&self) -> Vec<std::ops::Range<u64>> {
        std::mem::take(&mut *self.ranges.lock().unwrap())
    }
}

impl Source for RangesSource {
    type Object = RangesObject;
    async fn open(&self, _: &Identifier, _: &SourceRequest) -> Result<RangesObject, Error> {
        let len = self.data.len() as u64;
        Ok(RangesObject {
            source: self.clone(),
            meta: crate::source::SourceMetadata::new(len, Some(std::time::UNIX_EPOCH), None),
        })
    }
}

impl SourceObject for RangesObject {
    fn metadata(&self) -> &crate::source::SourceMetadata {
        &self.meta
    }
    async fn read_range(&self, range: std::ops::Range<u64>) -> Result<bytes::Bytes, Error> {
        let end = range.end.min(self.source.data.len() as u64);
        let start = range.start.min(end);
        self.source.ranges.lock().unwrap().push(start..end);
        Ok(self.source.data.slice(start as usize..end as usize))
    }
}

/// Two instances sharing a tier (a disk cache here), over JPEG 2000 files with and without
/// TLM markers: the second renders a region the first never did from the header and tile-part
/// index the first read (their bytes kept in the shared tier), reading nothing at the start of
/// the file (the boxes and the main header), and sends what an instance with no tier sends.
#[tokio::test]
async fn a_second_instance_reads_a_jpeg_2000_index_from_the_shared_tier_not_the_file() {
    use crate::jp2::openjpeg::tests::{Opts, encode_fixture, pattern};
    for tlm in [true, false] {
        let (w, h) = (1024, 768);
        let opts = Opts {
            tiled: Some((128, 128)),
            resolutions: 4,
            jp2_container: true,
            tlm,
            ..Opts::default()
        };
        let file = encode_fixture(w, h, 3, &pattern(w, h, 3), &opts);
        let dir = crate::cache::fs::tests::TempDir::new(&format!("jp2-fact-{tlm}"));
        let cache = || crate::cache::FsCache::new(&dir.0).unwrap();
        let a = IiifService::new(RangesSource::new(file.clone())).derivative_cache(cache());
        fetch_bytes(&a, "/j/0,0,512,512/256,/0/default.png").await;

        let source = RangesSource::new(file.clone());
        let b = IiifService::new(source.clone()).derivative_cache(cache());
        let region = "/j/512,256,384,384/192,/0/default.png";
        let got = fetch_bytes(&b, region).await;
        let reads = source.take();
        assert!(!reads.is_empty());
        // The boxes and the main header lie in the first bytes; the tiles well past them.
        assert!(
            reads.iter().all(|r| r.start >= 2048),
            "tlm {tlm}: {reads:?}"
        );
        let lone = IiifService::new(RangesSource::new(file.clone()));
        let want = fetch_bytes(&lone, region).await;
        assert_eq!(got, want, "tlm {tlm}");

        // A fact that passes its CRC but makes no index (here: bytes that are not a JPEG
        // 2000's): the file is indexed (its start read), and a sound fact kept in its place.
        let source = RangesSource::new(file.clone());
        let object = source
            .open(&Identifier::new("j").unwrap(), &SourceRequest::default())
            .await
            .unwrap();
        let key = IiifService::<RangesSource>::facts_key(
            &Identifier::new("j").unwrap(),
            object.metadata(),
            "jp2index",
        );
        let mut wrong = crate::source::recording::Recording::default();
        wrong.add(0, bytes::Bytes::from_static(b"not a JPEG 2000 file"));
        let shared = cache();
        crate::cache::CacheBackend::put(
            &shared,
            key.clone(),
            crate::cache::CachedDerivative::new(
                wrong.encode().unwrap(),
                "application/octet-stream",
            ),
        )
        .await;
        let c = IiifService::new(source.clone()).derivative_cache(shared.clone());
        let third = "/j/128,128,384,384/192,/0/default.png";
        let lone = IiifService::new(RangesSource::new(file.clone()));
        assert_eq!(
            fetch_bytes(&c, third).await,
            fetch_bytes(&lone, third).await,
            "tlm {tlm}"
        );
        assert!(
            source.take().iter().any(|r| r.start == 0),
            "tlm {tlm}: the file was read"
        );
        let kept = crate::cache::CacheBackend::get(&shared, &key)
            .await
            .unwrap()
            .body;
        let replay = crate::source::recording::Replay::decode(&kept, object.metadata()).unwrap();
        let replayed = crate::jp2::codestream::read_index(&replay).await.unwrap();
        assert!(replayed.is_some(), "tlm {tlm}: a sound fact kept again");
    }
}

#[tokio::test]
async fn jpeg_2000_sources_are_served_by_region_and_resolution() {
    let (file, src) = crate::jp2::openjpeg::tests::tiled_rgb_fixture(1024, 768);
    let file_len = file.len() as u64;
    let whole = CountingObject {
        data: bytes::Bytes::from(file.clone()),
        meta: crate::source::SourceMetadata::new(file_len, None, None),
        read: Arc::new(std::sync::atomic::AtomicU64::new(0)),
    };
    let index = crate::jp2::codestream::read_index(&whole)
        .await
        .unwrap()
        .unwrap();
    let (svc, read) = counting_service("j", file);
    let source =
        crate::pixels::Pixels::from_vec(1024, 768, crate::pixels::Layout::Rgb, src).unwrap();

    // info.json: the resolution levels as sizes, the 128 tiles doubled to 512.
    let res = svc
        .clone()
        .oneshot(Request::get("/j/info.json").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (doc["width"].as_u64(), doc["height"].as_u64()),
        (Some(1024), Some(768))
    );
    assert_eq!(
        doc["tiles"],
        serde_json::json!([{"width": 512, "height": 512, "scaleFactors": [1, 2]}])
    );
    assert_eq!(
        doc["sizes"],
        serde_json::json!([
            {"width": 64, "height": 48},
            {"width": 128, "height": 96},
            {"width": 256, "height": 192},
            {"width": 512, "height": 384},
            {"width": 1024, "height": 768}
        ])
    );

    // Full size, lossless: the source exactly.
    let full = fetch_png(&svc, "/j/full/max/0/default.png").await;
    assert_eq!(full.data(), source.data());

    // One 128 tile's region at full size: exact, and only a part of the file is read. (A first
    // region request reads the tile-part index: the whole image needed none.)
    fetch_png(&svc, "/j/0,0,64,64/max/0/default.png").await;
    read.store(0, Ordering::Relaxed);
    let tile = fetch_png(&svc, "/j/256,128,128,128/max/0/default.png").await;
    let bytes_read = read.load(Ordering::Relaxed);
    // Exactly its tile's tile-parts (the first request read the tile-part index).
    assert_eq!(bytes_read, index.region_bytes(256, 128, 128, 128, 0));
    assert!(
        bytes_read < file_len / 20,
        "read {bytes_read} of {file_len}"
    );
    for y in 0..128 {
        let row = &tile.data()[y * 128 * 3..][..128 * 3];
        let want = &source.data()[((128 + y) * 1024 + 256) * 3..][..128 * 3];
        assert_eq!(row, want, "row {y}");
    }

    // Reduced resolutions: close to the whole image scaled by our own resizer.
    for path in [
        "/j/full/128,/0/default.png",
        "/j/256,0,256,256/64,/0/default.png",
    ] {
        let got = fetch_png(&svc, path).await;
        let region = if path.contains("full") {
            crate::pixels::Rect::new(0, 0, 1024, 768)
        } else {
            crate::pixels::Rect::new(256, 0, 256, 256)
        };
        let want = crate::ops::crop_resize(
            &source,
            region,
            got.width(),
            got.height(),
            crate::pixels::Budget::default(),
        )
        .unwrap();
        let d = mean_abs_diff(&got, &want);
        assert!(d < 4.0, "{path}: mean difference {d}");
    }
}

#[tokio::test]
async fn an_untiled_jpeg_2000_with_packet_lengths_is_read_only_as_far_as_a_request_needs() {
    // The archival layout of Kakadu's usual recipe (one tile, RPCL, precincts, PLT, SOP + EPH)
    // as OpenJPEG writes it; lossless, so every pixel can be checked.
    use crate::jp2::openjpeg::tests::{Opts, encode_fixture, pattern};
    let (w, h) = (1024, 768);
    let src = pattern(w, h, 3);
    let opts = Opts {
        resolutions: 6,
        progression: openjpeg_sys::PROG_ORDER::OPJ_RPCL,
        precincts: Some((128, 128)),
        plt: true,
        sop_eph: true,
        jp2_container: true,
        ..Opts::default()
    };
    let file = encode_fixture(w, h, 3, &src, &opts);
    let file_len = file.len() as u64;
    let (svc, read) = counting_service("u", file.clone());
    let res = svc
        .clone()
        .oneshot(Request::get("/u/info.json").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // The first reduced request reads the index (the first 64 KiB, the tile-part's header)
    // and the first four of six resolutions: less than the file.
    read.store(0, Ordering::Relaxed);
    fetch_png(&svc, "/u/full/256,/0/default.png").await;
    let bytes_read = read.load(Ordering::Relaxed);
    assert!(bytes_read < file_len, "read {bytes_read} of {file_len}");

    // A thumbnail at 1/8: the first three resolutions.
    read.store(0, Ordering::Relaxed);
    let thumb = fetch_png(&svc, "/u/full/128,/0/default.png").await;
    let bytes_read = read.load(Ordering::Relaxed);
    assert!(bytes_read < file_len / 8, "read {bytes_read} of {file_len}");
    let req = crate::jp2::DecodeRequest {
        reduce: 3,
        ..Default::default()
    };
    let want = crate::jp2::decode(file.as_slice(), &req).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (128, 96));
    assert!(thumb.data() == want.data, "the whole file's pixels at 1/8");

    // A region at half size reads a part of the file, and is the same as the whole file's.
    read.store(0, Ordering::Relaxed);
    let half = fetch_png(&svc, "/u/512,256,256,256/128,/0/default.png").await;
    let bytes_read = read.load(Ordering::Relaxed);
    assert!(bytes_read < file_len / 2, "read {bytes_read} of {file_len}");
    let req = crate::jp2::DecodeRequest {
        reduce: 1,
        area: Some((512, 256, 256, 256)),
        ..Default::default()
    };
    let want = crate::jp2::decode(file.as_slice(), &req).unwrap();
    assert!(half.data() == want.data);

    // At full size, only the precincts near the region: exact against the source.
    read.store(0, Ordering::Relaxed);
    let tile = fetch_png(&svc, "/u/256,128,64,64/max/0/default.png").await;
    let bytes_read = read.load(Ordering::Relaxed);
    assert!(bytes_read < file_len / 4, "read {bytes_read} of {file_len}");
    for y in 0..64 {
        let row = &tile.data()[y * 64 * 3..][..64 * 3];
        let at = ((128 + y) * 1024 + 256) * 3;
        let want: Vec<u8> = src[at..at + 64 * 3].iter().map(|&v| v as u8).collect();
        assert_eq!(row, &want[..], "row {y}");
    }
}

#[tokio::test]
async fn a_header_past_the_first_64_kib_is_read_from_the_first_mib_not_the_whole_file() {
    // landscape.jpg with 130 KB of APP15 segments in front of its frame header, and 1.5 MB of
    // trailing bytes after its end.
    let jpeg = std::fs::read(samples_dir().join("landscape.jpg")).unwrap();
    let mut file = jpeg[..2].to_vec();
    for _ in 0..2 {
        file.extend_from_slice(&[0xFF, 0xEF, 0xFD, 0xE8]);
        file.extend(std::iter::repeat_n(0x55, 0xFDE8 - 2));
    }
    file.extend_from_slice(&jpeg[2..]);
    file.extend(std::iter::repeat_n(0u8, 1_500_000));
    let file_len = file.len() as u64;
    let (svc, read) = counting_service("big-app", file);
    let res = svc
        .oneshot(Request::get("/big-app/info.json").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (doc["width"].as_u64(), doc["height"].as_u64()),
        (Some(4000), Some(2600))
    );
    let bytes_read = read.load(Ordering::Relaxed);
    assert!(
        bytes_read <= (64 << 10) + (1 << 20) && bytes_read < file_len,
        "read {bytes_read} of {file_len}"
    );
}

#[tokio::test]
async fn large_flat_pngs_are_streamed_into_their_reduced_pyramid() {
    use crate::flat::png_reduce::tests::{Kind, gradient, interlaced_rgb, png_file};
    use ::png::{BitDepth, ColorType};
    // 1001x517 RGB: 1.55 MB decoded whole. Pyramids from 100 kpx in 600 KB (300 KB an image,
    // reckoned as RGBA: from 1/4, 251x130), 400 KB a buffer, 1000 bytes read whole: the whole
    // decode is refused on both counts, the streamed one is not.
    let file = png_file(
        Kind::new(ColorType::Rgb, BitDepth::Eight, false),
        (1001, 517),
    );
    let file_len = file.len() as u64;
    let (svc, read) = counting_service("big", file.clone());
    let svc = svc
        .reduced_pyramids(600_000, 100_000)
        .memory_budget(400_000)
        .max_source_bytes(1000);
    let (plain, _) = counting_service("big", file);
    let plain = plain.reduced_pyramids(0, 0);
    let path = "/big/0,0,512,512/128,/0/default.png";
    let refused = plain.clone().memory_budget(400_000);
    let res = refused.oneshot(Request::get(path).body(()).unwrap()).await;
    assert_eq!(res.unwrap().status(), StatusCode::INTERNAL_SERVER_ERROR);

    let px = fetch_png(&svc, path).await;
    assert_eq!((px.width(), px.height()), (128, 128));
    assert!(read.load(Ordering::Relaxed) >= file_len);
    // Output pixel (x, y) is the full image's (4x + 1.5, 4y + 1.5).
    for (x, y) in [(0, 0), (64, 32), (127, 127), (100, 10)] {
        let want = gradient(4 * x + 2, 4 * y + 2, (1001, 517));
        assert_color(&px, x, y, [want[0], want[1], want[2]], 2, path);
    }
    let d = mean_abs_diff(&px, &fetch_png(&plain, path).await);
    assert!(d < 1.0, "{path}: mean difference {d}");
    // Built once: the next requests at its scales read nothing.
    read.store(0, Ordering::Relaxed);
    let thumb = fetch_png(&svc, "/big/full/251,/0/default.png").await;
    assert_eq!((thumb.width(), thumb.height()), (251, 130));
    let want = gradient(500, 258, (1001, 517));
    assert_color(&thumb, 125, 64, [want[0], want[1], want[2]], 2, "thumbnail");
    assert_eq!(read.load(Ordering::Relaxed), 0);

    // Interlaced: decoded whole, within the whole-file bounds only.
    let file = interlaced_rgb(1001, 517);
    let service = || counting_service("il", file.clone()).0;
    let svc = service().reduced_pyramids(600_000, 100_000);
    let plain = service().reduced_pyramids(0, 0);
    let path = "/il/0,0,512,512/128,/0/default.png";
    let px = fetch_png(&svc, path).await;
    let d = mean_abs_diff(&px, &fetch_png(&plain, path).await);
    assert!(d < 1.5, "interlaced: mean difference {d}");
    // (A service of its own: clones share the pyramid built above.)
    let small = service()
        .reduced_pyramids(600_000, 100_000)
        .max_source_bytes(1000);
    let res = small.oneshot(Request::get(path).body(()).unwrap()).await;
    assert_eq!(res.unwrap().status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn zoomed_in_png_tiles_decode_only_the_rows_down_to_their_region() {
    use crate::flat::png_reduce::tests::{Kind, interlaced_rgb, png_file};
    use ::png::{BitDepth, ColorType};
    // 1001x517 RGBA: 2 MB decoded whole. Pyramids from 100 kpx (their largest level a quarter,
    // 600 KB reckoned as RGBA), 400 KB a buffer, 1000 bytes read whole: full-size tiles are
    // beyond the pyramid and a whole read or decode is refused, so they must be streamed.
    let size = (1001, 517);
    let file = png_file(Kind::new(ColorType::Rgba, BitDepth::Eight, false), size);
    let (svc, read) = counting_service("big", file.clone());
    let svc = svc
        .reduced_pyramids(600_000, 100_000)
        .memory_budget(400_000)
        .max_source_bytes(1000);
    let (plain, _) = counting_service("big", file.clone());
    let plain = plain.reduced_pyramids(0, 0);
    for path in [
        "/big/512,0,256,64/max/0/default.png",
        "/big/0,200,256,256/max/0/default.png",
        "/big/768,256,233,261/max/0/default.png",
        "/big/900,500,101,17/^202,/0/default.png",
    ] {
        read.store(0, Ordering::Relaxed);
        let px = fetch_png(&svc, path).await;
        assert!(read.load(Ordering::Relaxed) > 0, "{path}");
        assert!(
            px == fetch_png(&plain, path).await,
            "{path}: not the whole decode's pixels"
        );
    }
    // A file cut short below a region still serves it; one whose rows end inside does not.
    let (cut, _) = counting_service("cut", file[..file.len() * 3 / 4].to_vec());
    let cut = cut.reduced_pyramids(600_000, 100_000);
    let top = fetch_png(&cut, "/cut/0,0,256,32/max/0/default.png").await;
    assert_eq!((top.width(), top.height()), (256, 32));
    let res = cut
        .oneshot(
            Request::get("/cut/0,480,256,32/max/0/default.png")
                .body(())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(res.status().is_server_error() || res.status().is_client_error());

    // Interlaced: decoded whole, within the whole-file bounds only.
    let file = interlaced_rgb(1001, 517);
    let service = || counting_service("il", file.clone()).0;
    let path = "/il/512,0,256,64/max/0/default.png";
    let px = fetch_png(&service().reduced_pyramids(600_000, 100_000), path).await;
    assert!(px == fetch_png(&service().reduced_pyramids(0, 0), path).await);
    let small = service()
        .reduced_pyramids(600_000, 100_000)
        .max_source_bytes(1000);
    let res = small.oneshot(Request::get(path).body(()).unwrap()).await;
    assert_eq!(res.unwrap().status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn jpeg_2000_regions_of_a_local_file_are_read_on_the_render_thread() {
    let (file, src) = crate::jp2::openjpeg::tests::tiled_rgb_fixture(1024, 768);
    let dir = crate::cache::fs::tests::TempDir::new("jp2-local");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("j.jp2"), &file).unwrap();
    let svc = IiifService::new(crate::source::FsSource::new(&dir.0).unwrap());
    // Tiles of the index's path (read synchronously) and the whole image (OpenJPEG's own
    // reads): both exact.
    for (x, y, w, h) in [(256, 128, 128, 128), (100, 700, 300, 68), (0, 0, 1024, 768)] {
        let got = fetch_png(&svc, &format!("/j.jp2/{x},{y},{w},{h}/max/0/default.png")).await;
        assert_eq!((got.width(), got.height()), (w, h));
        for row in 0..h as usize {
            let have = &got.data()[row * w as usize * 3..][..w as usize * 3];
            let want = &src[((y as usize + row) * 1024 + x as usize) * 3..][..w as usize * 3];
            assert_eq!(have, want, "{x},{y},{w},{h} row {row}");
        }
    }
}

/// The memory ceiling holds for concurrent renders: each reserves its estimate first, and
/// the most reserved at once stays under the ceiling; a render that could never fit is a 400
/// at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_renders_stay_under_the_memory_ceiling() {
    // Room for about two 1000 px renders of the 1000x1000 validator image at once. (A long
    // queue wait: the test is about the ceiling, and a loaded machine makes renders slow.)
    let svc = IiifService::new(FsSource::new(samples_dir()).unwrap())
        .render_concurrency(8, 64)
        .memory_ceiling(24 << 20)
        .max_queue_wait(std::time::Duration::from_secs(120));
    let mut tasks = Vec::new();
    for i in 0..12u32 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let path = format!("/{VALIDATOR_ID}/full/{},/0/default.png", 900 + i);
            get(&svc, &path).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let peak = svc.memory_peak();
    assert!(peak > 8 << 20 && peak <= 24 << 20, "{peak}");
    let res = get(&svc, &format!("/{VALIDATOR_ID}/full/^4000,/0/default.png")).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let body = String::from_utf8(res.body).unwrap();
    assert!(body.contains("memory ceiling"), "{body}");
}

/// With renders slower than the queue wait, a request that would wait past it is answered 503
/// at once, its `Retry-After` the expected wait; those admitted are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_that_would_wait_too_long_are_shed_with_an_honest_retry_after() {
    let svc = IiifService::new(FsSource::new(samples_dir()).unwrap())
        .render_concurrency(1, 100)
        .max_queue_wait(std::time::Duration::from_millis(1));
    // One render teaches the queue how long renders take.
    let first = format!("/{VALIDATOR_ID}/full/999,/45/default.png");
    assert_eq!(get(&svc, &first).await.status, StatusCode::OK);
    let mut tasks = Vec::new();
    for i in 0..8u32 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let path = format!("/{VALIDATOR_ID}/full/{},/45/default.png", 980 + i);
            let res = get(&svc, &path).await;
            let retry = res
                .headers
                .get(http::header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap().parse::<u32>().unwrap());
            (res.status.as_u16(), retry)
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().any(|a| a.0 == 200), "{answers:?}");
    assert!(answers.iter().any(|a| a.0 == 503), "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| (a.0 == 200 && a.1.is_none()) || (a.0 == 503 && a.1 >= Some(1))),
        "{answers:?}"
    );
}

/// A reduced pyramid whose build could never fit under the memory ceiling is not built: the
/// region is decoded instead (DCT-scaled: the pixels of a whole decode, closely).
#[tokio::test]
async fn no_reduced_pyramid_is_built_past_the_memory_ceiling() {
    // landscape.jpg: 4000x2600; its pyramid from 1/4 needs about 20 MiB to build, a region
    // render a few.
    let file = std::fs::read(samples_dir().join("landscape.jpg")).unwrap();
    let file_len = file.len() as u64;
    let (svc, read) = counting_service("big", file.clone());
    let svc = svc
        .reduced_pyramids(8 << 20, 1_000_000)
        .memory_ceiling(12 << 20);
    let (plain, _) = counting_service("big", file);
    let plain = plain.reduced_pyramids(0, 0);
    for x in [0, 1500] {
        let path = format!("/big/{x},0,500,500/125,/0/default.png");
        let got = fetch_png(&svc, &path).await;
        let d = mean_abs_diff(&got, &fetch_png(&plain, &path).await);
        assert!(d < 3.0, "{path}: mean difference {d}");
    }
    // Each request read the file for itself: no pyramid was built.
    assert!(read.load(Ordering::Relaxed) >= 2 * file_len);
    assert!(svc.memory_peak() <= 12 << 20);
}

/// Wide-gamut (Adobe RGB) sources are served in sRGB whichever path reads them: tiles of a
/// tiled TIFF (stored JPEG tiles are then rendered, not passed through), a JPEG 2000 read by
/// OpenJPEG, a PNG and a JPEG decoded by the service.
#[tokio::test]
async fn embedded_profiles_are_converted_to_srgb_on_every_path() {
    use crate::codec::icc::tests::{
        adobe_profile, assert_blocks, jp2_with_profile, jpeg_with_profile, patches,
        png_with_profile, reference,
    };
    let profile = adobe_profile();
    let files = [
        (
            "tiled TIFF, Deflate",
            crate::tiff::tests::tiled_with_profile(&patches(), false, &profile),
            2,
        ),
        (
            "tiled TIFF, JPEG",
            crate::tiff::tests::tiled_with_profile(&patches(), true, &profile),
            8,
        ),
        ("JPEG 2000", jp2_with_profile(&profile), 2),
        ("PNG", png_with_profile(&profile), 2),
        ("JPEG", jpeg_with_profile(&profile, 60_000, &[0]), 8),
    ];
    for (what, file, tolerance) in files {
        let (svc, _) = counting_service("f", file);
        let px = fetch_png(&svc, "/f/full/max/0/default.png").await;
        assert_blocks(&px, reference, tolerance, what);
        let px = fetch_png(&svc, "/f/16,0,32,16/max/0/default.png").await;
        assert_eq!((px.width(), px.height()), (32, 16), "{what}");
        let want = reference(crate::codec::icc::tests::ADOBE[1]);
        let got = &px.pixel(8, 8)[..3];
        assert!(
            got.iter()
                .zip(want)
                .all(|(a, b)| a.abs_diff(b) <= tolerance),
            "{what}: {got:?} vs {want:?}"
        );
    }
    // A whole stored JPEG tile asked for at its size, as JPEG (which would be passed through
    // as stored): rendered in sRGB too.
    let rows = patches().data()[..64 * 3].repeat(64);
    let square = crate::pixels::Pixels::from_vec(64, 64, crate::pixels::Layout::Rgb, rows).unwrap();
    let file = crate::tiff::tests::tiled_with_profile(&square, true, &profile);
    let (svc, _) = counting_service("t", file);
    let res = svc
        .clone()
        .oneshot(
            Request::get("/t/0,0,64,64/64,/0/default.jpg")
                .body(())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let px = decode(&body, "image/jpeg");
    assert_blocks(&px, reference, 10, "stored JPEG tile");
}
