//! The Islandora gateway (`examples/gateway.rs`) over real sockets, in front of the stand-in
//! Drupal of `scripts/servers.sh` (nginx): Islandora's URL shapes for each format and both API
//! versions, absolute and relative identifiers, private files and the caller's credentials,
//! Drupal's pages and forms proxied unchanged, and OpenSeadragon in headless Chromium.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::Layer;
use tower_iiif::IiifService;
use tower_iiif::limit::PixelLimitLayer;
use tower_iiif::request::ApiVersion;
use tower_iiif::source::FsSource;

mod common;

use common::servers::env;
use common::{Reply, get};

#[allow(dead_code)]
#[path = "../examples/gateway/app.rs"]
mod gateway_app;

/// A gateway configured as ISLE configures its containers, by environment variables (plus
/// `extra`), in front of the stand-in Drupal named `localhost` (a host name, as `drupal` is in
/// ISLE, that resolves to a loopback address). Returns its address.
async fn gateway(extra: &[(&str, &str)]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut vars: HashMap<String, String> = HashMap::from([
        (
            "GATEWAY_DRUPAL_URL".into(),
            env("TOWER_IIIF_DRUPAL_URL").replace("127.0.0.1", "localhost"),
        ),
        (
            "DRUPAL_DEFAULT_CANTALOUPE_URL".into(),
            format!("http://{addr}/cantaloupe/iiif/2"),
        ),
    ]);
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    let config = gateway_app::parse(|k| vars.get(k).cloned(), std::iter::empty()).unwrap();
    let router = gateway_app::app(&config).unwrap();
    tokio::spawn(gateway_app::serve(listener, router, Default::default()));
    addr
}

/// The same files served from disk by a plain service with ISLE's `max_pixels`, for
/// comparison.
async fn disk(version: ApiVersion) -> SocketAddr {
    let svc = PixelLimitLayer::new()
        .clamp()
        .max_area(10_000_000)
        .layer(IiifService::new(FsSource::new(drupal_root()).unwrap()).version(version));
    let mount = match version {
        ApiVersion::V2 => "/iiif/2",
        _ => "/iiif/3",
    };
    common::serve_axum(axum::Router::new().nest_service(mount, svc)).await
}

fn drupal_root() -> PathBuf {
    PathBuf::from(env("TOWER_IIIF_DRUPAL_ROOT"))
}

/// PHP's `urlencode`, as Drupal writes identifiers: a space is `+`, every byte but
/// `A-Za-z0-9-_.` is `%XX`.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// RFC 3986 percent-encoding of a path segment (for the disk service).
fn segment(s: &str) -> String {
    urlencode(s).replace('+', "%20")
}

/// What the gateway echoes as an identifier: the decoded identifier re-encoded.
fn echoed(s: &str) -> String {
    segment(s).replace("%3A", ":")
}

/// The lines of the stand-in Drupal's log since line `from`, split into fields.
async fn drupal_log(from: usize) -> Vec<Vec<String>> {
    // nginx writes its log line after the response: give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = std::fs::read_to_string(env("TOWER_IIIF_DRUPAL_LOG")).unwrap_or_default();
    text.lines()
        .skip(from)
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// A string no other request of this test run carries.
fn marker() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "m{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The stand-in Drupal's log lines since `from` whose request URI contains `needle` (tests
/// run at once, so others' lines are interleaved).
async fn drupal_lines(from: usize, needle: &str) -> Vec<Vec<String>> {
    let lines: Vec<_> = drupal_log(from)
        .await
        .into_iter()
        .filter(|l| l[1].contains(needle))
        .collect();
    assert!(!lines.is_empty(), "no request for {needle} reached Drupal");
    lines
}

fn drupal_log_len() -> usize {
    std::fs::read_to_string(env("TOWER_IIIF_DRUPAL_LOG"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// One request with a body, written as given; the whole reply, headers in order.
async fn send(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(buf[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    Reply {
        status,
        headers: lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        body: buf[split + 4..].to_vec(),
    }
}

/// The files of the stand-in Drupal the URL-shape tests read, by site path: a pyramidal TIFF
/// with a space in its name, a tiled JPEG 2000 and a flat JPEG, all 4096x3072.
const FILES: [&str; 4] = [
    "sites/default/files/2024-05/page 1.tif",
    "sites/default/files/2024-05/page1.jp2",
    "sites/default/files/2024-05/flat photo.jpg",
    "_flysystem/fedora/2024-05/page1.tif",
];

/// The requests Islandora makes, after `{base}/{id}`: info.json, OpenSeadragon's tiles and
/// levels, a thumbnail; the same over the gateway as from disk, byte for byte.
const V2_PATHS: [&str; 5] = [
    "/info.json",
    "/0,0,1024,1024/256,/0/default.jpg",
    "/2048,1024,1024,1024/512,/0/default.jpg",
    "/full/512,/0/default.jpg",
    "/full/!200,200/0/default.jpg",
];
const V3_PATHS: [&str; 3] = [
    "/info.json",
    "/1024,1024,512,512/256,256/0/default.jpg",
    "/full/!200,200/0/default.png",
];

/// Every request answers as the same file from disk does, but the `@id`/`id`, which is the
/// gateway's public URL with the identifier re-encoded.
async fn assert_same_as_disk(gw: SocketAddr, version: ApiVersion, ident: &str, file: &str) {
    let (mount, paths, id_key): (_, &[&str], _) = match version {
        ApiVersion::V2 => ("2", &V2_PATHS[..], "@id"),
        _ => ("3", &V3_PATHS[..], "id"),
    };
    let disk = disk(version).await;
    for path in paths {
        let g = get(gw, &format!("/cantaloupe/iiif/{mount}/{ident}{path}"), &[]).await;
        let d = get(disk, &format!("/iiif/{mount}/{}{path}", segment(file)), &[]).await;
        assert_eq!(
            (g.status, d.status),
            (200, 200),
            "{ident}{path}: {}",
            String::from_utf8_lossy(&g.body)
        );
        if path.ends_with(".json") {
            let (mut gj, mut dj) = (g.json(), d.json());
            let id = gj.as_object_mut().unwrap().remove(id_key).unwrap();
            dj.as_object_mut().unwrap().remove(id_key);
            assert_eq!(
                (gj["width"].clone(), gj["height"].clone()),
                (4096.into(), 3072.into())
            );
            assert_eq!(gj, dj, "{ident}: info.json differs from disk's");
            let decoded = match ident.contains("%3A") {
                true => format!("http://{gw}/{file}"),
                false => file.to_owned(),
            };
            assert_eq!(
                id,
                format!("http://{gw}/cantaloupe/iiif/{mount}/{}", echoed(&decoded)),
            );
        } else {
            assert!(
                g.body == d.body,
                "{ident}{path}: the bytes differ from disk"
            );
            assert_eq!(g.header("content-type"), d.header("content-type"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn islandora_url_shapes_serve_what_disk_serves() {
    let gw = gateway(&[]).await;
    for file in FILES {
        // Absolute: PHP urlencode of the file's public URL (the gateway's own), as Islandora's
        // OpenSeadragon formatter and manifests write it.
        let absolute = urlencode(&format!("http://{gw}/{file}"));
        assert!(absolute.contains("%3A%2F%2F"));
        for version in [ApiVersion::V2, ApiVersion::V3] {
            assert_same_as_disk(gw, version, &absolute, file).await;
        }
        // Relative (`use_relative_paths`): the site path without its leading slash.
        for version in [ApiVersion::V2, ApiVersion::V3] {
            assert_same_as_disk(gw, version, &urlencode(file), file).await;
        }
    }
    // The base URI redirects to info.json, with the gateway's public URL.
    let ident = urlencode(&format!("http://{gw}/{}", FILES[1]));
    let r = get(gw, &format!("/cantaloupe/iiif/2/{ident}"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location").unwrap(),
        format!(
            "http://{gw}/cantaloupe/iiif/2/{}/info.json",
            echoed(&format!("http://{gw}/{}", FILES[1]))
        )
    );
    // Manifests' full/full of this 12.6-megapixel image: scaled to ISLE's max_pixels
    // (10,000,000), not refused as Cantaloupe does.
    let ident = urlencode(&format!("http://{gw}/{}", FILES[0]));
    let r = get(
        gw,
        &format!("/cantaloupe/iiif/2/{ident}/full/full/0/default.jpg"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let px = r.image();
    let area = u64::from(px.width()) * u64::from(px.height());
    assert!(
        area <= 10_000_000 && area > 9_900_000,
        "{}x{}",
        px.width(),
        px.height()
    );
    assert!(
        (px.width() * 3).abs_diff(px.height() * 4) < 8,
        "the aspect ratio is kept"
    );
    // info.json advertises the limit.
    let info = get(gw, &format!("/cantaloupe/iiif/2/{ident}/info.json"), &[]).await;
    assert_eq!(info.json()["profile"][1]["maxArea"], 10_000_000);
    // A missing file is a 404, a URL of another site a 403, both with one line.
    let missing = urlencode(&format!("http://{gw}/sites/default/files/2024-05/none.tif"));
    let r = get(gw, &format!("/cantaloupe/iiif/2/{missing}/info.json"), &[]).await;
    assert_eq!(r.status, 404);
    let elsewhere = urlencode("https://elsewhere.example/sites/default/files/a.tif");
    let r = get(
        gw,
        &format!("/cantaloupe/iiif/2/{elsewhere}/info.json"),
        &[],
    )
    .await;
    assert_eq!(r.status, 403);
    // Paths of the site outside the file paths are refused too.
    let page = urlencode(&format!("http://{gw}/node/1"));
    let r = get(gw, &format!("/cantaloupe/iiif/2/{page}/info.json"), &[]).await;
    assert_eq!(r.status, 403);
}

/// Identifiers reach Drupal only under its file paths, however they are spelled; the caller's
/// credentials go to Drupal only, not to another allowed site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_reach_only_the_file_paths_and_credentials_only_drupal() {
    let files = env("TOWER_IIIF_FILES_URL");
    let gw = gateway(&[("GATEWAY_HTTP_ALLOW", &format!("{files}/files/"))]).await;
    let info = |id: &str| format!("/cantaloupe/iiif/2/{}/info.json", urlencode(id));
    for ok in [
        format!("https://{gw}/{}", FILES[1]), // the site's other scheme
        format!("http://{gw}/sites/default/files/2024-05/../2024-05/page1.jp2"),
        format!("/{}", FILES[1]), // a site path with its leading slash
    ] {
        let r = get(gw, &info(&ok), &[]).await;
        assert_eq!(r.status, 200, "{ok}: {}", String::from_utf8_lossy(&r.body));
    }
    let from = drupal_log_len();
    let mark = marker();
    for refused in [
        format!("http://{gw}/sites/default/files/../../{mark}"),
        format!("http://{gw}/sites/default/files/%2e%2e/%2e%2e/{mark}"),
        format!("http://{gw}@evil.example/sites/default/files/a.tif"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://{gw}/{mark}"),
    ] {
        let r = get(gw, &info(&refused), &[]).await;
        assert_eq!(
            r.status,
            403,
            "{refused}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // Site paths outside the file paths name no image.
    for nothing in [
        format!("sites/default/files/../../{mark}"),
        "//evil.example/sites/default/files/a.tif".to_owned(),
        mark.clone(),
    ] {
        let r = get(gw, &info(&nothing), &[]).await;
        assert_eq!(
            r.status,
            404,
            "{nothing}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert!(
        drupal_log(from).await.iter().all(|l| !l[1].contains(&mark)),
        "a refused identifier reached Drupal"
    );
    // Another allowed site serves its file, and sees no credential.
    let log = env("TOWER_IIIF_FILES_LOG");
    let before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    let creds = [
        ("Authorization", "Bearer test-token"),
        ("Cookie", "SSESStest=session-1"),
    ];
    let r = get(gw, &info(&format!("{files}/files/flat.jpg")), &creds).await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .skip(before)
        .filter(|l| l.contains(" /files/flat.jpg "))
        .collect();
    assert!(!lines.is_empty());
    // The log line's second quoted field is the Authorization header.
    assert!(
        lines.iter().all(|l| l.split('"').nth(3) == Some("-")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_files_need_the_callers_credentials_cache_hits_included() {
    // With the derivative cache in memory, and on disk as ISLE's settings put it.
    private_files(&[]).await;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/servers/tmp/gateway-derivative-cache");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    private_files(&[("CANTALOUPE_FILESYSTEMCACHE_PATHNAME", dir.to_str().unwrap())]).await;
    let stored = walk(&dir);
    assert!(!stored.is_empty(), "the derivatives were kept on disk");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match e.file_type().map(|t| t.is_dir()) {
            Ok(true) => out.extend(walk(&e.path())),
            Ok(false) => out.push(e.path()),
            Err(_) => {}
        }
    }
    out
}

async fn private_files(extra: &[(&str, &str)]) {
    let gw = gateway(extra).await;
    let ident = urlencode(&format!("http://{gw}/system/files/2024-05/private.tif"));
    let info = format!("/cantaloupe/iiif/2/{ident}/info.json");
    let tile = format!("/cantaloupe/iiif/2/{ident}/0,0,1024,1024/256,/0/default.jpg");
    let bearer = ("Authorization", "Bearer test-token");
    let session = ("Cookie", "has_js=1; SSESStest=session-1");

    // Anonymous: Drupal's 401 and its challenge; a wrong credential: 403.
    let r = get(gw, &info, &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"drupal\"")
    );
    assert_eq!(String::from_utf8_lossy(&r.body).trim().lines().count(), 1);
    let r = get(gw, &info, &[("Authorization", "Bearer stolen")]).await;
    assert_eq!(r.status, 403);
    let r = get(gw, &tile, &[("Cookie", "SSESStest=expired")]).await;
    assert_eq!(r.status, 403);

    // The JWT Drupal sends server to server, and a viewer's session cookie: 200, private.
    let from = drupal_log_len();
    let r = get(gw, &info, &[bearer]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["width"], 4096);
    let r = get(gw, &tile, &[session]).await;
    assert_eq!(r.status, 200);
    assert_eq!((r.image().width(), r.image().height()), (256, 256));
    let cache_control = r.header("cache-control").unwrap();
    assert!(cache_control.contains("private"), "{cache_control}");
    // The credential reached Drupal with each fetch, asked for as at the public site (Drupal
    // names its session cookie after the host: the stand-in takes the session only so).
    let fetches = drupal_lines(from, "/system/files/2024-05/private.tif").await;
    assert!(
        fetches.iter().all(|l| (l[5] == "Bearer test-token"
            || l[6].contains("SSESStest=session-1"))
            && l[12] == gw.to_string()
            && l[8] == gw.to_string()
            && l[9] == "http"),
        "{fetches:?}"
    );
    // Several cookie fields (HTTP/2 sends them so) reach Drupal as one.
    let from = drupal_log_len();
    let tile2 = tile.replace("0,0,1024,1024", "1024,0,1024,1024");
    let r = get(
        gw,
        &tile2,
        &[("Cookie", "has_js=0"), ("Cookie", "SSESStest=session-1")],
    )
    .await;
    assert_eq!(r.status, 200);
    let fetches = drupal_lines(from, "/system/files/2024-05/private.tif").await;
    assert!(
        fetches
            .iter()
            .all(|l| l[6] == "has_js=0; SSESStest=session-1"),
        "{fetches:?}"
    );

    // The derivative is cached now; an anonymous caller still gets 401, a wrong one 403.
    let r = get(gw, &tile, &[session]).await;
    assert_eq!(r.status, 200);
    let r = get(gw, &tile, &[]).await;
    assert_eq!(r.status, 401);
    let r = get(gw, &tile, &[("Authorization", "Bearer stolen")]).await;
    assert_eq!(r.status, 403);
    // The public copy of the same picture is public.
    let public = urlencode(&format!("http://{gw}/{}", FILES[0]));
    let r = get(gw, &format!("/cantaloupe/iiif/2/{public}/info.json"), &[]).await;
    assert_eq!(r.status, 200);
}

/// Drupal's answers stream through the gateway: a file Drupal sends slowly (512 KiB/s after
/// its first 128 KiB) starts arriving long before Drupal has sent all of it; a proxy that
/// buffered the answer would hold it until the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_drupal_answers_stream_through_the_gateway() {
    let gw = gateway(&[]).await;
    let mut s = TcpStream::connect(gw).await.unwrap();
    let head =
        format!("GET /slow/2024-05/page1.jp2 HTTP/1.1\r\nHost: {gw}\r\nConnection: close\r\n\r\n");
    let start = std::time::Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let (mut got, mut first) = (0usize, None);
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got += n;
        if first.is_none() && got >= 64 << 10 {
            first = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    let first = first.expect("64 KiB at least");
    let size = std::fs::metadata(drupal_root().join("sites/default/files/2024-05/page1.jp2"))
        .unwrap()
        .len() as usize;
    assert!(got > size, "{got} bytes for a file of {size}");
    assert!(
        total > Duration::from_secs(2),
        "{total:?}: Drupal's rate limit"
    );
    assert!(
        first * 4 < total,
        "the first 64 KiB after {first:?} of {total:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drupal_pages_files_and_forms_pass_through_unchanged() {
    let gw = gateway(&[]).await;
    let drupal: SocketAddr = env("TOWER_IIIF_DRUPAL_URL")
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    // The front page and the node page, as Drupal sends them.
    for path in [
        "/",
        "/node/1",
        "/libraries/openseadragon/openseadragon.min.js",
        "/nowhere",
    ] {
        let (g, d) = (get(gw, path, &[]).await, get(drupal, path, &[]).await);
        assert_eq!((g.status, &g.body), (d.status, &d.body), "{path}");
        assert_eq!(g.header("content-type"), d.header("content-type"), "{path}");
    }
    // A 12 MB file, whole and by range.
    let file = "/sites/default/files/2024-05/page%201.tif";
    let bytes =
        std::fs::read(drupal_root().join("sites/default/files/2024-05/page 1.tif")).unwrap();
    let g = get(gw, file, &[]).await;
    assert_eq!(g.status, 200);
    assert!(
        g.body == bytes,
        "the file differs ({} of {} bytes)",
        g.body.len(),
        bytes.len()
    );
    let g = get(gw, file, &[("Range", "bytes=1000-1999")]).await;
    assert_eq!(g.status, 206);
    assert_eq!(
        g.header("content-range"),
        Some(format!("bytes 1000-1999/{}", bytes.len()).as_str())
    );
    assert!(g.body == bytes[1000..2000]);

    // A login form: the body reaches Drupal byte for byte; its 303 and both cookies come back
    // unchanged; hop-by-hop headers stop at the gateway; X-Forwarded-* are set.
    let body: &[u8] = b"name=tester&pass=p%C3%A4ss+word&form_id=user_login_form&op=Log+in";
    let (mark_g, mark_d) = (marker(), marker());
    let head = |mark: &str| {
        format!(
            "POST /user/login?destination=/node/1&{mark} HTTP/1.1\r\nHost: {gw}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close, X-Secret\r\nX-Secret: hop\r\n\r\n",
            body.len()
        )
    };
    let from = drupal_log_len();
    let (g, d) = (
        send(gw, &head(&mark_g), body).await,
        send(drupal, &head(&mark_d), body).await,
    );
    assert_eq!((g.status, d.status), (303, 303));
    assert_eq!(g.header("location"), Some("/user/1"));
    let cookies = |r: &Reply| -> Vec<String> {
        r.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(cookies(&g), cookies(&d));
    assert_eq!(cookies(&g).len(), 2);
    let via_gateway = &drupal_lines(from, &mark_g).await[0];
    let direct = &drupal_lines(from, &mark_d).await[0];
    assert_eq!(via_gateway[0], "POST");
    assert_eq!(
        via_gateway[1],
        format!("/user/login?destination=/node/1&{mark_g}")
    );
    assert_eq!(via_gateway[11], String::from_utf8(body.to_vec()).unwrap());
    assert_eq!(via_gateway[7], "127.0.0.1"); // X-Forwarded-For
    assert_eq!(via_gateway[8], gw.to_string()); // X-Forwarded-Host
    assert_eq!(via_gateway[9], "http"); // X-Forwarded-Proto
    assert_eq!(via_gateway[10], ""); // X-Secret, named by Connection, was dropped
    assert_eq!(direct[10], "hop"); // (sent straight to Drupal, it arrives)

    // Encoded characters in a path reach Drupal as they were sent.
    let from = drupal_log_len();
    let path = format!("/search%2Fall-{}?q=a+b%26c", marker());
    let r = get(gw, &path, &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(drupal_lines(from, &path).await[0][1], path);

    // A client's own forwarding headers are replaced; a trusted proxy's are kept, the proxy
    // appended to X-Forwarded-For.
    let forged = [
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
    ];
    let from = drupal_log_len();
    let path = format!("/?{}", marker());
    get(gw, &path, &forged).await;
    let line = &drupal_lines(from, &path).await[0];
    assert_eq!(
        (&*line[7], &*line[8], &*line[9]),
        ("127.0.0.1", &*gw.to_string(), "http")
    );
    let behind = gateway(&[("GATEWAY_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let path = format!("/?{}", marker());
    get(behind, &path, &forged).await;
    let line = &drupal_lines(from, &path).await[0];
    assert_eq!(
        (&*line[7], &*line[8], &*line[9]),
        ("6.6.6.6, 127.0.0.1", "evil.example", "https")
    );

    // Drupal down: 502 with one line, and the IIIF side answers for itself.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let down = gateway(&[("GATEWAY_DRUPAL_URL", &format!("http://{closed_addr}"))]).await;
    let r = get(down, "/", &[]).await;
    assert_eq!(r.status, 502);
    assert_eq!(String::from_utf8_lossy(&r.body).lines().count(), 1);
    let ident = urlencode(&format!("http://{down}/{}", FILES[0]));
    let r = get(down, &format!("/cantaloupe/iiif/2/{ident}/info.json"), &[]).await;
    assert_eq!(r.status, 502);
}

#[test]
fn settings_come_from_isle_variables_and_flags() {
    let vars = HashMap::from([
        (
            "DRUPAL_DEFAULT_CANTALOUPE_URL",
            "https://site.example/cantaloupe/iiif/2",
        ),
        ("CANTALOUPE_MAX_PIXELS", "5000000"),
        (
            "GATEWAY_FORWARD_HEADERS",
            "Authorization, Cookie, X-Islandora",
        ),
        ("GATEWAY_TRUSTED_PROXIES", "172.16.0.0/12,10.0.0.0/8"),
    ]);
    let env = |k: &str| vars.get(k).map(|v| v.to_string());
    let args = ["--max-pixels", "0", "--trusted-proxy", "192.168.0.0/16"].map(String::from);
    let config = gateway_app::parse(env, args.into_iter()).unwrap();
    assert_eq!(config.max_pixels, 0);
    assert_eq!(
        config.forward_headers,
        ["Authorization", "Cookie", "X-Islandora"]
    );
    assert_eq!(config.trusted_proxies, ["192.168.0.0/16"]);
    assert_eq!(config.drupal, "http://drupal:80");
    let (origin, mount) = gateway_app::public_site(&config).unwrap();
    assert_eq!(
        (origin.as_str(), mount.as_str()),
        ("https://site.example/", "/cantaloupe/iiif")
    );
    // Mistakes are named.
    let bad = gateway_app::parse(
        |k| (k == "CANTALOUPE_MAX_PIXELS").then(|| "ten".into()),
        std::iter::empty(),
    );
    assert!(bad.unwrap_err().starts_with("CANTALOUPE_MAX_PIXELS"));
    let config = gateway_app::parse(
        |_| None,
        ["--cantaloupe-url", "https://s/iiif/3"]
            .map(String::from)
            .into_iter(),
    )
    .unwrap();
    assert!(gateway_app::app(&config).unwrap_err().contains("/iiif/2"));
}

/// OpenSeadragon on Drupal's node page, in headless Chromium, through the gateway: the page
/// comes from Drupal, info.json and every tile from the gateway, all 200 JPEGs; the home view
/// and the deepest zoom are drawn, with the picture's colours where they belong (its blue
/// channel rises from left to right).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openseadragon_in_chromium_through_the_gateway() {
    let gw = gateway(&[]).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/osd.cjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(format!("http://{gw}/node/1"))
        .env("TOWER_IIIF_PLAYWRIGHT", env("TOWER_IIIF_PLAYWRIGHT"))
        .env("TOWER_IIIF_CHROMIUM", env("TOWER_IIIF_CHROMIUM"))
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), out)
        .await
        .expect("the browser run ends within 3 minutes")
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], serde_json::json!([]));
    let events = &report["events"];
    assert_eq!(
        (events["open"].as_u64(), events["failed"].as_u64()),
        (Some(1), Some(0))
    );
    let responses = report["iiif"].as_array().unwrap();
    let tiles: Vec<_> = responses
        .iter()
        .filter(|r| r["url"].as_str().unwrap().ends_with("/default.jpg"))
        .collect();
    assert!(
        responses.iter().all(|r| r["status"] == 200),
        "{responses:?}"
    );
    assert!(
        responses
            .iter()
            .any(|r| r["url"].as_str().unwrap().ends_with("/info.json")),
        "{responses:?}"
    );
    assert!(tiles.iter().all(|r| r["type"] == "image/jpeg"));
    // The deepest zoom asked for full-resolution tiles: a region as wide as its size.
    let full_resolution = |url: &str| {
        let parts: Vec<&str> = url.rsplit('/').collect(); // default.jpg, 0, size, region, ..
        let region_w = parts[3].split(',').nth(2);
        region_w.is_some() && region_w == parts[2].split(',').next()
    };
    assert!(
        tiles
            .iter()
            .any(|r| full_resolution(r["url"].as_str().unwrap())),
        "{tiles:?}"
    );
    assert!(events["loaded"].as_u64().unwrap() > report["homeTiles"].as_u64().unwrap());
    let (left, right) = (&report["home"]["left"], &report["home"]["right"]);
    let blue = |v: &serde_json::Value| v[2].as_f64().unwrap();
    assert!(
        blue(right) > blue(left) + 100.0,
        "left {left}, right {right}"
    );
}
