/**
 * Redis going away, over a real redis-server: every kind of call rejects within a few
 * seconds instead of hanging — Redis killed, Redis frozen, Redis never there — and the
 * same objects work again once Redis is back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  connectRedis,
  isRedisUp,
  type Redis,
  RedisUnavailableError,
  untilRedisReady,
  watchRedisUp,
} from '../../src/chat/broker/redis/connection.js';
import { createLease } from '../../src/chat/broker/redis/lease.js';
import { createMailbox, type Mailbox } from '../../src/chat/broker/redis/mailbox.js';
import { joinMembership, type Membership } from '../../src/chat/broker/redis/membership.js';
import { eventually, sleep } from '../support/eventually.js';
import { freePort } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis | undefined;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await redis?.stop();
  redis = undefined;
});

async function client(url: string): Promise<Redis> {
  const made = connectRedis(url);
  cleanups.push(() => made.disconnect());
  await untilRedisReady(made);
  return made;
}

/** How long `promise` takes to reject, in ms, and with what. */
async function timeToReject(promise: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  try {
    await promise;
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
  throw new Error('it resolved');
}

describe('when Redis goes away', () => {
  it('killed: commands, sends, beats and renewals reject within seconds; after a restart the same objects work again', async () => {
    redis = await startRedis({ persistence: 'aof' });
    const ca = await client(redis.url);
    const cb = await client(redis.url);
    const received: number[] = [];
    const a: Mailbox<number> = createMailbox({ url: redis.url, client: ca, processId: 'proc-a', sendTimeoutMs: 1_500, onRecord: () => {} });
    const b: Mailbox<number> = createMailbox({ url: redis.url, client: cb, processId: 'proc-b', onRecord: (n) => received.push(n) });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const membershipErrors: unknown[] = [];
    const membership: Membership = await joinMembership({
      client: ca,
      url: redis.url,
      processId: 'proc-a',
      beatEveryMs: 200,
      deadAfterMs: 5_000,
      onDeclaredDead: () => {},
      onError: (error) => membershipErrors.push(error),
    });
    cleanups.push(() => membership.stop());
    const lease = createLease({ client: ca, name: 'queue', holder: 'proc-a', ttlMs: 10_000, renewEveryMs: false });
    expect(await lease.acquire()).toBe(1);
    const upChanges: boolean[] = [];
    cleanups.push(watchRedisUp(ca, (up) => upChanges.push(up)));

    await a.send('proc-b', 1);
    await eventually(() => expect(received).toEqual([1]));

    await redis.kill();
    const [get, send, beat, renew] = await Promise.all([
      timeToReject(ca.get('anything')),
      timeToReject(a.send('proc-b', 2)),
      timeToReject(membership.beat()),
      timeToReject(lease.renew()),
    ]);
    for (const { ms } of [get, beat, renew]) expect(ms).toBeLessThan(3_000);
    expect(send.ms).toBeLessThan(1_500 + 3_000);
    // Errors that say what happened, not ioredis's retry counter.
    for (const { error } of [send, beat, renew]) {
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(String(error)).toMatch(/^RedisUnavailableError: Redis (is unavailable|did not take)/);
    }
    expect(isRedisUp(ca)).toBe(false);
    expect(upChanges).toEqual([false]);
    await eventually(() => expect(membershipErrors.length).toBeGreaterThan(0));

    await redis.restart();
    await eventually(() => expect(isRedisUp(ca)).toBe(true), 5_000);
    expect(upChanges).toEqual([false, true]);
    expect(await ca.set('anything', 'again')).toBe('OK');
    expect(await membership.beat()).toBeGreaterThan(0);
    expect(await lease.renew()).toBe(true);
    await a.send('proc-b', 3);
    // Record 2 was given up on; whether it landed or not, 3 follows it, and nothing repeats.
    await eventually(() => expect(received.at(-1)).toBe(3), 5_000);
    expect([
      [1, 3],
      [1, 2, 3],
    ]).toContainEqual(received);
    expect(membership.status()).toBe('alive');
  });

  it('frozen (SIGSTOP, connections open, no answers): a command rejects within the command timeout', async () => {
    redis = await startRedis();
    const c = await client(redis.url);
    redis.freeze();
    try {
      const { ms, error } = await timeToReject(c.get('anything'));
      expect(ms).toBeLessThan(2_000 + 1_500);
      expect(String(error)).toMatch(/timed out/i);
    } finally {
      redis.thaw();
    }
    await eventually(async () => expect(await c.set('anything', 'after')).toBe('OK'), 5_000);
  });

  it('never there: waiting for a connection and commands reject within seconds', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const c = connectRedis(url);
    cleanups.push(() => c.disconnect());
    const ready = await timeToReject(untilRedisReady(c, 1_000));
    expect(ready.error).toBeInstanceOf(RedisUnavailableError);
    expect(ready.ms).toBeLessThan(2_000);
    const get = await timeToReject(c.get('anything'));
    expect(get.ms).toBeLessThan(3_000);
    await sleep(10);
  });
});
