/**
 * One Streamable HTTP session: the SDK's web-standard transport, an MCP server with
 * the chat tools, the session's event store, and the user actor behind them.
 */
import { randomUUID } from 'node:crypto';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { SessionEndReason } from '../machines/user.js';
import { startChatUser, type ChatUser } from './chatUser.js';
import type { ChatServices } from './chatServices.js';
import { EventFeed } from './eventFeed.js';
import { SessionEventStore } from './sessionEventStore.js';
import { registerChatTools } from './tools.js';

export class StreamableSession {
  readonly sessionId = randomUUID();
  readonly user: ChatUser;
  readonly events: SessionEventStore;
  readonly feed: EventFeed;
  readonly #transport: WebStandardStreamableHTTPServerTransport;
  readonly #server: McpServer;
  readonly #services: ChatServices;
  /** Identifies the GET stream that is open now, if one is. */
  #stream: object | null = null;
  /** The last session event written while a GET stream was open. */
  #deliveredThrough = 0;
  /** The event the open (or last) session stream started after. */
  #streamFrom = 0;
  /** Whether this client has ever resumed with `Last-Event-ID`. */
  #clientResumes = false;
  #ended = false;
  /** The newest notification on its way to the transport. */
  #lastSend: Promise<void> = Promise.resolve();

  constructor(services: ChatServices) {
    this.#services = services;
    const { config } = services;
    this.events = new SessionEventStore(config.eventBufferSize);
    this.feed = new EventFeed(this.events.session);
    this.events.onSessionEvent = () => this.feed.appended();
    this.user = startChatUser({
      userId: randomUUID(),
      presence: { resumable: true, graceMs: config.graceMs, idleMs: config.idleTimeoutMs },
      rate: { perSecond: config.messagesPerSecond, burst: config.messageBurst },
      broker: services.broker,
      inspect: services.inspect,
      live: services.users,
      notify: (notification) => {
        if (notification.method !== 'message.received')
          services.log.info({ session: this.sessionId, ...notification.params }, notification.method);
        this.#lastSend = this.#server.server
          .notification(notification)
          .catch((error: unknown) => services.log.warn({ err: error }, 'notification not sent'));
        // The transport stored the event synchronously inside that call.
        if (this.#stream) this.#deliveredThrough = this.events.session.last;
      },
    });
    // The user actor ends by itself when its presence expires: close the session with it.
    this.user.actor.subscribe({ complete: () => this.end('timeout') });
    this.#server = services.createMcpServer();
    registerChatTools(this.#server, { user: this.user, feed: this.feed, limits: config, metrics: services.metrics });
    this.#server.server.onclose = () => this.end('disconnected');
    this.#transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => this.sessionId,
      eventStore: this.events,
      onsessioninitialized: () => services.sessions.add(this),
      keepAliveMs: config.keepAliveMs,
      maxRequestBodySize: config.maxBodyBytes,
    });
  }

  async connect(): Promise<void> {
    await this.#server.connect(this.#transport);
  }

  /** A request or stream of this session is open until `closed` is called. */
  linkOpened(): () => void {
    if (!this.#ended) this.user.actor.send({ type: 'link.opened' });
    let open = true;
    return () => {
      if (!open || this.#ended) return;
      open = false;
      this.user.actor.send({ type: 'link.closed' });
    };
  }

  async handle(request: Request, parsedBody?: unknown): Promise<Response> {
    if (request.method === 'GET') return this.#openStream(request);
    return this.#transport.handleRequest(request, parsedBody === undefined ? undefined : { parsedBody });
  }

  /**
   * Opens the session stream. A client opens a new one only when it lost the old one,
   * so the new stream replaces the old instead of being refused as a second stream.
   *
   * A GET without `Last-Event-ID` is served as a resume when events would otherwise
   * be lost:
   * - events stored while no stream was open (a partner found before the client's
   *   first GET arrived) are sent from the last event written to a live stream;
   * - a client that has resumed before (so it sends the ids it saw) and now comes back
   *   without one saw nothing on its last stream: it gets that stream again from where
   *   it started. (SDK 1.32 clients drop their resume token when a resumed stream is
   *   cut before any event arrives: typescript-sdk#2499.)
   */
  async #openStream(request: Request): Promise<Response> {
    if (this.#stream) this.#transport.closeStandaloneSSEStream();
    const asked = request.headers.get('last-event-id');
    let from: number | undefined;
    if (asked === null) {
      from = this.#clientResumes ? this.#streamFrom : this.#deliveredThrough;
      if (from < this.events.session.last) request = withLastEventId(request, from);
    } else if (/^\d{1,15}$/.test(asked)) {
      from = Number(asked);
      this.#clientResumes = true;
    }
    const response = await this.#transport.handleRequest(request);
    if (response.status === 200) {
      if (from !== undefined) this.#streamFrom = from;
      this.#trackStream(request.signal);
    }
    return response;
  }

  #trackStream(signal: AbortSignal): void {
    const stream = {};
    this.#stream = stream;
    this.#deliveredThrough = this.events.session.last;
    signal.addEventListener(
      'abort',
      () => {
        if (this.#stream === stream) this.#stream = null;
      },
      { once: true },
    );
  }

  /** Resolves once every notification so far has been handed to the stream. */
  flushed(): Promise<void> {
    return this.#lastSend;
  }

  /** Ends the session: the user actor reaches `ended`, its partner is told, the transport closes. */
  end(reason: SessionEndReason): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#services.sessions.delete(this);
    if (this.user.actor.getSnapshot().status === 'active') {
      this.user.actor.send({ type: 'session.closed', reason });
      this.user.actor.stop();
    }
    this.feed.release();
    this.#services.log.info({ session: this.sessionId, reason }, 'session ended');
    void this.#transport.close().catch(() => {
      // Closing a transport whose streams are already gone has nothing left to do.
    });
  }
}

function withLastEventId(request: Request, eventId: number): Request {
  const headers = new Headers(request.headers);
  headers.set('last-event-id', String(eventId));
  return new Request(request, { headers });
}
