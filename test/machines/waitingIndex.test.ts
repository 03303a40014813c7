/**
 * The queue's index of the waiting line (machines/waitingIndex.ts, waitingLine.ts)
 * chooses as the scan `partnerFor` (machines/matching.ts) does: on random lines, and on
 * the queue chart driven by random joins, leaves, absences, returns, widenings and
 * rematches, where each pairing is the one the scan picks from the line as it stood.
 */
import fc from 'fast-check';
import { createActor, SimulatedClock, type SnapshotFrom } from 'xstate';
import { describe, expect, it } from 'vitest';
import { partnerFor, type WaitingUser } from '../../machines/matching.js';
import { queueMachine, seekerOf, type QueueEmitted, type QueueEvent } from '../../machines/queue.js';
import { partnerIn } from '../../machines/waitingLine.js';

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
        expect(idOf(partnerIn([...line], seeker))).toBe(idOf(partnerFor(line, seeker)));
      }),
      { numRuns: 3000, seed: 20260707 },
    );
  });
});

const event = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ userId: user, asked: asks }).map(({ userId, asked: { iAm, ...asked } }): QueueEvent => ({
      type: 'queue.join',
      userId,
      ...asked,
      ...(iAm && { iAm }),
      roomId: `room-${userId}`,
    })),
  },
  { weight: 2, arbitrary: fc.record({ type: fc.constantFrom('queue.leave' as const, 'queue.rematchable' as const), userId: user }) as fc.Arbitrary<QueueEvent> },
  { weight: 2, arbitrary: fc.record({ type: fc.constantFrom('queue.away' as const, 'queue.widen' as const), userId: user }) as fc.Arbitrary<QueueEvent> },
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
  const place = (userId: string) => context.waiting.findIndex((w) => w.userId === userId);
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
            const stored = JSON.parse(JSON.stringify(current.queue.getPersistedSnapshot())) as SnapshotFrom<typeof queueMachine>;
            current.queue.stop();
            current = startQueue(stored);
            continue;
          }
          const expected = scanned(current, next);
          const before = current.paired.length;
          current.queue.send(next);
          expect(current.paired.slice(before).map((p) => [...p.members]), JSON.stringify(next)).toEqual(expected ? [expected] : []);
          // The index carried on agrees with the scan: for every user left in line, as it is and as if back, and for newcomers.
          const { waiting } = current.queue.getSnapshot().context;
          for (const seeker of [...waiting.flatMap((w) => [w, { ...w, away: false }]), ...PROBES])
            expect(idOf(partnerIn(waiting, seeker))).toBe(idOf(partnerFor(waiting, seeker)));
        }
        current.queue.stop();
      }),
      { numRuns: 1000, seed: 20260708 },
    );
  });
});
