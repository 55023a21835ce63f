"""Keeps generated requests meaning what the fuzzer thinks they mean, where a rule spans more
than one request or parameter (which an OpenAPI document cannot say):

- An Idempotency-Key names one request: reused for a different one it is refused (422). The
  fuzzer repeats values, so a valid key is made unique per request; invalid keys are left as
  generated (they must still be refused).
- `before_id` continues a page and is meaningful only with `before` (422 alone).
- `agent_type` is needed to start a session and ignored on one that exists (the agent
  dashboard's clients send it every time). The document says "required", the stricter
  reading; so that generated requests mean what the document says, every agent message
  starts a new session (a valid `agent_instance_id` is replaced by a fresh one). Continuing
  sessions is tested in tests/rest.rs and tests/sdk.rs.
- `updated_input` (an edited tool input) is allowed only in the answer "Allow" to an open
  approval question, a state a generated request cannot know: object values are left out of
  person's messages. tests/decisions.rs covers both outcomes.
- A message typed in the agent's terminal (`terminal: true`) answers no question: with a
  `question_id` it is refused (422) whatever the id; generated ones name no question (null).
  tests/hooks.rs covers the refusal.
- A Claude Code hook (`/api/v1/hooks/claude-code`) waits for a person for as long as its
  `timeout` and `stop_wait` say, by design (up to a day): valid waits are made 0, so that
  each request answers at once (invalid ones are left as generated: they must be refused).
  tests/hooks.rs covers the waits.
"""

import uuid

import schemathesis

VISIBLE_ASCII = set(range(0x21, 0x7F))


def is_uuid(value):
    try:
        uuid.UUID(value)
        return isinstance(value, str)
    except (TypeError, ValueError, AttributeError):
        return False


def is_wait(value):
    try:
        return 0 <= float(value) <= 86400
    except (TypeError, ValueError):
        return False


@schemathesis.hook
def before_call(context, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and value:
            if all(ord(c) in VISIBLE_ASCII for c in value):
                headers[name] = value[:200] + "-" + uuid.uuid4().hex
    if case.method.upper() == "POST" and case.path == "/api/v1/messages/agent":
        body = case.body
        if isinstance(body, dict) and is_uuid(body.get("agent_instance_id")):
            body["agent_instance_id"] = str(uuid.uuid4())
    if case.method.upper() == "POST" and case.path == "/api/v1/messages/user":
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("updated_input"), dict):
            del body["updated_input"]
        if isinstance(body, dict) and body.get("terminal") is True and is_uuid(body.get("question_id")):
            body["question_id"] = None
    query = case.query
    if query and "before_id" in query and "before" not in query:
        del query["before_id"]
    if query and case.path == "/api/v1/hooks/claude-code":
        for name in ("timeout", "stop_wait"):
            if is_wait(query.get(name)):
                query[name] = 0
