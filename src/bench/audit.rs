//! `switchboard bench audit`: the auditor's paths on a large log. Generates a valid log (real
//! event vocabulary, real hash chains) as an export file, replays it into the empty scratch
//! database, then times verify, export (all tenants and one), and the projection check and
//! rebuild over it.

use std::io::{BufWriter, Write};
use std::time::Instant;

use clap::Args;
use projections::{
    Actor, AgentMessage, Event, MessagesRead, Metadata, SessionEnded, SessionStarted, UserMessage,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::BenchDb;
use crate::eventlog::chain::{GENESIS, Link, now_micros};
use crate::eventlog::read::StoredEvent;
use crate::eventlog::{export, rebuild, replay, verify};

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    /// Events in the generated log.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Tenants the events are spread over.
    #[arg(long, default_value_t = 100)]
    pub tenants: u64,
    /// Events per session.
    #[arg(long, default_value_t = 20)]
    pub session_length: u64,
}

/// The `n`th event of a session: it starts, the agent and the user talk (the agent reading
/// what it was sent), and it ends.
fn nth_event(n: u64, length: u64, last_user_message: Option<Uuid>) -> (Event, Actor) {
    if n == 0 {
        let started = SessionStarted {
            agent_type: "bench-agent".into(),
        };
        return (Event::SessionStarted(started), Actor::Agent);
    }
    if n == length - 1 {
        return (Event::SessionEnded(SessionEnded::default()), Actor::Agent);
    }
    match (n % 3, last_user_message) {
        (0, Some(id)) => (
            Event::MessagesRead(MessagesRead {
                last_read_message_id: id,
            }),
            Actor::Agent,
        ),
        (2, _) => (
            Event::UserMessage(UserMessage {
                content: format!("reply {n}: looks good, carry on with the next part"),
                mark_as_read: false,
                ..UserMessage::default()
            }),
            Actor::User,
        ),
        _ => (
            Event::AgentMessage(AgentMessage {
                content: format!("step {n}: edited src/lib.rs and ran the tests (all passed)"),
                requires_user_input: n.is_multiple_of(5),
                ..AgentMessage::default()
            }),
            Actor::Agent,
        ),
    }
}

/// Write a valid export of `args.events` events to `out`.
pub fn generate(args: &AuditArgs, out: &mut impl Write) -> std::io::Result<()> {
    let per_tenant = args.events.div_ceil(args.tenants.max(1));
    let length = args.session_length.max(3);
    let start = now_micros() - time::Duration::days(30);
    let mut written = 0;
    for _ in 0..args.tenants.max(1) {
        let tenant_id = Uuid::new_v4();
        let key_id = Some(Uuid::new_v4());
        let mut prev = GENESIS;
        let mut session = Uuid::now_v7();
        let mut last_user_message = None;
        for seq in 1..=per_tenant.min(args.events - written) as i64 {
            let n = (seq as u64 - 1) % length;
            if n == 0 {
                session = Uuid::now_v7();
                last_user_message = None;
            }
            let (event, actor) = nth_event(n, length, last_user_message);
            let event_id = Uuid::now_v7();
            if matches!(event, Event::UserMessage(_)) {
                last_user_message = Some(event_id);
            }
            let metadata = serde_json::to_string(&Metadata {
                actor,
                key_id,
                client_type: Some("bench".into()),
                request_id: None,
                web_session: None,
                imported: None,
            })
            .expect("metadata serializes");
            let recorded_at: OffsetDateTime = start + time::Duration::milliseconds(seq * 250);
            let data = event.data_json();
            let event_type = event.event_type();
            let stream_version = n as i32 + 1;
            let hash = Link {
                tenant_id,
                seq,
                stream_id: session,
                stream_version,
                event_id,
                recorded_at,
                event_type,
                data: &data,
                metadata: &metadata,
            }
            .hash(&prev);
            let stored = StoredEvent {
                tenant_id,
                seq,
                stream_id: session,
                stream_version,
                event_id,
                event_type: event_type.to_owned(),
                data,
                metadata,
                recorded_at,
                txid: 0,
                prev_hash: prev.to_vec(),
                hash: hash.to_vec(),
            };
            writeln!(out, "{}", stored.to_json())?;
            prev = hash;
            written += 1;
        }
    }
    out.flush()
}

fn rate(events: u64, started: Instant) -> String {
    let seconds = started.elapsed().as_secs_f64();
    format!(
        "{seconds:>7.2} s  {:>9.0} events/s",
        events as f64 / seconds.max(1e-9)
    )
}

pub async fn run(
    db: &BenchDb,
    data_dir: &std::path::Path,
    args: &AuditArgs,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("bench-audit.ndjson");
    let started = Instant::now();
    {
        let file = std::fs::File::create(&path)?;
        generate(args, &mut BufWriter::with_capacity(1 << 20, file))?;
    }
    let size = std::fs::metadata(&path)?.len();
    println!(
        "audit benchmark: {} events in {} tenants, sessions of {} events ({:.0} MiB export)",
        args.events,
        args.tenants,
        args.session_length,
        size as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  generate the export file      {}",
        rate(args.events, started)
    );

    let started = Instant::now();
    let file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&path)?);
    let replayed = replay::replay(&db.pool, file).await?;
    println!(
        "  replay into an empty database {}  (insert, fold projections, verify, commit)",
        rate(replayed.events, started)
    );
    std::fs::remove_file(&path)?;
    sqlx::query("VACUUM ANALYZE events")
        .execute(&db.pool)
        .await?;

    let started = Instant::now();
    let report = verify::verify(&db.pool, None).await?;
    assert!(report.ok, "the generated log verifies");
    println!(
        "  verify (all tenants)          {}",
        rate(report.events, started)
    );

    let started = Instant::now();
    let mut sink = std::io::sink();
    let exported = export::export_all(&db.pool, &export::Position::START, &mut sink).await?;
    println!(
        "  export (all tenants)          {}",
        rate(exported.events, started)
    );

    let tenant = report.tenants[0].tenant_id;
    let started = Instant::now();
    let exported = export::export_tenant(&db.pool, tenant, 0, &mut sink).await?;
    println!(
        "  export (one tenant, seq)      {}",
        rate(exported, started)
    );

    let started = Instant::now();
    let checked = rebuild::check(&db.pool).await?;
    assert!(checked.differences.is_empty(), "replayed projections match");
    println!(
        "  projections rebuild --check   {}",
        rate(checked.events, started)
    );

    let started = Instant::now();
    let rebuilt = rebuild::rebuild(&db.pool).await?;
    println!(
        "  projections rebuild           {}",
        rate(rebuilt.events, started)
    );
    Ok(())
}
