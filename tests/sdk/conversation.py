"""The whole conversation of the agent dashboard's own Python SDK (omnara 1.3.16 and 1.7.0,
unchanged), against a Switchboard server. Usage: conversation.py <base_url> <api_key>

Exits non-zero with a message on the first thing that does not work as the SDK expects.
"""

import asyncio
import inspect
import sys
import threading
import time
import uuid

from omnara import AsyncOmnaraClient, OmnaraClient
from omnara.sdk.exceptions import APIError, AuthenticationError, TimeoutError

BASE_URL, API_KEY = sys.argv[1], sys.argv[2]

DIFF = (
    "diff --git a/app.py b/app.py\n"
    "index 83db48f..bf269f4 100644\n"
    "--- a/app.py\n"
    "+++ b/app.py\n"
    "@@ -1 +1 @@\n"
    "-print('hi')\n"
    "+print('hello')\n"
)


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def reply_later(user, instance_id, content, delay=1.0):
    """The person answers from the dashboard (which never marks its replies as read)."""

    def reply():
        time.sleep(delay)
        user.send_user_message(instance_id, content, mark_as_read=False)

    thread = threading.Thread(target=reply)
    thread.start()
    return thread


def client(api_key=API_KEY):
    """A client that fails fast: newer SDKs retry 5xx for minutes unless told not to (1.3.16
    has no such option and retries three times)."""
    options = {}
    if "max_retries" in inspect.signature(OmnaraClient.__init__).parameters:
        options["max_retries"] = 0
    return OmnaraClient(api_key=api_key, base_url=BASE_URL, **options)


def sync_conversation():
    agent = client()
    user = client()

    # A step creates the session (the SDK picks the instance id).
    first = agent.send_message(
        content="Reading the repository", agent_type="claude_code", git_diff=DIFF
    )
    instance_id = first.agent_instance_id
    check(first.success and first.message_id, "send_message creates a session")
    check(first.queued_user_messages == [], "no feedback queued yet")

    # Feedback written meanwhile arrives with the next step, once.
    user.send_user_message(instance_id, "Also add tests, please", mark_as_read=False)
    second = agent.send_message(content="Editing app.py", agent_instance_id=instance_id)
    check(second.queued_user_messages == ["Also add tests, please"], "queued feedback is delivered")
    third = agent.send_message(content="Running tests", agent_instance_id=instance_id)
    check(third.queued_user_messages == [], "feedback is delivered only once")

    # A question blocks (polling pending) until the person answers.
    waiter = reply_later(user, instance_id, "Yes, go ahead")
    answer = agent.send_message(
        content="Shall I refactor the module?",
        agent_instance_id=instance_id,
        requires_user_input=True,
        poll_interval=0.2,
        timeout_minutes=1,
    )
    waiter.join()
    check(answer.queued_user_messages == ["Yes, go ahead"], "a question receives its answer")

    # An earlier step turned into a question.
    step = agent.send_message(content="Refactoring done", agent_instance_id=instance_id)
    waiter = reply_later(user, instance_id, "Ship it")
    replies = agent.request_user_input(step.message_id, poll_interval=0.2, timeout_minutes=1)
    waiter.join()
    check(replies == ["Ship it"], "request_user_input receives the reply")

    # Pending messages. Reading again from the same place (a retry after a lost response)
    # gets the same messages again; a reader left behind by the agent's next message is stale.
    latest = agent.send_message(content="Waiting for CI", agent_instance_id=instance_id)
    user.send_user_message(instance_id, "CI is green", mark_as_read=False)
    pending = agent.get_pending_messages(instance_id, latest.message_id)
    check(pending.status == "ok", "pending status ok")
    check([m.content for m in pending.messages] == ["CI is green"], "pending returns the reply")
    check(pending.messages[0].sender_type == "USER", "sender_type is USER")
    again = agent.get_pending_messages(instance_id, latest.message_id)
    check(
        again.status == "ok" and [m.content for m in again.messages] == ["CI is green"],
        "a retried read gets the same reply again",
    )
    agent.send_message(content="CI passed, merging", agent_instance_id=instance_id)
    stale = agent.get_pending_messages(instance_id, latest.message_id)
    check(stale.status == "stale" and stale.messages == [], "a reader left behind is stale")

    # The heartbeat the CLI wrappers post through the SDK's session.
    beat = agent.session.post(
        f"{BASE_URL}/api/v1/agents/instances/{instance_id}/heartbeat", timeout=10
    )
    check(beat.status_code == 200 and beat.json()["agent_instance_id"] == instance_id, "heartbeat")

    ended = agent.end_session(instance_id)
    check(ended.success and ended.final_status == "COMPLETED", "end_session completes")

    # What a dashboard sees of it.
    session = agent.session.get(f"{BASE_URL}/api/v1/sessions/{instance_id}").json()
    check(session["status"] == "COMPLETED", "the session reads as COMPLETED")
    check(session["git_diff"] == DIFF.strip(), "the base64 git diff was decoded and kept")

    # Errors the SDK maps.
    try:
        client("not-a-token").send_message(
            content="x", agent_type="x"
        )
        check(False, "a bad key is refused")
    except AuthenticationError:
        check(True, "a bad key raises AuthenticationError")
    try:
        agent.send_message(content="too late", agent_instance_id=instance_id)
        check(False, "an ended session refuses messages")
    except APIError as e:
        check(e.status_code == 409, f"an ended session answers 409 ({e.detail})")
    try:
        agent.send_message(content="hi", agent_instance_id=str(uuid.uuid4()))
        check(False, "a new session needs an agent type")
    except (APIError, ValueError) as e:
        check(True, f"a new session without agent type is refused ({e})")
    try:
        agent.get_pending_messages(str(uuid.uuid4()))
        check(False, "an unknown session is not found")
    except APIError as e:
        check(e.status_code == 404, "an unknown session answers 404")
    agent.close()
    user.close()


async def async_conversation():
    async with AsyncOmnaraClient(api_key=API_KEY, base_url=BASE_URL) as agent:
        async with AsyncOmnaraClient(api_key=API_KEY, base_url=BASE_URL) as user:
            first = await agent.send_message(content="async step", agent_type="cursor")
            instance_id = first.agent_instance_id

            async def answer():
                await asyncio.sleep(1)
                await user.send_user_message(instance_id, "async answer", mark_as_read=False)

            answering = asyncio.create_task(answer())
            reply = await agent.send_message(
                content="async question?",
                agent_instance_id=instance_id,
                requires_user_input=True,
                poll_interval=0.2,
                timeout_minutes=1,
            )
            await answering
            check(reply.queued_user_messages == ["async answer"], "async question answered")
            ended = await agent.end_session(instance_id)
            check(ended.final_status == "COMPLETED", "async end_session")


sync_conversation()
asyncio.run(async_conversation())
print("SDK CONVERSATION OK")
