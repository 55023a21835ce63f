//! Configuration: command-line flags, each with an environment variable behind it. Flags win.

use std::path::PathBuf;

use clap::Args;

use crate::auth::SigningKeys;
use crate::auth::signing::KeyError;
use crate::client::{Client, ClientError};
use crate::database::{Database, DatabaseError};

/// Where the database is: `DATABASE_URL`, else the embedded cluster in the data directory.
#[derive(Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// PostgreSQL to use instead of the embedded cluster.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Directory for the embedded cluster and generated signing keys.
    #[arg(
        long,
        env = "SWITCHBOARD_DATA_DIR",
        default_value = "switchboard-data",
        global = true
    )]
    pub data_dir: PathBuf,
}

impl DatabaseArgs {
    pub async fn open(&self, max_connections: u32) -> Result<Database, DatabaseError> {
        Database::open(
            self.database_url.as_deref(),
            &self.data_dir,
            max_connections,
        )
        .await
    }

    /// The token signing keys: `JWT_*` when set, else the pair in the data directory.
    pub fn signing_keys(&self, keys: &KeyArgs) -> Result<(SigningKeys, bool), KeyError> {
        SigningKeys::load(
            keys.jwt_public_key.as_deref(),
            keys.jwt_private_key.as_deref(),
            &self.data_dir,
        )
    }
}

/// Token signing keys (PEM). Unset: an Ed25519 pair kept in the data directory.
#[derive(Args, Clone, Debug)]
pub struct KeyArgs {
    #[arg(long, env = "JWT_PUBLIC_KEY", hide_env_values = true)]
    pub jwt_public_key: Option<String>,

    #[arg(long, env = "JWT_PRIVATE_KEY", hide_env_values = true)]
    pub jwt_private_key: Option<String>,
}

/// A running Switchboard server, for the commands that talk to one over REST.
#[derive(Args, Clone, Debug)]
pub struct ServerArgs {
    /// The server, e.g. https://switchboard.example.com
    #[arg(long, env = "SWITCHBOARD_URL", default_value = "http://localhost:8080")]
    pub url: String,

    /// An API key of that server (`switchboard keys create`). Prefer the environment
    /// variable: other users can read command lines.
    #[arg(long, env = "SWITCHBOARD_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

impl ServerArgs {
    /// A client of the server, introducing itself as `switchboard-<command>`.
    pub fn client(&self, command: &str) -> Result<Client, ClientError> {
        let user_agent = format!("switchboard-{command}/{}", env!("CARGO_PKG_VERSION"));
        Client::new(&self.url, &self.api_key, &user_agent)
    }
}

/// Notification delivery (see `crate::notify`).
#[derive(Args, Clone, Debug)]
pub struct NotifyArgs {
    /// SMTP server for email channels: `smtp://host:port` (plain), `smtps://user:pass@host`
    /// (TLS) or `smtp://host:587?tls=required` (STARTTLS). Unset: no email channels.
    #[arg(long, env = "SWITCHBOARD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of notification emails (default `switchboard@<public host>`).
    #[arg(long, env = "SWITCHBOARD_SMTP_FROM")]
    pub smtp_from: Option<String>,

    /// Allow webhook and push targets on loopback and private addresses (link-local and
    /// metadata addresses stay refused).
    #[arg(long, env = "SWITCHBOARD_NOTIFY_ALLOW_PRIVATE")]
    pub notify_allow_private: bool,

    /// Root certificates (PEM file) to trust for outbound https — webhooks, push services and
    /// OAuth client metadata documents — besides Mozilla's: an organisation's own CA.
    #[arg(long, env = "SWITCHBOARD_OUTBOUND_CA_FILE")]
    pub outbound_ca_file: Option<std::path::PathBuf>,

    /// VAPID private key for web push (PKCS#8 PEM). Unset: generated in the data directory.
    #[arg(long, env = "SWITCHBOARD_VAPID_PRIVATE_KEY", hide_env_values = true)]
    pub vapid_private_key: Option<String>,

    /// Pauses between failed delivery attempts (the last repeats).
    #[arg(
        long,
        env = "SWITCHBOARD_NOTIFY_RETRY",
        default_value = "1s,5s,30s,2m,10m,30m,1h,2h,4h"
    )]
    pub notify_retry: String,

    /// How long after its creation a failing delivery is given up (marked failed).
    #[arg(long, env = "SWITCHBOARD_NOTIFY_GIVE_UP", default_value = "24h")]
    pub notify_give_up: String,

    /// Longest one webhook, push or SMTP exchange may take.
    #[arg(long, env = "SWITCHBOARD_NOTIFY_TIMEOUT", default_value = "10s")]
    pub notify_timeout: String,

    /// How long a delivery stays reserved for the process that claimed it (a process that
    /// dies mid-delivery leaves it to another after this); longer than the timeout.
    #[arg(long, env = "SWITCHBOARD_NOTIFY_LEASE", default_value = "60s")]
    pub notify_lease: String,
}

impl NotifyArgs {
    /// The certificates of `--outbound-ca-file`, if given.
    fn extra_roots(&self) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
        use rustls::pki_types::pem::PemObject;
        let Some(path) = &self.outbound_ca_file else {
            return Ok(Vec::new());
        };
        let read =
            |e: &dyn std::fmt::Display| format!("--outbound-ca-file {}: {e}", path.display());
        let certificates = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| read(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read(&e))?;
        if certificates.is_empty() {
            return Err(read(&"no certificate in the file"));
        }
        Ok(certificates)
    }

    /// The notifier's configuration; links and the SMTP greeting use `public_url`. The flag
    /// is true when a VAPID key pair was just generated in `data_dir`.
    pub fn config(
        &self,
        data_dir: &std::path::Path,
        public_url: &crate::app::PublicUrl,
    ) -> Result<(crate::notify::NotifyConfig, bool), String> {
        use crate::notify::{self, NotifyConfig, RetrySchedule, email::Smtp, web_push::VapidKey};
        let request_timeout = notify::parse_duration(&self.notify_timeout)?;
        let lease = notify::parse_duration(&self.notify_lease)?;
        if lease <= request_timeout {
            return Err(format!(
                "--notify-lease ({}) must be longer than --notify-timeout ({})",
                self.notify_lease, self.notify_timeout
            ));
        }
        let host = public_url.host_name();
        let smtp = match &self.smtp_url {
            None => None,
            Some(url) => {
                let from = self
                    .smtp_from
                    .clone()
                    .unwrap_or_else(|| format!("Switchboard <switchboard@{host}>"));
                Some(Smtp::new(url, &from, host, request_timeout)?)
            }
        };
        let (vapid, generated) = VapidKey::load(self.vapid_private_key.as_deref(), data_dir)?;
        Ok((
            NotifyConfig {
                smtp,
                allow_private: self.notify_allow_private,
                extra_roots: std::sync::Arc::new(self.extra_roots()?),
                retry: RetrySchedule::parse(&self.notify_retry, &self.notify_give_up)?,
                lease,
                request_timeout,
                concurrency: notify::CONCURRENCY,
                vapid: std::sync::Arc::new(vapid),
            },
            generated,
        ))
    }
}
