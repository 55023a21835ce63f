"""The official MCP Python SDK (2.x) against Switchboard in one negotiation mode: "auto"
(server/discover, falling back to initialize), "2026-07-28" (pinned) or "legacy"
(initialize). Lists the tools, logs a step, and asks a question the test answers.

Prints "SESSION {json}" once the session exists and "RESULT {json}" at the end; arguments:
mode, the MCP endpoint's URL, an API key.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import Implementation


def say(word, value):
    print(word, json.dumps(value), flush=True)


async def main(mode, url, key):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    transport = streamable_http_client(url, http_client=http)
    info = Implementation(name="python-sdk-client", version="2.3.0")
    async with Client(transport, mode=mode, client_info=info) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        step = await client.call_tool("log_step", {"step_description": f"python {mode}"})
        session = step.structured_content["agent_instance_id"]
        say("SESSION", {"session": session})
        asked = await client.call_tool(
            "ask_question",
            {"agent_instance_id": session, "question_text": f"Python {mode}: go on?"},
        )
        say(
            "RESULT",
            {
                "version": client.protocol_version,
                "tools": tools,
                "answer": asked.structured_content.get("answer"),
            },
        )


asyncio.run(main(*sys.argv[1:4]))
