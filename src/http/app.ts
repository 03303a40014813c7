/**
 * The HTTP face of mcp-chat: a Hono app with the MCP endpoint (`/mcp`), the legacy
 * HTTP+SSE transport (`/sse`, `/messages`), `/healthz` and `/metrics`. It checks who
 * may call (src/http/guards.ts), reads bodies (src/http/jsonRpcBody.ts), routes each
 * request to its session and opens sessions; what a request means for the chat is
 * decided by the session's user actor, never here.
 */
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { UserState } from '../../machines/user.js';
import type { ChatMetrics } from '../ops/metrics.js';
import type { ChatSession, SessionServices } from '../session/chatSession.js';
import { LegacySseSession } from '../session/legacySseSession.js';
import type { SessionRegistry } from '../session/sessionRegistry.js';
import { StreamableSession } from '../session/streamableSession.js';
import { originGuard, refuseHttp, tokenGuard } from './guards.js';
import { readJsonRpcBody } from './jsonRpcBody.js';

type Env = { Bindings: Partial<HttpBindings> };
export type HttpApp = Hono<Env>;

/** What the app serves from: what sessions share, the open sessions, the metrics. */
export interface AppServices extends SessionServices {
  readonly sessions: SessionRegistry;
  readonly metrics: ChatMetrics;
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

export function createHttpApp(
  services: AppServices,
  { usersByState }: { usersByState: () => Record<Exclude<UserState, 'ended'>, number> },
): AppControl {
  const { config, metrics, sessions, broker } = services;
  const startedAt = Date.now();
  let closing = false;
  let failed = false;
  let opening = 0;
  const app = new Hono<Env>();

  app.use('*', oneWritePerTick, ...originGuard(config, metrics));
  // /healthz stays open for liveness probes; everything else needs the token when one is set.
  for (const path of ['/mcp', '/sse', '/messages', '/metrics']) app.use(path, tokenGuard(config, metrics));

  /** Why no new session may open now, if one may not. */
  const refuseNewSession = (c: Context<Env>): Response | undefined => {
    if (closing) return refuseHttp(c, metrics, 'shutting_down', 503, -32000, 'The server is shutting down and takes no new sessions.');
    if (failed) return refuseHttp(c, metrics, 'server_failed', 503, -32000, 'The server cannot pair anyone right now (its queue failed); try again later.');
    if (sessions.size + opening >= config.maxSessions)
      return refuseHttp(c, metrics, 'server_full', 503, -32000, `The server is full (${config.maxSessions} sessions); try again later.`, { 'Retry-After': '5' });
    return undefined;
  };

  app.all('/mcp', async (c) => {
    const sessionId = c.req.header('mcp-session-id');
    let body: unknown;
    if (c.req.method === 'POST') {
      const read = await readJsonRpcBody(c, config, metrics);
      if (!read.ok) return read.response;
      body = read.body;
    }
    if (sessionId !== undefined) {
      const session = sessions.get(sessionId);
      if (!(session instanceof StreamableSession))
        return refuseHttp(c, metrics, 'session_not_found', 404, -32001, 'Session not found: it ended or never existed. Initialize a new session.');
      return serveInSession(c, session, () => session.handle(c.req.raw, body));
    }
    if (c.req.method !== 'POST')
      return refuseHttp(c, metrics, 'no_session', 400, -32000, 'Bad Request: Mcp-Session-Id header is required; initialize with a POST first.');
    if (!isInitializeRequest(body))
      return refuseHttp(c, metrics, 'no_session', 400, -32000, 'Bad Request: no Mcp-Session-Id header, and the request is not initialize. Initialize a session first.');
    const refused = refuseNewSession(c);
    if (refused) return refused;
    opening += 1;
    try {
      return await openSession(c, services, body);
    } finally {
      opening -= 1;
    }
  });

  // The legacy HTTP+SSE transport (protocol 2024-11-05) needs Node's own request and response.
  app.get('/sse', async (c) => {
    const { outgoing } = c.env;
    if (!outgoing) return c.text('The legacy SSE transport needs the Node.js server.', 501);
    const refused = refuseNewSession(c);
    if (refused) return refused;
    const session = await LegacySseSession.open(services, outgoing);
    outgoing.once('close', session.openLink());
    services.log.info({ session: session.sessionId, transport: 'sse' }, 'session opened');
    return RESPONSE_ALREADY_SENT;
  });

  app.post('/messages', async (c) => {
    const { incoming, outgoing } = c.env;
    if (!incoming || !outgoing) return c.text('The legacy SSE transport needs the Node.js server.', 501);
    const session = sessions.get(c.req.query('sessionId') ?? '');
    // A legacy stream that closed cannot come back, and answers go out on it: such a
    // session is as good as ended, and a request must not keep it present.
    if (!(session instanceof LegacySseSession) || !session.streamOpen)
      return refuseHttp(c, metrics, 'session_not_found', 404, -32001, 'Session not found: it ended, its SSE stream closed, or it never existed. Open a new one with GET /sse.');
    const read = await readJsonRpcBody(c, config, metrics);
    if (!read.ok) return read.response;
    await serveInSession(c, session, async () => {
      await session.handlePost(incoming, outgoing, read.body);
      return RESPONSE_ALREADY_SENT;
    });
    return RESPONSE_ALREADY_SENT;
  });

  app.get('/healthz', (c) => {
    const { waiting, rooms } = broker.stats();
    return c.json({
      status: failed ? 'failed' : closing ? 'stopping' : 'ok',
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
      sessions: sessions.size,
      users: usersByState(),
      actors: { users: services.users.size, rooms },
      queue: waiting,
    }, failed ? 503 : 200);
  });

  app.get('/metrics', async (c) => {
    c.header('Content-Type', metrics.registry.contentType);
    return c.body(await metrics.registry.metrics());
  });


  return {
    app,
    get opening() {
      return opening;
    },
    stopTakingSessions: () => void (closing = true),
    fail: () => void (failed = true),
  };
}

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

/** Every request and stream keeps its session present until its response is done. */
async function serveInSession(c: Context<Env>, session: ChatSession, serve: () => Promise<Response>): Promise<Response> {
  const closed = session.openLink();
  const outgoing = c.env?.outgoing;
  if (outgoing) outgoing.once('close', closed);
  try {
    return await serve();
  } finally {
    if (!outgoing) closed();
  }
}

async function openSession(c: Context<Env>, services: SessionServices, body: unknown): Promise<Response> {
  const session = new StreamableSession(services);
  await session.connect();
  const response = await session.handle(c.req.raw, body);
  if (session.listed) services.log.info({ session: session.sessionId }, 'session opened');
  else session.end('disconnected');
  return response;
}
