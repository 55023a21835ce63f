//! The real Gemini CLI (pinned, from npm), configured by `switchboard setup gemini` in an
//! isolated home, run headless (`gemini -p`, `--approval-mode yolo`: Switchboard's approval
//! is the gate) against a scripted Gemini API on loopback: a tool call runs only once the
//! person allows it, a refusal tells the model why, and the person's answer to "what next?"
//! continues the run.

mod common;

use common::TestApp;
use common::agents::{
    Machine, Model, Seen, answer, finished, open_question, say, session_of, shell, withdraw,
};
use serde_json::{Value, json};

fn script(seen: &Seen) -> common::agents::Turn {
    match &seen.tool_result {
        Some(result) if result.contains("blocked") => say("I was not allowed."),
        Some(_) => say("Created it."),
        None if seen.text.contains("second.txt") && !seen.text.contains("touch second.txt") => {
            shell("touch second.txt")
        }
        None if seen.text.contains("touch first.txt") => say("Nothing more to do."),
        None => shell("touch first.txt"),
    }
}

#[tokio::test]
async fn gemini_asks_the_person_and_continues_with_their_instruction() {
    let app = TestApp::spawn().await;
    let model = Model::gemini(script).await;
    let machine = Machine::new();
    machine.configure_gemini();
    let said = machine
        .setup(
            "gemini",
            &app.address,
            &app.token,
            &["--permission-wait", "60s", "--stop-wait", "60s"],
        )
        .await;
    assert!(said.contains("settings.json: updated"), "{said}");

    let run = machine.gemini(&model, &app.token, "Create first.txt");
    let session = session_of(&app, "gemini-cli").await;
    let approval = open_question(&app, session, "approval").await;
    assert_eq!(approval["approval"]["tool_name"], "run_shell_command");
    assert_eq!(
        approval["approval"]["input"]["command"], "touch first.txt",
        "{approval}"
    );
    assert!(
        !machine.file("first.txt").exists(),
        "nothing runs before the person allows it"
    );
    // Said while Gemini waits (answering nothing): it reaches the model with the tool's result.
    let steer = json!({"content": "Use tabs, not spaces", "question_id": null});
    assert_eq!(answer(&app, session, &approval, steer).await, 200);
    assert_eq!(
        answer(&app, session, &approval, json!({"content": "Allow"})).await,
        200
    );

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
            .any(|r| r.contains("functionResponse") && r.contains("Use tabs, not spaces")),
        "the message sent mid-run reached the model with the tool's result"
    );
    assert!(heard.iter().any(|r| r.contains("Now create second.txt")));
    assert!(
        heard
            .iter()
            .any(|r| r.contains("Not second.txt: it is generated"))
    );

    let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(row["title"], "Create first.txt", "{row}");
    assert!(row["exited_at"].is_string(), "{row}");
    let messages: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/messages"))
        .await;
    let shown: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(shown[0].starts_with("Gemini CLI started"), "{shown:?}");
    assert!(
        shown
            .iter()
            .any(|s| s.starts_with("run_shell_command: touch first.txt")),
        "{shown:?}"
    );
}

#[tokio::test]
async fn gemini_setup_is_idempotent_and_uninstall_restores_the_file() {
    let app = TestApp::spawn().await;
    let machine = Machine::new();
    machine.configure_gemini();
    let settings = machine.home.join(".gemini/settings.json");
    let original = std::fs::read(&settings).unwrap();
    machine.setup("gemini", &app.address, &app.token, &[]).await;
    let once = std::fs::read(&settings).unwrap();
    let text = String::from_utf8_lossy(&once).into_owned();
    assert!(
        text.contains("\"BeforeTool\"") && text.contains("run_shell_command|write_file|replace"),
        "{text}"
    );
    assert!(text.contains("\"timeout\": 330000"), "milliseconds: {text}");
    assert!(!text.contains(&app.token));
    let again = machine.setup("gemini", &app.address, &app.token, &[]).await;
    assert!(again.contains("unchanged"), "{again}");
    assert_eq!(std::fs::read(&settings).unwrap(), once);
    machine
        .setup("gemini", &app.address, &app.token, &["--uninstall"])
        .await;
    assert_eq!(std::fs::read(&settings).unwrap(), original, "byte for byte");
}
