//! An Islandora site's front door, in place of ISLE's Cantaloupe container: every request is
//! reverse-proxied to Drupal, except the IIIF Image API under `/cantaloupe/iiif/2` and
//! `/cantaloupe/iiif/3`, which `IiifService` answers in-process, reading each image from Drupal
//! over HTTP (the identifier being the file's URL, as Islandora writes it) with the caller's
//! `Authorization` and `Cookie` passed on, so restricted files work for those allowed to see
//! them.
//!
//! ```text
//! cargo run --release --features axum,http --example gateway -- \
//!     --drupal http://drupal:80 --cantaloupe-url https://site.example/cantaloupe/iiif/2
//! ```
//!
//! Every flag has an environment variable named after ISLE's (`--help` lists them), so that the
//! gateway drops into an ISLE `docker-compose.yml` (see the README).

#[path = "gateway/app.rs"]
mod app;

#[tokio::main]
async fn main() {
    app::limit_malloc_arenas();
    let config =
        app::parse(|k| std::env::var(k).ok(), std::env::args().skip(1)).unwrap_or_else(|msg| {
            eprintln!("{msg}");
            std::process::exit(2);
        });
    let router = app::app(&config).unwrap_or_else(|msg| {
        eprintln!("{msg}");
        std::process::exit(1);
    });
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {}: {e}", config.addr);
            std::process::exit(1);
        });
    let site =
        app::public_site(&config).map_or_else(|_| String::new(), |(origin, _)| origin.to_string());
    eprintln!(
        "gateway listening on http://{}: IIIF at {} for {site}, everything else proxied to {}",
        listener.local_addr().expect("bound"),
        config.cantaloupe_url,
        config.drupal
    );
    app::serve(listener, router, app::ServerLimits::default()).await;
}
