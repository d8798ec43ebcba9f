// Helpers for Node tests that need the test OpenID provider (provider.mjs):
//   startProvider(env)            spawn it, wait for its JSON line, get { issuer, port, admin, stop() }
//   followAuthorization(url, ru)  play a headless user agent: follow the authorization request's
//                                 redirects (keeping cookies) until it lands on redirect_uri ru
//   pkcePair(), decodeJwt(), clientCredentials(), introspect(), rotateKey(), setFault()
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const PROVIDER_PATH = fileURLToPath(new URL('./provider.mjs', import.meta.url));

/**
 * Starts provider.mjs with the given extra environment (MCP_RESOURCE, OIDC_TOKEN_TTL, ...).
 * Resolves once it printed its ready line. stderr is forwarded when OIDC_DEBUG=1, else kept
 * (last 64 KiB) and shown if the provider fails to start.
 */
export async function startProvider(extraEnv = {}, { timeoutMs = 10_000 } = {}) {
  const child = spawn(process.execPath, [PROVIDER_PATH], {
    env: { ...process.env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    if (process.env.OIDC_DEBUG === '1') process.stderr.write(d);
    stderr = (stderr + d).slice(-65536);
  });
  const lines = createInterface({ input: child.stdout });
  const ready = new Promise((resolve, reject) => {
    lines.once('line', (line) => {
      try { resolve(JSON.parse(line)); } catch (e) { reject(new Error(`bad ready line ${line}: ${e.message}`)); }
    });
    child.once('exit', (code, sig) => reject(new Error(`provider exited (${code ?? sig}) before ready:\n${stderr}`)));
    setTimeout(() => reject(new Error(`provider not ready after ${timeoutMs} ms:\n${stderr}`)), timeoutMs).unref();
  });
  let info;
  try {
    info = await ready;
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return {
    ...info,
    child,
    stderr: () => stderr,
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

export function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

export function pkcePair() {
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
  return { verifier, challenge, method: 'S256' };
}

export function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
  };
}

const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function formPost(url, form, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, body };
}

/** client_credentials grant with client_secret_basic. */
export function clientCredentials(issuer, { clientId = 'rs-test', clientSecret = `${clientId}-secret`, resource, scope } = {}) {
  const form = { grant_type: 'client_credentials' };
  if (resource !== undefined) form.resource = resource;
  if (scope !== undefined) form.scope = scope;
  return formPost(`${issuer}/token`, form, { authorization: basic(clientId, clientSecret) });
}

export function introspect(issuer, token, { clientId = 'introspector', clientSecret = 'introspector-secret' } = {}) {
  return formPost(`${issuer}/token/introspection`, { token }, { authorization: basic(clientId, clientSecret) });
}

export function revoke(issuer, token, { clientId, clientSecret = `${clientId}-secret` }) {
  return formPost(`${issuer}/token/revocation`, { token }, { authorization: basic(clientId, clientSecret) });
}

export async function rotateKey(admin) {
  const res = await fetch(`${admin}/rotate`, { method: 'POST' });
  if (!res.ok) throw new Error(`rotate: ${res.status} ${await res.text()}`);
  return res.json();
}

export async function setFault(admin, target, mode, ms) {
  const q = new URLSearchParams({ target, mode, ...(ms ? { ms: String(ms) } : {}) });
  const res = await fetch(`${admin}/fault?${q}`, { method: 'POST' });
  if (!res.ok) throw new Error(`fault: ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * A headless user agent for the authorization endpoint: GETs `authorizationUrl`, follows 3xx
 * redirects by hand with a cookie jar (oidc-provider binds the interaction to cookies), and stops at
 * the first redirect whose target starts with `redirectUri` (never fetching it). Returns that URL;
 * read `code`, `state`, `iss` (or `error`) from its search params. Throws on a non-redirect answer.
 */
export async function followAuthorization(authorizationUrl, redirectUri, { maxHops = 10 } = {}) {
  const jar = new Map(); // name -> value; single origin, so one jar is enough
  let url = String(authorizationUrl);
  for (let hop = 0; hop < maxHops; hop += 1) {
    if (redirectUri && url.startsWith(redirectUri)) return new URL(url);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a) || /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') jar.delete(name); else jar.set(name, value);
    }
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) {
      throw new Error(`authorization stopped at ${url}: HTTP ${res.status} ${(await res.text()).slice(0, 500)}`);
    }
    await res.body?.cancel();
    url = new URL(location, url).href;
    if (!redirectUri && !url.startsWith(new URL(authorizationUrl).origin)) return new URL(url);
  }
  throw new Error(`too many redirects from ${authorizationUrl}`);
}
