// The official TypeScript SDK client, with its OAuth support, against OUR notes example running as
// its own OAuth 2.1 authorization server (`[auth] mode = "authorization_server"`, from
// examples/notes/authorization-server.toml, SQLite store in a temp dir, development login):
//   401 -> protected-resource metadata -> AS metadata -> DCR -> authorize (the login and consent
//   pages driven headlessly: fetch + a cookie jar, the forms' CSRF tokens) -> token -> tool calls
//   -> refresh (rotation) -> revoke (RFC 7009; the SDK has no revocation call, so a plain POST)
//   -> the revoked access token gets 401 -> with the grant revoked the SDK must authorize again.
// Needs the notes binary (cargo build --examples).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { T, freePort, startHttpServer } from './lib.mjs';
import { HeadlessOAuthProvider, completeAuthorization, decodeJwt } from './oauth-lib.mjs';

const CONFIG = fileURLToPath(new URL('../../examples/notes/authorization-server.toml', import.meta.url));
const REDIRECT = 'http://127.0.0.1:9/oauth/callback';

/** Starts notes in authorization-server mode on `port` with its store in `dir`; resolves once it serves. */
async function startNotes(port, dir) {
  const server = await startHttpServer('notes', {
    port,
    args: ['--config', CONFIG],
    env: {
      MCP_SERVER__PUBLIC_URL: `http://127.0.0.1:${port}`,
      MCP_AUTH__AUTHORIZATION_SERVER__STORE: `sqlite://${join(dir, 'auth.db')}`,
    },
  });
  return { origin: server.origin, url: `${server.origin}/mcp`, output: server.output, stop: server.stop };
}

/** A raw stateless-era-agnostic POST to /mcp (an initialize), to see the HTTP status a token gets. */
async function rawMcpStatus(url, token) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
    }),
  });
  await res.body?.cancel();
  return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '' };
}

describe('SDK OAuth client against the notes authorization server', { timeout: 60_000 }, () => {
  let notes;
  let dir;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'notes-as-'));
    notes = await startNotes(await freePort(), dir);
  }, T);

  after(async () => {
    await notes?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  test('discovery, DCR, authorize through consent, token, tools, refresh, revoke', T, async () => {
    const authProvider = new HeadlessOAuthProvider(REDIRECT);
    const t1 = new StreamableHTTPClientTransport(new URL(notes.url), { authProvider });
    await assert.rejects(new Client({ name: 'notes-as', version: '0' }).connect(t1), UnauthorizedError);
    const clientId = authProvider.clientInformation()?.client_id;
    assert.ok(clientId, 'registered through DCR');
    assert.equal(authProvider.authorizationUrls[0].searchParams.get('scope'), 'notes:read notes:write');
    await t1.finishAuth(await completeAuthorization(authProvider, notes));

    const first = authProvider.tokens();
    assert.ok(first.refresh_token, 'a refresh token');
    const claims = decodeJwt(first.access_token);
    assert.equal(claims.iss, notes.origin);
    assert.equal(claims.aud, notes.url);
    assert.equal(claims.client_id, clientId);

    const client = new Client({ name: 'notes-as', version: '0.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(notes.url), { authProvider });
    await client.connect(transport);
    try {
      const who = await client.callTool({ name: 'whoami', arguments: {} });
      assert.deepEqual(who.structuredContent, {
        authenticated: true,
        issuer: notes.origin,
        client_acting_for_itself: false,
        subject: 'sdk-user',
        client_id: clientId,
        scopes: ['notes:read', 'notes:write'],
      });
      const added = await client.callTool({ name: 'add_note', arguments: { text: 'from the SDK' } });
      assert.equal(added.structuredContent.author, 'sdk-user');

      // Refresh through the SDK (auth() with a refresh token held): the refresh token rotates.
      assert.equal(await auth(authProvider, { serverUrl: notes.url }), 'AUTHORIZED');
      const second = authProvider.tokens();
      assert.notEqual(second.refresh_token, first.refresh_token, 'refresh token rotated');
      assert.notEqual(second.access_token, first.access_token);
      const listed = await client.callTool({ name: 'list_notes', arguments: {} });
      assert.deepEqual(listed.structuredContent.notes.map((n) => n.text), ['from the SDK']);

      // Revoke (RFC 7009) the access token: refused at once on /mcp.
      const metadata = await (await fetch(`${notes.origin}/.well-known/oauth-authorization-server`)).json();
      const revoke = (token) => fetch(metadata.revocation_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, client_id: clientId }),
      });
      assert.equal((await revoke(second.access_token)).status, 200);
      const refused = await rawMcpStatus(notes.url, second.access_token);
      assert.equal(refused.status, 401);
      assert.match(refused.challenge, /error="invalid_token"/);

      // Revoking the refresh token revokes the grant: the SDK's refresh fails, and it has to
      // send the user to authorize again.
      assert.equal((await revoke(second.refresh_token)).status, 200);
      const t3 = new StreamableHTTPClientTransport(new URL(notes.url), { authProvider });
      await assert.rejects(new Client({ name: 'notes-as', version: '0' }).connect(t3), UnauthorizedError);
      assert.equal(authProvider.authorizationUrls.length, 2, 'a new authorization request');
      await t3.finishAuth(await completeAuthorization(authProvider, notes));
      const again = new Client({ name: 'notes-as', version: '0' });
      await again.connect(new StreamableHTTPClientTransport(new URL(notes.url), { authProvider }));
      try {
        const who2 = await again.callTool({ name: 'whoami', arguments: {} });
        assert.equal(who2.structuredContent.subject, 'sdk-user');
      } finally {
        await again.close();
      }
    } finally {
      await client.close();
    }
  });
});
