//! `SetBaseUriLayer` and `SetBaseUri`: who may set the public base URI, and how.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::Request;
use http::request::Parts;
use ipnet::IpNet;
use tower_layer::Layer;
use tower_service::Service;

use super::forwarded::{self, ProxyInfo};
use super::{BaseUri, ClientIp};
use crate::service::HasIiifContext;

/// How the immediate peer's address is found in a request.
type PeerAddr = Arc<dyn Fn(&Parts) -> Option<IpAddr> + Send + Sync>;

/// Layer that applies [`SetBaseUri`] which inserts the public [`BaseUri`] of the mount, the
/// [`ClientIp`] and, from trusted proxies, the [`PublicIdentifier`](super::PublicIdentifier).
///
/// See the [module docs](crate::base_uri) for an example.
///
/// ```
/// # use std::convert::Infallible;
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_iiif::base_uri::{BaseUri, SetBaseUriLayer};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let seen = service_fn(|req: http::Request<()>| async move {
/// #     Ok::<_, Infallible>(req.extensions().get::<BaseUri>().cloned())
/// # });
///
/// // `seen` answers with the `BaseUri` extension of the request it gets.
/// let svc = SetBaseUriLayer::fixed("https://images.example.org/").layer(seen);
/// let req = http::Request::get("/a/info.json").header("host", "internal:8182").body(());
/// let base = svc.oneshot(req.unwrap()).await.unwrap().unwrap();
/// assert_eq!(base.as_str(), "https://images.example.org"); // whatever the Host header says
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SetBaseUriLayer {
    config: Arc<Config>,
}

impl SetBaseUriLayer {
    /// Always insert this [`BaseUri`]: the public URL of the app the service is mounted in,
    /// without the mount path (`scheme://host[:port][/path]`, like Cantaloupe's `base_uri`),
    /// whatever the request's headers say. The service appends its mount path. [`ClientIp`] and
    /// the public identifier still follow the trusted proxies, if any are configured.
    ///
    /// ```
    /// let layer = tower_iiif::base_uri::SetBaseUriLayer::fixed("https://images.example.org");
    /// ```
    pub fn fixed(uri: impl Into<String>) -> Self {
        Self::with_mode(Mode::Fixed(BaseUri::new(uri)))
    }

    /// Build the [`BaseUri`] of each request from the headers of trusted proxies
    /// (`X-Forwarded-*`, or `Forwarded` with [`forwarded_header`](Self::forwarded_header)): the
    /// public scheme, host, port and the path in front of the app (`X-Forwarded-Prefix`,
    /// `X-Forwarded-Path`). The service appends its own mount path (its `path_prefix`, or under
    /// axum's `nest_service` with the `axum` feature, the nested path). Requests from other
    /// peers get no [`BaseUri`], so the service falls back to its own (`Host` header and mount
    /// path).
    ///
    /// No proxy is trusted until [`trust`](Self::trust) or
    /// [`trusted_proxies`](Self::trusted_proxies) says so.
    ///
    /// ```
    /// let layer = tower_iiif::base_uri::SetBaseUriLayer::forwarded()
    ///     .trusted_proxies(["10.0.0.0/8"])
    ///     .unwrap();
    /// ```
    pub fn forwarded() -> Self {
        Self::with_mode(Mode::Forwarded)
    }

    fn with_mode(mode: Mode) -> Self {
        Self {
            config: Arc::new(Config {
                mode,
                trusted: Vec::new(),
                peer_addr: Arc::new(default_peer_addr),
                use_forwarded: false,
                warned: Arc::new(AtomicBool::new(false)),
            }),
        }
    }

    /// Read RFC 7239 `Forwarded` instead of `X-Forwarded-*` (off by default). Only one family is
    /// ever read: turn this on only when your proxies write `Forwarded`, since proxies that
    /// write `X-Forwarded-*` pass a client's own `Forwarded` header through untouched.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use std::net::SocketAddr;
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::base_uri::{BaseUri, SetBaseUriLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     Ok::<_, Infallible>(req.extensions().get::<BaseUri>().cloned())
    /// # });
    /// let layer = SetBaseUriLayer::forwarded().trusted_proxies(["10.0.0.0/8"]).unwrap();
    /// let svc = layer.forwarded_header(true).layer(seen);
    /// let forwarded = "for=203.0.113.7;proto=https;host=images.example.org";
    /// let req = http::Request::get("/a/info.json").header("forwarded", forwarded).body(());
    /// let mut req = req.unwrap();
    /// req.extensions_mut().insert(SocketAddr::from(([10, 0, 0, 2], 41234))); // the proxy
    /// let base = svc.oneshot(req).await.unwrap().unwrap();
    /// assert_eq!(base.as_str(), "https://images.example.org");
    /// # }
    /// ```
    pub fn forwarded_header(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).use_forwarded = on;
        self
    }

    /// Trust proxies in this network (a single host is a `/32` or `/128`).
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use std::net::SocketAddr;
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::base_uri::{ClientIp, SetBaseUriLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     Ok::<_, Infallible>(req.extensions().get::<ClientIp>().copied())
    /// # });
    /// let layer = SetBaseUriLayer::forwarded().trust("10.0.0.0/8".parse().unwrap()); // an `IpNet`
    /// let svc = layer.layer(seen);
    /// let req = http::Request::get("/").header("x-forwarded-for", "203.0.113.7").body(());
    /// let mut req = req.unwrap();
    /// req.extensions_mut().insert(SocketAddr::from(([10, 0, 0, 2], 41234))); // the proxy
    /// let client = svc.oneshot(req).await.unwrap().unwrap();
    /// assert_eq!(client.0.to_string(), "203.0.113.7");
    /// # }
    /// ```
    pub fn trust(mut self, net: IpNet) -> Self {
        Arc::make_mut(&mut self.config).trusted.push(net.trunc());
        self
    }

    /// Trust proxies at these addresses or in these CIDR ranges, e.g.
    /// `["127.0.0.1", "::1", "10.0.0.0/8", "fd00::/8"]`.
    ///
    /// # Errors
    ///
    /// [`InvalidProxy`] for the first value that is neither an IP address nor a CIDR range.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use std::net::SocketAddr;
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::base_uri::{ClientIp, SetBaseUriLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     Ok::<_, Infallible>(req.extensions().get::<ClientIp>().copied())
    /// # });
    /// let layer = SetBaseUriLayer::forwarded().trusted_proxies(["127.0.0.1", "10.0.0.0/8"]);
    /// let svc = layer.unwrap().layer(seen);
    /// // A peer that is not trusted: its `X-Forwarded-For` is ignored.
    /// let req = http::Request::get("/").header("x-forwarded-for", "203.0.113.7").body(());
    /// let mut req = req.unwrap();
    /// req.extensions_mut().insert(SocketAddr::from(([192, 0, 2, 1], 41234)));
    /// let client = svc.oneshot(req).await.unwrap().unwrap();
    /// assert_eq!(client.0.to_string(), "192.0.2.1");
    /// # }
    /// ```
    pub fn trusted_proxies<I>(mut self, proxies: I) -> Result<Self, InvalidProxy>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for proxy in proxies {
            let net = parse_proxy(proxy.as_ref())?;
            Arc::make_mut(&mut self.config).trusted.push(net);
        }
        Ok(self)
    }

    /// How to find the address of the immediate peer (the proxy, or the client itself) in a
    /// request. A request without one has no known peer, and nothing it says is trusted; when
    /// proxies are trusted, the first such request is logged as a warning.
    ///
    /// By default the peer is a [`SocketAddr`] request extension or, with the `axum` feature,
    /// axum's `ConnectInfo<SocketAddr>` (an app served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`). Another server can be read
    /// like this:
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use tower_iiif::base_uri::SetBaseUriLayer;
    ///
    /// #[derive(Clone)]
    /// struct Peer(SocketAddr);
    ///
    /// let layer = SetBaseUriLayer::forwarded()
    ///     .trusted_proxies(["127.0.0.1", "10.0.0.0/8"])
    ///     .unwrap()
    ///     .peer_addr(|p| p.extensions.get::<Peer>().map(|p| p.0.ip()));
    /// ```
    pub fn peer_addr<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<IpAddr> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config).peer_addr = Arc::new(f);
        self
    }
}

impl<S> Layer<S> for SetBaseUriLayer {
    type Service = SetBaseUri<S>;

    fn layer(&self, inner: S) -> SetBaseUri<S> {
        SetBaseUri {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// Middleware that inserts the public [`BaseUri`] of the mount (fixed, or from trusted
/// proxies' `Forwarded` / `X-Forwarded-*` headers), the [`ClientIp`] and, from trusted proxies,
/// the [`PublicIdentifier`](super::PublicIdentifier) as request extensions.
///
/// See the [module docs](crate::base_uri) for an example.
///
/// ```
/// # use std::convert::Infallible;
/// use std::net::SocketAddr;
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_iiif::base_uri::{PublicIdentifier, SetBaseUriLayer};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let seen = service_fn(|req: http::Request<()>| async move {
/// #     Ok::<_, Infallible>(req.extensions().get::<PublicIdentifier>().cloned())
/// # });
///
/// // `seen` answers with the `PublicIdentifier` extension of the request it gets.
/// let layer = SetBaseUriLayer::fixed("https://images.example.org").trusted_proxies(["10.0.0.2"]);
/// let svc = layer.unwrap().layer(seen);
/// let req = http::Request::get("/b/info.json").header("x-forwarded-id", "a%2Fb").body(());
/// let mut req = req.unwrap();
/// req.extensions_mut().insert(SocketAddr::from(([10, 0, 0, 2], 41234))); // the proxy
/// let id = svc.oneshot(req).await.unwrap().unwrap();
/// assert_eq!(id.as_str(), "a/b"); // the trusted proxy's `X-Forwarded-ID`, decoded
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SetBaseUri<S> {
    inner: S,
    config: Arc<Config>,
}

impl SetBaseUri<()> {
    /// Returns a new [`Layer`] that wraps services with a [`SetBaseUri`] middleware reading
    /// trusted proxies' headers (the same as [`SetBaseUriLayer::forwarded`]).
    ///
    /// ```
    /// use tower_iiif::base_uri::SetBaseUri;
    /// let layer = SetBaseUri::layer().trusted_proxies(["10.0.0.0/8"]).unwrap();
    /// ```
    pub fn layer() -> SetBaseUriLayer {
        SetBaseUriLayer::forwarded()
    }
}

impl<S> SetBaseUri<S> {
    /// Wrap `inner`, trusting no proxy yet (it then inserts the [`ClientIp`] of the peer
    /// only); the same as `SetBaseUriLayer::forwarded().layer(inner)`.
    ///
    /// ```
    /// use tower_iiif::base_uri::SetBaseUri;
    /// let svc = SetBaseUri::new(tower::service_fn(|_req: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// }));
    /// let _inner = svc.into_inner();
    /// ```
    pub fn new(inner: S) -> Self {
        SetBaseUriLayer::forwarded().layer(inner)
    }
}

impl<S> SetBaseUri<S> {
    /// Gets a reference to the underlying service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Gets a mutable reference to the underlying service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the underlying service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: HasIiifContext> HasIiifContext for SetBaseUri<S> {
    fn iiif_context(&self) -> crate::service::IiifContext {
        self.inner.iiif_context()
    }
}

impl<S, B> Service<Request<B>> for SetBaseUri<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> S::Future {
        let (mut parts, body) = req.into_parts();
        self.config.apply(&mut parts);
        self.inner.call(Request::from_parts(parts, body))
    }
}

/// The error of [`SetBaseUriLayer::trusted_proxies`]: a value that is neither an IP address
/// nor a CIDR range.
///
/// ```
/// let err = tower_iiif::base_uri::SetBaseUriLayer::forwarded()
///     .trusted_proxies(["10.0.0.0/8", "proxy.internal"])
///     .unwrap_err();
/// assert_eq!(err.value(), "proxy.internal");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidProxy(String);

impl InvalidProxy {
    /// The value that could not be read.
    ///
    /// ```
    /// use tower_iiif::base_uri::SetBaseUriLayer;
    ///
    /// let err = SetBaseUriLayer::forwarded().trusted_proxies(["localhost"]).unwrap_err();
    /// assert_eq!(err.value(), "localhost");
    /// ```
    pub fn value(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvalidProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid trusted proxy {:?}: expected an IP address or a CIDR range like 10.0.0.0/8",
            self.0
        )
    }
}

impl std::error::Error for InvalidProxy {}

/// A trusted proxy as [`SetBaseUriLayer::trusted_proxies`] reads it: a network in CIDR
/// notation (host bits dropped) or a single address (IPv4-mapped IPv6 read as IPv4), for hosts
/// that check peers against the same list.
///
/// ```
/// use tower_iiif::base_uri::parse_proxy;
/// assert_eq!(parse_proxy(" 10.1.2.3/8 ").unwrap().to_string(), "10.0.0.0/8");
/// assert_eq!(parse_proxy("::ffff:127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
/// assert!(parse_proxy("proxy.example").is_err());
/// ```
pub fn parse_proxy(value: &str) -> Result<IpNet, InvalidProxy> {
    let v = value.trim();
    if let Ok(net) = v.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    let ip = v
        .parse::<IpAddr>()
        .map_err(|_| InvalidProxy(v.to_owned()))?
        .to_canonical();
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    IpNet::new(ip, bits).map_err(|_| InvalidProxy(v.to_owned()))
}

/// The default [`SetBaseUriLayer::peer_addr`]: a `SocketAddr` request extension, or axum's
/// `ConnectInfo<SocketAddr>` (feature `axum`).
fn default_peer_addr(parts: &Parts) -> Option<IpAddr> {
    if let Some(addr) = parts.extensions.get::<SocketAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0.ip());
    }
    None
}

#[derive(Debug, Clone)]
enum Mode {
    Fixed(BaseUri),
    Forwarded,
}

#[derive(Clone)]
struct Config {
    mode: Mode,
    trusted: Vec<IpNet>,
    peer_addr: PeerAddr,
    use_forwarded: bool,
    /// Whether a request without a peer address has been logged (once per layer).
    warned: Arc<AtomicBool>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("trusted", &self.trusted)
            .field("peer_addr", &format_args!("<fn>"))
            .finish()
    }
}

impl Config {
    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// Insert the extensions: [`BaseUri`] (fixed, or from a trusted peer's headers),
    /// [`ClientIp`] (when the peer is known) and the public identifier (trusted peers only).
    fn apply(&self, parts: &mut Parts) {
        let peer = (self.peer_addr)(&*parts).map(|ip| ip.to_canonical());
        if peer.is_none() && !self.trusted.is_empty() && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "SetBaseUri: trusted proxies are configured but a request carries no peer \
                 address, so its proxy headers are ignored; serve the app with its peer address \
                 (axum: the `axum` feature and into_make_service_with_connect_info) or set \
                 SetBaseUriLayer::peer_addr"
            );
        }
        let mut base = match &self.mode {
            Mode::Fixed(base) => Some(base.clone()),
            Mode::Forwarded => None,
        };
        let mut client = peer;
        let mut public_id = None;
        if let Some(peer) = peer.filter(|&ip| self.is_trusted(ip)) {
            let info = ProxyInfo::from_headers(&parts.headers, self.use_forwarded, |ip| {
                self.is_trusted(ip)
            });
            client = forwarded::client_ip(&info.chain, peer, |ip| self.is_trusted(ip));
            public_id = forwarded::public_identifier(&parts.headers);
            if let Mode::Forwarded = &self.mode {
                base = Some(forwarded::base_uri(&*parts, &info));
            }
        }
        if let Some(base) = base {
            parts.extensions.insert(base);
        }
        if let Some(ip) = client {
            parts.extensions.insert(ClientIp(ip));
        }
        if let Some(id) = public_id {
            parts.extensions.insert(id);
        }
    }
}

#[cfg(test)]
mod tests;
