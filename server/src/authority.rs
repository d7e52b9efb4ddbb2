//! Hosts and origins as the `Host` and `Origin` headers write them and as `http.allowed_hosts`,
//! `http.allowed_origins` and `public_url` write them: one normalisation for both sides.
//!
//! Issue #13 §A.4: `allowed_hosts: ["mcp.example.com:8443"]` was accepted by `config check` and then
//! matched no request, because the request's Host lost its port and the entry kept it. So a setting
//! and a header go through the same parser here ([`HostName::parse_authority`]): ports dropped for
//! hosts (the Host check is about names: DNS rebinding), case folded, IPv6 brackets removed and the
//! address written canonically, one trailing dot removed (`example.com.` is the same name, RFC 1034
//! §3.1). Origins (RFC 6454 §6.2, `scheme://host[:port]`) keep their port, with a scheme's default
//! port written as none. A setting this parser cannot read, or a wildcard form it does not support,
//! is a configuration error naming the key, never an entry that silently matches nothing.
//!
//! Wildcards: `*` alone (anything) and a leading `*.` label (`*.example.com`: every name under
//! example.com, not example.com itself; at least two labels after it, so `*.com` is refused).

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
};

use serde::Deserialize;

/// A host as compared: lower case, no port, no brackets, no trailing dot; IPv6 canonical.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostName(String);

/// Why a host, origin or pattern cannot be read; the message quotes the text and says what to write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAuthority(String);

fn invalid(message: impl Into<String>) -> InvalidAuthority {
    InvalidAuthority(message.into())
}

impl HostName {
    /// `host[:port]` as a `Host` header or URL authority writes it (RFC 9110 §7.2, RFC 3986
    /// §3.2.2): the host and the port, if one is given. No user info, path or wildcard.
    pub fn parse_authority(authority: &str) -> Result<(HostName, Option<u16>), InvalidAuthority> {
        let text = authority.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (address, after) = rest
                .split_once(']')
                .ok_or_else(|| invalid(format!("`{authority}`: `[` without `]`")))?;
            let address: Ipv6Addr = address
                .parse()
                .map_err(|_| invalid(format!("`{authority}`: not an IPv6 address in brackets")))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid(format!("`{authority}`: junk after `]`")))?,
                ),
            };
            (address.to_string(), port)
        } else {
            match text.rsplit_once(':') {
                // A bare IPv6 address (`::1`), as some settings write it: no port possible.
                Some((host, _)) if host.contains(':') => {
                    let address: Ipv6Addr = text.parse().map_err(|_| {
                        invalid(format!(
                            "`{authority}`: write an IPv6 address in brackets, `[::1]:8080`"
                        ))
                    })?;
                    (address.to_string(), None)
                }
                Some((host, port)) => (name(authority, host)?, Some(port)),
                None => (name(authority, text)?, None),
            }
        };
        let port = match port {
            None | Some("") => None,
            Some(digits) => Some(
                digits
                    .parse::<u16>()
                    .ok()
                    .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| invalid(format!("`{authority}`: port `{digits}` is not a number 0-65535")))?,
            ),
        };
        Ok((HostName(host), port))
    }

    /// Loopback: `localhost` and names under `.localhost` (RFC 6761 §6.3), 127.0.0.0/8, `::1`
    /// and IPv4-mapped loopback.
    pub fn is_loopback(&self) -> bool {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => crate::net::canonical(ip).is_loopback(),
            Err(_) => self.0 == "localhost" || self.0.ends_with(".localhost"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `self` strictly under `parent` (`a.example.com` under `example.com`).
    fn is_under(&self, parent: &HostName) -> bool {
        self.0
            .strip_suffix(parent.0.as_str())
            .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
    }
}

/// A registered name or IPv4 address, lower-cased, without its trailing dot.
fn name(authority: &str, host: &str) -> Result<String, InvalidAuthority> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    if host.is_empty() || host.starts_with('.') || host.contains("..") || !host.bytes().all(allowed) {
        return Err(invalid(format!(
            "`{authority}` is not a host name (letters, digits, `-`, `.`; IPv6 in brackets)"
        )));
    }
    Ok(host.to_ascii_lowercase())
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') {
            write!(f, "[{}]", self.0)
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Which host names a pattern accepts: all, one, or every name under one.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exactly(HostName),
    Under(HostName),
}

impl HostMatch {
    /// `*`, `*.example.com` or a host, and the port written after it (the caller decides whether a
    /// port means anything).
    fn parse(text: &str) -> Result<(HostMatch, Option<u16>), InvalidAuthority> {
        if text == "*" {
            return Ok((HostMatch::Any, None));
        }
        let (wildcard, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if rest.contains('*') {
            return Err(invalid(format!(
                "`{text}`: wildcards are `*` alone or a leading `*.` label (`*.example.com`)"
            )));
        }
        let (host, port) = HostName::parse_authority(rest)?;
        if !wildcard {
            return Ok((HostMatch::Exactly(host), port));
        }
        if host.0.parse::<IpAddr>().is_ok() || !host.0.contains('.') {
            return Err(invalid(format!(
                "`{text}`: `*.` needs a domain of at least two labels after it (`*.example.com`)"
            )));
        }
        Ok((HostMatch::Under(host), port))
    }

    fn matches(&self, host: &HostName) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Exactly(name) => name == host,
            HostMatch::Under(parent) => host.is_under(parent),
        }
    }
}

impl fmt::Display for HostMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostMatch::Any => f.write_str("*"),
            HostMatch::Exactly(host) => host.fmt(f),
            HostMatch::Under(parent) => write!(f, "*.{parent}"),
        }
    }
}

/// An `http.allowed_hosts` entry: `*`, `*.example.com` or a host; a port given is dropped (the
/// request's is too). Refused: URLs, paths, other wildcard forms.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HostPattern(HostMatch);

impl HostPattern {
    pub fn exactly(host: HostName) -> HostPattern {
        HostPattern(HostMatch::Exactly(host))
    }

    pub fn matches(&self, host: &HostName) -> bool {
        self.0.matches(host)
    }
}

impl TryFrom<String> for HostPattern {
    type Error = InvalidAuthority;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let text = text.trim();
        if text.contains("://") || text.contains('/') {
            return Err(invalid(format!(
                "`{text}`: write a host name, not a URL (`mcp.example.com`)"
            )));
        }
        HostMatch::parse(text).map(|(host, _port)| HostPattern(host))
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A web origin (RFC 6454): scheme, host and port, the scheme's default port written as none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebOrigin {
    scheme: String,
    host: HostName,
    port: Option<u16>,
}

impl WebOrigin {
    /// An `Origin` header value: `scheme://host[:port]`. `null` (sandboxed pages, `file:`) and
    /// anything else are errors: such a request is refused.
    pub fn parse(text: &str) -> Result<WebOrigin, InvalidAuthority> {
        let (scheme, authority) = split_origin(text)?;
        if authority.contains(['/', '?', '#', '@']) {
            return Err(invalid(format!(
                "`{text}` is not an origin (`https://app.example.com`)"
            )));
        }
        let (host, port) = HostName::parse_authority(authority)?;
        Ok(WebOrigin::new(scheme, host, port))
    }

    /// The origin of a URL (`public_url`): its path, query and fragment ignored.
    pub fn of_url(url: &str) -> Result<WebOrigin, InvalidAuthority> {
        let (scheme, rest) = split_origin(url)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (host, port) = HostName::parse_authority(authority)?;
        Ok(WebOrigin::new(scheme, host, port))
    }

    fn new(scheme: String, host: HostName, port: Option<u16>) -> WebOrigin {
        let port = port.filter(|p| Some(*p) != default_port(&scheme));
        WebOrigin { scheme, host, port }
    }

    pub fn host(&self) -> &HostName {
        &self.host
    }

    /// An `http:` or `https:` page served from a loopback host.
    pub fn is_loopback_web_page(&self) -> bool {
        matches!(self.scheme.as_str(), "http" | "https") && self.host.is_loopback()
    }
}

/// `scheme://rest` with a valid scheme (RFC 3986 §3.1), lower-cased.
fn split_origin(text: &str) -> Result<(String, &str), InvalidAuthority> {
    let text = text.trim();
    let (scheme, rest) = text.split_once("://").ok_or_else(|| {
        invalid(format!(
            "`{text}` must be scheme://host[:port], e.g. `https://app.example.com`"
        ))
    })?;
    let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid {
        return Err(invalid(format!("`{text}`: `{scheme}` is not a URL scheme")));
    }
    Ok((scheme.to_ascii_lowercase(), rest))
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

impl fmt::Display for WebOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// An `http.allowed_origins` entry: `*`, or `scheme://host[:port]` with an optional trailing `/`,
/// where host may be `*.example.com`. Refused: a path, query or fragment, `null`, other wildcards.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct OriginPattern(OriginMatch);

#[derive(Clone, Debug, PartialEq, Eq)]
enum OriginMatch {
    Any,
    Exactly(WebOrigin),
    Under {
        scheme: String,
        parent: HostName,
        port: Option<u16>,
    },
}

impl OriginPattern {
    pub fn exactly(origin: WebOrigin) -> OriginPattern {
        OriginPattern(OriginMatch::Exactly(origin))
    }

    /// `*`: every origin, `null` included.
    pub fn is_any(&self) -> bool {
        self.0 == OriginMatch::Any
    }

    pub fn matches(&self, origin: &WebOrigin) -> bool {
        match &self.0 {
            OriginMatch::Any => true,
            OriginMatch::Exactly(allowed) => allowed == origin,
            OriginMatch::Under { scheme, parent, port } => {
                *scheme == origin.scheme && *port == origin.port && origin.host.is_under(parent)
            }
        }
    }
}

impl TryFrom<String> for OriginPattern {
    type Error = InvalidAuthority;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let text = text.trim();
        if text == "*" {
            return Ok(OriginPattern(OriginMatch::Any));
        }
        if text.eq_ignore_ascii_case("null") {
            return Err(invalid(
                "`null` is the origin of every sandboxed page and local file: allowing it allows them all",
            ));
        }
        let (scheme, rest) = split_origin(text)?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(invalid(format!(
                "`{text}`: an origin has no path, query or user (`{scheme}://{}`)",
                authority.split(['/', '?', '#']).next().unwrap_or_default()
            )));
        }
        Ok(OriginPattern(match HostMatch::parse(authority)? {
            (HostMatch::Exactly(host), port) => OriginMatch::Exactly(WebOrigin::new(scheme, host, port)),
            (HostMatch::Under(parent), port) => {
                let port = port.filter(|p| Some(*p) != default_port(&scheme));
                OriginMatch::Under { scheme, parent, port }
            }
            (HostMatch::Any, _) => {
                return Err(invalid(format!("`{text}`: write `*` alone to allow every origin")));
            }
        }))
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            OriginMatch::Any => f.write_str("*"),
            OriginMatch::Exactly(origin) => origin.fmt(f),
            OriginMatch::Under { scheme, parent, port } => {
                write!(f, "{scheme}://*.{parent}")?;
                port.map_or(Ok(()), |port| write!(f, ":{port}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> HostName {
        HostName::parse_authority(text).unwrap().0
    }

    fn hosts(text: &str) -> Result<HostPattern, InvalidAuthority> {
        HostPattern::try_from(text.to_string())
    }

    fn origins(text: &str) -> Result<OriginPattern, InvalidAuthority> {
        OriginPattern::try_from(text.to_string())
    }

    #[test]
    fn a_host_header_and_a_setting_normalise_alike() {
        for (written, normal, port) in [
            ("mcp.example.com", "mcp.example.com", None),
            ("MCP.Example.COM:8443", "mcp.example.com", Some(8443)),
            ("mcp.example.com.", "mcp.example.com", None),
            ("mcp.example.com.:443", "mcp.example.com", Some(443)),
            ("mcp.example.com:", "mcp.example.com", None),
            ("127.0.0.1:8080", "127.0.0.1", Some(8080)),
            ("[::1]:8080", "::1", Some(8080)),
            ("[::1]", "::1", None),
            ("::1", "::1", None),
            ("[0:0:0:0:0:0:0:1]:80", "::1", Some(80)),
            ("[FD00::A]", "fd00::a", None),
            (" localhost ", "localhost", None),
        ] {
            let (name, got_port) = HostName::parse_authority(written).unwrap();
            assert_eq!((name.as_str(), got_port), (normal, port), "{written}");
            // The setting matches the header whatever either writes.
            assert!(hosts(written).unwrap().matches(&name), "{written}");
        }
    }

    #[test]
    fn malformed_hosts_are_refused() {
        for written in [
            "",
            ":8080",
            "mcp.example.com:http",
            "mcp.example.com:65536",
            "mcp.example.com:+80",
            "user@mcp.example.com",
            "[::1",
            "[::1]x",
            "[mcp.example.com]",
            "mcp..example.com",
            ".example.com",
            "exa mple.com",
            "fe80::1:8080:zz",
        ] {
            assert!(HostName::parse_authority(written).is_err(), "{written:?} accepted");
        }
    }

    #[test]
    fn loopback_is_every_spelling_of_this_machine() {
        for loopback in [
            "localhost",
            "LOCALHOST.",
            "app.localhost",
            "127.0.0.1",
            "127.1.2.3:9",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(host(loopback).is_loopback(), "{loopback}");
        }
        for other in [
            "localhost.example.com",
            "128.0.0.1",
            "[::2]",
            "0.0.0.0",
            "mcp.example.com",
        ] {
            assert!(!host(other).is_loopback(), "{other}");
        }
    }

    #[test]
    fn host_patterns_match_names_not_ports() {
        for (pattern, accepted, refused) in [
            ("*", &["anything.example", "[::1]"][..], &[][..]),
            (
                "mcp.example.com:8443",
                &["mcp.example.com", "MCP.EXAMPLE.COM:443"],
                &["example.com", "mcp.example.org"],
            ),
            (
                "*.example.com",
                &["a.example.com", "a.b.example.com:8443", "A.Example.Com."],
                &["example.com", "aexample.com", "a.example.com.evil.org"],
            ),
            ("[fd00::1]", &["[fd00::1]:8080"], &["[fd00::2]"]),
        ] {
            let pattern = hosts(pattern).unwrap();
            for ok in accepted {
                assert!(pattern.matches(&host(ok)), "{pattern} refused {ok}");
            }
            for no in refused {
                assert!(!pattern.matches(&host(no)), "{pattern} accepted {no}");
            }
        }
    }

    #[test]
    fn origins_compare_by_scheme_host_and_effective_port() {
        for (pattern, accepted, refused) in [
            (
                "https://app.example.com",
                &[
                    "https://app.example.com",
                    "HTTPS://APP.example.com:443",
                    "https://app.example.com.",
                ][..],
                &[
                    "http://app.example.com",
                    "https://app.example.com:8443",
                    "https://example.com",
                ][..],
            ),
            (
                "https://app.example.com:443/",
                &["https://app.example.com"],
                &["https://app.example.com:444"],
            ),
            (
                "http://[::1]:3000",
                &["http://[0::1]:3000"],
                &["http://[::1]", "http://127.0.0.1:3000"],
            ),
            (
                "https://*.example.com",
                &["https://a.example.com", "https://b.a.example.com:443"],
                &[
                    "https://example.com",
                    "http://a.example.com",
                    "https://a.example.com:8443",
                ],
            ),
            ("*", &["https://x.test", "chrome-extension://abc"], &[]),
            (
                "vscode-webview://abc",
                &["vscode-webview://abc"],
                &["vscode-webview://abd"],
            ),
        ] {
            let pattern = origins(pattern).unwrap();
            for ok in accepted {
                assert!(
                    pattern.matches(&WebOrigin::parse(ok).unwrap()),
                    "{pattern} refused {ok}"
                );
            }
            for no in refused {
                assert!(
                    !pattern.matches(&WebOrigin::parse(no).unwrap()),
                    "{pattern} accepted {no}"
                );
            }
        }
    }

    #[test]
    fn settings_that_would_match_nothing_are_refused_saying_why() {
        let host_entries = [
            ("https://mcp.example.com", "not a URL"),
            ("mcp.example.com/mcp", "not a URL"),
            ("mcp.*.com", "wildcards"),
            ("*example.com", "wildcards"),
            ("**.example.com", "wildcards"),
            ("*.com", "two labels"),
            ("*.127.0.0.1", "two labels"),
            ("mcp.example.com:port", "port"),
            ("", "not a host name"),
        ];
        let origin_entries = [
            ("app.example.com", "scheme://host"),
            ("https://app.example.com/mcp", "no path"),
            ("https://app.example.com?x=1", "no path"),
            ("https://user@app.example.com", "no path"),
            ("null", "sandboxed"),
            ("https://*", "`*` alone"),
            ("https://app.*.com", "wildcards"),
            ("https://*.com", "two labels"),
            ("1http://app.example.com", "not a URL scheme"),
            ("https://app.example.com:99999", "port"),
        ];
        let refusals = host_entries
            .iter()
            .map(|(entry, says)| (hosts(entry).map(drop), entry, says))
            .chain(
                origin_entries
                    .iter()
                    .map(|(entry, says)| (origins(entry).map(drop), entry, says)),
            );
        for (parsed, entry, says) in refusals {
            let message = parsed.unwrap_err().to_string();
            assert!(message.contains(*says), "{entry:?}: {message}");
        }
    }

    #[test]
    fn request_origins_that_are_not_origins_are_refused() {
        for header in [
            "null",
            "https://app.example.com/",
            "https://app.example.com/path",
            "app.example.com",
            "file://",
        ] {
            assert!(WebOrigin::parse(header).is_err(), "{header}");
        }
        let origin = WebOrigin::of_url("https://MCP.example.com:443/mcp?x#y").unwrap();
        assert_eq!(origin.to_string(), "https://mcp.example.com");
        assert_eq!(
            WebOrigin::of_url("http://localhost:8080/").unwrap().to_string(),
            "http://localhost:8080"
        );
    }
}
