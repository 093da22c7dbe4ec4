//! The gateway's reverse proxy: every request that is not IIIF goes to the Drupal upstream as
//! it came (method, raw path and query, headers, body streamed), less the hop-by-hop headers,
//! with `X-Forwarded-For`, `-Proto` and `-Host` set; the answer comes back the same way,
//! redirects and cookies untouched.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ipnet::IpNet;

/// Headers that belong to one connection (RFC 9110, section 7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The upstream and how to reach it.
#[derive(Clone, Debug)]
pub struct Proxy {
    client: Client<HttpConnector, Body>,
    /// `http://drupal:80`: scheme and authority only.
    upstream: String,
    /// The public scheme, for `X-Forwarded-Proto` when no trusted proxy sent one.
    public_scheme: String,
    /// Proxies in front of the gateway (Traefik) whose `X-Forwarded-*` are kept.
    trusted: Vec<IpNet>,
    /// How long the upstream may take to start answering.
    timeout: Duration,
}

impl Proxy {
    /// A proxy to `upstream` (`http://HOST[:PORT]`; the upstream is on the site's own network,
    /// so plain HTTP, as Traefik reaches Drupal in ISLE).
    pub fn new(upstream: &str, public_scheme: &str, trusted: Vec<IpNet>) -> Result<Self, String> {
        let uri: Uri = upstream
            .parse()
            .map_err(|e| format!("Drupal upstream {upstream:?}: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(format!(
                "Drupal upstream {upstream:?}: expected http://HOST[:PORT]"
            ));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            client,
            upstream: format!("http://{}", uri.authority().expect("checked")),
            public_scheme: public_scheme.to_owned(),
            trusted,
            // Traefik's readTimeout in ISLE.
            timeout: Duration::from_secs(60),
        })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }
}

/// The axum handler: forward the request, stream the answer back; 502 when the upstream cannot
/// be reached, 504 when it does not answer in time.
pub async fn forward(
    State(proxy): State<Proxy>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{}{path}", proxy.upstream).parse::<Uri>() else {
        return (StatusCode::BAD_REQUEST, "malformed request target\n").into_response();
    };
    // HTTP/2 requests carry the host in the URI, not in a Host header.
    if !parts.headers.contains_key(header::HOST)
        && let Some(host) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(header::HOST, host);
    }
    strip_hop_by_hop(&mut parts.headers);
    set_forwarded(&proxy, peer.ip(), &mut parts.headers);
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    let req = http::Request::from_parts(parts, body);
    match tokio::time::timeout(proxy.timeout, proxy.client.request(req)).await {
        Ok(Ok(res)) => {
            let (mut parts, body) = res.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(e)) => {
            eprintln!("gateway: Drupal upstream: {e}");
            (
                StatusCode::BAD_GATEWAY,
                "the site's upstream cannot be reached\n",
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "the site's upstream did not answer in time\n",
        )
            .into_response(),
    }
}

/// Remove the hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP.map(HeaderName::from_static)) {
        headers.remove(name);
    }
}

/// `X-Forwarded-For` (the peer appended to a trusted proxy's list, else the peer alone),
/// `X-Forwarded-Proto` and `X-Forwarded-Host` (a trusted proxy's, else the public scheme and
/// the request's `Host`).
fn set_forwarded(proxy: &Proxy, peer: IpAddr, headers: &mut HeaderMap) {
    const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    const PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    const HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    let trusted = proxy.trusts(peer);
    let earlier = trusted
        .then(|| {
            let all: Vec<&str> = headers
                .get_all(&XFF)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!all.is_empty()).then(|| all.join(", "))
        })
        .flatten();
    let xff = match earlier {
        Some(list) => format!("{list}, {peer}"),
        None => peer.to_string(),
    };
    headers.insert(
        XFF,
        HeaderValue::from_str(&xff).expect("addresses are ASCII"),
    );
    if !trusted || !headers.contains_key(&PROTO) {
        let scheme = HeaderValue::from_str(&proxy.public_scheme).expect("a URL scheme");
        headers.insert(PROTO, scheme);
    }
    if !trusted || !headers.contains_key(&HOST) {
        match headers.get(header::HOST).cloned() {
            Some(host) => headers.insert(HOST, host),
            None => headers.remove(HOST),
        };
    }
}
