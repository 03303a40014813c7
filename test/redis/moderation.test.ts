/**
 * Reports and bans in Redis: the store's contract (the same suite as in memory), two
 * stores on one Redis seeing each other's bans within a refresh and a new one finding
 * what the last left; and two real server processes on one Redis, where a ban made
 * through one process refuses a user of the other.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/chat/broker/redis/connection.js';
import { redisModeration } from '../../src/chat/broker/redis/moderation.js';
import type { ModerationStore } from '../../src/chat/moderation.js';
import { eventually } from '../support/eventually.js';
import type { ServerProcess } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { describeModerationContract } from '../unit/moderationContract.js';
import { clientOf, startChatProcesses } from './scaleOutSupport.js';

const ADMIN_TOKEN = 'operator-secret-0123456789';

let redis: TestRedis;
let prefixes = 0;
const servers: ServerProcess[] = [];
const stores: ModerationStore[] = [];

/** A store on its own keys, refreshing its bans every 100 ms. */
const store = async (now?: () => number, keyPrefix = `moderation-test-${++prefixes}:`) => {
  const made = await redisModeration({ url: redis.url, keyPrefix, refreshMs: 100, ...(now && { now }) });
  stores.push(made);
  return made;
};

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop().catch(() => {})));
  await Promise.all(stores.splice(0).map((made) => made.close()));
});

afterAll(async () => {
  await redis.stop();
});

describeModerationContract('redisModeration', (now) => store(now));

describe('redisModeration: shared', () => {
  it('a ban made through one store holds in another within a refresh, and so does its lifting', async () => {
    const [here, there] = await Promise.all([store(undefined, 'shared-1:'), store(undefined, 'shared-1:')]);
    const ban = await here.ban({ userId: 'p.spammer', minutes: 5, address: '203.0.113.7' });
    expect(here.banOn({ userId: 'p.spammer' })).toEqual(ban);
    await eventually(() => expect(there.banOn({ address: '203.0.113.7' })).toEqual(ban), 2_000);
    expect(await there.bans()).toEqual([ban]);
    expect(await there.lift(ban.banId)).toBe(true);
    await eventually(() => expect(here.banOn({ userId: 'p.spammer' })).toBeUndefined(), 2_000);
  });

  it('reports and bans outlive the store that made them', async () => {
    const first = await store(undefined, 'shared-2:');
    const report = await first.report({ roomId: 'room-1', reason: 'spam', reported: 'p.a', reporter: 'p.b' });
    const ban = await first.ban({ userId: 'p.a', minutes: 5 });
    await first.close();
    const next = await store(undefined, 'shared-2:');
    expect(await next.reports()).toEqual([report]);
    expect(next.banOn({ userId: 'p.a' })).toEqual(ban);
  });

  it('drops ended bans from Redis when it reads them', async () => {
    let clock = Date.now();
    const moderation = await store(() => clock, 'shared-3:');
    await moderation.ban({ userId: 'p.a', minutes: 1 });
    clock += 60_000;
    expect(await moderation.bans()).toEqual([]);
    const admin = connectRedis(redis.url);
    try {
      expect(await admin.hlen('shared-3:moderation:bans')).toBe(0);
    } finally {
      admin.disconnect();
    }
  });
});

describe('operators on two processes', () => {
  it('a ban made through one process refuses, on the other, the reported user it holds; lifting it through that one lets it queue again', async () => {
    const [a, b] = await startChatProcesses(redis.url, 2, { extra: ['--admin-token', ADMIN_TOKEN] });
    servers.push(a!, b!);
    const operator = async (server: ServerProcess, path: string, method = 'GET', body?: unknown) => {
      const response = await fetch(new URL(`/admin${path}`, server.url), {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      return { status: response.status, json: response.status === 204 ? null : ((await response.json()) as Record<string, unknown>) };
    };
    // A pair on process b: the reporter and the reported are both b's users.
    const [reporter, reported] = [clientOf(b!), clientOf(b!)];
    expect(await reporter.call('enter_queue')).toMatchObject({ status: 'waiting' });
    expect(await reported.call('enter_queue')).toMatchObject({ status: 'matched' });
    expect(await reporter.call('leave_chat', { report: 'spam' })).toEqual({ status: 'idle' });

    // Process a sees b's report, and bans through it.
    const reports = await eventually(async () => {
      const listed = (await operator(a!, '/reports')).json!.reports as { report_id: string; reported: string; reporter: string }[];
      expect(listed).toHaveLength(1);
      return listed;
    });
    expect(reports[0]!.reported.startsWith(`${reported.token!.split('.')[0]}.`)).toBe(true);
    const made = await operator(a!, '/bans', 'POST', { report_id: reports[0]!.report_id, minutes: 10 });
    expect(made.status).toBe(201);
    expect((await operator(b!, '/bans')).json).toEqual({ bans: [made.json] });

    // b refuses its user within its refresh (1 s).
    const sentence = await eventually(async () => reported.refusal('enter_queue'), 5_000);
    expect(sentence).toContain(`until ${made.json!.until as string}`);
    expect(await reporter.call('enter_queue')).toMatchObject({ status: 'waiting' });

    expect((await operator(b!, `/bans/${made.json!.ban_id as string}`, 'DELETE')).status).toBe(204);
    expect((await operator(a!, `/bans/${made.json!.ban_id as string}`, 'DELETE')).status).toBe(404);
    // The reporter blocked it for good: it waits for someone else.
    await eventually(async () => expect(await reported.call('enter_queue')).toMatchObject({ status: 'waiting' }), 5_000);
  });
});
