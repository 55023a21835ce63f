//! API keys: long-lived tokens that name a row in `api_keys` through their `jti`. The row
//! holds the token's SHA-256 (never the token), its tenant, scope, expiry and revocation.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Claims;
use super::signing::SigningKeys;
use crate::commands::Scope;

/// NOTIFY channel that tells every node to forget a cached key.
pub const KEYS_CHANNEL: &str = "switchboard_keys";

const INSERT: &str = "\
INSERT INTO api_keys (id, tenant_id, name, scope, token_sha256, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)";

const LIST: &str = "\
SELECT k.id, k.tenant_id, k.name, k.scope, k.created_at, k.expires_at, k.revoked_at,
       k.last_used_at, g.client_id
FROM api_keys k LEFT JOIN oauth_grants g ON g.tenant_id = k.tenant_id AND g.key_id = k.id
WHERE k.tenant_id = $1 ORDER BY k.created_at, k.id";

/// Whose key `$1` is (the operator revokes keys by id alone).
const KEY_TENANT: &str = "SELECT tenant_id FROM api_keys WHERE id = $1";

/// The revocation time is the caller's: Citus refuses `now()` inside `coalesce`.
const REVOKE: &str = "\
UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3) WHERE tenant_id = $1 AND id = $2
RETURNING id, tenant_id, name, scope, created_at, expires_at, revoked_at, last_used_at,
          NULL::text AS client_id";

const APP_CLIENT: &str = "SELECT client_id FROM oauth_grants WHERE tenant_id = $1 AND key_id = $2";

const LOOKUP: &str = "\
SELECT k.tenant_id, k.scope, k.token_sha256, k.expires_at, k.revoked_at, g.resource
FROM api_keys k LEFT JOIN oauth_grants g ON g.tenant_id = k.tenant_id AND g.key_id = k.id
WHERE k.tenant_id = $1 AND k.id = $2";

const ANY_KEY: &str = "SELECT EXISTS (SELECT 1 FROM api_keys)";

/// A key as the operator sees it (never the token).
#[derive(Clone, Debug, Serialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub scope: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The OAuth client holding this key, when it is a connected app's (`crate::oauth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_client_id: Option<String>,
}

impl ApiKey {
    /// A connected app's key (made by the OAuth flow, good for the MCP endpoint only).
    pub fn is_app(&self) -> bool {
        self.app_client_id.is_some()
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    scope: String,
    created_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
    client_id: Option<String>,
}

fn api_key(row: KeyRow) -> ApiKey {
    ApiKey {
        id: row.id,
        tenant_id: row.tenant_id,
        name: row.name,
        scope: row.scope,
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        last_used_at: row.last_used_at,
        app_client_id: row.client_id,
    }
}

/// What a token's `jti` resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub tenant_id: Uuid,
    pub scope: Scope,
    /// The token's digest, for an ordinary key; a connected app's tokens are checked by
    /// signature and audience instead.
    pub token_sha256: Option<Vec<u8>>,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked: bool,
    /// The resource a connected app's key was granted for (`None`: an ordinary key).
    pub app_resource: Option<String>,
}

pub fn token_sha256(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[derive(Debug)]
pub enum KeyStoreError {
    Invalid(String),
    NotFound(Uuid),
    Signing(super::signing::KeyError),
    Database(sqlx::Error),
}

impl std::fmt::Display for KeyStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyStoreError::Invalid(m) => f.write_str(m),
            KeyStoreError::NotFound(id) => write!(f, "no API key {id}"),
            KeyStoreError::Signing(e) => write!(f, "{e}"),
            KeyStoreError::Database(e) => write!(f, "database: {e}"),
        }
    }
}

impl std::error::Error for KeyStoreError {}

impl From<sqlx::Error> for KeyStoreError {
    fn from(e: sqlx::Error) -> Self {
        KeyStoreError::Database(e)
    }
}

/// Mint a key for `tenant_id` and record it. Returns the record and the token.
pub async fn create(
    pool: &PgPool,
    keys: &SigningKeys,
    tenant_id: Uuid,
    name: &str,
    scope: Scope,
    expires_in_days: Option<u32>,
) -> Result<(ApiKey, String), KeyStoreError> {
    let name = name.trim();
    if name.is_empty() || name.contains('\0') || name.chars().count() > 200 {
        return Err(KeyStoreError::Invalid(
            "the key name must be 1 to 200 characters without NUL".into(),
        ));
    }
    let id = Uuid::new_v4();
    let now = crate::eventlog::chain::now_micros();
    let expires_at = expires_in_days.map(|days| now + time::Duration::days(days.into()));
    let claims = Claims {
        sub: tenant_id.to_string(),
        jti: Some(id.to_string()),
        iat: Some(now.unix_timestamp()),
        exp: expires_at.map(OffsetDateTime::unix_timestamp),
        scope: Some(scope.as_str().to_owned()),
        aud: None,
    };
    let token = keys.sign(&claims).map_err(KeyStoreError::Signing)?;
    sqlx::query(INSERT)
        .bind(id)
        .bind(tenant_id)
        .bind(name)
        .bind(scope.as_str())
        .bind(token_sha256(&token))
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await?;
    let key = ApiKey {
        id,
        tenant_id,
        name: name.to_owned(),
        scope: scope.as_str().to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        app_client_id: None,
    };
    Ok((key, token))
}

pub async fn list(pool: &PgPool, tenant_id: Uuid) -> Result<Vec<ApiKey>, KeyStoreError> {
    let rows: Vec<KeyRow> = sqlx::query_as(LIST).bind(tenant_id).fetch_all(pool).await?;
    Ok(rows.into_iter().map(api_key).collect())
}

/// Revoke a key, and end the web sessions made by pasting it; every node stops accepting
/// them as soon as this commits.
pub async fn revoke(pool: &PgPool, key_id: Uuid) -> Result<ApiKey, KeyStoreError> {
    let mut tx = pool.begin().await?;
    let tenant_id: Uuid = sqlx::query_scalar(KEY_TENANT)
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(KeyStoreError::NotFound(key_id))?;
    let mut row: KeyRow = sqlx::query_as(REVOKE)
        .bind(tenant_id)
        .bind(key_id)
        .bind(OffsetDateTime::now_utc())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(KeyStoreError::NotFound(key_id))?;
    row.client_id = sqlx::query_scalar(APP_CLIENT)
        .bind(tenant_id)
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?;
    let key = api_key(row);
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(KEYS_CHANNEL)
        .bind(key_id.to_string())
        .execute(&mut *tx)
        .await?;
    super::web_sessions::end_for_key(&mut tx, tenant_id, key_id).await?;
    tx.commit().await?;
    Ok(key)
}

#[derive(sqlx::FromRow)]
struct KeyRecord {
    tenant_id: Uuid,
    scope: String,
    token_sha256: Option<Vec<u8>>,
    expires_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    resource: Option<String>,
}

pub async fn lookup(
    pool: &PgPool,
    tenant_id: Uuid,
    key_id: Uuid,
) -> Result<Option<StoredKey>, sqlx::Error> {
    let row: Option<KeyRecord> = sqlx::query_as(LOOKUP)
        .bind(tenant_id)
        .bind(key_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| StoredKey {
        tenant_id: r.tenant_id,
        // The table's CHECK constraint admits only these two.
        scope: Scope::parse(&r.scope).unwrap_or(Scope::Audit),
        token_sha256: r.token_sha256,
        expires_at: r.expires_at,
        revoked: r.revoked_at.is_some(),
        app_resource: r.resource,
    }))
}

/// Has any key ever been made? (Serve prints a first key when none has.)
pub async fn any(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(ANY_KEY).fetch_one(pool).await
}

/// Record when keys were last used: one statement for a whole batch of (tenant, key, time).
pub async fn record_use(
    pool: &PgPool,
    used: &[(Uuid, Uuid, OffsetDateTime)],
) -> Result<(), sqlx::Error> {
    let tenants: Vec<Uuid> = used.iter().map(|u| u.0).collect();
    let ids: Vec<Uuid> = used.iter().map(|u| u.1).collect();
    let times: Vec<OffsetDateTime> = used.iter().map(|u| u.2).collect();
    sqlx::query(
        "UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, u.at)
         FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS u(tenant_id, id, at)
         WHERE k.tenant_id = u.tenant_id AND k.id = u.id",
    )
    .bind(tenants)
    .bind(ids)
    .bind(times)
    .execute(pool)
    .await?;
    Ok(())
}
