/**
 * Redis as operators run it, against real redis-server processes: a password
 * (`--requirepass`), an ACL user with a db of its own, and TLS only (`--tls-port`, a
 * certificate from a private CA given with `--redis-tls-ca`). Two real server
 * processes pair two users and relay their chat across each other; a wrong password
 * or an untrusted certificate stops start-up at once, naming the flag to fix and never
 * printing the password.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectRedis, type Redis } from '../../src/chat/broker/redis/connection.js';
import type { ServerProcess } from '../support/processes.js';
import { type RedisServerOptions, startRedis, type TestRedis } from '../support/redis.js';
import { clientOf, startChatProcesses } from './scaleOutSupport.js';

const PASSWORD = 'pw-only-redis-knows-7f3a';

const servers: ServerProcess[] = [];
const redises: TestRedis[] = [];

/** A redis-server for this test, stopped after it (after the processes on it). */
async function redisWith(options: RedisServerOptions): Promise<TestRedis> {
  const redis = await startRedis(options);
  redises.push(redis);
  return redis;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  await Promise.all(redises.splice(0).map((redis) => redis.stop()));
});

/** Two processes on `url`; a user on each pairs with the other, and each hears what the other says. */
async function chatAcrossTwoProcesses(url: string, extra: string[] = []): Promise<void> {
  const [a, b] = await startChatProcesses(url, 2, { extra });
  servers.push(a!, b!);
  const [x, y] = [clientOf(a!), clientOf(b!)];
  await x.call('enter_queue');
  await y.call('enter_queue');
  const room = (await x.until('chatroom.found')).find((e) => e.method === 'chatroom.found')!.params.room_id;
  expect((await y.until('chatroom.found')).find((e) => e.method === 'chatroom.found')!.params.room_id).toBe(room);
  expect(await x.call('send_message', { room_id: room, message: 'hello from a' })).toMatchObject({ status: 'sent' });
  expect((await y.until('message.received')).at(-1)!.params.message).toBe('hello from a');
  expect(await y.call('send_message', { room_id: room, message: 'hello from b' })).toMatchObject({ status: 'sent' });
  expect((await x.until('message.received')).at(-1)!.params.message).toBe('hello from b');
}

/** Starting one process on `url` fails: resolves with what it printed. */
async function startUpFailure(url: string, extra: string[] = []): Promise<string> {
  const started = Date.now();
  const failure = await startChatProcesses(url, 1, { extra }).then(
    (started) => {
      servers.push(...started);
      throw new Error('the process started');
    },
    (error: unknown) => String(error),
  );
  // At once, not after retrying: a refused password or certificate does not heal.
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(failure).toMatch(/exited with 1 before listening/);
  return failure;
}

async function withAdmin<T>(url: string, use: (admin: Redis) => Promise<T>): Promise<T> {
  const admin = connectRedis(url, { name: 'auth-test' });
  try {
    return await use(admin);
  } finally {
    admin.disconnect();
  }
}

describe('redis-server --requirepass', () => {
  it('two processes on redis://:password@host:port pair two users and relay their chat across each other', async () => {
    const redis = await redisWith({ password: PASSWORD });
    expect(redis.url).toBe(`redis://:${PASSWORD}@127.0.0.1:${redis.port}`);
    await chatAcrossTwoProcesses(redis.url);
  });

  it('a wrong password stops start-up: "authentication failed", naming --redis-url, the password masked', async () => {
    const redis = await redisWith({ password: PASSWORD });
    const wrong = 'not-the-password-91c2';
    const output = await startUpFailure(`redis://:${wrong}@127.0.0.1:${redis.port}`);
    expect(output).toMatch(/Redis authentication failed/);
    expect(output).toContain(`--redis-url (redis://:***@127.0.0.1:${redis.port})`);
    expect(output).toMatch(/WRONGPASS/);
    expect(output).not.toContain(wrong);
    expect(output).not.toContain(PASSWORD);
  });

  it('no password at all stops start-up naming --redis-url', async () => {
    const redis = await redisWith({ password: PASSWORD });
    const output = await startUpFailure(`redis://127.0.0.1:${redis.port}`);
    expect(output).toMatch(/Redis authentication failed.*--redis-url.*NOAUTH/);
  });
});

describe('an ACL user with a db of its own', () => {
  it('redis://alice:pw@host:port/2: every connection is alice on db 2, the keys are in db 2, and the chat relays', async () => {
    // Least privilege: the server's keys only, no dangerous commands; the default user is the admin.
    const redis = await redisWith({
      password: PASSWORD,
      aclUsers: [['alice', 'on', '>alice-pw-5d1e', '~mcp-chat:*', '+@all', '-@dangerous']],
    });
    await chatAcrossTwoProcesses(`redis://alice:alice-pw-5d1e@127.0.0.1:${redis.port}/2`);
    await withAdmin(redis.url, async (admin) => {
      const clients = String(await admin.call('CLIENT', 'LIST'))
        .trim()
        .split('\n')
        .filter((line) => !/ name=auth-test /.test(line));
      // Two processes: their directory, broker and reader connections each.
      expect(clients.length).toBeGreaterThanOrEqual(8);
      for (const client of clients) expect(client).toMatch(/ db=2 .* user=alice /);
      const keyspace = String(await admin.info('keyspace'));
      expect(keyspace).toMatch(/^db2:keys=[1-9]/m);
      expect(keyspace).not.toMatch(/^db0:/m);
    });
  });
});

describe('TLS only (redis-server --tls-port, a private CA)', () => {
  it('rediss://host:port with --redis-tls-ca: two processes pair two users and relay their chat', async () => {
    const redis = await redisWith({ tls: true });
    expect(redis.url).toBe(`rediss://127.0.0.1:${redis.port}`);
    await chatAcrossTwoProcesses(redis.url, ['--redis-tls-ca', redis.caFile!]);
  });

  it('without the CA start-up stops, naming --redis-tls-ca', async () => {
    const redis = await redisWith({ tls: true });
    const output = await startUpFailure(redis.url);
    expect(output).toMatch(
      /the TLS connection to Redis at --redis-url \(rediss:\/\/127\.0\.0\.1:\d+\) failed: .*certificate.*--redis-tls-ca/,
    );
  });

  it('a --redis-tls-ca file that cannot be read stops start-up, naming the flag and the file', async () => {
    const redis = await redisWith({ tls: true });
    const output = await startUpFailure(redis.url, ['--redis-tls-ca', '/nonexistent/ca.pem']);
    expect(output).toMatch(/--redis-tls-ca \(MCP_CHAT_REDIS_TLS_CA\): cannot read \/nonexistent\/ca\.pem: ENOENT/);
  });
});
