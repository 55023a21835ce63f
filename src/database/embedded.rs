//! The embedded default: a private PostgreSQL cluster inside Switchboard's data directory.
//!
//! Without `DATABASE_URL`, Switchboard runs its own cluster from the machine's PostgreSQL
//! binaries. The cluster lives in `<data-dir>/postgres`, listens only on a Unix socket in a
//! directory no one else can enter, and trusts local connections (the socket directory is
//! the access control). PostgreSQL refuses to run as root, so as root the cluster runs as
//! the `postgres` user.
//!
//! Several Switchboard processes may use one data directory at once (`serve` plus any CLI
//! command). They coordinate through two lock files:
//! - `postgres.lease`: every user holds a shared lock while it uses the cluster. Whoever can
//!   upgrade to an exclusive lock when it is done is the last user and stops the cluster.
//! - `postgres.start`: an exclusive lock around "initialise if needed, start if not running",
//!   so two processes never race to start the same cluster.
//!
//! The kernel releases both locks when a process dies, so a crashed `serve` leaves a cluster
//! that the next process simply adopts. A stale `postmaster.pid` (machine crash, `kill -9` of
//! the postmaster) is removed before starting when no live postgres owns it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest as _;

/// The port number only names the socket file; the cluster does not listen on TCP.
const PORT: u16 = 5432;
/// The cluster's superuser and the name Switchboard connects as.
pub const SUPERUSER: &str = "postgres";
/// Longest usable Unix socket directory: sun_path holds 108 bytes, minus "/.s.PGSQL.5432".
const MAX_SOCKET_DIR_LEN: usize = 90;
/// Written into the cluster directory as the last step of provisioning: a cluster without it
/// was interrupted half-made (trust authentication, no configuration yet) and is made again.
const PROVISIONED: &str = "switchboard-provisioned";

/// Settings written once into the cluster's configuration.
const CONFIG: &str = "\
# Written by Switchboard when it created this cluster.
listen_addresses = ''
port = 5432
max_connections = 300
shared_buffers = 256MB
max_wal_size = 2GB
log_min_messages = warning
log_line_prefix = '%m [%p] '
";

#[derive(Debug)]
pub enum EmbeddedError {
    /// No `initdb`/`pg_ctl` on this machine.
    BinariesMissing,
    /// Running as root and the `postgres` user does not exist or cannot reach the directory.
    RunAs(String),
    Io(String, std::io::Error),
    /// A PostgreSQL tool failed; carries its output.
    Tool(String),
}

impl std::fmt::Display for EmbeddedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmbeddedError::BinariesMissing => write!(
                f,
                "no PostgreSQL server binaries (initdb, pg_ctl) were found in SWITCHBOARD_PG_BIN, \
                 on PATH or under /usr/lib/postgresql/*/bin.\n\
                 Install them, for example:\n  \
                 Debian/Ubuntu: sudo apt-get install postgresql\n  \
                 Fedora/RHEL:   sudo dnf install postgresql-server\n  \
                 macOS:         brew install postgresql@16\n\
                 or point Switchboard at an existing server with DATABASE_URL=postgres://..."
            ),
            EmbeddedError::RunAs(reason) => write!(f, "{reason}"),
            EmbeddedError::Io(what, e) => write!(f, "{what}: {e}"),
            EmbeddedError::Tool(output) => write!(f, "{output}"),
        }
    }
}

impl std::error::Error for EmbeddedError {}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let what = what.into();
    move |e| EmbeddedError::Io(what, e)
}

/// Where the PostgreSQL server programs are.
#[derive(Clone, Debug)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// `initdb` and `pg_ctl` from `SWITCHBOARD_PG_BIN` when set, else from PATH, else the
    /// newest `/usr/lib/postgresql/<v>/bin` (Debian and Ubuntu keep them off PATH), else a
    /// few other common places.
    pub fn locate() -> Result<Binaries, EmbeddedError> {
        let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
        if let Some(dir) = std::env::var_os("SWITCHBOARD_PG_BIN") {
            let dir = PathBuf::from(dir);
            return if has_tools(&dir) {
                Ok(Binaries { dir })
            } else {
                Err(EmbeddedError::BinariesMissing)
            };
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if has_tools(&dir) {
                    // Links on PATH (Debian's wrappers, hand-made symlinks) lead to the real
                    // directory, where the rest of the tools (pg_config, pgbench) live too.
                    let real = fs::canonicalize(dir.join("initdb"))
                        .ok()
                        .and_then(|initdb| initdb.parent().map(Path::to_owned))
                        .filter(|real| has_tools(real))
                        .unwrap_or(dir);
                    return Ok(Binaries { dir: real });
                }
            }
        }
        let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        versioned.sort();
        let fallbacks = [
            "/usr/local/pgsql/bin",
            "/opt/homebrew/bin",
            "/usr/pgsql/bin",
        ];
        versioned
            .into_iter()
            .rev()
            .map(|(_, dir)| dir)
            .chain(fallbacks.iter().map(PathBuf::from))
            .find(|dir| has_tools(dir))
            .map(|dir| Binaries { dir })
            .ok_or(EmbeddedError::BinariesMissing)
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The OS account the cluster runs as when Switchboard itself runs as root.
#[derive(Clone, Copy, Debug)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    fn for_current_user() -> Result<Option<RunAs>, EmbeddedError> {
        if !nix::unistd::Uid::effective().is_root() {
            return Ok(None);
        }
        let user = nix::unistd::User::from_name(SUPERUSER)
            .ok()
            .flatten()
            .ok_or_else(|| {
                EmbeddedError::RunAs(
                    "PostgreSQL refuses to run as root and there is no `postgres` user to run \
                     it as. Create one (useradd --system postgres), run Switchboard as an \
                     ordinary user, or set DATABASE_URL."
                        .into(),
                )
            })?;
        Ok(Some(RunAs {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }))
    }

    /// Can this account walk down to `dir`? PostgreSQL must `chdir` into its data directory.
    fn check_reachable(&self, dir: &Path) -> Result<(), EmbeddedError> {
        for ancestor in dir.ancestors().skip(1) {
            let Ok(meta) = fs::metadata(ancestor) else {
                continue;
            };
            let mode = meta.mode();
            let may_enter = if meta.uid() == self.uid {
                mode & 0o100 != 0
            } else if meta.gid() == self.gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !may_enter {
                return Err(EmbeddedError::RunAs(format!(
                    "running as root, Switchboard runs PostgreSQL as the `postgres` user, which \
                     cannot enter {}. Choose a data directory it can reach (for example \
                     --data-dir /var/lib/switchboard), or allow it in: chmod o+x {}",
                    ancestor.display(),
                    ancestor.display()
                )));
            }
        }
        Ok(())
    }

    fn chown(&self, path: &Path) -> Result<(), EmbeddedError> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(io(format!("chown {}", path.display())))
    }
}

/// Extra `postgresql.conf` lines for clusters whose durability does not matter (tests).
pub const THROWAWAY_SETTINGS: &str =
    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";

/// A running cluster this process holds a lease on. Call [`Cluster::release`] when done.
#[derive(Debug)]
pub struct Cluster {
    binaries: Binaries,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<RunAs>,
    lease: Option<File>,
}

impl Cluster {
    /// Initialise the cluster in `data_dir` if it does not exist, start it unless it runs,
    /// and take a lease on it. Blocking; call from a blocking context.
    pub fn start(data_dir: &Path, extra_settings: &str) -> Result<Cluster, EmbeddedError> {
        let binaries = Binaries::locate()?;
        let run_as = RunAs::for_current_user()?;
        fs::create_dir_all(data_dir).map_err(io(format!("create {}", data_dir.display())))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(io(format!("resolve {}", data_dir.display())))?;
        if let Some(run_as) = run_as {
            // Root's data directory: others may pass through to the cluster, not list it.
            fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o711))
                .map_err(io("set data directory permissions"))?;
            run_as.check_reachable(&data_dir.join("postgres"))?;
        }

        let lease = open_lock(&data_dir.join("postgres.lease"))?;
        lease.lock_shared().map_err(io("lock postgres.lease"))?;
        let start_lock = open_lock(&data_dir.join("postgres.start"))?;
        start_lock.lock().map_err(io("lock postgres.start"))?;

        let cluster = Cluster {
            binaries,
            pgdata: data_dir.join("postgres"),
            socket_dir: socket_dir_for(&data_dir),
            run_as,
            lease: Some(lease),
        };
        cluster.prepare_socket_dir()?;
        if !cluster.provisioned()? {
            cluster.initdb(extra_settings)?;
        }
        if !cluster.accepts_connections() {
            cluster.clear_stale_locks()?;
            cluster.pg_ctl_start()?;
        }
        drop(start_lock);
        Ok(cluster)
    }

    /// Directory holding the cluster's Unix socket (the `host` to connect to).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    pub fn port(&self) -> u16 {
        PORT
    }

    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// A URL for `DATABASE_URL`, `psql` and `pgbench` alike: the socket directory as a
    /// percent-encoded host.
    pub fn url(&self, database: &str) -> String {
        let host: String = self
            .socket_dir
            .to_string_lossy()
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        format!("postgresql://{SUPERUSER}@{host}:{PORT}/{database}")
    }

    /// Give up this process's lease; stop the cluster if no other process holds one.
    pub fn release(mut self) -> Result<bool, EmbeddedError> {
        let Some(lease) = self.lease.take() else {
            return Ok(false);
        };
        lease.unlock().map_err(io("unlock postgres.lease"))?;
        match lease.try_lock() {
            Ok(()) => {
                self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])?;
                Ok(true)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(io("lock postgres.lease")(e)),
        }
    }

    /// Stop the cluster now, whoever else uses it (tests that restart PostgreSQL).
    pub fn stop_now(&self) -> Result<(), EmbeddedError> {
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])
    }

    /// A handle on the same cluster that holds no lease (for a supervisor that checks on it
    /// and restarts it; dropping it changes nothing).
    pub fn watcher(&self) -> Cluster {
        Cluster {
            binaries: self.binaries.clone(),
            pgdata: self.pgdata.clone(),
            socket_dir: self.socket_dir.clone(),
            run_as: self.run_as,
            lease: None,
        }
    }

    /// Start the cluster again after [`Cluster::stop_now`] (or after it died).
    pub fn start_again(&self) -> Result<(), EmbeddedError> {
        self.clear_stale_locks()?;
        self.pg_ctl_start()
    }

    /// Process id of the running postmaster.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let pid_file = fs::read_to_string(self.pgdata.join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// Is the cluster's postmaster alive (a zombie is not)?
    pub fn is_running(&self) -> bool {
        self.postmaster_pid().is_some_and(is_live_postgres)
    }

    fn accepts_connections(&self) -> bool {
        UnixStream::connect(self.socket_dir.join(format!(".s.PGSQL.{PORT}"))).is_ok()
    }

    /// Was this cluster provisioned to the end? Clusters made before the marker existed
    /// count when their configuration carries Switchboard's settings.
    fn provisioned(&self) -> Result<bool, EmbeddedError> {
        let marker = self.pgdata.join(PROVISIONED);
        if marker.is_file() {
            return Ok(true);
        }
        if !self.pgdata.join("PG_VERSION").is_file() {
            return Ok(false);
        }
        let conf = fs::read_to_string(self.pgdata.join("postgresql.conf")).unwrap_or_default();
        if !conf.contains(CONFIG) {
            return Ok(false);
        }
        self.mark_provisioned()?;
        Ok(true)
    }

    fn mark_provisioned(&self) -> Result<(), EmbeddedError> {
        fs::write(self.pgdata.join(PROVISIONED), "").map_err(io("mark the cluster provisioned"))
    }

    /// The socket directory is the cluster's access control (the cluster trusts whoever can
    /// reach its socket), so it must be a real directory of ours that nobody else can enter:
    /// made with one `mkdir` (which never follows a symlink), or, when it exists, checked
    /// without following one.
    fn prepare_socket_dir(&self) -> Result<(), EmbeddedError> {
        let dir = &self.socket_dir;
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {
                if let Some(run_as) = self.run_as {
                    run_as.chown(dir)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(format!("create {}", dir.display()))(e)),
        }
        let meta = fs::symlink_metadata(dir).map_err(io(format!("inspect {}", dir.display())))?;
        let owner = self
            .run_as
            .map_or_else(|| nix::unistd::Uid::effective().as_raw(), |r| r.uid);
        let refuse = |why: &str| {
            Err(EmbeddedError::RunAs(format!(
                "the PostgreSQL socket directory {} {why}; it must be a directory owned by uid \
                 {owner} with mode 0700. Remove it (or choose another --data-dir) and start again.",
                dir.display()
            )))
        };
        if meta.file_type().is_symlink() || !meta.is_dir() {
            return refuse("is not a plain directory (a symlink?)");
        }
        if meta.uid() != owner {
            return refuse(&format!("belongs to uid {}", meta.uid()));
        }
        if meta.mode() & 0o077 != 0 {
            return refuse(&format!("has mode {:o}", meta.mode() & 0o777));
        }
        Ok(())
    }

    fn initdb(&self, extra_settings: &str) -> Result<(), EmbeddedError> {
        // A half-made cluster from an interrupted first start is useless: start over.
        if self.pgdata.exists() {
            fs::remove_dir_all(&self.pgdata).map_err(io("remove incomplete cluster"))?;
        }
        fs::create_dir_all(&self.pgdata).map_err(io("create cluster directory"))?;
        fs::set_permissions(&self.pgdata, fs::Permissions::from_mode(0o700))
            .map_err(io("set cluster directory permissions"))?;
        if let Some(run_as) = self.run_as {
            run_as.chown(&self.pgdata)?;
        }
        let pgdata = self.pgdata.to_string_lossy().into_owned();
        self.run(
            "initdb",
            &[
                "-D",
                &pgdata,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
                "--no-sync",
            ],
        )?;
        let conf = self.pgdata.join("postgresql.conf");
        let mut file = OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(io("open postgresql.conf"))?;
        write!(
            file,
            "\n{CONFIG}{}{extra_settings}",
            self.statement_statistics()
        )
        .map_err(io("write postgresql.conf"))?;
        file.sync_all().map_err(io("write postgresql.conf"))?;
        // The last step: until here, a crash leaves a cluster that the next start makes again.
        self.mark_provisioned()
    }

    /// `pg_stat_statements` (per-statement statistics for operators and benchmarks) when the
    /// installed PostgreSQL ships it; preloading a missing library would stop it from starting.
    fn statement_statistics(&self) -> &'static str {
        let pkglibdir = Command::new(self.binaries.tool("pg_config"))
            .arg("--pkglibdir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        match pkglibdir {
            Some(dir) if dir.join("pg_stat_statements.so").is_file() => {
                "shared_preload_libraries = 'pg_stat_statements'\n"
            }
            _ => "",
        }
    }

    /// Remove lock files a dead postmaster left behind. PostgreSQL does this itself unless
    /// the recorded pid now belongs to another process, which happens after reboots and in
    /// containers; then it refuses to start.
    fn clear_stale_locks(&self) -> Result<(), EmbeddedError> {
        let locks = [
            self.pgdata.join("postmaster.pid"),
            self.socket_dir.join(format!(".s.PGSQL.{PORT}.lock")),
        ];
        for lock in locks {
            let Ok(contents) = fs::read_to_string(&lock) else {
                continue;
            };
            let pid = contents
                .lines()
                .next()
                .and_then(|l| l.trim().parse::<i32>().ok());
            if pid.is_some_and(is_live_postgres) {
                // A postmaster that is still starting or recovering: give it time.
                self.wait_for_socket(Duration::from_secs(60))?;
                continue;
            }
            fs::remove_file(&lock).map_err(io(format!("remove stale {}", lock.display())))?;
            let _ = fs::remove_file(self.socket_dir.join(format!(".s.PGSQL.{PORT}")));
        }
        Ok(())
    }

    fn wait_for_socket(&self, limit: Duration) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.accepts_connections() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(EmbeddedError::Tool(format!(
            "a postgres process owns {} but does not accept connections",
            self.pgdata.display()
        )))
    }

    fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
        if self.accepts_connections() {
            return Ok(());
        }
        let log = self.pgdata.join("postgres.log");
        // No TCP, whatever the configuration file says: the socket directory is the only door.
        let options = format!("-k '{}' -c listen_addresses=''", self.socket_dir.display());
        self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "120",
            "-l",
            &log.to_string_lossy(),
            "-o",
            &options,
        ])
        .map_err(|e| {
            let tail = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            EmbeddedError::Tool(format!(
                "{e}\n--- {} ---\n{}",
                log.display(),
                tail.join("\n")
            ))
        })
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), EmbeddedError> {
        let pgdata = self.pgdata.to_string_lossy().into_owned();
        let mut all = vec!["-D", pgdata.as_str()];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all)
    }

    /// Run a PostgreSQL tool as the cluster's owner, in its own process group so that a
    /// terminal's Ctrl-C reaches Switchboard (which then stops the cluster cleanly) and not
    /// the postmaster directly.
    fn run(&self, tool: &str, args: &[&str]) -> Result<(), EmbeddedError> {
        let mut command = Command::new(self.binaries.tool(tool));
        command
            .args(args)
            .current_dir(self.pgdata.parent().unwrap_or(Path::new("/")))
            .env_remove("PGDATA")
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .process_group(0);
        if let Some(run_as) = self.run_as {
            command.uid(run_as.uid).gid(run_as.gid);
        }
        let output = command
            .output()
            .map_err(io(format!("run {}", self.binaries.tool(tool).display())))?;
        if output.status.success() {
            return Ok(());
        }
        Err(EmbeddedError::Tool(format!(
            "{tool} {} failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A lease not released explicitly (an early return, a panic) still ends here; the
        // cluster keeps running and the next process adopts it.
        self.lease.take();
    }
}

fn open_lock(path: &Path) -> Result<File, EmbeddedError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io(format!("open {}", path.display())))
}

/// `<data-dir>/run` when that path fits in a socket address, else a directory under /tmp
/// named after the data directory.
fn socket_dir_for(data_dir: &Path) -> PathBuf {
    let local = data_dir.join("run");
    if local.as_os_str().len() <= MAX_SOCKET_DIR_LEN {
        return local;
    }
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    PathBuf::from(format!("/tmp/switchboard-{}", &hex::encode(digest)[..16]))
}

/// Is `pid` a running postgres? A zombie (dead, not yet reaped by its parent) is not.
fn is_live_postgres(pid: i32) -> bool {
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
        return false;
    }
    // /proc/<pid>/stat: "<pid> (<comm>) <state> ..."
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let Some((comm, rest)) = stat
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
            else {
                return false;
            };
            let state = rest.trim_start().chars().next();
            (comm == "postgres" || comm == "postmaster") && !matches!(state, Some('Z' | 'X'))
        }
        // No /proc (macOS): trust that the pid is alive.
        Err(_) => true,
    }
}
