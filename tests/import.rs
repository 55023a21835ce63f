//! `switchboard import omnara` against real omnara databases: each vendored schema
//! (`src/import/schemas/omnara-schema-*.sql`, made by that project's own migrations) applied to
//! a fresh database and filled with realistic rows (several users, instances in every status,
//! questions answered and not, read cursors mid-queue, diffs, metadata, odd Unicode, and bad
//! rows), then imported. The log verifies, the projections rebuild to what they are, every
//! session, message and cursor matches the source by a query on both sides, the omnara SDK
//! continues an imported session with exactly the messages the source had queued for it, a
//! second import appends nothing, and an import killed halfway ends identical once restarted.

mod common;

use std::time::Duration;

use common::{TestApp, TestDb};
use serde_json::{Value, json};
use switchboard::import::omnara;
use time::macros::datetime;
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

const SCHEMA_2025_08: &str = "omnara-schema-2025-08-eaca5a0.sql";
const SCHEMA_2025_12: &str = "omnara-schema-2026-legacy-500a82a.sql";

const PSQL: &str = "/usr/lib/postgresql/15/bin/psql";

/// An omnara database: the schema applied to an empty database, at `revision`.
struct Source {
    db: TestDb,
    legacy: bool,
    clock: PrimitiveDateTime,
}

impl Source {
    async fn new(schema: &str, revision: &str) -> Source {
        let db = common::empty_database().await;
        // As its README says: with psql (the dump holds psql's \\restrict).
        let path = format!("{}/src/import/schemas/{schema}", env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new(PSQL)
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &db.url,
                "-f",
                &path,
            ])
            .output()
            .unwrap_or_else(|e| panic!("{PSQL}: {e} (install postgresql-client-15)"));
        assert!(
            out.status.success(),
            "psql -f {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        sqlx::query("INSERT INTO alembic_version VALUES ($1)")
            .bind(revision)
            .execute(&db.pool)
            .await
            .unwrap();
        Source {
            db,
            legacy: schema == SCHEMA_2025_12,
            clock: datetime!(2025-07-01 09:00),
        }
    }

    /// The next moment (a second later than the last).
    fn tick(&mut self) -> PrimitiveDateTime {
        self.clock += time::Duration::milliseconds(1_000_123);
        self.clock
    }

    async fn user(&mut self, email: &str, name: Option<&str>) -> Uuid {
        let id = Uuid::new_v4();
        let at = self.tick();
        sqlx::query(
            "INSERT INTO users (id, email, display_name, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(email)
        .bind(name)
        .bind(at)
        .execute(&self.db.pool)
        .await
        .unwrap();
        id
    }

    async fn agent(&mut self, user: Uuid, name: &str) -> Uuid {
        let id = Uuid::new_v4();
        sqlx::query("INSERT INTO user_agents (id, user_id, name) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(user)
            .bind(name)
            .execute(&self.db.pool)
            .await
            .unwrap();
        id
    }

    async fn instance(
        &mut self,
        user: Uuid,
        agent: Uuid,
        status: &str,
        diff: Option<&str>,
    ) -> Uuid {
        let id = Uuid::new_v4();
        let started = self.tick();
        let ended = ["COMPLETED", "FAILED", "KILLED", "DELETED"]
            .contains(&status)
            .then(|| started + time::Duration::hours(1));
        sqlx::query(
            "INSERT INTO agent_instances (id, user_id, status, started_at, ended_at, user_agent_id, git_diff)
             VALUES ($1, $2, $3::agentstatus, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(user)
        .bind(status)
        .bind(started)
        .bind(ended)
        .bind(agent)
        .bind(diff)
        .execute(&self.db.pool)
        .await
        .unwrap();
        id
    }

    async fn message(
        &mut self,
        instance: Uuid,
        agent: bool,
        content: &str,
        question: bool,
    ) -> Uuid {
        self.message_with(instance, agent, content, question, None)
            .await
    }

    async fn message_with(
        &mut self,
        instance: Uuid,
        agent: bool,
        content: &str,
        question: bool,
        metadata: Option<Value>,
    ) -> Uuid {
        let id = Uuid::new_v4();
        let at = self.tick();
        sqlx::query(
            "INSERT INTO messages (id, agent_instance_id, sender_type, content, created_at,
                                   requires_user_input, message_metadata)
             VALUES ($1, $2, $3::sendertype, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(instance)
        .bind(if agent { "AGENT" } else { "USER" })
        .bind(content)
        .bind(at)
        .bind(question)
        .bind(metadata)
        .execute(&self.db.pool)
        .await
        .unwrap();
        id
    }

    async fn read_up_to(&self, instance: Uuid, message: Uuid) {
        sqlx::query("UPDATE agent_instances SET last_read_message_id = $2 WHERE id = $1")
            .bind(instance)
            .bind(message)
            .execute(&self.db.pool)
            .await
            .unwrap();
    }

    async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.db.pool)
            .await
            .unwrap();
    }
}

const DIFF: &str = "diff --git a/app.py b/app.py\nindex 83db48f..bf269f4 100644\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-print('hi')\n+print('hello')";
const ODD: &str = "naïve café 🚀 עברית العربية \u{200B}zero-width 𝄞 \u{1F469}\u{200D}\u{1F4BB} \"quotes\" <b>tags</b>";

/// What the test expects of the import, beyond what the queries compare.
struct Filled {
    ada: Uuid,
    bob: Uuid,
    /// An active instance whose agent has read up to its third message: two queued after it.
    continued: Uuid,
    queued: Vec<&'static str>,
    /// Rows that must be reported as skipped (table, id).
    bad: Vec<(&'static str, Uuid)>,
}

/// Realistic rows: two users with sessions, one without; every status; bad rows.
async fn fill(source: &mut Source) -> Filled {
    let ada = source.user("ada@example.com", Some("Ada Lovelace")).await;
    let bob = source.user("bob@example.com", None).await;
    let _carol = source.user("carol@example.com", Some("Carol")).await;
    let claude = source.agent(ada, "Claude Code").await;
    let cursor = source.agent(bob, "Cursor").await;
    let mut bad = Vec::new();

    // Ada's active session: a question answered, then the agent read up to "Working"; two
    // replies queued since.
    let continued = source.instance(ada, claude, "ACTIVE", Some(DIFF)).await;
    source
        .message(continued, true, "Reading the repository", false)
        .await;
    source
        .message(continued, true, "Proceed with the refactor?", true)
        .await;
    source
        .message(continued, false, "Yes, go ahead", false)
        .await;
    let working = source
        .message_with(
            continued,
            true,
            "Working",
            false,
            Some(json!({"step": 3, "tool": "Edit"})),
        )
        .await;
    source.read_up_to(continued, working).await;
    source
        .message(continued, false, "Also add tests, please", false)
        .await;
    source.message(continued, false, ODD, false).await;
    let queued = vec!["Also add tests, please", ODD];

    // Waiting for an answer; read up to the question.
    let waiting = source.instance(ada, claude, "AWAITING_INPUT", None).await;
    source
        .message(waiting, true, "Deploy to staging?", false)
        .await;
    let asked = source
        .message(waiting, true, "Which branch should I deploy?", true)
        .await;
    source.read_up_to(waiting, asked).await;

    // Over, in each way; a diff that is not one; odd Unicode.
    for status in ["COMPLETED", "FAILED", "KILLED"] {
        let diff = if status == "FAILED" {
            Some("not a diff at all")
        } else {
            Some(DIFF)
        };
        let over = source.instance(ada, claude, status, diff).await;
        source
            .message(over, true, &format!("{status}: {ODD}"), false)
            .await;
        let answered = source.message(over, true, "Run the migration?", true).await;
        let reply = source.message(over, false, "No", false).await;
        source.read_up_to(over, reply).await;
        let _ = answered;
        if status == "FAILED" {
            bad.push(("agent_instances", over));
        }
    }
    // Paused, stale and disconnected ones, nothing read: every reply is queued.
    for status in ["PAUSED", "STALE", "DISCONNECTED"] {
        let idle = source.instance(bob, cursor, status, None).await;
        source.message(idle, true, "Waiting for CI", false).await;
        source.message(idle, false, "CI is green", false).await;
        // A blank message and metadata that is not an object: reported, skipped.
        if status == "PAUSED" {
            bad.push(("messages", source.message(idle, false, "   ", false).await));
            bad.push((
                "messages",
                source
                    .message_with(idle, true, "odd metadata", false, Some(json!([1, 2])))
                    .await,
            ));
        }
    }
    if source.legacy {
        let gone = source.instance(bob, cursor, "DELETED", None).await;
        source
            .message(gone, true, "A session deleted in omnara", false)
            .await;
        let named = source.instance(bob, cursor, "ACTIVE", None).await;
        source
            .exec(&format!(
                "UPDATE agent_instances SET name = 'Fix the login bug',
                 instance_metadata = '{{\"cwd\": \"/home/bob/app\", \"branch\": \"fix-login\"}}'
                 WHERE id = '{named}'"
            ))
            .await;
        source
            .message(named, true, "Looking at the login form", false)
            .await;
        let nul = source.instance(bob, cursor, "ACTIVE", None).await;
        source
            .exec(&format!(
                "UPDATE agent_instances SET instance_metadata = '{{\"cwd\": \"a\\u0000b\"}}' WHERE id = '{nul}'"
            ))
            .await;
        bad.push(("agent_instances", nul));
        // Teams and sharing: listed, not imported.
        source
            .exec(&format!(
                "INSERT INTO teams VALUES ('{t}', 'Platform', now(), now());
                 INSERT INTO team_memberships VALUES ('{m}', '{t}', '{bob}', NULL, 'OWNER', now(), now());",
                t = Uuid::new_v4(),
                m = Uuid::new_v4(),
            ))
            .await;
    }
    // A status this import does not know (added to the enum since): skipped with its messages.
    source
        .exec("ALTER TYPE agentstatus ADD VALUE 'ARCHIVED'")
        .await;
    let archived = source.instance(bob, cursor, "ARCHIVED", None).await;
    source
        .message(archived, true, "In an unknown status", false)
        .await;
    bad.push(("agent_instances", archived));
    // A message of an instance that does not exist (its foreign key bypassed).
    let orphan = Uuid::new_v4();
    source
        .exec(&format!(
            "SET session_replication_role = replica;
             INSERT INTO messages (id, agent_instance_id, sender_type, content, created_at, requires_user_input)
             VALUES ('{orphan}', '{}', 'AGENT', 'orphaned', now(), false);
             SET session_replication_role = DEFAULT;",
            Uuid::new_v4()
        ))
        .await;
    bad.push(("messages", orphan));
    // Keys, push tokens and billing: what stays behind.
    source
        .exec(&format!(
            "INSERT INTO api_keys VALUES ('{}', '{ada}', 'laptop', 'h1', 'eyJ...', true, now(), NULL, NULL);
             INSERT INTO api_keys VALUES ('{}', '{ada}', 'old', 'h2', 'eyJ...', false, now(), NULL, NULL);
             INSERT INTO push_tokens VALUES ('{}', '{ada}', 'ExponentPushToken[x]', 'ios', true, now(), now(), NULL);
             INSERT INTO subscriptions (id, user_id, plan_type, agent_limit, created_at, updated_at)
             VALUES ('{}', '{ada}', 'pro', 10, now(), now());",
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4()
        ))
        .await;
    Filled {
        ada,
        bob,
        continued,
        queued,
        bad,
    }
}

fn options() -> omnara::Options {
    omnara::Options::default()
}

/// Messages both sides hold, compared row for row: (id, session, sender, content, time, question).
async fn compare(source: &Source, app: &TestApp, skipped: &[Uuid]) {
    type Row = (Uuid, Uuid, String, String, OffsetDateTime, bool);
    let mut from: Vec<Row> = sqlx::query_as(
        "SELECT m.id, m.agent_instance_id, m.sender_type::text, m.content,
                m.created_at AT TIME ZONE 'UTC', m.requires_user_input
         FROM messages m JOIN agent_instances i ON i.id = m.agent_instance_id
         WHERE i.status::text <> 'ARCHIVED' ORDER BY m.id",
    )
    .fetch_all(&source.db.pool)
    .await
    .unwrap();
    from.retain(|r| !skipped.contains(&r.0));
    let to: Vec<Row> = sqlx::query_as(
        "SELECT event_id, stream_id,
                CASE event_type WHEN 'agent_message' THEN 'AGENT' ELSE 'USER' END,
                data->>'content', recorded_at,
                coalesce((data->>'requires_user_input')::boolean, false)
         FROM events WHERE event_type IN ('agent_message', 'user_message') ORDER BY event_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(from.len(), to.len());
    assert_eq!(from, to, "every message, as it was");

    // Sessions: agent type, start, whether over, the diff.
    type Session = (Uuid, String, OffsetDateTime, bool, Option<String>);
    let from: Vec<Session> = sqlx::query_as(
        "SELECT i.id, a.name::text, i.started_at AT TIME ZONE 'UTC',
                i.status::text IN ('COMPLETED', 'FAILED', 'KILLED', 'DELETED'),
                CASE WHEN i.git_diff LIKE 'diff --git%' THEN i.git_diff END
         FROM agent_instances i JOIN user_agents a ON a.id = i.user_agent_id
         WHERE i.status::text <> 'ARCHIVED' ORDER BY i.id",
    )
    .fetch_all(&source.db.pool)
    .await
    .unwrap();
    let to: Vec<Session> = sqlx::query_as(
        "SELECT id, agent_type, started_at, status = 'COMPLETED', git_diff FROM sessions ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(from, to, "every session, as it was");

    // Cursors and what is queued: the user messages after each instance's cursor.
    let from: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "SELECT id, last_read_message_id FROM agent_instances WHERE status::text <> 'ARCHIVED' ORDER BY id",
    )
    .fetch_all(&source.db.pool)
    .await
    .unwrap();
    let to: Vec<(Uuid, Option<Uuid>)> =
        sqlx::query_as("SELECT id, read_cursor FROM sessions ORDER BY id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(from, to, "every read cursor");
    let mut from: Vec<Uuid> = sqlx::query_scalar(
        "SELECT m.id FROM messages m JOIN agent_instances i ON i.id = m.agent_instance_id
         WHERE m.sender_type = 'USER'
           AND i.status::text NOT IN ('ARCHIVED', 'COMPLETED', 'FAILED', 'KILLED', 'DELETED')
           AND (i.last_read_message_id IS NULL OR (m.created_at, m.id) >
                (SELECT created_at, id FROM messages WHERE id = i.last_read_message_id))
         ORDER BY m.id",
    )
    .fetch_all(&source.db.pool)
    .await
    .unwrap();
    from.retain(|id| !skipped.contains(id));
    let to: Vec<Uuid> = sqlx::query_scalar(
        "SELECT n.message_id FROM inbox n JOIN sessions s ON s.tenant_id = n.tenant_id AND s.id = n.session_id
         WHERE s.status <> 'COMPLETED' ORDER BY n.message_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(from, to, "what is queued for each agent");
}

async fn cli(db: &TestDb, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn event_count(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn imports_and_matches(schema: &str, revision: &str) {
    let mut source = Source::new(schema, revision).await;
    let filled = fill(&mut source).await;
    let app = TestApp::spawn().await;

    // A dry run checks and counts, and writes nothing.
    let (ok, dry) = cli(
        &app.db,
        &["import", "omnara", "--from", &source.db.url, "--dry-run"],
    )
    .await;
    assert!(ok, "{dry}");
    assert!(
        dry.contains(&format!("alembic revision {revision}")),
        "{dry}"
    );
    assert!(dry.contains("would import"), "{dry}");
    assert_eq!(event_count(&app.db).await, 0, "a dry run writes nothing");

    let report = omnara::import(&app.log, &connect(&source).await, &options())
        .await
        .unwrap();
    let text = omnara::summary(&report, false);
    println!("{text}");
    let schema_seen = report.schema.clone().unwrap();
    assert_eq!(schema_seen.legacy_2025_12, source.legacy, "{text}");
    for (table, id) in &filled.bad {
        assert!(
            report
                .skipped
                .iter()
                .any(|s| s.table == *table && s.id == id.to_string()),
            "{table} {id} is not reported:\n{text}"
        );
    }
    assert!(
        text.contains(&format!(
            "switchboard keys create --user {} --name 'laptop'",
            filled.ada
        )),
        "{text}"
    );
    assert!(
        !text.contains("'old'"),
        "an inactive key is not offered: {text}"
    );
    assert!(text.contains("push tokens: 1"), "{text}");
    assert!(text.contains("billing rows: 1"), "{text}");
    if source.legacy {
        assert!(text.contains("teams: 1, team memberships: 1"), "{text}");
    }
    let skipped: Vec<Uuid> = report
        .skipped
        .iter()
        .filter(|s| s.table == "messages")
        .filter_map(|s| s.id.parse().ok())
        .collect();
    compare(&source, &app, &skipped).await;

    // Provenance and original times.
    let (metadata, at): (Value, OffsetDateTime) = sqlx::query_as(
        "SELECT metadata::jsonb, recorded_at FROM events WHERE event_type = 'user_created'
         AND tenant_id = $1",
    )
    .bind(filled.bob)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(metadata["imported"]["from"], "omnara", "{metadata}");
    assert_eq!(metadata["imported"]["table"], "users", "{metadata}");
    assert_eq!(
        metadata["imported"]["id"],
        filled.bob.to_string(),
        "{metadata}"
    );
    let created: OffsetDateTime =
        sqlx::query_scalar("SELECT created_at AT TIME ZONE 'UTC' FROM users WHERE id = $1")
            .bind(filled.bob)
            .fetch_one(&source.db.pool)
            .await
            .unwrap();
    assert_eq!(at, created);
    let name: String = sqlx::query_scalar("SELECT name FROM users WHERE tenant_id = $1")
        .bind(filled.bob)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        name, "bob@example.com",
        "named by the email when it had no name"
    );
    if source.legacy {
        let (title, branch): (Option<String>, Option<String>) =
            sqlx::query_as("SELECT title, branch FROM sessions WHERE title = 'Fix the login bug'")
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
        assert_eq!(
            (title.as_deref(), branch.as_deref()),
            (Some("Fix the login bug"), Some("fix-login"))
        );
    }

    // The log verifies and the projections are what the log says.
    let (ok, verified) = cli(&app.db, &["verify"]).await;
    assert!(ok && verified.contains("the log is intact"), "{verified}");
    let (ok, checked) = cli(&app.db, &["projections", "rebuild", "--check"]).await;
    assert!(ok, "{checked}");

    // Again: nothing new.
    let before = event_count(&app.db).await;
    let again = omnara::import(&app.log, &connect(&source).await, &options())
        .await
        .unwrap();
    assert_eq!(
        event_count(&app.db).await,
        before,
        "a second import appends nothing"
    );
    assert!(again.users.iter().all(|u| u.appended == 0));

    // --create-keys: a key per active omnara key, printed once; the import appends nothing.
    let (public, private) = common::signing_key_pems().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "import",
            "omnara",
            "--from",
            &source.db.url,
            "--create-keys",
        ])
        .env("DATABASE_URL", &app.db.url)
        .env("JWT_PUBLIC_KEY", public)
        .env("JWT_PRIVATE_KEY", private)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(event_count(&app.db).await, before);
    let line = printed
        .lines()
        .find(|l| l.contains("ada@example.com \"laptop\""))
        .unwrap_or_else(|| panic!("no new key for laptop: {printed}"));
    let key = line.rsplit(' ').next().unwrap().to_owned();

    // The SDK, pointed at Switchboard with that key, continues Ada's session.
    let python = common::prereqs::python(
        "omnara-1.3.16",
        &[
            &[
                "requests==2.32.3",
                "aiohttp==3.10.11",
                "certifi==2024.8.30",
                "urllib3==2.2.3",
            ],
            &["--no-deps", "omnara==1.3.16"],
        ],
    );
    let out = tokio::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sdk/continue.py"
        ))
        .arg(&app.address)
        .arg(&key)
        .arg(filled.continued.to_string())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queued: Vec<String> = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(queued, filled.queued, "exactly what the source had queued");
    println!("the SDK received {queued:?}");
}

async fn connect(source: &Source) -> sqlx::PgPool {
    omnara::connect(&source.db.url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_omnara_database_of_2025_08_comes_across_whole() {
    imports_and_matches(SCHEMA_2025_08, "c1a2b3d4e5f6").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_omnara_database_of_the_2025_12_legacy_release_comes_across_whole() {
    imports_and_matches(SCHEMA_2025_12, "8f18d049395f").await;
}

/// Killed halfway (SIGKILL, mid-batch), restarted: the log ends as an uninterrupted import's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_halfway_continues_and_ends_identical() {
    let mut source = Source::new(SCHEMA_2025_12, "8f18d049395f").await;
    let user = source.user("dan@example.com", Some("Dan")).await;
    let agent = source.agent(user, "Claude Code").await;
    let started = source.tick();
    // 20 sessions of 1,500 messages (several batches each), written in bulk.
    source
        .exec(&format!(
            "INSERT INTO agent_instances (id, user_id, status, started_at, user_agent_id)
             SELECT md5('i' || n)::uuid, '{user}', 'ACTIVE', '{started}'::timestamp + n * interval '1 hour', '{agent}'
             FROM generate_series(1, 20) n;
             INSERT INTO messages (id, agent_instance_id, sender_type, content, created_at, requires_user_input)
             SELECT md5('m' || n || '-' || k)::uuid, md5('i' || n)::uuid,
                    (CASE WHEN k % 3 = 0 THEN 'USER' ELSE 'AGENT' END)::sendertype,
                    'message ' || k || ' of session ' || n,
                    '{started}'::timestamp + n * interval '1 hour' + k * interval '1 second', k % 10 = 5
             FROM generate_series(1, 20) n, generate_series(1, 1500) k;
             UPDATE agent_instances i SET last_read_message_id = md5('m' || n || '-1200')::uuid
             FROM generate_series(1, 20) n WHERE i.id = md5('i' || n)::uuid;"
        ))
        .await;
    let whole = common::database().await;
    let (ok, text) = cli(&whole, &["import", "omnara", "--from", &source.db.url]).await;
    assert!(ok, "{text}");

    let cut = common::database().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["import", "omnara", "--from", &source.db.url])
        .env("DATABASE_URL", &cut.url)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let total = event_count(&whole).await;
    loop {
        let n = event_count(&cut).await;
        if n > total / 3 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    let partial = event_count(&cut).await;
    assert!(partial < total, "killed halfway: {partial} of {total}");
    println!("killed at {partial} of {total} events");
    let (ok, text) = cli(&cut, &["import", "omnara", "--from", &source.db.url]).await;
    assert!(ok, "{text}");
    type Row = (Uuid, i64, Uuid, i32, Uuid, String, String, OffsetDateTime);
    let events = |db: &TestDb| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_as::<_, Row>(
                "SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text,
                        recorded_at FROM events ORDER BY tenant_id, seq",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let (a, b) = (events(&whole).await, events(&cut).await);
    assert_eq!(a.len(), b.len());
    assert!(a == b, "the restarted import ends as the uninterrupted one");
    let (ok, verified) = cli(&cut, &["verify"]).await;
    assert!(ok, "{verified}");
    let (ok, checked) = cli(&cut, &["projections", "rebuild", "--check"]).await;
    assert!(ok, "{checked}");
}
