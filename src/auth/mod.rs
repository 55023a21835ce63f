//! Who is calling: Bearer JWTs checked against the pinned algorithm and, when they name an
//! API key (`jti`), against that key's record; or a person's web session (the inbox cookie),
//! checked against its record.
//!
//! Access is checked when a request starts and again whenever it would hand something over
//! later (a parked long-poll that wakes, a stream about to send, an MCP call whose answer
//! arrived): [`Authenticator::revalidate`]. A parked request also ends on its own when its
//! credential does: [`Authenticator::guard`] resolves when the key is revoked on any node
//! (the revoking transaction notifies `switchboard_keys`) or when the credential expires.
//!
//! Key and web-session records are cached per process, but only while the process listens
//! for revocations, and each for at most [`KEY_CACHE_TTL`]: a LISTEN connection that went
//! silent without an error (half-open TCP) can delay a revocation by that long, never longer.
//! The cache holds at most [`MAX_CACHED_KEYS`] records. Last use is kept in memory and written
//! in batches.

pub mod api_keys;
pub mod apps;
pub mod request;
pub mod signing;
pub mod web_sessions;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use crate::commands::Scope;
use api_keys::StoredKey;
pub use signing::SigningKeys;
use web_sessions::StoredWebSession;

/// Longest a cached key record is trusted without reading it again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most key records cached at once.
pub const MAX_CACHED_KEYS: usize = 10_000;

/// The claims Switchboard reads and writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The tenant (user id).
    pub sub: String,
    /// The API key this token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// `agent` or `audit`; for API keys the key record decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The one resource a connected app's access token is good for (RFC 8707, RFC 9068):
    /// the MCP endpoint's URL. Absent on ordinary API keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Where a token is presented: connected apps' tokens are good for the MCP endpoint only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The REST API, the event streams, the inbox's key sign-in.
    Api,
    /// `/mcp`.
    Mcp,
}

/// What authorised a caller, and so what can end its access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Credential {
    /// An API key: a token whose `jti` names a row in `api_keys` (revocable), and its tenant
    /// (keys are found by both: on Citus the tenant says which node holds the row).
    ApiKey { tenant_id: Uuid, key_id: Uuid },
    /// A signed token without a key record (a dashboard's own session token): valid until
    /// its `exp`, not revocable.
    Token,
    /// A person signed in to the inbox: the cookie names a row in `web_sessions` (revocable).
    WebSession(Uuid),
    /// The operator's own tools (CLI, benchmarks), which hold the database itself.
    System,
}

/// What a caller's access rests on: the credential, and when it expires by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub credential: Credential,
    pub expires_at: Option<OffsetDateTime>,
}

impl Grant {
    /// The operator's own tools: no key, no expiry.
    pub const SYSTEM: Grant = Grant {
        credential: Credential::System,
        expires_at: None,
    };

    pub fn key_id(&self) -> Option<Uuid> {
        match self.credential {
            Credential::ApiKey { key_id, .. } => Some(key_id),
            Credential::Token | Credential::WebSession(_) | Credential::System => None,
        }
    }

    /// The web session a person acts through, when they do.
    pub fn web_session(&self) -> Option<Uuid> {
        match self.credential {
            Credential::WebSession(id) => Some(id),
            Credential::ApiKey { .. } | Credential::Token | Credential::System => None,
        }
    }

    /// The id of the revocable record behind this grant, if any (what a revocation names).
    fn record_id(&self) -> Option<Uuid> {
        self.key_id().or(self.web_session())
    }
}

/// An authenticated caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub tenant_id: Uuid,
    pub scope: Scope,
    pub grant: Grant,
}

#[derive(Debug)]
pub enum AuthError {
    /// No credentials were sent at all.
    Missing(String),
    /// Credentials were sent and are not (or no longer) good; the message says why.
    Unauthorized(String),
    /// The key store could not be consulted.
    Unavailable,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Missing(m) | AuthError::Unauthorized(m) => f.write_str(m),
            AuthError::Unavailable => f.write_str("the key store is unavailable; retry shortly"),
        }
    }
}

impl std::error::Error for AuthError {}

fn unauthorized(reason: &str) -> AuthError {
    AuthError::Unauthorized(format!("Invalid token: {reason}"))
}

/// Something about credentials changed: one key or web session (`Some`), or possibly any
/// (`None`). Key and web-session ids are both random UUIDs, so one id names one record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct KeyChange {
    epoch: u64,
    key: Option<Uuid>,
}

/// A revocable credential's record, as the store holds it.
#[derive(Clone)]
enum Record {
    Key(StoredKey),
    WebSession(StoredWebSession),
}

struct Cached {
    record: Record,
    fetched: Instant,
}

pub struct Authenticator {
    keys: Arc<SigningKeys>,
    pool: PgPool,
    cache: Mutex<HashMap<Uuid, Cached>>,
    /// True while this process listens for revocations; without that, no caching.
    cache_live: AtomicBool,
    /// Bumped by every invalidation, so a lookup that raced one is not cached.
    epoch: AtomicU64,
    /// Tells parked requests that a key changed, so that they check theirs.
    changes: watch::Sender<KeyChange>,
    /// When API keys and web sessions were last used, not yet written.
    last_used: Mutex<HashMap<Credential, OffsetDateTime>>,
}

impl Authenticator {
    pub fn new(keys: Arc<SigningKeys>, pool: PgPool) -> Authenticator {
        Authenticator {
            keys,
            pool,
            cache: Mutex::new(HashMap::new()),
            cache_live: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            changes: watch::Sender::new(KeyChange::default()),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// The signing keys, to keep.
    pub fn shared_keys(&self) -> Arc<SigningKeys> {
        self.keys.clone()
    }

    /// A token presented to the REST API (or pasted to sign in): an API key or a dashboard's
    /// session token, never a connected app's.
    pub async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        self.authenticate_for(token, Audience::Api).await
    }

    /// A token presented to the MCP endpoint: also a connected app's.
    pub async fn authenticate_mcp(&self, token: &str) -> Result<Identity, AuthError> {
        self.authenticate_for(token, Audience::Mcp).await
    }

    async fn authenticate_for(
        &self,
        token: &str,
        audience: Audience,
    ) -> Result<Identity, AuthError> {
        let claims: Claims = self.keys.verify(token).map_err(|e| {
            unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::InvalidSignature => "the signature does not verify",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "the token is not signed with the algorithm this server uses"
                }
                _ => "the token is malformed",
            })
        })?;
        let tenant_id = Uuid::try_parse(&claims.sub)
            .map_err(|_| unauthorized("the subject (sub) is not a user id"))?;
        let token_expiry = claims
            .exp
            .and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok());
        let Some(jti) = &claims.jti else {
            // A session token minted by a dashboard's own login: short-lived, no key record.
            if token_expiry.is_none() {
                return Err(unauthorized(
                    "a token without a key id (jti) must carry an expiry (exp)",
                ));
            }
            let scope = match claims.scope.as_deref() {
                None => Scope::Agent,
                Some(s) => Scope::parse(s).ok_or_else(|| unauthorized("unknown scope"))?,
            };
            return Ok(Identity {
                tenant_id,
                scope,
                grant: Grant {
                    credential: Credential::Token,
                    expires_at: token_expiry,
                },
            });
        };
        let key_id =
            Uuid::try_parse(jti).map_err(|_| unauthorized("the key id (jti) is not a UUID"))?;
        let stored = self
            .stored_key(tenant_id, key_id)
            .await?
            .ok_or_else(|| unauthorized("unknown API key"))?;
        match &stored.app_resource {
            // An ordinary key: exactly the token minted for it.
            None => {
                if stored.token_sha256.as_deref() != Some(&api_keys::token_sha256(token)[..]) {
                    return Err(unauthorized("unknown API key"));
                }
            }
            // A connected app: a token of ours, for the resource it was granted, presented there.
            Some(resource) => {
                if claims.aud.as_deref() != Some(resource) {
                    return Err(unauthorized("the token was issued for another resource"));
                }
                if token_expiry.is_none() {
                    return Err(unauthorized("a connected app's token must carry an expiry"));
                }
                if audience != Audience::Mcp {
                    return Err(unauthorized(
                        "this token belongs to a connected app: it is good for the MCP \
                         endpoint (/mcp) only",
                    ));
                }
            }
        }
        let now = OffsetDateTime::now_utc();
        check_key(&stored, now)?;
        let credential = Credential::ApiKey { tenant_id, key_id };
        self.used(credential, now);
        Ok(Identity {
            tenant_id,
            scope: stored.scope,
            grant: Grant {
                credential,
                expires_at: earliest(token_expiry, stored.expires_at),
            },
        })
    }

    /// A person's inbox cookie (`<session id>.<secret>`), checked against its web session.
    pub async fn authenticate_web_session(&self, cookie: &str) -> Result<Identity, AuthError> {
        let signed_out = || AuthError::Unauthorized("You are not signed in: sign in again".into());
        let (id, secret) = web_sessions::parse_cookie(cookie).ok_or_else(signed_out)?;
        let stored = self.stored_web_session(id).await?.ok_or_else(signed_out)?;
        if stored.token_sha256 != api_keys::token_sha256(secret) {
            return Err(signed_out());
        }
        let now = OffsetDateTime::now_utc();
        check_web_session(&stored, now)?;
        self.used(Credential::WebSession(id), now);
        Ok(Identity {
            tenant_id: stored.tenant_id,
            scope: Scope::Agent,
            grant: Grant {
                credential: Credential::WebSession(id),
                expires_at: Some(stored.expires_at),
            },
        })
    }

    fn used(&self, credential: Credential, at: OffsetDateTime) {
        self.last_used
            .lock()
            .expect("not poisoned")
            .insert(credential, at);
    }

    /// Is `grant` still good? Called before handing anything over that was not ready when
    /// the request was authenticated.
    pub async fn revalidate(&self, grant: Grant) -> Result<(), AuthError> {
        let now = OffsetDateTime::now_utc();
        if grant.expires_at.is_some_and(|at| at <= now) {
            return Err(unauthorized("the token has expired"));
        }
        match grant.credential {
            Credential::ApiKey { tenant_id, key_id } => {
                let stored = self
                    .stored_key(tenant_id, key_id)
                    .await?
                    .ok_or_else(|| unauthorized("unknown API key"))?;
                check_key(&stored, now)
            }
            Credential::WebSession(id) => {
                let stored = self
                    .stored_web_session(id)
                    .await?
                    .ok_or_else(|| AuthError::Unauthorized("You are not signed in".into()))?;
                check_web_session(&stored, now)
            }
            Credential::Token | Credential::System => Ok(()),
        }
    }

    /// A watch on `grant`: [`AccessGuard::ended`] resolves when it is revoked (on any node)
    /// or expires.
    pub fn guard(self: &Arc<Self>, grant: Grant) -> AccessGuard {
        let changes = self.changes.subscribe();
        let seen = *changes.borrow();
        AccessGuard {
            auth: self.clone(),
            grant,
            changes,
            seen,
            unchecked: false,
        }
    }

    async fn stored_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
    ) -> Result<Option<StoredKey>, AuthError> {
        let fetch = async {
            let stored = api_keys::lookup(&self.pool, tenant_id, key_id).await?;
            Ok(stored.map(Record::Key))
        };
        Ok(match self.record(key_id, fetch).await? {
            Some(Record::Key(key)) => Some(key),
            _ => None,
        })
    }

    async fn stored_web_session(&self, id: Uuid) -> Result<Option<StoredWebSession>, AuthError> {
        let fetch = async {
            let stored = web_sessions::lookup(&self.pool, id).await?;
            Ok(stored.map(Record::WebSession))
        };
        Ok(match self.record(id, fetch).await? {
            Some(Record::WebSession(session)) => Some(session),
            _ => None,
        })
    }

    /// The record `id` names: from the cache while it is fresh, else from `fetch` (cached
    /// unless an invalidation raced the fetch).
    async fn record(
        &self,
        id: Uuid,
        fetch: impl Future<Output = Result<Option<Record>, sqlx::Error>>,
    ) -> Result<Option<Record>, AuthError> {
        if let Some(hit) = self.cache.lock().expect("not poisoned").get(&id)
            && hit.fetched.elapsed() < KEY_CACHE_TTL
        {
            return Ok(Some(hit.record.clone()));
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let fetched = Instant::now();
        let stored = fetch.await.map_err(|e| {
            tracing::warn!("credential lookup failed: {e}");
            AuthError::Unavailable
        })?;
        if let Some(stored) = &stored
            && self.cache_live.load(Ordering::Acquire)
        {
            let mut cache = self.cache.lock().expect("not poisoned");
            if self.epoch.load(Ordering::Acquire) == epoch {
                if cache.len() >= MAX_CACHED_KEYS && !cache.contains_key(&id) {
                    cache.retain(|_, c| c.fetched.elapsed() < KEY_CACHE_TTL);
                    if cache.len() >= MAX_CACHED_KEYS {
                        cache.clear();
                    }
                }
                cache.insert(
                    id,
                    Cached {
                        record: stored.clone(),
                        fetched,
                    },
                );
            }
        }
        Ok(stored)
    }

    /// End web session `id` on every node: the others hear of it by NOTIFY, this one forgets
    /// it now, so the very next request with its cookie is refused.
    pub async fn end_web_session(&self, id: Uuid) -> Result<(), sqlx::Error> {
        web_sessions::end(&self.pool, id).await?;
        self.invalidate(Some(id));
        Ok(())
    }

    /// End every web session of `tenant_id`, the same way; returns how many were open.
    pub async fn end_web_sessions(&self, tenant_id: Uuid) -> Result<i64, sqlx::Error> {
        let ended = web_sessions::end_all(&self.pool, tenant_id).await?;
        self.invalidate(None);
        Ok(ended)
    }

    /// A key changed somewhere (`None`: any may have): forget it, and tell parked requests.
    pub fn invalidate(&self, key_id: Option<Uuid>) {
        {
            let mut cache = self.cache.lock().expect("not poisoned");
            self.epoch.fetch_add(1, Ordering::AcqRel);
            match key_id {
                Some(id) => {
                    cache.remove(&id);
                }
                None => cache.clear(),
            }
        }
        self.changes.send_modify(|change| {
            change.epoch += 1;
            change.key = key_id;
        });
    }

    /// Whether revocations reach this process now. Turning it off or on forgets everything,
    /// since notifications may have been missed in between.
    pub fn set_cache_live(&self, live: bool) {
        self.cache_live.store(live, Ordering::Release);
        self.invalidate(None);
    }

    /// Write the recorded last uses of keys and web sessions (called periodically and at
    /// shutdown).
    pub async fn flush_last_used(&self) {
        let used: Vec<(Credential, OffsetDateTime)> = {
            let mut map = self.last_used.lock().expect("not poisoned");
            map.drain().collect()
        };
        let (mut keys, mut web) = (Vec::new(), Vec::new());
        for &(credential, at) in &used {
            match credential {
                Credential::ApiKey { tenant_id, key_id } => keys.push((tenant_id, key_id, at)),
                Credential::WebSession(id) => web.push((id, at)),
                Credential::Token | Credential::System => {}
            }
        }
        let recorded = async {
            if !keys.is_empty() {
                api_keys::record_use(&self.pool, &keys).await?;
            }
            if !web.is_empty() {
                web_sessions::record_seen(&self.pool, &web).await?;
            }
            Ok::<_, sqlx::Error>(())
        };
        if let Err(e) = recorded.await {
            tracing::warn!("recording API key and web session use failed: {e}");
            let mut map = self.last_used.lock().expect("not poisoned");
            for (credential, at) in used {
                map.entry(credential).or_insert(at);
            }
        }
    }
}

fn check_key(stored: &StoredKey, now: OffsetDateTime) -> Result<(), AuthError> {
    if stored.revoked {
        return Err(unauthorized("the API key has been revoked"));
    }
    if stored.expires_at.is_some_and(|at| at <= now) {
        return Err(unauthorized("the API key has expired"));
    }
    Ok(())
}

fn check_web_session(stored: &StoredWebSession, now: OffsetDateTime) -> Result<(), AuthError> {
    if stored.revoked {
        return Err(AuthError::Unauthorized(
            "You have been signed out: sign in again".into(),
        ));
    }
    if stored.expires_at <= now {
        return Err(AuthError::Unauthorized(
            "Your sign-in has expired: sign in again".into(),
        ));
    }
    Ok(())
}

fn earliest(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A parked request's watch on its own credential (see [`Authenticator::guard`]).
pub struct AccessGuard {
    auth: Arc<Authenticator>,
    grant: Grant,
    changes: watch::Receiver<KeyChange>,
    seen: KeyChange,
    /// A change that may concern this credential has not been checked yet (kept across
    /// cancellations of [`AccessGuard::ended`]).
    unchecked: bool,
}

impl AccessGuard {
    /// Is the credential still good now?
    pub async fn check(&self) -> Result<(), AuthError> {
        // Boxed: a parked request's future would otherwise reserve room for the lookup's
        // (large) future for its whole wait.
        Box::pin(self.auth.revalidate(self.grant)).await
    }

    /// Resolves, with the reason, once the credential is no longer good: revoked (checked
    /// whenever a key changes on any node) or expired. Pending forever for a credential that
    /// can neither be revoked nor expire. Cancel-safe: use it in `select!` loops.
    pub async fn ended(&mut self) -> AuthError {
        if self.grant.credential == Credential::System {
            return std::future::pending().await;
        }
        let expiry = self.grant.expires_at.map(|at| {
            let left = (at - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
            tokio::time::Instant::now() + left.unsigned_abs()
        });
        loop {
            if self.unchecked {
                match self.check().await {
                    // The store is away: access continues until it can be checked again.
                    Ok(()) | Err(AuthError::Unavailable) => self.unchecked = false,
                    Err(e) => return e,
                }
            }
            let expired = async {
                match expiry {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = expired => return unauthorized("the token has expired"),
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
            let change = *self.changes.borrow_and_update();
            // One change since the last look, and about another credential: nothing to check.
            let only_other_key = change.epoch == self.seen.epoch + 1
                && change.key.is_some()
                && change.key != self.grant.record_id();
            self.seen = change;
            self.unchecked = !only_other_key;
        }
    }
}
