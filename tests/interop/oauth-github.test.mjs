// The official TypeScript SDK client, with its OAuth support, against the github-oauth example in
// authorization-server mode with the GitHub login, GitHub played by the stand-in
// (tests/github-standin, no npm dependencies):
//   401 -> protected-resource metadata -> AS metadata -> DCR -> authorize: OUR consent page (approved
//   through its form) -> GitHub's login and Authorize pages (the stand-in's, played with fetch and a
//   cookie jar) or its test-only `standin_user` shortcut -> /callback -> our code -> token -> tools
//   (whoami, my_repositories, admin_report) -> refresh -> tools again.
// Also: the GitHub user cancels (access_denied relayed to the client with state and iss), and the
// `allowed_users` allow-list. Every response the client (and the headless "browser") received is
// recorded and searched for the GitHub tokens the stand-in issued: none may appear.
// Needs the github-oauth binary (cargo build --examples).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { startGitHub } from '../github-standin/harness.mjs';
import { T, freePort, startHttpServer } from './lib.mjs';

const REDIRECT = 'http://127.0.0.1:9/oauth/callback';
const CLIENT_NAME = 'github-oauth interop test';

/**
 * Starts github-oauth (no --config: its defaults, i.e. authorization server with the GitHub login)
 * against the stand-in `gh`, with an in-memory store and the sealing key in `dir`.
 */
async function startGitHubOAuth(gh, dir, env = {}) {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const server = await startHttpServer('github-oauth', {
    port,
    env: {
      MCP_SERVER__PUBLIC_URL: origin,
      MCP_AUTH__AUTHORIZATION_SERVER__STORE: 'memory',
      MCP_AUTH__AUTHORIZATION_SERVER__SEALING_KEY_FILE: join(dir, `seal-${port}.key`),
      MCP_AUTH__GITHUB__AUTHORIZE_URL: `${gh.url}/login/oauth/authorize`,
      MCP_AUTH__GITHUB__TOKEN_URL: `${gh.url}/login/oauth/access_token`,
      MCP_AUTH__GITHUB__API_URL: gh.url,
      GITHUB_CLIENT_ID: 'Iv1.standin',
      GITHUB_CLIENT_SECRET: 'standin-secret',
      ...env,
    },
  });
  return { origin, url: `${origin}/mcp`, output: server.output, stop: server.stop };
}

/**
 * A fetch that records every response: method, url, status, all headers and the body text (read
 * from a clone as it arrives, so open event streams do not block). `settle()` waits (briefly) for
 * the bodies still being read.
 */
function recordingFetch() {
  const log = [];
  const reading = [];
  const recorded = async (input, init) => {
    const res = await fetch(input, init);
    const entry = {
      method: init?.method ?? (input instanceof Request ? input.method : 'GET'),
      url: input instanceof Request ? input.url : String(input),
      status: res.status,
      headers: [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n'),
      body: '',
    };
    log.push(entry);
    if (res.body) {
      const reader = res.clone().body.getReader();
      const decoder = new TextDecoder();
      reading.push((async () => {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            entry.body += decoder.decode(value, { stream: true });
          }
        } catch {
          // aborted stream: keep what arrived
        }
      })());
    }
    return res;
  };
  const settle = () => Promise.race([Promise.all(reading), new Promise((r) => setTimeout(r, 500))]);
  return { log, fetch: recorded, settle };
}

/** A headless OAuthClientProvider: keeps everything in memory, records the authorization URLs. */
class HeadlessOAuthProvider {
  constructor(redirectUrl) {
    this._redirectUrl = redirectUrl;
    this.authorizationUrls = [];
  }

  get redirectUrl() { return this._redirectUrl; }

  get clientMetadata() {
    return {
      client_name: CLIENT_NAME,
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    };
  }

  clientInformation() { return this._client; }

  saveClientInformation(info) { this._client = info; }

  tokens() { return this._tokens; }

  saveTokens(tokens) { this._tokens = tokens; }

  /** The SDK sends a state only when the provider makes one. */
  state() { return randomBytes(16).toString('base64url'); }

  redirectToAuthorization(url) { this.authorizationUrls.push(url); }

  saveCodeVerifier(v) { this._verifier = v; }

  codeVerifier() { return this._verifier; }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
  }
}

/**
 * A browser's cookie jar for 127.0.0.1: like a browser, cookies are not separated by port, so
 * our server's and the stand-in's cookies share it (their names differ).
 */
class Jar {
  constructor() { this.cookies = new Map(); }

  update(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=.*1970/i.test(a));
      if (expired || value === '') this.cookies.delete(name); else this.cookies.set(name, value);
    }
  }

  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

const unescapeHtml = (s) => s.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<')
  .replaceAll('&gt;', '>').replaceAll('&amp;', '&');
const formField = (html, name) => {
  const v = html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1];
  return v === undefined ? undefined : unescapeHtml(v);
};
const hiddenFields = (html) => Object.fromEntries(
  [...html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)].map(([, k, v]) => [unescapeHtml(k), unescapeHtml(v)]),
);
const formAction = (html, base, id) => {
  const form = id ? html.match(new RegExp(`<form[^>]*id="${id}"[^>]*>`))[0] : html.match(/<form[^>]*>/)[0];
  return new URL(unescapeHtml(form.match(/action="([^"]*)"/)[1]), base);
};
const isRedirect = (res) => res.status >= 300 && res.status < 400;

/**
 * Plays the user's browser from the SDK's authorization URL to the redirect back to the client.
 * `github`: 'pages' (the stand-in's login and Authorize pages, as `user`), 'shortcut'
 * (standin_user=`user`) or 'deny' (standin_deny=1). `browse` is the (recording) fetch used.
 * Returns { back: URL of the final redirect to the client, upstream: URL of the GitHub authorize
 * request our server sent the browser to, consentHtml }.
 */
async function playBrowser(authUrl, { github = 'pages', user = 'octocat', password, browse }) {
  const jar = new Jar();
  const go = async (url, init = {}) => {
    const res = await browse(url, {
      redirect: 'manual', ...init, headers: { cookie: jar.header(), ...(init.headers ?? {}) },
    });
    jar.update(res);
    return res;
  };
  const post = (url, form) => go(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(url).origin },
    body: new URLSearchParams(form),
  });

  // Our consent page: names the client and GitHub as where the user signs in next.
  let res = await go(authUrl);
  const consentHtml = await res.text();
  assert.equal(res.status, 200, consentHtml);
  assert.ok(consentHtml.includes(CLIENT_NAME), 'the consent page names the client');
  assert.match(consentHtml, /sign in with at <strong>GitHub<\/strong>/, 'the consent page names GitHub');
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.ok(jar.cookies.has('mcp-auth-txn'), 'the transaction cookie is set');
  res = await post(formAction(consentHtml, authUrl), { csrf: formField(consentHtml, 'csrf'), decision: 'approve' });
  assert.equal(res.status, 303, await res.text());
  const upstream = new URL(res.headers.get('location'));

  // "GitHub".
  const toGitHub = new URL(upstream);
  if (github === 'shortcut') toGitHub.searchParams.set('standin_user', user);
  if (github === 'deny') toGitHub.searchParams.set('standin_deny', '1');
  res = await go(toGitHub);
  await res.body?.cancel();
  if (github === 'pages') {
    assert.equal(res.status, 302, 'not signed in at GitHub: to its login page');
    const loginUrl = new URL(res.headers.get('location'), toGitHub);
    assert.equal(loginUrl.pathname, '/login');
    res = await go(loginUrl);
    let html = await res.text();
    assert.equal(res.status, 200, html);
    assert.match(html, /id="login_field"/);
    res = await post(formAction(html, loginUrl, 'login'), {
      ...hiddenFields(html), login: user, password: password ?? `${user}-password`, commit: 'Sign in',
    });
    await res.body?.cancel();
    assert.equal(res.status, 302, 'signed in: back to the authorize request');
    const again = new URL(res.headers.get('location'), loginUrl);
    assert.equal(again.pathname, '/login/oauth/authorize');
    res = await go(again);
    html = await res.text();
    assert.equal(res.status, 200, html);
    assert.match(html, /id="js-oauth-authorize-btn"/, "GitHub's Authorize page");
    res = await post(formAction(html, again, 'oauth-authorize-form'), { ...hiddenFields(html), authorize: '1' });
    await res.body?.cancel();
  }
  assert.equal(res.status, 302, 'GitHub redirects to our callback');
  const callback = new URL(res.headers.get('location'));
  assert.equal(`${callback.origin}${callback.pathname}`, `${upstream.searchParams.get('redirect_uri')}`);

  // Our callback, with the browser's transaction cookie: back to the client.
  res = await go(callback);
  const text = await res.text();
  assert.equal(res.status, 303, text);
  return { back: new URL(res.headers.get('location')), upstream, consentHtml };
}

const decodeJwt = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

describe('SDK OAuth client against github-oauth with the GitHub stand-in', { timeout: 60_000 }, () => {
  let gh;
  let server;
  let dir;
  let issuer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'github-oauth-'));
    gh = await startGitHub();
    server = await startGitHubOAuth(gh, dir, { MCP_APP__ADMINS: '["octocat"]' });
    issuer = (await (await fetch(`${server.origin}/.well-known/oauth-authorization-server`)).json()).issuer;
  }, T);

  after(async () => {
    await server?.stop();
    await gh?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  /** A GitHub user as the stand-in serves it (GET /users/{login}). */
  async function githubUser(login) {
    const res = await fetch(`${gh.url}/users/${login}`, { headers: { 'user-agent': 'interop-test' } });
    assert.equal(res.status, 200);
    return res.json();
  }

  /** Runs the SDK up to redirectToAuthorization; returns { authProvider, authUrl, rec }. */
  async function startSdkAuth() {
    const rec = recordingFetch();
    const authProvider = new HeadlessOAuthProvider(REDIRECT);
    const t1 = new StreamableHTTPClientTransport(new URL(server.url), { authProvider, fetch: rec.fetch });
    await assert.rejects(new Client({ name: 'gh-interop', version: '0' }).connect(t1), UnauthorizedError);
    const authUrl = authProvider.authorizationUrls.at(-1);
    assert.ok(authUrl, 'redirectToAuthorization was called');
    assert.equal(authUrl.origin, server.origin);
    assert.equal(authUrl.searchParams.get('resource'), server.url, 'RFC 8707 resource = our MCP URL');
    assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(authUrl.searchParams.get('state'), 'the SDK sent a state');
    return { authProvider, authUrl, rec, t1 };
  }

  /** Asserts the final redirect carries our code for this request; returns the code. */
  function codeFrom(back, authUrl) {
    assert.equal(`${back.origin}${back.pathname}`, REDIRECT);
    assert.equal(back.searchParams.get('error'), null, `${back}`);
    assert.equal(back.searchParams.get('iss'), issuer);
    assert.equal(back.searchParams.get('state'), authUrl.searchParams.get('state'));
    const code = back.searchParams.get('code');
    assert.ok(code, `a code in ${back}`);
    return code;
  }

  test('octocat through the GitHub login pages: discovery, DCR, consent, callback, token, tools, refresh; no GitHub token leaks', T, async () => {
    await gh.reset();
    const { authProvider, authUrl, rec, t1 } = await startSdkAuth();

    // Discovery and registration, in that order, all through the recorded fetch.
    const paths = rec.log.map((e) => `${e.method} ${new URL(e.url).pathname} ${e.status}`);
    const at = (re) => paths.findIndex((p) => re.test(p));
    const unauthorized = at(/^POST \/mcp 401$/);
    const prm = at(/^GET \/\.well-known\/oauth-protected-resource\/mcp 200$/);
    const asMeta = at(/^GET \/\.well-known\/(oauth-authorization-server|openid-configuration) 200$/);
    const register = at(/^POST \/register 201$/);
    assert.ok(unauthorized >= 0 && unauthorized < prm && prm < asMeta && asMeta < register, paths.join('\n'));
    assert.match(rec.log[unauthorized].headers, /www-authenticate: Bearer resource_metadata="[^"]*\/\.well-known\/oauth-protected-resource\/mcp"/);
    const clientId = authProvider.clientInformation()?.client_id;
    assert.ok(clientId, 'registered through DCR');
    assert.equal(authUrl.searchParams.get('client_id'), clientId);

    const { back, upstream } = await playBrowser(authUrl, { github: 'pages', user: 'octocat', browse: rec.fetch });
    // Our server sent the browser to GitHub with PKCE S256 and its own callback.
    assert.equal(upstream.origin, gh.url);
    assert.equal(upstream.pathname, '/login/oauth/authorize');
    assert.equal(upstream.searchParams.get('client_id'), 'Iv1.standin');
    assert.equal(upstream.searchParams.get('redirect_uri'), `${server.origin}/callback`);
    assert.equal(upstream.searchParams.get('code_challenge_method'), 'S256');
    assert.match(upstream.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(upstream.searchParams.get('state'), authUrl.searchParams.get('state'), 'its own state upstream');
    assert.notEqual(upstream.searchParams.get('code_challenge'), authUrl.searchParams.get('code_challenge'), 'its own PKCE upstream');

    await t1.finishAuth(codeFrom(back, authUrl));
    const first = authProvider.tokens();
    assert.ok(first.access_token, 'an access token');
    assert.ok(first.refresh_token, 'a refresh token');
    const octocat = await githubUser('octocat');
    const claims = decodeJwt(first.access_token);
    assert.equal(claims.iss, issuer);
    assert.equal(claims.aud, server.url);
    assert.equal(claims.client_id, clientId);
    assert.equal(claims.sub, `github:${octocat.id}`);

    // GitHub saw PKCE on both legs.
    const authorizations = await gh.authorizations();
    const sent = authorizations.filter((a) => a.method === 'GET' && a.client_id === 'Iv1.standin' && a.state === upstream.searchParams.get('state'));
    assert.ok(sent.length >= 1, JSON.stringify(authorizations));
    for (const a of sent) {
      assert.equal(a.code_challenge, upstream.searchParams.get('code_challenge'));
      assert.equal(a.code_challenge_method, 'S256');
    }
    const tokenRequests = await gh.requests();
    assert.equal(tokenRequests.length, 1, JSON.stringify(tokenRequests));
    assert.equal(tokenRequests[0].grant_type ?? 'authorization_code', 'authorization_code');
    assert.equal(tokenRequests[0].has_code_verifier, true, 'our server sent code_verifier to GitHub');
    assert.equal(tokenRequests[0].code_had_challenge, true);
    assert.equal(tokenRequests[0].redirect_uri, `${server.origin}/callback`);
    assert.equal(tokenRequests[0].result, 'ok');

    const client = new Client({ name: 'gh-interop', version: '0.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { authProvider, fetch: rec.fetch }));
    try {
      const profile = {
        authenticated: true,
        subject: `github:${octocat.id}`,
        login: 'octocat',
        name: octocat.name,
        email: octocat.email,
      };
      assert.equal(octocat.name, 'The Octocat');
      assert.equal(octocat.email, 'octocat@github.com');
      const who = await client.callTool({ name: 'whoami', arguments: {} });
      assert.deepEqual(who.structuredContent, profile);

      // The repositories GitHub lists for octocat's token (the one our server holds).
      const [ghToken] = (await gh.tokens()).filter((t) => t.login === 'octocat');
      const listed = await (await fetch(`${gh.url}/user/repos?per_page=100`, {
        headers: { authorization: `Bearer ${ghToken.access_token}`, 'user-agent': 'interop-test' },
      })).json();
      const expectedRepos = listed.map((r) => r.full_name);
      assert.ok(expectedRepos.length > 0 && expectedRepos.every((n) => n.startsWith('octocat/')), JSON.stringify(expectedRepos));
      const repos = await client.callTool({ name: 'my_repositories', arguments: {} });
      assert.equal(repos.isError, undefined, JSON.stringify(repos));
      assert.deepEqual(repos.structuredContent, { repositories: expectedRepos });

      const report = await client.callTool({ name: 'admin_report', arguments: {} });
      assert.notEqual(report.isError, true, JSON.stringify(report));
      assert.match(report.content[0].text, /octocat/);

      // Refresh through the SDK (auth() with a refresh token held): new tokens, same user.
      assert.equal(await auth(authProvider, { serverUrl: server.url, fetchFn: rec.fetch }), 'AUTHORIZED');
      const second = authProvider.tokens();
      assert.notEqual(second.access_token, first.access_token, 'a new access token');
      assert.notEqual(second.refresh_token, first.refresh_token, 'the refresh token rotated');
      assert.equal(decodeJwt(second.access_token).sub, `github:${octocat.id}`);
      assert.ok(rec.log.some((e) => e.method === 'POST' && new URL(e.url).pathname === '/token' && e.status === 200
        && /"refresh_token"/.test(e.body)), 'a refresh answered by /token');
      const refreshed = new Client({ name: 'gh-interop', version: '0.0.0' });
      await refreshed.connect(new StreamableHTTPClientTransport(new URL(server.url), { authProvider, fetch: rec.fetch }));
      try {
        const who2 = await refreshed.callTool({ name: 'whoami', arguments: {} });
        assert.deepEqual(who2.structuredContent, profile);
        const repos2 = await refreshed.callTool({ name: 'my_repositories', arguments: {} });
        assert.deepEqual(repos2.structuredContent, { repositories: expectedRepos }, 'the GitHub token still serves after a refresh');
      } finally {
        await refreshed.close();
      }
      // Only one GitHub token was ever issued (refresh does not go to GitHub).
      assert.equal((await gh.requests()).length, 1);
    } finally {
      await client.close();
    }

    // No GitHub token in anything the client (or its browser) received.
    await rec.settle();
    const ghTokens = (await gh.tokens()).map((t) => t.access_token);
    assert.ok(ghTokens.length >= 1 && ghTokens.every((t) => /^gho_/.test(t)), JSON.stringify(ghTokens));
    assert.ok(rec.log.length > 10, `recorded ${rec.log.length} responses`);
    assert.ok(rec.log.some((e) => e.body.includes('octocat/')), 'bodies were recorded');
    for (const e of rec.log) {
      for (const t of ghTokens) {
        assert.ok(!e.headers.includes(t), `GitHub token in the headers of ${e.method} ${e.url}`);
        assert.ok(!e.body.includes(t), `GitHub token in the body of ${e.method} ${e.url}`);
      }
    }
    const held = JSON.stringify([authProvider.tokens(), authProvider.clientInformation()]);
    for (const t of ghTokens) assert.ok(!held.includes(t), 'GitHub token held by the client');
  });

  test('hubot (private e-mail) through the shortcut: e-mail from /user/emails, admin_report refused', T, async () => {
    const { authProvider, authUrl, rec, t1 } = await startSdkAuth();
    const { back } = await playBrowser(authUrl, { github: 'shortcut', user: 'hubot', browse: rec.fetch });
    await t1.finishAuth(codeFrom(back, authUrl));
    const hubot = await githubUser('hubot');
    assert.equal(hubot.email, null, 'the stand-in hides hubot\'s e-mail on /users and /user');

    const client = new Client({ name: 'gh-interop', version: '0.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { authProvider, fetch: rec.fetch }));
    try {
      const who = await client.callTool({ name: 'whoami', arguments: {} });
      assert.deepEqual(who.structuredContent, {
        authenticated: true,
        subject: `github:${hubot.id}`,
        login: 'hubot',
        name: hubot.name,
        email: 'hubot@example.com',
      });
      const report = await client.callTool({ name: 'admin_report', arguments: {} });
      assert.equal(report.isError, true, JSON.stringify(report));
      const repos = await client.callTool({ name: 'my_repositories', arguments: {} });
      assert.notEqual(repos.isError, true, JSON.stringify(repos));
      assert.ok(repos.structuredContent.repositories.length > 0);
      assert.ok(repos.structuredContent.repositories.every((n) => n.startsWith('hubot/')), JSON.stringify(repos.structuredContent));
    } finally {
      await client.close();
    }
    await rec.settle();
    const ghTokens = (await gh.tokens()).map((t) => t.access_token);
    assert.ok(ghTokens.length >= 1);
    for (const e of rec.log) for (const t of ghTokens) assert.ok(!`${e.headers}\n${e.body}`.includes(t), `GitHub token in ${e.url}`);
  });

  test('the user cancels at GitHub: access_denied relayed to the client with its state and iss, no code', T, async () => {
    const { authProvider, authUrl, rec } = await startSdkAuth();
    const { back } = await playBrowser(authUrl, { github: 'deny', browse: rec.fetch });
    assert.equal(`${back.origin}${back.pathname}`, REDIRECT);
    assert.equal(back.searchParams.get('error'), 'access_denied', `${back}`);
    assert.equal(back.searchParams.get('state'), authUrl.searchParams.get('state'));
    assert.equal(back.searchParams.get('iss'), issuer);
    assert.equal(issuer, server.origin);
    assert.equal(back.searchParams.get('code'), null);
    assert.equal(authProvider.tokens(), undefined);
  });
});

describe('github-oauth with allowed_users = ["octocat"]', { timeout: 60_000 }, () => {
  let gh;
  let server;
  let dir;
  let issuer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'github-oauth-allow-'));
    gh = await startGitHub();
    server = await startGitHubOAuth(gh, dir, { MCP_AUTH__GITHUB__ALLOWED_USERS: '["octocat"]' });
    issuer = (await (await fetch(`${server.origin}/.well-known/oauth-authorization-server`)).json()).issuer;
  }, T);

  after(async () => {
    await server?.stop();
    await gh?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  async function attempt(user) {
    const authProvider = new HeadlessOAuthProvider(REDIRECT);
    const t1 = new StreamableHTTPClientTransport(new URL(server.url), { authProvider });
    await assert.rejects(new Client({ name: 'gh-allow', version: '0' }).connect(t1), UnauthorizedError);
    const authUrl = authProvider.authorizationUrls.at(-1);
    assert.ok(authUrl.searchParams.get('state'), 'the SDK sent a state');
    const { back } = await playBrowser(authUrl, { github: 'shortcut', user, browse: fetch });
    assert.equal(`${back.origin}${back.pathname}`, REDIRECT);
    assert.equal(back.searchParams.get('state'), authUrl.searchParams.get('state'));
    assert.equal(back.searchParams.get('iss'), issuer);
    return { authProvider, t1, back };
  }

  test('hubot is not on the list: access_denied at the client redirect', T, async () => {
    const { back } = await attempt('hubot');
    assert.equal(back.searchParams.get('error'), 'access_denied', `${back}`);
    assert.equal(back.searchParams.get('code'), null);
    // The GitHub token obtained for the refused user was given back to GitHub.
    const hubots = (await gh.tokens()).filter((t) => t.login === 'hubot');
    assert.ok(hubots.length >= 1, 'GitHub issued hubot a token');
    assert.ok(hubots.every((t) => t.revoked), JSON.stringify(hubots.map((t) => t.revoked)));
  });

  test('octocat is on the list: signs in and calls whoami', T, async () => {
    const { authProvider, t1, back } = await attempt('octocat');
    assert.equal(back.searchParams.get('error'), null, `${back}`);
    await t1.finishAuth(back.searchParams.get('code'));
    const client = new Client({ name: 'gh-allow', version: '0.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { authProvider }));
    try {
      const who = await client.callTool({ name: 'whoami', arguments: {} });
      assert.equal(who.structuredContent.login, 'octocat');
      assert.equal(who.structuredContent.authenticated, true);
    } finally {
      await client.close();
    }
  });
});
