//! The gateway's app: its settings (flags, or environment variables named after ISLE's), the
//! IIIF mounts that replace Cantaloupe at `/cantaloupe/iiif/2` and `/cantaloupe/iiif/3`, and the
//! reverse proxy to Drupal for every other path. `tests/gateway.rs` includes this file.

use std::convert::Infallible;
use std::path::PathBuf;

use axum::extract::Request;
use axum::middleware;
use axum::response::Response;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_iiif::base_uri::{SetBaseUriLayer, parse_proxy};
use tower_iiif::cache::{FsCache, MemoryCache};
use tower_iiif::cache_control::{CacheControl, SetCacheControlLayer};
use tower_iiif::limit::PixelLimitLayer;
use tower_iiif::request::{ApiVersion, Identifier};
use tower_iiif::source::{AnySource, HttpSource, Resolved, Resolver, SourceCache};
use tower_iiif::{Error, IiifBody, IiifService};
use url::Url;

#[path = "proxy.rs"]
mod proxy;
#[path = "../serve/server.rs"]
mod server;
pub use proxy::Proxy;
#[allow(unused_imports)] // the test uses `serve` alone
pub use server::{ServerLimits, limit_malloc_arenas, serve};

/// The usage text: each flag with the environment variable that also sets it.
pub const USAGE: &str = "\
usage: gateway [FLAGS]; each flag can also be set by the environment variable after it
  --addr HOST:PORT          GATEWAY_ADDR                  where to listen (127.0.0.1:8000)
  --drupal URL              GATEWAY_DRUPAL_URL            the Drupal upstream (http://drupal:80)
  --cantaloupe-url URL      DRUPAL_DEFAULT_CANTALOUPE_URL Drupal's IIIF server setting, e.g.
                                                          https://site.example/cantaloupe/iiif/2
                                                          (http://localhost:8000/cantaloupe/iiif/2)
  --max-pixels N            CANTALOUPE_MAX_PIXELS         largest image area (10000000; 0: none)
  --cache-dir DIR           CANTALOUPE_FILESYSTEMCACHE_PATHNAME  derivatives and source copies
                                                          on disk (else derivatives in memory)
  --cache-mem BYTES         GATEWAY_CACHE_MEM             memory derivative cache (268435456)
  --forward-header NAME...  GATEWAY_FORWARD_HEADERS       passed to Drupal (Authorization,Cookie)
  --file-path PATH...       GATEWAY_FILE_PATHS            Drupal paths images are read from
                                                          (/_flysystem/,/sites/default/files/,
                                                          /system/files/)
  --http-allow URL...       GATEWAY_HTTP_ALLOW            other URL prefixes images may come from
  --trusted-proxy CIDR...   GATEWAY_TRUSTED_PROXIES       proxies in front (Traefik) whose
                                                          X-Forwarded-* are kept
  --cache-control VALUE     GATEWAY_CACHE_CONTROL         Cache-Control of public images
Environment variables take comma-separated lists (empty: none); a flag given overrides its
variable.";

/// The gateway's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub addr: std::net::SocketAddr,
    /// The Drupal upstream, `http://HOST[:PORT]`.
    pub drupal: String,
    /// Drupal's IIIF server setting (`https://site.example/cantaloupe/iiif/2`): the site's public
    /// URL and the mount path, which the gateway serves as Cantaloupe did.
    pub cantaloupe_url: String,
    /// ISLE's `max_pixels` (0: none).
    pub max_pixels: u64,
    /// Derivative and source caches on disk, else derivatives in memory.
    pub cache_dir: Option<PathBuf>,
    /// Bytes of the memory derivative cache.
    pub cache_mem: u64,
    /// Request headers passed to Drupal with each file fetch.
    pub forward_headers: Vec<String>,
    /// Drupal paths images are fetched from.
    pub file_paths: Vec<String>,
    /// Other URL prefixes images may be fetched from.
    pub http_allow: Vec<String>,
    /// Proxies in front of the gateway.
    pub trusted_proxies: Vec<String>,
    /// Cache-Control of images and info.json anyone may see.
    pub cache_control: CacheControl,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 8000)),
            drupal: "http://drupal:80".into(),
            cantaloupe_url: "http://localhost:8000/cantaloupe/iiif/2".into(),
            max_pixels: 10_000_000,
            cache_dir: None,
            cache_mem: 256 << 20,
            forward_headers: vec!["Authorization".into(), "Cookie".into()],
            file_paths: vec![
                "/_flysystem/".into(),
                "/sites/default/files/".into(),
                "/system/files/".into(),
            ],
            http_allow: Vec::new(),
            trusted_proxies: Vec::new(),
            cache_control: CacheControl::default(),
        }
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn number(name: &str, value: &str) -> Result<u64, String> {
    value.trim().parse().map_err(|e| format!("{name}: {e}"))
}

/// Apply one setting by its flag name (without `--`).
fn set(config: &mut Config, name: &str, value: &str, repeat: bool) -> Result<(), String> {
    let push = |to: &mut Vec<String>, first: bool| {
        if !repeat || first {
            to.clear();
        }
        to.extend(list(value));
    };
    match name {
        "addr" => config.addr = value.parse().map_err(|e| format!("--addr: {e}"))?,
        "drupal" => config.drupal = value.trim_end_matches('/').to_owned(),
        "cantaloupe-url" => config.cantaloupe_url = value.trim_end_matches('/').to_owned(),
        "max-pixels" => config.max_pixels = number("--max-pixels", value)?,
        "cache-dir" => config.cache_dir = Some(PathBuf::from(value)),
        "cache-mem" => config.cache_mem = number("--cache-mem", value)?,
        "cache-control" => {
            config.cache_control = value.parse().map_err(|e| format!("--cache-control: {e}"))?
        }
        "forward-header" => push(&mut config.forward_headers, false),
        "file-path" => push(&mut config.file_paths, false),
        "http-allow" => push(&mut config.http_allow, false),
        "trusted-proxy" => push(&mut config.trusted_proxies, false),
        other => return Err(format!("unknown argument --{other}; try --help")),
    }
    Ok(())
}

/// The settings from the environment (`env` looks a variable up), then the flags.
pub fn parse(
    env: impl Fn(&str) -> Option<String>,
    args: impl Iterator<Item = String>,
) -> Result<Config, String> {
    const VARS: [(&str, &str); 11] = [
        ("GATEWAY_ADDR", "addr"),
        ("GATEWAY_DRUPAL_URL", "drupal"),
        ("DRUPAL_DEFAULT_CANTALOUPE_URL", "cantaloupe-url"),
        ("CANTALOUPE_MAX_PIXELS", "max-pixels"),
        ("CANTALOUPE_FILESYSTEMCACHE_PATHNAME", "cache-dir"),
        ("GATEWAY_CACHE_MEM", "cache-mem"),
        ("GATEWAY_FORWARD_HEADERS", "forward-header"),
        ("GATEWAY_FILE_PATHS", "file-path"),
        ("GATEWAY_HTTP_ALLOW", "http-allow"),
        ("GATEWAY_TRUSTED_PROXIES", "trusted-proxy"),
        ("GATEWAY_CACHE_CONTROL", "cache-control"),
    ];
    let mut config = Config::default();
    const LISTS: [&str; 4] = ["forward-header", "file-path", "http-allow", "trusted-proxy"];
    for (var, name) in VARS {
        // An empty list variable empties the list (`GATEWAY_FORWARD_HEADERS=` forwards
        // nothing); other empty variables are as if unset.
        match env(var) {
            Some(value) if !value.is_empty() || LISTS.contains(&name) => {
                set(&mut config, name, &value, false).map_err(|e| format!("{var}: {e}"))?;
            }
            _ => {}
        }
    }
    // A repeatable flag replaces the variable's list the first time it is given.
    let mut seen = std::collections::HashSet::new();
    let mut args = args;
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let name = flag
            .strip_prefix("--")
            .ok_or(format!("unexpected argument {flag:?}; try --help"))?;
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let repeat = !seen.insert(name.to_owned());
        set(&mut config, name, &value, repeat)?;
    }
    Ok(config)
}

/// What `cantaloupe_url` says: the site's public origin (`https://site.example`) and the path
/// the IIIF versions are mounted under (`/cantaloupe/iiif`).
pub fn public_site(config: &Config) -> Result<(Url, String), String> {
    let bad = |why: &str| {
        format!(
            "DRUPAL_DEFAULT_CANTALOUPE_URL {:?}: {why}",
            config.cantaloupe_url
        )
    };
    let url = Url::parse(&config.cantaloupe_url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("not an http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(bad("a user name, password or fragment has no place here"));
    }
    let mount = url
        .path()
        .trim_end_matches('/')
        .strip_suffix("/2")
        .ok_or_else(|| bad("expected a URL ending in /iiif/2 (Image API 2, as Drupal uses)"))?
        .to_owned();
    let mut origin = url.clone();
    origin.set_path("");
    origin.set_query(None);
    Ok((origin, mount))
}

/// The public site as identifiers name it: host (lower case) and explicit port, if any.
#[derive(Clone, Debug)]
struct Site {
    host: String,
    port: Option<u16>,
}

/// Where an identifier's image is fetched from.
#[derive(Debug, PartialEq, Eq)]
enum Fetch {
    /// From the Drupal upstream, at this URL.
    Drupal(String),
    /// From another allowed site, at this URL (without the caller's credentials).
    Elsewhere(String),
    /// Nowhere: a site path outside the file paths names no image (404).
    Nothing,
}

/// An identifier that is a URL of the public site (either scheme, any spelling of its host),
/// or a site path (Islandora's `use_relative_paths`), is fetched from Drupal at the same path
/// and query; any other URL from elsewhere. URLs are checked against the allowed prefixes by
/// the sources (outside them: 403); a site path outside the file paths is no image (404).
fn route(id: &str, site: &Site, drupal: &str, file_paths: &[String]) -> Fetch {
    match Url::parse(id) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            let ours = url.host_str() == Some(site.host.as_str())
                && url.port() == site.port
                && url.username().is_empty()
                && url.password().is_none();
            match ours {
                true => {
                    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
                    Fetch::Drupal(format!("{drupal}{}{query}", url.path()))
                }
                false => Fetch::Elsewhere(id.to_owned()),
            }
        }
        Ok(_) => Fetch::Elsewhere(id.to_owned()),
        Err(_) => {
            let url = format!("{drupal}/{}", id.trim_start_matches('/'));
            // `..` resolved as the source will resolve it.
            let path = Url::parse(&url).map(|u| u.path().to_owned());
            match path {
                Ok(p) if file_paths.iter().any(|f| p.starts_with(f.as_str())) => Fetch::Drupal(url),
                _ => Fetch::Nothing,
            }
        }
    }
}

/// The image source: Drupal's files through the upstream, with the caller's credentials and as
/// if asked for at the public site (its `Host`, `X-Forwarded-Proto` and `-Host`), under the
/// allowed file paths only; other URLs only under `--http-allow`, without credentials.
fn sources(config: &Config, origin: &Url) -> Result<Resolver, String> {
    let source_cache = match &config.cache_dir {
        Some(dir) => {
            let dir = dir.join("sources");
            let cache = SourceCache::new(&dir, 10 << 30)
                .map_err(|e| format!("source cache {}: {e}", dir.display()))?;
            Some(cache)
        }
        None => None,
    };
    let host = origin.host_str().expect("checked by public_site");
    let public_host = match origin.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let mut drupal = HttpSource::builder()
        .header("Host", &public_host)
        .header("X-Forwarded-Host", &public_host)
        .header("X-Forwarded-Proto", origin.scheme());
    for path in &config.file_paths {
        let path = format!("/{}/", path.trim_matches('/'));
        // The upstream is the site's own back end, on a private network.
        drupal = drupal.allow_backend(&format!("{}{path}", config.drupal));
    }
    for name in &config.forward_headers {
        drupal = drupal.forward_header(name);
    }
    if let Some(cache) = &source_cache {
        drupal = drupal.source_cache(cache.clone());
    }
    let drupal = AnySource::new(drupal.build().map_err(|e| format!("HTTP source: {e}"))?);
    let mut elsewhere = HttpSource::builder();
    for prefix in &config.http_allow {
        elsewhere = elsewhere.allow(prefix);
    }
    if let Some(cache) = source_cache {
        elsewhere = elsewhere.source_cache(cache);
    }
    let elsewhere = AnySource::new(
        elsewhere
            .build()
            .map_err(|e| format!("--http-allow: {e}"))?,
    );
    let site = Site {
        host: host.to_ascii_lowercase(),
        port: origin.port(),
    };
    let upstream = config.drupal.clone();
    let file_paths: Vec<String> = config
        .file_paths
        .iter()
        .map(|p| format!("/{}/", p.trim_matches('/')))
        .collect();
    let (d, e) = (drupal.clone(), elsewhere.clone());
    Ok(Resolver::new(move |id: Identifier, _request| {
        let fetch = route(id.as_str(), &site, &upstream, &file_paths);
        let (drupal, elsewhere) = (d.clone(), e.clone());
        async move {
            match fetch {
                Fetch::Drupal(url) => Resolved::new(drupal, url),
                Fetch::Elsewhere(url) => Resolved::new(elsewhere, url),
                Fetch::Nothing => Err(Error::not_found("no image of the site has this path")),
            }
        }
    })
    .checking([drupal, elsewhere]))
}

type Stacked = BoxCloneSyncService<Request, Response<IiifBody>, Infallible>;

/// The layers of each mount: the public base URI, Cache-Control, and `max_pixels` as
/// Cantaloupe's, except that a size over it (`full/full` of a large image, which Islandora's
/// manifests ask for) is scaled down to fit instead of refused.
fn stack(svc: IiifService<Resolver>, config: &Config, origin: &Url) -> Result<Stacked, String> {
    let base = SetBaseUriLayer::fixed(origin.as_str().trim_end_matches('/'))
        .trusted_proxies(&config.trusted_proxies)
        .map_err(|e| format!("--trusted-proxy: {e}"))?;
    let mut limit = PixelLimitLayer::new().clamp();
    if config.max_pixels > 0 {
        limit = limit.max_area(config.max_pixels);
    }
    Ok(BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(base)
            .layer(SetCacheControlLayer::new().both(config.cache_control.clone()))
            .layer(limit)
            .service(svc),
    ))
}

/// The whole gateway: `{mount}/2` and `{mount}/3` (IIIF Image API 2.1 and 3.0),
/// `{mount}/health`, and every other path proxied to Drupal.
pub fn app(config: &Config) -> Result<axum::Router, String> {
    let (origin, mount) = public_site(config)?;
    let trusted = config
        .trusted_proxies
        .iter()
        .map(|p| parse_proxy(p).map_err(|e| format!("--trusted-proxy: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let proxy = Proxy::new(&config.drupal, origin.scheme(), trusted)?;
    let mut v2 = IiifService::new(sources(config, &origin)?)
        .version(ApiVersion::V2)
        .reduced_pyramids(256 << 20, 16_000_000);
    v2 = match &config.cache_dir {
        Some(dir) => {
            let dir = dir.join("derivatives");
            v2.derivative_cache(
                FsCache::new(&dir)
                    .map_err(|e| format!("derivative cache {}: {e}", dir.display()))?,
            )
        }
        None if config.cache_mem > 0 => v2.derivative_cache(MemoryCache::new(config.cache_mem)),
        None => v2,
    };
    let v3 = v2.clone().version(ApiVersion::V3); // shares the caches
    let health = v3.health();
    Ok(axum::Router::new()
        .nest_service(&format!("{mount}/2"), stack(v2, config, &origin)?)
        .nest_service(&format!("{mount}/3"), stack(v3, config, &origin)?)
        .route_service(&format!("{mount}/health"), health)
        .fallback(proxy::forward)
        .with_state(proxy)
        .layer(middleware::from_fn(server::log)))
}
