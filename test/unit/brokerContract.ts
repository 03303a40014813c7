/**
 * The contract every ChatBroker keeps, as one suite to run against each
 * implementation (the in-memory one today; a Redis one would run the same suite).
 * Deliveries may arrive later than the call that caused them, so checks wait for them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatBroker, Delivery } from '../../src/chat/broker.js';
import { eventually } from '../support/eventually.js';

export function describeBrokerContract(name: string, makeBroker: () => ChatBroker): void {
  describe(`ChatBroker contract: ${name}`, () => {
    let broker: ChatBroker;
    const inboxes = new Map<string, Delivery[]>();

    const user = (id: string) => {
      const inbox: Delivery[] = [];
      inboxes.set(id, inbox);
      const detach = broker.attach(id, (event) => inbox.push(event));
      return { id, inbox, detach };
    };
    const paired = (u: { inbox: Delivery[] }) => u.inbox.find((e) => e.type === 'room.paired') as Extract<Delivery, { type: 'room.paired' }>;

    afterEach(() => {
      broker?.close();
      inboxes.clear();
    });

    it('keeps a lone user waiting at position 1', async () => {
      broker = makeBroker();
      const a = user('a');
      broker.join({ userId: a.id, avoid: null });
      await eventually(() => expect(broker.placeOf('a')?.position).toBe(1));
      expect(broker.stats()).toEqual({ waiting: 1, rooms: 0 });
      expect(a.inbox).toEqual([]);
    });

    it('pairs the first two users in one room and tells each the other', async () => {
      broker = makeBroker();
      const [a, b] = [user('a'), user('b')];
      broker.join({ userId: 'a', avoid: null });
      broker.join({ userId: 'b', avoid: null });
      await eventually(() => expect(paired(a)).toBeDefined());
      await eventually(() => expect(paired(b)).toBeDefined());
      expect(paired(a)).toEqual({ type: 'room.paired', roomId: expect.any(String), partnerId: 'b', commonInterests: [] });
      expect(paired(b)).toEqual({ type: 'room.paired', roomId: paired(a).roomId, partnerId: 'a', commonInterests: [] });
      expect(broker.stats()).toEqual({ waiting: 0, rooms: 1 });
      expect(broker.placeOf('a')?.position).toBeUndefined();
    });

    it('relays messages to the partner, numbered in order, with a receipt for the sender', async () => {
      broker = makeBroker();
      const [a, b] = [user('a'), user('b')];
      broker.join({ userId: 'a', avoid: null });
      broker.join({ userId: 'b', avoid: null });
      await eventually(() => expect(paired(b)).toBeDefined());
      const roomId = paired(a).roomId;
      for (const text of ['one', 'two', 'three']) broker.send(roomId, 'a', text);
      broker.send(roomId, 'b', 'reply');
      await eventually(() => expect(b.inbox.filter((e) => e.type === 'room.message')).toHaveLength(3));
      const atB = b.inbox.filter((e) => e.type === 'room.message');
      expect(atB.map((e) => [e.seq, e.text])).toEqual([[1, 'one'], [2, 'two'], [3, 'three']]);
      await eventually(() => expect(a.inbox.filter((e) => e.type === 'room.receipt')).toHaveLength(3));
      const receipts = a.inbox.filter((e) => e.type === 'room.receipt');
      expect(receipts.map((e) => e.messageId)).toEqual(atB.map((e) => e.messageId));
      await eventually(() => expect(a.inbox.filter((e) => e.type === 'room.message').map((e) => [e.seq, e.text])).toEqual([[4, 'reply']]));
      expect(new Set(atB.map((e) => e.messageId)).size).toBe(3);
    });

    it('closes a room when a member leaves, telling the partner why', async () => {
      broker = makeBroker();
      const [a, b] = [user('a'), user('b')];
      broker.join({ userId: 'a', avoid: null });
      broker.join({ userId: 'b', avoid: null });
      await eventually(() => expect(paired(a)).toBeDefined());
      broker.leaveRoom(paired(a).roomId, 'b', 'timeout');
      await eventually(() => expect(a.inbox.at(-1)).toEqual({ type: 'room.closed', roomId: paired(a).roomId, reason: 'timeout' }));
      await eventually(() => expect(broker.stats().rooms).toBe(0));
      // The leaver hears nothing of its own leaving: its next delivery is its next pairing.
      user('c');
      broker.join({ userId: 'b', avoid: null });
      broker.join({ userId: 'c', avoid: null });
      await eventually(() => expect(b.inbox.filter((e) => e.type === 'room.paired')).toHaveLength(2));
      expect(b.inbox.map((e) => e.type)).toEqual(['room.paired', 'room.paired']);
    });

    it('takes a user out of the line on leaveQueue', async () => {
      broker = makeBroker();
      user('a');
      broker.join({ userId: 'a', avoid: null });
      broker.leaveQueue('a');
      await eventually(() => expect(broker.placeOf('a')?.position).toBeUndefined());
      user('b');
      broker.join({ userId: 'b', avoid: null });
      await eventually(() => expect(broker.placeOf('b')?.position).toBe(1));
    });

    it('does not pair two users who avoid each other, but pairs each with a stranger', async () => {
      broker = makeBroker();
      user('a');
      const [b, c] = [user('b'), user('c')];
      broker.join({ userId: 'a', avoid: 'b' });
      broker.join({ userId: 'b', avoid: 'a' });
      await eventually(() => expect(broker.stats().waiting).toBe(2));
      broker.join({ userId: 'c', avoid: null });
      await eventually(() => expect(paired(c)).toEqual({ type: 'room.paired', roomId: expect.any(String), partnerId: 'a', commonInterests: [] }));
      expect(paired(b)).toBeUndefined();
    });

    it('on shutdown closes every room under both members and empties the line', async () => {
      broker = makeBroker();
      const [a, b] = [user('a'), user('b')];
      user('c');
      for (const id of ['a', 'b', 'c']) broker.join({ userId: id, avoid: null });
      await eventually(() => expect(paired(a)).toBeDefined());
      broker.shutdown();
      for (const member of [a, b])
        await eventually(() => expect(member.inbox.at(-1)).toEqual({ type: 'room.closed', roomId: paired(a).roomId, reason: 'shutdown' }));
      await eventually(() => expect(broker.stats()).toEqual({ waiting: 0, rooms: 0 }));
    });

    it('delivers nothing to a user who detached', async () => {
      broker = makeBroker();
      const [a, b] = [user('a'), user('b')];
      broker.join({ userId: 'a', avoid: null });
      broker.join({ userId: 'b', avoid: null });
      await eventually(() => expect(paired(b)).toBeDefined());
      b.detach();
      const before = b.inbox.length;
      broker.send(paired(a).roomId, 'a', 'anyone?');
      // Attach again and send a marker: deliveries are ordered, so anything the detached
      // inbox was still owed would have to arrive before it.
      const again: Delivery[] = [];
      broker.attach('b', (event) => again.push(event));
      broker.send(paired(a).roomId, 'a', 'marker');
      await eventually(() => expect(again.some((e) => e.type === 'room.message')).toBe(true));
      expect(again.filter((e) => e.type === 'room.message').map((e) => e.text)).toEqual(['marker']);
      expect(b.inbox.length).toBe(before);
    });
  });
}
