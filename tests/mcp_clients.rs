//! The official MCP clients of both languages against `/mcp`, in every way they negotiate:
//! the TypeScript client (`@modelcontextprotocol/client` 2.4.0) and the Python SDK (`mcp`
//! 2.3.0), each in "auto" (server/discover, falling back to initialize), pinned to 2026-07-28,
//! and "legacy" (initialize). Each lists the tools, logs a step and asks a question a person
//! answers; the session records the client's own name as its agent type.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestApp;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const PYTHON_SDK: &str = "mcp==2.3.0";

/// Run `command` (a client script: mode, URL, key), answer its question; its RESULT.
async fn converse(app: &TestApp, mut command: Command, mode: &str) -> Value {
    let mut child = command
        .arg(mode)
        .arg(app.url("/mcp"))
        .arg(&app.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the client runs (run .ci/run for its prerequisites)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    let mut next = async |word: &str| -> Value {
        let found = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix(word).and_then(|r| r.strip_prefix(' ')) {
                    return Some(serde_json::from_str::<Value>(rest).unwrap());
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(120), found)
            .await
            .unwrap_or_else(|_| panic!("no {word} within two minutes ({mode})"))
            .unwrap_or_else(|| panic!("the client ended before {word} ({mode})"))
    };
    let session = next("SESSION").await["session"]
        .as_str()
        .unwrap()
        .to_owned();
    // A person answers the question the client waits on.
    let question = loop {
        let open: Value = app
            .get_json(&format!("/api/v1/sessions/{session}/questions?status=open"))
            .await;
        if let Some(id) = open[0]["id"].as_str() {
            break id.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let answered = app
        .post(
            "/api/v1/messages/user",
            &json!({ "agent_instance_id": session, "question_id": question,
                     "content": format!("yes, {mode}"), "mark_as_read": false }),
        )
        .send()
        .await
        .unwrap();
    assert!(answered.status().is_success());
    let result = match tokio::time::timeout(Duration::from_secs(120), next("RESULT")).await {
        Ok(result) => result,
        Err(_) => panic!("no result ({mode}): {}", errors.await.unwrap()),
    };
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{mode}: {}", errors.await.unwrap());
    assert_eq!(result["answer"], format!("yes, {mode}"), "{result}");
    assert!(
        result["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("ask_question")),
        "{result}"
    );
    let shown: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    result
        .as_object()
        .cloned()
        .map(|mut r| {
            r.insert("agent_type".into(), shown["agent_type"].clone());
            Value::Object(r)
        })
        .unwrap()
}

fn python() -> Command {
    let python = common::prereqs::python("mcp-python-sdk", &[&[PYTHON_SDK]]);
    let mut command = Command::new(python);
    command.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/mcp_modes.py"
    ));
    command
}

#[tokio::test]
async fn the_typescript_client_in_auto_pinned_and_legacy_modes() {
    let app = TestApp::spawn().await;
    for (mode, version) in [
        ("auto", "2026-07-28"),
        ("2026-07-28", "2026-07-28"),
        ("legacy", "2025-11-25"),
    ] {
        let client = tokio::task::spawn_blocking(|| common::node_with_mcp_client("mcp_modes.cjs"))
            .await
            .unwrap();
        let result = converse(&app, client, mode).await;
        assert_eq!(result["version"], version, "{mode}: {result}");
        assert_eq!(
            result["agent_type"], "typescript-client",
            "{mode}: {result}"
        );
    }
}

#[tokio::test]
async fn the_python_sdk_in_auto_pinned_and_legacy_modes() {
    let app = TestApp::spawn().await;
    for (mode, version) in [
        ("auto", "2026-07-28"),
        ("2026-07-28", "2026-07-28"),
        ("legacy", "2025-11-25"),
    ] {
        let client = tokio::task::spawn_blocking(python).await.unwrap();
        let result = converse(&app, client, mode).await;
        assert_eq!(result["version"], version, "{mode}: {result}");
        assert_eq!(
            result["agent_type"], "python-sdk-client",
            "{mode}: {result}"
        );
    }
}
