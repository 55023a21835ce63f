//! The tools' backend in `switchboard mcp-stdio`: a remote Switchboard over its REST API,
//! waiting for answers with long-polls (the server pushes; nothing here polls on a timer
//! except in the rare case below).

use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::backend::{Answered, Backend, Caller, Outgoing, Reply, Sent, ToolError};
use crate::commands::{PendingStatus, Undelivered, reply_to};
use crate::wire::MessageJson;

pub struct Remote {
    http: Client,
    base: String,
    api_key: String,
}

/// When the read cursor has moved past the question and no answer is in the history yet,
/// there is no long-poll that waits for exactly that answer; look again after this long.
const HISTORY_RECHECK: Duration = Duration::from_secs(2);

impl Remote {
    pub fn new(url: &str, api_key: &str) -> Result<Remote, reqwest::Error> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("switchboard-mcp-stdio/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Remote {
            http,
            base: url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
        })
    }

    fn request(&self, caller: &Caller, builder: RequestBuilder) -> RequestBuilder {
        builder
            .bearer_auth(&self.api_key)
            .header("x-client-type", &caller.agent_type)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// One long-poll for the reply to `question_id`, else a look at the history when another
    /// reader moved the cursor.
    async fn long_poll(
        &self,
        caller: &Caller,
        session_id: Uuid,
        question_id: Uuid,
        wait: Duration,
    ) -> Result<Option<Answered>, ToolError> {
        let seconds = wait.as_secs_f64().min(300.0);
        let request = self
            .http
            .get(self.url("/messages/pending"))
            .query(&[
                ("agent_instance_id", session_id.to_string()),
                ("last_read_message_id", question_id.to_string()),
                ("wait", format!("{seconds:.3}")),
            ])
            .timeout(wait + Duration::from_secs(30));
        let pending: PendingResponse = Self::send_json(self.request(caller, request)).await?;
        match pending.status {
            PendingStatus::Ok if pending.messages.is_empty() => Ok(None),
            PendingStatus::Ok => Ok(Some(Answered {
                taken: pending.messages.iter().map(|m| m.id).collect(),
                messages: pending.messages,
            })),
            // The cursor is elsewhere: the answer, if any, is in the history.
            PendingStatus::Stale => {
                let request = self
                    .http
                    .get(self.url(&format!("/sessions/{session_id}/messages")));
                let history: Vec<MessageJson> =
                    Self::send_json(self.request(caller, request)).await?;
                match reply_to(&history, question_id) {
                    None => Err(ToolError(format!(
                        "question {question_id} not found in session {session_id}"
                    ))),
                    Some(reply) if !reply.is_empty() => Ok(Some(Answered {
                        messages: reply,
                        taken: Vec::new(),
                    })),
                    Some(_) => {
                        tokio::time::sleep(wait.min(HISTORY_RECHECK)).await;
                        Ok(None)
                    }
                }
            }
        }
    }

    async fn send_json<T: DeserializeOwned>(builder: RequestBuilder) -> Result<T, ToolError> {
        let response = builder.send().await.map_err(unreachable)?;
        decode(response).await
    }
}

fn unreachable(e: reqwest::Error) -> ToolError {
    ToolError(format!("the Switchboard server is unreachable: {e}"))
}

/// The body of a 2xx response, or the server's `detail` as the error.
async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, ToolError> {
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| ToolError(format!("unexpected response from the server: {e}")));
    }
    #[derive(Deserialize)]
    struct Detail {
        detail: serde_json::Value,
    }
    let detail = serde_json::from_slice::<Detail>(&body).map_or_else(
        |_| String::from_utf8_lossy(&body).into_owned(),
        |d| match d.detail {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        },
    );
    Err(ToolError(format!("{detail} (HTTP {})", status.as_u16())))
}

#[derive(Deserialize)]
struct AgentMessageResponse {
    agent_instance_id: Uuid,
    message_id: Uuid,
    #[serde(default)]
    queued_user_messages: Vec<MessageJson>,
    #[serde(default)]
    step_number: i32,
}

#[derive(Deserialize)]
struct PendingResponse {
    messages: Vec<MessageJson>,
    status: PendingStatus,
}

#[derive(Deserialize)]
struct EndResponse {
    final_status: String,
}

impl Backend for Remote {
    fn send<'a>(&'a self, caller: &'a Caller, message: Outgoing) -> Reply<'a, Sent> {
        Box::pin(async move {
            let body = json!({
                "agent_instance_id": message.session_id,
                "agent_type": message.agent_type,
                "content": message.content,
                "requires_user_input": message.requires_user_input,
            });
            let request = self.http.post(self.url("/messages/agent")).json(&body);
            let sent: AgentMessageResponse = Self::send_json(self.request(caller, request)).await?;
            Ok(Sent {
                session_id: sent.agent_instance_id,
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
            tokio::select! {
                answer = self.long_poll(caller, session_id, question_id, wait) => answer,
                () = stop.cancelled() => Ok(None),
            }
        })
    }

    fn stop_token(&self) -> CancellationToken {
        CancellationToken::new()
    }

    /// The REST API has no way to un-read messages: what the bridge took stays read (and
    /// `wait_for_answer` still finds an answer in the history).
    fn give_back<'a>(&'a self, _: &'a Caller, undelivered: Undelivered) -> Reply<'a, usize> {
        Box::pin(async move {
            Err(ToolError(format!(
                "{} message(s) of session {} could not be returned over REST",
                undelivered.message_ids.len(),
                undelivered.session_id
            )))
        })
    }

    fn end<'a>(&'a self, caller: &'a Caller, session_id: Uuid) -> Reply<'a, String> {
        Box::pin(async move {
            let request = self
                .http
                .post(self.url("/sessions/end"))
                .json(&json!({ "agent_instance_id": session_id }));
            let ended: EndResponse = Self::send_json(self.request(caller, request)).await?;
            Ok(ended.final_status)
        })
    }
}
