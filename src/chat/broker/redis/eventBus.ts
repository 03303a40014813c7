/**
 * The MCP SDK's `ServerEventBus` (the seam of 2026-07-28 push: `subscriptions/listen`)
 * across processes: an event published on any process reaches the listeners on every
 * process — the one holding the client's listen stream among them.
 *
 * `publish()` delivers to this process's listeners at once, synchronously (as
 * `InMemoryServerEventBus` does: a throwing listener does not stop the others), and
 * appends the event to one Redis Stream; every process reads that stream on a
 * connection of its own and delivers what other processes published. Its own events it
 * skips (they were delivered locally), so no listener sees an event twice.
 *
 * A stream, not pub/sub: a reader cut off for a moment resumes after the last entry it
 * read instead of losing what was published meanwhile, and duplicates from ioredis
 * resending an append are dropped (each event carries `<origin>:<counter>`, delivered
 * only above the last counter seen from that origin). Still best effort, as push is in
 * MCP (a client re-reads the resource on any update): when Redis is down, local
 * listeners get the event and remote ones do not (`onError` says so); the stream keeps
 * the last `maxLength` events.
 *
 * It sits beside the broker because it rides the same connections; it imports only the
 * SDK's types.
 */
import type { ServerEvent, ServerEventBus } from '@modelcontextprotocol/server';
import { DEFAULT_KEY_PREFIX, type Redis, type RedisTarget, redisFailure } from './connection.js';
import { lastStreamId, readStream, type StreamEntry, type StreamReader } from './streamReader.js';

/** `url` and `tlsCa` are for the reader's own connection. */
export interface RedisServerEventBusOptions extends RedisTarget {
  /** The connection publishes go through (shared with other parts of this process). */
  client: Redis;
  /** This process (events it published are not delivered to it again). */
  processId: string;
  keyPrefix?: string;
  /** Events the stream keeps at most (approximately). 10,000 by default. */
  maxLength?: number;
  /** A listener that threw, a publish that did not reach Redis, a failed read. */
  onError?: (error: Error) => void;
}

export class RedisServerEventBus implements ServerEventBus {
  readonly #listeners = new Set<(event: ServerEvent) => void>();
  readonly #lastFrom = new Map<string, number>();
  readonly #options: RedisServerEventBusOptions;
  readonly #key: string;
  #counter = 0;
  #reader: StreamReader | undefined;

  private constructor(options: RedisServerEventBusOptions) {
    this.#options = options;
    this.#key = `${options.keyPrefix ?? DEFAULT_KEY_PREFIX}events:bus`;
  }

  /** A bus that delivers events published from now on, from any process. */
  static async create(options: RedisServerEventBusOptions): Promise<RedisServerEventBus> {
    const bus = new RedisServerEventBus(options);
    const after = await lastStreamId(options.client, bus.#key);
    bus.#reader = readStream({
      url: options.url,
      tlsCa: options.tlsCa,
      key: bus.#key,
      after,
      name: `events:${options.processId}`,
      onEntries: (entries) => bus.#receive(entries),
      onError: (error) => bus.#error(error),
    });
    return bus;
  }

  publish(event: ServerEvent): void {
    this.#deliver(event);
    const { client, processId, maxLength = 10_000 } = this.#options;
    client
      .call('XADD', this.#key, 'MAXLEN', '~', maxLength, '*', 'o', processId, 'c', ++this.#counter, 'e', JSON.stringify(event))
      .catch((error: unknown) => this.#error(redisFailure(error)));
  }

  subscribe(listener: (event: ServerEvent) => void): () => void {
    this.#listeners.add(listener);
    let live = true;
    return () => {
      if (!live) return;
      live = false;
      this.#listeners.delete(listener);
    };
  }

  /** Listeners registered now. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** Stops reading; publishing afterwards reaches this process's listeners only. */
  async close(): Promise<void> {
    await this.#reader?.stop();
  }

  #receive(entries: StreamEntry[]): void {
    for (const { fields } of entries) {
      const origin = fields.o ?? '';
      const counter = Number(fields.c);
      if (origin === this.#options.processId) continue;
      if (!(counter > (this.#lastFrom.get(origin) ?? 0))) continue;
      this.#lastFrom.set(origin, counter);
      let event: ServerEvent;
      try {
        event = JSON.parse(fields.e ?? '') as ServerEvent;
      } catch (error) {
        this.#error(error);
        continue;
      }
      this.#deliver(event);
    }
  }

  #deliver(event: ServerEvent): void {
    for (const listener of this.#listeners)
      try {
        listener(event);
      } catch (error) {
        this.#error(error);
      }
  }

  #error(error: unknown): void {
    this.#options.onError?.(error instanceof Error ? error : new Error(String(error)));
  }
}
