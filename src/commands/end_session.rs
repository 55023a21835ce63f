//! The session is over: its open questions are withdrawn with it. Ending an ended session
//! changes nothing and answers the same, so a client's cleanup path may call it twice.

use projections::{Event, SessionEnded, SessionStatus};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CommandError, Context, Decide, require_session, transact};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionEndedResult {
    pub session_id: Uuid,
    pub final_status: SessionStatus,
}

pub async fn end_session(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
) -> Result<SessionEndedResult, CommandError> {
    transact(log, ctx, &EndSession { session_id }).await
}

#[derive(Serialize)]
struct EndSession {
    session_id: Uuid,
}

impl Decide for EndSession {
    type Output = SessionEndedResult;
    const NAME: &'static str = "end_session";

    async fn decide(
        &self,
        ctx: &Context,
        txn: &mut TenantTxn,
    ) -> Result<SessionEndedResult, CommandError> {
        let session_id = self.session_id;
        let session = &require_session(txn.session(session_id).await?, session_id, false)?.session;
        if session.status != SessionStatus::Completed {
            let version = session.version;
            let by = ctx.speaker();
            txn.append(
                session_id,
                ExpectedVersion::Exact(version),
                vec![NewEvent {
                    event_id: ctx.event_id(0),
                    event: Event::SessionEnded(SessionEnded { by: Some(by) }),
                }],
                &ctx.metadata(by),
            )
            .await?;
        }
        Ok(SessionEndedResult {
            session_id,
            final_status: SessionStatus::Completed,
        })
    }
}
