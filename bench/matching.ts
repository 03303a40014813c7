/**
 * The matching run of `npm run bench`: the queue chart (machines/queue.ts) alone, in this
 * process on a simulated clock. Long lines: newcomers with random preferences join lines of
 * 100, 1,000 and `users` who can never meet one another (baseline: an empty line). A crowd:
 * `users` arrivals at 100 per simulated second with random interests, i_am and meet, and the
 * default interest wait (baseline: no preferences). Joins/s in real time; time to pair
 * simulated. Rooms end as soon as they open, so the queue holds few children.
 */
import { createActor, SimulatedClock } from 'xstate';
import type { IAm, Meet } from '../machines/matching.js';
import { DEFAULT_QUEUE_INPUT, type JoinRequest, queueMachine } from '../machines/queue.js';
import { columns, show } from './table.js';
import { percentiles } from './timing.js';

const TOPICS = ['chess', 'go', 'jazz', 'rust', 'ml', 'poetry', 'film', 'math', 'hiking', 'cooking', 'games', 'music'];

/** A small, seeded generator: the same run each time. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 48271) % 0x7fffffff;
    return state / 0x7fffffff;
  };
}

function randomRequest(random: () => number, userId: string): JoinRequest {
  const interests =
    random() < 0.5
      ? []
      : [...new Set(Array.from({ length: 1 + Math.floor(random() * 3) }, () => TOPICS[Math.floor(random() * TOPICS.length)]!))];
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

/** Joins/s; pairs, the share sharing an interest, those never paired, the longest line; simulated seconds from join to pairing. */
function crowd(users: number, withPreferences: boolean) {
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
  return {
    joinsPerS: (users * 1000) / ms,
    paired: pairs.length,
    sharedInterestShare: pairs.length === 0 ? 0 : pairs.filter((p) => p.commonInterests.length > 0).length / pairs.length,
    stillWaiting,
    longestLine: longest,
    timeToPairS: percentiles(waits),
  };
}

/** The lines newcomers join: 100, 1,000 and `users` waiting. */
const lineLengths = (users: number) => [...[100, 1_000].filter((length) => length < users), users];

/** `users` in the long line (into lines of 100, 1,000 and `users`, the last `longLine`'s), and arrivals in the crowd. */
export function measureMatching(users: number) {
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

export function formatMatching(figures: ReturnType<typeof measureMatching>): string {
  const { longLine: line, crowd: c, baselineCrowd: b } = figures;
  const both = (pick: (figures: typeof c) => string) => [pick(c), pick(b)];
  const body = [
    ...figures.lines.map(({ users, joinsPerS }) => [
      `joins/s into a line of ${show(users)} (vs empty)`,
      show(joinsPerS),
      show(line.baselineJoinsPerS),
    ]),
    ['crowd: joins/s', ...both((x) => show(x.joinsPerS))],
    ['crowd: time to pair p50 / p95 (s)', ...both((x) => `${show(x.timeToPairS.p50, 2)} / ${show(x.timeToPairS.p95, 2)}`)],
    ['crowd: longest wait (s)', ...both((x) => show(x.timeToPairS.max, 2))],
    ['crowd: pairs sharing an interest', `${show(c.sharedInterestShare * 100, 1)} %`, '-'],
    ['crowd: pairs / never paired / longest line', ...both((x) => `${show(x.paired)} / ${show(x.stillWaiting)} / ${show(x.longestLine)}`)],
  ];
  return `matching (the queue chart alone, simulated clock; ${show(figures.users)} users)\n${columns(['', 'preferences', 'baseline'], body)}`;
}
