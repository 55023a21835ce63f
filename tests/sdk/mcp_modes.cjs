// The official MCP TypeScript client (@modelcontextprotocol/client 2.x) against Switchboard in
// one negotiation mode: "auto" (server/discover, falling back to initialize), "2026-07-28"
// (pinned) or "legacy" (initialize, the client's default). Lists the tools, logs a step, and
// asks a question the test answers.
//
// Prints "SESSION {json}" once the session exists and "RESULT {json}" at the end; arguments:
// mode, the MCP endpoint's URL, an API key.
'use strict';

const { Client, StreamableHTTPClientTransport } = require('@modelcontextprotocol/client');

const [mode, url, key] = process.argv.slice(2);

function say(word, value) {
  process.stdout.write(word + ' ' + JSON.stringify(value) + '\n');
}

(async () => {
  const versionNegotiation = mode === 'legacy' ? { mode: 'legacy' }
    : mode === 'auto' ? { mode: 'auto' } : { mode: { pin: mode } };
  const client = new Client({ name: 'typescript-client', version: '2.4.0' }, { versionNegotiation });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: 'Bearer ' + key } },
  });
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const step = await client.callTool({ name: 'log_step', arguments: { step_description: 'typescript ' + mode } });
  const session = step.structuredContent.agent_instance_id;
  say('SESSION', { session });
  const asked = await client.callTool({
    name: 'ask_question',
    arguments: { agent_instance_id: session, question_text: 'TypeScript ' + mode + ': go on?' },
  }, { timeout: 120000 });
  say('RESULT', { version: client.getNegotiatedProtocolVersion(), tools, answer: asked.structuredContent.answer });
  await client.close();
})().catch((e) => {
  process.stderr.write(((e && e.stack) || String(e)) + '\n');
  process.exit(1);
});
