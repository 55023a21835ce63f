//! The real Claude Code CLI (pinned, from npm), configured by `switchboard setup claude-code`
//! in an isolated home, run headless against a scripted model on loopback: what the person
//! decides and says in Switchboard reaches the run, and what the run does shows in Switchboard.
//! (The inbox's view of such a run, in Chromium, is the `claude_code` browser scenario in
//! `tests/inbox.rs`.)

mod common;

use std::time::Duration;

use common::TestApp;
use common::claude::{Machine, finished};
use serde_json::{Value, json};
use switchboard::bench::model::{Gate, Model, Reply, Request, bash, text};
use uuid::Uuid;

/// Longer than any run here takes on a busy 2-core machine.
const RUN: Duration = Duration::from_secs(120);

/// The one session the run landed in.
async fn the_session(app: &TestApp) -> Uuid {
    for _ in 0..1200 {
        let sessions: Vec<Value> = app.get_json("/api/v1/sessions").await;
        if let Some(s) = sessions.first() {
            return s["id"].as_str().unwrap().parse().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Claude Code never reached Switchboard");
}

/// The session's open questions, once there are `n`.
async fn open_questions(app: &TestApp, session: Uuid, n: usize) -> Vec<Value> {
    for _ in 0..1200 {
        let open: Vec<Value> = app
            .get_json(&format!("/api/v1/sessions/{session}/questions?status=open"))
            .await;
        if open.len() >= n {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Claude Code never had {n} questions open");
}

async fn answer(app: &TestApp, session: Uuid, question: &Value, content: &str) {
    let response = app
        .post(
            "/api/v1/messages/user",
            &json!({"agent_instance_id": session, "content": content, "question_id": question["id"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn messages(app: &TestApp, session: Uuid) -> Vec<Value> {
    app.get_json(&format!("/api/v1/sessions/{session}/messages"))
        .await
}

/// A machine with Switchboard set up for Claude Code as a person does it.
async fn machine(app: &TestApp, permission_wait: &str, stop_wait: &str) -> Machine {
    let machine = Machine::new();
    machine
        .setup(
            &app.address,
            &app.token,
            &[
                "--permission-wait",
                permission_wait,
                "--stop-wait",
                stop_wait,
            ],
        )
        .await;
    machine
}

#[tokio::test]
async fn allow_runs_the_tool_and_deny_tells_the_model_why() {
    let app = TestApp::spawn().await;
    // The model asks to create a file, then says how it went.
    let model = Model::start(|r: &Request| {
        if !r.is_agent() {
            return vec![text("ok")].into();
        }
        let prompt = r.all_text();
        let file = if prompt.contains("Create allowed.txt") {
            "allowed.txt"
        } else {
            "denied.txt"
        };
        match r.tool_results().first() {
            None => vec![bash(&format!("touch {file}"))].into(),
            Some((_, _, true)) => vec![text("I was not allowed.")].into(),
            Some(_) => vec![text(&format!("Created {file}."))].into(),
        }
    })
    .await;
    let machine = machine(&app, "60s", "0s").await;

    let run = machine.claude(&model.url, &app.token, "Create allowed.txt", &[]);
    let session = the_session(&app).await;
    let open = open_questions(&app, session, 1).await;
    assert_eq!(open[0]["kind"], "approval");
    assert_eq!(open[0]["approval"]["input"]["command"], "touch allowed.txt");
    answer(&app, session, &open[0], "Allow").await;
    let done = finished(run, RUN).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    assert!(machine.file("allowed.txt").exists(), "the tool ran");

    // What the person sees: the prompt typed in the terminal, the question, the tool call,
    // Claude's final message, the exit.
    let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(row["title"], "Create allowed.txt", "{row}");
    assert_eq!(row["agent_type"], "claude-code");
    assert!(row["exited_at"].is_string(), "{row}");
    let said = messages(&app, session).await;
    let shown: Vec<(&str, &str)> = said
        .iter()
        .map(|m| {
            (
                m["sender_type"].as_str().unwrap(),
                m["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        shown[0].1.starts_with("Claude Code started (startup) in "),
        "{shown:?}"
    );
    assert_eq!(
        &shown[1..],
        [
            ("USER", "Create allowed.txt"),
            (
                "AGENT",
                "May I run this command?\n\n```\ntouch allowed.txt\n```"
            ),
            ("USER", "Allow"),
            ("AGENT", "Bash: touch allowed.txt"),
            ("AGENT", "Created allowed.txt."),
        ]
    );
    assert_eq!(said[1]["terminal"], true);
    assert_eq!(said[4]["activity"]["ok"], true);

    // Denied with a reason: the tool does not run and the model is told why.
    let run = machine.claude(&model.url, &app.token, "Create denied.txt", &[]);
    let second = loop {
        let sessions: Vec<Value> = app.get_json("/api/v1/sessions").await;
        if let Some(s) = sessions.iter().find(|s| s["id"] != json!(session)) {
            break s["id"].as_str().unwrap().parse::<Uuid>().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let open = open_questions(&app, second, 1).await;
    answer(&app, second, &open[0], "No: the build directory is shared").await;
    let done = finished(run, RUN).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    assert!(!machine.file("denied.txt").exists(), "the tool did not run");
    let told = model
        .agent_requests()
        .into_iter()
        .filter_map(|r| Request(&r.body).tool_results().into_iter().next())
        .find(|(_, _, error)| *error)
        .expect("the model heard of the denial");
    assert!(
        told.1.contains("No: the build directory is shared"),
        "the model's request carries the reason: {told:?}"
    );
}

/// "Always allow" allows the call and hands Claude Code back what it suggested (for `touch` in
/// a `-p` run: accept edits for the rest of the session): the next such call asks nobody.
#[tokio::test]
async fn always_allow_returns_claude_codes_suggestions() {
    let app = TestApp::spawn().await;
    let model = Model::start(|r: &Request| {
        if !r.is_agent() {
            return vec![text("ok")].into();
        }
        match r.all_tool_results().len() {
            0 => vec![bash("touch first.txt")].into(),
            1 => vec![bash("touch second.txt")].into(),
            _ => vec![text("Done.")].into(),
        }
    })
    .await;
    let machine = machine(&app, "60s", "0s").await;
    let run = machine.claude(&model.url, &app.token, "Touch two files", &[]);
    let session = the_session(&app).await;
    let open = open_questions(&app, session, 1).await;
    assert_eq!(
        open[0]["options"],
        json!(["Allow", "Always allow", "Deny"]),
        "Claude Code suggested something: {}",
        open[0]
    );
    answer(&app, session, &open[0], "Always allow").await;
    let done = finished(run, RUN).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    assert!(machine.file("first.txt").exists());
    assert!(machine.file("second.txt").exists(), "the second call ran");
    let asked: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/questions"))
        .await;
    assert_eq!(asked.len(), 1, "the second call asked nobody: {asked:?}");
}

/// Two tool calls in one turn ask twice, each answered on its own card, and each call gets
/// its own decision. (Claude Code 2.1.332 asks for the second once the first is decided, as
/// measured here; concurrent approvals of one session, answered newest first, are in
/// `tests/hooks.rs`.)
#[tokio::test]
async fn two_tool_calls_in_one_turn_get_their_own_decisions() {
    let app = TestApp::spawn().await;
    let model = Model::start(|r: &Request| {
        if !r.is_agent() {
            return vec![text("ok")].into();
        }
        if r.tool_results().is_empty() {
            vec![bash("touch a.txt"), bash("touch b.txt")].into()
        } else {
            vec![text("Done with both.")].into()
        }
    })
    .await;
    let machine = machine(&app, "60s", "0s").await;
    let run = machine.claude(&model.url, &app.token, "Create a.txt and b.txt", &[]);
    let session = the_session(&app).await;
    let command = |q: &Value| {
        q["approval"]["input"]["command"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = open_questions(&app, session, 1).await.remove(0);
    assert_eq!(command(&first), "touch a.txt");
    answer(&app, session, &first, "Allow").await;
    let second = loop {
        let open = open_questions(&app, session, 1).await;
        if open[0]["id"] != first["id"] {
            break open[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(command(&second), "touch b.txt");
    answer(&app, session, &second, "Deny").await;
    let done = finished(run, RUN).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    assert!(machine.file("a.txt").exists(), "allowed: ran");
    assert!(!machine.file("b.txt").exists(), "denied: did not run");
    let last = model.agent_requests().pop().unwrap();
    let results = Request(&last.body).all_tool_results();
    let outcomes: Vec<(&str, bool)> = results
        .iter()
        .map(|(id, _, error)| (id.as_str(), *error))
        .collect();
    assert_eq!(
        outcomes,
        [("toolu_0002_00", false), ("toolu_0002_01", true)]
    );
}

/// When Claude finishes, the session asks "what next?": the person's answer reaches the model
/// as its next instruction and the run goes on; when nobody answers, the question is withdrawn
/// and `claude` exits.
#[tokio::test]
async fn a_finished_run_continues_with_the_persons_next_instruction() {
    let app = TestApp::spawn().await;
    let model = Model::start(|r: &Request| {
        if !r.is_agent() {
            return vec![text("ok")].into();
        }
        if r.last_user_text().contains("Now write the changelog") {
            vec![text("The changelog is written.")].into()
        } else {
            vec![text("All tests pass.")].into()
        }
    })
    .await;
    let machine = machine(&app, "60s", "20s").await;
    let run = machine.claude(&model.url, &app.token, "Run the tests", &[]);
    let session = the_session(&app).await;
    let open = open_questions(&app, session, 1).await;
    assert_eq!(open[0]["kind"], "next_instruction");
    assert_eq!(open[0]["content"], "All tests pass.");
    let asked_for = std::time::Instant::now();
    answer(&app, session, &open[0], "Now write the changelog").await;

    // Nobody answers the next "what next?": withdrawn, and Claude Code exits.
    let done = finished(run, RUN).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    let continued = model
        .agent_requests()
        .into_iter()
        .find(|r| {
            Request(&r.body)
                .last_user_text()
                .contains("Now write the changelog")
        })
        .expect("the instruction reached the model");
    assert!(continued.at > asked_for);
    let questions: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/questions"))
        .await;
    assert_eq!(questions.len(), 2, "{questions:?}");
    assert_eq!(questions[0]["status"], "answered");
    assert_eq!(questions[1]["content"], "The changelog is written.");
    assert_eq!(questions[1]["status"], "withdrawn");
    assert_eq!(
        questions[1]["reason"],
        "nobody said what to do next within 20 s; Claude Code stopped"
    );
    let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert!(row["exited_at"].is_string());
}

/// Claude Code drops a Stop hook's continuation once it has continued a run too often without
/// a tool call (here after one, `CLAUDE_CODE_STOP_HOOK_BLOCK_CAP=1`; eight by default): the
/// person's instruction is not lost, it waits for the next run, which receives it.
#[tokio::test]
async fn an_instruction_claude_code_drops_waits_for_its_next_run() {
    let app = TestApp::spawn().await;
    let model = Model::start(|r: &Request| {
        if !r.is_agent() {
            return vec![text("ok")].into();
        }
        if r.all_text().contains("Tag the release") {
            vec![text("Tagged.")].into()
        } else {
            vec![text("Built.")].into()
        }
    })
    .await;
    let machine = machine(&app, "60s", "20s").await;
    let cap = [("CLAUDE_CODE_STOP_HOOK_BLOCK_CAP", "1")];
    let run = machine.claude_with(&model.url, &app.token, "Build it", &[], &cap);
    let session = the_session(&app).await;
    let open = open_questions(&app, session, 1).await;
    answer(&app, session, &open[0], "Tag the release").await;
    let done = finished(run, RUN).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    let heard = model
        .agent_requests()
        .iter()
        .any(|r| Request(&r.body).all_text().contains("Tag the release"));
    let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    if heard {
        // This Claude Code honoured the continuation: nothing was dropped.
        assert_eq!(row["unread_count"], 0, "{row}");
        return;
    }
    assert_eq!(
        row["unread_count"], 1,
        "the dropped instruction waits: {row}"
    );
    // The next run (resuming the session) receives it.
    let claude_session = done
        .stdout
        .lines()
        .find_map(|l| {
            serde_json::from_str::<Value>(l).ok()?["session_id"]
                .as_str()
                .map(str::to_owned)
        })
        .expect("claude printed its session id");
    let run = machine.claude(
        &model.url,
        &app.token,
        "Go on",
        &["--resume", &claude_session],
    );
    let done = finished(run, RUN).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    assert!(
        model
            .agent_requests()
            .iter()
            .any(|r| Request(&r.body).all_text().contains("Tag the release")),
        "the next run heard it"
    );
}

/// A message the person sends while Claude works reaches the model within one tool call.
#[tokio::test]
async fn a_message_sent_mid_run_reaches_the_model_within_one_tool_call() {
    let app = TestApp::spawn().await;
    let gate = Gate::new();
    let held = gate.clone();
    let model = Model::start(move |r: &Request| {
        if !r.is_agent() {
            return vec![text("ok")].into();
        }
        if r.tool_results().is_empty() {
            // Working: the tool call comes once the person has spoken.
            Reply {
                blocks: vec![bash("echo checking")],
                after: Some(held.clone()),
            }
        } else {
            vec![text("Understood, staging it is.")].into()
        }
    })
    .await;
    let machine = machine(&app, "60s", "0s").await;
    let run = machine.claude(&model.url, &app.token, "Deploy the app", &[]);
    let session = the_session(&app).await;
    while model.agent_requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = app
        .post(
            "/api/v1/messages/user",
            &json!({"agent_instance_id": session, "content": "Use staging, not production",
                    "mark_as_read": false, "question_id": null}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    gate.open();
    let done = finished(run, RUN).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    let requests = model.agent_requests();
    let after_the_tool = requests
        .iter()
        .find(|r| !Request(&r.body).tool_results().is_empty())
        .expect("the tool call's result reached the model");
    assert!(
        Request(&after_the_tool.body)
            .all_text()
            .contains("Use staging, not production"),
        "handed over with the tool call's result"
    );
    let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(row["unread_count"], 0, "delivered: {row}");
}

/// `setup` twice changes nothing; `--uninstall` brings the person's files back byte for byte.
#[tokio::test]
async fn setup_is_idempotent_and_uninstall_restores_the_files() {
    let app = TestApp::spawn().await;
    let machine = Machine::new();
    let settings = machine.config.join("settings.json");
    let original = "{\n    \"model\": \"opus\",\n    \"hooks\": {\"PostToolUse\": [{\"matcher\": \"Edit\", \"hooks\": [{\"type\": \"command\", \"command\": \"cargo fmt\"}]}]}\n}";
    std::fs::write(&settings, original).unwrap();
    let claude_json = machine.config.join(".claude.json");

    machine.setup(&app.address, &app.token, &[]).await;
    let once = std::fs::read(&settings).unwrap();
    let mcp_once = std::fs::read(&claude_json).unwrap();
    let written = String::from_utf8(once.clone()).unwrap();
    assert!(written.contains("cargo fmt"), "the person's hook stays");
    assert!(written.contains("/api/v1/hooks/claude-code"));
    assert!(!written.contains(&app.token), "the key is never written");
    assert!(!String::from_utf8_lossy(&mcp_once).contains(&app.token));
    let again = machine.setup(&app.address, &app.token, &[]).await;
    assert_eq!(std::fs::read(&settings).unwrap(), once, "unchanged");
    assert_eq!(std::fs::read(&claude_json).unwrap(), mcp_once, "unchanged");
    assert!(String::from_utf8_lossy(&again.stdout).contains("unchanged"));

    machine
        .setup(&app.address, &app.token, &["--uninstall"])
        .await;
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        original,
        "byte for byte"
    );
    assert!(!claude_json.exists(), "setup had created it");
    let leftovers: Vec<_> = std::fs::read_dir(&machine.config)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["settings.json"], "no backups left behind");
}

/// Claude Code with Switchboard's MCP server only (no hooks), `permission_prompt` as its
/// `--permission-prompt-tool`.
fn prompt_tool_run(
    app: &TestApp,
    machine: &Machine,
    model: &Model,
    prompt: &str,
    env: &[(&str, &str)],
) -> tokio::process::Child {
    let mcp = machine.root.join("mcp.json");
    // Claude Code speaks MCP 2026-07-28, which has no sessions: each run names its own
    // session for its permission prompts (Claude Code expands ${VAR} in MCP headers).
    let servers = json!({"mcpServers": {"switchboard": {
        "type": "http",
        "url": format!("{}/mcp", app.address),
        "headers": {
            "Authorization": format!("Bearer {}", app.token),
            "X-Switchboard-Session": "${RUN_NAME}",
        },
    }}});
    std::fs::write(&mcp, servers.to_string()).unwrap();
    machine.claude_with(
        &model.url,
        &app.token,
        prompt,
        &[
            "--mcp-config",
            mcp.to_str().unwrap(),
            "--strict-mcp-config",
            "--permission-prompt-tool",
            "mcp__switchboard__permission_prompt",
        ],
        env,
    )
}

/// The model asks to `touch` the file its prompt names, then says how it went.
async fn touch_model() -> Model {
    Model::start(|r: &Request| {
        if !r.is_agent() {
            return vec![text("ok")].into();
        }
        let file = if r.all_text().contains("late.txt") {
            "late.txt"
        } else {
            "early.txt"
        };
        match r.tool_results().first() {
            None => vec![bash(&format!("touch {file}"))].into(),
            Some((_, out, true)) => vec![text(&format!("Refused: {out}"))].into(),
            Some(_) => vec![text(&format!("Created {file}."))].into(),
        }
    })
    .await
}

/// `permission_prompt` waits for a decision as long as Claude Code holds the call: a decision
/// made after 65 s (past the MCP SDKs' 60 s default, past the 50 s question block) still runs
/// the tool. Progress notifications do not extend Claude Code's own `MCP_TOOL_TIMEOUT`: when
/// that runs out, Claude Code gives up on the call and the question is withdrawn, so nobody
/// allows a call that will not run.
#[tokio::test]
async fn permission_prompt_waits_as_long_as_claude_code_holds_the_call() {
    let mut config = switchboard::app::Config::default();
    config.mcp.progress_interval = Duration::from_secs(1);
    let app = TestApp::spawn_with(config).await;
    let model = touch_model().await;

    // Claude Code's tool timeout at 3 s, progress every second: it gives up at 3 s anyway.
    let machine = Machine::new();
    let timeout = [("MCP_TOOL_TIMEOUT", "3000"), ("RUN_NAME", "early run")];
    let run = prompt_tool_run(&app, &machine, &model, "Create early.txt", &timeout);
    let session = the_session(&app).await;
    let open = open_questions(&app, session, 1).await;
    let done = finished(run, RUN).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    assert!(
        done.stdout.contains("timed out after 3s"),
        "{}",
        done.stdout
    );
    assert!(!machine.file("early.txt").exists());
    let mut status = Value::Null;
    for _ in 0..600 {
        let all: Vec<Value> = app
            .get_json(&format!("/api/v1/sessions/{session}/questions"))
            .await;
        status = all.iter().find(|q| q["id"] == open[0]["id"]).unwrap()["status"].clone();
        if status != "open" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "withdrawn", "the abandoned call's question closes");

    // Claude Code's default timeout: the decision after 65 s reaches the call.
    let machine = Machine::new();
    let run = prompt_tool_run(
        &app,
        &machine,
        &model,
        "Create late.txt",
        &[("RUN_NAME", "late run")],
    );
    let late = loop {
        let sessions: Vec<Value> = app.get_json("/api/v1/sessions").await;
        if let Some(s) = sessions.iter().find(|s| s["id"] != json!(session)) {
            break s["id"].as_str().unwrap().parse::<Uuid>().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let open = open_questions(&app, late, 1).await;
    tokio::time::sleep(Duration::from_secs(65)).await;
    answer(&app, late, &open[0], "Allow").await;
    let done = finished(run, RUN).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    assert!(
        machine.file("late.txt").exists(),
        "the late decision reached the tool call: {}",
        done.stdout
    );
}
