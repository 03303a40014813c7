/**
 * The v2 peer: what a user would write instead of mcp-chat — the same six tools on the v2
 * SDK, served as the SDK's examples serve (examples/dual-era, examples/hono): one factory
 * behind `createMcpHandler` on its default posture (2025-era requests served statelessly,
 * GET answers 405), mounted on Hono. The chat lives in plain Maps: a FIFO queue, rooms of
 * two, per user the events not yet acknowledged, which `wait_for_events` drops up to its
 * `after` and holds the call while none is left. No XState, replay buffer or limits.
 * Run as its own process: `node dist/bench/v2Peer.js [--port 0]`; it prints where it listens.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import {
  type CallToolResult,
  createMcpHandler,
  hostHeaderValidationResponse,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  McpServer,
  originValidationResponse,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { Hono } from 'hono';
import { z } from 'zod';

interface ChatEvent {
  id: string;
  method: string;
  params: Record<string, unknown>;
}

interface Room {
  id: string;
  members: [User, User];
  seq: number;
}

interface User {
  token: string;
  room: Room | undefined;
  waiting: boolean;
  /** Events the user has not acknowledged yet, oldest first. */
  events: ChatEvent[];
  lastEventId: number;
  /** Held wait_for_events calls, woken by the next event. */
  waiters: Set<() => void>;
}

const users = new Map<string, User>();
const queue: User[] = [];
let rooms = 0;

function push(user: User, method: string, params: Record<string, unknown>): void {
  user.lastEventId += 1;
  user.events.push({ id: String(user.lastEventId), method, params });
  for (const wake of user.waiters) wake();
}

const partnerOf = (user: User, room: Room) => (room.members[0] === user ? room.members[1] : room.members[0]);

function enterQueue(user: User): Record<string, unknown> {
  if (user.waiting) return { status: 'waiting', position: queue.indexOf(user) + 1, user_token: user.token };
  const partner = queue.shift();
  if (!partner) {
    user.waiting = true;
    queue.push(user);
    return { status: 'waiting', position: queue.length, user_token: user.token };
  }
  partner.waiting = false;
  const room: Room = { id: randomUUID(), members: [partner, user], seq: 0 };
  partner.room = room;
  user.room = room;
  rooms += 1;
  push(partner, 'chatroom.found', { room_id: room.id });
  push(user, 'chatroom.found', { room_id: room.id });
  return { status: 'matched', room_id: room.id, user_token: user.token };
}

function leave(user: User): void {
  if (user.waiting) {
    queue.splice(queue.indexOf(user), 1);
    user.waiting = false;
  }
  const room = user.room;
  if (!room) return;
  const partner = partnerOf(user, room);
  user.room = undefined;
  partner.room = undefined;
  rooms -= 1;
  push(partner, 'partner.disconnected', { room_id: room.id, reason: 'left' });
}

/** Resolves after `ms`, at the user's next event, or when the call is cancelled. */
function nextEvent(user: User, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      user.waiters.delete(done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    user.waiters.add(done);
    signal.addEventListener('abort', done);
  });
}

const ok = (structuredContent: Record<string, unknown>): CallToolResult => ({
  content: [{ type: 'text', text: JSON.stringify(structuredContent) }],
  structuredContent,
});
const refuse = (text: string): CallToolResult => ({ content: [{ type: 'text', text }], isError: true });
const NO_USER = 'Unknown user_token: call enter_queue first and pass the user_token it returns.';

// The schemas are made once, not in the factory as in the SDK's few-line examples: made
// per request, zod's construction and first-parse compilation cost a quarter to a third
// more CPU per message (in a trial), which a user who measured would not keep.
const userToken = z.string().optional().describe('The user_token from enter_queue');
const tokenOnly = z.object({ user_token: userToken });
const queueResult = z.object({
  status: z.enum(['waiting', 'matched']),
  position: z.number().optional(),
  room_id: z.string().optional(),
  user_token: z.string(),
});
const sendInput = z.object({ user_token: userToken, room_id: z.string(), message: z.string().min(1).max(4000) });
const sendResult = z.object({ status: z.literal('sent'), message_id: z.string(), seq: z.number() });
const leaveInput = z.object({ user_token: userToken, room_id: z.string().optional() });
const idleResult = z.object({ status: z.literal('idle') });
const statusResult = z.object({
  state: z.enum(['idle', 'waiting', 'chatting']),
  room_id: z.string().optional(),
  position: z.number().optional(),
  user_token: z.string(),
});
const waitInput = z.object({ user_token: userToken, after: z.string().optional(), timeout_s: z.number().min(0).max(50).default(25) });
const waitResult = z.object({
  events: z.array(z.object({ id: z.string(), method: z.string(), params: z.record(z.string(), z.unknown()) })),
  cursor: z.string(),
});

function newUser(): User {
  const user: User = { token: randomUUID(), room: undefined, waiting: false, events: [], lastEventId: 0, waiters: new Set() };
  users.set(user.token, user);
  return user;
}

function buildServer(): McpServer {
  const server = new McpServer(
    { name: 'v2-peer', version: '1.0.0' },
    { capabilities: { tools: {} }, instructions: 'Chat roulette: enter_queue, then pass user_token on every call.' },
  );

  server.registerTool(
    'enter_queue',
    { description: 'Join the queue to meet a stranger', inputSchema: tokenOnly, outputSchema: queueResult },
    async ({ user_token }) => {
      const user = user_token === undefined ? newUser() : users.get(user_token);
      if (!user) return refuse(NO_USER);
      if (user.room) return refuse('You are already chatting: call leave_chat or next first.');
      return ok(enterQueue(user));
    },
  );

  server.registerTool(
    'send_message',
    { description: 'Send a message to your partner', inputSchema: sendInput, outputSchema: sendResult },
    async ({ user_token, room_id, message }) => {
      const user = users.get(user_token ?? '');
      if (!user) return refuse(NO_USER);
      const room = user.room;
      if (!room || room.id !== room_id) return refuse('That room_id is not your room: call get_status.');
      room.seq += 1;
      const receipt = { message_id: randomUUID(), seq: room.seq };
      push(partnerOf(user, room), 'message.received', { room_id, message, ...receipt, sent_at: new Date().toISOString(), untrusted: true });
      return ok({ status: 'sent', ...receipt });
    },
  );

  server.registerTool(
    'leave_chat',
    { description: 'Leave your chat or the queue', inputSchema: leaveInput, outputSchema: idleResult },
    async ({ user_token }) => {
      const user = users.get(user_token ?? '');
      if (!user) return refuse(NO_USER);
      leave(user);
      return ok({ status: 'idle' });
    },
  );

  server.registerTool(
    'next',
    { description: 'Leave your chat and meet someone else', inputSchema: tokenOnly, outputSchema: queueResult },
    async ({ user_token }) => {
      const user = users.get(user_token ?? '');
      if (!user) return refuse(NO_USER);
      leave(user);
      return ok(enterQueue(user));
    },
  );

  server.registerTool(
    'get_status',
    { description: 'Your state: idle, waiting or chatting', inputSchema: tokenOnly, outputSchema: statusResult },
    async ({ user_token }) => {
      const user = users.get(user_token ?? '');
      if (!user) return refuse(NO_USER);
      if (user.room) return ok({ state: 'chatting', room_id: user.room.id, user_token: user.token });
      if (user.waiting) return ok({ state: 'waiting', position: queue.indexOf(user) + 1, user_token: user.token });
      return ok({ state: 'idle', user_token: user.token });
    },
  );

  server.registerTool(
    'wait_for_events',
    {
      description: 'Your events after the cursor you pass as after; holds the call up to timeout_s while there are none',
      inputSchema: waitInput,
      outputSchema: waitResult,
    },
    async ({ user_token, after, timeout_s }, ctx: ServerContext) => {
      const user = users.get(user_token ?? '');
      if (!user) return refuse(NO_USER);
      const cursor = Number(after ?? 0);
      if (!Number.isInteger(cursor)) return refuse('after is not a cursor from wait_for_events.');
      // Everything up to the cursor has reached the client: forget it.
      while (user.events.length > 0 && Number(user.events[0]!.id) <= cursor) user.events.shift();
      if (user.events.length === 0) await nextEvent(user, timeout_s * 1000, ctx.mcpReq.signal);
      const events = user.events.slice();
      return ok({ events, cursor: events.at(-1)?.id ?? String(cursor) });
    },
  );

  return server;
}

const handler = createMcpHandler(buildServer);

const app = new Hono();
app.get('/healthz', (c) => c.json({ status: 'ok', users: users.size, rooms, queue: queue.length, memory: process.memoryUsage() }));
// The guards the examples' createMcpHonoApp() arms on a localhost bind.
app.all(
  '/mcp',
  (c) =>
    hostHeaderValidationResponse(c.req.raw, localhostAllowedHostnames()) ??
    originValidationResponse(c.req.raw, localhostAllowedOrigins()) ??
    handler.fetch(c.req.raw),
);

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });
const server = serve({ fetch: app.fetch, port: Number(values.port), hostname: values.host }, ({ address, port }) => {
  process.stdout.write(`v2-peer listening on http://${address}:${port}/mcp\n`);
});
const stop = () => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
