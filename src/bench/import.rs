//! `switchboard bench import`: how fast an omnara database comes across, and in how much
//! memory. A source database gets the real schema (the 2025-12 legacy dump) and `--messages`
//! messages in `--sessions` sessions of `--users` users (questions among them, cursors
//! mid-queue), filled by PostgreSQL itself; the import then runs in this process, timed, and
//! the peak resident memory of this process is read from the kernel (`VmHWM`). A second import
//! of the same source, which appends nothing, is timed too.

use std::time::Instant;

use clap::Args;
use sqlx::PgPool;

use super::BenchDb;
use crate::eventlog::EventLog;
use crate::import::omnara;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The schema the source gets (psql's meta-commands are dropped: no psql here).
const SCHEMA: &str = include_str!("../import/schemas/omnara-schema-2026-legacy-500a82a.sql");

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    #[arg(long, default_value_t = 1_000)]
    pub sessions: u64,
    #[arg(long, default_value_t = 10)]
    pub users: u64,
    /// An empty database to fill as the omnara source (default: one made on the embedded
    /// cluster; required with DATABASE_URL).
    #[arg(long)]
    pub source_url: Option<String>,
}

/// The process's peak resident memory so far, in MiB.
fn peak_rss_mib() -> Option<f64> {
    super::proc_status_mib("self", "VmHWM")
}

async fn fill(source: &PgPool, args: &ImportArgs) -> Result<(), BoxError> {
    let schema: String = SCHEMA
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut conn = source.acquire().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(schema))
        .execute(&mut *conn)
        .await?;
    conn.close().await?;
    let per_session = (args.messages / args.sessions.max(1)).max(1);
    let fill = format!(
        "INSERT INTO alembic_version VALUES ('8f18d049395f');
         INSERT INTO users (id, email, display_name, created_at, updated_at)
         SELECT md5('u' || u)::uuid, 'user' || u || '@example.com', 'User ' || u,
                timestamp '2025-09-01' + u * interval '1 minute', timestamp '2025-09-01'
         FROM generate_series(1, {users}) u;
         INSERT INTO user_agents (id, user_id, name)
         SELECT md5('a' || u)::uuid, md5('u' || u)::uuid, 'Claude Code' FROM generate_series(1, {users}) u;
         INSERT INTO agent_instances (id, user_id, status, started_at, ended_at, user_agent_id)
         SELECT md5('i' || s)::uuid, md5('u' || (s % {users} + 1))::uuid,
                (CASE WHEN s % 4 = 0 THEN 'COMPLETED' ELSE 'ACTIVE' END)::agentstatus,
                timestamp '2025-09-02' + s * interval '10 minutes',
                CASE WHEN s % 4 = 0 THEN timestamp '2025-09-03' + s * interval '10 minutes' END,
                md5('a' || (s % {users} + 1))::uuid
         FROM generate_series(1, {sessions}) s;
         INSERT INTO messages (id, agent_instance_id, sender_type, content, created_at, requires_user_input)
         SELECT md5('m' || s || '-' || k)::uuid, md5('i' || s)::uuid,
                (CASE WHEN k % 4 = 0 THEN 'USER' ELSE 'AGENT' END)::sendertype,
                'Step ' || k || ' of session ' || s || ': edited src/module_' || (k % 17) || '.rs and ran the tests',
                timestamp '2025-09-02' + s * interval '10 minutes' + k * interval '100 milliseconds',
                k % 4 = 3
         FROM generate_series(1, {sessions}) s, generate_series(1, {per_session}) k;
         UPDATE agent_instances SET last_read_message_id = md5('m' || s || '-' || ({per_session} - 2))::uuid
         FROM generate_series(1, {sessions}) s WHERE id = md5('i' || s)::uuid AND {per_session} > 2;
         ANALYZE;",
        users = args.users.max(1),
        sessions = args.sessions.max(1),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(fill))
        .execute(source)
        .await?;
    Ok(())
}

pub async fn run(db: &BenchDb, source_url: &str, args: &ImportArgs) -> Result<(), BoxError> {
    use sqlx::ConnectOptions;
    let options: sqlx::postgres::PgConnectOptions = source_url.parse()?;
    // Filling takes seconds per statement by design: no slow-statement warnings.
    let source = crate::database::pool(options.disable_statement_logging(), 2).await?;
    println!(
        "import benchmark: filling an omnara database (2025-12 schema) with {} messages in {} \
         sessions of {} users…",
        args.messages, args.sessions, args.users
    );
    let started = Instant::now();
    fill(&source, args).await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&source)
        .await?;
    println!("  filled in {:.1} s", started.elapsed().as_secs_f64());
    source.close().await;
    let from = omnara::connect(source_url).await?;
    let log = EventLog::new(db.pool.clone());
    let before = peak_rss_mib();
    let started = Instant::now();
    let report = omnara::import(&log, &from, &omnara::Options::default()).await?;
    let took = started.elapsed().as_secs_f64();
    let appended: u64 = report.users.iter().map(|u| u.appended).sum();
    let messages: u64 = report.users.iter().map(|u| u.messages).sum();
    if messages != rows as u64 || !report.skipped.is_empty() {
        return Err(format!(
            "{messages} of {rows} messages imported, {} rows skipped",
            report.skipped.len()
        )
        .into());
    }
    let mib = |m: Option<f64>| m.map_or("-".into(), |m| format!("{m:.1} MiB"));
    println!(
        "  import: {messages} messages ({appended} events) in {took:.1} s = {:.0} messages/s, \
         {:.0} events/s; peak RSS of this process {} (before the import {})",
        messages as f64 / took,
        appended as f64 / took,
        mib(peak_rss_mib()),
        mib(before)
    );
    let started = Instant::now();
    let again = omnara::import(&log, &from, &omnara::Options::default()).await?;
    let appended_again: u64 = again.users.iter().map(|u| u.appended).sum();
    println!(
        "  the same import again: {appended_again} events appended in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    from.close().await;
    Ok(())
}
