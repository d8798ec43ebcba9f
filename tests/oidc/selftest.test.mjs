// Self-test of the test OpenID provider: node --test selftest.test.mjs
// One provider for the whole file; the tests run in order (rotation changes its state).
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';

import {
  clientCredentials, decodeJwt, followAuthorization, introspect, pkcePair, revoke, rotateKey, setFault,
  startProvider,
} from './harness.mjs';

const MCP_RESOURCE = 'http://127.0.0.1:9/mcp';
const OTHER_RESOURCE = 'https://other.example/mcp';
const TTL = 300;

let op;
let issuer;
let extraStdout = '';
let tmpDir;
let keysFile;

before(async () => {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oidc-selftest-'));
  keysFile = path.join(tmpDir, 'keys.json');
  op = await startProvider({
    MCP_RESOURCE,
    OIDC_TOKEN_TTL: String(TTL),
    OIDC_EXTRA_RESOURCES: OTHER_RESOURCE,
    OIDC_KEYS_FILE: keysFile,
    OIDC_JWKS_CACHE_CONTROL: 'public, max-age=600',
  });
  issuer = op.issuer;
  op.child.stdout.on('data', (d) => { extraStdout += d; });
});

after(async () => {
  await op?.stop();
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
});

async function getJson(url, init) {
  const res = await fetch(url, init);
  assert.equal(res.status, 200, `${url}: HTTP ${res.status}`);
  return res.json();
}

async function jwks() {
  return getJson(`${issuer}/jwks`);
}

/** Verifies a compact JWS with the key of its kid in `keys` (node:crypto only). */
function verifyJwt(jwt, keys) {
  const [h, p, s] = jwt.split('.');
  const { header } = decodeJwt(jwt);
  const jwk = keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} not in JWKS`);
  assert.equal(header.alg, 'ES256');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  return crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
}

async function mintJwt(opts = {}) {
  const { status, body } = await clientCredentials(issuer, { resource: MCP_RESOURCE, scope: 'notes:read', ...opts });
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

test('ready line and discovery documents (RFC 8414 and OpenID)', async () => {
  assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(issuer, `http://127.0.0.1:${op.port}`);
  assert.match(op.admin, /^http:\/\/127\.0\.0\.1:\d+$/);
  const oidc = await getJson(`${issuer}/.well-known/openid-configuration`);
  const rfc8414 = await getJson(`${issuer}/.well-known/oauth-authorization-server`);
  assert.deepEqual(rfc8414, oidc);
  assert.equal(oidc.issuer, issuer);
  assert.equal(oidc.jwks_uri, `${issuer}/jwks`);
  assert.equal(oidc.token_endpoint, `${issuer}/token`);
  assert.equal(oidc.introspection_endpoint, `${issuer}/token/introspection`);
  assert.equal(oidc.revocation_endpoint, `${issuer}/token/revocation`);
  assert.equal(oidc.registration_endpoint, `${issuer}/reg`);
  assert.deepEqual(oidc.code_challenge_methods_supported, ['S256']);
  assert.equal(oidc.authorization_response_iss_parameter_supported, true);
  assert.ok(oidc.grant_types_supported.includes('client_credentials'));
  assert.ok(oidc.token_endpoint_auth_methods_supported.includes('none'));
  for (const s of ['notes:read', 'notes:write']) assert.ok(oidc.scopes_supported.includes(s));
  const { keys } = await jwks();
  assert.equal(keys.length, 1);
  assert.equal(keys[0].kid, op.active_kid);
  assert.equal(keys[0].kty, 'EC');
  assert.equal(keys[0].d, undefined, 'private part must not be published');
});

test('client_credentials with resource=MCP_RESOURCE gives an ES256 JWT for it', async () => {
  const body = await mintJwt();
  assert.equal(body.token_type, 'Bearer');
  assert.equal(body.expires_in, TTL);
  assert.equal(body.scope, 'notes:read');
  const { header, payload } = decodeJwt(body.access_token);
  assert.equal(header.alg, 'ES256');
  assert.equal(header.typ, 'at+jwt');
  assert.equal(header.kid, op.active_kid);
  assert.equal(payload.aud, MCP_RESOURCE);
  assert.equal(payload.iss, issuer);
  assert.equal(payload.scope, 'notes:read');
  assert.equal(payload.client_id, 'rs-test');
  assert.equal(payload.sub, 'rs-test');
  assert.equal(payload.exp - payload.iat, TTL);
  assert.ok(typeof payload.jti === 'string' && payload.jti.length > 10);
  assert.ok(verifyJwt(body.access_token, (await jwks()).keys), 'signature verifies against the JWKS');

  const both = await mintJwt({ scope: 'notes:read notes:write' });
  assert.equal(decodeJwt(both.access_token).payload.scope, 'notes:read notes:write');
});

test('other resources: wrong audience on demand, unknown ones refused', async () => {
  const other = await mintJwt({ resource: OTHER_RESOURCE });
  assert.equal(decodeJwt(other.access_token).payload.aud, OTHER_RESOURCE);
  const slash = await clientCredentials(issuer, { resource: `${MCP_RESOURCE}/`, scope: 'notes:read' });
  assert.equal(slash.status, 400);
  assert.equal(slash.body.error, 'invalid_target');
  // scopes the resource does not define are dropped silently (no invalid_scope)
  const unknownScope = await mintJwt({ scope: 'notes:delete notes:read' });
  assert.equal(unknownScope.scope, 'notes:read');
  assert.equal(decodeJwt(unknownScope.access_token).payload.scope, 'notes:read');
  // a scope the client may not have at all is an error
  const openid = await clientCredentials(issuer, { resource: MCP_RESOURCE, scope: 'openid' });
  assert.equal(openid.status, 400);
  assert.equal(openid.body.error, 'invalid_scope');
  // no scope parameter: a token without any scope claim
  const none = await clientCredentials(issuer, { resource: MCP_RESOURCE });
  assert.equal(none.status, 200);
  assert.equal(decodeJwt(none.body.access_token).payload.scope, undefined);
  const secret = await clientCredentials(issuer, { clientSecret: 'nope', resource: MCP_RESOURCE });
  assert.equal(secret.status, 401);
  assert.equal(secret.body.error, 'invalid_client');
});

test('opaque token (client rs-opaque): introspection shows aud/active, revocation deactivates it', async () => {
  const body = await mintJwt({ clientId: 'rs-opaque', scope: 'notes:read notes:write' });
  const token = body.access_token;
  assert.equal(token.split('.').length, 1, 'opaque, not a JWT');

  const basic = await introspect(issuer, token);
  assert.equal(basic.status, 200);
  assert.equal(basic.body.active, true);
  assert.equal(basic.body.aud, MCP_RESOURCE);
  assert.equal(basic.body.iss, issuer);
  assert.equal(basic.body.client_id, 'rs-opaque');
  assert.equal(basic.body.scope, 'notes:read notes:write');
  assert.equal(basic.body.token_type, 'Bearer');
  assert.equal(basic.body.exp - basic.body.iat, TTL);

  // client_secret_post (oidc-provider accepts basic or post from either introspector client)
  const res = await fetch(`${issuer}/token/introspection`, {
    method: 'POST',
    body: new URLSearchParams({ token, client_id: 'introspector-post', client_secret: 'introspector-post-secret' }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), basic.body);

  const bad = await introspect(issuer, token, { clientSecret: 'wrong' });
  assert.equal(bad.status, 401);

  const unknown = await introspect(issuer, 'not-a-token-we-issued');
  assert.deepEqual(unknown.body, { active: false });

  const jwtIntro = await introspect(issuer, (await mintJwt()).access_token);
  assert.equal(jwtIntro.status, 400);
  assert.equal(jwtIntro.body.error, 'unsupported_token_type');

  const rv = await revoke(issuer, token, { clientId: 'rs-opaque' });
  assert.equal(rv.status, 200);
  assert.deepEqual((await introspect(issuer, token)).body, { active: false });
});

test('short-lived tokens (rs-short, rs-short-opaque) expire after OIDC_SHORT_TOKEN_TTL', async () => {
  const jwt = await mintJwt({ clientId: 'rs-short' });
  const { payload } = decodeJwt(jwt.access_token);
  assert.equal(payload.exp - payload.iat, 1);
  assert.equal(payload.aud, MCP_RESOURCE);

  const opaque = (await mintJwt({ clientId: 'rs-short-opaque' })).access_token;
  const deadline = Date.now() + 3000;
  let active = true;
  while (active && Date.now() < deadline) {
    await new Promise((r) => { setTimeout(r, 250); });
    active = (await introspect(issuer, opaque)).body.active;
  }
  assert.equal(active, false, 'inactive once expired');
});

test('key rotation: the JWKS gains the new key, new tokens use it, old ones still verify', async () => {
  const before = await mintJwt();
  const oldKid = decodeJwt(before.access_token).header.kid;

  const rotated = await rotateKey(op.admin);
  assert.equal(rotated.previous, oldKid);
  assert.notEqual(rotated.kid, oldKid);
  const { keys } = await jwks();
  assert.deepEqual(keys.map((k) => k.kid), [oldKid, rotated.kid]);

  const after = await mintJwt();
  assert.equal(decodeJwt(after.access_token).header.kid, rotated.kid);
  assert.ok(verifyJwt(after.access_token, keys));
  assert.ok(verifyJwt(before.access_token, keys));
  assert.ok(!verifyJwt(after.access_token, keys.map((k) => ({ ...k, kid: rotated.kid, x: keys[0].x, y: keys[0].y }))),
    'signed with the new key, not the old one');

  // SIGUSR2 does the same
  op.child.kill('SIGUSR2');
  let n = 2;
  for (let i = 0; i < 40 && n === 2; i += 1) {
    await new Promise((r) => { setTimeout(r, 25); });
    n = (await jwks()).keys.length;
  }
  assert.equal(n, 3);
  const state = await getJson(`${op.admin}/state`);
  assert.equal(decodeJwt((await mintJwt()).access_token).header.kid, state.active_kid);
  assert.equal(state.published.length, 3);
});

test('JWKS Cache-Control and request counters', async () => {
  const before = (await getJson(`${op.admin}/state`)).requests.jwks;
  const res = await fetch(`${issuer}/jwks`);
  assert.equal(res.headers.get('cache-control'), 'public, max-age=600');
  assert.match(res.headers.get('content-type'), /^application\/jwk-set\+json/);
  await res.arrayBuffer();
  assert.equal((await getJson(`${op.admin}/state`)).requests.jwks, before + 1);
});

test('a second provider sharing OIDC_KEYS_FILE: right key, wrong issuer', async () => {
  const twin = await startProvider({ MCP_RESOURCE, OIDC_KEYS_FILE: keysFile });
  try {
    assert.notEqual(twin.issuer, issuer);
    assert.equal(twin.active_kid, op.active_kid, 'same keys, same first kid');
    const { status, body } = await clientCredentials(twin.issuer, { resource: MCP_RESOURCE, scope: 'notes:read' });
    assert.equal(status, 200);
    const { header, payload } = decodeJwt(body.access_token);
    assert.equal(payload.iss, twin.issuer);
    assert.equal(payload.aud, MCP_RESOURCE);
    assert.ok(verifyJwt(body.access_token, (await jwks()).keys), 'verifies against the first provider\'s JWKS');
    assert.ok((await jwks()).keys.some((k) => k.kid === header.kid));
  } finally {
    await twin.stop();
  }
});

test('fault injection on the JWKS endpoint', async () => {
  await setFault(op.admin, 'jwks', 'error');
  assert.equal((await fetch(`${issuer}/jwks`)).status, 503);
  await setFault(op.admin, 'jwks', 'garbage');
  const g = await fetch(`${issuer}/jwks`);
  assert.equal(g.status, 200);
  await assert.rejects(g.json());
  await setFault(op.admin, 'jwks', 'hang');
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), 300);
  await assert.rejects(fetch(`${issuer}/jwks`, { signal: ac.signal }), { name: 'AbortError' });
  clearTimeout(t);
  await setFault(op.admin, 'jwks', 'ok');
  assert.equal((await jwks()).keys.length, 3);
});

const redirectUri = 'http://127.0.0.1:9/callback';

async function registerPublicClient(extra = {}) {
  const reg = await fetch(`${issuer}/reg`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'selftest public client',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      ...extra,
    }),
  });
  const client = await reg.json();
  assert.equal(reg.status, 201, JSON.stringify(client));
  assert.ok(client.client_id);
  assert.equal(client.client_secret, undefined);
  return client;
}

function flowFor(client) {
  const authorize = async (scope, pkce, extra = {}) => {
    const u = new URL(`${issuer}/auth`);
    const params = {
      client_id: client.client_id, response_type: 'code', redirect_uri: redirectUri, scope,
      resource: MCP_RESOURCE, state: crypto.randomUUID(), ...extra,
    };
    if (pkce) Object.assign(params, { code_challenge: pkce.challenge, code_challenge_method: 'S256' });
    for (const [k, v] of Object.entries(params)) if (v !== null) u.searchParams.set(k, v);
    const cb = await followAuthorization(u, redirectUri);
    assert.equal(cb.searchParams.get('state'), params.state);
    assert.equal(cb.searchParams.get('iss'), issuer);
    return cb;
  };
  const exchange = async (code, verifier, extra = {}) => {
    const form = {
      grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: client.client_id,
      code_verifier: verifier, resource: MCP_RESOURCE, ...extra,
    };
    for (const k of Object.keys(form)) if (form[k] === null) delete form[k];
    const res = await fetch(`${issuer}/token`, { method: 'POST', body: new URLSearchParams(form) });
    return { status: res.status, body: await res.json() };
  };
  return { authorize, exchange };
}

test('authorization code + PKCE S256 with a DCR public client, headless', async () => {
  const client = await registerPublicClient();
  const { authorize, exchange } = flowFor(client);

  // PKCE is required
  const noPkce = await authorize('notes:read', null);
  assert.equal(noPkce.searchParams.get('error'), 'invalid_request');

  const pkce = pkcePair();
  const cb = await authorize('notes:read', pkce);
  const code = cb.searchParams.get('code');
  assert.ok(code, cb.href);
  const wrong = await exchange(code, pkcePair().verifier);
  assert.equal(wrong.status, 400);
  assert.equal(wrong.body.error, 'invalid_grant');

  const pkce2 = pkcePair();
  const tok = await exchange((await authorize('notes:read', pkce2)).searchParams.get('code'), pkce2.verifier);
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  assert.equal(tok.body.scope, 'notes:read');
  assert.ok(tok.body.refresh_token, 'refresh token for a client allowed the refresh_token grant');
  const { header, payload } = decodeJwt(tok.body.access_token);
  const state = await getJson(`${op.admin}/state`);
  assert.equal(header.kid, state.active_kid);
  assert.equal(payload.aud, MCP_RESOURCE);
  assert.equal(payload.iss, issuer);
  assert.equal(payload.sub, 'test-user');
  assert.equal(payload.client_id, client.client_id);
  assert.equal(payload.scope, 'notes:read');
  assert.ok(verifyJwt(tok.body.access_token, (await jwks()).keys));

  // a code exchange without `resource` still gets a JWT for the granted resource (useGrantedResource)
  const pkce4 = pkcePair();
  // (and an authorization request without `resource`, as 2025-03-26 clients send, defaults to MCP_RESOURCE)
  const cb4 = await authorize('notes:read', pkce4, { resource: null });
  const noRes = await exchange(cb4.searchParams.get('code'), pkce4.verifier, { resource: null });
  assert.equal(noRes.status, 200, JSON.stringify(noRes.body));
  assert.equal(decodeJwt(noRes.body.access_token).payload.aud, MCP_RESOURCE);

  // refresh (public client: the refresh token rotates), same resource
  const rf = await fetch(`${issuer}/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'refresh_token', refresh_token: tok.body.refresh_token, client_id: client.client_id, resource: MCP_RESOURCE,
    }),
  });
  const refreshed = await rf.json();
  assert.equal(rf.status, 200, JSON.stringify(refreshed));
  assert.notEqual(refreshed.refresh_token, tok.body.refresh_token);
  assert.equal(decodeJwt(refreshed.access_token).payload.aud, MCP_RESOURCE);

  // step-up: a new authorization with more scope; login_hint picks the subject
  const pkce3 = pkcePair();
  const up = await exchange(
    (await authorize('notes:read notes:write', pkce3, { login_hint: 'alice' })).searchParams.get('code'),
    pkce3.verifier,
  );
  assert.equal(up.status, 200, JSON.stringify(up.body));
  const upPayload = decodeJwt(up.body.access_token).payload;
  assert.equal(upPayload.scope, 'notes:read notes:write');
  assert.equal(upPayload.sub, 'alice');
});

test('authorization code flow for a DCR client registered with access_token_format "opaque"', async () => {
  const client = await registerPublicClient({ access_token_format: 'opaque' });
  assert.equal(client.access_token_format, 'opaque');
  const { authorize, exchange } = flowFor(client);
  const pkce = pkcePair();
  const tok = await exchange((await authorize('notes:write', pkce)).searchParams.get('code'), pkce.verifier);
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  assert.equal(tok.body.access_token.split('.').length, 1, 'opaque');
  const intro = await introspect(issuer, tok.body.access_token);
  assert.equal(intro.body.active, true);
  assert.equal(intro.body.sub, 'test-user');
  assert.equal(intro.body.aud, MCP_RESOURCE);
  assert.equal(intro.body.client_id, client.client_id);
  assert.equal(intro.body.scope, 'notes:write');

  const bad = await fetch(`${issuer}/reg`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: [redirectUri], access_token_format: 'paseto' }),
  });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error, 'invalid_client_metadata');
});

test('nothing but the ready line on stdout', () => {
  assert.equal(extraStdout, '');
});
