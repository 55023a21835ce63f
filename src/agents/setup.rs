//! What `switchboard setup claude-code|codex|gemini` writes into the agent's settings, and how
//! it takes it out again. Claude Code: the hooks (SessionStart as a command hook, which is all
//! Claude Code runs there; every other event as an `http` hook) and the MCP server. Codex
//! (`hooks.json`, plus its trust of those hooks in `config.toml`: Codex runs no hook a person
//! has not trusted) and Gemini CLI (`settings.json`): command hooks, which is all they run.
//!
//! The key is never written: the http hooks send `Bearer $SWITCHBOARD_API_KEY`, which
//! Claude Code fills from its environment because `allowedEnvVars` lists it; the command hook
//! and the MCP server read the same variable. Entries are Switchboard's by what they call (the
//! hook endpoint, `hook claude-code`, the MCP server named `switchboard`), so running setup
//! again replaces them in place and `--uninstall` removes exactly them. Before a file is first
//! changed its bytes are kept beside it (`<file>.switchboard-backup`); uninstalling restores
//! them byte for byte when nothing else changed in the file since.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::agent::Agent;
use super::json::Json;

/// Where Claude Code's http hooks post.
pub const HOOK_PATH: &str = "/api/v1/hooks/claude-code";
/// The environment variable that carries the key, for every entry setup writes.
pub const KEY_VAR: &str = "SWITCHBOARD_API_KEY";
/// The name of the MCP server setup adds.
pub const MCP_NAME: &str = "switchboard";
/// How long the quick hooks (logging, handing messages over) may take.
const QUICK_HOOK: Duration = Duration::from_secs(30);
/// A waiting hook's Claude Code timeout exceeds its wait by this: the server answers first.
const HOOK_MARGIN: Duration = Duration::from_secs(30);
/// What a backup of a file is called: the file's name and this.
const BACKUP_SUFFIX: &str = ".switchboard-backup";

/// Whose settings: the person's (every project) or one project's (shared through its
/// repository: it names the server, never the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    User,
    Project,
}

/// The files setup edits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Files {
    /// Hooks go here (`settings.json`).
    pub settings: PathBuf,
    /// The MCP server goes here (`.claude.json` for the user, `.mcp.json` for a project).
    pub mcp: PathBuf,
}

impl Files {
    /// User scope: `$CLAUDE_CONFIG_DIR/settings.json` and `$CLAUDE_CONFIG_DIR/.claude.json`
    /// when the variable is set, else `~/.claude/settings.json` and `~/.claude.json`. Project
    /// scope: `<project>/.claude/settings.json` and `<project>/.mcp.json`.
    pub fn of(scope: Scope, config_dir: Option<&Path>, home: &Path, project: &Path) -> Files {
        match (scope, config_dir) {
            (Scope::User, Some(dir)) => Files {
                settings: dir.join("settings.json"),
                mcp: dir.join(".claude.json"),
            },
            (Scope::User, None) => Files {
                settings: home.join(".claude").join("settings.json"),
                mcp: home.join(".claude.json"),
            },
            (Scope::Project, _) => Files {
                settings: project.join(".claude").join("settings.json"),
                mcp: project.join(".mcp.json"),
            },
        }
    }
}

/// The Claude Code configuration for one Switchboard server.
#[derive(Clone, Debug)]
pub struct ClaudeCode {
    /// The server, as Claude Code reaches it (no trailing slash).
    pub url: String,
    /// The `switchboard` executable the command hook runs.
    pub executable: String,
    /// How long a permission request waits for the person.
    pub permission_wait: Duration,
    /// How long a finished turn waits for what to do next (zero: it does not ask).
    pub stop_wait: Duration,
}

impl ClaudeCode {
    pub fn new(
        url: &str,
        executable: &str,
        permission_wait: Duration,
        stop_wait: Duration,
    ) -> Self {
        ClaudeCode {
            url: url.trim_end_matches('/').to_owned(),
            executable: executable.to_owned(),
            permission_wait,
            stop_wait,
        }
    }

    /// Each event's matcher (for tool events) and hook, in the order Claude Code runs them.
    pub fn hooks(&self) -> Vec<(&'static str, Option<&'static str>, Json)> {
        let quick = self.http(QUICK_HOOK);
        vec![
            ("SessionStart", None, self.command()),
            ("UserPromptSubmit", None, quick.clone()),
            ("PostToolUse", Some("*"), quick.clone()),
            ("PostToolUseFailure", Some("*"), quick.clone()),
            (
                "PermissionRequest",
                Some("*"),
                self.http(self.permission_wait + HOOK_MARGIN),
            ),
            ("Stop", None, self.http(self.stop_wait + HOOK_MARGIN)),
            ("Notification", None, quick.clone()),
            ("SessionEnd", None, quick),
        ]
    }

    /// The hook endpoint, with the waits.
    pub fn hook_url(&self) -> String {
        format!(
            "{}{HOOK_PATH}?timeout={}&stop_wait={}",
            self.url,
            self.permission_wait.as_secs(),
            self.stop_wait.as_secs()
        )
    }

    fn http(&self, timeout: Duration) -> Json {
        Json::Object(vec![
            ("type".into(), Json::str("http")),
            ("url".into(), Json::String(self.hook_url())),
            (
                "headers".into(),
                Json::Object(vec![(
                    "Authorization".into(),
                    Json::String(format!("Bearer ${KEY_VAR}")),
                )]),
            ),
            (
                "allowedEnvVars".into(),
                Json::Array(vec![Json::str(KEY_VAR)]),
            ),
            ("timeout".into(), Json::Number(timeout.as_secs().into())),
        ])
    }

    /// The command SessionStart runs (the key comes from the environment).
    pub fn command_line(&self) -> String {
        format!(
            "{} hook claude-code --url {}",
            shell_quote(&self.executable),
            shell_quote(&self.url)
        )
    }

    fn command(&self) -> Json {
        Json::Object(vec![
            ("type".into(), Json::str("command")),
            ("command".into(), Json::String(self.command_line())),
            ("timeout".into(), Json::Number(QUICK_HOOK.as_secs().into())),
        ])
    }

    /// The MCP server entry.
    pub fn mcp_server(&self) -> Json {
        Json::Object(vec![
            ("type".into(), Json::str("http")),
            ("url".into(), Json::String(format!("{}/mcp", self.url))),
            (
                "headers".into(),
                Json::Object(vec![(
                    "Authorization".into(),
                    Json::String(format!("Bearer ${{{KEY_VAR}}}")),
                )]),
            ),
        ])
    }
}

/// `text` as one word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=@%+,".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Command hooks for an agent that runs only those (Codex, Gemini CLI): `switchboard hook
/// <agent>` for each event, the key from the environment.
#[derive(Clone, Debug)]
pub struct CommandHooks {
    pub agent: Agent,
    /// The server, as the agent's machine reaches it (no trailing slash).
    pub url: String,
    /// The `switchboard` executable the hooks run.
    pub executable: String,
    /// How long a permission request waits for the person.
    pub permission_wait: Duration,
    /// How long a finished turn waits for what to do next (zero: it does not ask).
    pub stop_wait: Duration,
}

/// The longest Codex lets a SessionEnd hook run.
const CODEX_SESSION_END: Duration = Duration::from_secs(3);

/// The Gemini CLI tools whose calls the person approves (its own policy asks about these).
pub const GEMINI_GATED_TOOLS: &str = "run_shell_command|write_file|replace";

impl CommandHooks {
    pub fn new(
        agent: Agent,
        url: &str,
        executable: &str,
        permission_wait: Duration,
        stop_wait: Duration,
    ) -> CommandHooks {
        CommandHooks {
            agent,
            url: url.trim_end_matches('/').to_owned(),
            executable: executable.to_owned(),
            permission_wait,
            stop_wait,
        }
    }

    /// The command each hook runs (the key comes from the environment).
    pub fn command_line(&self) -> String {
        format!(
            "{} hook {} --url {} --timeout {}s --stop-wait {}s",
            shell_quote(&self.executable),
            self.agent.command(),
            shell_quote(&self.url),
            self.permission_wait.as_secs(),
            self.stop_wait.as_secs()
        )
    }

    /// Each event's matcher (for tool events) and hook, in the agent's own event names.
    pub fn hooks(&self) -> Vec<(&'static str, Option<&'static str>, Json)> {
        let permission = self.command(self.permission_wait + HOOK_MARGIN);
        let stop = self.command(self.stop_wait + HOOK_MARGIN);
        let quick = self.command(QUICK_HOOK);
        match self.agent {
            Agent::Codex => vec![
                ("SessionStart", None, quick.clone()),
                ("UserPromptSubmit", None, quick.clone()),
                ("PostToolUse", None, quick.clone()),
                ("PermissionRequest", None, permission),
                ("Stop", None, stop),
                // Codex allows SessionEnd at most 3 s (and trusts what it clamped no more).
                ("SessionEnd", None, self.command(CODEX_SESSION_END)),
            ],
            _ => vec![
                ("SessionStart", None, quick.clone()),
                ("BeforeAgent", None, quick.clone()),
                ("AfterTool", Some("*"), quick.clone()),
                ("BeforeTool", Some(GEMINI_GATED_TOOLS), permission),
                ("AfterAgent", None, stop),
                ("Notification", None, quick.clone()),
                ("SessionEnd", None, quick),
            ],
        }
    }

    fn command(&self, timeout: Duration) -> Json {
        let mut hook = vec![
            ("type".into(), Json::str("command")),
            ("command".into(), Json::String(self.command_line())),
        ];
        match self.agent {
            // Gemini CLI counts in milliseconds, and shows the hook's name.
            Agent::Gemini => {
                hook.insert(0, ("name".into(), Json::str(MCP_NAME)));
                let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
                hook.push(("timeout".into(), Json::Number(ms.into())));
            }
            _ => hook.push(("timeout".into(), Json::Number(timeout.as_secs().into()))),
        }
        Json::Object(hook)
    }
}

/// The settings files of Codex: `hooks.json` in `$CODEX_HOME` (else `~/.codex`) or the
/// project's `.codex/`; `config.toml` (the person's own, where Codex keeps which hooks they
/// trust) is always `$CODEX_HOME`'s.
pub fn codex_files(
    scope: Scope,
    codex_home: Option<&Path>,
    home: &Path,
    project: &Path,
) -> (PathBuf, PathBuf) {
    let user = codex_home.map_or_else(|| home.join(".codex"), Path::to_path_buf);
    let hooks = match scope {
        Scope::User => user.join("hooks.json"),
        Scope::Project => project.join(".codex").join("hooks.json"),
    };
    (hooks, user.join("config.toml"))
}

/// Gemini CLI's settings: `~/.gemini/settings.json`, or the project's `.gemini/settings.json`.
pub fn gemini_settings(scope: Scope, home: &Path, project: &Path) -> PathBuf {
    match scope {
        Scope::User => home.join(".gemini").join("settings.json"),
        Scope::Project => project.join(".gemini").join("settings.json"),
    }
}

/// Codex's trust of Switchboard's hooks in `hooks` (the document at `path`): for each, the
/// key Codex files it under (`<file>:<event>:<group>:<handler>`) and the hash of what was
/// trusted (SHA-256 of the group's canonical JSON, as Codex computes it: sorted keys, the
/// default `async` and `timeout` filled in). A changed hook is not trusted until setup runs.
pub fn codex_trust(path: &Path, doc: &Json) -> Vec<(String, String)> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&doc.pretty()) else {
        return Vec::new();
    };
    let mut trusted = Vec::new();
    let events = doc["hooks"].as_object().into_iter().flatten();
    for (event, groups) in events {
        let snake = snake_case(event);
        for (g, group) in groups.as_array().into_iter().flatten().enumerate() {
            for (h, handler) in group["hooks"].as_array().into_iter().flatten().enumerate() {
                if !is_ours(&Json::parse(&handler.to_string()).unwrap_or_else(|_| Json::object())) {
                    continue;
                }
                let mut handler = handler.clone();
                handler["async"] = handler.get("async").cloned().unwrap_or(false.into());
                handler["timeout"] = handler.get("timeout").cloned().unwrap_or(600.into());
                let mut hashed = serde_json::json!({"event_name": snake, "hooks": [handler]});
                if let Some(matcher) = group.get("matcher") {
                    hashed["matcher"] = matcher.clone();
                }
                // serde_json's map is sorted by key: this is the canonical form.
                let digest = Sha256::digest(hashed.to_string().as_bytes());
                let key = format!("{}:{snake}:{g}:{h}", path.display());
                trusted.push((key, format!("sha256:{}", hex::encode(digest))));
            }
        }
    }
    trusted
}

/// `PermissionRequest` → `permission_request`.
fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

/// Put `trust` into Codex's `config.toml` text (`[hooks.state."<key>"] trusted_hash = …`),
/// taking out `stale` (the keys of Switchboard's hooks before); the rest of the file is kept
/// as it was, comments and all.
pub fn edit_codex_trust(
    text: &str,
    stale: &[(String, String)],
    trust: &[(String, String)],
) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| shape("config.toml", &format!("not TOML ({e})")))?;
    let hooks = doc
        .entry("hooks")
        .or_insert_with(|| {
            let mut table = toml_edit::Table::new();
            table.set_implicit(true);
            toml_edit::Item::Table(table)
        })
        .as_table_mut()
        .ok_or_else(|| shape("config.toml", "hooks is not a table"))?;
    let state = hooks
        .entry("state")
        .or_insert_with(|| {
            let mut table = toml_edit::Table::new();
            table.set_implicit(true);
            toml_edit::Item::Table(table)
        })
        .as_table_mut()
        .ok_or_else(|| shape("config.toml", "hooks.state is not a table"))?;
    for (key, _) in stale {
        state.remove(key);
    }
    for (key, hash) in trust {
        let mut entry = toml_edit::Table::new();
        entry.insert("trusted_hash", toml_edit::value(hash.as_str()));
        state.insert(key, toml_edit::Item::Table(entry));
    }
    if state.is_empty() {
        hooks.remove("state");
    }
    if hooks.is_empty() {
        doc.remove("hooks");
    }
    Ok(doc.to_string())
}

/// Whether a hook entry is one setup writes.
fn is_ours(hook: &Json) -> bool {
    let field = |key: &str| hook.get(key).and_then(Json::as_str).unwrap_or("");
    match field("type") {
        "http" => field("url").contains(HOOK_PATH),
        "command" => [Agent::ClaudeCode, Agent::Codex, Agent::Gemini]
            .iter()
            .any(|agent| {
                field("command").contains(&format!(" hook {} ", agent.command()))
                    || field("command").ends_with(&format!(" hook {}", agent.command()))
            }),
        _ => false,
    }
}

/// A matcher group's hooks that are not Switchboard's; whether it had any that were.
fn without_ours(group: &Json) -> (Json, bool) {
    let mut group = group.clone();
    let mut had = false;
    if let Some(Json::Array(hooks)) = group.get_mut("hooks") {
        let before = hooks.len();
        hooks.retain(|h| !is_ours(h));
        had = hooks.len() != before;
    }
    (group, had)
}

fn group_is_empty(group: &Json) -> bool {
    matches!(group.get("hooks"), Some(Json::Array(hooks)) if hooks.is_empty())
}

/// Take Switchboard's hooks out of one event's matcher groups; where the first of them was.
fn strip_event(groups: &mut Vec<Json>) -> Option<usize> {
    let mut first = None;
    let mut kept = Vec::with_capacity(groups.len());
    for group in groups.drain(..) {
        let (stripped, had) = without_ours(&group);
        if had && first.is_none() {
            first = Some(kept.len());
        }
        if !(had && group_is_empty(&stripped)) {
            kept.push(stripped);
        }
    }
    *groups = kept;
    first
}

/// Settings that are not what Claude Code reads (setup changes nothing then).
fn shape(file: &str, what: &str) -> String {
    format!("{file}: {what}; fix or move it and run setup again (nothing was changed)")
}

/// Put Claude Code's hooks for `config` into the settings `doc`, replacing Switchboard's
/// earlier ones in place and leaving every other hook as it is.
pub fn add_hooks(doc: &mut Json, config: &ClaudeCode) -> Result<(), String> {
    put_hooks(doc, config.hooks())
}

/// Put `wanted` (event, matcher, hook) into the settings `doc` (Claude Code's, Codex's
/// `hooks.json` or Gemini CLI's: the same shape), replacing Switchboard's earlier ones in place
/// and leaving every other hook as it is.
pub fn put_hooks(
    doc: &mut Json,
    wanted: Vec<(&'static str, Option<&'static str>, Json)>,
) -> Result<(), String> {
    let hooks = doc
        .object_at("hooks")
        .ok_or_else(|| shape("settings", "\"hooks\" is not an object"))?;
    if let Json::Object(events) = hooks {
        // Events setup no longer writes lose what it wrote before.
        for (event, groups) in events.iter_mut() {
            if let Json::Array(groups) = groups
                && !wanted.iter().any(|(e, _, _)| e == event)
            {
                strip_event(groups);
            }
        }
    }
    for (event, matcher, hook) in wanted {
        let mut group = Json::object();
        if let Some(matcher) = matcher {
            group.set("matcher", Json::str(matcher));
        }
        group.set("hooks", Json::Array(vec![hook]));
        if hooks.get(event).is_none() {
            hooks.set(event, Json::Array(Vec::new()));
        }
        let Some(Json::Array(groups)) = hooks.get_mut(event) else {
            return Err(shape("settings", &format!("hooks.{event} is not a list")));
        };
        match strip_event(groups) {
            Some(at) => groups.insert(at, group),
            None => groups.push(group),
        }
    }
    Ok(())
}

/// Take Switchboard's hooks out of the settings `doc` (emptied lists and objects go too).
pub fn remove_hooks(doc: &mut Json) {
    let Some(Json::Object(events)) = doc.get_mut("hooks") else {
        return;
    };
    let mut emptied = Vec::new();
    for (event, groups) in events.iter_mut() {
        if let Json::Array(list) = groups
            && strip_event(list).is_some()
            && list.is_empty()
        {
            emptied.push(event.clone());
        }
    }
    events.retain(|(event, _)| !emptied.contains(event));
    if !emptied.is_empty() && events.is_empty() {
        doc.remove("hooks");
    }
}

/// Put the MCP server into `doc` (`.claude.json` or `.mcp.json`), replacing one of that name.
pub fn add_mcp(doc: &mut Json, config: &ClaudeCode) -> Result<(), String> {
    let servers = doc
        .object_at("mcpServers")
        .ok_or_else(|| shape("MCP servers", "\"mcpServers\" is not an object"))?;
    servers.set(MCP_NAME, config.mcp_server());
    Ok(())
}

/// Take the MCP server out of `doc` (an emptied `mcpServers` goes too).
pub fn remove_mcp(doc: &mut Json) {
    let Some(servers) = doc.get_mut("mcpServers") else {
        return;
    };
    if servers.remove(MCP_NAME).is_some() && servers.is_empty_object() {
        doc.remove("mcpServers");
    }
}

/// What happened to a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
    /// Uninstalled: its bytes from before setup are back.
    Restored,
    /// Uninstalled: setup had created it, and it held nothing else.
    Deleted,
    /// Uninstalled: others changed the file since setup, so only Switchboard's entries were
    /// taken out and the backup was kept.
    Stripped {
        backup: PathBuf,
    },
}

/// A file's path with `suffix` appended to its name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

pub fn backup_of(path: &Path) -> PathBuf {
    beside(path, BACKUP_SUFFIX)
}

fn read(path: &Path) -> Result<Option<(Vec<u8>, Json)>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| shape(&path.display().to_string(), "not UTF-8 text"))?;
    let doc = if text.trim().is_empty() {
        Json::object()
    } else {
        Json::parse(text)
            .map_err(|e| shape(&path.display().to_string(), &format!("not JSON ({e})")))?
    };
    if !matches!(doc, Json::Object(_)) {
        return Err(shape(&path.display().to_string(), "not a JSON object"));
    }
    Ok(Some((bytes, doc)))
}

/// Write `bytes` to `path` atomically, with the permissions it had (new: private to its owner
/// when it is a `.claude.json`, which holds the person's account state, else readable).
fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(_)
            if path
                .file_name()
                .is_some_and(|n| n == ".claude.json" || n == "config.toml") =>
        {
            0o600
        }
        Err(_) => 0o644,
    };
    let temporary = beside(path, ".switchboard-new");
    std::fs::write(&temporary, bytes).map_err(fail)?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
}

/// Install: apply `edit` to the file (a missing one is `{}`); keep a backup before the first
/// change. `dry_run`: only say what would change.
pub fn install(
    path: &Path,
    dry_run: bool,
    edit: impl FnOnce(&mut Json) -> Result<(), String>,
) -> Result<Change, String> {
    let found = read(path)?;
    let before = found
        .as_ref()
        .map_or_else(Json::object, |(_, doc)| doc.clone());
    let mut after = before.clone();
    edit(&mut after)?;
    if found.is_some() && after == before {
        return Ok(Change::Unchanged);
    }
    if !dry_run {
        let backup = backup_of(path);
        if let Some((bytes, _)) = &found
            && !backup.exists()
        {
            write(&backup, bytes)?;
        }
        write(path, after.pretty().as_bytes())?;
    }
    Ok(match found {
        Some(_) => Change::Updated,
        None => Change::Created,
    })
}

/// Install into a text file (Codex's `config.toml`): `edit` maps its text (a missing file is
/// empty) to the new text; a backup is kept before the first change.
pub fn install_text(
    path: &Path,
    dry_run: bool,
    edit: impl FnOnce(&str) -> Result<String, String>,
) -> Result<Change, String> {
    let found = read_text(path)?;
    let after = edit(found.as_deref().unwrap_or(""))?;
    if found.as_deref() == Some(after.as_str()) {
        return Ok(Change::Unchanged);
    }
    if !dry_run {
        let backup = backup_of(path);
        if let Some(before) = &found
            && !backup.exists()
        {
            write(&backup, before.as_bytes())?;
        }
        write(path, after.as_bytes())?;
    }
    Ok(match found {
        Some(_) => Change::Updated,
        None => Change::Created,
    })
}

/// Uninstall from a text file: `strip` maps its text to what is left; the backup comes back
/// when what is left is what it holds, and a file setup created that is left empty goes.
pub fn uninstall_text(
    path: &Path,
    dry_run: bool,
    strip: impl FnOnce(&str) -> Result<String, String>,
) -> Result<Change, String> {
    let Some(current) = read_text(path)? else {
        return Ok(Change::Unchanged);
    };
    let left = strip(&current)?;
    let backup = backup_of(path);
    let saved = read_text(&backup)?;
    let change = match &saved {
        Some(original) if original.trim() == left.trim() => Change::Restored,
        Some(_) if left == current => Change::Unchanged,
        Some(_) => Change::Stripped { backup },
        None if left == current => Change::Unchanged,
        None if left.trim().is_empty() => Change::Deleted,
        None => Change::Updated,
    };
    if dry_run {
        return Ok(change);
    }
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    match (&change, saved) {
        (Change::Restored, Some(original)) => {
            write(path, original.as_bytes())?;
            std::fs::remove_file(backup_of(path)).map_err(fail)?;
        }
        (Change::Deleted, _) => std::fs::remove_file(path).map_err(fail)?,
        (Change::Stripped { .. } | Change::Updated, _) => write(path, left.as_bytes())?,
        _ => {}
    }
    Ok(change)
}

fn read_text(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| shape(&path.display().to_string(), "not UTF-8 text")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The document at `path` as JSON, when there is one.
pub fn read_json(path: &Path) -> Result<Option<Json>, String> {
    Ok(read(path)?.map(|(_, doc)| doc))
}

/// Uninstall: apply `strip` to the file; when what is left is what the backup holds, the
/// backup's bytes come back (and the backup goes); a file setup created and that holds nothing
/// else is deleted.
pub fn uninstall(
    path: &Path,
    dry_run: bool,
    strip: impl FnOnce(&mut Json),
) -> Result<Change, String> {
    let Some((_, current)) = read(path)? else {
        return Ok(Change::Unchanged);
    };
    let mut left = current.clone();
    strip(&mut left);
    let backup = backup_of(path);
    let saved = read(&backup)?;
    let change = match &saved {
        Some((_, original)) if *original == left => Change::Restored,
        Some(_) if left == current => Change::Unchanged,
        Some(_) => Change::Stripped { backup },
        None if left == current => Change::Unchanged,
        None if left.is_empty_object() => Change::Deleted,
        None => Change::Updated,
    };
    if dry_run {
        return Ok(change);
    }
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    match (&change, saved) {
        (Change::Restored, Some((bytes, _))) => {
            write(path, &bytes)?;
            std::fs::remove_file(backup_of(path)).map_err(fail)?;
        }
        (Change::Deleted, _) => std::fs::remove_file(path).map_err(fail)?,
        (Change::Stripped { .. } | Change::Updated, _) => write(path, left.pretty().as_bytes())?,
        _ => {}
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClaudeCode {
        ClaudeCode::new(
            "http://sb.example:8080/",
            "/opt/switch board/switchboard",
            Duration::from_secs(300),
            Duration::from_secs(600),
        )
    }

    #[test]
    fn hooks_are_added_beside_the_persons_own_and_replaced_in_place() {
        let mut doc = Json::parse(
            r#"{"model": "opus", "hooks": {"PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "cargo fmt"}]}]}}"#,
        )
        .unwrap();
        add_hooks(&mut doc, &config()).unwrap();
        let once = doc.clone();
        add_hooks(&mut doc, &config()).unwrap();
        assert_eq!(doc, once, "running it twice changes nothing");
        let post = doc.get("hooks").unwrap().get("PostToolUse").unwrap();
        let Json::Array(groups) = post else { panic!() };
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].get("matcher"), Some(&Json::str("Edit")));
        let start = doc
            .get("hooks")
            .unwrap()
            .get("SessionStart")
            .unwrap()
            .pretty();
        assert!(
            start.contains(r#""command": "'/opt/switch board/switchboard' hook claude-code --url http://sb.example:8080""#),
            "{start}"
        );
        let stop = doc.get("hooks").unwrap().get("Stop").unwrap().pretty();
        assert!(
            stop.contains("/api/v1/hooks/claude-code?timeout=300&stop_wait=600"),
            "{stop}"
        );
        assert!(stop.contains(r#""timeout": 630"#), "{stop}");
        assert!(stop.contains(r#""Authorization": "Bearer $SWITCHBOARD_API_KEY""#));
        assert!(!doc.pretty().contains("sk-"), "no key anywhere");

        // Another URL: replaced where it was, not added twice.
        let moved = ClaudeCode::new(
            "https://sb.example",
            "switchboard",
            Duration::from_secs(60),
            Duration::ZERO,
        );
        add_hooks(&mut doc, &moved).unwrap();
        let Some(Json::Array(groups)) = doc.get("hooks").unwrap().get("PostToolUse") else {
            panic!()
        };
        assert_eq!(groups.len(), 2);
        assert!(
            groups[1]
                .pretty()
                .contains("https://sb.example/api/v1/hooks")
        );

        remove_hooks(&mut doc);
        assert_eq!(
            doc,
            Json::parse(
                r#"{"model": "opus", "hooks": {"PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "cargo fmt"}]}]}}"#
            )
            .unwrap()
        );
        let mut empty = Json::object();
        add_hooks(&mut empty, &config()).unwrap();
        remove_hooks(&mut empty);
        assert_eq!(empty, Json::object());
    }

    #[test]
    fn settings_of_another_shape_are_refused() {
        let mut doc = Json::parse(r#"{"hooks": []}"#).unwrap();
        assert!(add_hooks(&mut doc, &config()).is_err());
        let mut doc = Json::parse(r#"{"hooks": {"Stop": {}}}"#).unwrap();
        assert!(add_hooks(&mut doc, &config()).is_err());
        let mut doc = Json::parse(r#"{"mcpServers": 1}"#).unwrap();
        assert!(add_mcp(&mut doc, &config()).is_err());
    }

    #[test]
    fn the_mcp_server_reads_the_key_from_the_environment() {
        let mut doc =
            Json::parse(r#"{"numStartups": 3, "mcpServers": {"other": {"command": "x"}}}"#)
                .unwrap();
        add_mcp(&mut doc, &config()).unwrap();
        let server = doc
            .get("mcpServers")
            .unwrap()
            .get("switchboard")
            .unwrap()
            .pretty();
        assert!(
            server.contains(r#""url": "http://sb.example:8080/mcp""#),
            "{server}"
        );
        assert!(server.contains(r#""Authorization": "Bearer ${SWITCHBOARD_API_KEY}""#));
        remove_mcp(&mut doc);
        assert_eq!(
            doc,
            Json::parse(r#"{"numStartups": 3, "mcpServers": {"other": {"command": "x"}}}"#)
                .unwrap()
        );
    }

    #[test]
    fn files_follow_claude_codes_own_rules() {
        let home = Path::new("/home/me");
        let project = Path::new("/src/app");
        assert_eq!(
            Files::of(Scope::User, None, home, project),
            Files {
                settings: "/home/me/.claude/settings.json".into(),
                mcp: "/home/me/.claude.json".into()
            }
        );
        assert_eq!(
            Files::of(Scope::User, Some(Path::new("/cfg")), home, project),
            Files {
                settings: "/cfg/settings.json".into(),
                mcp: "/cfg/.claude.json".into()
            }
        );
        assert_eq!(
            Files::of(Scope::Project, Some(Path::new("/cfg")), home, project),
            Files {
                settings: "/src/app/.claude/settings.json".into(),
                mcp: "/src/app/.mcp.json".into()
            }
        );
    }
}
