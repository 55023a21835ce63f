//! The agent dashboard's own Python SDK (omnara 1.7.0, unchanged) runs its whole conversation
//! against Switchboard: `tests/sdk/conversation.py`.
//!
//! Needs a Python with the SDK: `SWITCHBOARD_SDK_PYTHON` (CI makes a venv with
//! `pip install --no-deps omnara==1.7.0 requests aiohttp certifi`), else `python3` if it can
//! import `omnara`. Without either the test says so and does not run the SDK.

mod common;

use common::TestApp;

fn sdk_python() -> Option<String> {
    if let Ok(python) = std::env::var("SWITCHBOARD_SDK_PYTHON") {
        return Some(python);
    }
    let probe = std::process::Command::new("python3")
        .args(["-c", "import omnara"])
        .output()
        .ok()?;
    probe.status.success().then(|| "python3".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_python_sdk_runs_its_whole_conversation_unchanged() {
    let Some(python) = sdk_python() else {
        eprintln!(
            "NOT RUN: no Python with the omnara SDK; set SWITCHBOARD_SDK_PYTHON (see .ci/run)"
        );
        return;
    };
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
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("SDK CONVERSATION OK"), "{stdout}");
}
