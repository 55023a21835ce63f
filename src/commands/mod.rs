//! The domain API: every change anyone can make, as one function each. REST handlers and MCP
//! tools parse their input into these functions' input types and render their results; no
//! business rule lives anywhere else.
//!
//! Every command has the same shape: authorize → lock the tenant's log → (replay if this
//! Idempotency-Key was seen) → load state → decide events → append + project → commit.
//! The log publishes the commit to waiting readers after it is durable.

mod account_fact;
mod agent_exited;
mod agent_message;
mod answer;
pub mod connected_apps;
mod decision;
mod describe;
mod end_session;
mod heartbeat;
mod idempotency;
mod notification_channel;
mod notification_policy;
mod pending;
mod questions;
mod request_input;
mod return_undelivered;
mod user;
mod user_message;
pub mod waits;

pub use agent_exited::agent_exited;
pub use agent_message::{AgentMessageInput, AgentMessageSent, send_agent_message};
pub use answer::{Answer, question, wait_for_answer};
pub use decision::{Decision, approval_question};
pub use describe::{Described, describe_session};
pub use end_session::{SessionEndedResult, end_session};
pub use heartbeat::{Heartbeat, heartbeat};
pub use notification_channel::{
    record_channel_added, record_channel_removed, removal_was_this_request,
};
pub use notification_policy::change_notification_policy;
pub use pending::{Pending, PendingStatus, pending, receive_all, wait_for_pending};
pub use questions::{
    Closed, closed_sentence, expire_question, question_not_found, withdraw_question,
};
pub use request_input::{InputRequestedResult, request_input};
pub use return_undelivered::{Undelivered, return_undelivered};
pub use user::{User, create_user, rename_user};
pub use user_message::{UserMessageInput, UserMessageSent, send_user_message};

use projections::{Actor, Metadata, SessionState, SessionStatus};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Grant;
use crate::domain::InvalidInput;
use crate::eventlog::{EventLog, LogError, TenantTxn};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything an agent and its person do.
    Agent,
    /// Read the log and nothing else.
    Audit,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Agent => "agent",
            Scope::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "agent" => Some(Scope::Agent),
            "audit" => Some(Scope::Audit),
            _ => None,
        }
    }
}

/// Who is asking, and about which request: the authenticated tenant plus what the event
/// metadata records.
#[derive(Clone, Debug)]
pub struct Context {
    pub tenant_id: Uuid,
    pub key_id: Option<Uuid>,
    pub scope: Scope,
    /// What authorised the request: what a parked request re-checks before handing over.
    pub grant: Grant,
    pub client_type: Option<String>,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
}

impl Context {
    /// A context for the operator's own tools (CLI, benchmarks): full rights.
    pub fn system(tenant_id: Uuid) -> Context {
        Context {
            tenant_id,
            key_id: None,
            scope: Scope::Agent,
            grant: Grant::SYSTEM,
            client_type: Some("switchboard".into()),
            request_id: None,
            idempotency_key: None,
        }
    }

    fn metadata(&self, actor: Actor) -> Metadata {
        Metadata {
            actor,
            key_id: self.key_id,
            client_type: self.client_type.clone(),
            request_id: self.request_id.clone(),
            web_session: self.grant.web_session(),
            imported: None,
        }
    }

    /// Who is speaking in this request: the person when it came from the inbox (a web
    /// session), else the agent (an API key speaks for the agent and its person alike).
    pub fn speaker(&self) -> Actor {
        match self.grant.web_session() {
            Some(_) => Actor::User,
            None => Actor::Agent,
        }
    }

    /// Refuse keys that may only read.
    pub fn require_write(&self) -> Result<(), CommandError> {
        match self.scope {
            Scope::Agent => Ok(()),
            Scope::Audit => Err(CommandError::Forbidden(
                "this API key has the audit scope, which may only read the event log".into(),
            )),
        }
    }

    /// The id of the `n`th event this request appends. With an Idempotency-Key it is
    /// derived from the key, so a retry that slips past the response record still cannot
    /// append twice; without one it is a fresh time-ordered id.
    fn event_id(&self, n: u8) -> Uuid {
        match &self.idempotency_key {
            Some(key) => {
                let name = format!("{}/{key}/{n}", self.tenant_id);
                Uuid::new_v5(&IDEMPOTENT_EVENT_NAMESPACE, name.as_bytes())
            }
            None => Uuid::now_v7(),
        }
    }
}

const IDEMPOTENT_EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_2c0e_53d4_4e8b_9a57_0b7e_4d21_c3f9);

/// Why a command did not happen. Nothing was changed in any case.
#[derive(Debug)]
pub enum CommandError {
    /// A field is malformed (schema-level).
    Invalid(InvalidInput),
    /// The input is well-formed but the domain refuses it.
    BadRequest(String),
    /// No such thing for this tenant (also: another tenant's).
    NotFound(String),
    /// The state does not allow it (ended session, concurrent change).
    Conflict(String),
    /// The key's scope does not allow it.
    Forbidden(String),
    /// The caller's credential stopped being good (revoked, expired) while it waited.
    Unauthorized(String),
    /// What the decision was based on changed underneath (retried internally, never returned
    /// by a command).
    Stale,
    /// The database is unreachable.
    Unavailable(String),
    Internal(String),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Invalid(e) => write!(f, "{e}"),
            CommandError::BadRequest(m)
            | CommandError::NotFound(m)
            | CommandError::Conflict(m)
            | CommandError::Forbidden(m)
            | CommandError::Unauthorized(m)
            | CommandError::Unavailable(m)
            | CommandError::Internal(m) => write!(f, "{m}"),
            CommandError::Stale => write!(f, "concurrent change; retry"),
        }
    }
}

impl std::error::Error for CommandError {}

impl CommandError {
    /// The HTTP status that says why (REST answers with it; the agent API carries it).
    pub fn status(&self) -> u16 {
        match self {
            CommandError::Invalid(_) => 422,
            CommandError::BadRequest(_) => 400,
            CommandError::NotFound(_) => 404,
            CommandError::Conflict(_) | CommandError::Stale => 409,
            CommandError::Forbidden(_) => 403,
            CommandError::Unauthorized(_) => 401,
            CommandError::Unavailable(_) => 503,
            CommandError::Internal(_) => 500,
        }
    }
}

impl From<InvalidInput> for CommandError {
    fn from(e: InvalidInput) -> Self {
        CommandError::Invalid(e)
    }
}

impl From<crate::auth::AuthError> for CommandError {
    fn from(e: crate::auth::AuthError) -> Self {
        match e {
            crate::auth::AuthError::Unavailable => CommandError::Unavailable(e.to_string()),
            other => CommandError::Unauthorized(other.to_string()),
        }
    }
}

impl From<LogError> for CommandError {
    fn from(e: LogError) -> Self {
        if e.is_unavailable() {
            return CommandError::Unavailable("the database is unavailable; retry shortly".into());
        }
        match e {
            LogError::Stale => CommandError::Stale,
            LogError::VersionConflict { .. } | LogError::DuplicateEvent => {
                CommandError::Conflict(e.to_string())
            }
            LogError::Database(_) | LogError::Corrupt(_) => CommandError::Internal(e.to_string()),
        }
    }
}

/// The log line and metric of a question (never its text).
fn question_asked(ctx: &Context, session_id: Uuid, question_id: Uuid) {
    crate::metrics::question_asked();
    tracing::info!(
        tenant = %ctx.tenant_id,
        session = %session_id,
        question = %question_id,
        "question asked"
    );
}

fn session_not_found(id: Uuid) -> CommandError {
    CommandError::NotFound(format!("session {id} not found"))
}

/// The session, which must exist and, for `open`, must not have ended.
fn require_session(
    state: Option<&SessionState>,
    id: Uuid,
    open: bool,
) -> Result<&SessionState, CommandError> {
    let state = state.ok_or_else(|| session_not_found(id))?;
    if open && state.session.status == SessionStatus::Completed {
        return Err(CommandError::Conflict(format!(
            "session {id} has ended; start a new session"
        )));
    }
    Ok(state)
}

/// A command that appends: its input (fingerprinted for Idempotency-Key), its name, and how
/// it decides which events to append from the state it reads.
trait Decide: Serialize + Sync {
    type Output: Serialize + DeserializeOwned + Send;
    const NAME: &'static str;

    fn decide(
        &self,
        ctx: &Context,
        txn: &mut TenantTxn,
    ) -> impl Future<Output = Result<Self::Output, CommandError>> + Send;

    /// What the command appended is committed (once; not when an Idempotency-Key replays it):
    /// the place for its log line and metrics.
    fn committed(&self, _ctx: &Context, _output: &Self::Output) {}
}

/// Run a command on the caller's tenant log and write what it appended, with Idempotency-Key
/// replay. When another process appended first, the command decides again on fresh state.
async fn transact<C: Decide>(
    log: &EventLog,
    ctx: &Context,
    command: &C,
) -> Result<C::Output, CommandError> {
    ctx.require_write()?;
    let key = idempotency::Key::new(ctx, C::NAME, command);
    for attempt in 1.. {
        let mut txn = log.begin(ctx.tenant_id).await;
        if let Some(key) = &key
            && let Some(first) = key.recall(log.pool()).await?
        {
            return Ok(first);
        }
        let decided = match command.decide(ctx, &mut txn).await {
            Err(CommandError::Stale) => Err(LogError::Stale),
            // A refusal or a no-op decided on remembered state: look again before answering.
            Err(_) | Ok(_) if txn.unverified() => {
                txn.forget();
                Err(LogError::Stale)
            }
            Err(e) => return Err(e),
            Ok(result) => {
                if let Some(key) = &key {
                    txn.remember(key.record(&result));
                }
                txn.commit().await.map(|_| {
                    command.committed(ctx, &result);
                    result
                })
            }
        };
        match decided {
            Ok(result) => return Ok(result),
            Err(LogError::Stale) if attempt < crate::eventlog::MAX_ATTEMPTS => {
                crate::eventlog::backoff(attempt).await;
            }
            // A keyed retry racing its first request (on another node): the first one's
            // events (whose ids the key determines) are in the log now, and so is its
            // response: look the key up again.
            Err(LogError::DuplicateEvent)
                if key.is_some() && attempt < crate::eventlog::MAX_ATTEMPTS => {}
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}
