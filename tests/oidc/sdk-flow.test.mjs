// The official TypeScript SDK client, with its OAuth support, against the test provider:
// PRM discovery -> AS metadata -> DCR -> authorization (headless, PKCE S256, resource) -> code
// exchange -> authenticated MCP tool call.
//
// The MCP server here is a stand-in (the SDK's own server behind a 30-line bearer check that
// verifies the provider's ES256 JWTs), so that this file proves the provider side of the flow.
// The same client code works against our Rust server: point `mcpUrl` at it and MCP_RESOURCE at
// the same URL.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { after, before, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

import { decodeJwt, followAuthorization, startProvider } from './harness.mjs';

let op;
let rs;
let mcpUrl;
const seenTokens = [];

// --- stand-in resource server -------------------------------------------------------------------
async function verifyBearer(req) {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
  if (!m) return null;
  const token = m[1];
  const [h, p, s] = token.split('.');
  if (!s) return null;
  const { header, payload } = decodeJwt(token);
  const { keys } = await (await fetch(`${op.issuer}/jwks`)).json();
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk || header.alg !== 'ES256') return null;
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const ok = crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
  if (!ok || payload.iss !== op.issuer || payload.aud !== mcpUrl || payload.exp <= Date.now() / 1000) return null;
  return payload;
}

function startResourceServer() {
  const server = http.createServer(async (req, res) => {
    const base = `http://127.0.0.1:${server.address().port}`;
    const prmUrl = `${base}/.well-known/oauth-protected-resource/mcp`;
    if (req.url === '/.well-known/oauth-protected-resource/mcp' || req.url === '/.well-known/oauth-protected-resource') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        resource: mcpUrl,
        authorization_servers: [op.issuer],
        scopes_supported: ['notes:read', 'notes:write'],
        bearer_methods_supported: ['header'],
      }));
      return;
    }
    if (req.url !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const claims = await verifyBearer(req);
    if (!claims) {
      res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${prmUrl}", scope="notes:read"` });
      res.end();
      return;
    }
    seenTokens.push(claims);
    const mcp = new McpServer({ name: 'stand-in', version: '0.0.0' });
    mcp.registerTool('whoami', { description: 'caller identity' }, async () => ({
      content: [{ type: 'text', text: JSON.stringify({ sub: claims.sub, scope: claims.scope, aud: claims.aud }) }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { transport.close(); mcp.close(); });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  return new Promise((resolve) => { server.listen(0, '127.0.0.1', () => resolve(server)); });
}

// --- a headless OAuthClientProvider ---------------------------------------------------------------
class HeadlessOAuthProvider {
  constructor(redirectUrl) {
    this._redirectUrl = redirectUrl;
    this.authorizationUrl = undefined;
  }

  get redirectUrl() { return this._redirectUrl; }

  get clientMetadata() {
    return {
      client_name: 'sdk headless test',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    };
  }

  clientInformation() { return this._client; }

  saveClientInformation(info) { this._client = info; }

  tokens() { return this._tokens; }

  saveTokens(tokens) { this._tokens = tokens; }

  redirectToAuthorization(url) { this.authorizationUrl = url; }

  saveCodeVerifier(v) { this._verifier = v; }

  codeVerifier() { return this._verifier; }
}

before(async () => {
  rs = await startResourceServer();
  mcpUrl = `http://127.0.0.1:${rs.address().port}/mcp`;
  op = await startProvider({ MCP_RESOURCE: mcpUrl });
});

after(async () => {
  await op?.stop();
  rs?.closeAllConnections();
  await new Promise((r) => { if (rs) rs.close(r); else r(); });
});

test('SDK client: discovery, DCR, headless authorization code + PKCE, tool call with the JWT', async () => {
  const redirectUrl = 'http://127.0.0.1:9/oauth/callback';
  const authProvider = new HeadlessOAuthProvider(redirectUrl);

  const client1 = new Client({ name: 'oidc-selftest', version: '0.0.0' });
  const t1 = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider });
  await assert.rejects(client1.connect(t1), UnauthorizedError);
  assert.ok(authProvider.clientInformation()?.client_id, 'registered through DCR');
  const authUrl = authProvider.authorizationUrl;
  assert.ok(authUrl, 'redirectToAuthorization was called');
  assert.equal(authUrl.origin, op.issuer);
  assert.equal(authUrl.searchParams.get('resource'), mcpUrl);
  assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authUrl.searchParams.get('scope'), 'notes:read');

  const callback = await followAuthorization(authUrl, redirectUrl);
  assert.equal(callback.searchParams.get('iss'), op.issuer);
  await t1.finishAuth(callback.searchParams.get('code'));

  const tokens = authProvider.tokens();
  const { header, payload } = decodeJwt(tokens.access_token);
  assert.equal(header.alg, 'ES256');
  assert.equal(payload.aud, mcpUrl);
  assert.equal(payload.iss, op.issuer);
  assert.equal(payload.scope, 'notes:read');

  const client2 = new Client({ name: 'oidc-selftest', version: '0.0.0' });
  const t2 = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider });
  await client2.connect(t2);
  const result = await client2.callTool({ name: 'whoami', arguments: {} });
  assert.deepEqual(JSON.parse(result.content[0].text), { sub: 'test-user', scope: 'notes:read', aud: mcpUrl });
  assert.ok(seenTokens.length > 0);
  await client2.close();
});
