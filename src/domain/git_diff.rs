//! The `git_diff` field of an agent message, read the way existing clients send it.
//!
//! The Python SDK base64-encodes diffs; other clients send them raw. As in the system this
//! replaces, text that is strictly valid base64 is decoded first. An empty diff clears the
//! session's diff; text that is not a unified git diff is ignored with a warning rather than
//! failing the message that carries it.

use base64::Engine as _;

use super::{InvalidInput, storable};

/// Largest diff a session keeps.
pub const MAX_GIT_DIFF_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum GitDiffUpdate {
    Set(String),
    Clear,
    /// Not a git diff; the session's diff stays as it was.
    Ignored,
}

impl GitDiffUpdate {
    pub fn parse(field: &str, raw: &str) -> Result<GitDiffUpdate, InvalidInput> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .ok()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        let text = decoded.as_deref().unwrap_or(raw);
        storable(field, text)?;
        let diff = text.trim();
        if diff.len() > MAX_GIT_DIFF_BYTES {
            return Err(InvalidInput::new(field, "must be at most 1 MiB"));
        }
        if diff.is_empty() {
            return Ok(GitDiffUpdate::Clear);
        }
        if !is_git_diff(diff) {
            return Ok(GitDiffUpdate::Ignored);
        }
        Ok(GitDiffUpdate::Set(diff.to_owned()))
    }
}

/// A `diff --git` header, an index line or new-file mode, `---`/`+++` markers, a hunk header
/// and at least one diff line.
fn is_git_diff(diff: &str) -> bool {
    let lines = || diff.lines();
    let starts = |prefix: &str| lines().any(|l| l.starts_with(prefix));
    let index_line = lines().any(|l| {
        l.strip_prefix("index ")
            .and_then(|rest| rest.split_once(".."))
            .is_some_and(|(a, b)| {
                let hex = |s: &str| {
                    !s.is_empty() && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
                };
                hex(a)
                    && b.bytes()
                        .next()
                        .is_some_and(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            })
    });
    let hunk_header = lines().any(|l| {
        l.strip_prefix("@@")
            .and_then(|rest| rest.split_once("@@"))
            .is_some_and(|(range, _)| {
                !range.is_empty()
                    && range
                        .bytes()
                        .all(|c| matches!(c, b' ' | b'-' | b'+' | b',' | b'0'..=b'9'))
            })
    });
    let content = lines().any(|l| l.starts_with([' ', '+', '-']));
    starts("diff --git")
        && (index_line || starts("new file mode"))
        && starts("--- ")
        && starts("+++ ")
        && hunk_header
        && content
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "diff --git a/x.txt b/x.txt\nindex 83db48f..bf269f4 100644\n--- a/x.txt\n+++ b/x.txt\n@@ -1 +1 @@\n-old\n+new\n";

    #[test]
    fn raw_and_base64_diffs_are_kept() {
        assert_eq!(
            GitDiffUpdate::parse("git_diff", DIFF).unwrap(),
            GitDiffUpdate::Set(DIFF.trim().into())
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(DIFF);
        assert_eq!(
            GitDiffUpdate::parse("git_diff", &encoded).unwrap(),
            GitDiffUpdate::Set(DIFF.trim().into())
        );
    }

    #[test]
    fn empty_clears_and_junk_is_ignored() {
        assert_eq!(
            GitDiffUpdate::parse("git_diff", "").unwrap(),
            GitDiffUpdate::Clear
        );
        assert_eq!(
            GitDiffUpdate::parse("git_diff", "  \n").unwrap(),
            GitDiffUpdate::Clear
        );
        assert_eq!(
            GitDiffUpdate::parse("git_diff", "not a diff").unwrap(),
            GitDiffUpdate::Ignored
        );
        assert_eq!(
            GitDiffUpdate::parse("git_diff", "abcd").unwrap(),
            GitDiffUpdate::Ignored
        );
    }

    #[test]
    fn new_files_need_no_index_line() {
        let diff = "diff --git a/n b/n\nnew file mode 100644\n--- /dev/null\n+++ b/n\n@@ -0,0 +1 @@\n+hi\n";
        assert!(matches!(
            GitDiffUpdate::parse("git_diff", diff).unwrap(),
            GitDiffUpdate::Set(_)
        ));
    }

    #[test]
    fn oversized_and_nul_diffs_are_refused() {
        let huge = format!("{DIFF}{}", "+x\n".repeat(MAX_GIT_DIFF_BYTES / 3 + 1));
        assert!(GitDiffUpdate::parse("git_diff", &huge).is_err());
        assert!(GitDiffUpdate::parse("git_diff", "diff\0").is_err());
    }
}
