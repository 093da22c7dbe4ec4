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
    pub fn forwarded_header(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).use_forwarded = on;
        self
    }

    /// Trust proxies in this network (a single host is a `/32` or `/128`).
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
#[derive(Debug, Clone)]
pub struct SetBaseUri<S> {
    inner: S,
    config: Arc<Config>,
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

fn parse_proxy(value: &str) -> Result<IpNet, InvalidProxy> {
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
mod tests {
    use super::*;
    use crate::base_uri::PublicIdentifier;
    use http::Response;
    use std::convert::Infallible;
    use tower::ServiceExt;

    type Seen = (Option<BaseUri>, Option<ClientIp>, Option<PublicIdentifier>);

    async fn seen(layer: &SetBaseUriLayer, peer: Option<&str>, headers: &[(&str, &str)]) -> Seen {
        let svc = layer.layer(tower::service_fn(|req: Request<()>| async move {
            let e = req.extensions();
            Ok::<_, Infallible>(Response::new((
                e.get::<BaseUri>().cloned(),
                e.get::<ClientIp>().copied(),
                e.get::<PublicIdentifier>().cloned(),
            )))
        }));
        let mut builder = Request::get("/iiif/3/page1/info.json");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut req = builder.body(()).unwrap();
        if let Some(peer) = peer {
            let ip: IpAddr = peer.parse().unwrap();
            req.extensions_mut().insert(SocketAddr::new(ip, 40000));
        }
        svc.oneshot(req).await.unwrap().into_body()
    }

    struct Case {
        name: &'static str,
        layer: SetBaseUriLayer,
        peer: Option<&'static str>,
        headers: Vec<(&'static str, &'static str)>,
        base: Option<&'static str>,
        ip: Option<&'static str>,
        id: Option<&'static str>,
    }

    fn proxied() -> SetBaseUriLayer {
        SetBaseUriLayer::forwarded()
            .trusted_proxies(["10.0.0.0/8", "2001:db8:ffff::/48"])
            .unwrap()
    }

    const PROXY: Option<&str> = Some("10.0.0.2");

    #[tokio::test]
    async fn table() {
        let fixed = || SetBaseUriLayer::fixed("https://iiif.example/");
        fn case(
            name: &'static str,
            layer: SetBaseUriLayer,
            peer: Option<&'static str>,
            headers: &[(&'static str, &'static str)],
            base: Option<&'static str>,
            ip: Option<&'static str>,
            id: Option<&'static str>,
        ) -> Case {
            Case {
                name,
                layer,
                peer,
                headers: headers.to_vec(),
                base,
                ip,
                id,
            }
        }
        let cases = [
            case(
                "fixed",
                fixed(),
                Some("192.0.2.1"),
                &[
                    ("x-forwarded-host", "evil.example"),
                    ("x-forwarded-id", "x"),
                ],
                Some("https://iiif.example"),
                Some("192.0.2.1"),
                None,
            ),
            case(
                "fixed, trusted proxy: client and identifier still read",
                fixed().trusted_proxies(["10.0.0.2"]).unwrap(),
                PROXY,
                &[
                    ("x-forwarded-host", "evil.example"),
                    ("x-forwarded-for", "203.0.113.5"),
                    ("x-forwarded-id", "pub"),
                ],
                Some("https://iiif.example"),
                Some("203.0.113.5"),
                Some("pub"),
            ),
            case(
                "untrusted peer: spoofed headers ignored",
                proxied(),
                Some("192.0.2.9"),
                &[
                    ("host", "iiif:8080"),
                    ("x-forwarded-host", "evil.example"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-for", "6.6.6.6"),
                    ("forwarded", "for=6.6.6.6;host=evil.example"),
                    ("x-forwarded-id", "secret"),
                ],
                None,
                Some("192.0.2.9"),
                None,
            ),
            case(
                "no peer address: nothing trusted",
                proxied(),
                None,
                &[
                    ("x-forwarded-host", "evil.example"),
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-id", "secret"),
                ],
                None,
                None,
                None,
            ),
            case(
                "trusted peer without proxy headers",
                proxied(),
                PROXY,
                &[("host", "iiif:8080")],
                Some("http://iiif:8080"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "https, default port dropped",
                proxied(),
                PROXY,
                &[
                    ("host", "iiif:8080"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "images.example.org"),
                    ("x-forwarded-port", "443"),
                ],
                Some("https://images.example.org"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "other port kept",
                proxied(),
                PROXY,
                &[
                    ("x-forwarded-proto", "HTTPS"),
                    ("x-forwarded-host", "images.example.org"),
                    ("x-forwarded-port", "8443"),
                ],
                Some("https://images.example.org:8443"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "port in X-Forwarded-Host",
                proxied(),
                PROXY,
                &[("x-forwarded-host", "images.example.org:8080")],
                Some("http://images.example.org:8080"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "default port in X-Forwarded-Host dropped",
                proxied(),
                PROXY,
                &[("x-forwarded-host", "images.example.org:80")],
                Some("http://images.example.org"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "X-Forwarded-Port wins over the host's port",
                proxied(),
                PROXY,
                &[
                    ("x-forwarded-host", "a.example:8080"),
                    ("x-forwarded-port", "9090"),
                ],
                Some("http://a.example:9090"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "X-Forwarded-Port with the Host header",
                proxied(),
                PROXY,
                &[
                    ("host", "a.example:8080"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-port", "443"),
                ],
                Some("https://a.example"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "IPv6 host",
                proxied(),
                PROXY,
                &[("x-forwarded-host", "[2001:db8::5]:8080")],
                Some("http://[2001:db8::5]:8080"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "comma lists: first value",
                proxied(),
                PROXY,
                &[
                    ("x-forwarded-proto", "https, http"),
                    ("x-forwarded-host", "a.example, b.internal:8182"),
                    ("x-forwarded-port", "443,8182"),
                ],
                Some("https://a.example"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "X-Forwarded-Path is the context path in front of the mount path",
                proxied(),
                PROXY,
                &[("host", "a.example"), ("x-forwarded-path", "/images/")],
                Some("http://a.example/images"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "X-Forwarded-Path / is the root context",
                proxied(),
                PROXY,
                &[("host", "a.example"), ("x-forwarded-path", "/")],
                Some("http://a.example"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "X-Forwarded-Prefix is prepended",
                proxied(),
                PROXY,
                &[
                    ("host", "a.example"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-prefix", "/cantaloupe/"),
                ],
                Some("https://a.example/cantaloupe"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "X-Forwarded-Prefix and -Path",
                proxied(),
                PROXY,
                &[
                    ("host", "a.example"),
                    ("x-forwarded-prefix", "/cantaloupe"),
                    ("x-forwarded-path", "/img, /other"),
                ],
                Some("http://a.example/cantaloupe/img"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "Forwarded is ignored unless asked for (proxies pass it through)",
                proxied(),
                PROXY,
                &[
                    ("forwarded", "for=192.0.2.60;proto=https;host=evil.example"),
                    ("x-forwarded-host", "b.example"),
                    ("x-forwarded-for", "198.51.100.1"),
                ],
                Some("http://b.example"),
                Some("198.51.100.1"),
                None,
            ),
            case(
                "Forwarded: a client's element in front is not believed",
                proxied().forwarded_header(true),
                PROXY,
                &[(
                    "forwarded",
                    "for=1.2.3.4;host=evil.example;proto=http, for=203.0.113.5;host=good.example;proto=https",
                )],
                Some("https://good.example"),
                Some("203.0.113.5"),
                None,
            ),
            case(
                "Forwarded with quoted host and IPv6 for",
                proxied().forwarded_header(true),
                PROXY,
                &[(
                    "forwarded",
                    r#"proto=https;host="a.example:8443";for="[2001:db8::1]:4711""#,
                )],
                Some("https://a.example:8443"),
                Some("2001:db8::1"),
                None,
            ),
            case(
                "with forwarded_header(true), only Forwarded is read",
                proxied().forwarded_header(true),
                PROXY,
                &[
                    ("forwarded", "for=192.0.2.60;proto=https;host=a.example"),
                    ("x-forwarded-proto", "http"),
                    ("x-forwarded-host", "b.example"),
                    ("x-forwarded-port", "8080"),
                    ("x-forwarded-for", "198.51.100.1"),
                ],
                Some("https://a.example"),
                Some("192.0.2.60"),
                None,
            ),
            case(
                "Forwarded without host: the Host header",
                proxied().forwarded_header(true),
                PROXY,
                &[
                    ("host", "iiif:8182"),
                    ("forwarded", "for=192.0.2.60;proto=https"),
                    ("x-forwarded-host", "b.example"),
                ],
                Some("https://iiif:8182"),
                Some("192.0.2.60"),
                None,
            ),
            case(
                "malformed Forwarded: nothing from either family",
                proxied().forwarded_header(true),
                PROXY,
                &[
                    ("forwarded", "for=\"192.0.2.60;proto=https"),
                    ("x-forwarded-host", "b.example"),
                    ("x-forwarded-for", "198.51.100.1"),
                ],
                Some("http://localhost"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "Forwarded elements: walk from the right",
                proxied().forwarded_header(true),
                PROXY,
                &[
                    ("forwarded", "for=6.6.6.6, for=203.0.113.5"),
                    ("forwarded", "for=\"10.1.1.1:80\";proto=http"),
                ],
                Some("http://localhost"),
                Some("203.0.113.5"),
                None,
            ),
            case(
                "Forwarded obfuscated node stops the walk: client unknown",
                proxied().forwarded_header(true),
                PROXY,
                &[("forwarded", "for=203.0.113.5, for=_hidden, for=10.1.1.1")],
                Some("http://localhost"),
                None,
                None,
            ),
            case(
                "X-Forwarded-For: trusted hops skipped",
                proxied(),
                PROXY,
                &[("x-forwarded-for", "203.0.113.5, 10.1.1.1")],
                Some("http://localhost"),
                Some("203.0.113.5"),
                None,
            ),
            case(
                "X-Forwarded-For: a spoofed leftmost entry is not believed",
                proxied(),
                PROXY,
                &[
                    ("x-forwarded-for", "1.1.1.1, 203.0.113.5"),
                    ("x-forwarded-for", "10.1.1.1"),
                ],
                Some("http://localhost"),
                Some("203.0.113.5"),
                None,
            ),
            case(
                "X-Forwarded-For: all trusted, the leftmost",
                proxied(),
                PROXY,
                &[("x-forwarded-for", "10.3.3.3, 2001:db8:ffff::7")],
                Some("http://localhost"),
                Some("10.3.3.3"),
                None,
            ),
            case(
                "X-Forwarded-For: unknown stops the walk: client unknown",
                proxied(),
                PROXY,
                &[("x-forwarded-for", "203.0.113.5, unknown, 10.1.1.1")],
                Some("http://localhost"),
                None,
                None,
            ),
            case(
                "junk X-Forwarded-* ignored",
                proxied(),
                PROXY,
                &[
                    ("host", "a.example"),
                    ("x-forwarded-host", "evil\"><script>"),
                    ("x-forwarded-proto", "javascript"),
                    ("x-forwarded-port", "99999"),
                    ("x-forwarded-path", "images"),
                    ("x-forwarded-prefix", "/a?b=<x>"),
                    ("x-forwarded-for", "not-an-ip"),
                ],
                Some("http://a.example"),
                None,
                None,
            ),
            case(
                "junk Forwarded ignored",
                proxied().forwarded_header(true),
                PROXY,
                &[
                    ("host", "a.example"),
                    ("forwarded", "host=evil\"><;proto=javascript"),
                    ("x-forwarded-path", "/x y"),
                ],
                Some("http://a.example"),
                None,
                None,
            ),
            case(
                "hostile Host header with no forwarded host",
                proxied(),
                PROXY,
                &[("host", "evil\"><")],
                Some("http://localhost"),
                Some("10.0.0.2"),
                None,
            ),
            case(
                "X-Forwarded-ID from a trusted proxy, percent-decoded once",
                proxied(),
                PROXY,
                &[("x-forwarded-id", " public%2Fname%2520x ")],
                Some("http://localhost"),
                Some("10.0.0.2"),
                Some("public/name%20x"),
            ),
            case(
                "IPv4-mapped peer address",
                proxied(),
                Some("::ffff:10.0.0.2"),
                &[("x-forwarded-for", "203.0.113.5")],
                Some("http://localhost"),
                Some("203.0.113.5"),
                None,
            ),
            case(
                "IPv6 trusted peer",
                proxied(),
                Some("2001:db8:ffff::1"),
                &[("x-forwarded-for", "203.0.113.5")],
                Some("http://localhost"),
                Some("203.0.113.5"),
                None,
            ),
        ];
        for c in cases {
            let (base, ip, id) = seen(&c.layer, c.peer, &c.headers).await;
            assert_eq!(
                base.as_ref().map(BaseUri::as_str),
                c.base,
                "{}: base",
                c.name
            );
            assert_eq!(
                ip.map(|ip| ip.0.to_string()).as_deref(),
                c.ip,
                "{}: ip",
                c.name
            );
            assert_eq!(
                id.as_ref().map(PublicIdentifier::as_str),
                c.id,
                "{}: id",
                c.name
            );
        }
    }

    #[tokio::test]
    async fn custom_peer_addr() {
        let layer = proxied().peer_addr(|p| {
            p.headers
                .get("x-test-peer")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        });
        let (base, ip, _) = seen(
            &layer,
            None,
            &[
                ("x-test-peer", "10.9.9.9"),
                ("x-forwarded-host", "a.example"),
            ],
        )
        .await;
        assert_eq!(base.unwrap().as_str(), "http://a.example");
        assert_eq!(ip.unwrap().0.to_string(), "10.9.9.9");
        // The default (a SocketAddr extension) is no longer read.
        let (base, ip, _) = seen(&layer, PROXY, &[("x-forwarded-host", "a.example")]).await;
        assert_eq!((base, ip), (None, None));
    }

    #[tokio::test]
    async fn non_ascii_headers_never_panic() {
        let svc = proxied().layer(tower::service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(Response::new(req.extensions().get::<BaseUri>().cloned()))
        }));
        let mut req = Request::get("/").body(()).unwrap();
        req.extensions_mut()
            .insert(SocketAddr::from(([10, 0, 0, 2], 1)));
        for name in [
            "host",
            "forwarded",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-port",
            "x-forwarded-path",
            "x-forwarded-prefix",
            "x-forwarded-for",
            "x-forwarded-id",
        ] {
            req.headers_mut().insert(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_bytes(b"\xff\xfe\x80a").unwrap(),
            );
        }
        let base = svc.oneshot(req).await.unwrap().into_body();
        assert_eq!(base.unwrap().as_str(), "http://localhost");
    }

    #[test]
    fn trusted_proxy_values() {
        let layer = SetBaseUriLayer::forwarded()
            .trusted_proxies([" 127.0.0.1 ", "::1", "10.1.2.3/8", "::ffff:192.0.2.1"])
            .unwrap()
            .trust("fd00::/8".parse().unwrap());
        let c = &layer.config;
        assert!(matches!(&c.mode, Mode::Forwarded));
        for (ip, trusted) in [
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("::1", true),
            ("10.200.0.1", true),
            ("11.0.0.1", false),
            ("192.0.2.1", true),
            ("fd12::1", true),
            ("fe80::1", false),
        ] {
            assert_eq!(c.is_trusted(ip.parse().unwrap()), trusted, "{ip}");
        }
        let err = SetBaseUriLayer::forwarded()
            .trusted_proxies(["10.0.0.0/33"])
            .unwrap_err();
        assert_eq!(err.value(), "10.0.0.0/33");
        assert!(err.to_string().contains("10.0.0.0/33"));
        assert!(
            SetBaseUriLayer::forwarded()
                .trusted_proxies(["unknown"])
                .is_err()
        );
        // The layer is cheap to clone and its builders do not affect earlier clones.
        let a = proxied();
        let b = a.clone().trust("192.0.2.0/24".parse().unwrap());
        assert!(!a.config.is_trusted("192.0.2.1".parse().unwrap()));
        assert!(b.config.is_trusted("192.0.2.1".parse().unwrap()));
    }
}
