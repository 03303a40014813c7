/**
 * The HTTP face of mcp-chat: a Hono app with the MCP endpoint (`/mcp`, a chain of small
 * handlers: src/http/mcpRoute.ts), the legacy HTTP+SSE transport (`/sse`, `/messages`),
 * the chat page for people (`/`), `/healthz`, `/metrics` and the operators' `/admin`. It
 * checks who may call (src/http/guards.ts), reads bodies (src/http/jsonRpcBody.ts) and
 * sends a request whose session or user lives on another process on to it
 * (src/http/routing.ts); what a request means for the chat is decided by the session's
 * user actor, never here.
 */
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { secretHint } from '../chat/processDirectory.js';
import { chatWindow } from '../mcp/chatWindow.js';
import { allowanceSentence } from '../session/addressAllowance.js';
import { LegacySseSession } from '../session/legacySseSession.js';
import { adminRoutes } from './admin.js';
import type { AppServices, ClientOf, Env, HealthCounts, TakeAllowance } from './appServices.js';
import { addressResolver } from './clientAddress.js';
import { believeForwarded, claimOf } from './forwardTrust.js';
import { frontDoor, refuseHttp } from './guards.js';
import { type BodyResult, readJsonRpcBody } from './jsonRpcBody.js';
import { mcpRoute } from './mcpRoute.js';
import { clientAddress, requestIdOf } from './requestInfo.js';
import { legacyRequestOwner, requestRouter } from './routing.js';
import { serveInSession } from './serveInSession.js';
import { SessionGate } from './sessionGate.js';

export type HttpApp = Hono<Env>;

export interface AppControl {
  readonly app: HttpApp;
  /** Sessions being initialized: they count against the cap before they register. */
  readonly opening: number;
  /** From now on no session opens (503), as when the server is closing. */
  stopTakingSessions(): void;
  /** The broker failed: /healthz says so, and no session opens. */
  fail(): void;
}

export function createHttpApp(services: AppServices, live: HealthCounts): AppControl {
  const { config, metrics, sessions } = services;
  const startedAt = Date.now();
  const app = new Hono<Env>();
  const gate = new SessionGate(config, metrics, sessions);
  const addressOf = addressResolver(config.trustProxy);
  // A request another process forwarded (signed) comes from the client it names.
  const clientOf: ClientOf = (c) => claimOf(c.req.raw)?.client ?? clientAddress(c, addressOf);
  const router = requestRouter(services.processDirectory, metrics, services.log, clientOf);
  const take: TakeAllowance = (c, kind, id = null) =>
    services.allowance.take(clientOf(c), kind) ??
    refuseHttp(c, metrics, `address_${kind}`, 429, -32000, allowanceSentence(kind, config.maxPerAddress), { 'Retry-After': '60' }, id);

  app.use(
    '*',
    frontDoor(
      config,
      metrics,
      believeForwarded(() => services.processDirectory.secret),
    ),
  );

  app.all('/mcp', mcpRoute({ services, live, clientOf, take, gate, router }));

  // The legacy HTTP+SSE transport (protocol 2024-11-05) needs Node's own request and response.
  app.get('/sse', async (c) => {
    const { outgoing } = c.env;
    if (!outgoing) return c.text('The legacy SSE transport needs the Node.js server.', 501);
    const refused = gate.refuseNewSession(c);
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
      return refuseHttp(
        c,
        metrics,
        'session_not_found',
        404,
        -32001,
        'Session not found: it ended, its SSE stream closed, or it never existed. Open a new one with GET /sse.',
      );
    read ??= await readJsonRpcBody(c, config, metrics);
    if (!read.ok) return read.response;
    const { body } = read;
    return serveInSession(c, services, session, body, clientOf, async () =>
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
        status: gate.failed ? 'failed' : gate.closing ? 'stopping' : cutOff ? 'cut off' : 'ok',
        uptime_s: Math.round((Date.now() - startedAt) / 1000),
        sessions: sessions.size,
        users: live.usersByState(),
        actors: { users: live.users(), rooms: live.rooms() },
        queue: live.waiting(),
      },
      gate.failed || cutOff ? 503 : 200,
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
      return gate.opening;
    },
    stopTakingSessions: () => gate.close(),
    fail: () => gate.fail(),
  };
}
