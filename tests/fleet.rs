//! Several instances of the `serve` example sharing one cache tier, over real sockets, against
//! the real servers of `scripts/servers.sh start` (Garage for the images and the S3 tier, Redis
//! for the Redis tier): a derivative rendered by one instance is a hit in another (which reads
//! nothing of the image but its metadata), a purge through one instance's admin route is a
//! miss in the other, entries expire, entries written during a purge stay purgeable, and the
//! admin, metrics and health routes answer.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::servers::{env, fixture, log_len, logged, upload};
use common::{Reply, request};
use tokio::net::TcpListener;

#[allow(dead_code)]
#[path = "../examples/serve/app.rs"]
mod serve_app;

#[derive(Clone, Copy, Debug)]
enum Tier {
    Redis,
    S3,
}

/// The arguments of one instance of a fleet reading `s3://iiif/{prefix}` and sharing `tier`.
fn args(prefix: &str, tier: Tier, ttl: u64) -> serve_app::Args {
    let bucket = env("TOWER_IIIF_S3_BUCKET");
    let samples = std::env::temp_dir().join(format!("tower-iiif-fleet-{}", std::process::id()));
    let mut args = serve_app::Args {
        samples,
        s3: Some((bucket.clone(), prefix.to_owned())),
        s3_endpoint: Some(env("TOWER_IIIF_S3_ENDPOINT")),
        cache_ttl: ttl,
        admin_token: Some("admin-secret".into()),
        ..Default::default()
    };
    match tier {
        // Keys apart per test: a test's purge-everything must not touch another's entries.
        Tier::Redis => args.cache_redis = Some(env("TOWER_IIIF_REDIS_URL")),
        Tier::S3 => args.cache_s3 = Some((bucket, format!("cache-{}", prefix))),
    }
    args
}

async fn instance(args: &serve_app::Args) -> SocketAddr {
    let router = serve_app::app(args).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_app::serve(listener, router, Default::default()));
    addr
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[]).await
}

/// A region of image `id` that is rendered (not a stored tile, which is sent as it is).
fn tile(id: &str) -> String {
    format!("/iiif/3/{id}/1024,1024,600,500/200,/0/default.jpg")
}

/// Upload the pyramidal TIFF as `{prefix}{id}`. Each test has an identifier of its own: a purge
/// by identifier reaches every prefix.
async fn image(prefix: &str, id: &str) {
    upload(&format!("{prefix}{id}"), fixture("pyr.tif")).await;
}

/// The S3 requests (method, status) for `prefix` while `f` ran.
async fn s3_requests(
    prefix: &str,
    f: impl std::future::Future<Output = Reply>,
) -> (Reply, Vec<String>) {
    let (reply, lines) = s3_log(prefix, f).await;
    let lines = lines
        .into_iter()
        .map(|l| format!("{} {}", l.method, l.status))
        .collect();
    (reply, lines)
}

/// The S3 log lines for `prefix` while `f` ran.
async fn s3_log(
    prefix: &str,
    f: impl std::future::Future<Output = Reply>,
) -> (Reply, Vec<common::servers::Logged>) {
    let from = log_len("TOWER_IIIF_S3_LOG");
    let reply = f.await;
    (
        reply,
        logged("TOWER_IIIF_S3_LOG", from, &format!("/{prefix}")).await,
    )
}

/// `path` through `addr` renders an image `width` wide, reading the file from S3 (some GET)
/// without opening it (no read at byte 0, where a file's header and structure begin).
async fn renders_without_reading_the_structure(
    addr: SocketAddr,
    prefix: &str,
    path: &str,
    width: u32,
) {
    let (reply, reads) = s3_log(prefix, get(addr, path)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.image().width(), width);
    assert!(reads.iter().any(|l| l.method == "GET"), "{path}: {reads:?}");
    assert!(
        reads.iter().all(|l| !l.range.starts_with("bytes=0-")),
        "{path}: {reads:?}"
    );
}

async fn shared_hits_and_purges_across_instances(tier: Tier) {
    let prefix = format!("fleet-{tier:?}/").to_lowercase();
    let id = format!("fleet-{tier:?}.tif").to_lowercase();
    image(&prefix, &id).await;
    let args = args(&prefix, tier, 0);
    let (a, b) = (instance(&args).await, instance(&args).await);
    let tile = tile(&id);

    let (rendered, lines) = s3_requests(&prefix, get(a, &tile)).await;
    assert_eq!(rendered.status, 200);
    assert_eq!(rendered.image().width(), 200);
    assert!(
        lines.iter().any(|l| l.starts_with("GET")),
        "{tier:?}: {lines:?}"
    );

    // The other instance: the same bytes, and of the image only its metadata is read.
    let (info, lines) = s3_requests(&prefix, get(b, &format!("/iiif/3/{id}/info.json"))).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["width"], 4096);
    let (hit, more) = s3_requests(&prefix, get(b, &tile)).await;
    assert_eq!(hit.status, 200);
    assert!(hit.body == rendered.body);
    let all: Vec<_> = lines.iter().chain(&more).collect();
    assert!(
        all.iter().all(|l| l.starts_with("HEAD")),
        "{tier:?}: {all:?}"
    );
    // A region the first instance never rendered: the second renders it from the pyramid the
    // first read (its structure's bytes kept in the shared tier), reading tiles only.
    let region = format!("/iiif/3/{id}/2048,2048,600,500/200,/0/default.jpg");
    renders_without_reading_the_structure(b, &prefix, &region, 200).await;

    // A purge through the first instance's admin route: the second misses and renders.
    let purge = format!("/admin/purge/{id}");
    let denied = request(a, "POST", &purge, &[]).await;
    assert_eq!(denied.status, 401);
    let purged = request(
        a,
        "POST",
        &purge,
        &[("Authorization", "Bearer admin-secret")],
    )
    .await;
    assert_eq!(
        purged.status,
        200,
        "{}",
        String::from_utf8_lossy(&purged.body)
    );
    assert!(purged.json()["purged"].as_u64().unwrap() >= 1);
    let mut rerendered = false;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (again, lines) = s3_requests(&prefix, get(b, &tile)).await;
        assert_eq!(again.status, 200);
        if lines.iter().any(|l| l.starts_with("GET")) {
            rerendered = true;
            break;
        }
    }
    assert!(
        rerendered,
        "{tier:?}: the second instance still served the purged derivative"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_tier_is_shared_and_purged_across_instances() {
    shared_hits_and_purges_across_instances(Tier::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_tier_is_shared_and_purged_across_instances() {
    shared_hits_and_purges_across_instances(Tier::S3).await;
}

/// A JPEG 2000 file's header and tile-part index, read by one instance, are the shared tier's
/// for the others: a second instance rendering a region the first never did reads tiles only,
/// nothing at the start of the file (its boxes and main header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpeg_2000_index_is_shared_across_instances() {
    let prefix = "fleet-jp2/";
    let id = "fleet.jp2";
    upload(&format!("{prefix}{id}"), fixture("tiled.jp2")).await;
    let args = args(prefix, Tier::Redis, 0);
    let (a, b) = (instance(&args).await, instance(&args).await);
    let first = get(a, &format!("/iiif/3/{id}/0,0,512,512/256,/0/default.jpg")).await;
    assert_eq!(first.status, 200);

    let region = format!("/iiif/3/{id}/512,512,512,512/256,/0/default.jpg");
    renders_without_reading_the_structure(b, prefix, &region, 256).await;
}

/// With a time to live, an entry another instance stored is a miss once it has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_entries_expire() {
    for tier in [Tier::Redis, Tier::S3] {
        let prefix = format!("ttl-{tier:?}/").to_lowercase();
        let id = format!("ttl-{tier:?}.tif").to_lowercase();
        image(&prefix, &id).await;
        let args = args(&prefix, tier, 1);
        let (a, b) = (instance(&args).await, instance(&args).await);
        let tile = tile(&id);
        assert_eq!(get(a, &tile).await.status, 200);
        let (_, fresh) = s3_requests(&prefix, get(b, &tile)).await;
        assert!(
            fresh.iter().all(|l| l.starts_with("HEAD")),
            "{tier:?}: {fresh:?}"
        );
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let c = instance(&args).await; // a memory tier of its own: only the shared tier can hit
        let (r, stale) = s3_requests(&prefix, get(c, &tile)).await;
        assert_eq!(r.status, 200);
        assert!(
            stale.iter().any(|l| l.starts_with("GET")),
            "{tier:?}: {stale:?}"
        );
    }
}

/// `/metrics` in Prometheus text, `/health` with the shared tier checked, admin routes that
/// want POST and the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_routes() {
    let prefix = "ops/";
    image(prefix, "ops.tif").await;
    let a = instance(&args(prefix, Tier::Redis, 0)).await;
    assert_eq!(get(a, &tile("ops.tif")).await.status, 200);
    let metrics = get(a, "/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body).unwrap();
    for name in [
        "iiif_requests_total",
        "iiif_render_seconds",
        "iiif_source_requests_total",
        "iiif_source_bytes_total",
        "iiif_cache_misses_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    let health = get(a, "/health").await;
    assert_eq!(health.status, 200);
    let doc = health.json();
    assert_eq!(doc["checks"]["source"], "ok");
    assert_eq!(doc["checks"]["cache (tiered)"], "ok");
    assert_eq!(get(a, "/admin/purge").await.status, 405);
    let wrong = [("Authorization", "Bearer nope")];
    assert_eq!(request(a, "POST", "/admin/purge", &wrong).await.status, 401);
    let token = [("Authorization", "Bearer admin-secret")];
    assert_eq!(
        request(a, "POST", "/admin/nothing", &token).await.status,
        404
    );
}

/// Writes racing a purge by identifier on the Redis tier: every entry a write leaves is one a
/// later purge of that identifier still removes (none is left out of the identifier's index).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_entries_written_during_a_purge_stay_purgeable() {
    use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, RedisCache};
    let cache = RedisCache::connect(&env("TOWER_IIIF_REDIS_URL"))
        .await
        .unwrap()
        .prefix("race-test:");
    let keys: Vec<CacheKey> = (0..400)
        .map(|i| CacheKey::new("racing.tif", format!("full/{i},/0/default.jpg")))
        .collect();
    let writers = (0..4).map(|w| {
        let (cache, keys) = (cache.clone(), keys.clone());
        tokio::spawn(async move {
            for key in keys.into_iter().skip(w).step_by(4) {
                cache
                    .put(key, CachedDerivative::new(&b"jpeg"[..], "image/jpeg"))
                    .await;
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    let mut purges = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        cache.purge_identifier("racing.tif").await;
        purges += 1;
    }
    // The purges ran while entries were written (before the fix, about half the entries
    // were left out of the index and outlived the last purge).
    assert!(purges > 1, "{purges} purges during the writes");
    cache.purge_identifier("racing.tif").await;
    let mut left = Vec::new();
    for key in &keys {
        if cache.get(key).await.is_some() {
            left.push(key.clone());
        }
    }
    assert!(
        left.is_empty(),
        "{} entries left after the last purge",
        left.len()
    );
}
