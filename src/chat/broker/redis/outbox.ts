/**
 * The sending half of a mailbox (mailbox.ts): appends records to other processes'
 * inbox streams, each exactly once and in order per destination, through cut
 * connections and ioredis's resending of unanswered commands.
 *
 * - Every record carries a producer-assigned id, `<producer>:<counter>` (a counter per
 *   destination, from 1). The append is a Lua script that keeps, per inbox, the last
 *   counter it took from each producer: it takes a record only if it is the next one
 *   (answers "duplicate" for one it already took, "gap" for one whose predecessor is not
 *   in yet). So a resent or retried append is a no-op, and the stream holds each record
 *   once, in order. Unconfirmed records stay queued and are retried, in order, until
 *   the script has taken them; up to `window` appends are in flight at once.
 * - When Redis takes nothing for a destination for `sendTimeoutMs` (down, frozen, cut
 *   off), every send waiting for it rejects with a `RedisUnavailableError`. (A backlog
 *   Redis is working through is not a failure: records wait as long as it makes
 *   progress.) A rejected record may or may not arrive, but never twice and never after
 *   a record sent later: the next record carries a lower floor — the script may take it
 *   after whatever of the rejected ones landed — and any of them that lands later is a
 *   duplicate. The reader sees the hole in the counters (mailbox.ts reports it).
 */
import { performance } from 'node:perf_hooks';
import { DEFAULT_KEY_PREFIX, luaScript, type Redis, RedisUnavailableError } from './connection.js';

export interface OutboxOptions {
  /** The connection appends go through. */
  client: Redis;
  /** The producer: this process. */
  processId: string;
  keyPrefix?: string;
  /** Entries an inbox keeps at most (approximately; `MAXLEN ~`). */
  maxLength: number;
  /** How long Redis may take nothing for a destination before the sends waiting for it reject. */
  sendTimeoutMs: number;
  /** Appends in flight at once per destination. */
  window: number;
  /** A failed round of appends (it is retried). */
  onError?: (error: unknown) => void;
}

export interface OutboxStats {
  /** Records Redis took (confirmed sends). */
  sent: number;
  /** Appends the script answered "duplicate" (a resend of something it had taken). */
  duplicateAppends: number;
  /** Rounds of appends that had to be retried (a cut, a timeout, a gap). */
  retries: number;
}

export interface Outbox {
  /** Appends `payload` to `to`'s inbox; resolves once Redis has it. */
  send(to: string, payload: string): Promise<void>;
  /** Drops the queue for `to` (gone): its waiting sends reject. */
  forget(to: string): void;
  stats(): OutboxStats;
  /** Stops; waiting sends reject. */
  close(): void;
}

/** The keys of a process's inbox: its stream, and the last counter it took from each producer. */
export function inboxKeys(processId: string, keyPrefix = DEFAULT_KEY_PREFIX): { stream: string; seen: string } {
  return { stream: `${keyPrefix}inbox:${processId}`, seen: `${keyPrefix}inbox:${processId}:seen` };
}

/** Replies of the append script. */
const TAKEN = 1;
const DUPLICATE = 0;
const GAP = -1;

/**
 * KEYS: stream, seen-hash. ARGV: producer, counter, floor, maxLength, payload.
 * Takes the record if the producer's last counter is in [floor - 1, counter - 1]: the
 * record right after the last, or (floor < counter) the first after records the
 * producer gave up on, which may or may not have landed.
 */
const append = luaScript(
  `local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local counter = tonumber(ARGV[2])
if counter <= last then return ${DUPLICATE} end
if last < tonumber(ARGV[3]) - 1 then return ${GAP} end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'p', ARGV[1], 'c', ARGV[2], 'd', ARGV[5])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return ${TAKEN}`,
  2,
);

interface Outgoing {
  counter: number;
  /** The script takes this record once the producer's last counter is at least floor - 1. */
  floor: number;
  payload: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The records on their way to one destination, in order. */
interface Lane {
  keys: { stream: string; seen: string };
  next: number;
  pending: Outgoing[];
  /** When Redis last took a record of this lane, or the lane last started waiting (ms). */
  progressAt: number;
  /** Floor for the next record when every record before it was given up on. */
  carriedFloor: number | undefined;
  pumping: boolean;
}

const MAX_RETRY_DELAY_MS = 500;

export function createOutbox(options: OutboxOptions): Outbox {
  const { client, processId, keyPrefix = DEFAULT_KEY_PREFIX, maxLength, sendTimeoutMs, window, onError } = options;
  const stats: OutboxStats = { sent: 0, duplicateAppends: 0, retries: 0 };
  const lanes = new Map<string, Lane>();
  let closed = false;
  let wake = () => {};
  const closing = new Promise<void>((resolve) => (wake = resolve));

  const giveUpIfStuck = (lane: Lane) => {
    const head = lane.pending[0];
    if (!head || performance.now() - lane.progressAt < sendTimeoutMs) return;
    // The next record may be taken whether or not any of these landed: it carries the
    // lowest floor among them (the head's; every other record's floor is its counter).
    lane.carriedFloor = Math.min(lane.carriedFloor ?? head.floor, head.floor);
    const error = new RedisUnavailableError(
      `Redis did not take the record within ${sendTimeoutMs} ms (it may still arrive, in order, or never)`,
    );
    for (const record of lane.pending.splice(0)) record.reject(error);
  };

  const pump = async (lane: Lane) => {
    if (lane.pumping) return;
    lane.pumping = true;
    let failures = 0;
    try {
      while (!closed && lane.pending.length > 0) {
        giveUpIfStuck(lane);
        const batch = lane.pending.slice(0, window);
        if (batch.length === 0) break;
        const replies = await Promise.allSettled(
          batch.map((record) =>
            append.run(client, [lane.keys.stream, lane.keys.seen], [processId, record.counter, record.floor, maxLength, record.payload]),
          ),
        );
        if (closed) break;
        // The script takes records only in order, so one taken means all before it were.
        let confirmed = -1;
        replies.forEach((reply, index) => {
          if (reply.status === 'fulfilled' && (reply.value === TAKEN || reply.value === DUPLICATE)) confirmed = index;
          if (reply.status === 'fulfilled' && reply.value === DUPLICATE) stats.duplicateAppends++;
        });
        if (confirmed >= 0) lane.progressAt = performance.now();
        for (const record of lane.pending.splice(0, confirmed + 1)) {
          stats.sent++;
          record.resolve();
        }
        if (confirmed === batch.length - 1) {
          failures = 0;
          continue;
        }
        stats.retries++;
        const failure = replies.find((reply) => reply.status === 'rejected');
        if (failure?.status === 'rejected') onError?.(failure.reason);
        if (confirmed >= 0) continue; // progress: try the rest at once
        failures++;
        const delay = Math.min(20 * 2 ** failures, MAX_RETRY_DELAY_MS);
        await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, delay))]);
      }
    } finally {
      lane.pumping = false;
    }
    // Records that arrived while the last round was finishing.
    if (!closed && lane.pending.length > 0) void pump(lane);
  };

  return {
    send(to, payload) {
      if (closed) return Promise.reject(new Error('the mailbox is closed'));
      let lane = lanes.get(to);
      if (!lane) {
        lane = { keys: inboxKeys(to, keyPrefix), next: 1, pending: [], progressAt: 0, carriedFloor: undefined, pumping: false };
        lanes.set(to, lane);
      }
      const counter = lane.next++;
      const floor = lane.carriedFloor ?? counter;
      lane.carriedFloor = undefined;
      if (lane.pending.length === 0) lane.progressAt = performance.now();
      const sent = new Promise<void>((resolve, reject) => lane.pending.push({ counter, floor, payload, resolve, reject }));
      void pump(lane);
      return sent;
    },
    forget(to) {
      const lane = lanes.get(to);
      lanes.delete(to);
      for (const record of lane?.pending.splice(0) ?? []) record.reject(new Error(`process ${to} is gone`));
    },
    stats: () => ({ ...stats }),
    close() {
      if (closed) return;
      closed = true;
      wake();
      for (const lane of lanes.values())
        for (const record of lane.pending.splice(0)) record.reject(new Error('the mailbox closed before Redis took the record'));
    },
  };
}
