//! The command functions' rules, each as a short story against a real database.

mod common;

use common::{audit_ctx, ctx};
use projections::SessionStatus;
use switchboard::commands::{
    self, AgentMessageInput, AgentMessageSent, CommandError, Context, PendingStatus,
    UserMessageInput,
};
use switchboard::domain::{AgentType, Content, GitDiffUpdate};
use switchboard::eventlog::{EventLog, MessageRef};
use uuid::Uuid;

fn agent_input(session: Uuid, content: &str, question: bool) -> AgentMessageInput {
    AgentMessageInput {
        agent_type: Some(AgentType::parse("agent_type", "claude-code").unwrap()),
        requires_user_input: question,
        ..AgentMessageInput::new(session, Content::parse("content", content.into()).unwrap())
    }
}

async fn say(log: &EventLog, ctx: &Context, session: Uuid, content: &str) -> AgentMessageSent {
    commands::send_agent_message(log, ctx, agent_input(session, content, false))
        .await
        .unwrap()
}

async fn ask(log: &EventLog, ctx: &Context, session: Uuid, content: &str) -> AgentMessageSent {
    commands::send_agent_message(log, ctx, agent_input(session, content, true))
        .await
        .unwrap()
}

async fn reply(
    log: &EventLog,
    ctx: &Context,
    session: Uuid,
    content: &str,
    mark_as_read: bool,
) -> Uuid {
    commands::send_user_message(
        log,
        ctx,
        UserMessageInput {
            session_id: session,
            content: Content::parse("content", content.into()).unwrap(),
            mark_as_read,
            updated_input: None,
            target: Default::default(),
            terminal: false,
        },
    )
    .await
    .unwrap()
    .message_id
}

async fn status(log: &EventLog, tenant: Uuid, session: Uuid) -> SessionStatus {
    log.session(tenant, session)
        .await
        .unwrap()
        .unwrap()
        .session
        .status
}

/// What the messages handed over say, read from the log as an answer's writer reads them.
impl World {
    async fn contents(&self, refs: &[MessageRef]) -> Vec<String> {
        let messages = self.log.user_messages(self.tenant, refs).await.unwrap();
        messages.into_iter().map(|m| m.content).collect()
    }
}

struct World {
    _db: common::TestDb,
    log: EventLog,
    tenant: Uuid,
    ctx: Context,
}

async fn world() -> World {
    let db = common::database().await;
    let tenant = Uuid::new_v4();
    World {
        log: EventLog::new(db.pool.clone()),
        _db: db,
        tenant,
        ctx: ctx(tenant),
    }
}

#[tokio::test]
async fn a_first_message_starts_the_session_and_needs_an_agent_type() {
    let w = world().await;
    let session = Uuid::new_v4();
    let mut input = agent_input(session, "hello", false);
    input.agent_type = None;
    let error = commands::send_agent_message(&w.log, &w.ctx, input)
        .await
        .unwrap_err();
    assert!(matches!(error, CommandError::BadRequest(_)), "{error:?}");
    assert!(w.log.session(w.tenant, session).await.unwrap().is_none());

    let sent = say(&w.log, &w.ctx, session, "hello").await;
    assert_eq!(sent.session_id, session);
    assert_eq!(sent.step_number, 1);
    assert!(sent.queued_user_messages.is_empty());
    let state = w.log.session(w.tenant, session).await.unwrap().unwrap();
    assert_eq!(state.session.status, SessionStatus::Active);
    assert_eq!(state.session.agent_type, "claude-code");
    assert_eq!(state.session.read_cursor, Some(sent.message_id));
    // Later messages need no agent type.
    let mut input = agent_input(session, "again", false);
    input.agent_type = None;
    let again = commands::send_agent_message(&w.log, &w.ctx, input)
        .await
        .unwrap();
    assert_eq!(again.step_number, 2);
}

#[tokio::test]
async fn queued_user_messages_are_delivered_once_with_the_next_agent_message() {
    let w = world().await;
    let session = Uuid::new_v4();
    say(&w.log, &w.ctx, session, "working").await;
    reply(&w.log, &w.ctx, session, "also add tests", false).await;
    reply(&w.log, &w.ctx, session, "and docs", false).await;
    let next = say(&w.log, &w.ctx, session, "still working").await;
    assert_eq!(
        w.contents(&next.queued_user_messages).await,
        ["also add tests", "and docs"]
    );
    let after = say(&w.log, &w.ctx, session, "more").await;
    assert!(after.queued_user_messages.is_empty());
}

#[tokio::test]
async fn a_message_marked_as_read_is_not_queued() {
    let w = world().await;
    let session = Uuid::new_v4();
    say(&w.log, &w.ctx, session, "working").await;
    let read = reply(&w.log, &w.ctx, session, "typed in the terminal", true).await;
    let state = w.log.session(w.tenant, session).await.unwrap().unwrap();
    assert_eq!(state.session.read_cursor, Some(read));
    assert!(
        say(&w.log, &w.ctx, session, "next")
            .await
            .queued_user_messages
            .is_empty()
    );
}

#[tokio::test]
async fn questions_await_input_until_the_person_replies() {
    let w = world().await;
    let session = Uuid::new_v4();
    say(&w.log, &w.ctx, session, "working").await;
    ask(&w.log, &w.ctx, session, "may I delete the branch?").await;
    assert_eq!(
        status(&w.log, w.tenant, session).await,
        SessionStatus::AwaitingInput
    );
    reply(&w.log, &w.ctx, session, "yes", false).await;
    assert_eq!(
        status(&w.log, w.tenant, session).await,
        SessionStatus::Active
    );
}

#[tokio::test]
async fn pending_without_a_cursor_only_looks() {
    let w = world().await;
    let session = Uuid::new_v4();
    say(&w.log, &w.ctx, session, "working").await;
    reply(&w.log, &w.ctx, session, "one", false).await;
    for _ in 0..2 {
        let pending = commands::pending(&w.log, &w.ctx, session, None)
            .await
            .unwrap();
        assert_eq!(pending.status, PendingStatus::Ok);
        assert_eq!(w.contents(&pending.messages).await, ["one"]);
    }
}

#[tokio::test]
async fn pending_with_the_cursor_consumes_a_retry_gets_the_same_and_a_reader_left_behind_is_stale()
{
    let w = world().await;
    let session = Uuid::new_v4();
    let question = ask(&w.log, &w.ctx, session, "which database?").await;
    let empty = commands::pending(&w.log, &w.ctx, session, Some(question.message_id))
        .await
        .unwrap();
    assert_eq!((empty.status, empty.messages.len()), (PendingStatus::Ok, 0));

    reply(&w.log, &w.ctx, session, "PostgreSQL", false).await;
    let answer = commands::pending(&w.log, &w.ctx, session, Some(question.message_id))
        .await
        .unwrap();
    assert_eq!(answer.status, PendingStatus::Ok);
    assert_eq!(w.contents(&answer.messages).await, ["PostgreSQL"]);

    // Asking again from the question (a retry whose response was lost) gets the same answer,
    // and moves nothing.
    let again = commands::pending(&w.log, &w.ctx, session, Some(question.message_id))
        .await
        .unwrap();
    assert_eq!(again.status, PendingStatus::Ok);
    assert_eq!(w.contents(&again.messages).await, ["PostgreSQL"]);
    // A reply that arrived meanwhile comes with it, once.
    reply(&w.log, &w.ctx, session, "version 15", false).await;
    let both = commands::pending(&w.log, &w.ctx, session, Some(question.message_id))
        .await
        .unwrap();
    assert_eq!(
        w.contents(&both.messages).await,
        ["PostgreSQL", "version 15"]
    );
    // The reader that got the answer continues from it.
    let next = commands::pending(&w.log, &w.ctx, session, Some(both.messages[1].id))
        .await
        .unwrap();
    assert_eq!((next.status, next.messages.len()), (PendingStatus::Ok, 0));
    // Once the agent has said something since, a reader still at the question is stale.
    say(&w.log, &w.ctx, session, "using PostgreSQL 15").await;
    let stale = commands::pending(&w.log, &w.ctx, session, Some(question.message_id))
        .await
        .unwrap();
    assert_eq!(
        (stale.status, stale.messages.len()),
        (PendingStatus::Stale, 0)
    );
    // Nothing is queued for the next agent message either.
    assert!(
        say(&w.log, &w.ctx, session, "using PostgreSQL")
            .await
            .queued_user_messages
            .is_empty()
    );
}

/// Readers racing from the same cursor cannot be told apart from one reader retrying after a
/// lost response, so each gets the reply (never none: a lost reply is the worse failure); the
/// reply is read once, in one `messages_read`.
#[tokio::test]
async fn readers_racing_from_one_cursor_each_get_the_reply_which_is_read_once() {
    let w = world().await;
    let session = Uuid::new_v4();
    let question = ask(&w.log, &w.ctx, session, "?").await;
    reply(&w.log, &w.ctx, session, "the answer", false).await;
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (log, ctx) = (w.log.clone(), w.ctx.clone());
        readers.push(tokio::spawn(async move {
            commands::pending(&log, &ctx, session, Some(question.message_id))
                .await
                .unwrap()
        }));
    }
    for reader in readers {
        let pending = reader.await.unwrap();
        assert_eq!(pending.status, PendingStatus::Ok);
        assert_eq!(w.contents(&pending.messages).await, ["the answer"]);
    }
    let reads: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'messages_read'",
    )
    .bind(session)
    .fetch_one(w.log.pool())
    .await
    .unwrap();
    assert_eq!(reads, 1);
}

#[tokio::test]
async fn request_input_turns_a_step_into_a_question() {
    let w = world().await;
    let session = Uuid::new_v4();
    let step = say(&w.log, &w.ctx, session, "shall I go on?").await;
    let result = commands::request_input(&w.log, &w.ctx, step.message_id)
        .await
        .unwrap();
    assert_eq!(
        (result.status, result.messages.len()),
        (PendingStatus::Ok, 0)
    );
    assert_eq!(result.session_id, session);
    assert_eq!(
        status(&w.log, w.tenant, session).await,
        SessionStatus::AwaitingInput
    );
    let again = commands::request_input(&w.log, &w.ctx, step.message_id)
        .await
        .unwrap_err();
    assert!(matches!(again, CommandError::BadRequest(_)), "{again:?}");
    let events = w.log.stream(w.tenant, session).await.unwrap();
    let messages = projections::messages(&events);
    assert!(
        messages
            .iter()
            .find(|m| m.id == step.message_id)
            .unwrap()
            .requires_user_input
    );
}

#[tokio::test]
async fn request_input_hands_over_replies_already_queued() {
    let w = world().await;
    let session = Uuid::new_v4();
    let step = say(&w.log, &w.ctx, session, "done, anything else?").await;
    reply(&w.log, &w.ctx, session, "add a changelog", false).await;
    let result = commands::request_input(&w.log, &w.ctx, step.message_id)
        .await
        .unwrap();
    assert_eq!(result.status, PendingStatus::Ok);
    assert_eq!(w.contents(&result.messages).await, ["add a changelog"]);
    assert_eq!(
        status(&w.log, w.tenant, session).await,
        SessionStatus::Active
    );
    assert!(
        say(&w.log, &w.ctx, session, "ok")
            .await
            .queued_user_messages
            .is_empty()
    );
}

#[tokio::test]
async fn request_input_on_an_overtaken_message_is_stale() {
    let w = world().await;
    let session = Uuid::new_v4();
    let first = say(&w.log, &w.ctx, session, "first").await;
    say(&w.log, &w.ctx, session, "second").await;
    let result = commands::request_input(&w.log, &w.ctx, first.message_id)
        .await
        .unwrap();
    assert_eq!(
        (result.status, result.messages.len()),
        (PendingStatus::Stale, 0)
    );
}

#[tokio::test]
async fn request_input_needs_an_agent_message_of_this_tenant() {
    let w = world().await;
    let session = Uuid::new_v4();
    let step = say(&w.log, &w.ctx, session, "step").await;
    let user = reply(&w.log, &w.ctx, session, "a user message", false).await;
    for id in [user, Uuid::new_v4()] {
        let error = commands::request_input(&w.log, &w.ctx, id)
            .await
            .unwrap_err();
        assert!(matches!(error, CommandError::NotFound(_)), "{error:?}");
    }
    let stranger = ctx(Uuid::new_v4());
    let error = commands::request_input(&w.log, &stranger, step.message_id)
        .await
        .unwrap_err();
    assert!(matches!(error, CommandError::NotFound(_)), "{error:?}");
}

#[tokio::test]
async fn an_ended_session_refuses_messages_but_can_be_ended_and_read_again() {
    let w = world().await;
    let session = Uuid::new_v4();
    let step = say(&w.log, &w.ctx, session, "all done").await;
    reply(&w.log, &w.ctx, session, "unread at the end", false).await;
    let ended = commands::end_session(&w.log, &w.ctx, session)
        .await
        .unwrap();
    assert_eq!(ended.final_status, SessionStatus::Completed);
    let state = w.log.session(w.tenant, session).await.unwrap().unwrap();
    assert_eq!(state.session.status, SessionStatus::Completed);
    assert!(state.session.ended_at.is_some());

    let error = commands::send_agent_message(&w.log, &w.ctx, agent_input(session, "more", false))
        .await
        .unwrap_err();
    assert!(matches!(error, CommandError::Conflict(_)), "{error:?}");
    let error = commands::send_user_message(
        &w.log,
        &w.ctx,
        UserMessageInput {
            session_id: session,
            content: Content::parse("content", "hello?".into()).unwrap(),
            mark_as_read: false,
            updated_input: None,
            target: Default::default(),
            terminal: false,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, CommandError::Conflict(_)), "{error:?}");
    let error = commands::request_input(&w.log, &w.ctx, step.message_id)
        .await
        .unwrap_err();
    assert!(matches!(error, CommandError::Conflict(_)), "{error:?}");

    let events_before = w.log.stream(w.tenant, session).await.unwrap().len();
    commands::end_session(&w.log, &w.ctx, session)
        .await
        .unwrap();
    assert_eq!(
        w.log.stream(w.tenant, session).await.unwrap().len(),
        events_before
    );
    let pending = commands::pending(&w.log, &w.ctx, session, Some(step.message_id))
        .await
        .unwrap();
    assert_eq!(w.contents(&pending.messages).await, ["unread at the end"]);
}

#[tokio::test]
async fn unknown_and_foreign_sessions_are_not_found() {
    let w = world().await;
    let session = Uuid::new_v4();
    say(&w.log, &w.ctx, session, "mine").await;
    let stranger = ctx(Uuid::new_v4());
    for target in [session, Uuid::new_v4()] {
        let errors = [
            commands::pending(&w.log, &stranger, target, None)
                .await
                .unwrap_err(),
            commands::end_session(&w.log, &stranger, target)
                .await
                .unwrap_err(),
            commands::heartbeat(&w.log, &stranger, target)
                .await
                .unwrap_err(),
            commands::send_user_message(
                &w.log,
                &stranger,
                UserMessageInput {
                    session_id: target,
                    content: Content::parse("content", "hi".into()).unwrap(),
                    mark_as_read: false,
                    updated_input: None,
                    target: Default::default(),
                    terminal: false,
                },
            )
            .await
            .unwrap_err(),
        ];
        for error in errors {
            assert!(matches!(error, CommandError::NotFound(_)), "{error:?}");
        }
    }
    assert_eq!(
        status(&w.log, w.tenant, session).await,
        SessionStatus::Active
    );
}

#[tokio::test]
async fn heartbeats_record_presence_without_events() {
    let w = world().await;
    let session = Uuid::new_v4();
    say(&w.log, &w.ctx, session, "alive").await;
    let before = w.log.stream(w.tenant, session).await.unwrap().len();
    let beat = commands::heartbeat(&w.log, &w.ctx, session).await.unwrap();
    assert_eq!(
        w.log.last_heartbeat(w.tenant, session).await.unwrap(),
        Some(beat.last_heartbeat_at)
    );
    assert_eq!(w.log.stream(w.tenant, session).await.unwrap().len(), before);
    let later = commands::heartbeat(&w.log, &w.ctx, session).await.unwrap();
    assert!(later.last_heartbeat_at >= beat.last_heartbeat_at);
}

#[tokio::test]
async fn audit_keys_cannot_write() {
    let w = world().await;
    let session = Uuid::new_v4();
    let step = say(&w.log, &w.ctx, session, "step").await;
    let audit = audit_ctx(w.tenant);
    let errors = [
        commands::send_agent_message(&w.log, &audit, agent_input(session, "x", false))
            .await
            .unwrap_err(),
        commands::end_session(&w.log, &audit, session)
            .await
            .unwrap_err(),
        commands::heartbeat(&w.log, &audit, session)
            .await
            .unwrap_err(),
        commands::request_input(&w.log, &audit, step.message_id)
            .await
            .unwrap_err(),
        commands::pending(&w.log, &audit, session, Some(step.message_id))
            .await
            .unwrap_err(),
    ];
    for error in errors {
        assert!(matches!(error, CommandError::Forbidden(_)), "{error:?}");
    }
    assert_eq!(w.log.stream(w.tenant, session).await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_forever() {
    let w = world().await;
    let session = Uuid::new_v4();
    say(&w.log, &w.ctx, session, "working").await;
    reply(&w.log, &w.ctx, session, "feedback", false).await;
    let keyed = Context {
        idempotency_key: Some("retry-1".into()),
        ..w.ctx.clone()
    };
    let first = commands::send_agent_message(&w.log, &keyed, agent_input(session, "step", false))
        .await
        .unwrap();
    assert_eq!(w.contents(&first.queued_user_messages).await, ["feedback"]);
    // The session moves on; the retry still answers as the first time, appending nothing.
    say(&w.log, &w.ctx, session, "later").await;
    let events = w.log.stream(w.tenant, session).await.unwrap().len();
    let retry = commands::send_agent_message(&w.log, &keyed, agent_input(session, "step", false))
        .await
        .unwrap();
    assert_eq!(retry, first);
    assert_eq!(w.log.stream(w.tenant, session).await.unwrap().len(), events);

    let reused =
        commands::send_agent_message(&w.log, &keyed, agent_input(session, "different", false))
            .await
            .unwrap_err();
    assert!(matches!(reused, CommandError::Invalid(_)), "{reused:?}");

    // Racing retries with a fresh key: one append.
    let racing = Context {
        idempotency_key: Some("retry-2".into()),
        ..w.ctx.clone()
    };
    let mut racers = Vec::new();
    for _ in 0..6 {
        let (log, ctx) = (w.log.clone(), racing.clone());
        racers.push(tokio::spawn(async move {
            commands::send_agent_message(&log, &ctx, agent_input(session, "raced", false))
                .await
                .unwrap()
        }));
    }
    let mut results = Vec::new();
    for racer in racers {
        results.push(racer.await.unwrap());
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        w.log.stream(w.tenant, session).await.unwrap().len(),
        events + 1
    );
}

#[tokio::test]
async fn git_diffs_are_kept_cleared_and_not_repeated() {
    let w = world().await;
    let session = Uuid::new_v4();
    let diff =
        "diff --git a/f b/f\nindex 1a2b3c4..5d6e7f8 100644\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b";
    let with_diff = |content: &str, diff: &str| AgentMessageInput {
        git_diff: Some(GitDiffUpdate::parse("git_diff", diff).unwrap()),
        ..agent_input(session, content, false)
    };
    commands::send_agent_message(&w.log, &w.ctx, with_diff("one", diff))
        .await
        .unwrap();
    commands::send_agent_message(&w.log, &w.ctx, with_diff("two", diff))
        .await
        .unwrap();
    commands::send_agent_message(&w.log, &w.ctx, with_diff("three", "not a diff"))
        .await
        .unwrap();
    let state = w.log.session(w.tenant, session).await.unwrap().unwrap();
    assert_eq!(state.session.git_diff.as_deref(), Some(diff));
    let events = w.log.stream(w.tenant, session).await.unwrap();
    let diff_events = events
        .iter()
        .filter(|e| e.event.event_type() == "git_diff_updated")
        .count();
    assert_eq!(diff_events, 1, "an unchanged diff is not appended again");
    commands::send_agent_message(&w.log, &w.ctx, with_diff("four", ""))
        .await
        .unwrap();
    let state = w.log.session(w.tenant, session).await.unwrap().unwrap();
    assert_eq!(state.session.git_diff, None);
}

#[tokio::test]
async fn messages_taken_but_not_handed_over_are_returned_once_and_delivered_next() {
    let w = world().await;
    let session = Uuid::new_v4();
    let question = ask(&w.log, &w.ctx, session, "deploy?").await.message_id;
    let answer = reply(&w.log, &w.ctx, session, "yes", false).await;
    let taken = commands::pending(&w.log, &w.ctx, session, Some(question))
        .await
        .unwrap();
    assert_eq!(w.contents(&taken.messages).await, ["yes"]);
    let later = reply(&w.log, &w.ctx, session, "and tag it", false).await;

    let undelivered = commands::Undelivered {
        session_id: session,
        message_ids: vec![answer],
        read_cursor: Some(question),
    };
    let returned = commands::return_undelivered(&w.log, &w.ctx, undelivered.clone())
        .await
        .unwrap();
    assert_eq!(returned, 1);
    // The inbox row is back before the newer one, in the table as in a rebuild.
    let report = switchboard::eventlog::rebuild::check(w.log.pool())
        .await
        .unwrap();
    assert!(report.differences.is_empty(), "{report:?}");
    // Unread again, in the order said, and waiting for the answer finds it at once.
    let unread = commands::pending(&w.log, &w.ctx, session, None)
        .await
        .unwrap();
    assert_eq!(w.contents(&unread.messages).await, ["yes", "and tag it"]);
    let again = commands::pending(&w.log, &w.ctx, session, Some(question))
        .await
        .unwrap();
    assert_eq!(w.contents(&again.messages).await, ["yes", "and tag it"]);
    assert_eq!(again.messages[1].id, later);

    // Returning what is unread, or was never read, changes nothing.
    let ask_again = ask(&w.log, &w.ctx, session, "anything else?").await;
    reply(&w.log, &w.ctx, session, "no", false).await;
    let version = w.log.session(w.tenant, session).await.unwrap().unwrap();
    let twice = commands::return_undelivered(
        &w.log,
        &w.ctx,
        commands::Undelivered {
            session_id: session,
            message_ids: vec![Uuid::new_v4(), ask_again.message_id],
            read_cursor: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(twice, 0);
    let after = w.log.session(w.tenant, session).await.unwrap().unwrap();
    assert_eq!(after.session.version, version.session.version);

    // Returned after the agent moved on: delivered with its next message; the cursor stays.
    let asked = ask(&w.log, &w.ctx, session, "which tag?").await;
    assert_eq!(w.contents(&asked.queued_user_messages).await, ["no"]);
    let question = asked.message_id;
    let v2 = reply(&w.log, &w.ctx, session, "v2", false).await;
    let taken = commands::pending(&w.log, &w.ctx, session, Some(question))
        .await
        .unwrap();
    assert_eq!(w.contents(&taken.messages).await, ["v2"]);
    let step = say(&w.log, &w.ctx, session, "tagging").await;
    assert!(step.queued_user_messages.is_empty());
    let returned = commands::return_undelivered(
        &w.log,
        &w.ctx,
        commands::Undelivered {
            session_id: session,
            message_ids: vec![v2],
            read_cursor: Some(question),
        },
    )
    .await
    .unwrap();
    assert_eq!(returned, 1);
    let state = w.log.session(w.tenant, session).await.unwrap().unwrap();
    assert_eq!(state.session.read_cursor, Some(step.message_id));
    let next = say(&w.log, &w.ctx, session, "done").await;
    assert_eq!(w.contents(&next.queued_user_messages).await, ["v2"]);
    assert!(
        say(&w.log, &w.ctx, session, "really done")
            .await
            .queued_user_messages
            .is_empty()
    );

    // An ended session takes nothing back.
    commands::end_session(&w.log, &w.ctx, session)
        .await
        .unwrap();
    let ended = commands::return_undelivered(
        &w.log,
        &w.ctx,
        commands::Undelivered {
            session_id: session,
            message_ids: vec![answer],
            read_cursor: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(ended, 0);
    // The projections still equal a rebuild from the log.
    let report = switchboard::eventlog::rebuild::check(w.log.pool())
        .await
        .unwrap();
    assert!(report.differences.is_empty(), "{report:?}");
}
