#!/usr/bin/env node
// A real OpenID provider (panva's `oidc-provider`, pinned in package.json) for the resource-server
// auth tests. Listens on 127.0.0.1 only, prints ONE JSON line on stdout once it is listening, and
// logs everything else to stderr. See README.md in this folder for the contract.
//
// Nothing here re-implements OAuth: tokens, discovery, introspection, revocation, DCR, PKCE and the
// authorization-code flow are oidc-provider's own code paths. What this file adds:
//   - configuration (clients, resource indicators, TTLs, keys);
//   - an interaction endpoint that logs in and consents automatically (via the public
//     interactionDetails/interactionResult API), so a headless client that keeps cookies gets a code;
//   - `/.well-known/oauth-authorization-server` (RFC 8414) serving the same document as
//     `/.well-known/openid-configuration`, which oidc-provider does not route by itself;
//   - an admin listener on a second port for key rotation and fault injection.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import process from 'node:process';

// oidc-provider prints its NOTICEs with console.info (stdout). stdout belongs to the one JSON line.
console.log = console.info = console.debug = (...args) => console.error(...args);

const { default: Provider, errors } = await import('oidc-provider');

const env = process.env;
const HOST = '127.0.0.1';

function intEnv(name, dflt, { min = 0 } = {}) {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return n;
}
function listEnv(name, dflt) {
  const raw = env[name];
  if (raw === undefined) return dflt;
  return raw.split(/[\s,]+/).filter(Boolean);
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------
const PORT = intEnv('OIDC_PORT', 0);
const ADMIN_PORT = intEnv('OIDC_ADMIN_PORT', 0);
const MCP_RESOURCE = env.MCP_RESOURCE || 'http://127.0.0.1:8080/mcp';
const RESOURCE_SCOPE = (env.OIDC_RESOURCE_SCOPES || 'notes:read notes:write').split(/[\s,]+/).filter(Boolean).join(' ');
const EXTRA_RESOURCES = listEnv('OIDC_EXTRA_RESOURCES', ['https://other.example/mcp']);
const TOKEN_TTL = intEnv('OIDC_TOKEN_TTL', 600, { min: 1 });
const SHORT_TOKEN_TTL = intEnv('OIDC_SHORT_TOKEN_TTL', 1, { min: 1 });
const SIGNING_ALG = env.OIDC_SIGNING_ALG || 'ES256';
const MAX_ROTATIONS = intEnv('OIDC_MAX_ROTATIONS', 4);
const SUBJECT = env.OIDC_TEST_SUBJECT || 'test-user';
const DEFAULT_RESOURCE = env.OIDC_NO_DEFAULT_RESOURCE === '1' ? undefined : MCP_RESOURCE;
const KEYS_FILE = env.OIDC_KEYS_FILE || '';
const JWKS_CACHE_CONTROL = env.OIDC_JWKS_CACHE_CONTROL || '';

for (const r of [MCP_RESOURCE, ...EXTRA_RESOURCES]) {
  if (!URL.canParse(r) || r.includes('#')) throw new Error(`not an absolute URI without fragment: ${r}`);
}

// Pre-registered confidential clients. Secrets are fixed so Rust tests can hard-code them.
// `access_token_format` ("jwt" | "opaque") and `access_token_ttl` (seconds) are client metadata
// this provider adds (extraClientMetadata); DCR clients may send them too.
const CLIENTS = [
  // JWT access tokens (aud = the requested resource) through client_credentials.
  { client_id: 'rs-test', client_secret: 'rs-test-secret', scope: RESOURCE_SCOPE },
  // Same, but its access tokens are OPAQUE (aud = MCP_RESOURCE, visible through introspection).
  { client_id: 'rs-opaque', client_secret: 'rs-opaque-secret', scope: RESOURCE_SCOPE, access_token_format: 'opaque' },
  // JWT access tokens that expire after OIDC_SHORT_TOKEN_TTL seconds (default 1).
  { client_id: 'rs-short', client_secret: 'rs-short-secret', scope: RESOURCE_SCOPE, access_token_ttl: SHORT_TOKEN_TTL },
  // Same, opaque: introspection reports active:false once it has expired.
  {
    client_id: 'rs-short-opaque',
    client_secret: 'rs-short-opaque-secret',
    scope: RESOURCE_SCOPE,
    access_token_format: 'opaque',
    access_token_ttl: SHORT_TOKEN_TTL,
  },
  // For the resource server itself: introspection (and revocation) only; client_secret_basic.
  { client_id: 'introspector', client_secret: 'introspector-secret', grant_types: [] },
  // Registered for client_secret_post (oidc-provider accepts basic and post from either client).
  {
    client_id: 'introspector-post',
    client_secret: 'introspector-post-secret',
    grant_types: [],
    token_endpoint_auth_method: 'client_secret_post',
  },
].map((c) => ({
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  ...c,
}));

// OIDC_LOGIN_CLIENT = JSON {client_id, client_secret, redirect_uris}: a confidential client that
// logs users in with the authorization code flow (an MCP server using this provider as its
// upstream login). Its tokens are for userinfo (no default resource), and the `profile` and
// `email` scopes are enabled for it.
const LOGIN_CLIENT = env.OIDC_LOGIN_CLIENT ? JSON.parse(env.OIDC_LOGIN_CLIENT) : null;
if (LOGIN_CLIENT) {
  if (!LOGIN_CLIENT.client_id || !LOGIN_CLIENT.client_secret || !Array.isArray(LOGIN_CLIENT.redirect_uris)) {
    throw new Error('OIDC_LOGIN_CLIENT needs client_id, client_secret and redirect_uris');
  }
  CLIENTS.push({
    client_id: LOGIN_CLIENT.client_id,
    client_secret: LOGIN_CLIENT.client_secret,
    redirect_uris: LOGIN_CLIENT.redirect_uris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: 'openid profile email',
    token_endpoint_auth_method: 'client_secret_basic',
  });
}

// ---------------------------------------------------------------------------------------------
// Signing keys. oidc-provider takes its keystore at construction and has no public API to add a
// key later, so the keystore holds 1 + OIDC_MAX_ROTATIONS keys from the start, and only the
// *published* ones are served at jwks_uri (the response is filtered below). A rotation publishes
// the next key and makes it the one that signs access tokens (via the resource server's
// jwt.sign.kid). Older keys stay published. ID tokens keep using the first key (always published).
// ---------------------------------------------------------------------------------------------
function keyParamsFor(alg) {
  switch (alg) {
    case 'ES256': return ['ec', { namedCurve: 'P-256' }];
    case 'RS256':
    case 'PS256': return ['rsa', { modulusLength: 2048 }];
    case 'EdDSA':
    case 'Ed25519': return ['ed25519', {}];
    default: throw new Error(`OIDC_SIGNING_ALG must be ES256, RS256, PS256 or EdDSA, got ${alg}`);
  }
}
const [keyType, keyOpts] = keyParamsFor(SIGNING_ALG);
const generateKeyPair = (t, o) => new Promise((resolve, reject) => {
  crypto.generateKeyPair(t, o, (err, _pub, priv) => (err ? reject(err) : resolve(priv)));
});
// OIDC_KEYS_FILE: when the file exists, its private keys ({"keys": [...]}, e.g. written by an
// earlier provider) are used; otherwise the generated ones are written there. Two providers given
// the same file sign with the same keys and kids: a token of one carries the "wrong" issuer for
// the other while its signature verifies against the other's JWKS.
async function loadOrGenerateKeys() {
  if (KEYS_FILE && fs.existsSync(KEYS_FILE)) {
    const { keys } = JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8'));
    if (!Array.isArray(keys) || !keys.length || keys.some((k) => k.alg !== SIGNING_ALG || !k.d || !k.kid)) {
      throw new Error(`${KEYS_FILE}: expected {"keys": [private ${SIGNING_ALG} JWKs with kid]}`);
    }
    console.error(`oidc: ${keys.length} signing keys loaded from ${KEYS_FILE}`);
    return keys;
  }
  const keys = await Promise.all(
    Array.from({ length: 1 + MAX_ROTATIONS }, async (_, i) => {
      const jwk = (await generateKeyPair(keyType, keyOpts)).export({ format: 'jwk' });
      return { ...jwk, kid: `key-${i + 1}-${crypto.randomBytes(4).toString('hex')}`, alg: SIGNING_ALG, use: 'sig' };
    }),
  );
  if (KEYS_FILE) fs.writeFileSync(KEYS_FILE, JSON.stringify({ keys }), { mode: 0o600 });
  return keys;
}
const privateJwks = await loadOrGenerateKeys();
let publishedCount = 1;
const activeKid = () => privateJwks[publishedCount - 1].kid;
const publishedKids = () => privateJwks.slice(0, publishedCount).map((k) => k.kid);

// ---------------------------------------------------------------------------------------------
// Faults, set through the admin listener: make an endpoint fail the way a broken AS would.
// ---------------------------------------------------------------------------------------------
const FAULT_TARGETS = {
  jwks: (p) => p === '/jwks',
  discovery: (p) => p === '/.well-known/openid-configuration' || p === '/.well-known/oauth-authorization-server',
  introspection: (p) => p === '/token/introspection',
  token: (p) => p === '/token',
};
const FAULT_MODES = ['ok', 'error', 'hang', 'delay', 'garbage'];
const faults = {}; // target -> { mode, ms }
const requestCounts = Object.fromEntries(Object.keys(FAULT_TARGETS).map((t) => [t, 0]));
const hanging = new Set(); // resolvers of requests held by mode "hang"

// ---------------------------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------------------------
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, HOST, resolve);
});
const port = server.address().port;
const issuer = `http://${HOST}:${port}`;

const configuration = {
  clients: CLIENTS,
  jwks: { keys: privateJwks },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  // Resource scopes must be listed here too, or pre-registered clients whose `scope` names them
  // are rejected ("scope must only contain Authorization Server supported scope values").
  scopes: ['openid', 'offline_access', ...(LOGIN_CLIENT ? ['profile', 'email'] : []), ...RESOURCE_SCOPE.split(' ')],
  // Account claims by scope (findAccount below): `profile` and `email` for the login client.
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  responseTypes: ['code'],
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: SIGNING_ALG,
  },
  enabledJWA: {
    idTokenSigningAlgValues: [SIGNING_ALG],
  },
  pkce: { required: () => true }, // S256 only: oidc-provider supports no other method
  features: {
    devInteractions: { enabled: false }, // replaced by the auto-consenting endpoint below
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // any authenticated confidential client may introspect (the RS uses `introspector`)
      allowedPolicy: async (ctx, client) => client.clientAuthMethod !== 'none',
    },
    revocation: {
      enabled: true,
      // a client may revoke its own tokens; the introspector clients (the RS role) any token
      allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId
        || client.clientId.startsWith('introspector'),
    },
    registration: { enabled: true }, // open DCR, no initial access token
    resourceIndicators: {
      enabled: true,
      // The login client's tokens are for userinfo: no default resource for it.
      defaultResource: async (ctx, client, oneOf) => oneOf
        || (LOGIN_CLIENT && client?.clientId === LOGIN_CLIENT.client_id ? undefined : DEFAULT_RESOURCE),
      // code / refresh exchanges without a `resource` parameter get the granted resource,
      // instead of oidc-provider's default: an opaque, audience-less token for userinfo.
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator, client) => {
        if (resourceIndicator !== MCP_RESOURCE && !EXTRA_RESOURCES.includes(resourceIndicator)) {
          throw new errors.InvalidTarget(`unknown resource indicator ${resourceIndicator}`);
        }
        const opaque = client?.access_token_format === 'opaque';
        return {
          scope: RESOURCE_SCOPE,
          audience: resourceIndicator,
          accessTokenTTL: client?.access_token_ttl || TOKEN_TTL,
          accessTokenFormat: opaque ? 'opaque' : 'jwt',
          ...(opaque ? {} : { jwt: { sign: { alg: SIGNING_ALG, kid: activeKid() } } }),
        };
      },
    },
  },
  extraClientMetadata: {
    properties: ['access_token_format', 'access_token_ttl'],
    validator(ctx, key, value) {
      if (value === undefined) return;
      if (key === 'access_token_format' && !['jwt', 'opaque'].includes(value)) {
        throw new errors.InvalidClientMetadata('access_token_format must be "jwt" or "opaque"');
      }
      if (key === 'access_token_ttl' && !(Number.isInteger(value) && value > 0)) {
        throw new errors.InvalidClientMetadata('access_token_ttl must be a positive integer (seconds)');
      }
    },
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Every account has a verified e-mail `<sub>@example.test`, its sub as preferred_username, and
  // the name `Test User <sub>`; oidc-provider releases them by scope (`claims` above).
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({
      sub,
      email: `${sub}@example.test`,
      email_verified: true,
      name: `Test User ${sub}`,
      preferred_username: sub,
    }),
  }),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || TOKEN_TTL,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || TOKEN_TTL,
    AuthorizationCode: 60,
    IdToken: TOKEN_TTL,
    RefreshToken: 24 * 3600,
    Grant: 24 * 3600,
    Interaction: 600,
    Session: 24 * 3600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(issuer, configuration);

provider.on('server_error', (ctx, err) => console.error('oidc: server_error', err));
provider.on('grant.error', (ctx, err) => console.error('oidc: grant.error', err?.error || '', err?.error_description || err?.message));
provider.on('introspection.error', (ctx, err) => console.error('oidc: introspection.error', err?.error_description || err?.message));
provider.on('registration_create.error', (ctx, err) => console.error('oidc: registration.error', err?.error_description || err?.message));
provider.on('authorization.error', (ctx, err) => console.error('oidc: authorization.error', err?.error, err?.error_description));

// Fault injection (first, so it wraps everything).
provider.use(async (ctx, next) => {
  const target = Object.keys(FAULT_TARGETS).find((t) => FAULT_TARGETS[t](ctx.path));
  if (target && ctx.method !== 'OPTIONS') requestCounts[target] += 1;
  const fault = target && faults[target];
  if (!fault || fault.mode === 'ok') return next();
  console.error(`oidc: fault ${fault.mode} on ${ctx.method} ${ctx.path}`);
  switch (fault.mode) {
    case 'error':
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable', error_description: 'injected fault' };
      return undefined;
    case 'garbage':
      ctx.status = 200;
      ctx.type = 'application/json';
      ctx.body = '{"this is not": ';
      return undefined;
    case 'hang':
      await new Promise((resolve) => {
        hanging.add(resolve);
        ctx.req.once('close', resolve);
      });
      if (ctx.req.destroyed) return undefined;
      return next();
    case 'delay':
      await new Promise((resolve) => { setTimeout(resolve, fault.ms); });
      return next();
    default:
      return next();
  }
});

// RFC 8414 alias, and the JWKS filter that hides not-yet-rotated-in keys.
provider.use(async (ctx, next) => {
  if (ctx.path === '/.well-known/oauth-authorization-server') {
    ctx.path = '/.well-known/openid-configuration';
  }
  await next();
  if (ctx.path === '/jwks' && ctx.status === 200 && Array.isArray(ctx.body?.keys)) {
    const published = new Set(publishedKids());
    ctx.body = { keys: ctx.body.keys.filter((k) => published.has(k.kid)) };
    if (JWKS_CACHE_CONTROL) ctx.set('Cache-Control', JWKS_CACHE_CONTROL);
  }
});

// Headless login + consent. oidc-provider redirects the user agent here (interactions.url); we
// answer the prompt through the public interaction API and send the user agent back to the
// authorization endpoint, which resumes the request (its resume step checks the
// `_interaction_resume` cookie, so the user agent must keep cookies across the redirects).
// login: accountId = the request's login_hint, else OIDC_TEST_SUBJECT (default "test-user").
// consent: everything requested that the client and resource allow is granted.
provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([^/]+)$/.exec(ctx.path);
  if (!m || (ctx.method !== 'GET' && ctx.method !== 'POST')) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== m[1]) throw new errors.SessionNotFound('interaction uid mismatch');
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    const accountId = typeof params.login_hint === 'string' && params.login_hint ? params.login_hint : SUBJECT;
    result = { login: { accountId } };
  } else if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    result = { consent: { grantId } };
  } else {
    result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
  }
  console.error(`oidc: interaction ${details.uid} ${prompt.name} -> auto-${Object.keys(result)[0]}`);
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.redirect(returnTo);
  ctx.status = 303;
  return undefined;
});

server.on('request', provider.callback());

// ---------------------------------------------------------------------------------------------
// Admin listener (second port, 127.0.0.1): key rotation and faults. Also SIGUSR2 = rotate.
// ---------------------------------------------------------------------------------------------
function rotate() {
  if (publishedCount >= privateJwks.length) {
    throw new Error(`no key left to rotate to (OIDC_MAX_ROTATIONS=${MAX_ROTATIONS})`);
  }
  const previous = activeKid();
  publishedCount += 1;
  const kid = activeKid();
  console.error(`oidc: rotated signing key: new kid ${kid} (previous ${previous}, still published)`);
  return { kid, previous, published: publishedKids() };
}
function state() {
  return {
    issuer,
    active_kid: activeKid(),
    published: publishedKids(),
    rotations_left: privateJwks.length - publishedCount,
    faults,
    requests: requestCounts,
  };
}
function setFault(target, mode, ms) {
  if (!FAULT_TARGETS[target]) throw new Error(`unknown fault target ${target}; one of ${Object.keys(FAULT_TARGETS).join(', ')}`);
  if (!FAULT_MODES.includes(mode)) throw new Error(`unknown fault mode ${mode}; one of ${FAULT_MODES.join(', ')}`);
  if (mode === 'ok') delete faults[target];
  else faults[target] = { mode, ...(mode === 'delay' ? { ms: Number(ms) || 2000 } : {}) };
  if (mode !== 'hang') {
    for (const resolve of hanging) resolve();
    hanging.clear();
  }
  console.error(`oidc: fault ${target} = ${mode}`);
  return state();
}

process.on('SIGUSR2', () => {
  try { rotate(); } catch (e) { console.error(`oidc: ${e.message}`); }
});

const admin = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://admin');
  let body = '';
  for await (const chunk of req) body += chunk;
  const reply = (status, obj) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(obj));
  };
  try {
    const input = body ? JSON.parse(body) : {};
    const arg = (k) => input[k] ?? url.searchParams.get(k);
    if (url.pathname === '/state' && req.method === 'GET') return reply(200, state());
    if (url.pathname === '/rotate' && req.method === 'POST') return reply(200, rotate());
    if (url.pathname === '/fault' && req.method === 'POST') return reply(200, setFault(arg('target'), arg('mode'), arg('ms')));
    return reply(404, { error: 'not_found', routes: ['GET /state', 'POST /rotate', 'POST /fault?target=jwks|discovery|introspection|token&mode=ok|error|hang|delay|garbage[&ms=N]'] });
  } catch (e) {
    return reply(409, { error: 'admin_error', message: e.message });
  }
});
await new Promise((resolve, reject) => {
  admin.once('error', reject);
  admin.listen(ADMIN_PORT, HOST, resolve);
});
const adminPort = admin.address().port;

// ---------------------------------------------------------------------------------------------
// Ready: the one stdout line. Then shut down cleanly on SIGTERM/SIGINT, and, with
// OIDC_EXIT_ON_STDIN_EOF=1, when stdin reaches EOF: a parent that spawns us with a stdin pipe and
// then dies (even by SIGKILL) takes us down with it. Opt-in, because an inherited stdin that is
// /dev/null or already closed would stop us at once.
// ---------------------------------------------------------------------------------------------
process.stdout.write(`${JSON.stringify({
  issuer,
  port,
  admin: `http://${HOST}:${adminPort}`,
  admin_port: adminPort,
  mcp_resource: MCP_RESOURCE,
  extra_resources: EXTRA_RESOURCES,
  active_kid: activeKid(),
})}\n`);
console.error(`oidc: oidc-provider listening at ${issuer} (admin ${adminPort}), resource ${MCP_RESOURCE}, alg ${SIGNING_ALG}, ttl ${TOKEN_TTL}s`);

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`oidc: stopping (${signal})`);
  for (const resolve of hanging) resolve();
  server.close();
  admin.close();
  server.closeAllConnections();
  admin.closeAllConnections();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (env.OIDC_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.resume();
}
