/**
 * The queue's waiting line (machines/waitingLine.ts) and its index (waitingIndex.ts).
 * The index chooses as the scan `partnerFor` (machines/matching.ts) does: on random
 * lines, and on the queue chart driven by random joins, leaves, absences, returns,
 * widenings and rematches, where each pairing is the one the scan picks from the line
 * as it stood. The line, changed at random, holds what a plain array would, and every
 * line it was made from still holds what it held.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type SnapshotFrom } from 'xstate';
import { partnerFor, type WaitingUser } from '../../machines/matching.js';
import { type QueueEmitted, type QueueEvent, queueMachine, restoredQueue, type StoredQueue, seekerOf } from '../../machines/queue.js';
import { WaitingLine } from '../../machines/waitingLine.js';

const USERS = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7'];
const TOPICS = ['chess', 'go', 'jazz'];

const user = fc.constantFrom(...USERS);
const asks = fc.record({
  interests: fc.subarray(TOPICS),
  iAm: fc.constantFrom('agent' as const, 'human' as const, undefined),
  meet: fc.constantFrom('anyone' as const, 'agents' as const, 'humans' as const),
  avoid: fc.option(user, { nil: null }),
  blocked: fc.subarray(USERS, { maxLength: 2 }),
});

const waitingUser = (userId: string) =>
  fc.record({ asked: asks, away: fc.boolean(), widened: fc.boolean() }).map(
    ({ asked: { iAm, ...asked }, away, widened }): WaitingUser => ({
      userId,
      ...asked,
      ...(iAm && { iAm }),
      ...(away && { away }),
      widened: widened || asked.interests.length === 0,
      spareRoomId: `room-of-${userId}`,
    }),
  );

/** A line of distinct users in a random order, and a seeker: a newcomer, or one of them as it now stands. */
const lineAndSeeker = fc
  .shuffledSubarray(USERS, { minLength: 0 })
  .chain((ids) => fc.tuple(fc.tuple(...ids.map(waitingUser)), fc.constantFrom(...USERS).chain(waitingUser)));

const idOf = (found: WaitingUser | undefined) => found?.userId;

/** Newcomers of every kind, open to anyone or with one interest: whom each would meet shows the order of every bucket. */
const PROBES: WaitingUser[] = (['agent', 'human', undefined] as const).flatMap((iAm) =>
  (['anyone', 'agents', 'humans'] as const).flatMap((meet) =>
    [[], ...TOPICS.map((topic) => [topic])].map((interests) => ({
      userId: 'probe',
      interests,
      ...(iAm && { iAm }),
      meet,
      avoid: null,
      blocked: [],
      widened: interests.length === 0,
      spareRoomId: 'room-of-probe',
    })),
  ),
);

describe('the waiting line index', () => {
  it('picks the partner the scan picks, on random lines', () => {
    fc.assert(
      fc.property(lineAndSeeker, ([line, seeker]) => {
        expect(idOf(WaitingLine.of(line).partnerFor(seeker))).toBe(idOf(partnerFor(line, seeker)));
      }),
      { numRuns: 3000, seed: 20260707 },
    );
  });
});

const event = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ userId: user, asked: asks }).map(
      ({ userId, asked: { iAm, ...asked } }): QueueEvent => ({
        type: 'queue.join',
        userId,
        ...asked,
        ...(iAm && { iAm }),
        roomId: `room-${userId}`,
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constantFrom('queue.leave' as const, 'queue.rematchable' as const),
      userId: user,
    }) as fc.Arbitrary<QueueEvent>,
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constantFrom('queue.away' as const, 'queue.widen' as const),
      userId: user,
    }) as fc.Arbitrary<QueueEvent>,
  },
  { weight: 2, arbitrary: user.map((userId): QueueEvent => ({ type: 'queue.back', userId, roomId: `back-${userId}` })) },
  // The holder that takes the line over restores it from storage: the index is built afresh.
  { weight: 1, arbitrary: fc.constant('restore' as const) },
);

type Queue = ReturnType<typeof startQueue>;

function startQueue(snapshot?: SnapshotFrom<typeof queueMachine>) {
  const queue = createActor(queueMachine, { input: {}, clock: new SimulatedClock(), ...(snapshot && { snapshot }) });
  const paired: QueueEmitted[] = [];
  queue.on('queue.paired', (pairing) => paired.push(pairing));
  return { queue: queue.start(), paired };
}

/** The pairing the scan makes of `event` on the line as it stands: the seeker and the partner, earliest first. */
function scanned({ queue }: Queue, event: QueueEvent): string[] | undefined {
  const { context } = queue.getSnapshot();
  const found = seekerOf(context, event);
  const partner = found && partnerFor(context.waiting, found.seeker);
  if (!found || !partner) return undefined;
  const place = (userId: string) => [...context.waiting].findIndex((w) => w.userId === userId);
  const seekerFirst = found.waiting && place(found.seeker.userId) < place(partner.userId);
  return seekerFirst ? [found.seeker.userId, partner.userId] : [partner.userId, found.seeker.userId];
}

describe('the queue chart with its index', () => {
  it('pairs as the scan does, through random joins, leaves, absences, returns, widenings, rematches and restores', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), (events) => {
        let current = startQueue();
        for (const next of events) {
          if (next === 'restore') {
            const stored = JSON.parse(JSON.stringify(current.queue.getPersistedSnapshot())) as StoredQueue;
            current.queue.stop();
            current = startQueue(restoredQueue(stored));
            continue;
          }
          const expected = scanned(current, next);
          const before = current.paired.length;
          current.queue.send(next);
          expect(
            current.paired.slice(before).map((p) => [...p.members]),
            JSON.stringify(next),
          ).toEqual(expected ? [expected] : []);
          // The index carried on agrees with the scan: for every user left in line, as it is and as if back, and for newcomers.
          const { waiting } = current.queue.getSnapshot().context;
          for (const seeker of [...[...waiting].flatMap((w) => [w, { ...w, away: false }]), ...PROBES])
            expect(idOf(waiting.partnerFor(seeker))).toBe(idOf(partnerFor(waiting, seeker)));
        }
        current.queue.stop();
      }),
      { numRuns: 1000, seed: 20260708 },
    );
  });
});

/**
 * A change to a line: newcomers at the tail, users standing anew (away or back), or
 * users leaving, one by one or together (a pick past the line's end names one not in
 * it). Changes come in runs, so that lines grow over many chunks and thin out again.
 */
type LineChange =
  | { kind: 'with'; count: number }
  | { kind: 'replacing'; picks: number[] }
  | { kind: 'without'; picks: number[]; together: boolean };

// `size: 'max'`: fast-check otherwise keeps arrays to about ten items.
const picks = (most: number) => fc.array(fc.nat(), { minLength: 1, maxLength: most, size: 'max' });
// Unbiased: fast-check favours small numbers and short arrays, which would leave lines long and their fronts thinned.
const lineChange: fc.Arbitrary<LineChange> = fc.noBias(
  fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 400 }).map((count) => ({ kind: 'with' as const, count })) },
    { weight: 1, arbitrary: picks(40).map((picks) => ({ kind: 'replacing' as const, picks })) },
    {
      weight: 3,
      arbitrary: fc.record({ picks: picks(400), together: fc.boolean() }).map((change) => ({ kind: 'without' as const, ...change })),
    },
  ),
);

const newcomer = (n: number): WaitingUser => ({
  userId: `n${n}`,
  avoid: null,
  blocked: [],
  interests: n % 3 === 0 ? ['chess'] : [],
  meet: 'anyone',
  widened: n % 3 !== 0,
  spareRoomId: `room-${n}`,
});

describe('the waiting line', () => {
  it('holds what an array would, through random changes across many chunks, and every earlier line keeps what it held', () => {
    fc.assert(
      fc.property(fc.array(lineChange, { minLength: 5, maxLength: 30 }), (changes) => {
        let line = WaitingLine.empty;
        let array: WaitingUser[] = [];
        const history: [WaitingLine, WaitingUser[]][] = [];
        let joined = 0;
        const idAt = (pick: number) => array[pick % (array.length + 2)]?.userId ?? 'nobody';
        const step = (next: WaitingLine, expected: WaitingUser[]) => {
          history.push([line, array]);
          [line, array] = [next, expected];
          expect(line.size).toBe(array.length);
        };
        for (const change of changes) {
          if (change.kind === 'with')
            for (let i = 0; i < change.count; i++) {
              const user = newcomer(joined++);
              step(line.with(user), [...array, user]);
            }
          else if (change.kind === 'replacing')
            for (const pick of change.picks) {
              const standing = array.find((w) => w.userId === idAt(pick));
              const user = standing ? { ...standing, away: !standing.away } : newcomer(-1);
              step(
                line.replacing(user),
                array.map((w) => (w.userId === user.userId ? user : w)),
              );
            }
          else
            for (const ids of change.together ? [change.picks.map(idAt)] : change.picks.map((pick) => [idAt(pick)]))
              step(
                line.without(ids),
                array.filter((w) => !ids.includes(w.userId)),
              );
        }
        expect([...line]).toEqual(array);
        expect(line.toJSON()).toEqual(array);
        for (const user of array) expect(line.userOf(user.userId)).toBe(user);
        // Earlier lines, asked again (their index rebuilt), and lines read back from storage.
        for (const [earlier, held] of history.filter((_, i) => i % 97 === 0)) {
          expect([...earlier]).toEqual(held);
          expect(held.every((user) => earlier.userOf(user.userId) === user)).toBe(true);
          expect([...WaitingLine.of(JSON.parse(JSON.stringify(earlier)) as WaitingUser[])]).toEqual(held);
        }
      }),
      // A failing run is reported as found: shrinking thousands of changes takes longer than reading them.
      { numRuns: 40, seed: 20261207, endOnFailure: true },
    );
  });

  it('an older line changed again leaves the newer one as it was', () => {
    const users = Array.from({ length: 300 }, (_, n) => newcomer(n));
    const line = WaitingLine.of(users);
    const newer = line.without(['n5', 'n200']);
    const other = line.with(newcomer(300)).without(['n0']);
    expect([...newer].map((w) => w.userId)).toEqual(users.map((w) => w.userId).filter((id) => id !== 'n5' && id !== 'n200'));
    expect(newer.userOf('n0')).toBe(users[0]);
    expect(newer.userOf('n300')).toBeUndefined();
    expect(other.userOf('n5')).toBe(users[5]);
    expect(other.size).toBe(300);
    expect(newer.standsAhead('n1', 'n299')).toBe(true);
  });
});
