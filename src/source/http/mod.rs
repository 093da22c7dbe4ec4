//! Images fetched over HTTP(S), the identifier being the file's URL (Islandora) or made into one
//! by a [`KeyTemplate`](super::KeyTemplate): an allow-list, guarded connections, redirects
//! re-checked, credentials passed through and re-authorized, range reads in chunks.

mod guard;

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use ipnet::IpNet;
use quick_cache::sync::Cache;
use reqwest::Url;

use self::guard::{Guard, GuardedResolver, RefusedAddress};
use super::cache::SourceCache;
use super::chunks::{self, Chunks, FetchRange};
use super::{Source, SourceMetadata, SourceObject, SourceRequest};
use crate::request::Identifier;
use crate::{Error, ErrorKind};

/// Images fetched over HTTP(S): the identifier (or the key a [`Keyed`](super::Keyed) template
/// makes of it) is the file's URL.
///
/// - **Allow-list, required.** Only URLs under an [`allow`](HttpSourceBuilder::allow)ed prefix
///   are fetched; any other is a 403 and no request is made. With no prefix, every URL is
///   refused.
/// - **Addresses.** Names are resolved by the client's own resolver, which drops loopback,
///   private, link-local, shared and cloud-metadata addresses unless an allow-list prefix names
///   that address itself (`http://127.0.0.1:8080/`) or [`allow_network`](HttpSourceBuilder::allow_network)
///   covers it; the client connects only to what it returns, so DNS rebinding gains nothing.
///   No proxy from the environment is used.
/// - **Redirects**: at most [`max_redirects`](HttpSourceBuilder::max_redirects) (5), each target
///   checked against the allow-list again; credentials never cross to another origin.
/// - **Credentials passed through**: the request headers named by
///   [`forward_header`](HttpSourceBuilder::forward_header) (none by default; typically
///   `Authorization` and `Cookie`) are sent upstream. Each request is then authorized upstream
///   (a HEAD with the caller's headers), the answer kept for
///   [`authorization_ttl`](HttpSourceBuilder::authorization_ttl) per digest of those headers and
///   URL, so nothing is served to a caller the upstream has not let see it, cache hits included.
/// - **Reads** by `Range`, in chunks kept in a byte-bounded cache and read ahead along
///   sequential runs; a server that ignores `Range` is read whole once, into the
///   [`SourceCache`] when there is one.
/// - **Statuses**: upstream 404 is 404; 401 and 403 are passed on (with the upstream's
///   `WWW-Authenticate`); other failures are 502, timeouts 504.
///
/// ```
/// use tower_iiif::source::{HttpSource, Source};
/// use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let source = HttpSource::builder()
///     .allow("https://site.example/sites/default/files/")
///     .forward_header("authorization")
///     .build()
///     .unwrap();
/// // Outside the allow-list: 403, and nothing is fetched.
/// let id = Identifier::new("https://elsewhere.example/a.tif").unwrap();
/// assert_eq!(source.open(&id, &Default::default()).await.unwrap_err().status(), 403);
/// let metadata = Identifier::new("http://169.254.169.254/latest/meta-data/").unwrap();
/// assert_eq!(source.open(&metadata, &Default::default()).await.unwrap_err().status(), 403);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct HttpSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    guard: Arc<Guard>,
    forward: Vec<HeaderName>,
    /// Headers sent with every request to the identifier's origin.
    fixed: HeaderMap,
    /// Probes (HEAD) by credential digest and URL: the metadata, or the refusal.
    probes: Cache<(u64, String), (Result<Probe, Error>, Instant)>,
    probe_ttl: Duration,
    chunks: Chunks,
    max_bytes: u64,
    max_redirects: usize,
    source_cache: Option<SourceCache>,
    /// URLs whose server answered a range request with the whole object: read whole since.
    ranges_ignored: Cache<String, ()>,
}

/// What a HEAD learned of an object.
#[derive(Debug, Clone)]
struct Probe {
    metadata: SourceMetadata,
    /// Where the object is after redirects.
    url: Url,
    /// Whether `url` has the origin of the identifier's URL (credentials go only there).
    same_origin: bool,
}

/// Builds an [`HttpSource`].
///
/// ```
/// use std::time::Duration;
/// use tower_iiif::source::HttpSource;
///
/// let source = HttpSource::builder()
///     .allow("https://site.example/_flysystem/fedora/")
///     .allow("https://site.example/system/files/")
///     .allow_network("172.16.0.0/12".parse().unwrap()) // the site's Docker network
///     .forward_header("authorization")
///     .forward_header("cookie")
///     .timeouts(Duration::from_secs(5), Duration::from_secs(30))
///     .max_object_bytes(2 << 30)
///     .build()
///     .unwrap();
/// # let _ = source;
/// ```
#[derive(Debug)]
pub struct HttpSourceBuilder {
    guard: Guard,
    error: Option<Error>,
    forward: Vec<HeaderName>,
    fixed: HeaderMap,
    connect_timeout: Duration,
    read_timeout: Duration,
    total_timeout: Duration,
    probe_ttl: Duration,
    chunk_size: u64,
    chunk_cache_bytes: u64,
    max_bytes: u64,
    max_redirects: usize,
    source_cache: Option<SourceCache>,
}

impl HttpSource {
    /// A builder with the defaults: no URL allowed, no header forwarded, 5 s to connect, 30 s
    /// between reads, 120 s for a whole request, metadata and authorizations kept 10 s, 64 KiB chunks, 64 MiB of them
    /// cached, objects up to 4 GiB, 5 redirects, no source cache.
    ///
    /// ```
    /// let source = tower_iiif::source::HttpSource::builder().build().unwrap();
    /// # let _ = source;
    /// ```
    pub fn builder() -> HttpSourceBuilder {
        HttpSourceBuilder {
            guard: Guard::default(),
            error: None,
            forward: Vec::new(),
            fixed: HeaderMap::new(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            probe_ttl: Duration::from_secs(10),
            chunk_size: chunks::DEFAULT_CHUNK_SIZE,
            chunk_cache_bytes: chunks::DEFAULT_CHUNK_CACHE_BYTES,
            max_bytes: 4 << 30,
            max_redirects: 5,
            source_cache: None,
        }
    }

    /// Forget every cached probe, authorization and chunk (a purge).
    ///
    /// ```
    /// tower_iiif::source::HttpSource::builder().build().unwrap().clear();
    /// ```
    pub fn clear(&self) {
        self.inner.probes.clear();
        self.inner.chunks.clear();
    }
}

impl HttpSourceBuilder {
    /// Allow URLs under `prefix` (`http://` or `https://`, scheme, host and port matched
    /// exactly, the path as a prefix: end it with `/`). A prefix with an IP address for host
    /// also allows connecting to that address. A prefix that is not such a URL makes
    /// [`build`](Self::build) fail.
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// assert!(HttpSource::builder().allow("https://site.example/files/").build().is_ok());
    /// assert!(HttpSource::builder().allow("ftp://site.example/").build().is_err());
    /// ```
    pub fn allow(mut self, prefix: &str) -> Self {
        if let Err(e) = self.guard.allow(prefix) {
            self.error.get_or_insert(e);
        }
        self
    }

    /// Allow URLs under `prefix` on a back end of the site itself, named by the operator (the
    /// Drupal container of an Islandora site, `http://drupal/`): its host name may resolve to
    /// loopback or private addresses, which [`allow`](Self::allow) refuses. Link-local and
    /// cloud-metadata addresses stay refused. A prefix that is not an `http(s)` URL makes
    /// [`build`](Self::build) fail.
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// let b = HttpSource::builder().allow_backend("http://drupal/sites/default/files/");
    /// assert!(b.build().is_ok());
    /// ```
    pub fn allow_backend(mut self, prefix: &str) -> Self {
        if let Err(e) = self.guard.allow_backend(prefix) {
            self.error.get_or_insert(e);
        }
        self
    }

    /// Allow connecting to addresses in `network` although they are loopback, private or
    /// link-local (e.g. the Docker network of a Drupal container). URLs must still be
    /// allow-listed.
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// let b = HttpSource::builder().allow("http://drupal/").allow_network("172.16.0.0/12".parse().unwrap());
    /// assert!(b.build().is_ok());
    /// ```
    pub fn allow_network(mut self, network: IpNet) -> Self {
        self.guard.allow_network(network);
        self
    }

    /// Pass the request header `name` (e.g. `authorization`, `cookie`) upstream, and turn on
    /// re-authorization of every request. An invalid header name makes
    /// [`build`](Self::build) fail.
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// assert!(HttpSource::builder().forward_header("Authorization").build().is_ok());
    /// assert!(HttpSource::builder().forward_header("bad name").build().is_err());
    /// ```
    pub fn forward_header(mut self, name: &str) -> Self {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => self.forward.push(n),
            Err(_) => {
                let e = Error::internal(format!("forwarded header {name:?}: not a header name"));
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Send the header `name: value` with every request to the identifier's origin (never
    /// across a redirect to another), e.g. `Host` and `X-Forwarded-Proto` of the public site
    /// when the images are fetched from its back end, so that the back end answers as it
    /// answers the public (Drupal names its session cookie after the host and scheme). An
    /// invalid name or value makes [`build`](Self::build) fail.
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// let b = HttpSource::builder()
    ///     .allow_backend("http://drupal/sites/default/files/")
    ///     .header("Host", "site.example")
    ///     .header("X-Forwarded-Proto", "https");
    /// assert!(b.build().is_ok());
    /// assert!(HttpSource::builder().header("Host", "a\nb").build().is_err());
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.fixed.insert(n, v);
            }
            _ => {
                let e =
                    Error::internal(format!("header {name:?}: {value:?} is not a valid header"));
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Time to connect, and the longest wait for bytes while reading (a timeout is a 504). A
    /// whole request is also limited to four times `read` or 120 s, whichever is longer.
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// # use std::time::Duration;
    /// let b = HttpSource::builder().timeouts(Duration::from_secs(2), Duration::from_secs(10));
    /// # let _ = b.build().unwrap();
    /// ```
    pub fn timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self.total_timeout = (read * 4).max(Duration::from_secs(120));
        self
    }

    /// How long an object's metadata, and a caller's authorization when headers are passed
    /// through, is kept before the upstream is asked again (default 10 s; zero asks every
    /// time).
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// let b = HttpSource::builder().authorization_ttl(std::time::Duration::from_secs(30));
    /// # let _ = b.build().unwrap();
    /// ```
    pub fn authorization_ttl(mut self, ttl: Duration) -> Self {
        self.probe_ttl = ttl;
        self
    }

    /// Bytes per chunk (at least 64 KiB, the default; Cantaloupe uses 2 MiB). Reads of 1 MiB or
    /// more are fetched as they are.
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// let b = HttpSource::builder().chunk_size(512 << 10);
    /// # let _ = b.build().unwrap();
    /// ```
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Bytes of chunks kept in memory (default 64 MiB; 0 keeps none).
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// let b = HttpSource::builder().chunk_cache_bytes(0);
    /// # let _ = b.build().unwrap();
    /// ```
    pub fn chunk_cache_bytes(mut self, bytes: u64) -> Self {
        self.chunk_cache_bytes = bytes;
        self
    }

    /// The largest object fetched (default 4 GiB); a larger one is a 502.
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// let b = HttpSource::builder().max_object_bytes(1 << 30);
    /// # let _ = b.build().unwrap();
    /// ```
    pub fn max_object_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Redirects followed (default 5); one more is a 502.
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// let b = HttpSource::builder().max_redirects(0);
    /// # let _ = b.build().unwrap();
    /// ```
    pub fn max_redirects(mut self, n: usize) -> Self {
        self.max_redirects = n;
        self
    }

    /// Keep whole copies of objects read whole (and of every object of a server that ignores
    /// `Range`) in `cache`.
    ///
    /// ```
    /// # use tower_iiif::source::{HttpSource, SourceCache};
    /// # let dir = std::env::temp_dir().join(format!("tower-iiif-doc-httpsc-{}", std::process::id()));
    /// let b = HttpSource::builder().source_cache(SourceCache::new(&dir, 1 << 30).unwrap());
    /// # let _ = b.build().unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn source_cache(mut self, cache: SourceCache) -> Self {
        self.source_cache = Some(cache);
        self
    }

    /// The source; an error if an allow-list entry or header name was invalid, or the HTTP
    /// client cannot be made.
    ///
    /// ```
    /// # use tower_iiif::source::HttpSource;
    /// assert!(HttpSource::builder().allow("not a url").build().is_err());
    /// ```
    pub fn build(self) -> Result<HttpSource, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let guard = Arc::new(self.guard);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(Arc::clone(&guard))))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            // A server that trickles a byte now and then still ends within this.
            .timeout(self.total_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .user_agent(concat!("tower-iiif/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
        Ok(HttpSource {
            inner: Arc::new(Inner {
                client,
                guard,
                forward: self.forward,
                fixed: self.fixed,
                probes: Cache::new(10_000),
                probe_ttl: self.probe_ttl,
                chunks: Chunks::new(self.chunk_size, self.chunk_cache_bytes),
                max_bytes: self.max_bytes,
                max_redirects: self.max_redirects,
                source_cache: self.source_cache,
                ranges_ignored: Cache::new(10_000),
            }),
        })
    }
}

impl Inner {
    /// The caller's headers that are passed upstream, and a digest of them (the authorization
    /// cache's key: callers with the same credentials share answers).
    fn credentials(&self, request: &SourceRequest) -> (HeaderMap, u64) {
        let mut creds = HeaderMap::new();
        for name in &self.forward {
            let values = request.headers().get_all(name);
            // Cookies arrive in several fields over HTTP/2; HTTP/1.1 wants one (RFC 9113,
            // section 8.2.3).
            if name == header::COOKIE && values.iter().nth(1).is_some() {
                let joined: Vec<&[u8]> = values.iter().map(HeaderValue::as_bytes).collect();
                if let Ok(v) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
                    creds.insert(header::COOKIE, v);
                }
                continue;
            }
            for value in values {
                creds.append(name.clone(), value.clone());
            }
        }
        (creds.clone(), digest(&creds))
    }

    /// Send `method` to `url`, following redirects (each re-checked, credentials only to the
    /// first URL's origin); the response and the URL that answered.
    async fn send(
        &self,
        method: Method,
        url: Url,
        creds: &HeaderMap,
        range: Option<&Range<u64>>,
    ) -> Result<(reqwest::Response, Url), Error> {
        let origin = url.origin();
        let mut url = url;
        for hop in 0..=self.max_redirects {
            let mut req = self.client.request(method.clone(), url.clone());
            if url.origin() == origin {
                req = req.headers(self.fixed.clone()).headers(creds.clone());
            }
            if let Some(r) = range {
                req = req.header(header::RANGE, format!("bytes={}-{}", r.start, r.end - 1));
            }
            metrics::counter!("iiif_source_requests_total", "source" => "http").increment(1);
            let res = req.send().await.map_err(request_error)?;
            let redirect = matches!(res.status().as_u16(), 301 | 302 | 303 | 307 | 308);
            let location = res.headers().get(header::LOCATION).cloned();
            match (redirect, location) {
                (true, Some(location)) if hop < self.max_redirects => {
                    let next = location
                        .to_str()
                        .ok()
                        .and_then(|l| url.join(l).ok())
                        .ok_or_else(|| Error::bad_gateway("upstream sent a malformed redirect"))?;
                    url = self.guard.check(next.as_str())?;
                }
                (true, Some(_)) => return Err(Error::bad_gateway("upstream redirected too often")),
                _ => return Ok((res, url)),
            }
        }
        unreachable!("the loop returns on its last hop")
    }

    /// What the upstream says of `url` to a caller with `creds`: from the cache while fresh,
    /// else a HEAD (a ranged GET of one byte where HEAD is not allowed).
    async fn probe(&self, url: Url, creds: &HeaderMap, digest: u64) -> Result<Probe, Error> {
        let key = (digest, url.to_string());
        if let Some((answer, at)) = self.probes.get(&key) {
            if at.elapsed() < self.probe_ttl {
                return answer;
            }
            self.probes.remove(&key);
        }
        let answer = self.probe_upstream(url, creds).await;
        let keep = match &answer {
            Ok(_) => true,
            // Refusals are the upstream's answer for this caller; failures are not kept.
            Err(e) => matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::Unauthorized | ErrorKind::Forbidden
            ),
        };
        if keep && !self.probe_ttl.is_zero() {
            self.probes.insert(key, (answer.clone(), Instant::now()));
        }
        answer
    }

    async fn probe_upstream(&self, url: Url, creds: &HeaderMap) -> Result<Probe, Error> {
        let origin = url.origin();
        let (res, at) = self.send(Method::HEAD, url.clone(), creds, None).await?;
        let (res, at, len) = match res.status() {
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {
                let (res, at) = self.send(Method::GET, url, creds, Some(&(0..1))).await?;
                let res = upstream_status(res)?;
                let len = match res.status() {
                    StatusCode::PARTIAL_CONTENT => content_range(res.headers())?.2,
                    _ => res.content_length(),
                };
                (res, at, len)
            }
            _ => {
                let res = upstream_status(res)?;
                let len = match res.status() {
                    StatusCode::PARTIAL_CONTENT => content_range(res.headers())?.2,
                    _ => content_length(res.headers()),
                };
                (res, at, len)
            }
        };
        let len =
            len.ok_or_else(|| Error::bad_gateway("upstream did not say the object's length"))?;
        if len > self.max_bytes {
            return Err(Error::bad_gateway(format!(
                "the upstream object is {len} bytes, over this server's limit of {}",
                self.max_bytes
            )));
        }
        let headers = res.headers();
        let etag = headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let modified = headers
            .get(header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        Ok(Probe {
            metadata: SourceMetadata::new(len, modified, etag),
            same_origin: at.origin() == origin,
            url: at,
        })
    }
}

impl Source for HttpSource {
    type Object = HttpObject;

    async fn open(&self, id: &Identifier, request: &SourceRequest) -> Result<HttpObject, Error> {
        let url = self.inner.guard.check(id.as_str())?;
        let (creds, digest) = self.inner.credentials(request);
        let probe = self.inner.probe(url.clone(), &creds, digest).await?;
        let version = version_key(&probe.url, &probe.metadata);
        Ok(HttpObject {
            fetch: Fetch {
                inner: Arc::clone(&self.inner),
                creds: match probe.same_origin {
                    true => creds,
                    false => HeaderMap::new(),
                },
                url: probe.url,
                len: probe.metadata.len,
                version: Arc::clone(&version),
                whole: tokio::sync::OnceCell::new(),
            },
            version,
            metadata: probe.metadata,
        })
    }

    /// With headers passed through, yes.
    fn per_caller(&self) -> bool {
        !self.inner.forward.is_empty()
    }

    async fn purge_all(&self) {
        self.clear();
        self.inner.ranges_ignored.clear();
        if let Some(cache) = &self.inner.source_cache {
            cache.purge_all().await;
        }
    }

    async fn purge(&self, id: &Identifier) {
        let normalized = Url::parse(id.as_str()).map(String::from);
        let url = normalized.as_deref().unwrap_or(id.as_str());
        self.inner.probes.retain(|(_, u), _| u != url);
        self.inner.ranges_ignored.remove(url);
        self.inner.chunks.forget(url);
        if let Some(cache) = &self.inner.source_cache {
            cache.purge(url).await;
        }
    }

    /// With an allow-list, the health check is that the client exists; upstream servers are
    /// checked by requests (an upstream down is a 502 for that request, not an unhealthy
    /// service).
    async fn check(&self) -> Result<(), Error> {
        match self.inner.guard.is_empty() {
            true => Err(Error::internal("the HTTP source allows no URL")),
            false => Ok(()),
        }
    }
}

/// An object of an [`HttpSource`].
///
/// ```no_run
/// use tower_iiif::source::{HttpObject, HttpSource, Source, SourceObject};
/// # use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let source = HttpSource::builder().allow("https://site.example/").build().unwrap();
/// let id = Identifier::new("https://site.example/a.jp2").unwrap();
/// let obj: HttpObject = source.open(&id, &Default::default()).await.unwrap();
/// println!("{} bytes", obj.metadata().len);
/// # }
/// ```
#[derive(Debug)]
pub struct HttpObject {
    fetch: Fetch,
    version: Arc<str>,
    metadata: SourceMetadata,
}

#[derive(Debug)]
struct Fetch {
    inner: Arc<Inner>,
    url: Url,
    creds: HeaderMap,
    len: u64,
    version: Arc<str>,
    /// The whole object, when the server ignored `Range` (or a whole read asked for it).
    whole: tokio::sync::OnceCell<Bytes>,
}

impl Fetch {
    /// The whole object: kept for this object, from the source cache when there is one, else
    /// read from `started` (a whole answer to a range request) or a new GET.
    async fn whole(&self, started: Option<reqwest::Response>) -> Result<Bytes, Error> {
        self.whole
            .get_or_try_init(|| async {
                let (inner, url, creds) = (
                    Arc::clone(&self.inner),
                    self.url.clone(),
                    self.creds.clone(),
                );
                let len = self.len;
                let download = async move { download(&inner, url, &creds, len, started).await };
                match &self.inner.source_cache {
                    Some(cache) => {
                        let version = &self.version;
                        cache
                            .get_or_fetch(self.url.as_str(), version, move || download)
                            .await
                    }
                    None => download.await,
                }
            })
            .await
            .cloned()
    }
}

/// A whole GET (or the whole answer `started` already holds), its length checked against the
/// probe's.
async fn download(
    inner: &Inner,
    url: Url,
    creds: &HeaderMap,
    len: u64,
    started: Option<reqwest::Response>,
) -> Result<Bytes, Error> {
    let res = match started {
        Some(res) => res,
        None => upstream_status(inner.send(Method::GET, url, creds, None).await?.0)?,
    };
    let body = chunks::gather(pieces(res), len).await?;
    match body.len() as u64 == len {
        true => Ok(body),
        false => Err(Error::bad_gateway(
            "the upstream object changed length while read",
        )),
    }
}

impl Fetch {
    /// The answer to a GET of `range`: a 206 with the right `Content-Range` (its body is the
    /// range), or the whole object when the server ignored `Range` (kept, once).
    async fn get(&self, range: &Range<u64>) -> Result<Ranged, Error> {
        if self.whole.get().is_some() || self.inner.ranges_ignored.get(self.url.as_str()).is_some()
        {
            return Ok(Ranged::Whole(self.whole(None).await?));
        }
        let (res, _) = self
            .inner
            .send(Method::GET, self.url.clone(), &self.creds, Some(range))
            .await?;
        let res = upstream_status(res)?;
        match res.status() {
            StatusCode::PARTIAL_CONTENT => {
                let (start, end, total) = content_range(res.headers())?;
                if (start, end.checked_add(1), total)
                    != (range.start, Some(range.end), Some(self.len))
                {
                    return Err(Error::bad_gateway(
                        "upstream answered a range request with the wrong Content-Range",
                    ));
                }
                Ok(Ranged::Partial(res))
            }
            // `Range` ignored: this answer is the whole object; keep it (once).
            _ => {
                self.inner.ranges_ignored.insert(self.url.to_string(), ());
                Ok(Ranged::Whole(self.whole(Some(res)).await?))
            }
        }
    }
}

/// What a GET of a range brought.
enum Ranged {
    /// A 206 whose body is the range.
    Partial(reqwest::Response),
    /// The whole object.
    Whole(Bytes),
}

impl FetchRange for Fetch {
    async fn fetch_pieces(&self, range: Range<u64>) -> Result<chunks::Pieces, Error> {
        match self.get(&range).await? {
            Ranged::Partial(res) => Ok(pieces(res)),
            Ranged::Whole(whole) => Ok(futures_util::stream::once(std::future::ready(Ok(
                whole.slice(range.start as usize..range.end as usize)
            )))
            .boxed()),
        }
    }
}

impl SourceObject for HttpObject {
    fn metadata(&self) -> &SourceMetadata {
        &self.metadata
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes, Error> {
        let chunks = &self.fetch.inner.chunks;
        chunks
            .read(&self.version, self.metadata.len, range, &self.fetch)
            .await
    }

    async fn read_all(&self) -> Result<Bytes, Error> {
        self.fetch.whole(None).await
    }
}

/// A response's body as it arrives, its bytes counted.
fn pieces(res: reqwest::Response) -> chunks::Pieces {
    futures_util::stream::unfold(Some(res), |res| async move {
        let mut res = res?;
        match res.chunk().await {
            Ok(Some(piece)) => {
                metrics::counter!("iiif_source_bytes_total", "source" => "http")
                    .increment(piece.len() as u64);
                Some((Ok(piece), Some(res)))
            }
            Ok(None) => None,
            Err(e) => Some((Err(request_error(e)), None)),
        }
    })
    .boxed()
}

/// The upstream's status as ours: 2xx passes; 404 and 410 are 404; 401 (with its challenge)
/// and 403 are passed on; the rest is 502.
fn upstream_status(res: reqwest::Response) -> Result<reqwest::Response, Error> {
    let status = res.status();
    match status.as_u16() {
        200..=299 => Ok(res),
        404 | 410 => Err(Error::not_found("image not found upstream")),
        401 => {
            let e = Error::new(
                ErrorKind::Unauthorized,
                "the upstream server requires authorization",
            );
            Err(
                match res
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                {
                    Some(c) => e.with_challenge(c.to_owned()),
                    None => e,
                },
            )
        }
        403 => Err(Error::new(
            ErrorKind::Forbidden,
            "the upstream server refused access",
        )),
        _ => Err(Error::bad_gateway(format!("upstream answered {status}"))),
    }
}

/// A client error as ours: a refused address is 403, a timeout 504, the rest 502.
fn request_error(e: reqwest::Error) -> Error {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        if err.is::<RefusedAddress>() {
            return Error::new(ErrorKind::Forbidden, "this URL's address is not allowed");
        }
        cur = err.source();
    }
    metrics::counter!("iiif_upstream_errors_total", "source" => "http").increment(1);
    if super::upstream::is_timeout(&e) {
        return Error::gateway_timeout("the upstream server did not answer in time");
    }
    tracing::warn!("upstream request: {e}");
    match e.is_connect() {
        true => Error::bad_gateway("the upstream server is unreachable"),
        false => Error::bad_gateway("the upstream request failed"),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
fn content_range(headers: &HeaderMap) -> Result<(u64, u64, Option<u64>), Error> {
    let bad = || Error::bad_gateway("upstream sent a malformed Content-Range");
    let v = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .ok_or_else(bad)?;
    let rest = v.strip_prefix("bytes ").ok_or_else(bad)?;
    let (span, total) = rest.split_once('/').ok_or_else(bad)?;
    let (start, end) = span.split_once('-').ok_or_else(bad)?;
    let (start, end): (u64, u64) = (
        start.trim().parse().map_err(|_| bad())?,
        end.trim().parse().map_err(|_| bad())?,
    );
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().map_err(|_| bad())?),
    };
    match start <= end {
        true => Ok((start, end, total)),
        false => Err(bad()),
    }
}

/// The version of an object: URL, ETag, length and modification time.
fn version_key(url: &Url, m: &SourceMetadata) -> Arc<str> {
    let modified = m
        .modified
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    format!(
        "{url}\0{}\0{}\0{modified}",
        m.etag.as_deref().unwrap_or(""),
        m.len
    )
    .into()
}

/// A digest of the forwarded headers (FNV-1a, 64 bits, over names and values), so that raw
/// credentials are not kept as cache keys.
fn digest(headers: &HeaderMap) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, value) in headers {
        for b in name
            .as_str()
            .bytes()
            .chain([0])
            .chain(value.as_bytes().iter().copied())
            .chain([0])
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_parsed_strictly() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::CONTENT_RANGE, v.parse().unwrap());
            m
        };
        assert_eq!(
            content_range(&h("bytes 0-9/100")).unwrap(),
            (0, 9, Some(100))
        );
        assert_eq!(content_range(&h("bytes 5-5/*")).unwrap(), (5, 5, None));
        for bad in ["bytes 9-0/100", "0-9/100", "bytes x-9/100", "bytes 0-9"] {
            assert_eq!(content_range(&h(bad)).unwrap_err().status(), 502, "{bad}");
        }
        assert!(content_range(&HeaderMap::new()).is_err());
    }

    #[test]
    fn credential_digests_differ_by_value_and_agree_on_equal_headers() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, v.parse().unwrap());
            m
        };
        assert_eq!(digest(&h("Bearer a")), digest(&h("Bearer a")));
        assert_ne!(digest(&h("Bearer a")), digest(&h("Bearer b")));
        assert_ne!(digest(&h("Bearer a")), digest(&HeaderMap::new()));
    }

    #[test]
    fn forwarded_cookies_are_joined_into_one_field() {
        let source = HttpSource::builder()
            .forward_header("cookie")
            .forward_header("authorization")
            .build()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1".parse().unwrap());
        headers.append(header::COOKIE, "SSESSx=2".parse().unwrap());
        headers.append(header::AUTHORIZATION, "Bearer t".parse().unwrap());
        headers.append(header::ACCEPT, "*/*".parse().unwrap());
        let request = SourceRequest::new(headers, None, None);
        let (creds, _) = source.inner.credentials(&request);
        assert_eq!(creds.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(creds[header::COOKIE], "a=1; SSESSx=2");
        assert_eq!(creds[header::AUTHORIZATION], "Bearer t");
        assert!(!creds.contains_key(header::ACCEPT));
    }
}
