/**
 * One composition root: `createChatServer` builds its broker from the config. With
 * `redisUrl` it is the Redis one (two such servers share one line and pair users across
 * them); without, the server runs in memory and never loads ioredis — checked in a
 * child process of the built server (dist/), whose module cache tells what it loaded.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatConfig } from '../../src/config.js';
import { listen, type RunningChatServer } from '../../src/http/listen.js';
import { createChatServer } from '../../src/server.js';
import { ChatClient } from '../support/chatClient.js';
import { markedEnv } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const BUILT_SERVER = fileURLToPath(new URL('../../dist/src/server.js', import.meta.url));

/**
 * Creates and closes a server of the built code with `config` in a child `node`, and says
 * whether it loaded ioredis (ESM imports of a CommonJS package land in the require cache).
 */
const LOADS_IOREDIS = `
const { createChatServer } = await import(process.env.BUILT_SERVER);
const server = await createChatServer({ config: JSON.parse(process.env.CONFIG) });
await server.close();
const { createRequire } = await import('node:module');
const loaded = Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('node_modules/ioredis/'));
process.stdout.write(JSON.stringify({ loaded }));
`;

async function loadsIoredis(config: Partial<ChatConfig>): Promise<boolean> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', LOADS_IOREDIS], {
    env: { ...process.env, ...markedEnv(), BUILT_SERVER, CONFIG: JSON.stringify({ logLevel: 'silent', ...config }) },
  });
  return (JSON.parse(stdout) as { loaded: boolean }).loaded;
}

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

describe('createChatServer builds the broker from its config', () => {
  it('with redisUrl, two servers share one line: a user on one is paired with a user on the other', async () => {
    const start = async () =>
      listen(await createChatServer({ config: { host: '127.0.0.1', port: 0, redisUrl: redis.url }, log: pino({ level: 'silent' }) }));
    const servers: RunningChatServer[] = [];
    try {
      servers.push(await start(), await start());
      const [first, second] = servers as [RunningChatServer, RunningChatServer];
      expect(first.services.processDirectory.self).not.toBe(second.services.processDirectory.self);
      const a = await ChatClient.connect(first.url);
      const b = await ChatClient.connect(second.url);
      try {
        expect(await a.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
        // In memory, each server would have a line of its own, and b would wait too.
        const { room_id: roomId, status } = await b.call('enter_queue');
        expect(status).toBe('matched');
        expect((await a.waitFor('chatroom.found'))[0]).toMatchObject({ room_id: roomId });
      } finally {
        await Promise.all([a.end(), b.end()]);
      }
    } finally {
      await Promise.all(servers.map((server) => server.close()));
    }
  });

  it('in memory, never loads ioredis; with redisUrl, the same check sees it loaded', async () => {
    expect(await loadsIoredis({})).toBe(false);
    expect(await loadsIoredis({ redisUrl: redis.url })).toBe(true);
  });
});
