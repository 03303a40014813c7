/**
 * The contract every ChatBroker keeps, as one suite to run against each
 * implementation: the in-memory one, one Redis broker, and two Redis brokers sharing a
 * queue (users then alternate between them, so pairs and rooms span both). Deliveries
 * may arrive later than the call that caused them, so checks wait for them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatBroker, Delivery } from '../../src/chat/broker.js';
import { eventually } from '../support/eventually.js';

/** Brokers that share one queue, and how each names its users. */
export interface BrokerSet {
  brokers: ChatBroker[];
  /** The id of user `name` of broker `index`. */
  userId(name: string, index: number): string;
  close(): Promise<void>;
}

export function describeBrokerContract(name: string, makeBrokers: () => Promise<BrokerSet>): void {
  describe(`ChatBroker contract: ${name}`, () => {
    let set: BrokerSet | undefined;
    const users = new Map<string, { id: string; broker: ChatBroker; inbox: Delivery[]; detach: () => void }>();
    let made = 0;
    /** A stand-in for "the broker" of the single-broker checks: the one user `name` belongs to. */
    const brokerOf = (name: string) => users.get(name)!.broker;
    const idOf = (name: string) => users.get(name)!.id;

    const start = async () => {
      set = await makeBrokers();
      made = 0;
    };
    const user = (name: string) => {
      const index = made++ % set!.brokers.length;
      const broker = set!.brokers[index]!;
      const id = set!.userId(name, index);
      const inbox: Delivery[] = [];
      const detach = broker.attach(id, (event) => inbox.push(event));
      const made_ = { id, broker, inbox, detach };
      users.set(name, made_);
      return made_;
    };
    const join = (name: string, avoid: string | null = null) => brokerOf(name).join({ userId: idOf(name), avoid: avoid && idOf(avoid) });
    const placeOf = async (name: string) => (await brokerOf(name).placeOf(idOf(name)))?.position;
    const stats = () =>
      set!.brokers
        .map((b) => b.stats())
        .reduce((sum, s) => ({ waiting: sum.waiting + s.waiting, rooms: sum.rooms + s.rooms }), { waiting: 0, rooms: 0 });
    const paired = (u: { inbox: Delivery[] }) =>
      u.inbox.find((e) => e.type === 'room.paired') as Extract<Delivery, { type: 'room.paired' }>;
    /** Starts the brokers and pairs a with b: both users, and their room. */
    const pairedAB = async () => {
      await start();
      const [a, b] = [user('a'), user('b')];
      await join('a');
      await join('b');
      await eventually(() => expect([paired(a), paired(b)]).toEqual([expect.anything(), expect.anything()]));
      return { a, b, roomId: paired(a).roomId };
    };

    afterEach(async () => {
      await set?.close();
      set = undefined;
      users.clear();
    });

    it('keeps a lone user waiting at position 1', async () => {
      await start();
      const a = user('a');
      await join('a');
      await eventually(async () => expect(await placeOf('a')).toBe(1));
      expect(stats()).toEqual({ waiting: 1, rooms: 0 });
      expect(a.inbox).toEqual([]);
    });

    it('pairs the first two users in one room and tells each the other', async () => {
      await start();
      const [a, b] = [user('a'), user('b')];
      await join('a');
      await join('b');
      await eventually(() => expect([paired(a), paired(b)]).toEqual([expect.anything(), expect.anything()]));
      expect(paired(a)).toEqual({ type: 'room.paired', roomId: expect.any(String), partnerId: idOf('b'), commonInterests: [] });
      expect(paired(b)).toEqual({ type: 'room.paired', roomId: paired(a).roomId, partnerId: idOf('a'), commonInterests: [] });
      expect(stats()).toEqual({ waiting: 0, rooms: 1 });
      expect(await placeOf('a')).toBeUndefined();
    });

    it("resolves a join with the queue's decision: the joiner's room has arrived, or its place in line is stored", async () => {
      await start();
      const [a, b, c] = [user('a'), user('b'), user('c')];
      await join('a');
      // No waiting for it: the answer a tool gives right after the join must be true.
      expect(await placeOf('a')).toBe(1);
      expect(a.inbox).toEqual([]);
      await join('b');
      expect(paired(b)).toEqual({ type: 'room.paired', roomId: expect.any(String), partnerId: idOf('a'), commonInterests: [] });
      expect(await placeOf('b')).toBeUndefined();
      await join('c');
      expect(c.inbox).toEqual([]);
      expect(await placeOf('c')).toBe(1);
    });

    it('relays messages to the partner, numbered in order, and answers each send with its receipt', async () => {
      const { a, b, roomId } = await pairedAB();
      // One sender's messages keep their order; between two senders in two processes the
      // room numbers what reaches it first: the reply goes once a's three have their receipts.
      const sent = await Promise.all(['one', 'two', 'three'].map((text) => brokerOf('a').send(roomId, idOf('a'), text)));
      const reply = await brokerOf('b').send(roomId, idOf('b'), 'reply');
      await eventually(() => expect(b.inbox.filter((e) => e.type === 'room.message')).toHaveLength(3));
      const atB = b.inbox.filter((e) => e.type === 'room.message');
      expect(atB.map((e) => [e.seq, e.text])).toEqual([
        [1, 'one'],
        [2, 'two'],
        [3, 'three'],
      ]);
      // The receipt is the message as its room numbered it: what the partner got, less the text.
      expect(sent).toEqual(
        atB.map(({ roomId, messageId, seq, sentAt }) => ({ status: 'sent', receipt: { roomId, messageId, seq, sentAt } })),
      );
      await eventually(() => expect(a.inbox.filter((e) => e.type === 'room.message').map((e) => [e.seq, e.text])).toEqual([[4, 'reply']]));
      const atA = a.inbox.find((e) => e.type === 'room.message')!;
      expect(reply).toEqual({ status: 'sent', receipt: { roomId, messageId: atA.messageId, seq: 4, sentAt: atA.sentAt } });
      expect(new Set(atB.map((e) => e.messageId)).size).toBe(3);
    });

    it('answers a send to a room that has closed with closed, and relays nothing', async () => {
      const { a, b, roomId } = await pairedAB();
      await brokerOf('b').leaveRoom(roomId, idOf('b'), 'left');
      await eventually(() => expect(a.inbox.at(-1)).toEqual({ type: 'room.closed', roomId, reason: 'left' }));
      expect(await brokerOf('a').send(roomId, idOf('a'), 'anyone?')).toEqual({ status: 'closed' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(b.inbox.filter((e) => e.type === 'room.message')).toEqual([]);
    });

    it('closes a room when a member leaves, telling the partner why', async () => {
      await start();
      const [a, b] = [user('a'), user('b')];
      await join('a');
      await join('b');
      await eventually(() => expect([paired(a), paired(b)]).toEqual([expect.anything(), expect.anything()]));
      brokerOf('b').leaveRoom(paired(a).roomId, idOf('b'), 'timeout');
      await eventually(() => expect(a.inbox.at(-1)).toEqual({ type: 'room.closed', roomId: paired(a).roomId, reason: 'timeout' }));
      await eventually(() => expect(stats().rooms).toBe(0));
      // The leaver hears nothing of its own leaving: its next delivery is its next pairing.
      user('c');
      await join('b');
      await join('c');
      await eventually(() => expect(b.inbox.filter((e) => e.type === 'room.paired')).toHaveLength(2));
      expect(b.inbox.map((e) => e.type)).toEqual(['room.paired', 'room.paired']);
    });

    it('takes a user out of the line on leaveQueue', async () => {
      await start();
      user('a');
      await join('a');
      brokerOf('a').leaveQueue(idOf('a'));
      await eventually(async () => expect(await placeOf('a')).toBeUndefined());
      user('b');
      await join('b');
      await eventually(async () => expect(await placeOf('b')).toBe(1));
    });

    it('does not pair two users who avoid each other, but pairs each with a stranger', async () => {
      await start();
      user('a');
      const [b, c] = [user('b'), user('c')];
      await join('a', 'b');
      await join('b', 'a');
      await eventually(() => expect(stats().waiting).toBe(2));
      await join('c');
      await eventually(() =>
        expect(paired(c)).toEqual({ type: 'room.paired', roomId: expect.any(String), partnerId: idOf('a'), commonInterests: [] }),
      );
      expect(paired(b)).toBeUndefined();
    });

    it('on shutdown closes every room it holds under both members', async () => {
      await start();
      const [a, b] = [user('a'), user('b')];
      user('c');
      for (const id of ['a', 'b', 'c']) await join(id);
      await eventually(() => expect([paired(a), paired(b)]).toEqual([expect.anything(), expect.anything()]));
      for (const broker of set!.brokers) await broker.shutdown();
      for (const member of [a, b])
        await eventually(() => expect(member.inbox.at(-1)).toEqual({ type: 'room.closed', roomId: paired(a).roomId, reason: 'shutdown' }));
      await eventually(() => expect(stats().rooms).toBe(0));
    });

    it('delivers nothing to a user who detached', async () => {
      await start();
      const [a, b] = [user('a'), user('b')];
      await join('a');
      await join('b');
      await eventually(() => expect([paired(a), paired(b)]).toEqual([expect.anything(), expect.anything()]));
      b.detach();
      const before = b.inbox.length;
      expect(await brokerOf('a').send(paired(a).roomId, idOf('a'), 'anyone?')).toMatchObject({ status: 'sent', receipt: { seq: 1 } });
      // A partner in another process hears of it through its inbox: give that a moment
      // (the drop is what is checked, not how fast it comes).
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Attach again and send a marker: deliveries are ordered, so anything the detached
      // inbox was still owed would have to arrive before it.
      const again: Delivery[] = [];
      brokerOf('b').attach(idOf('b'), (event) => again.push(event));
      brokerOf('a').send(paired(a).roomId, idOf('a'), 'marker');
      await eventually(() => expect(again.some((e) => e.type === 'room.message')).toBe(true));
      expect(again.filter((e) => e.type === 'room.message').map((e) => e.text)).toEqual(['marker']);
      expect(b.inbox.length).toBe(before);
    });
  });
}
