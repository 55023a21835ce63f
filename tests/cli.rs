//! The command line for people and scripts, each command a real process talking to a real
//! server: a script's `ask` answered by `reply` from another process (found with `inbox`),
//! `ask` giving up on time, `log` continuing a session, refusals that say why, and `watch`
//! printing every event exactly once across a server restart.

mod common;

use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ServerProcess, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// `switchboard <args>` against `url` with `api_key`, not yet run.
fn switchboard(url: &str, api_key: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args(args)
        .env("SWITCHBOARD_URL", url)
        .env("SWITCHBOARD_API_KEY", api_key)
        .env_remove("SWITCHBOARD_SESSION")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Run to completion (bounded: 60 s).
async fn run(mut command: Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command finishes")
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_script_asks_and_a_person_answers_from_another_process() {
    let app = TestApp::spawn().await;
    let url = app.address.clone();
    let ask = switchboard(
        &url,
        &app.token,
        &[
            "ask",
            "Deploy to production?\nIt is Friday.",
            "--option",
            "yes",
            "--option",
            "no",
            "--timeout",
            "1m",
        ],
    )
    .spawn()
    .unwrap();

    // The person finds the question in their inbox.
    let mut open = None;
    for _ in 0..100 {
        let inbox = run(switchboard(&url, &app.token, &["inbox", "--json"])).await;
        assert!(inbox.status.success(), "{}", stderr(&inbox));
        if let Some(line) = stdout(&inbox).lines().next() {
            open = Some(serde_json::from_str::<Value>(line).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open = open.expect("the question shows in the inbox");
    assert_eq!(open["question"], "Deploy to production?\nIt is Friday.");
    assert_eq!(open["agent_type"], "shell");
    let session = open["session_id"].as_str().unwrap().to_owned();
    let text = run(switchboard(&url, &app.token, &["inbox"])).await;
    let question = open["question_id"].as_str().unwrap().to_owned();
    assert_eq!(open["kind"], "question");
    assert_eq!(open["options"], json!(["yes", "no"]));
    assert_eq!(
        stdout(&text).trim_end().split('\t').collect::<Vec<_>>(),
        [
            session.as_str(),
            question.as_str(),
            "shell",
            open["asked_at"].as_str().unwrap(),
            "Deploy to production? It is Friday."
        ],
        "one line, tab-separated, its line break flattened"
    );

    let replied = run(switchboard(
        &url,
        &app.token,
        &["reply", &session, "yes", "--to", &question],
    ))
    .await;
    assert!(replied.status.success(), "{}", stderr(&replied));
    assert!(stderr(&replied).contains(&question), "{}", stderr(&replied));
    // The question is answered: answering it again is refused, saying so.
    let again = run(switchboard(
        &url,
        &app.token,
        &["reply", &session, "no", "--to", &question],
    ))
    .await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already answered"),
        "{}",
        stderr(&again)
    );

    let asked = tokio::time::timeout(Duration::from_secs(30), ask.wait_with_output())
        .await
        .expect("ask returns once answered")
        .unwrap();
    assert!(asked.status.success(), "{}", stderr(&asked));
    assert_eq!(stdout(&asked), "yes\n");
    assert!(stderr(&asked).contains(&session), "ask names its session");

    let after = run(switchboard(&url, &app.token, &["inbox"])).await;
    assert_eq!(stdout(&after), "", "answered questions leave the inbox");
    let messages: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/messages"))
        .await;
    let said: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["sender_type"].as_str().unwrap(),
                m["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            ("AGENT", "Deploy to production?\nIt is Friday."),
            ("USER", "yes")
        ]
    );
}

#[tokio::test]
async fn ask_gives_up_at_its_timeout_with_exit_124_and_nothing_on_stdout() {
    let app = TestApp::spawn().await;
    let asked = run(switchboard(
        &app.address,
        &app.token,
        &["ask", "Anyone there?", "--timeout", "1s"],
    ))
    .await;
    assert_eq!(asked.status.code(), Some(124), "{}", stderr(&asked));
    assert_eq!(stdout(&asked), "");
    assert!(stderr(&asked).contains("no answer in time; the question is withdrawn"));
    // Nobody waits for it any more: it is withdrawn, and the inbox no longer offers it.
    let open = run(switchboard(&app.address, &app.token, &["inbox"])).await;
    assert_eq!(stdout(&open), "", "a withdrawn question is not waiting");
    let sessions: Vec<Value> = app.get_json("/api/v1/sessions").await;
    let session = sessions[0]["id"].as_str().unwrap();
    let questions: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/questions"))
        .await;
    assert_eq!(questions[0]["status"], "withdrawn");
    assert_eq!(questions[0]["closed_by"], "agent");
    assert_eq!(questions[0]["reason"], "switchboard ask gave up after 1 s");
    assert!(questions[0]["expires_at"].is_string(), "{}", questions[0]);

    let bad = run(switchboard(
        &app.address,
        &app.token,
        &["ask", "x", "--timeout", "ten minutes"],
    ))
    .await;
    assert_eq!(
        bad.status.code(),
        Some(2),
        "clap refuses it: {}",
        stderr(&bad)
    );
}

#[tokio::test]
async fn log_prints_its_session_so_later_steps_and_questions_continue_it() {
    let app = TestApp::spawn().await;
    let first = run(switchboard(
        &app.address,
        &app.token,
        &["log", "build started"],
    ))
    .await;
    assert!(first.status.success(), "{}", stderr(&first));
    let session = stdout(&first).trim().to_owned();
    Uuid::parse_str(&session).expect("log prints the session id");

    let reply = app
        .post(
            "/api/v1/messages/user",
            &json!({"agent_instance_id": session, "content": "use the blue config", "mark_as_read": false}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let mut second = switchboard(&app.address, &app.token, &["log", "tests pass"]);
    second.env("SWITCHBOARD_SESSION", &session);
    let second = run(second).await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(stdout(&second).trim(), session, "the same session");
    assert!(
        stderr(&second).contains("use the blue config"),
        "what the person said is shown, not dropped: {}",
        stderr(&second)
    );
    let messages: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/messages"))
        .await;
    let contents: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        ["build started", "use the blue config", "tests pass"]
    );
}

#[tokio::test]
async fn refusals_exit_non_zero_and_say_why() {
    let app = TestApp::spawn().await;
    let missing = Uuid::new_v4().to_string();
    let reply = run(switchboard(
        &app.address,
        &app.token,
        &["reply", &missing, "hi"],
    ))
    .await;
    assert_eq!(reply.status.code(), Some(1));
    assert!(stderr(&reply).contains("not found"), "{}", stderr(&reply));

    let forged = format!("{}x", app.token);
    let inbox = run(switchboard(&app.address, &forged, &["inbox"])).await;
    assert_eq!(inbox.status.code(), Some(1));
    assert!(stderr(&inbox).contains("HTTP 401"), "{}", stderr(&inbox));
    assert!(!stderr(&inbox).contains(&forged), "the key is not echoed");

    let nowhere = run(switchboard("http://127.0.0.1:1", &app.token, &["log", "x"])).await;
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(
        stderr(&nowhere).contains("unreachable"),
        "{}",
        stderr(&nowhere)
    );

    let not_a_url = run(switchboard("localhost:8080", &app.token, &["inbox"])).await;
    assert_eq!(not_a_url.status.code(), Some(1));
    assert_eq!(
        stderr(&not_a_url),
        "error: \"localhost:8080\" is not a server URL such as http://localhost:8080\n"
    );

    let bad_session = run(switchboard(
        &app.address,
        &app.token,
        &["reply", "nope", "hi"],
    ))
    .await;
    assert_eq!(
        bad_session.status.code(),
        Some(2),
        "clap refuses a non-UUID"
    );
}

/// A free port on the loopback interface (bound, then released for a server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `watch --json` running, its output lines collected.
struct Watcher {
    _child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Watcher {
    fn start(url: &str, token: &str) -> Watcher {
        let mut child = switchboard(url, token, &["watch", "--json", "--after-seq", "0"])
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let collected = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                collected
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
            }
        });
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
        let collected = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                collected.lock().unwrap().push(line);
            }
        });
        Watcher {
            _child: child,
            lines,
            stderr,
        }
    }

    /// Wait (up to 30 s) until `n` events were printed; then the sequence numbers printed.
    async fn until(&self, n: usize) -> Vec<i64> {
        for _ in 0..300 {
            if self.lines.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let lines = self.lines.lock().unwrap();
        assert!(
            lines.len() >= n,
            "watch printed {} of {n} events; it said: {:?}",
            lines.len(),
            self.stderr.lock().unwrap()
        );
        lines.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
    }
}

async fn say(client: &reqwest::Client, base: &str, token: &str, session: Uuid, text: &str) {
    let response = client
        .post(format!("{base}/api/v1/messages/agent"))
        .bearer_auth(token)
        .json(&json!({"agent_instance_id": session, "agent_type": "t", "content": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn watch_prints_every_event_once_across_a_server_restart() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let port = free_port();
    let server = ServerProcess::start_on(&app.db, port).await;
    let watcher = Watcher::start(&server.address, &app.token);
    let session = Uuid::new_v4();

    // 1 session_started + 5 messages through the first server.
    for i in 0..5 {
        say(
            &http,
            &server.address,
            &app.token,
            session,
            &format!("before {i}"),
        )
        .await;
    }
    assert_eq!(watcher.until(6).await, (1..=6).collect::<Vec<_>>());

    // The server goes away; meanwhile another node takes writes.
    assert!(server.terminate().success());
    for i in 0..5 {
        say(
            &http,
            &app.address,
            &app.token,
            session,
            &format!("while down {i}"),
        )
        .await;
    }
    // Back on the same port; more writes there.
    let server = ServerProcess::start_on(&app.db, port).await;
    for i in 0..5 {
        say(
            &http,
            &server.address,
            &app.token,
            session,
            &format!("after {i}"),
        )
        .await;
    }

    let seqs = watcher.until(16).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seqs_later = watcher.until(16).await;
    assert_eq!(seqs, seqs_later, "nothing more arrives");
    assert_eq!(
        seqs,
        (1..=16).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let contents: Vec<String> = watcher
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(contents.len(), 15);
    assert_eq!(contents[5], "while down 0");
    assert!(
        watcher
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("reconnecting")),
        "it noticed the restart"
    );
}
