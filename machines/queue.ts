/**
 * queueMachine — the one waiting line of the process.
 *
 * Holds waiting users in arrival order. When a user joins, it is paired with the
 * waiting user it meets first by the matching rules (machines/matching.ts: a shared
 * interest first, then arrival order; never a user it may not meet), and the queue
 * says `queue.paired` with the id of the room to open; otherwise it waits at the tail.
 * Two timers per waiting user may pair it later: its interest wait ending
 * (`interestWait`, then it may meet anyone open to it) and its avoidance of the
 * partner it just left ending (`rematchAfter`).
 *
 * The queue only pairs: the broker opens each room (machines/room.ts) where its members
 * are — in this process, or, with several processes, on one member's — so the line's
 * holder never holds the rooms, and a room's start and end cost the queue nothing.
 * No event type the queue takes names a user or a room: XState caches what it finds
 * for each event type a machine is asked about, for the life of the process.
 *
 * States: `open` (the queue never ends on its own).
 * Takes:  `queue.join` (the user's preferences, and the id the room gets if this join
 *         makes a pair, or later a timer does), `queue.leave`, `queue.away` /
 *         `queue.back` (a user with no sign of life keeps its place but is not paired;
 *         back, it is paired at once if it can be), `queue.shutdown` (empties the
 *         line), `queue.resume` (re-arms every timer a restored line had running). It
 *         raises `queue.widen` and `queue.rematchable` to itself, after named delays.
 * Emits:  `queue.paired` (room id, both members earliest first, the interests they
 *         share and what each said it is).
 *
 * The timers are named delays read from the input, so tests run them on a simulated
 * clock; a timer's event carries only the user id (one event type for every user).
 */
import { assign, cancel, emit, enqueueActions, raise, type SnapshotFrom, setup } from 'xstate';
import { commonInterests, type IAm, type Meet, type WaitingUser } from './matching.js';
import { WaitingLine } from './waitingLine.js';

export type { WaitingUser } from './matching.js';
export { partnerFor } from './matching.js';
export { WaitingLine } from './waitingLine.js';

export interface QueueInput {
  /** How long a user with interests waits for someone sharing one before anyone open may do, in ms. */
  interestWaitMs: number;
  /** How long a user who left a partner (`next`) is not paired with it again, in ms. */
  rematchAfterMs: number;
}

export const DEFAULT_QUEUE_INPUT: QueueInput = { interestWaitMs: 10_000, rematchAfterMs: 30_000 };

interface QueueContext extends QueueInput {
  waiting: WaitingLine;
}

/** A user asking to be paired, with what it asks of a partner. */
export interface JoinRequest {
  userId: string;
  /** The partner it just left, not to be met again until the rematch time passes. */
  avoid: string | null;
  /** Users it never meets again. Default: none. */
  blocked?: readonly string[];
  /** Default: none (anyone). */
  interests?: readonly string[];
  iAm?: IAm;
  /** Default: anyone. */
  meet?: Meet;
}

export type QueueEvent =
  /** `roomId`: the room if this join (or later, one of its timers) pairs it; `at`: when, in ms. */
  | ({ type: 'queue.join'; roomId: string; at?: number } & JoinRequest)
  | { type: 'queue.leave'; userId: string }
  /** The user shows no sign of life: keep its place, pair no one with it. */
  | { type: 'queue.away'; userId: string }
  /** It is back: pair it now if it can be (into `roomId`), else it waits at its place. */
  | { type: 'queue.back'; userId: string; roomId: string }
  /** Raised after `interestWait`: the user may now meet anyone open to it. */
  | { type: 'queue.widen'; userId: string }
  /** Raised after `rematchAfter`: the user may meet the partner it left again. */
  | { type: 'queue.rematchable'; userId: string }
  | { type: 'queue.shutdown' }
  /**
   * A line restored from storage (another process held it): starts the timers its
   * users had running, each for what was left of it at `at` (ms, the join clock).
   */
  | { type: 'queue.resume'; at: number };

export type QueueEmitted = {
  type: 'queue.paired';
  roomId: string;
  members: readonly [string, string];
  /** The interests both members share ([] when none). */
  commonInterests: string[];
  /** What each member said it is, in the order of `members`. */
  declared: readonly [IAm | undefined, IAm | undefined];
  /**
   * The member whose event made the pair (it joined, came back, or its wait ended): the
   * one most lately heard from, where a broker with several processes seats the room.
   */
  seeker: string;
};

type Context = QueueContext;

/** A joining user as it would stand in line. */
const waitingUserOf = (event: Extract<QueueEvent, { type: 'queue.join' }>, { interestWaitMs, rematchAfterMs }: QueueInput): WaitingUser => {
  const interests = event.interests ?? [];
  return {
    userId: event.userId,
    avoid: event.avoid,
    blocked: event.blocked ?? [],
    interests,
    ...(event.iAm !== undefined && { iAm: event.iAm }),
    meet: event.meet ?? 'anyone',
    widened: interests.length === 0,
    ...(interests.length > 0 && event.at !== undefined && { widensAt: event.at + interestWaitMs }),
    ...(event.avoid !== null && event.at !== undefined && { avoidUntil: event.at + rematchAfterMs }),
    spareRoomId: event.roomId,
  };
};

/**
 * The user whose chances changed with `event` (a joiner, a user back, a wait or an
 * avoidance over), as it now stands, and the room it would open.
 */
export function seekerOf(context: Context, event: QueueEvent): { seeker: WaitingUser; roomId: string; waiting: boolean } | undefined {
  if (!('userId' in event) || event.type === 'queue.leave' || event.type === 'queue.away') return undefined;
  const user = context.waiting.userOf(event.userId);
  const waiting = user !== undefined;
  if (event.type === 'queue.join')
    return { seeker: user ? withPreferences(user, event) : waitingUserOf(event, context), roomId: event.roomId, waiting };
  if (!user) return undefined;
  if (event.type === 'queue.back') return { seeker: { ...user, away: false }, roomId: event.roomId, waiting };
  if (event.type === 'queue.widen') return { seeker: widened(user), roomId: user.spareRoomId, waiting };
  return { seeker: withoutAvoidance(user), roomId: user.spareRoomId, waiting };
}

/**
 * A waiting user who asked again, with the preferences and blocks it asked with: it
 * keeps its place, its timers and its avoidance (and a user who had no interests, and
 * so no interest wait, is open to anyone at once whatever it now asks).
 */
const withPreferences = (user: WaitingUser, event: Extract<QueueEvent, { type: 'queue.join' }>): WaitingUser => {
  const interests = event.interests ?? [];
  // With no interests now, it has no interest wait left (a wait already over stays over).
  const { iAm: _said, ...rest } = interests.length === 0 ? widened(user) : user;
  return {
    ...rest,
    blocked: event.blocked ?? [],
    interests,
    ...(event.iAm !== undefined && { iAm: event.iAm }),
    meet: event.meet ?? 'anyone',
  };
};

const withoutAvoidance = (user: WaitingUser): WaitingUser => {
  const { avoidUntil: _over, ...rest } = user;
  return { ...rest, avoid: null };
};

const widened = (user: WaitingUser): WaitingUser => {
  const { widensAt: _over, ...rest } = user;
  return { ...rest, widened: true };
};

interface Match {
  seeker: WaitingUser;
  roomId: string;
  /** The seeker stands in line already. */
  waiting: boolean;
  partner: WaitingUser | undefined;
}

/**
 * The seeker of `event` and the partner it meets, if any. A join's guard and its
 * action ask the same question of the same snapshot: the last answer is kept, for that
 * line and event.
 */
let lastMatch: { waiting: WaitingLine; event: QueueEvent; match: Match | undefined } | undefined;
function matchOf(context: Context, event: QueueEvent): Match | undefined {
  if (lastMatch?.waiting === context.waiting && lastMatch.event === event) return lastMatch.match;
  const found = seekerOf(context, event);
  const match = found && { ...found, partner: context.waiting.partnerFor(found.seeker) };
  lastMatch = { waiting: context.waiting, event, match };
  return match;
}

const pairsNow = (context: Context, event: QueueEvent): boolean => matchOf(context, event)?.partner !== undefined;

/** Replaces the waiting user `userId` with `change(user)`. */
const updateWaiting = (context: Context, userId: string, change: (user: WaitingUser) => WaitingUser): WaitingLine => {
  const user = context.waiting.userOf(userId);
  return user ? context.waiting.replacing(change(user)) : context.waiting;
};

export const queueMachine = setup({
  types: {
    input: {} as Partial<QueueInput> | undefined,
    context: {} as QueueContext,
    events: {} as QueueEvent,
    emitted: {} as QueueEmitted,
  },
  delays: {
    interestWait: ({ context }) => context.interestWaitMs,
    rematchAfter: ({ context }) => context.rematchAfterMs,
  },
  guards: {
    isWaiting: ({ context, event }) => event.type === 'queue.join' && matchOf(context, event)?.waiting === true,
    /** The joiner, the user back, or the user whose wait or avoidance ended meets someone now. */
    hasPartner: ({ context, event }) => pairsNow(context, event),
  },
  actions: {
    addToTail: assign({
      waiting: ({ context, event }) =>
        event.type === 'queue.join' ? context.waiting.with(waitingUserOf(event, context)) : context.waiting,
    }),
    updatePreferences: assign({
      waiting: ({ context, event }) =>
        event.type === 'queue.join' ? updateWaiting(context, event.userId, (w) => withPreferences(w, event)) : context.waiting,
    }),
    /** The joiner's timers: its interest wait, and its avoidance of the partner it left. */
    startTimers: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'queue.join') return;
      const { userId } = event;
      if ((event.interests ?? []).length > 0)
        enqueue(raise({ type: 'queue.widen', userId }, { delay: 'interestWait', id: `widen:${userId}` }));
      if (event.avoid !== null) enqueue(raise({ type: 'queue.rematchable', userId }, { delay: 'rematchAfter', id: `rematch:${userId}` }));
    }),
    removeUser: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'queue.leave') return;
      enqueue.assign({ waiting: context.waiting.without([event.userId]) });
      enqueue(cancel(`widen:${event.userId}`));
      enqueue(cancel(`rematch:${event.userId}`));
    }),
    markAway: assign({
      waiting: ({ context, event }) =>
        event.type === 'queue.away' || event.type === 'queue.back'
          ? updateWaiting(context, event.userId, (w) => ({ ...w, away: event.type === 'queue.away' }))
          : context.waiting,
    }),
    markWidened: assign({
      waiting: ({ context, event }) => (event.type === 'queue.widen' ? updateWaiting(context, event.userId, widened) : context.waiting),
    }),
    forgetAvoidance: assign({
      waiting: ({ context, event }) =>
        event.type === 'queue.rematchable' ? updateWaiting(context, event.userId, withoutAvoidance) : context.waiting,
    }),
    openRoom: enqueueActions(({ context, event, enqueue }) => {
      const match = matchOf(context, event);
      if (!match?.partner) return;
      const { seeker, roomId, partner } = match;
      // Earliest first: the seeker may have waited longer than its partner.
      const seekerFirst = match.waiting && context.waiting.standsAhead(seeker.userId, partner.userId);
      const [first, second] = seekerFirst ? [seeker, partner] : [partner, seeker];
      enqueue.assign({ waiting: context.waiting.without([partner.userId, seeker.userId]) });
      for (const { userId } of [first, second]) {
        enqueue(cancel(`widen:${userId}`));
        enqueue(cancel(`rematch:${userId}`));
      }
      enqueue(
        emit({
          type: 'queue.paired',
          roomId,
          members: [first.userId, second.userId],
          commonInterests: commonInterests(first, second),
          declared: [first.iAm, second.iAm],
          seeker: seeker.userId,
        }),
      );
    }),
    emptyLine: enqueueActions(({ context, enqueue }) => {
      for (const { userId } of context.waiting) {
        enqueue(cancel(`widen:${userId}`));
        enqueue(cancel(`rematch:${userId}`));
      }
      enqueue.assign({ waiting: WaitingLine.empty });
    }),
    /** Each timer a restored user had running, for what was left of it. */
    resumeTimers: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'queue.resume') return;
      for (const { userId, widened, widensAt, avoid, avoidUntil } of context.waiting) {
        if (!widened && widensAt !== undefined)
          enqueue(raise({ type: 'queue.widen', userId }, { delay: Math.max(0, widensAt - event.at), id: `widen:${userId}` }));
        if (avoid !== null && avoidUntil !== undefined)
          enqueue(raise({ type: 'queue.rematchable', userId }, { delay: Math.max(0, avoidUntil - event.at), id: `rematch:${userId}` }));
      }
    }),
  },
}).createMachine({
  id: 'queue',
  context: ({ input }) => ({ ...DEFAULT_QUEUE_INPUT, ...input, waiting: WaitingLine.empty }),
  initial: 'open',
  states: {
    open: {
      on: {
        // A user who asks again while waiting keeps its place with what it now asks for.
        'queue.join': [
          { guard: 'hasPartner', actions: 'openRoom' },
          { guard: 'isWaiting', actions: 'updatePreferences' },
          { actions: ['addToTail', 'startTimers'] },
        ],
        'queue.leave': { actions: 'removeUser' },
        'queue.away': { actions: 'markAway' },
        'queue.back': [{ guard: 'hasPartner', actions: 'openRoom' }, { actions: 'markAway' }],
        'queue.widen': [{ guard: 'hasPartner', actions: 'openRoom' }, { actions: 'markWidened' }],
        'queue.rematchable': [{ guard: 'hasPartner', actions: 'openRoom' }, { actions: 'forgetAvoidance' }],
        'queue.shutdown': { actions: 'emptyLine' },
        'queue.resume': { actions: 'resumeTimers' },
      },
    },
  },
});

type QueueSnapshot = SnapshotFrom<typeof queueMachine>;

/** A queue snapshot as stored (its JSON): the line is the array of its users. */
export type StoredQueue = Omit<QueueSnapshot, 'context'> & { context: Omit<QueueContext, 'waiting'> & { waiting: WaitingUser[] } };

/** A stored queue snapshot, ready to run again (`createActor(queueMachine, { snapshot })`). */
export const restoredQueue = (stored: StoredQueue): QueueSnapshot =>
  ({ ...stored, context: { ...stored.context, waiting: WaitingLine.of(stored.context.waiting) } }) as QueueSnapshot;
