//! The real Claude Code CLI (pinned, installed from npm under `target/prereqs` on first use),
//! run headless against the scripted model ([`super::model`]) with everything isolated per run
//! (`HOME`, `CLAUDE_CONFIG_DIR`, `TMPDIR`, the project directory) and configured the way a
//! person would: by `switchboard setup claude-code`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use uuid::Uuid;

use super::prereqs;

/// The Claude Code release the tests drive (`CLAUDE-CODE.md` measured it).
pub const CLAUDE_CODE: &str = "@anthropic-ai/claude-code@2.1.332";

/// The `claude` executable.
pub fn executable() -> PathBuf {
    let dir = prereqs::npm("claude-code", &[CLAUDE_CODE]);
    let claude = dir.join("node_modules/.bin/claude");
    assert!(
        claude.exists(),
        "npm installed {CLAUDE_CODE} without its `claude` executable in {}: its install \
         script links it (run npm without --ignore-scripts)",
        dir.display()
    );
    claude
}

/// One person's machine: a home, Claude Code's configuration, a scratch folder and a project.
pub struct Machine {
    pub root: PathBuf,
    pub home: PathBuf,
    pub config: PathBuf,
    pub tmp: PathBuf,
    pub project: PathBuf,
}

impl Machine {
    pub fn new() -> Machine {
        let root = std::env::temp_dir().join(format!("sb-claude-{}", Uuid::new_v4().simple()));
        let machine = Machine {
            home: root.join("home"),
            config: root.join("home/.claude"),
            tmp: root.join("tmp"),
            project: root.join("project"),
            root,
        };
        for dir in [
            &machine.home,
            &machine.config,
            &machine.tmp,
            &machine.project,
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        machine
    }

    /// `switchboard setup claude-code` as the person runs it (user scope), plus `args`.
    pub async fn setup(&self, server: &str, key: &str, args: &[&str]) -> std::process::Output {
        let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["setup", "claude-code", "--url", server])
            .args(args)
            .env("HOME", &self.home)
            .env("CLAUDE_CONFIG_DIR", &self.config)
            .env("SWITCHBOARD_API_KEY", key)
            .env_remove("SWITCHBOARD_URL")
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "setup failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// `claude -p <prompt>` against `model`, reaching Switchboard with `key`.
    pub fn claude(&self, model: &str, key: &str, prompt: &str, args: &[&str]) -> Child {
        self.claude_with(model, key, prompt, args, &[])
    }

    /// [`Machine::claude`] with more environment variables.
    pub fn claude_with(
        &self,
        model: &str,
        key: &str,
        prompt: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Child {
        Command::new(executable())
            .args(["-p", prompt, "--output-format", "stream-json", "--verbose"])
            .args(args)
            .current_dir(&self.project)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CLAUDE_CONFIG_DIR", &self.config)
            .env("TMPDIR", &self.tmp)
            .env("ANTHROPIC_BASE_URL", model)
            .env("ANTHROPIC_API_KEY", "sk-ant-scripted")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("SWITCHBOARD_API_KEY", key)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("claude starts")
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.project.join(name)
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What a finished run printed.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Wait for `claude` to exit (within `limit`).
pub async fn finished(child: Child, limit: Duration) -> Run {
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("claude exits in time")
        .unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The text of a file, when it exists.
pub fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}
