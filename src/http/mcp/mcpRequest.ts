/**
 * One request to `/mcp` as the handlers of its chain (src/http/mcpRoute.ts) see it, read
 * once before the first, and what every handler is given to serve it with.
 */
import type { RequestId } from '@modelcontextprotocol/server';
import type { Context } from 'hono';
import type { HeldWait } from '../../mcp/sessionMux.js';
import type { AppServices, ClientOf, Env, HealthCounts, TakeAllowance } from '../appServices.js';
import type { Owner, RequestRouter } from '../routing.js';
import type { SessionGate } from '../sessionGate.js';

export interface McpRequest {
  readonly c: Context<Env>;
  /** The JSON-RPC message of a POST (undefined for GET and DELETE), and its bytes as they came. */
  readonly body: unknown;
  readonly bytes: Uint8Array | undefined;
  /** Its JSON-RPC id, which every error answer carries. */
  readonly id: RequestId | null;
  /** The process it belongs to, when its names say (src/http/routing.ts). */
  readonly owner: Owner | undefined;
  /**
   * The session it is served in: its `Mcp-Session-Id`, unless it is a call for a user of
   * this process that came in another process's session (then served without one).
   */
  readonly sessionId: string | undefined;
  /** Set when it is a `wait_for_events` held before the server (heldWait.ts), then handed on. */
  readonly heldWait?: HeldWait;
}

/** The handlers after one, serving a request it hands on (changed, maybe) to an answer. */
export type McpNext = (request: McpRequest) => Promise<Response>;

/**
 * One kind of `/mcp` request: answers a request of its kind, or passes it on untouched
 * (undefined); or hands the rest of the chain a changed request (`next`) and answers
 * what they answer, once they have.
 */
export type McpHandler = (request: McpRequest, next: McpNext) => Promise<Response | undefined>;

/** What the handlers serve with. */
export interface McpRouteParts {
  readonly services: AppServices;
  readonly live: HealthCounts;
  readonly clientOf: ClientOf;
  readonly take: TakeAllowance;
  readonly gate: SessionGate;
  readonly router: RequestRouter;
}
