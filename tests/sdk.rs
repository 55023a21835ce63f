//! The agent dashboard's own Python SDK runs its whole conversation against Switchboard,
//! unchanged: `tests/sdk/conversation.py`, for two releases — 1.3.16, contemporary with the
//! API this server mirrors, and 1.7.0, the newest tested. Each runs in a venv the test makes
//! (see `common::prereqs`); without Python or PyPI the test fails and says what to install.

mod common;

use common::TestApp;

/// What the SDK itself needs at runtime (it is installed with `--no-deps`, so that its
/// optional extras, which pull in servers and CLIs, stay out).
const SDK_RUNTIME: &[&str] = &[
    "requests==2.32.3",
    "aiohttp==3.10.11",
    "certifi==2024.8.30",
    "urllib3==2.2.3",
];

async fn conversation(version: &str) {
    let omnara = format!("omnara=={version}");
    let python = common::prereqs::python(
        &format!("omnara-{version}"),
        &[SDK_RUNTIME, &["--no-deps", &omnara]],
    );
    let app = TestApp::spawn().await;
    let output = tokio::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sdk/conversation.py"
        ))
        .arg(&app.address)
        .arg(&app.token)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "omnara {version}:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("SDK CONVERSATION OK"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_python_sdk_1_3_16_runs_its_whole_conversation_unchanged() {
    conversation("1.3.16").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_python_sdk_1_7_0_runs_its_whole_conversation_unchanged() {
    conversation("1.7.0").await;
}
