// The `conformance-server` example, driven by the official TypeScript SDK client over stdio.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  ProgressNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { T, assertMcpError, byName, listAll, useServer, waitFor } from './lib.mjs';

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';
const text = (t) => ({ type: 'text', text: t });
const user = (content) => ({ role: 'user', content });

describe('conformance-server over stdio', () => {
  const samplingRequests = [];
  const elicitRequests = [];
  const logs = [];
  const server = useServer('conformance-server', {
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
  });
  const getClient = async () => (await server()).client;

  const call = async (name, args = {}, options) =>
    (await getClient()).callTool({ name, arguments: args }, undefined, options);

  test('initializes with the expected name and capabilities', T, async () => {
    const client = await getClient();
    assert.equal(client.getServerVersion()?.name, 'mcp-conformance-test-server');
    const caps = client.getServerCapabilities();
    for (const cap of ['tools', 'resources', 'prompts', 'logging', 'completions']) {
      assert.ok(caps?.[cap], `capability ${cap} not declared`);
    }
    assert.equal(caps.resources.subscribe, true, 'resources.subscribe not declared');
  });

  test('ping', T, async () => {
    assert.deepEqual(await (await getClient()).ping(), {});
  });

  describe('tools', () => {
    test('lists every tool (following cursors) with descriptions and schemas', T, async () => {
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
      const { outputSchema } = byName(tools, 'test_structured_content');
      assert.equal(outputSchema?.type, 'object');
      assert.deepEqual(Object.keys(outputSchema.properties ?? {}).sort(), ['city', 'conditions', 'temperatureC']);
    });

    test('an invalid cursor is a -32602 error', T, async () => {
      const client = await getClient();
      await assertMcpError(client.listTools({ cursor: 'garbage!!' }), -32602);
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

    test('test_error_handling', T, async () => {
      const result = await call('test_error_handling');
      assert.equal(result.isError, true);
      assert.deepEqual(result.content, [text('This tool intentionally returns an error for testing')]);
    });

    test('test_tool_with_logging', T, async () => {
      const client = await getClient();
      await client.setLoggingLevel('debug');
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

    test('test_tool_with_progress', T, async () => {
      const { sent, received } = await server();
      // Passing onprogress makes the SDK attach a progress token. The SDK (1.32.2) itself drops
      // progress that arrives in the same read as the response (typescript-sdk#2580), so the
      // notifications are checked from the transport log rather than from the callback.
      const result = await call('test_tool_with_progress', {}, { onprogress: () => {} });
      const request = sent.findLast((m) => m.method === 'tools/call' && m.params?.name === 'test_tool_with_progress');
      const token = request?.params?._meta?.progressToken;
      assert.notEqual(token, undefined, 'the SDK sent no progress token');
      const progress = received
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
      assert.deepEqual(result.content, [text(String(token))]);
    });

    test('test_sampling', T, async () => {
      samplingRequests.length = 0;
      const result = await call('test_sampling', { prompt: 'What is 2+2?' });
      assert.equal(samplingRequests.length, 1, 'expected exactly one sampling/createMessage request');
      const [req] = samplingRequests;
      assert.deepEqual(req.messages, [user(text('What is 2+2?'))]);
      assert.equal(req.maxTokens, 100);
      assert.deepEqual(result.content, [text('LLM response: This is a test response from the client')]);
    });

    test('test_elicitation', T, async () => {
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

    test('test_structured_content', T, async () => {
      await listAll(await getClient(), 'tools'); // lets the SDK validate against the outputSchema
      const result = await call('test_structured_content', { city: 'Paris' });
      const expected = { city: 'Paris', temperatureC: 21.5, conditions: 'sunny' };
      assert.deepEqual(result.structuredContent, expected);
      assert.equal(result.content.length, 1);
      assert.equal(result.content[0].type, 'text');
      assert.deepEqual(JSON.parse(result.content[0].text), expected);
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

    test('reads text, binary and watched resources', T, async () => {
      const client = await getClient();
      const read = async (uri) => (await client.readResource({ uri })).contents;
      assert.deepEqual(await read('test://static-text'), [
        { uri: 'test://static-text', mimeType: 'text/plain', text: 'This is the content of the static text resource.' },
      ]);
      assert.deepEqual(await read('test://static-binary'), [
        { uri: 'test://static-binary', mimeType: 'image/png', blob: PNG },
      ]);
      const [watched, ...rest] = await read('test://watched-resource');
      assert.equal(rest.length, 0);
      assert.equal(watched.uri, 'test://watched-resource');
      assert.equal(watched.text, 'Watched resource content');
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

    test('reading an unknown resource is a -32002 error', T, async () => {
      const client = await getClient();
      await assertMcpError(client.readResource({ uri: 'test://nope' }), -32002);
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
        byName(prompts, name);
      }
      const args = byName(prompts, 'test_prompt_with_arguments').arguments ?? [];
      assert.deepEqual(
        args.map(({ name, required }) => ({ name, required })).sort((x, y) => x.name.localeCompare(y.name)),
        [
          { name: 'arg1', required: true },
          { name: 'arg2', required: true },
        ],
      );
      byName(byName(prompts, 'test_prompt_with_embedded_resource').arguments ?? [], 'resourceUri');
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

    test('getting an unknown prompt is a -32602 error', T, async () => {
      const client = await getClient();
      await assertMcpError(client.getPrompt({ name: 'nope' }), -32602);
    });
  });

  test('completes prompt arguments', T, async () => {
    const client = await getClient();
    const { completion } = await client.complete({
      ref: { type: 'ref/prompt', name: 'test_prompt_with_arguments' },
      argument: { name: 'arg1', value: '' },
    });
    assert.ok(Array.isArray(completion.values), 'completion.values is not an array');
    assert.ok(completion.values.every((v) => typeof v === 'string'), 'completion values must be strings');
    assert.ok(completion.values.length <= 100, 'at most 100 completion values');
  });
});
