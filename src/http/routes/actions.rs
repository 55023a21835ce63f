//! `POST /api/v1/actions/{capability}`: an answer given from a notification (a webhook
//! receiver, a bridge to a chat app). The capability is the whole authority: one question, one
//! answer, until it expires or the question closes (see [`crate::notify::actions`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use uuid::Uuid;

use crate::app::AppState;
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
    let sent = action.answer(&app.log).await?;
    Ok(Json(Answered {
        success: true,
        question_id: action.qid,
        answer: action.opt,
        message_id: sent.message_id,
    }))
}
