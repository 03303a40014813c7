/**
 * The HTTP face of mcp-chat: a Hono app with the MCP endpoint and health checks.
 * It routes requests to sessions and creates sessions on `initialize`; what a request
 * means for the chat is decided by the session's user actor, never here.
 */
import type { HttpBindings } from '@hono/node-server';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { Hono, type Context } from 'hono';
import pino, { type Logger } from 'pino';
import type { InspectionEvent, Observer } from 'xstate';
import { memoryBroker } from './broker/memoryBroker.js';
import type { ChatBroker } from './broker/port.js';
import { createMcpServerFactory, type ChatServices } from './chatServices.js';
import { defaultConfig, type ChatConfig } from './config.js';
import { SessionRegistry } from './sessionRegistry.js';
import { StreamableSession } from './streamableSession.js';

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

/** A JSON-RPC error body, as the MCP transports send them. */
export function jsonRpcError(code: number, message: string) {
  return { jsonrpc: '2.0' as const, error: { code, message }, id: null };
}

export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const config: ChatConfig = { ...defaultConfig, ...options.config };
  const services: ChatServices = {
    config,
    broker: options.broker ?? memoryBroker({ inspect: options.inspect }),
    sessions: new SessionRegistry(),
    users: new Set(),
    log: options.log ?? pino({ level: config.logLevel }),
    inspect: options.inspect,
    createMcpServer: createMcpServerFactory(),
  };
  const startedAt = Date.now();
  let closing = false;
  const app = new Hono<Env>();

  app.all('/mcp', async (c) => {
    const sessionId = c.req.header('mcp-session-id');
    if (sessionId !== undefined) {
      const session = services.sessions.get(sessionId);
      if (!session) return c.json(jsonRpcError(-32001, 'Session not found: it ended or never existed. Initialize a new session.'), 404);
      // Every request and stream keeps the session present until its response is done.
      const closed = session.linkOpened();
      const outgoing = c.env?.outgoing;
      if (outgoing) outgoing.once('close', closed);
      try {
        return await session.handle(c.req.raw);
      } finally {
        if (!outgoing) closed();
      }
    }
    if (c.req.method !== 'POST')
      return c.json(jsonRpcError(-32000, 'Bad Request: Mcp-Session-Id header is required; initialize with a POST first.'), 400);
    if (closing) return c.json(jsonRpcError(-32000, 'The server is shutting down and takes no new sessions.'), 503);
    return openSession(c, services);
  });

  app.get('/healthz', (c) => {
    const byState = { idle: 0, waiting: 0, chatting: 0 };
    for (const session of services.sessions.values()) {
      const state = session.user.actor.getSnapshot().value;
      if (state === 'idle' || state === 'waiting' || state === 'chatting') byState[state] += 1;
    }
    const { waiting, rooms } = services.broker.stats();
    return c.json({
      status: 'ok',
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
      sessions: services.sessions.size,
      users: byState,
      actors: { users: services.users.size, rooms },
      queue: waiting,
    });
  });

  return {
    app,
    services,
    async close() {
      closing = true;
      services.broker.shutdown();
      const sessions = [...services.sessions.values()];
      // The last words (partner.disconnected) reach the streams before they close.
      await Promise.all(sessions.map((session) => session.flushed()));
      for (const session of sessions) session.end('shutdown');
      services.broker.close();
    },
  };
}

async function openSession(c: Context, services: ChatServices): Promise<Response> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return c.json(jsonRpcError(-32700, 'Parse error: the request body is not valid JSON.'), 400);
  }
  if (!isInitializeRequest(body))
    return c.json(jsonRpcError(-32000, 'Bad Request: no Mcp-Session-Id header, and the request is not initialize. Initialize a session first.'), 400);
  const session = new StreamableSession(services);
  await session.connect();
  const response = await session.handle(c.req.raw, body);
  if (!services.sessions.get(session.sessionId)) session.end('disconnected');
  return response;
}
