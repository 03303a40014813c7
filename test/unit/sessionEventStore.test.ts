import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { EventLog } from '../../src/chat/eventLog.js';
import type { ChatMessage } from '../../src/mcp/notifications.js';
import { SESSION_STREAM, SessionEventStore } from '../../src/session/replay/eventStore.js';
import { Ring } from '../../src/session/replay/ring.js';

/** A user's log holding at most `events` events. */
const logOf = (events: number) => new EventLog<ChatMessage>({ events, bytes: 1 << 30 }, () => 1);

const note = (n: number): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'message.received', params: { n } });
const log = (data: string): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data } });

async function replay(store: SessionEventStore, after: string) {
  const sent: [string, JSONRPCMessage][] = [];
  const stream = await store.replayEventsAfter(after, { send: async (id, message) => void sent.push([id, message]) });
  return { stream, sent };
}

describe('Ring', () => {
  it('numbers entries from 1 and keeps the newest `capacity` of them', () => {
    const ring = new Ring<string>(3);
    expect([ring.first, ring.last]).toEqual([1, 0]);
    for (const v of ['a', 'b', 'c', 'd', 'e']) ring.push(v);
    expect([ring.first, ring.last]).toEqual([3, 5]);
    expect([...ring.after(0)]).toEqual([
      [3, 'c'],
      [4, 'd'],
      [5, 'e'],
    ]);
    expect([...ring.after(4)]).toEqual([[5, 'e']]);
    expect([...ring.after(5)]).toEqual([]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new Ring(0)).toThrow(RangeError);
    expect(() => new Ring(1.5)).toThrow(RangeError);
  });
});

describe('SessionEventStore', () => {
  it('replays the session stream after an id, in order, once — ids are plain numbers', async () => {
    const store = new SessionEventStore(logOf(10));
    const ids = [];
    for (const n of [1, 2, 3, 4]) ids.push(await store.storeEvent(SESSION_STREAM, note(n)));
    expect(ids).toEqual(['1', '2', '3', '4']);
    expect(await store.getStreamIdForEventId('2')).toBe(SESSION_STREAM);
    const { stream, sent } = await replay(store, '2');
    expect(stream).toBe(SESSION_STREAM);
    expect(sent).toEqual([
      ['3', note(3)],
      ['4', note(4)],
    ]);
  });

  it('keeps request streams apart, with ids that name their stream', async () => {
    const store = new SessionEventStore(logOf(10));
    await store.storeEvent(SESSION_STREAM, note(1));
    const first = await store.storeEvent('req-a', note(10));
    await store.storeEvent('req-a', note(11));
    expect(first).toBe('req-a#1');
    expect(await store.getStreamIdForEventId(first)).toBe('req-a');
    expect((await replay(store, first)).sent).toEqual([['req-a#2', note(11)]]);
    expect(await store.getStreamIdForEventId('req-unknown#1')).toBeUndefined();
    expect(await store.getStreamIdForEventId('not an id')).toBeUndefined();
  });

  it("answers the id the user's log gave a chat message, instead of appending it again", async () => {
    const userLog = logOf(10);
    const store = new SessionEventStore(userLog);
    const message = note(1) as ChatMessage;
    const id = userLog.append(message);
    store.expect(message, id);
    expect(await store.storeEvent(SESSION_STREAM, message)).toBe(String(id));
    expect(userLog.last).toBe(1);
  });

  it('begins a replay from past the log with events.missed, saying how many are gone', async () => {
    const store = new SessionEventStore(logOf(3));
    for (const n of [1, 2, 3, 4, 5]) await store.storeEvent(SESSION_STREAM, note(n));
    const { sent } = await replay(store, '1');
    expect(sent).toEqual([
      ['side.2#0', { jsonrpc: '2.0', method: 'events.missed', params: { count: 1 } }],
      ['3', note(3)],
      ['4', note(4)],
      ['5', note(5)],
    ]);
    expect((await replay(store, '2')).sent.map(([id]) => id)).toEqual(['3', '4', '5']);
  });

  it('keeps log lines beside the chat ring, so they never push chat events out', async () => {
    const userLog = logOf(2);
    const store = new SessionEventStore(userLog);
    expect(await store.storeEvent(SESSION_STREAM, note(1))).toBe('1');
    for (const line of ['a', 'b', 'c']) expect(await store.storeEvent(SESSION_STREAM, log(line))).toMatch(/^side\.1#\d$/);
    expect(await store.storeEvent(SESSION_STREAM, note(2))).toBe('2');
    expect([...userLog.after(0)].map(([id]) => id)).toEqual([1, 2]);
  });

  it('replays chat events and log lines interleaved as they were sent, after either kind of id', async () => {
    const store = new SessionEventStore(logOf(10));
    const sent: string[] = [];
    for (const item of [note(1), log('x'), note(2), log('y'), log('z'), note(3)]) sent.push(await store.storeEvent(SESSION_STREAM, item));
    expect(sent).toEqual(['1', 'side.1#1', '2', 'side.2#2', 'side.2#3', '3']);
    const ids = async (after: string) => (await replay(store, after)).sent.map(([id]) => id);
    expect(await ids('1')).toEqual(['side.1#1', '2', 'side.2#2', 'side.2#3', '3']);
    expect(await ids('2')).toEqual(['side.2#2', 'side.2#3', '3']);
    expect(await ids('side.2#2')).toEqual(['side.2#3', '3']);
    expect(await ids('side.2#3')).toEqual(['3']);
    expect(await ids('side.0#0')).toEqual(sent);
    expect(await store.getStreamIdForEventId('side.2#2')).toBe(SESSION_STREAM);
    expect(store.sessionPosition('side.2#2')).toEqual({ chat: 2, side: 2 });
    expect(store.sessionPosition('3')).toEqual({ chat: 3, side: 3 });
    expect(store.sessionPosition('req#1')).toBeUndefined();
    expect(store.isBehind({ chat: 3, side: 3 })).toBe(false);
    expect(store.isBehind({ chat: 3, side: 2 })).toBe(true);
  });

  it('places a client exactly from a side id even after the side ring has moved on', async () => {
    const store = new SessionEventStore(logOf(1000));
    await store.storeEvent(SESSION_STREAM, note(1));
    const last = await store.storeEvent(SESSION_STREAM, log('seen'));
    for (let i = 2; i <= 41; i++) {
      await store.storeEvent(SESSION_STREAM, note(i));
      await store.storeEvent(SESSION_STREAM, log('a'));
      await store.storeEvent(SESSION_STREAM, log('b'));
    }
    const chats = (await replay(store, last)).sent.filter(([id]) => /^\d+$/.test(id)).map(([id]) => Number(id));
    expect(chats).toEqual(Array.from({ length: 40 }, (_, i) => i + 2));
  });
});
