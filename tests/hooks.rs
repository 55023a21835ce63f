//! Claude Code's hooks, as both transports serve them: `switchboard hook claude-code` (a
//! command hook, over REST) and `POST /api/v1/hooks/claude-code` (an `http` hook, in the
//! server). Every scenario runs through each, fed the documented hook JSON (`CLAUDE-CODE.md`
//! lists what the real CLI sends; `tests/claude_code.rs` drives the real CLI).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestApp;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How a hook event reaches Switchboard.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Command,
    Http,
}

const BOTH: [Via; 2] = [Via::Command, Via::Http];

/// How the hook is configured (the command's flags, the endpoint's query).
#[derive(Clone, Copy, Debug, Default)]
struct Opts {
    timeout: Option<u64>,
    deny: bool,
    stop_wait: Option<u64>,
}

const QUICK: Opts = Opts {
    timeout: Some(1),
    deny: false,
    stop_wait: None,
};

/// What a test needs to reach the server from a task of its own.
#[derive(Clone)]
struct Server {
    address: String,
    token: String,
    client: reqwest::Client,
}

impl Server {
    fn of(app: &TestApp) -> Server {
        Server {
            address: app.address.clone(),
            token: app.token.clone(),
            client: app.client.clone(),
        }
    }
}

/// Fire one hook event; its output when it has one (`None`: it decides nothing). Started now,
/// awaited by the caller.
fn fire(app: &TestApp, via: Via, event: &Value, opts: Opts) -> JoinHandle<Option<Value>> {
    let server = Server::of(app);
    let event = event.clone();
    tokio::spawn(async move {
        match via {
            Via::Command => command(&server, &event, opts).await,
            Via::Http => http(&server, &event, opts).await,
        }
    })
}

async fn command(server: &Server, event: &Value, opts: Opts) -> Option<Value> {
    let mut args = vec![
        "hook".to_owned(),
        "claude-code".to_owned(),
        "--url".to_owned(),
        server.address.clone(),
        "--api-key".to_owned(),
        server.token.clone(),
    ];
    if let Some(t) = opts.timeout {
        args.extend(["--timeout".to_owned(), format!("{t}s")]);
    }
    if opts.deny {
        args.extend(["--on-timeout".to_owned(), "deny".to_owned()]);
    }
    if let Some(t) = opts.stop_wait {
        args.extend(["--stop-wait".to_owned(), format!("{t}s")]);
    }
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(&args)
        .env_remove("SWITCHBOARD_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&serde_json::to_vec(event).unwrap())
        .await
        .unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the hook finishes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the hook failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    (!stdout.trim().is_empty()).then(|| serde_json::from_str(&stdout).unwrap())
}

fn hook_url(server: &Server, opts: Opts) -> String {
    let mut query = Vec::new();
    if let Some(t) = opts.timeout {
        query.push(format!("timeout={t}"));
    }
    if opts.deny {
        query.push("on_timeout=deny".to_owned());
    }
    if let Some(t) = opts.stop_wait {
        query.push(format!("stop_wait={t}"));
    }
    format!(
        "{}/api/v1/hooks/claude-code?{}",
        server.address,
        query.join("&")
    )
}

async fn http(server: &Server, event: &Value, opts: Opts) -> Option<Value> {
    let response = server
        .client
        .post(hook_url(server, opts))
        .bearer_auth(&server.token)
        .json(event)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    (body != json!({})).then_some(body)
}

async fn decided(hook: JoinHandle<Option<Value>>) -> Option<Value> {
    tokio::time::timeout(Duration::from_secs(60), hook)
        .await
        .expect("the hook finishes")
        .unwrap()
}

/// The documented input of a hook event, as Claude Code sends it.
fn event(session: &str, name: &str, fields: Value) -> Value {
    let mut event = json!({
        "session_id": session,
        "transcript_path": "/home/me/.claude/projects/app/transcript.jsonl",
        "cwd": "/home/me/app",
        "permission_mode": "default",
        "hook_event_name": name,
    });
    event
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    event
}

/// A fresh Claude Code session id for `via`.
fn claude_session(via: Via) -> String {
    format!("{via:?}-{}", Uuid::new_v4())
}

async fn messages(app: &TestApp, session: Uuid) -> Vec<Value> {
    app.get_json(&format!("/api/v1/sessions/{session}/messages"))
        .await
}

async fn questions(app: &TestApp, session: Uuid) -> Vec<Value> {
    app.get_json(&format!("/api/v1/sessions/{session}/questions"))
        .await
}

/// The session whose latest open question is the `n`th open one (waiting until there are `n`).
async fn open_questions(app: &TestApp, session: Uuid, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let open: Vec<Value> = app
            .get_json(&format!("/api/v1/sessions/{session}/questions?status=open"))
            .await;
        if open.len() >= n {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} questions were never open in {session}");
}

/// The session Claude Code's `claude` session landed in (there is exactly one with it).
async fn session_of(app: &TestApp, claude: &str) -> Uuid {
    for _ in 0..400 {
        let sessions: Vec<Value> = app.get_json("/api/v1/sessions").await;
        for s in &sessions {
            let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
            if id == switchboard::agents::claude_code::session_for(app.tenant, claude) {
                return id;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no session for {claude}");
}

/// The person says `content`, answering `question` (or nothing when `None`).
async fn say(app: &TestApp, session: Uuid, content: &str, question: Option<Uuid>, extra: Value) {
    let mut body = json!({"agent_instance_id": session, "content": content,
                          "mark_as_read": false, "question_id": question});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let response = app
        .post("/api/v1/messages/user", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

fn id(value: &Value) -> Uuid {
    value["id"].as_str().unwrap().parse().unwrap()
}

fn permission(claude: &str, command: &str) -> Value {
    event(
        claude,
        "PermissionRequest",
        json!({"tool_name": "Bash", "tool_input": {"command": command, "description": "Run it"},
               "permission_suggestions": [{"type": "addRules", "behavior": "allow",
                   "rules": [{"toolName": "Bash", "ruleContent": command}],
                   "destination": "localSettings"}]}),
    )
}

#[tokio::test]
async fn a_permission_request_asks_the_person_and_returns_their_decision() {
    let app = TestApp::spawn().await;
    for via in BOTH {
        let claude = claude_session(via);
        let start = event(&claude, "SessionStart", json!({"source": "startup"}));
        assert_eq!(
            decided(fire(&app, via, &start, Opts::default())).await,
            None
        );
        let session = session_of(&app, &claude).await;

        // The person edits the command, then allows it.
        let asking = fire(&app, via, &permission(&claude, "npm test"), Opts::default());
        let open = open_questions(&app, session, 1).await;
        assert_eq!(open[0]["kind"], "approval", "{via:?}");
        let said = messages(&app, session).await;
        let question = said.last().unwrap();
        assert_eq!(question["approval"]["tool_name"], "Bash");
        assert_eq!(
            question["approval"]["input"],
            json!({"command": "npm test", "description": "Run it"})
        );
        assert_eq!(
            question["options"],
            json!(["Allow", "Always allow", "Deny"])
        );
        say(
            &app,
            session,
            "Allow",
            Some(id(&open[0])),
            json!({"updated_input": {"command": "npm test -- --quiet"}}),
        )
        .await;
        assert_eq!(
            decided(asking).await,
            Some(
                json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                "decision": {"behavior": "allow",
                             "updatedInput": {"command": "npm test -- --quiet"}}}})
            ),
            "{via:?}"
        );

        // "Always allow": allowed, and Claude Code's own suggestion is the rule it adds.
        let asking = fire(
            &app,
            via,
            &permission(&claude, "npm run lint"),
            Opts::default(),
        );
        let open = open_questions(&app, session, 1).await;
        say(&app, session, "Always allow", Some(id(&open[0])), json!({})).await;
        let out = decided(asking).await.unwrap();
        assert_eq!(
            out["hookSpecificOutput"]["decision"],
            json!({"behavior": "allow",
                   "updatedInput": {"command": "npm run lint", "description": "Run it"},
                   "updatedPermissions": [{"type": "addRules", "behavior": "allow",
                       "rules": [{"toolName": "Bash", "ruleContent": "npm run lint"}],
                       "destination": "localSettings"}]}),
            "{via:?}"
        );

        // Denied with a reason.
        let asking = fire(
            &app,
            via,
            &permission(&claude, "rm -rf build"),
            Opts::default(),
        );
        let open = open_questions(&app, session, 1).await;
        say(&app, session, "Not now", Some(id(&open[0])), json!({})).await;
        let out = decided(asking).await.unwrap();
        assert_eq!(
            out["hookSpecificOutput"]["decision"],
            json!({"behavior": "deny", "message": "Not now"})
        );

        // Nobody decides: nothing decided (Claude Code asks in its terminal), or a denial when
        // told to; either way the question is withdrawn, saying why.
        assert_eq!(
            decided(fire(&app, via, &permission(&claude, "make"), QUICK)).await,
            None
        );
        let deny = Opts {
            deny: true,
            ..QUICK
        };
        let out = decided(fire(&app, via, &permission(&claude, "make"), deny)).await;
        assert_eq!(
            out.unwrap()["hookSpecificOutput"]["decision"]["behavior"],
            "deny"
        );
        let asked = questions(&app, session).await;
        let closed: Vec<(&str, &str)> = asked
            .iter()
            .map(|q| {
                (
                    q["status"].as_str().unwrap(),
                    q["reason"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            closed,
            [
                ("answered", ""),
                ("answered", ""),
                ("answered", ""),
                (
                    "withdrawn",
                    "nobody decided within 1 s; Claude Code asks in its terminal instead"
                ),
                (
                    "withdrawn",
                    "nobody decided within 1 s; the hook denied the tool call"
                ),
            ],
            "{via:?}"
        );
        for q in &asked[3..] {
            assert_eq!(q["closed_by"], "agent");
            assert!(
                q["expires_at"].is_string(),
                "the server would expire it too"
            );
        }
    }
}

/// PermissionRequest carries no `tool_use_id`: each hook call is its own question, and the
/// answer goes back to the call that asked. Two identical calls in parallel ask twice.
#[tokio::test]
async fn parallel_permission_requests_each_get_their_own_decision() {
    let app = TestApp::spawn().await;
    for via in BOTH {
        let claude = claude_session(via);
        let first = fire(&app, via, &permission(&claude, "touch a"), Opts::default());
        let session = session_of(&app, &claude).await;
        open_questions(&app, session, 1).await;
        let second = fire(&app, via, &permission(&claude, "touch b"), Opts::default());
        let twin = fire(&app, via, &permission(&claude, "touch b"), Opts::default());
        let open = open_questions(&app, session, 3).await;
        let commands: Vec<&str> = open
            .iter()
            .map(|q| q["approval"]["input"]["command"].as_str().unwrap())
            .collect();
        assert_eq!(commands, ["touch a", "touch b", "touch b"], "{via:?}");
        // Answered newest first: each call gets the decision made on its own card.
        say(&app, session, "Deny", Some(id(&open[2])), json!({})).await;
        say(&app, session, "Allow", Some(id(&open[1])), json!({})).await;
        say(&app, session, "Allow", Some(id(&open[0])), json!({})).await;
        let behavior = |out: Option<Value>| {
            out.unwrap()["hookSpecificOutput"]["decision"]["behavior"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(behavior(decided(first).await), "allow");
        let mut twins = [
            behavior(decided(second).await),
            behavior(decided(twin).await),
        ];
        twins.sort();
        assert_eq!(twins, ["allow", "deny"], "one call each: {via:?}");
    }
}

/// What the person sent is never dropped by a hook event: handed to Claude Code where the
/// event's output can carry it, else left unread for the next event that can.
#[tokio::test]
async fn the_persons_messages_reach_claude_code_at_the_next_hook_that_can_carry_them() {
    let app = TestApp::spawn().await;
    for via in BOTH {
        let claude = claude_session(via);
        let run = |name: &'static str, fields: Value| {
            let (app, claude) = (&app, claude.clone());
            async move { decided(fire(app, via, &event(&claude, name, fields), QUICK)).await }
        };
        assert_eq!(
            run("SessionStart", json!({"source": "startup"})).await,
            None
        );
        let session = session_of(&app, &claude).await;
        let unread = || {
            let app = &app;
            async move {
                let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
                row["unread_count"].as_i64().unwrap()
            }
        };
        let context = |out: Option<Value>, event: &str| -> String {
            let out = out.unwrap_or_else(|| panic!("{event} handed nothing over"));
            assert_eq!(out["hookSpecificOutput"]["hookEventName"], event, "{out}");
            out["hookSpecificOutput"]["additionalContext"]
                .as_str()
                .unwrap()
                .to_owned()
        };

        // Events whose output cannot carry messages leave them unread.
        say(&app, session, "STOP: do not touch prod", None, json!({})).await;
        assert_eq!(
            run("Notification", json!({"message": "waiting"})).await,
            None
        );
        assert_eq!(run("PreToolUse", json!({"tool_name": "Bash"})).await, None);
        assert_eq!(unread().await, 1, "{via:?}");

        // Those that can hand them over do, once.
        let out = run("SessionStart", json!({"source": "resume"})).await;
        assert!(context(out, "SessionStart").contains("STOP: do not touch prod"));
        assert_eq!(unread().await, 0);
        say(&app, session, "use the staging database", None, json!({})).await;
        let out = run(
            "UserPromptSubmit",
            json!({"prompt": "fix the login bug", "prompt_id": "p1"}),
        )
        .await;
        assert!(context(out, "UserPromptSubmit").contains("use the staging database"));
        assert_eq!(
            run("UserPromptSubmit", json!({"prompt": "again"})).await,
            None
        );
        say(&app, session, "and add a test", None, json!({})).await;
        let out = run(
            "PostToolUse",
            json!({"tool_name": "Bash", "tool_input": {"command": "cargo test"},
                   "tool_response": {"stdout": "ok", "stderr": "", "interrupted": false},
                   "duration_ms": 1200}),
        )
        .await;
        assert!(context(out, "PostToolUse").contains("and add a test"));
        say(
            &app,
            session,
            "one more thing: the changelog",
            None,
            json!({}),
        )
        .await;
        let out = run(
            "Stop",
            json!({"stop_hook_active": false, "last_assistant_message": "Done."}),
        )
        .await
        .unwrap();
        assert_eq!(out["decision"], "block", "{out}");
        assert!(
            out["reason"]
                .as_str()
                .unwrap()
                .contains("one more thing: the changelog")
        );
        assert_eq!(
            run("Stop", json!({"stop_hook_active": true})).await,
            None,
            "no block without a message"
        );

        // A permission request does not take them either.
        say(&app, session, "careful with migrations", None, json!({})).await;
        assert_eq!(
            decided(fire(&app, via, &permission(&claude, "make migrate"), QUICK)).await,
            None
        );
        assert_eq!(unread().await, 1);

        // Claude Code exits: what it asked is withdrawn, the session goes on, and the message
        // waits for its next run, which receives it.
        assert_eq!(
            run("SessionEnd", json!({"reason": "prompt_input_exit"})).await,
            None
        );
        let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
        assert_eq!(row["status"], "ACTIVE", "{row}");
        assert!(row["exited_at"].is_string(), "{row}");
        assert_eq!(row["unread_count"], 1);
        let out = run("SessionStart", json!({"source": "resume"})).await;
        assert!(context(out, "SessionStart").contains("careful with migrations"));
        let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
        assert!(row["exited_at"].is_null(), "it runs again: {row}");
    }
}

/// What the person sees of a Claude Code session: where it runs, what they typed in the
/// terminal (as theirs, marked so, naming the session), each tool call compactly, Claude's
/// final message, and that the process exited.
#[tokio::test]
async fn the_session_shows_prompts_tool_calls_and_final_messages() {
    let app = TestApp::spawn().await;
    for via in BOTH {
        let claude = claude_session(via);
        let run = |name: &'static str, fields: Value| {
            let (app, claude) = (&app, claude.clone());
            async move { decided(fire(app, via, &event(&claude, name, fields), QUICK)).await }
        };
        // A prompt may come first (the hooks were installed mid-session).
        run(
            "UserPromptSubmit",
            json!({"prompt": "Fix the login bug\nIt fails on empty passwords."}),
        )
        .await;
        let session = session_of(&app, &claude).await;
        run(
            "PostToolUse",
            json!({"tool_name": "Bash",
                   "tool_input": {"command": "cargo test", "description": "Run the tests"},
                   "tool_response": {"stdout": "x".repeat(50_000), "stderr": "",
                                     "interrupted": false},
                   "duration_ms": 4321}),
        )
        .await;
        run(
            "PostToolUse",
            json!({"tool_name": "Edit",
                   "tool_input": {"file_path": "/home/me/app/src/login.rs",
                                  "old_string": "a", "new_string": "b"},
                   "tool_response": {"filePath": "/home/me/app/src/login.rs"}}),
        )
        .await;
        run(
            "PostToolUse",
            json!({"tool_name": "Bash", "tool_input": {"command": "false"},
                   "tool_response": {"stdout": "", "stderr": "exit 1", "interrupted": true}}),
        )
        .await;
        run(
            "PostToolUseFailure",
            json!({"tool_name": "Bash", "tool_input": {"command": "cat missing.txt"},
                   "tool_use_id": "toolu_9", "is_interrupt": false,
                   "error": "cat: missing.txt: No such file or directory"}),
        )
        .await;
        run(
            "Stop",
            json!({"stop_hook_active": false,
                   "last_assistant_message": "Fixed: empty passwords are refused.\n\n- `login.rs`"}),
        )
        .await;
        run("SessionEnd", json!({"reason": "other"})).await;

        let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
        assert_eq!(row["title"], "Fix the login bug", "{row}");
        assert_eq!(row["cwd"], "/home/me/app");
        assert_eq!(row["project"], "app");
        assert_eq!(row["agent_type"], "claude-code");
        let said = messages(&app, session).await;
        let typed: Vec<&Value> = said.iter().filter(|m| m["sender_type"] == "USER").collect();
        assert_eq!(typed.len(), 1, "{said:?}");
        assert_eq!(
            typed[0]["content"],
            "Fix the login bug\nIt fails on empty passwords."
        );
        assert_eq!(typed[0]["terminal"], true);
        let activity: Vec<&Value> = said.iter().filter_map(|m| m.get("activity")).collect();
        assert_eq!(activity.len(), 4, "{via:?}");
        assert_eq!(activity[0]["tool"], "Bash");
        assert_eq!(activity[0]["summary"], "cargo test");
        assert_eq!(activity[0]["ok"], true);
        assert_eq!(activity[0]["duration_ms"], 4321);
        assert_eq!(
            activity[0]["output"].as_str().unwrap().chars().count(),
            2000,
            "output is bounded"
        );
        assert_eq!(activity[1]["summary"], "/home/me/app/src/login.rs");
        assert_eq!(activity[2]["ok"], false);
        assert_eq!(activity[3]["ok"], false);
        assert_eq!(
            activity[3]["output"],
            "cat: missing.txt: No such file or directory"
        );
        let steps: Vec<&str> = said
            .iter()
            .filter(|m| m["sender_type"] == "AGENT")
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                "Claude Code is working",
                "Bash: cargo test",
                "Edit: /home/me/app/src/login.rs",
                "Bash: false",
                "Bash failed: cat missing.txt",
                "Fixed: empty passwords are refused.\n\n- `login.rs`",
            ],
            "{via:?}"
        );
    }
}

/// With `stop_wait`, a finished turn asks "what next?": the person's answer continues the run
/// as a block; nobody answering withdraws the question and lets Claude stop.
#[tokio::test]
async fn a_finished_turn_asks_what_next_and_the_answer_continues_the_run() {
    let app = TestApp::spawn().await;
    for via in BOTH {
        let claude = claude_session(via);
        let stop = event(
            &claude,
            "Stop",
            json!({"stop_hook_active": false, "last_assistant_message": "All tests pass."}),
        );
        let waiting = Opts {
            stop_wait: Some(60),
            ..Opts::default()
        };
        let asking = fire(&app, via, &stop, waiting);
        let session = session_of(&app, &claude).await;
        let open = open_questions(&app, session, 1).await;
        assert_eq!(open[0]["kind"], "next_instruction", "{via:?}");
        let said = messages(&app, session).await;
        assert_eq!(said.last().unwrap()["content"], "All tests pass.");
        say(
            &app,
            session,
            "Now update the README",
            Some(id(&open[0])),
            json!({}),
        )
        .await;
        let out = decided(asking).await.unwrap();
        assert_eq!(out["decision"], "block");
        assert!(
            out["reason"]
                .as_str()
                .unwrap()
                .contains("Now update the README"),
            "{out}"
        );

        // Nobody answers: withdrawn, saying why, and Claude stops.
        let quick = Opts {
            stop_wait: Some(1),
            ..Opts::default()
        };
        assert_eq!(decided(fire(&app, via, &stop, quick)).await, None);
        let asked = questions(&app, session).await;
        let last = asked.last().unwrap();
        assert_eq!(last["status"], "withdrawn");
        assert_eq!(
            last["reason"],
            "nobody said what to do next within 1 s; Claude Code stopped"
        );

        // Something already said is what to do next: no question.
        say(&app, session, "then the changelog", None, json!({})).await;
        let out = decided(fire(&app, via, &stop, waiting)).await.unwrap();
        assert!(
            out["reason"]
                .as_str()
                .unwrap()
                .contains("then the changelog")
        );
        assert_eq!(questions(&app, session).await.len(), 2);

        // An instruction Claude Code dropped (it ends a run after eight continuations in a
        // row without a tool call) is not lost: the exit puts it back, and the next run gets it.
        let asking = fire(&app, via, &stop, waiting);
        let open = open_questions(&app, session, 1).await;
        say(
            &app,
            session,
            "Then deploy to staging",
            Some(id(&open[0])),
            json!({}),
        )
        .await;
        assert!(decided(asking).await.is_some());
        let end = event(&claude, "SessionEnd", json!({"reason": "other"}));
        assert_eq!(decided(fire(&app, via, &end, QUICK)).await, None);
        let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
        assert_eq!(row["unread_count"], 1, "{row}");
        let resume = event(&claude, "SessionStart", json!({"source": "resume"}));
        let out = decided(fire(&app, via, &resume, QUICK)).await.unwrap();
        assert!(
            out["hookSpecificOutput"]["additionalContext"]
                .as_str()
                .unwrap()
                .contains("Then deploy to staging"),
            "{out}"
        );
        // Acted on, it stays acted on: exiting again returns nothing.
        assert_eq!(decided(fire(&app, via, &end, QUICK)).await, None);
        let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
        assert_eq!(row["unread_count"], 0, "{row}");
    }
}

async fn events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_hook_input_is_a_clear_4xx_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let started = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "agent_type": "claude-code", "content": "hi"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let before = events(&app).await;

    // What the hooks send over REST is checked as strictly.
    for (body, field) in [
        (
            json!({"agent_instance_id": session, "content": "typed", "terminal": true,
                   "question_id": Uuid::new_v4()}),
            "question_id",
        ),
        (
            json!({"agent_instance_id": session, "content": "x", "activity": {"tool": " ", "ok": true}}),
            "activity.tool",
        ),
        (
            json!({"agent_instance_id": session, "content": "x",
                   "activity": {"tool": "Bash", "ok": true, "output": "x".repeat(2001)}}),
            "activity.output",
        ),
    ] {
        let path = if body.get("terminal").is_some() {
            "/api/v1/messages/user"
        } else {
            "/api/v1/messages/agent"
        };
        let response = app.post(path, &body).send().await.unwrap();
        assert_eq!(response.status(), 422);
        let detail: Value = response.json().await.unwrap();
        assert!(
            detail["detail"].as_str().unwrap().starts_with(field),
            "{detail}"
        );
    }

    let url = hook_url(&Server::of(&app), Opts::default());
    let send = |body: reqwest::Body, url: String, token: Option<String>| {
        let client = app.client.clone();
        async move {
            let mut request = client
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    let token = Some(app.token.clone());
    let cases: Vec<(&str, reqwest::Body, String, Option<String>, u16)> =
        vec![
        ("not JSON", "{".into(), url.clone(), token.clone(), 400),
        ("not a hook event", r#"{"hello":1}"#.into(), url.clone(), token.clone(), 422),
        (
            "no session id",
            r#"{"session_id":" ","hook_event_name":"Stop"}"#.into(),
            url.clone(),
            token.clone(),
            422,
        ),
        (
            "a session id with control characters",
            r#"{"session_id":"a\u0000b","hook_event_name":"Stop"}"#.into(),
            url.clone(),
            token.clone(),
            422,
        ),
        (
            "a permission request without a tool",
            r#"{"session_id":"s","hook_event_name":"PermissionRequest"}"#.into(),
            url.clone(),
            token.clone(),
            422,
        ),
        (
            "too large",
            format!(
                r#"{{"session_id":"s","hook_event_name":"Stop","last_assistant_message":"{}"}}"#,
                "x".repeat(3 << 20)
            )
            .into(),
            url.clone(),
            token.clone(),
            413,
        ),
        (
            "a wait that is not a number",
            r#"{"session_id":"s","hook_event_name":"Stop"}"#.into(),
            format!("{url}timeout=soon"),
            token.clone(),
            422,
        ),
        (
            "a wait too long",
            r#"{"session_id":"s","hook_event_name":"Stop"}"#.into(),
            format!("{url}stop_wait=1e9"),
            token.clone(),
            422,
        ),
        (
            "an unknown on_timeout",
            r#"{"session_id":"s","hook_event_name":"Stop"}"#.into(),
            format!("{url}on_timeout=allow"),
            token.clone(),
            422,
        ),
        (
            "no key",
            r#"{"session_id":"s","hook_event_name":"Stop"}"#.into(),
            url.clone(),
            None,
            401,
        ),
    ];
    for (what, body, url, token, expected) in cases {
        let (status, body) = send(body, url, token).await;
        assert_eq!(status, expected, "{what}: {body}");
        assert!(body["detail"].is_string(), "{what}: a JSON error: {body}");
    }
    assert_eq!(events(&app).await, before, "nothing was appended");
}

/// Claude Code gives up on an http hook by dropping its request: the question the hook asked
/// is withdrawn then and there (not left for the sweeper), saying so.
#[tokio::test]
async fn an_http_hook_dropped_by_claude_code_withdraws_its_question() {
    let app = TestApp::spawn().await;
    let claude = claude_session(Via::Http);
    let request = app
        .client
        .post(hook_url(&Server::of(&app), Opts::default()))
        .bearer_auth(&app.token)
        .json(&permission(&claude, "touch x"))
        .timeout(Duration::from_millis(1500))
        .send();
    let session = {
        let asked = tokio::spawn(request);
        let session = session_of(&app, &claude).await;
        open_questions(&app, session, 1).await;
        assert!(asked.await.unwrap().is_err(), "the client gave up");
        session
    };
    for _ in 0..200 {
        let asked = questions(&app, session).await;
        if asked[0]["status"] == "withdrawn" {
            assert_eq!(
                asked[0]["reason"],
                "the hook was stopped before anyone answered"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the question stayed open");
}
