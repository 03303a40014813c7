/**
 * What every MCP session is, whatever its transport: a way in. It is a transport
 * joined to the one MCP server (src/mcp/sessionMux.ts), bound to a user — the one it
 * created, or the last one whose token was used in it — whose events its SSE stream
 * carries (src/session/replay/eventStore.ts). Sessions are not users: a session that
 * ends leaves its user alive (a `DELETE` detaches it), and a user may be reached from
 * many sessions, or none. Subclasses make the transport and say how a chat notification
 * reaches the client.
 */
import type { LoggingLevel, Transport } from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import type { Subscription } from 'xstate';
import type { ChatUser } from '../chat/chatUser.js';
import { EventLog } from '../chat/eventLog.js';
import { secretHint } from '../chat/processDirectory.js';
import type { ChatConfig } from '../config.js';
import { toLogMessage } from '../mcp/notifications.js';
import type { SessionMux } from '../mcp/sessionMux.js';
import { type ChatMessage, SessionEventStore } from './replay/eventStore.js';

/** Where sessions are listed while they are open; only ChatSession adds and removes. */
export interface SessionMembership {
  add(session: ChatSession): void;
  delete(session: ChatSession): void;
}

/** What every session shares: built once, by the composition root (src/server.ts). */
export interface SessionServices {
  readonly config: ChatConfig;
  /** This server process's id: every session id starts with it (`<processId>.<uuid>`). */
  readonly processId: string;
  readonly sessions: SessionMembership;
  readonly log: Logger;
  /** Carries every session's messages to and from the one MCP server. */
  readonly mcp: SessionMux<ChatSession>;
}

/**
 * Why a session ends: the client ended it (`gone`: DELETE, a legacy stream closed),
 * the server dropped it for holding nothing (`dropped`: its user lives on), or the
 * server is stopping.
 */
export type SessionEnd = 'gone' | 'dropped' | 'shutdown';

const LOG_SEVERITY: Record<LoggingLevel, number> = {
  debug: 0,
  info: 1,
  notice: 2,
  warning: 3,
  error: 4,
  critical: 5,
  alert: 6,
  emergency: 7,
};

/** The log a session stream reads before the session has a user: nothing comes to it. */
const noUserLog = () => new EventLog<ChatMessage>({ events: 1, bytes: 0 }, () => 0);

export abstract class ChatSession {
  readonly events = new SessionEventStore(noUserLog());
  protected readonly services: SessionServices;
  /** The transport this session's client talks to (the SDK's `Transport` interface). */
  protected abstract readonly transport: Transport;
  /** Whether the session ends by itself once it holds no stream and no call for a while. */
  protected abstract readonly dropsWhenIdle: boolean;
  #user: ChatUser<ChatMessage> | null = null;
  /** Unbinds from the user; `gone` when the client ended the session. */
  #unbind: ((gone: boolean) => void) | null = null;
  #narration: Subscription | null = null;
  /** Requests and streams of this session open now. */
  #links = 0;
  /** The presence link this session holds on its user while any of its own is open. */
  #userLink: (() => void) | null = null;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Takes the transport off the shared MCP server; set once it is on. */
  #detach: (() => void) | undefined;
  #ended = false;
  #listed = false;
  #closed: Promise<void> = Promise.resolve();
  /** The least severe log level the client asked for; null until it asks. */
  #logLevel: LoggingLevel | null = null;
  /** The newest notification on its way to the transport. */
  #lastSend: Promise<void> = Promise.resolve();
  /** What the session holds of its client address's allowance, given back when it ends. */
  readonly #holdings: (() => void)[] = [];

  constructor(
    services: SessionServices,
    readonly sessionId: string,
  ) {
    this.services = services;
  }

  /** The user this session acts for when a call names none; null until one is bound. */
  get user(): ChatUser<ChatMessage> | null {
    return this.#user?.state === 'ended' ? null : this.#user;
  }

  /**
   * Binds the session to `user` (the one it created, or whose token a call used): its
   * stream carries that user's events from now on, and its links keep that user present.
   */
  bind(user: ChatUser<ChatMessage>): void {
    if (this.#ended || user === this.#user) return;
    const switching = this.#user !== null;
    this.#unbind?.(false);
    this.#narration?.unsubscribe();
    this.#userLink?.();
    this.#userLink = null;
    this.#user = user;
    this.events.follow(user.events);
    this.#unbind = user.bind((message, id) => {
      this.events.expect(message, id);
      this.#lastSend = this.deliver(message, id).catch((error: unknown) => this.services.log.warn({ err: error }, 'notification not sent'));
    });
    // MCP log notifications narrate the chat to clients that ask for them with
    // logging/setLevel. They travel on the session stream beside the chat events (the
    // event store keeps them in a side ring, so they never crowd chat events out).
    this.#narration = user.actor.on('*', (event) => {
      const message = toLogMessage(event);
      if (message && this.#logLevel !== null && LOG_SEVERITY[message.level] >= LOG_SEVERITY[this.#logLevel])
        void this.transport.send({ method: 'notifications/message', params: message, jsonrpc: '2.0' }).catch(() => {});
    });
    this.rebound(switching);
    // Last: a link that brings the user back may pair it at once, and the news of it
    // must find this session already listening.
    if (this.#links > 0) this.#userLink = user.openLink();
  }

  /**
   * The session now carries `user`'s events, from that user's present on; `switching`
   * when it carried another user's before (a subclass resets its stream).
   */
  protected rebound(_switching: boolean): void {}

  /**
   * A request or stream of this session is open until the returned function is called:
   * while one is, the bound user is present, and the session is not idle.
   */
  openLink(): () => void {
    if (this.#links++ === 0) {
      clearTimeout(this.#idleTimer);
      this.#userLink = this.#user?.openLink() ?? null;
    }
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      if (--this.#links > 0) return;
      this.#userLink?.();
      this.#userLink = null;
      if (this.dropsWhenIdle && !this.#ended) {
        this.#idleTimer = setTimeout(() => void this.end('dropped'), this.services.config.sessionIdleMs);
        this.#idleTimer.unref();
      }
    };
  }

  /** Keeps `release` until the session ends (what it holds of its client address's allowance). */
  holdUntilEnd(release: () => void): void {
    if (this.#ended) release();
    else this.#holdings.push(release);
  }

  /** Lists the session once its client has initialized it; `end()` takes it off. */
  protected opened(): void {
    if (this.#ended) return;
    this.services.sessions.add(this);
    this.#listed = true;
  }

  /** Whether the session is listed: initialized, and not ended. */
  get listed(): boolean {
    return this.#listed;
  }

  /** Joins the transport to the shared MCP server and starts it. */
  async connect(): Promise<void> {
    this.#detach = await this.services.mcp.attach(this, this.transport);
  }

  /** The client asked (logging/setLevel) for log notifications this severe and worse. */
  setLogLevel(level: LoggingLevel): void {
    this.#logLevel = level;
  }

  /** Hands a chat notification (the user's log entry `id`) to the client's stream. */
  protected abstract deliver(message: ChatMessage, id: number): Promise<void>;

  protected closeTransport(): Promise<void> {
    return this.transport.close();
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Resolves once every notification so far has been handed to the stream. */
  flushed(): Promise<void> {
    return this.#lastSend;
  }

  /**
   * Ends the session, not its user: the user is unbound (and detached when the client
   * ended the session and no other session is bound to it), then the transport closes.
   * Resolves once it has.
   */
  end(why: SessionEnd): Promise<void> {
    this.services.sessions.delete(this);
    this.#listed = false;
    if (this.#ended) return this.#closed;
    this.#ended = true;
    clearTimeout(this.#idleTimer);
    this.#userLink?.();
    this.#userLink = null;
    this.#narration?.unsubscribe();
    this.#unbind?.(why === 'gone');
    for (const release of this.#holdings.splice(0)) release();
    this.services.log.info({ session: secretHint(this.sessionId), why }, 'session ended');
    // Answers still being written (held calls released on shutdown) go out first: the
    // transport closes on the next turn of the event loop.
    this.#closed = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => {
        this.#detach?.();
        return this.closeTransport();
      })
      .catch(() => {
        // Closing a transport whose streams are already gone has nothing left to do.
      });
    return this.#closed;
  }
}
