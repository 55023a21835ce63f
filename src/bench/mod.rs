//! `switchboard bench`: measurements of the real code paths against a real PostgreSQL, each
//! beside a reference measured in the same run on the same machine (pgbench's raw INSERT
//! ceiling), so results read as ratios rather than machine-dependent absolutes.

pub mod append;
pub mod audit;
pub mod hooks;
pub mod import;
pub mod inbox;
pub mod model;
pub mod notify;
pub mod push;
pub mod rest;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::auth::SigningKeys;
use crate::database::{self, Binaries, Database, DatabaseError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Name of the scratch database benchmarks use inside the embedded cluster.
pub const BENCH_DATABASE: &str = "switchboard_bench";

/// A database to benchmark in: a fresh `switchboard_bench` in the embedded cluster, or the
/// database `DATABASE_URL` names.
pub struct BenchDb {
    pub pool: PgPool,
    pub options: PgConnectOptions,
    /// How pgbench reaches the same database.
    pub pgbench_target: Vec<String>,
    /// How another process (a server under test) reaches it.
    pub url: String,
    /// Keeps the embedded cluster leased while the benchmark runs.
    pub database: Database,
}

impl BenchDb {
    pub async fn open(
        database_url: Option<&str>,
        data_dir: &std::path::Path,
        connections: u32,
    ) -> Result<BenchDb, DatabaseError> {
        let database = Database::open(database_url, data_dir, 2).await?;
        let (options, pgbench_target, url) = match (database_url, database.cluster()) {
            (Some(url), _) => (
                database.connect_options.clone(),
                vec![url.to_owned()],
                url.to_owned(),
            ),
            (None, Some(cluster)) => {
                let admin = database::embedded_options(cluster, "postgres");
                let pool = database::pool(admin.clone(), 1).await?;
                sqlx::query("DROP DATABASE IF EXISTS switchboard_bench WITH (FORCE)")
                    .execute(&pool)
                    .await
                    .map_err(DatabaseError::Connect)?;
                pool.close().await;
                database::ensure_database(&admin, BENCH_DATABASE).await?;
                let target = vec![
                    "-h".to_owned(),
                    cluster.socket_dir().display().to_string(),
                    "-p".to_owned(),
                    cluster.port().to_string(),
                    "-U".to_owned(),
                    database::embedded::SUPERUSER.to_owned(),
                    BENCH_DATABASE.to_owned(),
                ];
                (
                    admin.database(BENCH_DATABASE),
                    target,
                    cluster.url(BENCH_DATABASE),
                )
            }
            (None, None) => unreachable!("without DATABASE_URL the cluster is embedded"),
        };
        let pool = database::pool(options.clone(), connections).await?;
        database::migrate(&pool).await?;
        Ok(BenchDb {
            pool,
            options,
            pgbench_target,
            url,
            database,
        })
    }

    pub async fn close(self) {
        self.pool.close().await;
        self.database.close().await;
    }
}

/// Percentiles of a set of latencies.
#[derive(Clone, Copy, Debug)]
pub struct Latencies {
    pub count: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latencies {
    pub fn of(mut samples: Vec<Duration>) -> Option<Latencies> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Some(Latencies {
            count: samples.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: *samples.last().expect("not empty"),
        })
    }
}

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
            self.count
        )
    }
}

/// pgbench running one custom script: the reference ceiling for a kind of transaction.
pub struct Pgbench {
    binary: PathBuf,
    target: Vec<String>,
}

impl Pgbench {
    pub fn locate(target: Vec<String>) -> Option<Pgbench> {
        let binary = Binaries::locate().ok()?.tool("pgbench");
        let binary = if binary.is_file() {
            binary
        } else {
            PathBuf::from("pgbench")
        };
        Some(Pgbench { binary, target })
    }

    /// Run `script` with `clients` connections for `seconds`; returns transactions/s.
    pub fn tps(&self, script: &str, clients: u32, seconds: u64) -> Result<f64, String> {
        let file =
            std::env::temp_dir().join(format!("switchboard-bench-{}.sql", std::process::id()));
        std::fs::write(&file, script).map_err(|e| format!("write pgbench script: {e}"))?;
        let threads = clients.clamp(1, 2);
        let output = Command::new(&self.binary)
            .args(["-n", "-f"])
            .arg(&file)
            .args(["-c", &clients.to_string(), "-j", &threads.to_string()])
            .args(["-T", &seconds.to_string()])
            .args(&self.target)
            .env("PGAPPNAME", "switchboard-bench")
            .output()
            .map_err(|e| format!("run {}: {e}", self.binary.display()))?;
        let _ = std::fs::remove_file(&file);
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "pgbench failed: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("no tps in pgbench output: {stdout}"))
    }
}

/// The raw INSERT ceiling: one single-row INSERT per transaction into a table with a
/// bigserial key, a uuid and a JSON document of the size of an agent message.
pub async fn raw_insert_ceiling(
    pool: &PgPool,
    pgbench: &Pgbench,
    clients: u32,
    seconds: u64,
) -> Result<f64, String> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_raw_insert (
             id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, data json NOT NULL,
             recorded_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(pool)
    .await
    .map_err(|e| e.to_string())?;
    let script = "INSERT INTO bench_raw_insert (tenant_id, data) VALUES (gen_random_uuid(), \
                  '{\"content\":\"Refactoring the storage layer: step 42 of the plan\",\"requires_user_input\":false}');\n";
    let pgbench_tps = {
        let pgbench = Pgbench {
            binary: pgbench.binary.clone(),
            target: pgbench.target.clone(),
        };
        tokio::task::spawn_blocking(move || pgbench.tps(script, clients, seconds))
            .await
            .map_err(|e| e.to_string())?
    };
    sqlx::query("DROP TABLE bench_raw_insert")
        .execute(pool)
        .await
        .map_err(|e| e.to_string())?;
    pgbench_tps
}

/// A fresh Ed25519 token key pair: the keys, and their public and private PEM text (for a
/// server under test started as a process).
pub fn scratch_keys() -> Result<(SigningKeys, String, String), BoxError> {
    let key_dir =
        std::env::temp_dir().join(format!("switchboard-bench-keys-{}", uuid::Uuid::new_v4()));
    let (keys, _) = SigningKeys::load(None, None, &key_dir)?;
    let public = std::fs::read_to_string(key_dir.join("jwt-ed25519-public.pem"));
    let private = std::fs::read_to_string(key_dir.join("jwt-ed25519-private.pem"));
    let _ = std::fs::remove_dir_all(&key_dir);
    Ok((keys, public?, private?))
}

/// A `switchboard serve` child process on the bench database, with `args` added to its
/// command line; its data directory is a scratch one, removed with it.
pub struct Server {
    child: Child,
    data_dir: PathBuf,
    pub address: String,
}

impl Server {
    pub fn start(db: &BenchDb, keys: (&str, &str), args: &[&str]) -> Result<Server, BoxError> {
        let data_dir =
            std::env::temp_dir().join(format!("switchboard-bench-node-{}", uuid::Uuid::new_v4()));
        // Another build's server may be measured by this build's benchmark (before/after).
        let binary = match std::env::var_os("SWITCHBOARD_BENCH_SERVER") {
            Some(binary) => std::path::PathBuf::from(binary),
            None => std::env::current_exe()?,
        };
        let mut child = Command::new(binary)
            .args(["serve", "--port", "0", "--host", "127.0.0.1"])
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("SWITCHBOARD_DATA_DIR", &data_dir)
            .env("JWT_PUBLIC_KEY", keys.0)
            .env("JWT_PRIVATE_KEY", keys.1)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let address = lines.by_ref().map_while(Result::ok).find_map(|l| {
            l.strip_prefix("Switchboard listening on ")
                .map(|a| a.trim().to_owned())
        });
        std::thread::spawn(move || lines.for_each(drop));
        let mut server = Server {
            child,
            data_dir,
            address: String::new(),
        };
        server.address = address.ok_or("the server did not start")?;
        Ok(server)
    }

    /// Resident memory in MiB, from /proc.
    pub fn rss_mib(&self) -> Option<f64> {
        proc_status_mib(&self.child.id().to_string(), "VmRSS")
    }
}

/// A memory figure (`VmRSS`, `VmHWM`, ...) of process `pid` (or `self`), in MiB, from /proc.
pub fn proc_status_mib(pid: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
