//! Who a request comes from, for per-client limits: the peer address, or the right-most address
//! of `X-Forwarded-For` that is not a trusted proxy when the peer itself is one. IPv6 clients
//! count per /64 (one customer's network), IPv4 per address.
use actix_web::http::header::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// CIDRs whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma list of CIDRs or plain addresses (`10.0.0.0/8, 127.0.0.1`).
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{s}` is not a CIDR or an IP address"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with these headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientKey {
        let mut client = canonical(peer);
        if self.trusts(client) {
            // Right to left: each hop was appended by the proxy in front of it.
            let hops = headers
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect::<Vec<_>>();
            for hop in hops.into_iter().rev() {
                match hop_address(hop) {
                    Some(ip) => {
                        client = canonical(ip);
                        if !self.trusts(client) {
                            break;
                        }
                    }
                    // A malformed hop ends what can be believed: the last good one stands.
                    None => break,
                }
            }
        }
        ClientKey::of(client)
    }
}

/// The address of one `X-Forwarded-For` hop: a bare address, or one with a port as some
/// proxies write it (`203.0.113.7:5555`, `[2001:db8::1]:5555`).
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A client as the limits count it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(String);

impl ClientKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey(v4.to_string()),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                ClientKey(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as the store keeps it: a hash, so no address is stored.
    pub fn stored(&self) -> String {
        crate::token::hash(&format!("client\n{}", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let k = t.client(ip("203.0.113.9"), &headers(&["198.51.100.1"]));
        assert_eq!(k.as_str(), "203.0.113.9");
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        let h = headers(&["198.51.100.1, 203.0.113.7"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h).as_str(), "203.0.113.7");
        // A chain of trusted proxies is walked through.
        let h = headers(&["198.51.100.1, 203.0.113.7, 10.9.9.9"]);
        assert_eq!(t.client(ip("127.0.0.1"), &h).as_str(), "203.0.113.7");
        // No header: the proxy itself.
        assert_eq!(
            t.client(ip("10.1.2.3"), &HeaderMap::new()).as_str(),
            "10.1.2.3"
        );
    }

    #[test]
    fn a_hop_written_with_a_port_is_its_address() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&["198.51.100.1, 203.0.113.7:5555"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h).as_str(), "203.0.113.7");
        let h = headers(&["[2001:db8:1:2::7]:443"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h).as_str(), "2001:db8:1:2::/64");
        let h = headers(&["[2001:db8:1:2::7]"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h).as_str(), "2001:db8:1:2::/64");
        // Still malformed: the walk stops at the proxy.
        let h = headers(&["203.0.113.7:port"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h).as_str(), "10.1.2.3");
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_v4_as_v4() {
        let t = TrustedProxies::default();
        let a = t.client(ip("2001:db8:1:2::1"), &HeaderMap::new());
        let b = t.client(ip("2001:db8:1:2:ffff::9"), &HeaderMap::new());
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "2001:db8:1:2::/64");
        let m = t.client(ip("::ffff:192.0.2.1"), &HeaderMap::new());
        assert_eq!(m.as_str(), "192.0.2.1");
    }

    #[test]
    fn bad_cidrs_are_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy").is_err());
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
    }
}
