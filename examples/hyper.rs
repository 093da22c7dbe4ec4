//! `IiifService` under plain hyper 1, through `TowerToHyperService`, mounted at `/iiif/3`.
//!
//! ```text
//! cargo run --example hyper -- [ADDR] [IMAGES_DIR]
//! curl -s http://127.0.0.1:8081/iiif/3/67352ccc-d1b0-11e1-89ae-279075081939/info.json
//! ```

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tower_iiif::{IiifService, samples, source::FsSource};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "samples".into()));
    samples::write_samples(&dir)?;

    // The service strips its prefix itself when the router does not.
    let svc = IiifService::new(FsSource::new(&dir)?).path_prefix("/iiif/3");
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let svc = TowerToHyperService::new(svc.clone());
        tokio::spawn(async move {
            let conn = Builder::new(TokioExecutor::new());
            if let Err(e) = conn.serve_connection(TokioIo::new(stream), svc).await {
                eprintln!("connection error: {e}");
            }
        });
    }
}
