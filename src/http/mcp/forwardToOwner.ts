/**
 * The first handler of `/mcp`: a request whose session or user lives on another server
 * process is sent on to it, and its answer comes back as it is (src/http/routing.ts).
 */
import type { McpHandler, McpRouteParts } from './mcpRequest.js';

export function forwardToOwner({ router }: McpRouteParts): McpHandler {
  return ({ c, owner, body, bytes }) => router.route(c, owner, { body, bytes });
}
