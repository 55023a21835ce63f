//! A small client of Switchboard's REST API, for everything that talks to a running server
//! from outside it: the command line (`ask`, `log`, `inbox`, `reply`, `watch`) and the MCP
//! stdio bridge. It knows the wire contract (paths, JSON shapes, `{"detail"}` errors) and
//! nothing of the server's insides; waiting is done the server's way, by long-poll and by
//! event stream, never by polling on a timer.

mod events;

use std::time::Duration;

use reqwest::{RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::commands::PendingStatus;
use crate::wire::{ApprovalJson, MessageJson};
pub use events::{EventStream, StreamEvent, Streamed};

/// A request that is not a long-poll or a stream gets this long for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest wait one long-poll may ask for (the server's limit).
const MAX_LONG_POLL: Duration = Duration::from_secs(300);
/// How long to wait before asking the server again after it was unreachable.
const UNREACHABLE_PAUSE: Duration = Duration::from_secs(1);

/// A Switchboard server, reached with one API key. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    api_key: String,
    client_type: Option<String>,
}

/// Why a call did not succeed.
#[derive(Debug)]
pub enum ClientError {
    /// The server could not be reached, or the connection broke.
    Unreachable(reqwest::Error),
    /// The server refused the request, saying why.
    Refused { status: u16, detail: String },
    /// The server answered something this client does not understand.
    Unexpected(String),
    /// The client cannot be set up as asked (a malformed server URL).
    Unusable(String),
}

impl ClientError {
    /// True when trying again later may succeed (the server is away or overloaded).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable(_) => true,
            ClientError::Refused { status, .. } => *status >= 500 || *status == 429,
            ClientError::Unexpected(_) | ClientError::Unusable(_) => false,
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable(e) => write!(f, "the Switchboard server is unreachable: {e}"),
            ClientError::Refused { status, detail } => write!(f, "{detail} (HTTP {status})"),
            ClientError::Unexpected(e) => write!(f, "unexpected response from the server: {e}"),
            ClientError::Unusable(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ClientError {}

/// What an agent says (`POST /messages/agent`).
#[derive(Clone, Debug, Serialize)]
pub struct AgentMessage {
    #[serde(rename = "agent_instance_id")]
    pub session_id: Uuid,
    pub agent_type: String,
    pub content: String,
    pub requires_user_input: bool,
    /// Choices offered with a question.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The tool call a question asks leave for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalJson>,
    /// A question asking what to do next (a finished turn).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub next_instruction: bool,
    /// A question unanswered this long expires (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<f64>,
    /// Leave the person's queued messages unread (this client cannot hand them on).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub leave_unread: bool,
    /// What the session is about and where it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionDescription>,
    /// The tool call this step reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<projections::ToolActivity>,
}

impl AgentMessage {
    /// A plain step saying `content` in `session_id` as `agent_type`.
    pub fn step(session_id: Uuid, agent_type: &str, content: String) -> AgentMessage {
        AgentMessage {
            session_id,
            agent_type: agent_type.to_owned(),
            content,
            requires_user_input: false,
            options: Vec::new(),
            approval: None,
            next_instruction: false,
            expires_in_seconds: None,
            leave_unread: false,
            session: None,
            activity: None,
        }
    }
}

/// A session's title and context, as `POST /messages/agent` takes them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SessionDescription {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// Which question a person's message answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answering {
    /// Let the server decide: the session's newest open question, if any.
    Newest,
    /// This question.
    Question(Uuid),
}

/// A question of a session, as `GET /sessions/{id}/questions` lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct QuestionSummary {
    pub id: Uuid,
    pub kind: String,
    pub status: String,
    pub content: String,
    #[serde(default)]
    pub options: Option<Vec<String>>,
    pub asked_at: String,
}

/// What the server answered to an [`AgentMessage`].
#[derive(Clone, Debug, Deserialize)]
pub struct AgentMessageSent {
    #[serde(rename = "agent_instance_id")]
    pub session_id: Uuid,
    pub message_id: Uuid,
    /// Messages from the person the agent had not received, oldest first.
    #[serde(default)]
    pub queued_user_messages: Vec<MessageJson>,
    #[serde(default)]
    pub step_number: i32,
}

/// A session as listed by `GET /sessions`.
#[derive(Clone, Debug, Deserialize)]
pub struct SessionSummary {
    pub id: Uuid,
    pub agent_type: String,
    pub status: String,
    pub last_activity_at: String,
}

#[derive(Deserialize)]
struct Pending {
    messages: Vec<MessageJson>,
    status: PendingStatus,
}

#[derive(Deserialize)]
struct UserMessageSent {
    message_id: Uuid,
    #[serde(default)]
    question_id: Option<Uuid>,
}

#[derive(Deserialize)]
struct Ended {
    final_status: String,
}

impl Client {
    /// A client of the server at `url` (`http(s)://host[:port][/prefix]`).
    pub fn new(url: &str, api_key: &str, user_agent: &str) -> Result<Client, ClientError> {
        let mut base = url::Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                ClientError::Unusable(format!(
                    "{url:?} is not a server URL such as http://localhost:8080"
                ))
            })?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(user_agent)
            .build()
            .map_err(|e| ClientError::Unusable(format!("cannot set up an HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            api_key: api_key.trim().to_owned(),
            client_type: None,
        })
    }

    /// The same client, naming itself `client_type` (`X-Client-Type`) to the server.
    pub fn as_client_type(&self, client_type: &str) -> Client {
        Client {
            client_type: Some(client_type.to_owned()),
            ..self.clone()
        }
    }

    /// The absolute URL of an `/api/v1` path.
    fn url(&self, path: &str) -> String {
        let path = format!("api/v1/{}", path.trim_start_matches('/'));
        self.base
            .join(&path)
            .map_or_else(|_| format!("{}{path}", self.base), String::from)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let builder = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.api_key);
        match &self.client_type {
            Some(client_type) => builder.header("x-client-type", client_type),
            None => builder,
        }
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.request(reqwest::Method::GET, path)
            .timeout(REQUEST_TIMEOUT)
    }

    fn post(&self, path: &str, body: &impl Serialize) -> RequestBuilder {
        self.request(reqwest::Method::POST, path)
            .timeout(REQUEST_TIMEOUT)
            .json(body)
    }

    /// An agent's step or question; an unknown session id starts that session.
    pub async fn send_agent_message(
        &self,
        message: &AgentMessage,
    ) -> Result<AgentMessageSent, ClientError> {
        call(self.post("/messages/agent", message)).await
    }

    /// The person writes to a session, answering `answering`. Unless `mark_as_read`, it
    /// waits in the agent's queue (and wakes an agent waiting for it). Returns the message's
    /// id and the question it answered.
    pub async fn send_user_message(
        &self,
        session_id: Uuid,
        content: &str,
        mark_as_read: bool,
        answering: Answering,
    ) -> Result<(Uuid, Option<Uuid>), ClientError> {
        let mut body = serde_json::json!({
            "agent_instance_id": session_id,
            "content": content,
            "mark_as_read": mark_as_read,
        });
        if let Answering::Question(id) = answering {
            body["question_id"] = serde_json::json!(id);
        }
        let sent: UserMessageSent = call(self.post("/messages/user", &body)).await?;
        Ok((sent.message_id, sent.question_id))
    }

    /// Wait up to `wait` for the answer to `question_id` (the person's message that answers
    /// it); `None` when there is none yet. A question that closed without an answer is a
    /// refusal (409) saying how. Dropping the future stops the wait (the server then counts it
    /// as abandoned).
    pub async fn wait_for_answer(
        &self,
        session_id: Uuid,
        question_id: Uuid,
        wait: Duration,
    ) -> Result<Option<Vec<MessageJson>>, ClientError> {
        let wait = wait.min(MAX_LONG_POLL);
        let request = self
            .request(reqwest::Method::GET, "/messages/pending")
            .query(&[
                ("agent_instance_id", session_id.to_string()),
                ("question_id", question_id.to_string()),
                ("wait", format!("{:.3}", wait.as_secs_f64())),
            ])
            .timeout(wait + Duration::from_secs(30));
        let pending: Pending = call(request).await?;
        match pending.status {
            PendingStatus::Ok if pending.messages.is_empty() => Ok(None),
            PendingStatus::Ok => Ok(Some(pending.messages)),
            PendingStatus::Stale => Err(ClientError::Unexpected(
                "a wait for one question's answer answered \"stale\"".into(),
            )),
        }
    }

    /// Withdraw an open question: nobody waits for its answer any more. A question that
    /// already closed is a refusal (409) saying how.
    pub async fn withdraw_question(
        &self,
        session_id: Uuid,
        question_id: Uuid,
        reason: &str,
    ) -> Result<(), ClientError> {
        let path = format!("/sessions/{session_id}/questions/{question_id}/withdraw");
        let body = serde_json::json!({ "reason": reason });
        let _: serde_json::Value = call(self.post(&path, &body)).await?;
        Ok(())
    }

    /// The session's questions in `status` (`open`, ...; `""` for all), oldest first.
    pub async fn questions(
        &self,
        session_id: Uuid,
        status: &str,
    ) -> Result<Vec<QuestionSummary>, ClientError> {
        let path = format!("/sessions/{session_id}/questions");
        let request = self.get(&path);
        let request = match status {
            "" => request,
            status => request.query(&[("status", status)]),
        };
        call(request).await
    }

    /// The session's agent process exited (its open questions are withdrawn).
    pub async fn exited(&self, session_id: Uuid, reason: &str) -> Result<(), ClientError> {
        let path = format!("/sessions/{session_id}/exited");
        let _: serde_json::Value =
            call(self.post(&path, &serde_json::json!({ "reason": reason }))).await?;
        Ok(())
    }

    /// Take every message the person queued for the agent, now.
    pub async fn receive_all(&self, session_id: Uuid) -> Result<Vec<MessageJson>, ClientError> {
        #[derive(Deserialize)]
        struct Received {
            messages: Vec<MessageJson>,
        }
        let path = format!("/sessions/{session_id}/receive");
        let received: Received = call(self.post(&path, &serde_json::json!({}))).await?;
        Ok(received.messages)
    }

    /// Record what the person typed in the agent's own terminal.
    pub async fn said_in_terminal(
        &self,
        session_id: Uuid,
        content: &str,
    ) -> Result<(), ClientError> {
        let body = serde_json::json!({
            "agent_instance_id": session_id,
            "content": content,
            "terminal": true,
            "question_id": null,
        });
        let _: UserMessageSent = call(self.post("/messages/user", &body)).await?;
        Ok(())
    }

    /// Wait for the answer to `question_id` until `deadline` (`None`: until answered), riding
    /// out a server that is away for a while. `None`: no answer in time.
    pub async fn answer_by(
        &self,
        session_id: Uuid,
        question_id: Uuid,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<Vec<MessageJson>>, ClientError> {
        loop {
            let wait = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(tokio::time::Instant::now())
            });
            if wait.is_zero() {
                return Ok(None);
            }
            match self.wait_for_answer(session_id, question_id, wait).await {
                Ok(Some(answer)) => return Ok(Some(answer)),
                Ok(None) => {}
                Err(e) if e.is_transient() => {
                    eprintln!("{e}; trying again");
                    tokio::time::sleep(UNREACHABLE_PAUSE.min(wait)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The tenant (user id) the API key acts for.
    pub async fn user_id(&self) -> Result<Uuid, ClientError> {
        #[derive(Deserialize)]
        struct Verified {
            user_id: Uuid,
        }
        let verified: Verified = call(self.get("/auth/verify")).await?;
        Ok(verified.user_id)
    }

    /// A session's messages, oldest first.
    pub async fn messages(&self, session_id: Uuid) -> Result<Vec<MessageJson>, ClientError> {
        call(self.get(&format!("/sessions/{session_id}/messages"))).await
    }

    /// End a session; returns its final status.
    pub async fn end_session(&self, session_id: Uuid) -> Result<String, ClientError> {
        let body = serde_json::json!({ "agent_instance_id": session_id });
        let ended: Ended = call(self.post("/sessions/end", &body)).await?;
        Ok(ended.final_status)
    }

    /// One page of the tenant's sessions in `status`, newest activity first, after `before`
    /// (a previous page's last `last_activity_at` and id).
    pub async fn sessions(
        &self,
        status: &str,
        before: Option<(&str, Uuid)>,
        limit: u32,
    ) -> Result<Vec<SessionSummary>, ClientError> {
        let mut query = vec![("status", status.to_owned()), ("limit", limit.to_string())];
        if let Some((at, id)) = before {
            query.push(("before", at.to_owned()));
            query.push(("before_id", id.to_string()));
        }
        call(self.get("/sessions").query(&query)).await
    }

    /// The live event stream of one session, or of all the tenant's sessions, after tenant
    /// sequence `after_seq` (`None`: from now on). It reconnects by itself.
    pub fn events(&self, session_id: Option<Uuid>, after_seq: Option<i64>) -> EventStream {
        let path = match session_id {
            Some(id) => format!("/sessions/{id}/stream"),
            None => "/stream".to_owned(),
        };
        EventStream::new(self.clone(), path, after_seq)
    }
}

/// Send, and decode the body of a 2xx answer.
async fn call<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, ClientError> {
    let response = request.send().await.map_err(ClientError::Unreachable)?;
    let response = accepted(response).await?;
    let body = response.bytes().await.map_err(ClientError::Unreachable)?;
    serde_json::from_slice(&body).map_err(|e| ClientError::Unexpected(e.to_string()))
}

/// The response when its status is 2xx, else the server's `detail` as the error.
async fn accepted(response: Response) -> Result<Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    #[derive(Deserialize)]
    struct Detail {
        detail: serde_json::Value,
    }
    let body = response.bytes().await.map_err(ClientError::Unreachable)?;
    let detail = serde_json::from_slice::<Detail>(&body).map_or_else(
        |_| String::from_utf8_lossy(&body).trim().to_owned(),
        |d| match d.detail {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        },
    );
    Err(ClientError::Refused {
        status: status.as_u16(),
        detail,
    })
}
