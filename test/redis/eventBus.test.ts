/**
 * The MCP SDK's ServerEventBus over Redis, with a real redis-server: a push published on
 * one process reaches the listeners of every process, each once, through cut
 * connections too.
 */
import type { ServerEvent, ServerEventBus } from '@modelcontextprotocol/server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectRedis, untilRedisReady } from '../../src/chat/broker/redis/connection.js';
import { RedisServerEventBus } from '../../src/chat/broker/redis/eventBus.js';
import { eventually, sleep } from '../support/eventually.js';
import { startCutProxy, startRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await redis.stop();
});

async function bus(processId: string, url = redis.url, onError?: (error: Error) => void): Promise<RedisServerEventBus> {
  const client = connectRedis(url, { name: processId });
  cleanups.push(() => client.disconnect());
  await untilRedisReady(client);
  const made = await RedisServerEventBus.create({ client, url, processId, onError });
  cleanups.push(() => made.close());
  return made;
}

const updated = (uri: string): ServerEvent => ({ kind: 'resource_updated', uri });

describe('RedisServerEventBus', () => {
  it('an event published on one process reaches every listener on every process once; its own process synchronously', async () => {
    const a: ServerEventBus = await bus('proc-a');
    const b: ServerEventBus = await bus('proc-b');
    const c: ServerEventBus = await bus('proc-c');
    const seen = { a: [] as ServerEvent[], b1: [] as ServerEvent[], b2: [] as ServerEvent[], c: [] as ServerEvent[] };
    a.subscribe((event) => seen.a.push(event));
    b.subscribe((event) => seen.b1.push(event));
    b.subscribe((event) => seen.b2.push(event));
    c.subscribe((event) => seen.c.push(event));

    a.publish(updated('chat://user/1'));
    expect(seen.a).toEqual([updated('chat://user/1')]); // before publish returned
    await eventually(() =>
      expect([seen.b1, seen.b2, seen.c]).toEqual([[updated('chat://user/1')], [updated('chat://user/1')], [updated('chat://user/1')]]),
    );

    c.publish({ kind: 'tools_list_changed', params: { _meta: { why: 'test' } } });
    await eventually(() => expect(seen.a).toHaveLength(2));
    await sleep(300);
    // Each listener, each event, once: the publisher's own listeners are not fed its events again.
    expect(seen.a).toEqual([updated('chat://user/1'), { kind: 'tools_list_changed', params: { _meta: { why: 'test' } } }]);
    expect(seen.c).toEqual(seen.a);
    expect(seen.b1).toEqual(seen.a);
    expect(seen.b2).toEqual(seen.a);
  });

  it('unsubscribing stops delivery (and is idempotent); a throwing listener does not stop the others', async () => {
    const errors: Error[] = [];
    const a = await bus('proc-a');
    const b = await bus('proc-b', redis.url, (error) => errors.push(error));
    const gotB: string[] = [];
    b.subscribe(() => {
      throw new Error('a broken listener');
    });
    const stop = b.subscribe((event) => gotB.push(event.kind === 'resource_updated' ? event.uri : event.kind));
    expect(b.listenerCount).toBe(2);
    a.publish(updated('u1'));
    await eventually(() => expect(gotB).toEqual(['u1']));
    expect(errors.map((e) => e.message)).toEqual(['a broken listener']);
    stop();
    stop();
    expect(b.listenerCount).toBe(1);
    a.publish(updated('u2'));
    await eventually(() => expect(errors).toHaveLength(2));
    expect(gotB).toEqual(['u1']);
  });

  it('events published around cut connections all arrive, in order, none twice', async () => {
    const proxy = await startCutProxy(redis);
    cleanups.push(() => proxy.close());
    const a = await bus('proc-a', proxy.url);
    const b = await bus('proc-b', proxy.url);
    const got: string[] = [];
    b.subscribe((event) => got.push(event.kind === 'resource_updated' ? event.uri : event.kind));
    const count = 600;
    for (let i = 1; i <= count; i++) {
      a.publish(updated(`u${i}`));
      if (i === 200) await proxy.cut(); // replies lost: ioredis sends the appends again
      if (i === 400) await redis.cutClients();
      if (i % 50 === 0) await sleep(5);
    }
    await eventually(() => expect(got).toHaveLength(count), 10_000);
    await sleep(300);
    expect(got).toEqual(Array.from({ length: count }, (_, i) => `u${i + 1}`));
  });
});
