/**
 * The users alive now, each named by a server-minted, unguessable `user_token`. A user
 * is a user actor wired to the broker (src/chat/chatUser.ts), its event log, and the
 * sessions bound to it; it lives by its presence, not by any session, and leaves the
 * directory when its actor ends.
 *
 * Generic in what the log keeps (`E`): the chat layer knows no wire format; the
 * composition root gives it the mapping from a user's news to notifications.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { InspectionEvent, Observer } from 'xstate';
import type { PresenceInput } from '../../machines/presence.js';
import type { RateLimit, SessionEndReason, UserState } from '../../machines/user.js';
import type { ChatBroker } from './broker.js';
import { startChatUser, type ChatUser, type UserNews, type UserReport } from './chatUser.js';
import { EventLog, type LogBudget, type LogLimits } from './eventLog.js';
import { inProcess } from './processDirectory.js';

export interface UserDirectoryOptions<E> {
  broker: ChatBroker;
  /** This server process's id: every token starts with it (`<processId>.<secret>`), so any process can tell whose user a token names. */
  processId?: string;
  presence: PresenceInput;
  rate: RateLimit;
  /** How long an idle user still avoids its last partner, in ms. */
  rematchAfterMs: number;
  log: LogLimits;
  /** What all users' logs may hold together; unbounded without one. */
  logBudget?: LogBudget;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** What the log keeps for a piece of news. */
  toEntry(news: UserNews): E;
  /** An entry's size in bytes, for the log's byte bound. */
  sizeOf(entry: E): number;
  /** Hears each user's news once, with its log id (e.g. to log it). */
  onNews?(user: User<E>, entry: E, id: number): void;
  /** Hears each report a user makes of its partner. */
  onReport?(report: UserReport): void;
}

/** A user as the rest of the server holds it. */
export interface User<E> {
  /** The secret that names the user in calls. */
  readonly token: string;
  /**
   * Names the user's events for reading, never for acting: derived from the token one
   * way, so it can travel in a resource URI (and a header) without being a credential.
   */
  readonly eventsKey: string;
  readonly chat: ChatUser;
  readonly events: EventLog<E>;
  readonly state: UserState;
  /**
   * A call named this user by its token: from now on the user lives by its token, and
   * the end of a session (a client that opens one per call may DELETE each) is not a
   * sign that it left; only silence ends it.
   */
  calledByToken(): void;
  /**
   * Binds a session: `listener` hears every entry the log gets, until the returned
   * function is called — with `gone: true` when the client ended the session (DELETE,
   * a legacy stream closed): if no session is left bound then, and no call ever named
   * the user by its token, the user is detached and has the grace period to call again.
   */
  bind(listener: (entry: E, id: number) => void): (gone: boolean) => void;
}

/** 192 bits from the operating system's CSPRNG, URL-safe, after the id of the process that made it. */
const newToken = (processId: string | undefined) => {
  const secret = randomBytes(24).toString('base64url');
  return processId === undefined ? secret : inProcess(processId, secret);
};

/** The read-only key of a token's events: `<processId>.` (so any process can tell whose it is) and 192 bits of its SHA-256. */
export function eventsKeyOf(token: string): string {
  const dot = token.indexOf('.');
  const digest = createHash('sha256').update(`mcp-chat events\0${token}`).digest('base64url').slice(0, 32);
  return dot < 0 ? digest : `${token.slice(0, dot + 1)}${digest}`;
}

export class UserDirectory<E> {
  readonly #byToken = new Map<string, User<E>>();
  readonly #byEventsKey = new Map<string, User<E>>();

  constructor(private readonly options: UserDirectoryOptions<E>) {}

  /** A new user, idle, with a fresh token. */
  create(): User<E> {
    const { broker, presence, rate, rematchAfterMs, onReport, inspect, toEntry, sizeOf, onNews } = this.options;
    const token = newToken(this.options.processId);
    const events = new EventLog<E>(this.options.log, sizeOf, this.options.logBudget);
    const listeners = new Set<(entry: E, id: number) => void>();
    let byToken = false;
    let user: User<E> | undefined;
    const chat = startChatUser({
      userId: this.options.processId ? inProcess(this.options.processId, randomUUID()) : randomUUID(),
      presence,
      rate,
      rematchAfterMs,
      ...(onReport && { onReport }),
      broker,
      inspect,
      notify: (news) => {
        const entry = toEntry(news);
        const id = events.append(entry);
        if (user) onNews?.(user, entry, id);
        for (const listener of listeners) listener(entry, id);
      },
    });
    user = {
      token,
      eventsKey: eventsKeyOf(token),
      chat,
      events,
      get state() {
        return chat.actor.getSnapshot().value as UserState;
      },
      calledByToken: () => void (byToken = true),
      bind(listener) {
        listeners.add(listener);
        let bound = true;
        return (gone) => {
          if (!bound) return;
          bound = false;
          listeners.delete(listener);
          if (gone && listeners.size === 0 && !byToken) chat.detached();
        };
      },
    };
    const created = user;
    this.#byToken.set(token, created);
    this.#byEventsKey.set(created.eventsKey, created);
    const forget = () => {
      this.#byToken.delete(token);
      this.#byEventsKey.delete(created.eventsKey);
      listeners.clear();
      events.release();
    };
    chat.actor.subscribe({ complete: forget, error: forget });
    return created;
  }

  /** The live user this token names, if any. */
  byToken(token: string): User<E> | undefined {
    return this.#byToken.get(token);
  }

  /** The live user whose events this read-only key names, if any. */
  byEventsKey(key: string): User<E> | undefined {
    return this.#byEventsKey.get(key);
  }

  get size(): number {
    return this.#byToken.size;
  }

  values(): IterableIterator<User<E>> {
    return this.#byToken.values();
  }

  /** Ends every user (on shutdown): each partner is told `reason`, held reads answer. */
  endAll(reason: SessionEndReason): void {
    for (const { chat } of [...this.#byToken.values()]) {
      if (chat.actor.getSnapshot().status !== 'active') continue;
      chat.actor.send({ type: 'session.closed', reason });
      chat.actor.stop();
    }
  }
}
