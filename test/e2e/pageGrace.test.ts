/**
 * leave_chat with `grace: true`, as the chat page sends it when it is closed or
 * reloaded: the partner hears nothing unless no call of the person's comes within
 * `--page-grace-ms`; then `partner.disconnected` with reason `left`. Two real clients on
 * a real server: A calls as the page does (no session, its token on every call), or as
 * an SDK client whose session stream stays open; B is an SDK client reading its
 * notifications.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually, sleep } from '../support/eventually.js';
import { health, startTestServer } from '../support/server.js';
import { SessionlessClient } from '../support/tokenClient.js';

const PAGE_GRACE_MS = 500;

let server: RunningChatServer;
const open: ChatClient[] = [];

/** What A needs: a tool call that answers the structured result or throws the refusal. */
interface Caller {
  call(name: string, args?: Record<string, unknown>): Promise<Record<string, unknown>>;
  refusal(name: string, args?: Record<string, unknown>): Promise<string>;
}

const KINDS = {
  'without a session, as the page': async (): Promise<Caller> => new SessionlessClient(server.url),
  'an SDK client whose stream stays open': async (): Promise<Caller> => connect(),
};

async function connect(): Promise<ChatClient> {
  const client = await ChatClient.connect(server.url);
  open.push(client);
  return client;
}

/** A (of `kind`) waits, B arrives: they are paired. */
async function pair(kind: keyof typeof KINDS): Promise<{ a: Caller; b: ChatClient; roomId: string }> {
  const a = await KINDS[kind]();
  const b = await connect();
  expect(await a.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
  const matched = await b.call('enter_queue');
  const roomId = matched.room_id as string;
  await b.waitFor('chatroom.found');
  return { a, b, roomId };
}

beforeAll(async () => {
  // Users end after a short silence, so each test starts alone.
  server = await startTestServer({ pageGraceMs: PAGE_GRACE_MS, graceMs: 150, idleTimeoutMs: 2_000 });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.end().catch(() => {})));
  await eventually(async () => expect(await health(server)).toMatchObject({ actors: { users: 0, rooms: 0 }, queue: 0 }), 8_000);
});

afterAll(async () => {
  await server.close();
});

describe.each(Object.keys(KINDS) as (keyof typeof KINDS)[])('leave_chat with grace, A %s', (kind) => {
  it('A comes back inside the grace: still chatting, B hears nothing, messages flow both ways', async () => {
    const { a, b, roomId } = await pair(kind);
    expect(await a.call('leave_chat', { grace: true })).toEqual({ status: 'leaving', within_s: 1 });
    await sleep(200);
    expect(await a.call('get_status')).toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
    // Well past the grace: the call kept A.
    await sleep(PAGE_GRACE_MS + 300);
    expect(b.received('partner.disconnected')).toEqual([]);
    expect(await b.call('get_status')).toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
    expect(await a.call('send_message', { room_id: roomId, message: 'back from a reload' })).toMatchObject({ status: 'sent', seq: 1 });
    expect((await b.waitFor('message.received')).map((m) => m.message)).toEqual(['back from a reload']);
    expect(await b.call('send_message', { room_id: roomId, message: 'welcome back' })).toMatchObject({ status: 'sent', seq: 2 });
    const events = (await a.call('wait_for_events', { timeout_s: 2 })).events as { method: string; params: Record<string, unknown> }[];
    expect(events.filter((e) => e.method === 'message.received').map((e) => e.params.message)).toEqual(['welcome back']);
    expect(events.map((e) => e.method)).not.toContain('partner.disconnected');
  });

  it('A never comes back: B hears "left" after the grace, not before; A is idle', async () => {
    const { a, b, roomId } = await pair(kind);
    const started = performance.now();
    expect(await a.call('leave_chat', { grace: true })).toEqual({ status: 'leaving', within_s: 1 });
    const [disconnected] = await b.waitFor('partner.disconnected', 1, 4_000);
    const elapsed = performance.now() - started;
    expect(disconnected).toEqual({ room_id: roomId, reason: 'left' });
    expect(elapsed).toBeGreaterThanOrEqual(PAGE_GRACE_MS);
    expect(elapsed).toBeLessThanOrEqual(4_000);
    expect(await b.call('get_status')).toEqual({ state: 'idle' });
    // A is alive, and idle, as after leave_chat.
    expect(await a.call('get_status')).toEqual({ state: 'idle' });
  });
});

describe('leave_chat with grace, refused or with nothing to leave', () => {
  it('a waiting user leaves the queue once the grace passes, and is paired with no one meanwhile', async () => {
    const a = new SessionlessClient(server.url);
    expect(await a.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    expect(await a.call('leave_chat', { grace: true })).toEqual({ status: 'leaving', within_s: 1 });
    // A keeps its place, away: B is not paired with it.
    const b = await connect();
    expect(await b.call('enter_queue')).toEqual({ status: 'waiting', position: 2 });
    await eventually(async () => expect(await health(server)).toMatchObject({ queue: 1 }), 4_000);
    expect(await b.call('get_status')).toEqual({ state: 'waiting', position: 1 });
    expect(b.received('chatroom.found')).toEqual([]);
    expect(await a.call('get_status')).toEqual({ state: 'idle' });
    await b.call('leave_chat');
  });

  it('idle: nothing to leave, answered as such', async () => {
    const a = new SessionlessClient(server.url);
    await a.call('enter_queue');
    await a.call('leave_chat');
    expect(await a.call('leave_chat', { grace: true })).toEqual({ status: 'idle' });
  });

  it('grace with block or report is refused with a sentence', async () => {
    const { a, b, roomId } = await pair('without a session, as the page');
    expect(await a.refusal('leave_chat', { grace: true, block: true })).toMatch(/grace cannot go with block or report/);
    expect(await a.refusal('leave_chat', { grace: true, report: 'rude' })).toMatch(/grace cannot go with block or report/);
    expect(await a.call('leave_chat', { room_id: roomId })).toEqual({ status: 'idle' });
    await b.waitFor('partner.disconnected');
  });
});
