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
