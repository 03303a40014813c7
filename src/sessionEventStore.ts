/**
 * The event store of one MCP session: every message the SDK transport writes to an SSE
 * stream is stored here first, so a client that reconnects with `Last-Event-ID` gets
 * what it missed, in order, once.
 *
 * The session's own stream (the standalone GET stream) carries chat notifications in a
 * bounded ring with plain numeric ids `1, 2, 3…` — the ids `wait_for_events` reads
 * too; appending is O(1) and a replay is O(missed). Anything else on that stream (log
 * lines, progress) goes to a small side ring with ids `side#<n>`, so it never pushes
 * chat out of the buffer, and a replay interleaves both in the order they were sent.
 * Streams of single requests (a tool call answered over SSE) keep a few recent events
 * each, with ids `<streamId>#<n>`, so a dropped response stream can be resumed too.
 *
 * The SDK's example store cannot do the first part: it parses the stream id out of an
 * event id by splitting on `_`, and the standalone stream is called `_GET_stream`.
 */
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { CHAT_NOTIFICATION_METHODS } from './notifications.js';

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

/** What else goes out on the session stream (log lines, progress): kept apart from chat. */
interface SideEvent {
  message: JSONRPCMessage;
  /** How many chat events were stored before this one: where it falls between them. */
  chatBefore: number;
}

const SIDE = 'side';
const SIDE_EVENTS_KEPT = 64;

const chatMethods = new Set<string>(CHAT_NOTIFICATION_METHODS);
const isChatEvent = (message: JSONRPCMessage) => 'method' in message && !('id' in message) && chatMethods.has(message.method);

export class SessionEventStore implements EventStore {
  /** The session stream's chat notifications, numbered from 1: the ids clients see. */
  readonly session: Ring<JSONRPCMessage>;
  /** Other messages on the session stream, ids `side#n`, so they never crowd chat out. */
  readonly #side = new Ring<SideEvent>(SIDE_EVENTS_KEPT);
  #requests: Map<StreamId, Ring<JSONRPCMessage>> | undefined;

  /** Called after every chat event stored on the session stream. */
  onSessionEvent: () => void = () => {};

  constructor(capacity: number) {
    this.session = new Ring(capacity);
  }

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    if (streamId === SESSION_STREAM) {
      if (!isChatEvent(message)) return `${SIDE}#${this.#side.push({ message, chatBefore: this.session.last })}`;
      const id = this.session.push(message);
      this.onSessionEvent();
      return String(id);
    }
    this.#requests ??= new Map();
    let ring = this.#requests.get(streamId);
    if (!ring) {
      ring = new Ring(EVENTS_KEPT_PER_REQUEST_STREAM);
      this.#requests.set(streamId, ring);
      // Maps iterate in insertion order: the first key is the oldest request stream.
      if (this.#requests.size > REQUEST_STREAMS_KEPT) this.#requests.delete(this.#requests.keys().next().value!);
    }
    return `${streamId}#${ring.push(message)}`;
  }

  /**
   * For an id on the session stream (a chat id or a side id), how many chat events the
   * client has seen; undefined for ids of other streams and for ids that are not ours.
   */
  sessionPosition(eventId: EventId): number | undefined {
    const parsed = parseEventId(eventId);
    if (parsed?.streamId === SESSION_STREAM) return Math.min(parsed.n, this.session.last);
    if (parsed?.streamId === SIDE) return this.#positionOfSide(parsed.n).chat;
    return undefined;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    const parsed = parseEventId(eventId);
    if (!parsed) return undefined;
    if (parsed.streamId === SESSION_STREAM || parsed.streamId === SIDE) return SESSION_STREAM;
    return this.#requests?.has(parsed.streamId) ? parsed.streamId : undefined;
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const parsed = parseEventId(lastEventId);
    if (!parsed) throw new Error(`Unknown event id ${JSON.stringify(lastEventId)}`);
    const { streamId, n } = parsed;
    if (streamId === SESSION_STREAM || streamId === SIDE) {
      await this.#replaySession(streamId === SIDE ? this.#positionOfSide(n) : { chat: n, side: this.#lastSideBefore(n) }, send);
      return SESSION_STREAM;
    }
    const ring = this.#requests?.get(streamId);
    if (!ring) throw new Error(`No events are kept for stream ${streamId}`);
    for (const [id, message] of ring.after(n)) await send(`${streamId}#${id}`, message);
    return streamId;
  }

  /** The client saw side event `n`, so every chat event stored before it too. */
  #positionOfSide(n: number): { chat: number; side: number } {
    for (const [id, side] of this.#side.after(n - 1)) if (id === n) return { chat: side.chatBefore, side: n };
    // Fallen out of the side ring (64 side events in a row): resume from the oldest held.
    const [oldest] = this.#side.after(0);
    return { chat: oldest ? oldest[1].chatBefore : this.session.last, side: n };
  }

  /** The last side event stored before chat event `chat`: the client saw it. */
  #lastSideBefore(chat: number): number {
    let seen = this.#side.first - 1;
    for (const [id, side] of this.#side.after(0)) if (side.chatBefore < chat) seen = id;
    return seen;
  }

  /** Sends chat events after `from.chat` and side events after `from.side`, in the order they were stored. */
  async #replaySession(from: { chat: number; side: number }, send: (eventId: EventId, message: JSONRPCMessage) => Promise<void>) {
    const sides = [...this.#side.after(from.side)];
    let next = 0;
    for (const [id, message] of this.session.after(from.chat)) {
      for (; next < sides.length && sides[next]![1].chatBefore < id; next++) await send(`${SIDE}#${sides[next]![0]}`, sides[next]![1].message);
      await send(String(id), message);
    }
    for (; next < sides.length; next++) await send(`${SIDE}#${sides[next]![0]}`, sides[next]![1].message);
  }
}

function parseEventId(eventId: EventId): { streamId: StreamId; n: number } | undefined {
  const hash = eventId.lastIndexOf('#');
  const streamId = hash === -1 ? SESSION_STREAM : eventId.slice(0, hash);
  const digits = eventId.slice(hash + 1);
  if (!/^\d{1,15}$/.test(digits)) return undefined;
  return { streamId, n: Number(digits) };
}
