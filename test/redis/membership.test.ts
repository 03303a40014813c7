/**
 * Membership over a real redis-server: heartbeats stamped with Redis's clock, a sweep
 * that declares a silent process dead, a frozen process (a real one, SIGSTOP) that wakes
 * to find itself dead and its lease writes refused, and the generation that tells a
 * Redis restarted empty from one restarted with its data.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type Redis, untilRedisReady } from '../../src/chat/broker/redis/connection.js';
import { createLease, fencedScript } from '../../src/chat/broker/redis/lease.js';
import { joinMembership, type Membership, type MembershipOptions } from '../../src/chat/broker/redis/membership.js';
import { eventually, sleep } from '../support/eventually.js';
import { markedEnv } from '../support/processes.js';
import { type RedisServerOptions, startRedis, type TestRedis } from '../support/redis.js';

const BEAT_MS = 200;
const DEAD_AFTER_MS = 1_000;

let redis: TestRedis | undefined;
const clients: Redis[] = [];
const members: Membership[] = [];

async function useRedis(options?: RedisServerOptions): Promise<TestRedis> {
  redis = await startRedis(options);
  return redis;
}

interface Member {
  membership: Membership;
  client: Redis;
  gone: { processId: string; reason: string; at: number }[];
  resets: { previous: string; current: string }[];
  declaredDead: number;
}

async function member(processId: string, options: Partial<MembershipOptions> = {}): Promise<Member> {
  const client = connectRedis(redis!.url, { name: processId });
  clients.push(client);
  await untilRedisReady(client);
  const made: Member = { membership: undefined as never, client, gone: [], resets: [], declaredDead: 0 };
  made.membership = await joinMembership({
    client,
    url: redis!.url,
    processId,
    beatEveryMs: BEAT_MS,
    deadAfterMs: DEAD_AFTER_MS,
    onDeclaredDead: () => made.declaredDead++,
    onMemberGone: (gone) => made.gone.push({ ...gone, at: performance.now() }),
    onRedisReset: (generation) => made.resets.push(generation),
    ...options,
  });
  members.push(made.membership);
  return made;
}

afterEach(async () => {
  for (const membership of members.splice(0)) await membership.stop();
  for (const client of clients.splice(0)) client.disconnect();
  await redis?.stop();
  redis = undefined;
});

// The frozen member runs in a process of its own: its source, bundled once for node.
let bundleDir = '';
let frozenMember = '';
beforeAll(async () => {
  bundleDir = mkdtempSync(join(tmpdir(), 'mcp-chat-fixture-'));
  frozenMember = join(bundleDir, 'frozenMember.cjs');
  await build({
    entryPoints: [new URL('./fixtures/frozenMember.ts', import.meta.url).pathname],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: frozenMember,
    logLevel: 'warning',
  });
});
afterAll(() => rmSync(bundleDir, { recursive: true, force: true }));

interface ChildMember {
  child: ChildProcessByStdio<null, Readable, Readable>;
  lines: Record<string, unknown>[];
  output: () => string;
}

function startChildMember(processId: string, leaseTtlMs: number): ChildMember {
  const env = {
    ...process.env,
    ...markedEnv(),
    REDIS_URL: redis!.url,
    PROCESS_ID: processId,
    BEAT_MS: String(BEAT_MS),
    DEAD_AFTER_MS: String(DEAD_AFTER_MS),
    LEASE_TTL_MS: String(leaseTtlMs),
  };
  const child = spawn(process.execPath, [frozenMember], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let output = '';
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    partial += chunk.toString();
    const complete = partial.split('\n');
    partial = complete.pop()!;
    for (const line of complete) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, lines, output: () => output };
}

const saveState = fencedScript(`redis.call('SET', KEYS[1], ARGV[1]); return 1`, 1);

describe('membership on Redis', () => {
  it('a frozen process is declared dead within deadAfter + margin, every member learns it once, and on waking it learns it too, and Redis refuses its lease writes', async () => {
    await useRedis();
    const a = await member('proc-a');
    const c = await member('proc-c');
    const frozen = startChildMember('proc-b', 800);
    try {
      const ready = await eventually(() => {
        const line = frozen.lines.find((l) => l.event === 'ready');
        expect(line, frozen.output()).toBeDefined();
        return line!;
      }, 10_000);
      expect(ready).toMatchObject({ epoch: 1, status: 'alive' });
      await eventually(async () => expect((await a.membership.members()).sort()).toEqual(['proc-a', 'proc-b', 'proc-c']));

      frozen.child.kill('SIGSTOP');
      const frozenAt = performance.now();
      await eventually(() => expect(a.gone.map((g) => g.processId)).toContain('proc-b'), 6_000);
      const declaredAfter = a.gone[0]!.at - frozenAt;
      // Its last beat was at most a beat before the freeze; sweeps run every beat.
      expect(declaredAfter).toBeGreaterThan(DEAD_AFTER_MS - BEAT_MS - 100);
      expect(declaredAfter).toBeLessThan(DEAD_AFTER_MS + 2 * BEAT_MS + 1_500);
      await eventually(() => expect(c.gone.map((g) => g.processId)).toContain('proc-b'));

      // The queue lease it held has expired: a live process takes it over.
      const lease = createLease({ client: a.client, name: 'queue', holder: 'proc-a', ttlMs: 800 });
      try {
        await eventually(async () => expect(await lease.acquire()).toBe(2), 3_000);
        await lease.fenced(saveState, ['queue:state'], ['written by proc-a']);

        await sleep(3 * BEAT_MS); // more sweeps, by both: still one report each
        frozen.child.kill('SIGCONT');
        const [code] = (await Promise.race([once(frozen.child, 'exit'), sleep(8_000).then(() => ['still running'])])) as [unknown];
        expect(code, frozen.output()).toBe(0);
        const events = frozen.lines.map((l) => l.event);
        expect(events, frozen.output()).toEqual(expect.arrayContaining(['woke', 'declared-dead', 'fenced-write']));
        // It refused to serve as soon as it woke, before Redis answered anything.
        expect(frozen.lines.find((l) => l.event === 'woke')).toMatchObject({ status: 'unconfirmed', leaseHeld: false });
        expect(frozen.lines.find((l) => l.event === 'declared-dead')).toMatchObject({ status: 'dead' });
        expect(frozen.lines.find((l) => l.event === 'fenced-write')).toEqual({ event: 'fenced-write', write: 'rejected' });
        expect(await a.client.get('queue:state')).toBe('written by proc-a');
      } finally {
        await lease.release();
      }

      expect(a.gone.map(({ processId, reason }) => ({ processId, reason }))).toEqual([{ processId: 'proc-b', reason: 'dead' }]);
      expect(c.gone.map(({ processId, reason }) => ({ processId, reason }))).toEqual([{ processId: 'proc-b', reason: 'dead' }]);
      // The members that kept beating were never in doubt.
      expect([a.membership.status(), c.membership.status()]).toEqual(['alive', 'alive']);
      expect([a.declaredDead, c.declaredDead]).toEqual([0, 0]);
      expect((await a.membership.members()).sort()).toEqual(['proc-a', 'proc-c']);
    } finally {
      if (frozen.child.exitCode === null && frozen.child.signalCode === null) {
        const exited = once(frozen.child, 'exit');
        frozen.child.kill('SIGKILL');
        await exited;
      }
    }
  });

  it('a process that leaves is reported as left, once, and never as dead', async () => {
    await useRedis();
    const a = await member('proc-a');
    const b = await member('proc-b');
    await b.membership.leave();
    await eventually(() => expect(a.gone).toHaveLength(1));
    await sleep(DEAD_AFTER_MS + 3 * BEAT_MS);
    expect(a.gone.map(({ processId, reason }) => ({ processId, reason }))).toEqual([{ processId: 'proc-b', reason: 'left' }]);
    expect(b.declaredDead).toBe(0);
  });

  it('a sweep is idempotent: a dead process is reported once however many processes sweep', async () => {
    await useRedis();
    const a = await member('proc-a');
    const b = await member('proc-b');
    await b.membership.stop(); // silent from now on, without leaving
    await eventually(() => expect(a.gone).toHaveLength(1), 4_000);
    expect(await Promise.all([a.membership.sweep(), a.membership.sweep(), a.membership.sweep()])).toEqual([[], [], []]);
    await sleep(2 * BEAT_MS);
    expect(a.gone.map((g) => g.processId)).toEqual(['proc-b']);
    // Beating again does not bring it back: it is told it is dead.
    await expect(b.membership.beat()).rejects.toThrow(/declared dead/);
    expect(b.declaredDead).toBe(1);
    expect(b.membership.status()).toBe('dead');
  });

  it('after a silence of all (Redis out of reach), a member has two bounds to beat again before it is declared dead', async () => {
    await useRedis();
    const a = await member('proc-a');
    await member('proc-b');
    await sleep(3 * BEAT_MS);
    // Then nobody beats or sweeps for longer than the bound, as while Redis was out of reach for all.
    await Promise.all(members.map((m) => m.stop()));
    await sleep(DEAD_AFTER_MS + 3 * BEAT_MS);
    // a is back and sweeps every beat; b comes back later (its connection backs off).
    const sweepsFor = async (ms: number) => {
      const declared: string[] = [];
      for (const end = performance.now() + ms; performance.now() < end; await sleep(BEAT_MS)) {
        await a.membership.beat();
        declared.push(...(await a.membership.sweep()));
      }
      return declared;
    };
    // The first sweep restarts every clock; one bound and a beat later b is not dead yet.
    expect(await sweepsFor(DEAD_AFTER_MS + BEAT_MS)).toEqual([]);
    // Silent for two bounds after the restart, it is.
    expect(await sweepsFor(DEAD_AFTER_MS + 4 * BEAT_MS)).toEqual(['proc-b']);
  });

  it('Redis killed before the first sweep and back with its data: nobody is declared dead', async () => {
    const server = await useRedis({ persistence: 'aof' });
    const a = await member('proc-a');
    const b = await member('proc-b');
    // Beats (and sweeps) start a beat after joining: none has run yet.
    await server.kill();
    await sleep(DEAD_AFTER_MS + 3 * BEAT_MS);
    await server.restart();
    await sleep(2 * DEAD_AFTER_MS + 3 * BEAT_MS);
    expect({ dead: [a.declaredDead, b.declaredDead], gone: [...a.gone, ...b.gone] }).toEqual({ dead: [0, 0], gone: [] });
    expect((await a.membership.members()).sort()).toEqual(['proc-a', 'proc-b']);
  });

  it('Redis restarted empty: every member is told the generation changed, once, and joins the new one', async () => {
    const server = await useRedis();
    const a = await member('proc-a');
    const b = await member('proc-b');
    const before = a.membership.generation;
    expect(b.membership.generation).toBe(before);

    await server.restart({ wipe: true });
    await eventually(() => expect([a.resets.length, b.resets.length]).toEqual([1, 1]), 8_000);
    const after = a.membership.generation;
    expect(after).not.toBe(before);
    expect(a.resets).toEqual([{ previous: before, current: after }]);
    expect(b.resets).toEqual([{ previous: before, current: after }]);
    expect(b.membership.generation).toBe(after);
    await eventually(async () => expect((await a.membership.members()).sort()).toEqual(['proc-a', 'proc-b']));
    await sleep(3 * BEAT_MS);
    expect([a.resets.length, b.resets.length]).toEqual([1, 1]);
    expect([a.declaredDead, b.declaredDead]).toEqual([0, 0]);
  });

  it('Redis restarted with its data (appendonly): same generation, nothing reported', async () => {
    const server = await useRedis({ persistence: 'aof' });
    const a = await member('proc-a');
    const before = a.membership.generation;
    await server.restart();
    // Beats go through again after the restart.
    const beatAt = await eventually(() => a.membership.beat(), 5_000);
    expect(beatAt).toBeGreaterThan(0);
    await sleep(3 * BEAT_MS);
    expect(a.resets).toEqual([]);
    expect(a.membership.generation).toBe(before);
    expect(a.membership.status()).toBe('alive');
  });
});
