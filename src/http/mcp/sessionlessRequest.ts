/**
 * A 2025 request without a session that is not `initialize`, as the hosts that keep no
 * session send them: served on its own in a session without an id that lives as long
 * as its response; the call acts for its `user_token`.
 */
import type { ServerResponse } from 'node:http';
import { StreamableSession } from '../../session/streamableSession.js';
import { isInitialize, withRequestId } from '../requestInfo.js';
import { serveInSession } from '../serveInSession.js';
import type { McpHandler, McpRouteParts } from './mcpRequest.js';

export function sessionlessRequest({ services, clientOf }: McpRouteParts): McpHandler {
  return async ({ c, body, id, heldWait }) => {
    if (isInitialize(body)) return undefined;
    const session = StreamableSession.stateless(services, body);
    await session.connect();
    const response = await serveInSession(c, services, session, body, clientOf, () => session.handle(c.req.raw, body), heldWait);
    endWithResponse(session, c.env?.outgoing);
    return withRequestId(response, id);
  };
}

/**
 * Its response may be a stream (progress, then the answer): the session lives as long.
 * (A function of its own, so that the listener holds the session alone, not the request.)
 */
function endWithResponse(session: StreamableSession, outgoing: ServerResponse | undefined): void {
  if (outgoing) outgoing.once('close', () => void session.end('dropped'));
  else void session.end('dropped');
}
