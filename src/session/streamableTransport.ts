/**
 * The Streamable HTTP transport of one session (MCP 2025-03-26 … 2025-11-25): what the
 * SDK's `WebStandardStreamableHTTPServerTransport` does for the options mcp-chat uses,
 * written for the shape of mcp-chat's requests. The SDK's `Server` stays the MCP
 * implementation: this only carries JSON-RPC messages between HTTP and it (the SDK's
 * `Transport` interface), with the same statuses, errors, headers and SSE framing.
 *
 * What it does differently is how an answer is written:
 * - A POSTed request whose answer comes within the turn that handed it to the server
 *   (a `send_message`, an `enter_queue`) is answered with one body: the SSE events as
 *   one string, written by @hono/node-server in one go. The SDK's transport answered
 *   each through a web `ReadableStream`, read back a chunk at a time.
 * - Only an answer that takes longer (a held `wait_for_events`, progress) streams, from
 *   the end of that turn on; the session's GET stream always does.
 * - Events are written as strings, which Node encodes as it writes them.
 *
 * The HTTP layer has read and parsed the body (src/http/jsonRpcBody.ts: JSON, one
 * message, no batch) and found the session by its `Mcp-Session-Id`; the envelope is
 * checked here with the SDK's own `parseJSONRPCMessage`.
 */
import {
  DEFAULT_NEGOTIATED_PROTOCOL_VERSION,
  type EventId,
  type EventStore,
  isInitializeRequest,
  type JSONRPCMessage,
  type MessageExtraInfo,
  parseJSONRPCMessage,
  type RequestId,
  type StreamId,
  SUPPORTED_PROTOCOL_VERSIONS,
  type Transport,
  type TransportSendOptions,
} from '@modelcontextprotocol/server';
import { isRequestMessage as isRequest, isResponseMessage as isResponse, jsonRpcError } from '../mcp/jsonRpc.js';
import { SESSION_STREAM } from './replay/eventStore.js';

export interface StreamableTransportOptions {
  /** The session's id; none for a transport that serves one request without a session. */
  sessionId?: string;
  /** Where every SSE event is stored first, so a client can resume with `Last-Event-ID`. */
  events?: EventStore;
  /** The client's `initialize` arrived: the session exists from now on. */
  onInitialized?: () => void;
  /** How often an open SSE stream says `: keepalive` (the SDK's default is 15 s). */
  keepAliveMs: number;
  /** Answer a request with one JSON body (and no progress) instead of SSE. */
  json: boolean;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;

/** Timers run at most this far apart (Node's limit). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The answers the SDK's transport gives; clients and tests read these messages. */
const REFUSALS = {
  gone: [404, -32001, 'Session not found'],
  notAcceptablePost: [406, -32000, 'Not Acceptable: Client must accept both application/json and text/event-stream'],
  notAcceptableGet: [406, -32000, 'Not Acceptable: Client must accept text/event-stream'],
  notJsonRpc: [400, -32700, 'Parse error: Invalid JSON-RPC message'],
  initializedAgain: [400, -32600, 'Invalid Request: Server already initialized'],
  notInitialized: [400, -32000, 'Bad Request: Server not initialized'],
  noSessionId: [400, -32000, 'Bad Request: Mcp-Session-Id header is required'],
  secondStream: [409, -32000, 'Conflict: Only one SSE stream is allowed per session'],
  streamTaken: [409, -32000, 'Conflict: Stream already has an active connection'],
  unknownEventId: [400, -32000, 'Invalid event ID format'],
  replayFailed: [500, -32000, 'Error replaying events'],
  methodNotAllowed: [405, -32000, 'Method not allowed.'],
} as const satisfies Record<string, readonly [number, number, string]>;

function refusal(status: number, code: number, message: string, headers?: Record<string, string>): Response {
  return Response.json(jsonRpcError(code, message), { status, headers });
}

function refuse(which: keyof typeof REFUSALS, headers?: Record<string, string>): Response {
  const [status, code, message] = REFUSALS[which];
  return refusal(status, code, message, headers);
}

const sseEvent = (message: unknown, eventId: EventId | undefined): string =>
  eventId === undefined
    ? `event: message\ndata: ${JSON.stringify(message)}\n\n`
    : `event: message\nid: ${eventId}\ndata: ${JSON.stringify(message)}\n\n`;

/**
 * One SSE stream: it gathers its events into one string until its response is made,
 * and streams them from then on, if it is still open.
 */
class EventStream {
  /** What was written before the response was made; null once it streams. */
  #held: string[] | null = [];
  #controller: ReadableStreamDefaultController<string> | null = null;
  #keepAlive: NodeJS.Timeout | undefined;
  #ended = false;
  /** The ids a replay wrote, so that an event stored meanwhile is not written twice. */
  replayed: Set<EventId> | undefined;
  /** Called when the stream ends, after `onEnd`: a request's stream makes its response then. */
  whenEnded: (() => void) | undefined;

  constructor(
    private readonly keepAliveMs: number,
    /** Called once when the stream ends, whoever ends it (`cancelled`: its client went away). */
    private readonly onEnd: (cancelled: boolean) => void,
  ) {}

  write(chunk: string): void {
    if (this.#ended) return;
    if (this.#held) this.#held.push(chunk);
    else this.#controller?.enqueue(chunk);
  }

  end(cancelled = false): void {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#keepAlive);
    if (this.#controller) {
      try {
        this.#controller.close();
      } catch {
        // The client cancelled it first.
      }
    }
    this.onEnd(cancelled);
    this.whenEnded?.();
  }

  /**
   * The response's body: one string when the stream has ended (everything is here),
   * else a web stream that starts with what was held and goes on as events come.
   */
  body(): string | ReadableStream<string> {
    const held = this.#held ?? [];
    this.#held = null;
    if (this.#ended) return held.join('');
    return new ReadableStream<string>({
      start: (controller) => {
        this.#controller = controller;
        if (held.length > 0) controller.enqueue(held.join(''));
        if (Number.isFinite(this.keepAliveMs) && this.keepAliveMs >= 1) {
          this.#keepAlive = setInterval(() => this.write(': keepalive\n\n'), Math.min(this.keepAliveMs, MAX_TIMER_MS));
          this.#keepAlive.unref();
        }
      },
      cancel: () => {
        this.#controller = null;
        this.end(true);
      },
    });
  }
}

/** A request in flight: where its events go, or how its one JSON answer is given. */
type Exchange = { streamId: StreamId } | { answer: (response: Response) => void };

export class StreamableTransport implements Transport {
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  readonly sessionId: string | undefined;

  readonly #events: EventStore | undefined;
  readonly #onInitialized: (() => void) | undefined;
  readonly #keepAliveMs: number;
  readonly #json: boolean;
  /** The headers of every SSE answer (nothing writes to a response's headers object). */
  readonly #sseHeaders: Readonly<Record<string, string>>;
  #initialized = false;
  #closed = false;
  #served = false;
  #nextStream = 0;
  /** Open SSE streams: the session's own (`SESSION_STREAM`), and each request's. */
  readonly #streams = new Map<StreamId, EventStream>();
  /** Requests in flight, by their id. */
  readonly #exchanges = new Map<RequestId, Exchange>();

  constructor(options: StreamableTransportOptions) {
    this.sessionId = options.sessionId;
    this.#events = options.events;
    this.#onInitialized = options.onInitialized;
    this.#keepAliveMs = options.keepAliveMs;
    this.#json = options.json;
    this.#sseHeaders = this.sessionId === undefined ? SSE_HEADERS : { ...SSE_HEADERS, 'mcp-session-id': this.sessionId };
  }

  async start(): Promise<void> {}

  /** Requests in flight: answers still owed (0 once each is answered or its client went away). */
  get inFlight(): number {
    return this.#exchanges.size;
  }

  /** Serves one HTTP request of the session: `body` is the parsed JSON of a POST. */
  async handleRequest(request: Request, body?: unknown): Promise<Response> {
    if (this.#closed) return refuse('gone');
    if (this.sessionId === undefined && this.#served)
      throw new Error('A transport without a session serves one request: make one per request.');
    this.#served = true;
    switch (request.method) {
      case 'POST':
        return this.#post(request, body);
      case 'GET':
        return this.#get(request);
      case 'DELETE':
        return this.#delete(request);
      default:
        return refuse('methodNotAllowed', { allow: 'GET, POST, DELETE' });
    }
  }

  async #post(request: Request, body: unknown): Promise<Response> {
    const accept = request.headers.get('accept');
    if (!accept?.includes('application/json') || !accept.includes('text/event-stream')) return refuse('notAcceptablePost');
    const message = envelope(body);
    if (!message) return refuse('notJsonRpc');
    // The SDK's test is a schema: asked only of a message that says it is one.
    const initializing = 'method' in message && message.method === 'initialize' && isInitializeRequest(message);
    if (initializing) {
      if (this.#initialized && this.sessionId !== undefined) return refuse('initializedAgain');
      this.#initialized = true;
      if (this.sessionId !== undefined) this.#onInitialized?.();
    } else {
      const refused = this.#checkSession(request) ?? checkProtocolVersion(request);
      if (refused) return refused;
    }
    if (this.#closed) return refuse('gone');
    if (!isRequest(message)) {
      this.onmessage?.(message, { request });
      return new Response(null, { status: 202 });
    }
    const { id } = message;
    if (this.#json)
      return new Promise<Response>((answer) => {
        this.#exchanges.set(id, { answer });
        this.onmessage?.(message, { request });
      });

    const streamId = `request-${++this.#nextStream}`;
    const stream = this.#open(streamId, id);
    this.#exchanges.set(id, { streamId });
    const version = initializing
      ? (message.params as { protocolVersion: string }).protocolVersion
      : (request.headers.get('mcp-protocol-version') ?? DEFAULT_NEGOTIATED_PROTOCOL_VERSION);
    const resumable = this.#events !== undefined && supportsEmptySseData(version);
    // The priming event: an id the client can resume this request's stream from.
    if (resumable) stream.write(`id: ${await this.#events!.storeEvent(streamId, {} as JSONRPCMessage)}\ndata: \n\n`);
    return new Promise<Response>((respond) => {
      let made = false;
      const make = () => {
        if (made) return;
        made = true;
        clearImmediate(later);
        respond(new Response(stream.body(), { status: 200, headers: this.#sseHeaders }));
      };
      // Answered within this turn: one body. Otherwise the events stream from its end on.
      const later = setImmediate(make);
      stream.whenEnded = make;
      this.onmessage?.(message, {
        request,
        ...(resumable && {
          closeSSEStream: () => this.#streams.get(streamId)?.end(),
          closeStandaloneSSEStream: () => this.closeStandaloneSSEStream(),
        }),
      });
    });
  }

  async #get(request: Request): Promise<Response> {
    if (!request.headers.get('accept')?.includes('text/event-stream')) return refuse('notAcceptableGet');
    const refused = this.#checkSession(request) ?? checkProtocolVersion(request);
    if (refused) return refused;
    const lastEventId = this.#events && request.headers.get('last-event-id');
    if (lastEventId) return this.#resume(lastEventId);
    if (this.#streams.has(SESSION_STREAM)) return refuse('secondStream');
    const stream = this.#open(SESSION_STREAM);
    return new Response(stream.body(), { status: 200, headers: this.#sseHeaders });
  }

  /**
   * A client resumes a stream it lost: what it missed is replayed, and the stream stays
   * open while its request is still in flight (the session's own stays open).
   */
  async #resume(lastEventId: EventId): Promise<Response> {
    const events = this.#events!;
    let streamId: StreamId | undefined;
    const replayed = new Set<EventId>();
    const stream: EventStream = new EventStream(this.#keepAliveMs, () => {
      if (streamId !== undefined && this.#streams.get(streamId) === stream) this.#streams.delete(streamId);
    });
    stream.replayed = replayed;
    try {
      streamId = await events.getStreamIdForEventId?.(lastEventId);
      if (!streamId) return refuse('unknownEventId');
      if (this.#streams.has(streamId)) return refuse('streamTaken');
      await events.replayEventsAfter(lastEventId, {
        send: async (eventId, message) => {
          replayed.add(eventId);
          stream.write(sseEvent(message, eventId));
        },
      });
    } catch (error) {
      this.onerror?.(error as Error);
      return refuse('replayFailed');
    }
    if (this.#closed) return refuse('gone');
    this.#streams.get(streamId)?.end();
    this.#streams.set(streamId, stream);
    // A request's stream whose answer went out has nothing more to carry.
    if (streamId !== SESSION_STREAM && !this.#carries(streamId)) stream.end();
    return new Response(stream.body(), { status: 200, headers: this.#sseHeaders });
  }

  async #delete(request: Request): Promise<Response> {
    const refused = this.#checkSession(request) ?? checkProtocolVersion(request);
    if (refused) return refused;
    try {
      return new Response(null, { status: 200 });
    } finally {
      await this.close();
    }
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const response = isResponse(message);
    const requestId = response ? message.id : options?.relatedRequestId;
    if (requestId === undefined) {
      if (response) throw new Error('Cannot send a response on a standalone SSE stream unless resuming a previous client request');
      return this.#emit(SESSION_STREAM, message);
    }
    const exchange = this.#exchanges.get(requestId);
    // Its client went away, and the call was cancelled: nobody waits for this.
    if (!exchange) return;
    if ('answer' in exchange) {
      // One JSON body carries the answer alone (notifications about it are not sent).
      if (!response) return;
      this.#exchanges.delete(requestId);
      exchange.answer(
        Response.json(message, { status: 200, headers: this.sessionId === undefined ? {} : { 'mcp-session-id': this.sessionId } }),
      );
      return;
    }
    await this.#emit(exchange.streamId, message);
    if (!response) return;
    this.#exchanges.delete(requestId);
    this.#streams.get(exchange.streamId)?.end();
  }

  /** Stores `message` as the next event of `streamId` and writes it there if it is open. */
  async #emit(streamId: StreamId, message: JSONRPCMessage): Promise<void> {
    const eventId = this.#events ? await this.#events.storeEvent(streamId, message) : undefined;
    const stream = this.#streams.get(streamId);
    if (stream && !(eventId !== undefined && stream.replayed?.has(eventId))) stream.write(sseEvent(message, eventId));
  }

  /** Ends the session's GET stream: the client opens a new one (and resumes). */
  closeStandaloneSSEStream(): void {
    this.#streams.get(SESSION_STREAM)?.end();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const stream of [...this.#streams.values()]) stream.end();
    this.#streams.clear();
    this.#exchanges.clear();
    this.onclose?.();
  }

  /**
   * Opens `streamId`; a request's own (`requestId`) ends its exchange if its client goes
   * away: the call is then cancelled (src/mcp/sessionMux.ts, `settled`), so no answer comes.
   */
  #open(streamId: StreamId, requestId?: RequestId): EventStream {
    const stream: EventStream = new EventStream(this.#keepAliveMs, (cancelled) => {
      if (this.#streams.get(streamId) === stream) this.#streams.delete(streamId);
      if (cancelled && requestId !== undefined) this.#exchanges.delete(requestId);
    });
    this.#streams.set(streamId, stream);
    return stream;
  }

  /** Whether a request still in flight writes to `streamId`. */
  #carries(streamId: StreamId): boolean {
    for (const exchange of this.#exchanges.values()) if ('streamId' in exchange && exchange.streamId === streamId) return true;
    return false;
  }

  #checkSession(request: Request): Response | undefined {
    if (this.sessionId === undefined) return undefined;
    if (!this.#initialized) return refuse('notInitialized');
    const named = request.headers.get('mcp-session-id');
    if (!named) return refuse('noSessionId');
    if (named !== this.sessionId) return refuse('gone');
    return undefined;
  }
}

/** `body` as a JSON-RPC message, checked by the SDK's schema; undefined if it is none. */
function envelope(body: unknown): JSONRPCMessage | undefined {
  try {
    return parseJSONRPCMessage(body);
  } catch {
    return undefined;
  }
}

/** A version in `MCP-Protocol-Version` must be one this server speaks (none: the one negotiated). */
function checkProtocolVersion(request: Request): Response | undefined {
  const version = request.headers.get('mcp-protocol-version');
  if (version === null || SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return undefined;
  return refusal(
    400,
    -32000,
    `Bad Request: Unsupported protocol version: ${version} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`,
  );
}

/**
 * Whether an SSE event may have empty data (a priming event): from 2025-11-25 on, for
 * versions this server speaks (an `initialize` may name any version).
 */
const supportsEmptySseData = (version: string): boolean => SUPPORTED_PROTOCOL_VERSIONS.includes(version) && version >= '2025-11-25';
