/**
 * The HTTP face of mcp-chat: a Hono app with the MCP endpoint (`/mcp`), the legacy
 * HTTP+SSE transport (`/sse`, `/messages`), the chat page for people (`/`), `/healthz`
 * and `/metrics`. It checks who may call (src/http/guards.ts), reads bodies
 * (src/http/jsonRpcBody.ts), sends a request whose session or user lives on another
 * server process on to it (src/http/routing.ts), routes each request to its session and
 * opens sessions; what a request means for the chat is decided by the session's user
 * actor, never here.
 */
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { UserState } from '../../machines/user.js';
import type { ModerationStore } from '../chat/moderation.js';
import { secretHint, type ProcessDirectory } from '../chat/processDirectory.js';
import { chatWindow } from '../mcp/chatWindow.js';
import type { ChatMetrics } from '../ops/metrics.js';
import type { ChatSession, SessionServices } from '../session/chatSession.js';
import { isInitializeRequest, isLegacyRequest, type McpHttpHandler, type RequestId } from '@modelcontextprotocol/server';
import { LegacySseSession } from '../session/legacySseSession.js';
import type { SessionRegistry } from '../session/sessionRegistry.js';
import { StreamableSession } from '../session/streamableSession.js';
import type { ListenBus } from '../mcp/listenBus.js';
import { allowanceSentence, type AddressAllowance, type Holding } from '../session/addressAllowance.js';
import { adminRoutes } from './admin.js';
import { addressResolver } from './clientAddress.js';
import { claimOf, trustForwarded } from './forwardTrust.js';
import { originGuard, refuseHttp, tokenGuard } from './guards.js';
import { checkListen, isListen } from './listenGate.js';
import { readJsonRpcBody, type BodyResult } from './jsonRpcBody.js';
import { clientAddress, isRequest, requestIdOf, withRequestId } from './requestInfo.js';
import { legacyRequestOwner, mcpRequestOwner, requestRouter } from './routing.js';

type Env = { Bindings: Partial<HttpBindings> };
export type HttpApp = Hono<Env>;
/** A request's client address: the resolved peer, or what a believed forwarding claim says. */
type ClientOf = (c: Context<Env>) => string;

/** What the app serves from: what sessions share, the open sessions, the metrics. */
export interface AppServices extends SessionServices {
  readonly sessions: SessionRegistry;
  readonly metrics: ChatMetrics;
  /** Serves requests of the stateless 2026-07-28 revision. */
  readonly modern: McpHttpHandler;
  /** The server processes sharing the chat (this one alone by default): where a request that is another's goes. */
  readonly processDirectory: ProcessDirectory;
  /** The 2026-07-28 push bus, indexed by resource URI: a listen is served in its scope. */
  readonly listens: ListenBus;
  /** What each client address holds at once, of sessions, streams, held waits and listens. */
  readonly allowance: AddressAllowance;
  /** Users' reports and operators' bans, for the operators' routes (src/http/admin.ts). */
  readonly moderation: ModerationStore;
}

/** The counts /healthz reports. */
export interface LiveCounts {
  usersByState(): Record<Exclude<UserState, 'ended'>, number>;
  users(): number;
  rooms(): number;
  waiting(): number;
  /** False while the broker cannot reach what it shares with other processes (Redis). */
  reachable(): boolean;
  /** Whether this process holds the user an events key names. */
  hasEvents(eventsKey: string): boolean;
}

export interface AppControl {
  readonly app: HttpApp;
  /** Sessions being initialized: they count against the cap before they register. */
  readonly opening: number;
  /** From now on no session opens (503), as when the server is closing. */
  stopTakingSessions(): void;
  /** The broker failed: /healthz says so, and no session opens. */
  fail(): void;
}

export function createHttpApp(services: AppServices, live: LiveCounts): AppControl {
  const { config, metrics, sessions } = services;
  const startedAt = Date.now();
  let closing = false;
  let failed = false;
  let opening = 0;
  const app = new Hono<Env>();
  const addressOf = addressResolver(config.trustProxy);
  // A request another process forwarded (signed) comes from the client it names.
  const from: ClientOf = (c) => claimOf(c.req.raw)?.client ?? clientAddress(c, addressOf);
  const router = requestRouter(services.processDirectory, metrics, services.log, from);

  /** Takes one `kind` of the client's allowance, or answers 429 when it holds all of it. */
  const take = (c: Context<Env>, kind: Holding, id: RequestId | null = null): (() => void) | Response =>
    services.allowance.take(from(c), kind) ??
    refuseHttp(c, metrics, `address_${kind}`, 429, -32000, allowanceSentence(kind, config.maxPerAddress), { 'Retry-After': '60' }, id);

  app.use('*', oneWritePerTick, ...originGuard(config, metrics), trustForwarded(() => services.processDirectory.secret));
  // /healthz stays open for liveness probes; everything else needs the token when one is set.
  for (const path of ['/mcp', '/sse', '/messages', '/metrics']) app.use(path, tokenGuard(config, metrics));

  /** Why no request may be served without a session of its own now, if one may not. */
  const refuseWithoutSession = (c: Context<Env>, id: RequestId | null = null): Response | undefined => {
    if (closing) return refuseHttp(c, metrics, 'shutting_down', 503, -32000, 'The server is shutting down and takes no new sessions or calls without one.', {}, id);
    if (failed) return refuseHttp(c, metrics, 'server_failed', 503, -32000, 'The server cannot pair anyone right now (its queue failed); try again later.', {}, id);
    return undefined;
  };

  /** Why no new session may open now, if one may not. */
  const refuseNewSession = (c: Context<Env>, id: RequestId | null = null): Response | undefined => {
    const refused = refuseWithoutSession(c, id);
    if (refused) return refused;
    if (sessions.size + opening >= config.maxSessions)
      return refuseHttp(c, metrics, 'server_full', 503, -32000, `The server is full (${config.maxSessions} sessions); try again later.`, { 'Retry-After': '5' }, id);
    return undefined;
  };

  app.all('/mcp', async (c) => {
    let sessionId = c.req.header('mcp-session-id');
    let body: unknown;
    let bytes: Uint8Array | undefined;
    if (c.req.method === 'POST') {
      const read = await readJsonRpcBody(c, config, metrics);
      if (!read.ok) return read.response;
      ({ body, bytes } = read);
    }
    const id = requestIdOf(body);
    const owner = ROUTED_METHODS.has(c.req.method) ? mcpRequestOwner(sessionId, body) : undefined;
    const routed = await router.route(c, owner, { body, bytes });
    if (routed) return routed;
    // A call for a user of this process that came in another process's session: served
    // here as a call without a session (src/http/routing.ts).
    if (owner?.withoutSession) sessionId = undefined;
    if (sessionId !== undefined) {
      const session = sessions.get(sessionId);
      if (!(session instanceof StreamableSession))
        return refuseHttp(c, metrics, 'session_not_found', 404, -32001, 'Session not found: it ended or never existed. Initialize a new session.', {}, id);
      const stream = c.req.method === 'GET' ? holdStream(c, session) : undefined;
      if (stream instanceof Response) return stream;
      try {
        return withRequestId(await serveInSession(c, services, session, body, from, () => session.handle(c.req.raw, body)), id);
      } finally {
        if (stream && !c.env?.outgoing) stream();
      }
    }
    if (c.req.method !== 'POST')
      return refuseHttp(c, metrics, 'no_session', 400, -32000, 'Bad Request: Mcp-Session-Id header is required; initialize with a POST first.');
    const refused = isInitializeRequest(body) ? refuseNewSession(c, id) : refuseWithoutSession(c, id);
    if (refused) return refused;
    if (!(await isLegacyRequest(c.req.raw, body))) {
      // The 2026-07-28 revision: no session; the call acts for its user_token.
      services.mcp.annotateSessionless(c.req.raw, { address: from(c) });
      if (isListen(body)) return withRequestId(await serveListen(c, body, id), id);
      return withRequestId(await services.modern.fetch(c.req.raw, { parsedBody: body }), id);
    }
    if (!isInitializeRequest(body)) return withRequestId(await serveStateless(c, services, body, from), id);
    const held = take(c, 'sessions', id);
    if (held instanceof Response) return held;
    opening += 1;
    try {
      return withRequestId(await openSession(c, services, body, from, held), id);
    } finally {
      opening -= 1;
    }
  });

  /** Sessions with a GET stream open, and the stream each holds of its client's allowance. */
  const streaming = new WeakMap<ChatSession, { open: number; release: () => void }>();

  /**
   * A session's GET stream holds one of its client's streams until it closes. A GET that
   * replaces the session's open stream (a client that lost it) takes no second one.
   */
  const holdStream = (c: Context<Env>, session: ChatSession): (() => void) | Response => {
    let held = streaming.get(session);
    if (!held) {
      const release = take(c, 'streams');
      if (release instanceof Response) return release;
      streaming.set(session, (held = { open: 0, release }));
    }
    held.open += 1;
    const entry = held;
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      if (--entry.open > 0) return;
      streaming.delete(session);
      entry.release();
    };
    c.env?.outgoing?.once('close', close);
    return close;
  };

  /**
   * A 2026-07-28 `subscriptions/listen`: its URIs checked, one of the client's listens
   * taken while its stream is open, and served in the push bus's scope for those URIs.
   */
  const serveListen = async (c: Context<Env>, body: unknown, id: RequestId | null): Promise<Response> => {
    const checked = checkListen(body, config.maxListenUris, live.hasEvents);
    if ('refusal' in checked) return refuseHttp(c, metrics, 'bad_listen', 400, -32602, checked.refusal, {}, id);
    const release = take(c, 'listens', id);
    if (release instanceof Response) return release;
    let subscribed = false;
    const scope = { uris: checked.uris, subscribed: () => void (subscribed = true), unsubscribed: release };
    try {
      return await services.listens.serveListen(scope, () => services.modern.fetch(c.req.raw, { parsedBody: body }));
    } finally {
      // A listen refused or ended at once never subscribed: it holds nothing.
      if (!subscribed) release();
    }
  };

  // The legacy HTTP+SSE transport (protocol 2024-11-05) needs Node's own request and response.
  app.get('/sse', async (c) => {
    const { outgoing } = c.env;
    if (!outgoing) return c.text('The legacy SSE transport needs the Node.js server.', 501);
    const refused = refuseNewSession(c);
    if (refused) return refused;
    // A legacy session is its stream: it holds one of each while it is open.
    const session = take(c, 'sessions');
    if (session instanceof Response) return session;
    const stream = take(c, 'streams');
    if (stream instanceof Response) {
      session();
      return stream;
    }
    const legacy = await LegacySseSession.open(services, outgoing).catch((error: unknown) => {
      session();
      stream();
      throw error;
    });
    legacy.holdUntilEnd(session);
    legacy.holdUntilEnd(stream);
    outgoing.once('close', legacy.openLink());
    services.log.info({ session: secretHint(legacy.sessionId), transport: 'sse' }, 'session opened');
    return RESPONSE_ALREADY_SENT;
  });

  app.post('/messages', async (c) => {
    const sessionId = c.req.query('sessionId');
    const owner = legacyRequestOwner(sessionId);
    // Another process's session: its body goes there. This process's: the body is read
    // only once the session is known to be open.
    let read: BodyResult | undefined;
    if (owner && owner.processId !== services.processDirectory.self) {
      read = await readJsonRpcBody(c, config, metrics);
      if (!read.ok) return read.response;
      const routed = await router.route(c, owner, read);
      if (routed) return routed;
    }
    const session = sessions.get(sessionId ?? '');
    // A legacy stream that closed cannot come back, and answers go out on it: such a
    // session is as good as ended, and a request must not keep it present.
    if (!(session instanceof LegacySseSession) || !session.streamOpen)
      return refuseHttp(c, metrics, 'session_not_found', 404, -32001, 'Session not found: it ended, its SSE stream closed, or it never existed. Open a new one with GET /sse.');
    read ??= await readJsonRpcBody(c, config, metrics);
    if (!read.ok) return read.response;
    const { body } = read;
    return serveInSession(c, services, session, body, from, async () =>
      session.receive(body, c.req.raw) === 202
        ? c.text('Accepted', 202)
        : refuseHttp(c, metrics, 'parse_error', 400, -32600, 'Invalid Request: the body is not a JSON-RPC message.', {}, requestIdOf(body)),
    );
  });

  // The chat window as a page: it speaks MCP to /mcp on this origin (and asks for the
  // server's token itself when one is set, so the page needs none).
  app.get('/', (c) => {
    const page = chatWindow();
    c.header('Content-Security-Policy', page.pageCsp);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cache-Control', 'no-cache');
    return c.html(page.pageHtml);
  });

  app.get('/healthz', (c) => {
    // A broker that shares the chat (Redis) may be cut off for a while: pairs here chat
    // on, but a balancer should send new users elsewhere.
    const cutOff = !live.reachable();
    return c.json(
      {
        status: failed ? 'failed' : closing ? 'stopping' : cutOff ? 'cut off' : 'ok',
        uptime_s: Math.round((Date.now() - startedAt) / 1000),
        sessions: sessions.size,
        users: live.usersByState(),
        actors: { users: live.users(), rooms: live.rooms() },
        queue: live.waiting(),
      },
      failed || cutOff ? 503 : 200,
    );
  });

  app.get('/metrics', async (c) => {
    c.header('Content-Type', metrics.registry.contentType);
    return c.body(await metrics.registry.metrics());
  });

  // The operators' routes: 404 without --admin-token, their own bearer token with it.
  app.route('/admin', adminRoutes(services));


  return {
    app,
    get opening() {
      return opening;
    },
    stopTakingSessions: () => void (closing = true),
    fail: () => void (failed = true),
  };
}

/** The methods a request to /mcp that belongs to another process may come with (no preflights). */
const ROUTED_METHODS = new Set(['GET', 'POST', 'DELETE']);

/**
 * Holds a response's socket writes until the end of the tick that produced it, so the
 * status line, headers, SSE priming event, result and end of a tool call leave in one
 * write instead of three or four (@hono/node-server flushes headers on their own, and
 * Node writes each chunk apart). A stream whose events come later has its headers sent
 * when the tick ends. The socket is corked, not the response: Node 22 buffers a corked
 * response's chunks apart from the socket and writes its end before them.
 */
const oneWritePerTick: MiddlewareHandler<Env> = async (c, next) => {
  await next();
  // The response is written in the microtasks that follow; the tick ends after them.
  const socket = c.env?.outgoing?.writableEnded === false ? c.env.outgoing.socket : null;
  if (!socket || socket.destroyed) return;
  socket.cork();
  process.nextTick(() => socket.uncork());
};

/**
 * Serves a request in a session. While its response is open, the session (and so its
 * user) is present. The MCP server learns the client's address for the request; and
 * when the client closes the response before the answer, the call is abandoned: it ends
 * at once and takes nothing (clients that give up on a held call often send no
 * `notifications/cancelled`).
 */
async function serveInSession(
  c: Context<Env>,
  services: AppServices,
  session: ChatSession,
  body: unknown,
  clientOf: ClientOf,
  serve: () => Promise<Response>,
): Promise<Response> {
  const closed = session.openLink();
  const id = isRequest(body) ? requestIdOf(body) : null;
  if (id !== null) services.mcp.annotate(session, id, { address: clientOf(c) });
  const outgoing = c.env?.outgoing;
  if (outgoing)
    outgoing.once('close', () => {
      closed();
      if (id !== null) services.mcp.settled(session, id, !outgoing.writableFinished);
    });
  try {
    return await serve();
  } finally {
    if (!outgoing) closed();
  }
}

/** Opens a session with an `initialize`; it keeps `held` (one of its client's sessions) until it ends. */
async function openSession(c: Context<Env>, services: AppServices, body: unknown, clientOf: ClientOf, held: () => void): Promise<Response> {
  const session = new StreamableSession(services);
  session.holdUntilEnd(held);
  await session.connect();
  const response = await serveInSession(c, services, session, body, clientOf, () => session.handle(c.req.raw, body));
  if (session.listed) services.log.info({ session: secretHint(session.sessionId) }, 'session opened');
  else void session.end('dropped');
  return response;
}

/**
 * Serves a POST that came without `Mcp-Session-Id` and is not `initialize` on its own,
 * as the hosts that keep no session send them: the call acts for its `user_token`.
 */
async function serveStateless(c: Context<Env>, services: AppServices, body: unknown, clientOf: ClientOf): Promise<Response> {
  const session = StreamableSession.stateless(services);
  await session.connect();
  const outgoing = c.env?.outgoing;
  const response = await serveInSession(c, services, session, body, clientOf, () => session.handle(c.req.raw, body));
  // Its response may be a stream (progress, then the answer): the session lives as long.
  if (outgoing) outgoing.once('close', () => void session.end('dropped'));
  else void session.end('dropped');
  return response;
}
