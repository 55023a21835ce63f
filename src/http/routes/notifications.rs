//! `/api/v1/notifications/*`: a tenant's channels (add, list, remove, test), its deliveries
//! with every attempt, its settings, and the server's VAPID public key. The rules live in
//! the notifier (`crate::notify`); these handlers parse, call and render.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::domain::{self, InvalidInput};
use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller, Params, PathParams};
use crate::notify::channels::{Added, Channel, NewChannel};
use crate::notify::deliveries::{DeliveryFilter, DeliveryView};
use crate::notify::policy::{PolicyChange, PolicyView};

/// `{"kind": "webhook", "url"}`, `{"kind": "email", "to"}` or
/// `{"kind": "web_push", "subscription": PushSubscription.toJSON()}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelBody {
    Webhook {
        url: String,
    },
    Email {
        to: String,
    },
    WebPush {
        subscription: SubscriptionBody,
        /// The endpoint of the subscription this one replaces.
        #[serde(default)]
        replaces: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionBody {
    endpoint: String,
    keys: SubscriptionKeys,
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

impl From<ChannelBody> for NewChannel {
    fn from(body: ChannelBody) -> NewChannel {
        match body {
            ChannelBody::Webhook { url } => NewChannel::Webhook { url },
            ChannelBody::Email { to } => NewChannel::Email { to },
            ChannelBody::WebPush {
                subscription,
                replaces,
            } => NewChannel::WebPush {
                endpoint: subscription.endpoint,
                p256dh: subscription.keys.p256dh,
                auth: subscription.keys.auth,
                replaces,
            },
        }
    }
}

pub async fn add_channel(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Body(body): Body<ChannelBody>,
) -> Result<(StatusCode, Json<Added>), ApiError> {
    let added = app.notifier.add_channel(&ctx, body.into()).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn list_channels(
    State(app): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Json<Vec<Channel>>, ApiError> {
    Ok(Json(app.notifier.channels(ctx.tenant_id).await?))
}

pub async fn remove_channel(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let id = domain::parse_uuid("channel_id", &id)?;
    app.notifier.remove_channel(&ctx, id).await?;
    Ok(Json(json!({ "success": true, "id": id })))
}

pub async fn test_channel(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    let id = domain::parse_uuid("channel_id", &id)?;
    Ok(Json(app.notifier.test_channel(&ctx, id).await?))
}

#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    before_id: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

impl DeliveriesQuery {
    fn filter(&self) -> Result<DeliveryFilter, InvalidInput> {
        let uuid = |field: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| domain::parse_uuid(field, t))
                .transpose()
        };
        let before = self
            .before
            .as_deref()
            .map(|text| {
                OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(
                    |_| InvalidInput::new("before", "must be an RFC 3339 time (a next_before)"),
                )
            })
            .transpose()?;
        let before_id = uuid("before_id", &self.before_id)?;
        if before_id.is_some() && before.is_none() {
            return Err(InvalidInput::new(
                "before_id",
                "continues a page with before (the previous page's next_before and next_before_id)",
            ));
        }
        // Without an id: everything created before the time (no delivery's id is below nil).
        let before = before.map(|at| (at, before_id.unwrap_or(Uuid::nil())));
        Ok(DeliveryFilter {
            status: self
                .status
                .as_deref()
                .map(DeliveryFilter::status)
                .transpose()?,
            channel_id: uuid("channel_id", &self.channel_id)?,
            session_id: uuid("session_id", &self.session_id)?,
            before,
            limit: domain::parse_limit(self.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct DeliveriesPage {
    /// Newest first, each with its attempts.
    deliveries: Vec<DeliveryView>,
    /// Pass as `before` and `before_id` for the next page (absent on the last page): many
    /// deliveries of one notification share a time.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before_id: Option<Uuid>,
}

pub async fn deliveries(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Params(query): Params<DeliveriesQuery>,
) -> Result<Json<DeliveriesPage>, ApiError> {
    let filter = query.filter()?;
    let deliveries = app.notifier.deliveries(ctx.tenant_id, &filter).await?;
    let last = (deliveries.len() as i64 == filter.limit)
        .then(|| deliveries.last())
        .flatten();
    let (next_before, next_before_id) = match last {
        Some(d) => (Some(crate::wire::timestamp(d.created_at)), Some(d.id)),
        None => (None, None),
    };
    Ok(Json(DeliveriesPage {
        deliveries,
        next_before,
        next_before_id,
    }))
}

pub async fn get_settings(
    State(app): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Json<PolicyView>, ApiError> {
    Ok(Json(app.notifier.policy(ctx.tenant_id).await?.into()))
}

/// Fields given replace the policy's; each change is recorded in the log.
pub async fn put_settings(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Body(change): Body<PolicyChange>,
) -> Result<Json<PolicyView>, ApiError> {
    Ok(Json(
        app.notifier.change_policy(&ctx, &change).await?.into(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    focused: bool,
}

/// The caller's inbox is focused (renewed while it stays so) or no longer is.
pub async fn put_presence(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Body(presence): Body<Presence>,
) -> Result<StatusCode, ApiError> {
    app.notifier.presence(&ctx, presence.focused).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Public: browsers need it to subscribe, and it is public by nature.
pub async fn vapid_public_key(State(app): State<AppState>) -> Json<Value> {
    Json(json!({ "public_key": app.notifier.vapid_public_key() }))
}
