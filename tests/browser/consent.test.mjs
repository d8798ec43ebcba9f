// The authorization server's development login and consent pages in a real browser
// (headless Debian Chromium via playwright-core), against the notes example in
// authorization-server mode: approve, deny, and a forged CSRF token refused.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  T,
  artefactsDir,
  assertNotFramable,
  authorizeUrl,
  exchangeCode,
  launchChromium,
  pkce,
  registerPublicClient,
  startAuthorizationServer,
  startCallbackListener,
} from './lib.mjs';

const CLIENT_NAME = 'Browser <Test> App';
const SCOPE = 'notes:read notes:write';
// The notes example's serverInfo name, which the consent page shows.
const SERVER_NAME = 'notes';

describe('consent page in headless Chromium', () => {
  let as;
  let browser;

  before(async () => {
    as = await startAuthorizationServer();
    browser = await launchChromium();
  }, T);

  after(async () => {
    await browser?.close();
    await as?.stop();
  }, T);

  /**
   * Registers a client with its own callback listener, opens the authorization URL in a
   * fresh browser context, signs in with the development login, and returns on the
   * consent page.
   */
  async function toConsentPage(t) {
    const callback = await startCallbackListener();
    t.after(() => callback.close());
    const client = await registerPublicClient(as, callback.redirectUri, CLIENT_NAME);
    const { verifier, challenge } = pkce();
    const state = `st-${Math.random().toString(36).slice(2)}`;
    const context = await browser.newContext();
    t.after(() => context.close());
    const page = await context.newPage();

    const login = await page.goto(
      authorizeUrl(as, { clientId: client.client_id, redirectUri: callback.redirectUri, challenge, state, scope: SCOPE }),
    );
    assert.equal(login.status(), 200, `login page: ${await login.text()}`);
    await assertNotFramable(login, 'login page');
    assert.match(await page.textContent('body'), /DEVELOPMENT LOGIN/);

    // Chromium compiles `pattern` with the `v` flag, under which an unescaped `-` in a class is an
    // error and the pattern is silently ignored: a mismatch is only reported when it compiled.
    const validity = await page.$eval('input[name="username"]', (input) => {
      input.value = 'not a name';
      const mismatch = input.validity.patternMismatch;
      input.value = 'alice.b-c@example';
      return { mismatch, valid: input.checkValidity() };
    });
    assert.deepEqual(validity, { mismatch: true, valid: true }, 'the username pattern compiles and applies');
    await page.fill('input[name="username"]', 'alice');
    const [consent] = await Promise.all([
      // Post/Redirect/Get: the login's 303 lands on the consent page, fetched with GET.
      page.waitForResponse((r) => r.request().method() === 'GET' && new URL(r.url()).pathname === '/authorize/consent'),
      page.click('button[type="submit"]'),
    ]);
    assert.equal(consent.status(), 200, `consent page: ${await consent.text()}`);
    await assertNotFramable(consent, 'consent page');
    await page.waitForSelector('button[name="decision"][value="approve"]');
    return { page, client, callback, verifier, state };
  }

  test('shows the client, the redirect host and the scopes, and approving yields a code that exchanges for a token', T, async (t) => {
    const { page, client, callback, verifier, state } = await toConsentPage(t);

    const text = await page.textContent('body');
    const server = `${SERVER_NAME} (${new URL(as.issuer).host})`;
    assert.equal(await page.title(), `Allow ${CLIENT_NAME} to use ${server}?`, 'the title names the server');
    assert.ok(text.includes(`access ${server} as`), `the server is named in the text: ${text}`);
    const approve = page.locator('button[value="approve"]');
    const deny = page.locator('button[value="deny"]');
    const colour = (button) => button.evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.notEqual(await colour(approve), await colour(deny), 'Allow and Deny look different');
    assert.equal(await approve.getAttribute('class'), 'primary', 'Allow is the primary action');
    assert.ok(text.includes(CLIENT_NAME), `client name shown as text (escaped in HTML): ${text}`);
    assert.equal(await page.locator('strong', { hasText: CLIENT_NAME }).count(), 1, 'no markup injected');
    assert.ok(text.includes('127.0.0.1'), `redirect host shown: ${text}`);
    assert.ok(text.includes('alice'), `signed-in user shown: ${text}`);
    for (const scope of SCOPE.split(' ')) assert.ok(text.includes(scope), `scope ${scope} shown: ${text}`);

    mkdirSync(artefactsDir(), { recursive: true });
    await page.screenshot({ path: join(artefactsDir(), 'consent.png'), fullPage: true });

    await page.click('button[name="decision"][value="approve"]');
    const back = await callback.next();
    await page.waitForURL((url) => url.pathname === '/callback');
    const params = back.searchParams;
    assert.ok(params.get('code'), `a code: ${back}`);
    assert.equal(params.get('state'), state);
    assert.equal(params.get('iss'), as.issuer);
    assert.equal(params.get('error'), null);

    const token = await exchangeCode(as, {
      code: params.get('code'),
      verifier,
      clientId: client.client_id,
      redirectUri: callback.redirectUri,
    });
    assert.equal(token.status, 200, JSON.stringify(token.body));
    assert.equal(token.headers.get('cache-control'), 'no-store');
    assert.equal(token.body.token_type.toLowerCase(), 'bearer');
    assert.ok(token.body.access_token, 'an access token');
    assert.ok(token.body.refresh_token, 'a refresh token');
    const claims = JSON.parse(Buffer.from(token.body.access_token.split('.')[1], 'base64url').toString());
    assert.equal(claims.iss, as.issuer);
    assert.equal(claims.aud, as.resource);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.client_id, client.client_id);
    assert.deepEqual(claims.scope.split(' ').sort(), SCOPE.split(' ').sort());

    // The code is single use.
    const again = await exchangeCode(as, {
      code: params.get('code'),
      verifier,
      clientId: client.client_id,
      redirectUri: callback.redirectUri,
    });
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
  });

  test('denying lands on the callback with access_denied, state and iss, and no code', T, async (t) => {
    const { page, callback, state } = await toConsentPage(t);
    await page.click('button[name="decision"][value="deny"]');
    const back = await callback.next();
    await page.waitForURL((url) => url.pathname === '/callback');
    assert.equal(back.searchParams.get('error'), 'access_denied', `${back}`);
    assert.equal(back.searchParams.get('state'), state);
    assert.equal(back.searchParams.get('iss'), as.issuer);
    assert.equal(back.searchParams.get('code'), null);
    assert.equal(callback.hits.length, 1);
  });

  test('a forged CSRF token on the consent form is refused with a 400 page and no code', T, async (t) => {
    const { page, callback } = await toConsentPage(t);
    const original = await page.evaluate(() => {
      const input = document.querySelector('form input[type="hidden"][name="csrf"]');
      const value = input.value;
      input.value = 'forged-' + value.slice(7);
      return value;
    });
    assert.ok(original.length >= 16, 'a real CSRF token was on the page');

    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/authorize/consent'),
      page.click('button[name="decision"][value="approve"]'),
    ]);
    assert.equal(refused.status(), 400);
    const headers = await refused.allHeaders();
    assert.equal(headers.location, undefined, 'never a redirect');
    await assertNotFramable(refused, 'error page');
    await page.waitForLoadState();
    assert.equal(new URL(page.url()).pathname, '/authorize/consent', 'the browser stays on the AS');
    // A forged token names no pending sign-in of this browser: the request is refused as such.
    assert.match(await page.textContent('body'), /refused/i);
    // Give a stray redirect a moment to arrive; none may.
    await new Promise((ok) => setTimeout(ok, 300));
    assert.equal(callback.hits.length, 0, 'no redirect to the client, so no code issued');
  });
});
