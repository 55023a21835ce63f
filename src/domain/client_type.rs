//! Which kind of client is calling: the `X-Client-Type` header when present, else recognised
//! from the `User-Agent`, as the system this replaces did; "unknown" otherwise.

/// Recognised `User-Agent` fragments, checked in order (lower-cased).
const USER_AGENTS: &[(&str, &str)] = &[
    ("cursor", "cursor"),
    ("claude-code", "claude-code"),
    ("claude code", "claude-code"),
    ("claude", "claude"),
    ("roo-cline", "roo-cline"),
    ("roo cline", "roo-cline"),
    ("cline", "cline"),
    ("windsurf", "windsurf"),
    ("witsy", "witsy"),
    ("enconvo", "enconvo"),
    ("omnara-python-sdk", "python-sdk"),
    ("vscode", "vscode"),
    ("code", "vscode"),
    ("postman", "postman"),
];

/// What [`detect`] answers when nothing names the client.
pub const UNKNOWN: &str = "unknown";

pub fn detect(client_type_header: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(explicit) = client_type_header.map(str::trim).filter(|s| !s.is_empty()) {
        return clean(explicit);
    }
    let user_agent = user_agent.unwrap_or_default().to_lowercase();
    USER_AGENTS
        .iter()
        .find(|(fragment, _)| user_agent.contains(fragment))
        .map_or_else(|| UNKNOWN.to_owned(), |(_, name)| (*name).to_owned())
}

/// The kind of agent a client program is, by its name (MCP `clientInfo.name`): a recognised
/// name's kind, else the name itself (so an unrecognised client is not "unknown").
pub fn named(client_name: &str) -> String {
    match detect(None, Some(client_name)) {
        known if known != UNKNOWN => known,
        _ => {
            let name = clean(client_name.trim());
            if name.is_empty() {
                UNKNOWN.to_owned()
            } else {
                name
            }
        }
    }
}

/// A header value kept as a short, printable name.
fn clean(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn header_wins_then_user_agent_then_unknown() {
        assert_eq!(detect(Some("my-bot"), Some("cursor/1.0")), "my-bot");
        assert_eq!(
            detect(None, Some("Claude-Code/1.0.3 (node)")),
            "claude-code"
        );
        assert_eq!(detect(None, Some("Cursor/0.42")), "cursor");
        assert_eq!(detect(None, Some("Roo-Cline/3")), "roo-cline");
        assert_eq!(detect(None, Some("omnara-python-sdk")), "python-sdk");
        assert_eq!(detect(None, Some("curl/8.0")), "unknown");
        assert_eq!(detect(Some("  "), None), "unknown");
    }
}
