/**
 * A process's mailbox: it reads the process's inbox, a Redis Stream `inbox:<processId>`
 * that other processes append records to and only this process reads (on a connection
 * of its own, see streamReader.ts), and sends to other processes' inboxes (outbox.ts).
 *
 * Guarantees, per pair of processes: records arrive exactly once and in the order they
 * were sent, through cut connections and ioredis's resending of unanswered commands.
 * - Sending: every record carries a producer-assigned id, `<producer>:<counter>`, and
 *   is appended by a Lua script that takes each counter once and only after its
 *   predecessor; unconfirmed records are retried in order (outbox.ts has the details).
 * - Reading: the reader resumes after the last stream entry it handed over (a cut read
 *   repeats and loses nothing), and drops any record whose counter is not above the
 *   last it delivered from that producer — a second line of defence against a record
 *   that reached the stream twice by other means.
 * - When Redis takes nothing for `sendTimeoutMs`, the sends waiting reject with a
 *   `RedisUnavailableError`; such a record may or may not arrive, never twice, never
 *   after a later one. A hole in a producer's counters — such records, or records the
 *   stream trimmed before they were read (`maxLength`) — is reported to `onGap`, never
 *   hidden.
 *
 * Process ids are unique per process run (a restarted process is a new producer). After
 * Redis restarted empty (membership.ts notices), the counters Redis kept are gone: close
 * the inboxes and make new ones.
 */
import { DEFAULT_KEY_PREFIX, type Redis, type RedisTarget } from './connection.js';
import { createOutbox, inboxKeys } from './outbox.js';
import { readStream, type StreamEntry } from './streamReader.js';

export { inboxKeys } from './outbox.js';

/** `url` and `tlsCa` are for the reader's own connection. */
export interface MailboxOptions<T> extends RedisTarget {
  /** The connection sends go through (shared with other parts of this process). */
  client: Redis;
  /** This process; its inbox is `<prefix>inbox:<processId>`, and it is the producer of what it sends. */
  processId: string;
  keyPrefix?: string;
  /** Each record for this process, in order, once. */
  onRecord: (record: T, meta: RecordMeta) => void;
  /** A hole in a producer's counters: `missing` records from `from` will never be delivered. */
  onGap?: (from: string, missing: number) => void;
  /** A failed read or append (each is retried) or a handler that threw. */
  onError?: (error: unknown) => void;
  /** Entries an inbox keeps at most (approximately; `MAXLEN ~`). 100,000 by default. */
  maxLength?: number;
  /** How long Redis may take nothing for a destination before the sends waiting for it reject. 5,000 ms by default. */
  sendTimeoutMs?: number;
  /** Appends in flight at once per destination. 500 by default. */
  window?: number;
}

export interface RecordMeta {
  /** The producer (the sending process). */
  from: string;
  /** `<producer>:<counter>`. */
  id: string;
}

export interface MailboxStats {
  /** Records Redis took from this process (confirmed sends). */
  sent: number;
  /** Records delivered to `onRecord`. */
  delivered: number;
  /** Records the reader dropped as already delivered. */
  duplicatesDropped: number;
  /** Appends the script answered "duplicate" (a resend of something it had taken). */
  duplicateAppends: number;
  /** Rounds of appends that had to be retried (a cut, a timeout, a gap). */
  retries: number;
}

export interface Mailbox<T> {
  readonly processId: string;
  /** Appends `record` to `to`'s inbox; resolves once Redis has it. */
  send(to: string, record: T): Promise<void>;
  stats(): MailboxStats;
  /**
   * Forgets a process that is gone (membership reported it): sends still waiting for its
   * inbox reject, and what this mailbox remembers of it as a producer is dropped.
   */
  forget(processId: string): void;
  /** Stops reading and sending; unconfirmed sends reject. */
  close(): Promise<void>;
}

/** Deletes a process's inbox (call it once the process is known to be gone). */
export async function dropInbox(client: Redis, processId: string, keyPrefix = DEFAULT_KEY_PREFIX): Promise<void> {
  const { stream, seen } = inboxKeys(processId, keyPrefix);
  await client.del(stream, seen);
}

export function createMailbox<T>(options: MailboxOptions<T>): Mailbox<T> {
  const { client, processId, keyPrefix = DEFAULT_KEY_PREFIX, onRecord, onGap, onError } = options;
  if (processId.includes(':')) throw new RangeError('a process id may not contain ":" (it separates producer and counter)');
  const outbox = createOutbox({
    client,
    processId,
    keyPrefix,
    maxLength: options.maxLength ?? 100_000,
    sendTimeoutMs: options.sendTimeoutMs ?? 5_000,
    window: options.window ?? 500,
    onError,
  });

  let delivered = 0;
  let duplicatesDropped = 0;
  /** The last counter delivered, per producer. */
  const lastDelivered = new Map<string, number>();
  const receive = (entries: StreamEntry[]) => {
    for (const { fields } of entries) {
      const from = fields.p ?? '';
      const counter = Number(fields.c);
      const last = lastDelivered.get(from) ?? 0;
      if (!(counter > last)) {
        duplicatesDropped++;
        continue;
      }
      if (counter > last + 1) onGap?.(from, counter - last - 1);
      lastDelivered.set(from, counter);
      delivered++;
      try {
        onRecord(JSON.parse(fields.d ?? 'null') as T, { from, id: `${from}:${counter}` });
      } catch (error) {
        onError?.(error);
      }
    }
  };
  const reader = readStream({
    url: options.url,
    tlsCa: options.tlsCa,
    key: inboxKeys(processId, keyPrefix).stream,
    after: '0-0',
    name: `inbox:${processId}`,
    onEntries: receive,
    onError,
  });

  let closed = false;
  return {
    processId,
    send: (to, record) => outbox.send(to, JSON.stringify(record)),
    stats: () => ({ ...outbox.stats(), delivered, duplicatesDropped }),
    forget(gone) {
      outbox.forget(gone);
      lastDelivered.delete(gone);
    },
    async close() {
      if (closed) return;
      closed = true;
      outbox.close();
      await reader.stop();
    },
  };
}
