/**
 * Matching, as users meet it over real HTTP with the official SDK clients: interests
 * first, the interest wait widening to anyone, agents or humans, `next` that never
 * strands two users, blocks and reports, and bad preferences refused.
 *
 * The server runs with short timers; a timer-driven pairing is checked against its
 * bound with a generous margin.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { health, startTestServer } from '../support/server.js';

const INTEREST_WAIT_MS = 600;
const REMATCH_AFTER_MS = 900;
/** A busy two-core machine may be this late with a timer. */
const MARGIN_MS = 4_000;

let server: RunningChatServer;
const open: ChatClient[] = [];

async function connect(): Promise<ChatClient> {
  const client = await ChatClient.connect(server.url);
  open.push(client);
  return client;
}

const found = async (client: ChatClient, count = 1) =>
  (await client.waitFor('chatroom.found', count, INTEREST_WAIT_MS + REMATCH_AFTER_MS + MARGIN_MS)).at(-1)!;

beforeAll(async () => {
  server = await startTestServer({
    interestWaitMs: INTEREST_WAIT_MS,
    rematchAfterMs: REMATCH_AFTER_MS,
    graceMs: 150,
    idleTimeoutMs: 1_000,
  });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.end().catch(() => {})));
  await eventually(async () => expect(await health(server)).toMatchObject({ actors: { users: 0, rooms: 0 }, queue: 0 }), 5_000);
});

afterAll(async () => {
  await server.close();
});

describe('interests', () => {
  it('pairs two users sharing an interest over an earlier stranger, and says what they share', async () => {
    const [stranger, ann, bob] = [await connect(), await connect(), await connect()];
    expect(await stranger.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    expect(await ann.call('enter_queue', { interests: ['  Chess ', 'go', 'chess'] })).toMatchObject({ status: 'waiting' });
    const matched = await bob.call('enter_queue', { interests: ['jazz', 'CHESS'] });
    expect(matched).toEqual({ status: 'matched', room_id: expect.any(String), common_interests: ['chess'] });
    expect(await found(ann)).toEqual({ room_id: matched.room_id, common_interests: ['chess'] });
    expect(await bob.call('get_status')).toEqual({ state: 'chatting', room_id: matched.room_id, common_interests: ['chess'] });
    expect(await stranger.call('get_status')).toEqual({ state: 'waiting', position: 1 });
  });

  it('widens after the interest wait: a user with interests meets a stranger then, not before', async () => {
    const [keen, stranger] = [await connect(), await connect()];
    const entered = Date.now();
    await keen.call('enter_queue', { interests: ['chess'] });
    const status = await keen.call('get_status');
    expect(status).toMatchObject({ state: 'waiting', position: 1 });
    expect(status.widens_in_s).toBe(Math.ceil(INTEREST_WAIT_MS / 1000));
    expect(await stranger.call('enter_queue')).toEqual({ status: 'waiting', position: 2 });
    const room = await found(keen);
    const waited = Date.now() - entered;
    expect(waited).toBeGreaterThanOrEqual(INTEREST_WAIT_MS);
    expect(waited).toBeLessThan(INTEREST_WAIT_MS + MARGIN_MS);
    expect(room).toEqual({ room_id: expect.any(String), common_interests: [] });
    expect(await found(stranger)).toEqual(room);
  });
});

describe('agents or humans', () => {
  it('does not pair an agent that wants humans with an agent, and pairs it with a human who says so', async () => {
    const [bot, otherBot, person] = [await connect(), await connect(), await connect()];
    await bot.call('enter_queue', { i_am: 'agent', meet: 'humans' });
    expect(await otherBot.call('enter_queue', { i_am: 'agent' })).toMatchObject({ status: 'waiting' });
    const matched = await person.call('enter_queue', { i_am: 'human' });
    expect(matched).toEqual({ status: 'matched', room_id: expect.any(String), common_interests: [], partner_is: 'agent' });
    expect(await found(bot)).toEqual({ room_id: matched.room_id, common_interests: [], partner_is: 'human' });
    expect(await otherBot.call('get_status')).toEqual({ state: 'waiting', position: 1 });
  });
});

describe('next never strands, blocks hold', () => {
  it('two lonely users who both call next meet again after the rematch time, not at once', async () => {
    const [a, b] = [await connect(), await connect()];
    await a.call('enter_queue');
    const first = await b.call('enter_queue');
    await found(a);
    const left = Date.now();
    expect(await a.call('next')).toEqual({ status: 'waiting', position: 1 });
    await b.waitFor('partner.disconnected');
    expect(await b.call('next')).toMatchObject({ status: 'waiting' });
    const again = await found(a, 2);
    const waited = Date.now() - left;
    expect(again.room_id).not.toBe(first.room_id);
    expect(waited).toBeGreaterThanOrEqual(REMATCH_AFTER_MS);
    expect(waited).toBeLessThan(REMATCH_AFTER_MS + MARGIN_MS);
    expect(await found(b, 2)).toEqual(again);
  });

  it('block holds past the rematch time, and a report blocks too; both only for that partner', async () => {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    await a.call('enter_queue');
    await b.call('enter_queue');
    await found(a);
    expect(await a.call('next', { block: true })).toEqual({ status: 'waiting', position: 1 });
    await b.waitFor('partner.disconnected');
    await b.call('next');
    await new Promise((resolve) => setTimeout(resolve, REMATCH_AFTER_MS * 2));
    expect(await a.call('get_status')).toEqual({ state: 'waiting', position: 1 });
    expect(await b.call('get_status')).toEqual({ state: 'waiting', position: 1 });
    // A third user meets the first in line, and reports it: they never meet again either.
    expect(await c.call('enter_queue')).toMatchObject({ status: 'matched' });
    expect(await c.call('leave_chat', { report: 'spam, spam, spam' })).toEqual({ status: 'idle' });
    await b.call('leave_chat');
    await new Promise((resolve) => setTimeout(resolve, REMATCH_AFTER_MS * 2));
    expect(await a.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    expect(await c.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    // b was blocked by a, not by c: it meets c.
    expect(await b.call('enter_queue')).toMatchObject({ status: 'matched' });
    expect(await c.call('get_status')).toMatchObject({ state: 'chatting' });
    const metrics = await (await fetch(new URL('/metrics', server.url))).text();
    expect(metrics).toMatch(/^mcp_chat_reports_total 1$/m);
  });

  it('an idle user blocks its last partner after the partner left first', async () => {
    const [a, b] = [await connect(), await connect()];
    await a.call('enter_queue');
    await b.call('enter_queue');
    await found(a);
    await b.call('leave_chat');
    await a.waitFor('partner.disconnected');
    expect(await a.call('leave_chat', { block: true })).toEqual({ status: 'idle' });
    await new Promise((resolve) => setTimeout(resolve, REMATCH_AFTER_MS * 2));
    await a.call('enter_queue');
    expect(await b.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
  });
});

describe('bad preferences', () => {
  it.each([
    [{ interests: Array.from({ length: 11 }, (_, i) => `topic ${i}`) }, /more than 10 entries/],
    [{ interests: ['   '] }, /an interest is empty/],
    [{ interests: ['x'.repeat(33)] }, /longer than 32 characters/],
    [{ interests: 'chess' }, /interests/],
    [{ i_am: 'robot' }, /i_am must be "agent" or "human"/],
    [{ meet: 'cats' }, /meet must be "anyone", "agents" or "humans"/],
  ])('refuses %j with a clear error and changes nothing', async (args, error) => {
    const client = await connect();
    await client.call('enter_queue', { interests: ['chess'] });
    expect(await client.refusal('enter_queue', args)).toMatch(error);
    expect(await client.call('get_status')).toMatchObject({ state: 'waiting', position: 1 });
    expect(await client.refusal('next', args)).toMatch(error);
    expect(await client.call('get_status')).toMatchObject({ state: 'waiting', widens_in_s: expect.any(Number) });
  });

  it('refuses an empty or overlong report, and block with no partner ever met', async () => {
    const client = await connect();
    expect(await client.refusal('leave_chat', { report: ' ' })).toMatch(/report is empty/);
    expect(await client.refusal('leave_chat', { report: 'x'.repeat(201) })).toMatch(/longer than 200 characters/);
    expect(await client.refusal('next', { report: '\u0007' })).toMatch(/control characters/);
    await client.call('enter_queue');
    await client.call('leave_chat');
    expect(await client.refusal('leave_chat', { block: true })).toMatch(/no partner yet/);
    expect(await client.call('get_status')).toEqual({ state: 'idle' });
  });
});
