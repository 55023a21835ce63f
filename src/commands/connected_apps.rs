//! Connected apps (MCP hosts that signed in by OAuth, `crate::oauth`): the rules of their
//! lifecycle, which every way in (the token endpoint, the inbox, REST, `keys revoke`) asks.
//!
//! An app is connected when its authorization code is exchanged: it then holds an API key of
//! the person who allowed it (`app_connected`). It is disconnected by that person (inbox,
//! REST), by the operator (`keys revoke`), by itself (token revocation), or by the server when
//! a code or refresh token comes back a second time, a sign that someone else holds a copy
//! (`app_disconnected`, with the reason). Disconnecting revokes the key, which ends its access
//! on every node at once. Neither event carries a token or secret.

use projections::{AppConnected, AppDisconnected, Event};
use sqlx::PgPool;
use uuid::Uuid;

use super::account_fact::AccountFact;
use super::{CommandError, Context, transact};
use crate::auth::api_keys::{self, ApiKey, KeyStoreError};
use crate::eventlog::EventLog;

/// What a person must have before an app can be connected (for the refusal).
const NOUN: &str = "connecting apps";

/// Record that `key_id` was made for the app `client_id`; the event's sequence number.
pub async fn record_connected(
    log: &EventLog,
    ctx: &Context,
    key_id: Uuid,
    client_id: &str,
    client_name: &str,
    redirect_uri: &str,
) -> Result<i64, CommandError> {
    let event = Event::AppConnected(AppConnected {
        key_id,
        client_id: client_id.to_owned(),
        client_name: client_name.to_owned(),
        redirect_host: redirect_host(redirect_uri),
        scope: ctx.scope.as_str().to_owned(),
    });
    transact(
        log,
        ctx,
        &AccountFact::new(key_id, "connected", event, NOUN),
    )
    .await
}

/// Where a redirect URI leads, without its path and query: `https://claude.ai`, or an app's
/// own scheme, `cursor:` (whose origin a browser would call `null`).
pub fn redirect_host(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url.origin().ascii_serialization(),
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => String::new(),
    }
}

/// The tenant's connected apps (their keys), newest first; disconnected ones too when
/// `with_disconnected`.
pub async fn apps(
    pool: &PgPool,
    tenant_id: Uuid,
    with_disconnected: bool,
) -> Result<Vec<ApiKey>, CommandError> {
    let mut keys = api_keys::list(pool, tenant_id).await.map_err(store)?;
    keys.retain(|k| k.is_app() && (with_disconnected || k.revoked_at.is_none()));
    keys.reverse();
    Ok(keys)
}

/// The caller disconnects their app `key_id` (an app of another tenant, or an ordinary key,
/// is not found).
pub async fn disconnect_own(
    log: &EventLog,
    ctx: &Context,
    key_id: Uuid,
) -> Result<ApiKey, CommandError> {
    ctx.require_write()?;
    let owned = apps(log.pool(), ctx.tenant_id, true)
        .await?
        .into_iter()
        .any(|k| k.id == key_id);
    if !owned {
        return Err(CommandError::NotFound(format!(
            "no connected app {key_id} in this account"
        )));
    }
    disconnect(log, ctx, key_id, "disconnected by its person").await
}

/// Revoke key `key_id`, whoever holds it; when it is an app's, record why (`reason`). What the
/// operator's `keys revoke` and the OAuth endpoints call.
pub async fn disconnect(
    log: &EventLog,
    ctx: &Context,
    key_id: Uuid,
    reason: &str,
) -> Result<ApiKey, CommandError> {
    let key = api_keys::revoke(log.pool(), key_id).await.map_err(store)?;
    if key.is_app() {
        let ctx = Context {
            tenant_id: key.tenant_id,
            ..ctx.clone()
        };
        let event = Event::AppDisconnected(AppDisconnected {
            key_id,
            reason: reason.to_owned(),
        });
        transact(
            log,
            &ctx,
            &AccountFact::new(key_id, "disconnected", event, NOUN),
        )
        .await?;
    }
    Ok(key)
}

fn store(e: KeyStoreError) -> CommandError {
    match e {
        KeyStoreError::NotFound(id) => CommandError::NotFound(format!("no API key {id}")),
        KeyStoreError::Invalid(m) => CommandError::BadRequest(m),
        KeyStoreError::Database(e) => CommandError::Unavailable(format!("database: {e}")),
        KeyStoreError::Signing(e) => CommandError::Internal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::redirect_host;

    #[test]
    fn redirect_hosts_are_web_origins_or_an_apps_scheme() {
        assert_eq!(
            redirect_host("https://claude.ai/api/mcp/auth_callback"),
            "https://claude.ai"
        );
        assert_eq!(
            redirect_host("http://127.0.0.1:9/cb?x=1"),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            redirect_host("cursor://anysphere.cursor-retrieval/oauth/cb"),
            "cursor:"
        );
        assert_eq!(
            redirect_host("com.example.app:/oauth2redirect"),
            "com.example.app:"
        );
    }
}
