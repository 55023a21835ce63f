//! Test harness: a real PostgreSQL and a real server on a random port.
//!
//! Each test binary gets one throwaway cluster (unless `DATABASE_URL` names a server to use),
//! started on first use from the machine's PostgreSQL binaries and migrated once into a
//! template database; every test gets a fresh database cloned from that template. A small
//! reaper process watches a pipe from this process and, when the pipe closes (normal exit,
//! panic, or kill -9), shuts the cluster down and deletes its directory.
//!
//! `DATABASE_URL` may name a Citus coordinator (`scripts/citus-cluster`). A database there is
//! distributed over the coordinator's workers, which a template cannot copy: each test's
//! database is created on every node, joined to the cluster and migrated (with few shards, so
//! that it is quick), and the reaper drops them all when the test binary ends.
#![allow(dead_code)]

pub mod agents;
pub mod claude;
pub mod cutting_proxy;
pub mod https;
pub mod prereqs;
pub mod proxy;
pub mod receivers;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use switchboard::app::{self, App, AppState, Config};
use switchboard::auth::api_keys;
use switchboard::auth::{Authenticator, SigningKeys};
use switchboard::commands::{Context, Scope};
use switchboard::database::{self, Cluster, embedded};
use switchboard::eventlog::EventLog;
use switchboard::http;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Makes a URL for a database name.
type UrlFor = Box<dyn Fn(&str) -> String + Send + Sync>;

struct Server {
    /// Connection options for the maintenance database.
    admin: PgConnectOptions,
    /// A URL for a database of this server, for other processes.
    url: UrlFor,
    template: String,
    /// The Citus cluster behind `DATABASE_URL`, when it is one.
    citus: Option<CitusNodes>,
    cluster: Option<Cluster>,
    /// The Ed25519 pair (public, private PEM) every test server of this binary uses.
    key_pems: (String, String),
    /// Data directory for servers started as processes (their generated VAPID key).
    node_data: std::path::PathBuf,
}

/// Where the nodes of a Citus cluster listen: (host, port), the coordinator's first.
struct CitusNodes(Vec<(String, i32)>);

/// Shards per distributed table in test databases (Citus's default, 32, is for data).
const TEST_SHARDS: u32 = 4;

static SERVER: OnceCell<Server> = OnceCell::const_new();
/// A server URL chosen by the test binary itself, over `DATABASE_URL` (see [`use_citus`]).
static CHOSEN_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Run this binary's tests on a Citus cluster of a coordinator and two workers, started (and
/// Citus built and installed first, when it is missing) by `scripts/citus-cluster` under
/// `target/prereqs/citus`. Call before anything else of the harness. A cluster that cannot be
/// had fails the test with what to do.
pub fn use_citus() {
    CHOSEN_URL.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/citus-cluster");
        let dir = prereqs::root().join("citus");
        let output = Command::new(script)
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(
            output.status.success(),
            "{script} {} failed ({}):\n{}\nThese tests need a Citus 13 cluster: PostgreSQL 15 \
             server binaries, the build tools of ../shared/vendor/README.md (apt-get install \
             postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev \
             libssl-dev build-essential) and root or sudo to install Citus; then run the script \
             by hand to see what fails.",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr),
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .last()
            .expect("the script prints a URL")
            .trim()
            .to_owned()
    });
}
static NEXT_DB: AtomicU64 = AtomicU64::new(0);

async fn server() -> &'static Server {
    SERVER.get_or_init(start_server).await
}

async fn start_server() -> Server {
    let scratch = std::env::temp_dir().join(format!(
        "switchboard-test-{}-{}",
        std::process::id(),
        Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&scratch).unwrap();
    let keys_dir = scratch.join("keys");
    let chosen = CHOSEN_URL
        .get()
        .cloned()
        .ok_or(())
        .or_else(|()| std::env::var("DATABASE_URL"));
    let (admin, url, cluster): (PgConnectOptions, UrlFor, _) = match chosen {
        Ok(url) => {
            let admin: PgConnectOptions = url.parse().expect("DATABASE_URL parses");
            let citus = database::is_citus(&admin).await.unwrap();
            reap_on_exit(&scratch, None, citus.then_some(url.as_str()));
            let base = url
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(url.clone());
            let query = url
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            (
                admin,
                Box::new(move |db| format!("{base}/{db}{query}")),
                None,
            )
        }
        Err(_) => {
            let dir = scratch.clone();
            let cluster = tokio::task::spawn_blocking(move || {
                Cluster::start(&dir.join("data"), embedded::THROWAWAY_SETTINGS)
            })
            .await
            .unwrap()
            .expect("a throwaway PostgreSQL cluster starts (are the server binaries installed?)");
            reap_on_exit(&scratch, Some(&cluster), None);
            let admin = database::embedded_options(&cluster, "postgres");
            let url = cluster.url("DATABASE");
            let url = move |db: &str| url.replace("DATABASE", db);
            (admin, Box::new(url), Some(cluster))
        }
    };
    let citus = citus_nodes(&admin).await;
    let template = format!("switchboard_template_{}", std::process::id());
    if citus.is_none() {
        database::ensure_database(&admin, &template).await.unwrap();
        let pool = database::pool(admin.clone().database(&template), 1)
            .await
            .unwrap();
        database::migrate(&pool).await.unwrap();
        pool.close().await;
    }
    SigningKeys::load(None, None, &keys_dir).unwrap();
    let read = |file: &str| std::fs::read_to_string(keys_dir.join(file)).unwrap();
    let key_pems = (
        read("jwt-ed25519-public.pem"),
        read("jwt-ed25519-private.pem"),
    );
    Server {
        admin,
        url,
        template,
        citus,
        cluster,
        key_pems,
        node_data: scratch.join("node-data"),
    }
}

/// The nodes of the Citus cluster `admin` is the coordinator of, if it is one.
async fn citus_nodes(admin: &PgConnectOptions) -> Option<CitusNodes> {
    if !database::is_citus(admin).await.unwrap() {
        return None;
    }
    let pool = database::pool(admin.clone(), 1).await.unwrap();
    let nodes: Vec<(String, i32)> = sqlx::query_as(
        "SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary'
         ORDER BY groupid",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert!(
        nodes.len() >= 2,
        "DATABASE_URL names a Citus coordinator without workers: {nodes:?}"
    );
    Some(CitusNodes(nodes))
}

/// A database on every node of the Citus cluster, joined to it like the cluster's own.
async fn create_citus_database(server: &Server, nodes: &CitusNodes, name: &str) {
    let admin = database::pool(server.admin.clone(), 1).await.unwrap();
    let mut conn = admin.acquire().await.unwrap();
    sqlx::query("SET citus.enable_create_database_propagation = on")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut *conn)
        .await
        .unwrap();
    // Joining a database to the cluster writes the workers' shared catalogs (roles), which
    // two joins at once can collide on ("tuple concurrently updated"): one join at a time,
    // across test processes too (the lock lives in the coordinator's maintenance database).
    sqlx::query("SELECT pg_advisory_lock(7310)")
        .execute(&mut *conn)
        .await
        .unwrap();
    for (host, port) in &nodes.0 {
        let node = server
            .admin
            .clone()
            .host(host)
            .port(*port as u16)
            .database(name);
        let pool = database::pool(node, 1).await.unwrap();
        sqlx::query("CREATE EXTENSION citus")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let pool = database::pool(server.admin.clone().database(name), 1)
        .await
        .unwrap();
    let (coordinator, workers) = nodes.0.split_first().expect("a coordinator");
    sqlx::query("SELECT citus_set_coordinator_host($1, $2)")
        .bind(&coordinator.0)
        .bind(coordinator.1)
        .execute(&pool)
        .await
        .unwrap();
    for (host, port) in workers {
        sqlx::query("SELECT citus_add_node($1, $2)")
            .bind(host)
            .bind(port)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} SET citus.shard_count = {TEST_SHARDS}"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    drop(conn);
    admin.close().await;
    // A new connection: the one above predates the shard count.
    let pool = database::pool(server.admin.clone().database(name), 1)
        .await
        .unwrap();
    database::migrate(&pool).await.unwrap();
    pool.close().await;
}

/// Stop the cluster and delete `scratch` once this process is gone, however it ends; with
/// `drop_databases` (a Citus coordinator's URL), drop the databases this process made there.
fn reap_on_exit(
    scratch: &std::path::Path,
    cluster: Option<&Cluster>,
    drop_databases: Option<&str>,
) {
    let pid_file = cluster
        .map(|c| c.pgdata().join("postmaster.pid").display().to_string())
        .unwrap_or_default();
    let socket_dir = cluster
        .map(|c| c.socket_dir().display().to_string())
        .unwrap_or_default();
    let script = r#"
        cat > /dev/null
        if [ -n "$1" ] && [ -f "$1" ]; then
            pid=$(head -n 1 "$1")
            kill -QUIT "$pid" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -rf "$2"
        case "$3" in /tmp/switchboard-*) rm -rf "$3" ;; esac
        if [ -n "$4" ]; then
            for db in $(psql -X -At "$4" -c "SELECT datname FROM pg_database
                                              WHERE datname LIKE '%\_$5\_%'"); do
                # A worker may still serve the coordinator's last connections for a moment.
                for _ in 1 2 3 4 5; do
                    psql -X -q "$4" -c "SET citus.enable_create_database_propagation = on" \
                        -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null && break
                    sleep 1
                done
            done
        fi
    "#;
    let mut child = Command::new("sh")
        .args([
            "-c",
            script,
            "reaper",
            &pid_file,
            &scratch.display().to_string(),
            &socket_dir,
            drop_databases.unwrap_or_default(),
            &std::process::id().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("sh starts");
    // Never written to, never closed: the kernel closes it when this process ends.
    let stdin = child.stdin.take().unwrap();
    std::mem::forget(stdin);
    std::mem::forget(child);
    let _ = std::io::stdout().flush();
}

/// A fresh, migrated database for one test.
pub struct TestDb {
    pub pool: PgPool,
    pub options: PgConnectOptions,
    pub name: String,
    /// A URL other processes (a spawned server) can use.
    pub url: String,
}

pub async fn database() -> TestDb {
    let template = server().await.template.clone();
    create_database("switchboard_test", &template, 20).await
}

async fn create_database(prefix: &str, template: &str, connections: u32) -> TestDb {
    let server = server().await;
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    match &server.citus {
        // Another system's database (`template0`) stays on the coordinator alone.
        Some(nodes) if template != "template0" => {
            create_citus_database(server, nodes, &name).await;
        }
        _ => {
            let admin = database::pool(server.admin.clone(), 1).await.unwrap();
            let create = format!("CREATE DATABASE {name} TEMPLATE {template}");
            sqlx::query(sqlx::AssertSqlSafe(create))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }
    let options = server.admin.clone().database(&name);
    let pool = database::pool(options.clone(), connections).await.unwrap();
    TestDb {
        pool,
        options,
        url: (server.url)(&name),
        name,
    }
}

/// A database with nothing in it (no Switchboard schema): another system's, for importers.
#[allow(dead_code)]
pub async fn empty_database() -> TestDb {
    create_database("foreign_test", "template0", 4).await
}

/// The throwaway cluster, for tests that restart or disturb PostgreSQL itself.
pub async fn cluster() -> Option<&'static Cluster> {
    server().await.cluster.as_ref()
}

/// The key pair every test server of this binary signs with.
pub async fn signing_keys() -> SigningKeys {
    let (public, private) = signing_key_pems().await;
    SigningKeys::from_pem(&public, Some(&private), "test".into()).unwrap()
}

/// PEM text (public, private) of the test key pair, for servers started as processes.
pub async fn signing_key_pems() -> (String, String) {
    server().await.key_pems.clone()
}

/// A command context for a tenant, as the CLI would make it.
pub fn ctx(tenant: Uuid) -> Context {
    Context::system(tenant)
}

/// Give `tenant` a user account (named Ada): what account facts, such as notification
/// channels, are recorded on.
pub async fn create_user(log: &EventLog, tenant: Uuid) {
    let name = switchboard::domain::UserName::parse("name", "Ada").unwrap();
    switchboard::commands::create_user(log, &ctx(tenant), name, None)
        .await
        .unwrap();
}

pub fn audit_ctx(tenant: Uuid) -> Context {
    Context {
        scope: Scope::Audit,
        ..Context::system(tenant)
    }
}

/// A Switchboard server on a random port, in this process, against a fresh database.
pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub log: EventLog,
    pub keys: Arc<SigningKeys>,
    pub hub: Arc<switchboard::push::Hub>,
    pub client: reqwest::Client,
    /// A tenant with an agent-scope key, ready to use.
    pub tenant: Uuid,
    pub token: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Config::default()).await
    }

    pub async fn spawn_with(config: Config) -> TestApp {
        TestApp::spawn_at(config, false).await
    }

    /// A test app whose public URL is its own address (what links in notifications name, and
    /// what a browser's service worker accepts as its own).
    pub async fn spawn_public(config: Config) -> TestApp {
        TestApp::spawn_at(config, true).await
    }

    async fn spawn_at(mut config: Config, public: bool) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        if public {
            config.public_url = switchboard::app::PublicUrl::parse(&address).unwrap();
        }
        let db = database().await;
        let keys = Arc::new(signing_keys().await);
        let log = EventLog::new(db.pool.clone());
        let state = AppState(Arc::new(App::start(
            config,
            log.clone(),
            Arc::new(Authenticator::new(keys.clone(), db.pool.clone())),
        )));
        let hub = state.hub.clone();
        let router = app::router(state);
        tokio::spawn(http::server::serve(
            listener,
            router,
            tokio_util::sync::CancellationToken::new(),
        ));
        let tenant = Uuid::new_v4();
        let (_, token) = api_keys::create(&db.pool, &keys, tenant, "test", Scope::Agent, None)
            .await
            .unwrap();
        TestApp {
            address,
            db,
            log,
            keys,
            hub,
            client: reqwest::Client::new(),
            tenant,
            token,
        }
    }

    /// A new API key for `tenant`.
    pub async fn key(&self, tenant: Uuid, scope: Scope) -> String {
        api_keys::create(&self.db.pool, &self.keys, tenant, "test", scope, None)
            .await
            .unwrap()
            .1
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(&self.token)
    }

    /// GET `path` with the test tenant's key; the JSON body, whatever the status.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }

    pub fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
    }
}

/// Run the `switchboard` command line against `db` (signing with the test keys), feeding it
/// `stdin`; its output, whatever the exit status.
pub async fn switchboard(db: &TestDb, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let (public, private) = signing_key_pems().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("JWT_PUBLIC_KEY", public)
        .env("JWT_PRIVATE_KEY", private)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        tokio::io::AsyncWriteExt::write_all(&mut input, bytes)
            .await
            .unwrap();
    }
    drop(input);
    child.wait_with_output().await.unwrap()
}

/// `switchboard serve` as a separate process on `db`, signing with the test keys: a second
/// node beside the in-process server.
pub struct ServerProcess {
    child: std::process::Child,
    pub address: String,
    /// What it printed before it listened (a first start's API key and sign-in link).
    pub banner: Vec<String>,
}

impl ServerProcess {
    pub async fn start(db: &TestDb) -> ServerProcess {
        ServerProcess::start_with(db, &[]).await
    }

    pub async fn start_with(db: &TestDb, env: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::launch(&db.url, 0, env, None).await
    }

    /// A server on the database at `url` (a proxy in front of a test database, say).
    pub async fn start_at(url: &str, env: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::launch(url, 0, env, None).await
    }

    /// A server on `port` (to restart one where its clients expect it).
    pub async fn start_on(db: &TestDb, port: u16) -> ServerProcess {
        ServerProcess::launch(&db.url, port, &[], None).await
    }

    /// A server whose standard error is collected (with the server's own default log filter,
    /// as an operator sees it).
    pub async fn start_logged(db: &TestDb, env: &[(&str, &str)]) -> (ServerProcess, Logs) {
        let logs = Logs::default();
        let server = ServerProcess::launch(&db.url, 0, env, Some(logs.clone())).await;
        (server, logs)
    }

    async fn launch(
        url: &str,
        port: u16,
        env: &[(&str, &str)],
        logs: Option<Logs>,
    ) -> ServerProcess {
        use std::io::BufRead;
        let (public, private) = signing_key_pems().await;
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .args(["serve", "--port", &port.to_string(), "--host", "127.0.0.1"])
            .env("DATABASE_URL", url)
            .env("SWITCHBOARD_DATA_DIR", &server().await.node_data)
            .env("JWT_PUBLIC_KEY", public)
            .env("JWT_PRIVATE_KEY", private)
            .stdout(Stdio::piped());
        match &logs {
            Some(_) => command.env_remove("RUST_LOG").stderr(Stdio::piped()),
            None => command.env("RUST_LOG", "warn").stderr(Stdio::inherit()),
        };
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("the server binary starts");
        // Owned at once, so that a panic below still reaps it.
        let mut server = ServerProcess {
            child,
            address: String::new(),
            banner: Vec::new(),
        };
        if let Some(logs) = logs {
            let stderr = server.child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    logs.0.lock().unwrap().push(line);
                }
            });
        }
        let stdout = server.child.stdout.take().unwrap();
        let (address, banner) = tokio::task::spawn_blocking(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let mut banner = Vec::new();
            let address = lines.by_ref().map_while(Result::ok).find_map(|line| {
                let address = line
                    .strip_prefix("Switchboard listening on ")
                    .map(|a| a.trim().to_owned());
                banner.push(line);
                address
            });
            // Keep draining so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            (address, banner)
        })
        .await
        .unwrap();
        server.address = address.expect("the server prints its address");
        server.banner = banner;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// SIGKILL: the process dies wherever it is, as in a crash.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

/// What a server process wrote to standard error, line by line, as it runs.
#[derive(Clone, Default)]
pub struct Logs(Arc<std::sync::Mutex<Vec<String>>>);

impl Logs {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Wait (up to 10 s) until some line satisfies `found`; returns it.
    pub async fn wait_for(&self, found: impl Fn(&str) -> bool) -> String {
        for _ in 0..200 {
            if let Some(line) = self.lines().into_iter().find(|l| found(l)) {
                return line;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no such log line in:\n{}", self.lines().join("\n"));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The official MCP TypeScript SDK, pinned.
pub const MCP_TS_SDK: &str = "@modelcontextprotocol/sdk@1.32.2";

/// The official MCP TypeScript client of the 2.x line (its own package), pinned.
pub const MCP_TS_CLIENT: &str = "@modelcontextprotocol/client@2.4.0";

/// `node tests/sdk/<script>` with the 2.x MCP TypeScript client installed.
pub fn node_with_mcp_client(script: &str) -> tokio::process::Command {
    node_with("mcp-client", MCP_TS_CLIENT, script)
}

/// `node tests/sdk/<script>` with the MCP TypeScript SDK installed (and resolvable from the
/// script through `NODE_PATH`; the scripts are CommonJS for that reason).
pub fn node_with_mcp_sdk(script: &str) -> tokio::process::Command {
    node_with("mcp-sdk", MCP_TS_SDK, script)
}

/// `node tests/sdk/<script>` with the npm `package` installed under `name`.
fn node_with(name: &str, package: &str, script: &str) -> tokio::process::Command {
    let installed = prereqs::npm(name, &[package]);
    let mut command = tokio::process::Command::new("node");
    command
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/sdk")
                .join(script),
        )
        .env("NODE_PATH", installed.join("node_modules"))
        .kill_on_drop(true);
    command
}
