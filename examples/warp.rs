//! `IiifService` beside warp routes.
//!
//! warp 0.4 cannot embed a tower `Service` inside a filter chain, so this example dispatches at
//! the hyper level: requests under `/iiif/3` go to the IIIF service, everything else to the warp
//! filters (turned into a tower service by `warp::service`).
//!
//! ```text
//! cargo run --example warp -- [ADDR] [IMAGES_DIR]
//! curl -s http://127.0.0.1:8082/hello
//! curl -s http://127.0.0.1:8082/iiif/3/67352ccc-d1b0-11e1-89ae-279075081939/info.json
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, combinators::BoxBody};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tower::ServiceExt;
use tower_iiif::{IiifService, samples, source::FsSource};
use warp::Filter;

type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8082".into());
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "samples".into()));
    samples::write_samples(&dir)?;

    let iiif = IiifService::new(FsSource::new(&dir)?).path_prefix("/iiif/3");
    let routes = warp::path("hello").map(|| String::from("hello from warp"));
    let warp_svc = warp::service(routes);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (iiif, warp_svc) = (iiif.clone(), warp_svc);
        let dispatch = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let (iiif, warp_svc) = (iiif.clone(), warp_svc);
            async move {
                let path = req.uri().path();
                let res: Response<Body> = if path == "/iiif/3" || path.starts_with("/iiif/3/") {
                    let res = iiif.oneshot(req).await?;
                    res.map(|b| b.map_err(|never| match never {}).boxed())
                } else {
                    match warp_svc.oneshot(req).await {
                        Ok(res) => res.map(|b| b.map_err(Into::into).boxed()),
                        Err(never) => match never {},
                    }
                };
                Ok::<_, Infallible>(res)
            }
        });
        tokio::spawn(async move {
            if let Err(e) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), dispatch)
                .await
            {
                eprintln!("connection error: {e}");
            }
        });
    }
}
