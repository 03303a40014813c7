/**
 * What every MCP session is, whatever its transport: a user actor, an SDK transport
 * joined to the one MCP server (src/sessionMux.ts), and the bounded event ring behind
 * replay and `wait_for_events`. Subclasses make the transport and say how a chat
 * notification reaches the client.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { InspectionEvent, Observer } from 'xstate';
import type { SessionEndReason, UserState } from '../../machines/user.js';
import type { ChatBroker } from '../chat/broker.js';
import { startChatUser, type ChatUser, type UserActor } from '../chat/chatUser.js';
import type { ChatConfig } from '../config.js';
import { toLogMessage, toNotification, type ChatNotification } from '../mcp/notifications.js';
import type { SessionMux } from '../mcp/sessionMux.js';
import type { SessionTools } from '../mcp/tools.js';
import { SessionEventStore } from './replay/eventStore.js';
import { EventFeed } from './replay/feed.js';

/** Where sessions are listed while they are open; only ChatSession adds and removes. */
export interface SessionMembership {
  add(session: ChatSession): void;
  delete(session: ChatSession): void;
}

/** What every session shares: built once, by the composition root (src/server.ts). */
export interface SessionServices {
  readonly config: ChatConfig;
  readonly broker: ChatBroker;
  readonly sessions: SessionMembership;
  /** User actors that have not stopped yet: 0 once every session has ended. */
  readonly users: Set<UserActor>;
  readonly log: Logger;
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Carries every session's messages to and from the one MCP server. */
  readonly mcp: SessionMux<ChatSession>;
}

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

export abstract class ChatSession implements SessionTools {
  readonly user: ChatUser;
  readonly events: SessionEventStore;
  readonly feed: EventFeed;
  protected readonly services: SessionServices;
  /** The SDK transport this session's client talks to. */
  protected abstract readonly transport: Transport;
  /** Takes the transport off the shared MCP server; set once it is on. */
  #detach: (() => void) | undefined;
  #ended = false;
  #listed = false;
  #closed: Promise<void> = Promise.resolve();
  /** The least severe log level the client asked for; null until it asks. */
  #logLevel: LoggingLevel | null = null;
  /** The newest notification on its way to the transport. */
  #lastSend: Promise<void> = Promise.resolve();

  /** `resumable`: whether a client can come back to this session after its streams close. */
  constructor(services: SessionServices, readonly sessionId: string, resumable: boolean) {
    this.services = services;
    const { config, log } = services;
    this.events = new SessionEventStore(config.eventBufferSize);
    this.feed = new EventFeed(this.events.session);
    this.events.onChatEvent = () => this.feed.appended();
    this.user = startChatUser({
      userId: randomUUID(),
      presence: { resumable, graceMs: config.graceMs, idleMs: config.idleTimeoutMs },
      rate: { perSecond: config.messagesPerSecond, burst: config.messageBurst },
      broker: services.broker,
      inspect: services.inspect,
      live: services.users,
      notify: (event) => {
        const notification = toNotification(event);
        if (notification.method !== 'message.received') log.info({ session: this.sessionId, ...notification.params }, notification.method);
        this.#lastSend = this.deliver(notification).catch((error: unknown) => log.warn({ err: error }, 'notification not sent'));
      },
    });
    // MCP log notifications narrate the chat to clients that ask for them with
    // logging/setLevel. They travel on the session stream beside the chat events (the
    // event store keeps them in a side ring, so they never crowd chat events out).
    this.user.actor.on('*', (event) => {
      const message = toLogMessage(event);
      if (message && this.#logLevel !== null && LOG_SEVERITY[message.level] >= LOG_SEVERITY[this.#logLevel])
        void this.transport.send({ method: 'notifications/message', params: message, jsonrpc: '2.0' }).catch(() => {});
    });
    // The user actor ends by itself when its presence expires: the session ends with it.
    this.user.actor.subscribe({
      complete: () => void this.end(resumable ? 'timeout' : 'disconnected'),
      // A failing actor must not take the process down with it: end its session instead.
      error: (error: unknown) => {
        log.error({ err: error, session: this.sessionId }, 'user actor failed');
        void this.end('disconnected');
      },
    });
  }

  /** The state of this session's user. */
  get state(): UserState {
    return this.user.actor.getSnapshot().value as UserState;
  }

  /**
   * A request or stream of this session is open until the returned function is called:
   * while one is, the user is present (see chatUser's openLink).
   */
  openLink(): () => void {
    return this.user.openLink();
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

  /** Hands a chat notification to the client's stream, storing it in the ring first. */
  protected abstract deliver(notification: ChatNotification): Promise<void>;

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
   * Ends the session: the user actor reaches `ended`, its partner is told, held
   * `wait_for_events` calls answer with what is left, and then the transport closes.
   * Resolves once it has.
   */
  end(reason: SessionEndReason): Promise<void> {
    this.services.sessions.delete(this);
    this.#listed = false;
    if (this.#ended) return this.#closed;
    this.#ended = true;
    if (this.user.actor.getSnapshot().status === 'active') {
      this.user.actor.send({ type: 'session.closed', reason });
      this.user.actor.stop();
    }
    this.feed.release();
    this.services.log.info({ session: this.sessionId, reason }, 'session ended');
    // The released calls answer within a few microtasks; closing the transport at once
    // would abort them and their answers (e.g. partner.disconnected on shutdown) would
    // be lost, so the transport closes on the next turn of the event loop.
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
