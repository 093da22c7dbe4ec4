//! The remote sources end to end, over real sockets, against the real servers that
//! `scripts/servers.sh start` runs on 127.0.0.1 (the test command starts them): Garage (S3)
//! behind a logging nginx, nginx serving files (with Range, a bearer-protected tree, a tree that
//! ignores Range, redirects and a second origin), and small in-test servers for the faults a
//! real server cannot be made to produce. The servers' access logs count what each test
//! fetched.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::servers::{env, files_dir, fixture, log_len, logged, upload};
use common::{Reply, request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::Layer;
use tower_iiif::IiifService;
use tower_iiif::cache::MemoryCache;
use tower_iiif::cache_control::{CacheControl, SetCacheControlLayer};
use tower_iiif::source::{
    FsSource, HttpSource, KeyTemplate, Keyed, ObjectStoreSource, Source, SourceCache,
};

/// The S3 source as `--s3 s3://iiif/PREFIX` makes it, through the logging proxy.
fn s3_source(prefix: &str, chunk: u64) -> Keyed<ObjectStoreSource> {
    env("AWS_REGION");
    let s3 = ObjectStoreSource::s3(
        &env("TOWER_IIIF_S3_BUCKET"),
        Some(&env("TOWER_IIIF_S3_ENDPOINT")),
    )
    .unwrap()
    .chunk_size(chunk);
    Keyed::new(s3, KeyTemplate::prefix(prefix))
}

/// Serve `svc` on a loopback port, as a host app would (axum, `nest_service`).
async fn serve<S: Source>(svc: IiifService<S>) -> SocketAddr {
    let app = axum::Router::new().nest_service("/iiif/3", svc);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[]).await
}

/// The requests both services are compared on: info.json, tiles at several levels, a region,
/// a thumbnail, a rotation.
const PATHS: &[&str] = &[
    "/info.json",
    "/0,0,256,256/256,/0/default.jpg",
    "/1024,768,512,512/256,/0/default.jpg",
    "/2048,2048,1024,1024/256,/0/default.png",
    "/full/!400,400/0/default.jpg",
    "/full/256,/90/gray.png",
    "/3000,100,600,400/max/0/default.jpg",
];

/// Every request answers the same over `remote` as over the same files from disk: statuses,
/// info.json (but its `id`) and image bytes.
async fn assert_same_as_disk(remote: SocketAddr, remote_id: &str, file: &str) {
    let disk = serve(IiifService::new(FsSource::new(files_dir()).unwrap())).await;
    for path in PATHS {
        let r = get(remote, &format!("/iiif/3/{remote_id}{path}")).await;
        let d = get(disk, &format!("/iiif/3/{file}{path}")).await;
        assert_eq!(
            r.status,
            200,
            "{remote_id}{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(d.status, 200, "{file}{path}");
        if path.ends_with(".json") {
            let (mut rj, mut dj) = (r.json(), d.json());
            rj.as_object_mut().unwrap().remove("id");
            dj.as_object_mut().unwrap().remove("id");
            assert_eq!(rj, dj, "{file}");
            assert_eq!(rj["width"], 4096);
        } else {
            assert!(
                r.body == d.body,
                "{remote_id}{path}: the bytes differ from disk"
            );
            let px = r.image();
            assert!(px.width() > 0 && px.height() > 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_serves_what_disk_serves() {
    for file in ["pyr.tif", "tiled.jp2", "flat.jpg"] {
        upload(&format!("same/{file}"), fixture(file)).await;
        let addr = serve(IiifService::new(s3_source("same/", 2 << 20))).await;
        assert_same_as_disk(addr, file, file).await;
    }
    let addr = serve(IiifService::new(s3_source("same/", 2 << 20))).await;
    let missing = get(addr, "/iiif/3/nothing.tif/info.json").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        String::from_utf8_lossy(&missing.body).trim(),
        "image not found"
    );
}

/// A file read whole (a flat JPEG) is fetched from S3 once into the source cache: the next
/// render reads the local copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_files_read_whole_go_through_the_source_cache() {
    let prefix = "source-cache/";
    upload(&format!("{prefix}flat.jpg"), fixture("flat.jpg")).await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/servers/tmp/s3-source-cache");
    let _ = std::fs::remove_dir_all(&dir);
    let cache = SourceCache::new(&dir, 1 << 30).unwrap();
    let s3 = ObjectStoreSource::s3(
        &env("TOWER_IIIF_S3_BUCKET"),
        Some(&env("TOWER_IIIF_S3_ENDPOINT")),
    )
    .unwrap()
    .source_cache(cache.clone());
    let addr = serve(IiifService::new(Keyed::new(
        s3,
        KeyTemplate::prefix(prefix),
    )))
    .await;
    let size = fixture("flat.jpg").len() as u64;
    let mut whole_reads = Vec::new();
    for region in ["0,0,1000,1000", "2000,1000,1000,1000"] {
        let from = log_len("TOWER_IIIF_S3_LOG");
        let r = get(
            addr,
            &format!("/iiif/3/flat.jpg/{region}/200,/0/default.jpg"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.image().width(), 200);
        let lines = logged("TOWER_IIIF_S3_LOG", from, &format!("/{prefix}flat.jpg")).await;
        whole_reads.push(lines.iter().filter(|l| l.bytes == size).count());
    }
    assert_eq!(
        whole_reads,
        vec![1, 0],
        "fetched whole once, then read from the copy"
    );
    assert!(cache.used_bytes() >= size);
}

/// A tile of a tiled file fetches its ranges, not the file: counted at the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tile_fetches_only_its_ranges_from_s3() {
    for (file, tile) in [
        ("pyr.tif", "/1024,1024,256,256/256,/0/default.jpg"),
        ("tiled.jp2", "/1024,1024,512,512/512,/0/default.jpg"),
    ] {
        let prefix = format!("ranges-{}/", file.replace('.', "-"));
        upload(&format!("{prefix}{file}"), fixture(file)).await;
        let size = fixture(file).len() as u64;
        let from = log_len("TOWER_IIIF_S3_LOG");
        let addr = serve(IiifService::new(s3_source(&prefix, 64 << 10))).await;
        let r = get(addr, &format!("/iiif/3/{file}/info.json")).await;
        assert_eq!(r.status, 200);
        let r = get(addr, &format!("/iiif/3/{file}{tile}")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.image().width(), if file == "pyr.tif" { 256 } else { 512 });
        let lines = logged("TOWER_IIIF_S3_LOG", from, &prefix).await;
        let gets: Vec<_> = lines.iter().filter(|l| l.method == "GET").collect();
        let bytes: u64 = gets.iter().map(|l| l.bytes).sum();
        assert!(
            !gets.is_empty() && gets.iter().all(|l| l.status == 206),
            "{lines:?}"
        );
        assert!(
            bytes * 5 < size,
            "{file}: {bytes} bytes fetched of {size} for a header and one tile: {lines:?}"
        );
    }
}

/// Concurrent first requests for one object share one HEAD; a viewer's burst of tiles on a
/// pyramid level is read in a few large ranges (read ahead), no more bytes than the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_shares_its_head_and_reads_a_level_ahead() {
    let prefix = "burst/";
    upload(&format!("{prefix}pyr.tif"), fixture("pyr.tif")).await;
    // The size, from another instance: this one starts cold.
    let other = serve(IiifService::new(s3_source(prefix, 64 << 10))).await;
    let info = get(other, "/iiif/3/pyr.tif/info.json").await;
    assert_eq!(info.status, 200);
    let from = log_len("TOWER_IIIF_S3_LOG");
    // The metadata kept past the test's length, however slow the machine: one HEAD.
    let s3 = ObjectStoreSource::s3(
        &env("TOWER_IIIF_S3_BUCKET"),
        Some(&env("TOWER_IIIF_S3_ENDPOINT")),
    )
    .unwrap()
    .metadata_ttl(Duration::from_secs(600));
    let addr = serve(IiifService::new(Keyed::new(
        s3,
        KeyTemplate::prefix(prefix),
    )))
    .await;
    // Every 256 tile of the full-size level, 8 at once.
    let doc: serde_json::Value = serde_json::from_slice(&info.body).unwrap();
    let (w, h) = (
        doc["width"].as_u64().unwrap(),
        doc["height"].as_u64().unwrap(),
    );
    let mut paths = Vec::new();
    for y in (0..h).step_by(256) {
        for x in (0..w).step_by(256) {
            let (tw, th) = ((w - x).min(256), (h - y).min(256));
            paths.push(format!(
                "/iiif/3/pyr.tif/{x},{y},{tw},{th}/{tw},/0/default.jpg"
            ));
        }
    }
    assert!(paths.len() >= 16, "{} tiles", paths.len());
    for batch in paths.chunks(8) {
        let replies = futures_util::future::join_all(batch.iter().map(|p| get(addr, p))).await;
        for r in replies {
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
    }
    let lines = logged("TOWER_IIIF_S3_LOG", from, &format!("/{prefix}pyr.tif")).await;
    let heads = lines.iter().filter(|l| l.method == "HEAD").count();
    let gets: Vec<_> = lines.iter().filter(|l| l.method == "GET").collect();
    assert_eq!(heads, 1, "{lines:?}");
    // Fewer requests than tiles, and no more bytes than the file.
    let bytes: u64 = gets.iter().map(|l| l.bytes).sum();
    assert!(
        gets.len() * 4 < paths.len(),
        "{} GETs for {} tiles",
        gets.len(),
        paths.len()
    );
    assert!(bytes <= fixture("pyr.tif").len() as u64, "{bytes} bytes");
}

fn http_source(prefixes: &[&str]) -> tower_iiif::source::HttpSourceBuilder {
    let mut b = HttpSource::builder().timeouts(Duration::from_secs(2), Duration::from_secs(2));
    for p in prefixes {
        b = b.allow(p);
    }
    b
}

fn url_id(url: &str) -> String {
    percent_encode(url)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_serves_what_disk_serves_by_range() {
    let files = env("TOWER_IIIF_FILES_URL");
    let source = http_source(&[&format!("{files}/files/")]).build().unwrap();
    let addr = serve(IiifService::new(source)).await;
    for file in ["pyr.tif", "tiled.jp2", "flat.jpg"] {
        let url = format!("{files}/files/{file}");
        assert_same_as_disk(addr, &url_id(&url), file).await;
    }
    // Tiled files were read by range only.
    let from = log_len("TOWER_IIIF_FILES_LOG");
    let source = http_source(&[&format!("{files}/files/")])
        .chunk_size(64 << 10)
        .build()
        .unwrap();
    let addr = serve(IiifService::new(source)).await;
    let id = url_id(&format!("{files}/files/pyr.tif"));
    let r = get(
        addr,
        &format!("/iiif/3/{id}/2048,1024,256,256/256,/0/default.jpg"),
    )
    .await;
    assert_eq!(r.status, 200);
    let lines = logged("TOWER_IIIF_FILES_LOG", from, "/files/pyr.tif").await;
    assert!(lines.iter().any(|l| l.method == "HEAD"), "{lines:?}");
    assert!(
        lines
            .iter()
            .filter(|l| l.method == "GET")
            .all(|l| l.status == 206),
        "{lines:?}"
    );
    // Opening the pyramid reads its last eighth at once (at most 2 MiB: where the small levels'
    // IFDs are, since libvips writes each IFD after its level's tiles), from the 64 KiB chunk
    // it starts in; the rest, the header, the first IFD and the tile, is less than another eighth.
    let len = fixture("pyr.tif").len() as u64;
    let tail = (len / 8).min(2 << 20);
    let (tails, rest): (Vec<_>, Vec<_>) = lines
        .iter()
        .partition(|l| (tail..tail + (64 << 10)).contains(&l.bytes));
    assert_eq!(tails.len(), 1, "{tail}: {lines:?}");
    let bytes: u64 = rest.iter().map(|l| l.bytes).sum();
    assert!(bytes * 8 < len, "{bytes}: {lines:?}");
    // A URL template: the identifier is the file's name under the site.
    let template = KeyTemplate::new(&format!("{files}/files/{{id}}")).unwrap();
    let source = http_source(&[&format!("{files}/files/")]).build().unwrap();
    let by_name = serve(IiifService::new(Keyed::new(source, template))).await;
    let info = get(by_name, "/iiif/3/tiled.jp2/info.json").await;
    assert_eq!(
        (info.status, info.json()["width"].clone()),
        (200, 4096.into())
    );
    let outside = get(by_name, "/iiif/3/..%2Fprivate%2Fpyr.tif/info.json").await;
    assert_eq!(outside.status, 403);
    let missing = get(
        addr,
        &format!(
            "/iiif/3/{}/info.json",
            url_id(&format!("{files}/files/no.tif"))
        ),
    )
    .await;
    assert_eq!(missing.status, 404);
}

/// Refused before any request: outside the allow-list, a name that resolves to loopback, a
/// metadata address; and redirects to a private or metadata address, checked at each hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_urls_and_redirects_make_no_request() {
    let files = env("TOWER_IIIF_FILES_URL");
    let port = files.rsplit(':').next().unwrap().to_owned();
    let by_name = format!("http://localhost:{port}/files/");
    let source = http_source(&[&format!("{files}/files/"), &format!("{files}/redirect/")])
        .build()
        .unwrap();
    let addr = serve(IiifService::new(source)).await;
    // Only a name on this one's list: its loopback address is not named by any entry.
    let by_name_only = serve(IiifService::new(http_source(&[&by_name]).build().unwrap())).await;
    let from = log_len("TOWER_IIIF_FILES_LOG");
    let r = get(
        by_name_only,
        &format!(
            "/iiif/3/{}/info.json",
            url_id(&format!("{by_name}refused.jpg"))
        ),
    )
    .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    for url in [
        format!("{files}/private/refused.tif"), // not allow-listed
        "http://169.254.169.254/latest/meta-data/".into(), // cloud metadata
        "http://10.0.0.1/files/pyr.tif".into(), // private
        format!("{files}/files/../private/refused.tif"), // normalised out of the prefix
    ] {
        let r = get(addr, &format!("/iiif/3/{}/info.json", url_id(&url))).await;
        assert_eq!(r.status, 403, "{url}: {}", String::from_utf8_lossy(&r.body));
    }
    let lines = logged("TOWER_IIIF_FILES_LOG", from, "refused").await;
    assert!(lines.is_empty(), "{lines:?}");
    let other_from = log_len("TOWER_IIIF_OTHER_LOG");
    for (path, status) in [
        ("/redirect/private-address", 403),
        ("/redirect/metadata", 403),
        ("/redirect/other-origin-refused", 403), // the other origin is not allow-listed here
        ("/redirect/loop", 502),
    ] {
        let from = log_len("TOWER_IIIF_FILES_LOG");
        let r = get(
            addr,
            &format!("/iiif/3/{}/info.json", url_id(&format!("{files}{path}"))),
        )
        .await;
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        // The first hop was asked (its redirect is what is refused), nothing after it.
        let hops = logged("TOWER_IIIF_FILES_LOG", from, path).await;
        let expected = if path.ends_with("loop") { 6 } else { 1 }; // 5 redirects followed
        assert_eq!(hops.len(), expected, "{path}: {hops:?}");
    }
    assert!(
        logged("TOWER_IIIF_OTHER_LOG", other_from, "refused")
            .await
            .is_empty()
    );
}

/// Credentials passed through: a protected file is 401 (with the upstream's challenge) without
/// the token and 200 with it; a derivative cached for the authorized caller is still refused
/// to an anonymous one; a redirect to another origin does not carry the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_pass_through_and_cache_hits_are_reauthorized() {
    let files = env("TOWER_IIIF_FILES_URL");
    let other = env("TOWER_IIIF_OTHER_URL");
    let source = http_source(&[
        &format!("{files}/private/"),
        &format!("{files}/redirect/"),
        &format!("{other}/files/"),
    ])
    .forward_header("authorization")
    .build()
    .unwrap();
    // With Cache-Control as a site sets it: responses that depend on the caller are private.
    let svc = IiifService::new(source).derivative_cache(MemoryCache::new(64 << 20));
    let svc = SetCacheControlLayer::new()
        .both(CacheControl::default())
        .layer(svc);
    let app = axum::Router::new().nest_service("/iiif/3", svc);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let id = url_id(&format!("{files}/private/pyr.tif"));
    let tile = format!("/iiif/3/{id}/0,0,512,512/256,/0/default.jpg");
    let token = [("Authorization", "Bearer test-token")];
    let wrong = [("Authorization", "Bearer nope")];

    let anon = get(addr, &format!("/iiif/3/{id}/info.json")).await;
    assert_eq!(anon.status, 401);
    assert_eq!(
        anon.header("www-authenticate"),
        Some("Bearer realm=\"files\"")
    );
    let ok = request(addr, "GET", &format!("/iiif/3/{id}/info.json"), &token).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["width"], 4096);
    let ok = request(addr, "GET", &tile, &token).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.image().width(), 256);
    let cc = ok.header("cache-control").unwrap();
    assert!(cc.contains("private") && !cc.contains("public"), "{cc}");
    // The derivative is cached now; the anonymous and the wrong caller are still refused.
    assert_eq!(get(addr, &tile).await.status, 401);
    assert_eq!(request(addr, "GET", &tile, &wrong).await.status, 401);
    let again = request(addr, "GET", &tile, &token).await;
    assert_eq!((again.status, again.body == ok.body), (200, true));

    let from = log_len("TOWER_IIIF_OTHER_LOG");
    let id = url_id(&format!("{files}/redirect/other-origin"));
    let r = request(addr, "GET", &format!("/iiif/3/{id}/info.json"), &token).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let lines = logged("TOWER_IIIF_OTHER_LOG", from, "/files/flat.jpg").await;
    assert!(!lines.is_empty());
    assert!(
        lines.iter().all(|l| l.auth == "-"),
        "the token crossed origins: {lines:?}"
    );
}

/// A server that ignores Range: the object is read whole, once per version with a source
/// cache, and answers as from disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_ignored_reads_whole_once_into_the_source_cache() {
    let files = env("TOWER_IIIF_FILES_URL");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/servers/tmp/source-cache");
    let _ = std::fs::remove_dir_all(&dir);
    let cache = SourceCache::new(&dir, 1 << 30).unwrap();
    let source = http_source(&[&format!("{files}/norange/")])
        .source_cache(cache.clone())
        .build()
        .unwrap();
    let addr = serve(IiifService::new(source)).await;
    let from = log_len("TOWER_IIIF_FILES_LOG");
    let id = url_id(&format!("{files}/norange/pyr.tif"));
    let disk = serve(IiifService::new(FsSource::new(files_dir()).unwrap())).await;
    for tile in [
        "/0,0,256,256/256,/0/default.jpg",
        "/2048,2048,512,512/256,/0/default.jpg",
    ] {
        let r = get(addr, &format!("/iiif/3/{id}{tile}")).await;
        let d = get(disk, &format!("/iiif/3/pyr.tif{tile}")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.body == d.body);
    }
    let lines = logged("TOWER_IIIF_FILES_LOG", from, "/norange/pyr.tif").await;
    let whole: Vec<_> = lines
        .iter()
        .filter(|l| l.method == "GET" && l.status == 200)
        .collect();
    assert_eq!(whole.len(), 1, "{lines:?}");
    assert!(cache.used_bytes() >= fixture("pyr.tif").len() as u64);
}

/// A one-shot fault server: each connection gets `answer` (raw bytes, after `delay`), or is
/// closed at once when `answer` is empty.
async fn fault_server(answer: &'static [u8], delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                if !answer.is_empty() {
                    let _ = stream.write_all(answer).await;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// Each fault gives its documented status with a one-line message, and the service goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_give_their_statuses() {
    let files = env("TOWER_IIIF_FILES_URL");
    let cases: Vec<(&'static [u8], Duration, u16)> = vec![
        (b"", Duration::ZERO, 502), // reset
        (
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
            Duration::ZERO,
            502,
        ),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", Duration::from_secs(5), 504), // slow
        (
            b"HTTP/1.1 206 Partial Content\r\ncontent-length: 4\r\ncontent-range: bytes 0-3/100\r\n\r\nII*\0",
            Duration::ZERO,
            502,
        ), // a HEAD-less server whose Content-Range disagrees with what was asked
        (b"HTTP/1.1 200 OK\r\n\r\n", Duration::ZERO, 502), // no length
        (b"garbage\r\n\r\n", Duration::ZERO, 502),
    ];
    let mut allowed = vec![format!("{files}/files/")];
    let mut servers = Vec::new();
    for (answer, delay, status) in cases {
        let addr = fault_server(answer, delay).await;
        allowed.push(format!("http://{addr}/"));
        servers.push((addr, status));
    }
    let prefixes: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let source = http_source(&prefixes).build().unwrap();
    let svc = serve(IiifService::new(source)).await;
    for (addr, status) in servers {
        let id = url_id(&format!("http://{addr}/a.tif"));
        let r = get(svc, &format!("/iiif/3/{id}/full/100,/0/default.jpg")).await;
        assert_eq!(
            r.status,
            status,
            "{addr}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let text = String::from_utf8(r.body).unwrap();
        assert_eq!(text.trim_end().lines().count(), 1, "{text:?}");
        assert!(
            !text.contains("Error {") && !text.contains("kind:"),
            "{text:?}"
        );
    }
    let good = get(
        svc,
        &format!(
            "/iiif/3/{}/info.json",
            url_id(&format!("{files}/files/flat.jpg"))
        ),
    )
    .await;
    assert_eq!(good.status, 200);
}
