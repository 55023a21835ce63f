"""An omnara SDK client continues an imported session: it sends one message to the session
(by its original id) and prints, as JSON, the queued user messages the server hands it.
Usage: continue.py <base_url> <api_key> <agent_instance_id>
"""

import json
import sys

from omnara import OmnaraClient

BASE_URL, API_KEY, INSTANCE = sys.argv[1], sys.argv[2], sys.argv[3]

agent = OmnaraClient(api_key=API_KEY, base_url=BASE_URL)
sent = agent.send_message(content="Back after the move to Switchboard", agent_instance_id=INSTANCE)
if not sent.success:
    raise SystemExit(f"FAILED: send_message: {sent}")
print(json.dumps(sent.queued_user_messages))
