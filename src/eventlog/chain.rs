//! The per-tenant hash chain: each event's hash covers the previous event's hash and a
//! canonical encoding of the event, so changing, removing or reordering any stored event
//! breaks every hash after it.
//!
//! The encoding is binary and length-prefixed, so no two different events encode alike:
//!
//! ```text
//! hash = SHA-256( prev_hash                      32 bytes; 32 zero bytes for seq 1
//!               || seq                           8 bytes, big-endian
//!               || tenant_id || stream_id        16 bytes each
//!               || stream_version                4 bytes, big-endian
//!               || event_id                      16 bytes
//!               || recorded_at                   8 bytes, big-endian microseconds since 1970 UTC
//!               || len(event_type) || event_type 4-byte big-endian length, then UTF-8
//!               || len(data)       || data       the stored JSON text, byte for byte
//!               || len(metadata)   || metadata   likewise )
//! ```
//!
//! `data` and `metadata` are PostgreSQL `json` columns, which keep the appended text exactly,
//! so an auditor can recompute every hash from an export with nothing but SHA-256.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

pub type Hash = [u8; 32];

/// The `prev_hash` of a tenant's first event.
pub const GENESIS: Hash = [0; 32];

/// The fields of a stored event that the chain covers.
#[derive(Clone, Copy, Debug)]
pub struct Link<'a> {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub stream_id: Uuid,
    pub stream_version: i32,
    pub event_id: Uuid,
    pub recorded_at: OffsetDateTime,
    pub event_type: &'a str,
    pub data: &'a str,
    pub metadata: &'a str,
}

impl Link<'_> {
    pub fn hash(&self, prev_hash: &Hash) -> Hash {
        let mut h = Sha256::new();
        h.update(prev_hash);
        h.update(self.seq.to_be_bytes());
        h.update(self.tenant_id.as_bytes());
        h.update(self.stream_id.as_bytes());
        h.update(self.stream_version.to_be_bytes());
        h.update(self.event_id.as_bytes());
        h.update(unix_micros(self.recorded_at).to_be_bytes());
        for text in [self.event_type, self.data, self.metadata] {
            h.update((text.len() as u32).to_be_bytes());
            h.update(text.as_bytes());
        }
        h.finalize().into()
    }
}

pub fn unix_micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

/// The current time at the precision PostgreSQL stores (microseconds), so that the time
/// hashed at append is the time read back.
pub fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .expect("truncated nanoseconds are in range")
}

/// Turn a hash read from the database into a fixed-size array.
pub fn from_bytes(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link<'static> {
        Link {
            tenant_id: Uuid::from_u128(1),
            seq: 1,
            stream_id: Uuid::from_u128(2),
            stream_version: 1,
            event_id: Uuid::from_u128(3),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
            event_type: "session_started",
            data: r#"{"agent_type":"x"}"#,
            metadata: r#"{"actor":"agent"}"#,
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = link().hash(&GENESIS);
        let variants = [
            Link { seq: 2, ..link() },
            Link {
                tenant_id: Uuid::from_u128(9),
                ..link()
            },
            Link {
                stream_id: Uuid::from_u128(9),
                ..link()
            },
            Link {
                stream_version: 2,
                ..link()
            },
            Link {
                event_id: Uuid::from_u128(9),
                ..link()
            },
            Link {
                recorded_at: OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(1),
                ..link()
            },
            Link {
                event_type: "session_ended",
                ..link()
            },
            Link {
                data: r#"{"agent_type":"y"}"#,
                ..link()
            },
            Link {
                metadata: r#"{"actor":"user"}"#,
                ..link()
            },
        ];
        for variant in variants {
            assert_ne!(variant.hash(&GENESIS), base, "{variant:?}");
        }
        assert_ne!(link().hash(&[1; 32]), base);
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        let a = Link {
            event_type: "ab",
            data: "c",
            ..link()
        };
        let b = Link {
            event_type: "a",
            data: "bc",
            ..link()
        };
        assert_ne!(a.hash(&GENESIS), b.hash(&GENESIS));
    }
}
