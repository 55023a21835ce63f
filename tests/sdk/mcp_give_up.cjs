// A host built on the official TypeScript SDK gives up on ask_question, then comes back with
// its next calls. Driven by tests/mcp_abandoned.rs: it reports each step as one JSON line on
// stdout and waits for a line on stdin where the test acts (answers through REST).
//
// usage: node mcp_give_up.cjs <url> <token> timeout|abort
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const readline = require('node:readline');

const [url, token, mode] = process.argv.slice(2);
const say = (line) => console.log(JSON.stringify(line));
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const proceed = async () => (await lines.next()).value;

async function main() {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'claude-code', version: '2.1.0' });
  await client.connect(transport);
  const call = (name, args, options) =>
    client.callTool({ name, arguments: args }, undefined, options);

  const first = await call('log_step', { step_description: 'reading the code' });
  const session = first.structuredContent.agent_instance_id;
  say({ session, mcp_session: transport.sessionId });

  // Give up after a second: the SDK rejects the call and sends notifications/cancelled.
  let options;
  if (mode === 'timeout') {
    options = { timeout: 1000 };
  } else {
    const controller = new AbortController();
    setTimeout(() => controller.abort('the person pressed Esc'), 1000);
    options = { signal: controller.signal, timeout: 600000 };
  }
  try {
    const result = await call(
      'ask_question',
      { agent_instance_id: session, question_text: 'Deploy to production?' },
      options,
    );
    say({ unexpected: result });
    process.exit(1);
  } catch (e) {
    say({ gave_up: String(e) });
  }

  await proceed(); // the person answers now
  const next = await call('log_step', { agent_instance_id: session, step_description: 'back' });
  const after = await call('log_step', { agent_instance_id: session, step_description: 'on' });
  say({ next: next.structuredContent, after: after.structuredContent });
  await transport.terminateSession();
  await client.close();
}

main().catch((e) => {
  say({ failed: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
