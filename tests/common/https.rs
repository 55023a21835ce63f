//! An https server on loopback, with a certificate from a test CA made for it: what a test
//! needs to stand in for a public https site (an OAuth client's metadata document). The server
//! under test trusts the CA through `--outbound-ca-file` (`NotifyConfig::extra_roots`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// One JSON document served over https at `url` (404 until [`HttpsDocument::set`]), counting
/// how often it was fetched.
pub struct HttpsDocument {
    pub url: String,
    /// The test CA's certificate, to trust.
    pub ca: CertificateDer<'static>,
    body: Arc<Mutex<Option<String>>>,
    fetched: Arc<AtomicUsize>,
}

impl HttpsDocument {
    pub fn set(&self, body: String) {
        *self.body.lock().unwrap() = Some(body);
    }

    pub fn fetched(&self) -> usize {
        self.fetched.load(Ordering::SeqCst)
    }
}

/// Serve a JSON document at `path` of `https://127.0.0.1:<port>`.
pub async fn serve_document(path: &str) -> HttpsDocument {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Switchboard test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}{path}", listener.local_addr().unwrap());
    let body: Arc<Mutex<Option<String>>> = Arc::default();
    let served = body.clone();
    let path = path.to_owned();
    let fetched = Arc::new(AtomicUsize::new(0));
    let counter = fetched.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, body, path, counter) = (
                acceptor.clone(),
                served.clone(),
                path.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let asked = head.split_whitespace().nth(1).unwrap_or("");
                let body = body.lock().unwrap().clone();
                let response = if let Some(body) = body.filter(|_| asked == path) {
                    counter.fetch_add(1, Ordering::SeqCst);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .into()
                };
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    HttpsDocument {
        url,
        ca: ca.der().clone(),
        body,
        fetched,
    }
}
