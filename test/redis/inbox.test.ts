/**
 * Inboxes over a real redis-server: two "processes" (each its own connections and
 * process id) exchange records exactly once and in order, while every connection is
 * cut in the middle of the stream — by Redis (CLIENT KILL) and by the network (a proxy
 * that loses the replies to commands Redis ran, so ioredis sends them again).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectRedis, type Redis, untilRedisReady } from '../../src/chat/broker/redis/connection.js';
import { createMailbox, inboxKeys, type Mailbox } from '../../src/chat/broker/redis/mailbox.js';
import { eventually, sleep } from '../support/eventually.js';
import { startCutProxy, startRedis, type TestRedis } from '../support/redis.js';

interface Peer {
  id: string;
  client: Redis;
  inbox: Mailbox<{ n: number }>;
  received: { from: string; n: number }[];
  gaps: number;
}

let redis: TestRedis;
const peers: Peer[] = [];

async function peer(id: string, options: { sendTimeoutMs?: number; url?: string } = {}): Promise<Peer> {
  const { url = redis.url } = options;
  const client = connectRedis(url, { name: id });
  await untilRedisReady(client);
  const received: { from: string; n: number }[] = [];
  const made: Peer = { id, client, received, gaps: 0, inbox: undefined as never };
  made.inbox = createMailbox<{ n: number }>({
    url,
    client,
    processId: id,
    sendTimeoutMs: options.sendTimeoutMs,
    onRecord: (record, meta) => received.push({ from: meta.from, n: record.n }),
    onGap: (_from, missing) => (made.gaps += missing),
  });
  peers.push(made);
  return made;
}

beforeEach(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  for (const { inbox, client } of peers.splice(0)) {
    await inbox.close();
    client.disconnect();
  }
  await redis.stop();
});

/** Lost, duplicated and out-of-order records among `received` from `from`, expecting 1..count. */
function audit(received: { from: string; n: number }[], from: string, count: number) {
  const numbers = received.filter((r) => r.from === from).map((r) => r.n);
  const seen = new Set(numbers);
  let outOfOrder = 0;
  for (let i = 1; i < numbers.length; i++) if (numbers[i]! <= numbers[i - 1]!) outOfOrder++;
  let lost = 0;
  for (let n = 1; n <= count; n++) if (!seen.has(n)) lost++;
  return { lost, duplicated: numbers.length - seen.size, outOfOrder };
}

describe('an inbox on Redis Streams', () => {
  it('delivers 20,000 records each way exactly once and in order while connections are cut 6 times', async () => {
    const proxy = await startCutProxy(redis);
    try {
      const a = await peer('proc-a', { url: proxy.url });
      const b = await peer('proc-b', { url: proxy.url });
      const count = 20_000;
      const cutsAt: number[] = [];

      const sendAll = async (from: Peer, to: Peer) => {
        const sends: Promise<void>[] = [];
        for (let n = 1; n <= count; n++) {
          sends.push(from.inbox.send(to.id, { n }));
          // A producer that keeps producing: a slice at a time, so cuts land mid-stream.
          if (n % 1_000 === 0) await sleep(10);
        }
        await Promise.all(sends);
      };
      const cutter = (async () => {
        for (let cut = 1; cut <= 6; cut++) {
          await eventually(() => expect(b.received.length).toBeGreaterThan((cut * count) / 8), 20_000);
          cutsAt.push(b.received.length);
          // Both peers' command and reader connections, every time.
          if (cut % 2 === 1) expect(await redis.cutClients()).toBeGreaterThanOrEqual(4);
          else expect(await proxy.cut()).toBeGreaterThanOrEqual(4);
        }
      })();
      await Promise.all([sendAll(a, b), sendAll(b, a), cutter]);
      await eventually(() => {
        expect(b.received.length).toBeGreaterThanOrEqual(count);
        expect(a.received.length).toBeGreaterThanOrEqual(count);
      }, 20_000);
      await sleep(200); // anything late would be a duplicate

      // The cuts came while records were still flowing.
      expect(cutsAt).toHaveLength(6);
      for (const delivered of cutsAt) expect(delivered).toBeLessThan(count);
      expect(audit(b.received, 'proc-a', count)).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0 });
      expect(audit(a.received, 'proc-b', count)).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0 });
      expect([a.received.length, b.received.length]).toEqual([count, count]);
      expect([a.gaps, b.gaps]).toEqual([0, 0]);
      // Appends Redis had run were sent again after the cuts, and the script refused them:
      // the streams hold each record once, and the readers had nothing to drop.
      const [statsA, statsB] = [a.inbox.stats(), b.inbox.stats()];
      expect(statsA.duplicateAppends + statsB.duplicateAppends).toBeGreaterThan(0);
      expect([statsA.sent, statsB.sent]).toEqual([count, count]);
      expect([statsA.duplicatesDropped, statsB.duplicatesDropped]).toEqual([0, 0]);
      expect(await a.client.xlen(inboxKeys('proc-a').stream)).toBe(count);
      expect(await a.client.xlen(inboxKeys('proc-b').stream)).toBe(count);
    } finally {
      for (const { inbox, client } of peers.splice(0)) {
        await inbox.close();
        client.disconnect();
      }
      await proxy.close();
    }
  });

  it('drops a record that reaches the stream twice, delivering it once', async () => {
    const a = await peer('proc-a');
    const b = await peer('proc-b');
    await a.inbox.send('proc-b', { n: 1 });
    // The same record again, as a resend that bypassed the append script would write it.
    await a.client.xadd(inboxKeys('proc-b').stream, '*', 'p', 'proc-a', 'c', '1', 'd', JSON.stringify({ n: 1 }));
    await a.inbox.send('proc-b', { n: 2 });
    await eventually(() =>
      expect(b.received).toEqual([
        { from: 'proc-a', n: 1 },
        { from: 'proc-a', n: 2 },
      ]),
    );
    await sleep(100);
    expect(b.received).toHaveLength(2);
    expect(b.inbox.stats().duplicatesDropped).toBe(1);
  });

  it('the append script takes a record only after its predecessor, and a repeat not at all', async () => {
    const a = await peer('proc-a');
    const b = await peer('proc-b');
    await a.inbox.send('proc-b', { n: 1 });
    const { stream } = inboxKeys('proc-b');
    expect(await a.client.xlen(stream)).toBe(1);
    // A later sender (another inbox object with the same producer id) replays counters 1, 2:
    // 1 is answered "duplicate", 2 is taken.
    const replay = createMailbox<{ n: number }>({ url: redis.url, client: a.client, processId: 'proc-a', onRecord: () => {} });
    try {
      await replay.send('proc-b', { n: 1 });
      await replay.send('proc-b', { n: 2 });
      expect(replay.stats()).toMatchObject({ sent: 2, duplicateAppends: 1 });
    } finally {
      await replay.close();
    }
    await eventually(() => expect(b.received.map((r) => r.n)).toEqual([1, 2]));
    expect(await a.client.xlen(stream)).toBe(2);
  });

  it('forgetting a process that is gone rejects the sends still waiting for it', async () => {
    const a = await peer('proc-a');
    redis.freeze();
    try {
      const waiting = a.inbox.send('proc-gone', { n: 1 });
      a.inbox.forget('proc-gone');
      await expect(waiting).rejects.toThrow(/proc-gone is gone/);
    } finally {
      redis.thaw();
    }
  });

  it('rejects a send Redis does not take within sendTimeoutMs, and later records still arrive in order', async () => {
    const a = await peer('proc-a', { sendTimeoutMs: 1_000 });
    const b = await peer('proc-b');
    await a.inbox.send('proc-b', { n: 1 });
    await eventually(() => expect(b.received).toHaveLength(1));

    redis.freeze();
    const started = performance.now();
    const stuck = a.inbox.send('proc-b', { n: 2 });
    await expect(stuck).rejects.toThrow(/did not take the record within 1000 ms/);
    expect(performance.now() - started).toBeLessThan(4_000);
    redis.thaw();

    await a.inbox.send('proc-b', { n: 3 });
    await eventually(() => expect(b.received.at(-1)).toEqual({ from: 'proc-a', n: 3 }), 10_000);
    await sleep(200);
    // Record 2 may have landed (its append was sent before Redis froze) or not; if it did,
    // it came before 3 and once.
    const numbers = b.received.map((r) => r.n);
    expect([
      [1, 2, 3],
      [1, 3],
    ]).toContainEqual(numbers);
    expect(b.gaps).toBe(numbers.length === 2 ? 1 : 0);
  });
});
