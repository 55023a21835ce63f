//! Who is calling: Bearer JWTs checked against the pinned algorithm and, when they name an
//! API key (`jti`), against that key's record.
//!
//! Key records are cached per process only while the process listens for revocations
//! (`switchboard_keys`); a revocation on any node clears the entry everywhere as it commits.
//! Last use is kept in memory and written in batches, not once per request.

pub mod api_keys;
pub mod signing;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::errors::ErrorKind;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::Scope;
use api_keys::StoredKey;
pub use signing::SigningKeys;

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
}

/// An authenticated caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub tenant_id: Uuid,
    pub key_id: Option<Uuid>,
    pub scope: Scope,
}

#[derive(Debug)]
pub enum AuthError {
    /// No usable credentials; the message says what was wrong.
    Unauthorized(String),
    /// The key store could not be consulted.
    Unavailable,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Unauthorized(m) => f.write_str(m),
            AuthError::Unavailable => f.write_str("the key store is unavailable; retry shortly"),
        }
    }
}

fn unauthorized(reason: &str) -> AuthError {
    AuthError::Unauthorized(format!("Invalid token: {reason}"))
}

pub struct Authenticator {
    keys: Arc<SigningKeys>,
    pool: PgPool,
    cache: Mutex<HashMap<Uuid, StoredKey>>,
    /// True while this process listens for revocations; without that, no caching.
    cache_live: AtomicBool,
    /// Bumped by every invalidation, so a lookup that raced one is not cached.
    epoch: AtomicU64,
    last_used: Mutex<HashMap<Uuid, OffsetDateTime>>,
}

impl Authenticator {
    pub fn new(keys: Arc<SigningKeys>, pool: PgPool) -> Authenticator {
        Authenticator {
            keys,
            pool,
            cache: Mutex::new(HashMap::new()),
            cache_live: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    pub async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
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
        let Some(jti) = &claims.jti else {
            // A session token minted by a dashboard's own login: short-lived, no key record.
            if claims.exp.is_none() {
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
                key_id: None,
                scope,
            });
        };
        let key_id =
            Uuid::try_parse(jti).map_err(|_| unauthorized("the key id (jti) is not a UUID"))?;
        let stored = self
            .stored_key(key_id)
            .await?
            .ok_or_else(|| unauthorized("unknown API key"))?;
        if stored.tenant_id != tenant_id || stored.token_sha256 != api_keys::token_sha256(token) {
            return Err(unauthorized("unknown API key"));
        }
        if stored.revoked {
            return Err(unauthorized("the API key has been revoked"));
        }
        let now = OffsetDateTime::now_utc();
        if stored.expires_at.is_some_and(|at| at <= now) {
            return Err(unauthorized("the API key has expired"));
        }
        self.last_used
            .lock()
            .expect("not poisoned")
            .insert(key_id, now);
        Ok(Identity {
            tenant_id,
            key_id: Some(key_id),
            scope: stored.scope,
        })
    }

    async fn stored_key(&self, key_id: Uuid) -> Result<Option<StoredKey>, AuthError> {
        if let Some(hit) = self.cache.lock().expect("not poisoned").get(&key_id) {
            return Ok(Some(hit.clone()));
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let stored = api_keys::lookup(&self.pool, key_id).await.map_err(|e| {
            tracing::warn!("API key lookup failed: {e}");
            AuthError::Unavailable
        })?;
        if let Some(stored) = &stored
            && self.cache_live.load(Ordering::Acquire)
        {
            let mut cache = self.cache.lock().expect("not poisoned");
            if self.epoch.load(Ordering::Acquire) == epoch {
                cache.insert(key_id, stored.clone());
            }
        }
        Ok(stored)
    }

    /// A key changed somewhere: forget it.
    pub fn invalidate(&self, key_id: Option<Uuid>) {
        let mut cache = self.cache.lock().expect("not poisoned");
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match key_id {
            Some(id) => {
                cache.remove(&id);
            }
            None => cache.clear(),
        }
    }

    /// Whether revocations reach this process now. Turning it off or on forgets everything,
    /// since notifications may have been missed in between.
    pub fn set_cache_live(&self, live: bool) {
        self.cache_live.store(live, Ordering::Release);
        self.invalidate(None);
    }

    /// Write the recorded last uses (called periodically and at shutdown).
    pub async fn flush_last_used(&self) {
        let used: Vec<(Uuid, OffsetDateTime)> = {
            let mut map = self.last_used.lock().expect("not poisoned");
            map.drain().collect()
        };
        if used.is_empty() {
            return;
        }
        if let Err(e) = api_keys::record_use(&self.pool, &used).await {
            tracing::warn!("recording API key use failed: {e}");
            let mut map = self.last_used.lock().expect("not poisoned");
            for (id, at) in used {
                map.entry(id).or_insert(at);
            }
        }
    }
}
