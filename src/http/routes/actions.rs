//! `POST /api/v1/actions/{capability}`: an answer given from a notification (a webhook
//! receiver, a bridge to a chat app). The capability is the whole authority: one question, one
//! answer, until it expires or the question closes (see [`crate::notify::actions`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::{Credential, Grant};
use crate::commands::{self, Context, Scope, UserMessageInput};
use crate::domain::Content;
use crate::domain::questions::Target;
use crate::http::error::ApiError;
use crate::notify::actions::Action;

#[derive(Debug, Serialize)]
pub struct Answered {
    success: bool,
    question_id: Uuid,
    answer: String,
    message_id: Uuid,
}

pub async fn answer(
    State(app): State<AppState>,
    Path(capability): Path<String>,
) -> Result<Json<Answered>, ApiError> {
    let action = Action::verify(app.auth.keys(), &capability).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "this answer link is not valid: it was not made by this server, or it expired",
        )
    })?;
    let ctx = Context {
        tenant_id: action.sub,
        key_id: None,
        scope: Scope::Agent,
        grant: Grant {
            credential: Credential::Token,
            expires_at: time::OffsetDateTime::from_unix_timestamp(action.exp).ok(),
        },
        // The answer says which channel it came through.
        client_type: Some(format!("{} action", action.via)),
        request_id: None,
        // A retry of this capability (its answer lost) is answered as the first was.
        idempotency_key: Some(format!("action:{}", action.jti)),
    };
    let input = UserMessageInput {
        session_id: action.sid,
        content: Content::parse("option", action.opt.clone())?,
        mark_as_read: false,
        updated_input: None,
        target: Target::Question(action.qid),
        terminal: false,
    };
    let sent = commands::send_user_message(&app.log, &ctx, input).await?;
    Ok(Json(Answered {
        success: true,
        question_id: action.qid,
        answer: action.opt,
        message_id: sent.message_id,
    }))
}
