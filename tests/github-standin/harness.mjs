// Helpers for Node tests that need the GitHub stand-in (server.mjs):
//   startGitHub(opts)   spawn it, wait for its JSON ready line -> { url, port, stop(), tokens(), requests(), ... }
//   pkcePair()          { verifier, challenge, method: 'S256' }
//   authorizeAs(url, params, login)  test-only shortcut: authorize as `login`, return the redirect URL
//   exchangeCode(url, form, {json})  POST /login/oauth/access_token
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const SERVER_PATH = fileURLToPath(new URL('./server.mjs', import.meta.url));

/**
 * Starts server.mjs. opts:
 *   config     object { apps, users } (passed as GITHUB_STANDIN_CONFIG_JSON); omit for the defaults
 *   configFile path of a JSON config file (--config)
 *   port       fixed port (default 0 = any free port)
 *   env        extra environment
 *   timeoutMs  how long to wait for the ready line (default 10 s)
 * stderr is forwarded when GITHUB_STANDIN_DEBUG=1, else kept (last 64 KiB) and shown on failure.
 */
export async function startGitHub(opts = {}) {
  const { config, configFile, port = 0, env = {}, timeoutMs = 10_000 } = opts;
  const args = [SERVER_PATH, '--port', String(port)];
  if (configFile) args.push('--config', configFile);
  const childEnv = { ...process.env, ...env };
  delete childEnv.PORT;
  if (config) childEnv.GITHUB_STANDIN_CONFIG_JSON = JSON.stringify(config);
  const child = spawn(process.execPath, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    if (process.env.GITHUB_STANDIN_DEBUG === '1') process.stderr.write(d);
    stderr = (stderr + d).slice(-65536);
  });
  const lines = createInterface({ input: child.stdout });
  const ready = new Promise((resolve, reject) => {
    lines.once('line', (line) => {
      try { resolve(JSON.parse(line)); } catch (e) { reject(new Error(`bad ready line ${line}: ${e.message}`)); }
    });
    child.once('exit', (code, sig) => reject(new Error(`github-standin exited (${code ?? sig}) before ready:\n${stderr}`)));
    setTimeout(() => reject(new Error(`github-standin not ready after ${timeoutMs} ms:\n${stderr}`)), timeoutMs).unref();
  });
  let info;
  try {
    info = await ready;
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  const getJson = async (p) => {
    const res = await fetch(`${info.url}${p}`);
    if (!res.ok) throw new Error(`${p}: HTTP ${res.status}`);
    return res.json();
  };
  return {
    ...info,
    child,
    stderr: () => stderr,
    /** Issued tokens: [{ access_token, client_id, login, scope, created_at, revoked }] */
    tokens: () => getJson('/_standin/tokens'),
    /** Token requests received: [{ client_id, client_auth, has_code_verifier, accept, result, ... }] */
    requests: () => getJson('/_standin/requests'),
    /** Authorize requests received (query parameters as sent). */
    authorizations: () => getJson('/_standin/authorizations'),
    async reset() {
      const res = await fetch(`${info.url}/_standin/reset`, { method: 'POST' });
      if (res.status !== 204) throw new Error(`reset: HTTP ${res.status}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(t);
    },
  };
}

export function pkcePair() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge, method: 'S256' };
}

/** Test-only shortcut: GET /login/oauth/authorize as `login` (X-Standin-User); returns the
 *  Location the stand-in redirected to, as a URL (read code/state/error from searchParams). */
export async function authorizeAs(baseUrl, params, login) {
  const res = await fetch(`${baseUrl}/login/oauth/authorize?${new URLSearchParams(params)}`, {
    redirect: 'manual', headers: login ? { 'x-standin-user': login } : {},
  });
  await res.body?.cancel();
  const loc = res.headers.get('location');
  if (res.status !== 302 || !loc) throw new Error(`authorize: expected 302, got ${res.status}`);
  return new URL(loc, baseUrl);
}

/** POST /login/oauth/access_token with a form body. json=true sends Accept: application/json and
 *  parses; else returns the form-encoded answer as URLSearchParams. */
export async function exchangeCode(baseUrl, form, { json = true, headers = {} } = {}) {
  const res = await fetch(`${baseUrl}/login/oauth/access_token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(json ? { accept: 'application/json' } : {}), ...headers },
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), body: json ? JSON.parse(text) : new URLSearchParams(text), text };
}
