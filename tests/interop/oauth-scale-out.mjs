// The official TypeScript SDK client, with its OAuth support, against the notes example in
// authorization-server mode at the MCP URL it is given: run by tests/scale_out.rs against two
// instances behind a round-robin balancer (no sticky sessions), which then checks from the
// balancer's records that each step landed on the other instance than the one before it:
//   401 -> protected-resource metadata -> AS metadata -> DCR -> authorize (the login and consent
//   pages driven headlessly) -> token -> initialize -> tools/list and tool calls, all in that one
//   session -> DELETE (the SDK ends the session).
// Not a *.test.mjs file: `npm test` does not run it. By hand, against any such server:
//   node oauth-scale-out.mjs http://127.0.0.1:8080/mcp [user]
// On success it prints one JSON line: { clientId, sessionId, subject, notes }.
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { connectHttp, waitFor } from './lib.mjs';
import { HeadlessOAuthProvider, completeAuthorization, decodeJwt } from './oauth-lib.mjs';

const REDIRECT = 'http://127.0.0.1:9/oauth/callback';

const [url, user = 'sdk-user'] = process.argv.slice(2);
assert.ok(url, 'usage: node oauth-scale-out.mjs <MCP URL> [user]');
const notes = { origin: new URL(url).origin, url };

// Sign-in: the first connect is refused (401) after discovery and DCR; the user authorizes; the
// transport exchanges the code.
const authProvider = new HeadlessOAuthProvider(REDIRECT);
const t1 = new StreamableHTTPClientTransport(new URL(url), { authProvider });
await assert.rejects(new Client({ name: 'notes-scale-out', version: '0' }).connect(t1), UnauthorizedError);
const clientId = authProvider.clientInformation()?.client_id;
assert.ok(clientId, 'registered through DCR');
await t1.finishAuth(await completeAuthorization(authProvider, notes, user));
const claims = decodeJwt(authProvider.tokens().access_token);
assert.equal(claims.iss, notes.origin);
assert.equal(claims.aud, url);

// One session: initialize on one instance, the rest on whichever the balancer picks.
const { client, transport, http, close } = await connectHttp(url, { authProvider });
try {
  const sessionId = transport.sessionId;
  assert.ok(sessionId, 'initialize opened a session');
  // After `initialized` the SDK opens its GET stream in the background; its answer comes first,
  // so that the calls below reach the balancer one after another, in this order.
  await waitFor(() => http.some((h) => h.method === 'GET'), 'the answer to the GET stream', 5_000);
  const get = http.find((h) => h.method === 'GET');
  assert.equal(get.status, 200, `the GET stream of session ${sessionId}`);

  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['add_note', 'list_notes', 'whoami']);
  const who = await client.callTool({ name: 'whoami', arguments: {} });
  assert.equal(who.structuredContent.subject, user);
  assert.equal(who.structuredContent.client_id, clientId);
  const texts = ['first note', 'second note'];
  for (const text of texts) {
    const added = await client.callTool({ name: 'add_note', arguments: { text } });
    assert.equal(added.structuredContent.author, user);
  }
  // The notes example keeps its notes in each process's memory: each instance lists the notes
  // added through it, and two listings in a row, on both instances, find every note.
  const listed = [];
  for (let i = 0; i < 2; i++) {
    const list = await client.callTool({ name: 'list_notes', arguments: {} });
    listed.push(...list.structuredContent.notes.map((n) => n.text));
  }
  assert.deepEqual([...new Set(listed)].sort(), texts);
  const again = await client.callTool({ name: 'whoami', arguments: {} });
  assert.equal(again.structuredContent.subject, user);

  assert.equal(transport.sessionId, sessionId, 'the same session throughout');
  const refused = http.filter((h) => h.status >= 400);
  assert.deepEqual(refused, [], 'no request of the session was refused');
  await transport.terminateSession();
  console.log(JSON.stringify({ clientId, sessionId, subject: who.structuredContent.subject, notes: listed }));
} finally {
  await close();
}
