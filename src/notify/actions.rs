//! Answering from the notification itself: a capability to give one question one answer,
//! carried by the notification (a webhook's payload: one signed URL per option), so that a
//! receiver (a Slack or Telegram bridge) answers with one HTTP call and no API key.
//!
//! A capability is a JWT signed with the server's key (the same EdDSA key as API keys, with
//! its own audience, so neither is ever taken for the other), naming the tenant, the session,
//! the question, the option and the channel kind it came through, and expiring (at most
//! [`LIFETIME`]). It is single use by the question's own rule: a question is answered once;
//! an action on a question that closed is refused with how it closed, and changes nothing. The
//! answer is recorded with the channel it came through (`client_type`: `webhook action`), and
//! a retry of the same capability (its answer lost) is answered as the first was: its id is
//! the request's Idempotency-Key. Capabilities are minted when the notification is sent and
//! kept nowhere: not in the log, not in the delivery.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{Credential, Grant, SigningKeys};
use crate::commands::{self, CommandError, Context, Scope, UserMessageInput, UserMessageSent};
use crate::domain::Content;
use crate::domain::questions::Target;
use crate::eventlog::EventLog;

/// What a capability's `aud` says: an answer to one question (never an API key).
pub const AUDIENCE: &str = "switchboard/answer";
/// The longest a capability lives (the question may close sooner; then it answers nothing).
pub const LIFETIME: time::Duration = time::Duration::days(7);

/// What a capability allows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub aud: String,
    /// The tenant.
    pub sub: Uuid,
    /// The session and its question.
    pub sid: Uuid,
    pub qid: Uuid,
    /// The answer it gives.
    pub opt: String,
    /// The channel kind it was sent through.
    pub via: String,
    /// Its id (a retry of it is the same request).
    pub jti: Uuid,
    pub exp: i64,
}

impl Action {
    pub fn new(tenant: Uuid, session: Uuid, question: Uuid, option: &str, via: &str) -> Action {
        Action {
            aud: AUDIENCE.to_owned(),
            sub: tenant,
            sid: session,
            qid: question,
            opt: option.to_owned(),
            via: via.to_owned(),
            jti: Uuid::new_v4(),
            exp: (OffsetDateTime::now_utc() + LIFETIME).unix_timestamp(),
        }
    }

    /// The capability, signed.
    pub fn mint(&self, keys: &SigningKeys) -> Result<String, String> {
        keys.sign(self).map_err(|e| e.to_string())
    }

    /// The action a capability allows, if it is one this server signed and it has not
    /// expired.
    pub fn verify(keys: &SigningKeys, token: &str) -> Option<Action> {
        let action: Action = keys.verify(token).ok()?;
        (action.aud == AUDIENCE && action.exp > 0).then_some(action)
    }

    /// Give the answer: a reply to the question, recorded with the channel it came through;
    /// a retry of this capability is answered as the first was (its id is the request's
    /// Idempotency-Key); a closed question refuses it with how it closed.
    pub async fn answer(&self, log: &EventLog) -> Result<UserMessageSent, CommandError> {
        let ctx = Context {
            tenant_id: self.sub,
            key_id: None,
            scope: Scope::Agent,
            grant: Grant {
                credential: Credential::Token,
                expires_at: OffsetDateTime::from_unix_timestamp(self.exp).ok(),
            },
            client_type: Some(format!("{} action", self.via)),
            request_id: None,
            idempotency_key: Some(format!("action:{}", self.jti)),
        };
        let input = UserMessageInput {
            session_id: self.sid,
            content: Content::parse("option", self.opt.clone())?,
            mark_as_read: false,
            updated_input: None,
            target: Target::Question(self.qid),
            terminal: false,
        };
        commands::send_user_message(log, &ctx, input).await
    }
}
