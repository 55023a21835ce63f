//! The questions as MCP tasks (SEP-2663, the tasks extension), for clients that declare it:
//! `ask_question`, `send_message` with `requires_user_input`, `permission_prompt` and
//! `wait_for_answer` return a task at once instead of blocking; the client collects the result
//! with `tasks/get` whenever the person has answered, and `tasks/cancel` withdraws the question.
//!
//! A task is its question: its id names the kind of result, the session and the question, so
//! `tasks/get` can land on any node (the question's state is in the log) and needs nothing kept
//! in memory. It is the caller's like the question is: another tenant's id is not found.
//! Messages the person sent before the question are not part of a task's result: they go back
//! to the inbox at once, and the agent's next call brings them.

use rmcp::model::{
    CallToolResponse, CancelTaskParams, CreateTaskResult, DetailedTask, GetTaskParams,
    GetTaskResult, JsonObject, Task, TaskPayload, TaskStatus,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use uuid::Uuid;

use super::{
    AgentTools, AnswerResult, AnswerStatus, AskQuestionArgs, Caller, Outcome, PermissionPromptArgs,
    SendMessageArgs, WaitForAnswerArgs, message_outgoing, parse_id, question_outgoing, taken,
};
use crate::agent_api::ToolError;
use std::time::Duration;

/// How often a client is asked to look again (a person answers in seconds, not milliseconds).
const POLL_INTERVAL_MS: u64 = 2_000;

/// How long one look at a task counts as someone waiting for its answer (the inbox shows that
/// the agent waits while its client keeps polling).
const WAITS_FOR: Duration = Duration::from_millis(3 * POLL_INTERVAL_MS);

/// The reason a question is withdrawn with when its task is cancelled.
const CANCELLED: &str = "the client cancelled the task that waited for it";

/// What a task's result looks like: the result of the tool that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `ask_question` and `wait_for_answer`.
    Answer,
    /// `send_message` with a question.
    Message,
    /// `permission_prompt`: Claude Code's decision.
    Permission,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Answer => "answer",
            Kind::Message => "message",
            Kind::Permission => "permission",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [Kind::Answer, Kind::Message, Kind::Permission]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// A task: its question, and the kind of result it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TaskRef {
    kind: Kind,
    session_id: Uuid,
    question_id: Uuid,
}

impl TaskRef {
    fn id(&self) -> String {
        format!(
            "{}.{}.{}",
            self.kind.as_str(),
            self.session_id,
            self.question_id
        )
    }

    fn parse(id: &str) -> Option<TaskRef> {
        let mut parts = id.split('.');
        let task = TaskRef {
            kind: Kind::parse(parts.next()?)?,
            session_id: Uuid::try_parse(parts.next()?).ok()?,
            question_id: Uuid::try_parse(parts.next()?).ok()?,
        };
        parts.next().is_none().then_some(task)
    }
}

fn not_found(id: &str) -> ErrorData {
    ErrorData::invalid_params(format!("no task {id:?}"), None)
}

fn tool_error(e: ToolError) -> ErrorData {
    ErrorData::invalid_params(e.message, None)
}

fn now() -> String {
    crate::wire::timestamp(time::OffsetDateTime::now_utc())
}

impl AgentTools {
    /// `tools/call` of a tool that waits for a person, when the client takes tasks: the
    /// question is asked and its task returned. `None`: not such a call (it runs as usual).
    pub(super) async fn start_task(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        ctx: &RequestContext<RoleServer>,
    ) -> Option<Result<CallToolResponse, ErrorData>> {
        let arguments = serde_json::Value::Object(arguments.unwrap_or_default());
        let parse = |e: serde_json::Error| ErrorData::invalid_params(e.to_string(), None);
        let caller = self.caller(ctx);
        let started = async {
            let (kind, outgoing) = match name {
                "ask_question" => {
                    let args: AskQuestionArgs = serde_json::from_value(arguments).map_err(parse)?;
                    let outgoing = question_outgoing(&caller, args).map_err(tool_error)?;
                    (Kind::Answer, outgoing)
                }
                "send_message" => {
                    let args: SendMessageArgs = serde_json::from_value(arguments).map_err(parse)?;
                    if !args.requires_user_input.unwrap_or(false) {
                        return Ok(None);
                    }
                    (
                        Kind::Message,
                        message_outgoing(&caller, args).map_err(tool_error)?,
                    )
                }
                "permission_prompt" => {
                    let args: PermissionPromptArgs =
                        serde_json::from_value(arguments).map_err(parse)?;
                    let (outgoing, _) = self
                        .permission_outgoing(ctx, &caller, args)
                        .map_err(tool_error)?;
                    (Kind::Permission, outgoing)
                }
                "wait_for_answer" => {
                    let args: WaitForAnswerArgs =
                        serde_json::from_value(arguments).map_err(parse)?;
                    let session_id = parse_id("agent_instance_id", &args.agent_instance_id)
                        .map_err(tool_error)?;
                    let question_id =
                        parse_id("question_id", &args.question_id).map_err(tool_error)?;
                    let question = self
                        .backend
                        .question(&caller, session_id, question_id)
                        .await
                        .map_err(tool_error)?;
                    let kind = if question.approval.is_some() {
                        Kind::Permission
                    } else {
                        Kind::Answer
                    };
                    let task = TaskRef {
                        kind,
                        session_id,
                        question_id,
                    };
                    self.task_waits(&caller, &task).await;
                    return Ok(Some(created(&task, &question.created_at)));
                }
                _ => return Ok(None),
            };
            let sent = self
                .backend
                .send(&caller, outgoing)
                .await
                .map_err(tool_error)?;
            // What the person said before the question is not the task's: unread again.
            self.give_back(&caller, taken(sent.session_id, &sent.queued, None))
                .await;
            let task = TaskRef {
                kind,
                session_id: sent.session_id,
                question_id: sent.message_id,
            };
            self.task_waits(&caller, &task).await;
            Ok(Some(created(&task, &now())))
        };
        started.await.transpose()
    }

    /// `tasks/get`: working while the question is open; its tool's result once answered
    /// (or withdrawn, or expired); cancelled once withdrawn by `tasks/cancel`.
    pub(super) async fn task(
        &self,
        params: GetTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let task = TaskRef::parse(&params.task_id).ok_or_else(|| not_found(&params.task_id))?;
        let caller = self.caller(&ctx);
        let question = self
            .backend
            .question(&caller, task.session_id, task.question_id)
            .await
            .map_err(|_| not_found(&params.task_id))?;
        let base = Task::new(
            task.id(),
            TaskStatus::Working,
            question.created_at.clone(),
            now(),
        )
        .with_poll_interval_ms(POLL_INTERVAL_MS);
        self.task_waits(&caller, &task).await;
        let looked = self
            .answer_result(
                &caller,
                (task.session_id, task.question_id),
                Duration::ZERO,
                &ctx,
            )
            .await;
        let payload = match looked {
            Ok((result, took)) if !result.reply.is_empty() => {
                let outcome = self.task_result(&task, &caller, result).await;
                // The answer is handed over with the result (never given back: a later look
                // finds it again).
                drop(took);
                completed(outcome?)
            }
            Ok(_) => TaskPayload::Working,
            Err(e) if e.status == 409 && e.message.contains(CANCELLED) => TaskPayload::Cancelled,
            Err(e) if e.status == 409 => {
                let result = AnswerResult {
                    status: AnswerStatus::Withdrawn,
                    agent_instance_id: task.session_id,
                    question_id: task.question_id,
                    answer: None,
                    chosen_option: None,
                    decision: None,
                    user_feedback: Vec::new(),
                    reply: Vec::new(),
                };
                let outcome = self.closed_result(&task, result, &e.message);
                completed(outcome?)
            }
            Err(e) => return Err(ErrorData::internal_error(e.message, None)),
        };
        Ok(GetTaskResult::new(DetailedTask::new(base, payload)))
    }

    /// Whoever shows the question sees that someone waits for it, for a while.
    async fn task_waits(&self, caller: &Caller, task: &TaskRef) {
        let waited = self
            .backend
            .waiting(caller, task.session_id, task.question_id, WAITS_FOR)
            .await;
        if let Err(e) = waited {
            tracing::debug!(question = %task.question_id, "a task's wait was not recorded: {e}");
        }
    }

    /// `tasks/cancel`: the question is withdrawn (an answered one stays answered).
    pub(super) async fn cancel(
        &self,
        params: CancelTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let task = TaskRef::parse(&params.task_id).ok_or_else(|| not_found(&params.task_id))?;
        let caller = self.caller(&ctx);
        self.backend
            .withdraw(
                &caller,
                task.session_id,
                task.question_id,
                CANCELLED.to_owned(),
            )
            .await
            .map_err(|_| not_found(&params.task_id))?;
        Ok(())
    }

    /// The result the task's tool would have given for this answer.
    async fn task_result(
        &self,
        task: &TaskRef,
        caller: &Caller,
        mut result: AnswerResult,
    ) -> Outcome {
        if task.kind == Kind::Permission {
            let question = self
                .backend
                .question(caller, task.session_id, task.question_id)
                .await;
            if let Some(approval) = question.ok().and_then(|q| q.approval) {
                Self::decide(&mut result, &projections::Approval::from(&approval));
            }
        }
        self.shaped(task.kind, result, None)
    }

    /// The result for a question that closed unanswered (`why`).
    fn closed_result(&self, task: &TaskRef, mut result: AnswerResult, why: &str) -> Outcome {
        if task.kind == Kind::Permission {
            result.decision = Some(
                crate::commands::Decision::Deny {
                    message: format!("The question closed unanswered on Switchboard: {why}"),
                }
                .to_json(),
            );
        }
        self.shaped(task.kind, result, Some(why))
    }

    /// `result` in the shape of the task's tool.
    fn shaped(&self, kind: Kind, result: AnswerResult, closed: Option<&str>) -> Outcome {
        let text = match closed {
            Some(why) if result.decision.is_none() => {
                format!("The question closed without an answer: {why}")
            }
            _ => self.answer_text(&result),
        };
        match kind {
            Kind::Answer => super::structured(result, text),
            Kind::Message => super::structured(super::message_result(result), text),
            Kind::Permission => super::permission_result(super::structured(result, text)),
        }
    }
}

fn created(task: &TaskRef, created_at: &str) -> CallToolResponse {
    let task = Task::new(task.id(), TaskStatus::Working, created_at, now())
        .with_poll_interval_ms(POLL_INTERVAL_MS);
    CallToolResponse::Task(CreateTaskResult::new(task))
}

fn completed(result: rmcp::model::CallToolResult) -> TaskPayload {
    let value = serde_json::to_value(result).unwrap_or_default();
    TaskPayload::Completed {
        result: match value {
            serde_json::Value::Object(map) => map,
            _ => JsonObject::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_name_their_question() {
        let task = TaskRef {
            kind: Kind::Permission,
            session_id: Uuid::now_v7(),
            question_id: Uuid::now_v7(),
        };
        assert_eq!(TaskRef::parse(&task.id()), Some(task));
        assert_eq!(TaskRef::parse("answer.x.y"), None);
        assert_eq!(TaskRef::parse(&format!("{}.extra", task.id())), None);
        assert_eq!(
            TaskRef::parse(&task.id().replace("permission", "other")),
            None
        );
    }
}
