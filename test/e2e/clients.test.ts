/**
 * Every MCP client can use it: clients of every protocol version, the MCP Inspector
 * CLI, and tool metadata that hosts and models read.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delimiter, dirname } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { node22 } from '../../scripts/node22.js';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { jsonHeaders, rpcAnswerOf } from '../support/jsonRpcWire.js';
import { markedEnv, startServerProcess } from '../support/processes.js';
import { deleteRawSession, readSse } from '../support/rawSession.js';
import { health, startTestServer } from '../support/server.js';

let server: RunningChatServer;

beforeAll(async () => {
  // Users whose sessions ended go after a short grace period, so each test starts alone.
  server = await startTestServer({ graceMs: 100 });
});

afterAll(async () => {
  await server.close();
});

/** A client speaking one protocol version over plain HTTP. */
class VersionedClient {
  private id = 0;
  private constructor(
    readonly sessionId: string,
    readonly version: string,
  ) {}

  static async open(version: string): Promise<VersionedClient> {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: jsonHeaders(),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: version, capabilities: {}, clientInfo: { name: `client-${version}`, version: '1' } },
      }),
    });
    const result = parseRpc(await response.text());
    expect(result.result.protocolVersion).toBe(version);
    const client = new VersionedClient(response.headers.get('mcp-session-id')!, version);
    await client.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return client;
  }

  private headers() {
    return { ...jsonHeaders(this.sessionId), 'mcp-protocol-version': this.version };
  }

  async post(message: object): Promise<Response> {
    return fetch(server.url, { method: 'POST', headers: this.headers(), body: JSON.stringify(message) });
  }

  async call(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const response = await this.post({ jsonrpc: '2.0', id: ++this.id, method: 'tools/call', params: { name, arguments: args } });
    return parseRpc(await response.text()).result.structuredContent;
  }

  stream(): Promise<Response> {
    return fetch(server.url, { headers: { ...this.headers(), accept: 'text/event-stream' } });
  }
}

/** The JSON-RPC result in a response body, whether sent as JSON or as SSE. */
function parseRpc(text: string): { result: { protocolVersion: string; structuredContent: Record<string, unknown> } } {
  return rpcAnswerOf(text) as never;
}

describe('protocol versions', () => {
  afterEach(async () => {
    await eventually(async () => expect((await health(server)).queue).toBe(0));
  });

  it.each(['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'])('a %s client completes the seed flow', async (version) => {
    const a = await VersionedClient.open(version);
    const b = await VersionedClient.open(version);
    const streamA = await a.stream();
    const streamB = await b.stream();
    expect(await a.call('enter_queue')).toEqual({ status: 'waiting', position: 1, user_token: expect.any(String) });
    const matched = await b.call('enter_queue');
    expect(matched).toMatchObject({ status: 'matched' });
    expect(await a.call('send_message', { room_id: matched.room_id, message: `hello in ${version}` })).toMatchObject({
      status: 'sent',
      seq: 1,
    });
    const atB = await readSse(streamB, (t) => t.includes('message.received'));
    expect(atB).toContain(`"message":"hello in ${version}"`);
    const atA = await readSse(streamA, (t) => t.includes('chatroom.found'));
    expect(atA).toContain(`"room_id":"${matched.room_id}"`);
    await Promise.all([deleteRawSession(server.url, a.sessionId), deleteRawSession(server.url, b.sessionId)]);
  });
});

describe('every Node.js the engines field accepts', () => {
  // The suite runs on the Node that runs npm (20 here); Node 22 writes HTTP responses
  // differently (it buffers a corked response's chunks apart), so the built server also
  // serves a chatting pair on Node 22, and its responses must stay well-formed there.
  it('serves a pair that chats on Node 22 as well', async () => {
    const node22Server = await startServerProcess({ node: node22() });
    const { url } = node22Server;
    try {
      const alice = await ChatClient.connect(url, 'alice');
      const bob = await ChatClient.connect(url, 'bob');
      await alice.call('enter_queue');
      const { room_id: roomId } = await bob.call('enter_queue');
      for (let i = 1; i <= 20; i++)
        expect(await alice.call('send_message', { room_id: roomId, message: `m${i}` })).toMatchObject({ status: 'sent', seq: i });
      const received = await bob.waitFor('message.received', 20);
      expect(received.map((m) => m.message)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i + 1}`));
      await Promise.all([alice.end(), bob.end()]);
    } finally {
      await node22Server.stop();
    }
  });
});

describe('tool metadata', () => {
  it('gives every tool a title, a description that says what comes next, schemas and annotations', async () => {
    const client = await ChatClient.connect(server.url);
    const { tools } = await client.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['enter_queue', 'get_status', 'leave_chat', 'next', 'send_message', 'wait_for_events']);
    for (const tool of tools) {
      expect(tool.title).toBeTruthy();
      expect(tool.description!.length).toBeGreaterThan(60);
      expect(tool.inputSchema.type).toBe('object');
      expect(tool.outputSchema?.type).toBe('object');
      expect(tool.annotations).toBeDefined();
    }
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(byName.enter_queue!.description).toMatch(/chatroom\.found.*wait_for_events/);
    expect(byName.get_status!.annotations).toMatchObject({ readOnlyHint: true, idempotentHint: true });
    expect(byName.enter_queue!.annotations).toMatchObject({ idempotentHint: true });
    expect(byName.send_message!.inputSchema.required).toEqual(['room_id', 'message']);
    await client.end();
  });
});

describe('the MCP Inspector CLI, as the README shows it', () => {
  /** The README's inspector commands (after `npx`), pointed at this test's server. */
  const readmeCommands = () =>
    readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
      .split('\n')
      .map((line) => /^\s*npx (@modelcontextprotocol\/inspector@(\S+) .+)$/.exec(line))
      .filter((match) => match !== null)
      .map(([, command, version]) => ({ version, args: command!.replace('http://127.0.0.1:3000/mcp', server.url.href).split(/\s+/) }));
  /** Runs `npx <args>` as the README says, with Node 22 first on the PATH (the Inspector needs it). */
  const npx = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const path = `${dirname(node22())}${delimiter}${process.env.PATH ?? ''}`;
      const child = spawn('npx', ['--yes', ...args], {
        env: { ...process.env, ...markedEnv(), PATH: path },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`npx ${args.join(' ')} exited ${code}: ${out}${err}`))));
    });

  it('lists the tools and calls enter_queue with the exact commands in the README, on the current major version', async () => {
    const commands = readmeCommands();
    expect(commands).toHaveLength(2);
    // The current Inspector is 2.x; 1.x prints "v1 is deprecated".
    for (const { version } of commands) expect(version).toMatch(/^2\.\d+\.\d+$/);
    const [list, call] = commands;
    const listed = JSON.parse(await npx(list!.args)) as { tools: { name: string }[] };
    expect(listed.tools.map((t) => t.name)).toContain('enter_queue');
    const called = JSON.parse(await npx(call!.args)) as { structuredContent: unknown };
    expect(called.structuredContent).toEqual({ status: 'waiting', position: 1, user_token: expect.any(String) });
  });
});
