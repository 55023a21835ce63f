//! What a notification says, and how each kind of channel shows it. A delivery stores its
//! [`Notification`] when it is created, so every retry sends the same content whatever
//! happens to the session afterwards.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::email::escape_html;

/// Why a notification exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// An agent asked something (`requires_user_input`, or an input request).
    Question,
    /// An agent message whose `send_email` / `send_push` / `send_sms` asked for it.
    Message,
    /// A session ended, or its agent exited.
    SessionEnded,
    /// A tool the agent ran failed.
    Failure,
    /// Someone asked for a test.
    Test,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Question => "question",
            Trigger::Message => "message",
            Trigger::SessionEnded => "session_ended",
            Trigger::Failure => "failure",
            Trigger::Test => "test",
        }
    }

    pub fn parse(text: &str) -> Option<Trigger> {
        [
            Trigger::Question,
            Trigger::Message,
            Trigger::SessionEnded,
            Trigger::Failure,
            Trigger::Test,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }

    /// The event type receivers see (`type` of a webhook body).
    pub fn event_type(self) -> &'static str {
        match self {
            Trigger::Question => "question.asked",
            Trigger::Message => "message.sent",
            Trigger::SessionEnded => "session.ended",
            Trigger::Failure => "tool.failed",
            Trigger::Test => "test",
        }
    }
}

/// Most characters of an agent's text a notification carries.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Most answer buttons a push notification carries (what browsers show at most).
pub const PUSH_ACTIONS: usize = 2;
/// Most characters of it a push notification shows.
const PUSH_TEXT_CHARS: usize = 1000;

/// The content of one notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub trigger: Trigger,
    pub session_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    pub agent_type: Option<String>,
    /// The agent's text, cut to [`MAX_TEXT_CHARS`].
    pub text: String,
    pub truncated: bool,
    /// Where the person answers: the session in the inbox.
    pub url: String,
    /// The agent asked for a text message (`send_sms`): a webhook can route it to an SMS
    /// provider.
    pub sms: bool,
    /// When the triggering event was recorded (RFC 3339).
    pub occurred_at: String,
    /// A question's answers that can be given from the notification itself (its options, or
    /// an approval's Allow and Deny).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Decided when it goes out: above zero, it tells of this many requests of the session
    /// that wait (a burst told together, or others than its own, which closed), and offers no
    /// answers of one of them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waiting: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One answer a notification offers, and the capability URL that gives it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionLink {
    pub option: String,
    pub url: String,
}

impl Notification {
    /// `text` cut to what notifications carry.
    pub fn cut(text: &str) -> (String, bool) {
        match text.char_indices().nth(MAX_TEXT_CHARS) {
            Some((at, _)) => (text[..at].to_owned(), true),
            None => (text.to_owned(), false),
        }
    }

    /// The notification told of `waiting` open requests of its session together, its own
    /// among them or not (closed since): no answers of one request are offered.
    pub fn told_together(mut self, waiting: usize, own_open: bool) -> Notification {
        let many = match waiting {
            1 => "1 request waits".to_owned(),
            n => format!("{n} requests wait"),
        };
        let text = if own_open {
            format!(
                "{many} for your answer in this session, among them: {}",
                self.text
            )
        } else {
            format!("{many} for your answer in this session.")
        };
        let (text, truncated) = Notification::cut(&text);
        self.truncated |= truncated;
        self.text = text;
        self.options.clear();
        self.waiting = waiting;
        self
    }

    fn agent(&self) -> &str {
        self.agent_type.as_deref().unwrap_or("an agent")
    }

    /// One line for subjects and titles.
    pub fn title(&self) -> String {
        match self.trigger {
            Trigger::Question if self.waiting > 1 => {
                format!("{} requests from {} wait", self.waiting, self.agent())
            }
            Trigger::Question if self.waiting == 1 => format!("{} still waits", self.agent()),
            Trigger::Question => format!("{} asks", self.agent()),
            Trigger::Message => format!("Message from {}", self.agent()),
            Trigger::SessionEnded => format!("{}'s session ended", self.agent()),
            Trigger::Failure => format!("{}: a tool failed", self.agent()),
            Trigger::Test => "Switchboard test notification".to_owned(),
        }
    }

    /// The webhook body (Standard Webhooks' `{type, timestamp, data}`); a question's carries
    /// its id, its options and `actions`: one URL per option that answers it with a POST.
    pub fn webhook_body(&self, delivery_id: Uuid, actions: &[ActionLink]) -> Vec<u8> {
        let mut body = serde_json::json!({
            "type": self.trigger.event_type(),
            "timestamp": self.occurred_at,
            "data": {
                "delivery_id": delivery_id,
                "session_id": self.session_id,
                "message_id": self.message_id,
                "agent_type": self.agent_type,
                "text": self.text,
                "truncated": self.truncated,
                "url": self.url,
                "sms": self.sms,
            }
        });
        if self.waiting > 0 {
            body["data"]["waiting"] = self.waiting.into();
        } else if self.trigger == Trigger::Question {
            body["data"]["question"] = serde_json::json!({
                "id": self.message_id,
                "options": self.options,
                "actions": actions,
            });
        }
        serde_json::to_vec(&body).expect("JSON serializes")
    }

    /// Subject, plain text and HTML of an email: a question's with one link per answer (each
    /// opens a page that answers on a press) and the link to reply in the inbox.
    pub fn email(&self, actions: &[ActionLink]) -> (String, String, String) {
        let first_line = self.text.lines().next().unwrap_or_default();
        let (short, cut) = match first_line.char_indices().nth(80) {
            Some((at, _)) => (&first_line[..at], true),
            None => (first_line, false),
        };
        let subject = if short.trim().is_empty() {
            self.title()
        } else {
            format!("{}: {short}{}", self.title(), if cut { "…" } else { "" })
        };
        let more = if self.truncated { "\n[…]" } else { "" };
        let answers: String = actions
            .iter()
            .map(|a| format!("{}: {}\n", a.option, a.url))
            .collect();
        let answers = if answers.is_empty() {
            String::new()
        } else {
            format!("Answer:\n{answers}\n")
        };
        let text = format!(
            "{}:\n\n{}{more}\n\n{answers}Reply in the inbox: {}\n",
            self.title(),
            self.text,
            self.url
        );
        let buttons: String = actions
            .iter()
            .map(|a| {
                format!(
                    "<a href=\"{}\" style=\"display:inline-block;margin:0 8px 10px 0;padding:10px 18px;\
                     border:1px solid #4338ca;border-radius:8px;color:#4338ca;font-weight:600;\
                     text-decoration:none\">{}</a>",
                    escape_html(&a.url),
                    escape_html(&a.option)
                )
            })
            .collect();
        let fine = if actions.is_empty() {
            ""
        } else {
            "<p style=\"color:#6b7280;font-size:13px\">Each answer opens a page that asks before \
             it answers. The links work once, for this question only.</p>"
        };
        let html = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
             <body style=\"margin:0;padding:16px;font-family:-apple-system,'Segoe UI',Roboto,\
             sans-serif;font-size:16px;line-height:1.5;color:#111827\">\
             <div style=\"max-width:560px\"><p style=\"font-weight:600\">{}:</p>\
             <blockquote style=\"white-space:pre-wrap;margin:0 0 16px;padding:8px 12px;\
             border-left:3px solid #c7d2fe;background:#f5f7ff\">{}{}</blockquote>\
             <p>{buttons}</p><p><a href=\"{}\" style=\"color:#4338ca\">Reply in the inbox</a></p>\
             {fine}</div></body></html>",
            escape_html(&self.title()),
            escape_html(&self.text),
            escape_html(more),
            escape_html(&self.url),
        );
        (subject, text, html)
    }

    /// The push message the inbox's service worker shows: valid JSON that fits one push
    /// record ([`MAX_PLAINTEXT`](super::web_push::MAX_PLAINTEXT) bytes), its text cut (never
    /// the JSON) to what fits.
    ///
    /// A question's carries its answers as `actions` (at most [`PUSH_ACTIONS`], the buttons
    /// a notification shows), which the service worker gives without opening a page; the text
    /// is cut to make room for them, and they are left out only if even an empty text cannot.
    pub fn push_body(&self, actions: &[ActionLink]) -> Vec<u8> {
        // All of them when they fit; of an approval's, Allow and Deny; else none (a tap opens
        // the question, where every option is).
        let named = |name: &str| actions.iter().find(|a| a.option == name).cloned();
        let actions: Vec<ActionLink> = if actions.len() <= PUSH_ACTIONS {
            actions.to_vec()
        } else {
            match (named("Allow"), named("Deny")) {
                (Some(allow), Some(deny)) => vec![allow, deny],
                _ => Vec::new(),
            }
        };
        let actions = actions.as_slice();
        let with = self.push_body_with(actions);
        if with.len() <= super::web_push::MAX_PLAINTEXT || actions.is_empty() {
            return with;
        }
        self.push_body_with(&[])
    }

    fn push_body_with(&self, actions: &[ActionLink]) -> Vec<u8> {
        let limit = super::web_push::MAX_PLAINTEXT;
        let mut chars = self.text.chars().count().min(PUSH_TEXT_CHARS);
        loop {
            let cut = match self.text.char_indices().nth(chars) {
                Some((at, _)) => format!("{}…", &self.text[..at]),
                None => self.text.clone(),
            };
            let json = serde_json::json!({
                "type": self.trigger.event_type(),
                "title": self.title(),
                "body": cut,
                "url": self.url,
                "session_id": self.session_id,
                "message_id": self.message_id,
                "tag": self.session_id.map(|s| s.to_string()),
                "actions": actions,
            });
            let bytes = serde_json::to_vec(&json).expect("JSON serializes");
            if bytes.len() <= limit || chars == 0 {
                return bytes;
            }
            // Every character takes at least one byte: shed at least the excess.
            chars = chars.saturating_sub((bytes.len() - limit).max(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(text: &str) -> Notification {
        let (text, truncated) = Notification::cut(text);
        Notification {
            trigger: Trigger::Question,
            session_id: Some(Uuid::nil()),
            message_id: Some(Uuid::max()),
            agent_type: Some("claude-code".into()),
            text,
            truncated,
            url: "https://sb.example.com/sessions/x".into(),
            sms: false,
            occurred_at: "2026-01-01T00:00:00Z".into(),
            options: Vec::new(),
            waiting: 0,
        }
    }

    #[test]
    fn a_push_is_whole_json_that_fits_one_record_whatever_the_text() {
        let limit = super::super::web_push::MAX_PLAINTEXT;
        for text in [
            "🚀".repeat(1000),
            "\u{1}".repeat(1000),
            "\"".repeat(3000),
            "short".to_owned(),
        ] {
            let body = question(&text).push_body(&[]);
            assert!(body.len() <= limit, "{} bytes", body.len());
            let json: serde_json::Value = serde_json::from_slice(&body).expect("whole JSON");
            let shown = json["body"].as_str().unwrap();
            assert!(
                text.starts_with(shown.trim_end_matches('…')),
                "a prefix of the text"
            );
            assert_eq!(json["url"], "https://sb.example.com/sessions/x");
        }
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&question("short").push_body(&[])).unwrap()
                ["body"],
            "short"
        );
    }

    #[test]
    fn a_push_carries_the_answers_a_notification_can_show() {
        let link = |o: &str| ActionLink {
            option: o.into(),
            url: format!("https://sb.example.com/api/v1/actions/{}", "t".repeat(600)),
        };
        let shown = |options: &[&str]| -> Vec<String> {
            let links: Vec<ActionLink> = options.iter().map(|o| link(o)).collect();
            let body = question(&"🚀".repeat(1000)).push_body(&links);
            assert!(body.len() <= super::super::web_push::MAX_PLAINTEXT);
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            json["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["option"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(shown(&["Squash", "Rebase"]), ["Squash", "Rebase"]);
        assert_eq!(shown(&["Allow", "Always allow", "Deny"]), ["Allow", "Deny"]);
        assert!(
            shown(&["A", "B", "C"]).is_empty(),
            "a tap opens the question"
        );
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let n = question(&"é".repeat(MAX_TEXT_CHARS + 5));
        assert!(n.truncated);
        assert_eq!(n.text.chars().count(), MAX_TEXT_CHARS);
        assert!(n.push_body(&[]).len() < super::super::web_push::MAX_PLAINTEXT);
    }

    #[test]
    fn emails_escape_agent_text_and_keep_subjects_to_one_line() {
        let n = question("Deploy <b>now</b>?\r\nBcc: victim@example.com");
        let (subject, text, html) = n.email(&[]);
        assert_eq!(subject, "claude-code asks: Deploy <b>now</b>?");
        assert!(text.contains("https://sb.example.com/sessions/x"));
        assert!(html.contains("Deploy &lt;b&gt;now&lt;/b&gt;?"));
        assert!(!html.contains("<b>"));
    }
}
