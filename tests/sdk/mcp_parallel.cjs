// Two permission prompts open at once in one session, as Claude Code makes them for parallel
// tool calls, through the official TypeScript SDK; the person answers the older one, then the
// newer one (through the REST API, naming each question), and each call must receive its own
// decision. Prints one JSON report on stdout; driven by tests/mcp.rs.
//
// usage: node mcp_parallel.cjs <server url> <token> <session id>
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');

const [server, token, session] = process.argv.slice(2);
const auth = { Authorization: `Bearer ${token}` };

async function api(method, path, body) {
  const response = await fetch(`${server}${path}`, {
    method,
    headers: { ...auth, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

async function openQuestions() {
  for (;;) {
    const { body } = await api('GET', `/api/v1/sessions/${session}/questions?status=open`);
    if (body.length === 2 && body.every((q) => q.waiting)) return body;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main() {
  const transport = new StreamableHTTPClientTransport(new URL(`${server}/mcp`), {
    requestInit: { headers: auth },
  });
  const client = new Client({ name: 'parallel-tools', version: '1' });
  await client.connect(transport);
  const prompt = (command) => client.callTool({
    name: 'permission_prompt',
    arguments: { agent_instance_id: session, tool_name: 'Bash', input: { command } },
  }, undefined, { timeout: 60000 });
  const older = prompt('ls build');
  // Asked one after the other, so that "older" is well defined.
  const [first] = await (async () => { for (;;) {
    const { body } = await api('GET', `/api/v1/sessions/${session}/questions?status=open`);
    if (body.length === 1) return body;
    await new Promise((resolve) => setTimeout(resolve, 20));
  } })();
  const newer = prompt('git push --force origin main');
  const open = await openQuestions();
  const [a, b] = open;
  const answers = [];
  answers.push(await api('POST', '/api/v1/messages/user', {
    agent_instance_id: session, question_id: a.id, content: 'Allow', mark_as_read: false,
    updated_input: { command: 'ls -la build' },
  }));
  const olderResult = await older;
  // The newer call still waits: its question is open.
  const stillOpen = (await api('GET', `/api/v1/sessions/${session}/questions?status=open`)).body;
  answers.push(await api('POST', '/api/v1/messages/user', {
    agent_instance_id: session, question_id: b.id, content: 'Never force-push main', mark_as_read: false,
  }));
  const newerResult = await newer;
  console.log(JSON.stringify({
    first: first.id,
    questions: open.map((q) => ({ id: q.id, command: q.approval.input.command })),
    answers: answers.map((r) => r.status),
    still_open: stillOpen.map((q) => q.id),
    older: { text: olderResult.content[0].text, structured: olderResult._meta['switchboard/answer'] },
    newer: { text: newerResult.content[0].text, structured: newerResult._meta['switchboard/answer'] },
  }));
  await client.close();
}

main().catch((e) => {
  console.log(JSON.stringify({ failed: String(e && e.stack ? e.stack : e) }));
  process.exit(1);
});
