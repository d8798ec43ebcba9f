// The `hello` example, driven by the official TypeScript SDK client over stdio.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { T, assertMcpError, listAll, useServer } from './lib.mjs';

describe('hello over stdio', () => {
  const server = useServer('hello');

  test('reports its server name', T, async () => {
    const { client } = await server();
    assert.equal(client.getServerVersion()?.name, 'hello');
    assert.ok(client.getServerCapabilities()?.tools, 'tools capability not declared');
  });

  test('lists exactly the add tool with its schemas', T, async () => {
    const tools = await listAll((await server()).client, 'tools');
    assert.deepEqual(tools.map((t) => t.name), ['add']);
    const [add] = tools;
    assert.equal(add.description, 'Adds two numbers.');
    assert.equal(add.inputSchema.type, 'object');
    assert.equal(add.inputSchema.properties?.a?.type, 'integer');
    assert.equal(add.inputSchema.properties?.b?.type, 'integer');
    assert.deepEqual([...(add.inputSchema.required ?? [])].sort(), ['a', 'b']);
    assert.equal(add.outputSchema?.type, 'object');
    assert.ok(add.outputSchema.properties?.result, 'outputSchema lacks property "result"');
  });

  test('add returns structured and text results', T, async () => {
    // Listing first makes the SDK validate structuredContent against the outputSchema.
    const { client } = await server();
    await listAll(client, 'tools');
    const result = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    assert.deepEqual(result.structuredContent, { result: 5 });
    assert.deepEqual(result.content, [{ type: 'text', text: '5' }]);
    assert.ok(!result.isError, 'isError set on a successful call');
  });

  test('add with invalid arguments is a tool error', T, async () => {
    const { client } = await server();
    const result = await client.callTool({ name: 'add', arguments: { a: 'x', b: 3 } });
    assert.equal(result.isError, true);
    assert.equal(result.content[0]?.type, 'text');
    assert.ok(result.content[0].text.length > 0, 'error text is empty');
  });

  test('calling an unknown tool is a -32602 protocol error', T, async () => {
    const { client } = await server();
    await assertMcpError(client.callTool({ name: 'nope', arguments: {} }), -32602);
  });
});
