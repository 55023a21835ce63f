//! The real Gemini CLI (pinned, from npm), configured by `switchboard setup gemini` in an
//! isolated home, run headless (`gemini -p`, `--approval-mode yolo`: Switchboard's approval
//! is the gate) against a scripted Gemini API on loopback: a tool call runs only once the
//! person allows it, a refusal tells the model why, and the person's answer to "what next?"
//! continues the run.

mod common;

use common::TestApp;
use common::agents::{Machine, Model, approve_steer_continue, shown, touch_script};

#[tokio::test]
async fn gemini_asks_the_person_and_continues_with_their_instruction() {
    let app = TestApp::spawn().await;
    let model = Model::gemini(touch_script("blocked")).await;
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
    let session = approve_steer_continue(
        &app,
        "gemini-cli",
        &machine,
        &model,
        run,
        "functionResponse",
    )
    .await;
    let shown = shown(&app, session).await;
    assert!(shown[0].starts_with("Gemini CLI started"), "{shown:?}");
    assert!(shown.iter().any(|s| s == "Create first.txt"), "{shown:?}");
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
