//! The agent API of the client commands (`switchboard mcp-stdio`, `switchboard hook`): a
//! remote Switchboard over its REST API (through [`crate::client`]), waiting for answers with
//! long-polls.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{AgentApi, Answered, Caller, Outgoing, Reply, Sent, ToolError};
use crate::client::{AgentMessage, Client, ClientError, SessionDescription};
use crate::commands::Undelivered;
use crate::wire::{ApprovalJson, MessageJson};

pub struct Remote {
    client: Client,
}

impl Remote {
    pub fn new(client: Client) -> Remote {
        Remote { client }
    }

    /// The client, announcing the caller's agent type.
    fn client(&self, caller: &Caller) -> Client {
        self.client.as_client_type(&caller.agent_type)
    }
}

impl From<ClientError> for ToolError {
    fn from(e: ClientError) -> ToolError {
        let status = match &e {
            ClientError::Refused { status, .. } => *status,
            // Not reached, or not understood: the server is unavailable to us.
            _ => 503,
        };
        ToolError {
            message: e.to_string(),
            status,
        }
    }
}

impl AgentApi for Remote {
    fn send<'a>(&'a self, caller: &'a Caller, message: Outgoing) -> Reply<'a, Sent> {
        Box::pin(async move {
            let d = message.describe;
            let session = SessionDescription {
                title: d.title,
                project: d.project,
                cwd: d.cwd,
                branch: d.branch,
                host: d.host,
                client: d.client.or_else(|| caller.client.clone()),
            };
            let message = AgentMessage {
                session: Some(session),
                requires_user_input: message.requires_user_input,
                options: message.options.unwrap_or_default(),
                approval: message.approval.as_ref().map(ApprovalJson::from),
                next_instruction: message.next_instruction,
                expires_in_seconds: message.expires_in.map(|d| d.as_secs_f64()),
                leave_unread: message.leaves_unread,
                activity: message.activity,
                ..AgentMessage::step(message.session_id, &message.agent_type, message.content)
            };
            let sent = self.client(caller).send_agent_message(&message).await?;
            Ok(Sent {
                session_id: sent.session_id,
                message_id: sent.message_id,
                step_number: sent.step_number,
                queued: sent.queued_user_messages,
            })
        })
    }

    fn answer<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
        wait: Duration,
        stop: &'a CancellationToken,
    ) -> Reply<'a, Option<Answered>> {
        Box::pin(async move {
            // Over REST the server holds what it took; stopping only ends the long-poll.
            let client = self.client(caller);
            tokio::select! {
                answer = client.wait_for_answer(session_id, question_id, wait) => {
                    Ok(answer?.map(|messages| Answered {
                        taken: messages.iter().map(|m| m.id).collect(),
                        messages,
                    }))
                }
                () = stop.cancelled() => Ok(None),
            }
        })
    }

    fn question<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
    ) -> Reply<'a, MessageJson> {
        Box::pin(async move {
            let history = self.client(caller).messages(session_id).await?;
            history
                .into_iter()
                .find(|m| m.id == question_id)
                .ok_or_else(|| {
                    ToolError::new(format!(
                        "question {question_id} not found in session {session_id}"
                    ))
                })
        })
    }

    fn stop_token(&self) -> CancellationToken {
        CancellationToken::new()
    }

    /// The REST API has no way to un-read messages: what the bridge took stays read (and
    /// `wait_for_answer` still finds an answer in the history).
    fn give_back<'a>(&'a self, _: &'a Caller, undelivered: Undelivered) -> Reply<'a, usize> {
        Box::pin(async move {
            Err(ToolError::new(format!(
                "{} message(s) of session {} could not be returned over REST",
                undelivered.message_ids.len(),
                undelivered.session_id
            )))
        })
    }

    fn end<'a>(&'a self, caller: &'a Caller, session_id: Uuid) -> Reply<'a, String> {
        Box::pin(async move { Ok(self.client(caller).end_session(session_id).await?) })
    }

    /// The server records the bridge's long-polls itself.
    fn waiting<'a>(&'a self, _: &'a Caller, _: Uuid, _: Uuid, _: Duration) -> Reply<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    /// The server saw the long-poll dropped, and counts the wait as abandoned itself.
    fn abandoned<'a>(&'a self, _: &'a Caller, _: Uuid, _: Uuid) -> Reply<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn withdraw<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
        reason: String,
    ) -> Reply<'a, bool> {
        Box::pin(async move {
            match self
                .client(caller)
                .withdraw_question(session_id, question_id, &reason)
                .await
            {
                Ok(()) => Ok(true),
                Err(ClientError::Refused { status: 409, .. }) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn exited<'a>(&'a self, caller: &'a Caller, session_id: Uuid, reason: String) -> Reply<'a, ()> {
        Box::pin(async move { Ok(self.client(caller).exited(session_id, &reason).await?) })
    }

    fn receive_all<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
    ) -> Reply<'a, Vec<MessageJson>> {
        Box::pin(async move { Ok(self.client(caller).receive_all(session_id).await?) })
    }

    fn said_in_terminal<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        content: String,
    ) -> Reply<'a, ()> {
        Box::pin(async move {
            Ok(self
                .client(caller)
                .said_in_terminal(session_id, &content)
                .await?)
        })
    }

    fn question_status<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
    ) -> Reply<'a, String> {
        Box::pin(async move {
            let questions = self.client(caller).questions(session_id, "").await?;
            questions
                .into_iter()
                .find(|q| q.id == question_id)
                .map(|q| q.status)
                .ok_or_else(|| {
                    ToolError::new(format!(
                        "question {question_id} not found in session {session_id}"
                    ))
                })
        })
    }
}
