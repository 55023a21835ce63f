//! Idempotency-Key: the first response to a keyed request is stored in the same transaction
//! as its events and returned, unchanged, to every retry — forever, not for a time window.
//! A concurrent first request with the same key loses the write race and, retrying, finds
//! the record.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{CommandError, Context};
use crate::domain::InvalidInput;
use sqlx::PgPool;

use crate::eventlog::Remembered;

const RECALL: &str = "SELECT command, fingerprint, response::text FROM idempotency_keys WHERE tenant_id = $1 AND key = $2";

pub(super) struct Key<'a> {
    ctx: &'a Context,
    key: &'a str,
    command: &'static str,
    fingerprint: Vec<u8>,
}

impl<'a> Key<'a> {
    /// `None` when the request carries no Idempotency-Key.
    pub fn new(
        ctx: &'a Context,
        command: &'static str,
        request: &impl Serialize,
    ) -> Option<Key<'a>> {
        let key = ctx.idempotency_key.as_deref()?;
        let request = serde_json::to_vec(request).expect("requests serialize");
        let fingerprint = Sha256::new()
            .chain_update(command.as_bytes())
            .chain_update([0])
            .chain_update(&request)
            .finalize()
            .to_vec();
        Some(Key {
            ctx,
            key,
            command,
            fingerprint,
        })
    }

    /// The stored response of the first request with this key, if there was one.
    pub async fn recall<T: DeserializeOwned>(
        &self,
        pool: &PgPool,
    ) -> Result<Option<T>, CommandError> {
        let stored: Option<(String, Vec<u8>, String)> = sqlx::query_as(RECALL)
            .bind(self.ctx.tenant_id)
            .bind(self.key)
            .fetch_optional(pool)
            .await
            .map_err(crate::eventlog::LogError::from)?;
        let Some((command, fingerprint, response)) = stored else {
            return Ok(None);
        };
        if command != self.command || fingerprint != self.fingerprint {
            return Err(CommandError::Invalid(InvalidInput::new(
                "Idempotency-Key",
                "was already used for a different request; use a new key for a new request",
            )));
        }
        serde_json::from_str(&response)
            .map(Some)
            .map_err(|e| CommandError::Internal(format!("stored response does not parse: {e}")))
    }

    /// The record to write with the command's events.
    pub fn record<T: Serialize>(&self, response: &T) -> Remembered {
        Remembered {
            key: self.key.to_owned(),
            command: self.command,
            fingerprint: self.fingerprint.clone(),
            response: serde_json::to_string(response).expect("responses serialize"),
        }
    }
}
