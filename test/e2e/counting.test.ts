/**
 * The counting tests: many pairs, many messages, streams cut under load. Every
 * message must arrive exactly once, in order, at the right partner — through the SSE
 * stream (with resumes) and through wait_for_events alone. The figures are printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { health, startTestServer } from '../support/server.js';

const PAIRS = 100;
const MESSAGES = 50;
/** The tally of a run in which every message arrived once, in order, to its own receiver. */
const EVERY_MESSAGE_ONCE = { sent: PAIRS * MESSAGES, delivered: PAIRS * MESSAGES, duplicated: 0, lost: 0, outOfOrder: 0, misdelivered: 0 };
/** A bound against hangs, not a speed check: these runs take seconds alone, longer on a busy machine. */
const BOUND_MS = 180_000;

let server: RunningChatServer;

beforeAll(async () => {
  // These tests count deliveries, not the rate limit: let every sender through.
  server = await startTestServer({ messagesPerSecond: 10_000, messageBurst: 10_000, graceMs: 100 });
});
afterAll(async () => {
  await server.close();
});

/** A small seeded generator, so a failing run can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Pair {
  sender: ChatClient;
  receiver: ChatClient;
  roomId: string;
}

async function openPairs(listen: boolean): Promise<Pair[]> {
  const pairs: Pair[] = [];
  for (let start = 0; start < PAIRS; start += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, PAIRS - start) }, async () => {
        const sender = await ChatClient.connect(server.url, { listen });
        const receiver = await ChatClient.connect(server.url, { listen });
        return { sender, receiver };
      }),
    );
    // Pair them one by one: each receiver enters right after its sender.
    for (const { sender, receiver } of batch) {
      await sender.call('enter_queue');
      const { room_id: roomId } = await receiver.call('enter_queue');
      pairs.push({ sender, receiver, roomId: roomId as string });
    }
  }
  return pairs;
}

interface Tally {
  sent: number;
  delivered: number;
  duplicated: number;
  lost: number;
  outOfOrder: number;
  misdelivered: number;
}

function tally(pairs: Pair[], received: (pair: Pair) => Record<string, unknown>[]): Tally {
  const result: Tally = { sent: PAIRS * MESSAGES, delivered: 0, duplicated: 0, lost: 0, outOfOrder: 0, misdelivered: 0 };
  for (const pair of pairs) {
    const messages = received(pair);
    const seen = new Set<string>();
    let previous = 0;
    for (const m of messages) {
      if (m.room_id !== pair.roomId || !String(m.message).startsWith(`${pair.roomId}#`)) result.misdelivered += 1;
      const n = Number(String(m.message).split('#')[1]);
      if (seen.has(m.message as string)) result.duplicated += 1;
      else result.delivered += 1;
      if (n <= previous) result.outOfOrder += 1;
      previous = n;
      seen.add(m.message as string);
    }
    result.lost += MESSAGES - seen.size;
  }
  return result;
}

async function send(pairs: Pair[], beforeEach?: (pair: Pair, index: number, n: number) => void): Promise<void> {
  await Promise.all(
    pairs.map(async (pair, index) => {
      for (let n = 1; n <= MESSAGES; n++) {
        beforeEach?.(pair, index, n);
        await pair.sender.call('send_message', { room_id: pair.roomId, message: `${pair.roomId}#${n}` });
      }
    }),
  );
}

async function closeAll(pairs: Pair[]): Promise<void> {
  await Promise.all(pairs.flatMap(({ sender, receiver }) => [sender.end(), receiver.end()]));
  expect(await health(server)).toMatchObject({ sessions: 0 });
  // Each user had the grace period to come back with its token; then nothing is left.
  await eventually(async () => expect(await health(server)).toMatchObject({ actors: { users: 0, rooms: 0 } }));
}

describe(`${PAIRS} pairs × ${MESSAGES} messages`, () => {
  it(
    'arrive exactly once and in order over SSE while a third of the receivers have their stream cut',
    async () => {
      const pairs = await openPairs(true);
      const next = random(20261125);
      // A random third of the receivers lose their stream one to three times, at random messages.
      const cuts = new Map<number, Set<number>>();
      for (let i = 0; i < PAIRS; i++) {
        if (next() >= 1 / 3) continue;
        const times = 1 + Math.floor(next() * 3);
        cuts.set(i, new Set(Array.from({ length: times }, () => 1 + Math.floor(next() * MESSAGES))));
      }
      await send(pairs, (pair, index, n) => {
        if (cuts.get(index)?.has(n)) pair.receiver.cutStream();
      });
      await Promise.all(pairs.map((pair) => pair.receiver.waitFor('message.received', MESSAGES, 20_000).catch(() => {})));
      await new Promise((resolve) => setTimeout(resolve, 200)); // let any duplicate show itself

      const result = tally(pairs, (pair) => pair.receiver.received('message.received'));
      const streamCuts = pairs.reduce((sum, p) => sum + p.receiver.stats.cuts, 0);
      const resumes = pairs.reduce((sum, p) => sum + p.receiver.stats.resumes, 0);
      console.log(
        `[counting/sse] receivers cut: ${cuts.size}, stream cuts: ${streamCuts}, resumes with Last-Event-ID: ${resumes}; ` +
          `sent ${result.sent}, delivered ${result.delivered}, duplicated ${result.duplicated}, lost ${result.lost}, ` +
          `out of order ${result.outOfOrder}, misdelivered ${result.misdelivered}`,
      );
      expect(streamCuts).toBeGreaterThanOrEqual(cuts.size);
      expect(result).toEqual(EVERY_MESSAGE_ONCE);
      // The senders never hear their own messages.
      expect(pairs.every((pair) => pair.sender.received('message.received').length === 0)).toBe(true);
      await closeAll(pairs);
    },
    BOUND_MS,
  );

  it(
    'arrive exactly once and in order through wait_for_events alone',
    async () => {
      const pairs = await openPairs(false);
      const received = new Map<Pair, Record<string, unknown>[]>(pairs.map((pair) => [pair, []]));
      const deadline = Date.now() + BOUND_MS / 2;
      const readers = pairs.map(async (pair) => {
        let cursor: string | undefined;
        const got = received.get(pair)!;
        while (got.length < MESSAGES && Date.now() < deadline) {
          const page = (await pair.receiver.call('wait_for_events', { ...(cursor && { after: cursor }), timeout_s: 5 })) as {
            events: { method: string; params: Record<string, unknown> }[];
            cursor: string;
          };
          cursor = page.cursor;
          for (const event of page.events) if (event.method === 'message.received') got.push(event.params);
        }
      });
      await send(pairs);
      await Promise.all(readers);

      const result = tally(pairs, (pair) => received.get(pair)!);
      console.log(
        `[counting/wait_for_events] sent ${result.sent}, delivered ${result.delivered}, duplicated ${result.duplicated}, ` +
          `lost ${result.lost}, out of order ${result.outOfOrder}, misdelivered ${result.misdelivered}`,
      );
      expect(result).toEqual(EVERY_MESSAGE_ONCE);
      await closeAll(pairs);
    },
    BOUND_MS,
  );
});
