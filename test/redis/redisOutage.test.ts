/**
 * Redis stopped for 30 s under two real server processes, with its data kept (AOF, as
 * the README says durability needs): nothing hangs meanwhile, pairs within a process
 * chat on, nobody is declared dead for Redis's silence, and when Redis is back the
 * processes serve again — including the chat across them that was open before.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import type { ServerProcess } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { clientOf, healthOf, startChatProcesses } from './scaleOutSupport.js';

const OUTAGE_MS = 30_000;
const DEAD_AFTER_MS = 2_000;
const MARGIN_MS = 6_000;

let redis: TestRedis;
let servers: ServerProcess[] = [];

beforeAll(async () => {
  redis = await startRedis({ persistence: 'aof' });
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop().catch(() => {})));
  await redis.stop();
});

it('Redis down for 30 s: errors within seconds, local pairs chat on, no process declared dead, and all resumes when it is back', {
  timeout: OUTAGE_MS + 60_000,
}, async () => {
  servers = await startChatProcesses(redis.url, 2, { deadAfterMs: DEAD_AFTER_MS });
  const [a, b] = servers as [ServerProcess, ServerProcess];
  const [across1, across2, local1, local2] = [clientOf(a), clientOf(b), clientOf(a), clientOf(a)];
  for (const user of [across1, across2, local1, local2]) await user.call('enter_queue');
  const acrossRoom = (await across1.until('chatroom.found')).at(-1)!.params.room_id;
  await across2.until('chatroom.found');
  const localRoom = (await local1.until('chatroom.found')).at(-1)!.params.room_id;
  await local2.until('chatroom.found');

  await redis.kill();
  const down = Date.now();
  try {
    const started = Date.now();
    expect(await clientOf(b).refusal('enter_queue')).toMatch(/could not reach the queue/);
    expect(Date.now() - started).toBeLessThan(10_000);
    await eventually(async () => expect([await healthOf(a), await healthOf(b)]).toEqual([503, 503]), MARGIN_MS);
    // A pair within one process needs no Redis, however long it is gone.
    let said = 0;
    while (Date.now() - down < OUTAGE_MS) {
      await local1.call('send_message', { room_id: localRoom, message: `still here ${++said}` });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
    const heard = [];
    while (heard.length < said) heard.push(...(await local2.waitForEvents(2)).filter((e) => e.method === 'message.received'));
    expect(heard.map((e) => e.params.message)).toEqual(Array.from({ length: said }, (_, i) => `still here ${i + 1}`));
  } finally {
    await redis.restart();
  }
  // Back: both serve again (nobody was declared dead for Redis's silence).
  await eventually(async () => expect([await healthOf(a), await healthOf(b)]).toEqual([200, 200]), MARGIN_MS);
  await new Promise((resolve) => setTimeout(resolve, DEAD_AFTER_MS * 2));
  expect([await healthOf(a), await healthOf(b)]).toEqual([200, 200]);
  // The chat across the two processes goes on, and new users are paired.
  expect(await across1.call('send_message', { room_id: acrossRoom, message: 'after the outage' })).toMatchObject({ status: 'sent' });
  expect((await across2.until('message.received')).at(-1)!.params.message).toBe('after the outage');
  const [p, q] = [clientOf(a), clientOf(b)];
  await p.call('enter_queue');
  await q.call('enter_queue');
  await p.until('chatroom.found', 3 * DEAD_AFTER_MS + MARGIN_MS);
});
