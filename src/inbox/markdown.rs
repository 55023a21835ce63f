//! Agent text is untrusted. It is rendered on the server as Markdown in which nothing the
//! agent wrote can become markup of its own: raw HTML is shown as text, links and images only
//! keep `http`, `https` and `mailto` targets (anything else shows as its text), images are
//! never loaded (they become links), and code is escaped. Diffs, in a ```diff block or as the
//! session's git diff, are rendered line by line as additions, deletions and context.
//!
//! Every string that reaches the output passes through pulldown-cmark's escaping or maud's.

use maud::{Markup, PreEscaped, html};
use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};

/// `text` as safe HTML.
pub fn render(text: &str) -> Markup {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM;
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    pulldown_cmark::html::push_html(&mut out, Safe::new(Parser::new_ext(text, options)));
    PreEscaped(out)
}

/// The words of `text` without Markdown's marks, for one-line previews.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for event in Parser::new_ext(text, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                out.push_str(&t)
            }
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_)
                | TagEnd::TableCell,
            ) if !out.ends_with(' ') => out.push(' '),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// The parser's events with everything unsafe turned into text.
struct Safe<'a> {
    inner: Parser<'a>,
    /// For each open link or image: whether an anchor was opened for it.
    anchors: Vec<bool>,
}

impl<'a> Safe<'a> {
    fn new(inner: Parser<'a>) -> Safe<'a> {
        Safe {
            inner,
            anchors: Vec::new(),
        }
    }

    /// An opening anchor for a link the agent wrote, if its target is one a person may follow.
    fn open_link(&mut self, dest: &str, title: &str) -> Event<'a> {
        let anchor = safe_url(dest).map(|url| {
            let title = if title.is_empty() {
                String::new()
            } else {
                format!(" title=\"{}\"", escaped(title))
            };
            format!(
                "<a href=\"{}\"{title} rel=\"noopener noreferrer nofollow\" target=\"_blank\">",
                escaped(&url)
            )
        });
        self.anchors.push(anchor.is_some());
        match anchor {
            Some(open) => Event::InlineHtml(CowStr::from(open)),
            None => Event::Text(CowStr::Borrowed("")),
        }
    }

    fn close_link(&mut self) -> Event<'a> {
        if self.anchors.pop().unwrap_or(false) {
            Event::InlineHtml(CowStr::Borrowed("</a>"))
        } else {
            Event::Text(CowStr::Borrowed(""))
        }
    }

    /// The rest of a code block that is a diff, rendered as one.
    fn diff_block(&mut self) -> Event<'a> {
        let mut text = String::new();
        for event in self.inner.by_ref() {
            match event {
                Event::Text(t) => text.push_str(&t),
                Event::End(TagEnd::CodeBlock) => break,
                _ => {}
            }
        }
        Event::Html(CowStr::from(diff_lines(&text).into_string()))
    }
}

impl<'a> Iterator for Safe<'a> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        let event = self.inner.next()?;
        Some(match event {
            // A conversation keeps the lines it was typed in.
            Event::SoftBreak => Event::HardBreak,
            // Raw HTML is shown as the text it is; a block of it keeps its lines.
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::Start(Tag::HtmlBlock) => Event::Html(CowStr::Borrowed("<p class=\"literal\">")),
            Event::End(TagEnd::HtmlBlock) => Event::Html(CowStr::Borrowed("</p>")),
            Event::Start(Tag::Link {
                dest_url, title, ..
            }) => self.open_link(&dest_url, &title),
            // An image is never loaded: it becomes a link to it, named by its alt text.
            Event::Start(Tag::Image {
                dest_url, title, ..
            }) => self.open_link(&dest_url, &title),
            Event::End(TagEnd::Link | TagEnd::Image) => self.close_link(),
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang)))
                if matches!(lang.as_ref(), "diff" | "patch") =>
            {
                self.diff_block()
            }
            other => other,
        })
    }
}

/// `text` escaped for HTML text or a quoted attribute value.
fn escaped(text: &str) -> String {
    html! { (text) }.into_string()
}

/// The URL to link to, if `dest` is absolute http(s) or mailto. Parsing also drops the tabs
/// and newlines browsers ignore (`java\nscript:` is `javascript:` to them, and refused here).
fn safe_url(dest: &str) -> Option<String> {
    let url = url::Url::parse(dest.trim()).ok()?;
    matches!(url.scheme(), "http" | "https" | "mailto").then(|| url.to_string())
}

/// One kind of line in a unified diff.
fn line_class(line: &str) -> &'static str {
    if line.starts_with("+++") || line.starts_with("---") {
        "head"
    } else if line.starts_with('+') {
        "add"
    } else if line.starts_with('-') {
        "del"
    } else if line.starts_with("@@") {
        "hunk"
    } else if line.starts_with("diff ")
        || line.starts_with("index ")
        || line.starts_with("new file")
        || line.starts_with("deleted file")
        || line.starts_with("similarity")
        || line.starts_with("rename ")
        || line.starts_with('\\')
    {
        "head"
    } else {
        "ctx"
    }
}

/// A diff's lines, each marked by kind.
pub fn diff_lines(text: &str) -> Markup {
    html! {
        pre.diff {
            code {
                @for line in text.lines() {
                    span class=(line_class(line)) { (line) }
                }
            }
        }
    }
}

/// One file of a git diff.
pub struct FileDiff<'a> {
    pub path: &'a str,
    pub text: &'a str,
    pub added: usize,
    pub removed: usize,
}

/// A git diff split by file (`diff --git a/… b/…` headers).
pub fn files(diff: &str) -> Vec<FileDiff<'_>> {
    let mut starts: Vec<usize> = diff
        .match_indices("diff --git ")
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || diff.as_bytes()[i - 1] == b'\n')
        .collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let ends = starts.iter().skip(1).copied().chain([diff.len()]);
    starts
        .iter()
        .zip(ends)
        .map(|(&start, end)| {
            let text = diff[start..end].trim_end_matches('\n');
            let path = text
                .lines()
                .find_map(|l| l.strip_prefix("+++ b/").or(l.strip_prefix("--- a/")))
                .or_else(|| {
                    let header = text.lines().next()?.strip_prefix("diff --git ")?;
                    header.rsplit_once(" b/").map(|(_, b)| b)
                })
                .unwrap_or("changes");
            let count = |class| text.lines().filter(|l| line_class(l) == class).count();
            FileDiff {
                path,
                text,
                added: count("add"),
                removed: count("del"),
            }
        })
        .filter(|f| !f.text.trim().is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(text: &str) -> String {
        render(text).into_string()
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let out = rendered("<img src=x onerror=alert(1)>");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("&lt;img src=x onerror=alert(1)&gt;"), "{out}");
        let inline = rendered("before <script>alert(1)</script> after");
        assert!(!inline.contains("<script"), "{inline}");
        assert!(inline.contains("&lt;script&gt;"), "{inline}");
    }

    #[test]
    fn only_web_and_mail_links_are_links() {
        let out = rendered("[x](javascript:alert(1)) [y](https://example.com/a?b=1&c=\"2\")");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(out.contains(">x"), "{out}");
        assert!(
            out.contains("href=\"https://example.com/a?b=1&amp;c=%222%22\""),
            "{out}"
        );
        assert!(
            out.contains("rel=\"noopener noreferrer nofollow\""),
            "{out}"
        );
        for bad in [
            "<javascript:alert(1)>",
            "[a](java\nscript:alert(1))",
            "[a](data:text/html,<script>alert(1)</script>)",
            "[a](vbscript:x)",
            "[a](/relative)",
        ] {
            let out = rendered(bad);
            assert!(!out.contains("href"), "{bad}: {out}");
        }
        assert!(rendered("<mailto:a@b.example>").contains("href=\"mailto:a@b.example\""));
    }

    #[test]
    fn images_are_links_never_loaded() {
        let out = rendered("![a cat](https://example.com/cat.png) ![x](javascript:1)");
        assert!(!out.contains("<img"), "{out}");
        assert!(
            out.contains("href=\"https://example.com/cat.png\""),
            "{out}"
        );
        assert!(out.contains("a cat"), "{out}");
    }

    #[test]
    fn code_is_escaped_and_diffs_are_marked() {
        let out = rendered("```rust\nlet a = \"<b>\";\n```");
        assert!(out.contains("<pre><code class=\"language-rust\">"), "{out}");
        assert!(out.contains("&lt;b&gt;"), "{out}");
        let diff = rendered("```diff\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old <i>\n+new\n```");
        assert!(
            diff.contains("<span class=\"del\">-old &lt;i&gt;</span>"),
            "{diff}"
        );
        assert!(diff.contains("<span class=\"add\">+new</span>"), "{diff}");
        assert!(diff.contains("<span class=\"hunk\">"), "{diff}");
    }

    #[test]
    fn previews_are_the_words_without_the_marks() {
        assert_eq!(
            plain("Deploy to **staging**?\nPromote `v2` <b>now</b>"),
            "Deploy to staging? Promote v2 <b>now</b>"
        );
    }

    #[test]
    fn git_diffs_split_by_file() {
        let diff = "diff --git a/src/a.rs b/src/a.rs\nindex 1..2 100644\n--- a/src/a.rs\n\
                    +++ b/src/a.rs\n@@ -1,2 +1,2 @@\n-a\n+b\n+c\n ctx\n\
                    diff --git a/b.txt b/b.txt\nnew file mode 100644\n--- /dev/null\n\
                    +++ b/b.txt\n@@ -0,0 +1 @@\n+hello\n";
        let files = files(diff);
        assert_eq!(files.len(), 2);
        assert_eq!(
            (files[0].path, files[0].added, files[0].removed),
            ("src/a.rs", 2, 1)
        );
        assert_eq!(
            (files[1].path, files[1].added, files[1].removed),
            ("b.txt", 1, 0)
        );
    }
}
