/**
 * Which server processes are alive, judged by one clock: Redis's own (`TIME`), so the
 * processes' clocks never have to agree.
 *
 * - A process joins (`joinMembership`) and beats every `beatEveryMs`: a Lua script stamps
 *   it in the `members` sorted set with Redis's time. The same script answers whether
 *   the process was declared dead meanwhile (it is no longer in the set) and whether
 *   Redis's data is the one it joined (the generation, below).
 * - After each beat it sweeps — any process may, sweeps are idempotent: one Lua script
 *   (which restarts every member's clock instead when no sweep ran for `deadAfterMs`:
 *   then Redis itself was out of reach for all, and silence proves nothing; each then
 *   has two bounds to beat again, since the processes reconnect one by one)
 *   moves every member silent for more than `deadAfterMs` (Redis time) to the `dead`
 *   set and appends one `process.dead` record per member to the `members:events`
 *   stream. Every process reads that stream (its own connection) and learns of each
 *   death once (`onMemberGone`); a graceful `leave()` appends `process.left`.
 * - A process declared dead — it was frozen (SIGSTOP), or cut off from Redis for longer
 *   than `deadAfterMs` — learns it on its next beat (or from the stream) and is told
 *   once (`onDeclaredDead`); it stops beating and must stop serving. Until a beat answers,
 *   `status()` says `unconfirmed` once the last confirmed beat is older than
 *   `deadAfterMs` by this process's own monotonic clock, so a process that wakes from a
 *   freeze refuses work even before its first beat is answered.
 * - Generation: a random value set once per Redis data lifetime (`SET NX`). A Redis
 *   restarted without its data has none (or, once a process set it again, another one):
 *   every process notices on its next beat and is told once per change
 *   (`onRedisReset`), then joins the new generation by itself. (A Redis restarted with
 *   its data — `appendonly yes` — keeps its generation, and nothing is reported.)
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DEFAULT_KEY_PREFIX, LUA_NOW, luaScript, type Redis, type RedisTarget, redisFailure } from './connection.js';
import { lastStreamId, readStream, type StreamEntry, type StreamReader } from './streamReader.js';

/** `url` and `tlsCa` are for the events reader's own connection. */
export interface MembershipOptions extends RedisTarget {
  /** The connection beats and sweeps go through (shared with other parts of this process). */
  client: Redis;
  processId: string;
  keyPrefix?: string;
  /** 1,000 ms by default. */
  beatEveryMs?: number;
  /** Silent this long (Redis time) → declared dead. 5,000 ms by default; must exceed 2 beats. */
  deadAfterMs?: number;
  /** This process was declared dead: stop serving (e.g. answer /healthz with 503). Called once. */
  onDeclaredDead: () => void;
  /** Another process was declared dead, or left. Called once per process. */
  onMemberGone?: (gone: { processId: string; reason: 'dead' | 'left' }) => void;
  /** Redis lost its data (restarted empty) since this process last beat. */
  onRedisReset?: (generation: { previous: string; current: string }) => void;
  /** A beat, sweep or read that failed (each is retried on the next beat). */
  onError?: (error: unknown) => void;
}

export type MemberStatus = 'alive' | 'unconfirmed' | 'dead';

export interface Membership {
  readonly processId: string;
  /** The Redis generation this process belongs to. */
  readonly generation: string;
  /** `alive` while a beat confirmed it within `deadAfterMs`; `dead` for good once declared. */
  status(): MemberStatus;
  /** Beats now (the timer does it too); resolves with Redis's time of the beat. */
  beat(): Promise<number>;
  /** Declares silent members dead; resolves with their ids. */
  sweep(): Promise<string[]>;
  /** The processes alive now (by the last sweep). */
  members(): Promise<string[]>;
  /** Leaves for good (others learn `left`) and stops. */
  leave(): Promise<void>;
  /** Stops beating and reading, without leaving (others will declare it dead). */
  stop(): Promise<void>;
}

export interface MembershipKeys {
  generation: string;
  members: string;
  dead: string;
  events: string;
  /** When the last sweep ran (Redis time). */
  swept: string;
}

export function membershipKeys(keyPrefix = DEFAULT_KEY_PREFIX): MembershipKeys {
  return {
    generation: `${keyPrefix}generation`,
    members: `${keyPrefix}members`,
    dead: `${keyPrefix}members:dead`,
    events: `${keyPrefix}members:events`,
    swept: `${keyPrefix}members:swept`,
  };
}

/** Dead processes are remembered this long (for `dead` lookups by operators), then dropped. */
const DEAD_RETENTION_MS = 24 * 60 * 60 * 1000;
const EVENTS_MAX_LENGTH = 10_000;

/**
 * KEYS: generation, members, swept. ARGV: processId, expected generation, a fresh
 * generation, join ('1' to add the member, '0' to only refresh one that is there).
 * Returns {now, status, generation}: status `alive`, `dead` (not a member) or `reset`.
 * A join starts the sweeps' clock if none has (see the sweep: Redis may go down, and
 * come back with its data, before the first sweep).
 */
const beatScript = luaScript(
  `${LUA_NOW}
local g = redis.call('GET', KEYS[1])
if not g then
  redis.call('SET', KEYS[1], ARGV[3])
  g = ARGV[3]
end
if ARGV[2] ~= '' and g ~= ARGV[2] then return {now, 'reset', g} end
if ARGV[4] == '0' and not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return {now, 'dead', g} end
if ARGV[4] == '1' then redis.call('SET', KEYS[3], now, 'NX') end
redis.call('ZADD', KEYS[2], now, ARGV[1])
return {now, 'alive', g}`,
  3,
);

/**
 * KEYS: members, dead, events, swept. ARGV: deadAfterMs, events max length, dead retention ms.
 * When no sweep ran for longer than a process may be silent, nobody could reach Redis
 * (it was down, frozen or cut off from all): silence then says nothing about any one
 * process, so every member's clock starts again instead (a Redis back from an outage
 * must not declare every process dead), one bound ahead: the processes come back one
 * by one, each as its connection's backoff lets it, so each has two bounds to beat.
 * The clock starts when the first member joins, so a Redis that went down before the
 * first sweep (and came back with its data) counts the same.
 */
const sweepScript = luaScript(
  `${LUA_NOW}
local last = tonumber(redis.call('GET', KEYS[4]) or '0')
redis.call('SET', KEYS[4], now)
if last > 0 and now - last > tonumber(ARGV[1]) then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id) end
  return {}
end
local silent = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, 100)
for _, id in ipairs(silent) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'type', 'process.dead', 'process', id, 'at', now)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
return silent`,
  4,
);

/** KEYS: members, events. ARGV: processId, events max length. */
const leaveScript = luaScript(
  `${LUA_NOW}
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'process.left', 'process', ARGV[1], 'at', now)
end
return now`,
  2,
);

/** Joins: registers this process (in the generation Redis has, setting one if none) and starts beating. */
export async function joinMembership(options: MembershipOptions): Promise<Membership> {
  const { client, processId, onDeclaredDead, onMemberGone, onRedisReset, onError } = options;
  const { beatEveryMs = 1_000, deadAfterMs = 5_000 } = options;
  if (deadAfterMs <= 2 * beatEveryMs) throw new RangeError('deadAfterMs must exceed two beats (beatEveryMs)');
  const keys = membershipKeys(options.keyPrefix);

  const freshGeneration = () => randomBytes(12).toString('hex');
  const runBeat = async (join: boolean, expected: string) => {
    const startedAt = performance.now();
    const reply = (await beatScript.run(
      client,
      [keys.generation, keys.members, keys.swept],
      [processId, expected, freshGeneration(), join ? '1' : '0'],
    )) as [number, 'alive' | 'dead' | 'reset', string];
    return { startedAt, now: Number(reply[0]), status: reply[1], generation: reply[2] };
  };

  // Read the events from here on, before joining, so no death after the join is missed.
  const after = await lastStreamId(client, keys.events);
  const first = await runBeat(true, '');
  let generation = first.generation;
  let confirmedAt = first.startedAt;
  let dead = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const declareDead = () => {
    if (dead) return;
    dead = true;
    stopped = true;
    clearTimeout(timer);
    onDeclaredDead();
  };

  const onEvents = (entries: StreamEntry[]) => {
    for (const { fields } of entries) {
      const gone = fields.process;
      if (!gone) continue;
      if (gone === processId) {
        if (fields.type === 'process.dead') declareDead();
        continue;
      }
      onMemberGone?.({ processId: gone, reason: fields.type === 'process.left' ? 'left' : 'dead' });
    }
  };
  const reader: StreamReader = readStream({
    url: options.url,
    tlsCa: options.tlsCa,
    key: keys.events,
    after,
    name: `members:${processId}`,
    onEntries: onEvents,
    onError,
  });

  const beat = async (): Promise<number> => {
    if (dead) throw new Error(`process ${processId} was declared dead`);
    const result = await runBeat(false, generation);
    if (result.status === 'reset') {
      const previous = generation;
      generation = result.generation;
      onRedisReset?.({ previous, current: generation });
      const joined = await runBeat(true, generation);
      if (joined.status === 'alive') confirmedAt = joined.startedAt;
      return joined.now;
    }
    if (result.status === 'dead') {
      declareDead();
      throw new Error(`process ${processId} was declared dead`);
    }
    confirmedAt = result.startedAt;
    return result.now;
  };

  const sweep = async (): Promise<string[]> => {
    const reply = await sweepScript.run(
      client,
      [keys.members, keys.dead, keys.events, keys.swept],
      [deadAfterMs, EVENTS_MAX_LENGTH, DEAD_RETENTION_MS],
    );
    return Array.isArray(reply) ? reply.map(String) : [];
  };

  const tick = async () => {
    try {
      await beat();
      await sweep();
    } catch (error) {
      if (!dead) onError?.(error);
    }
    if (!stopped) timer = setTimeout(tick, beatEveryMs);
  };
  timer = setTimeout(tick, beatEveryMs);

  const stop = async () => {
    stopped = true;
    clearTimeout(timer);
    await reader.stop();
  };

  return {
    processId,
    get generation() {
      return generation;
    },
    status() {
      if (dead) return 'dead';
      return performance.now() - confirmedAt < deadAfterMs ? 'alive' : 'unconfirmed';
    },
    beat,
    sweep,
    async members() {
      const reply = await client.call('ZRANGE', keys.members, 0, -1).catch((error: unknown) => {
        throw redisFailure(error);
      });
      return Array.isArray(reply) ? reply.map(String) : [];
    },
    async leave() {
      await stop();
      await leaveScript.run(client, [keys.members, keys.events], [processId, EVENTS_MAX_LENGTH]);
    },
    stop,
  };
}
