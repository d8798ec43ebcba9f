// `mcp-remote` (pinned), the stdio bridge desktop clients use for remote servers, against the
// github-oauth example with GitHub played by the stand-in. The test is the stdio MCP client: it
// spawns mcp-remote and speaks JSON-RPC lines on its stdin/stdout. mcp-remote finds our
// authorization server from the 401, registers itself and opens the authorization URL through
// `BROWSER` (the `open` package's xdg-open honours it); `BROWSER` is a script that writes the URL
// to a file, and headless Chromium plays the user: our consent page, GitHub's sign-in and Authorize,
// back to mcp-remote's loopback callback. Then tools/list and tools/call `whoami`. A second run
// with the same MCP_REMOTE_CONFIG_DIR reuses the stored tokens: no browser, no registration, no
// GitHub sign-in. Once over Streamable HTTP (/mcp), once over HTTP+SSE (/sse).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { startGitHub } from '../github-standin/harness.mjs';
import { artefactsDir, freePort, launchChromium, startGitHubOAuthServer, until } from './lib.mjs';

const T = { timeout: 90_000 };
const MCP_REMOTE = fileURLToPath(new URL('./node_modules/mcp-remote/dist/proxy.js', import.meta.url));
const PROTOCOL = '2025-06-18';

/**
 * Spawns mcp-remote for `url` with its OAuth callback on `callbackPort`, its state in `configDir`
 * and `BROWSER=browserScript`. Returns `{ request(method, params), notify(method), stderr(), stop() }`;
 * `request` resolves with the JSON-RPC response of that id.
 */
function startMcpRemote({ url, transport, callbackPort, configDir, browserScript }) {
  const child = spawn(process.execPath, [MCP_REMOTE, url, String(callbackPort), '--transport', transport], {
    env: { ...process.env, BROWSER: browserScript, MCP_REMOTE_CONFIG_DIR: configDir },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-32 * 1024);
  });
  const pending = new Map();
  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (msg.id !== undefined && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  });
  const exited = new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
  let nextId = 1;
  const write = (msg) => child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...msg })}\n`);
  return {
    request(method, params, timeoutMs = 45_000) {
      const id = nextId++;
      const answer = new Promise((ok, fail) => {
        pending.set(id, ok);
        exited.then(({ code, signal }) => fail(new Error(`mcp-remote exited (${code ?? signal}) before answering ${method}:\n${stderr}`)));
        setTimeout(() => fail(new Error(`no answer to ${method} within ${timeoutMs} ms:\n${stderr}`)), timeoutMs).unref();
      });
      write({ id, method, params });
      return answer;
    },
    notify: (method) => write({ method }),
    /** null while running, else the exit code (or signal name). */
    exitCode: () => child.exitCode ?? child.signalCode,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin.end();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

describe('mcp-remote signs in with GitHub through our authorization server', () => {
  let gh;
  let as;
  let browser;
  let dir;
  let octocat;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-remote-'));
    gh = await startGitHub();
    as = await startGitHubOAuthServer(gh, { sealingKeyFile: join(dir, 'seal.key'), env: { RUST_LOG: 'info' } });
    browser = await launchChromium();
    mkdirSync(artefactsDir(), { recursive: true });
    octocat = await (await fetch(`${gh.url}/users/octocat`, { headers: { 'user-agent': 'browser-test' } })).json();
  }, T);

  after(async () => {
    await browser?.close();
    await as?.stop();
    await gh?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  const serverLog = () => as.stderr().replace(/\x1b\[[0-9;]*m/g, '');
  const registrations = () => serverLog().match(/client registered/g)?.length ?? 0;

  /** initialize -> initialized -> tools/list -> tools/call whoami through `remote`; checks each answer. */
  async function whoamiThrough(remote) {
    const init = await remote.request('initialize', {
      protocolVersion: PROTOCOL,
      capabilities: {},
      clientInfo: { name: 'mcp-remote-test', version: '0' },
    });
    assert.equal(init.error, undefined, JSON.stringify(init));
    assert.equal(init.result.serverInfo.name, 'github-oauth', JSON.stringify(init.result));
    remote.notify('notifications/initialized');
    const list = await remote.request('tools/list', {});
    assert.equal(list.error, undefined, JSON.stringify(list));
    assert.deepEqual(list.result.tools.map((t) => t.name).sort(), ['admin_report', 'my_repositories', 'whoami']);
    const call = await remote.request('tools/call', { name: 'whoami', arguments: {} });
    assert.equal(call.error, undefined, JSON.stringify(call));
    assert.notEqual(call.result.isError, true, JSON.stringify(call.result));
    assert.deepEqual(call.result.structuredContent, {
      authenticated: true, subject: `github:${octocat.id}`, login: 'octocat', name: octocat.name, email: octocat.email,
    });
  }

  async function signInThenReuse(t, { endpoint, transport, shot }) {
    await gh.reset();
    const runDir = mkdtempSync(join(dir, `${transport}-`));
    const configDir = join(runDir, 'mcp-auth');
    const opened = join(runDir, 'browser-opened.txt');
    const browserScript = join(runDir, 'browser.sh');
    writeFileSync(browserScript, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${opened}'\n`);
    chmodSync(browserScript, 0o755);
    const openedUrls = () => (existsSync(opened) ? readFileSync(opened, 'utf8').split('\n').filter(Boolean) : []);
    const callbackPort = await freePort();
    const registeredBefore = registrations();

    // First run: no tokens yet, so mcp-remote registers and opens the browser.
    const first = startMcpRemote({ url: endpoint, transport, callbackPort, configDir, browserScript });
    t.after(() => first.stop());
    const session = whoamiThrough(first);
    session.catch(() => {}); // awaited below; the browser step comes first
    const authorizeUrl = await until('mcp-remote to open the browser', () => {
      if (first.exitCode() !== null) throw new Error(`mcp-remote exited (${first.exitCode()})`);
      return openedUrls()[0];
    }, 20_000).catch((e) => {
      throw new Error(`${e.message}\n--- mcp-remote:\n${first.stderr()}\n--- server:\n${serverLog()}`);
    });
    const authorize = new URL(authorizeUrl);
    assert.equal(`${authorize.origin}${authorize.pathname}`, `${as.base}/authorize`, authorizeUrl);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorize.searchParams.get('redirect_uri'), `http://localhost:${callbackPort}/oauth/callback`);
    assert.equal(registrations(), registeredBefore + 1, 'mcp-remote registered itself by DCR');
    assert.match(serverLog(), new RegExp(`client registered client_id=${authorize.searchParams.get('client_id')}`));

    const context = await browser.newContext();
    t.after(() => context.close());
    const page = await context.newPage();
    await page.goto(authorizeUrl);
    await page.getByRole('button', { name: 'Allow and continue' }).waitFor();
    const consentText = await page.textContent('body');
    assert.match(consentText, /MCP CLI Proxy/, `mcp-remote is named: ${consentText}`);
    assert.match(consentText, /sign in with at GitHub/, consentText);
    await page.screenshot({ path: join(artefactsDir(), `${shot}-consent.png`), fullPage: true });
    await page.getByRole('button', { name: 'Allow and continue' }).click();
    await page.waitForURL((u) => u.origin === gh.url && u.pathname === '/login');
    await page.fill('#login_field', 'octocat');
    await page.fill('#password', 'octocat-password');
    await page.click('input[name="commit"]');
    await page.locator('#js-oauth-authorize-btn').click();
    await page.waitForURL((u) => u.port === String(callbackPort) && u.pathname === '/oauth/callback');
    const back = new URL(page.url());
    assert.ok(back.searchParams.get('code'), `${back}`);
    assert.equal(back.searchParams.get('state'), authorize.searchParams.get('state'));
    assert.equal(back.searchParams.get('iss'), as.issuer);
    assert.match(await page.textContent('body'), /Authorization successful/);
    await page.screenshot({ path: join(artefactsDir(), `${shot}-callback.png`), fullPage: true });

    await session;
    assert.equal(openedUrls().length, 1, 'the browser was opened once');
    assert.equal((await gh.tokens()).length, 1, 'one GitHub sign-in');
    await first.stop();

    // Second run, same config dir: the stored tokens are used; nothing is opened or registered.
    const second = startMcpRemote({ url: endpoint, transport, callbackPort, configDir, browserScript });
    t.after(() => second.stop());
    await whoamiThrough(second);
    assert.deepEqual(openedUrls(), [authorizeUrl], `no browser the second time:\n${second.stderr()}`);
    assert.equal(registrations(), registeredBefore + 1, 'no second registration');
    assert.equal((await gh.tokens()).length, 1, 'no second GitHub sign-in');
    await second.stop();
  }

  test('Streamable HTTP at /mcp (--transport http-only)', T, (t) =>
    signInThenReuse(t, { endpoint: as.resource, transport: 'http-only', shot: 'mcp-remote-http' }),
  );

  test('HTTP+SSE at /sse (--transport sse-only)', T, (t) =>
    signInThenReuse(t, { endpoint: `${as.base}/sse`, transport: 'sse-only', shot: 'mcp-remote-sse' }),
  );
});
