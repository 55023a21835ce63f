//! People's sign-in to the inbox: one-time links and the web sessions behind the cookie.
//!
//! A sign-in link is a random token whose SHA-256 is stored with its tenant and expiry. Using
//! it is one statement that marks it used only if it is unused and unexpired, in the same
//! transaction that records the web session: of two concurrent uses exactly one signs in, and a
//! failure after the link was marked used leaves it unused.
//!
//! A web session is a server-side record; the cookie carries its id and a random secret, the row
//! only the secret's digest. Ending sessions (sign-out, sign out everywhere, revoking the API key
//! a session was made from) notifies `switchboard_keys` with `web_session:<id>` in the ending
//! transaction, so every node forgets its cached record and ends that session's open streams.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore};
use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::api_keys::{KEYS_CHANNEL, token_sha256};

/// How long a sign-in link works unless told otherwise.
pub const DEFAULT_LINK_MINUTES: u32 = 15;
/// The longest a sign-in link may be made to work (a week).
pub const MAX_LINK_MINUTES: u32 = 7 * 24 * 60;
/// How long a browser stays signed in (less when the API key it signed in with expires sooner).
pub const WEB_SESSION_LIFETIME: Duration = Duration::days(30);
/// The prefix of a `switchboard_keys` notification that names a web session.
pub const NOTICE_PREFIX: &str = "web_session:";

const INSERT_LINK: &str = "\
INSERT INTO login_links (token_sha256, tenant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";

/// Links expired for a day are of no use to anyone, not even to explain a failed sign-in.
const FORGET_OLD_LINKS: &str =
    "DELETE FROM login_links WHERE expires_at < now() - interval '1 day'";

const USE_LINK: &str = "\
UPDATE login_links SET used_at = now()
WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > now()
RETURNING tenant_id";

const INSERT_SESSION: &str = "\
INSERT INTO web_sessions (id, tenant_id, token_sha256, api_key_id, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)";

const LOOKUP_SESSION: &str = "\
SELECT tenant_id, token_sha256, expires_at, revoked_at IS NOT NULL AS revoked
FROM web_sessions WHERE id = $1";

const END_SESSION: &str = "\
WITH ended AS (
    UPDATE web_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id
)
SELECT count(pg_notify($2, $3 || id::text)) FROM ended";

const END_TENANT_SESSIONS: &str = "\
WITH ended AS (
    UPDATE web_sessions SET revoked_at = now()
    WHERE tenant_id = $1 AND revoked_at IS NULL RETURNING id
)
SELECT count(pg_notify($2, $3 || id::text)) FROM ended";

const END_KEY_SESSIONS: &str = "\
WITH ended AS (
    UPDATE web_sessions SET revoked_at = now()
    WHERE tenant_id = $1 AND api_key_id = $2 AND revoked_at IS NULL RETURNING id
)
SELECT count(pg_notify($3, $4 || id::text)) FROM ended";

const RECORD_SEEN: &str = "\
UPDATE web_sessions w SET last_seen_at = greatest(w.last_seen_at, u.at)
FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE w.id = u.id";

/// A new sign-in link's token (what follows `login/` in the URL) and when it stops working.
#[derive(Debug)]
pub struct LoginLink {
    pub token: String,
    pub expires_at: OffsetDateTime,
}

/// Why a sign-in link did not sign anyone in.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkRefused {
    /// No such link (mistyped, or expired long ago and forgotten).
    Unknown,
    /// The link was used already: each works once.
    Used,
    Expired,
}

impl std::fmt::Display for LinkRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkRefused::Unknown => "This sign-in link is not valid.",
            LinkRefused::Used => "This sign-in link has been used already: each link works once.",
            LinkRefused::Expired => "This sign-in link has expired.",
        })
    }
}

/// A freshly started web session: the cookie value to hand to the browser, once.
#[derive(Debug)]
pub struct NewWebSession {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub cookie: String,
    pub expires_at: OffsetDateTime,
}

/// What a web session id resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredWebSession {
    pub tenant_id: Uuid,
    pub token_sha256: Vec<u8>,
    pub expires_at: OffsetDateTime,
    pub revoked: bool,
}

#[derive(sqlx::FromRow)]
struct SessionRecord {
    tenant_id: Uuid,
    token_sha256: Vec<u8>,
    expires_at: OffsetDateTime,
    revoked: bool,
}

/// 32 random bytes, URL-safe: unguessable, and fine in a path or a cookie.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Make a sign-in link for `tenant_id` that works once within `minutes`.
pub async fn create_link(
    pool: &PgPool,
    tenant_id: Uuid,
    minutes: u32,
) -> Result<LoginLink, sqlx::Error> {
    let token = random_token();
    let now = crate::eventlog::chain::now_micros();
    let expires_at = now + Duration::minutes(minutes.clamp(1, MAX_LINK_MINUTES).into());
    sqlx::query(FORGET_OLD_LINKS).execute(pool).await?;
    sqlx::query(INSERT_LINK)
        .bind(token_sha256(&token))
        .bind(tenant_id)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(LoginLink { token, expires_at })
}

const LINK_STATE_NOW: &str = "\
SELECT used_at IS NOT NULL, expires_at <= now() FROM login_links WHERE token_sha256 = $1";

/// Would this sign-in link work now? `None` if so, else why not. Reads only: looking at a
/// link does not use it.
pub async fn link_state(pool: &PgPool, token: &str) -> Result<Option<LinkRefused>, sqlx::Error> {
    let row: Option<(bool, bool)> = sqlx::query_as(LINK_STATE_NOW)
        .bind(token_sha256(token))
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        None => Some(LinkRefused::Unknown),
        Some((true, _)) => Some(LinkRefused::Used),
        Some((false, true)) => Some(LinkRefused::Expired),
        Some((false, false)) => None,
    })
}

/// Use a sign-in link: a web session for its tenant, or why not.
pub async fn sign_in_with_link(
    pool: &PgPool,
    token: &str,
) -> Result<Result<NewWebSession, LinkRefused>, sqlx::Error> {
    let digest = token_sha256(token);
    let mut tx = pool.begin().await?;
    let tenant: Option<Uuid> = sqlx::query_scalar(USE_LINK)
        .bind(&digest)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(tenant_id) = tenant else {
        tx.rollback().await?;
        // It was refused a moment ago; if it reads as good now, it expired in between.
        let why = link_state(pool, token).await?;
        return Ok(Err(why.unwrap_or(LinkRefused::Expired)));
    };
    let session = start(&mut tx, tenant_id, None, None).await?;
    tx.commit().await?;
    Ok(Ok(session))
}

/// A web session made from a pasted API key: it ends when the key is revoked or expires.
pub async fn sign_in_with_key(
    pool: &PgPool,
    tenant_id: Uuid,
    key_id: Uuid,
    key_expires_at: Option<OffsetDateTime>,
) -> Result<NewWebSession, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    start(&mut conn, tenant_id, Some(key_id), key_expires_at).await
}

async fn start(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    api_key_id: Option<Uuid>,
    not_after: Option<OffsetDateTime>,
) -> Result<NewWebSession, sqlx::Error> {
    let id = Uuid::new_v4();
    let secret = random_token();
    let now = crate::eventlog::chain::now_micros();
    let lifetime_end = now + WEB_SESSION_LIFETIME;
    let expires_at = not_after.map_or(lifetime_end, |at| at.min(lifetime_end));
    sqlx::query(INSERT_SESSION)
        .bind(id)
        .bind(tenant_id)
        .bind(token_sha256(&secret))
        .bind(api_key_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    Ok(NewWebSession {
        id,
        tenant_id,
        cookie: format!("{}.{secret}", id.simple()),
        expires_at,
    })
}

/// The session id and secret of a cookie value, if it has that shape.
pub fn parse_cookie(value: &str) -> Option<(Uuid, &str)> {
    let (id, secret) = value.split_once('.')?;
    let id = Uuid::try_parse(id).ok()?;
    (!secret.is_empty()).then_some((id, secret))
}

pub async fn lookup(pool: &PgPool, id: Uuid) -> Result<Option<StoredWebSession>, sqlx::Error> {
    let row: Option<SessionRecord> = sqlx::query_as(LOOKUP_SESSION)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| StoredWebSession {
        tenant_id: r.tenant_id,
        token_sha256: r.token_sha256,
        expires_at: r.expires_at,
        revoked: r.revoked,
    }))
}

/// End one web session (sign-out), on every node.
pub async fn end(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(END_SESSION)
        .bind(id)
        .bind(KEYS_CHANNEL)
        .bind(NOTICE_PREFIX)
        .execute(pool)
        .await?;
    Ok(())
}

/// End every web session of a tenant ("sign out everywhere"); returns how many there were.
pub async fn end_all(pool: &PgPool, tenant_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(END_TENANT_SESSIONS)
        .bind(tenant_id)
        .bind(KEYS_CHANNEL)
        .bind(NOTICE_PREFIX)
        .fetch_one(pool)
        .await
}

/// End the web sessions made by pasting API key `key_id`, in the transaction revoking it.
pub async fn end_for_key(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    key_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(END_KEY_SESSIONS)
        .bind(tenant_id)
        .bind(key_id)
        .bind(KEYS_CHANNEL)
        .bind(NOTICE_PREFIX)
        .fetch_one(conn)
        .await
}

/// Record when web sessions were last seen: one statement for a whole batch.
pub async fn record_seen(
    pool: &PgPool,
    seen: &[(Uuid, OffsetDateTime)],
) -> Result<(), sqlx::Error> {
    let (ids, times): (Vec<Uuid>, Vec<OffsetDateTime>) = seen.iter().copied().unzip();
    sqlx::query(RECORD_SEEN)
        .bind(ids)
        .bind(times)
        .execute(pool)
        .await?;
    Ok(())
}

/// The credential a `switchboard_keys` notification names: an API key id, or
/// `web_session:<id>`. `None` when it names none (then every cached record is forgotten).
pub fn changed_credential(payload: &str) -> Option<Uuid> {
    let id = payload.strip_prefix(NOTICE_PREFIX).unwrap_or(payload);
    Uuid::try_parse(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_an_id_and_a_secret() {
        let id = Uuid::new_v4();
        let value = format!("{}.secret", id.simple());
        assert_eq!(parse_cookie(&value), Some((id, "secret")));
        assert_eq!(parse_cookie("nonsense"), None);
        assert_eq!(parse_cookie(&format!("{}.", id.simple())), None);
        assert_eq!(parse_cookie("x.y"), None);
    }

    #[test]
    fn notifications_name_keys_and_web_sessions() {
        let id = Uuid::new_v4();
        assert_eq!(changed_credential(&id.to_string()), Some(id));
        assert_eq!(changed_credential(&format!("web_session:{id}")), Some(id));
        assert_eq!(changed_credential(""), None);
    }

    #[test]
    fn tokens_are_long_and_different() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
