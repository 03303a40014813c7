/**
 * The one queue of all processes: the queue chart (machines/queue.ts), run by whichever
 * process holds the `queue` lease, fed from one Redis Stream, its line stored in Redis
 * so that the next holder carries on where the last stopped.
 *
 * - Every process appends its users' intents (join, leave, away, back) to the stream
 *   `inbox:queue` through its outbox (exactly once and in order per process, mailbox.ts).
 * - Every process contends for the lease; the holder restores the stored line (or starts
 *   an empty one), sends the chart `queue.resume` (each timer runs for what was left of
 *   it), and reads the stream from the stored position. Each entry becomes one chart
 *   event; the chart decides every pairing.
 * - After each batch (and each timer's pairing) the holder stores the line, the stream
 *   position and the pairings not yet handed over, in one fenced write: a holder that
 *   lost the lease (frozen, cut off) can no longer write. Then it hands each pairing to
 *   the process that seats its room (`onPaired`), and stores again without them. A
 *   holder that dies between the two leaves them stored: the next one hands them over
 *   again, and the receiving process drops a room it already opened.
 *
 * Each join is answered once the holder has decided it: after the line holding it is
 * stored and any pairing it made handed over, the holder tells the joiner's process
 * (`onJoined`, after the pairing on the same ordered inbox), so a join resolves knowing
 * whether its user was paired or waits, and where. Joins not yet answered are stored
 * with the line, like pairings.
 *
 * The intents of a process that is gone (declared dead, or left) arrive as a `gone`
 * record, which every process appends when it learns of it; the holder takes that
 * process's waiting users out of the line.
 */
import { type Actor, createActor } from 'xstate';
import {
  type JoinRequest,
  type QueueInput,
  queueMachine,
  restoredQueue,
  type StoredQueue,
  type WaitingUser,
} from '../../../../machines/queue.js';
import type { Pairing } from '../roomHost.js';
import type { Redis, RedisTarget } from './connection.js';
import { DEFAULT_KEY_PREFIX } from './connection.js';
import { createLease, fencedScript, type Lease } from './lease.js';
import { inboxKeys } from './outbox.js';
import { readStream, type StreamEntry, type StreamReader } from './streamReader.js';

/** The queue's inbox name: records to it are appended by every process's outbox. */
export const QUEUE_INBOX = 'queue';

export type QueueRecord =
  | { kind: 'join'; request: JoinRequest; roomId: string; at: number }
  | { kind: 'leave'; userId: string }
  | { kind: 'away'; userId: string }
  | { kind: 'back'; userId: string; roomId: string }
  | { kind: 'gone'; processId: string };

export type { Pairing } from '../roomHost.js';

/** A join the holder has decided: its user, and the id its join carried (its room id if it paired). */
export interface JoinDecided {
  userId: string;
  joinId: string;
}

/** What the holder stores: the chart's snapshot, the last entry it applied, pairings and joins not yet handed over. */
interface StoredLine {
  snapshot: StoredQueue;
  after: string;
  pending: Pairing[];
  decided?: JoinDecided[];
}

/** `url` and `tlsCa` are for the reader's own connection, while this process holds the queue. */
export interface QueueHolderOptions extends RedisTarget {
  client: Redis;
  processId: string;
  matching: QueueInput;
  /** The process a user belongs to. */
  processOf: (userId: string) => string | undefined;
  /** Hands a pairing over to the process that opens its room; resolves once Redis has it. */
  onPaired: (pairing: Pairing) => Promise<void>;
  /** Tells a joiner's process its join was decided (after the pairing it made, if any); resolves once Redis has it. */
  onJoined: (decided: JoinDecided) => Promise<void>;
  leaseTtlMs?: number;
  keyPrefix?: string;
  onError?: (error: unknown) => void;
}

/** How soon a holder tries again to store the line or hand a pairing over, after a failure. */
const RETRY_MS = 500;

const store = fencedScript(`redis.call('SET', KEYS[1], ARGV[1]) return 1`, 1);

export interface QueueHolder {
  /** Whether this process runs the queue now. */
  holds(): boolean;
  /** The users of the line, in arrival order, as the holder keeps it (whoever holds it): for positions. */
  line(): Promise<readonly WaitingUser[] | undefined>;
  /** Stops contending; gives the lease up if held. */
  close(): Promise<void>;
}

export function startQueueHolder(options: QueueHolderOptions): QueueHolder {
  const { client, url, processId, matching, processOf, onPaired, onJoined, keyPrefix = DEFAULT_KEY_PREFIX, onError } = options;
  const ttlMs = options.leaseTtlMs ?? 3_000;
  const lineKey = `${keyPrefix}queue:line`;
  const streamKey = inboxKeys(QUEUE_INBOX, keyPrefix).stream;

  let closed = false;
  let holding:
    | { lease: Lease; actor: Actor<typeof queueMachine>; reader: StreamReader; after: string; pending: Pairing[]; decided: JoinDecided[] }
    | undefined;
  let flushing: Promise<void> = Promise.resolve();

  const lease = createLease({
    client,
    name: 'queue',
    holder: processId,
    keyPrefix,
    ttlMs,
    onLost: () => void letGo(),
    onError,
  });

  const letGo = async () => {
    const held = holding;
    holding = undefined;
    if (!held) return;
    held.actor.stop();
    await held.reader.stop();
  };

  /** Stores the line, then hands the pairings over and stores again without them. */
  const flush = () => {
    flushing = flushing.then(async () => {
      const held = holding;
      if (!held) return;
      // What JSON.stringify makes of it: the line becomes the array of its users.
      const stored = (): StoredLine => ({
        snapshot: held.actor.getPersistedSnapshot() as unknown as StoredQueue,
        after: held.after,
        pending: held.pending,
        decided: held.decided,
      });
      try {
        await held.lease.fenced(store, [lineKey], [JSON.stringify(stored())]);
        // Only what that write stored: pairings and answers decided meanwhile wait for the
        // next flush (each batch asks for one), so nothing goes out before it is stored.
        const pairings = held.pending.length;
        const answers = held.decided.length;
        // One at a time, each dropped only once handed over: what fails stays for the next
        // try. Pairings first: a joiner hears its room before it hears its join decided.
        for (let n = 0; n < pairings; n++) {
          await onPaired(held.pending[0]!);
          held.pending.shift();
        }
        for (let n = 0; n < answers; n++) {
          await onJoined(held.decided[0]!);
          held.decided.shift();
        }
        if (pairings + answers > 0) await held.lease.fenced(store, [lineKey], [JSON.stringify(stored())]);
      } catch (error) {
        onError?.(error);
        // Redis out of reach: try again in a moment, even if nothing else happens meanwhile.
        if (holding === held) setTimeout(() => void flush(), RETRY_MS).unref();
      }
    });
    return flushing;
  };

  const apply = (actor: Actor<typeof queueMachine>, record: QueueRecord) => {
    switch (record.kind) {
      case 'join':
        return actor.send({ type: 'queue.join', ...record.request, roomId: record.roomId, at: record.at });
      case 'leave':
        return actor.send({ type: 'queue.leave', userId: record.userId });
      case 'away':
        return actor.send({ type: 'queue.away', userId: record.userId });
      case 'back':
        return actor.send({ type: 'queue.back', userId: record.userId, roomId: record.roomId });
      case 'gone':
        for (const { userId } of actor.getSnapshot().context.waiting)
          if (processOf(userId) === record.processId) actor.send({ type: 'queue.leave', userId });
    }
  };

  const take = async () => {
    const epoch = await lease.acquire();
    if (epoch === null || closed) return;
    const raw = await client.get(lineKey);
    const stored = raw ? (JSON.parse(raw) as StoredLine) : undefined;
    const actor = createActor(queueMachine, { input: matching, ...(stored && { snapshot: restoredQueue(stored.snapshot) }) });
    const pending: Pairing[] = [...(stored?.pending ?? [])];
    actor.on('queue.paired', ({ type: _paired, ...pairing }) => {
      pending.push(pairing);
      // A timer's pairing comes outside a batch: store and hand it over too.
      queueMicrotask(() => void flush());
    });
    actor.subscribe({ error: (error) => onError?.(error) });
    actor.start();
    if (stored) actor.send({ type: 'queue.resume', at: Date.now() });
    const after = stored?.after ?? '0-0';
    const reader = readStream({
      url,
      tlsCa: options.tlsCa,
      key: streamKey,
      after,
      name: `queue-holder:${processId}`,
      onEntries: (entries: StreamEntry[]) => {
        if (holding?.actor !== actor) return;
        for (const entry of entries) {
          // The outbox numbers each producer's records; the append script stores each once.
          const record = JSON.parse(entry.fields.d ?? 'null') as QueueRecord;
          apply(actor, record);
          if (record.kind === 'join') holding.decided.push({ userId: record.request.userId, joinId: record.roomId });
          holding.after = entry.id;
        }
        void flush();
      },
      onError,
    });
    holding = { lease, actor, reader, after, pending, decided: [...(stored?.decided ?? [])] };
    void flush();
  };

  // Contend: a process that does not hold the lease tries again every third of its life.
  const contend = async () => {
    while (!closed) {
      if (!holding) await take().catch((error: unknown) => onError?.(error));
      await new Promise((resolve) => setTimeout(resolve, Math.max(100, ttlMs / 3)).unref());
    }
  };
  void contend();

  return {
    holds: () => holding !== undefined && lease.held(),
    async line() {
      if (holding) return [...holding.actor.getSnapshot().context.waiting];
      const raw = await client.get(lineKey);
      return raw ? (JSON.parse(raw) as StoredLine).snapshot.context.waiting : undefined;
    },
    async close() {
      closed = true;
      await flushing;
      const wasHolding = holding !== undefined;
      await letGo();
      if (wasHolding) await lease.release().catch((error: unknown) => onError?.(error));
    },
  };
}
