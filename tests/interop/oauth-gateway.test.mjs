// The official TypeScript SDK client, with its OAuth support, through mcp-gateway in
// authorization-server mode, in front of two real stdio servers no one here wrote
// (@modelcontextprotocol/server-everything, pinned in tests/gateway): for each upstream,
//   401 -> its own protected-resource metadata -> the gateway's AS metadata -> DCR -> authorize
//   (development login and consent, played headlessly) -> a token for that upstream alone -> tools.
// A token for one upstream is refused by the other. Needs `cargo build -p mcp-gateway` and
// `npm ci` in tests/gateway.
import assert from 'node:assert/strict';
import { accessSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { T, binariesDir, freePort, startHttpServer } from './lib.mjs';
import { HeadlessOAuthProvider, consentHeadlessly, decodeJwt } from './oauth-lib.mjs';

const EVERYTHING = fileURLToPath(
  new URL('../gateway/node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url),
);
const REDIRECT = 'http://127.0.0.1:9/oauth/callback';
const CLIENT_NAME = 'gateway interop test';

/** The gateway on `port`, both upstreams behind the built-in authorization server. */
async function startGateway(port, dir) {
  accessSync(EVERYTHING);
  const origin = `http://127.0.0.1:${port}`;
  const upstream = (name) => `
[app.upstreams.${name}]
command = "node"
args = [${JSON.stringify(EVERYTHING)}, "stdio"]
scopes = ["${name}:use"]
`;
  const config = join(dir, 'gateway.toml');
  writeFileSync(config, `
[server]
public_url = "${origin}"
[auth]
mode = "authorization_server"
[auth.authorization_server]
store = "sqlite://${join(dir, 'auth.db')}"
login = "dev"
${upstream('everything')}${upstream('other')}`);
  const server = await startHttpServer('mcp-gateway', { port, args: ['--config', config], dir: binariesDir() });
  return { origin, url: (name) => `${origin}/${name}/mcp`, output: server.output, stop: server.stop };
}

/** Signs in through the SDK for one upstream; returns the provider holding its tokens. */
async function signIn(gateway, name) {
  const provider = new HeadlessOAuthProvider(REDIRECT, CLIENT_NAME);
  const transport = new StreamableHTTPClientTransport(new URL(gateway.url(name)), { authProvider: provider });
  await assert.rejects(new Client({ name: 'gateway-oauth', version: '0' }).connect(transport), UnauthorizedError);
  const authUrl = provider.authorizationUrls.at(-1);
  assert.equal(authUrl.origin, gateway.origin, 'the gateway is the authorization server');
  assert.equal(authUrl.searchParams.get('resource'), gateway.url(name), 'RFC 8707: this upstream');
  assert.equal(authUrl.searchParams.get('scope'), `${name}:use`, "this upstream's scope, from its metadata");
  const callback = await consentHeadlessly(authUrl, 'sdk-user', CLIENT_NAME);
  await transport.finishAuth(callback.searchParams.get('code'));
  return provider;
}

async function connect(gateway, name, provider) {
  const client = new Client({ name: 'gateway-oauth', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url(name)), { authProvider: provider }));
  return client;
}

/** The status a bare POST with `token` gets from an upstream's endpoint. */
async function statusWith(url, token) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  await res.body?.cancel();
  return res.status;
}

describe('SDK OAuth client through mcp-gateway', { timeout: 90_000 }, () => {
  let gateway;
  let dir;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gateway-as-'));
    gateway = await startGateway(await freePort(), dir);
  }, T);

  after(async () => {
    await gateway?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  test('each upstream: discovery, DCR, authorize, a token for it alone, tool calls', T, async () => {
    const providers = {};
    for (const name of ['everything', 'other']) {
      const provider = await signIn(gateway, name);
      const claims = decodeJwt(provider.tokens().access_token);
      assert.equal(claims.iss, gateway.origin);
      assert.equal(claims.aud, gateway.url(name), 'the audience is this upstream alone');
      const client = await connect(gateway, name, provider);
      try {
        const echoed = await client.callTool({ name: 'echo', arguments: { message: `via ${name}` } });
        assert.equal(echoed.content[0].text, `Echo: via ${name}`);
      } finally {
        await client.close();
      }
      providers[name] = provider;
    }
    // A token for one upstream is refused by the other.
    assert.equal(await statusWith(gateway.url('other'), providers.everything.tokens().access_token), 401);
    assert.equal(await statusWith(gateway.url('everything'), providers.other.tokens().access_token), 401);
  });
});
