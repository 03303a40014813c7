/**
 * One Streamable HTTP session: the SDK's web-standard transport, an MCP server with
 * the chat tools, the session's event store, and the user actor behind them.
 */
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { SessionEndReason } from '../machines/user.js';
import { startChatUser, type ChatUser } from './chatUser.js';
import type { ChatServices } from './chatServices.js';
import { SessionEventStore } from './sessionEventStore.js';
import { registerChatTools } from './tools.js';

export class StreamableSession {
  readonly sessionId = randomUUID();
  readonly user: ChatUser;
  readonly events: SessionEventStore;
  readonly #transport: WebStandardStreamableHTTPServerTransport;
  readonly #server: McpServer;
  readonly #services: ChatServices;
  /** Identifies the GET stream that is open now, if one is. */
  #stream: object | null = null;
  /** The last session event written while a GET stream was open. */
  #deliveredThrough = 0;
  #ended = false;

  constructor(services: ChatServices) {
    this.#services = services;
    this.events = new SessionEventStore(services.config.eventBufferSize);
    this.user = startChatUser({
      userId: randomUUID(),
      broker: services.broker,
      inspect: services.inspect,
      live: services.users,
      notify: (notification) => {
        this.#server.server.notification(notification).catch((error: unknown) => services.log.warn({ err: error }, 'notification not sent'));
        // The transport stores the event synchronously inside that call.
        if (this.#stream) this.#deliveredThrough = this.events.session.last;
      },
    });
    this.#server = services.createMcpServer();
    registerChatTools(this.#server, this.user, services.config);
    this.#server.server.onclose = () => this.end('disconnected');
    this.#transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => this.sessionId,
      eventStore: this.events,
      onsessioninitialized: () => services.sessions.add(this),
      keepAliveMs: services.config.keepAliveMs,
    });
  }

  async connect(): Promise<void> {
    await this.#server.connect(this.#transport);
  }

  async handle(request: Request, parsedBody?: unknown): Promise<Response> {
    const isStreamOpen = request.method === 'GET';
    if (isStreamOpen) request = this.#resumeUndelivered(request);
    const response = await this.#transport.handleRequest(request, parsedBody === undefined ? undefined : { parsedBody });
    if (isStreamOpen && response.status === 200) this.#trackStream(request.signal);
    return response;
  }

  /**
   * A GET without `Last-Event-ID` while events wait undelivered (stored while no stream
   * was open, e.g. a partner was found before this client's first GET arrived) is
   * served as a resume from the last delivered event, so nothing waits forever.
   */
  #resumeUndelivered(request: Request): Request {
    if (request.headers.has('last-event-id') || this.events.session.last <= this.#deliveredThrough) return request;
    const headers = new Headers(request.headers);
    headers.set('last-event-id', String(this.#deliveredThrough));
    return new Request(request, { headers });
  }

  #trackStream(signal: AbortSignal): void {
    const stream = {};
    this.#stream = stream;
    this.#deliveredThrough = this.events.session.last;
    signal.addEventListener('abort', () => {
      if (this.#stream === stream) this.#stream = null;
    }, { once: true });
  }

  /** Ends the session: the user actor reaches `ended`, its partner is told, the transport closes. */
  end(reason: SessionEndReason): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#services.sessions.delete(this);
    this.user.actor.send({ type: 'session.closed', reason });
    this.user.actor.stop();
    void this.#transport.close().catch(() => {
      // Closing a transport whose streams are already gone has nothing left to do.
    });
  }
}
