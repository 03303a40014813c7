/**
 * A legacy HTTP+SSE session (protocol 2024-11-05): `GET /sse` opens the stream, whose
 * first event names the endpoint, and `POST /messages?sessionId=…` carries requests.
 * It runs on src/session/legacySseTransport.ts (the v2 SDK has only the client side).
 *
 * Such a stream cannot be resumed: when it closes, the session ends and its user is
 * detached; unless a call with the user's token comes within the grace period, the
 * user ends and its partner hears `disconnected`. Events are the user's, so
 * `wait_for_events` works the same on both transports.
 */
import type { ServerResponse } from 'node:http';
import { ChatSession, type SessionServices } from './chatSession.js';
import { LegacySseTransport } from './legacySseTransport.js';
import { type ChatMessage, SESSION_STREAM } from './replay/eventStore.js';

export class LegacySseSession extends ChatSession {
  protected readonly transport: LegacySseTransport;
  protected readonly dropsWhenIdle = false;
  readonly #keepAlive: NodeJS.Timeout | undefined;
  #streamOpen = true;

  constructor(services: SessionServices, transport: LegacySseTransport, response: ServerResponse) {
    super(services, transport.sessionId);
    this.transport = transport;
    // The stream cannot come back: the session ends with it, and its user is detached
    // (it has the grace period to call again with its token).
    response.once('close', () => {
      this.#streamOpen = false;
      void this.end('gone');
    });
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
    const session = new LegacySseSession(services, new LegacySseTransport('/messages', response, services.processId), response);
    session.opened();
    await session.connect();
    return session;
  }

  /** Whether the SSE stream is still open: without it, requests cannot be answered. */
  get streamOpen(): boolean {
    return this.#streamOpen;
  }

  /** Takes one POSTed message; answers the status for the POST (202, or 400 for no JSON-RPC message). */
  receive(body: unknown, request: Request): 202 | 400 {
    return this.transport.receive(body, request);
  }

  protected async deliver(message: ChatMessage, id: number): Promise<void> {
    await this.events.storeEvent(SESSION_STREAM, message);
    if (!this.#streamOpen) return;
    await this.transport.send(message);
    this.user?.events.markStreamed(id);
  }

  protected override closeTransport(): Promise<void> {
    clearInterval(this.#keepAlive);
    return this.transport.close();
  }
}
