//! The real Codex and Gemini CLIs (pinned, installed from npm under `target/prereqs` on first
//! use), run headless against scripted stand-ins for their model APIs on loopback (OpenAI's
//! Responses API for Codex, the Gemini API for Gemini CLI), with everything isolated per run
//! (`HOME`, `CODEX_HOME`, `TMPDIR`, the project directory) and configured the way a person
//! would: by `switchboard setup codex|gemini`.
//!
//! A script reads the request (never the call count) and says what the model does: a shell
//! command or a final text.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use uuid::Uuid;

use super::prereqs;

/// The Codex release the tests drive.
pub const CODEX: &str = "@openai/codex@0.171.0";
/// The Gemini CLI release the tests drive.
pub const GEMINI: &str = "@google/gemini-cli@0.61.0";

/// What the model does next.
#[derive(Clone, Debug)]
pub enum Turn {
    Shell(String),
    Text(String),
}

pub fn shell(command: &str) -> Turn {
    Turn::Shell(command.to_owned())
}

pub fn say(text: &str) -> Turn {
    Turn::Text(text.to_owned())
}

/// What the script sees of a request: everything it says as text, and the result of the
/// tool call it answers, when it answers one.
pub struct Seen {
    pub text: String,
    pub tool_result: Option<String>,
}

type Script = Arc<dyn Fn(&Seen) -> Turn + Send + Sync>;

#[derive(Clone)]
struct Shared {
    script: Script,
    received: Arc<Mutex<Vec<Value>>>,
}

/// A scripted model API, serving until dropped.
pub struct Model {
    pub url: String,
    received: Arc<Mutex<Vec<Value>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Model {
    /// OpenAI's Responses API (`POST /v1/responses`, streamed), as Codex calls it.
    pub async fn responses(script: impl Fn(&Seen) -> Turn + Send + Sync + 'static) -> Model {
        Model::serve(
            Router::new().route("/v1/responses", post(responses)),
            Arc::new(script),
        )
        .await
    }

    /// The Gemini API (`POST /v1beta/models/<model>:streamGenerateContent`), as Gemini CLI
    /// calls it.
    pub async fn gemini(script: impl Fn(&Seen) -> Turn + Send + Sync + 'static) -> Model {
        Model::serve(
            Router::new().route("/v1beta/models/{call}", post(generate)),
            Arc::new(script),
        )
        .await
    }

    async fn serve(router: Router<Shared>, script: Script) -> Model {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = router.with_state(Shared {
            script,
            received: received.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Model {
            url,
            received,
            _stop: stop,
        }
    }

    /// Every request so far, as text, oldest first.
    pub fn requests(&self) -> Vec<String> {
        let received = self.received.lock().unwrap();
        received.iter().map(Value::to_string).collect()
    }
}

fn sse(events: Vec<String>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        events.concat(),
    )
        .into_response()
}

/// One Responses API turn: the last input item says whether a tool call is answered.
async fn responses(
    State(shared): State<Shared>,
    axum::Json(request): axum::Json<Value>,
) -> Response {
    shared.received.lock().unwrap().push(request.clone());
    let input = request["input"].as_array().cloned().unwrap_or_default();
    let tool_result = input
        .last()
        .filter(|item| item["type"] == "function_call_output")
        .map(|item| item["output"].as_str().unwrap_or_default().to_owned());
    let seen = Seen {
        text: request["input"].to_string(),
        tool_result,
    };
    let turn = (shared.script)(&seen);
    let n = input.len();
    let item = match turn {
        Turn::Shell(command) => json!({
            "type": "function_call", "id": format!("fc_{n}"), "call_id": format!("call_{n}"),
            "name": "exec_command",
            "arguments": json!({"cmd": command, "sandbox_permissions": "require_escalated",
                                "justification": "The task needs it"}).to_string(),
        }),
        Turn::Text(text) => json!({
            "type": "message", "role": "assistant", "id": format!("msg_{n}"),
            "content": [{"type": "output_text", "text": text}],
        }),
    };
    let id = format!("resp_{n}");
    let event = |kind: &str, data: Value| format!("event: {kind}\ndata: {data}\n\n");
    sse(vec![
        event(
            "response.created",
            json!({"type": "response.created", "response": {"id": id}}),
        ),
        event(
            "response.output_item.done",
            json!({"type": "response.output_item.done", "item": item}),
        ),
        event(
            "response.completed",
            json!({"type": "response.completed", "response": {"id": id, "usage": {
                "input_tokens": 10, "input_tokens_details": null, "output_tokens": 5,
                "output_tokens_details": null, "total_tokens": 15}}}),
        ),
    ])
}

/// One Gemini API turn: the last content says whether a tool call is answered.
async fn generate(
    State(shared): State<Shared>,
    axum::Json(request): axum::Json<Value>,
) -> Response {
    shared.received.lock().unwrap().push(request.clone());
    let contents = request["contents"].as_array().cloned().unwrap_or_default();
    let tool_result = contents.last().and_then(|c| {
        c["parts"].as_array()?.iter().find_map(|p| {
            let response = &p["functionResponse"]["response"];
            (!response.is_null()).then(|| response.to_string())
        })
    });
    let seen = Seen {
        text: request["contents"].to_string(),
        tool_result,
    };
    let part = match (shared.script)(&seen) {
        Turn::Shell(command) => json!({"functionCall": {"name": "run_shell_command",
                                                          "args": {"command": command}}}),
        Turn::Text(text) => json!({"text": text}),
    };
    let chunk = json!({
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP",
                        "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                          "totalTokenCount": 15},
    });
    sse(vec![format!("data: {chunk}\n\n")])
}

/// One person's machine: a home, the agent's configuration, a scratch folder and a project.
pub struct Machine {
    pub root: PathBuf,
    pub home: PathBuf,
    pub codex_home: PathBuf,
    pub tmp: PathBuf,
    pub project: PathBuf,
}

impl Machine {
    pub fn new() -> Machine {
        let root = std::env::temp_dir().join(format!("sb-agent-{}", Uuid::new_v4().simple()));
        let machine = Machine {
            home: root.join("home"),
            codex_home: root.join("home/.codex"),
            tmp: root.join("tmp"),
            project: root.join("project"),
            root,
        };
        for dir in [
            &machine.home,
            &machine.codex_home,
            &machine.tmp,
            &machine.project,
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        machine
    }

    /// `switchboard setup <agent>` as the person runs it (user scope), plus `args`.
    pub async fn setup(&self, agent: &str, server: &str, key: &str, args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["setup", agent, "--url", server])
            .args(args)
            .env("HOME", &self.home)
            .env("CODEX_HOME", &self.codex_home)
            .env("SWITCHBOARD_API_KEY", key)
            .env_remove("SWITCHBOARD_URL")
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "setup failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Codex's own configuration: the scripted model as its provider, nothing reached
    /// beyond loopback.
    pub fn configure_codex(&self, model: &Model) {
        let config = format!(
            "# the person's own settings\n\
             check_for_update_on_startup = false\n\
             model = \"scripted\"\n\
             model_provider = \"scripted\"\n\n\
             [model_providers.scripted]\n\
             name = \"scripted\"\n\
             base_url = \"{}/v1\"\n\
             wire_api = \"responses\"\n\
             env_key = \"SCRIPTED_API_KEY\"\n\n\
             [analytics]\n\
             enabled = false\n\n\
             [features]\n\
             apps = false\n\
             plugins = false\n",
            model.url
        );
        std::fs::write(self.codex_home.join("config.toml"), config).unwrap();
    }

    /// Gemini CLI's own settings: an API key (no Google sign-in), no usage statistics.
    pub fn configure_gemini(&self) {
        let dir = self.home.join(".gemini");
        std::fs::create_dir_all(&dir).unwrap();
        let settings = json!({
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "privacy": {"usageStatisticsEnabled": false},
        });
        std::fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
    }

    fn command(&self, executable: &Path, key: &str) -> Command {
        let mut command = Command::new(executable);
        command
            .current_dir(&self.project)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("TMPDIR", &self.tmp)
            .env("SWITCHBOARD_API_KEY", key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// `codex exec <prompt>`, its approvals asked for (as the interactive CLI asks them).
    pub fn codex(&self, key: &str, prompt: &str) -> Child {
        self.command(&codex(), key)
            .args([
                "exec",
                "--json",
                "--skip-git-repo-check",
                "-s",
                "workspace-write",
                "-c",
                "approval_policy=\"on-request\"",
                "-c",
                "approvals_reviewer=\"auto_review\"",
                prompt,
            ])
            .env("CODEX_HOME", &self.codex_home)
            .env("SCRIPTED_API_KEY", "scripted")
            .spawn()
            .expect("codex starts")
    }

    /// `gemini -p <prompt>` against `model`, its tools run unless a hook denies them.
    pub fn gemini(&self, model: &Model, key: &str, prompt: &str) -> Child {
        self.command(&gemini(), key)
            .args([
                "--skip-trust",
                "-p",
                prompt,
                "--approval-mode",
                "yolo",
                "-m",
                "gemini-2.5-pro",
                "-o",
                "stream-json",
            ])
            .env("GEMINI_API_KEY", "scripted")
            .env("GOOGLE_GEMINI_BASE_URL", &model.url)
            .spawn()
            .expect("gemini starts")
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.project.join(name)
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn installed(name: &str, package: &str, executable: &str) -> PathBuf {
    let dir = prereqs::npm(name, &[package]);
    let path = dir.join("node_modules/.bin").join(executable);
    assert!(
        path.exists(),
        "npm installed {package} without its `{executable}` executable in {}",
        dir.display()
    );
    path
}

/// The `codex` executable.
pub fn codex() -> PathBuf {
    installed("codex", CODEX, "codex")
}

/// The `gemini` executable.
pub fn gemini() -> PathBuf {
    installed("gemini-cli", GEMINI, "gemini")
}

/// The session of the run whose agent type is `agent_type`, once it appears.
pub async fn session_of(app: &super::TestApp, agent_type: &str) -> Uuid {
    for _ in 0..1200 {
        let sessions: Vec<Value> = app.get_json("/api/v1/sessions").await;
        if let Some(s) = sessions.iter().find(|s| s["agent_type"] == agent_type) {
            return s["id"].as_str().unwrap().parse().unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {agent_type} session reached Switchboard");
}

/// The session's open question of `kind`, once there is one.
pub async fn open_question(app: &super::TestApp, session: Uuid, kind: &str) -> Value {
    for _ in 0..1200 {
        let open: Vec<Value> = app
            .get_json(&format!("/api/v1/sessions/{session}/questions?status=open"))
            .await;
        if let Some(q) = open.into_iter().find(|q| q["kind"] == kind) {
            return q;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {kind} question opened in {session}");
}

/// The person answers `question` (unless `body` names another, or `null`: none); the
/// response's status.
pub async fn answer(app: &super::TestApp, session: Uuid, question: &Value, body: Value) -> u16 {
    let mut body = body;
    body["agent_instance_id"] = json!(session);
    // As the inbox sends it: what the agent has not received stays unread.
    body["mark_as_read"] = json!(false);
    if body.get("question_id").is_none() {
        body["question_id"] = question["id"].clone();
    }
    let response = app
        .post("/api/v1/messages/user", &body)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// The person says nothing more: the open "what next?" is withdrawn.
pub async fn withdraw(app: &super::TestApp, session: Uuid, question: &Value) {
    let id = question["id"].as_str().unwrap();
    let response = app
        .post(
            &format!("/api/v1/sessions/{session}/questions/{id}/withdraw"),
            &json!({"reason": "the test is done"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Wait for the agent to exit (within two minutes); what it printed.
pub async fn finished(child: Child) -> (bool, String) {
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .expect("the agent exits in time")
    .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

/// The model of [`approve_steer_continue`]: each request asks to create the file its last
/// instruction names, then says so, or that it was refused (the tool result says `refused`).
pub fn touch_script(refused: &'static str) -> impl Fn(&Seen) -> Turn + Send + Sync + 'static {
    move |seen| match &seen.tool_result {
        Some(result) if result.contains(refused) => say("I was not allowed."),
        Some(_) => say("Created it."),
        None if seen.text.contains("second.txt") && !seen.text.contains("touch second.txt") => {
            shell("touch second.txt")
        }
        None if seen.text.contains("touch first.txt") => say("Nothing more to do."),
        None => shell("touch first.txt"),
    }
}

/// The scenario both agents go through, as the person lives it: the agent asks to `touch
/// first.txt` (an approval that cannot be edited); the person says something while it waits
/// (answering nothing), then allows it; the agent finishes and asks what next; the person
/// says "Now create second.txt"; the agent asks to `touch second.txt` and the person refuses
/// with a reason; the agent finishes again and nobody says more. `result` is what a request
/// answering a tool call contains (for the steering message to arrive with it).
pub async fn approve_steer_continue(
    app: &super::TestApp,
    agent_type: &str,
    machine: &Machine,
    model: &Model,
    run: Child,
    result: &str,
) -> Uuid {
    let session = session_of(app, agent_type).await;
    let approval = open_question(app, session, "approval").await;
    assert_eq!(
        approval["approval"]["input"]["command"], "touch first.txt",
        "{approval}"
    );
    assert_eq!(approval["approval"]["input_fixed"], true, "{approval}");
    assert!(
        !machine.file("first.txt").exists(),
        "nothing runs before the person allows it"
    );
    let edited = json!({"content": "Allow", "updated_input": {"command": "touch other.txt"}});
    assert_eq!(
        answer(app, session, &approval, edited).await,
        422,
        "no edits"
    );
    let steer = json!({"content": "Use tabs, not spaces", "question_id": null});
    assert_eq!(answer(app, session, &approval, steer).await, 200);
    assert_eq!(
        answer(app, session, &approval, json!({"content": "Allow"})).await,
        200
    );

    let next = open_question(app, session, "next_instruction").await;
    assert!(
        machine.file("first.txt").exists(),
        "the allowed command ran"
    );
    let instruction = json!({"content": "Now create second.txt"});
    assert_eq!(answer(app, session, &next, instruction).await, 200);
    let approval = open_question(app, session, "approval").await;
    assert_eq!(approval["approval"]["input"]["command"], "touch second.txt");
    let refusal = json!({"content": "Not second.txt: it is generated"});
    assert_eq!(answer(app, session, &approval, refusal).await, 200);
    let next = open_question(app, session, "next_instruction").await;
    withdraw(app, session, &next).await;
    let (success, printed) = finished(run).await;
    assert!(success, "{printed}");
    assert!(
        !machine.file("second.txt").exists(),
        "the denied command did not run"
    );

    let heard = model.requests();
    assert!(
        heard
            .iter()
            .any(|r| r.contains(result) && r.contains("Use tabs, not spaces")),
        "the message sent mid-run reached the model with the tool's result"
    );
    assert!(
        heard.iter().any(|r| r.contains("Now create second.txt")),
        "the instruction reached the model"
    );
    assert!(
        heard
            .iter()
            .any(|r| r.contains("Not second.txt: it is generated")),
        "the refusal's reason reached the model"
    );

    // What the person sees: the prompt typed in the terminal, the calls, the exit.
    let mut row = Value::Null;
    for _ in 0..200 {
        row = app.get_json(&format!("/api/v1/sessions/{session}")).await;
        if row["exited_at"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(row["title"], "Create first.txt", "{row}");
    assert!(row["exited_at"].is_string(), "the exit was said: {row}");
    session
}

/// What the session shows, message by message.
pub async fn shown(app: &super::TestApp, session: Uuid) -> Vec<String> {
    let messages: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/messages"))
        .await;
    messages
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}
