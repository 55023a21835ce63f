//! The agent API inside the server: the same command functions REST calls.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{AgentApi, Answered, Caller, Outgoing, Reply, Sent, ToolError};
use crate::auth::Authenticator;
use crate::commands::{self, AgentMessageInput, CommandError, Context, Undelivered};
use crate::domain::{AgentType, Content};
use crate::eventlog::EventLog;
use crate::metrics::{Parked, Waiter};
use crate::push::Hub;
use crate::wire::{self, MessageJson};
use tokio_util::sync::CancellationToken;

pub struct Local {
    pub log: EventLog,
    pub auth: Arc<Authenticator>,
    pub hub: Arc<Hub>,
    pub shutdown: CancellationToken,
}

impl Local {
    /// The agent API of the server `app` composes.
    pub fn of(app: &crate::app::App) -> Local {
        Local {
            log: app.log.clone(),
            auth: app.auth.clone(),
            hub: app.hub.clone(),
            shutdown: app.shutdown.clone(),
        }
    }
}

fn context(caller: &Caller) -> Result<&Context, ToolError> {
    caller
        .context
        .as_ref()
        .ok_or_else(|| ToolError::new("not authenticated"))
}

impl From<CommandError> for ToolError {
    fn from(e: CommandError) -> ToolError {
        let status = e.status();
        match e {
            CommandError::Internal(detail) => {
                tracing::error!(%detail, "agent API call failed");
                ToolError {
                    message: "internal server error".into(),
                    status,
                }
            }
            e => ToolError {
                message: e.to_string(),
                status,
            },
        }
    }
}

impl AgentApi for Local {
    fn send<'a>(&'a self, caller: &'a Caller, message: Outgoing) -> Reply<'a, Sent> {
        Box::pin(async move {
            let ctx = context(caller)?;
            let content = Content::parse("content", message.content).map_err(CommandError::from)?;
            let input = AgentMessageInput {
                agent_type: Some(
                    AgentType::parse("agent_type", &message.agent_type)
                        .map_err(CommandError::from)?,
                ),
                requires_user_input: message.requires_user_input,
                options: message.options,
                approval: message.approval,
                next_instruction: message.next_instruction,
                expires_in: message.expires_in,
                leaves_unread: message.leaves_unread,
                activity: message
                    .activity
                    .map(|a| crate::domain::questions::activity("activity", a))
                    .transpose()
                    .map_err(CommandError::from)?,
                describe: projections::SessionDescribed {
                    client: message
                        .describe
                        .client
                        .clone()
                        .or_else(|| caller.client.clone()),
                    ..message.describe
                },
                ..AgentMessageInput::new(message.session_id, content)
            };
            let sent = commands::send_agent_message(&self.log, ctx, input).await?;
            Ok(Sent {
                session_id: sent.session_id,
                message_id: sent.message_id,
                step_number: sent.step_number,
                queued: wire::messages(
                    &self
                        .log
                        .user_messages(ctx.tenant_id, &sent.queued_user_messages)
                        .await
                        .map_err(CommandError::from)?,
                ),
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
            let ctx = context(caller)?;
            let _parked = Parked::new(Waiter::Mcp);
            let mut access = self.auth.guard(ctx.grant);
            let answer = commands::wait_for_answer(
                &self.log,
                &self.hub,
                ctx,
                session_id,
                question_id,
                wait,
                stop,
                &mut access,
            )
            .await?;
            Ok(answer.map(|a| Answered {
                messages: wire::messages(&a.messages),
                taken: a.taken,
            }))
        })
    }

    fn question<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
    ) -> Reply<'a, MessageJson> {
        Box::pin(async move {
            let ctx = context(caller)?;
            let question = commands::question(&self.log, ctx, session_id, question_id).await?;
            Ok(MessageJson::from(&question))
        })
    }

    fn stop_token(&self) -> CancellationToken {
        self.shutdown.child_token()
    }

    fn give_back<'a>(&'a self, caller: &'a Caller, undelivered: Undelivered) -> Reply<'a, usize> {
        Box::pin(async move {
            let ctx = context(caller)?;
            Ok(commands::return_undelivered(&self.log, ctx, undelivered).await?)
        })
    }

    fn end<'a>(&'a self, caller: &'a Caller, session_id: Uuid) -> Reply<'a, String> {
        Box::pin(async move {
            let ctx = context(caller)?;
            let ended = commands::end_session(&self.log, ctx, session_id).await?;
            Ok(ended.final_status.as_str().to_owned())
        })
    }

    fn waiting<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
        until: Duration,
    ) -> Reply<'a, ()> {
        Box::pin(async move {
            let ctx = context(caller)?;
            let until = time::OffsetDateTime::now_utc() + until;
            commands::waits::waiting(
                self.log.pool(),
                ctx.tenant_id,
                session_id,
                question_id,
                until,
            )
            .await;
            Ok(())
        })
    }

    fn abandoned<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
    ) -> Reply<'a, ()> {
        Box::pin(async move {
            let ctx = context(caller)?;
            commands::waits::abandoned(self.log.pool(), ctx.tenant_id, session_id, question_id)
                .await;
            Ok(())
        })
    }

    fn withdraw<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
        reason: String,
    ) -> Reply<'a, bool> {
        Box::pin(async move {
            let ctx = context(caller)?;
            let withdrawn = commands::withdraw_question(
                &self.log,
                ctx,
                session_id,
                question_id,
                projections::Actor::Agent,
                reason,
            )
            .await;
            match withdrawn {
                Ok(_) => Ok(true),
                Err(CommandError::Conflict(_)) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn exited<'a>(&'a self, caller: &'a Caller, session_id: Uuid, reason: String) -> Reply<'a, ()> {
        Box::pin(async move {
            let ctx = context(caller)?;
            let reason =
                crate::domain::questions::reason("reason", &reason).map_err(CommandError::from)?;
            commands::agent_exited(&self.log, ctx, session_id, reason).await?;
            Ok(())
        })
    }

    fn receive_all<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
    ) -> Reply<'a, Vec<MessageJson>> {
        Box::pin(async move {
            let ctx = context(caller)?;
            let refs = commands::receive_all(&self.log, ctx, session_id).await?;
            let messages = self.log.user_messages(ctx.tenant_id, &refs).await;
            Ok(wire::messages(&messages.map_err(CommandError::from)?))
        })
    }

    fn said_in_terminal<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        content: String,
    ) -> Reply<'a, ()> {
        Box::pin(async move {
            let ctx = context(caller)?;
            let input = commands::UserMessageInput {
                session_id,
                content: Content::parse("content", content).map_err(CommandError::from)?,
                mark_as_read: true,
                updated_input: None,
                target: crate::domain::questions::Target::Nothing,
                terminal: true,
            };
            commands::send_user_message(&self.log, ctx, input).await?;
            Ok(())
        })
    }

    fn question_status<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
    ) -> Reply<'a, String> {
        Box::pin(async move {
            let ctx = context(caller)?;
            let question = self
                .log
                .question(ctx.tenant_id, session_id, question_id)
                .await
                .map_err(CommandError::from)?
                .ok_or_else(|| commands::question_not_found(session_id, question_id))?;
            Ok(question.status.as_str().to_owned())
        })
    }
}
