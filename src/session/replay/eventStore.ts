/**
 * The event store of one MCP session: every message the session's transport writes to an SSE
 * stream is stored (or found) here first, so a client that reconnects with
 * `Last-Event-ID` gets what it missed, in order, once.
 *
 * The session's own stream (the standalone GET stream) carries the chat notifications
 * of the user bound to the session, from that user's event log (src/chat/eventLog.ts),
 * with the log's plain numeric ids `1, 2, 3…` — the ids `wait_for_events` reads too. The
 * log appends each notification once, however many sessions carry it; this store finds
 * the id of a message it is handed. Anything else on that stream (log lines) goes to a
 * small side ring of the session with ids `side.<chat>#<n>`, so it never pushes chat
 * out, and a replay interleaves both in the order they were sent. A replay that starts
 * past what the log still holds begins with an `events.missed` notice saying how many
 * events are gone. Streams of single requests (a tool call answered over SSE) keep a few
 * recent events each, with ids `<streamId>#<n>`, so a dropped response stream can be
 * resumed too.
 *
 * The SDK's example store cannot do the first part: it parses the stream id out of an
 * event id by splitting on `_`, and the standalone stream is called `_GET_stream`.
 */
import type { EventId, EventStore, JSONRPCMessage, StreamId } from '@modelcontextprotocol/server';
import type { EventLog } from '../../chat/eventLog.js';
import { type ChatMessage, isChatNotification, missedNotice } from '../../mcp/notifications.js';
import { Ring } from './ring.js';

/** The name of the standalone GET stream (the SDK's transport calls it so too). */
export const SESSION_STREAM = '_GET_stream';

const REQUEST_STREAMS_KEPT = 8;
const EVENTS_KEPT_PER_REQUEST_STREAM = 16;

export type { ChatMessage };

/** The chat log a session stream reads. */
export type ChatLog = EventLog<ChatMessage>;

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
  /** Other messages on the session stream, so they never crowd chat events out. */
  readonly #side = new Ring<SideEvent>(SIDE_EVENTS_KEPT);
  #requests: Map<StreamId, Ring<JSONRPCMessage>> | undefined;
  /** The log id of each chat message on its way to the stream. */
  readonly #ids = new WeakMap<object, number>();

  /** `chat`: the log of the user bound to the session, now. */
  constructor(private chat: ChatLog) {}

  /** The session is bound to another user: its stream carries that user's log from now on. */
  follow(chat: ChatLog): void {
    this.chat = chat;
  }

  /** The log id of `message`, which is about to be sent: what storeEvent answers for it. */
  expect(message: ChatMessage, id: number): void {
    this.#ids.set(message, id);
  }

  /** Where the newest stored session event puts a client that has seen it. */
  get newest(): SessionPosition {
    return { chat: this.chat.last, side: this.#side.last };
  }

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    if (streamId === SESSION_STREAM) {
      if (!isChatNotification(message)) {
        const chatBefore = this.chat.last;
        const n = this.#side.push({ message, chatBefore });
        return positionId({ chat: chatBefore, side: n });
      }
      const id = this.#ids.get(message) ?? this.chat.append(message as ChatMessage);
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
      const chat = Math.min(parsed.n, this.chat.last);
      return { chat, side: this.#sideBeforeChat(chat) };
    }
    const side = /^side\.(\d{1,15})$/.exec(parsed.streamId);
    return side ? { chat: Math.min(Number(side[1]), this.chat.last), side: Math.min(parsed.n, this.#side.last) } : undefined;
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

  /** The side events stored before chat event `chat` (those still held bound the rest). */
  #sideBeforeChat(chat: number): number {
    let before = this.#side.first - 1;
    for (const [n, side] of this.#side.after(0)) if (side.chatBefore < chat) before = n;
    return Math.min(before, this.#side.last);
  }

  /**
   * Sends what was stored after `from`, chat and side events in the order they were
   * stored; first an `events.missed` notice when chat events after `from` are gone.
   */
  async #replaySession(from: SessionPosition, send: (eventId: EventId, message: JSONRPCMessage) => Promise<void>) {
    const gone = this.chat.first - 1 - from.chat;
    if (gone > 0) await send(positionId({ chat: this.chat.first - 1, side: from.side }), missedNotice(gone));
    const sides = [...this.#side.after(from.side)];
    let next = 0;
    const sendSide = async () => {
      const [n, side] = sides[next++]!;
      await send(positionId({ chat: side.chatBefore, side: n }), side.message);
    };
    for (const [id, message] of this.chat.after(from.chat)) {
      while (next < sides.length && sides[next]![1].chatBefore < id) await sendSide();
      await send(String(id), message);
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
