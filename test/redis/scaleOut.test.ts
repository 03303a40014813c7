/**
 * Several real server processes on one real Redis (`--redis-url`), as users meet them:
 * one FIFO line across processes, chats across processes that lose, repeat and reorder
 * nothing, processes that die (`kill -9`), stop (SIGTERM) or freeze (SIGSTOP), Redis
 * down and Redis restarted empty, and a client whose requests go round robin.
 *
 * Clients are the ChatGPT pattern (tools/call with no session, by user_token) over
 * plain HTTP. Heartbeats are short (flags), and every timer-driven outcome is checked
 * against its bound plus a generous margin.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/chat/broker/redis/connection.js';
import { eventually } from '../support/eventually.js';
import type { ServerProcess } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { SessionlessClient as Sessionless } from '../support/tokenClient.js';
import { clientOf, healthOf, mcpUrl, startChatProcesses } from './scaleOutSupport.js';

const DEAD_AFTER_MS = 2_000;
/** Under load, on a busy 2-core machine, an event loop may stall for seconds: no false death. */
const LOADED_DEAD_AFTER_MS = 8_000;
/** For tests that send as fast as they can: the per-user send rate is not what they check. */
const UNLIMITED_SENDING = ['--messages-per-second', '10000', '--message-burst', '10000'];
/** A busy two-core machine may be this late. */
const MARGIN_MS = 6_000;

let redis: TestRedis;
const servers: ServerProcess[] = [];

/** Processes on the test's Redis; `deadAfterMs` longer for tests that load a busy machine (no false death). */
async function startProcesses(count: number, extra: string[] = [], deadAfterMs = DEAD_AFTER_MS): Promise<ServerProcess[]> {
  const started = await startChatProcesses(redis.url, count, { deadAfterMs, extra });
  servers.push(...started);
  return started;
}

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop().catch(() => {})));
  const admin = connectRedis(redis.url);
  await admin.flushall().catch(() => {});
  admin.disconnect();
});

afterAll(async () => {
  await redis.stop();
});

describe('one line across processes', () => {
  it('answers enter_queue with what the queue decided, whichever process each call reaches: 10 trials of two newcomers on 3 processes, round robin', async () => {
    const processes = await startProcesses(3);
    let turn = 0;
    const roundRobin = () => mcpUrl(processes[turn++ % processes.length]!);
    for (let trial = 0; trial < 10; trial++) {
      const first = new Sessionless(roundRobin);
      const second = new Sessionless(roundRobin);
      expect(await first.call('enter_queue'), `trial ${trial}: the first newcomer`).toMatchObject({ status: 'waiting', position: 1 });
      const answer = await second.call('enter_queue');
      expect(answer, `trial ${trial}: the second newcomer`).toMatchObject({
        status: 'matched',
        room_id: expect.any(String),
        common_interests: [],
      });
      const found = (await first.until('chatroom.found')).find((e) => e.method === 'chatroom.found')!;
      expect(found.params.room_id).toBe(answer.room_id);
      expect(await second.call('get_status')).toMatchObject({ state: 'chatting', room_id: answer.room_id });
      await first.call('leave_chat');
    }
    // get_status of a waiting user reads its place in the line the holder keeps.
    const waiting = [new Sessionless(roundRobin), new Sessionless(roundRobin)];
    for (const user of waiting) await user.call('enter_queue', { i_am: 'agent', meet: 'humans' });
    expect(await waiting[1]!.call('get_status')).toMatchObject({ state: 'waiting', position: 1 });
  });

  it('pairs 200 users who join alternately on 2 processes in join order, each pair across both', async () => {
    const [a, b] = await startProcesses(2);
    const users = Array.from({ length: 200 }, (_, i) => clientOf(i % 2 === 0 ? a! : b!));
    for (const user of users) expect(await user.call('enter_queue')).toMatchObject({ status: expect.stringMatching(/waiting|matched/) });
    const rooms = await Promise.all(
      users.map(async (user) => (await user.until('chatroom.found')).find((e) => e.method === 'chatroom.found')!.params.room_id),
    );
    for (let i = 0; i < users.length; i += 2) expect(rooms[i + 1], `users ${i} and ${i + 1}`).toBe(rooms[i]);
    expect(new Set(rooms).size).toBe(100);
  });

  it('never pairs two users again at once after next, across processes', async () => {
    const [a, b] = await startProcesses(2);
    const [x, y] = [clientOf(a!), clientOf(b!)];
    await x.call('enter_queue');
    await y.call('enter_queue');
    const first = (await x.until('chatroom.found')).at(-1)!.params.room_id;
    await y.until('chatroom.found');
    await x.call('next');
    await y.until('partner.disconnected');
    await y.call('next');
    // Not paired again at once: both wait (the rematch time is 30 s).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await x.call('get_status')).toMatchObject({ state: 'waiting', position: 1 });
    expect(await y.call('get_status')).toMatchObject({ state: 'waiting' });
    // A newcomer meets the first in line.
    const z = clientOf(a!);
    await z.call('enter_queue');
    const found = (await z.until('chatroom.found')).at(-1)!.params.room_id;
    expect(found).not.toBe(first);
    expect(await x.call('get_status')).toMatchObject({ state: 'chatting', room_id: found });
  });
});

describe('messages across processes', () => {
  it('2 processes × 100 users, every pair across both: 5,000 messages while Redis connections are cut 3 times, none lost, repeated or out of order, no process declared dead', async () => {
    const [a, b] = await startProcesses(2, UNLIMITED_SENDING, LOADED_DEAD_AFTER_MS);
    const users = Array.from({ length: 200 }, (_, i) => clientOf(i % 2 === 0 ? a! : b!));
    for (const user of users) await user.call('enter_queue');
    const roomOf = await Promise.all(users.map(async (user) => String((await user.until('chatroom.found')).at(-1)!.params.room_id)));
    const PER_SENDER = 25;
    let cuts = 0;
    const cutting = (async () => {
      for (; cuts < 3; cuts++) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        await redis.cutClients();
      }
    })();
    // Both members of each pair send; each reads what it was sent.
    await Promise.all(
      users.map(async (user, i) => {
        for (let n = 1; n <= PER_SENDER; n++) {
          const receipt = await user.call('send_message', { room_id: roomOf[i], message: `${i}:${n}` });
          expect(receipt).toMatchObject({ status: 'sent', seq: expect.any(Number) });
        }
      }),
    );
    await Promise.all(
      users.map(async (user, i) => {
        const partner = i % 2 === 0 ? i + 1 : i - 1;
        const texts: string[] = [];
        const seqs: number[] = [];
        const deadline = Date.now() + 30_000;
        while (texts.length < PER_SENDER && Date.now() < deadline)
          for (const event of await user.waitForEvents(2))
            if (event.method === 'message.received') {
              texts.push(String(event.params.message));
              seqs.push(Number(event.params.seq));
            }
        expect(texts).toEqual(Array.from({ length: PER_SENDER }, (_, n) => `${partner}:${n + 1}`));
        expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
      }),
    );
    await cutting;
    expect(cuts).toBe(3);
    expect([await healthOf(a!), await healthOf(b!)]).toEqual([200, 200]);
  });

  it('a pair on one process never touches Redis per message', async () => {
    const [a] = await startProcesses(1, UNLIMITED_SENDING);
    const [x, y] = [clientOf(a!), clientOf(a!)];
    await x.call('enter_queue');
    await y.call('enter_queue');
    const room = (await x.until('chatroom.found')).at(-1)!.params.room_id;
    await y.until('chatroom.found');
    const admin = connectRedis(redis.url);
    // Every record between processes, and every intent for the queue, is a stream append
    // (XADD, counted also when a script makes it); heartbeats append nothing.
    const appends = async () => Number(/cmdstat_xadd:calls=(\d+)/.exec(String(await admin.info('commandstats')))?.[1] ?? 0);
    try {
      const before = await appends();
      for (let n = 1; n <= 200; n++) await x.call('send_message', { room_id: room, message: `m${n}` });
      expect(await appends()).toBe(before);
    } finally {
      admin.disconnect();
    }
    const heard = [];
    while (heard.length < 200) heard.push(...(await y.waitForEvents(2)).filter((e) => e.method === 'message.received'));
    expect(heard.map((e) => e.params.message)).toEqual(Array.from({ length: 200 }, (_, i) => `m${i + 1}`));
  });

  it('a client whose every request goes to the next process (round robin) completes a chat', async () => {
    const [a, b, c] = await startProcesses(3);
    const ring = [a!, b!, c!];
    const roaming = new Sessionless((call) => mcpUrl(ring[call % ring.length]!));
    const settled = clientOf(b!);
    await roaming.call('enter_queue');
    await settled.call('enter_queue');
    const room = (await roaming.until('chatroom.found')).at(-1)!.params.room_id;
    expect(await roaming.call('send_message', { room_id: room, message: 'hello from everywhere' })).toMatchObject({
      status: 'sent',
      seq: 1,
    });
    expect((await settled.until('message.received')).at(-1)!.params.message).toBe('hello from everywhere');
    await settled.call('send_message', { room_id: room, message: 'hi back' });
    expect((await roaming.until('message.received')).at(-1)!.params.message).toBe('hi back');
    expect(await roaming.call('leave_chat')).toEqual({ status: 'idle' });
    expect((await settled.until('partner.disconnected')).at(-1)!.params.reason).toBe('left');
  });
});

describe('processes that go', () => {
  it('kill -9 of one of 3 processes mid-chat: partners elsewhere hear "disconnected" within the bound; the others chat on', async () => {
    const [a, b, c] = await startProcesses(3);
    const [onA, onB, onC, onC2] = [clientOf(a!), clientOf(b!), clientOf(c!), clientOf(c!)];
    await onA.call('enter_queue');
    await onB.call('enter_queue');
    await onC.call('enter_queue');
    await onC2.call('enter_queue');
    await Promise.all([onA, onB, onC, onC2].map((user) => user.until('chatroom.found')));
    process.kill(b!.serverPid, 'SIGKILL');
    const killed = Date.now();
    const heard = await onA.until('partner.disconnected');
    expect(heard.find((e) => e.method === 'partner.disconnected')!.params.reason).toBe('disconnected');
    expect(Date.now() - killed).toBeLessThan(DEAD_AFTER_MS + MARGIN_MS);
    // The pair on c never noticed.
    const room = (await onC.call('get_status')).room_id;
    expect(await onC.call('send_message', { room_id: room, message: 'still here' })).toMatchObject({ status: 'sent' });
    expect((await onC2.until('message.received')).at(-1)!.params.message).toBe('still here');
  });

  it('kill -9 of a process: its waiting users leave the line, so nobody is paired with a ghost', async () => {
    const [a, b] = await startProcesses(2);
    const ghost = clientOf(b!);
    await ghost.call('enter_queue', { interests: ['ghosts'] });
    await eventually(async () => expect(await ghost.call('get_status')).toMatchObject({ state: 'waiting', position: 1 }));
    process.kill(b!.serverPid, 'SIGKILL');
    // Once b is declared dead, two newcomers sharing the interest meet each other (had
    // the ghost stayed in line, the first would have been seated with it, for ever).
    await new Promise((resolve) => setTimeout(resolve, DEAD_AFTER_MS + 2_000));
    const [newcomer, next] = [clientOf(a!), clientOf(a!)];
    await newcomer.call('enter_queue', { interests: ['ghosts'] });
    await next.call('enter_queue', { interests: ['ghosts'] });
    const [met, metToo] = await Promise.all([newcomer.until('chatroom.found'), next.until('chatroom.found')]);
    expect(met.at(-1)!.params.room_id).toBe(metToo.at(-1)!.params.room_id);
  });

  it('kill -9 of the queue holder: no join is lost, pairing resumes, FIFO holds', async () => {
    const [a] = await startProcesses(1);
    const [b] = await startProcesses(1);
    // a started first and holds the line; a user of b waits in it.
    const early = clientOf(b!);
    await early.call('enter_queue');
    await eventually(async () => expect(await early.call('get_status')).toMatchObject({ state: 'waiting', position: 1 }));
    process.kill(a!.serverPid, 'SIGKILL');
    const later = clientOf(b!);
    await later.call('enter_queue');
    const [x, y] = await Promise.all([
      early.until('chatroom.found', 3 * DEAD_AFTER_MS + MARGIN_MS),
      later.until('chatroom.found', 3 * DEAD_AFTER_MS + MARGIN_MS),
    ]);
    expect(x.at(-1)!.params.room_id).toBe(y.at(-1)!.params.room_id);
  });

  it('SIGTERM of one process: its users\' partners hear "shutdown"; nobody else notices', async () => {
    const [a, b] = await startProcesses(2);
    const [onA, onB, onB2, onB3] = [clientOf(a!), clientOf(b!), clientOf(b!), clientOf(b!)];
    await onA.call('enter_queue');
    await onB.call('enter_queue');
    await onB2.call('enter_queue');
    await onB3.call('enter_queue');
    await Promise.all([onA, onB, onB2, onB3].map((user) => user.until('chatroom.found')));
    await a!.stop();
    const heard = await onB.until('partner.disconnected');
    expect(heard.find((e) => e.method === 'partner.disconnected')!.params.reason).toBe('shutdown');
    const room = (await onB2.call('get_status')).room_id;
    expect(await onB2.call('send_message', { room_id: room, message: 'fine' })).toMatchObject({ status: 'sent' });
    expect(await healthOf(b!)).toBe(200);
  });

  it('SIGTERM while Redis holds writes back a moment: the leave still comes before the process is gone', async () => {
    const [a, b] = await startProcesses(2);
    const [onA, onB] = [clientOf(a!), clientOf(b!)];
    await onA.call('enter_queue');
    await onB.call('enter_queue');
    await Promise.all([onA, onB].map((user) => user.until('chatroom.found')));
    // Every write waits (Redis runs them in order after): the user's leave and the
    // process's own leave from the cluster would reach the other process together.
    const admin = connectRedis(redis.url);
    try {
      await admin.call('CLIENT', 'PAUSE', '300', 'WRITE');
      await a!.stop();
    } finally {
      admin.disconnect();
    }
    const heard = await onB.until('partner.disconnected');
    expect(heard.find((e) => e.method === 'partner.disconnected')!.params.reason).toBe('shutdown');
  });

  it('a process frozen (SIGSTOP) past the bound finds itself declared dead when it wakes: /healthz 503', async () => {
    const [a, b] = await startProcesses(2);
    const [onA, onB] = [clientOf(a!), clientOf(b!)];
    await onA.call('enter_queue');
    await onB.call('enter_queue');
    await onA.until('chatroom.found');
    process.kill(b!.serverPid, 'SIGSTOP');
    try {
      const heard = await onA.until('partner.disconnected');
      expect(heard.find((e) => e.method === 'partner.disconnected')!.params.reason).toBe('disconnected');
    } finally {
      process.kill(b!.serverPid, 'SIGCONT');
    }
    await eventually(async () => expect(await healthOf(b!)).toBe(503), MARGIN_MS);
    expect(await healthOf(a!)).toBe(200);
  });
});

describe('Redis trouble', () => {
  it('Redis down: pairing answers a clear error within seconds, a pair on one process chats on, /healthz 503; back, service resumes', async () => {
    const [a] = await startProcesses(1);
    const [x, y] = [clientOf(a!), clientOf(a!)];
    await x.call('enter_queue');
    await y.call('enter_queue');
    const room = (await x.until('chatroom.found')).at(-1)!.params.room_id;
    await y.until('chatroom.found');
    await redis.kill();
    try {
      const started = Date.now();
      expect(await clientOf(a!).refusal('enter_queue')).toMatch(/could not reach the queue/);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await x.call('send_message', { room_id: room, message: 'no redis needed' })).toMatchObject({ status: 'sent' });
      expect((await y.until('message.received')).at(-1)!.params.message).toBe('no redis needed');
      await eventually(async () => expect(await healthOf(a!)).toBe(503), MARGIN_MS);
    } finally {
      await redis.restart();
    }
    await eventually(async () => expect(await healthOf(a!)).toBe(200), MARGIN_MS);
    const [p, q] = [clientOf(a!), clientOf(a!)];
    await p.call('enter_queue');
    await q.call('enter_queue');
    await p.until('chatroom.found', 3 * DEAD_AFTER_MS + MARGIN_MS);
  });

  it('Redis restarted empty: every chatting user is told, waiting users are queued again, no process crashes', async () => {
    const [a, b] = await startProcesses(2);
    const [x, y, waiter] = [clientOf(a!), clientOf(b!), clientOf(a!)];
    await x.call('enter_queue');
    await y.call('enter_queue');
    await x.until('chatroom.found');
    await y.until('chatroom.found');
    await waiter.call('enter_queue', { meet: 'humans' });
    await redis.restart({ wipe: true });
    for (const user of [x, y]) {
      const heard = await user.until('partner.disconnected', 3 * DEAD_AFTER_MS + MARGIN_MS);
      expect(heard.find((e) => e.method === 'partner.disconnected')!.params.reason).toBe('disconnected');
    }
    // The waiting user is in the new line again: a human who comes meets it.
    const human = clientOf(b!);
    await human.call('enter_queue', { i_am: 'human' });
    await eventually(async () => expect(await waiter.call('get_status')).toMatchObject({ state: 'chatting' }), MARGIN_MS);
    expect([await healthOf(a!), await healthOf(b!)]).toEqual([200, 200]);
  });
});
