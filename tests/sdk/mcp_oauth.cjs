// An MCP host signing in to Switchboard by OAuth with the official TypeScript client
// (@modelcontextprotocol/client 2.x, its own OAuth code): discovery from the 401, the protected
// resource and authorization server metadata, the client known by its metadata document
// (mode "cimd": the test serves it over https) or registered dynamically (mode "dcr"), PKCE,
// the person's consent (in the browser the Rust test drives), the code exchange, tool calls,
// a refresh (rotating the refresh token), and tool calls with the new access token.
//
// Lines "WORD {json}" on stdout report progress; "WORD {json}" lines on stdin answer it:
//   CALLBACK {url}        the redirect URI (this script's loopback server)
//   < METADATA {url}      (cimd) the metadata document's URL, once the test serves it
//   AUTHORIZE {url}       where the person must go
//   CONNECTED {...}       tools listed and called with the first access token
//   REFRESHED {...}       a refresh, and a tool call with the new access token
'use strict';

const http = require('http');
const readline = require('readline');
const { Client, StreamableHTTPClientTransport, UnauthorizedError, auth } = require('@modelcontextprotocol/client');

const [mode, serverUrl] = process.argv.slice(2);

function say(word, value = {}) {
  process.stdout.write(word + ' ' + JSON.stringify(value) + '\n');
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const heard = [];
const waiting = [];
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const at = line.indexOf(' ');
  const message = { word: line.slice(0, at), value: JSON.parse(line.slice(at + 1)) };
  const i = waiting.findIndex((w) => w.word === message.word);
  if (i >= 0) waiting.splice(i, 1)[0].resolve(message.value);
  else heard.push(message);
});

function hear(word) {
  const i = heard.findIndex((m) => m.word === word);
  if (i >= 0) return Promise.resolve(heard.splice(i, 1)[0].value);
  return new Promise((resolve) => waiting.push({ word, resolve }));
}

/** The loopback server the authorization response comes back to. */
function callbackServer() {
  let deliver;
  const arrived = new Promise((resolve) => { deliver = resolve; });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/callback') { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Connected</title><h1>You can close this window.</h1>');
    deliver(url.searchParams);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ url: 'http://127.0.0.1:' + server.address().port + '/callback', arrived, server });
    });
  });
}

/** A host's token store, in memory, as the SDK's OAuthClientProvider asks for it. */
class Provider {
  constructor(redirectUrl, metadataUrl) {
    this._redirectUrl = redirectUrl;
    this.clientMetadataUrl = metadataUrl;
    this._state = 'state-' + Math.random().toString(36).slice(2);
    this.saved = [];
  }
  get redirectUrl() { return this._redirectUrl; }
  get clientMetadata() {
    return {
      client_name: mode === 'cimd' ? 'Test host (metadata document)' : 'Test host (registered)',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { return this._state; }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; this.saved.push(tokens); }
  redirectToAuthorization(url) { this.authorizationUrl = url; say('AUTHORIZE', { url: url.href }); }
  saveDiscoveryState(state) { this._discovery = state; }
  discoveryState() { return this._discovery; }
  saveCodeVerifier(verifier) { this._verifier = verifier; }
  codeVerifier() { return this._verifier; }
}

async function connected(provider) {
  const client = new Client({ name: 'oauth-host', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
  await client.connect(transport);
  return client;
}

async function toolCall(client, content) {
  const result = await client.callTool({
    name: 'send_message',
    arguments: { content, agent_type: 'oauth-host' },
  });
  check(!result.isError, 'send_message failed: ' + JSON.stringify(result));
  return result;
}

(async () => {
  const callback = await callbackServer();
  say('CALLBACK', { url: callback.url });
  const metadataUrl = mode === 'cimd' ? (await hear('METADATA')).url : undefined;
  const provider = new Provider(callback.url, metadataUrl);

  // First contact: 401, discovery, registration (dcr) or none (cimd), the authorization URL.
  let first = new Client({ name: 'oauth-host', version: '1.0.0' });
  let refused = null;
  try {
    await first.connect(new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider }));
  } catch (e) {
    refused = e;
  }
  check(refused instanceof UnauthorizedError, 'the first connection asks for authorization: ' + refused);
  const asked = provider.authorizationUrl;
  check(asked, 'the SDK sent the person to authorize');
  if (mode === 'cimd') {
    check(asked.searchParams.get('client_id') === metadataUrl, 'the client id is the metadata URL: ' + asked);
  } else {
    check(provider._client && provider._client.client_id, 'the SDK registered a client');
  }
  check(asked.searchParams.get('code_challenge_method') === 'S256', 'PKCE S256: ' + asked);
  check(asked.searchParams.get('resource') === serverUrl, 'the resource is the MCP endpoint: ' + asked);

  // The person allows (in the browser); the code comes back here.
  const params = await callback.arrived;
  check(params.get('state') === provider._state, 'the state comes back');
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
  await transport.finishAuth(params);
  check(provider.saved.length === 1, 'tokens were saved');
  const firstTokens = provider._tokens;

  let client = await connected(provider);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  check(tools.includes('ask_question'), 'the agent tools: ' + tools);
  await toolCall(client, 'Hello from a connected app');
  say('CONNECTED', { tools, access_token: firstTokens.access_token });
  await client.close();

  // A refresh, as the SDK does it after a 401: a new refresh token, the old one used up.
  const outcome = await auth(provider, { serverUrl: new URL(serverUrl) });
  check(outcome === 'AUTHORIZED', 'refreshed: ' + outcome);
  const renewed = provider._tokens;
  check(renewed.refresh_token !== firstTokens.refresh_token, 'the refresh token rotated');
  client = await connected(provider);
  await toolCall(client, 'Still here after a refresh');
  say('REFRESHED', { access_token: renewed.access_token, old_refresh_token: firstTokens.refresh_token });
  await client.close();
  callback.server.close();
  process.stdin.destroy();
})().catch((e) => {
  process.stderr.write(((e && e.stack) || String(e)) + '\n');
  process.exit(1);
});
