// Shared helpers for the interop tests: locating the example binaries,
// connecting the official SDK client to them over stdio, and small assertions.
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { join, resolve } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

/** Per-test (and per-hook) options: every test gets a hard timeout. */
export const T = { timeout: 20_000 };

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STDERR_TAIL_BYTES = 16 * 1024;

/** Directory holding the cargo-built example binaries. */
export function examplesDir() {
  if (process.env.MCP_EXAMPLES_DIR) return resolve(process.env.MCP_EXAMPLES_DIR);
  const targetDir = process.env.MCP_TARGET_DIR ? resolve(process.env.MCP_TARGET_DIR) : join(REPO_ROOT, 'target');
  return join(targetDir, 'debug', 'examples');
}

/** Absolute path of an example binary; throws (fails the test) if it is missing. */
export function binaryPath(name) {
  const file = join(examplesDir(), process.platform === 'win32' ? `${name}.exe` : name);
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
