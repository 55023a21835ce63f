//! Safe outbound requests: the only way the notifier talks HTTP to the world.
//!
//! A tenant names the URLs (webhooks, push endpoints), so every request is a request the
//! server makes on a stranger's behalf. The guard therefore:
//! - accepts `http` and `https` URLs with a host and without credentials;
//! - resolves the host itself, refuses the request when *any* address is forbidden (so a name
//!   that resolves to a public and a private address cannot win a race), and connects to the
//!   address it checked — DNS is asked again before every delivery, never trusted from
//!   creation time;
//! - never reaches link-local addresses (169.254.169.254 and the other cloud metadata
//!   services live there), unspecified, multicast or broadcast addresses; loopback and the
//!   private ranges only with `--notify-allow-private`;
//! - bounds each request in time ([`Outbound::timeout`]), follows no redirect at all (a 3xx
//!   is a failed attempt that names the location), and reads at most [`MAX_REPLY_BYTES`] of
//!   the answer.
//!
//! Requests are HTTP/1.1 on a fresh connection each (hyper; rustls with Mozilla's roots for
//! `https`), so no connection ever outlives the check that allowed it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use url::Url;

/// Most bytes of a receiver's answer that are read (and kept for the attempt record).
pub const MAX_REPLY_BYTES: usize = 4 * 1024;

/// Why a target is not allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a receiver answered.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    /// The start of the body, lossily decoded.
    pub body: String,
    /// Where a 3xx pointed (not followed).
    pub location: Option<String>,
}

/// Why a request did not get an answer.
#[derive(Clone, Debug)]
pub enum SendError {
    /// The guard refused the target: retrying will not help until the operator or DNS changes.
    Refused(Refused),
    /// Connecting, TLS, the exchange or the time limit failed: worth retrying.
    Failed(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Refused(r) => write!(f, "refused: {r}"),
            SendError::Failed(e) => f.write_str(e),
        }
    }
}

/// The guarded HTTP client.
#[derive(Clone)]
pub struct Outbound {
    allow_private: bool,
    timeout: Duration,
    tls: TlsConnector,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("allow_private", &self.allow_private)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A document fetched with [`Outbound::get`].
#[derive(Clone, Debug)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// False when the body was longer than the limit (and cut there).
    pub complete: bool,
}

impl Outbound {
    /// The guard; `extra_roots` are trusted for https besides Mozilla's (an operator's own CA).
    pub fn new(
        allow_private: bool,
        timeout: Duration,
        extra_roots: &[CertificateDer<'static>],
    ) -> Outbound {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let (added, ignored) = roots.add_parsable_certificates(extra_roots.iter().cloned());
        if ignored > 0 {
            tracing::warn!(
                added,
                ignored,
                "some extra root certificates could not be used"
            );
        }
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Outbound {
            allow_private,
            timeout,
            tls: TlsConnector::from(Arc::new(config)),
        }
    }

    /// The longest one request may take, from resolving to the last byte read.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `text` as a URL the notifier may call: http(s), a host, no credentials, and, when the
    /// host is an address, an allowed one. Names are checked by [`Outbound::resolve`].
    pub fn check(&self, text: &str) -> Result<Url, Refused> {
        let url = Url::parse(text.trim()).map_err(|e| Refused(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!(
                "only http and https URLs are allowed, not {}:",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused("URLs with credentials are not allowed".into()));
        }
        match url.host() {
            None => Err(Refused("the URL has no host".into())),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)).map(|()| url),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)).map(|()| url),
            Some(url::Host::Domain(_)) => Ok(url),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        self.refusal(ip)
            .map_or(Ok(()), |why| Err(Refused(format!("{ip} is {why}"))))
    }

    /// Why `ip` may not be reached, if it may not (without the address: a name's addresses
    /// are the operator's business, not the tenant's).
    fn refusal(&self, ip: IpAddr) -> Option<String> {
        match classify(ip) {
            Reach::Public => None,
            Reach::Private if self.allow_private => None,
            Reach::Private => Some(
                "a loopback or private address (the operator may allow those with \
                 --notify-allow-private)"
                    .to_owned(),
            ),
            Reach::Never(what) => Some(what.to_owned()),
        }
    }

    /// The address to connect to for `url`: every address the host resolves to must be allowed.
    pub async fn resolve(&self, url: &Url) -> Result<SocketAddr, SendError> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| SendError::Refused(Refused("the URL has no port".into())))?;
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) => return self.allowed(IpAddr::V4(ip), port),
            Some(url::Host::Ipv6(ip)) => return self.allowed(IpAddr::V6(ip), port),
            Some(url::Host::Domain(name)) => name.to_owned(),
            None => return Err(SendError::Refused(Refused("the URL has no host".into()))),
        };
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| SendError::Failed(format!("cannot resolve {host}: {e}")))?
            .collect();
        for address in &found {
            if let Some(why) = self.refusal(address.ip()) {
                tracing::debug!(%host, address = %address.ip(), "a notification target refused");
                return Err(SendError::Refused(Refused(format!(
                    "{host} resolves to {why}"
                ))));
            }
        }
        found
            .first()
            .copied()
            .ok_or_else(|| SendError::Failed(format!("{host} has no address")))
    }

    fn allowed(&self, ip: IpAddr, port: u16) -> Result<SocketAddr, SendError> {
        self.check_ip(ip).map_err(SendError::Refused)?;
        Ok(SocketAddr::new(ip, port))
    }

    /// POST `body` to `url` with `headers`, within the time limit.
    pub async fn post(
        &self,
        url: &Url,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Vec<u8>,
    ) -> Result<Reply, SendError> {
        let raw = self
            .within_time(self.exchange(Method::POST, url, headers, body, MAX_REPLY_BYTES))
            .await?;
        Ok(Reply {
            status: raw.status,
            body: String::from_utf8_lossy(&raw.body).into_owned(),
            location: raw.location,
        })
    }

    /// GET `url` (asking for `accept`), reading at most `limit` bytes of the body, within the
    /// time limit. Redirects are not followed.
    pub async fn get(&self, url: &Url, accept: &str, limit: usize) -> Result<Fetched, SendError> {
        let accept = HeaderValue::from_str(accept)
            .map_err(|_| SendError::Failed(format!("{accept:?} is not a header value")))?;
        let raw = self
            .within_time(self.exchange(
                Method::GET,
                url,
                vec![(header::ACCEPT, accept)],
                Vec::new(),
                limit,
            ))
            .await?;
        Ok(Fetched {
            status: raw.status,
            content_type: raw.content_type,
            body: raw.body,
            complete: raw.complete,
        })
    }

    async fn within_time<T>(
        &self,
        exchange: impl Future<Output = Result<T, SendError>>,
    ) -> Result<T, SendError> {
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(SendError::Failed(format!(
                "no answer within {} s",
                self.timeout.as_secs_f32()
            ))),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Vec<u8>,
        limit: usize,
    ) -> Result<Raw, SendError> {
        let address = self.resolve(url).await?;
        let host = url.host_str().unwrap_or_default();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, authority)
            .header(
                header::USER_AGENT,
                concat!("Switchboard/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Failed(format!("cannot build the request: {e}")))?;
        request.headers_mut().extend(headers);
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| SendError::Failed(format!("cannot connect to {address}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        if url.scheme() == "https" {
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                .map_err(|e| SendError::Failed(format!("{host} is not a TLS server name: {e}")))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| SendError::Failed(format!("TLS with {host} failed: {e}")))?;
            exchange_on(tls, request, limit).await
        } else {
            exchange_on(tcp, request, limit).await
        }
    }
}

/// An answer as it came.
struct Raw {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: Vec<u8>,
    complete: bool,
}

/// One request on a fresh connection; the answer's body is read up to `limit` bytes.
async fn exchange_on<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
    limit: usize,
) -> Result<Raw, SendError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed = |what: &str, e: hyper::Error| SendError::Failed(format!("{what}: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| failed("HTTP handshake failed", e))?;
    let driver = tokio::spawn(connection);
    let outcome = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| failed("the request failed", e))?;
        let status = response.status().as_u16();
        let text = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = text(header::LOCATION);
        let content_type = text(header::CONTENT_TYPE);
        let mut body = response.into_body();
        let mut read = Vec::new();
        let mut complete = true;
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = limit - read.len();
                        if data.len() > room {
                            read.extend_from_slice(&data[..room]);
                            complete = false;
                            break;
                        }
                        read.extend_from_slice(&data);
                    }
                }
                // The status is what counts; a body cut short is kept as far as it came.
                Some(Err(_)) => {
                    complete = false;
                    break;
                }
                None => break,
            }
        }
        Ok(Raw {
            status,
            content_type,
            location,
            body: read,
            complete,
        })
    }
    .await;
    // The rest of the body, if any, is not wanted: close the connection.
    driver.abort();
    outcome
}

/// How far an address is from the public internet.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    Public,
    /// Loopback and private ranges: allowed with `--notify-allow-private`.
    Private,
    /// Never a notification target.
    Never(&'static str),
}

fn classify(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address carries, in every form that reaches it: mapped
/// (`::ffff:a.b.c.d`), translated (`::ffff:0:a.b.c.d`), the deprecated compatible form
/// (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d` and the local-use `64:ff9b:1::/48`) and 6to4
/// (`2002:aabb:ccdd::`). Such an address is judged by the IPv4 address it reaches.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(v4(hi, lo)),
        // `::` and `::1` are themselves (unspecified, loopback).
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(v4(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] | [0x64, 0xff9b, 1, _, _, _, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

fn classify_v4(ip: Ipv4Addr) -> Reach {
    let [a, b, c, _] = ip.octets();
    if ip.is_link_local() {
        Reach::Never("a link-local address (cloud metadata services live there)")
    } else if ip.is_unspecified() || a == 0 {
        Reach::Never("an unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Reach::Never("a multicast, broadcast or reserved address")
    } else if ip.is_loopback()
        || ip.is_private()
        // Shared address space (carrier-grade NAT; also Alibaba's metadata service).
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking and IETF protocol assignments.
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && c == 0)
    {
        Reach::Private
    } else {
        Reach::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Reach {
    let first = ip.segments()[0];
    if (first & 0xffc0) == 0xfe80 {
        Reach::Never("a link-local address")
    } else if ip.is_unspecified() {
        Reach::Never("an unspecified address")
    } else if ip.is_multicast() {
        Reach::Never("a multicast address")
    } else if first == 0x2001 && ip.segments()[1] == 0 {
        // Teredo: the IPv4 address it reaches is hidden in the address.
        Reach::Never("a Teredo tunnel address")
    } else if (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || ip.segments()[..4] == [0x100, 0, 0, 0]
    {
        Reach::Never("a documentation or discard address")
    } else if ip.is_loopback()
        // Unique local addresses (AWS's IPv6 metadata service is one) and the old site-local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfec0
    {
        Reach::Private
    } else {
        Reach::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(outbound: &Outbound, url: &str) -> bool {
        outbound.check(url).is_err()
    }

    #[test]
    fn only_public_http_targets_unless_private_ones_are_allowed() {
        let strict = Outbound::new(false, Duration::from_secs(1), &[]);
        let relaxed = Outbound::new(true, Duration::from_secs(1), &[]);
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://0.0.0.0:8080/",
            "http://[::ffff:169.254.169.254]/",
            "http://224.0.0.1/",
            // The metadata address in every IPv6 form that reaches it.
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[64:ff9b:1::a9fe:a9fe]/",
            "http://[::169.254.169.254]/",
            "http://[::ffff:0:a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://[2001:db8::1]/",
        ] {
            assert!(refused(&strict, url), "{url}");
            assert!(
                refused(&relaxed, url),
                "{url} even with private targets allowed"
            );
        }
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://10.1.2.3/",
            "http://192.168.0.10/",
            "http://172.16.5.4/",
            "http://100.100.100.200/",
            "http://[::1]/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::127.0.0.1]/",
            "http://[::ffff:0:7f00:1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:c0a8:1::]/",
        ] {
            assert!(refused(&strict, url), "{url}");
            assert!(
                !refused(&relaxed, url),
                "{url} with private targets allowed"
            );
        }
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "not a url",
            "http://u:p@example.com/",
        ] {
            assert!(refused(&relaxed, url), "{url}");
        }
        assert!(!refused(&strict, "https://hooks.example.com/x?y=1"));
        assert!(!refused(&strict, "http://93.184.216.34/"));
        assert!(
            !refused(&strict, "http://[64:ff9b::5db8:d822]/"),
            "NAT64 of a public one"
        );
        assert!(!refused(&strict, "http://[2606:4700::1111]/"));
    }

    #[tokio::test]
    async fn names_are_resolved_and_checked() {
        let strict = Outbound::new(false, Duration::from_secs(1), &[]);
        let url = strict.check("http://localhost:9/").unwrap();
        assert!(matches!(
            strict.resolve(&url).await,
            Err(SendError::Refused(_))
        ));
        let relaxed = Outbound::new(true, Duration::from_secs(1), &[]);
        let address = relaxed.resolve(&url).await.unwrap();
        assert!(address.ip().is_loopback());
    }
}
