//! A session's title and context (project, working directory, branch, host, client), as its
//! agent reports it with its messages or its person edits it. Only what changes is recorded.

use projections::{Event, SessionContext, SessionDescribed};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CommandError, Context, Decide, require_session, transact};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};

/// The session as described afterwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Described {
    pub session_id: Uuid,
    /// Whether anything changed (and so was recorded).
    pub changed: bool,
}

/// Describe the session: each field given replaces its context field, an empty one clears it.
pub async fn describe_session(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
    described: SessionDescribed,
) -> Result<Described, CommandError> {
    transact(
        log,
        ctx,
        &Describe {
            session_id,
            described,
        },
    )
    .await
}

#[derive(Serialize)]
struct Describe {
    session_id: Uuid,
    described: SessionDescribed,
}

impl Decide for Describe {
    type Output = Described;
    const NAME: &'static str = "describe_session";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<Described, CommandError> {
        let state = require_session(txn.session(self.session_id).await?, self.session_id, false)?;
        let version = state.session.version;
        let described = changes(&state.session.context, &self.described);
        if described.is_empty() {
            return Ok(Described {
                session_id: self.session_id,
                changed: false,
            });
        }
        txn.append(
            self.session_id,
            ExpectedVersion::Exact(version),
            vec![NewEvent {
                event_id: ctx.event_id(0),
                event: Event::SessionDescribed(described),
            }],
            &ctx.metadata(ctx.speaker()),
        )
        .await?;
        Ok(Described {
            session_id: self.session_id,
            changed: true,
        })
    }
}

/// The fields of `described` that would change `context`.
pub(super) fn changes(context: &SessionContext, described: &SessionDescribed) -> SessionDescribed {
    let changed = |now: &Option<String>, given: &Option<String>| {
        given
            .as_ref()
            .filter(|g| now.as_deref().unwrap_or("") != g.as_str())
            .cloned()
    };
    SessionDescribed {
        title: changed(&context.title, &described.title),
        project: changed(&context.project, &described.project),
        cwd: changed(&context.cwd, &described.cwd),
        branch: changed(&context.branch, &described.branch),
        host: changed(&context.host, &described.host),
        client: changed(&context.client, &described.client),
    }
}
