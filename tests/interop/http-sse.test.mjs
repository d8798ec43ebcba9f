// The `conformance-server` example over the legacy HTTP+SSE transport of 2024-11-05
// (`--bind 127.0.0.1:PORT`: GET `/sse` for the event stream, POST `/messages` for requests),
// driven by the official TypeScript SDK client's SSEClientTransport.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { T, byName, connectHttp, listAll, useHttpServer } from './lib.mjs';

const text = (t) => ({ type: 'text', text: t });

describe('conformance-server over HTTP+SSE (2024-11-05)', () => {
  const server = useHttpServer('conformance-server');
  const elicitRequests = [];

  let shared;
  after(() => shared?.then((c) => c.close(), () => {}), T);
  const connection = () =>
    (shared ??= server().then((s) =>
      connectHttp(s.url('/sse'), {
        kind: 'sse',
        serverOutput: s.output,
        capabilities: { elicitation: {} },
        setup(c) {
          c.setRequestHandler(ElicitRequestSchema, (req) => {
            elicitRequests.push(req.params);
            return { action: 'accept', content: { response: 'hi' } };
          });
        },
      }),
    ));
  const getClient = async () => (await connection()).client;
  const call = async (name, args = {}) => (await getClient()).callTool({ name, arguments: args });

  test('connects: GET /sse is an event stream, messages are POSTed to /messages', T, async () => {
    const { client, http } = await connection();
    assert.equal(client.getServerVersion()?.name, 'mcp-conformance-test-server');
    assert.ok(client.getServerCapabilities()?.tools, 'tools capability not declared');
    const get = http.find((h) => h.method === 'GET');
    assert.ok(get, 'no GET request recorded');
    assert.equal(new URL(get.url).pathname, '/sse');
    assert.equal(get.status, 200);
    assert.match(get.contentType ?? '', /^text\/event-stream/);
    const posts = http.filter((h) => h.method === 'POST');
    assert.ok(posts.length >= 2, 'expected initialize and initialized POSTs');
    for (const post of posts) {
      assert.equal(new URL(post.url).pathname, '/messages', `POST went to ${post.url}`);
      assert.ok(post.status >= 200 && post.status < 300, `POST ${post.url} answered HTTP ${post.status}`);
    }
  });

  test('lists tools', T, async () => {
    const tools = await listAll(await getClient(), 'tools');
    for (const name of ['test_simple_text', 'test_error_handling', 'test_elicitation', 'test_structured_content']) {
      assert.ok(byName(tools, name).description, `${name} has no description`);
    }
  });

  test('calls tools', T, async () => {
    assert.deepEqual((await call('test_simple_text')).content, [text('This is a simple text response for testing.')]);
    const error = await call('test_error_handling');
    assert.equal(error.isError, true);
    assert.deepEqual(error.content, [text('This tool intentionally returns an error for testing')]);
    await listAll(await getClient(), 'tools'); // lets the SDK validate against the outputSchema
    const structured = await call('test_structured_content', { city: 'Paris' });
    assert.deepEqual(structured.structuredContent, { city: 'Paris', temperatureC: 21.5, conditions: 'sunny' });
  });

  test('elicitation round trip (test_elicitation)', T, async () => {
    elicitRequests.length = 0;
    const result = await call('test_elicitation', { message: 'Please answer' });
    assert.equal(elicitRequests.length, 1, 'expected exactly one elicitation/create request');
    assert.equal(elicitRequests[0].message, 'Please answer');
    assert.deepEqual(result.content, [text('User response: action=accept, content={"response":"hi"}')]);
  });
});
