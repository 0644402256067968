//! The client behind a reverse proxy. Only when the TCP peer is one of the trusted
//! proxies (`--trusted-proxies`) is the client's address taken from `Forwarded` (RFC 7239
//! `for=`) or else `X-Forwarded-For`: the rightmost address that is not itself a trusted
//! proxy. From such a peer, `Forwarded: proto=https` or `X-Forwarded-Proto: https` marks
//! the request as https. From any other peer those headers are ignored.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use runtime::http::ClientAddr;

/// The networks of the reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

/// `--trusted-proxies`: a network (`10.0.0.0/8`, `fd00::/8`) or a single address.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is neither a network (CIDR, e.g. 10.0.0.0/8) nor an address"))
}

/// One hop of a forwarding header, right to left.
struct Hop {
    /// `None`: `unknown`, an obfuscated name, or garbage.
    ip: Option<IpAddr>,
    https: bool,
}

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(Arc::new(networks))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that came from `peer` with these headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        let peer = peer.to_canonical();
        let direct = ClientAddr { ip: peer, https: false };
        if !self.trusts(peer) {
            return direct;
        }
        let hops = forwarded(headers).unwrap_or_else(|| x_forwarded_for(headers));
        // Walk from the nearest hop outwards, past our own proxies; the first hop not
        // ours is the client. A hop that names no address ends the walk at the last
        // proxy we trust (what lies left of it, anyone could have written).
        let mut client = direct;
        for hop in hops.iter().rev() {
            let Some(ip) = hop.ip.map(|ip| ip.to_canonical()) else { break };
            client = ClientAddr { ip, https: hop.https };
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// `Forwarded` (RFC 7239), every header line in order, if any element has `for=`.
fn forwarded(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut hops = Vec::new();
    let mut any = false;
    for value in headers.get_all(axum::http::header::FORWARDED) {
        let Ok(value) = value.to_str() else { return Some(vec![Hop { ip: None, https: false }]) };
        for element in value.split(',') {
            let mut ip = None;
            let mut https = false;
            let mut has_for = false;
            for pair in element.split(';') {
                let Some((name, value)) = pair.split_once('=') else { continue };
                let value = value.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    "for" => {
                        has_for = true;
                        ip = node_ip(value);
                    }
                    "proto" => https = value.eq_ignore_ascii_case("https"),
                    _ => {}
                }
            }
            any |= has_for;
            if has_for {
                hops.push(Hop { ip, https });
            }
        }
    }
    any.then_some(hops)
}

/// A `for=` node: `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::17]`, `[2001:db8::17]:4711`;
/// `unknown`, `_hidden` or anything else names no address.
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, _port) = rest.split_once(']')?;
        return ip.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    node.parse::<IpAddr>().ok().or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// `X-Forwarded-For`, every header line in order; `X-Forwarded-Proto` (its last value:
/// what the nearest proxy saw) says whether the client came over https.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    let https = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(v) => v.split(',').map(|node| node_ip(node.trim().trim_matches('"'))).collect(),
            Err(_) => vec![None],
        })
        .map(|ip| Hop { ip, https })
        .collect()
}

/// The middleware: puts the request's [`ClientAddr`] in its extensions, for the rate
/// limits and everything after them.
pub async fn client_addr(State(proxies): State<TrustedProxies>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = match proxies.is_empty() {
            true => ClientAddr { ip: peer.ip().to_canonical(), https: false },
            false => proxies.client(peer.ip(), req.headers()),
        };
        req.extensions_mut().insert(client);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| parse_net(n).unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_and_addresses_parse() {
        assert!(parse_net("10.0.0.0/8").unwrap().contains(&ip("10.1.2.3")));
        assert!(parse_net(" 127.0.0.1 ").unwrap().contains(&ip("127.0.0.1")));
        assert!(parse_net("fd00::/8").unwrap().contains(&ip("fd12::1")));
        assert!(parse_net("10.0.0.7/8").unwrap().contains(&ip("10.9.9.9")), "host bits are dropped");
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("proxy.example").is_err());
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(p.client(peer, &h).ip, ip("203.0.113.7"), "a client cannot pose as 6.6.6.6");
        // Several header lines are one list.
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(p.client(peer, &h).ip, ip("203.0.113.7"));
        // Every hop ours: the leftmost.
        let h = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(p.client(peer, &h).ip, ip("10.0.0.3"));
        // No header: the proxy itself.
        assert_eq!(p.client(peer, &HeaderMap::new()).ip, peer);
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https")]);
        assert_eq!(p.client(ip("198.51.100.1"), &h), ClientAddr { ip: ip("198.51.100.1"), https: false });
        let h = headers(&[("forwarded", "for=203.0.113.7;proto=https")]);
        assert_eq!(p.client(ip("198.51.100.1"), &h), ClientAddr { ip: ip("198.51.100.1"), https: false });
        assert_eq!(TrustedProxies::default().client(ip("10.0.0.1"), &h).ip, ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_takes_ipv6_ports_quotes_and_proto() {
        let p = proxies(&["10.0.0.0/8", "fd00::/8"]);
        let peer = ip("10.0.0.1");
        let h = headers(&[("forwarded", r#"for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1"#)]);
        assert_eq!(p.client(peer, &h), ClientAddr { ip: ip("2001:db8:cafe::17"), https: true });
        let h = headers(&[("forwarded", r#"For="[2001:db8::1]""#)]);
        assert_eq!(p.client(peer, &h).ip, ip("2001:db8::1"));
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http, for="198.51.100.17:8080";proto=https, for="[fd00::2]""#,
        )]);
        assert_eq!(p.client(peer, &h), ClientAddr { ip: ip("198.51.100.17"), https: true });
        // Forwarded wins over X-Forwarded-For; one without `for=` does not.
        let h = headers(&[("forwarded", "for=192.0.2.1"), ("x-forwarded-for", "192.0.2.2")]);
        assert_eq!(p.client(peer, &h).ip, ip("192.0.2.1"));
        let h = headers(&[("forwarded", "proto=https"), ("x-forwarded-for", "192.0.2.2")]);
        assert_eq!(p.client(peer, &h).ip, ip("192.0.2.2"));
        // An IPv4-mapped peer is the IPv4 address.
        assert_eq!(p.client(ip("::ffff:10.0.0.1"), &headers(&[("x-forwarded-for", "192.0.2.3")])).ip, ip("192.0.2.3"));
    }

    #[test]
    fn x_forwarded_proto_marks_https() {
        let p = proxies(&["127.0.0.1"]);
        let peer = ip("127.0.0.1");
        let h = headers(&[("x-forwarded-for", "192.0.2.9"), ("x-forwarded-proto", "https")]);
        assert_eq!(p.client(peer, &h), ClientAddr { ip: ip("192.0.2.9"), https: true });
        let h = headers(&[("x-forwarded-for", "192.0.2.9"), ("x-forwarded-proto", "http")]);
        assert!(!p.client(peer, &h).https);
    }

    #[test]
    fn garbage_is_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        for value in ["unknown", "_hidden", "not an ip", "", "[::1", "999.1.1.1", "[zz::1]:80"] {
            let h = headers(&[("x-forwarded-for", value)]);
            assert_eq!(p.client(peer, &h).ip, peer, "X-Forwarded-For: {value}");
            let h = headers(&[("forwarded", &format!("for={value}"))]);
            assert_eq!(p.client(peer, &h).ip, peer, "Forwarded: for={value}");
        }
        // Garbage at the right stops the walk: what lies left of it is not believed.
        let h = headers(&[("x-forwarded-for", "203.0.113.7, garbage, 10.0.0.2")]);
        assert_eq!(p.client(peer, &h).ip, ip("10.0.0.2"));
        let h = headers(&[("forwarded", "for")]);
        assert_eq!(p.client(peer, &h).ip, peer);
    }
}
