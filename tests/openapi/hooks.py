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
    query = case.query
    if query and "before_id" in query and "before" not in query:
        del query["before_id"]
