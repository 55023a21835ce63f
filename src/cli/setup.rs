//! `switchboard setup claude-code`: attach Claude Code to a Switchboard server with one
//! command (what it writes: [`crate::agents::setup`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::Outcome;
use super::ask::parse_duration;
use crate::agents::setup::{self, Change, ClaudeCode, Files, KEY_VAR, Scope};
use crate::client::Client;

#[derive(Subcommand, Debug)]
pub enum SetupCommand {
    /// Write Switchboard's hooks and MCP server into Claude Code's settings (merged with what
    /// is there; running it again changes nothing; `--uninstall` takes exactly them out).
    ClaudeCode(ClaudeCodeArgs),
}

#[derive(Args, Debug)]
pub struct ClaudeCodeArgs {
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
    }
}

async fn claude_code(args: ClaudeCodeArgs) -> Outcome {
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
    let would = if dry { "would be " } else { "" };
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
        let said = match change {
            Change::Created => format!("{would}created with Switchboard's {what}"),
            Change::Updated if args.uninstall => format!("{would}stripped of Switchboard's {what}"),
            Change::Updated => format!("{would}updated with Switchboard's {what}"),
            Change::Unchanged => "unchanged".to_owned(),
            Change::Restored => format!("{would}restored as it was before setup"),
            Change::Deleted => format!("{would}deleted (setup had created it)"),
            Change::Stripped { backup } => format!(
                "{would}stripped of Switchboard's {what}; it changed since setup, so its \
                 earlier copy stays in {}",
                backup.display()
            ),
        };
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
    println!(
        "\nPermission requests wait {} for a decision; a finished turn waits {} for what to do next.",
        words(args.permission_wait),
        words(args.stop_wait)
    );
    // The key is Claude Code's environment's, never a file's: check it works.
    match std::env::var(KEY_VAR) {
        Ok(key) if !key.is_empty() => {
            let client = Client::new(&config.url, &key, "switchboard-setup")?;
            match client.user_id().await {
                Ok(user) => println!("{KEY_VAR} works with {} (user {user}).", config.url),
                Err(e) => eprintln!(
                    "warning: {KEY_VAR} does not work with {} yet: {e}",
                    config.url
                ),
            }
        }
        _ => println!(
            "Claude Code needs {KEY_VAR} in its environment: the key `switchboard serve` \
             printed on first start, or a new one (`switchboard keys create --user <id> \
             --name claude-code`). Export it where you run `claude`: \
             export {KEY_VAR}=<the key>"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// "5 min", "0 s" (not asked).
fn words(wait: Duration) -> String {
    crate::domain::questions::seconds(wait)
}
