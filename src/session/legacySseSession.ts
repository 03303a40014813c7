/**
 * A legacy HTTP+SSE session (protocol 2024-11-05): `GET /sse` opens the stream, whose
 * first event names the endpoint, and `POST /messages?sessionId=…` carries requests.
 * It runs on the SDK's `SSEServerTransport`, which writes to Node's response directly.
 *
 * Such a stream cannot be resumed: when it closes, the session's presence has the
 * grace period to see it come back (it cannot), then the session ends and the partner
 * hears `disconnected`. Events still go through the session's ring, so
 * `wait_for_events` works the same on both transports.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { ChatSession, type SessionServices } from './chatSession.js';
import type { ChatNotification } from '../mcp/notifications.js';
import { SESSION_STREAM } from './replay/eventStore.js';

export class LegacySseSession extends ChatSession {
  protected readonly transport: SSEServerTransport;
  readonly #keepAlive: NodeJS.Timeout | undefined;
  #streamOpen = true;

  constructor(services: SessionServices, transport: SSEServerTransport, response: ServerResponse) {
    super(services, transport.sessionId, false);
    this.transport = transport;
    response.once('close', () => (this.#streamOpen = false));
    const { keepAliveMs } = services.config;
    if (keepAliveMs > 0) {
      // The SDK's SSE transport sends no keep-alives of its own; proxies close silent streams.
      this.#keepAlive = setInterval(() => response.write(': keep-alive\n\n'), keepAliveMs);
      this.#keepAlive.unref();
      response.once('close', () => clearInterval(this.#keepAlive));
    }
  }

  /** Opens a session on `response`: writes the SSE headers and the `endpoint` event. */
  static async open(services: SessionServices, response: ServerResponse): Promise<LegacySseSession> {
    const session = new LegacySseSession(services, new SSEServerTransport('/messages', response), response);
    session.opened();
    await session.connect();
    return session;
  }

  /** Whether the SSE stream is still open: without it, requests cannot be answered. */
  get streamOpen(): boolean {
    return this.#streamOpen;
  }

  handlePost(request: IncomingMessage, response: ServerResponse, body: unknown): Promise<void> {
    return this.transport.handlePostMessage(request, response, body);
  }

  protected async deliver(notification: ChatNotification): Promise<void> {
    const message = { ...notification, jsonrpc: '2.0' as const };
    await this.events.storeEvent(SESSION_STREAM, message);
    await this.transport.send(message);
  }

  protected override closeTransport(): Promise<void> {
    clearInterval(this.#keepAlive);
    return this.transport.close();
  }
}
