// Shared helpers for the interop tests: locating the example binaries,
// connecting the official SDK client to them over stdio, and small assertions.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

/** Per-test (and per-hook) options: every test gets a hard timeout. */
export const T = { timeout: 20_000 };

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STDERR_TAIL_BYTES = 16 * 1024;

/** Directory holding the cargo-built example binaries. */
/** Where the workspace's own binaries (such as `mcp-gateway`) are built. */
export function binariesDir() {
  return join(examplesDir(), '..');
}

export function examplesDir() {
  if (process.env.MCP_EXAMPLES_DIR) return resolve(process.env.MCP_EXAMPLES_DIR);
  const targetDir = process.env.MCP_TARGET_DIR ? resolve(process.env.MCP_TARGET_DIR) : join(REPO_ROOT, 'target');
  return join(targetDir, 'debug', 'examples');
}

/** Absolute path of an example binary (or, with `dir`, of a binary there); throws if it is missing. */
export function binaryPath(name, dir = examplesDir()) {
  const file = join(dir, process.platform === 'win32' ? `${name}.exe` : name);
  try {
    accessSync(file, constants.X_OK);
  } catch {
    throw new Error(
      `MCP example binary "${name}" is missing or not executable: ${file}\n` +
        'Build the examples first (`cargo build --examples` at the repo root), ' +
        'or point MCP_TARGET_DIR / MCP_EXAMPLES_DIR at the right place.',
    );
  }
  return file;
}

/**
 * Spawns example `name` and connects an SDK client to it.
 *
 * Returns `{ client, sent, received, stderr, close }`:
 *  - `sent`: every JSON-RPC message the client wrote (e.g. to read the progress token the SDK chose);
 *  - `received`: every message read from the server after initialization, in arrival order,
 *    as seen by the transport (before the SDK dispatches or drops it);
 *  - `stderr()`: the tail of the server's stderr;
 *  - `close()`: closes the client and kills the server (safe to call twice).
 *
 * `capabilities` are the client capabilities; `setup(client)` runs before connecting
 * (register request handlers there, since they must exist before `initialize`).
 */
export async function connect(name, { capabilities = {}, setup } = {}) {
  const transport = new StdioClientTransport({
    command: binaryPath(name),
    args: [],
    env: { ...process.env },
    stderr: 'pipe',
  });
  let stderrTail = '';
  transport.stderr.on('data', (chunk) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
  });
  const sent = [];
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    sent.push(message);
    return send(message, options);
  };

  const client = new Client({ name: 'mcp-interop-tests', version: '0.0.0' }, { capabilities });
  setup?.(client);
  try {
    await client.connect(transport, { timeout: 10_000 });
  } catch (err) {
    await client.close();
    throw new Error(`Could not initialize "${name}": ${err.message}\n--- server stderr ---\n${stderrTail}`, {
      cause: err,
    });
  }
  // The SDK installs its own onmessage in connect(); wrap it to keep a log.
  const received = [];
  const dispatch = transport.onmessage;
  transport.onmessage = (message, extra) => {
    received.push(message);
    dispatch?.(message, extra);
  };
  return { client, sent, received, stderr: () => stderrTail, close: () => client.close() };
}

/**
 * Declares a server shared by the tests of the enclosing suite: returns a function that
 * connects on first use (so a missing binary fails every test with a clear message)
 * and registers an `after` hook that closes it.
 */
export function useServer(name, options) {
  let pending;
  after(() => pending?.then((s) => s.close(), () => {}), T);
  return () => (pending ??= connect(name, options));
}

const LISTS = {
  tools: 'listTools',
  prompts: 'listPrompts',
  resources: 'listResources',
  resourceTemplates: 'listResourceTemplates',
};

/** Lists every item of `kind` ('tools' | 'prompts' | 'resources' | 'resourceTemplates'), following nextCursor. */
export async function listAll(client, kind) {
  const items = [];
  const seen = new Set();
  let cursor;
  do {
    const page = await client[LISTS[kind]](cursor === undefined ? undefined : { cursor });
    items.push(...page[kind]);
    cursor = page.nextCursor;
    assert.ok(!seen.has(cursor), `${kind} pagination repeated cursor ${JSON.stringify(cursor)}`);
    seen.add(cursor);
  } while (cursor !== undefined);
  return items;
}

/** Asserts that `promise` rejects with an McpError carrying JSON-RPC error `code`. */
export async function assertMcpError(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof McpError, `expected an McpError, got ${err?.stack ?? err}`);
    assert.equal(err.code, code, `unexpected error code (message: ${err.message})`);
    return true;
  });
}

/** Looks up `name` in a list of named items, failing if it is absent. */
export function byName(items, name, key = 'name') {
  const item = items.find((i) => i[key] === name);
  assert.ok(item, `no item with ${key} ${JSON.stringify(name)} in [${items.map((i) => i[key]).join(', ')}]`);
  return item;
}

/** Waits until `predicate()` holds (polling), failing after `ms`. */
export async function waitFor(predicate, what, ms = 2_000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP: example binaries started with `--bind 127.0.0.1:PORT`.

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

/** Resolves true once something accepts TCP connections on 127.0.0.1:port. */
function accepts(port) {
  return new Promise((resolveAccepts) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolveAccepts(true);
    });
    socket.once('error', () => resolveAccepts(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Spawns example `name` as `name --bind 127.0.0.1:<free port> ...args` and waits (at most
 * 10 s) until it accepts connections. Fails clearly if the binary exits first (for instance
 * because it does not understand `--bind`) or never listens.
 *
 * Returns `{ port, origin, url(path = '/mcp'), output(), stop() }`: `output()` is the tail
 * of the server's stdout and stderr; `stop()` kills it (safe to call twice).
 */
export async function startHttpServer(name, { args = [], env = {}, port: fixedPort, dir } = {}) {
  const file = binaryPath(name, dir);
  let lastError;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = fixedPort ?? (await freePort());
    const bind = `127.0.0.1:${port}`;
    // stdin is /dev/null: a binary that ignores --bind and serves stdio exits at once.
    const child = spawn(file, ['--bind', bind, ...args], {
      env: { ...process.env, RUST_LOG: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const keep = (chunk) => {
      tail = (tail + chunk).slice(-STDERR_TAIL_BYTES);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let exit;
    const exited = new Promise((r) => {
      child.once('exit', (code, signal) => r((exit = { code, signal })));
      child.once('error', (err) => r((exit = { code: null, signal: null, err })));
    });
    const stop = async () => {
      if (exit) return;
      child.kill('SIGTERM');
      if (await Promise.race([exited.then(() => true), sleep(2_000).then(() => false)])) return;
      child.kill('SIGKILL');
      await exited;
    };
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (!exit && Date.now() < deadline) {
      if (await accepts(port)) {
        ready = !exit;
        break;
      }
      await sleep(50);
    }
    if (ready) {
      const origin = `http://${bind}`;
      return { port, origin, url: (path = '/mcp') => new URL(path, origin), output: () => tail, stop };
    }
    await stop();
    const how = exit
      ? `exited (${exit.err?.message ?? `code ${exit.code}, signal ${exit.signal}`}) before accepting connections`
      : 'did not accept connections within 10 s';
    lastError = new Error(
      `"${name} --bind ${bind}" ${how}. Does this build of ${name} support --bind?\n` +
        `--- server output ---\n${tail}`,
    );
    // Retry only when the port was taken between choosing it and binding it.
    if (fixedPort !== undefined || !/in use|AddrInUse/i.test(tail)) break;
  }
  throw lastError;
}

/**
 * Declares an HTTP server shared by the tests of the enclosing suite: returns a function that
 * starts it on first use (so a missing binary or feature fails every test with a clear
 * message) and registers an `after` hook that stops it.
 */
export function useHttpServer(name, options) {
  let pending;
  after(() => pending?.then((s) => s.stop(), () => {}), T);
  return () => (pending ??= startHttpServer(name, options));
}

/**
 * Connects an SDK client over HTTP to `url`: `kind` is 'streamable'
 * (StreamableHTTPClientTransport, e.g. `/mcp`) or 'sse' (the 2024-11-05 HTTP+SSE
 * SSEClientTransport, e.g. `/sse`).
 *
 * Returns `{ client, transport, sent, received, http, close }` like `connect`, plus `http`:
 * one `{ method, url, status, contentType, sessionId }` entry per HTTP response the
 * transport got. `serverOutput()`, if given, is appended to connection errors. With an
 * `authProvider` (an OAuthClientProvider holding tokens), every request carries its token.
 */
export async function connectHttp(
  url,
  { kind = 'streamable', capabilities = {}, setup, serverOutput, authProvider } = {},
) {
  const http = [];
  const recordingFetch = async (input, init) => {
    const response = await fetch(input, init);
    http.push({
      method: init?.method ?? 'GET',
      url: String(input),
      status: response.status,
      contentType: response.headers.get('content-type'),
      sessionId: response.headers.get('mcp-session-id'),
    });
    return response;
  };
  const target = new URL(url);
  const transport =
    kind === 'sse'
      ? new SSEClientTransport(target, { fetch: recordingFetch, authProvider })
      : new StreamableHTTPClientTransport(target, { fetch: recordingFetch, authProvider });
  const sent = [];
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    sent.push(message);
    return send(message, options);
  };
  const client = new Client({ name: 'mcp-interop-tests', version: '0.0.0' }, { capabilities });
  setup?.(client);
  try {
    await client.connect(transport, { timeout: 10_000 });
  } catch (err) {
    await client.close().catch(() => {});
    throw new Error(
      `Could not initialize over ${kind === 'sse' ? 'HTTP+SSE' : 'Streamable HTTP'} at ${url}: ${err.message}\n` +
        `--- HTTP exchanges ---\n${http.map((h) => `${h.method} ${h.url} -> ${h.status} ${h.contentType ?? ''}`).join('\n')}` +
        (serverOutput ? `\n--- server output ---\n${serverOutput()}` : ''),
      { cause: err },
    );
  }
  const received = [];
  const dispatch = transport.onmessage;
  transport.onmessage = (message, extra) => {
    received.push(message);
    dispatch?.(message, extra);
  };
  return { client, transport, sent, received, http, close: () => client.close() };
}
