import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually, sleep } from '../support/eventually.js';
import { health, startTestServer } from '../support/server.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let server: RunningChatServer;
const open: ChatClient[] = [];

async function connect(): Promise<ChatClient> {
  const client = await ChatClient.connect(server.url);
  open.push(client);
  return client;
}

/** Two clients who entered in order and were paired; answers them and their room. */
async function pair(): Promise<{ a: ChatClient; b: ChatClient; roomId: string }> {
  const a = await connect();
  const b = await connect();
  expect(await a.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
  const matched = await b.call('enter_queue');
  expect(matched).toMatchObject({ status: 'matched', room_id: expect.stringMatching(UUID), common_interests: [] });
  const roomId = matched.room_id as string;
  await a.waitFor('chatroom.found');
  await b.waitFor('chatroom.found');
  return { a, b, roomId };
}

/** A user whose last session ended has this long to come back: short, so each test starts alone. */
const GRACE_MS = 150;

beforeAll(async () => {
  // Users that live by their token end after a short silence, so each test starts alone.
  server = await startTestServer({ graceMs: GRACE_MS, idleTimeoutMs: 1_000 });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.end().catch(() => {})));
  await eventually(async () => expect(await health(server)).toMatchObject({ actors: { users: 0, rooms: 0 }, queue: 0 }), 5_000);
});

afterAll(async () => {
  await server.close();
});

describe('two strangers meet and chat over Streamable HTTP', () => {
  it('pairs the second arrival with the first and tells both the room', async () => {
    const { a, b, roomId } = await pair();
    expect(a.received('chatroom.found')).toEqual([{ room_id: roomId, common_interests: [] }]);
    expect(b.received('chatroom.found')).toEqual([{ room_id: roomId, common_interests: [] }]);
    expect(await a.call('get_status')).toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
    expect(await b.call('get_status')).toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
  });

  it('relays a message to the partner only, numbered and stamped', async () => {
    const { a, b, roomId } = await pair();
    const sent = await a.call('send_message', { room_id: roomId, message: 'Hello!' });
    expect(sent).toEqual({ status: 'sent', message_id: expect.stringMatching(UUID), seq: 1 });
    const [received] = await b.waitFor('message.received');
    expect(received).toEqual({
      room_id: roomId,
      message: 'Hello!',
      message_id: sent.message_id,
      seq: 1,
      sent_at: expect.any(String),
      untrusted: true,
    });
    expect(Number.isNaN(Date.parse(received!.sent_at as string))).toBe(false);
    expect(a.received('message.received')).toEqual([]);
  });

  it('keeps the order of a conversation both ways', async () => {
    const { a, b, roomId } = await pair();
    const lines = ['hi', 'hello', 'how are you?', 'fine', 'bye'];
    for (const [i, line] of lines.entries()) {
      const sender = i % 2 === 0 ? a : b;
      expect(await sender.call('send_message', { room_id: roomId, message: line })).toMatchObject({ seq: i + 1 });
    }
    const atB = await b.waitFor('message.received', 3);
    const atA = await a.waitFor('message.received', 2);
    expect(atB.map((m) => [m.seq, m.message])).toEqual([
      [1, 'hi'],
      [3, 'how are you?'],
      [5, 'bye'],
    ]);
    expect(atA.map((m) => [m.seq, m.message])).toEqual([
      [2, 'hello'],
      [4, 'fine'],
    ]);
  });

  it('tells the partner "left" on leave_chat, and both can enter again (not paired with each other at once)', async () => {
    const { a, b, roomId } = await pair();
    expect(await b.call('leave_chat', { room_id: roomId })).toEqual({ status: 'idle' });
    expect(await a.waitFor('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'left' }]);
    expect(b.received('partner.disconnected')).toEqual([]);
    expect(await a.call('get_status')).toEqual({ state: 'idle' });
    expect(await b.call('get_status')).toEqual({ state: 'idle' });
    expect(await a.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    expect(await b.call('enter_queue')).toEqual({ status: 'waiting', position: 2 });
  });

  it('tells the partner "disconnected" when a chatting client ends its session and does not come back within the grace period', async () => {
    const { a, b, roomId } = await pair();
    const ended = Date.now();
    await b.end();
    expect(await a.waitFor('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'disconnected' }]);
    expect(Date.now() - ended).toBeGreaterThanOrEqual(GRACE_MS - 20);
    expect(await a.call('get_status')).toEqual({ state: 'idle' });
  });

  it('keeps a user whose session ended when a call with its token comes within the grace period', async () => {
    const { a, b, roomId } = await pair();
    const token = b.token!;
    await b.end();
    const again = await connect();
    expect(await again.call('get_status', { user_token: token })).toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
    await sleep(GRACE_MS * 3);
    expect(a.received('partner.disconnected')).toEqual([]);
    await again.call('send_message', { user_token: token, room_id: roomId, message: 'still here' });
    expect((await a.waitFor('message.received')).map((m) => m.message)).toEqual(['still here']);
    // Named by its token, the user now lives by it: the end of this session is no sign it left.
    await again.end();
    await sleep(GRACE_MS * 3);
    expect(await (await connect()).call('get_status', { user_token: token })).toEqual({
      state: 'chatting',
      room_id: roomId,
      common_interests: [],
    });
    expect(a.received('partner.disconnected')).toEqual([]);
  });

  it('pairs nobody with a waiting client that ended its session, and takes it out of the queue after the grace period', async () => {
    const a = await connect();
    await a.call('enter_queue');
    await a.end();
    const b = await connect();
    expect(await b.call('enter_queue')).toMatchObject({ status: 'waiting' });
    await eventually(async () => expect(await b.call('get_status')).toEqual({ state: 'waiting', position: 1 }));
    expect(b.received('chatroom.found')).toEqual([]);
  });

  it('next leaves the chat and queues again, away from the same partner', async () => {
    const { a, b, roomId } = await pair();
    expect(await a.call('next')).toEqual({ status: 'waiting', position: 1 });
    expect(await b.waitFor('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'left' }]);
    expect(await b.call('enter_queue')).toEqual({ status: 'waiting', position: 2 });
    const c = await connect();
    const matched = await c.call('enter_queue');
    expect(matched).toMatchObject({ status: 'matched' });
    expect(await a.call('get_status')).toEqual({ state: 'chatting', room_id: matched.room_id, common_interests: [] });
    expect(await b.call('get_status')).toEqual({ state: 'waiting', position: 1 });
  });

  it('next from idle enters the queue like enter_queue', async () => {
    const a = await connect();
    expect(await a.call('next')).toEqual({ status: 'waiting', position: 1 });
    expect(await a.call('get_status')).toEqual({ state: 'waiting', position: 1 });
  });

  it('answers the position again when enter_queue is called while waiting', async () => {
    const a = await connect();
    await a.call('enter_queue');
    expect(await a.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    expect(await a.call('get_status')).toEqual({ state: 'waiting', position: 1 });
  });

  it('leave_chat while waiting takes the user out of the queue', async () => {
    const a = await connect();
    await a.call('enter_queue');
    expect(await a.call('leave_chat')).toEqual({ status: 'idle' });
    expect(await a.call('get_status')).toEqual({ state: 'idle' });
    expect((await health(server)).queue).toBe(0);
  });
});

describe('refusals say what to do and change nothing', () => {
  it('refuses every tool but enter_queue and next before the session has a user', async () => {
    const a = await connect();
    for (const [tool, args] of [
      ['send_message', { room_id: 'r', message: 'hi' }],
      ['leave_chat', {}],
      ['get_status', {}],
      ['wait_for_events', { timeout_s: 0 }],
    ] as const)
      expect(await a.refusal(tool, args)).toMatch(/call enter_queue first.*user_token/);
    expect((await health(server)).actors.users).toBe(0);
  });

  it('refuses send_message while idle', async () => {
    const a = await connect();
    await a.call('enter_queue');
    await a.call('leave_chat');
    expect(await a.refusal('send_message', { room_id: 'r', message: 'hi' })).toMatch(/not in a chat.*enter_queue/);
    expect(await a.call('get_status')).toEqual({ state: 'idle' });
  });

  it('refuses send_message while waiting', async () => {
    const a = await connect();
    await a.call('enter_queue');
    expect(await a.refusal('send_message', { room_id: 'r', message: 'hi' })).toMatch(/still waiting.*chatroom\.found/);
    expect(await a.call('get_status')).toEqual({ state: 'waiting', position: 1 });
  });

  it('refuses a room_id that is not yours, and the partner hears nothing', async () => {
    const { a, b, roomId } = await pair();
    const sentence = await a.refusal('send_message', { room_id: '00000000-0000-4000-8000-000000000000', message: 'hi' });
    expect(sentence).toContain('is not your room');
    expect(sentence).toContain(roomId);
    expect(await a.refusal('leave_chat', { room_id: 'someone-elses' })).toContain('is not your room');
    expect(await a.call('get_status')).toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
    await a.call('send_message', { room_id: roomId, message: 'still here' });
    expect((await b.waitFor('message.received')).map((m) => [m.seq, m.message])).toEqual([[1, 'still here']]);
  });

  it('refuses an empty message and one over the length limit', async () => {
    const { a, b, roomId } = await pair();
    expect(await a.refusal('send_message', { room_id: roomId, message: '' })).toContain('message is empty');
    expect(await a.refusal('send_message', { room_id: roomId, message: '   \n' })).toContain('message is empty');
    expect(await a.refusal('send_message', { room_id: roomId, message: 'x'.repeat(4001) })).toContain('longer than 4000 characters');
    expect(await a.call('send_message', { room_id: roomId, message: 'x'.repeat(4000) })).toMatchObject({ seq: 1 });
    expect((await b.waitFor('message.received')).map((m) => m.seq)).toEqual([1]);
  });

  it('refuses enter_queue while chatting', async () => {
    const { a, roomId } = await pair();
    expect(await a.refusal('enter_queue')).toMatch(/already chatting.*leave_chat or next/);
    expect(await a.call('get_status')).toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
  });

  it('refuses leave_chat with nothing to leave', async () => {
    const a = await connect();
    await a.call('enter_queue');
    await a.call('leave_chat');
    expect(await a.refusal('leave_chat')).toMatch(/nothing to leave.*enter_queue/);
  });

  it('refuses wrong argument types and unknown fields', async () => {
    const { a, roomId } = await pair();
    expect(await a.refusal('send_message', { room_id: roomId, message: 42 })).toMatch(/message/);
    expect(await a.refusal('send_message', { room_id: roomId, message: 'hi', extra: true })).toMatch(/extra/);
    // An unknown tool is a protocol fault, not a refused action: a JSON-RPC error (-32602).
    await expect(a.client.callTool({ name: 'no_such_tool', arguments: {} })).rejects.toThrow(/-32602.*no_such_tool/);
  });
});

describe('sessions over HTTP', () => {
  it('answers 404 with a JSON-RPC error for an unknown or ended session id', async () => {
    const a = await connect();
    const id = a.sessionId;
    await a.end();
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': id },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32001 } });
  });

  it('gives every session its own server-made id', async () => {
    const [a, b] = await Promise.all([connect(), connect()]);
    // `<processId>.<uuid>`: the id names the process that holds the session.
    const [processId, uuid] = a.sessionId.split('.');
    expect(processId).toMatch(/^[a-z2-7]{10}$/);
    expect(uuid).toMatch(UUID);
    expect(a.sessionId).not.toBe(b.sessionId);
  });

  it('holds no user or room actor once every session has ended and the grace period passed', async () => {
    const { a, roomId } = await pair();
    await a.call('send_message', { room_id: roomId, message: 'bye' });
    const lone = await connect();
    await lone.call('enter_queue');
    expect((await health(server)).actors).toEqual({ users: 3, rooms: 1 });
    await Promise.all(open.splice(0).map((client) => client.end()));
    expect(await health(server)).toMatchObject({ sessions: 0 });
    // The users had the grace period to come back with their tokens; then nothing is left.
    await eventually(async () => expect(await health(server)).toMatchObject({ actors: { users: 0, rooms: 0 }, queue: 0 }));
  });
});
