/**
 * One `McpServer` serves every session. It is connected once, to this mux, which looks
 * like a single transport: the mux hands it each session's messages under request ids
 * of its own (two clients may both send id 1) and routes what the server answers, and
 * the notifications it sends about a request, back to that session's transport under
 * the id the client used. A tool handler finds its session with `sessionOf(requestId)`.
 *
 * Each session keeps its own transport (Streamable HTTP or legacy SSE), which does
 * everything a transport does: streams, resumability, session and protocol headers.
 */
import type { JSONRPCMessage, MessageExtraInfo, RequestId, Transport, TransportSendOptions } from '@modelcontextprotocol/server';
import { isRequestMessage as isRequest, isResponseMessage as isResponse } from './jsonRpc.js';

/** What the HTTP layer knows of a request that the MCP server does not. */
export interface RequestMeta {
  /** The client's address (for limits per client). */
  address: string;
  /** A `wait_for_events` the HTTP layer held before handing it on (src/http/mcp/heldWait.ts). */
  heldWait?: HeldWait;
}

/**
 * A `wait_for_events` held at the HTTP layer: it holds its client's wait allowance for
 * the call until answered, and was `superseded` if a newer wait replaced it meanwhile.
 */
export interface HeldWait {
  superseded: boolean;
}

interface Member<S> {
  readonly session: S;
  readonly transport: Transport;
  /** This session's requests in flight: the client's id → the mux's. */
  readonly inFlight: Map<RequestId, RequestId>;
  /** What the HTTP layer said of requests on their way in, by the client's id. */
  readonly arriving: Map<RequestId, RequestMeta>;
}

export class SessionMux<S> implements Transport {
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;

  #nextId = 1;
  /** Requests in flight, by the mux's id: whose, the id its client sent, what HTTP knew. */
  readonly #requests = new Map<RequestId, { member: Member<S>; clientId: RequestId; meta: RequestMeta | undefined }>();
  readonly #members = new Map<S, Member<S>>();

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.#requests.clear();
    this.onclose?.();
  }

  /** The session whose request the server is handling under `requestId`. */
  sessionOf(requestId: RequestId): S | undefined {
    return this.#requests.get(requestId)?.member.session;
  }

  readonly #sessionless = new WeakMap<Request, RequestMeta>();

  /** Says what the HTTP layer knows of a request served without a session (2026-07-28). */
  annotateSessionless(request: Request, meta: RequestMeta): void {
    this.#sessionless.set(request, meta);
  }

  /** What the HTTP layer said of a request served without a session. */
  metaOfSessionless(request: Request | undefined): RequestMeta | undefined {
    return request && this.#sessionless.get(request);
  }

  /** What the HTTP layer said of the request the server is handling under `requestId`. */
  metaOf(requestId: RequestId): RequestMeta | undefined {
    return this.#requests.get(requestId)?.meta;
  }

  /**
   * Says what the HTTP layer knows of the request `clientId` that `session`'s client is
   * sending now; the server can read it back with `metaOf` while it handles it.
   */
  annotate(session: S, clientId: RequestId, meta: RequestMeta): void {
    this.#members.get(session)?.arriving.set(clientId, meta);
  }

  /**
   * The HTTP exchange that carried request `clientId` of `session` is over. When the
   * client closed it before the answer (`abandoned`), the server hears
   * `notifications/cancelled`, so the call ends at once and takes nothing, as when a
   * client cancels.
   */
  settled(session: S, clientId: RequestId, abandoned: boolean): void {
    const member = this.#members.get(session);
    // A request the transport refused never reached the server: forget what was said of it.
    member?.arriving.delete(clientId);
    if (abandoned && member?.inFlight.has(clientId))
      this.#fromClient(member, {
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: clientId, reason: 'The client closed the connection.' },
      });
  }

  /** Requests in flight across all sessions (0 once every answer has gone out). */
  get inFlight(): number {
    return this.#requests.size;
  }

  /**
   * Starts `transport` with its messages going to the shared server; resolves once it
   * has started (a legacy SSE transport writes its headers and endpoint event then).
   * The returned function detaches the session: answers still owed to it are dropped.
   */
  async attach(session: S, transport: Transport): Promise<() => void> {
    const member: Member<S> = { session, transport, inFlight: new Map(), arriving: new Map() };
    transport.onmessage = (message, extra) => this.#fromClient(member, message, extra);
    transport.onerror = (error) => this.onerror?.(error);
    this.#members.set(session, member);
    await transport.start();
    return () => {
      transport.onmessage = undefined;
      this.#members.delete(session);
      for (const id of member.inFlight.values()) this.#requests.delete(id);
      member.inFlight.clear();
      member.arriving.clear();
    };
  }

  #fromClient(member: Member<S>, message: JSONRPCMessage, extra?: MessageExtraInfo): void {
    if (isRequest(message)) {
      const id = this.#nextId++;
      const meta = member.arriving.get(message.id);
      member.arriving.delete(message.id);
      member.inFlight.set(message.id, id);
      this.#requests.set(id, { member, clientId: message.id, meta });
      this.onmessage?.({ ...message, id }, extra);
      return;
    }
    if ('method' in message && message.method === 'notifications/cancelled') {
      // The client names its own id; the server knows the request by the mux's. A
      // cancelled request is never answered, so it is forgotten here.
      const clientId = (message.params as { requestId?: RequestId } | undefined)?.requestId;
      const id = clientId === undefined ? undefined : member.inFlight.get(clientId);
      if (id === undefined) return;
      this.#forget(id);
      this.onmessage?.({ ...message, params: { ...message.params, requestId: id } }, extra);
      return;
    }
    this.onmessage?.(message, extra);
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (isResponse(message)) {
      const request = this.#requests.get(message.id);
      // No request: its session ended, or the client cancelled it; nobody waits for this.
      if (!request) return;
      this.#forget(message.id);
      return request.member.transport.send({ ...message, id: request.clientId }, options);
    }
    const related = options?.relatedRequestId;
    const request = related === undefined ? undefined : this.#requests.get(related);
    if (request) return request.member.transport.send(message, { ...options, relatedRequestId: request.clientId });
    if (related !== undefined) return; // about a request that is over: nobody listens
    throw new Error(
      `${'method' in message ? message.method : 'A message'} concerns no request, so it has no session to go to: send it through the session.`,
    );
  }

  #forget(id: RequestId): void {
    const request = this.#requests.get(id);
    if (!request) return;
    this.#requests.delete(id);
    request.member.inFlight.delete(request.clientId);
  }
}
