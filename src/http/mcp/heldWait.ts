/**
 * A `wait_for_events` without a session that has nothing to answer yet waits here, before
 * the SDK (and outside Hono's chain, unless a browser sent it), so that a waiting user
 * keeps none of the per-call machinery alive (the 2026-07-28 era's server per request, the
 * 2025 era's session without an id, the frames of the middleware and route). Once an
 * event comes, its time runs out or a newer wait replaces it, the call goes on to the SDK
 * with the time it has left, and the tool answers it at once, as it would have. Anything
 * else, and anything the SDK would refuse, passes on untouched.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { classifyInboundRequest, isJsonContentType, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/server';
import type { Context } from 'hono';
import type { Logger } from 'pino';
import type { ChatUser } from '../../chat/chatUser.js';
import type { HoldEnd } from '../../chat/eventLog.js';
import type { UserDirectory } from '../../chat/userDirectory.js';
import { asksForProgress, isJsonObject, jsonRpcError } from '../../mcp/jsonRpc.js';
import type { ChatMessage } from '../../mcp/notifications.js';
import { waitInput } from '../../mcp/toolSpecs.js';
import type { Release } from '../../session/addressAllowance.js';
import type { Env } from '../appServices.js';
import type { McpHandler, McpRouteParts } from './mcpRequest.js';

const TOOL = 'wait_for_events';
/** The modern revision the SDK serves (its list is not exported): a call that names another passes on, and the SDK answers it. */
const MODERN_REVISION = '2026-07-28';

type JsonObject = Record<string, unknown>;

/** A call that may be held: its user, where it reads from and for how long, and its parts as they came. */
interface HoldableWait {
  readonly user: ChatUser<ChatMessage>;
  readonly cursor: number | null;
  readonly timeoutS: number;
  readonly body: JsonObject;
  readonly params: JsonObject;
  readonly args: JsonObject;
}

export function heldWait({ services, clientOf }: McpRouteParts): McpHandler {
  const { users, allowance, config, log } = services;
  return async (request, next) => {
    const { c } = request;
    const wait = holdableWait(c, request.body, users);
    if (!wait) return undefined;
    // Past its client's allowance the call goes on: the tool answers the refusal.
    const release = allowance.take(clientOf(c), 'waits');
    if (!release) return undefined;
    const { incoming, outgoing } = c.env ?? {};
    const held = holdWhileOpen(wait.user, release, outgoing);
    const deadline = Date.now() + wait.timeoutS * 1000;
    const hold = () => wait.user.events.hold(wait.cursor, wait.timeoutS * 1000, held.signal, config.maxWaitsPerUser);
    const answer = (end: HoldEnd) =>
      next({ ...request, body: withTimeLeft(wait, deadline), bytes: undefined, heldWait: { superseded: end === 'superseded' } });
    // A client that is no browser (so needs no CORS headers) waits outside Hono's chain,
    // which would hold its frames for the whole wait; its answer is written here.
    if (incoming && outgoing && c.req.header('origin') === undefined) {
      void answerWhenWoken(incoming, outgoing, held, hold, answer, log);
      return RESPONSE_ALREADY_SENT;
    }
    const end = await hold();
    if (end === 'aborted' || held.signal.aborted) {
      // The client is gone: nobody reads an answer, and the SDK never hears of the call.
      held.end();
      return new Response(null, { status: 499 });
    }
    try {
      return await answer(end);
    } finally {
      if (!outgoing) held.end();
    }
  };
}

/**
 * Writes `response` to the Node response with @hono/node-server's own writer, as it
 * writes every answer of the app: its request listener, given a fetch that answers with
 * `response`. (Reading the body ourselves would make node-server's light `Response` a
 * full web one, with a stream to read it through.)
 */
function writeAnswer(incoming: IncomingMessage, outgoing: ServerResponse, response: Response): Promise<void> {
  return getRequestListener(() => response, { overrideGlobalObjects: false, autoCleanupIncoming: false })(incoming, outgoing);
}

/**
 * Waits out a call held outside Hono's chain, then writes the answer the rest of the
 * chain gives to the Node response with @hono/node-server's writer, adding the
 * `Vary: Origin` that the front door gives answers to clients without an Origin.
 */
async function answerWhenWoken(
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  held: { signal: AbortSignal; end: () => void },
  hold: () => Promise<HoldEnd>,
  answer: (end: HoldEnd) => Promise<Response>,
  log: Logger,
): Promise<void> {
  try {
    const end = await hold();
    // The client is gone: nobody reads an answer, and the SDK never hears of the call.
    if (end === 'aborted' || held.signal.aborted) return held.end();
    const response = await answer(end);
    response.headers.append('vary', 'Origin');
    await writeAnswer(incoming, outgoing, response);
  } catch (error) {
    log.error({ err: error }, 'a held wait_for_events could not be answered');
    if (!outgoing.headersSent) outgoing.writeHead(500, { 'content-type': 'application/json' });
    outgoing.end(JSON.stringify(jsonRpcError(-32603, 'Internal error: the call could not be answered.')));
  }
}

/**
 * Holds the user present and the client's wait allowance until the response closes (the
 * SDK has answered, or the client left); the signal aborts when the client leaves before
 * its answer. (A function of its own, so that the listener holds only these.)
 */
function holdWhileOpen(
  user: ChatUser<ChatMessage>,
  release: Release,
  outgoing: ServerResponse | undefined,
): { signal: AbortSignal; end: () => void } {
  const closeLink = user.openLink();
  const controller = new AbortController();
  let open = true;
  const end = () => {
    if (!open) return;
    open = false;
    closeLink();
    release();
  };
  if (outgoing?.destroyed) controller.abort();
  outgoing?.once('close', () => {
    if (!outgoing.writableFinished) controller.abort();
    end();
  });
  return { signal: controller.signal, end };
}

/**
 * The call, when it is a `wait_for_events` that the SDK would serve and that would wait:
 * no progress token (a call with one reports progress from the tool), arguments the
 * tool's own schema takes, a live user, a cursor of its log with nothing after it, and
 * time to wait. Cheap tests first: most calls fail one early.
 */
function holdableWait(c: Context<Env>, body: unknown, users: UserDirectory<ChatMessage>): HoldableWait | undefined {
  if (!isJsonObject(body) || body.method !== 'tools/call' || !isJsonObject(body.params)) return undefined;
  const { params } = body;
  const args = params.arguments;
  if (params.name !== TOOL || !isJsonObject(args) || asksForProgress(body)) return undefined;
  // Found as the tools find it, by token; never made here.
  const user = typeof args.user_token === 'string' ? users.byToken(args.user_token) : undefined;
  if (!user) return undefined;
  const parsed = waitInput.safeParse(args);
  if (!parsed.success || parsed.data.timeout_s <= 0) return undefined;
  const cursor = parsed.data.after === undefined ? null : user.events.parseCursor(parsed.data.after);
  if (cursor === undefined || !user.events.isEmptyAfter(cursor) || !acceptedBySdk(c, body)) return undefined;
  return { user, cursor, timeoutS: parsed.data.timeout_s, body, params, args };
}

/**
 * Whether the SDK would serve this POST rather than refuse it, asked with its own tests
 * where it exports them: a JSON body that its era classifier takes for a JSON-RPC request
 * (a 2025 request without a claim, or a 2026-07-28 request, never a notification). A
 * 2025 call must accept both JSON and event streams and name a version the SDK supports,
 * if any; a 2026-07-28 call needs a valid envelope (the classifier checks it, and that
 * the headers present match the body) and the MCP-Protocol-Version, Mcp-Method and
 * Mcp-Name headers (the SDK's own test of those is not exported: the name must be plain).
 */
function acceptedBySdk(c: Context<Env>, body: unknown): boolean {
  const header = (name: string) => c.req.header(name);
  if (!isJsonContentType(header('content-type') ?? null)) return false;
  const version = header('mcp-protocol-version');
  const route = classifyInboundRequest({
    httpMethod: 'POST',
    protocolVersionHeader: version,
    mcpMethodHeader: header('mcp-method'),
    mcpNameHeader: header('mcp-name'),
    body,
  });
  if (route.kind === 'legacy') {
    const accept = header('accept') ?? '';
    return (
      route.reason === 'no-claim' &&
      accept.includes('application/json') &&
      accept.includes('text/event-stream') &&
      (version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(version))
    );
  }
  return (
    route.kind === 'modern' &&
    route.messageKind === 'request' &&
    route.classification.revision === MODERN_REVISION &&
    version !== undefined &&
    header('mcp-method') !== undefined &&
    header('mcp-name')?.trim() === TOOL
  );
}

/** The call as it came, but for the time it has left (0 once past its deadline). */
function withTimeLeft({ body, params, args }: HoldableWait, deadline: number): JsonObject {
  const timeLeftS = Math.max(0, deadline - Date.now()) / 1000;
  return { ...body, params: { ...params, arguments: { ...args, timeout_s: timeLeftS } } };
}
