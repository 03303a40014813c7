/**
 * The event store of one MCP session: every message the SDK transport writes to an SSE
 * stream is stored here first, so a client that reconnects with `Last-Event-ID` gets
 * what it missed, in order, once.
 *
 * The session's own stream (the standalone GET stream, where chat notifications go) is
 * a bounded ring with plain numeric ids `1, 2, 3…`; appending is O(1) and a replay is
 * O(missed). Streams of single requests (a tool call answered over SSE) keep a few
 * recent events each, with ids `<streamId>#<n>`, so a dropped response stream can be
 * resumed too.
 *
 * The SDK's example store cannot do the first part: it parses the stream id out of an
 * event id by splitting on `_`, and the standalone stream is called `_GET_stream`.
 */
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** The SDK transport's name for the standalone GET stream. */
export const SESSION_STREAM = '_GET_stream';

const REQUEST_STREAMS_KEPT = 8;
const EVENTS_KEPT_PER_REQUEST_STREAM = 16;

/**
 * A bounded run of numbered entries, oldest dropped first. Entry `n` lives in slot
 * `(n - 1) % capacity`; the slots grow as entries come, so an idle session costs
 * nothing for the capacity it may never use.
 */
export class Ring<T> {
  readonly #slots: T[] = [];
  #last = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  }

  /** Id of the newest entry; 0 when empty. */
  get last(): number {
    return this.#last;
  }

  /** Id of the oldest entry still held. */
  get first(): number {
    return Math.max(1, this.#last - this.capacity + 1);
  }

  push(value: T): number {
    if (this.#slots.length < this.capacity) this.#slots.push(value);
    else this.#slots[this.#last % this.capacity] = value;
    this.#last += 1;
    return this.#last;
  }

  /** Entries after `id`, oldest first (from `first` when `id` fell out of the ring). */
  *after(id: number): Generator<[number, T]> {
    for (let n = Math.max(id + 1, this.first); n <= this.#last; n++) {
      yield [n, this.#slots[(n - 1) % this.capacity] as T];
    }
  }
}

export class SessionEventStore implements EventStore {
  /** The session stream: chat notifications, numbered from 1. */
  readonly session: Ring<JSONRPCMessage>;
  readonly #requests = new Map<StreamId, Ring<JSONRPCMessage>>();

  /** Called after every append to the session stream. */
  onSessionEvent: () => void = () => {};

  constructor(capacity: number) {
    this.session = new Ring(capacity);
  }

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    if (streamId === SESSION_STREAM) {
      const id = this.session.push(message);
      this.onSessionEvent();
      return String(id);
    }
    let ring = this.#requests.get(streamId);
    if (!ring) {
      ring = new Ring(EVENTS_KEPT_PER_REQUEST_STREAM);
      this.#requests.set(streamId, ring);
      // Maps iterate in insertion order: the first key is the oldest request stream.
      if (this.#requests.size > REQUEST_STREAMS_KEPT) this.#requests.delete(this.#requests.keys().next().value!);
    }
    return `${streamId}#${ring.push(message)}`;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    const parsed = parseEventId(eventId);
    if (!parsed) return undefined;
    if (parsed.streamId === SESSION_STREAM || this.#requests.has(parsed.streamId)) return parsed.streamId;
    return undefined;
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const parsed = parseEventId(lastEventId);
    if (!parsed) throw new Error(`Unknown event id ${JSON.stringify(lastEventId)}`);
    const { streamId, n } = parsed;
    const ring = streamId === SESSION_STREAM ? this.session : this.#requests.get(streamId);
    if (!ring) throw new Error(`No events are kept for stream ${streamId}`);
    const prefix = streamId === SESSION_STREAM ? '' : `${streamId}#`;
    for (const [id, message] of ring.after(n)) await send(`${prefix}${id}`, message);
    return streamId;
  }
}

function parseEventId(eventId: EventId): { streamId: StreamId; n: number } | undefined {
  const hash = eventId.lastIndexOf('#');
  const streamId = hash === -1 ? SESSION_STREAM : eventId.slice(0, hash);
  const digits = eventId.slice(hash + 1);
  if (!/^\d{1,15}$/.test(digits)) return undefined;
  return { streamId, n: Number(digits) };
}
