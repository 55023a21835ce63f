//! Who may reach `/mcp` from where: the `Host` a request names (a DNS-rebinding guard) and the
//! `Origin` a browser adds (a web page must not drive a local agent's tools, even when its
//! `Host` is fine). Clients other than browsers send no `Origin` and are not asked for one.

use axum::http::{HeaderMap, header};

/// An accepted `Host`: a host, with or without a port (without: any port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRule {
    host: String,
    port: Option<u16>,
}

impl HostRule {
    /// `host` or `host:port`; IPv6 addresses bare (`::1`) or bracketed (`[::1]:8080`).
    pub fn parse(text: &str) -> Result<HostRule, String> {
        let text = text.trim();
        let bad = || format!("{text:?} is not a host or host:port");
        if text.is_empty() {
            return Err(bad());
        }
        if text.matches(':').count() > 1 && !text.starts_with('[') {
            return Ok(HostRule {
                host: text.to_ascii_lowercase(),
                port: None,
            });
        }
        let authority: http::uri::Authority = text.parse().map_err(|_| bad())?;
        Ok(HostRule {
            host: normalize(authority.host()),
            port: authority.port_u16(),
        })
    }

    fn allows(&self, host: &str, port: Option<u16>) -> bool {
        self.host == host && self.port.is_none_or(|p| Some(p) == port)
    }
}

/// An accepted `Origin`: scheme, host and port (`None`: any port, written `:*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginRule {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl OriginRule {
    /// `scheme://host[:port]`, or `scheme://host:*` for any port. A URL with a path names
    /// its origin.
    pub fn parse(text: &str) -> Result<OriginRule, String> {
        let text = text.trim();
        let (base, any_port) = match text.strip_suffix(":*") {
            Some(base) => (base, true),
            None => (text, false),
        };
        let origin = Origin::parse(base)
            .ok_or_else(|| format!("{text:?} is not an origin such as https://example.com"))?;
        Ok(OriginRule {
            scheme: origin.scheme,
            host: origin.host,
            port: (!any_port).then_some(origin.port),
        })
    }

    /// Loopback origins on any port, over http and https.
    pub fn loopback() -> Vec<OriginRule> {
        ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .flat_map(|host| ["http", "https"].map(|scheme| format!("{scheme}://{host}:*")))
            .map(|text| OriginRule::parse(&text).expect("loopback origins parse"))
            .collect()
    }

    fn allows(&self, origin: &Origin) -> bool {
        self.scheme == origin.scheme
            && self.host == origin.host
            && self.port.is_none_or(|p| p == origin.port)
    }
}

/// A serialized origin, its port made explicit.
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(text: &str) -> Option<Origin> {
        let url = url::Url::parse(text).ok()?;
        Some(Origin {
            scheme: url.scheme().to_owned(),
            host: normalize(url.host_str()?),
            port: url.port_or_known_default()?,
        })
    }
}

fn normalize(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// Why a request was refused.
pub type Refusal = &'static str;

/// Check `Host` against `hosts` (empty: any host) and `Origin`, when present, against
/// `origins` (`None`: any origin).
pub fn check(
    headers: &HeaderMap,
    hosts: &[HostRule],
    origins: Option<&[OriginRule]>,
) -> Result<(), Refusal> {
    if !hosts.is_empty() {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
            .ok_or("Forbidden: the Host header is missing or malformed")?;
        let (name, port) = (normalize(host.host()), host.port_u16());
        if !hosts.iter().any(|rule| rule.allows(&name, port)) {
            return Err("Forbidden: Host header is not allowed");
        }
    }
    if let (Some(origins), Some(origin)) = (origins, headers.get(header::ORIGIN)) {
        let origin = origin
            .to_str()
            .ok()
            .and_then(Origin::parse)
            .ok_or("Forbidden: Origin header is not allowed")?;
        if !origins.iter().any(|rule| rule.allows(&origin)) {
            return Err("Forbidden: Origin header is not allowed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn hosts_match_with_or_without_a_port() {
        let hosts: Vec<HostRule> = ["localhost", "::1", "sb.example.com:8443"]
            .iter()
            .map(|h| HostRule::parse(h).unwrap())
            .collect();
        let ok = |host| check(&headers(host, None), &hosts, None).is_ok();
        assert!(ok("localhost:3000"));
        assert!(ok("LOCALHOST"));
        assert!(ok("[::1]:8080"));
        assert!(ok("sb.example.com:8443"));
        assert!(!ok("sb.example.com"));
        assert!(!ok("evil.example"));
        assert!(check(&headers("evil.example", None), &[], None).is_ok());
        assert!(HostRule::parse("").is_err());
        assert!(HostRule::parse("a b").is_err());
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let mut origins = OriginRule::loopback();
        origins.push(OriginRule::parse("https://sb.example.com/team/").unwrap());
        let hosts = [HostRule::parse("localhost").unwrap()];
        let ok = |origin| check(&headers("localhost", Some(origin)), &hosts, Some(&origins));
        assert!(ok("http://localhost:5173").is_ok());
        assert!(ok("http://[::1]:80").is_ok());
        assert!(ok("https://sb.example.com").is_ok());
        assert!(ok("https://sb.example.com:443").is_ok());
        assert!(ok("https://sb.example.com:8443").is_err());
        assert!(ok("http://sb.example.com").is_err());
        assert!(ok("http://evil.example").is_err());
        assert!(ok("null").is_err());
        assert!(ok("not an origin").is_err());
        // No Origin (not a browser), or any origin allowed.
        assert!(check(&headers("localhost", None), &hosts, Some(&origins)).is_ok());
        assert!(
            check(
                &headers("localhost", Some("http://evil.example")),
                &hosts,
                None
            )
            .is_ok()
        );
        assert!(OriginRule::parse("example.com").is_err());
    }
}
