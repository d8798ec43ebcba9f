// Signing in with GitHub in a real browser (headless Debian Chromium via playwright-core): the
// github-oauth example as its own authorization server, GitHub played by the stand-in
// (tests/github-standin). Our consent page -> Allow -> GitHub's login page -> GitHub's Authorize
// page -> our /callback -> the client's loopback callback with our code, state and iss -> /token ->
// whoami. Also: Cancel at GitHub (access_denied relayed), and the GitHub callback URL replayed in
// another browser (no transaction cookie: 403) and again after completion (400).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startGitHub } from '../github-standin/harness.mjs';
import {
  T,
  artefactsDir,
  assertNotFramable,
  authorizeUrl,
  callToolOverHttp,
  exchangeCode,
  launchChromium,
  pkce,
  registerPublicClient,
  startCallbackListener,
  startGitHubOAuthServer,
} from './lib.mjs';

const CLIENT_NAME = 'GitHub Browser Test App';

describe('GitHub login in headless Chromium', () => {
  let gh;
  let as;
  let browser;
  let dir;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'github-login-'));
    gh = await startGitHub();
    as = await startGitHubOAuthServer(gh, { sealingKeyFile: join(dir, 'seal.key') });
    browser = await launchChromium();
    mkdirSync(artefactsDir(), { recursive: true });
  }, T);

  after(async () => {
    await browser?.close();
    await as?.stop();
    await gh?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  const screenshot = (page, name) => page.screenshot({ path: join(artefactsDir(), name), fullPage: true });

  /**
   * Registers a client with its own callback listener, opens the authorization URL in a fresh
   * browser context and returns on our consent page (checked: names the client and GitHub, not
   * framable). GitHub's remembered grants and sessions are forgotten first, so its pages show.
   */
  async function toConsentPage(t) {
    await gh.reset();
    const callback = await startCallbackListener();
    t.after(() => callback.close());
    const client = await registerPublicClient(as, callback.redirectUri, CLIENT_NAME);
    const { verifier, challenge } = pkce();
    const state = `st-${Math.random().toString(36).slice(2)}`;
    const context = await browser.newContext();
    t.after(() => context.close());
    const page = await context.newPage();

    const url = new URL(authorizeUrl(as, { clientId: client.client_id, redirectUri: callback.redirectUri, challenge, state, scope: '' }));
    url.searchParams.delete('scope');
    const consent = await page.goto(url.toString());
    assert.equal(consent.status(), 200, `consent page: ${await consent.text()}`);
    await assertNotFramable(consent, 'consent page');
    await page.waitForSelector('button[name="decision"][value="approve"]');
    const text = await page.textContent('body');
    assert.ok(text.includes(CLIENT_NAME), `client named: ${text}`);
    assert.match(text, /account you sign in with at GitHub next/, `GitHub named as where the user signs in: ${text}`);
    assert.equal(await page.locator('strong', { hasText: /^GitHub$/ }).count(), 1);
    return { context, page, client, callback, verifier, state };
  }

  /** From our consent page: Allow -> GitHub's login page -> sign in -> GitHub's Authorize page. */
  async function toGitHubAuthorizePage(page, login = 'octocat') {
    await page.click('button[name="decision"][value="approve"]');
    await page.waitForURL((u) => u.origin === gh.url && u.pathname === '/login');
    assert.match(await page.textContent('h1'), /Sign in to GitHub/);
    await page.fill('#login_field', login);
    await page.fill('#password', `${login}-password`);
    await page.click('input[name="commit"]');
    await page.waitForSelector('#js-oauth-authorize-btn');
    assert.equal(new URL(page.url()).origin, gh.url);
    assert.equal(await page.textContent('#authorizing-user'), login);
  }

  test('Allow, sign in at GitHub, Authorize: our code, state and iss; the token says who signed in', T, async (t) => {
    const { page, client, callback, verifier, state } = await toConsentPage(t);
    await screenshot(page, 'github-consent.png');
    await toGitHubAuthorizePage(page, 'octocat');
    await screenshot(page, 'github-authorize.png');
    await page.click('#js-oauth-authorize-btn');
    const back = await callback.next();
    await page.waitForURL((u) => u.pathname === '/callback' && u.origin !== as.base);
    const params = back.searchParams;
    assert.equal(params.get('error'), null, `${back}`);
    assert.ok(params.get('code'), `a code: ${back}`);
    assert.equal(params.get('state'), state);
    assert.equal(params.get('iss'), as.issuer);
    assert.equal(callback.hits.length, 1);

    const token = await exchangeCode(as, { code: params.get('code'), verifier, clientId: client.client_id, redirectUri: callback.redirectUri });
    assert.equal(token.status, 200, JSON.stringify(token.body));
    const ghTokens = (await gh.tokens()).map((x) => x.access_token);
    assert.equal(ghTokens.length, 1, 'our server got one GitHub token');
    assert.ok(!JSON.stringify(token.body).includes(ghTokens[0]), 'no GitHub token in our token response');

    const octocat = await (await fetch(`${gh.url}/users/octocat`, { headers: { 'user-agent': 'browser-test' } })).json();
    const who = await callToolOverHttp(as.resource, token.body.access_token, 'whoami');
    assert.deepEqual(who.structuredContent, {
      authenticated: true, subject: `github:${octocat.id}`, login: 'octocat', name: octocat.name, email: octocat.email,
    });
  });

  test('Cancel at GitHub: the callback gets access_denied with state and iss, and no code', T, async (t) => {
    const { page, callback, state } = await toConsentPage(t);
    await toGitHubAuthorizePage(page, 'hubot');
    await page.click('#js-oauth-cancel-btn');
    const back = await callback.next();
    await page.waitForURL((u) => u.pathname === '/callback' && u.origin !== as.base);
    assert.equal(back.searchParams.get('error'), 'access_denied', `${back}`);
    assert.equal(back.searchParams.get('state'), state);
    assert.equal(back.searchParams.get('iss'), as.issuer);
    assert.equal(back.searchParams.get('code'), null);
    assert.equal(callback.hits.length, 1);
  });

  test("GitHub's callback URL replayed: in another browser 403, again after completion 400", T, async (t) => {
    const { context, page, callback, state } = await toConsentPage(t);
    // Hold GitHub's redirect to our /callback in this browser: Chromium does not route redirects,
    // so the Authorize form's POST to GitHub is sent by the test (with the browser's cookies), and
    // its redirect is captured instead of followed.
    await toGitHubAuthorizePage(page, 'octocat');
    let captured;
    const authorizeForm = `${gh.url}/login/oauth/authorize`;
    await context.route(authorizeForm, async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      const answer = await route.fetch({ maxRedirects: 0 });
      captured = answer.headers().location;
      return route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>held</title><p>held</p>' });
    });
    await Promise.all([page.waitForURL(authorizeForm), page.click('#js-oauth-authorize-btn')]);
    await context.unroute(authorizeForm);
    assert.ok(captured, 'captured the GitHub callback');
    const cb = new URL(captured);
    assert.ok(cb.searchParams.get('code') && cb.searchParams.get('state'), captured);

    // Another browser (no transaction cookie) cannot complete this sign-in.
    const other = await browser.newContext();
    t.after(() => other.close());
    const thief = await other.newPage();
    const refused = await thief.goto(captured);
    assert.equal(refused.status(), 403, await refused.text());
    await assertNotFramable(refused, 'callback error page');
    assert.equal(new URL(thief.url()).origin, as.base, 'no redirect');
    assert.match(await thief.textContent('body'), /refused/i);
    await screenshot(thief, 'github-callback-403.png');

    // The browser that started it completes it.
    const done = await page.goto(captured);
    const back = await callback.next();
    assert.equal(new URL(done.url()).origin, new URL(callback.redirectUri).origin);
    assert.ok(back.searchParams.get('code'), `${back}`);
    assert.equal(back.searchParams.get('state'), state);
    assert.equal(back.searchParams.get('iss'), as.issuer);

    // Replayed in the same browser after completion: the state is spent.
    const replay = await page.goto(captured);
    assert.equal(replay.status(), 400, await replay.text());
    assert.equal(new URL(page.url()).origin, as.base, 'no redirect');
    assert.equal(callback.hits.length, 1, 'the client got exactly one redirect');
  });
});
