/**
 * The matching run of `npm run bench`: the queue chart itself (machines/queue.ts), in
 * this process on a simulated clock, so what is measured is the chart's own cost and
 * the waits its rules make, not the network's.
 *
 *   1. Long lines: 100, 1,000 and `users` waiting users who can never meet one another
 *      (agents that want humans), which a scan of the line would visit at every join
 *      (the queue's index does not); newcomers with random preferences join and leave
 *      again. Baseline in the same run: the same newcomers joining an empty line. Joins
 *      per second (real time), after an untimed warm-up.
 *   2. A crowd: `users` arrivals at 100 per simulated second, with random interests
 *      (half have none; the others 1–3 of 12 topics), i_am and meet (a fifth choose),
 *      and the default 10 s interest wait. Time to pair (simulated), how many pairs
 *      share an interest, the longest line, and joins per second (real time). Baseline:
 *      the same arrivals with no preferences (first come, first served).
 *
 * Rooms end as soon as they open, so the queue holds no more than a few children.
 */
import { createActor, SimulatedClock } from 'xstate';
import type { IAm, Meet } from '../machines/matching.js';
import { DEFAULT_QUEUE_INPUT, queueMachine, type JoinRequest } from '../machines/queue.js';

export interface MatchingFigures {
  /** Users in the long line, and arrivals in the crowd. */
  users: number;
  /** Into the line of `users`. */
  longLine: { joinsPerS: number; baselineJoinsPerS: number; newcomers: number };
  /** Into lines of 100, 1,000 and `users` (the last is `longLine`'s). */
  lines: { users: number; joinsPerS: number }[];
  crowd: CrowdFigures;
  baselineCrowd: CrowdFigures;
}

export interface CrowdFigures {
  joinsPerS: number;
  paired: number;
  /** Pairs who share an interest, of all pairs. */
  sharedInterestShare: number;
  stillWaiting: number;
  longestLine: number;
  /** Simulated seconds from a user's join to its pairing. */
  timeToPairS: { p50: number; p95: number; max: number };
}

const TOPICS = ['chess', 'go', 'jazz', 'rust', 'ml', 'poetry', 'film', 'math', 'hiking', 'cooking', 'games', 'music'];

/** A small, seeded generator: the same run each time. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 48271) % 0x7fffffff) / 0x7fffffff;
}

function randomRequest(random: () => number, userId: string): JoinRequest {
  const interests = random() < 0.5 ? [] : [...new Set(Array.from({ length: 1 + Math.floor(random() * 3) }, () => TOPICS[Math.floor(random() * TOPICS.length)]!))];
  const iAm: IAm = random() < 0.5 ? 'agent' : 'human';
  const meet: Meet = random() < 0.8 ? 'anyone' : random() < 0.5 ? 'agents' : 'humans';
  return { userId, avoid: null, interests, iAm, meet };
}

function startQueue(clock: SimulatedClock) {
  const queue = createActor(queueMachine, { input: DEFAULT_QUEUE_INPUT, clock });
  const pairs: { members: readonly [string, string]; commonInterests: string[] }[] = [];
  queue.on('queue.paired', ({ roomId, members, commonInterests }) => {
    pairs.push({ members, commonInterests });
    queue.system.get(`room:${roomId}`)?.send({ type: 'room.leave', userId: members[0], reason: 'left' });
  });
  queue.start();
  let rooms = 0;
  const join = (request: JoinRequest) => queue.send({ type: 'queue.join', ...request, roomId: `r${rooms++}`, at: clock.now() });
  return { queue, pairs, join };
}

/** Real milliseconds `run` takes. */
function timed(run: () => void): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

function longLine(users: number, newcomers: number, filled: boolean): number {
  const clock = new SimulatedClock();
  const { queue, join } = startQueue(clock);
  if (filled) for (let i = 0; i < users; i++) join({ userId: `line${i}`, avoid: null, iAm: 'agent', meet: 'humans' });
  const random = seeded(11);
  const requests = Array.from({ length: newcomers }, (_, i) => randomRequest(random, `new${i}`));
  const ms = timed(() => {
    for (const request of requests) {
      join(request);
      queue.send({ type: 'queue.leave', userId: request.userId });
    }
  });
  queue.stop();
  return (newcomers * 1000) / ms;
}

function crowd(users: number, withPreferences: boolean): CrowdFigures {
  const clock = new SimulatedClock();
  const { queue, pairs, join } = startQueue(clock);
  const random = seeded(7);
  const joinedAt = new Map<string, number>();
  const waits: number[] = [];
  let seen = 0;
  let longest = 0;
  const collect = () => {
    for (; seen < pairs.length; seen++) for (const member of pairs[seen]!.members) waits.push((clock.now() - joinedAt.get(member)!) / 1000);
  };
  const ms = timed(() => {
    for (let i = 0; i < users; i++) {
      // Arrivals 100 per simulated second, spaced at random (exponential gaps).
      clock.increment(Math.round(-Math.log(1 - random()) * 10));
      collect();
      const userId = `u${i}`;
      const request = withPreferences ? randomRequest(random, userId) : { userId, avoid: null };
      joinedAt.set(userId, clock.now());
      join(request);
      collect();
      longest = Math.max(longest, queue.getSnapshot().context.waiting.size);
    }
  });
  // Let every interest wait run out, so that the figures count who could ever be paired.
  clock.increment(DEFAULT_QUEUE_INPUT.interestWaitMs);
  collect();
  const stillWaiting = queue.getSnapshot().context.waiting.size;
  queue.stop();
  waits.sort((a, b) => a - b);
  const at = (q: number) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))] ?? 0;
  return {
    joinsPerS: (users * 1000) / ms,
    paired: pairs.length,
    sharedInterestShare: pairs.length === 0 ? 0 : pairs.filter((p) => p.commonInterests.length > 0).length / pairs.length,
    stillWaiting,
    longestLine: longest,
    timeToPairS: { p50: at(0.5), p95: at(0.95), max: waits.at(-1) ?? 0 },
  };
}

/** The lines newcomers join: 100, 1,000 and `users` waiting. */
const lineLengths = (users: number) => [...[100, 1_000].filter((length) => length < users), users];

export function measureMatching(users: number): MatchingFigures {
  const newcomers = Math.min(2_000, users);
  // Warm up: no timed run should pay for compiling the chart (one run is not enough).
  for (let run = 0; run < 3; run++) longLine(1_000, newcomers, true);
  const lines = lineLengths(users).map((length) => ({ users: length, joinsPerS: longLine(length, newcomers, true) }));
  return {
    users,
    longLine: { joinsPerS: lines.at(-1)!.joinsPerS, baselineJoinsPerS: longLine(users, newcomers, false), newcomers },
    lines,
    crowd: crowd(users, true),
    baselineCrowd: crowd(users, false),
  };
}

export function formatMatching(figures: MatchingFigures): string {
  const n = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const { longLine: line, crowd: c, baselineCrowd: b } = figures;
  const row = (label: string, a: string, z: string) => `  ${label.padEnd(42)} ${a.padStart(14)} ${z.padStart(14)}`;
  return [
    `matching (the queue chart alone, simulated clock; ${n(figures.users)} users)`,
    row('', 'preferences', 'baseline'),
    ...figures.lines.map(({ users, joinsPerS }) => row(`joins/s into a line of ${n(users)} (vs empty)`, n(joinsPerS), n(line.baselineJoinsPerS))),
    row('crowd: joins/s', n(c.joinsPerS), n(b.joinsPerS)),
    row('crowd: time to pair p50 / p95 (s)', `${n(c.timeToPairS.p50, 2)} / ${n(c.timeToPairS.p95, 2)}`, `${n(b.timeToPairS.p50, 2)} / ${n(b.timeToPairS.p95, 2)}`),
    row('crowd: longest wait (s)', n(c.timeToPairS.max, 2), n(b.timeToPairS.max, 2)),
    row('crowd: pairs sharing an interest', `${n(c.sharedInterestShare * 100, 1)} %`, '-'),
    row('crowd: pairs / never paired / longest line', `${n(c.paired)} / ${n(c.stillWaiting)} / ${n(c.longestLine)}`, `${n(b.paired)} / ${n(b.stillWaiting)} / ${n(b.longestLine)}`),
  ].join('\n');
}
