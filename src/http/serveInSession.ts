/**
 * Serves one request in a session, whatever its kind (a streamable session with or
 * without an id, a legacy SSE session): the one way a request reaches a session's SDK
 * transport from the HTTP layer.
 */
import type { Context } from 'hono';
import type { HeldWait } from '../mcp/sessionMux.js';
import type { ChatSession } from '../session/chatSession.js';
import type { AppServices, ClientOf, Env } from './appServices.js';
import { isRequest, requestIdOf } from './requestInfo.js';

/**
 * Serves a request in a session. While its response is open, the session (and so its
 * user) is present. The MCP server learns the client's address for the request; and
 * when the client closes the response before the answer, the call is abandoned: it ends
 * at once and takes nothing (clients that give up on a held call often send no
 * `notifications/cancelled`). A `wait_for_events` held before (`heldWait`) says so to the tool.
 */
export async function serveInSession(
  c: Context<Env>,
  services: AppServices,
  session: ChatSession,
  body: unknown,
  clientOf: ClientOf,
  serve: () => Promise<Response>,
  heldWait?: HeldWait,
): Promise<Response> {
  const closed = session.openLink();
  const id = isRequest(body) ? requestIdOf(body) : null;
  if (id !== null) services.mcp.annotate(session, id, { address: clientOf(c), ...(heldWait && { heldWait }) });
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
