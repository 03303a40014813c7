import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { health, startTestServer } from '../support/server.js';

let server: RunningChatServer;
let small: RunningChatServer;
const open: ChatClient[] = [];

async function connect(target = server, listen = false): Promise<ChatClient> {
  const client = await ChatClient.connect(target.url, { listen });
  open.push(client);
  return client;
}

interface Page {
  events: { id: string; method: string; params: Record<string, unknown> }[];
  cursor: string;
  missed?: number;
  note?: string;
}
const wait = async (client: ChatClient, args: Record<string, unknown> = {}) =>
  (await client.call('wait_for_events', args)) as unknown as Page;

async function pairByTools(target = server) {
  const a = await connect(target);
  const b = await connect(target);
  await a.call('enter_queue');
  const { room_id: roomId } = await b.call('enter_queue');
  return { a, b, roomId: roomId as string };
}

beforeAll(async () => {
  // Users whose sessions ended go after a short grace period, so each test starts alone.
  server = await startTestServer({ graceMs: 100 });
  small = await startTestServer({ eventBufferSize: 3, graceMs: 100 });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.end().catch(() => {})));
  await eventually(async () => expect((await health(server)).actors.users).toBe(0));
});
afterAll(async () => {
  await Promise.all([server.close(), small.close()]);
});

describe('wait_for_events', () => {
  it('answers pending events at once, in order, with ids and the same params as the notifications', async () => {
    const { a, b, roomId } = await pairByTools();
    const sent = await b.call('send_message', { room_id: roomId, message: 'hi there' });
    const page = await wait(a);
    expect(page.events).toEqual([
      { id: '1', method: 'chatroom.found', params: { room_id: roomId, common_interests: [] } },
      {
        id: '2',
        method: 'message.received',
        params: { room_id: roomId, message: 'hi there', message_id: sent.message_id, seq: 1, sent_at: expect.any(String), untrusted: true },
      },
    ]);
    expect(page.cursor).toBe('2');
  });

  it('never returns an event twice to a reader that passes its cursor', async () => {
    const { a, b, roomId } = await pairByTools();
    const first = await wait(a, { after: '0' });
    expect(first.events.map((e) => e.method)).toEqual(['chatroom.found']);
    await b.call('send_message', { room_id: roomId, message: 'one' });
    const second = await wait(a, { after: first.cursor });
    expect(second.events.map((e) => e.params.message)).toEqual(['one']);
    await b.call('send_message', { room_id: roomId, message: 'two' });
    const third = await wait(a, { after: second.cursor });
    expect(third.events.map((e) => e.params.message)).toEqual(['two']);
    const none = await wait(a, { after: third.cursor, timeout_s: 0.1 });
    expect(none).toEqual({ events: [], cursor: third.cursor });
  });

  it('never returns an event twice to a reader that never passes one, and a reader with a cursor takes nothing from it', async () => {
    const { a, b, roomId } = await pairByTools();
    expect((await wait(a)).events.map((e) => e.method)).toEqual(['chatroom.found']);
    await b.call('send_message', { room_id: roomId, message: 'one' });
    // Another reader of the same user (a chat window, say) reads with its own cursor.
    expect((await wait(a, { after: '1' })).events.map((e) => e.params.message)).toEqual(['one']);
    await b.call('send_message', { room_id: roomId, message: 'two' });
    expect((await wait(a)).events.map((e) => e.params.message)).toEqual(['one', 'two']);
    expect(await wait(a, { timeout_s: 0.1 })).toEqual({ events: [], cursor: '3' });
  });

  it('holds the call until an event arrives', async () => {
    const { a, b, roomId } = await pairByTools();
    const { cursor } = await wait(a);
    const pending = wait(a, { after: cursor, timeout_s: 20 });
    let answered = false;
    void pending.then(() => (answered = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(answered).toBe(false);
    await b.call('send_message', { room_id: roomId, message: 'wake up' });
    expect((await pending).events.map((e) => e.params.message)).toEqual(['wake up']);
  });

  it('answers an empty page when timeout_s passes with nothing new', async () => {
    const a = await connect();
    await a.call('enter_queue');
    expect(await wait(a, { timeout_s: 0.2 })).toEqual({ events: [], cursor: '0' });
  });

  it('sends progress notifications while it holds a call that carries a progress token', async () => {
    const a = await connect();
    await a.call('enter_queue');
    const progress: number[] = [];
    const result = await a.client.callTool({ name: 'wait_for_events', arguments: { timeout_s: 1.2 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(result.structuredContent).toEqual({ events: [], cursor: '0' });
    // One at the start, then every fifth of the wait.
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress[0]).toBe(0);
    expect([...progress].sort((x, y) => x - y)).toEqual(progress);
    expect(progress.at(-1)).toBeGreaterThan(0);
  });

  it('holds two calls at the same position side by side (a model and its window that both read everything): each gets the event', async () => {
    const { a, b, roomId } = await pairByTools();
    const { cursor } = await wait(a, { after: '0' });
    const first = wait(a, { after: cursor, timeout_s: 20 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = wait(a, { after: cursor, timeout_s: 20 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await b.call('send_message', { room_id: roomId, message: 'for both' });
    expect((await first).events.map((e) => e.params.message)).toEqual(['for both']);
    expect((await second).events.map((e) => e.params.message)).toEqual(['for both']);
  });

  it('holds calls of two readers at different positions side by side, and each gets the event', async () => {
    const { a, b, roomId } = await pairByTools();
    const { cursor } = await wait(a, { after: '0' });
    const [model, window] = [wait(a, { after: cursor, timeout_s: 20 }), wait(a, { after: '0', timeout_s: 20 })];
    expect((await window).events.map((e) => e.method)).toEqual(['chatroom.found']);
    await b.call('send_message', { room_id: roomId, message: 'for both' });
    expect((await model).events.map((e) => e.params.message)).toEqual(['for both']);
    expect((await wait(a, { after: cursor })).events.map((e) => e.params.message)).toEqual(['for both']);
  });

  it('says so when `after` has fallen out of the bounded buffer', async () => {
    const { a, b, roomId } = await pairByTools(small);
    for (const n of [1, 2, 3, 4, 5]) await b.call('send_message', { room_id: roomId, message: `m${n}` });
    const page = await wait(a, { after: '0' });
    expect(page.events[0]).toEqual({ id: '3', method: 'events.missed', params: { count: 3 } });
    expect(page.events.slice(1).map((e) => e.params.message)).toEqual(['m3', 'm4', 'm5']);
    expect(page.missed).toBe(3);
    expect(page.note).toMatch(/3 older event\(s\) left the log before you took them/);
  });

  it('refuses a cursor it never gave, and timeouts over 50 s', async () => {
    const a = await connect();
    await a.call('enter_queue');
    expect(await a.refusal('wait_for_events', { after: 'banana' })).toMatch(/not a cursor from wait_for_events/);
    expect(await a.refusal('wait_for_events', { after: '99' })).toMatch(/not a cursor/);
    expect(await a.refusal('wait_for_events', { timeout_s: 51 })).toMatch(/at most 50 seconds/);
  });

  it('lets two agents hold a whole conversation with tools alone', async () => {
    const alice = await connect();
    const bob = await connect();
    expect(await alice.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    const [found] = (await wait(alice, { timeout_s: 0.05 })).events; // nobody yet
    expect(found).toBeUndefined();
    const bobFound = await bob.call('enter_queue');
    const aliceFound = await wait(alice);
    const roomId = aliceFound.events[0]!.params.room_id as string;
    expect(roomId).toBe(bobFound.room_id);

    const script = ['Hello!', 'Hi, who are you?', 'A test.', 'Nice. Bye!'];
    let aliceCursor = aliceFound.cursor;
    let bobCursor = (await wait(bob)).cursor;
    const heardByAlice: string[] = [];
    const heardByBob: string[] = [];
    for (const [turn, line] of script.entries()) {
      const [speaker, listener] = turn % 2 === 0 ? [alice, bob] : [bob, alice];
      await speaker.call('send_message', { room_id: roomId, message: line });
      const page = await wait(listener, { after: listener === alice ? aliceCursor : bobCursor });
      for (const event of page.events) (listener === alice ? heardByAlice : heardByBob).push(event.params.message as string);
      if (listener === alice) aliceCursor = page.cursor;
      else bobCursor = page.cursor;
    }
    expect(heardByBob).toEqual(['Hello!', 'A test.']);
    expect(heardByAlice).toEqual(['Hi, who are you?', 'Nice. Bye!']);

    expect(await bob.call('leave_chat', { room_id: roomId })).toEqual({ status: 'idle' });
    const last = await wait(alice, { after: aliceCursor });
    expect(last.events).toEqual([{ id: expect.any(String), method: 'partner.disconnected', params: { room_id: roomId, reason: 'left' } }]);
  });
});
