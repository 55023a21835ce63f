//! A coding agent's process exited (Claude Code's `SessionEnd`): nobody waits for its questions
//! any more, so they are withdrawn, but the session goes on: what the person sends now waits
//! for the agent's next run (`claude --resume`), which receives it. Saying so twice changes
//! nothing the second time.

use projections::{Actor, AgentExited, Event};
use serde::Serialize;
use uuid::Uuid;

use super::{CommandError, Context, Decide, require_session, transact};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};

/// Record that the session's agent exited, for `reason`; whether that was news.
pub async fn agent_exited(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
    reason: String,
) -> Result<bool, CommandError> {
    transact(log, ctx, &Exited { session_id, reason }).await
}

#[derive(Serialize)]
struct Exited {
    session_id: Uuid,
    reason: String,
}

impl Decide for Exited {
    type Output = bool;
    const NAME: &'static str = "agent_exited";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<bool, CommandError> {
        let state = require_session(txn.session(self.session_id).await?, self.session_id, true)?;
        if state.session.exited_at.is_some() {
            return Ok(false);
        }
        let version = state.session.version;
        txn.append(
            self.session_id,
            ExpectedVersion::Exact(version),
            vec![NewEvent {
                event_id: ctx.event_id(0),
                event: Event::AgentExited(AgentExited {
                    reason: self.reason.clone(),
                }),
            }],
            &ctx.metadata(Actor::Agent),
        )
        .await?;
        Ok(true)
    }
}
