//! What an HTTP source may fetch: URLs under an allow-list, connected only to addresses that
//! are public or named by the configuration, checked where the connection is made (the DNS
//! resolver the client connects with), so a name that resolves differently on the second look
//! (DNS rebinding) gains nothing.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::Error;

/// The URL prefixes an HTTP source may fetch, and the networks it may connect to besides
/// public addresses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Guard {
    prefixes: Vec<Url>,
    networks: Vec<IpNet>,
    addresses: HashSet<IpAddr>,
    /// Host names of the site's own back ends: they may resolve to internal addresses.
    backends: HashSet<String>,
}

impl Guard {
    /// Allow URLs under `prefix` (`http` or `https`; normalized, e.g. a bare host gains its
    /// `/`). A prefix whose host is an IP address also allows connecting to that address.
    pub(crate) fn allow(&mut self, prefix: &str) -> Result<(), Error> {
        let url = Url::parse(prefix)
            .map_err(|e| Error::internal(format!("allow-list entry {prefix:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::internal(format!(
                "allow-list entry {prefix:?}: not an http(s) URL with a host"
            )));
        }
        if let Some(ip) = host_ip(&url) {
            self.addresses.insert(ip);
        }
        self.prefixes.push(url);
        Ok(())
    }

    /// Allow connecting to addresses in `network` even when they are loopback, private or
    /// link-local (e.g. the Docker network a Drupal container lives on).
    pub(crate) fn allow_network(&mut self, network: IpNet) {
        self.networks.push(network);
    }

    /// Allow URLs under `prefix`, whose host is a back end the operator names (a Docker
    /// service such as `http://drupal/`): the name may resolve to loopback or private
    /// addresses. Link-local and cloud-metadata addresses stay refused.
    pub(crate) fn allow_backend(&mut self, prefix: &str) -> Result<(), Error> {
        self.allow(prefix)?;
        let url = self.prefixes.last().expect("allow pushed the prefix");
        if let Some(url::Host::Domain(host)) = url.host() {
            self.backends.insert(host.to_ascii_lowercase());
        }
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The URL an identifier names, if it is under an allow-listed prefix; else a 403 (no
    /// request is made).
    pub(crate) fn check(&self, url: &str) -> Result<Url, Error> {
        let refused = || Error::new(crate::ErrorKind::Forbidden, "this URL is not allowed");
        let url = Url::parse(url).map_err(|_| refused())?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refused());
        }
        // Encoded separators and dots, and `..;` segments, are undone by some servers (nginx
        // decodes, Tomcat and Jetty read `..;` as `..`) after our prefix check: refused.
        let path = url.path();
        let lower = path.to_ascii_lowercase();
        if ["%2f", "%5c", "%2e"].iter().any(|e| lower.contains(e))
            || path
                .split('/')
                .any(|seg| seg.starts_with("..;") || seg.starts_with(".;"))
        {
            return Err(refused());
        }
        let allowed = self.prefixes.iter().any(|p| {
            url.scheme() == p.scheme()
                && url.host() == p.host()
                && url.port_or_known_default() == p.port_or_known_default()
                && under(path, p.path())
        });
        match allowed {
            true => Ok(url),
            false => Err(refused()),
        }
    }

    /// Whether the client may connect to `ip`: a public address, or one the configuration
    /// names (an allow-listed IP host, an allowed network).
    pub(crate) fn may_connect(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !is_internal(ip)
            || self.addresses.contains(&ip)
            || self.networks.iter().any(|n| n.contains(&ip))
    }

    /// Whether the client may connect to `ip`, which the name `host` resolved to: as
    /// [`may_connect`](Self::may_connect), or any address but a link-local or metadata one
    /// when `host` is a named back end.
    pub(crate) fn may_connect_to(&self, host: &str, ip: IpAddr) -> bool {
        self.may_connect(ip)
            || (self.backends.contains(&host.to_ascii_lowercase()) && !is_metadata(canonical(ip)))
    }
}

/// Link-local addresses (the cloud metadata address 169.254.169.254 among them) and the other
/// clouds' metadata and platform addresses: never connected to, even for a back end.
fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local()
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
                || v4 == Ipv4Addr::new(168, 63, 129, 16)
        }
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// Whether `path` is `prefix` or lies below it, at a segment boundary (`/files` does not allow
/// `/files-private/`).
fn under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn host_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(canonical(IpAddr::V6(v6))),
        url::Host::Domain(_) => None,
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Loopback, private, link-local (the cloud metadata address 169.254.169.254 among them),
/// shared (CGNAT, Alibaba's metadata 100.100.100.200), unspecified, broadcast, multicast,
/// benchmarking, and the IPv6 counterparts (unique local, AWS's fd00:ec2::254 among them).
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10
        || (a == 198 && (18..20).contains(&b)) // 198.18.0.0/15
        || a >= 240
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // 192.0.0.0/24, protocol assignments
        || ip == Ipv4Addr::new(168, 63, 129, 16) // Azure's platform address
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // fc00::/7, unique local
        || (first & 0xffc0) == 0xfe80 // fe80::/10, link-local
        || (first & 0xffc0) == 0xfec0 // fec0::/10, site-local (deprecated)
        || first == 0x2002 // 6to4: an IPv4 address inside
        || (first == 0x2001 && ip.segments()[1] == 0) // Teredo
        || (first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64: an IPv4 address inside
        || ip.to_ipv4().is_some_and(is_internal_v4) // ::a.b.c.d (compatible)
}

/// The address a name resolved to that the source may not connect to.
#[derive(Debug)]
pub(crate) struct RefusedAddress(pub(crate) String);

impl fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves only to addresses this server may not connect to",
            self.0
        )
    }
}

impl std::error::Error for RefusedAddress {}

/// The HTTP client's resolver: the system's, with every address the [`Guard`] refuses removed
/// (the client connects only to what this returns).
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver(pub(crate) Arc<Guard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| guard.may_connect_to(&host, a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(RefusedAddress(host)) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(prefixes: &[&str]) -> Guard {
        let mut g = Guard::default();
        for p in prefixes {
            g.allow(p).unwrap();
        }
        g
    }

    #[test]
    fn urls_must_lie_under_a_prefix() {
        let g = guard(&[
            "https://site.example/files/",
            "http://127.0.0.1:8080",
            "https://site.example/files",
        ]);
        for ok in [
            "https://site.example/files/a.tif",
            "https://SITE.example:443/files/x/y.jp2",
            "http://127.0.0.1:8080/anything",
        ] {
            assert!(g.check(ok).is_ok(), "{ok}");
        }
        for refused in [
            "https://site.example/private/a.tif",
            "http://site.example/files/a.tif",
            "https://site.example.evil.com/files/a.tif",
            "https://evil@site.example/files/a.tif",
            "https://site.example:8443/files/a.tif",
            "https://site.example/files/..%2Fprivate/a.tif",
            "https://site.example/files/%2e%2e/private/a.tif",
            "https://site.example/files/..;/private/a.tif",
            "https://site.example/files-private/a.tif",
            "http://127.0.0.1:8081/a",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert_eq!(g.check(refused).unwrap_err().status(), 403, "{refused}");
        }
        assert!(guard(&[]).check("https://site.example/").is_err());
    }

    #[test]
    fn internal_addresses_are_refused_unless_named() {
        let g = guard(&["https://site.example/", "http://127.0.0.1:9000/"]);
        for internal in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "127.0.0.2",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "168.63.129.16",
        ] {
            assert!(!g.may_connect(internal.parse().unwrap()), "{internal}");
        }
        for ok in [
            "93.184.215.14",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "127.0.0.1",
        ] {
            assert!(g.may_connect(ok.parse().unwrap()), "{ok}");
        }
        let mut g = g;
        g.allow_network("172.16.0.0/12".parse().unwrap());
        assert!(g.may_connect("172.18.0.5".parse().unwrap()));
        assert!(!g.may_connect("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn a_named_back_end_may_resolve_to_internal_addresses_but_not_metadata() {
        let mut g = guard(&["https://site.example/"]);
        g.allow_backend("http://Drupal:80/sites/default/files/")
            .unwrap();
        assert!(g.check("http://drupal/sites/default/files/a.tif").is_ok());
        assert!(g.check("http://drupal/system/files/a.tif").is_err());
        for ok in ["172.18.0.5", "127.0.0.1", "10.0.0.7", "fd12::3"] {
            assert!(g.may_connect_to("drupal", ok.parse().unwrap()), "{ok}");
            assert!(
                !g.may_connect_to("site.example", ok.parse().unwrap()),
                "{ok}"
            );
        }
        for refused in [
            "169.254.169.254",
            "100.100.100.200",
            "fe80::1",
            "fd00:ec2::254",
        ] {
            assert!(
                !g.may_connect_to("drupal", refused.parse().unwrap()),
                "{refused}"
            );
        }
        // A back end named by address is an ordinary allow-listed address.
        let mut g = Guard::default();
        g.allow_backend("http://127.0.0.1:8080/").unwrap();
        assert!(g.may_connect("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_prefixes_are_configuration_errors() {
        let mut g = Guard::default();
        assert!(g.allow("ftp://x/").is_err());
        assert!(g.allow("/relative").is_err());
        assert!(g.is_empty());
    }
}
