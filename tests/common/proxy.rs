//! A TCP proxy in front of the test PostgreSQL that can freeze chosen connections: it stops
//! forwarding their bytes in both directions but keeps both sockets open, as a NAT that
//! forgot a connection or a failover does. Nothing errors; the connection just goes silent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One proxied connection.
struct Link {
    /// Whether the client ever sent a LISTEN.
    listens: AtomicBool,
    frozen: AtomicBool,
}

pub struct FreezingProxy {
    pub port: u16,
    links: Arc<Mutex<Vec<Arc<Link>>>>,
}

impl FreezingProxy {
    /// A proxy to the server `options` names (a Unix socket or host:port).
    pub async fn start(options: &PgConnectOptions) -> FreezingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let links: Arc<Mutex<Vec<Arc<Link>>>> = Arc::default();
        let target = match options.get_socket() {
            Some(dir) => Target::Unix(dir.join(format!(".s.PGSQL.{}", options.get_port()))),
            None => Target::Tcp(format!("{}:{}", options.get_host(), options.get_port())),
        };
        let registry = links.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let link = Arc::new(Link {
                    listens: AtomicBool::new(false),
                    frozen: AtomicBool::new(false),
                });
                registry.lock().unwrap().push(link.clone());
                let target = target.clone();
                tokio::spawn(async move {
                    let (client_read, client_write) = client.into_split();
                    match target {
                        Target::Unix(path) => {
                            let server = tokio::net::UnixStream::connect(path).await.unwrap();
                            let (server_read, server_write) = server.into_split();
                            splice(link, client_read, client_write, server_read, server_write)
                                .await;
                        }
                        Target::Tcp(address) => {
                            let server = tokio::net::TcpStream::connect(address).await.unwrap();
                            let (server_read, server_write) = server.into_split();
                            splice(link, client_read, client_write, server_read, server_write)
                                .await;
                        }
                    }
                });
            }
        });
        FreezingProxy { port, links }
    }

    /// `options` pointed at this proxy instead of the server.
    pub fn url(&self, options: &PgConnectOptions) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{}?sslmode=disable",
            options.get_username(),
            self.port,
            options.get_database().unwrap_or("postgres")
        )
    }

    /// Freeze every connection that has sent LISTEN so far; returns how many.
    pub fn freeze_listeners(&self) -> usize {
        let links = self.links.lock().unwrap();
        let mut frozen = 0;
        for link in links.iter() {
            if link.listens.load(Ordering::Acquire) {
                link.frozen.store(true, Ordering::Release);
                frozen += 1;
            }
        }
        frozen
    }
}

#[derive(Clone)]
enum Target {
    Unix(std::path::PathBuf),
    Tcp(String),
}

async fn splice(
    link: Arc<Link>,
    client_read: impl AsyncRead + Unpin + Send + 'static,
    client_write: impl AsyncWrite + Unpin + Send + 'static,
    server_read: impl AsyncRead + Unpin + Send + 'static,
    server_write: impl AsyncWrite + Unpin + Send + 'static,
) {
    let upstream = tokio::spawn(pump(link.clone(), client_read, server_write, true));
    let downstream = tokio::spawn(pump(link, server_read, client_write, false));
    let _ = tokio::join!(upstream, downstream);
}

/// Copy bytes until either side closes; once frozen, swallow them (keeping both sockets).
async fn pump(
    link: Arc<Link>,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    from_client: bool,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if from_client
            && buffer[..n]
                .windows(6)
                .any(|w| w.eq_ignore_ascii_case(b"LISTEN"))
        {
            link.listens.store(true, Ordering::Release);
        }
        if link.frozen.load(Ordering::Acquire) {
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
