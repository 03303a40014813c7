/**
 * The last handler of `/mcp`: a 2025 `initialize` without a session opens one. It holds
 * one of its client's sessions until it ends; a session whose `initialize` failed (it
 * never listed itself) is dropped at once.
 */
import { secretHint } from '../../chat/processDirectory.js';
import { StreamableSession } from '../../session/streamableSession.js';
import { withRequestId } from '../requestInfo.js';
import { serveInSession } from '../serveInSession.js';
import type { McpRequest, McpRouteParts } from './mcpRequest.js';

export function initialize({ services, clientOf, take, gate }: McpRouteParts): (request: McpRequest) => Promise<Response> {
  return async ({ c, body, id }) => {
    const held = take(c, 'sessions', id);
    if (held instanceof Response) return held;
    const response = await gate.opened(async () => {
      const session = new StreamableSession(services);
      session.holdUntilEnd(held);
      await session.connect();
      const answer = await serveInSession(c, services, session, body, clientOf, () => session.handle(c.req.raw, body));
      if (session.listed) services.log.info({ session: secretHint(session.sessionId) }, 'session opened');
      else void session.end('dropped');
      return answer;
    });
    return withRequestId(response, id);
  };
}
