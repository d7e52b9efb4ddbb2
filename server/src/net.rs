//! Small network helpers: CIDR matching for `auth.trusted_proxies`, client-IP resolution from
//! `X-Forwarded-For`, and Host-header parsing.
//!
//! The client IP keys the failed-auth limiter, which slows failing attempts and password logins per
//! address (valid tokens are served regardless). So it must not be spoofable — a client that could
//! pick its address would get a fresh budget with every request: `X-Forwarded-For` is only
//! believed when the TCP peer is a trusted proxy, and then it is read from the right, skipping
//! trusted hops, so a client cannot prepend a fake address of its own. And it must be set behind a
//! proxy: without `auth.trusted_proxies` every client has the proxy's address and shares one budget
//! (the kits set it to the proxy's or load balancer's networks).

use std::net::IpAddr;

/// An IP network (`10.0.0.0/8`, `fd00::/8`) or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}` has an invalid prefix length (0..={max})"))?,
        };
        Ok(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (canonical(self.addr), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as dual-stack sockets report them) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The set of trusted proxies.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| IpNet::parse(e))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The address of the client: the peer itself, or — when the peer is a trusted proxy — the
    /// right-most `X-Forwarded-For` entry that is not a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.trusts(client) {
                        break;
                    }
                }
                // A malformed entry ends the trusted chain: use the last good hop.
                Err(_) => break,
            }
        }
        client
    }
}

/// The host part of a `Host` header value or URL authority: no port, no IPv6 brackets.
pub fn strip_port(authority: &str) -> &str {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_membership() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpNet::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("nginx").is_err());
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let proxies = TrustedProxies::parse(&["172.16.0.0/12".into()]).unwrap();
        assert_eq!(proxies.client_ip(ip("203.0.113.5"), Some("1.2.3.4")), ip("203.0.113.5"));
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_past_trusted_hops() {
        let proxies = TrustedProxies::parse(&["172.16.0.0/12".into()]).unwrap();
        // The client sent a fake "6.6.6.6"; nginx appended the real address.
        assert_eq!(
            proxies.client_ip(ip("172.18.0.2"), Some("6.6.6.6, 198.51.100.7")),
            ip("198.51.100.7")
        );
        assert_eq!(
            proxies.client_ip(ip("172.18.0.2"), Some("198.51.100.7, 172.18.0.9")),
            ip("198.51.100.7")
        );
        assert_eq!(proxies.client_ip(ip("172.18.0.2"), None), ip("172.18.0.2"));
    }

    #[test]
    fn host_without_port() {
        assert_eq!(strip_port("mcp.example.com:8443"), "mcp.example.com");
        assert_eq!(strip_port("mcp.example.com"), "mcp.example.com");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("::1"), "::1");
    }
}
