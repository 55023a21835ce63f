//! The real Codex CLI (pinned, from npm), configured by `switchboard setup codex` in an
//! isolated home, run headless (`codex exec`, approvals asked for) against a scripted
//! Responses API on loopback: its approvals are the person's, its finished turns ask what
//! next, and the person's answer continues the run.

mod common;

use common::TestApp;
use common::agents::{Machine, Model, approve_steer_continue, shown, touch_script};

#[tokio::test]
async fn codex_asks_the_person_and_continues_with_their_instruction() {
    let app = TestApp::spawn().await;
    let model = Model::responses(touch_script("Rejected")).await;
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
    let session =
        approve_steer_continue(&app, "codex", &machine, &model, run, "function_call_output").await;
    let shown = shown(&app, session).await;
    assert!(shown[0].starts_with("Codex started"), "{shown:?}");
    assert!(shown.iter().any(|s| s == "Create first.txt"), "{shown:?}");
    assert!(
        shown.iter().any(|s| s.starts_with("Bash: touch first.txt")),
        "{shown:?}"
    );
}

#[tokio::test]
async fn codex_setup_is_idempotent_and_uninstall_restores_the_files() {
    let app = TestApp::spawn().await;
    let model = Model::responses(touch_script("Rejected")).await;
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
