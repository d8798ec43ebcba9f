#!/usr/bin/env node
// A stand-in for github.com + api.github.com, for tests only (GitHub cannot be reached from the test
// machines). It reproduces the parts of GitHub's OAuth-app web flow and REST API that an OAuth
// client / MCP server relies on: endpoint paths, parameters, response shapes, status codes and
// GitHub's quirks (token errors come back as HTTP 200, form-encoded token answers unless
// `Accept: application/json`, 403 without User-Agent, 404 for /user/emails without the scope, ...).
// See README.md in this folder for the contract.
//
// Listens on 127.0.0.1 only, prints ONE JSON line on stdout once listening
// ({"url":"http://127.0.0.1:PORT","port":PORT}); everything else goes to stderr.
//
// Usage: node server.mjs [--port N] [--config FILE]
//   env: PORT, GITHUB_STANDIN_CONFIG (file), GITHUB_STANDIN_CONFIG_JSON (inline JSON),
//        GITHUB_STANDIN_DEBUG=1 (log every request to stderr)

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import process from 'node:process';

const HOST = '127.0.0.1';
const CODE_TTL_MS = 10 * 60 * 1000; // GitHub: codes expire after 10 minutes
const DOCS = 'https://docs.github.com';
const TOKEN_ERRORS_URI = `${DOCS}/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/`;
const AUTHZ_ERRORS_URI = `${DOCS}/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/`;
const API_VERSION = '2022-11-28';

// ---------------------------------------------------------------------------------------------
// Arguments and configuration
// ---------------------------------------------------------------------------------------------
function argValue(name) {
  const i = process.argv.indexOf(name);
  if (i >= 0) return process.argv[i + 1];
  const pref = process.argv.find((a) => a.startsWith(`${name}=`));
  return pref ? pref.slice(name.length + 1) : undefined;
}

const rawPort = argValue('--port') ?? process.env.PORT ?? '0';
const PORT = Number(rawPort);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  console.error(`github-standin: bad port ${JSON.stringify(rawPort)}`);
  process.exit(2);
}
const DEBUG = process.env.GITHUB_STANDIN_DEBUG === '1';

const DEFAULT_CONFIG = {
  apps: [
    {
      client_id: 'Iv1.standin',
      client_secret: 'standin-secret',
      // Root path on the loopback IP: any path, and (GitHub's loopback rule) any port, is accepted.
      callback_url: 'http://127.0.0.1/',
      name: 'Standin MCP App',
      owner: 'standin-org',
    },
  ],
  users: [
    {
      id: 583231,
      login: 'octocat',
      name: 'The Octocat',
      email: 'octocat@github.com',
      emails: [
        { email: 'octocat@github.com', primary: true, verified: true, visibility: 'public' },
        { email: 'octocat@users.noreply.github.com', primary: false, verified: true, visibility: null },
      ],
      orgs: ['github', { login: 'octo-secret-club', private: true }],
      password: 'octocat-password',
      company: '@github',
      location: 'San Francisco',
      bio: null,
    },
    {
      id: 480938,
      login: 'hubot',
      name: 'Hubot',
      email: null, // private email
      emails: [
        { email: 'hubot@example.com', primary: true, verified: true, visibility: 'private' },
      ],
      orgs: [],
      password: 'hubot-password',
    },
  ],
};

function loadConfig() {
  const file = argValue('--config') ?? process.env.GITHUB_STANDIN_CONFIG;
  let cfg = {};
  if (file) cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  else if (process.env.GITHUB_STANDIN_CONFIG_JSON) cfg = JSON.parse(process.env.GITHUB_STANDIN_CONFIG_JSON);
  const apps = (cfg.apps ?? DEFAULT_CONFIG.apps).map((a, i) => {
    if (!a.client_id || !a.client_secret || !a.callback_url) {
      throw new Error(`apps[${i}] needs client_id, client_secret and callback_url`);
    }
    new URL(a.callback_url); // throws on a bad URL
    return { name: a.client_id, owner: 'standin-org', ...a };
  });
  let orgIds = 9919;
  const orgIdOf = new Map();
  const users = (cfg.users ?? DEFAULT_CONFIG.users).map((u, i) => {
    if (!u.login || !Number.isInteger(u.id)) throw new Error(`users[${i}] needs login and integer id`);
    const orgs = (u.orgs ?? []).map((o) => {
      const org = typeof o === 'string' ? { login: o } : { ...o };
      if (!org.id) {
        if (!orgIdOf.has(org.login)) orgIdOf.set(org.login, (orgIds += 1000));
        org.id = orgIdOf.get(org.login);
      }
      org.private = org.private === true;
      return org;
    });
    const emails = u.emails ?? (u.email
      ? [{ email: u.email, primary: true, verified: true, visibility: 'public' }]
      : []);
    return {
      name: null, email: null, company: null, blog: '', location: null, bio: null,
      password: `${u.login}-password`, created_at: '2011-01-25T18:44:36Z', updated_at: '2024-01-01T00:00:00Z',
      ...u, orgs, emails,
    };
  });
  return { apps, users };
}

let config;
try {
  config = loadConfig();
} catch (e) {
  console.error(`github-standin: bad configuration: ${e.message}`);
  process.exit(2);
}
const appById = (id) => config.apps.find((a) => a.client_id === id);
const userByLogin = (login) => config.users.find((u) => u.login.toLowerCase() === String(login ?? '').toLowerCase());

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------
const state = {
  codes: new Map(), // code -> { client_id, login, redirect_uri, scope, challenge, method, expires, used }
  tokens: new Map(), // token -> { access_token, client_id, login, scope, created_at, revoked }
  sessions: new Map(), // sid -> { csrf, login }
  grants: new Map(), // `${login}\0${client_id}` -> Set(scopes)
  requests: [], // token request log
  authorizations: [], // authorize request log
  rate: new Map(), // token|ip -> used
};
function resetState() {
  for (const v of Object.values(state)) {
    if (v instanceof Map) v.clear(); else if (Array.isArray(v)) v.length = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Scopes (https://docs.github.com/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps)
// ---------------------------------------------------------------------------------------------
const SCOPE_PARENT = {
  'repo:status': 'repo', repo_deployment: 'repo', public_repo: 'repo', 'repo:invite': 'repo', security_events: 'repo',
  'write:repo_hook': 'admin:repo_hook', 'read:repo_hook': 'write:repo_hook',
  'write:org': 'admin:org', 'read:org': 'write:org', 'manage_runners:org': 'admin:org',
  'write:public_key': 'admin:public_key', 'read:public_key': 'write:public_key',
  'read:user': 'user', 'user:email': 'user', 'user:follow': 'user',
  'read:project': 'project',
  'read:packages': 'write:packages',
  'write:gpg_key': 'admin:gpg_key', 'read:gpg_key': 'write:gpg_key',
  'write:ssh_signing_key': 'admin:ssh_signing_key', 'read:ssh_signing_key': 'write:ssh_signing_key',
  'manage_runners:enterprise': 'admin:enterprise', 'manage_billing:enterprise': 'admin:enterprise',
  'read:enterprise': 'admin:enterprise', 'read:audit_log': 'audit_log',
  'manage_billing:copilot': 'copilot',
};
const KNOWN_SCOPES = new Set([
  ...Object.keys(SCOPE_PARENT), ...Object.values(SCOPE_PARENT),
  'admin:org_hook', 'gist', 'notifications', 'delete_repo', 'delete:packages', 'codespace', 'workflow',
]);
function ancestors(s) {
  const out = [];
  for (let p = SCOPE_PARENT[s]; p; p = SCOPE_PARENT[p]) out.push(p);
  return out;
}
/** Space- or comma-separated scope string -> sorted, de-duplicated list of known scopes with
 *  scopes already implied by a requested parent dropped (GitHub: `user user:email` -> `user`). */
function normalizeScopes(raw) {
  const set = new Set(String(raw ?? '').split(/[\s,]+/).filter((s) => KNOWN_SCOPES.has(s)));
  return [...set].filter((s) => !ancestors(s).some((a) => set.has(a))).sort();
}
/** Does the granted list satisfy `needed` (itself, or an ancestor)? */
function hasScope(granted, needed) {
  return granted.includes(needed) || ancestors(needed).some((a) => granted.includes(a));
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function base62(n) {
  let s = '';
  while (s.length < n) {
    for (const b of crypto.randomBytes(n * 2)) {
      if (b < 248 && s.length < n) s += BASE62[b % 62];
    }
  }
  return s;
}
const newCode = () => crypto.randomBytes(10).toString('hex'); // 20 hex chars, like GitHub
const newToken = () => `gho_${base62(36)}`;
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const requestId = () => `${crypto.randomBytes(2).toString('hex').toUpperCase()}:${crypto.randomBytes(3).toString('hex').toUpperCase()}:${crypto.randomBytes(4).toString('hex').toUpperCase()}`;

function parseCookies(req) {
  const out = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = decodeURIComponent(part.slice(eq + 1).trim());
  }
  return out;
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 1 << 20) throw new Error('body too large');
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const ct = (req.headers['content-type'] ?? '').toLowerCase();
  if (ct.includes('application/json')) {
    try {
      const j = JSON.parse(text || '{}');
      return Object.fromEntries(Object.entries(j ?? {}).map(([k, v]) => [k, v == null ? '' : String(v)]));
    } catch {
      return { __invalid_json: text };
    }
  }
  return Object.fromEntries(new URLSearchParams(text));
}

function basicAuth(req) {
  const m = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return null;
  const dec = Buffer.from(m[1], 'base64').toString('utf8');
  const i = dec.indexOf(':');
  if (i < 0) return null;
  const d = (s) => { try { return decodeURIComponent(s); } catch { return s; } };
  return { id: d(dec.slice(0, i)), secret: d(dec.slice(i + 1)) };
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-length': Buffer.byteLength(body ?? ''), ...headers });
  res.end(body ?? '');
}
function redirect(res, location, headers = {}) {
  send(res, 302, `<html><body>You are being <a href="${esc(location)}">redirected</a>.</body></html>`, {
    location, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', ...headers,
  });
}
function withParams(url, params) {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.append(k, v);
  return u.href;
}

// ---------------------------------------------------------------------------------------------
// redirect_uri rule (docs "Authorizing OAuth apps" > Redirect URLs):
//   host (sub-domains allowed) and port must match the callback URL exactly, the path must be the
//   callback path or a subdirectory of it. Loopback IPs: the port need not match.
// ---------------------------------------------------------------------------------------------
function redirectAllowed(callbackUrl, redirectUri) {
  let cb;
  let ru;
  try { cb = new URL(callbackUrl); ru = new URL(redirectUri); } catch { return false; }
  if (cb.protocol !== ru.protocol) return false;
  if (ru.username || ru.password) return false;
  const loopback = /^(127\.0\.0\.1|\[::1\])$/.test(cb.hostname);
  const isIp = /^[\d.]+$|^\[/.test(cb.hostname);
  const hostOk = ru.hostname === cb.hostname || (!isIp && ru.hostname.endsWith(`.${cb.hostname}`));
  if (!hostOk) return false;
  if (!loopback && ru.port !== cb.port) return false;
  // raw path as sent (no ".." tricks): URL() already resolves dot segments, so compare the raw too
  if (/(^|\/)\.\.?(\/|$)/.test(String(redirectUri).split(/[?#]/)[0].replace(/^[a-z]+:\/\/[^/]*/i, ''))) return false;
  const cbPath = cb.pathname.endsWith('/') ? cb.pathname : `${cb.pathname}/`;
  return ru.pathname === cb.pathname || ru.pathname.startsWith(cbPath);
}

// ---------------------------------------------------------------------------------------------
// HTML pages
// ---------------------------------------------------------------------------------------------
function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;max-width:420px;margin:40px auto}label,input,button{display:block;margin:6px 0}
.flash-error{color:#b00;border:1px solid #b00;padding:8px}</style></head>
<body><div class="application-main">${body}</div>
<p><small>github-standin (test stand-in for github.com)</small></p></body></html>`;
}
function notFoundPage(res) {
  send(res, 404, page('Page not found · GitHub', '<h1>404</h1><p>This is not the web page you are looking for.</p>'), {
    'content-type': 'text/html; charset=utf-8',
  });
}
function loginPage({ csrf, returnTo, login, app, error }) {
  return page('Sign in to GitHub · GitHub', `
<h1>Sign in to GitHub</h1>
${app ? `<p>to continue to <strong id="oauth-app-name">${esc(app.name)}</strong></p>` : ''}
${error ? `<div class="flash flash-error" id="js-flash-container" role="alert">${esc(error)}</div>` : ''}
<form action="/session" accept-charset="UTF-8" method="post" id="login">
  <input type="hidden" name="authenticity_token" value="${esc(csrf)}">
  <input type="hidden" name="return_to" value="${esc(returnTo)}">
  <label for="login_field">Username or email address</label>
  <input type="text" name="login" id="login_field" autocomplete="username" autofocus value="${esc(login)}">
  <label for="password">Password</label>
  <input type="password" name="password" id="password" autocomplete="current-password">
  <input type="submit" name="commit" value="Sign in" class="btn btn-primary btn-block js-sign-in-button">
</form>`);
}
const SCOPE_TEXT = {
  user: 'Full access to your profile', 'read:user': 'Read all user profile data',
  'user:email': 'Access your email addresses (read-only)', 'user:follow': 'Follow and unfollow users',
  repo: 'Full control of private repositories', public_repo: 'Access public repositories',
  'read:org': 'Read org and team membership, read org projects', gist: 'Create gists',
};
function authorizePage({ app, user, params, csrf, scopes }) {
  const hidden = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('\n  ');
  const scopeList = scopes.length
    ? scopes.map((s) => `<li data-scope="${esc(s)}">${esc(s)}: ${esc(SCOPE_TEXT[s] ?? s)}</li>`).join('')
    : '<li data-scope="">Public data only (limited access to your public information)</li>';
  return page(`Authorize application`, `
<h1>Authorize ${esc(app.name)}</h1>
<p><strong>${esc(app.name)}</strong> by <strong>${esc(app.owner)}</strong> wants to access your
<strong id="authorizing-user">${esc(user.login)}</strong> account</p>
<ul class="oauth-scopes">${scopeList}</ul>
<form action="/login/oauth/authorize" accept-charset="UTF-8" method="post" id="oauth-authorize-form">
  <input type="hidden" name="authenticity_token" value="${esc(csrf)}">
  ${hidden}
  <button type="submit" name="authorize" value="0" id="js-oauth-cancel-btn" class="btn">Cancel</button>
  <button type="submit" name="authorize" value="1" id="js-oauth-authorize-btn" class="btn btn-primary">Authorize ${esc(app.owner)}</button>
</form>
<p>Authorizing will redirect to <strong id="redirect-host">${esc(new URL(params.redirect_uri ?? app.callback_url).origin)}</strong></p>`);
}

// ---------------------------------------------------------------------------------------------
// Sessions (cookie `_gh_sess`; `logged_in` / `dotcom_user` set too, like github.com)
// ---------------------------------------------------------------------------------------------
function getSession(req) {
  const sid = parseCookies(req)._gh_sess;
  return sid && state.sessions.has(sid) ? { sid, ...state.sessions.get(sid) } : null;
}
function newSession(login = null) {
  const sid = crypto.randomBytes(24).toString('base64url');
  const s = { csrf: crypto.randomBytes(32).toString('base64url'), login };
  state.sessions.set(sid, s);
  return { sid, ...s };
}
function sessionCookies(sess) {
  const c = [`_gh_sess=${sess.sid}; Path=/; HttpOnly; SameSite=Lax`];
  if (sess.login) {
    c.push(`user_session=${sess.sid}; Path=/; HttpOnly; SameSite=Lax`);
    c.push('logged_in=yes; Path=/; SameSite=Lax', `dotcom_user=${encodeURIComponent(sess.login)}; Path=/; SameSite=Lax`);
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Authorize endpoint
// ---------------------------------------------------------------------------------------------
const AUTH_PARAMS = ['client_id', 'redirect_uri', 'scope', 'state', 'login', 'allow_signup', 'prompt', 'code_challenge', 'code_challenge_method'];

function errorRedirect(res, target, error, description, anchor, stateParam) {
  redirect(res, withParams(target, {
    error, error_description: description, error_uri: `${AUTHZ_ERRORS_URI}#${anchor}`, state: stateParam,
  }));
}

/** Validates an authorize request. Either answers (error page / error redirect) and returns null,
 *  or returns { app, target, scopes, p }. */
function checkAuthorize(res, p) {
  const app = appById(p.client_id);
  if (!app) { notFoundPage(res); return null; }
  if (p.redirect_uri && !redirectAllowed(app.callback_url, p.redirect_uri)) {
    errorRedirect(res, app.callback_url, 'redirect_uri_mismatch',
      'The redirect_uri MUST match the registered callback URL for this application.', 'redirect-uri-mismatch', p.state);
    return null;
  }
  const target = p.redirect_uri || app.callback_url;
  if (p.code_challenge !== undefined || p.code_challenge_method !== undefined) {
    // GitHub supports S256 only. Its exact error for other methods is not documented; this is the
    // RFC 6749/7636 answer (invalid_request via redirect).
    if ((p.code_challenge_method ?? '') !== 'S256') {
      errorRedirect(res, target, 'invalid_request', 'Only S256 is supported as code_challenge_method.', 'invalid-request', p.state);
      return null;
    }
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(p.code_challenge ?? '')) {
      errorRedirect(res, target, 'invalid_request', 'The code_challenge is invalid.', 'invalid-request', p.state);
      return null;
    }
  }
  return { app, target, scopes: normalizeScopes(p.scope), p };
}

function issueCode(res, { app, target, scopes, p }, user, { remember = true } = {}) {
  const code = newCode();
  state.codes.set(code, {
    client_id: app.client_id, login: user.login, redirect_uri: target, redirect_uri_given: p.redirect_uri ?? null,
    scope: scopes, challenge: p.code_challenge ?? null, method: p.code_challenge ? 'S256' : null,
    expires: Date.now() + CODE_TTL_MS, used: false,
  });
  if (remember) { // the user authorized the app in a browser: later authorizes skip the consent page
    const key = `${user.login}\0${app.client_id}`;
    const g = state.grants.get(key) ?? new Set();
    for (const s of scopes) g.add(s);
    state.grants.set(key, g);
  }
  redirect(res, withParams(target, { code, state: p.state }));
}

function denied(res, target, stateParam) {
  errorRedirect(res, target, 'access_denied', 'The user has denied your application access.', 'access-denied', stateParam);
}

async function handleAuthorizeGet(req, res, url) {
  const p = {};
  for (const k of AUTH_PARAMS) if (url.searchParams.has(k)) p[k] = url.searchParams.get(k);
  const shortcutUser = req.headers['x-standin-user'] ?? url.searchParams.get('standin_user');
  const deny = req.headers['x-standin-deny'] === '1' || url.searchParams.get('standin_deny') === '1';
  state.authorizations.push({
    at: new Date().toISOString(), method: 'GET', ...p, shortcut_user: shortcutUser ?? null, standin_deny: deny,
  });
  const ok = checkAuthorize(res, p);
  if (!ok) return;
  if (deny) return denied(res, ok.target, p.state);
  if (shortcutUser) { // TEST-ONLY shortcut: no pages, act as this user
    const user = userByLogin(shortcutUser);
    if (!user) return send(res, 400, `github-standin: unknown standin user ${shortcutUser}\n`, { 'content-type': 'text/plain' });
    return issueCode(res, ok, user, { remember: false });
  }
  const sess = getSession(req);
  const user = sess?.login ? userByLogin(sess.login) : null;
  if (!user) {
    const q = new URLSearchParams({ client_id: ok.app.client_id, return_to: `${url.pathname}${url.search}` });
    if (p.login) q.set('login', p.login);
    return redirect(res, `/login?${q}`);
  }
  const granted = state.grants.get(`${user.login}\0${ok.app.client_id}`);
  if (granted && p.prompt !== 'consent' && ok.scopes.every((s) => hasScope([...granted], s))) {
    return issueCode(res, ok, user); // already authorized with these scopes: GitHub redirects at once
  }
  send(res, 200, authorizePage({ app: ok.app, user, params: p, csrf: sess.csrf, scopes: ok.scopes }), {
    'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache',
  });
}

async function handleAuthorizePost(req, res) {
  const f = await readBody(req);
  const p = {};
  for (const k of AUTH_PARAMS) if (f[k] !== undefined && f[k] !== '') p[k] = f[k];
  state.authorizations.push({ at: new Date().toISOString(), method: 'POST', ...p, authorize: f.authorize });
  const sess = getSession(req);
  if (!sess?.login || f.authenticity_token !== sess.csrf) {
    return send(res, 422, page('Unprocessable Entity', '<h1>422</h1><p>Invalid authenticity token.</p>'), { 'content-type': 'text/html; charset=utf-8' });
  }
  const ok = checkAuthorize(res, p);
  if (!ok) return;
  if (f.authorize !== '1') return denied(res, ok.target, p.state);
  issueCode(res, ok, userByLogin(sess.login));
}

function safeReturnTo(r) {
  return typeof r === 'string' && r.startsWith('/') && !r.startsWith('//') ? r : '/';
}

function handleLoginGet(req, res, url) {
  const sess = getSession(req) ?? newSession();
  const returnTo = safeReturnTo(url.searchParams.get('return_to'));
  if (sess.login && url.searchParams.get('return_to')) return redirect(res, returnTo);
  const app = appById(url.searchParams.get('client_id'));
  send(res, 200, loginPage({ csrf: sess.csrf, returnTo, login: url.searchParams.get('login') ?? '', app }), {
    'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', 'set-cookie': sessionCookies(sess),
  });
}

async function handleSessionPost(req, res) {
  const f = await readBody(req);
  const sess = getSession(req);
  if (!sess || f.authenticity_token !== sess.csrf) {
    return send(res, 422, page('Unprocessable Entity', '<h1>422</h1><p>Invalid authenticity token.</p>'), { 'content-type': 'text/html; charset=utf-8' });
  }
  const returnTo = safeReturnTo(f.return_to);
  const user = config.users.find((u) => (u.login.toLowerCase() === String(f.login ?? '').toLowerCase()
    || u.emails.some((e) => e.email.toLowerCase() === String(f.login ?? '').toLowerCase())));
  if (!user || user.password !== f.password) {
    let app = null;
    try { app = appById(new URL(returnTo, 'http://x').searchParams.get('client_id')); } catch { /* ignore */ }
    return send(res, 200, loginPage({ csrf: sess.csrf, returnTo, login: f.login ?? '', app, error: 'Incorrect username or password.' }), {
      'content-type': 'text/html; charset=utf-8',
    });
  }
  state.sessions.delete(sess.sid); // new session id on login
  const fresh = newSession(user.login);
  redirect(res, returnTo, { 'set-cookie': sessionCookies(fresh) });
}

function handleLogout(req, res) {
  const sess = getSession(req);
  if (sess) state.sessions.delete(sess.sid);
  redirect(res, '/', {
    'set-cookie': ['_gh_sess', 'user_session', 'logged_in', 'dotcom_user']
      .map((n) => `${n}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT`),
  });
}

// ---------------------------------------------------------------------------------------------
// Token endpoint
// ---------------------------------------------------------------------------------------------
function tokenAnswer(req, res, obj) {
  const accept = (req.headers.accept ?? '').toLowerCase();
  if (accept.includes('application/json')) {
    return send(res, 200, JSON.stringify(obj), { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  }
  if (accept.includes('application/xml')) {
    const inner = Object.entries(obj).map(([k, v]) => `<${k}>${esc(v)}</${k}>`).join('');
    return send(res, 200, `<OAuth>${inner}</OAuth>`, { 'content-type': 'application/xml; charset=utf-8', 'cache-control': 'no-store' });
  }
  send(res, 200, new URLSearchParams(obj).toString(), {
    'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'cache-control': 'no-store',
  });
}
const TOKEN_ERRORS = {
  incorrect_client_credentials: ['The client_id and/or client_secret passed are incorrect.', `${TOKEN_ERRORS_URI}#incorrect-client-credentials`],
  redirect_uri_mismatch: ['The redirect_uri MUST match the registered callback URL for this application.', `${AUTHZ_ERRORS_URI}#redirect-uri-mismatch2`],
  bad_verification_code: ['The code passed is incorrect or expired.', `${TOKEN_ERRORS_URI}#bad-verification-code`],
  unverified_user_email: ['The user must have a verified primary email.', `${TOKEN_ERRORS_URI}#unverified-user-email`],
  bad_refresh_token: ['The refresh token passed is incorrect or expired.', `${TOKEN_ERRORS_URI}#bad-refresh-token`],
  unsupported_grant_type: ['The grant type is not supported.', `${TOKEN_ERRORS_URI}`],
};
function tokenError(req, res, error, description) {
  const [d, uri] = TOKEN_ERRORS[error];
  tokenAnswer(req, res, { error, error_description: description ?? d, error_uri: uri });
}

async function handleAccessToken(req, res, url) {
  const body = await readBody(req);
  const p = { ...Object.fromEntries(url.searchParams), ...body };
  const basic = basicAuth(req);
  const clientId = basic?.id ?? p.client_id;
  const clientSecret = basic?.secret ?? p.client_secret;
  const entry = {
    at: new Date().toISOString(),
    client_id: clientId ?? null,
    client_auth: basic ? 'basic' : (p.client_secret !== undefined ? 'body' : 'none'),
    grant_type: p.grant_type ?? null,
    code: p.code ?? null,
    redirect_uri: p.redirect_uri ?? null,
    has_code_verifier: p.code_verifier !== undefined && p.code_verifier !== '',
    accept: req.headers.accept ?? null,
    content_type: req.headers['content-type'] ?? null,
    user_agent: req.headers['user-agent'] ?? null,
    result: null,
  };
  state.requests.push(entry);
  const fail = (error, description) => { entry.result = error; tokenError(req, res, error, description); };

  const app = appById(clientId);
  if (!app || !clientSecret || app.client_secret !== clientSecret) return fail('incorrect_client_credentials');
  if (p.grant_type === 'refresh_token') return fail('bad_refresh_token');
  if (p.grant_type && p.grant_type !== 'authorization_code') return fail('unsupported_grant_type');
  const c = state.codes.get(p.code ?? '');
  if (!c || c.used || c.client_id !== app.client_id || Date.now() > c.expires) return fail('bad_verification_code');
  if (p.redirect_uri && p.redirect_uri !== c.redirect_uri) return fail('redirect_uri_mismatch');
  entry.code_had_challenge = Boolean(c.challenge);
  if (c.challenge) {
    const v = p.code_verifier ?? '';
    const computed = crypto.createHash('sha256').update(v).digest('base64url');
    if (!v) return fail('bad_verification_code', 'The code_verifier is required because a code_challenge was sent in the authorization request.');
    if (computed !== c.challenge) {
      return fail('bad_verification_code', 'The code_verifier does not match the code_challenge sent in the authorization request.');
    }
  }
  const user = userByLogin(c.login);
  const primary = user.emails.find((e) => e.primary);
  if (primary && !primary.verified) return fail('unverified_user_email');
  c.used = true;
  const token = newToken();
  const scope = c.scope.join(',');
  state.tokens.set(token, {
    access_token: token, client_id: app.client_id, login: user.login, scope, scopes: c.scope,
    created_at: new Date().toISOString(), revoked: false, id: state.tokens.size + 1,
  });
  entry.result = 'ok';
  tokenAnswer(req, res, { access_token: token, scope, token_type: 'bearer' }); // GitHub's order
}

// ---------------------------------------------------------------------------------------------
// REST API
// ---------------------------------------------------------------------------------------------
function apiBase(ctx) { return `${ctx.origin}${ctx.prefix}`; }

function apiSend(res, ctx, status, obj, extra = {}) {
  const body = obj === undefined ? '' : JSON.stringify(obj, null, 2);
  const key = ctx.token ?? `ip:${ctx.ip}`;
  const limit = ctx.token ? 5000 : 60;
  const used = (state.rate.get(key) ?? 0) + 1;
  state.rate.set(key, used);
  const headers = {
    'x-github-media-type': 'github.v3; format=json',
    'x-github-api-version-selected': API_VERSION,
    'x-github-request-id': requestId(),
    'x-ratelimit-limit': String(limit),
    'x-ratelimit-remaining': String(Math.max(0, limit - used)),
    'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
    'x-ratelimit-used': String(used),
    'x-ratelimit-resource': 'core',
    'access-control-allow-origin': '*',
    'access-control-expose-headers': 'ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset',
    ...(obj === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    ...extra,
  };
  if (ctx.tokenInfo) headers['x-oauth-scopes'] = ctx.tokenInfo.scopes.join(', ');
  if (ctx.accepted !== undefined) headers['x-accepted-oauth-scopes'] = ctx.accepted;
  send(res, status, body, headers);
}
function apiError(res, ctx, status, message, doc = `${DOCS}/rest`) {
  apiSend(res, ctx, status, { message, documentation_url: doc, status: String(status) });
}

function authenticate(req, res, ctx, doc) {
  const m = /^(?:bearer|token)\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!req.headers.authorization) { apiError(res, ctx, 401, 'Requires authentication', doc); return null; }
  const info = m ? state.tokens.get(m[1]) : null;
  if (!info || info.revoked) { apiError(res, ctx, 401, 'Bad credentials'); return null; }
  ctx.token = m[1];
  ctx.tokenInfo = info;
  return { info, user: userByLogin(info.login) };
}

const b64 = (s) => Buffer.from(s).toString('base64');
function simpleUser(ctx, u) {
  const api = apiBase(ctx);
  const a = `${api}/users/${u.login}`;
  return {
    login: u.login,
    id: u.id,
    node_id: b64(`04:User${u.id}`),
    avatar_url: `https://avatars.githubusercontent.com/u/${u.id}?v=4`,
    gravatar_id: '',
    url: a,
    html_url: `${ctx.origin}/${u.login}`,
    followers_url: `${a}/followers`,
    following_url: `${a}/following{/other_user}`,
    gists_url: `${a}/gists{/gist_id}`,
    starred_url: `${a}/starred{/owner}{/repo}`,
    subscriptions_url: `${a}/subscriptions`,
    organizations_url: `${a}/orgs`,
    repos_url: `${a}/repos`,
    events_url: `${a}/events{/privacy}`,
    received_events_url: `${a}/received_events`,
    type: 'User',
    user_view_type: 'public',
    site_admin: u.site_admin === true,
  };
}
function fullUser(ctx, u, scopes) {
  const repos = reposOf(u);
  const out = {
    ...simpleUser(ctx, u),
    name: u.name ?? null,
    company: u.company ?? null,
    blog: u.blog ?? '',
    location: u.location ?? null,
    email: u.email ?? null,
    hireable: null,
    bio: u.bio ?? null,
    twitter_username: null,
    notification_email: null,
    public_repos: repos.filter((r) => !r.private).length,
    public_gists: 0,
    followers: u.followers ?? 0,
    following: u.following ?? 0,
    created_at: u.created_at,
    updated_at: u.updated_at,
  };
  if (hasScope(scopes, 'user')) {
    const priv = repos.filter((r) => r.private).length;
    Object.assign(out, {
      private_gists: 0, total_private_repos: priv, owned_private_repos: priv, disk_usage: 0, collaborators: 0,
      two_factor_authentication: true,
      plan: { name: 'free', space: 976562499, collaborators: 0, private_repos: 10000 },
    });
  }
  return out;
}
function orgJson(ctx, o) {
  const a = `${apiBase(ctx)}/orgs/${o.login}`;
  return {
    login: o.login, id: o.id, node_id: b64(`012:Organization${o.id}`), url: a,
    repos_url: `${a}/repos`, events_url: `${a}/events`, hooks_url: `${a}/hooks`, issues_url: `${a}/issues`,
    members_url: `${a}/members{/member}`, public_members_url: `${a}/public_members{/member}`,
    avatar_url: `https://avatars.githubusercontent.com/u/${o.id}?v=4`, description: o.description ?? null,
  };
}
function reposOf(u) {
  return u.repos ?? [
    { name: 'hello-world', private: false, description: 'My first repository on GitHub!' },
    { name: 'secret-plans', private: true, description: 'Private repository' },
  ];
}
function repoJson(ctx, u, r, i) {
  const id = u.id * 100 + i + 1;
  const full = `${u.login}/${r.name}`;
  const a = `${apiBase(ctx)}/repos/${full}`;
  return {
    id, node_id: b64(`010:Repository${id}`), name: r.name, full_name: full, private: r.private === true,
    owner: simpleUser(ctx, u), html_url: `${ctx.origin}/${full}`, description: r.description ?? null,
    fork: false, url: a, clone_url: `${ctx.origin}/${full}.git`,
    created_at: '2020-01-01T00:00:00Z', updated_at: '2024-01-01T00:00:00Z', pushed_at: '2024-01-01T00:00:00Z',
    homepage: null, size: 1, stargazers_count: r.stargazers_count ?? 0, watchers_count: 0,
    language: r.language ?? null, forks_count: 0, open_issues_count: 0, archived: false, disabled: false,
    visibility: r.private ? 'private' : 'public', default_branch: 'main',
    permissions: { admin: true, maintain: true, push: true, triage: true, pull: true },
  };
}

function paginate(url, arr) {
  const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page')) || 30));
  const pageNo = Math.max(1, Number(url.searchParams.get('page')) || 1);
  return arr.slice((pageNo - 1) * perPage, pageNo * perPage);
}

async function handleApi(req, res, url, ctx, path) {
  const m = req.method;
  if (m === 'GET' && path === '/user') {
    ctx.accepted = '';
    const a = authenticate(req, res, ctx, `${DOCS}/rest/users/users#get-the-authenticated-user`);
    if (!a) return;
    return apiSend(res, ctx, 200, fullUser(ctx, a.user, a.info.scopes), { etag: `W/"${crypto.randomBytes(16).toString('hex')}"`, 'last-modified': new Date().toUTCString() });
  }
  if (m === 'GET' && path === '/user/emails') {
    ctx.accepted = 'user, user:email';
    const doc = `${DOCS}/rest/users/emails#list-email-addresses-for-the-authenticated-user`;
    const a = authenticate(req, res, ctx, doc);
    if (!a) return;
    if (!hasScope(a.info.scopes, 'user:email')) return apiError(res, ctx, 404, 'Not Found', doc);
    return apiSend(res, ctx, 200, paginate(url, a.user.emails.map((e) => ({
      email: e.email, primary: e.primary === true, verified: e.verified === true, visibility: e.visibility ?? null,
    }))));
  }
  if (m === 'GET' && path === '/user/orgs') {
    ctx.accepted = 'admin:org, read:org, repo, user, write:org';
    const a = authenticate(req, res, ctx, `${DOCS}/rest/orgs/orgs#list-organizations-for-the-authenticated-user`);
    if (!a) return;
    const seePrivate = hasScope(a.info.scopes, 'read:org') || hasScope(a.info.scopes, 'user');
    return apiSend(res, ctx, 200, paginate(url, a.user.orgs.filter((o) => seePrivate || !o.private).map((o) => orgJson(ctx, o))));
  }
  if (m === 'GET' && path === '/user/repos') {
    ctx.accepted = '';
    const a = authenticate(req, res, ctx, `${DOCS}/rest/repos/repos#list-repositories-for-the-authenticated-user`);
    if (!a) return;
    const seePrivate = hasScope(a.info.scopes, 'repo');
    const list = reposOf(a.user).map((r, i) => repoJson(ctx, a.user, r, i)).filter((r) => seePrivate || !r.private);
    return apiSend(res, ctx, 200, paginate(url, list));
  }
  let mm;
  if ((mm = /^\/users\/([^/]+)$/.exec(path)) && m === 'GET') {
    const u = userByLogin(decodeURIComponent(mm[1]));
    if (!u) return apiError(res, ctx, 404, 'Not Found', `${DOCS}/rest/users/users#get-a-user`);
    const { plan, ...pub } = fullUser(ctx, u, []); // eslint-disable-line no-unused-vars
    return apiSend(res, ctx, 200, pub);
  }
  if ((mm = /^\/applications\/([^/]+)\/(token|grant)$/.exec(path)) && ['POST', 'PATCH', 'DELETE'].includes(m)) {
    const doc = `${DOCS}/rest/apps/oauth-applications`;
    const cid = decodeURIComponent(mm[1]);
    const creds = basicAuth(req);
    const app = appById(cid);
    const body = await readBody(req);
    if (!creds || !app || creds.id !== cid || creds.secret !== app.client_secret) return apiError(res, ctx, 404, 'Not Found', doc);
    if (!body.access_token) {
      return apiSend(res, ctx, 422, { message: 'Invalid request.\n\n"access_token" wasn\'t supplied.', documentation_url: doc, status: '422' });
    }
    const info = state.tokens.get(body.access_token);
    if (!info || info.revoked || info.client_id !== cid) return apiError(res, ctx, 404, 'Not Found', doc);
    if (m === 'DELETE') {
      if (mm[2] === 'grant') {
        for (const t of state.tokens.values()) if (t.login === info.login && t.client_id === cid) t.revoked = true;
        state.grants.delete(`${info.login}\0${cid}`);
      } else {
        info.revoked = true;
      }
      return apiSend(res, ctx, 204, undefined);
    }
    if (m === 'POST' && mm[2] === 'token') {
      return apiSend(res, ctx, 200, {
        id: info.id, url: `${apiBase(ctx)}/authorizations/${info.id}`,
        app: { name: app.name, url: app.callback_url, client_id: cid },
        token: info.access_token, hashed_token: crypto.createHash('sha256').update(info.access_token).digest('hex'),
        token_last_eight: info.access_token.slice(-8), note: null, note_url: null,
        created_at: info.created_at, updated_at: info.created_at, scopes: info.scopes, fingerprint: null,
        expires_at: null, user: simpleUser(ctx, userByLogin(info.login)),
      });
    }
  }
  if (m === 'GET' && path === '/rate_limit') {
    const core = { limit: 5000, used: 0, remaining: 5000, reset: Math.floor(Date.now() / 1000) + 3600 };
    return apiSend(res, ctx, 200, { resources: { core }, rate: core });
  }
  if (m === 'GET' && (path === '/' || path === '')) {
    return apiSend(res, ctx, 200, { current_user_url: `${apiBase(ctx)}/user`, emails_url: `${apiBase(ctx)}/user/emails` });
  }
  apiError(res, ctx, 404, 'Not Found');
}

// ---------------------------------------------------------------------------------------------
// Test-only introspection (/_standin/...)
// ---------------------------------------------------------------------------------------------
function json(res, status, obj) {
  send(res, status, JSON.stringify(obj, null, 2), { 'content-type': 'application/json; charset=utf-8' });
}
function handleStandin(req, res, path) {
  if (req.method === 'GET' && path === '/_standin/tokens') {
    return json(res, 200, [...state.tokens.values()].map(({ id, scopes, ...t }) => t)); // eslint-disable-line no-unused-vars
  }
  if (req.method === 'GET' && path === '/_standin/requests') return json(res, 200, state.requests);
  if (req.method === 'GET' && path === '/_standin/authorizations') return json(res, 200, state.authorizations);
  if (req.method === 'GET' && path === '/_standin/config') return json(res, 200, config);
  if (req.method === 'POST' && path === '/_standin/reset') { resetState(); return send(res, 204, ''); }
  // A GitHub rename: the login changes, the numeric id stays (and the old login is free again).
  if (req.method === 'POST' && path === '/_standin/rename') {
    return readBody(req).then(({ from, to }) => {
      const user = userByLogin(from);
      if (!user || !to || userByLogin(to)) return json(res, 422, { message: 'Validation Failed' });
      user.login = to;
      return json(res, 200, { id: user.id, login: user.login });
    });
  }
  json(res, 404, { message: 'Not Found' });
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------
const UA_MESSAGE = 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header '
  + '(https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). '
  + 'Check https://developer.github.com for other possible causes.\n';

const server = http.createServer(async (req, res) => {
  const origin = `http://${req.headers.host ?? `${HOST}:${server.address().port}`}`;
  const url = new URL(req.url, origin);
  let path = url.pathname;
  if (DEBUG) console.error(`github-standin: ${req.method} ${req.url}`);
  try {
    if (path === '/login/oauth/authorize') {
      if (req.method === 'GET') return await handleAuthorizeGet(req, res, url);
      if (req.method === 'POST') return await handleAuthorizePost(req, res);
    }
    if (path === '/login/oauth/access_token' && req.method === 'POST') return await handleAccessToken(req, res, url);
    if (path === '/login' && req.method === 'GET') return handleLoginGet(req, res, url);
    if (path === '/session' && req.method === 'POST') return await handleSessionPost(req, res);
    if (path === '/logout') return handleLogout(req, res);
    if (path.startsWith('/_standin/')) return await handleStandin(req, res, path);
    if (path.startsWith('/login') || path === '/session') return notFoundPage(res);

    // Everything else is the REST API (api.github.com), also under /api/v3 (GitHub Enterprise Server).
    let prefix = '';
    if (path === '/api/v3' || path.startsWith('/api/v3/')) { prefix = '/api/v3'; path = path.slice(7) || '/'; }
    const ctx = { origin, prefix, ip: req.socket.remoteAddress };
    if (!req.headers['user-agent']) {
      return send(res, 403, UA_MESSAGE, { 'content-type': 'text/plain; charset=utf-8' });
    }
    return await handleApi(req, res, url, ctx, path);
  } catch (e) {
    console.error(`github-standin: ${req.method} ${req.url}: ${e.stack ?? e}`);
    if (!res.headersSent) send(res, 500, JSON.stringify({ message: 'Server Error' }), { 'content-type': 'application/json' });
    else res.destroy();
  }
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ url: `http://${HOST}:${port}`, port })}\n`);
  console.error(`github-standin: listening on http://${HOST}:${port} (${config.apps.length} app(s), ${config.users.length} user(s))`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { server.close(); server.closeAllConnections?.(); process.exit(0); });
}
