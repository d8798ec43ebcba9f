#!/usr/bin/env node
// A loopback reverse proxy that adds `Authorization: Bearer <token>` to every request, so the
// conformance suite (which sends no tokens) can run against a server with resource-server auth
// on. The token comes from the test OpenID provider (tests/oidc/provider.mjs) through the
// client_credentials grant, for the server's canonical URL (RFC 8707 `resource`), and is renewed
// at half its lifetime. Bodies stream both ways unbuffered (SSE included); a client that goes
// away closes the upstream request too (the server then cancels it, as without the proxy).
// Host and Origin pass through unchanged, so the server's own guard still sees the client's.
//
// Usage: node auth-proxy.mjs --target http://127.0.0.1:PORT --issuer ISSUER --resource URL
//          [--client rs-test] [--secret rs-test-secret] [--scope "notes:read notes:write"] [--port 0]
// Prints one JSON line on stdout once listening: {"port":N,"url":"http://127.0.0.1:N"}; logs go
// to stderr (every upstream 401/403, which means the proxy's token was refused). Exits on
// SIGTERM/SIGINT, and when stdin reaches EOF if AUTH_PROXY_EXIT_ON_STDIN_EOF=1.
import * as http from 'node:http';
import process from 'node:process';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    target: { type: 'string' },
    issuer: { type: 'string' },
    resource: { type: 'string' },
    client: { type: 'string', default: 'rs-test' },
    secret: { type: 'string' },
    scope: { type: 'string' },
    port: { type: 'string', default: '0' },
  },
});
for (const required of ['target', 'issuer', 'resource']) {
  if (!opts[required]) {
    console.error(`auth-proxy: --${required} is required`);
    process.exit(2);
  }
}
const target = new URL(opts.target);
const secret = opts.secret ?? `${opts.client}-secret`;
const log = (...args) => console.error('auth-proxy:', ...args);

// --- the token -------------------------------------------------------------------------------
let current; // { token, renewAt }
let pending;

async function mint() {
  const form = new URLSearchParams({ grant_type: 'client_credentials', resource: opts.resource });
  if (opts.scope) form.set('scope', opts.scope);
  const res = await fetch(`${opts.issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${opts.client}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: form,
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.access_token) throw new Error(`token request: HTTP ${res.status} ${JSON.stringify(body)}`);
  const lifetime = Number(body.expires_in) || 60;
  current = { token: body.access_token, renewAt: Date.now() + (lifetime * 1000) / 2 };
  log(`minted a token for ${opts.resource} (expires in ${lifetime} s)`);
  return current.token;
}

async function token() {
  if (current && Date.now() < current.renewAt) return current.token;
  pending ??= mint().finally(() => { pending = undefined; });
  return pending;
}

// --- the proxy -------------------------------------------------------------------------------
const agent = new http.Agent({ keepAlive: true });
let forwarded = 0;

const server = http.createServer(async (req, res) => {
  let bearer;
  try {
    bearer = await token();
  } catch (e) {
    log(e.message);
    res.writeHead(502, { 'content-type': 'text/plain' }).end(`auth-proxy: no token: ${e.message}`);
    return;
  }
  forwarded += 1;
  const headers = { ...req.headers, authorization: `Bearer ${bearer}` };
  const upstream = http.request(
    { protocol: target.protocol, hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
    (up) => {
      if (up.statusCode === 401 || up.statusCode === 403) {
        log(`${req.method} ${req.url} -> ${up.statusCode} ${up.headers['www-authenticate'] ?? ''}`);
      }
      res.writeHead(up.statusCode, up.statusMessage, up.rawHeaders);
      res.flushHeaders();
      up.pipe(res);
      up.on('error', () => res.destroy());
    },
  );
  upstream.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`auth-proxy: ${e.message}`);
    else res.destroy();
  });
  // The client went away before the answer was complete: so does the upstream request.
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
});
server.keepAliveTimeout = 5_000;

function shutdown() {
  log(`forwarded ${forwarded} requests; exiting`);
  server.close();
  server.closeAllConnections();
  agent.destroy();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (process.env.AUTH_PROXY_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', shutdown);
  process.stdin.resume();
}

try {
  await token(); // fail at start, not on the first request, if the provider refuses
} catch (e) {
  log(e.message);
  process.exit(1);
}
server.listen(Number(opts.port), '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ port, url: `http://127.0.0.1:${port}` })}\n`);
});
