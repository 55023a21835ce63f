//! `/api/v1/events*`: the tenant's log for auditors — read in pages, exported as NDJSON, and
//! verified. Any key may read its own tenant's log; `audit`-scope keys may do nothing else.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::commands::CommandError;
use crate::domain::{self, InvalidInput};
use crate::eventlog::chain::GENESIS;
use crate::eventlog::read::Page;
use crate::eventlog::{export, verify};
use crate::http::error::ApiError;
use crate::http::extract::{Caller, Params};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1_000;
/// Most bytes (of event data and metadata) one `/events` page carries; a page holds fewer
/// events than `limit` when they are large (`next_after` says where to go on).
const PAGE_BYTES: i64 = 4 << 20;
/// What one database read of an export carries: memory per exporting client stays at about
/// this, whatever the size of the log or of its events.
const EXPORT_PAGE: Page = Page {
    rows: 1_000,
    bytes: 4 << 20,
};

fn after(text: Option<&str>) -> Result<i64, InvalidInput> {
    text.map_or(Ok(0), |text| {
        text.parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| InvalidInput::new("after", "must be a sequence number (0 or more)"))
    })
}

#[derive(Serialize)]
pub struct EventsPage {
    /// The events, each exactly as exported (see `/events/export`).
    events: Vec<Box<RawValue>>,
    /// Pass as `after` for the next page.
    next_after: i64,
    /// The tenant's newest sequence number when this page was read.
    head: i64,
}

pub async fn events(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Params(query): Params<EventsQuery>,
) -> Result<Json<EventsPage>, ApiError> {
    let after = after(query.after.as_deref())?;
    let limit = domain::parse_limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let pool = app.log.pool();
    let head = export::tenant_head(pool, ctx.tenant_id)
        .await
        .map_err(CommandError::from)?;
    let page = Page {
        rows: limit,
        bytes: PAGE_BYTES,
    };
    let mut pages = std::pin::pin!(export::tenant_pages(
        pool.clone(),
        ctx.tenant_id,
        after,
        head,
        page
    ));
    let page = pages
        .try_next()
        .await
        .map_err(CommandError::from)?
        .unwrap_or_default();
    let next_after = page.last().map_or(after, |e| e.seq);
    let events = page
        .iter()
        .map(|e| RawValue::from_string(e.to_json()).expect("events serialize to JSON"))
        .collect();
    Ok(Json(EventsPage {
        events,
        next_after,
        head,
    }))
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    after: Option<String>,
}

/// The tenant's log from `after` up to its head when the request began, one event per line,
/// streamed page by page: memory stays constant however long the log.
pub async fn export(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Params(query): Params<ExportQuery>,
) -> Result<Response, ApiError> {
    let after = after(query.after.as_deref())?;
    let pool = app.log.pool().clone();
    let head = export::tenant_head(&pool, ctx.tenant_id)
        .await
        .map_err(CommandError::from)?;
    let tenant = ctx.tenant_id;
    let lines = export::tenant_pages(pool, tenant, after, head, EXPORT_PAGE)
        .map_ok(|page| {
            let mut text = String::with_capacity(page.len() * 512);
            for event in &page {
                event.write_json(&mut text);
                text.push('\n');
            }
            Bytes::from(text)
        })
        .inspect_err(move |e| tracing::error!(%tenant, "export failed: {e}"));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}

/// The tenant's chain, checked now.
pub async fn verify(
    State(app): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let report = verify::verify(app.log.pool(), Some(ctx.tenant_id))
        .await
        .map_err(CommandError::from)?;
    let tenant = report.tenants.first();
    let broken = tenant.and_then(|t| t.broken.as_ref());
    Ok(Json(json!({
        "ok": report.ok,
        "events": report.events,
        "last_seq": tenant.map_or(0, |t| t.last_seq),
        "head_hash": tenant.map_or_else(|| hex::encode(GENESIS), |t| t.head_hash.clone()),
        "broken": broken.map(|b| json!({ "seq": b.seq, "reason": b.reason })),
    })))
}
