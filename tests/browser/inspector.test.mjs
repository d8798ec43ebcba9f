// The real MCP Inspector 2.x web UI (pinned @modelcontextprotocol/inspector, on the pinned Node 22)
// against the github-oauth example, GitHub played by the stand-in (tests/github-standin), all in
// headless Chromium: add the server in the Inspector's UI, switch it on, and the Inspector finds the
// authorization server from our 401, registers itself (DCR), sends the browser to our consent page
// (approved), then to GitHub's sign-in and Authorize pages, back through our /callback to the
// Inspector's /oauth/callback; the Inspector connects, lists the tools and calls `whoami`, whose
// result names the GitHub user. Once over Streamable HTTP (/mcp), once over HTTP+SSE (/sse).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startGitHub } from '../github-standin/harness.mjs';
import { artefactsDir, launchChromium, startGitHubOAuthServer, startInspector, until } from './lib.mjs';

/** One Inspector flow takes a few seconds; Chromium and the debug build on 2 cores need headroom. */
const T = { timeout: 90_000 };

describe('MCP Inspector 2.x signs in with GitHub through our authorization server', () => {
  let gh;
  let as;
  let browser;
  let dir;
  let octocat;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inspector-'));
    gh = await startGitHub();
    as = await startGitHubOAuthServer(gh, { sealingKeyFile: join(dir, 'seal.key'), env: { RUST_LOG: 'info' } });
    browser = await launchChromium();
    mkdirSync(artefactsDir(), { recursive: true });
    octocat = await (await fetch(`${gh.url}/users/octocat`, { headers: { 'user-agent': 'browser-test' } })).json();
  }, T);

  after(async () => {
    await browser?.close();
    await as?.stop();
    await gh?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  /** Our server's log without terminal colours. */
  const serverLog = () => as.stderr().replace(/\x1b\[[0-9;]*m/g, '');
  const screenshot = (page, name) => page.screenshot({ path: join(artefactsDir(), name), fullPage: true });

  /**
   * The Inspector's Network panel (newest first), as `{ method, kind, status, url }` entries, read
   * from the panel's text: each entry starts with its time, then method, kind badges, status, URL.
   */
  async function networkEntries(page) {
    await page.getByText('Network', { exact: true }).click();
    await page.getByText(/^Requests \(\d+\)$/).waitFor();
    const text = await page.locator('body').innerText();
    const panel = text.slice(text.search(/Requests \(\d+\)/));
    return panel
      .split(/^\d\d:\d\d:\d\d$/m)
      .slice(1)
      .map((chunk) => ({
        method: chunk.match(/^(GET|POST|DELETE)$/m)?.[1],
        kind: (chunk.match(/^(TRANSPORT|AUTH)$/m)?.[1] ?? '') + (chunk.match(/^(DISCOVERY|REGISTRATION|TOKEN|REFRESH)$/m) ? ` ${chunk.match(/^(DISCOVERY|REGISTRATION|TOKEN|REFRESH)$/m)[1]}` : ''),
        status: Number(chunk.match(/^(\d{3})\b/m)?.[1]),
        url: chunk.match(/https?:\/\/\S+/)?.[0],
      }))
      .reverse();
  }

  /**
   * Runs the whole flow in a fresh Inspector and browser context for `transport` (the Inspector's
   * option label) at `endpoint` (our URL), checking each step from the page, our server's log and
   * the stand-in's records.
   */
  async function signInAndCallWhoami(t, { serverId, transport, endpoint, shot, challengeInPanel }) {
    await gh.reset();
    const inspectorDir = mkdtempSync(join(dir, `${serverId}-`));
    const inspector = await startInspector(inspectorDir);
    t.after(() => inspector.stop());
    const context = await browser.newContext();
    t.after(() => context.close());
    // Loopback only: the Inspector's page asks a font CDN for its fonts; nothing leaves the machine.
    await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/]|localhost[:/])/, (route) => route.abort());
    const page = await context.newPage();
    const navigations = [];
    page.on('request', (req) => {
      if (req.isNavigationRequest() && req.frame() === page.mainFrame()) navigations.push(new URL(req.url()));
    });
    const failure = (what) => `${what}\n--- page:\n${navigations.join('\n')}\n--- inspector:\n${inspector.output()}\n--- server:\n${serverLog()}`;

    // The Inspector's UI: Add Servers -> Add manually -> ID, transport, URL -> Add.
    await page.goto(inspector.url);
    await page.getByRole('button', { name: 'Add Servers' }).click();
    await page.getByRole('menuitem', { name: /Add manually/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Server ID').fill(serverId);
    await dialog.getByRole('textbox', { name: 'Transport' }).click();
    await page.getByRole('option', { name: transport }).click();
    await dialog.getByLabel('URL').fill(endpoint);
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.waitFor({ state: 'hidden' });

    // Switch it on: the 401 starts OAuth, and the browser leaves for our consent page.
    const toggle = page.getByRole('switch', { name: `Connect or disconnect "${serverId}"` });
    // (Over SSE the Inspector starts the authorization twice at once, the first navigation being
    // aborted by the second; so wait for the page itself rather than for one navigation.)
    const allow = page.getByRole('button', { name: 'Allow and continue' });
    const consentPage = allow.waitFor({ timeout: 20_000 });
    // Mantine draws the switch's track over its input; the input is what carries the role and name.
    // A failure shows as a notification instead; stop at once with its text.
    const notice = page.getByText(/^(OAuth authorization failed|Failed to connect)/).first();
    const failed = notice.waitFor({ timeout: 20_000 }).then(() => notice.locator('..').innerText(), () => null);
    await toggle.click({ force: true });
    const outcome = await Promise.race([consentPage.then(() => null, (e) => e.message), failed]);
    if (outcome !== null) {
      await screenshot(page, `${shot}-no-consent.png`);
      throw new Error(failure(`the Inspector did not reach our consent page: ${outcome}`));
    }
    const authorize = new URL(page.url());
    assert.equal(`${authorize.origin}${authorize.pathname}`, `${as.base}/authorize`, 'our consent page');
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorize.searchParams.get('resource'), endpoint, 'the resource indicator is the endpoint the Inspector connects to');
    assert.equal(authorize.searchParams.get('redirect_uri'), `${inspector.origin}/oauth/callback`);
    const registered = authorize.searchParams.get('client_id');
    assert.ok(registered, 'a client_id');
    assert.match(serverLog(), new RegExp(`client registered client_id=${registered}.*MCP Inspector`), 'our server registered the Inspector by DCR');

    // Our consent page names the Inspector and GitHub; approve.
    const consentText = await page.textContent('body');
    assert.match(consentText, /MCP Inspector/, `the client is named: ${consentText}`);
    assert.match(consentText, /sign in with at GitHub/, `GitHub is named: ${consentText}`);
    await screenshot(page, `${shot}-consent.png`);
    await allow.click();

    // GitHub (the stand-in): sign in, Authorize.
    await page.waitForURL((u) => u.origin === gh.url && u.pathname === '/login');
    assert.match(await page.textContent('h1'), /Sign in to GitHub/);
    await page.fill('#login_field', 'octocat');
    await page.fill('#password', 'octocat-password');
    await page.click('input[name="commit"]');
    await page.locator('#js-oauth-authorize-btn').click();

    // Back through our /callback to the Inspector's /oauth/callback, then connected.
    const inspectorBack = await until('the Inspector callback', () =>
      navigations.find((u) => u.origin === inspector.origin && u.pathname === '/oauth/callback'),
    ).catch((e) => { throw new Error(failure(e.message)); });
    assert.ok(inspectorBack.searchParams.get('code'), `${inspectorBack}`);
    assert.equal(inspectorBack.searchParams.get('iss'), as.issuer);
    assert.equal(inspectorBack.searchParams.get('state'), authorize.searchParams.get('state'));
    const path = navigations.map((u) => `${u.origin}${u.pathname}`);
    const order = [
      `${as.base}/authorize`, `${as.base}/authorize/consent`, `${gh.url}/login/oauth/authorize`, `${gh.url}/login`,
      `${gh.url}/login/oauth/authorize`, `${as.base}/callback`, `${inspector.origin}/oauth/callback`,
    ];
    let from = 0;
    const inOrder = order.every((step) => (from = path.indexOf(step, from) + 1) > 0);
    assert.ok(inOrder, `the browser went ${order.join(' -> ')}: ${path.join(' -> ')}`);

    await until('the Inspector connected', () => toggle.isChecked(), 20_000).catch(async (e) => {
      await screenshot(page, `${shot}-not-connected.png`);
      throw new Error(failure(e.message));
    });
    await page.getByText('Authorization complete').waitFor();
    const card = page.locator('div').filter({ has: page.getByText(serverId, { exact: true }) }).filter({ has: toggle }).last();
    await card.getByText('Connected', { exact: true }).waitFor();
    await screenshot(page, `${shot}-connected.png`);

    // What the Inspector sent, from its own Network panel: 401, discovery, registration, token, MCP.
    const net = await networkEntries(page);
    // The Inspector's panel lists the 401 of a Streamable HTTP POST, not that of the SSE stream's GET:
    // for /sse the challenge is checked directly (it names the metadata the Inspector then fetched).
    let first401 = net.findIndex((e) => e.status === 401 && e.url === endpoint);
    if (!challengeInPanel) {
      const challenge = await fetch(endpoint, { headers: { accept: 'text/event-stream' } });
      await challenge.body?.cancel();
      assert.equal(challenge.status, 401);
      const header = challenge.headers.get('www-authenticate') ?? '';
      const metadataUrl = header.match(/resource_metadata="([^"]+)"/)?.[1];
      assert.ok(metadataUrl && net.some((e) => e.kind === 'AUTH DISCOVERY' && e.url === metadataUrl), `${header}\n${JSON.stringify(net)}`);
      first401 = -Infinity;
    }
    const discovery = net.findIndex((e) => e.kind === 'AUTH DISCOVERY' && e.url?.includes('/.well-known/oauth-protected-resource') && e.status === 200);
    const asMetadata = net.findIndex((e) => e.kind === 'AUTH DISCOVERY' && e.url === `${as.base}/.well-known/oauth-authorization-server` && e.status === 200);
    const registration = net.findIndex((e) => e.kind === 'AUTH REGISTRATION' && e.url === `${as.base}/register` && e.status === 201);
    const token = net.findIndex((e) => e.kind === 'AUTH TOKEN' && e.url === `${as.base}/token` && e.status === 200);
    const mcpOk = net.findLastIndex((e) => e.kind === 'TRANSPORT' && e.status === 200);
    const steps = { first401, discovery, asMetadata, registration, token, mcpOk };
    assert.ok(
      Object.values(steps).every((i) => i !== -1) && first401 < discovery && discovery < asMetadata && asMetadata < registration && registration < token && token < mcpOk,
      `401 -> protected-resource metadata -> AS metadata -> DCR -> token -> MCP: ${JSON.stringify(steps)}\n${JSON.stringify(net, null, 1)}`,
    );

    // Our server signed octocat in at GitHub once; the stand-in saw our app, not the Inspector.
    assert.match(serverLog(), /user logged in upstream.*subject=github:583231/);
    const ghAuthorizations = await gh.authorizations();
    assert.ok(ghAuthorizations.length > 0, 'GitHub was asked');
    for (const a of ghAuthorizations) {
      assert.equal(a.client_id, 'Iv1.standin', JSON.stringify(a));
      assert.equal(a.redirect_uri, `${as.base}/callback`, JSON.stringify(a));
    }
    const ghTokens = await gh.tokens();
    assert.deepEqual(ghTokens.map((x) => [x.client_id, x.login]), [['Iv1.standin', 'octocat']]);

    // Tools: the three tools listed; whoami names the stand-in user.
    await page.getByRole('radiogroup').getByText('Tools', { exact: true }).click();
    await page.getByText('Tools (3)').waitFor();
    for (const name of ['whoami', 'admin_report', 'my_repositories']) {
      await page.getByRole('button', { name: new RegExp(`^${name}`) }).waitFor();
    }
    await page.getByRole('button', { name: /^whoami/ }).click();
    await page.getByText('Who you are, as GitHub told this server when you signed in.').waitFor();
    await page.getByRole('button', { name: 'Execute Tool' }).click();
    await page.getByText('Structured Output').waitFor();
    const results = await page.locator('main').innerText();
    await screenshot(page, `${shot}-whoami.png`);
    for (const line of [
      '"authenticated": true',
      '"login": "octocat"',
      `"subject": "github:${octocat.id}"`,
      `"name": "${octocat.name}"`,
      `"email": "${octocat.email}"`,
    ]) {
      assert.ok(results.includes(line), `whoami shows ${line}:\n${results}`);
    }
  }

  test('Streamable HTTP at /mcp', T, (t) =>
    signInAndCallWhoami(t, { serverId: 'github-oauth-http', transport: 'streamable-http', endpoint: as.resource, shot: 'inspector-http', challengeInPanel: true }),
  );

  test('HTTP+SSE at /sse', T, (t) =>
    signInAndCallWhoami(t, { serverId: 'github-oauth-sse', transport: /^sse/, endpoint: `${as.base}/sse`, shot: 'inspector-sse', challengeInPanel: false }),
  );
});
