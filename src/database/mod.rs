//! Finding the database: `DATABASE_URL` when given, else the embedded cluster in the data
//! directory. Either way the schema is migrated before anything else touches it.

pub mod embedded;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub use embedded::{Binaries, Cluster, EmbeddedError};

/// The database name Switchboard uses inside its embedded cluster.
pub const EMBEDDED_DATABASE: &str = "switchboard";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug)]
pub enum DatabaseError {
    Embedded(EmbeddedError),
    Url(String),
    Connect(sqlx::Error),
    Migrate(sqlx::migrate::MigrateError),
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseError::Embedded(e) => write!(f, "embedded PostgreSQL: {e}"),
            DatabaseError::Url(e) => write!(f, "DATABASE_URL is not a valid PostgreSQL URL: {e}"),
            DatabaseError::Connect(e) => write!(f, "cannot connect to PostgreSQL: {e}"),
            DatabaseError::Migrate(e) => write!(f, "cannot migrate the database: {e}"),
        }
    }
}

impl std::error::Error for DatabaseError {}

/// An open, migrated database, and the embedded cluster behind it when there is one.
pub struct Database {
    pub pool: PgPool,
    pub connect_options: PgConnectOptions,
    /// The database is a Citus coordinator: the tables are distributed by tenant (see
    /// `migrations/0100_distribution.sql`).
    pub citus: bool,
    cluster: Option<Cluster>,
}

impl Database {
    /// Open `database_url`, or the embedded cluster under `data_dir` when it is `None`.
    pub async fn open(
        database_url: Option<&str>,
        data_dir: &Path,
        max_connections: u32,
    ) -> Result<Database, DatabaseError> {
        let (connect_options, cluster) = match database_url {
            Some(url) => (
                PgConnectOptions::from_str(url).map_err(|e| DatabaseError::Url(e.to_string()))?,
                None,
            ),
            None => {
                let dir = data_dir.to_owned();
                let cluster = tokio::task::spawn_blocking(move || Cluster::start(&dir, ""))
                    .await
                    .expect("cluster start does not panic")
                    .map_err(DatabaseError::Embedded)?;
                let options = embedded_options(&cluster, "postgres");
                ensure_database(&options, EMBEDDED_DATABASE).await?;
                (options.database(EMBEDDED_DATABASE), Some(cluster))
            }
        };
        let citus = is_citus(&connect_options).await?;
        let pool = connect(connect_options.clone(), max_connections, citus).await?;
        MIGRATOR.run(&pool).await.map_err(DatabaseError::Migrate)?;
        Ok(Database {
            pool,
            connect_options,
            citus,
            cluster,
        })
    }

    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// Close the pool and give up this process's lease on the embedded cluster, stopping
    /// it when no other process uses it.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            match tokio::task::spawn_blocking(move || cluster.release()).await {
                Ok(Ok(true)) => tracing::info!("embedded PostgreSQL stopped"),
                Ok(Ok(false)) => tracing::info!("embedded PostgreSQL left running for other users"),
                Ok(Err(e)) => tracing::warn!("stopping embedded PostgreSQL: {e}"),
                Err(e) => tracing::warn!("stopping embedded PostgreSQL: {e}"),
            }
        }
    }
}

/// Connection options for a database of an embedded cluster.
pub fn embedded_options(cluster: &Cluster, database: &str) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .socket(cluster.socket_dir())
        .port(cluster.port())
        .username(embedded::SUPERUSER)
        .database(database)
        .application_name("switchboard")
}

/// Is the database a Citus coordinator (the `citus` extension is installed)? Asked once, when
/// a pool starts.
pub async fn is_citus(options: &PgConnectOptions) -> Result<bool, DatabaseError> {
    let mut conn = options.connect().await.map_err(DatabaseError::Connect)?;
    let citus = sqlx::query_scalar(IS_CITUS)
        .fetch_one(&mut conn)
        .await
        .map_err(DatabaseError::Connect)?;
    let _ = conn.close().await;
    Ok(citus)
}

/// [`is_citus`], asked on an open pool.
pub async fn pool_is_citus(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(IS_CITUS).fetch_one(pool).await
}

const IS_CITUS: &str = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')";

/// A pool that tolerates a database restart: connections are checked before use and
/// acquiring gives up quickly so that callers see "unavailable" rather than hang.
///
/// On plain PostgreSQL statements use generic plans (planned once per connection: the hot
/// statements' plans do not depend on their parameters). Citus plans a distributed statement
/// for its parameters (which tenant, so which node) and refuses many generic plans, so there
/// the default stays.
pub async fn pool(
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, DatabaseError> {
    let citus = is_citus(&options).await?;
    connect(options, max_connections, citus).await
}

async fn connect(
    options: PgConnectOptions,
    max_connections: u32,
    citus: bool,
) -> Result<PgPool, DatabaseError> {
    let options = if citus {
        // One connection per worker for everything a transaction (an append: several
        // statements' worth of CTEs) does there, so that it commits there as one transaction,
        // visible at once, without two-phase commit. And row locks only: Citus cannot tell
        // that an append's rows (written through the coordinator) are one tenant's, and would
        // otherwise serialize every append to a shard behind a lock on it; the log's own keys
        // decide races, and every shard has one copy.
        options.options([
            ("citus.multi_shard_modify_mode", "sequential"),
            ("citus.all_modifications_commutative", "on"),
        ])
    } else {
        options.options([("plan_cache_mode", "force_generic_plan")])
    };
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(DatabaseError::Connect)
}

/// Create `name` unless it exists (the embedded cluster starts with only `postgres`).
pub async fn ensure_database(admin: &PgConnectOptions, name: &str) -> Result<(), DatabaseError> {
    let pool = pool(admin.clone(), 1).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&pool)
            .await
            .map_err(DatabaseError::Connect)?;
    if !exists {
        let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&pool)
            .await
        {
            // Another process created it first.
            if e.as_database_error().and_then(|d| d.code()).as_deref() != Some("42P04") {
                return Err(DatabaseError::Connect(e));
            }
        }
    }
    pool.close().await;
    Ok(())
}

/// Apply the embedded migrations to `pool` (tests prepare template databases with it).
pub async fn migrate(pool: &PgPool) -> Result<(), DatabaseError> {
    MIGRATOR.run(pool).await.map_err(DatabaseError::Migrate)
}
