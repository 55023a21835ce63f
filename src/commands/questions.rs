//! How a question ends other than by its answer, and what a closed one says about itself.
//!
//! A question is withdrawn when its asker stops waiting for good: a hook that gave up (or
//! denied on timeout) says so through the API, and the sweeper withdraws a question whose MCP
//! call was abandoned and not resumed. It expires when its deadline passes (the sweeper again).
//! Each is one event naming the question and, for a withdrawal, who and why. Whether a question
//! is open is the session fold's to say (`projections::question`); these commands only decide
//! against it.

use projections::{Actor, Event, Question, QuestionExpired, QuestionStatus, QuestionWithdrawn};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CommandError, Context, Decide, require_session, transact};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};
use crate::wire::timestamp;

/// How a question that is no longer open closed, in a sentence for whoever tried to answer or
/// withdraw it.
pub fn closed_sentence(q: &Question) -> String {
    let at = q.closed_at.map(timestamp).unwrap_or_default();
    match q.status {
        QuestionStatus::Open => format!("question {} is open", q.id),
        QuestionStatus::Answered => format!("question {} was already answered at {at}", q.id),
        QuestionStatus::Withdrawn => {
            let why = q.reason.as_deref().unwrap_or("its asker stopped waiting");
            format!("question {} was withdrawn at {at}: {why}", q.id)
        }
        QuestionStatus::Expired => format!("question {} expired at {at} without an answer", q.id),
    }
}

/// The refusal for acting on a question that is not open. A row that says it is open means the
/// state the decision read was older than the row: decide again.
pub fn not_open(q: &Question) -> CommandError {
    if q.is_open() {
        return CommandError::Stale;
    }
    CommandError::Conflict(closed_sentence(q))
}

pub fn question_not_found(session_id: Uuid, question_id: Uuid) -> CommandError {
    CommandError::NotFound(format!(
        "question {question_id} not found in session {session_id}"
    ))
}

/// A question that just closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Closed {
    pub question_id: Uuid,
    pub status: QuestionStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub closed_at: OffsetDateTime,
}

/// Withdraw the open question `question_id`: nobody waits for it any more. Refused (409) when it
/// already closed, saying how.
pub async fn withdraw_question(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
    question_id: Uuid,
    by: Actor,
    reason: String,
) -> Result<Closed, CommandError> {
    let withdraw = Withdraw {
        session_id,
        question_id,
        by,
        reason,
    };
    transact(log, ctx, &withdraw).await
}

#[derive(Serialize)]
struct Withdraw {
    session_id: Uuid,
    question_id: Uuid,
    by: Actor,
    reason: String,
}

impl Decide for Withdraw {
    type Output = Closed;
    const NAME: &'static str = "withdraw_question";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<Closed, CommandError> {
        let event = Event::QuestionWithdrawn(QuestionWithdrawn {
            question_id: self.question_id,
            by: self.by,
            reason: self.reason.clone(),
        });
        let event_id = match self.by {
            // The sweepers of every node may withdraw it at once: one event id, one event.
            Actor::System => Uuid::new_v5(&self.question_id, b"withdrawn"),
            Actor::Agent | Actor::User => ctx.event_id(0),
        };
        close(
            ctx,
            txn,
            self.session_id,
            self.question_id,
            event_id,
            event,
            self.by,
        )
        .await
    }
}

/// Expire the open question `question_id` if its deadline has passed by `now`; `None` when it
/// has not (or it is no longer open).
pub async fn expire_question(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
    question_id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<Closed>, CommandError> {
    let expire = Expire {
        session_id,
        question_id,
        now,
    };
    transact(log, ctx, &expire).await
}

#[derive(Serialize)]
struct Expire {
    session_id: Uuid,
    question_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    now: OffsetDateTime,
}

impl Decide for Expire {
    type Output = Option<Closed>;
    const NAME: &'static str = "expire_question";

    async fn decide(
        &self,
        ctx: &Context,
        txn: &mut TenantTxn,
    ) -> Result<Option<Closed>, CommandError> {
        let state = require_session(txn.session(self.session_id).await?, self.session_id, false)?;
        let due = state
            .open_question(self.question_id)
            .and_then(|q| q.expires_at)
            .is_some_and(|at| at <= self.now);
        if !due {
            return Ok(None);
        }
        let event = Event::QuestionExpired(QuestionExpired {
            question_id: self.question_id,
        });
        let event_id = Uuid::new_v5(&self.question_id, b"expired");
        let closed = close(
            ctx,
            txn,
            self.session_id,
            self.question_id,
            event_id,
            event,
            Actor::System,
        )
        .await?;
        Ok(Some(closed))
    }
}

/// Append `event` (which closes the open question `question_id`) as `by`.
async fn close(
    ctx: &Context,
    txn: &mut TenantTxn,
    session_id: Uuid,
    question_id: Uuid,
    event_id: Uuid,
    event: Event,
    by: Actor,
) -> Result<Closed, CommandError> {
    let state = require_session(txn.session(session_id).await?, session_id, false)?;
    let version = state.session.version;
    if state.open_question(question_id).is_none() {
        return match txn.question(session_id, question_id).await? {
            Some(closed) => Err(not_open(&closed)),
            None => Err(question_not_found(session_id, question_id)),
        };
    }
    let appended = txn
        .append(
            session_id,
            ExpectedVersion::Exact(version),
            vec![NewEvent { event_id, event }],
            &ctx.metadata(by),
        )
        .await?;
    let status = match appended.first().map(|e| e.event_type) {
        Some("question_expired") => QuestionStatus::Expired,
        _ => QuestionStatus::Withdrawn,
    };
    Ok(Closed {
        question_id,
        status,
        closed_at: appended
            .first()
            .map_or_else(OffsetDateTime::now_utc, |e| e.recorded_at),
    })
}
