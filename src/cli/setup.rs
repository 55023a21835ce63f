//! `switchboard setup claude-code|codex|gemini`: attach a coding agent to a Switchboard server
//! with one command (what it writes: [`crate::agents::setup`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::Outcome;
use super::ask::parse_duration;
use crate::agents::agent::Agent;
use crate::agents::setup::{self, Change, ClaudeCode, CommandHooks, Files, KEY_VAR, Scope};
use crate::client::Client;

#[derive(Subcommand, Debug)]
pub enum SetupCommand {
    /// Write Switchboard's hooks and MCP server into Claude Code's settings (merged with what
    /// is there; running it again changes nothing; `--uninstall` takes exactly them out).
    ClaudeCode(SetupArgs),
    /// Write Switchboard's hooks into Codex's `hooks.json` and trust them in its
    /// `config.toml` (Codex runs no hook that is not trusted); `--uninstall` takes them out.
    Codex(SetupArgs),
    /// Write Switchboard's hooks into Gemini CLI's `settings.json`; `--uninstall` takes them
    /// out.
    Gemini(SetupArgs),
}

#[derive(Args, Debug)]
pub struct SetupArgs {
    /// `user`: `$CLAUDE_CONFIG_DIR` (else `~/.claude/settings.json` and `~/.claude.json`);
    /// `project`: `.claude/settings.json` and `.mcp.json` of the project.
    #[arg(long, value_enum, default_value = "user")]
    scope: Scope,

    /// The Switchboard server, as Claude Code reaches it.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = "http://localhost:8080")]
    url: String,

    /// The project directory (`--scope project`).
    #[arg(long, default_value = ".")]
    project: PathBuf,

    /// How long a permission request waits for the person before Claude Code asks in its
    /// terminal.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    permission_wait: Duration,

    /// How long Claude waits, once it has finished, for the person to say what to do next
    /// (0: it stops at once).
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    stop_wait: Duration,

    /// Take Switchboard's hooks and MCP server out again (the files come back byte for byte
    /// when nothing else changed in them).
    #[arg(long)]
    uninstall: bool,

    /// Say what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(command: SetupCommand) -> Outcome {
    match command {
        SetupCommand::ClaudeCode(args) => claude_code(args).await,
        SetupCommand::Codex(args) => command_hooks(Agent::Codex, args).await,
        SetupCommand::Gemini(args) => command_hooks(Agent::Gemini, args).await,
    }
}

/// What happened to a file, in words.
fn said(change: Change, what: &str, uninstall: bool, dry: bool) -> String {
    let would = if dry { "would be " } else { "" };
    match change {
        Change::Created => format!("{would}created with Switchboard's {what}"),
        Change::Updated if uninstall => format!("{would}stripped of Switchboard's {what}"),
        Change::Updated => format!("{would}updated with Switchboard's {what}"),
        Change::Unchanged => "unchanged".to_owned(),
        Change::Restored => format!("{would}restored as it was before setup"),
        Change::Deleted => format!("{would}deleted (setup had created it)"),
        Change::Stripped { backup } => format!(
            "{would}stripped of Switchboard's {what}; it changed since setup, so its earlier \
             copy stays in {}",
            backup.display()
        ),
    }
}

/// Codex or Gemini CLI: command hooks (and, for Codex, their trust).
async fn command_hooks(agent: Agent, args: SetupArgs) -> Outcome {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or("HOME is not set: the agent's settings are found from it")?;
    let project = std::path::absolute(&args.project)?;
    let executable = std::env::current_exe()?.display().to_string();
    let config = CommandHooks::new(
        agent,
        &args.url,
        &executable,
        args.permission_wait,
        args.stop_wait,
    );
    let dry = args.dry_run;
    let events: Vec<&str> = config.hooks().iter().map(|(event, _, _)| *event).collect();
    let what = format!("hooks ({})", events.join(", "));
    let mut changes = Vec::new();
    match agent {
        Agent::Codex => {
            let codex_home = std::env::var_os("CODEX_HOME").map(PathBuf::from);
            let (hooks_file, config_file) =
                setup::codex_files(args.scope, codex_home.as_deref(), &home, &project);
            let hooks_file = std::path::absolute(&hooks_file)?;
            let before = setup::read_json(&hooks_file)?
                .map(|doc| setup::codex_trust(&hooks_file, &doc))
                .unwrap_or_default();
            let (hooks, trust) = if args.uninstall {
                let hooks = setup::uninstall(&hooks_file, dry, setup::remove_hooks)?;
                let trust = setup::uninstall_text(&config_file, dry, |text| {
                    setup::edit_codex_trust(text, &before, &[])
                })?;
                (hooks, trust)
            } else {
                let mut after = Vec::new();
                let hooks = setup::install(&hooks_file, dry, |doc| {
                    setup::put_hooks(doc, config.hooks())?;
                    after = setup::codex_trust(&hooks_file, doc);
                    Ok(())
                })?;
                let trust = setup::install_text(&config_file, dry, |text| {
                    setup::edit_codex_trust(text, &before, &after)
                })?;
                (hooks, trust)
            };
            changes.push((hooks_file, hooks, what.clone()));
            changes.push((config_file, trust, format!("trust of its {what}")));
        }
        _ => {
            let settings = setup::gemini_settings(args.scope, &home, &project);
            let change = if args.uninstall {
                setup::uninstall(&settings, dry, setup::remove_hooks)?
            } else {
                setup::install(&settings, dry, |doc| setup::put_hooks(doc, config.hooks()))?
            };
            changes.push((settings, change, what.clone()));
        }
    }
    for (path, change, what) in changes {
        println!(
            "{}: {}",
            path.display(),
            said(change, &what, args.uninstall, dry)
        );
    }
    if dry && !args.uninstall {
        println!("\nEach hook runs `{}`.", config.command_line());
    }
    if args.uninstall {
        return Ok(ExitCode::SUCCESS);
    }
    waits(&args);
    if agent == Agent::Gemini {
        println!(
            "Gemini CLI's hooks cannot allow a tool call it would ask about: run it with \
             `--approval-mode yolo` (or a policy that allows {}) and Switchboard's approval \
             is the gate; a call nobody allowed in time is denied.",
            setup::GEMINI_GATED_TOOLS.replace('|', ", ")
        );
    }
    check_key(agent, &config.url).await;
    Ok(ExitCode::SUCCESS)
}

/// The key is the agent's environment's, never a file's: check it works.
async fn check_key(agent: Agent, url: &str) {
    match std::env::var(KEY_VAR) {
        Ok(key) if !key.is_empty() => match Client::new(url, &key, "switchboard-setup") {
            Ok(client) => match client.user_id().await {
                Ok(user) => println!("{KEY_VAR} works with {url} (user {user})."),
                Err(e) => eprintln!("warning: {KEY_VAR} does not work with {url} yet: {e}"),
            },
            Err(e) => eprintln!("warning: {e}"),
        },
        _ => println!(
            "{} needs {KEY_VAR} in its environment: the key `switchboard serve` printed on \
             first start, or a new one (`switchboard keys create --user <id> --name {}`). \
             Export it where you run it: export {KEY_VAR}=<the key>",
            agent.name(),
            agent.command()
        ),
    }
}

async fn claude_code(args: SetupArgs) -> Outcome {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or("HOME is not set: Claude Code's settings are found from it")?;
    let config_dir = std::env::var_os("CLAUDE_CONFIG_DIR").map(PathBuf::from);
    let project = std::path::absolute(&args.project)?;
    let files = Files::of(args.scope, config_dir.as_deref(), &home, &project);
    let executable = std::env::current_exe()?.display().to_string();
    let config = ClaudeCode::new(&args.url, &executable, args.permission_wait, args.stop_wait);
    let dry = args.dry_run;
    let (hooks, mcp) = if args.uninstall {
        (
            setup::uninstall(&files.settings, dry, setup::remove_hooks)?,
            setup::uninstall(&files.mcp, dry, setup::remove_mcp)?,
        )
    } else {
        (
            setup::install(&files.settings, dry, |doc| setup::add_hooks(doc, &config))?,
            setup::install(&files.mcp, dry, |doc| setup::add_mcp(doc, &config))?,
        )
    };
    let events: Vec<&str> = config.hooks().iter().map(|(event, _, _)| *event).collect();
    for (path, change, what) in [
        (
            &files.settings,
            hooks,
            format!("hooks ({})", events.join(", ")),
        ),
        (
            &files.mcp,
            mcp,
            format!("MCP server \"{}\"", setup::MCP_NAME),
        ),
    ] {
        let said = said(change, &what, args.uninstall, dry);
        println!("{}: {said}", path.display());
    }
    if dry && !args.uninstall {
        println!(
            "\nThe hooks post to {} (SessionStart runs `{}`).",
            config.hook_url(),
            config.command_line()
        );
    }
    if args.uninstall {
        return Ok(ExitCode::SUCCESS);
    }
    waits(&args);
    check_key(Agent::ClaudeCode, &config.url).await;
    Ok(ExitCode::SUCCESS)
}

/// How long the hooks wait, in words.
fn waits(args: &SetupArgs) {
    println!(
        "\nPermission requests wait {} for a decision; a finished turn waits {} for what to do next.",
        words(args.permission_wait),
        words(args.stop_wait)
    );
}

/// "5 min", "0 s" (not asked).
fn words(wait: Duration) -> String {
    crate::domain::questions::seconds(wait)
}
