//! Connected apps' credentials: authorization codes, the grant behind each app's API key, its
//! access tokens and rotating refresh tokens, and the clients that registered themselves. The
//! OAuth protocol around them is `crate::oauth`; this module only stores and checks.
//!
//! - A code is good once, for [`CODE_LIFETIME`]; presented again it revokes what it bought.
//! - An access token is a JWT naming the app's key (`jti`), the person (`sub`), the resource it
//!   is for (`aud`) and an expiry [`ACCESS_TOKEN_LIFETIME`] away. It is checked like every
//!   key's token (signature, the key's record: revoked on every node at once), plus audience.
//! - A refresh token is `sbr_<key>_<secret>`; only its digest is kept. Each refresh replaces it;
//!   the one before is remembered, and presenting that one again (a stolen copy, or the thief's
//!   after the owner refreshed) ends the grant. Unused for [`REFRESH_IDLE_LIFETIME`], it lapses.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Claims;
use super::api_keys::{KeyStoreError, token_sha256};
use super::signing::SigningKeys;
use crate::commands::Scope;

/// How long an authorization code may wait to be exchanged.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How long an access token is good for.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How long after a rotation the refresh token it replaced counts as a concurrent refresh of
/// the same client (two requests that both found their access token expired), not a replay.
pub const ROTATION_GRACE: Duration = Duration::from_secs(30);
/// How long a refresh token stays good unused.
pub const REFRESH_IDLE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A random secret, URL-safe.
fn secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn after(now: OffsetDateTime, span: Duration) -> OffsetDateTime {
    now + time::Duration::try_from(span).unwrap_or(time::Duration::DAY)
}

/// What the person allowed, waiting to be exchanged for tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    /// The authorization request named its redirect URI (the token request must then too).
    pub redirect_uri_given: bool,
    /// PKCE: base64url(SHA-256(verifier)).
    pub code_challenge: String,
    pub resource: String,
    pub scope: Scope,
}

/// Record `authorization`; the code to hand to the client.
pub async fn create_code(
    pool: &PgPool,
    authorization: &Authorization,
) -> Result<String, sqlx::Error> {
    let code = format!("sbc_{}", secret());
    let now = crate::eventlog::chain::now_micros();
    sqlx::query(
        "INSERT INTO oauth_codes (code_sha256, tenant_id, client_id, client_name, redirect_uri,
                                  redirect_uri_given, code_challenge, resource, scope, created_at,
                                  expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(token_sha256(&code))
    .bind(authorization.tenant_id)
    .bind(&authorization.client_id)
    .bind(&authorization.client_name)
    .bind(&authorization.redirect_uri)
    .bind(authorization.redirect_uri_given)
    .bind(&authorization.code_challenge)
    .bind(&authorization.resource)
    .bind(authorization.scope.as_str())
    .bind(now)
    .bind(after(now, CODE_LIFETIME))
    .execute(pool)
    .await?;
    // Codes nobody exchanged are of no use once expired.
    sqlx::query("DELETE FROM oauth_codes WHERE expires_at < now() - interval '1 day'")
        .execute(pool)
        .await?;
    Ok(code)
}

/// What presenting a code came to.
#[derive(Debug)]
pub enum Exchanged<E> {
    /// Good: the app's key, its grant and first tokens exist now, and the code is used up.
    Connected(Box<(Tokens, Authorization)>),
    /// The caller's check refused it (`E`); the code stays as it was.
    Refused(E),
    /// Used before: the key it was exchanged for must go.
    Reused { tenant_id: Uuid, key_id: Uuid },
    /// Unknown or expired.
    Invalid,
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    tenant_id: Uuid,
    client_id: String,
    client_name: String,
    redirect_uri: String,
    redirect_uri_given: bool,
    code_challenge: String,
    resource: String,
    scope: String,
    expires_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
    key_id: Option<Uuid>,
}

/// Exchange `code` for an app's key and tokens if `check` (the token request's client,
/// redirect URI, PKCE verifier and resource) accepts what it was issued for. One transaction
/// that locks the code: of concurrent presentations exactly one connects, and the others find
/// the key it made (to revoke it). A refused check leaves the code usable: someone holding a
/// stolen code without the verifier cannot use it up.
pub async fn exchange_code<E>(
    pool: &PgPool,
    keys: &SigningKeys,
    code: &str,
    check: impl FnOnce(&Authorization) -> Result<(), E>,
) -> Result<Exchanged<E>, KeyStoreError> {
    let digest = token_sha256(code);
    let mut tx = pool.begin().await?;
    let row: Option<CodeRow> = sqlx::query_as(
        "SELECT tenant_id, client_id, client_name, redirect_uri, redirect_uri_given,
                code_challenge, resource, scope, expires_at, used_at, key_id
         FROM oauth_codes WHERE code_sha256 = $1 FOR UPDATE",
    )
    .bind(&digest)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Exchanged::Invalid);
    };
    if row.used_at.is_some() {
        return Ok(match row.key_id {
            Some(key_id) => Exchanged::Reused {
                tenant_id: row.tenant_id,
                key_id,
            },
            None => Exchanged::Invalid,
        });
    }
    let now = crate::eventlog::chain::now_micros();
    if row.expires_at <= now {
        return Ok(Exchanged::Invalid);
    }
    let authorization = Authorization {
        tenant_id: row.tenant_id,
        client_id: row.client_id,
        client_name: row.client_name,
        redirect_uri: row.redirect_uri,
        redirect_uri_given: row.redirect_uri_given,
        code_challenge: row.code_challenge,
        resource: row.resource,
        scope: Scope::parse(&row.scope).unwrap_or(Scope::Agent),
    };
    if let Err(refused) = check(&authorization) {
        return Ok(Exchanged::Refused(refused));
    }
    let key_id = Uuid::new_v4();
    let refresh = refresh_token(key_id);
    let access = access_token(
        keys,
        key_id,
        authorization.tenant_id,
        &authorization.resource,
        authorization.scope,
        now,
    )?;
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, scope, token_sha256, created_at)
         VALUES ($1, $2, $3, $4, NULL, $5)",
    )
    .bind(key_id)
    .bind(authorization.tenant_id)
    .bind(&authorization.client_name)
    .bind(authorization.scope.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO oauth_grants (key_id, tenant_id, client_id, redirect_uri, resource,
                                   refresh_sha256, refreshed_at, refresh_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(key_id)
    .bind(authorization.tenant_id)
    .bind(&authorization.client_id)
    .bind(&authorization.redirect_uri)
    .bind(&authorization.resource)
    .bind(token_sha256(&refresh))
    .bind(now)
    .bind(after(now, REFRESH_IDLE_LIFETIME))
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE oauth_codes SET used_at = $2, key_id = $3 WHERE code_sha256 = $1")
        .bind(&digest)
        .bind(now)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let tokens = Tokens {
        key_id,
        tenant_id: authorization.tenant_id,
        access_token: access,
        expires_in: ACCESS_TOKEN_LIFETIME.as_secs(),
        refresh_token: refresh,
        scope: authorization.scope,
    };
    Ok(Exchanged::Connected(Box::new((tokens, authorization))))
}

/// A token response's contents.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
    pub scope: Scope,
}

fn access_token(
    keys: &SigningKeys,
    key_id: Uuid,
    tenant_id: Uuid,
    resource: &str,
    scope: Scope,
    now: OffsetDateTime,
) -> Result<String, KeyStoreError> {
    let claims = Claims {
        sub: tenant_id.to_string(),
        jti: Some(key_id.to_string()),
        iat: Some(now.unix_timestamp()),
        exp: Some(after(now, ACCESS_TOKEN_LIFETIME).unix_timestamp()),
        scope: Some(scope.as_str().to_owned()),
        aud: Some(resource.to_owned()),
    };
    keys.sign(&claims).map_err(KeyStoreError::Signing)
}

fn refresh_token(key_id: Uuid) -> String {
    format!("sbr_{}_{}", key_id.simple(), secret())
}

/// The key a refresh token names, if it is one of ours.
pub fn refresh_token_key(token: &str) -> Option<Uuid> {
    let rest = token.strip_prefix("sbr_")?;
    let (key, _) = rest.split_once('_')?;
    Uuid::try_parse(key).ok()
}

/// What presenting a refresh token found.
#[derive(Debug)]
pub enum Refreshed {
    /// New tokens; the presented refresh token is used up.
    Tokens(Tokens),
    /// The refresh token before the current one: a copy is in other hands; the grant must end.
    Replayed { tenant_id: Uuid, key_id: Uuid },
    /// Not (or no longer) good: why.
    Invalid(&'static str),
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    tenant_id: Uuid,
    client_id: String,
    resource: String,
    refresh_sha256: Vec<u8>,
    previous_refresh_sha256: Option<Vec<u8>>,
    refresh_expires_at: OffsetDateTime,
    refreshed_at: OffsetDateTime,
    scope: String,
    revoked_at: Option<OffsetDateTime>,
}

/// Rotate `token` (a refresh token presented by `client_id`).
pub async fn refresh(
    pool: &PgPool,
    keys: &SigningKeys,
    token: &str,
    client_id: &str,
) -> Result<Refreshed, KeyStoreError> {
    let Some(key_id) = refresh_token_key(token) else {
        return Ok(Refreshed::Invalid("not a refresh token of this server"));
    };
    let grant: Option<GrantRow> = sqlx::query_as(
        "SELECT g.tenant_id, g.client_id, g.resource, g.refresh_sha256, g.previous_refresh_sha256,
                g.refresh_expires_at, g.refreshed_at, k.scope, k.revoked_at
         FROM oauth_grants g JOIN api_keys k ON k.id = g.key_id WHERE g.key_id = $1",
    )
    .bind(key_id)
    .fetch_optional(pool)
    .await?;
    let Some(grant) = grant else {
        return Ok(Refreshed::Invalid("not a refresh token of this server"));
    };
    if grant.revoked_at.is_some() {
        return Ok(Refreshed::Invalid("the app was disconnected"));
    }
    if grant.client_id != client_id {
        return Ok(Refreshed::Invalid(
            "the refresh token was issued to another client",
        ));
    }
    let presented = token_sha256(token);
    let now = crate::eventlog::chain::now_micros();
    if grant.previous_refresh_sha256.as_deref() == Some(&presented[..]) {
        if now < after(grant.refreshed_at, ROTATION_GRACE) {
            return Ok(Refreshed::Invalid(
                "the refresh token was just rotated by a concurrent refresh: use the newer tokens",
            ));
        }
        return Ok(Refreshed::Replayed {
            tenant_id: grant.tenant_id,
            key_id,
        });
    }
    if grant.refresh_sha256 != presented {
        return Ok(Refreshed::Invalid("not a refresh token of this server"));
    }
    if grant.refresh_expires_at <= now {
        return Ok(Refreshed::Invalid(
            "the refresh token lapsed unused: connect the app again",
        ));
    }
    let scope = Scope::parse(&grant.scope).unwrap_or(Scope::Agent);
    let refresh = refresh_token(key_id);
    let rotated = sqlx::query(
        "UPDATE oauth_grants
         SET previous_refresh_sha256 = refresh_sha256, refresh_sha256 = $3,
             refreshed_at = $4, refresh_expires_at = $5
         WHERE key_id = $1 AND refresh_sha256 = $2",
    )
    .bind(key_id)
    .bind(&presented)
    .bind(token_sha256(&refresh))
    .bind(now)
    .bind(after(now, REFRESH_IDLE_LIFETIME))
    .execute(pool)
    .await?
    .rows_affected();
    if rotated == 0 {
        // A concurrent refresh with the same token got there first.
        return Ok(Refreshed::Invalid("the refresh token was already used"));
    }
    Ok(Refreshed::Tokens(Tokens {
        key_id,
        tenant_id: grant.tenant_id,
        access_token: access_token(keys, key_id, grant.tenant_id, &grant.resource, scope, now)?,
        expires_in: ACCESS_TOKEN_LIFETIME.as_secs(),
        refresh_token: refresh,
        scope,
    }))
}

/// The app key a token names (a refresh token, or an access token of ours), with its tenant
/// and client, for revocation (RFC 7009).
pub async fn grant_of(
    pool: &PgPool,
    keys: &SigningKeys,
    token: &str,
) -> Result<Option<(Uuid, Uuid, String)>, sqlx::Error> {
    let key_id = match refresh_token_key(token) {
        Some(key_id) => Some((key_id, Some(token_sha256(token)))),
        None => keys
            .verify::<Claims>(token)
            .ok()
            .and_then(|claims| claims.jti.as_deref().and_then(|j| Uuid::try_parse(j).ok()))
            .map(|key_id| (key_id, None)),
    };
    let Some((key_id, refresh_digest)) = key_id else {
        return Ok(None);
    };
    let row: Option<(Uuid, String, Vec<u8>)> = sqlx::query_as(
        "SELECT tenant_id, client_id, refresh_sha256 FROM oauth_grants WHERE key_id = $1",
    )
    .bind(key_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(tenant_id, client_id, current)| {
        let matches = refresh_digest.is_none_or(|d| d == current);
        matches.then_some((key_id, tenant_id, client_id))
    }))
}

/// A client that registered itself (RFC 7591).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RegisteredClient {
    pub client_id: String,
    pub client_name: String,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub created_at: OffsetDateTime,
}

pub async fn register(pool: &PgPool, client: &RegisteredClient) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_clients (client_id, client_name, client_uri, logo_uri, redirect_uris,
                                    created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&client.client_id)
    .bind(&client.client_name)
    .bind(&client.client_uri)
    .bind(&client.logo_uri)
    .bind(&client.redirect_uris)
    .bind(client.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn registered(
    pool: &PgPool,
    client_id: &str,
) -> Result<Option<RegisteredClient>, sqlx::Error> {
    sqlx::query_as(
        "SELECT client_id, client_name, client_uri, logo_uri, redirect_uris, created_at
         FROM oauth_clients WHERE client_id = $1",
    )
    .bind(client_id)
    .fetch_optional(pool)
    .await
}

/// How many clients registered in the last day.
pub async fn registrations_today(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM oauth_clients WHERE created_at > now() - interval '1 day'",
    )
    .fetch_one(pool)
    .await
}

/// Registrations nobody connected within a day are forgotten (registering needs no
/// credentials, so it must not grow the table without bound).
pub async fn forget_unused_registrations(pool: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM oauth_clients c WHERE c.created_at < now() - interval '1 day'
         AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = c.client_id)",
    )
    .execute(pool)
    .await?
    .rows_affected())
}
