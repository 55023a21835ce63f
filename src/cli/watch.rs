//! `switchboard watch`: a live tail of the tenant's event stream (or one session's). It
//! follows the stream across disconnects and server restarts, resuming after the last event
//! it printed, so every event is printed once and none is skipped. Runs until interrupted, or
//! until the server refuses the stream (a revoked key, an unknown session): exit 1.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde::Deserialize;
use uuid::Uuid;

use super::Outcome;
use crate::client::{StreamEvent, Streamed};
use crate::config::ServerArgs;

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Only this session's events.
    #[arg(long)]
    session: Option<Uuid>,

    /// Start after this tenant sequence number (0: from the first event); default: from now.
    #[arg(long, value_name = "SEQ", value_parser = clap::value_parser!(i64).range(0..))]
    after_seq: Option<i64>,

    /// Print each event as the server sends it: one JSON object per line.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: WatchArgs) -> Outcome {
    let client = args.server.client("watch")?;
    let mut events = client.events(args.session, args.after_seq);
    let mut out = std::io::stdout().lock();
    loop {
        match events.next().await? {
            Streamed::Event(event) => {
                let line = if args.json {
                    event.data
                } else {
                    summary(&event)
                };
                match writeln!(out, "{line}").and_then(|()| out.flush()) {
                    Ok(()) => {}
                    // The reader went away (`watch | head`): done, not a failure.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        return Ok(ExitCode::SUCCESS);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Streamed::Reconnecting { pause, reason } => {
                eprintln!("{reason}; reconnecting in {} ms", pause.as_millis());
            }
        }
    }
}

/// The parts of an event a person reads.
#[derive(Deserialize)]
struct Shown {
    session_id: Uuid,
    recorded_at: String,
    #[serde(default)]
    data: ShownData,
}

#[derive(Default, Deserialize)]
struct ShownData {
    content: Option<String>,
}

/// `seq  time  session  type  text`, one line.
fn summary(event: &StreamEvent) -> String {
    let Ok(shown) = serde_json::from_str::<Shown>(&event.data) else {
        return format!("{}\t{}", event.id, event.event_type);
    };
    let text: String = shown
        .data
        .content
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "{}\t{}\t{}\t{}\t{text}",
        event.id, shown.recorded_at, shown.session_id, event.event_type
    )
    .trim_end()
    .to_owned()
}
