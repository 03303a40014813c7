import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import type { ChatSession } from '../../src/session/chatSession.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually, sleep } from '../support/eventually.js';
import { jsonHeaders } from '../support/jsonRpcWire.js';
import { openRawSession, readSse } from '../support/rawSession.js';
import { health, startTestServer } from '../support/server.js';

const IDLE_MS = 400;

let server: RunningChatServer;
const open: ChatClient[] = [];

async function connect(options: Parameters<typeof ChatClient.connect>[1] = {}): Promise<ChatClient> {
  const client = await ChatClient.connect(server.url, options);
  open.push(client);
  return client;
}

async function pair(options: Parameters<typeof ChatClient.connect>[1] = {}) {
  const a = await connect(options);
  const b = await connect();
  await a.call('enter_queue');
  const { room_id: roomId } = await b.call('enter_queue');
  await a.waitFor('chatroom.found');
  await b.waitFor('chatroom.found');
  return { a, b, roomId: roomId as string };
}

/** Vanishes as a crashed client does: its streams close, and no DELETE is ever sent. */
async function vanish(client: ChatClient): Promise<void> {
  await client.client.close();
}

/** Waits until `condition` holds (or fails the test after a few seconds). */
const until = (condition: () => Promise<boolean>) => eventually(async () => expect(await condition()).toBe(true), 5_000);

beforeAll(async () => {
  // A waiting user with no sign of life is not paired after half the idle timeout; users
  // whose sessions ended get a grace period as short as the idle timeout.
  server = await startTestServer({ idleTimeoutMs: IDLE_MS, pairableMs: IDLE_MS / 2, graceMs: IDLE_MS, keepAliveMs: 50 });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.end().catch(() => {})));
  await eventually(async () => expect((await health(server)).actors.users).toBe(0));
});
afterAll(async () => {
  await server.close();
});

describe('a dropped stream loses nothing', () => {
  it('replays what a cut stream missed, in order, once, when the client comes back with Last-Event-ID', async () => {
    const { a, b, roomId } = await pair();
    await b.call('send_message', { room_id: roomId, message: 'before' });
    await a.waitFor('message.received', 1);
    a.cutStream();
    for (const n of [1, 2, 3]) await b.call('send_message', { room_id: roomId, message: `while away ${n}` });
    a.cutStream(); // cut again, possibly before the resumed stream delivered anything
    await b.call('send_message', { room_id: roomId, message: 'after' });
    const got = await a.waitFor('message.received', 5);
    await sleep(100);
    expect(a.received('message.received').map((m) => [m.seq, m.message])).toEqual([
      [1, 'before'],
      [2, 'while away 1'],
      [3, 'while away 2'],
      [4, 'while away 3'],
      [5, 'after'],
    ]);
    expect(got).toHaveLength(5);
    expect(a.stats.resumes).toBeGreaterThanOrEqual(1);
  });

  it('refuses a resume the client gave up on that arrives late, so nothing comes twice', async () => {
    // A client that aborts a reconnect GET already on the wire, and retries, can have
    // the abandoned GET reach the server seconds later, asking from an older event.
    // Served, it closed the stream the client reads and moved where that stream was
    // taken to start; the client's next GET without Last-Event-ID (typescript-sdk#2499)
    // was then replayed from there, and the client got those messages twice.
    const { a, b, roomId } = await pair();
    const say = async (from: number, to: number) => {
      for (let n = from; n <= to; n++) await b.call('send_message', { room_id: roomId, message: `m${n}` });
      await a.waitFor('message.received', to);
    };
    const streamsOpened = () => a.stats.resumes + a.stats.freshStreams;
    await say(1, 5);
    const olderId = String((server.services.sessions.get(a.sessionId) as ChatSession).user!.events.last);
    const opened = streamsOpened();
    a.cutStream();
    await until(async () => streamsOpened() > opened);
    await say(6, 10);

    const lateGet = () =>
      fetch(server.url, { headers: { ...jsonHeaders(a.sessionId), accept: 'text/event-stream', 'last-event-id': olderId } }).then(
        async (response) => {
          await response.body?.cancel();
          return response.status;
        },
      );
    // The first is served: it replaces the client's stream, and the client resumes from m10.
    const beforeFirst = streamsOpened();
    expect(await lateGet()).toBe(200);
    await until(async () => streamsOpened() > beforeFirst);
    await sleep(50);
    // The client has now resumed from past it: a second late one can only be stale.
    expect(await lateGet()).toBe(409);
    await sleep(200);
    expect(a.received('message.received').map((m) => m.message)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
  });

  it('delivers events that happened before the client first opened its stream', async () => {
    let openStreams!: () => void;
    const a = await connect({ streamGate: new Promise<void>((resolve) => (openStreams = resolve)) });
    const b = await connect();
    await a.call('enter_queue');
    const { room_id: roomId } = await b.call('enter_queue');
    await b.call('send_message', { room_id: roomId, message: 'before your stream' });
    // a has opened no stream yet: both events wait in its log.
    expect(a.stats.freshStreams + a.stats.resumes).toBe(0);
    expect(a.notifications).toEqual([]);
    openStreams();
    await a.waitFor('message.received');
    expect(a.received('chatroom.found')).toEqual([{ room_id: roomId, common_interests: [] }]);
    expect(a.received('message.received').map((m) => m.message)).toEqual(['before your stream']);
  });

  it('says nothing to the partner when a client comes back within the timeout', async () => {
    const { a, b, roomId } = await pair({ reconnectDelayMs: IDLE_MS / 2 });
    a.cutStream();
    await b.call('send_message', { room_id: roomId, message: 'are you there?' });
    expect((await a.waitFor('message.received', 1, 3000)).map((m) => m.message)).toEqual(['are you there?']);
    await sleep(IDLE_MS);
    expect(b.received('partner.disconnected')).toEqual([]);
    expect(await a.call('get_status')).toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
    expect(await b.call('get_status')).toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
  });

  it('says how many events a resume from past the log missed, with events.missed, then sends the rest', async () => {
    const small = await startTestServer({ eventBufferSize: 3 });
    try {
      const a = await ChatClient.connect(small.url, { reconnectDelayMs: 300 });
      const b = await ChatClient.connect(small.url);
      open.push(a, b);
      await a.call('enter_queue');
      const { room_id: roomId } = await b.call('enter_queue');
      await a.waitFor('chatroom.found');
      a.cutStream();
      for (let n = 1; n <= 6; n++) await b.call('send_message', { room_id: roomId, message: `m${n}` });
      // The log holds m4…m6; a had seen chatroom.found (1): m1…m3 (ids 2…4) are gone.
      expect(await a.waitFor('events.missed', 1, 5000)).toEqual([{ count: 3 }]);
      expect((await a.waitFor('message.received', 3)).map((m) => m.message)).toEqual(['m4', 'm5', 'm6']);
      expect(a.notifications.map((n) => n.method)).toEqual([
        'chatroom.found',
        'events.missed',
        'message.received',
        'message.received',
        'message.received',
      ]);
    } finally {
      await Promise.all(open.splice(0).map((client) => client.end().catch(() => {})));
      await small.close();
    }
  });

  it('keeps idle streams open with SSE keep-alive comments', async () => {
    const sessionId = await openRawSession(server.url);
    const response = await fetch(server.url, { headers: { ...jsonHeaders(sessionId), accept: 'text/event-stream' } });
    expect(response.status).toBe(200);
    expect(await readSse(response, (text) => /^:/m.test(text))).toMatch(/^:/m);
  });

  it('numbers the events on the session stream so a client can resume', async () => {
    const a = await connect();
    const sessionId = await openRawSession(server.url);
    const stream = await fetch(server.url, { headers: { ...jsonHeaders(sessionId), accept: 'text/event-stream' } });
    const call = (id: number) =>
      fetch(server.url, {
        method: 'POST',
        headers: jsonHeaders(sessionId),
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'enter_queue', arguments: {} } }),
      }).then((r) => r.text());
    await call(1);
    await a.call('enter_queue');
    const text = await readSse(stream, (t) => t.includes('chatroom.found'));
    expect(text).toMatch(/^id: 1$/m);
    expect(text).toMatch(/"method":"chatroom.found"/);
  });
});

describe('nobody is a ghost', () => {
  it('a waiting client that vanishes without DELETE is never paired after the timeout', async () => {
    const ghost = await connect();
    await ghost.call('enter_queue');
    await vanish(ghost);
    await until(async () => (await health(server)).queue === 0);
    const b = await connect();
    expect(await b.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    expect(b.received('chatroom.found')).toEqual([]);
  });

  it('a chatting client that vanishes without DELETE: its partner hears "timeout" and is free again', async () => {
    const { a, b, roomId } = await pair();
    const token = a.token!;
    await vanish(a);
    expect(await b.waitFor('partner.disconnected', 1, 5000)).toEqual([{ room_id: roomId, reason: 'timeout' }]);
    expect(await b.call('get_status')).toEqual({ state: 'idle' });
    // The vanished user is gone: its token names no one now.
    const again = await connect();
    expect(await again.refusal('get_status', { user_token: token })).toMatch(/names no user.*enter_queue/);
  });

  it('a waiting client silent past --pairable-ms keeps its place but is paired with nobody until it is back', async () => {
    // A client that never opens its stream: between calls, it shows no sign of life.
    const quiet = await connect({ streamGate: new Promise(() => {}) });
    await quiet.call('enter_queue');
    await sleep(IDLE_MS / 2 + 100);
    const b = await connect();
    expect(await b.call('enter_queue')).toEqual({ status: 'waiting', position: 2 });
    expect(b.received('chatroom.found')).toEqual([]);
    // Back before the idle timeout: it is paired at once, with the user who waited behind it.
    const back = await quiet.call('get_status');
    expect(back).toMatchObject({ state: 'chatting' });
    expect((await b.waitFor('chatroom.found'))[0]).toEqual({ room_id: back.room_id, common_interests: [] });
  });

  it('a client with a call in flight is present, however long the call', async () => {
    const a = await connect({ listen: false });
    await a.call('enter_queue');
    await a.call('wait_for_events', { timeout_s: (IDLE_MS * 2.5) / 1000 });
    expect(await a.call('get_status')).toEqual({ state: 'waiting', position: 1 });
  });
});
