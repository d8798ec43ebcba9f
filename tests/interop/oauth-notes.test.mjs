// The official TypeScript SDK client, with its OAuth support, against OUR notes example running
// as an OAuth resource server (`[auth] mode = "resource_server"`) in front of a real OpenID
// provider (tests/oidc/provider.mjs, panva's oidc-provider):
//   401 -> protected-resource metadata -> AS metadata -> DCR -> authorization code + PKCE
//   (headless, cookie jar) -> token -> tool calls; then step-up on 403 insufficient_scope.
// Needs the notes binary (cargo build --examples) and `npm ci` in tests/oidc.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { decodeJwt, followAuthorization, startProvider } from '../oidc/harness.mjs';
import { T, freePort, startHttpServer } from './lib.mjs';

const OIDC_MODULES = fileURLToPath(new URL('../oidc/node_modules/oidc-provider', import.meta.url));

/** Starts the notes example as a resource server for `issuer` on `port`; resolves once it serves. */
async function startNotes(port, issuer, env = {}) {
  const server = await startHttpServer('notes', {
    port,
    env: {
      MCP_SERVER__PUBLIC_URL: `http://127.0.0.1:${port}`,
      MCP_AUTH__MODE: 'resource_server',
      MCP_AUTH__RESOURCE_SERVER__ISSUER: issuer,
      ...env,
    },
  });
  return { origin: server.origin, url: `${server.origin}/mcp`, output: server.output, stop: server.stop };
}

/** A headless OAuthClientProvider: keeps everything in memory, records the authorization URL. */
class HeadlessOAuthProvider {
  constructor(redirectUrl, { scope, keepRefreshToken = true } = {}) {
    this._redirectUrl = redirectUrl;
    this._scope = scope;
    this._keepRefreshToken = keepRefreshToken;
    this.authorizationUrls = [];
  }

  get redirectUrl() { return this._redirectUrl; }

  get clientMetadata() {
    return {
      client_name: 'notes interop test',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      ...(this._scope ? { scope: this._scope } : {}),
    };
  }

  clientInformation() { return this._client; }

  saveClientInformation(info) { this._client = info; }

  tokens() { return this._tokens; }

  saveTokens(tokens) {
    const { refresh_token: _dropped, ...rest } = tokens;
    this._tokens = this._keepRefreshToken ? tokens : rest;
  }

  redirectToAuthorization(url) { this.authorizationUrls.push(url); }

  saveCodeVerifier(v) { this._verifier = v; }

  codeVerifier() { return this._verifier; }
}

/** Plays the user: completes the last authorization request headlessly, returns the code. */
async function authorize(authProvider, op, mcpUrl) {
  const authUrl = authProvider.authorizationUrls.at(-1);
  assert.ok(authUrl, 'redirectToAuthorization was called');
  assert.equal(authUrl.origin, op.issuer);
  assert.equal(authUrl.searchParams.get('resource'), mcpUrl, 'RFC 8707 resource = our MCP URL');
  assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
  const callback = await followAuthorization(authUrl, authProvider.redirectUrl);
  assert.equal(callback.searchParams.get('iss'), op.issuer);
  const code = callback.searchParams.get('code');
  assert.ok(code, `a code in ${callback}`);
  return code;
}

const REDIRECT = 'http://127.0.0.1:9/oauth/callback';

describe('SDK OAuth client against the notes resource server', { timeout: 60_000 }, () => {
  let op;
  let notes;

  before(async () => {
    assert.ok(existsSync(OIDC_MODULES), 'tests/oidc/node_modules is missing: run `npm ci` in tests/oidc');
    const port = await freePort();
    op = await startProvider({ MCP_RESOURCE: `http://127.0.0.1:${port}/mcp` });
    notes = await startNotes(port, op.issuer, {
      MCP_AUTH__RESOURCE_SERVER__SCOPES_SUPPORTED: 'notes:read notes:write',
    });
  }, T);

  after(async () => {
    await notes?.stop();
    await op?.stop();
  }, T);

  test('discovery, DCR, authorization code + PKCE, then tool calls in a session', T, async () => {
    const authProvider = new HeadlessOAuthProvider(REDIRECT);
    const client1 = new Client({ name: 'notes-oauth', version: '0.0.0' });
    const t1 = new StreamableHTTPClientTransport(new URL(notes.url), { authProvider });
    await assert.rejects(client1.connect(t1), UnauthorizedError);
    assert.ok(authProvider.clientInformation()?.client_id, 'registered through DCR');
    // The scope came from our 401 challenge (or the metadata's scopes_supported).
    assert.equal(authProvider.authorizationUrls[0].searchParams.get('scope'), 'notes:read notes:write');
    await t1.finishAuth(await authorize(authProvider, op, notes.url));

    const { payload } = decodeJwt(authProvider.tokens().access_token);
    assert.equal(payload.aud, notes.url);
    assert.equal(payload.iss, op.issuer);

    const client = new Client({ name: 'notes-oauth', version: '0.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(notes.url), { authProvider });
    await client.connect(transport);
    try {
      const who = await client.callTool({ name: 'whoami', arguments: {} });
      assert.deepEqual(who.structuredContent, {
        authenticated: true,
        issuer: op.issuer,
        client_acting_for_itself: false,
        subject: 'test-user',
        client_id: authProvider.clientInformation().client_id,
        scopes: ['notes:read', 'notes:write'],
      });
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['add_note', 'list_notes', 'whoami']);
      const added = await client.callTool({ name: 'add_note', arguments: { text: 'from the SDK' } });
      assert.equal(added.structuredContent.author, 'test-user');
      const listed = await client.callTool({ name: 'list_notes', arguments: {} });
      assert.deepEqual(listed.structuredContent.notes.map((n) => n.text), ['from the SDK']);
    } finally {
      await client.close();
    }
  });
});

describe('SDK step-up on 403 insufficient_scope', { timeout: 60_000 }, () => {
  let op;
  let notes;

  before(async () => {
    const port = await freePort();
    op = await startProvider({ MCP_RESOURCE: `http://127.0.0.1:${port}/mcp` });
    // Only notes:read is advertised, so the first authorization asks for it alone; add_note
    // then needs notes:write, which the 403 challenge names (step-up).
    notes = await startNotes(port, op.issuer, { MCP_AUTH__RESOURCE_SERVER__SCOPES_SUPPORTED: 'notes:read' });
  }, T);

  after(async () => {
    await notes?.stop();
    await op?.stop();
  }, T);

  test('a read-only token, add_note -> 403 -> re-authorization with notes:write -> success', T, async () => {
    // SDK 1.32.2 answers a 403 insufficient_scope with a refresh_token grant when it holds a
    // refresh token; a refresh cannot widen the scope (RFC 6749 §6), so it would get the same
    // 403 and give up ("Server returned 403 after trying upscoping"). Without a refresh token it
    // starts a new authorization request for the scope the challenge names, which is the flow
    // under test here.
    const authProvider = new HeadlessOAuthProvider(REDIRECT, { scope: 'notes:read', keepRefreshToken: false });
    // The SDK registers a client for the scope of its first request, and oidc-provider then
    // refuses any wider scope for that client; so this client is registered beforehand (a
    // pre-registered client, which the SDK uses as is) for both scopes.
    const registration = await fetch(`${op.issuer}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...authProvider.clientMetadata, scope: 'notes:read notes:write' }),
    });
    assert.equal(registration.status, 201);
    authProvider.saveClientInformation(await registration.json());
    const t1 = new StreamableHTTPClientTransport(new URL(notes.url), { authProvider });
    await assert.rejects(new Client({ name: 'x', version: '0' }).connect(t1), UnauthorizedError);
    assert.equal(authProvider.authorizationUrls[0].searchParams.get('scope'), 'notes:read');
    await t1.finishAuth(await authorize(authProvider, op, notes.url));
    assert.equal(decodeJwt(authProvider.tokens().access_token).payload.scope, 'notes:read');

    const client = new Client({ name: 'notes-step-up', version: '0.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(notes.url), { authProvider });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['list_notes', 'whoami']);
      await client.callTool({ name: 'list_notes', arguments: {} });

      // 403 insufficient_scope, scope="notes:write": the SDK starts a new authorization for it.
      await assert.rejects(client.callTool({ name: 'add_note', arguments: { text: 'x' } }), UnauthorizedError);
      const stepUp = authProvider.authorizationUrls.at(-1);
      assert.equal(authProvider.authorizationUrls.length, 2);
      assert.match(stepUp.searchParams.get('scope'), /notes:write/);
      await transport.finishAuth(await authorize(authProvider, op, notes.url));
      assert.match(decodeJwt(authProvider.tokens().access_token).payload.scope, /notes:write/);

      // Same client, same session, the new token.
      const added = await client.callTool({ name: 'add_note', arguments: { text: 'stepped up' } });
      assert.equal(added.structuredContent.text, 'stepped up');
      const who = await client.callTool({ name: 'whoami', arguments: {} });
      assert.ok(who.structuredContent.scopes.includes('notes:write'), JSON.stringify(who.structuredContent));
    } finally {
      await client.close();
    }
  });
});
