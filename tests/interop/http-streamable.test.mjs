// The `conformance-server` example over Streamable HTTP (`--bind 127.0.0.1:PORT`, endpoint
// `/mcp`), driven by the official TypeScript SDK client's StreamableHTTPClientTransport.
// The SDK client speaks the session-based (2025-11-25) era: initialize, Mcp-Session-Id, DELETE.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  ProgressNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { T, assertMcpError, byName, connectHttp, listAll, useHttpServer, waitFor } from './lib.mjs';

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';
const text = (t) => ({ type: 'text', text: t });
const user = (content) => ({ role: 'user', content });

describe('conformance-server over Streamable HTTP', () => {
  const server = useHttpServer('conformance-server');
  const samplingRequests = [];
  const elicitRequests = [];
  const logs = [];

  const open = async (options = {}) => {
    const s = await server();
    return connectHttp(s.url('/mcp'), { serverOutput: s.output, ...options });
  };

  // One session shared by the feature tests.
  let shared;
  after(() => shared?.then((c) => c.close(), () => {}), T);
  const session = () =>
    (shared ??= open({
      capabilities: { sampling: {}, elicitation: {} },
      setup(c) {
        c.setRequestHandler(CreateMessageRequestSchema, (req) => {
          samplingRequests.push(req.params);
          return {
            role: 'assistant',
            content: text('This is a test response from the client'),
            model: 'test-model',
            stopReason: 'endTurn',
          };
        });
        c.setRequestHandler(ElicitRequestSchema, (req) => {
          elicitRequests.push(req.params);
          return { action: 'accept', content: { response: 'hi' } };
        });
        c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params));
      },
    }));
  const getClient = async () => (await session()).client;
  const call = async (name, args = {}, options) =>
    (await getClient()).callTool({ name, arguments: args }, undefined, options);

  test('initializes a session with the expected name and capabilities', T, async () => {
    const { client, transport, http } = await session();
    assert.equal(client.getServerVersion()?.name, 'mcp-conformance-test-server');
    const caps = client.getServerCapabilities();
    for (const cap of ['tools', 'resources', 'prompts', 'logging', 'completions']) {
      assert.ok(caps?.[cap], `capability ${cap} not declared`);
    }
    assert.equal(transport.protocolVersion, '2025-11-25', 'negotiated protocol version');
    const id = transport.sessionId;
    assert.ok(id, `no Mcp-Session-Id on the initialize response (HTTP: ${JSON.stringify(http[0])})`);
    assert.match(id, /^[\x21-\x7E]+$/, 'session id must be visible ASCII');
  });

  test('ping', T, async () => {
    assert.deepEqual(await (await getClient()).ping(), {});
  });

  describe('tools', () => {
    test('lists the tools with descriptions and schemas', T, async () => {
      const tools = await listAll(await getClient(), 'tools');
      const expected = {
        test_simple_text: [],
        test_image_content: [],
        test_audio_content: [],
        test_embedded_resource: [],
        test_multiple_content_types: [],
        test_tool_with_logging: [],
        test_tool_with_progress: [],
        test_error_handling: [],
        test_sampling: ['prompt'],
        test_elicitation: ['message'],
        test_structured_content: ['city'],
      };
      for (const [name, params] of Object.entries(expected)) {
        const tool = byName(tools, name);
        assert.ok(tool.description, `${name} has no description`);
        assert.equal(tool.inputSchema.type, 'object', `${name} inputSchema type`);
        for (const p of params) assert.ok(tool.inputSchema.properties?.[p], `${name} lacks input property ${p}`);
      }
    });

    const fixed = {
      test_simple_text: [text('This is a simple text response for testing.')],
      test_image_content: [{ type: 'image', data: PNG, mimeType: 'image/png' }],
      test_audio_content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }],
      test_embedded_resource: [
        {
          type: 'resource',
          resource: {
            uri: 'test://embedded-resource',
            mimeType: 'text/plain',
            text: 'This is an embedded resource content.',
          },
        },
      ],
      test_multiple_content_types: [
        text('Multiple content types test:'),
        { type: 'image', data: PNG, mimeType: 'image/png' },
        {
          type: 'resource',
          resource: {
            uri: 'test://mixed-content-resource',
            mimeType: 'application/json',
            text: '{"test":"data","value":123}',
          },
        },
      ],
    };
    for (const [name, content] of Object.entries(fixed)) {
      test(name, T, async () => {
        const result = await call(name);
        assert.deepEqual(result.content, content);
        assert.ok(!result.isError, 'isError set on a successful call');
      });
    }

    test('structured output (test_structured_content)', T, async () => {
      await listAll(await getClient(), 'tools'); // lets the SDK validate against the outputSchema
      const result = await call('test_structured_content', { city: 'Paris' });
      const expected = { city: 'Paris', temperatureC: 21.5, conditions: 'sunny' };
      assert.deepEqual(result.structuredContent, expected);
      assert.equal(result.content.length, 1);
      assert.equal(result.content[0].type, 'text');
      assert.deepEqual(JSON.parse(result.content[0].text), expected);
    });

    test('isError result (test_error_handling)', T, async () => {
      const result = await call('test_error_handling');
      assert.equal(result.isError, true);
      assert.deepEqual(result.content, [text('This tool intentionally returns an error for testing')]);
    });

    test('calling an unknown tool is a -32602 protocol error', T, async () => {
      await assertMcpError(call('no_such_tool'), -32602);
    });

    test('progress notifications arrive before the result (test_tool_with_progress)', T, async () => {
      const { sent, received } = await session();
      const before = received.length;
      // onprogress makes the SDK attach a progress token; the notifications are checked from the
      // transport log (see stdio-conformance.test.mjs for why not from the callback).
      const result = await call('test_tool_with_progress', {}, { onprogress: () => {} });
      const request = sent.findLast((m) => m.method === 'tools/call' && m.params?.name === 'test_tool_with_progress');
      const token = request?.params?._meta?.progressToken;
      assert.notEqual(token, undefined, 'the SDK sent no progress token');
      const log = received.slice(before);
      const progress = log
        .filter((m) => m.method === 'notifications/progress' && m.params?.progressToken === token)
        .map((m) => ProgressNotificationSchema.parse(m).params);
      assert.deepEqual(
        progress,
        [0, 50, 100].map((n) => ({
          progressToken: token,
          progress: n,
          total: 100,
          message: `Completed step ${n} of 100`,
        })),
      );
      const resultAt = log.findIndex((m) => m.id === request.id && 'result' in m);
      const lastProgressAt = log.findLastIndex((m) => m.method === 'notifications/progress');
      assert.ok(lastProgressAt < resultAt, 'a progress notification arrived after the result');
      assert.deepEqual(result.content, [text(String(token))]);
    });

    test('log notifications during a call (test_tool_with_logging)', T, async () => {
      await (await getClient()).setLoggingLevel('debug');
      logs.length = 0;
      const result = await call('test_tool_with_logging');
      assert.deepEqual(result.content, [text('Tool with logging executed successfully')]);
      await waitFor(() => logs.length >= 3, 'three log notifications');
      assert.deepEqual(
        logs.map(({ level, data }) => ({ level, data })),
        ['Tool execution started', 'Tool processing data', 'Tool execution completed'].map((data) => ({
          level: 'info',
          data,
        })),
      );
    });

    test('elicitation round trip (test_elicitation)', T, async () => {
      elicitRequests.length = 0;
      const result = await call('test_elicitation', { message: 'Please answer' });
      assert.equal(elicitRequests.length, 1, 'expected exactly one elicitation/create request');
      const [req] = elicitRequests;
      assert.equal(req.message, 'Please answer');
      assert.deepEqual(req.requestedSchema, {
        type: 'object',
        properties: { response: { type: 'string', description: "User's response" } },
        required: ['response'],
      });
      assert.deepEqual(result.content, [text('User response: action=accept, content={"response":"hi"}')]);
    });

    test('sampling round trip (test_sampling)', T, async () => {
      samplingRequests.length = 0;
      const result = await call('test_sampling', { prompt: 'What is 2+2?' });
      assert.equal(samplingRequests.length, 1, 'expected exactly one sampling/createMessage request');
      const [req] = samplingRequests;
      assert.deepEqual(req.messages, [user(text('What is 2+2?'))]);
      assert.equal(req.maxTokens, 100);
      assert.deepEqual(result.content, [text('LLM response: This is a test response from the client')]);
    });
  });

  describe('resources', () => {
    test('lists the static and watched resources', T, async () => {
      const resources = await listAll(await getClient(), 'resources');
      const staticText = byName(resources, 'test://static-text', 'uri');
      assert.equal(staticText.name, 'static-text');
      assert.equal(staticText.mimeType, 'text/plain');
      assert.equal(byName(resources, 'test://static-binary', 'uri').mimeType, 'image/png');
      byName(resources, 'test://watched-resource', 'uri');
    });

    test('reads text and binary resources', T, async () => {
      const client = await getClient();
      const read = async (uri) => (await client.readResource({ uri })).contents;
      assert.deepEqual(await read('test://static-text'), [
        { uri: 'test://static-text', mimeType: 'text/plain', text: 'This is the content of the static text resource.' },
      ]);
      assert.deepEqual(await read('test://static-binary'), [
        { uri: 'test://static-binary', mimeType: 'image/png', blob: PNG },
      ]);
    });

    test('lists and reads the template', T, async () => {
      const client = await getClient();
      const templates = await listAll(client, 'resourceTemplates');
      byName(templates, 'test://template/{id}/data', 'uriTemplate');
      const { contents } = await client.readResource({ uri: 'test://template/123/data' });
      assert.deepEqual(contents, [
        {
          uri: 'test://template/123/data',
          mimeType: 'application/json',
          text: '{"id":"123","templateTest":true,"data":"Data for ID: 123"}',
        },
      ]);
    });

    test('subscribe and unsubscribe', T, async () => {
      const client = await getClient();
      await client.subscribeResource({ uri: 'test://watched-resource' });
      await client.unsubscribeResource({ uri: 'test://watched-resource' });
    });
  });

  describe('prompts', () => {
    test('lists the prompts and their arguments', T, async () => {
      const prompts = await listAll(await getClient(), 'prompts');
      for (const name of ['test_simple_prompt', 'test_prompt_with_embedded_resource', 'test_prompt_with_image']) {
        assert.ok(byName(prompts, name).description, `${name} has no description`);
      }
      const args = byName(prompts, 'test_prompt_with_arguments').arguments ?? [];
      assert.deepEqual(
        args.map(({ name, required }) => ({ name, required })).sort((x, y) => x.name.localeCompare(y.name)),
        [
          { name: 'arg1', required: true },
          { name: 'arg2', required: true },
        ],
      );
    });

    const get = async (name, args) => (await (await getClient()).getPrompt({ name, arguments: args })).messages;

    test('test_simple_prompt', T, async () => {
      assert.deepEqual(await get('test_simple_prompt'), [user(text('This is a simple prompt for testing.'))]);
    });

    test('test_prompt_with_arguments', T, async () => {
      assert.deepEqual(await get('test_prompt_with_arguments', { arg1: 'one', arg2: 'two' }), [
        user(text("Prompt with arguments: arg1='one', arg2='two'")),
      ]);
    });

    test('test_prompt_with_embedded_resource', T, async () => {
      const uri = 'test://example-resource';
      assert.deepEqual(await get('test_prompt_with_embedded_resource', { resourceUri: uri }), [
        user({
          type: 'resource',
          resource: { uri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' },
        }),
        user(text('Please process the embedded resource above.')),
      ]);
    });

    test('test_prompt_with_image', T, async () => {
      assert.deepEqual(await get('test_prompt_with_image'), [
        user({ type: 'image', data: PNG, mimeType: 'image/png' }),
        user(text('Please analyze the image above.')),
      ]);
    });
  });

  test('closes the shared session', T, async () => {
    const { transport, close } = await session();
    await transport.terminateSession();
    await close();
  });

  test('a terminated session is gone: a request with its id gets HTTP 404', T, async () => {
    const s = await server();
    const { client, transport, http, close } = await open();
    const { tools } = await client.listTools();
    assert.ok(tools.length > 0, 'the new session lists no tools');
    const sessionId = transport.sessionId;
    const protocolVersion = transport.protocolVersion;
    assert.ok(sessionId, 'no session id');

    await transport.terminateSession(); // DELETE /mcp with Mcp-Session-Id
    const del = http.findLast((h) => h.method === 'DELETE');
    assert.ok(del, 'the SDK sent no DELETE');
    assert.ok(del.status >= 200 && del.status < 300, `DELETE answered HTTP ${del.status}, expected 2xx`);
    assert.equal(transport.sessionId, undefined, 'the SDK still holds the session id');
    await close();

    const response = await fetch(s.url('/mcp'), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': sessionId,
        'mcp-protocol-version': protocolVersion,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list', params: {} }),
    });
    const body = await response.text();
    assert.equal(response.status, 404, `POST with the terminated session id answered HTTP ${response.status}: ${body}`);
  });
});
