//! Tests of `layer`.

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
