//! The `questions` read model: every request an agent made of its person, and how it stands.
//!
//! A question is an agent message asking for input (plain, with options, a tool approval, or
//! "what next?" after a finished turn); its id is its message id. It is **open** until one of:
//! - **answered**: a person's message names it (`question_id`), or, for messages that name
//!   none ([`Answers::Unstated`]), it is the session's newest open question;
//! - **withdrawn**: its asker stopped waiting for good (`question_withdrawn`), or the session
//!   ended;
//! - **expired**: its deadline passed (`question_expired`).
//!
//! This is the one definition of "open". The session fold ([`crate::session::apply`]) keeps the
//! open questions in the session's state, where commands decide against them, and reports
//! every row it opens or closes, which the append path and `projections rebuild` write to the
//! `questions` table. Everything else (the inbox, the notifier, MCP, the hooks, the CLI) reads
//! that state or that table.
//!
//! [`Answers::Unstated`]: crate::event::Answers::Unstated

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::{Actor, AgentMessage};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// A question in words, possibly offering options.
    Question,
    /// Leave to run a tool call (Allow / Deny).
    Approval,
    /// The agent finished its turn and waits for what to do next.
    NextInstruction,
}

impl QuestionKind {
    /// The kind of question `message` asks.
    pub fn of(message: &AgentMessage) -> QuestionKind {
        QuestionKind::from_flags(message.approval.is_some(), message.next_instruction)
    }

    /// The kind of a request that asks leave to run a tool (`approval`) or what to do after a
    /// finished turn (`next_instruction`), or neither (a readers' shortcut to [`Self::of`]
    /// for those who read only these two fields of the message).
    pub fn from_flags(approval: bool, next_instruction: bool) -> QuestionKind {
        if approval {
            QuestionKind::Approval
        } else if next_instruction {
            QuestionKind::NextInstruction
        } else {
            QuestionKind::Question
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QuestionKind::Question => "question",
            QuestionKind::Approval => "approval",
            QuestionKind::NextInstruction => "next_instruction",
        }
    }

    pub fn parse(s: &str) -> Option<QuestionKind> {
        match s {
            "question" => Some(QuestionKind::Question),
            "approval" => Some(QuestionKind::Approval),
            "next_instruction" => Some(QuestionKind::NextInstruction),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionStatus {
    Open,
    Answered,
    Withdrawn,
    Expired,
}

impl QuestionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionStatus::Open => "open",
            QuestionStatus::Answered => "answered",
            QuestionStatus::Withdrawn => "withdrawn",
            QuestionStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<QuestionStatus> {
        match s {
            "open" => Some(QuestionStatus::Open),
            "answered" => Some(QuestionStatus::Answered),
            "withdrawn" => Some(QuestionStatus::Withdrawn),
            "expired" => Some(QuestionStatus::Expired),
            _ => None,
        }
    }
}

/// A row of the `questions` table. Ids, times and how it ended only: what was asked stays in
/// the log (the event whose id is [`Question::id`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    /// The agent message that asks it.
    pub id: Uuid,
    pub kind: QuestionKind,
    pub status: QuestionStatus,
    /// When it became a question (its message, or the request for input).
    pub asked_at: OffsetDateTime,
    /// The tenant sequence number of the event that made it a question.
    pub asked_seq: i64,
    /// Unanswered by then, it expires.
    pub expires_at: Option<OffsetDateTime>,
    pub closed_at: Option<OffsetDateTime>,
    /// The tenant sequence number of the event that closed it.
    pub closed_seq: Option<i64>,
    /// Who closed it: the person (answered), the agent or the system (withdrawn), the system
    /// (expired); none when a session end that did not record who closed it.
    pub closed_by: Option<Actor>,
    /// The person's message that answered it.
    pub answer_id: Option<Uuid>,
    /// Why it was withdrawn.
    pub reason: Option<String>,
}

impl Question {
    pub fn is_open(&self) -> bool {
        self.status == QuestionStatus::Open
    }

    /// Has its deadline passed by `now`? (It stays open until its `question_expired` event,
    /// which follows shortly, but it can no longer be answered.)
    pub fn past_deadline(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Can it still be answered at `now`?
    pub fn answerable_at(&self, now: OffsetDateTime) -> bool {
        self.is_open() && !self.past_deadline(now)
    }
}

/// Why a session's open questions are withdrawn when it ends.
pub const SESSION_ENDED: &str = "the session ended";
