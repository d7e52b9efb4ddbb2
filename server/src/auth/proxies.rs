//! Which address a request comes from, for the failed-auth limiter: `auth.trusted_proxies` and
//! `X-Forwarded-For`.
//!
//! The client IP keys the limiter, which slows failing attempts and password logins per address
//! (valid tokens are served regardless). So it must not be spoofable — a client that could pick its
//! address would get a fresh budget with every request: `X-Forwarded-For` is only believed when the
//! TCP peer is a trusted proxy, and then it is read from the right, skipping trusted hops, so a
//! client cannot prepend a fake address of its own. And it must be set behind a proxy: without
//! `auth.trusted_proxies` every client has the proxy's address and shares one budget (the kits set
//! it to the proxy's or load balancer's networks).

use std::net::IpAddr;

pub use crate::net::InvalidNetwork;
use crate::net::{IpNet, canonical};

/// The set of trusted proxies.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<Self, InvalidNetwork> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The client address that `trusted` resolves for a request from `peer` with `forwarded_for`.
    fn client(trusted: &str, peer: &str, forwarded_for: Option<&str>) -> String {
        let proxies = TrustedProxies::parse(&[trusted.to_string()]).unwrap();
        proxies.client_ip(peer.parse().unwrap(), forwarded_for).to_string()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        assert_eq!(client("172.16.0.0/12", "203.0.113.5", Some("1.2.3.4")), "203.0.113.5");
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_past_trusted_hops() {
        // The client sent a fake "6.6.6.6"; nginx appended the real address.
        assert_eq!(
            client("172.16.0.0/12", "172.18.0.2", Some("6.6.6.6, 198.51.100.7")),
            "198.51.100.7"
        );
        assert_eq!(
            client("172.16.0.0/12", "172.18.0.2", Some("198.51.100.7, 172.18.0.9")),
            "198.51.100.7"
        );
        assert_eq!(client("172.16.0.0/12", "172.18.0.2", None), "172.18.0.2");
    }
}
