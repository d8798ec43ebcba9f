// Self-test of the GitHub stand-in: node --test (in this folder)
// One server with a custom config for most tests, plus one with the defaults.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { authorizeAs, exchangeCode, pkcePair, startGitHub } from './harness.mjs';

const CB = 'http://127.0.0.1/oauth/callback';
const APP = { client_id: 'Ov23liTestApp', client_secret: 'test-secret', callback_url: CB, name: 'Test MCP' };
const HOSTED = { client_id: 'Ov23liHosted', client_secret: 'hosted-secret', callback_url: 'https://app.example.com:8443/auth' };
const CONFIG = {
  apps: [APP, HOSTED],
  users: [
    {
      id: 1, login: 'octocat', name: 'The Octocat', email: 'octocat@github.com', password: 'pw1',
      emails: [{ email: 'octocat@github.com', primary: true, verified: true, visibility: 'public' }],
      orgs: ['github', { login: 'hidden-org', private: true }],
    },
    {
      id: 2, login: 'hubot', name: 'Hubot', email: null, password: 'pw2',
      emails: [{ email: 'hubot@example.com', primary: true, verified: true, visibility: 'private' }],
    },
    {
      id: 3, login: 'newbie', name: null, email: null, password: 'pw3',
      emails: [{ email: 'newbie@example.com', primary: true, verified: false, visibility: 'private' }],
    },
  ],
};
const UA = { 'user-agent': 'github-standin-selftest' };

let gh;
let url;
let tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-standin-'));
  const file = path.join(tmp, 'config.json');
  fs.writeFileSync(file, JSON.stringify(CONFIG));
  gh = await startGitHub({ configFile: file });
  url = gh.url;
});
after(async () => {
  await gh?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const creds = { client_id: APP.client_id, client_secret: APP.client_secret };

async function codeFor(login, params = {}) {
  const loc = await authorizeAs(url, { client_id: APP.client_id, redirect_uri: CB, state: 's1', ...params }, login);
  assert.equal(loc.searchParams.get('error'), null, loc.href);
  return loc.searchParams.get('code');
}
async function tokenFor(login, scope) {
  const code = await codeFor(login, { scope });
  const r = await exchangeCode(url, { ...creds, code });
  assert.ok(r.body.access_token, JSON.stringify(r.body));
  return r.body.access_token;
}
function api(p, token, headers = {}) {
  return fetch(`${url}${p}`, { headers: { ...UA, ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });
}
function rawGet(p, headers = {}) { // node:http sends no User-Agent unless told
  return new Promise((resolve, reject) => {
    http.get(`${url}${p}`, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
}

describe('authorize endpoint', () => {
  test('shortcut header: redirect with 20-hex code and state', async () => {
    const loc = await authorizeAs(url, { client_id: APP.client_id, redirect_uri: CB, state: 'abc', scope: 'read:user' }, 'octocat');
    assert.equal(`${loc.origin}${loc.pathname}`, CB);
    assert.match(loc.searchParams.get('code'), /^[0-9a-f]{20}$/);
    assert.equal(loc.searchParams.get('state'), 'abc');
  });

  test('shortcut query standin_user, no redirect_uri -> registered callback; no state when none sent', async () => {
    const res = await fetch(`${url}/login/oauth/authorize?client_id=${APP.client_id}&standin_user=hubot`, { redirect: 'manual' });
    const loc = new URL(res.headers.get('location'));
    assert.equal(res.status, 302);
    assert.equal(`${loc.origin}${loc.pathname}`, CB);
    assert.ok(loc.searchParams.get('code'));
    assert.equal(loc.searchParams.has('state'), false);
  });

  test('unknown client_id -> 404 HTML page, no redirect', async () => {
    const res = await fetch(`${url}/login/oauth/authorize?client_id=nope&redirect_uri=${encodeURIComponent(CB)}`, { redirect: 'manual' });
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type'), /text\/html/);
    assert.equal(res.headers.get('location'), null);
  });

  test('redirect_uri rules: subdirectory and loopback port ok; others -> redirect_uri_mismatch to callback', async () => {
    for (const ok of [`${CB}/sub/dir`, 'http://127.0.0.1:43123/oauth/callback']) {
      const loc = await authorizeAs(url, { client_id: APP.client_id, redirect_uri: ok }, 'octocat');
      assert.ok(loc.href.startsWith(ok), `${ok} -> ${loc.href}`);
      assert.ok(loc.searchParams.get('code'));
    }
    for (const bad of ['http://127.0.0.1/other', 'http://127.0.0.1/oauth/callbackx', 'http://localhost/oauth/callback',
      'https://127.0.0.1/oauth/callback', 'http://127.0.0.1/oauth/callback/../../evil']) {
      const loc = await authorizeAs(url, { client_id: APP.client_id, redirect_uri: bad, state: 'st' }, 'octocat');
      assert.equal(`${loc.origin}${loc.pathname}`, CB, bad);
      assert.equal(loc.searchParams.get('error'), 'redirect_uri_mismatch', bad);
      assert.equal(loc.searchParams.get('error_description'), 'The redirect_uri MUST match the registered callback URL for this application.');
      assert.match(loc.searchParams.get('error_uri'), /^https:\/\/docs\.github\.com\/.*#redirect-uri-mismatch$/);
      assert.equal(loc.searchParams.get('state'), 'st');
      assert.equal(loc.searchParams.get('code'), null);
    }
    // non-loopback host: port must match, sub-domains allowed
    const h = { client_id: HOSTED.client_id };
    assert.ok((await authorizeAs(url, { ...h, redirect_uri: 'https://x.app.example.com:8443/auth/cb' }, 'octocat')).searchParams.get('code'));
    assert.equal((await authorizeAs(url, { ...h, redirect_uri: 'https://app.example.com:9443/auth' }, 'octocat')).searchParams.get('error'), 'redirect_uri_mismatch');
  });

  test('standin_deny=1 -> access_denied redirect with GitHub text', async () => {
    const res = await fetch(`${url}/login/oauth/authorize?client_id=${APP.client_id}&redirect_uri=${encodeURIComponent(CB)}&state=q&standin_deny=1`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const loc = res.headers.get('location');
    assert.ok(loc.startsWith(`${CB}?error=access_denied&error_description=The+user+has+denied+your+application+access.&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps%2Fmanaging-oauth-apps%2Ftroubleshooting-authorization-request-errors%2F%23access-denied&state=q`), loc);
  });

  test('PKCE: only S256 accepted at authorize', async () => {
    const { challenge } = pkcePair();
    const loc = await authorizeAs(url, { client_id: APP.client_id, code_challenge: challenge, code_challenge_method: 'plain', state: 'p' }, 'octocat');
    assert.equal(loc.searchParams.get('error'), 'invalid_request');
    assert.equal(loc.searchParams.get('state'), 'p');
  });
});

describe('token endpoint', () => {
  test('JSON answer with Accept: application/json; scopes normalised', async () => {
    const code = await codeFor('octocat', { scope: 'user:email read:user bogus:scope' });
    const r = await exchangeCode(url, { ...creds, code, redirect_uri: CB });
    assert.equal(r.status, 200);
    assert.match(r.contentType, /^application\/json/);
    assert.deepEqual(Object.keys(r.body), ['access_token', 'scope', 'token_type']);
    assert.match(r.body.access_token, /^gho_[A-Za-z0-9]{36}$/);
    assert.equal(r.body.token_type, 'bearer');
    assert.equal(r.body.scope, 'read:user,user:email');
  });

  test('parent scope swallows children; empty scope -> ""', async () => {
    let r = await exchangeCode(url, { ...creds, code: await codeFor('octocat', { scope: 'user user:email,repo public_repo' }) });
    assert.equal(r.body.scope, 'repo,user');
    r = await exchangeCode(url, { ...creds, code: await codeFor('octocat') });
    assert.equal(r.body.scope, '');
  });

  test('form-encoded answer without Accept', async () => {
    const code = await codeFor('octocat', { scope: 'read:user' });
    const r = await exchangeCode(url, { ...creds, code }, { json: false });
    assert.equal(r.status, 200);
    assert.match(r.contentType, /^application\/x-www-form-urlencoded/);
    assert.match(r.text, /^access_token=gho_[A-Za-z0-9]{36}&scope=read%3Auser&token_type=bearer$/);
  });

  test('JSON request body and HTTP Basic client auth', async () => {
    const code = await codeFor('hubot');
    const res = await fetch(`${url}/login/oauth/access_token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', accept: 'application/json',
        authorization: `Basic ${Buffer.from(`${APP.client_id}:${APP.client_secret}`).toString('base64')}`,
      },
      body: JSON.stringify({ code }),
    });
    const body = await res.json();
    assert.match(body.access_token, /^gho_/);
    const log = (await gh.requests()).at(-1);
    assert.equal(log.client_auth, 'basic');
    assert.equal(log.result, 'ok');
  });

  const errorCases = [
    ['bad code', async () => ({ ...creds, code: '0123456789abcdef0123' }), 'bad_verification_code', 'The code passed is incorrect or expired.'],
    ['bad secret', async () => ({ ...creds, client_secret: 'wrong', code: await codeFor('octocat') }), 'incorrect_client_credentials',
      'The client_id and/or client_secret passed are incorrect.'],
    ['missing secret', async () => ({ client_id: APP.client_id, code: await codeFor('octocat') }), 'incorrect_client_credentials'],
    ['redirect_uri differs from authorize', async () => ({ ...creds, code: await codeFor('octocat'), redirect_uri: `${CB}/x` }),
      'redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.'],
    ['unverified primary email', async () => ({ ...creds, code: await codeFor('newbie') }), 'unverified_user_email',
      'The user must have a verified primary email.'],
  ];
  for (const [name, form, error, description] of errorCases) {
    test(`error as HTTP 200: ${name} -> ${error} (JSON and form)`, async () => {
      const r = await exchangeCode(url, await form());
      assert.equal(r.status, 200);
      assert.equal(r.body.error, error);
      if (description) assert.equal(r.body.error_description, description);
      assert.match(r.body.error_uri, /^https:\/\/docs\.github\.com\//);
      assert.equal(r.body.access_token, undefined);
      const f = await exchangeCode(url, await form(), { json: false });
      assert.equal(f.status, 200);
      assert.equal(f.body.get('error'), error);
      assert.ok(f.body.get('error_description'));
    });
  }

  test('code is single use', async () => {
    const code = await codeFor('octocat');
    assert.ok((await exchangeCode(url, { ...creds, code })).body.access_token);
    const again = await exchangeCode(url, { ...creds, code });
    assert.equal(again.status, 200);
    assert.equal(again.body.error, 'bad_verification_code');
  });

  test('code bound to its client', async () => {
    const code = await codeFor('octocat');
    const r = await exchangeCode(url, { client_id: HOSTED.client_id, client_secret: HOSTED.client_secret, code });
    assert.equal(r.body.error, 'bad_verification_code');
  });

  test('PKCE: matching verifier ok; missing or wrong verifier -> bad_verification_code', async () => {
    const pk = pkcePair();
    const p = { code_challenge: pk.challenge, code_challenge_method: 'S256' };
    let r = await exchangeCode(url, { ...creds, code: await codeFor('octocat', p), code_verifier: pkcePair().verifier });
    assert.equal(r.status, 200);
    assert.equal(r.body.error, 'bad_verification_code');
    assert.match(r.body.error_description, /code_verifier/);
    r = await exchangeCode(url, { ...creds, code: await codeFor('octocat', p) });
    assert.equal(r.body.error, 'bad_verification_code');
    const code = await codeFor('octocat', p);
    r = await exchangeCode(url, { ...creds, code, code_verifier: pk.verifier });
    assert.match(r.body.access_token, /^gho_/);
    const log = (await gh.requests()).at(-1);
    assert.equal(log.has_code_verifier, true);
    assert.equal(log.code_had_challenge, true);
    assert.equal(log.accept, 'application/json');
  });
});

describe('REST API', () => {
  test('GET /user with Bearer and token schemes; headers', async () => {
    const t = await tokenFor('octocat', 'read:user user:email');
    for (const auth of [`Bearer ${t}`, `token ${t}`]) {
      const res = await fetch(`${url}/user`, { headers: { ...UA, authorization: auth } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-oauth-scopes'), 'read:user, user:email');
      assert.equal(res.headers.get('x-accepted-oauth-scopes'), '');
      assert.match(res.headers.get('x-github-media-type'), /^github\.v3/);
      assert.equal(res.headers.get('x-ratelimit-limit'), '5000');
      assert.ok(res.headers.get('x-ratelimit-remaining'));
      assert.ok(res.headers.get('x-ratelimit-reset'));
      const u = await res.json();
      assert.equal(u.login, 'octocat');
      assert.equal(u.id, 1);
      assert.equal(u.type, 'User');
      assert.equal(u.site_admin, false);
      assert.equal(u.email, 'octocat@github.com');
      for (const k of ['node_id', 'avatar_url', 'html_url', 'name', 'company', 'blog', 'location', 'bio',
        'public_repos', 'followers', 'following', 'created_at', 'updated_at']) assert.ok(k in u, k);
      assert.equal('plan' in u, false); // private fields need the `user` scope
    }
  });

  test('private email -> email null; user scope adds private fields', async () => {
    const u = await (await api('/user', await tokenFor('hubot', 'user'))).json();
    assert.equal(u.email, null);
    assert.ok(u.plan);
  });

  test('/api/v3 prefix (GitHub Enterprise Server)', async () => {
    const t = await tokenFor('octocat', 'read:user');
    const res = await api('/api/v3/user', t);
    assert.equal(res.status, 200);
    const u = await res.json();
    assert.equal(u.url, `${url}/api/v3/users/octocat`);
  });

  test('401: missing token, bad token', async () => {
    let res = await api('/user');
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), {
      message: 'Requires authentication',
      documentation_url: 'https://docs.github.com/rest/users/users#get-the-authenticated-user',
      status: '401',
    });
    res = await api('/user', 'gho_notavalidtokennotavalidtokennotava');
    assert.equal(res.status, 401);
    const b = await res.json();
    assert.equal(b.message, 'Bad credentials');
    assert.equal(b.status, '401');
  });

  test('no User-Agent -> 403 administrative rules', async () => {
    const t = await tokenFor('octocat', 'read:user');
    const r = await rawGet('/user', { authorization: `Bearer ${t}` });
    assert.equal(r.status, 403);
    assert.match(r.body, /^Request forbidden by administrative rules\. Please make sure your request has a User-Agent header/);
  });

  test('/user/emails needs user:email or user, else 404', async () => {
    let res = await api('/user/emails', await tokenFor('hubot', 'read:user'));
    assert.equal(res.status, 404);
    assert.equal((await res.json()).message, 'Not Found');
    for (const scope of ['user:email', 'user']) {
      res = await api('/user/emails', await tokenFor('hubot', scope));
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), [{ email: 'hubot@example.com', primary: true, verified: true, visibility: 'private' }]);
    }
  });

  test('/user/orgs: private memberships only with read:org', async () => {
    let orgs = await (await api('/user/orgs', await tokenFor('octocat', 'read:user'))).json();
    assert.deepEqual(orgs.map((o) => o.login), ['github']);
    orgs = await (await api('/user/orgs', await tokenFor('octocat', 'read:org'))).json();
    assert.deepEqual(orgs.map((o) => o.login), ['github', 'hidden-org']);
    assert.ok(Number.isInteger(orgs[0].id));
  });

  test('/user/repos: private repos only with repo', async () => {
    let repos = await (await api('/user/repos', await tokenFor('octocat', 'read:user'))).json();
    assert.ok(repos.length >= 1 && repos.every((r) => !r.private));
    repos = await (await api('/user/repos', await tokenFor('octocat', 'repo'))).json();
    assert.ok(repos.some((r) => r.private));
    assert.equal(repos[0].owner.login, 'octocat');
  });

  test('DELETE /applications/{client_id}/token revokes (204), bad app creds -> 404', async () => {
    const t = await tokenFor('octocat', 'read:user');
    const del = (secret) => fetch(`${url}/applications/${APP.client_id}/token`, {
      method: 'DELETE',
      headers: { ...UA, 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${APP.client_id}:${secret}`).toString('base64')}` },
      body: JSON.stringify({ access_token: t }),
    });
    assert.equal((await del('wrong')).status, 404);
    assert.equal((await api('/user', t)).status, 200);
    assert.equal((await del(APP.client_secret)).status, 204);
    assert.equal((await api('/user', t)).status, 401);
    const listed = (await gh.tokens()).find((x) => x.access_token === t);
    assert.equal(listed.revoked, true);
  });

  test('/_standin/tokens lists issued token strings', async () => {
    const t = await tokenFor('hubot', 'read:user');
    const list = await gh.tokens();
    assert.ok(list.some((x) => x.access_token === t && x.login === 'hubot' && x.client_id === APP.client_id));
  });
});

describe('interactive pages (fetch with a cookie jar)', () => {
  function browser() {
    const jar = new Map();
    return async function go(u, init = {}) {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await fetch(new URL(u, url), {
        ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) },
      });
      for (const sc of res.headers.getSetCookie()) {
        const [pair] = sc.split(';');
        const eq = pair.indexOf('=');
        const v = pair.slice(eq + 1);
        if (v === '') jar.delete(pair.slice(0, eq)); else jar.set(pair.slice(0, eq), v);
      }
      return { res, text: await res.text(), location: res.headers.get('location') };
    };
  }
  const field = (html, name) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1]?.replace(/&amp;/g, '&').replace(/&quot;/g, '"');
  const hiddenFields = (html) => Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)]
    .map(([, k, v]) => [k, v.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')]));
  const post = (go, p, form) => go(p, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form),
  });

  async function loginAndReachConsent(go, authorizeUrl, login, password) {
    let r = await go(authorizeUrl);
    assert.equal(r.res.status, 302);
    assert.match(r.location, /^\/login\?/);
    r = await go(r.location);
    assert.equal(r.res.status, 200);
    assert.match(r.text, /id="login_field"/);
    assert.match(r.text, /id="password"/);
    assert.match(r.text, /name="commit"/);
    const form = hiddenFields(r.text);
    // wrong password: page again with an error
    const bad = await post(go, '/session', { ...form, login, password: 'nope', commit: 'Sign in' });
    assert.equal(bad.res.status, 200);
    assert.match(bad.text, /Incorrect username or password\./);
    r = await post(go, '/session', { ...form, login, password, commit: 'Sign in' });
    assert.equal(r.res.status, 302);
    r = await go(r.location);
    assert.equal(r.res.status, 200);
    assert.match(r.text, /Authorize Test MCP/);
    assert.match(r.text, /id="js-oauth-authorize-btn"/);
    return r;
  }

  test('login -> authorize -> code; second authorize skips login and consent', async () => {
    const go = browser();
    const pk = pkcePair();
    const q = new URLSearchParams({
      client_id: APP.client_id, redirect_uri: CB, scope: 'read:user', state: 'i1',
      code_challenge: pk.challenge, code_challenge_method: 'S256',
    });
    const consent = await loginAndReachConsent(go, `/login/oauth/authorize?${q}`, 'octocat', 'pw1');
    const r = await post(go, '/login/oauth/authorize', { ...hiddenFields(consent.text), authorize: '1' });
    assert.equal(r.res.status, 302);
    const loc = new URL(r.location);
    assert.equal(loc.searchParams.get('state'), 'i1');
    const tok = await exchangeCode(url, { ...creds, code: loc.searchParams.get('code'), redirect_uri: CB, code_verifier: pk.verifier });
    assert.match(tok.body.access_token, /^gho_/);
    const me = await (await api('/user', tok.body.access_token)).json();
    assert.equal(me.login, 'octocat');

    // same browser, same scopes: straight back with a code
    const again = await go(`/login/oauth/authorize?${new URLSearchParams({ client_id: APP.client_id, redirect_uri: CB, scope: 'read:user', state: 'i2' })}`);
    assert.equal(again.res.status, 302);
    const l2 = new URL(again.location);
    assert.equal(l2.searchParams.get('state'), 'i2');
    assert.ok(l2.searchParams.get('code'));
    // more scopes: consent page again, but no login
    const more = await go(`/login/oauth/authorize?${new URLSearchParams({ client_id: APP.client_id, redirect_uri: CB, scope: 'read:user user:email' })}`);
    assert.equal(more.res.status, 200);
    assert.match(more.text, /Authorize Test MCP/);
    assert.equal(field(more.text, 'scope'), 'read:user user:email');
  });

  test('Cancel -> access_denied redirect', async () => {
    const go = browser();
    const q = new URLSearchParams({ client_id: APP.client_id, redirect_uri: CB, scope: 'user:email', state: 'c1' });
    const consent = await loginAndReachConsent(go, `/login/oauth/authorize?${q}`, 'hubot', 'pw2');
    const r = await post(go, '/login/oauth/authorize', { ...hiddenFields(consent.text), authorize: '0' });
    assert.equal(r.res.status, 302);
    const loc = new URL(r.location);
    assert.equal(loc.searchParams.get('error'), 'access_denied');
    assert.equal(loc.searchParams.get('error_description'), 'The user has denied your application access.');
    assert.equal(loc.searchParams.get('state'), 'c1');
  });

  test('authorize POST without the session cookie / CSRF token -> 422', async () => {
    const r = await fetch(`${url}/login/oauth/authorize`, {
      method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: APP.client_id, authorize: '1' }),
    });
    assert.equal(r.status, 422);
  });
});

describe('defaults and reset', () => {
  let d;
  before(async () => { d = await startGitHub(); });
  after(async () => { await d?.stop(); });

  test('default app Iv1.standin and users octocat/hubot work; reset clears tokens', async () => {
    const loc = await authorizeAs(d.url, { client_id: 'Iv1.standin', redirect_uri: 'http://127.0.0.1:8123/callback', scope: 'user:email' }, 'hubot');
    const code = loc.searchParams.get('code');
    assert.ok(code);
    const r = await exchangeCode(d.url, { client_id: 'Iv1.standin', client_secret: 'standin-secret', code });
    const emails = await (await fetch(`${d.url}/user/emails`, { headers: { ...UA, authorization: `token ${r.body.access_token}` } })).json();
    assert.equal(emails[0].visibility, 'private');
    const u = await (await fetch(`${d.url}/user`, { headers: { ...UA, authorization: `token ${r.body.access_token}` } })).json();
    assert.equal(u.email, null);
    assert.equal((await d.tokens()).length, 1);
    assert.equal((await d.requests()).length, 1);
    await d.reset();
    assert.equal((await d.tokens()).length, 0);
    assert.equal((await fetch(`${d.url}/user`, { headers: { ...UA, authorization: `token ${r.body.access_token}` } })).status, 401);
  });
});
