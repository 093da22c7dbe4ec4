//! A server loop with the timeouts and connection limit of a production server, and a request
//! log, for the examples' axum apps (`serve` and `gateway` include this file).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Layer;

/// Limit glibc's malloc to two arenas, unless `MALLOC_ARENA_MAX` says otherwise. glibc gives
/// each thread that allocates its own arena (up to 8 per core), and every arena keeps the
/// memory freed in it: the renders' large buffers, freed on blocking threads, stayed in the
/// process (200 concurrent renders: 447 MiB of peak RSS with the default, 167 MiB with two
/// arenas; docs/RELIABILITY.md). Call it first thing in `main`. Elsewhere than glibc: nothing.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a parameter of the allocator; M_ARENA_MAX takes a count.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// What the server loop allows each connection.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Time for a client to send a request's headers, and the longest a keep-alive connection
    /// stays open waiting for its next request.
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// Serve `app` on `listener` as a production server would: a header-read timeout (which also
/// closes idle keep-alive connections), a limit on open connections (so that slow or idle
/// clients cannot take every file descriptor), no Nagle delay, and the peer address as axum's
/// `ConnectInfo` for `SetBaseUri`'s trusted proxies.
pub async fn serve(listener: TcpListener, app: axum::Router, limits: ServerLimits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    loop {
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let svc = axum::Extension(ConnectInfo(peer)).layer(app.clone());
        let builder = Arc::clone(&builder);
        tokio::spawn(async move {
            let _permit = permit;
            let svc = TowerToHyperService::new(svc);
            // Errors here are the client's (a reset, a timeout): nothing to report.
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

/// One log line per request: method, path, status, milliseconds.
pub async fn log(req: Request, next: Next) -> Response {
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
