//! The real Codex CLI (pinned, from npm), configured by `switchboard setup codex` in an
//! isolated home, run headless (`codex exec`, approvals asked for) against a scripted
//! Responses API on loopback: its approvals are the person's, its finished turns ask what
//! next, and the person's answer continues the run.

mod common;

use common::TestApp;
use common::agents::{
    Machine, Model, Seen, answer, finished, open_question, say, session_of, shell, withdraw,
};
use serde_json::{Value, json};

/// The model: each request asks to create the file its last instruction names, then says so
/// (or that it was refused).
fn script(seen: &Seen) -> common::agents::Turn {
    match &seen.tool_result {
        Some(result) if result.contains("Rejected") => say("I was not allowed."),
        Some(_) => say("Created it."),
        None if seen.text.contains("second.txt") && !seen.text.contains("touch second.txt") => {
            shell("touch second.txt")
        }
        None if seen.text.contains("touch first.txt") => say("Nothing more to do."),
        None => shell("touch first.txt"),
    }
}

#[tokio::test]
async fn codex_asks_the_person_and_continues_with_their_instruction() {
    let app = TestApp::spawn().await;
    let model = Model::responses(script).await;
    let machine = Machine::new();
    machine.configure_codex(&model);
    let said = machine
        .setup(
            "codex",
            &app.address,
            &app.token,
            &["--permission-wait", "60s", "--stop-wait", "60s"],
        )
        .await;
    assert!(said.contains("hooks.json: created"), "{said}");
    assert!(said.contains("config.toml: updated"), "{said}");

    let run = machine.codex(&app.token, "Create first.txt");
    let session = session_of(&app, "codex").await;
    let approval = open_question(&app, session, "approval").await;
    assert_eq!(
        approval["approval"]["input"]["command"], "touch first.txt",
        "{approval}"
    );
    assert_eq!(
        approval["approval"]["input_fixed"], true,
        "Codex cannot run an edit"
    );
    let edited = json!({"content": "Allow", "updated_input": {"command": "touch other.txt"}});
    assert_eq!(answer(&app, session, &approval, edited).await, 422);
    // Said while Codex waits (answering nothing): it reaches the model with the tool's result.
    let steer = json!({"content": "Use tabs, not spaces", "question_id": null});
    assert_eq!(answer(&app, session, &approval, steer).await, 200);
    assert_eq!(
        answer(&app, session, &approval, json!({"content": "Allow"})).await,
        200
    );

    // Codex finished: what next?
    let next = open_question(&app, session, "next_instruction").await;
    assert!(
        machine.file("first.txt").exists(),
        "the allowed command ran"
    );
    let instruction = json!({"content": "Now create second.txt"});
    assert_eq!(answer(&app, session, &next, instruction).await, 200);
    let approval = open_question(&app, session, "approval").await;
    assert_eq!(approval["approval"]["input"]["command"], "touch second.txt");
    let refusal = json!({"content": "Not second.txt: it is generated"});
    assert_eq!(answer(&app, session, &approval, refusal).await, 200);
    let next = open_question(&app, session, "next_instruction").await;
    withdraw(&app, session, &next).await;
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
            .any(|r| r.contains("function_call_output") && r.contains("Use tabs, not spaces")),
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
    assert!(
        row["exited_at"].is_string(),
        "SessionEnd said Codex exited: {row}\n{printed}"
    );
    let messages: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/messages"))
        .await;
    let shown: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(shown[0].starts_with("Codex started"), "{shown:?}");
    assert!(shown.contains(&"Create first.txt"), "{shown:?}");
    assert!(
        shown.iter().any(|s| s.starts_with("Bash: touch first.txt")),
        "{shown:?}"
    );
}

#[tokio::test]
async fn codex_setup_is_idempotent_and_uninstall_restores_the_files() {
    let app = TestApp::spawn().await;
    let model = Model::responses(script).await;
    let machine = Machine::new();
    machine.configure_codex(&model);
    let config = machine.codex_home.join("config.toml");
    let hooks = machine.codex_home.join("hooks.json");
    let original = std::fs::read(&config).unwrap();
    machine.setup("codex", &app.address, &app.token, &[]).await;
    let (once_config, once_hooks) = (
        std::fs::read(&config).unwrap(),
        std::fs::read(&hooks).unwrap(),
    );
    let text = String::from_utf8(once_config.clone()).unwrap();
    assert!(text.starts_with("# the person's own settings"), "{text}");
    assert_eq!(
        text.matches("trusted_hash = \"sha256:").count(),
        6,
        "{text}"
    );
    assert!(
        !text.contains(&app.token) && !String::from_utf8_lossy(&once_hooks).contains(&app.token)
    );
    let again = machine.setup("codex", &app.address, &app.token, &[]).await;
    assert!(
        again.contains("hooks.json: unchanged") && again.contains("config.toml: unchanged"),
        "{again}"
    );
    assert_eq!(std::fs::read(&config).unwrap(), once_config);
    assert_eq!(std::fs::read(&hooks).unwrap(), once_hooks);
    machine
        .setup("codex", &app.address, &app.token, &["--uninstall"])
        .await;
    assert_eq!(std::fs::read(&config).unwrap(), original, "byte for byte");
    assert!(!hooks.exists(), "setup created it, so it goes");
}
