//! `POST /api/v1/hooks/claude-code`: Claude Code's `http` hooks. Each request is one hook
//! event (Claude Code's JSON, authenticated by the Bearer key its `headers` carry); the answer
//! is the hook's output (an empty object when it decides nothing). What each event means is
//! [`crate::agents::claude_code`]'s, the same as `switchboard hook claude-code`'s.
//!
//! The query says how the hooks behave: `timeout` (seconds a permission request waits for the
//! person, default 50), `on_timeout=deny` (refuse the tool call when nobody decided), and
//! `stop_wait` (seconds `Stop` waits for what to do next, default 0: it does not ask).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::agent_api::{self, AgentApi, Local};
use crate::agents::agent::Agent;
use crate::agents::claude_code::{self, HookEvent, OnTimeout, Options, Surroundings};
use crate::app::AppState;
use crate::domain::InvalidInput;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller, Params};

/// The longest a hook may be asked to wait (Claude Code's own hook timeout bounds it too).
const MAX_WAIT_SECONDS: f64 = 24.0 * 3600.0;

#[derive(Debug, Default, Deserialize)]
pub struct HookQuery {
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    on_timeout: Option<OnTimeout>,
    #[serde(default)]
    stop_wait: Option<f64>,
}

/// A wait the query gives, in seconds.
fn wait(field: &str, seconds: Option<f64>, default: Duration) -> Result<Duration, InvalidInput> {
    match seconds {
        None => Ok(default),
        Some(s) if s.is_finite() && (0.0..=MAX_WAIT_SECONDS).contains(&s) => {
            Ok(Duration::from_secs_f64(s))
        }
        Some(_) => Err(InvalidInput::new(
            field,
            format!("must be 0 to {MAX_WAIT_SECONDS} seconds"),
        )),
    }
}

pub async fn claude_code(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Params(query): Params<HookQuery>,
    Body(event): Body<HookEvent>,
) -> Result<Json<Value>, ApiError> {
    let event = event.checked().map_err(ApiError::unprocessable)?;
    let defaults = Options::default();
    let options = Options {
        agent: Agent::ClaudeCode,
        timeout: wait("timeout", query.timeout, defaults.timeout)?,
        on_timeout: query.on_timeout,
        stop_wait: wait("stop_wait", query.stop_wait, defaults.stop_wait)?,
    };
    let session_id = claude_code::session_for(ctx.tenant_id, &event.session_id);
    let caller = agent_api::Caller {
        context: Some(ctx),
        agent_type: Agent::ClaudeCode.agent_type().to_owned(),
        client: Some(Agent::ClaudeCode.name().to_owned()),
    };
    let api = Local::of(&app);
    // Claude Code stops waiting (its hook timed out, it exited) by dropping the request: the
    // hook then runs on in its own task until it has withdrawn what it asked.
    let gone = api.stop_token();
    let dropped = gone.clone().drop_guard();
    let hook = tokio::spawn(async move {
        let surroundings = Surroundings::default();
        claude_code::handle(
            &api,
            &caller,
            session_id,
            &event,
            &surroundings,
            &options,
            &gone,
        )
        .await
    });
    let output = hook
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    dropped.disarm();
    Ok(Json(output?.unwrap_or_else(|| json!({}))))
}
