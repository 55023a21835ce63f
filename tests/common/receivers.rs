//! The notification tests' real receivers (`tests/notify/receivers.py`, in a venv made on first
//! use): a webhook endpoint that verifies Standard Webhooks signatures, an SMTP server, a push
//! service endpoint. Each runs as a child process and reports what it received as lines.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

const RECEIVER_PACKAGES: &[&str] = &[
    "standardwebhooks==1.1.0",
    "aiosmtpd==1.4.6",
    "http-ece==1.2.1",
    "cryptography==50.0.2",
    "pyjwt==2.15.1",
];

/// Long enough for any delivery on a busy 2-core machine, short of a test's patience.
pub const WITHIN: Duration = Duration::from_secs(20);

/// One of `receivers.py`'s receivers, with what it printed.
pub struct Receiver {
    _child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<(String, Value)>,
    pub ready: Value,
}

impl Receiver {
    pub async fn start(args: &[&str]) -> Receiver {
        let python = super::prereqs::python("notify-receivers", &[RECEIVER_PACKAGES]);
        let mut child = Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/notify/receivers.py"
            ))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python starts");
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, mut lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                let (kind, json) = line.split_once(' ').expect("KIND {json}");
                let _ = tx.send((kind.to_owned(), serde_json::from_str(json).unwrap()));
            }
        });
        let (kind, ready) = tokio::time::timeout(WITHIN, lines.recv())
            .await
            .expect("the receiver starts")
            .expect("the receiver prints READY");
        assert_eq!(kind, "READY");
        Receiver {
            _child: child,
            stdin,
            lines,
            ready,
        }
    }

    pub async fn webhook(args: &[&str]) -> Receiver {
        Receiver::start(&[&["webhook"], args].concat()).await
    }

    pub fn url(&self) -> &str {
        self.ready["url"].as_str().unwrap()
    }

    /// Tell a webhook receiver a signing secret.
    pub async fn secret(&mut self, secret: &str) {
        self.stdin
            .write_all(format!("SECRET {secret}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next thing received, which must be of `kind`.
    pub async fn next(&mut self, kind: &str) -> Value {
        let (got, value) = tokio::time::timeout(WITHIN, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("no {kind} within {WITHIN:?}"))
            .expect("the receiver is running");
        assert_eq!(got, kind, "{value}");
        value
    }

    /// Everything received within `quiet`.
    pub async fn rest(&mut self, quiet: Duration) -> Vec<(String, Value)> {
        let mut got = Vec::new();
        while let Ok(Some(line)) = tokio::time::timeout(quiet, self.lines.recv()).await {
            got.push(line);
        }
        got
    }
}
