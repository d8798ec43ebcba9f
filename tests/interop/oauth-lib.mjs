// OAuth pieces the interop tests share: a headless OAuthClientProvider, and the user's part of
// the built-in authorization server's flow (development login, consent) played with fetch.
import assert from 'node:assert/strict';

/** A headless OAuthClientProvider: keeps everything in memory, records the authorization URLs. */
export class HeadlessOAuthProvider {
  constructor(redirectUrl, clientName = 'notes AS interop test') {
    this._redirectUrl = redirectUrl;
    this._clientName = clientName;
    this.authorizationUrls = [];
    this.invalidated = [];
  }

  get redirectUrl() { return this._redirectUrl; }

  get clientMetadata() {
    return {
      client_name: this._clientName,
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

  redirectToAuthorization(url) { this.authorizationUrls.push(url); }

  saveCodeVerifier(v) { this._verifier = v; }

  codeVerifier() { return this._verifier; }

  invalidateCredentials(scope) {
    this.invalidated.push(scope);
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
  }
}

/** A cookie jar for one origin. */
class Jar {
  constructor() { this.cookies = new Map(); }

  update(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name); else this.cookies.set(name, value);
    }
  }

  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

const formField = (html, name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1];
const formAction = (html, base) => new URL(html.match(/action="([^"]*)"/)[1].replaceAll('&amp;', '&'), base);

/**
 * Plays the user in a browser: GET the authorization URL, submit the development login form as
 * `user`, approve on the consent page (each form with its CSRF token), and return the final
 * redirect's URL (to redirect_uri).
 */
export async function consentHeadlessly(authUrl, user = 'sdk-user', clientName = 'notes AS interop test') {
  const jar = new Jar();
  const page = await fetch(authUrl, { redirect: 'manual' });
  jar.update(page);
  let html = await page.text();
  assert.equal(page.status, 200, html);
  assert.match(html, /name="username"/, 'the development login form');
  const login = await fetch(formAction(html, authUrl), {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: formField(html, 'csrf'), username: user }),
  });
  jar.update(login);
  // Post/Redirect/Get: the login answers 303 to the consent page.
  assert.equal(login.status, 303, await login.text());
  const consentPage = await fetch(new URL(login.headers.get('location'), authUrl), {
    redirect: 'manual',
    headers: { cookie: jar.header() },
  });
  jar.update(consentPage);
  html = await consentPage.text();
  assert.equal(consentPage.status, 200, html);
  assert.ok(html.includes(clientName), 'the consent page names the client');
  assert.equal(consentPage.headers.get('x-frame-options'), 'DENY');
  const consent = await fetch(formAction(html, authUrl), {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: formField(html, 'csrf'), decision: 'approve' }),
  });
  assert.ok(consent.status >= 300 && consent.status < 400, `consent answered ${consent.status}`);
  return new URL(consent.headers.get('location'));
}


/**
 * Completes the provider's last authorization request as `user` (see `consentHeadlessly`), after
 * checking that it goes to `notes.origin` for the resource `notes.url` (RFC 8707) with PKCE S256;
 * checks the redirect back (redirect_uri, `iss`, `state`) and returns the code.
 */
export async function completeAuthorization(authProvider, notes, user = 'sdk-user') {
  const authUrl = authProvider.authorizationUrls.at(-1);
  assert.ok(authUrl, 'redirectToAuthorization was called');
  assert.equal(authUrl.origin, notes.origin);
  assert.equal(authUrl.searchParams.get('resource'), notes.url, 'RFC 8707 resource = our MCP URL');
  assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
  const callback = await consentHeadlessly(authUrl, user, authProvider.clientMetadata.client_name);
  assert.equal(`${callback.origin}${callback.pathname}`, authProvider.redirectUrl);
  assert.equal(callback.searchParams.get('iss'), notes.origin);
  assert.equal(callback.searchParams.get('state'), authUrl.searchParams.get('state'));
  const code = callback.searchParams.get('code');
  assert.ok(code, `a code in ${callback}`);
  return code;
}

/** The claims of a JWT (not verified: the server checks it; the test reads it). */
export const decodeJwt = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
