//! `/mcp` on the 2026-07-28 revision, over raw HTTP as its clients send it: no initialize, no
//! sessions, every request carrying its protocol version, capabilities and client in `_meta`
//! (and the standard `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` headers).

mod common;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const V2026: &str = "2026-07-28";

fn meta(client: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": client, "version": "9.9.9" }
    })
}

/// A 2026 request of `method` (`name`: the tool of a tools/call) with `params`.
fn request(
    app: &TestApp,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> reqwest::RequestBuilder {
    params["_meta"] = meta("claude-code");
    let mut builder = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&app.token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", V2026)
        .header("Mcp-Method", method);
    if let Some(name) = name {
        builder = builder.header("Mcp-Name", name);
    }
    builder.json(&json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }))
}

/// The JSON-RPC message a response carries (plain JSON, or the last message of a stream).
async fn message(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        return value;
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .rfind(|m| m.get("result").is_some() || m.get("error").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC message in {text:?}"))
}

async fn call(app: &TestApp, tool: &str, arguments: Value) -> Value {
    let response = request(
        app,
        "tools/call",
        Some(tool),
        json!({ "name": tool, "arguments": arguments }),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    message(response).await
}

fn server_info(result: &Value) -> &Value {
    &result["_meta"]["io.modelcontextprotocol/serverInfo"]
}

#[tokio::test]
async fn results_name_the_server_and_the_tool_list_may_be_cached() {
    let app = TestApp::spawn().await;
    let listed = message(
        request(&app, "tools/list", None, json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let result = &listed["result"];
    assert_eq!(server_info(result)["name"], "switchboard", "{listed}");
    assert!(result["ttlMs"].as_u64().unwrap() >= 60_000, "{listed}");
    assert_eq!(result["cacheScope"], "public");
    let sent = call(&app, "send_message", json!({ "content": "hello" })).await;
    assert_eq!(
        server_info(&sent["result"])["name"],
        "switchboard",
        "{sent}"
    );
    // Capabilities the server does not declare answer "method not found".
    for method in ["prompts/list", "resources/list", "completion/complete"] {
        let refused = message(request(&app, method, None, json!({})).send().await.unwrap()).await;
        assert_eq!(refused["error"]["code"], -32601, "{method}: {refused}");
    }
}

#[tokio::test]
async fn the_agent_type_comes_from_the_requests_client_info() {
    let app = TestApp::spawn().await;
    let sent = call(&app, "send_message", json!({ "content": "hello" })).await;
    let session = sent["result"]["structuredContent"]["agent_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(shown["agent_type"], "claude-code", "{shown}");
}

#[tokio::test]
async fn there_are_no_sessions_a_left_over_session_header_is_ignored_and_delete_is_not_allowed() {
    let app = TestApp::spawn().await;
    let response = request(&app, "tools/list", None, json!({}))
        .header("Mcp-Session-Id", Uuid::new_v4().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let listed = message(response).await;
    assert!(listed["result"]["tools"].is_array(), "{listed}");
    let delete = app
        .client
        .delete(app.url("/mcp"))
        .bearer_auth(&app.token)
        .header("MCP-Protocol-Version", V2026)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete.headers()["allow"], "POST");
}

#[tokio::test]
async fn permission_prompts_without_a_session_stay_in_one_session_per_key_and_client() {
    let app = TestApp::spawn().await;
    let mut sessions = Vec::new();
    for command in ["ls", "pwd"] {
        let asked = request(
            &app,
            "tools/call",
            Some("permission_prompt"),
            json!({ "name": "permission_prompt",
                    "arguments": { "tool_name": "Bash", "input": { "command": command } } }),
        )
        .send();
        let asked = tokio::spawn(asked);
        // The prompt is open: deny it, which ends the call.
        let question = loop {
            let sessions: Value = app.get_json("/api/v1/sessions").await;
            let open = sessions
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["status"] == "AWAITING_INPUT")
                .cloned();
            if let Some(session) = open {
                break session;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let session = question["id"].as_str().unwrap().to_owned();
        let question_id = open_question(&app, &session).await;
        answer(&app, &session, &question_id, "Deny").await;
        let answered = message(asked.await.unwrap().unwrap()).await;
        assert!(answered["result"].is_object(), "{answered}");
        sessions.push(session);
    }
    assert_eq!(
        sessions[0], sessions[1],
        "both prompts were asked in one session"
    );
}

#[tokio::test]
async fn a_long_call_sends_its_headers_before_the_answer() {
    let app = TestApp::spawn().await;
    let first = call(&app, "send_message", json!({ "content": "starting" })).await;
    let session = first["result"]["structuredContent"]["agent_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // No progress token: nothing for the stream to say until a person answers.
    let response = request(
        &app,
        "tools/call",
        Some("ask_question"),
        json!({ "name": "ask_question",
                "arguments": { "agent_instance_id": session, "question_text": "Go on?" } }),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // The headers are here and the question is (or is about to be) open: the person answers.
    let question_id = open_question(&app, &session).await;
    answer(&app, &session, &question_id, "Yes").await;
    let result = message(response).await;
    assert_eq!(
        result["result"]["structuredContent"]["answer"], "Yes",
        "{result}"
    );
}

/// A client that takes tasks (the tasks extension), speaking `version`.
struct TaskClient(rmcp::model::ProtocolVersion);

impl rmcp::ClientHandler for TaskClient {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::builder()
                .enable_tasks()
                .build(),
            rmcp::model::Implementation::new("task-client", "1.0.0"),
        )
        .with_protocol_version(self.0.clone())
    }
}

async fn task_client(
    app: &TestApp,
    version: rmcp::model::ProtocolVersion,
) -> rmcp::service::RunningService<rmcp::RoleClient, TaskClient> {
    use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let config =
        StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header(&app.token);
    // The 2026 revision has no initialize: the client discovers (server/discover).
    let lifecycle = if version == rmcp::model::ProtocolVersion::V_2026_07_28 {
        ClientLifecycleMode::Discover {
            preferred_versions: vec![version.clone()],
        }
    } else {
        ClientLifecycleMode::Initialize
    };
    TaskClient(version)
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(config),
            lifecycle,
        )
        .await
        .expect("connect")
}

fn tool(name: &str, arguments: Value) -> rmcp::model::CallToolRequestParams {
    rmcp::model::CallToolRequestParams::new(name.to_owned())
        .with_arguments(arguments.as_object().unwrap().clone())
}

/// The task a call returned.
fn task_of(response: rmcp::model::CallToolResponse) -> rmcp::model::Task {
    match response {
        rmcp::model::CallToolResponse::Task(created) => created.task,
        other => panic!("expected a task, got {other:?}"),
    }
}

async fn task_state(
    client: &rmcp::service::RunningService<rmcp::RoleClient, TaskClient>,
    id: &str,
) -> Value {
    let got = client
        .get_task(rmcp::model::GetTaskParams::new(id.to_owned()))
        .await
        .unwrap();
    serde_json::to_value(got).unwrap()
}

async fn answer(app: &TestApp, session: &str, question: &str, content: &str) {
    let answered = app
        .post(
            "/api/v1/messages/user",
            &json!({ "agent_instance_id": session, "question_id": question,
                     "content": content, "mark_as_read": false }),
        )
        .send()
        .await
        .unwrap();
    assert!(
        answered.status().is_success(),
        "{:?}",
        answered.text().await
    );
}

/// The id of the session's open question, once it is asked.
async fn open_question(app: &TestApp, session: &str) -> String {
    loop {
        let open: Value = app
            .get_json(&format!("/api/v1/sessions/{session}/questions?status=open"))
            .await;
        if let Some(id) = open[0]["id"].as_str() {
            return id.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `task.session.question` → (session, question).
fn ids(task_id: &str) -> (String, String) {
    let parts: Vec<&str> = task_id.split('.').collect();
    (parts[1].to_owned(), parts[2].to_owned())
}

/// A question as a task: the call returns at once, the person answers minutes later (well
/// past the block limit and any host's tool-call timeout), and the client collects the answer
/// as the task's result. Through the official Rust client on 2026-07-28.
#[tokio::test]
async fn a_question_answered_after_three_minutes_is_collected_as_its_tasks_result() {
    let app = TestApp::spawn().await;
    let client = task_client(&app, rmcp::model::ProtocolVersion::V_2026_07_28).await;
    assert!(client.peer_info().unwrap().capabilities.supports_tasks());
    let started = client
        .call_tool_once(tool(
            "ask_question",
            json!({ "question_text": "Deploy now?",
                                                       "options": ["Yes", "No"] }),
        ))
        .await
        .unwrap();
    let task = task_of(started);
    assert_eq!(task.status, rmcp::model::TaskStatus::Working);
    let working = task_state(&client, &task.task_id).await;
    assert_eq!(working["status"], "working", "{working}");
    tokio::time::sleep(std::time::Duration::from_secs(180)).await;
    assert_eq!(
        task_state(&client, &task.task_id).await["status"],
        "working"
    );
    let (session, question) = ids(&task.task_id);
    // Long after the call returned, the client's look at its task shows that the agent waits.
    let open: Value = app
        .get_json(&format!("/api/v1/sessions/{session}/questions?status=open"))
        .await;
    assert_eq!(open[0]["waiting"], true, "{open}");
    answer(&app, &session, &question, "Yes").await;
    let done = task_state(&client, &task.task_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let result = &done["result"]["structuredContent"];
    assert_eq!(result["status"], "answered", "{done}");
    assert_eq!(result["answer"], "Yes");
    assert_eq!(result["chosen_option"], "Yes");
    // Collected again, the same result.
    assert_eq!(
        task_state(&client, &task.task_id).await["result"],
        done["result"]
    );
}

/// Every waiting tool runs as a task for a client that takes them; cancelling a task
/// withdraws its question; another tenant cannot see a task.
#[tokio::test]
async fn waiting_tools_run_as_tasks_and_a_cancelled_task_withdraws_its_question() {
    let app = TestApp::spawn().await;
    let client = task_client(&app, rmcp::model::ProtocolVersion::V_2026_07_28).await;
    // send_message without a question runs as always.
    let plain = client
        .call_tool_once(tool("send_message", json!({ "content": "starting" })))
        .await
        .unwrap();
    let rmcp::model::CallToolResponse::Complete(plain) = plain else {
        panic!("a message without a question is no task: {plain:?}");
    };
    let session = plain.structured_content.unwrap()["agent_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let asked = task_of(
        client
            .call_tool_once(tool(
                "send_message",
                json!({ "content": "Which branch?",
                "agent_instance_id": session, "requires_user_input": true }),
            ))
            .await
            .unwrap(),
    );
    let (_, question) = ids(&asked.task_id);
    // The inbox shows that the agent waits: its client keeps looking at the task.
    let open: Value = app
        .get_json(&format!("/api/v1/sessions/{session}/questions?status=open"))
        .await;
    assert_eq!(open[0]["waiting"], true, "{open}");
    // wait_for_answer on the same question is the same task.
    let waited = task_of(
        client
            .call_tool_once(tool(
                "wait_for_answer",
                json!({ "agent_instance_id": session,
                                                            "question_id": question }),
            ))
            .await
            .unwrap(),
    );
    assert_eq!(waited.task_id.replace("answer.", "message."), asked.task_id);
    answer(&app, &session, &question, "main").await;
    let done = task_state(&client, &asked.task_id).await;
    assert_eq!(
        done["result"]["structuredContent"]["answer"], "main",
        "{done}"
    );
    assert_eq!(
        done["result"]["structuredContent"]["message_id"],
        question.as_str()
    );

    let prompt = task_of(
        client
            .call_tool_once(tool(
                "permission_prompt",
                json!({ "tool_name": "Bash",
                "input": { "command": "rm -rf build" }, "agent_instance_id": session }),
            ))
            .await
            .unwrap(),
    );
    let (_, prompt_question) = ids(&prompt.task_id);
    answer(&app, &session, &prompt_question, "Allow").await;
    let allowed = task_state(&client, &prompt.task_id).await;
    let text = allowed["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("\"behavior\":\"allow\""), "{allowed}");

    let abandoned = task_of(
        client
            .call_tool_once(tool(
                "ask_question",
                json!({ "question_text": "Still there?",
                                                         "agent_instance_id": session }),
            ))
            .await
            .unwrap(),
    );
    client
        .cancel_task(rmcp::model::CancelTaskParams::new(
            abandoned.task_id.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(
        task_state(&client, &abandoned.task_id).await["status"],
        "cancelled"
    );
    let (_, abandoned_question) = ids(&abandoned.task_id);
    let questions: Value = app
        .get_json(&format!(
            "/api/v1/sessions/{session}/questions?status=withdrawn"
        ))
        .await;
    assert_eq!(
        questions[0]["id"],
        abandoned_question.as_str(),
        "{questions}"
    );

    let stranger = TestApp::spawn().await;
    let raw = stranger
        .client
        .post(app.url("/mcp"))
        .bearer_auth(
            app.key(Uuid::new_v4(), switchboard::commands::Scope::Agent)
                .await,
        )
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", V2026)
        .header("Mcp-Method", "tasks/get")
        .header("Mcp-Name", asked.task_id.as_str())
        .json(
            &json!({ "jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {
            "taskId": asked.task_id, "_meta": {
                "io.modelcontextprotocol/protocolVersion": V2026,
                "io.modelcontextprotocol/clientCapabilities": {
                    "extensions": { "io.modelcontextprotocol/tasks": {} } } } } }),
        )
        .send()
        .await
        .unwrap();
    let refused = message(raw).await;
    assert!(refused["error"].is_object(), "{refused}");
}

/// A client that does not take tasks keeps today's blocking calls (so does every client of
/// the 2025 revisions, whose tasks were another design); tasks/get answers -32021.
#[tokio::test]
async fn a_client_without_tasks_is_served_as_before() {
    let app = TestApp::spawn().await;
    let legacy = task_client(&app, rmcp::model::ProtocolVersion::V_2025_11_25).await;
    let plain = legacy
        .call_tool_once(tool("log_step", json!({ "step_description": "working" })))
        .await
        .unwrap();
    assert!(matches!(plain, rmcp::model::CallToolResponse::Complete(_)));
    let got = message(
        request(
            &app,
            "tasks/get",
            Some("answer.x.y"),
            json!({ "taskId": "answer.x.y" }),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(got["error"]["code"], -32021, "{got}");
    let sent = call(&app, "send_message", json!({ "content": "plain" })).await;
    assert!(sent["result"]["structuredContent"].is_object(), "{sent}");
}
