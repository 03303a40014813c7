/**
 * The clients of real hosts, end to end against a real server: hosts that keep no MCP
 * session (a fresh session per call, as the Claude connector; no session at all, as
 * ChatGPT), each alone and paired with a session-holding SDK client; and third-party
 * clients as agent frameworks use them (LangChain's MultiServerMCPClient, the AI SDK's
 * MCP client), called through the tool objects the framework hands a model.
 */
import { createMCPClient } from '@ai-sdk/mcp';
import { ToolMessage } from '@langchain/core/messages';
import { MultiServerMCPClient } from '@langchain/mcp-adapters';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatConfig } from '../../src/config.js';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { jsonHeaders } from '../support/jsonRpcWire.js';
import { health, startTestServer } from '../support/server.js';
import { type ChatEvent, SessionlessClient, SessionPerCallClient, type TokenClient } from '../support/tokenClient.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** Presence timers short enough to watch a silent user end. */
const BRISK: Partial<ChatConfig> = { idleTimeoutMs: 1500, graceMs: 500, pairableMs: 1000 };
const TOOL_NAMES = ['enter_queue', 'get_status', 'leave_chat', 'next', 'send_message', 'wait_for_events'];

/** Things to stop after each test, last started first. */
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const stop of cleanup.splice(0).reverse()) await stop().catch(() => {});
});

/** A fresh server for one test, so no user of another test is ever in its queue. */
async function serve(config: Partial<ChatConfig> = {}): Promise<RunningChatServer> {
  const server = await startTestServer(config);
  cleanup.push(() => server.close());
  return server;
}

async function sdkClient(server: RunningChatServer, name = 'sdk'): Promise<ChatClient> {
  const client = await ChatClient.connect(server.url, name);
  cleanup.push(() => client.end());
  return client;
}

const hostsWithoutSessions: [string, (url: URL) => TokenClient][] = [
  ['a client that opens a session per call (Claude connector)', (url) => new SessionPerCallClient(url)],
  ['a client that sends tools/call with no session (ChatGPT)', (url) => new SessionlessClient(url)],
];

/** Reads `wait_for_events` (from the client's last cursor) until `done` holds, a few rounds at most. */
async function readUntil(client: TokenClient, done: (events: ChatEvent[]) => boolean): Promise<ChatEvent[]> {
  const events: ChatEvent[] = [];
  for (let round = 0; round < 10 && !done(events); round++) events.push(...(await client.waitForEvents(5)));
  return events;
}

const received = (roomId: string, sent: Record<string, unknown>, message: string) => ({
  method: 'message.received',
  params: { room_id: roomId, message, message_id: sent.message_id, seq: sent.seq, sent_at: expect.any(String), untrusted: true },
});

/**
 * The wait_for_events calls the server holds for a user now: lets a test see that a
 * held call has arrived, or that the server ended one whose client went away.
 */
const heldWaits = (server: RunningChatServer, token: string | undefined) => server.services.users.byToken(token ?? '')?.events.heldReaders;

/** The client went its own way: a new session for every call, each ended; or no session ever. */
function expectNoSessionKept(client: TokenClient): void {
  if (client instanceof SessionPerCallClient) {
    expect(new Set(client.sessionIds).size).toBe(client.calls);
    expect(client.deleteStatuses).toEqual(Array<number>(client.calls).fill(200));
  }
  if (client instanceof SessionlessClient) expect(client.sessionHeaders).toEqual(Array<null>(client.calls).fill(null));
}

describe('hosts that keep no session chat by tools alone', () => {
  it.each(hostsWithoutSessions)(
    '%s: two of them pair through wait_for_events, chat both ways once and in order, and one leaves',
    async (_, make) => {
      const server = await serve();
      const alice = make(server.url);
      const bob = make(server.url);
      expect(await alice.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
      expect(alice.token).toEqual(expect.any(String));
      const aliceFound = alice.waitForEvents(10);
      await eventually(() => expect(heldWaits(server, alice.token)).toBe(1)); // held: nobody is there yet
      const matched = await bob.call('enter_queue');
      expect(matched).toEqual({ status: 'matched', room_id: expect.stringMatching(UUID), common_interests: [] });
      expect(bob.token).not.toBe(alice.token);
      const roomId = matched.room_id as string;
      expect(await aliceFound).toEqual([{ id: '1', method: 'chatroom.found', params: { room_id: roomId, common_interests: [] } }]);
      expect(await bob.waitForEvents()).toEqual([{ id: '1', method: 'chatroom.found', params: { room_id: roomId, common_interests: [] } }]);

      const turns: [TokenClient, TokenClient, string[]][] = [
        [alice, bob, ['Hello!', 'Anyone there?']],
        [bob, alice, ['Hi!', 'Yes, a stranger.', 'And you?']],
        [alice, bob, ['A test. Bye!']],
      ];
      let seq = 0;
      for (const [speaker, listener, lines] of turns) {
        const expected = [];
        for (const line of lines) {
          const sent = await speaker.call('send_message', { room_id: roomId, message: line });
          expect(sent).toEqual({ status: 'sent', message_id: expect.stringMatching(UUID), seq: ++seq });
          expected.push(received(roomId, sent, line));
        }
        const heard = await readUntil(listener, (events) => events.length >= lines.length);
        expect(heard.map(({ method, params }) => ({ method, params }))).toEqual(expected);
      }
      // Once: nothing is left to read, for either of them.
      expect(await alice.waitForEvents(0.1)).toEqual([]);
      expect(await bob.waitForEvents(0.1)).toEqual([]);

      expect(await bob.call('leave_chat', { room_id: roomId })).toEqual({ status: 'idle' });
      expect(await alice.waitForEvents()).toEqual([
        { id: expect.any(String), method: 'partner.disconnected', params: { room_id: roomId, reason: 'left' } },
      ]);
      expect(await alice.call('get_status')).toEqual({ state: 'idle' });
      expect(await bob.call('get_status')).toEqual({ state: 'idle' });
      expectNoSessionKept(alice);
      expectNoSessionKept(bob);
      expect((await health(server)).sessions).toBe(0);
    },
  );

  it.each(hostsWithoutSessions)(
    '%s: one that falls silent ends in `timeout`, its partner is told so, and its token is gone',
    async (_, make) => {
      const server = await serve(BRISK);
      const stays = make(server.url);
      const silent = make(server.url);
      await stays.call('enter_queue');
      const found = stays.waitForEvents(10);
      await eventually(() => expect(heldWaits(server, stays.token)).toBe(1));
      const { room_id: roomId } = await silent.call('enter_queue');
      expect(await found).toEqual([{ id: '1', method: 'chatroom.found', params: { room_id: roomId, common_interests: [] } }]);
      const last = await silent.call('send_message', { room_id: roomId, message: 'brb' });

      // The one who stays keeps reading; the other never calls again.
      const heard = await readUntil(stays, (events) => events.some((e) => e.method === 'partner.disconnected'));
      expect(heard.map(({ method, params }) => ({ method, params }))).toEqual([
        received(roomId as string, last, 'brb'),
        { method: 'partner.disconnected', params: { room_id: roomId, reason: 'timeout' } },
      ]);
      expect(await stays.call('get_status')).toEqual({ state: 'idle' });
      const refusal = await silent.refusal('get_status');
      expect(refusal).toContain(silent.token!.slice(silent.token!.indexOf('.') + 1).slice(0, 4));
      expect(refusal).toMatch(/names no user/);
    },
  );
});

describe('a session-holding SDK client paired with a client that keeps no session', () => {
  it.each(hostsWithoutSessions)('the SDK client waits and %s is matched; they chat, and the per-call client leaves', async (_, make) => {
    const server = await serve();
    const sdk = await sdkClient(server);
    const host = make(server.url);
    expect(await sdk.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    const matched = await host.call('enter_queue');
    expect(matched).toEqual({ status: 'matched', room_id: expect.stringMatching(UUID), common_interests: [] });
    const roomId = matched.room_id as string;
    expect(await sdk.waitFor('chatroom.found')).toEqual([{ room_id: roomId, common_interests: [] }]);
    expect(await host.waitForEvents()).toEqual([{ id: '1', method: 'chatroom.found', params: { room_id: roomId, common_interests: [] } }]);

    const hello = await sdk.call('send_message', { room_id: roomId, message: 'Hello from a session.' });
    const heard = await readUntil(host, (events) => events.length >= 1);
    expect(heard.map(({ method, params }) => ({ method, params }))).toEqual([received(roomId, hello, 'Hello from a session.')]);
    for (const line of ['Hello from no session.', 'Twice.']) await host.call('send_message', { room_id: roomId, message: line });
    const atSdk = await sdk.waitFor('message.received', 2);
    expect(atSdk.map((m) => [m.seq, m.message])).toEqual([
      [2, 'Hello from no session.'],
      [3, 'Twice.'],
    ]);

    expect(await host.call('leave_chat')).toEqual({ status: 'idle' });
    expect(await sdk.waitFor('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'left' }]);
    expect(sdk.received('message.received')).toHaveLength(2);
    expect(await sdk.call('get_status')).toEqual({ state: 'idle' });
    expectNoSessionKept(host);
  });

  it.each(hostsWithoutSessions)(
    '%s enters first and is met by the SDK client arriving next, learning it through wait_for_events; the SDK client leaves',
    async (_, make) => {
      const server = await serve();
      const sdk = await sdkClient(server);
      const host = make(server.url);
      expect(await host.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
      const entered = await sdk.call('enter_queue');
      if (host instanceof SessionPerCallClient) {
        // It ended (DELETE) the session its user was made in, and had not yet named the
        // user by its token: it may have left, so nobody meets it until it calls again.
        expect(entered).toEqual({ status: 'waiting', position: 2 });
      } else {
        // Without sessions there is nothing to end: whoever comes next meets it at once.
        expect(entered).toEqual({ status: 'matched', room_id: expect.stringMatching(UUID), common_interests: [] });
      }
      // Its next call (with its token) brings it back, and it is met at once.
      const [found] = await host.waitForEvents();
      expect(found).toEqual({ id: '1', method: 'chatroom.found', params: { room_id: expect.stringMatching(UUID), common_interests: [] } });
      const roomId = found!.params.room_id as string;
      expect(await sdk.waitFor('chatroom.found')).toEqual([{ room_id: roomId, common_interests: [] }]);

      await host.call('send_message', { room_id: roomId, message: 'I was here first.' });
      expect((await sdk.waitFor('message.received')).map((m) => m.message)).toEqual(['I was here first.']);
      const reply = await sdk.call('send_message', { room_id: roomId, message: 'And I came second.' });
      const heard = await readUntil(host, (events) => events.length >= 1);
      expect(heard.map(({ method, params }) => ({ method, params }))).toEqual([received(roomId, reply, 'And I came second.')]);

      expect(await sdk.call('leave_chat', { room_id: roomId })).toEqual({ status: 'idle' });
      expect(await host.waitForEvents()).toEqual([
        { id: expect.any(String), method: 'partner.disconnected', params: { room_id: roomId, reason: 'left' } },
      ]);
      expect(await host.call('get_status')).toEqual({ state: 'idle' });
      expectNoSessionKept(host);
    },
  );
});

/** The JSON the model reads in a tool's answer: the text of its content (here the server's JSON). */
function jsonTheModelReads(content: unknown): Record<string, unknown> {
  const blocks = typeof content === 'string' ? [JSON.parse(content) as unknown] : Array.isArray(content) ? content : [content];
  const text = blocks
    .map((block) => (typeof block === 'object' && block !== null && 'text' in block ? String(block.text) : JSON.stringify(block)))
    .join('');
  return JSON.parse(text) as Record<string, unknown>;
}

describe("LangChain's MultiServerMCPClient (@langchain/mcp-adapters)", () => {
  it('chats with an SDK client through the StructuredTools an agent hands a model', async () => {
    const server = await serve();
    const langchain = new MultiServerMCPClient({ mcpServers: { chat: { url: server.url.href, transport: 'http' } } });
    cleanup.push(() => langchain.close());
    const tools = new Map((await langchain.getTools()).map((tool) => [tool.name, tool]));
    expect([...tools.keys()].sort()).toEqual(TOOL_NAMES);
    let calls = 0;
    /** Runs a tool call as LangGraph's ToolNode does; answers the JSON the model reads in the ToolMessage. */
    const toolCall = async (name: string, args: Record<string, unknown>) => {
      const message: unknown = await tools.get(name)!.invoke({ type: 'tool_call', id: `call_${++calls}`, name, args });
      expect(message).toBeInstanceOf(ToolMessage);
      expect((message as ToolMessage).status).toBe('success');
      return jsonTheModelReads((message as ToolMessage).content);
    };

    const sdk = await sdkClient(server);
    const entered = await toolCall('enter_queue', {});
    expect(entered).toEqual({ status: 'waiting', position: 1, user_token: expect.any(String) });
    const token = entered.user_token;
    const matched = await sdk.call('enter_queue');
    const roomId = matched.room_id as string;
    const found = await toolCall('wait_for_events', { user_token: token });
    expect(found.events).toEqual([{ id: '1', method: 'chatroom.found', params: { room_id: roomId, common_interests: [] } }]);
    expect(await sdk.waitFor('chatroom.found')).toEqual([{ room_id: roomId, common_interests: [] }]);

    expect(await toolCall('send_message', { user_token: token, room_id: roomId, message: 'Hello from LangChain.' })).toEqual({
      status: 'sent',
      message_id: expect.stringMatching(UUID),
      seq: 1,
    });
    expect((await sdk.waitFor('message.received')).map((m) => [m.seq, m.message])).toEqual([[1, 'Hello from LangChain.']]);
    const replies = [];
    for (const line of ['Hi, LangChain.', 'How are you?'])
      replies.push({ ...(await sdk.call('send_message', { room_id: roomId, message: line })), line });
    const page = await toolCall('wait_for_events', { user_token: token, after: found.cursor, timeout_s: 5 });
    expect((page.events as ChatEvent[]).map(({ method, params }) => ({ method, params }))).toEqual(
      replies.map((r) => received(roomId, r, r.line)),
    );

    expect(await toolCall('leave_chat', { user_token: token, room_id: roomId })).toEqual({ status: 'idle' });
    expect(await sdk.waitFor('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'left' }]);
    expect(sdk.received('message.received')).toHaveLength(1);
  });
});

describe("the AI SDK's MCP client (@ai-sdk/mcp)", () => {
  /** An AI SDK client on `server`, its tools as `generateText` would get them, and the JSON-RPC methods it POSTed. */
  async function aiSdk(server: RunningChatServer) {
    const posted: string[] = [];
    const client = await createMCPClient({
      transport: {
        type: 'http',
        url: server.url.href,
        fetch: async (input, init) => {
          if (init?.method === 'POST' && typeof init.body === 'string')
            posted.push((JSON.parse(init.body) as { method?: string }).method ?? 'response');
          return fetch(input, init);
        },
      },
    });
    cleanup.push(() => client.close());
    const tools = await client.tools();
    expect(Object.keys(tools).sort()).toEqual(TOOL_NAMES);
    let calls = 0;
    /** Executes a tool as the AI SDK's agent loop does; answers the JSON in the output it hands the model. */
    const execute = async (name: string, input: Record<string, unknown>, abortSignal?: AbortSignal) => {
      const tool = tools[name]!;
      const toolCallId = `call_${++calls}`;
      const output = await tool.execute(input, { toolCallId, messages: [], abortSignal });
      // (`as never`: the client's CallToolResult and the tool's output type are two declarations of one shape.)
      const forModel = await tool.toModelOutput!({ toolCallId, input, output: output as never });
      expect(forModel.type).toBe('content');
      return jsonTheModelReads((forModel as { value: unknown[] }).value);
    };
    return { execute, posted };
  }

  /** An AI SDK user paired with an SDK client, having read chatroom.found; answers both and the cursor. */
  async function pairWithSdk(server: RunningChatServer) {
    const ai = await aiSdk(server);
    const sdk = await sdkClient(server);
    const entered = await ai.execute('enter_queue', {});
    expect(entered).toEqual({ status: 'waiting', position: 1, user_token: expect.any(String) });
    const token = entered.user_token as string;
    const roomId = (await sdk.call('enter_queue')).room_id as string;
    const found = await ai.execute('wait_for_events', { user_token: token, timeout_s: 5 });
    expect(found.events).toEqual([{ id: '1', method: 'chatroom.found', params: { room_id: roomId, common_interests: [] } }]);
    return { ai, sdk, token, roomId, cursor: found.cursor as string };
  }

  it('chats with an SDK client through the tools an agent hands a model', async () => {
    const server = await serve();
    const { ai, sdk, token, roomId, cursor } = await pairWithSdk(server);
    expect(await ai.execute('send_message', { user_token: token, room_id: roomId, message: 'Hello from the AI SDK.' })).toEqual({
      status: 'sent',
      message_id: expect.stringMatching(UUID),
      seq: 1,
    });
    expect((await sdk.waitFor('message.received')).map((m) => [m.seq, m.message])).toEqual([[1, 'Hello from the AI SDK.']]);
    const held = ai.execute('wait_for_events', { user_token: token, after: cursor, timeout_s: 10 });
    const reply = await sdk.call('send_message', { room_id: roomId, message: 'Hello, agent.' });
    const page = await held;
    expect((page.events as ChatEvent[]).map(({ method, params }) => ({ method, params }))).toEqual([
      received(roomId, reply, 'Hello, agent.'),
    ]);

    expect(await sdk.call('leave_chat', { room_id: roomId })).toEqual({ status: 'idle' });
    const last = await ai.execute('wait_for_events', { user_token: token, after: page.cursor, timeout_s: 5 });
    expect(last.events).toEqual([{ id: expect.any(String), method: 'partner.disconnected', params: { room_id: roomId, reason: 'left' } }]);
    expect(await ai.execute('get_status', { user_token: token })).toEqual({ state: 'idle', user_token: token });
  });

  it('abandons a held wait without a word; the call ends at once and the next wait from the same cursor gets the message', async () => {
    const server = await serve();
    const { ai, sdk, token, roomId, cursor } = await pairWithSdk(server);
    const abandon = new AbortController();
    const held = ai.execute('wait_for_events', { user_token: token, after: cursor, timeout_s: 30 }, abandon.signal);
    await eventually(() => expect(heldWaits(server, token)).toBe(1));
    abandon.abort();
    await expect(held).rejects.toThrow(/aborted/i);
    expect(ai.posted).not.toContain('notifications/cancelled');
    await eventually(() => expect(heldWaits(server, token)).toBe(0));

    const sent = await sdk.call('send_message', { room_id: roomId, message: 'Still there?' });
    const next = await ai.execute('wait_for_events', { user_token: token, after: cursor, timeout_s: 5 });
    expect(next.events).toEqual([{ id: String(Number(cursor) + 1), ...received(roomId, sent, 'Still there?') }]);
    expect(next.cursor).toBe(String(Number(cursor) + 1));
  });

  it('an abandoned wait without a cursor takes nothing: the next wait without one gets the message', async () => {
    const server = await serve();
    const { ai, sdk, token, roomId } = await pairWithSdk(server);
    const abandon = new AbortController();
    const held = ai.execute('wait_for_events', { user_token: token, timeout_s: 30 }, abandon.signal);
    await eventually(() => expect(heldWaits(server, token)).toBe(1));
    abandon.abort();
    await expect(held).rejects.toThrow(/aborted/i);
    await eventually(() => expect(heldWaits(server, token)).toBe(0));

    const sent = await sdk.call('send_message', { room_id: roomId, message: 'Did you get this?' });
    const next = await ai.execute('wait_for_events', { user_token: token, timeout_s: 5 });
    expect((next.events as ChatEvent[]).map(({ method, params }) => ({ method, params }))).toEqual([
      received(roomId, sent, 'Did you get this?'),
    ]);
  });
});

describe("JSON-RPC error answers carry the request's id whenever it could be read", () => {
  const toolsCall = (id: unknown) =>
    JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'get_status', arguments: {} } });

  it('a request in a session that does not exist: 404 with its id', async () => {
    const server = await serve();
    const response = await fetch(server.url, { method: 'POST', headers: jsonHeaders('no-such-session'), body: toolsCall('req-7') });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({
      jsonrpc: '2.0',
      id: 'req-7',
      error: { code: -32001, message: expect.stringMatching(/Session not found/) },
    });
  });

  it('a request without a session in a protocol version the server does not speak: 400 with its id', async () => {
    const server = await serve();
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { ...jsonHeaders(), 'mcp-protocol-version': '1999-01-01' },
      body: toolsCall(42),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ jsonrpc: '2.0', id: 42, error: { message: expect.stringMatching(/protocol version/i) } });
  });

  it('a body that is not JSON: the error says id null, as it cannot be read', async () => {
    const server = await serve();
    const response = await fetch(server.url, { method: 'POST', headers: jsonHeaders(), body: '{"jsonrpc":"2.0","id":9,' });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: expect.any(String) } });
  });
});
