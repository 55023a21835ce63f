// Every tool through the official TypeScript SDK: its metadata, and every shape of its
// structured result validated against the output schema it declares, by the SDK itself (it
// refuses a result that does not match) and by Ajv in strict JSON Schema 2020-12 mode. The
// person's side is played through the REST API. Prints one JSON report on stdout; driven by
// tests/mcp.rs, which checks it.
//
// usage: node mcp_tools.cjs <server url> <token>
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;

const [server, token] = process.argv.slice(2);
const auth = { Authorization: `Bearer ${token}` };

async function reply(session, content, extra, expected = 200) {
  const response = await fetch(`${server}/api/v1/messages/user`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ agent_instance_id: session, content, mark_as_read: false, ...extra }),
  });
  if (response.status !== expected) throw new Error(`reply: HTTP ${response.status}`);
}

/** The session whose newest open question is the one being asked (a permission prompt that
 * names no session asks in one of its own). */
async function askingSession() {
  for (;;) {
    const response = await fetch(`${server}/api/v1/sessions?status=AWAITING_INPUT&limit=1`, { headers: auth });
    const [session] = await response.json();
    if (session) return session.id;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const later = (ms, action) => new Promise((resolve) => setTimeout(resolve, ms)).then(action);

async function main() {
  const transport = new StreamableHTTPClientTransport(new URL(`${server}/mcp`), {
    requestInit: { headers: auth },
  });
  const client = new Client({ name: 'schema-check', version: '1' });
  await client.connect(transport);

  const { tools } = await client.listTools();
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  const validators = Object.fromEntries(
    tools.filter((t) => t.outputSchema).map((t) => [t.name, ajv.compile(t.outputSchema)]),
  );
  // permission_prompt declares no output schema (Claude Code would read structured content
  // instead of the decision's text): the rest of its answer, shaped as ask_question's, is in
  // _meta.
  validators.permission_prompt = validators.ask_question;
  const results = [];
  const call = async (name, args) => {
    const result = await client.callTool({ name, arguments: args });
    if (result.isError) throw new Error(`${name}: ${JSON.stringify(result.content)}`);
    const structured = result.structuredContent ?? result._meta?.['switchboard/answer'];
    const valid = validators[name](structured);
    results.push({
      tool: name,
      structured,
      has_structured_content: result.structuredContent !== undefined,
      valid,
      errors: validators[name].errors,
      text: result.content[0].text,
    });
    return structured;
  };

  const first = await call('log_step', { step_description: 'reading the code' });
  const session = first.agent_instance_id;
  await reply(session, 'mind the tests');
  await call('log_step', { agent_instance_id: session, step_description: 'with feedback' });
  await call('send_message', { agent_instance_id: session, content: 'a plain message' });
  const pending = await call('ask_question', { agent_instance_id: session, question_text: 'Which db?' });
  await call('wait_for_answer', { agent_instance_id: session, question_id: pending.question_id });
  await reply(session, 'PostgreSQL');
  await call('wait_for_answer', { agent_instance_id: session, question_id: pending.question_id });
  await reply(session, 'before the question');
  await Promise.all([
    call('ask_question', { agent_instance_id: session, question_text: 'Deploy?' }),
    later(500, () => reply(session, 'yes')),
  ]);
  await Promise.all([
    call('send_message', { agent_instance_id: session, content: 'OK?', requires_user_input: true }),
    later(500, () => reply(session, 'fine')),
  ]);
  await call('send_message', { agent_instance_id: session, content: 'Still?', requires_user_input: true });

  // Questions with options, and tool approvals (Claude Code's permission prompt tool).
  await reply(session, 'sorry, busy');
  await Promise.all([
    call('ask_question', { agent_instance_id: session, question_text: 'Colour?', options: ['Red', 'Green'] }),
    later(500, () => reply(session, 'Green')),
  ]);
  await Promise.all([
    call('send_message', {
      agent_instance_id: session, content: 'Ship it?', requires_user_input: true, options: ['Ship', 'Wait'],
    }),
    later(500, () => reply(session, 'Wait')),
  ]);
  const bash = (command) => ({ tool_name: 'Bash', input: { command } });
  await Promise.all([
    call('permission_prompt', { agent_instance_id: session, ...bash('rm -rf build'), tool_use_id: 'toolu_01' }),
    later(500, () => reply(session, 'Allow')),
  ]);
  await Promise.all([
    call('permission_prompt', { agent_instance_id: session, ...bash('rm -rf /') }),
    later(500, () => reply(session, 'Not the root directory, please')),
  ]);
  await Promise.all([
    call('permission_prompt', {
      agent_instance_id: session, tool_name: 'Write', input: { file_path: '/tmp/a.txt', content: 'hi' },
    }),
    later(500, () => reply(session, 'Allow', { updated_input: { file_path: '/tmp/b.txt', content: 'hi' } })),
  ]);
  // As Claude Code calls it (no session named). Nobody decides within the block limit: the
  // question is withdrawn and the call denied, and a decision afterwards is refused (no call
  // could collect it).
  const edit = { tool_name: 'Edit', input: { file_path: 'src/lib.rs', old_string: 'a', new_string: 'b' } };
  const unanswered = await call('permission_prompt', edit);
  await reply(unanswered.agent_instance_id, 'Allow', { question_id: unanswered.question_id }, 409);
  // Decided in time: allowed with an edited input.
  await Promise.all([
    call('permission_prompt', bash('ls')),
    later(300, async () => reply(await askingSession(), 'Allow', { updated_input: { command: 'ls -la' } })),
  ]);

  await call('end_session', { agent_instance_id: session });

  const metadata = tools.map(({ name, title, annotations, outputSchema }) => ({
    name,
    title,
    annotations,
    outputSchema,
  }));
  console.log(JSON.stringify({ tools: metadata, results }));
  await client.close();
}

main().catch((e) => {
  console.log(JSON.stringify({ failed: String(e && e.stack ? e.stack : e) }));
  process.exit(1);
});
