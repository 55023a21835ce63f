//! MCP over Streamable HTTP at `/mcp` with rmcp's own client, and the stdio bridge as a child
//! process: tools, blocking questions answered through REST, progress, the pending /
//! wait_for_answer path, cancellation, errors, tenants.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestApp;
use http::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientConfig, ClientRequest,
    Implementation, ProgressNotificationParam, ServerResult,
};
use rmcp::service::{NotificationContext, Peer, PeerRequestOptions, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use switchboard::app::Config;
use switchboard::mcp::{ANSWER_META, McpConfig};
use uuid::Uuid;

/// An MCP client that records the progress notifications it receives.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            Default::default(),
            Implementation::new("switchboard-tests", "1"),
        )
    }
}

impl Recorder {
    fn progress_for(&self, token: &rmcp::model::ProgressToken) -> usize {
        let progress = self.progress.lock().unwrap();
        progress
            .iter()
            .filter(|p| &p.progress_token == token)
            .count()
    }
}

type Client = RunningService<RoleClient, Recorder>;

async fn connect_as(app: &TestApp, token: &str, recorder: Recorder) -> Client {
    let mut headers = HashMap::new();
    headers.insert(
        HeaderName::from_static("x-client-type"),
        HeaderValue::from_static("mcp-test-agent"),
    );
    let config = StreamableHttpClientTransportConfig::with_uri(app.url("/mcp"))
        .auth_header(token)
        .custom_headers(headers);
    recorder
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("initialize")
}

async fn connect(app: &TestApp) -> Client {
    connect_as(app, &app.token, Recorder::default()).await
}

async fn spawn_with_mcp(mcp: McpConfig) -> TestApp {
    TestApp::spawn_with(Config {
        mcp,
        ..Config::default()
    })
    .await
}

/// Questions block for `block_limit_ms`, permission prompts as long.
fn quick(block_limit_ms: u64) -> McpConfig {
    McpConfig {
        block_limit: Duration::from_millis(block_limit_ms),
        permission_limit: Duration::from_millis(block_limit_ms),
        progress_interval: Duration::from_millis(200),
        ..McpConfig::default()
    }
}

fn call(name: &'static str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name).with_arguments(args.as_object().unwrap().clone())
}

async fn tool(client: &Peer<RoleClient>, name: &'static str, args: Value) -> CallToolResult {
    client
        .call_tool(call(name, args))
        .await
        .expect("a tool result")
}

/// The structured result of a successful call (`permission_prompt`'s is in `_meta`).
fn ok(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "tool failed: {result:?}");
    let meta = result.meta.as_ref().and_then(|m| m.0.get(ANSWER_META));
    result
        .structured_content
        .clone()
        .or_else(|| meta.cloned())
        .expect("structured content")
}

/// The text of a failed call.
fn error_text(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error: {result:?}"
    );
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

async fn reply(app: &TestApp, session: &str, content: &str) {
    let response = app
        .post(
            "/api/v1/messages/user",
            &json!({"agent_instance_id": session, "content": content, "mark_as_read": false}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn until_waiters(app: &TestApp, n: usize) {
    for _ in 0..500 {
        if app.hub.waiters() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} waiters, have {}", app.hub.waiters());
}

#[tokio::test]
async fn initialize_and_list_the_six_tools() {
    let app = TestApp::spawn().await;
    let client = connect(&app).await;
    let info = client.peer_info().expect("initialized");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("switchboard")
    );
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or("")
            .contains("ask_question")
    );
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "ask_question",
            "end_session",
            "log_step",
            "permission_prompt",
            "send_message",
            "wait_for_answer"
        ]
    );
    for t in &tools {
        assert!(
            t.description.as_deref().unwrap_or("").len() > 100,
            "{}",
            t.name
        );
        assert_eq!(
            t.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            t.name
        );
    }
    let ask = tools.iter().find(|t| t.name == "ask_question").unwrap();
    assert!(
        ask.description
            .as_deref()
            .unwrap()
            .contains("wait_for_answer")
    );
    let required = ask
        .input_schema
        .get("required")
        .cloned()
        .unwrap_or_default();
    assert_eq!(required, json!(["question_text"]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn log_step_starts_a_session_and_delivers_feedback_once() {
    let app = TestApp::spawn().await;
    let client = connect(&app).await;
    let first = ok(&tool(
        &client,
        "log_step",
        json!({"step_description": "reading the code"}),
    )
    .await);
    assert_eq!(first["success"], true);
    assert_eq!(first["step_number"], 1);
    assert_eq!(first["user_feedback"], json!([]));
    let session = first["agent_instance_id"].as_str().unwrap().to_owned();

    reply(&app, &session, "use the other branch").await;
    let second = tool(
        &client,
        "log_step",
        json!({"agent_instance_id": session, "step_description": "switching"}),
    )
    .await;
    assert!(text(&second).contains("use the other branch"));
    let second = ok(&second);
    assert_eq!(second["step_number"], 2);
    assert_eq!(second["user_feedback"], json!(["use the other branch"]));
    let third = ok(&tool(
        &client,
        "log_step",
        json!({"agent_instance_id": session, "step_description": "done"}),
    )
    .await);
    assert_eq!(
        third["user_feedback"],
        json!([]),
        "feedback is delivered once"
    );

    // The session is the REST one, with the agent type from X-Client-Type.
    let listed: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(listed["agent_type"], "mcp-test-agent", "{listed}");
}

#[tokio::test]
async fn ask_question_blocks_until_answered_through_rest_with_progress() {
    let app = spawn_with_mcp(quick(30_000)).await;
    let recorder = Recorder::default();
    let client = connect_as(&app, &app.token, recorder.clone()).await;
    let session = ok(&tool(&client, "log_step", json!({"step_description": "start"})).await)
        ["agent_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(call(
        "ask_question",
        json!({"agent_instance_id": session, "question_text": "Deploy now?"}),
    )));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    until_waiters(&app, 1).await;
    while recorder.progress_for(&token) < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reply(&app, &session, "yes, deploy").await;
    let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
        panic!("not a tool result")
    };
    assert!(text(&result).contains("yes, deploy"));
    let answer = ok(&result);
    assert_eq!(answer["status"], "answered");
    assert_eq!(answer["answer"], "yes, deploy");
    assert_eq!(answer["agent_instance_id"], session.as_str());
    until_waiters(&app, 0).await;

    // The answer was consumed: it is not fed back as feedback on the next step.
    let next = ok(&tool(
        &client,
        "log_step",
        json!({"agent_instance_id": session, "step_description": "deploying"}),
    )
    .await);
    assert_eq!(next["user_feedback"], json!([]));
}

#[tokio::test]
async fn a_question_past_the_block_limit_is_pending_and_wait_for_answer_resumes_it() {
    let app = spawn_with_mcp(quick(300)).await;
    let client = connect(&app).await;
    let asked = tool(
        &client,
        "ask_question",
        json!({"question_text": "Which database?"}),
    )
    .await;
    assert!(text(&asked).contains("wait_for_answer"));
    let asked = ok(&asked);
    assert_eq!(asked["status"], "pending");
    let session = asked["agent_instance_id"].as_str().unwrap().to_owned();
    let question = asked["question_id"].as_str().unwrap().to_owned();
    until_waiters(&app, 0).await;

    // Still nothing: pending again, and the question was not asked twice.
    let again = ok(&tool(
        &client,
        "wait_for_answer",
        json!({"agent_instance_id": session, "question_id": question}),
    )
    .await);
    assert_eq!(again["status"], "pending");
    let history: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/messages"))
        .await;
    assert_eq!(history.len(), 1);

    reply(&app, &session, "PostgreSQL").await;
    let answered = ok(&tool(
        &client,
        "wait_for_answer",
        json!({"agent_instance_id": session, "question_id": question}),
    )
    .await);
    assert_eq!(answered["status"], "answered");
    assert_eq!(answered["answer"], "PostgreSQL");
    // Asking whether it was answered again finds it in the history (a lost result is not a
    // lost answer).
    let repeated = ok(&tool(
        &client,
        "wait_for_answer",
        json!({"agent_instance_id": session, "question_id": question}),
    )
    .await);
    assert_eq!(repeated["answer"], "PostgreSQL");
}

#[tokio::test]
async fn send_message_with_requires_user_input_waits_like_ask_question() {
    let app = spawn_with_mcp(quick(30_000)).await;
    let client = connect(&app).await;
    let sent = ok(&tool(
        &client,
        "send_message",
        json!({"content": "starting", "agent_type": "my-agent"}),
    )
    .await);
    assert_eq!(sent["success"], true);
    assert_eq!(sent["queued_user_messages"], json!([]));
    let session = sent["agent_instance_id"].as_str().unwrap().to_owned();
    let asking = {
        let client = client.clone();
        let session = session.clone();
        tokio::spawn(async move {
            tool(
                &client,
                "send_message",
                json!({"agent_instance_id": session, "content": "OK?", "requires_user_input": true}),
            )
            .await
        })
    };
    until_waiters(&app, 1).await;
    reply(&app, &session, "fine").await;
    let answered = ok(&asking.await.unwrap());
    assert_eq!(answered["status"], "answered");
    assert_eq!(answered["answer"], "fine");
    assert_eq!(answered["question_id"], answered["message_id"]);
    let listed: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(listed["agent_type"], "my-agent");
}

#[tokio::test]
async fn cancelling_or_dropping_a_blocked_call_frees_its_waiter() {
    let app = spawn_with_mcp(quick(60_000)).await;
    let client = connect(&app).await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(call(
        "ask_question",
        json!({"question_text": "Wait for me?"}),
    )));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    until_waiters(&app, 1).await;
    handle.cancel(Some("user abort".into())).await.unwrap();
    until_waiters(&app, 0).await;

    let dropped = tokio::time::timeout(
        Duration::from_millis(500),
        tool(&client, "ask_question", json!({"question_text": "And me?"})),
    )
    .await;
    assert!(dropped.is_err(), "the call blocks");
    until_waiters(&app, 0).await;

    // The client is still usable afterwards.
    ok(&tool(
        &client,
        "log_step",
        json!({"step_description": "still here"}),
    )
    .await);
}

#[tokio::test]
async fn bad_input_is_a_tool_error_and_changes_nothing() {
    let app = spawn_with_mcp(quick(300)).await;
    let client = connect(&app).await;
    let bad_id = tool(
        &client,
        "log_step",
        json!({"agent_instance_id": "not-a-uuid", "step_description": "x"}),
    )
    .await;
    assert!(
        error_text(&bad_id).contains("Invalid agent_instance_id"),
        "{bad_id:?}"
    );
    let empty = tool(&client, "log_step", json!({"step_description": "   "})).await;
    assert!(error_text(&empty).contains("step_description is required"));
    let missing = tool(&client, "ask_question", json!({})).await;
    assert!(
        error_text(&missing).contains("question_text"),
        "{missing:?}"
    );
    let wrong_type = tool(&client, "log_step", json!({"step_description": 42})).await;
    error_text(&wrong_type);
    let nul = tool(&client, "log_step", json!({"step_description": "a\u{0}b"})).await;
    assert!(error_text(&nul).contains("content"), "{nul:?}");

    let unknown = Uuid::new_v4();
    let end = tool(
        &client,
        "end_session",
        json!({"agent_instance_id": unknown}),
    )
    .await;
    assert!(error_text(&end).contains("not found"));
    let wait = tool(
        &client,
        "wait_for_answer",
        json!({"agent_instance_id": unknown, "question_id": Uuid::new_v4()}),
    )
    .await;
    assert!(error_text(&wait).contains("not found"));

    // A message id that is not a question of this session.
    let session =
        ok(&tool(&client, "log_step", json!({"step_description": "s"})).await)["agent_instance_id"]
            .clone();
    let wait = tool(
        &client,
        "wait_for_answer",
        json!({"agent_instance_id": session, "question_id": Uuid::new_v4()}),
    )
    .await;
    assert!(error_text(&wait).contains("not found"));

    // An ended session refuses new questions.
    let ended = ok(&tool(
        &client,
        "end_session",
        json!({"agent_instance_id": session}),
    )
    .await);
    assert_eq!(ended["final_status"], "COMPLETED");
    let asked = tool(
        &client,
        "ask_question",
        json!({"agent_instance_id": session, "question_text": "more?"}),
    )
    .await;
    assert!(error_text(&asked).contains("ended"), "{asked:?}");

    let sessions: Value = app.get_json("/api/v1/sessions").await;
    assert_eq!(sessions.as_array().map(Vec::len), Some(1), "{sessions}");
}

#[tokio::test]
async fn another_tenants_session_is_not_found_and_untouched() {
    let app = spawn_with_mcp(quick(300)).await;
    let alice = connect(&app).await;
    let bob_token = app
        .key(Uuid::new_v4(), switchboard::commands::Scope::Agent)
        .await;
    let bob = connect_as(&app, &bob_token, Recorder::default()).await;
    let asked = ok(&tool(&alice, "ask_question", json!({"question_text": "secret?"})).await);
    let session = asked["agent_instance_id"].clone();
    let question = asked["question_id"].clone();

    let end = tool(&bob, "end_session", json!({"agent_instance_id": session})).await;
    assert!(error_text(&end).contains("not found"));
    let wait = tool(
        &bob,
        "wait_for_answer",
        json!({"agent_instance_id": session, "question_id": question}),
    )
    .await;
    assert!(error_text(&wait).contains("not found"));

    let own = ok(&tool(
        &alice,
        "wait_for_answer",
        json!({"agent_instance_id": session, "question_id": question}),
    )
    .await);
    assert_eq!(own["status"], "pending");
    let listed: Value = app
        .get(&format!("/api/v1/sessions/{}", session.as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["status"], "AWAITING_INPUT", "{listed}");
}

#[tokio::test]
async fn requests_without_a_valid_token_or_from_an_unknown_host_are_refused() {
    let app = TestApp::spawn().await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header("forged.token"),
    );
    let refused = Recorder::default().serve(transport).await;
    let error = refused.err().expect("initialize is refused");
    assert!(error.is_authorization_required(), "{error:?}");

    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "curl", "version": "0"}}});
    let raw = |host: &'static str, token: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/mcp/"))
            .header("accept", "application/json, text/event-stream")
            .header("host", host)
            .json(&initialize);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    // No credentials: a challenge without an error code (RFC 6750 §3); bad ones:
    // invalid_token. Both point to the protected resource metadata (RFC 9728 §5.1).
    let metadata =
        "resource_metadata=\"http://localhost:8080/.well-known/oauth-protected-resource/mcp\"";
    let missing = raw("localhost", None).await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        format!("Bearer {metadata}, scope=\"agent\"").as_str()
    );
    let forged = raw("localhost", Some("forged.token")).await.unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(
        forged.headers()["www-authenticate"],
        format!("Bearer error=\"invalid_token\", {metadata}").as_str()
    );
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");

    let foreign = raw("evil.example", Some(&app.token)).await.unwrap();
    assert_eq!(foreign.status(), 403);
    let local = raw("localhost", Some(&app.token)).await.unwrap();
    assert_eq!(local.status(), 200);
}

#[tokio::test]
async fn allowed_hosts_are_configurable() {
    let app = spawn_with_mcp(McpConfig {
        allowed_hosts: vec!["switchboard.example.com".into()],
        ..McpConfig::default()
    })
    .await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "curl", "version": "0"}}});
    for (host, status) in [("switchboard.example.com", 200), ("127.0.0.1", 403)] {
        let response = app
            .client
            .post(app.url("/mcp"))
            .bearer_auth(&app.token)
            .header("accept", "application/json, text/event-stream")
            .header("host", host)
            .json(&initialize)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{host}");
    }
}

/// The contract's acceptance run, at its real pace: an answer 20 s after the question, with
/// the default block limit and progress interval.
#[tokio::test]
async fn an_answer_twenty_seconds_later_arrives_with_progress_meanwhile() {
    let app = TestApp::spawn().await;
    let recorder = Recorder::default();
    let client = connect_as(&app, &app.token, recorder.clone()).await;
    let session = ok(&tool(&client, "log_step", json!({"step_description": "start"})).await)
        ["agent_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(call(
        "ask_question",
        json!({"agent_instance_id": session, "question_text": "Ship it?"}),
    )));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    tokio::time::sleep(Duration::from_secs(20)).await;
    reply(&app, &session, "ship it").await;
    let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
        panic!("not a tool result")
    };
    assert_eq!(ok(&result)["answer"], "ship it");
    assert!(recorder.progress_for(&token) >= 1, "progress while waiting");
    ok(&tool(
        &client,
        "end_session",
        json!({"agent_instance_id": session}),
    )
    .await);
}

#[tokio::test]
async fn the_stdio_bridge_forwards_to_a_remote_server_over_rest() {
    let app = TestApp::spawn().await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .arg("mcp-stdio")
        .arg("--url")
        .arg(&app.address)
        .arg("--api-key")
        .arg(&app.token)
        .args(["--block-seconds", "1", "--permission-seconds", "1"])
        .env("SWITCHBOARD_CLIENT_TYPE", "stdio-agent")
        .env("RUST_LOG", "info");
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr.unwrap(), &mut text)
            .await
            .unwrap();
        text
    });
    let client = Recorder::default()
        .serve(transport)
        .await
        .expect("the bridge initializes");
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 6);

    let first = ok(&tool(
        &client,
        "log_step",
        json!({"step_description": "via stdio"}),
    )
    .await);
    let session = first["agent_instance_id"].as_str().unwrap().to_owned();
    assert_eq!(first["step_number"], 1);
    reply(&app, &session, "noted").await;
    let second = ok(&tool(
        &client,
        "log_step",
        json!({"agent_instance_id": session, "step_description": "again"}),
    )
    .await);
    assert_eq!(second["user_feedback"], json!(["noted"]));

    // Past the block limit: pending; then answered through REST and resumed.
    let asked = ok(&tool(
        &client,
        "ask_question",
        json!({"agent_instance_id": session, "question_text": "Proceed?"}),
    )
    .await);
    assert_eq!(asked["status"], "pending");
    let question = asked["question_id"].clone();
    let waiting = {
        let client = client.clone();
        let session = session.clone();
        tokio::spawn(async move {
            let mut answered = Value::Null;
            for _ in 0..20 {
                answered = ok(&tool(
                    &client,
                    "wait_for_answer",
                    json!({"agent_instance_id": session, "question_id": question}),
                )
                .await);
                if answered["status"] == "answered" {
                    break;
                }
            }
            answered
        })
    };
    until_waiters(&app, 1).await;
    reply(&app, &session, "go ahead").await;
    let answered = waiting.await.unwrap();
    assert_eq!(answered["answer"], "go ahead");

    // A permission prompt through the bridge, allowed with an edit over REST while it waits.
    let prompting = {
        let client = client.clone();
        tokio::spawn(async move {
            ok(&tool(
                &client,
                "permission_prompt",
                json!({"tool_name": "Bash", "input": {"command": "make clean"}}),
            )
            .await)
        })
    };
    until_waiters(&app, 1).await;
    let waiting: Vec<Value> = app
        .get_json("/api/v1/sessions?status=AWAITING_INPUT&limit=1")
        .await;
    let prompt_session = waiting[0]["id"].as_str().unwrap().to_owned();
    let status = app
        .post(
            "/api/v1/messages/user",
            &json!({"agent_instance_id": prompt_session, "content": "Allow",
                    "mark_as_read": false, "updated_input": {"command": "make clean-tmp"}}),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let decided = prompting.await.unwrap();
    assert_eq!(
        decided["decision"],
        json!({"behavior": "allow", "updatedInput": {"command": "make clean-tmp"}})
    );
    // Unanswered within the permission limit: withdrawn and denied, through the bridge too.
    let unanswered = ok(&tool(
        &client,
        "permission_prompt",
        json!({"tool_name": "Bash", "input": {"command": "make dist"}}),
    )
    .await);
    assert_eq!(unanswered["status"], "withdrawn", "{unanswered}");
    assert_eq!(unanswered["decision"]["behavior"], "deny");

    let bad = tool(
        &client,
        "end_session",
        json!({"agent_instance_id": Uuid::new_v4()}),
    )
    .await;
    assert!(error_text(&bad).contains("not found"));
    let ended = ok(&tool(
        &client,
        "end_session",
        json!({"agent_instance_id": session}),
    )
    .await);
    assert_eq!(ended["final_status"], "COMPLETED");
    let listed: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(listed["agent_type"], "stdio-agent");
    client.cancel().await.unwrap();
    // Its log goes to a pipe here, as under an MCP host: plain text, no colour codes.
    let stderr = stderr.await.unwrap();
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI codes in a pipe: {stderr:?}"
    );
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let post = |body: String| {
        app.client
            .post(app.url("/mcp"))
            .bearer_auth(&app.token)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let malformed = post("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\":".into())
        .await
        .unwrap();
    assert!(
        malformed.status().is_client_error(),
        "{}",
        malformed.status()
    );
    let huge = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "log_step", "arguments": {"step_description": "x".repeat(3 * 1024 * 1024)}}});
    let oversized = post(huge.to_string()).await.unwrap();
    assert_eq!(oversized.status(), 413);
    let sessions: Value = app.get_json("/api/v1/sessions").await;
    assert_eq!(sessions, json!([]));
}

async fn initialize_from(app: &TestApp, origin: Option<&str>, token: Option<&str>) -> u16 {
    let mut request = app
        .client
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("host", "localhost")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "browser", "version": "0"}}}),
        );
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_foreign_origin_is_refused_even_when_the_host_is_allowed() {
    let app = TestApp::spawn().await;
    let token = Some(app.token.as_str());
    assert_eq!(
        initialize_from(&app, Some("http://evil.example"), token).await,
        403
    );
    assert_eq!(initialize_from(&app, Some("null"), token).await, 403);
    // Before credentials are even looked at.
    assert_eq!(
        initialize_from(&app, Some("http://evil.example"), None).await,
        403
    );
    // Loopback pages, the server's own public origin, and clients that send no Origin.
    assert_eq!(
        initialize_from(&app, Some("http://localhost:5173"), token).await,
        200
    );
    assert_eq!(
        initialize_from(&app, Some("http://127.0.0.1:3000"), token).await,
        200
    );
    assert_eq!(
        initialize_from(&app, Some("http://localhost:8080"), token).await,
        200
    );
    assert_eq!(initialize_from(&app, None, token).await, 200);
    // Every method is guarded.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = app
            .client
            .request(method.clone(), app.url("/mcp"))
            .bearer_auth(&app.token)
            .header("origin", "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method}");
    }
}

#[tokio::test]
async fn allowed_origins_are_configurable() {
    let app = spawn_with_mcp(McpConfig {
        allowed_origins: Some(vec!["https://app.example".into()]),
        ..McpConfig::default()
    })
    .await;
    let token = Some(app.token.as_str());
    assert_eq!(
        initialize_from(&app, Some("https://app.example"), token).await,
        200
    );
    assert_eq!(
        initialize_from(&app, Some("https://app.example:443"), token).await,
        200
    );
    assert_eq!(
        initialize_from(&app, Some("http://app.example"), token).await,
        403
    );
    assert_eq!(
        initialize_from(&app, Some("http://localhost:5173"), token).await,
        403
    );

    let any = spawn_with_mcp(McpConfig {
        allowed_origins: Some(vec!["*".into()]),
        ..McpConfig::default()
    })
    .await;
    let token = Some(any.token.as_str());
    assert_eq!(
        initialize_from(&any, Some("http://evil.example"), token).await,
        200
    );
}

/// `switchboard serve` with `args` on a fresh database: its exit status, or `None` once it
/// listens (it is then stopped), and what it wrote to stderr.
async fn serve_briefly(args: &[&str]) -> (Option<std::process::ExitStatus>, String) {
    use std::io::{BufRead, Read};
    let db = common::database().await;
    let (public, private) = common::signing_key_pems().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--port", "0", "--host", "127.0.0.1"])
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("JWT_PUBLIC_KEY", public)
        .env("JWT_PRIVATE_KEY", private)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    tokio::task::spawn_blocking(move || {
        let listening = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.starts_with("Switchboard listening on"));
        let status = if listening {
            child.kill().unwrap();
            child.wait().unwrap();
            None
        } else {
            Some(child.wait().unwrap())
        };
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        (status, text)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_block_limit_hosts_may_not_survive_warns_and_bad_origins_stop_the_start() {
    let (status, stderr) = serve_briefly(&["--mcp-block-seconds", "120"]).await;
    assert_eq!(status, None, "it serves: {stderr}");
    assert!(
        stderr.contains("--mcp-block-seconds 120 is above 55") && stderr.contains("WARN"),
        "{stderr}"
    );
    let (status, stderr) = serve_briefly(&["--mcp-block-seconds", "50"]).await;
    assert_eq!(status, None);
    assert!(!stderr.contains("mcp-block-seconds"), "{stderr}");

    let (status, stderr) = serve_briefly(&["--mcp-allowed-origins", "evil.example"]).await;
    assert!(status.is_some_and(|s| !s.success()), "{stderr}");
    assert!(stderr.contains("--mcp-allowed-origins"), "{stderr}");
}

#[tokio::test]
async fn every_tool_declares_title_annotations_and_a_schema_its_results_match() {
    let app = spawn_with_mcp(quick(1500)).await;
    let output = common::node_with_mcp_sdk("mcp_tools.cjs")
        .args([&app.address, &app.token])
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .expect("node runs (install Node.js)");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&output.stdout));
    });
    assert!(output.status.success(), "{report}");

    // (readOnly, destructive, idempotent, openWorld), as each tool truly behaves.
    let hints = [
        ("log_step", [false, false, false, false]),
        ("ask_question", [false, false, false, false]),
        ("wait_for_answer", [false, false, true, false]),
        ("send_message", [false, false, false, false]),
        ("permission_prompt", [false, false, false, false]),
        ("end_session", [false, true, true, false]),
    ];
    let tools = report["tools"].as_array().unwrap();
    assert_eq!(tools.len(), hints.len());
    for (name, [read_only, destructive, idempotent, open_world]) in hints {
        let tool = tools.iter().find(|t| t["name"] == name).unwrap();
        assert!(
            tool["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{tool}"
        );
        if name == "permission_prompt" {
            // Its result is the decision's text alone: Claude Code reads structured content
            // first, and refuses anything but a text block.
            assert!(tool.get("outputSchema").is_none(), "{tool}");
        } else {
            assert_eq!(tool["outputSchema"]["type"], "object", "{tool}");
        }
        let annotations = &tool["annotations"];
        assert_eq!(annotations["readOnlyHint"], read_only, "{name}");
        assert_eq!(annotations["destructiveHint"], destructive, "{name}");
        assert_eq!(annotations["idempotentHint"], idempotent, "{name}");
        assert_eq!(annotations["openWorldHint"], open_world, "{name}");
    }

    let results = report["results"].as_array().unwrap();
    for result in results {
        assert_eq!(result["valid"], true, "{result}");
    }
    // Every shape a result takes was checked.
    let seen = |tool: &str, shape: &dyn Fn(&Value) -> bool| {
        results
            .iter()
            .any(|r| r["tool"] == tool && shape(&r["structured"]))
    };
    let answered = |s: &Value| s["status"] == "answered";
    let pending = |s: &Value| s["status"] == "pending";
    assert!(seen("log_step", &|s| s["user_feedback"]
        == json!(["mind the tests"])));
    assert!(seen("ask_question", &pending));
    assert!(seen("ask_question", &|s| answered(s)
        && s["user_feedback"] == json!(["before the question"])));
    assert!(seen("wait_for_answer", &pending));
    assert!(seen("wait_for_answer", &|s| s["answer"] == "PostgreSQL"));
    assert!(seen("send_message", &|s| s.get("status").is_none()));
    assert!(seen("send_message", &|s| s["answer"] == "fine"));
    assert!(seen("send_message", &pending));
    assert!(seen("end_session", &|s| s["final_status"] == "COMPLETED"));

    // Options: the answer names the option it chose.
    assert!(seen("ask_question", &|s| s["answer"] == "Green"
        && s["chosen_option"] == "Green"));
    assert!(seen("send_message", &|s| s["chosen_option"] == "Wait"));
    assert!(seen("send_message", &|s| s["answer"] == "fine"
        && s.get("chosen_option").is_none()));

    // Tool approvals: the text is exactly what Claude Code parses, and nothing else is content.
    assert!(
        results
            .iter()
            .filter(|r| r["tool"] == "permission_prompt")
            .all(|r| r["has_structured_content"] == false)
    );
    let decisions: Vec<Value> = results
        .iter()
        .filter(|r| {
            (r["tool"] == "permission_prompt" || r["tool"] == "wait_for_answer")
                && r["structured"].get("decision").is_some()
        })
        .map(|r| {
            let text: Value = serde_json::from_str(r["text"].as_str().unwrap()).unwrap();
            assert_eq!(text, r["structured"]["decision"], "{r}");
            text
        })
        .collect();
    assert_eq!(
        decisions,
        [
            json!({"behavior": "allow", "updatedInput": {"command": "rm -rf build"}}),
            json!({"behavior": "deny", "message": "Not the root directory, please"}),
            json!({"behavior": "allow", "updatedInput": {"file_path": "/tmp/b.txt", "content": "hi"}}),
            json!({"behavior": "deny", "message": "Nobody decided within 1 s on Switchboard; denied."}),
            json!({"behavior": "allow", "updatedInput": {"command": "ls -la"}}),
        ]
    );
    assert!(seen("permission_prompt", &|s| s["status"] == "withdrawn"));
    // Prompts that name no session share one per MCP session, apart from the agent's.
    let prompts: Vec<&Value> = results
        .iter()
        .filter(|r| {
            r["tool"] == "permission_prompt"
                && r["structured"]["agent_instance_id"]
                    != results[0]["structured"]["agent_instance_id"]
        })
        .map(|r| &r["structured"]["agent_instance_id"])
        .collect();
    assert_eq!(prompts.len(), 2);
    assert_eq!(prompts[0], prompts[1]);
    let agent_session = &results[0]["structured"]["agent_instance_id"];
    assert_ne!(prompts[0], agent_session);
}

/// POST `body` to `/mcp` with `version` (when given) and the session (when given).
async fn post_raw(
    app: &TestApp,
    body: impl Into<reqwest::Body>,
    version: Option<&str>,
    session: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&app.token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body);
    if let Some(version) = version {
        request = request.header("mcp-protocol-version", version);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| {
        // An event stream: its last message.
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .next_back()
            .unwrap_or(Value::String(text.clone()))
    });
    (status, body)
}

#[tokio::test]
async fn malformed_messages_are_json_rpc_errors_never_415() {
    let app = TestApp::spawn().await;
    for body in ["{\"jsonrpc\": \"2.0\", \"id\": 1,", "not json", "", "[1, 2"] {
        let (status, reply) = post_raw(&app, body, None, None).await;
        assert_eq!(status, 400, "{body:?}");
        assert_eq!(reply["error"]["code"], -32700, "{body:?}: {reply}");
        assert_eq!(reply["id"], Value::Null);
    }
    for body in [
        json!(42),
        json!({"id": 7, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": {"an": "object"}, "method": "tools/list"}),
    ] {
        let (status, reply) = post_raw(&app, body.to_string(), None, None).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(reply["error"]["code"], -32600, "{body}: {reply}");
    }
    let (_, reply) = post_raw(
        &app,
        json!({"id": 7, "method": "x"}).to_string(),
        None,
        None,
    )
    .await;
    assert_eq!(reply["id"], 7, "the id, when there is one: {reply}");
    let sessions: Value = app.get_json("/api/v1/sessions").await;
    assert_eq!(sessions, json!([]));
}

#[tokio::test]
async fn batches_are_served_for_2025_03_26_and_refused_after() {
    let app = spawn_with_mcp(quick(300)).await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "log_step", "arguments": {"step_description": "batched"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "two", "method": "tools/list"},
        {"not": "a message"},
    ])
    .to_string();
    for version in [None, Some("2025-03-26")] {
        let (status, replies) = post_raw(&app, batch.clone(), version, None).await;
        assert_eq!(status, 200, "{version:?}: {replies}");
        let replies = replies.as_array().unwrap();
        assert_eq!(replies.len(), 3, "{replies:?}");
        let by_id = |id: Value| replies.iter().find(|r| r["id"] == id).unwrap();
        assert_eq!(
            by_id(json!(1))["result"]["structuredContent"]["step_number"],
            1
        );
        assert_eq!(
            by_id(json!("two"))["result"]["tools"]
                .as_array()
                .map(Vec::len),
            Some(6)
        );
        assert_eq!(by_id(Value::Null)["error"]["code"], -32600);
    }
    let initialize = json!([{"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": {"name": "batcher", "version": "0"}}}]);
    let (status, replies) = post_raw(&app, initialize.to_string(), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(replies[0]["id"], 9);
    assert_eq!(replies[0]["error"]["code"], -32600, "{replies}");
    let notifications = json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}]);
    let (status, _) = post_raw(&app, notifications.to_string(), None, None).await;
    assert_eq!(status, 202);
    let (status, reply) = post_raw(&app, "[]", None, None).await;
    assert_eq!(
        (status, reply["error"]["code"].clone()),
        (400, json!(-32600))
    );

    for version in ["2025-06-18", "2025-11-25"] {
        let (status, reply) = post_raw(&app, batch.clone(), Some(version), None).await;
        assert_eq!(status, 400, "{version}");
        assert_eq!(reply["error"]["code"], -32600, "{reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("batch")
        );
    }
    // Only the two served batches logged a step.
    let sessions: Value = app.get_json("/api/v1/sessions").await;
    assert_eq!(sessions.as_array().map(Vec::len), Some(2), "{sessions}");
}

#[tokio::test]
async fn sessions_are_bound_to_their_tenant_and_end_with_delete() {
    let app = TestApp::spawn().await;
    let client = connect(&app).await;
    ok(&tool(
        &client,
        "log_step",
        json!({"step_description": "in a session"}),
    )
    .await);
    let (session,): (uuid::Uuid,) =
        sqlx::query_as("SELECT id FROM mcp_sessions WHERE tenant_id = $1")
            .bind(app.tenant)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    let session_id = session.to_string();
    let (status, _) = post_raw(&app, list.clone(), None, Some(&session_id)).await;
    assert_eq!(status, 200);

    // Another tenant's session answers like an unknown one, and stays open.
    let bob = app
        .key(Uuid::new_v4(), switchboard::commands::Scope::Agent)
        .await;
    for (token, id) in [
        (&bob, session_id.clone()),
        (&app.token, Uuid::new_v4().to_string()),
        (&app.token, "not-a-session".to_owned()),
    ] {
        for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
            let response = app
                .client
                .request(method.clone(), app.url("/mcp"))
                .bearer_auth(token)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-session-id", &id)
                .body(list.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{method} {id}");
        }
    }
    let (status, _) = post_raw(&app, list.clone(), None, Some(&session_id)).await;
    assert_eq!(status, 200, "still open");

    // The client ends it; it is unknown from then on. Requests without a session still work.
    client.cancel().await.unwrap();
    let (status, reply) = post_raw(&app, list.clone(), None, Some(&session_id)).await;
    assert_eq!(status, 404, "{reply}");
    let (status, _) = post_raw(&app, list, None, None).await;
    assert_eq!(status, 200);
    // No stream of server-initiated messages: GET is not offered.
    let get = app.get("/mcp").send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST, DELETE");
}

/// Parallel tool calls, as Claude Code makes them: two permission prompts open at once in one
/// session, through the official TypeScript SDK. The older is answered first, then the newer,
/// each naming its question; each call receives its own decision, never the other's.
#[tokio::test]
async fn two_permission_prompts_open_at_once_each_receive_their_own_decision() {
    let app = spawn_with_mcp(quick(30_000)).await;
    let session = Uuid::new_v4();
    app.post(
        "/api/v1/messages/agent",
        &json!({"agent_instance_id": session, "agent_type": "claude-code", "content": "start"}),
    )
    .send()
    .await
    .unwrap();
    let output = common::node_with_mcp_sdk("mcp_parallel.cjs")
        .args([&app.address, &app.token, &session.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .expect("node runs (install Node.js)");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&output.stdout));
    });
    assert!(output.status.success(), "{report}");
    assert_eq!(report["questions"][0]["command"], "ls build", "{report}");
    assert_eq!(report["questions"][0]["id"], report["first"]);
    assert_eq!(report["answers"], json!([200, 200]));
    assert_eq!(report["still_open"], json!([report["questions"][1]["id"]]));
    let decision = |which: &str| -> Value {
        let text: Value = serde_json::from_str(report[which]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text, report[which]["structured"]["decision"], "{report}");
        text
    };
    assert_eq!(
        decision("older"),
        json!({"behavior": "allow", "updatedInput": {"command": "ls -la build"}})
    );
    assert_eq!(
        decision("newer"),
        json!({"behavior": "deny", "message": "Never force-push main"})
    );
    assert_eq!(
        report["older"]["structured"]["question_id"],
        report["questions"][0]["id"]
    );
    assert_eq!(
        report["newer"]["structured"]["question_id"],
        report["questions"][1]["id"]
    );
}
