/**
 * The HTTP face of mcp-chat: a Hono app with the MCP endpoint, health and metrics.
 * It checks who may call, routes requests to sessions, and creates sessions on
 * `initialize`; what a request means for the chat is decided by the session's user
 * actor, never here.
 */
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import pino, { type Logger } from 'pino';
import type { InspectionEvent, Observer } from 'xstate';
import { memoryBroker } from '../chat/broker/memoryBroker.js';
import type { ChatBroker } from '../chat/broker.js';
import { startMcpServer, type ChatServices } from '../mcp/mcpServer.js';
import { defaultConfig, type ChatConfig } from '../config.js';
import { originGuard, readJsonRpcBody, refuseHttp, tokenGuard } from './guards.js';
import { createMetrics, type LiveCounts } from '../ops/metrics.js';
import type { ChatSession } from '../session/chatSession.js';
import { LegacySseSession } from '../session/legacySseSession.js';
import { SessionMux } from '../mcp/sessionMux.js';
import { SessionRegistry } from '../session/sessionRegistry.js';
import { StreamableSession } from '../session/streamableSession.js';

export interface ChatServerOptions {
  config?: Partial<ChatConfig>;
  broker?: ChatBroker;
  log?: Logger;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

type Env = { Bindings: Partial<HttpBindings> };

export interface ChatServer {
  readonly app: Hono<Env>;
  readonly services: ChatServices;
  /**
   * Stops taking sessions, closes every room (both members are told `shutdown`), ends
   * every session and stops the broker.
   */
  close(): Promise<void>;
}

export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const config: ChatConfig = { ...defaultConfig, ...options.config };
  const log = options.log ?? pino({ level: config.logLevel });
  const broker = options.broker ?? memoryBroker({ inspect: options.inspect });
  /** Set when the broker fails: the server can no longer pair anyone. */
  let failed = false;
  broker.onFailure((err) => {
    failed = true;
    log.fatal({ err }, 'the broker failed: no one can be paired; /healthz reports it, restart the server');
  });
  const sessions = new SessionRegistry<ChatSession>();
  const live: LiveCounts = {
    sessions: () => sessions.size,
    usersByState: () => {
      const byState = { idle: 0, waiting: 0, chatting: 0 };
      for (const session of sessions.values()) {
        const state = session.user.actor.getSnapshot().value;
        if (state === 'idle' || state === 'waiting' || state === 'chatting') byState[state] += 1;
      }
      return byState;
    },
    rooms: () => broker.stats().rooms,
    queueLength: () => broker.stats().waiting,
  };
  const services: ChatServices = {
    config,
    broker,
    sessions,
    users: new Set(),
    log,
    metrics: createMetrics(live),
    inspect: options.inspect,
    mcp: new SessionMux<ChatSession>(),
  };
  const mcpServer = startMcpServer(services.mcp, config, services.metrics);
  const { metrics } = services;
  const startedAt = Date.now();
  let closing = false;
  /** Sessions being initialized: they count against the cap before they register. */
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
    outgoing.once('close', session.user.openLink());
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
      users: live.usersByState(),
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
    services,
    async close() {
      closing = true;
      broker.shutdown();
      // Sessions whose initialize was under way when closing began register late: wait
      // for those too. Each turn ends every session it found, so the loop moves on.
      while (sessions.size > 0 || opening > 0) {
        const open = [...sessions.values()];
        // The last words (partner.disconnected) reach the streams before they close.
        await Promise.all(open.map((session) => session.flushed()));
        await Promise.all(open.map((session) => session.end('shutdown')));
        if (open.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      broker.close();
      await mcpServer.close();
    },
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
  const closed = session.user.openLink();
  const outgoing = c.env?.outgoing;
  if (outgoing) outgoing.once('close', closed);
  try {
    return await serve();
  } finally {
    if (!outgoing) closed();
  }
}

async function openSession(c: Context<Env>, services: ChatServices, body: unknown): Promise<Response> {
  const session = new StreamableSession(services);
  await session.connect();
  const response = await session.handle(c.req.raw, body);
  if (services.sessions.get(session.sessionId)) services.log.info({ session: session.sessionId }, 'session opened');
  else session.end('disconnected');
  return response;
}
