/**
 * The floor: a raw relay on node:http with no MCP and no XState, doing the same work per
 * message as mcp-chat on the same wire (initialize, GET stream, tools/call enter_queue and
 * send_message with FIFO pairing, DELETE, /healthz), so the bench drives it with the same
 * client. Clients that keep no session (either era: it reads no protocol headers) act by
 * `user_token` and read a log with wait_for_events {after, timeout_s}. Results have
 * mcp-chat's JSON shape, answered as JSON. Run it as its own process:
 * `node dist/bench/relayBaseline.js [--port 0]`; it prints where it listens.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

interface Room {
  id: string;
  members: [RelaySession, RelaySession];
  seq: number;
}

interface RelayEvent {
  id: string;
  method: string;
  params: Record<string, unknown>;
}

interface RelaySession {
  id: string;
  /** A user that keeps no session: its events wait here, unacknowledged, for wait_for_events. */
  log: RelayEvent[] | null;
  /** Answers the held wait_for_events, if one is held. */
  poll: (() => void) | null;
  stream: ServerResponse | null;
  pending: string[];
  eventId: number;
  room: Room | null;
  waiting: boolean;
}

interface RpcRequest {
  jsonrpc?: string;
  id?: number | string;
  method?: string;
  params?: { name?: string; arguments?: Record<string, unknown> };
}

const sessions = new Map<string, RelaySession>();
const tokenUsers = new Map<string, RelaySession>();
const queue: RelaySession[] = [];
let rooms = 0;

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function rpcError(res: ServerResponse, status: number, code: number, message: string, id: RpcRequest['id'] = undefined): void {
  json(res, status, { jsonrpc: '2.0', error: { code, message }, id: id ?? null });
}

function toolResult(res: ServerResponse, id: RpcRequest['id'], structured: Record<string, unknown>, isError = false): void {
  const result = isError
    ? { content: [{ type: 'text', text: String(structured.error) }], isError: true }
    : { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
  json(res, 200, { result, jsonrpc: '2.0', id });
}

function notify(session: RelaySession, method: string, params: Record<string, unknown>): void {
  session.eventId += 1;
  if (session.log) {
    session.log.push({ id: String(session.eventId), method, params });
    session.poll?.();
    return;
  }
  const event = `event: message\nid: ${session.eventId}\ndata: ${JSON.stringify({ method, params, jsonrpc: '2.0' })}\n\n`;
  if (session.stream) session.stream.write(event);
  else session.pending.push(event);
}

function enterQueue(session: RelaySession): Record<string, unknown> {
  if (session.room) return { error: 'You are already chatting.' };
  const token = session.log ? { user_token: session.id } : {};
  if (session.waiting) return { status: 'waiting', position: queue.indexOf(session) + 1, ...token };
  const partner = queue.shift();
  if (!partner) {
    session.waiting = true;
    queue.push(session);
    return { status: 'waiting', position: queue.length, ...token };
  }
  partner.waiting = false;
  const room: Room = { id: randomUUID(), members: [partner, session], seq: 0 };
  partner.room = room;
  session.room = room;
  rooms += 1;
  notify(partner, 'chatroom.found', { room_id: room.id });
  notify(session, 'chatroom.found', { room_id: room.id });
  return { status: 'matched', room_id: room.id, ...token };
}

/** Answers the user's events after `after` now, or holds the call until one arrives or `timeout_s` passes. */
function waitForEvents(user: RelaySession, args: Record<string, unknown>, res: ServerResponse, id: RpcRequest['id']): void {
  const log = user.log ?? [];
  const after = Number(args.after ?? 0);
  if (!Number.isInteger(after)) {
    toolResult(res, id, { error: 'after is not a cursor.' }, true);
    return;
  }
  // What the client acknowledges (its cursor) it has: forget it.
  while (log.length > 0 && Number(log[0]!.id) <= after) log.shift();
  // One poll held per user: a newer one answers the one held before.
  user.poll?.();
  const answer = () => {
    if (user.poll === answer) user.poll = null;
    clearTimeout(timer);
    if (!res.writableEnded && !res.destroyed) toolResult(res, id, { events: log.slice(), cursor: log.at(-1)?.id ?? String(after) });
  };
  if (log.length > 0) {
    toolResult(res, id, { events: log.slice(), cursor: log.at(-1)!.id });
    return;
  }
  const timer = setTimeout(answer, Number(args.timeout_s ?? 25) * 1000);
  user.poll = answer;
  res.on('close', answer);
}

function sendMessage(session: RelaySession, args: Record<string, unknown>): Record<string, unknown> {
  const room = session.room;
  const message = args.message;
  if (!room || args.room_id !== room.id) return { error: 'room_id is not your room.' };
  if (typeof message !== 'string' || message.trim().length === 0 || message.length > 4000)
    return { error: 'message is empty or too long.' };
  room.seq += 1;
  const receipt = { room_id: room.id, message_id: randomUUID(), seq: room.seq, sent_at: new Date().toISOString() };
  const partner = room.members[0] === session ? room.members[1] : room.members[0];
  notify(partner, 'message.received', {
    room_id: receipt.room_id,
    message,
    message_id: receipt.message_id,
    seq: receipt.seq,
    sent_at: receipt.sent_at,
  });
  return { status: 'sent', message_id: receipt.message_id, seq: receipt.seq };
}

function endSession(session: RelaySession): void {
  sessions.delete(session.id);
  const queued = queue.indexOf(session);
  if (queued !== -1) queue.splice(queued, 1);
  const room = session.room;
  if (room) {
    const partner = room.members[0] === session ? room.members[1] : room.members[0];
    partner.room = null;
    rooms -= 1;
    notify(partner, 'partner.disconnected', { room_id: room.id, reason: 'disconnected' });
  }
  session.stream?.end();
}

function newSession(log: RelayEvent[] | null): RelaySession {
  return { id: randomUUID(), log, poll: null, stream: null, pending: [], eventId: 0, room: null, waiting: false };
}

/** A tools/call without a session: it acts for its `user_token` (enter_queue without one makes a user). */
function handleTokenCall(body: RpcRequest, res: ServerResponse): void {
  const args = body.params?.arguments ?? {};
  const token = args.user_token;
  let user = typeof token === 'string' ? tokenUsers.get(token) : undefined;
  if (!user && token === undefined && body.params?.name === 'enter_queue') {
    user = newSession([]);
    tokenUsers.set(user.id, user);
  }
  if (!user) {
    toolResult(res, body.id, { error: 'Unknown user_token: call enter_queue first.' }, true);
    return;
  }
  if (body.params?.name === 'wait_for_events') {
    waitForEvents(user, args, res, body.id);
    return;
  }
  answerTool(user, body, res);
}

function openStream(session: RelaySession, req: IncomingMessage, res: ServerResponse): void {
  if (session.stream) {
    rpcError(res, 409, -32000, 'Conflict: only one SSE stream is allowed per session');
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'mcp-session-id': session.id,
  });
  res.flushHeaders();
  session.stream = res;
  for (const event of session.pending.splice(0)) res.write(event);
  req.on('close', () => {
    if (session.stream === res) session.stream = null;
  });
}

function handlePost(session: RelaySession | undefined, body: RpcRequest, res: ServerResponse): void {
  if (!session) {
    if (body.method === 'tools/call' && body.id !== undefined) {
      handleTokenCall(body, res);
      return;
    }
    if (body.method !== 'initialize') {
      rpcError(res, 400, -32000, 'Bad Request: initialize first');
      return;
    }
    const created = newSession(null);
    sessions.set(created.id, created);
    const result = { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'relay-baseline', version: '0.0.0' } };
    json(res, 200, { result, jsonrpc: '2.0', id: body.id }, { 'mcp-session-id': created.id });
    return;
  }
  if (body.id === undefined) {
    res.writeHead(202).end();
    return;
  }
  if (body.method !== 'tools/call') {
    rpcError(res, 200, -32601, `Method not found: ${body.method}`, body.id);
    return;
  }
  answerTool(session, body, res);
}

function answerTool(session: RelaySession, body: RpcRequest, res: ServerResponse): void {
  const args = body.params?.arguments ?? {};
  switch (body.params?.name) {
    case 'enter_queue': {
      const answer = enterQueue(session);
      toolResult(res, body.id, answer, 'error' in answer);
      return;
    }
    case 'send_message': {
      const answer = sendMessage(session, args);
      toolResult(res, body.id, answer, 'error' in answer);
      return;
    }
    default:
      rpcError(res, 200, -32602, `Unknown tool: ${body.params?.name}`, body.id);
  }
}

const server = createServer((req, res) => {
  const path = req.url ?? '/';
  if (path === '/healthz')
    return json(res, 200, {
      status: 'ok',
      sessions: sessions.size,
      users: tokenUsers.size,
      rooms,
      queue: queue.length,
      memory: process.memoryUsage(),
    });
  if (path !== '/mcp') return json(res, 404, { error: 'not found' });
  const header = req.headers['mcp-session-id'];
  const session = typeof header === 'string' ? sessions.get(header) : undefined;
  if (header !== undefined && !session) return rpcError(res, 404, -32001, 'Session not found');
  if (req.method === 'GET') return session ? openStream(session, req, res) : rpcError(res, 400, -32000, 'Mcp-Session-Id required');
  if (req.method === 'DELETE') {
    if (session) endSession(session);
    res.writeHead(session ? 200 : 400).end();
    return;
  }
  if (req.method !== 'POST') return rpcError(res, 405, -32000, 'Method not allowed');
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let body: RpcRequest;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RpcRequest;
    } catch {
      return rpcError(res, 400, -32700, 'Parse error');
    }
    handlePost(session, body, res);
  });
});

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });
server.listen(Number(values.port), values.host, () => {
  const { address, port } = server.address() as AddressInfo;
  process.stdout.write(`relay-baseline listening on http://${address}:${port}/mcp\n`);
});
const stop = () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
