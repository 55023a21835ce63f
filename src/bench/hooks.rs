//! `switchboard bench hooks`: how soon what Claude Code's hooks report shows in an open inbox,
//! and how soon what the person says reaches the model.
//!
//! 1. **Hook event → on page.** A real Chromium keeps a Claude Code session's page open;
//!    `PostToolUse` hook events are posted one at a time to `POST /api/v1/hooks/claude-code`
//!    (as Claude Code's http hook posts them, with an API key), and a MutationObserver in the
//!    page timestamps when each tool call appears. Reported from the hook's answer (the event
//!    is committed) and from its request.
//! 2. **Instruction → the model's next request.** The real Claude Code CLI (pinned, from npm,
//!    or `--claude`), configured as `switchboard setup claude-code` configures it, runs against
//!    the scripted model ([`super::model`]) on loopback. Each time Claude finishes, the Stop
//!    hook asks "what next?"; the bench answers it over REST and times until the model receives
//!    a request carrying the instruction (the hook's answer, Claude Code's own work, and its
//!    request). The model runs one (allowed) tool per instruction, as real work does, so
//!    that Claude Code's cap on continuations without a tool call is not what is measured; a
//!    run that ends anyway is followed by a new one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};
use uuid::Uuid;

use super::inbox::{Served, epoch_ms, npm_package, open_inbox, seen};
use super::model::{Model, Request, bash, text};
use super::{BenchDb, Latencies};
use crate::agents::setup::{self, ClaudeCode, Files, Scope};
use crate::auth::{api_keys, web_sessions};
use crate::commands::Scope as KeyScope;

/// The Claude Code release the bench drives (the tests pin the same).
pub const CLAUDE_CODE: &str = "@anthropic-ai/claude-code@2.1.332";

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Args, Debug, Clone)]
pub struct HooksArgs {
    /// Hook events to post while the session's page is open.
    #[arg(long, default_value_t = 200)]
    pub events: u32,
    /// Instructions to give Claude Code when it finishes.
    #[arg(long, default_value_t = 30)]
    pub instructions: u32,
    /// The Chromium to drive.
    #[arg(
        long,
        env = "SWITCHBOARD_CHROMIUM",
        default_value = "/usr/bin/chromium"
    )]
    pub chromium: PathBuf,
    /// The `claude` executable (default: the pinned release, installed with npm under the data
    /// directory).
    #[arg(long)]
    pub claude: Option<PathBuf>,
}

pub async fn run(db: &BenchDb, data_dir: &Path, args: &HooksArgs) -> Result<(), Error> {
    let playwright = npm_package(data_dir, super::inbox::PLAYWRIGHT_CORE, "playwright-core");
    let modules = playwright.await?;
    let claude = match &args.claude {
        Some(claude) => claude.clone(),
        None => npm_package(data_dir, CLAUDE_CODE, "@anthropic-ai/claude-code")
            .await?
            .join(".bin/claude"),
    };
    let served = Served::start(db).await?;
    let tenant = Uuid::new_v4();
    let (_, key) = api_keys::create(
        &db.pool,
        &served.keys,
        tenant,
        "bench",
        KeyScope::Agent,
        None,
    )
    .await?;
    let client = reqwest::Client::new();
    let rest = Rest {
        client: client.clone(),
        base: served.public_url.join("api/v1"),
        key: key.clone(),
    };

    let (on_page, from_request) = hook_to_page(db, &served, &rest, tenant, &modules, args).await?;
    eprintln!(
        "running Claude Code ({}) for {} instructions ...",
        claude.display(),
        args.instructions
    );
    let (instructed, runs) = instruction_to_model(&served, &rest, &key, &claude, args).await?;
    served.stop().await;

    println!(
        "Hooks benchmark: {} PostToolUse events into an open session page (headless Chromium), \
         {} instructions to Claude Code {} over {runs} run(s)",
        args.events,
        args.instructions,
        CLAUDE_CODE.rsplit('@').next().unwrap_or("")
    );
    if let Some(latency) = Latencies::of(on_page) {
        println!("  hook answered → on page:        {latency}");
    }
    if let Some(latency) = Latencies::of(from_request) {
        println!("  hook posted → on page:          {latency}");
    }
    if let Some(latency) = Latencies::of(instructed) {
        println!("  instruction → model's request:  {latency}");
    }
    Ok(())
}

/// The REST API with the bench's key.
struct Rest {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Rest {
    async fn get(&self, path: &str) -> Result<Value, Error> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?;
        Ok(response.error_for_status()?.json().await?)
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await?;
        Ok(response.error_for_status()?.json().await?)
    }
}

/// A PostToolUse hook event of Claude Code session `claude`, as Claude Code posts it.
fn tool_used(claude: &str, n: u32) -> Value {
    json!({
        "session_id": claude, "hook_event_name": "PostToolUse", "cwd": "/home/me/app",
        "transcript_path": "/home/me/.claude/projects/app/t.jsonl", "permission_mode": "default",
        "tool_name": "Bash", "tool_input": {"command": format!("cargo test --test t{n}")},
        "tool_response": {"stdout": "test result: ok", "stderr": "", "interrupted": false},
        "duration_ms": 1200,
    })
}

async fn hook_to_page(
    db: &BenchDb,
    served: &Served,
    rest: &Rest,
    tenant: Uuid,
    modules: &Path,
    args: &HooksArgs,
) -> Result<(Vec<Duration>, Vec<Duration>), Error> {
    let claude = format!("bench-{}", Uuid::new_v4());
    rest.post("/hooks/claude-code", &tool_used(&claude, 0))
        .await?;
    let session = crate::agents::claude_code::session_for(tenant, &claude);
    let link = web_sessions::create_link(&db.pool, tenant, 15).await?;
    let (mut browser, mut lines, _) = open_inbox(
        modules,
        &args.chromium,
        &served.public_url,
        &link.token,
        &format!("sessions/{session}"),
    )
    .await?;
    eprintln!(
        "session page open in Chromium; posting {} hook events ...",
        args.events
    );
    let (mut on_page, mut from_request) = (Vec::new(), Vec::new());
    for n in 1..=args.events {
        let posted = epoch_ms();
        rest.post("/hooks/claude-code", &tool_used(&claude, n))
            .await?;
        let answered = epoch_ms();
        let shown = seen(&mut lines, None, &format!("hook event {n}")).await?;
        on_page.push(Duration::from_secs_f64(
            ((shown - answered) / 1000.0).max(0.0),
        ));
        from_request.push(Duration::from_secs_f64(
            ((shown - posted) / 1000.0).max(0.0),
        ));
    }
    drop(browser.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), browser.wait()).await;
    Ok((on_page, from_request))
}

/// One person's machine for Claude Code: a home, its configuration, scratch, a project.
struct Machine {
    root: PathBuf,
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn instruction_to_model(
    served: &Served,
    rest: &Rest,
    key: &str,
    claude: &Path,
    args: &HooksArgs,
) -> Result<(Vec<Duration>, u32), Error> {
    let machine = Machine {
        root: std::env::temp_dir().join(format!("switchboard-bench-claude-{}", Uuid::new_v4())),
    };
    let (home, config, tmp, project) = (
        machine.root.join("home"),
        machine.root.join("home/.claude"),
        machine.root.join("tmp"),
        machine.root.join("project"),
    );
    for dir in [&home, &config, &tmp, &project] {
        std::fs::create_dir_all(dir)?;
    }
    let files = Files::of(Scope::User, Some(&config), &home, &project);
    let hooks = ClaudeCode::new(
        &served.public_url.join(""),
        &std::env::current_exe()?.display().to_string(),
        Duration::from_secs(60),
        Duration::from_secs(120),
    );
    setup::install(&files.settings, false, |doc| setup::add_hooks(doc, &hooks))?;
    setup::install(&files.mcp, false, |doc| setup::add_mcp(doc, &hooks))?;
    let model = Model::start(|r: &Request| {
        if !r.is_agent() {
            return vec![text("ok")].into();
        }
        // Each instruction runs a tool before Claude finishes: Claude Code stops continuing a
        // run after 8 consecutive Stop blocks without one.
        if r.tool_results().is_empty() {
            return vec![bash("echo working")].into();
        }
        vec![text(&format!("Done with turn {}.", r.turns()))].into()
    })
    .await;

    let mut samples = Vec::new();
    let mut runs = 0;
    let mut n = 0;
    while n < args.instructions {
        runs += 1;
        let mut child = tokio::process::Command::new(claude)
            .args([
                "-p",
                "Start the work",
                "--output-format",
                "stream-json",
                "--verbose",
                "--allowedTools",
                "Bash(echo working)",
            ])
            .current_dir(&project)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("CLAUDE_CONFIG_DIR", &config)
            .env("TMPDIR", &tmp)
            .env("ANTHROPIC_BASE_URL", &model.url)
            .env("ANTHROPIC_API_KEY", "sk-ant-scripted")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env(setup::KEY_VAR, key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", claude.display()))?;
        loop {
            // Claude finished: its "what next?" is open (or the run ended).
            let question = tokio::select! {
                question = next_question(rest) => question?,
                _ = child.wait() => break,
            };
            let instruction = format!("Instruction {n}: carry on");
            let answered_at = {
                let (session, id) = question;
                rest.post(
                    "/messages/user",
                    &json!({"agent_instance_id": session, "content": instruction,
                            "question_id": id}),
                )
                .await?;
                Instant::now()
            };
            let received = tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    let found = model
                        .agent_requests()
                        .into_iter()
                        .find(|r| Request(&r.body).last_user_text().contains(&instruction));
                    if let Some(found) = found {
                        return found.at;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .map_err(|_| format!("instruction {n} did not reach the model within 60 s"))?;
            samples.push(received.saturating_duration_since(answered_at));
            n += 1;
            if n == args.instructions {
                // Done: nobody says what next any more.
                let (session, id) = next_question(rest).await?;
                rest.post(
                    &format!("/sessions/{session}/questions/{id}/withdraw"),
                    &json!({"reason": "the benchmark is done"}),
                )
                .await?;
                let _ = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
                break;
            }
        }
    }
    model.stop();
    Ok((samples, runs))
}

/// The open "what next?" question (session, question), once there is one.
async fn next_question(rest: &Rest) -> Result<(Uuid, Uuid), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let sessions = rest.get("/sessions").await?;
        for s in sessions.as_array().into_iter().flatten() {
            if s["open_questions"].as_i64().unwrap_or(0) == 0 || s["agent_type"] != "claude-code" {
                continue;
            }
            let session = s["id"].as_str().unwrap_or_default();
            let open = rest
                .get(&format!("/sessions/{session}/questions?status=open"))
                .await?;
            if let Some(q) = open
                .as_array()
                .into_iter()
                .flatten()
                .find(|q| q["kind"] == "next_instruction")
            {
                let id = q["id"].as_str().unwrap_or_default();
                return Ok((Uuid::parse_str(session)?, Uuid::parse_str(id)?));
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err("Claude Code asked no \"what next?\" within 60 s".into())
}
