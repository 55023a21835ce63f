//! `/answer/{capability}`: a question answered from an email's link. Opening the link (a
//! person, or a mail scanner or link preview fetching it) shows what was asked and the answer,
//! and answers nothing; the page's button gives the answer, once (see
//! [`crate::notify::actions`]). No sign-in: the capability is the authority.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::pages::{frame, html, problem};
use super::views;
use crate::app::AppState;
use crate::commands::CommandError;
use crate::notify::actions::Action;
use projections::{Question, QuestionStatus};

/// How a question closed, as a person reads it.
fn how_it_closed(q: &Question) -> String {
    let at = q
        .closed_at
        .map(|t| {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                " on {} {} {} at {:02}:{:02} UTC",
                t.day(),
                t.month(),
                t.year(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default();
    let what = match q.status {
        QuestionStatus::Answered => "It was already answered",
        QuestionStatus::Withdrawn => "The agent stopped waiting for an answer",
        QuestionStatus::Expired => "It expired without an answer",
        QuestionStatus::Open => "It is open",
    };
    let why = q
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    format!("{what}{at}{why}. Nothing was changed.")
}

/// The page for a question that closed (found again, to say how).
async fn closed(app: &AppState, action: &Action, fallback: &str) -> Response {
    let text = match app.log.question(action.sub, action.sid, action.qid).await {
        Ok(Some(q)) if !q.is_open() => how_it_closed(&q),
        _ => format!("{fallback}: nothing was changed."),
    };
    problem(app, StatusCode::CONFLICT, "This question is closed", &text)
}

fn refused(app: &AppState) -> Response {
    problem(
        app,
        StatusCode::FORBIDDEN,
        "This link does not work",
        "It was not made by this server, or it expired. Answer in the inbox instead.",
    )
}

fn session(app: &AppState, action: &Action) -> String {
    app.config
        .public_url
        .join(&format!("sessions/{}", action.sid))
}

/// `GET /answer/{capability}`: the question and the answer, with a button that gives it.
pub async fn confirm(State(app): State<AppState>, Path(capability): Path<String>) -> Response {
    let Some(action) = Action::verify(app.auth.keys(), &capability) else {
        return refused(&app);
    };
    let question = app.log.question(action.sub, action.sid, action.qid).await;
    let asked = crate::commands::question(
        &app.log,
        &crate::commands::Context::system(action.sub),
        action.sid,
        action.qid,
    )
    .await;
    match (question, asked) {
        (Ok(Some(q)), Ok(asked)) if q.is_open() => html(
            StatusCode::OK,
            views::answer_confirm(
                &frame(&app, None),
                &asked.content,
                &action.opt,
                &session(&app, &action),
            ),
        ),
        (Ok(Some(q)), _) => problem(
            &app,
            StatusCode::CONFLICT,
            "This question is closed",
            &how_it_closed(&q),
        ),
        _ => problem(
            &app,
            StatusCode::NOT_FOUND,
            "No such question",
            "The question this link answers is gone.",
        ),
    }
}

/// `POST /answer/{capability}`: give the answer.
pub async fn give(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(capability): Path<String>,
) -> Response {
    if let Some(refused) = super::sign_in::from_elsewhere(&app, &headers) {
        return refused;
    }
    let Some(action) = Action::verify(app.auth.keys(), &capability) else {
        return refused(&app);
    };
    match action.answer(&app.log).await {
        Ok(_) => html(
            StatusCode::OK,
            views::answer_given(&frame(&app, None), &action.opt, &session(&app, &action)),
        ),
        Err(CommandError::Conflict(how)) => closed(&app, &action, &how).await,
        Err(e) => problem(
            &app,
            StatusCode::UNPROCESSABLE_ENTITY,
            "The answer was not given",
            &e.to_string(),
        ),
    }
}
