/**
 * The lease with a fencing epoch, over a real redis-server: one holder at a time, a
 * successor after expiry, and a stale holder's writes rejected by Redis itself.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectRedis, type Redis, untilRedisReady } from '../../src/chat/broker/redis/connection.js';
import { createLease, FencedError, fencedScript, type LeaseLoss } from '../../src/chat/broker/redis/lease.js';
import { eventually, sleep } from '../support/eventually.js';
import { startRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
const clients: Redis[] = [];

async function client(): Promise<Redis> {
  const made = connectRedis(redis.url);
  clients.push(made);
  await untilRedisReady(made);
  return made;
}

beforeEach(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  for (const made of clients.splice(0)) made.disconnect();
  await redis.stop();
});

/** The queue's state and the id of the last input it consumed, written together, fenced. */
const saveState = fencedScript(`redis.call('SET', KEYS[1], ARGV[1]); return 1`, 1);

describe('a lease with a fencing epoch', () => {
  it('one holder at a time; a renewing holder keeps it past its ttl; a release frees it at once', async () => {
    const [ca, cb] = [await client(), await client()];
    const a = createLease({ client: ca, name: 'queue', holder: 'proc-a', ttlMs: 600 });
    const b = createLease({ client: cb, name: 'queue', holder: 'proc-b', ttlMs: 600 });
    try {
      expect(await a.acquire()).toBe(1);
      expect(await b.acquire()).toBeNull();
      await sleep(1_500); // 2.5 ttls, renewed every 200 ms
      expect(a.held()).toBe(true);
      expect(await b.acquire()).toBeNull();
      await a.release();
      expect(a.held()).toBe(false);
      expect(await b.acquire()).toBe(2);
    } finally {
      await a.release();
      await b.release();
    }
  });

  it('a second holder takes it after expiry; the stale holder learns it and its fenced writes are rejected', async () => {
    const [ca, cb] = [await client(), await client()];
    const lostA: LeaseLoss[] = [];
    // A renews only by hand: it stands for a holder frozen past its lease.
    const a = createLease({
      client: ca,
      name: 'queue',
      holder: 'proc-a',
      ttlMs: 500,
      renewEveryMs: false,
      onLost: (why) => lostA.push(why),
    });
    const b = createLease({ client: cb, name: 'queue', holder: 'proc-b', ttlMs: 500 });
    try {
      const epochA = await a.acquire();
      expect(await a.fenced(saveState, ['queue:state'], ['written by a'])).toBe(1);
      expect(await b.acquire()).toBeNull();

      const startedAt = performance.now();
      const epochB = await eventually(async () => {
        const epoch = await b.acquire();
        expect(epoch).not.toBeNull();
        return epoch!;
      }, 3_000);
      expect(performance.now() - startedAt).toBeLessThan(500 + 1_000);
      expect(epochB).toBe(epochA! + 1);
      // A's own clock already says it cannot be sure, before Redis is asked.
      expect(a.held()).toBe(false);
      expect(lostA).toEqual(['unconfirmed']);

      // Redis rejects the stale holder's write, and keeps the new holder's.
      expect(await b.fenced(saveState, ['queue:state'], ['written by b'])).toBe(1);
      await expect(a.fenced(saveState, ['queue:state'], ['written late by a'])).rejects.toThrow(FencedError);
      expect(await ca.get('queue:state')).toBe('written by b');
      expect(await a.renew()).toBe(false);
      expect(b.held()).toBe(true);
    } finally {
      await a.release();
      await b.release();
    }
  });

  it('a holder that renews while its lease is taken over is told "taken", once', async () => {
    const [ca, cb] = [await client(), await client()];
    const lostA: LeaseLoss[] = [];
    const a = createLease({
      client: ca,
      name: 'queue',
      holder: 'proc-a',
      ttlMs: 3_000,
      renewEveryMs: 100,
      onLost: (why) => lostA.push(why),
    });
    const b = createLease({ client: cb, name: 'queue', holder: 'proc-b', ttlMs: 3_000 });
    try {
      await a.acquire();
      // An operator (or a Redis that lost the key) frees it; B takes it at once.
      await cb.del('mcp-chat:lease:queue');
      expect(await b.acquire()).toBe(2);
      await eventually(() => expect(lostA).toEqual(['taken']));
      expect(a.held()).toBe(false);
      await sleep(300);
      expect(lostA).toEqual(['taken']);
      await expect(a.fenced(saveState, ['queue:state'], ['late'])).rejects.toThrow(FencedError);
    } finally {
      await a.release();
      await b.release();
    }
  });

  it('an acquire sent twice (as ioredis resends one) answers the same epoch', async () => {
    const ca = await client();
    const a = createLease({ client: ca, name: 'queue', holder: 'proc-a', ttlMs: 1_000, renewEveryMs: false });
    const again = createLease({ client: ca, name: 'queue', holder: 'proc-a', ttlMs: 1_000, renewEveryMs: false });
    try {
      expect(await a.acquire()).toBe(1);
      expect(await again.acquire()).toBe(1);
      expect(await ca.get('mcp-chat:lease:queue:epoch')).toBe('1');
    } finally {
      await a.release();
    }
  });
});
