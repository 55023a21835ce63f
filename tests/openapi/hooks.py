"""Keeps generated requests meaning what the fuzzer thinks they mean, where a rule spans more
than one request or parameter (which an OpenAPI document cannot say):

- An Idempotency-Key names one request: reused for a different one it is refused (422). The
  fuzzer repeats values, so a valid key is made unique per request; invalid keys are left as
  generated (they must still be refused).
- `before_id` continues a page and is meaningful only with `before` (422 alone).
"""

import uuid

import schemathesis

VISIBLE_ASCII = set(range(0x21, 0x7F))


@schemathesis.hook
def before_call(context, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and value:
            if all(ord(c) in VISIBLE_ASCII for c in value):
                headers[name] = value[:200] + "-" + uuid.uuid4().hex
    query = case.query
    if query and "before_id" in query and "before" not in query:
        del query["before_id"]
