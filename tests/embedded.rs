//! The embedded default, as a new user meets it: `switchboard serve` on an empty data
//! directory provisions PostgreSQL, prints a working key, survives restarts and crashes, and
//! every other subcommand finds the same database while it runs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A data directory under /tmp (reachable by the `postgres` user when tests run as root),
/// removed with everything in it at the end, the cluster stopped first.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> DataDir {
        let dir = std::env::temp_dir().join(format!("sb-embedded-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        DataDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("postgres/postmaster.pid")) {
            let pid = pid.lines().next().unwrap_or_default().trim().to_owned();
            let _ = Command::new("kill").args(["-QUIT", &pid]).status();
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn switchboard(dir: &DataDir) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_remove("DATABASE_URL")
        .env_remove("JWT_PUBLIC_KEY")
        .env_remove("JWT_PRIVATE_KEY")
        .env("SWITCHBOARD_DATA_DIR", dir.path())
        .env("RUST_LOG", "warn");
    command
}

/// A running `switchboard serve`.
struct Serve {
    child: Child,
    address: String,
    /// The API key printed on first start, if one was.
    first_key: Option<String>,
}

impl Serve {
    fn start(dir: &DataDir) -> Serve {
        let child = switchboard(dir)
            .args(["serve", "--port", "0", "--host", "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Owned by `Serve` at once: its Drop reaps the process if anything below panics.
        let mut serve = Serve {
            child,
            address: String::new(),
            first_key: None,
        };
        let stdout = serve.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("serve prints its address");
            if line.starts_with("eyJ") {
                serve.first_key = Some(line.trim().to_owned());
            }
            if let Some(address) = line.strip_prefix("Switchboard listening on ") {
                serve.address = address.trim().to_owned();
                return serve;
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        wait_with_deadline(&mut self.child, Duration::from_secs(30))
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_with_deadline(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(dir: &DataDir, args: &[&str]) -> Output {
    switchboard(dir).args(args).output().unwrap()
}

fn postgres_runs(dir: &DataDir) -> bool {
    let Ok(pid) = std::fs::read_to_string(dir.path().join("postgres/postmaster.pid")) else {
        return false;
    };
    let pid = pid.lines().next().unwrap_or_default().trim().to_owned();
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn post_message(
    serve: &Serve,
    token: &str,
    session: Uuid,
    content: &str,
) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{}/api/v1/messages/agent", serve.address))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "agent_instance_id": session,
            "agent_type": "test",
            "content": content,
        }))
        .send()
        .await
        .unwrap()
        .status()
}

async fn sessions(serve: &Serve, token: &str) -> Vec<serde_json::Value> {
    reqwest::Client::new()
        .get(format!("{}/api/v1/sessions", serve.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn serve_provisions_postgres_prints_a_key_and_keeps_data_across_restarts() {
    let dir = DataDir::new();
    let serve = Serve::start(&dir);
    let health = reqwest::get(format!("{}/health", serve.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let token = serve.first_key.clone().expect("a first API key is printed");
    let session = Uuid::new_v4();
    assert_eq!(
        post_message(&serve, &token, session, "before restart").await,
        200
    );

    // SIGTERM: the server exits cleanly and stops the cluster it started.
    assert!(serve.terminate().success());
    assert!(
        !postgres_runs(&dir),
        "the embedded cluster stops with serve"
    );

    let serve = Serve::start(&dir);
    assert!(serve.first_key.is_none(), "no second first key");
    let listed = sessions(&serve, &token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], session.to_string());
    assert!(serve.terminate().success());
}

#[tokio::test]
async fn cli_commands_share_the_database_with_a_running_server() {
    let dir = DataDir::new();
    let serve = Serve::start(&dir);
    let user = Uuid::new_v4();
    let created = run(
        &dir,
        &[
            "keys",
            "create",
            "--user",
            &user.to_string(),
            "--name",
            "ci",
            "--create-user",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8(created.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert_eq!(
        post_message(&serve, &token, Uuid::new_v4(), "hello").await,
        200
    );

    let listed = run(&dir, &["keys", "list", "--user", &user.to_string()]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("ci"));
    let verified = run(&dir, &["verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let checked = run(&dir, &["projections", "rebuild", "--check"]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    assert!(
        postgres_runs(&dir),
        "a CLI command leaves the server's cluster running"
    );

    let key_id = stdout.split_whitespace().nth(3).unwrap().to_owned();
    let revoked = run(&dir, &["keys", "revoke", &key_id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert_eq!(
        post_message(&serve, &token, Uuid::new_v4(), "after revoke").await,
        401
    );
    assert!(serve.terminate().success());

    // Without a server, a command starts the cluster for itself and stops it again.
    let verified = run(&dir, &["verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(!postgres_runs(&dir));
}

#[tokio::test]
async fn serve_recovers_after_a_crash_with_a_stale_postmaster_pid() {
    let dir = DataDir::new();
    let serve = Serve::start(&dir);
    let token = serve.first_key.clone().unwrap();
    assert_eq!(
        post_message(&serve, &token, Uuid::new_v4(), "before the crash").await,
        200
    );
    // The server dies without cleaning up; then the postmaster dies too (power loss).
    serve.kill();
    let pid_file = dir.path().join("postgres/postmaster.pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pid = pid.lines().next().unwrap().trim().to_owned();
    Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // After a reboot the recorded pid can belong to an unrelated live process.
    let contents = std::fs::read_to_string(&pid_file).unwrap();
    let rest: Vec<&str> = contents.lines().skip(1).collect();
    std::fs::write(
        &pid_file,
        format!("{}\n{}\n", std::process::id(), rest.join("\n")),
    )
    .unwrap();

    let serve = Serve::start(&dir);
    assert_eq!(sessions(&serve, &token).await.len(), 1);
    assert!(serve.terminate().success());
}

#[tokio::test]
async fn serve_adopts_a_cluster_left_running_by_a_killed_server() {
    let dir = DataDir::new();
    let serve = Serve::start(&dir);
    let token = serve.first_key.clone().unwrap();
    serve.kill();
    assert!(postgres_runs(&dir));
    let serve = Serve::start(&dir);
    assert_eq!(
        post_message(&serve, &token, Uuid::new_v4(), "adopted").await,
        200
    );
    assert!(serve.terminate().success());
    assert!(!postgres_runs(&dir));
}

#[test]
fn without_postgres_binaries_serve_says_how_to_install_them() {
    let dir = DataDir::new();
    let output = switchboard(&dir)
        .env("SWITCHBOARD_PG_BIN", dir.path().join("nowhere"))
        .args(["serve", "--port", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}
