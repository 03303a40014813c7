/**
 * A Streamable HTTP session: its transport (src/session/streamableTransport.ts), with the session's event
 * store, so every notification carries an SSE id (its user's log id) and can be
 * replayed. `StreamableSession.stateless()` serves one request that came without a
 * session (as ChatGPT and per-call clients send them): no id, no stream, gone after it.
 */
import { randomUUID } from 'node:crypto';
import { inProcess } from '../chat/processDirectory.js';
import { asksForProgress, jsonRpcError } from '../mcp/jsonRpc.js';
import { ChatSession, type SessionServices } from './chatSession.js';
import { type ChatMessage, isBefore, positionId, type SessionPosition } from './replay/eventStore.js';
import { StreamableTransport } from './streamableTransport.js';

export class StreamableSession extends ChatSession {
  protected readonly transport: StreamableTransport;
  /** Identifies the GET stream that is open now, if one is. */
  #stream: object | null = null;
  /** How far the session stream had got when it last closed: what the client has. */
  #delivered: SessionPosition = { chat: 0, side: 0 };
  /** Where the open (or last) session stream started. */
  #streamFrom: SessionPosition = { chat: 0, side: 0 };
  /**
   * The furthest `Last-Event-ID` the client has resumed from (it has everything up to
   * there); null while it has never resumed.
   */
  #clientHas: SessionPosition | null = null;

  protected readonly dropsWhenIdle: boolean;

  constructor(services: SessionServices, stateful = true, json = false) {
    // A session id names its process, so any process can send the session's requests on to it.
    super(services, stateful ? inProcess(services.processId, randomUUID()) : `stateless-${randomUUID()}`);
    this.dropsWhenIdle = stateful;
    this.transport = new StreamableTransport({
      sessionId: stateful ? this.sessionId : undefined,
      events: stateful ? this.events : undefined,
      onInitialized: () => this.opened(),
      keepAliveMs: services.config.keepAliveMs,
      json,
    });
    // DELETE from the client closes the transport: the session ends with it.
    this.transport.onclose = () => void this.end('gone');
  }

  /**
   * A session for one request that came without `Mcp-Session-Id`; end it after. Its
   * answer is one JSON body, unless the call asked for progress (then an SSE stream).
   */
  static stateless(services: SessionServices, body: unknown): StreamableSession {
    return new StreamableSession(services, false, !asksForProgress(body));
  }

  protected async deliver(message: ChatMessage, id: number): Promise<void> {
    const streaming = this.#stream !== null;
    await this.transport.send(message);
    if (streaming) this.user?.events.markStreamed(id);
  }

  /**
   * A user's events from now on, from its present: a stream opened later starts there.
   * After another user's, the open stream closes too, since its ids were the other
   * log's; the client opens a new one.
   */
  protected override rebound(switching: boolean): void {
    this.#delivered = this.events.newest;
    this.#streamFrom = this.events.newest;
    this.#clientHas = null;
    if (switching && this.#stream) this.transport.closeStandaloneSSEStream();
  }

  /** Calls of this session whose answers are still owed. */
  get callsInFlight(): number {
    return this.transport.inFlight;
  }

  async handle(request: Request, parsedBody?: unknown): Promise<Response> {
    if (request.method === 'GET') return this.#openStream(request);
    return this.transport.handleRequest(request, parsedBody);
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
   *
   * A client resumes from further on each time, so a GET that asks from before where it
   * has already resumed is one it gave up on (aborted in flight) that reached us late,
   * after its retry: nobody reads the answer. It is refused, as a second stream would
   * be, so it neither closes the stream the client reads now nor moves where that
   * stream is taken to have started.
   */
  async #openStream(request: Request): Promise<Response> {
    const asked = request.headers.get('last-event-id');
    // A resume of a single request's stream (or an id that is no id of ours) is the
    // transport's business alone: it must not disturb the session stream.
    const from = asked === null ? this.#freshStreamStart() : this.events.sessionPosition(asked);
    if (from === undefined) return this.transport.handleRequest(request);
    if (asked !== null) {
      if (this.#clientHas && isBefore(from, this.#clientHas)) return staleStreamRefused();
      this.#clientHas = from;
    }
    if (asked === null && this.events.isBehind(from)) request = withLastEventId(request, positionId(from));
    if (this.#stream) this.transport.closeStandaloneSSEStream();
    const response = await this.transport.handleRequest(request);
    if (response.status === 200) {
      this.#streamFrom = from;
      this.#trackStream(request.signal);
    }
    return response;
  }

  /** Where a GET without `Last-Event-ID` starts, so that nothing is lost (see above). */
  #freshStreamStart(): SessionPosition {
    // While a stream is open, the transport writes each event to it as it stores it.
    if (!this.#clientHas) return this.#stream ? this.events.newest : this.#delivered;
    return isBefore(this.#streamFrom, this.#clientHas) ? this.#clientHas : this.#streamFrom;
  }

  #trackStream(signal: AbortSignal): void {
    const stream = {};
    this.#stream = stream;
    // The stream opened with a replay of everything the log holds after its start.
    this.user?.events.markStreamed(this.events.newest.chat);
    signal.addEventListener(
      'abort',
      () => {
        if (this.#stream !== stream) return;
        this.#delivered = this.events.newest;
        this.#stream = null;
      },
      { once: true },
    );
  }
}

function staleStreamRefused(): Response {
  const message =
    'Conflict: this GET resumes from before where this session has already resumed (a stale retry?). Resume with the newest Last-Event-ID you received.';
  return Response.json(jsonRpcError(-32000, message), { status: 409 });
}

function withLastEventId(request: Request, eventId: string): Request {
  const headers = new Headers(request.headers);
  headers.set('last-event-id', eventId);
  return new Request(request, { headers });
}
