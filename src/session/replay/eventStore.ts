/**
 * The event store of one MCP session: every message the SDK transport writes to an SSE
 * stream is stored here first, so a client that reconnects with `Last-Event-ID` gets
 * what it missed, in order, once.
 *
 * The session's own stream (the standalone GET stream) carries chat notifications in a
 * bounded ring with plain numeric ids `1, 2, 3…` — the ids `wait_for_events` reads
 * too; appending is O(1) and a replay is O(missed). Anything else on that stream (log
 * lines, progress) goes to a small side ring with ids `side.<chat>#<n>`, so it never pushes
 * chat out of the buffer, and a replay interleaves both in the order they were sent.
 * Streams of single requests (a tool call answered over SSE) keep a few recent events
 * each, with ids `<streamId>#<n>`, so a dropped response stream can be resumed too.
 *
 * The SDK's example store cannot do the first part: it parses the stream id out of an
 * event id by splitting on `_`, and the standalone stream is called `_GET_stream`.
 */
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { isChatNotification, type ChatNotificationMessage } from '../../mcp/notifications.js';
import { Ring } from './ring.js';

/** The SDK transport's name for the standalone GET stream. */
export const SESSION_STREAM = '_GET_stream';

const REQUEST_STREAMS_KEPT = 8;
const EVENTS_KEPT_PER_REQUEST_STREAM = 16;

/** A chat notification, and how many side events were stored before it. */
export interface ChatEntry {
  /** Only chat notifications enter the chat ring (storeEvent checks). */
  message: JSONRPCMessage & ChatNotificationMessage;
  sideBefore: number;
}

/** What else goes out on the session stream (log lines, progress): kept apart from chat. */
interface SideEvent {
  message: JSONRPCMessage;
  /** How many chat events were stored before this one: where it falls between them. */
  chatBefore: number;
}

/**
 * How far along the session stream a client is: it has seen the chat events up to
 * `chat` and the side events up to `side`.
 */
export interface SessionPosition {
  chat: number;
  side: number;
}

const SIDE_EVENTS_KEPT = 64;


/**
 * A side event's id names its place among the chat events too (`side.<chat>#<n>`), so
 * a client resuming from it is placed exactly even after the side ring has moved on.
 * Any position can be written this way, which is how a resume is asked for on a
 * client's behalf.
 */
export const positionId = ({ chat, side }: SessionPosition): EventId => `side.${chat}#${side}`;

/** Whether a client at `a` has not yet seen everything a client at `b` has. */
export const isBefore = (a: SessionPosition, b: SessionPosition): boolean => a.chat < b.chat || a.side < b.side;

export class SessionEventStore implements EventStore {
  /** The session stream's chat notifications, numbered from 1: the ids clients see. */
  readonly session: Ring<ChatEntry>;
  /** Other messages on the session stream, so they never crowd chat events out. */
  readonly #side = new Ring<SideEvent>(SIDE_EVENTS_KEPT);
  #requests: Map<StreamId, Ring<JSONRPCMessage>> | undefined;

  /** Called after every chat notification stored on the session stream. */
  onChatEvent: () => void = () => {};

  constructor(capacity: number) {
    this.session = new Ring(capacity);
  }

  /** Where the newest stored session event puts a client that has seen it. */
  get newest(): SessionPosition {
    return { chat: this.session.last, side: this.#side.last };
  }

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    if (streamId === SESSION_STREAM) {
      if (!isChatNotification(message)) {
        const chatBefore = this.session.last;
        const n = this.#side.push({ message, chatBefore });
        return positionId({ chat: chatBefore, side: n });
      }
      const id = this.session.push({ message, sideBefore: this.#side.last });
      this.onChatEvent();
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
   * Where an id of the session stream (a chat id or a side id) puts the client that
   * saw it; undefined for ids of other streams and for ids that are not ours.
   */
  sessionPosition(eventId: EventId): SessionPosition | undefined {
    const parsed = parseEventId(eventId);
    if (!parsed) return undefined;
    if (parsed.streamId === SESSION_STREAM) {
      const chat = Math.min(parsed.n, this.session.last);
      return { chat, side: this.#sideBeforeChat(chat) };
    }
    const side = /^side\.(\d{1,15})$/.exec(parsed.streamId);
    return side ? { chat: Math.min(Number(side[1]), this.session.last), side: Math.min(parsed.n, this.#side.last) } : undefined;
  }

  /** Whether events were stored after `position`. */
  isBehind(position: SessionPosition): boolean {
    return isBefore(position, this.newest);
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    if (this.sessionPosition(eventId)) return SESSION_STREAM;
    const parsed = parseEventId(eventId);
    return parsed && this.#requests?.has(parsed.streamId) ? parsed.streamId : undefined;
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const position = this.sessionPosition(lastEventId);
    if (position) {
      await this.#replaySession(position, send);
      return SESSION_STREAM;
    }
    const parsed = parseEventId(lastEventId);
    const ring = parsed && this.#requests?.get(parsed.streamId);
    if (!parsed || !ring) throw new Error(`No events are kept after ${JSON.stringify(lastEventId)}`);
    for (const [id, message] of ring.after(parsed.n)) await send(`${parsed.streamId}#${id}`, message);
    return parsed.streamId;
  }

  /**
   * The side events stored before chat event `chat`. When that chat event has left the
   * ring, the oldest held one bounds it: the client missed chat there anyway.
   */
  #sideBeforeChat(chat: number): number {
    if (chat === 0) return 0;
    return this.session.at(Math.max(chat, this.session.first))?.sideBefore ?? this.#side.last;
  }

  /** Sends what was stored after `from`, chat and side events in the order they were stored. */
  async #replaySession(from: SessionPosition, send: (eventId: EventId, message: JSONRPCMessage) => Promise<void>) {
    const sides = [...this.#side.after(from.side)];
    let next = 0;
    const sendSide = async () => {
      const [n, side] = sides[next++]!;
      await send(positionId({ chat: side.chatBefore, side: n }), side.message);
    };
    for (const [id, entry] of this.session.after(from.chat)) {
      while (next < sides.length && sides[next]![1].chatBefore < id) await sendSide();
      await send(String(id), entry.message);
    }
    while (next < sides.length) await sendSide();
  }
}

function parseEventId(eventId: EventId): { streamId: StreamId; n: number } | undefined {
  const hash = eventId.lastIndexOf('#');
  const streamId = hash === -1 ? SESSION_STREAM : eventId.slice(0, hash);
  const digits = eventId.slice(hash + 1);
  if (!/^\d{1,15}$/.test(digits)) return undefined;
  return { streamId, n: Number(digits) };
}
