/**
 * The ChatBroker contract over Redis: one Redis broker, and two sharing one queue in
 * this test process (users alternate between them, so rooms span both), against a real
 * redis-server started for the file.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { connectRedis } from '../../src/chat/broker/redis/connection.js';
import { redisBroker } from '../../src/chat/broker/redisBroker.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { type BrokerSet, describeBrokerContract } from '../unit/brokerContract.js';

let redis: TestRedis;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis.stop();
});

/** `count` brokers on a Redis emptied first (each test starts with no line and no processes). */
async function brokers(count: number): Promise<BrokerSet> {
  const admin = connectRedis(redis.url);
  await admin.flushall();
  admin.disconnect();
  const processIds = Array.from({ length: count }, () => randomBytes(6).toString('base64url').replace(/[-_]/g, 'x'));
  const made = await Promise.all(
    processIds.map((processId) => redisBroker({ url: redis.url, processId, leaseTtlMs: 1_000, beatEveryMs: 200, deadAfterMs: 2_000 })),
  );
  return {
    brokers: made,
    userId: (name, index) => `${processIds[index]}.${name}`,
    close: async () => void (await Promise.all(made.map((broker) => broker.close()))),
  };
}

describeBrokerContract('redisBroker', () => brokers(1));
describeBrokerContract('two redisBrokers sharing one queue', () => brokers(2));
