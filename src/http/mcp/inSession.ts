/**
 * A request in a session: a POST, GET (the session's stream) or DELETE that names its
 * `Mcp-Session-Id`, served by that session's transport, or 404 when the session ended or
 * never was. A GET or DELETE without a session has none to be served in: 400.
 */
import type { Context } from 'hono';
import type { ChatSession } from '../../session/chatSession.js';
import { StreamableSession } from '../../session/streamableSession.js';
import type { Env } from '../appServices.js';
import { refuseHttp } from '../guards.js';
import { withRequestId } from '../requestInfo.js';
import { serveInSession } from '../serveInSession.js';
import type { McpHandler, McpRouteParts } from './mcpRequest.js';

export function inSession({ services, clientOf, take }: McpRouteParts): McpHandler {
  const { sessions, metrics } = services;
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
      held = { open: 0, release };
      streaming.set(session, held);
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

  return async ({ c, sessionId, body, id }) => {
    if (sessionId === undefined)
      return c.req.method === 'POST'
        ? undefined
        : refuseHttp(
            c,
            metrics,
            'no_session',
            400,
            -32000,
            'Bad Request: Mcp-Session-Id header is required; initialize with a POST first.',
          );
    const session = sessions.get(sessionId);
    if (!(session instanceof StreamableSession))
      return refuseHttp(
        c,
        metrics,
        'session_not_found',
        404,
        -32001,
        'Session not found: it ended or never existed. Initialize a new session.',
        {},
        id,
      );
    const stream = c.req.method === 'GET' ? holdStream(c, session) : undefined;
    if (stream instanceof Response) return stream;
    try {
      return withRequestId(await serveInSession(c, services, session, body, clientOf, () => session.handle(c.req.raw, body)), id);
    } finally {
      if (stream && !c.env?.outgoing) stream();
    }
  };
}
