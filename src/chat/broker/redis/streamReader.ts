/**
 * Reads one Redis Stream from a position onwards, for ever, on a connection of its own
 * (XREAD BLOCK holds a connection; nothing else may queue behind it).
 *
 * Guarantees: entries are handed over in stream order, each at most once — the reader
 * keeps the id of the last entry it handed over and asks only for what comes after it,
 * so a cut connection, a timed-out read or a Redis that is down for a while loses
 * nothing that is still in the stream and repeats nothing. (What the stream trimmed
 * away before it was read is gone; the inbox counts such gaps.) `stop()` closes the
 * connection, which ends a blocked read at once, and resolves when the loop has ended.
 */
import { connectRedis, type Redis, type RedisTarget, redisFailure } from './connection.js';

export interface StreamEntry {
  /** The stream id, `<ms>-<seq>`. */
  id: string;
  fields: Record<string, string>;
}

export interface StreamReaderOptions extends RedisTarget {
  key: string;
  /** Hand over entries after this id: `0-0` for everything; see `lastStreamId` for "from now". */
  after: string;
  /** Longest wait of one read, in ms (1,000 by default). */
  blockMs?: number;
  /** Most entries per read (1,000 by default). */
  count?: number;
  /** Called with each batch, in order; what it throws goes to `onError`. */
  onEntries: (entries: StreamEntry[]) => void;
  /** A read that failed (it is retried), or a handler that threw. */
  onError?: (error: unknown) => void;
  /** Shown in `CLIENT LIST`. */
  name?: string;
}

export interface StreamReader {
  /** The id of the last entry handed over (or the starting position). */
  readonly lastId: string;
  /** Ends the loop and closes the connection; resolves at once, whatever a read was doing. */
  stop(): Promise<void>;
}

const RETRY_DELAY_MS = 100;

export function readStream(options: StreamReaderOptions): StreamReader {
  const { key, blockMs = 1_000, count = 1_000, onEntries, onError } = options;
  const client = connectRedis(options, { name: options.name, blockMs });
  let lastId = options.after;
  let running = true;
  // Settles when stop() is called: a read waiting in ioredis's queues (a connection being
  // made again) would otherwise hold stop() until its timeout.
  let markStopped!: () => void;
  const stopped = new Promise<'stopped'>((resolve) => (markStopped = () => resolve('stopped')));
  const pause = (ms: number) => Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, ms).unref())]);

  const loop = async () => {
    while (running) {
      let reply: unknown;
      try {
        const read = client.call('XREAD', 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', key, lastId);
        read.catch(() => {}); // still settles after stop(), unobserved
        reply = await Promise.race([read, stopped]);
      } catch (error) {
        if (!running) break;
        onError?.(redisFailure(error));
        await pause(RETRY_DELAY_MS);
        continue;
      }
      if (!running) break;
      const entries = entriesAfter(parseXread(reply), lastId);
      if (entries.length === 0) continue;
      lastId = entries[entries.length - 1]!.id;
      try {
        onEntries(entries);
      } catch (error) {
        onError?.(error);
      }
    }
  };
  const done = loop();

  return {
    get lastId() {
      return lastId;
    },
    async stop() {
      running = false;
      markStopped();
      client.disconnect();
      await done;
    },
  };
}

/** The id of the newest entry of a stream, `0-0` when it is empty or missing. */
export async function lastStreamId(client: Redis, key: string): Promise<string> {
  const reply = await client.call('XREVRANGE', key, '+', '-', 'COUNT', 1).catch((error: unknown) => {
    throw redisFailure(error);
  });
  const [newest] = parseEntries(reply);
  return newest?.id ?? '0-0';
}

/** Entries of an XRANGE/XREVRANGE reply (RESP2: `[[id, [field, value, …]], …]`). */
export function parseEntries(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const entries: StreamEntry[] = [];
  for (const item of reply) {
    if (!Array.isArray(item) || typeof item[0] !== 'string' || !Array.isArray(item[1])) continue;
    const flat = item[1] as unknown[];
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[String(flat[i])] = String(flat[i + 1]);
    entries.push({ id: item[0], fields });
  }
  return entries;
}

/** Entries of a one-stream XREAD reply (RESP2: `[[key, entries]]`, or null on timeout). */
function parseXread(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply) || !Array.isArray(reply[0])) return [];
  return parseEntries((reply[0] as unknown[])[1]);
}

/** Compares two stream ids (`<ms>-<seq>`) as Redis orders them. */
export function compareStreamIds(a: string, b: string): number {
  const [aMs = 0, aSeq = 0] = a.split('-').map(Number);
  const [bMs = 0, bSeq = 0] = b.split('-').map(Number);
  return aMs - bMs || aSeq - bSeq;
}

/** A late reply to a read that was sent again could repeat entries: keep only newer ones. */
function entriesAfter(entries: StreamEntry[], lastId: string): StreamEntry[] {
  return entries.filter((entry) => compareStreamIds(entry.id, lastId) > 0);
}
