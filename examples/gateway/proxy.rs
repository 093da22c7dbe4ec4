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
}

impl Proxy {
    /// A proxy to `upstream` (`http://HOST[:PORT]`; the upstream is on the site's own network,
    /// so plain HTTP, as Traefik reaches Drupal in ISLE).
    pub fn new(upstream: &str, public_scheme: &str, trusted: Vec<IpNet>) -> Result<Self, String> {
        let uri: Uri = upstream
            .parse()
            .map_err(|e| format!("Drupal upstream {upstream:?}: {e}"))?;
        if uri.scheme_str() != Some("http")
            || uri.authority().is_none()
            || !matches!(uri.path(), "" | "/")
            || uri.query().is_some()
        {
            return Err(format!(
                "Drupal upstream {upstream:?}: expected http://HOST[:PORT], without a path"
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
        })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }
}

/// The axum handler: forward the request, stream the answer back; 502 when the upstream cannot
/// be reached. As Traefik by default, no time limit on the upstream's answer (an upload, an
/// export), only on connecting.
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
    // HTTP/2 requests carry the host in the URI, not in a Host header, and may split cookies
    // into several fields, which HTTP/1.1 wants joined (RFC 9113, section 8.2.3).
    if !parts.headers.contains_key(header::HOST)
        && let Some(host) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(header::HOST, host);
    }
    join_cookies(&mut parts.headers);
    strip_hop_by_hop(&mut parts.headers);
    set_forwarded(&proxy, peer.ip(), &mut parts.headers);
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    let req = http::Request::from_parts(parts, body);
    match proxy.client.request(req).await {
        Ok(res) => {
            let (mut parts, body) = res.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            eprintln!("gateway: Drupal upstream: {e}");
            (
                StatusCode::BAD_GATEWAY,
                "the site's upstream cannot be reached\n",
            )
                .into_response()
        }
    }
}

/// Several `Cookie` fields as one.
fn join_cookies(headers: &mut HeaderMap) {
    let values: Vec<&[u8]> = headers
        .get_all(header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if values.len() > 1
        && let Ok(joined) = HeaderValue::from_bytes(&values.join(&b"; "[..]))
    {
        headers.insert(header::COOKIE, joined);
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

/// The forwarding headers a client could forge: from a peer that is not a trusted proxy they
/// are removed before the gateway sets its own.
const FORWARDING: [&str; 3] = ["forwarded", "x-real-ip", "x-forwarded-"];

/// `X-Forwarded-For` (the peer appended to a trusted proxy's list, else the peer alone),
/// `X-Forwarded-Proto` and `X-Forwarded-Host` (a trusted proxy's, else the public scheme and
/// the request's `Host`). From any other peer, every forwarding header (`Forwarded`,
/// `X-Real-IP`, `X-Forwarded-*`) is dropped first.
fn set_forwarded(proxy: &Proxy, peer: IpAddr, headers: &mut HeaderMap) {
    const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    const PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    const HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    let peer = peer.to_canonical();
    let trusted = proxy.trusts(peer);
    if !trusted {
        let forged: Vec<HeaderName> = headers
            .keys()
            .filter(|k| {
                let k = k.as_str();
                FORWARDING.iter().any(|f| match f.strip_suffix('-') {
                    Some(_) => k.starts_with(f),
                    None => k == *f,
                })
            })
            .cloned()
            .collect();
        for name in forged {
            headers.remove(name);
        }
    }
    let earlier: Vec<&str> = headers
        .get_all(&XFF)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let xff = match earlier.is_empty() {
        true => peer.to_string(),
        false => format!("{}, {peer}", earlier.join(", ")),
    };
    headers.insert(
        XFF,
        HeaderValue::from_str(&xff).expect("addresses are ASCII"),
    );
    if !headers.contains_key(&PROTO) {
        let scheme = HeaderValue::from_str(&proxy.public_scheme).expect("a URL scheme");
        headers.insert(PROTO, scheme);
    }
    if !headers.contains_key(&HOST)
        && let Some(host) = headers.get(header::HOST).cloned()
    {
        headers.insert(HOST, host);
    }
}
