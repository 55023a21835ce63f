//! What a NOTIFY on `switchboard_events` says: which sessions got which events. Ids only, never
//! content (a payload is limited to 8000 bytes, and it is visible to anyone who can LISTEN).
//!
//! Format: `tenant:session:seq` entries (UUIDs as 32 hex digits) joined by `;`.

use uuid::Uuid;

/// The channel appends are announced on.
pub const EVENTS_CHANNEL: &str = "switchboard_events";
/// The channel a projection rebuild is announced on (every process forgets cached state).
pub const REBUILD_CHANNEL: &str = "switchboard_rebuild";
/// PostgreSQL refuses longer payloads (and aborts the transaction).
pub const MAX_PAYLOAD: usize = 7900;

/// The newest event of one session, as announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notice {
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    pub seq: i64,
}

/// Payloads (each within [`MAX_PAYLOAD`]) announcing `notices`.
pub fn encode(notices: &[Notice]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for n in notices {
        let entry = format!(
            "{}:{}:{}",
            n.tenant_id.simple(),
            n.session_id.simple(),
            n.seq
        );
        if !current.is_empty() && current.len() + 1 + entry.len() > MAX_PAYLOAD {
            payloads.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(';');
        }
        current.push_str(&entry);
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// The notices in a payload; malformed entries are skipped.
pub fn decode(payload: &str) -> Vec<Notice> {
    payload
        .split(';')
        .filter_map(|entry| {
            let mut parts = entry.split(':');
            let tenant_id = Uuid::try_parse(parts.next()?).ok()?;
            let session_id = Uuid::try_parse(parts.next()?).ok()?;
            let seq = parts.next()?.parse().ok()?;
            Some(Notice {
                tenant_id,
                session_id,
                seq,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_splits_long_batches() {
        let notices: Vec<Notice> = (0..300)
            .map(|seq| Notice {
                tenant_id: Uuid::new_v4(),
                session_id: Uuid::new_v4(),
                seq,
            })
            .collect();
        let payloads = encode(&notices);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let back: Vec<Notice> = payloads.iter().flat_map(|p| decode(p)).collect();
        assert_eq!(back, notices);
        assert!(decode("garbage;1:2:3").is_empty());
    }
}
