//! Importing an omnara database (the agent dashboard whose "servers" API Switchboard speaks)
//! into the log: its users, their agent instances as sessions, every message, and the read
//! cursors, so that an SDK client pointed at Switchboard continues where it was.
//!
//! The source is read, never written: one read-only, repeatable-read transaction per user, so
//! each user's history is read from one snapshot of a live database. Rows are streamed (a
//! user's instances, then each instance's messages, in their original order) and appended in
//! batches, so memory stays bounded whatever the database's size.
//!
//! Each event is made from one source row and its id is derived from that row (a message's
//! event id is the message id, as in Switchboard), so running the import again appends
//! nothing it appended before, and an import cut off halfway continues where it stopped.
//! Events keep the rows' original times and carry their provenance in their metadata
//! (`imported`: from, schema, table, row id, when).
//!
//! The read cursor: what the source's agent had read (`last_read_message_id`) is what the
//! agent has read here. Messages up to it are read (an agent message moves the cursor, a
//! person's message is delivered); those after it are not (an agent message leaves the
//! person's messages unread, theirs stay queued), so the next `send_message` of an SDK client
//! receives exactly the queued messages the source held.
//!
//! A row that cannot come across as it is (NUL characters, a blank message, metadata that is
//! not an object, an unknown status or sender, a message of a missing instance, a diff that
//! is not a git diff) is reported by id and skipped: never fatal, never changed.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use projections::{
    Actor, AgentMessage, Event, GitDiffUpdated, Imported, Metadata, SessionDescribed, SessionEnded,
    SessionStarted, UserCreated, UserMessage,
};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use crate::domain::{AgentType, Content, Email, GitDiffUpdate, UserName, message_metadata};
use crate::eventlog::{EventLog, LogError, NewEvent, TenantTxn};

/// Events appended per transaction.
const BATCH: usize = 500;
/// Instances read at a time.
const INSTANCES_PER_PAGE: i64 = 200;
/// Ids derived from source rows live under this namespace.
const NAMESPACE: Uuid = Uuid::from_u128(0x0b1e_55ed_0a4a_4c2b_8f00_1d3a_6e2c_57aa);

/// The omnara statuses of an instance that is over.
const ENDED: [&str; 4] = ["COMPLETED", "FAILED", "KILLED", "DELETED"];
const RUNNING: [&str; 5] = [
    "ACTIVE",
    "AWAITING_INPUT",
    "PAUSED",
    "STALE",
    "DISCONNECTED",
];

/// What the import is asked to do.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Count and check; write nothing.
    pub dry_run: bool,
    /// Only these users (all when empty).
    pub users: Vec<Uuid>,
    /// Print progress on standard error (when it is a terminal).
    pub progress: bool,
}

/// Which of the two known shapes the source has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// The alembic revision the source says it is at.
    pub revision: String,
    /// Instances have a name, heartbeats and metadata; teams and sharing exist (the 2025-12
    /// legacy release); else the 2025-08 shape the SDK 1.3 era used.
    pub legacy_2025_12: bool,
}

impl Schema {
    pub fn describe(&self) -> String {
        if self.legacy_2025_12 {
            format!(
                "alembic revision {}: the last legacy release (2025-12: teams, sharing, instance \
                 metadata)",
                self.revision
            )
        } else {
            format!(
                "alembic revision {}: the 2025-08 schema (the SDK 1.3 era)",
                self.revision
            )
        }
    }

    fn name(&self) -> &'static str {
        if self.legacy_2025_12 {
            "2025-12-legacy"
        } else {
            "2025-08"
        }
    }
}

/// A row that was not imported, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub table: &'static str,
    pub id: String,
    pub reason: String,
}

/// What came across for one user, and what did not.
#[derive(Clone, Debug, Default)]
pub struct UserReport {
    pub user_id: Uuid,
    pub email: String,
    pub account_created: bool,
    pub sessions: u64,
    pub messages: u64,
    /// Events appended (0 on a second run, and in a dry run).
    pub appended: u64,
    pub cursors: u64,
    /// Active omnara API keys: (name, created).
    pub api_keys: Vec<String>,
    pub push_tokens: u64,
    pub billing_rows: u64,
    pub team_memberships: u64,
    pub shared_instances: u64,
}

/// The whole import.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub schema: Option<Schema>,
    pub users: Vec<UserReport>,
    pub skipped: Vec<Skipped>,
    /// Messages whose instance does not exist (reported in `skipped`).
    pub orphans: u64,
    pub teams: u64,
}

/// Why the import stopped.
#[derive(Debug)]
pub enum ImportError {
    /// The source cannot be read, or is not an omnara database.
    Source(String),
    Log(LogError),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::Source(e) => write!(f, "the omnara database: {e}"),
            ImportError::Log(e) => write!(f, "the event log: {e}"),
        }
    }
}

impl std::error::Error for ImportError {}

impl From<LogError> for ImportError {
    fn from(e: LogError) -> Self {
        ImportError::Log(e)
    }
}

fn source(e: sqlx::Error) -> ImportError {
    ImportError::Source(e.to_string())
}

/// Open the source read-only.
pub async fn connect(url: &str) -> Result<PgPool, ImportError> {
    PgPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("SET default_transaction_read_only = on")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(|e| ImportError::Source(format!("cannot connect: {e}")))
}

/// The source's schema, from `alembic_version` and the columns it has.
pub async fn detect(pool: &PgPool) -> Result<Schema, ImportError> {
    let revision: Option<String> = sqlx::query_scalar("SELECT version_num FROM alembic_version")
        .fetch_optional(pool)
        .await
        .map_err(|e| {
            ImportError::Source(format!(
                "no alembic_version table ({e}): this is not an omnara database"
            ))
        })?;
    let revision = revision.ok_or_else(|| {
        ImportError::Source("alembic_version is empty: the migrations never ran".into())
    })?;
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public'
           AND table_name IN ('users', 'agent_instances', 'messages', 'user_agents')",
    )
    .fetch_all(pool)
    .await
    .map_err(source)?;
    let has = |table: &str, column: &str| columns.iter().any(|(t, c)| t == table && c == column);
    for (table, column) in [
        ("users", "email"),
        ("user_agents", "name"),
        ("agent_instances", "last_read_message_id"),
        ("messages", "requires_user_input"),
    ] {
        if !has(table, column) {
            return Err(ImportError::Source(format!(
                "{table}.{column} is missing: not a schema this import knows (revision {revision})"
            )));
        }
    }
    Ok(Schema {
        revision,
        legacy_2025_12: has("agent_instances", "instance_metadata"),
    })
}

/// An instance as the import reads it (its diff and metadata are read when it is imported).
#[derive(sqlx::FromRow)]
struct Instance {
    id: Uuid,
    status: String,
    started_at: PrimitiveDateTime,
    ended_at: Option<PrimitiveDateTime>,
    agent_name: Option<String>,
    last_read_message_id: Option<Uuid>,
    name: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Message {
    id: Uuid,
    sender_type: String,
    content: String,
    created_at: PrimitiveDateTime,
    requires_user_input: bool,
    message_metadata: Option<sqlx::types::Json<Value>>,
}

fn utc(t: PrimitiveDateTime) -> OffsetDateTime {
    // omnara stores naive UTC times.
    t.assume_utc()
}

/// Run the import.
pub async fn import(
    log: &EventLog,
    from: &PgPool,
    options: &Options,
) -> Result<Report, ImportError> {
    let schema = detect(from).await?;
    let mut report = Report {
        schema: Some(schema.clone()),
        ..Report::default()
    };
    let imported_at = crate::wire::timestamp(OffsetDateTime::now_utc());
    let mut progress = Progress::new(options.progress && std::io::stderr().is_terminal());
    let only = (!options.users.is_empty()).then_some(options.users.clone());
    let users: Vec<(Uuid, String, Option<String>, PrimitiveDateTime)> = sqlx::query_as(
        "SELECT id, email::text, display_name::text, created_at FROM users
         WHERE $1::uuid[] IS NULL OR id = ANY($1) ORDER BY created_at, id",
    )
    .bind(&only)
    .fetch_all(from)
    .await
    .map_err(source)?;
    if let Some(only) = &only {
        for id in only {
            if !users.iter().any(|u| u.0 == *id) {
                report.skipped.push(Skipped {
                    table: "users",
                    id: id.to_string(),
                    reason: "no such user in the omnara database".into(),
                });
            }
        }
    }
    for (user_id, email, display_name, created_at) in users {
        let mut importer = UserImport {
            log,
            schema: &schema,
            imported_at: &imported_at,
            dry_run: options.dry_run,
            tenant: user_id,
            pending: Vec::new(),
            report: UserReport {
                user_id,
                email: email.clone(),
                ..UserReport::default()
            },
            skipped: &mut report.skipped,
            progress: &mut progress,
        };
        let mut conn = from.acquire().await.map_err(source)?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *conn)
            .await
            .map_err(source)?;
        let done = importer
            .run(&mut conn, &email, display_name.as_deref(), utc(created_at))
            .await;
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        done?;
        let user_report = importer.report;
        progress.messages += user_report.messages;
        report.users.push(user_report);
    }
    orphans(from, &mut report).await?;
    if schema.legacy_2025_12 {
        let teams: i64 = sqlx::query_scalar("SELECT count(*) FROM teams")
            .fetch_one(from)
            .await
            .map_err(source)?;
        report.teams = teams as u64;
    }
    progress.finish();
    Ok(report)
}

/// Messages whose instance does not exist (possible when a foreign key was dropped or
/// bypassed): reported, never imported.
async fn orphans(from: &PgPool, report: &mut Report) -> Result<(), ImportError> {
    let mut rows = sqlx::query_as::<_, (Uuid, Uuid)>(
        "SELECT m.id, m.agent_instance_id FROM messages m
         WHERE NOT EXISTS (SELECT 1 FROM agent_instances i WHERE i.id = m.agent_instance_id)
         ORDER BY m.id",
    )
    .fetch(from);
    while let Some((id, instance)) = rows.try_next().await.map_err(source)? {
        report.orphans += 1;
        report.skipped.push(Skipped {
            table: "messages",
            id: id.to_string(),
            reason: format!("its instance {instance} does not exist"),
        });
    }
    Ok(())
}

/// One event made from a source row, waiting to be appended.
struct Pending {
    stream: Uuid,
    new: NewEvent,
    at: OffsetDateTime,
    actor: Actor,
    table: &'static str,
    row: String,
}

struct UserImport<'a> {
    log: &'a EventLog,
    schema: &'a Schema,
    imported_at: &'a str,
    dry_run: bool,
    tenant: Uuid,
    pending: Vec<Pending>,
    report: UserReport,
    skipped: &'a mut Vec<Skipped>,
    progress: &'a mut Progress,
}

impl UserImport<'_> {
    fn skip(&mut self, table: &'static str, id: impl ToString, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            table,
            id: id.to_string(),
            reason: reason.into(),
        });
    }

    async fn run(
        &mut self,
        conn: &mut PgConnection,
        email: &str,
        display_name: Option<&str>,
        created_at: OffsetDateTime,
    ) -> Result<(), ImportError> {
        let account = {
            let mut txn = self.log.begin(self.tenant).await;
            txn.account().await?.is_some()
        };
        if !account {
            let name = display_name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(email);
            let name = match UserName::parse("display_name", name) {
                Ok(name) => name,
                Err(e) => {
                    self.skip("users", self.tenant, format!("{e}; not imported"));
                    return Ok(());
                }
            };
            let email = Email::parse("email", email)
                .ok()
                .map(|e| e.as_str().to_owned());
            self.push(
                self.tenant,
                derived(self.tenant, "user"),
                Event::UserCreated(UserCreated {
                    name: name.as_str().to_owned(),
                    email,
                }),
                created_at,
                Actor::System,
                "users",
                self.tenant.to_string(),
            );
            self.report.account_created = true;
            self.flush().await?;
        }
        self.sessions(conn).await?;
        self.left_behind(conn).await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        stream: Uuid,
        event_id: Uuid,
        event: Event,
        at: OffsetDateTime,
        actor: Actor,
        table: &'static str,
        row: String,
    ) {
        self.pending.push(Pending {
            stream,
            new: NewEvent { event_id, event },
            at,
            actor,
            table,
            row,
        });
    }

    /// Append what is pending that the log does not hold yet, in one transaction.
    async fn flush(&mut self) -> Result<(), ImportError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let ids: Vec<Uuid> = batch.iter().map(|p| p.new.event_id).collect();
        let known: Vec<Uuid> = sqlx::query_scalar(
            "SELECT event_id FROM events WHERE tenant_id = $1 AND event_id = ANY($2)",
        )
        .bind(self.tenant)
        .bind(&ids)
        .fetch_all(self.log.pool())
        .await
        .map_err(LogError::from)?;
        let known: std::collections::HashSet<Uuid> = known.into_iter().collect();
        let fresh: Vec<Pending> = batch
            .into_iter()
            .filter(|p| !known.contains(&p.new.event_id))
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let count = fresh.len() as u64;
        if self.dry_run {
            // Checked row by row already; nothing is folded or written.
            self.report.appended += count;
            return Ok(());
        }
        let mut txn = self.log.begin(self.tenant).await;
        for p in fresh {
            self.append(&mut txn, p).await?;
        }
        txn.commit().await?;
        self.report.appended += count;
        Ok(())
    }

    async fn append(&self, txn: &mut TenantTxn, p: Pending) -> Result<(), ImportError> {
        let metadata = Metadata {
            actor: p.actor,
            key_id: None,
            client_type: Some("omnara import".into()),
            request_id: None,
            web_session: None,
            imported: Some(Imported {
                from: "omnara".into(),
                schema: format!("{} ({})", self.schema.name(), self.schema.revision),
                table: p.table.into(),
                id: p.row,
                at: self.imported_at.to_owned(),
            }),
        };
        txn.append_imported(p.stream, p.new, p.at, &metadata)
            .await?;
        Ok(())
    }

    async fn sessions(&mut self, conn: &mut PgConnection) -> Result<(), ImportError> {
        let name = if self.schema.legacy_2025_12 {
            "i.name::text"
        } else {
            "NULL::text"
        };
        let query = format!(
            "SELECT i.id, i.status::text AS status, i.started_at, i.ended_at,
                    a.name::text AS agent_name, i.last_read_message_id, {name} AS name
             FROM agent_instances i LEFT JOIN user_agents a ON a.id = i.user_agent_id
             WHERE i.user_id = $1 AND ($2::timestamp IS NULL OR (i.started_at, i.id) > ($2, $3))
             ORDER BY i.started_at, i.id LIMIT $4"
        );
        // A page of instances at a time (each one's messages are read on the same connection,
        // in the same snapshot, before the next page).
        let mut after: Option<(PrimitiveDateTime, Uuid)> = None;
        loop {
            let page: Vec<Instance> = sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(self.tenant)
                .bind(after.map(|a| a.0))
                .bind(after.map(|a| a.1))
                .bind(INSTANCES_PER_PAGE)
                .fetch_all(&mut *conn)
                .await
                .map_err(source)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some((last.started_at, last.id));
            let full = page.len() as i64 == INSTANCES_PER_PAGE;
            for instance in page {
                let id = instance.id;
                match self.session(conn, instance).await {
                    // What the log cannot take of this session (it would not fold: a message
                    // after its end, say): the rest of it is skipped, the import goes on.
                    Err(ImportError::Log(LogError::Corrupt(reason))) => {
                        self.pending.clear();
                        self.skip(
                            "agent_instances",
                            id,
                            format!(
                                "the log refused it ({reason}); its rows from there on are skipped"
                            ),
                        );
                    }
                    other => other?,
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn session(
        &mut self,
        conn: &mut PgConnection,
        instance: Instance,
    ) -> Result<(), ImportError> {
        let id = instance.id;
        let status = instance.status.as_str();
        if !ENDED.contains(&status) && !RUNNING.contains(&status) {
            let reason =
                format!("unknown status {status:?}; the instance and its messages are skipped");
            self.skip("agent_instances", id, reason);
            return Ok(());
        }
        let agent = instance.agent_name.as_deref().unwrap_or("omnara");
        let agent_type = match AgentType::parse("user_agents.name", agent) {
            Ok(a) => a,
            Err(e) => {
                self.skip("agent_instances", id, format!("agent type: {e}"));
                return Ok(());
            }
        };
        let started = utc(instance.started_at);
        let extra = if self.schema.legacy_2025_12 {
            "instance_metadata::text"
        } else {
            "NULL::text"
        };
        let (diff, metadata): (Option<String>, Option<String>) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT git_diff, {extra} FROM agent_instances WHERE id = $1"
            )))
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .map_err(source)?;
        self.push(
            id,
            derived(id, "started"),
            Event::SessionStarted(SessionStarted {
                agent_type: agent_type.as_str().to_owned(),
            }),
            started,
            Actor::Agent,
            "agent_instances",
            id.to_string(),
        );
        let described = self.described(id, instance.name.as_deref(), metadata.as_deref());
        if !described.is_empty() {
            self.push(
                id,
                derived(id, "described"),
                Event::SessionDescribed(described),
                started,
                Actor::Agent,
                "agent_instances",
                id.to_string(),
            );
        }
        // Where the agent's read cursor is, in the order messages are imported.
        let cursor: Option<(PrimitiveDateTime, Uuid)> = match instance.last_read_message_id {
            None => None,
            Some(read) => {
                let at: Option<PrimitiveDateTime> = sqlx::query_scalar(
                    "SELECT created_at FROM messages WHERE id = $1 AND agent_instance_id = $2",
                )
                .bind(read)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(source)?;
                if at.is_none() {
                    let reason = format!(
                        "last_read_message_id {read} is not a message of this instance: imported \
                         as nothing read"
                    );
                    self.skip("agent_instances", id, reason);
                }
                at.map(|at| (at, read))
            }
        };
        let mut last = started;
        let mut read_up_to = false;
        let mut rows = sqlx::query_as::<_, Message>(
            "SELECT id, sender_type::text AS sender_type, content, created_at,
                    requires_user_input, message_metadata
             FROM messages WHERE agent_instance_id = $1 ORDER BY created_at, id",
        )
        .bind(id)
        .fetch(&mut *conn);
        let mut batch = Vec::new();
        while let Some(m) = rows.try_next().await.map_err(source)? {
            batch.push(m);
            if batch.len() == BATCH {
                for m in std::mem::take(&mut batch) {
                    self.message(id, m, cursor, &mut last, &mut read_up_to);
                }
                // Appending needs the connection this stream reads on no more than the log's.
                self.flush().await?;
            }
        }
        drop(rows);
        for m in batch {
            self.message(id, m, cursor, &mut last, &mut read_up_to);
        }
        if read_up_to {
            self.report.cursors += 1;
        }
        if let Some(diff) = diff.filter(|d| !d.is_empty()) {
            match GitDiffUpdate::parse("git_diff", &diff) {
                Ok(GitDiffUpdate::Set(git_diff)) => self.push(
                    id,
                    derived(id, "diff"),
                    Event::GitDiffUpdated(GitDiffUpdated { git_diff }),
                    last,
                    Actor::Agent,
                    "agent_instances",
                    id.to_string(),
                ),
                Ok(_) => self.skip(
                    "agent_instances",
                    id,
                    "git_diff is not a git diff; not imported",
                ),
                Err(e) => self.skip("agent_instances", id, format!("git_diff {e}; not imported")),
            }
        }
        if ENDED.contains(&status) {
            let ended = instance.ended_at.map_or(last, utc);
            if ended < last {
                self.skip(
                    "agent_instances",
                    id,
                    format!(
                        "ended_at is before its last message: the end is recorded at the last \
                         message's time ({})",
                        crate::wire::timestamp(last)
                    ),
                );
            }
            self.push(
                id,
                derived(id, "ended"),
                // Who ended it is not recorded in omnara.
                Event::SessionEnded(SessionEnded { by: None }),
                ended.max(last),
                Actor::Agent,
                "agent_instances",
                format!("{id} (status {status})"),
            );
        }
        self.report.sessions += 1;
        self.flush().await?;
        self.progress.tick(&self.report);
        Ok(())
    }

    /// What an instance's name and metadata say about it, as far as Switchboard describes
    /// sessions (the rest of the metadata stays in the source).
    fn described(
        &mut self,
        id: Uuid,
        name: Option<&str>,
        metadata: Option<&str>,
    ) -> SessionDescribed {
        let text = |value: Option<&Value>| {
            value
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty() && !s.contains('\0'))
                .map(str::to_owned)
        };
        let mut described = SessionDescribed {
            title: name
                .map(str::trim)
                .filter(|n| !n.is_empty() && !n.contains('\0'))
                .map(str::to_owned),
            ..SessionDescribed::default()
        };
        if let Some(raw) = metadata {
            match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(m)) if has_nul(&Value::Object(m.clone())) => {
                    self.skip(
                        "agent_instances",
                        id,
                        "instance_metadata holds NUL characters; not imported",
                    );
                }
                Ok(Value::Object(m)) => {
                    described.cwd = text(m.get("cwd"));
                    described.branch = text(m.get("branch").or(m.get("git_branch")));
                    described.host = text(m.get("host").or(m.get("hostname")));
                    described.project = text(m.get("project").or(m.get("repository")));
                    described.client = text(m.get("client"));
                }
                Ok(Value::Null) => {}
                _ => self.skip(
                    "agent_instances",
                    id,
                    "instance_metadata is not a JSON object; not imported",
                ),
            }
        }
        described
    }

    fn message(
        &mut self,
        session: Uuid,
        m: Message,
        cursor: Option<(PrimitiveDateTime, Uuid)>,
        last: &mut OffsetDateTime,
        read_up_to: &mut bool,
    ) {
        let id = m.id;
        let read = cursor.is_some_and(|c| (m.created_at, m.id) <= c);
        *read_up_to |= cursor.is_some_and(|c| c.1 == m.id);
        let content = match Content::parse("content", m.content) {
            Ok(c) => c.into_string(),
            Err(e) => {
                self.skip("messages", id, e.to_string());
                return;
            }
        };
        let metadata = match m.message_metadata.map(|j| j.0) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => match message_metadata("message_metadata", map) {
                Ok(map) => Some(map),
                Err(e) => {
                    self.skip("messages", id, format!("{e}"));
                    return;
                }
            },
            Some(_) => {
                self.skip("messages", id, "message_metadata is not a JSON object");
                return;
            }
        };
        let at = utc(m.created_at);
        let (event, actor) = match m.sender_type.as_str() {
            "AGENT" => (
                Event::AgentMessage(AgentMessage {
                    content,
                    requires_user_input: m.requires_user_input,
                    message_metadata: metadata,
                    leaves_unread: !read,
                    ..AgentMessage::default()
                }),
                Actor::Agent,
            ),
            "USER" => (
                Event::UserMessage(UserMessage {
                    content,
                    mark_as_read: read,
                    chosen_option: None,
                    updated_input: None,
                    terminal: false,
                    answers: projections::Answers::Unstated,
                }),
                Actor::User,
            ),
            other => {
                self.skip("messages", id, format!("unknown sender_type {other:?}"));
                return;
            }
        };
        *last = (*last).max(at);
        self.report.messages += 1;
        self.push(session, id, event, at, actor, "messages", id.to_string());
    }

    /// What stays behind, per kind: keys, push tokens, billing, teams and sharing.
    async fn left_behind(&mut self, conn: &mut PgConnection) -> Result<(), ImportError> {
        self.report.api_keys = sqlx::query_scalar(
            "SELECT name::text FROM api_keys WHERE user_id = $1 AND is_active
             AND (expires_at IS NULL OR expires_at > now() AT TIME ZONE 'UTC') ORDER BY created_at",
        )
        .bind(self.tenant)
        .fetch_all(&mut *conn)
        .await
        .map_err(source)?;
        let (push, billing): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM push_tokens WHERE user_id = $1 AND is_active),
                    (SELECT count(*) FROM subscriptions WHERE user_id = $1)
                  + (SELECT count(*) FROM billing_events WHERE user_id = $1)",
        )
        .bind(self.tenant)
        .fetch_one(&mut *conn)
        .await
        .map_err(source)?;
        self.report.push_tokens = push as u64;
        self.report.billing_rows = billing as u64;
        if self.schema.legacy_2025_12 {
            let (memberships, shared): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM team_memberships WHERE user_id = $1),
                        (SELECT count(*) FROM user_instance_access WHERE user_id = $1)
                      + (SELECT count(*) FROM team_instance_access t
                         JOIN agent_instances i ON i.id = t.agent_instance_id WHERE i.user_id = $1)",
            )
            .bind(self.tenant)
            .fetch_one(&mut *conn)
            .await
            .map_err(source)?;
            self.report.team_memberships = memberships as u64;
            self.report.shared_instances = shared as u64;
        }
        Ok(())
    }
}

/// Whether any key or string in `value` holds a NUL character.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// An event id derived from a source row and what was made of it.
fn derived(row: Uuid, what: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("omnara/{row}/{what}").as_bytes())
}

/// A progress line on a terminal.
struct Progress {
    on: bool,
    started: Instant,
    shown: Option<Instant>,
    /// Messages of the users done so far.
    messages: u64,
}

impl Progress {
    fn new(on: bool) -> Progress {
        Progress {
            on,
            started: Instant::now(),
            shown: None,
            messages: 0,
        }
    }

    fn tick(&mut self, user: &UserReport) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if self
            .shown
            .is_some_and(|at| now - at < Duration::from_millis(250))
        {
            return;
        }
        self.shown = Some(now);
        let messages = self.messages + user.messages;
        let rate = messages as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r\x1b[2Kimporting {}: {} sessions, {} messages ({rate:.0} messages/s)",
            user.email, user.sessions, user.messages
        );
    }

    fn finish(&mut self) {
        if self.on && self.shown.is_some() {
            eprintln!();
        }
    }
}

/// The report as people read it: what came across, and what did not, per kind.
pub fn summary(report: &Report, dry_run: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if let Some(schema) = &report.schema {
        let _ = writeln!(out, "Found {}.", schema.describe());
    }
    let verb = if dry_run { "would import" } else { "imported" };
    for u in &report.users {
        let _ = writeln!(
            out,
            "user {} <{}>: {verb} {} sessions, {} messages, {} read cursors ({} new events{})",
            u.user_id,
            u.email,
            u.sessions,
            u.messages,
            u.cursors,
            u.appended,
            if u.account_created {
                ""
            } else {
                "; the account existed"
            }
        );
    }
    let _ = writeln!(out, "\nNot imported, by kind:");
    let mut keys = 0;
    for u in &report.users {
        for name in &u.api_keys {
            keys += 1;
            let _ = writeln!(
                out,
                "  API key {name:?} of {}: omnara's keys are hashes and RSA-signed tokens this \
                 server does not accept; make a new one:\n    switchboard keys create --user {} --name {}",
                u.email,
                u.user_id,
                shell_quote(name)
            );
        }
    }
    if keys == 0 {
        let _ = writeln!(out, "  API keys: none active.");
    }
    let sum = |f: fn(&UserReport) -> u64| report.users.iter().map(f).sum::<u64>();
    let _ = writeln!(
        out,
        "  push tokens: {} (Expo tokens of omnara's app; not usable here: turn on notifications \
         on the inbox's settings page)",
        sum(|u| u.push_tokens)
    );
    let _ = writeln!(
        out,
        "  billing rows: {} (Switchboard has no billing)",
        sum(|u| u.billing_rows)
    );
    let _ = writeln!(
        out,
        "  teams: {}, team memberships: {}, shared instances: {} (listed, not imported: \
         Switchboard has no teams yet)",
        report.teams,
        sum(|u| u.team_memberships),
        sum(|u| u.shared_instances)
    );
    if !report.skipped.is_empty() {
        let _ = writeln!(out, "\nSkipped rows ({}):", report.skipped.len());
        for s in &report.skipped {
            let _ = writeln!(out, "  {} {}: {}", s.table, s.id, s.reason);
        }
    }
    out
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let row = Uuid::new_v4();
        assert_eq!(derived(row, "started"), derived(row, "started"));
        assert_ne!(derived(row, "started"), derived(row, "ended"));
        assert_ne!(derived(row, "started"), derived(Uuid::new_v4(), "started"));
    }

    #[test]
    fn names_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("Ada's laptop"), "'Ada'\\''s laptop'");
    }

    #[test]
    fn every_omnara_status_is_known() {
        for status in [
            "ACTIVE",
            "AWAITING_INPUT",
            "PAUSED",
            "STALE",
            "COMPLETED",
            "FAILED",
            "KILLED",
            "DISCONNECTED",
            "DELETED",
        ] {
            assert!(
                ENDED.contains(&status) ^ RUNNING.contains(&status),
                "{status}"
            );
        }
    }

    #[test]
    fn the_summary_says_what_stays_behind() {
        let report = Report {
            schema: Some(Schema {
                revision: "8f18d049395f".into(),
                legacy_2025_12: true,
            }),
            users: vec![UserReport {
                user_id: Uuid::nil(),
                email: "ada@example.com".into(),
                api_keys: vec!["laptop".into()],
                push_tokens: 2,
                ..UserReport::default()
            }],
            ..Report::default()
        };
        let text = summary(&report, false);
        assert!(
            text.contains("8f18d049395f: the last legacy release"),
            "{text}"
        );
        assert!(text.contains("switchboard keys create --user 00000000-0000-0000-0000-000000000000 --name 'laptop'"), "{text}");
        assert!(text.contains("push tokens: 2"), "{text}");
    }
}
