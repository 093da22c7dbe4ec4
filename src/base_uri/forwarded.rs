//! Reading what proxies say about the original request: RFC 7239 `Forwarded` and the
//! `X-Forwarded-*` family. Pure functions over request parts; the caller decides whether the
//! peer is trusted at all. Nothing here panics on any header bytes: values that are not visible
//! ASCII (`HeaderValue::to_str` fails) are ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderMap;
use http::header::{FORWARDED, HOST};
use http::request::Parts;
use percent_encoding::percent_decode_str;

use super::{BaseUri, PublicIdentifier};

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_FORWARDED_PORT: &str = "x-forwarded-port";
const X_FORWARDED_PATH: &str = "x-forwarded-path";
const X_FORWARDED_PREFIX: &str = "x-forwarded-prefix";
const X_FORWARDED_ID: &str = "x-forwarded-id";

/// What the proxies said about the original request, unvalidated: either all from `Forwarded`
/// (when it is present and well-formed) or all from `X-Forwarded-*`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct ProxyInfo {
    /// The client's protocol: the first value.
    pub(super) proto: Option<String>,
    /// The host the client asked for, maybe with `:port`: the first value.
    pub(super) host: Option<String>,
    /// `X-Forwarded-Port`'s first value; never set from `Forwarded` (its `host` has the port).
    pub(super) port: Option<String>,
    /// The `X-Forwarded-For` entries or the `Forwarded: for=` values, client first, the one the
    /// nearest proxy wrote last. An element without `for`, or a header line that is not ASCII,
    /// is an empty entry (which stops the walk in [`client_ip`]).
    pub(super) chain: Vec<String>,
}

impl ProxyInfo {
    /// Read one header family: RFC 7239 `Forwarded` when `use_forwarded` (and then nothing of
    /// `X-Forwarded-*`), else `X-Forwarded-*` (and never `Forwarded`, which proxies that set
    /// `X-Forwarded-*` pass through from the client untouched). From `Forwarded`, `host` and
    /// `proto` come from the element where the client walk stops: the one the proxy facing the
    /// client wrote, not one a client put in front.
    pub(super) fn from_headers(
        headers: &HeaderMap,
        use_forwarded: bool,
        is_trusted: impl Fn(IpAddr) -> bool,
    ) -> Self {
        if use_forwarded {
            let Some(elements) = forwarded_elements(headers) else {
                return Self::default();
            };
            let chain: Vec<String> = elements
                .iter()
                .map(|e| e.node_for.clone().unwrap_or_default())
                .collect();
            let at = walk_stop(&chain, &is_trusted).unwrap_or(0);
            let (proto, host) = elements
                .get(at)
                .map(|e| (e.proto.clone(), e.host.clone()))
                .unwrap_or_default();
            return Self {
                proto,
                host,
                port: None,
                chain,
            };
        }
        Self {
            proto: first_value(headers, X_FORWARDED_PROTO).map(str::to_owned),
            host: first_value(headers, X_FORWARDED_HOST).map(str::to_owned),
            port: first_value(headers, X_FORWARDED_PORT).map(str::to_owned),
            chain: list_values(headers, X_FORWARDED_FOR),
        }
    }
}

/// The public base URI from a trusted proxy's information: scheme from `proto` (else the
/// request's, else `http`), host from `host` (else the `Host` header, else the URI authority,
/// else `localhost`), port from `X-Forwarded-Port` (else the host's; default ports dropped), path
/// `X-Forwarded-Prefix` + `X-Forwarded-Path` (the service appends its mount path). `X-Forwarded-Path` is Cantaloupe's
/// context path: it stands in front of the IIIF route, so an Islandora proxy that strips
/// `/cantaloupe` and sends `X-Forwarded-Path: /cantaloupe` gets `…/cantaloupe/iiif/2`.
pub(super) fn base_uri(parts: &Parts, info: &ProxyInfo) -> BaseUri {
    let headers = &parts.headers;
    let scheme = info
        .proto
        .as_deref()
        .and_then(valid_scheme)
        .or_else(|| parts.uri.scheme_str().and_then(valid_scheme))
        .unwrap_or("http");
    let (host, host_port) = info
        .host
        .as_deref()
        .and_then(valid_host)
        .or_else(|| {
            headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(valid_host)
        })
        .or_else(|| parts.uri.authority().and_then(|a| valid_host(a.as_str())))
        .unwrap_or(("localhost", None));
    let port = info
        .port
        .as_deref()
        .and_then(valid_port)
        .or(host_port)
        .filter(|&p| !matches!((scheme, p), ("http", 80) | ("https", 443)));
    let context = first_value(headers, X_FORWARDED_PATH)
        .and_then(valid_path)
        .unwrap_or("");
    let path = context;
    let prefix = first_value(headers, X_FORWARDED_PREFIX)
        .and_then(valid_path)
        .unwrap_or("");
    let uri = match port {
        Some(port) => format!("{scheme}://{host}:{port}{prefix}{path}"),
        None => format!("{scheme}://{host}{prefix}{path}"),
    };
    BaseUri::new(uri)
}

/// Where the walk over `chain` stops: from the right (from the proxy nearest to us), skipping
/// addresses that are trusted proxies themselves, the first untrusted address, or the first
/// entry that is not an address; if all are trusted addresses, the leftmost. `None` when empty.
fn walk_stop(chain: &[String], is_trusted: impl Fn(IpAddr) -> bool) -> Option<usize> {
    let mut stop = None;
    for (i, entry) in chain.iter().enumerate().rev() {
        stop = Some(i);
        match node_ip(entry) {
            Some(ip) if is_trusted(ip) => continue,
            _ => break,
        }
    }
    stop
}

/// The client's address: the address where the walk over `chain` stops (see [`walk_stop`]);
/// `peer` when the chain is empty; `None` when the walk stops at an entry that is not an
/// address (`unknown`, `_hidden`, junk): then the client is unknown, and never taken to be one
/// of our own proxies.
pub(super) fn client_ip(
    chain: &[String],
    peer: IpAddr,
    is_trusted: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    match walk_stop(chain, is_trusted) {
        None => Some(peer),
        Some(i) => node_ip(&chain[i]),
    }
}

/// A trusted proxy's `X-Forwarded-ID`: the first header line, trimmed, percent-decoded once
/// as UTF-8, when not empty. (Not split at commas: an identifier is not a list.)
pub(super) fn public_identifier(headers: &HeaderMap) -> Option<PublicIdentifier> {
    let raw = headers.get(X_FORWARDED_ID)?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    let id = percent_decode_str(raw).decode_utf8().ok()?;
    (!id.is_empty()).then(|| PublicIdentifier::new(id.into_owned()))
}

/// The first comma-separated value of the first `name` header line, trimmed, when not empty.
fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let v = headers.get(name)?.to_str().ok()?.split(',').next()?.trim();
    (!v.is_empty()).then_some(v)
}

/// Every comma-separated value of every `name` header line, in order, trimmed; split on the
/// raw bytes, so a value that is not UTF-8 is one empty value and costs only itself.
fn list_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|line| line.as_bytes().split(|&b| b == b','))
        .map(|v| std::str::from_utf8(v).map_or(String::new(), |s| s.trim().to_owned()))
        .collect()
}

/// `http` or `https`, in any case; nothing else.
fn valid_scheme(proto: &str) -> Option<&'static str> {
    let p = proto.trim();
    if p.eq_ignore_ascii_case("https") {
        Some("https")
    } else if p.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// The longest forwarded host accepted: a DNS name (253), brackets or a port.
const MAX_HOST: usize = 262;
/// The longest forwarded path accepted (`X-Forwarded-Path` / `-Prefix`).
const MAX_PATH: usize = 1024;

/// `host[:port]` split into the host (IPv6 literals keep their brackets) and the port, or
/// `None` when the value holds anything but host characters, is malformed or longer than a
/// host name can be.
pub(super) fn valid_host(value: &str) -> Option<(&str, Option<u16>)> {
    let s = value.trim();
    if s.is_empty()
        || s.len() > MAX_HOST
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b))
    {
        return None;
    }
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let (addr, after) = rest.split_once(']')?;
            addr.parse::<Ipv6Addr>().ok()?;
            // "[" + addr + "]": all ASCII, so any index is a char boundary.
            let host = &s[..addr.len() + 2];
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':')?)),
            }
        }
        None => match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        },
    };
    if host.is_empty() || (!host.starts_with('[') && host.contains(['[', ']'])) {
        return None;
    }
    let port = match port {
        Some(p) => Some(valid_port(p)?),
        None => None,
    };
    Some((host, port))
}

/// A port: 1 to 5 ASCII digits, 1..=65535.
fn valid_port(value: &str) -> Option<u16> {
    let p = value.trim();
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

/// A path from `X-Forwarded-Path` / `-Prefix`: starts with `/`, only URI path characters
/// (RFC 3986 `pchar`, `/`, `%`; so no `?`, `#`, spaces, quotes, `<>` or control characters);
/// trailing slashes are stripped (`/` alone becomes the empty path); at most 1,024 bytes.
fn valid_path(value: &str) -> Option<&str> {
    let p = value.trim();
    let ok = p.starts_with('/')
        && p.len() <= MAX_PATH
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/".contains(&b));
    ok.then(|| p.trim_end_matches('/'))
}

/// Every parser of this module over one value, for the fuzzer (`__private::fuzz`).
pub(crate) fn fuzz_parse(value: &str) {
    let mut out = Vec::new();
    let _ = parse_forwarded(value, &mut out);
    let _ = valid_host(value);
    let _ = valid_path(value);
    let _ = valid_scheme(value);
    let _ = node_ip(value);
    if let Ok(v) = http::HeaderValue::from_str(value) {
        let mut headers = HeaderMap::new();
        headers.insert("forwarded", v.clone());
        headers.insert(X_FORWARDED_HOST, v.clone());
        headers.append("x-forwarded-for", v);
        let _ = forwarded_elements(&headers);
        let _ = list_values(&headers, "x-forwarded-for");
        let _ = public_identifier(&headers);
    }
}

/// The address in a `for=` node or an `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5`, `::1`,
/// `[::1]`, `[::1]:80` (optionally in double quotes); ports, also obfuscated ones (`_abc`), are
/// dropped. IPv4-mapped IPv6 addresses become IPv4. `unknown`, `_hidden` and junk are `None`.
pub(super) fn node_ip(entry: &str) -> Option<IpAddr> {
    let s = entry.trim();
    let s = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    let ip = if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        if !after.is_empty() && !after.strip_prefix(':').is_some_and(is_node_port) {
            return None;
        }
        IpAddr::V6(addr.parse::<Ipv6Addr>().ok()?)
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        ip
    } else {
        let (addr, port) = s.rsplit_once(':')?;
        if !is_node_port(port) {
            return None;
        }
        IpAddr::V4(addr.parse::<Ipv4Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

/// RFC 7239 `node-port`: a port number or an obfuscated port (`_` then alphanumerics, `.`,
/// `_`, `-`).
fn is_node_port(p: &str) -> bool {
    let digits = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    let obfuscated = p.len() > 1
        && p.starts_with('_')
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    digits || obfuscated
}

/// One `Forwarded` element: the parameters we use (`by` and extensions are skipped).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Element {
    /// `for=`, unquoted.
    pub(super) node_for: Option<String>,
    /// `proto=`, unquoted.
    pub(super) proto: Option<String>,
    /// `host=`, unquoted.
    pub(super) host: Option<String>,
}

/// Every element of every `Forwarded` header line, in order; `None` when there is none, or
/// any line is not visible ASCII or not RFC 7239 syntax (then `X-Forwarded-*` is used).
pub(super) fn forwarded_elements(headers: &HeaderMap) -> Option<Vec<Element>> {
    let mut out = Vec::new();
    for line in headers.get_all(FORWARDED).iter() {
        parse_forwarded(line.to_str().ok()?, &mut out)?;
    }
    (!out.is_empty()).then_some(out)
}

/// Parse one `Forwarded` header line (RFC 7239 §4), appending its elements to `out`:
/// `1#( [pair] *( ";" [pair] ) )`, `pair = token "=" ( token / quoted-string )`. Lenient where
/// proxies are: whitespace around `;` and `,`, and unquoted values with characters a token does
/// not allow (`host=a:80`; the values are validated later). Parameter names are
/// case-insensitive; a repeated parameter keeps its first value. `None` on a syntax error.
pub(super) fn parse_forwarded(value: &str, out: &mut Vec<Element>) -> Option<()> {
    let b = value.as_bytes();
    let is_ows = |c: &u8| *c == b' ' || *c == b'\t';
    let mut i = 0;
    let mut element = Element::default();
    let mut pairs = 0usize;
    loop {
        while b.get(i).is_some_and(is_ows) {
            i += 1;
        }
        let Some(&c) = b.get(i) else { break };
        if c == b',' || c == b';' {
            i += 1;
            if c == b',' && pairs > 0 {
                out.push(std::mem::take(&mut element));
                pairs = 0;
            }
            continue;
        }
        // token "="
        let start = i;
        while b.get(i).is_some_and(|&c| is_tchar(c)) {
            i += 1;
        }
        if i == start || b.get(i) != Some(&b'=') {
            return None;
        }
        // Only ASCII bytes were skipped since `start`, so both are char boundaries.
        let name = value.get(start..i)?;
        i += 1;
        let v = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut s = String::new();
            loop {
                match *b.get(i)? {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        s.push(char::from(*b.get(i + 1)?));
                        i += 2;
                    }
                    c => {
                        s.push(char::from(c));
                        i += 1;
                    }
                }
            }
            s
        } else {
            let start = i;
            while b
                .get(i)
                .is_some_and(|&c| !matches!(c, b';' | b',' | b' ' | b'\t'))
            {
                i += 1;
            }
            // Stops at an ASCII delimiter or the end: a char boundary.
            value.get(start..i)?.to_owned()
        };
        while b.get(i).is_some_and(is_ows) {
            i += 1;
        }
        if b.get(i).is_some_and(|c| *c != b';' && *c != b',') {
            return None;
        }
        pairs += 1;
        let slot = if name.eq_ignore_ascii_case("for") {
            Some(&mut element.node_for)
        } else if name.eq_ignore_ascii_case("proto") {
            Some(&mut element.proto)
        } else if name.eq_ignore_ascii_case("host") {
            Some(&mut element.host)
        } else {
            None
        };
        if let Some(slot) = slot.filter(|s| s.is_none()) {
            *slot = Some(v);
        }
    }
    if pairs > 0 {
        out.push(element);
    }
    Some(())
}

/// RFC 9110 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Option<Vec<Element>> {
        let mut out = Vec::new();
        parse_forwarded(v, &mut out).map(|()| out)
    }

    fn el(node_for: Option<&str>, proto: Option<&str>, host: Option<&str>) -> Element {
        Element {
            node_for: node_for.map(str::to_owned),
            proto: proto.map(str::to_owned),
            host: host.map(str::to_owned),
        }
    }

    #[test]
    fn forwarded_syntax() {
        assert_eq!(
            parse(r#"for="[2001:db8::1]:4711";proto=https;host="a.example:8443""#),
            Some(vec![el(
                Some("[2001:db8::1]:4711"),
                Some("https"),
                Some("a.example:8443")
            )])
        );
        // Lists, whitespace, case-insensitive names, `by` ignored, first value of a repeat kept.
        assert_eq!(
            parse("For=192.0.2.60; Proto=http; by=203.0.113.43 , for=10.0.0.1;for=10.9.9.9"),
            Some(vec![
                el(Some("192.0.2.60"), Some("http"), None),
                el(Some("10.0.0.1"), None, None),
            ])
        );
        // Commas and semicolons inside quoted strings, quoted-pairs.
        assert_eq!(
            parse(r#"host="a,b;c", for="x\"y""#),
            Some(vec![
                el(None, None, Some("a,b;c")),
                el(Some("x\"y"), None, None)
            ])
        );
        // Empty elements and pairs are allowed.
        assert_eq!(
            parse(",;for=unknown;,"),
            Some(vec![el(Some("unknown"), None, None)])
        );
        assert_eq!(parse(""), Some(vec![]));
        // Lenient unquoted values; validated later.
        assert_eq!(
            parse(r#"host=evil"><"#),
            Some(vec![el(None, None, Some(r#"evil"><"#))])
        );
        // Syntax errors.
        for bad in [
            "for",
            "=x",
            "for=\"unterminated",
            "for=\"a\"b",
            "for=a b",
            "for=\"a\\",
            "fär=1",
            "for =1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn node_addresses() {
        for (entry, want) in [
            ("192.0.2.1", Some("192.0.2.1")),
            (" 192.0.2.1:8080 ", Some("192.0.2.1")),
            ("\"192.0.2.1:_p1\"", Some("192.0.2.1")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("[2001:db8::1]:4711", Some("2001:db8::1")),
            ("::ffff:10.0.0.1", Some("10.0.0.1")),
            ("unknown", None),
            ("_hidden", None),
            ("", None),
            ("[2001:db8::1]x", None),
            ("192.0.2.1:http", None),
            ("2001:db8::1:99999", None),
            ("[192.0.2.1]", None),
        ] {
            assert_eq!(
                node_ip(entry),
                want.map(|w| w.parse::<IpAddr>().unwrap()),
                "{entry}"
            );
        }
    }

    #[test]
    fn hosts_ports_paths_schemes() {
        assert_eq!(valid_host("a.example"), Some(("a.example", None)));
        assert_eq!(
            valid_host(" a.example:8443 "),
            Some(("a.example", Some(8443)))
        );
        assert_eq!(
            valid_host("[2001:db8::1]:80"),
            Some(("[2001:db8::1]", Some(80)))
        );
        assert_eq!(valid_host("[2001:db8::1]"), Some(("[2001:db8::1]", None)));
        assert_eq!(
            valid_host("my_service:8182"),
            Some(("my_service", Some(8182)))
        );
        for bad in [
            "",
            "evil\"><",
            "a b",
            "a/b",
            "user@a",
            "a:",
            "a:0",
            "a:65536",
            "a:+80",
            "a:1:2",
            "2001:db8::1",
            "[nope]",
            "[::1]x",
            "a]b",
            ":80",
        ] {
            assert_eq!(valid_host(bad), None, "{bad:?}");
        }
        // Length caps: a host name of 253 and a port pass, 5,000 characters do not.
        let name = format!("{}.example", "a".repeat(245));
        assert!(valid_host(&format!("{name}:8443")).is_some());
        assert_eq!(valid_host(&"a".repeat(5000)), None);
        assert_eq!(valid_path(&format!("/{}", "a".repeat(5000))), None);
        assert!(valid_path(&format!("/{}", "a".repeat(1000))).is_some());
        assert_eq!(valid_port("443"), Some(443));
        assert_eq!(valid_port("00443"), Some(443));
        assert_eq!(valid_port("443000"), None);
        assert_eq!(valid_path("/a/b/"), Some("/a/b"));
        assert_eq!(valid_path("/"), Some(""));
        assert_eq!(valid_path("/a%20b"), Some("/a%20b"));
        for bad in ["a", "", "/a?b", "/a#b", "/a b", "/a\"b", "/a<b>", "/a\tb"] {
            assert_eq!(valid_path(bad), None, "{bad:?}");
        }
        assert_eq!(valid_scheme("HTTPS"), Some("https"));
        assert_eq!(valid_scheme(" http "), Some("http"));
        assert_eq!(valid_scheme("javascript"), None);
        assert_eq!(valid_scheme("ws"), None);
    }

    #[test]
    fn client_walk() {
        let trusted = |ip: IpAddr| ip.to_string().starts_with("10.");
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let walk = |chain: &[&str]| {
            let chain: Vec<String> = chain.iter().map(|s| s.to_string()).collect();
            client_ip(&chain, peer, trusted).map_or("none".to_owned(), |ip| ip.to_string())
        };
        assert_eq!(walk(&[]), "10.0.0.2");
        assert_eq!(walk(&["203.0.113.5"]), "203.0.113.5");
        assert_eq!(walk(&["203.0.113.5", "10.1.1.1"]), "203.0.113.5");
        // A client-supplied (spoofed) leftmost entry is not believed.
        assert_eq!(walk(&["1.1.1.1", "203.0.113.5", "10.1.1.1"]), "203.0.113.5");
        assert_eq!(walk(&["10.3.3.3", "10.1.1.1"]), "10.3.3.3");
        // Junk stops the walk: the client is unknown, never one of our proxies.
        assert_eq!(walk(&["203.0.113.5", "unknown", "10.1.1.1"]), "none");
        assert_eq!(walk(&["203.0.113.5", "_hidden"]), "none");
        assert_eq!(walk(&["", "203.0.113.5"]), "203.0.113.5");
    }

    #[test]
    fn ascii_only_header_values_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_HOST,
            http::HeaderValue::from_bytes(b"\xffa.example").unwrap(),
        );
        h.append(
            X_FORWARDED_FOR,
            http::HeaderValue::from_bytes(b"203.0.113.5").unwrap(),
        );
        h.append(
            X_FORWARDED_FOR,
            http::HeaderValue::from_bytes(b"\xfe10.1.1.1").unwrap(),
        );
        h.insert(
            FORWARDED,
            http::HeaderValue::from_bytes(b"for=\xff").unwrap(),
        );
        let info = ProxyInfo::from_headers(&h, false, |_| false);
        assert_eq!(info.host, None);
        assert_eq!(info.chain, vec!["203.0.113.5".to_owned(), String::new()]);
        // A bad value in one line costs only itself (proxies append to the client's line).
        let mut h2 = HeaderMap::new();
        h2.insert(
            X_FORWARDED_FOR,
            http::HeaderValue::from_bytes(b"\xff, 203.0.113.5").unwrap(),
        );
        let info = ProxyInfo::from_headers(&h2, false, |_| false);
        assert_eq!(info.chain, vec![String::new(), "203.0.113.5".to_owned()]);
        h.insert(
            X_FORWARDED_ID,
            http::HeaderValue::from_bytes(b"%FF%FE").unwrap(),
        );
        assert_eq!(public_identifier(&h), None);
        h.insert(X_FORWARDED_ID, http::HeaderValue::from_static("  "));
        assert_eq!(public_identifier(&h), None);
        h.insert(X_FORWARDED_ID, http::HeaderValue::from_static(" a%2Fb,c "));
        assert_eq!(public_identifier(&h), Some(PublicIdentifier::new("a/b,c")));
    }
}
