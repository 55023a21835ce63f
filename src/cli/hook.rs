//! `switchboard hook claude-code|codex|gemini`: a coding agent's hooks as a command hook,
//! answered from a Switchboard server over its REST API. The agent runs the command once per
//! hook event with the event as JSON on standard input and reads a decision, when there is
//! one, from standard output. What each event means is [`crate::agents::claude_code`]'s (the
//! server's `POST /api/v1/hooks/claude-code` serves the same as Claude Code's `http` hook);
//! this command adds what only the machine the agent runs on knows: the git branch and the
//! host name.
//!
//! A failure (server unreachable, key refused) exits 1, which the agents treat as a
//! non-blocking error (Gemini CLI then runs the tool: its approvals need the server up).

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::Outcome;
use super::ask::parse_duration;
use crate::agent_api::{Caller, Remote};
use crate::agents::agent::Agent;
use crate::agents::claude_code::{self, HookEvent, OnTimeout, Options, Surroundings};
use crate::config::ServerArgs;

/// At most this much of standard input is read: hook events are small.
const MAX_EVENT_BYTES: u64 = 4 << 20;

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Claude Code hooks: PermissionRequest asks the person; the person's messages reach
    /// Claude at SessionStart, UserPromptSubmit, PostToolUse and Stop; prompts, tool calls
    /// and final messages are shown; SessionEnd says Claude Code exited. Reads one hook event
    /// (JSON) on standard input.
    ClaudeCode(HookArgs),
    /// Codex hooks (`hooks.json`): PermissionRequest asks the person; the person's messages
    /// reach Codex at SessionStart, UserPromptSubmit, PostToolUse and Stop; prompts,
    /// commands and final messages are shown; SessionEnd says Codex exited.
    Codex(HookArgs),
    /// Gemini CLI hooks (`settings.json`): BeforeTool asks the person (a call nobody allowed
    /// in time is denied); the person's messages reach Gemini at SessionStart, BeforeAgent,
    /// AfterTool and AfterAgent; prompts, tool calls and final messages are shown.
    Gemini(HookArgs),
}

#[derive(Args, Debug)]
pub struct HookArgs {
    /// How long a permission request waits for the person: 90s, 10m, 1h. Keep it below the
    /// hook's `timeout` in the agent's settings.
    #[arg(long, value_parser = parse_duration, default_value = "50s")]
    timeout: Duration,

    /// What a permission request that nobody decided in time does: by default nothing (the
    /// agent decides as it would without Switchboard: Claude Code asks in its terminal);
    /// `deny` refuses the tool call (always so for Gemini CLI, which would run it).
    #[arg(long, value_enum)]
    on_timeout: Option<OnTimeout>,

    /// How long `Stop` (Gemini CLI: `AfterAgent`) waits for the person to say what to do next
    /// (0: it does not ask, and the agent stops unless the person already sent something).
    /// Keep it below the hook's `timeout`.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    stop_wait: Duration,

    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(command: HookCommand) -> Outcome {
    match command {
        HookCommand::ClaudeCode(args) => hook(Agent::ClaudeCode, args).await,
        HookCommand::Codex(args) => hook(Agent::Codex, args).await,
        HookCommand::Gemini(args) => hook(Agent::Gemini, args).await,
    }
}

async fn hook(agent: Agent, args: HookArgs) -> Outcome {
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_EVENT_BYTES)
        .read_to_string(&mut input)?;
    let event = HookEvent::parse(agent, &input)?;
    let client = args.server.client("hook")?;
    let session_id = agent.session_for(client.user_id().await?, &event.session_id);
    let surroundings = match event.hook_event_name.as_str() {
        "SessionStart" => Surroundings {
            branch: event.cwd.as_deref().and_then(git_branch),
            host: host_name(),
        },
        _ => Surroundings::default(),
    };
    let options = Options {
        agent,
        timeout: args.timeout,
        on_timeout: args.on_timeout,
        stop_wait: args.stop_wait,
    };
    let caller = Caller {
        context: None,
        agent_type: agent.agent_type().to_owned(),
        client: Some(agent.name().to_owned()),
    };
    let api = Remote::new(client);
    // The agent ends a hook it stopped waiting for: say so before going.
    let gone = CancellationToken::new();
    tokio::spawn({
        let gone = gone.clone();
        async move {
            let mut term = signal(SignalKind::terminate()).ok();
            let terminated = async {
                match &mut term {
                    Some(term) => drop(term.recv().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = terminated => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            gone.cancel();
        }
    });
    let output = claude_code::handle(
        &api,
        &caller,
        session_id,
        &event,
        &surroundings,
        &options,
        &gone,
    )
    .await?;
    let output = output.or_else(|| agent.nothing_to_say());
    if let Some(output) = output {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{output}")?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The git branch checked out in `cwd`, if it is a repository (asked of git, briefly).
fn git_branch(cwd: &str) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["-C", cwd, "rev-parse", "--abbrev-ref", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let branch = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !branch.is_empty()).then_some(branch)
}

/// This machine's name.
fn host_name() -> Option<String> {
    nix::unistd::gethostname().ok()?.into_string().ok()
}
