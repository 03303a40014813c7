/**
 * machines/queue.ts as paths: a few people (u1, u2, …) coming and going in the one
 * queue. Each chart event is what one of them, or the server, does:
 *
 * | event | what happens |
 * |---|---|
 * | `queue.join` | that person calls enter_queue (again, while waiting: it keeps its place) |
 * | `queue.join`, from a room | that person, chatting, calls next: its room ends first |
 * | `queue.leave` | that person, waiting, calls leave_chat |
 * | `queue.away` | that person, waiting, goes quiet (its client closes, no DELETE) for the pairable time |
 * | `queue.back`, with or without a partner | that person, away, comes back: a new session whose first call is get_status with its token |
 * | `queue.widen`, `queue.rematchable` | time passes: every interest wait and rematch time that runs, runs out (a chart that waits them out) |
 * | `queue.shutdown` | the server shuts down (what SIGTERM does): the line empties, and the broker closes every room |
 * | `queue.resume` | pending: only a broker that restores the line from its store sends it |
 *
 * and one step of the model is no event of the queue's (see `ChartSpec.steps`):
 *
 * | step | what happens |
 * |---|---|
 * | `room.leave` | a room ends: its first member calls leave_chat |
 *
 * A person has no user until its first enter_queue: before, get_status refuses. An
 * away person is not asked (a call is a sign of life, and would bring it back), and
 * does nothing but come back; its user does not time out on these paths (the chart
 * asks for a long idle timeout), however many steps it stays away.
 *
 * The queue only pairs: it says `queue.paired`, and the broker opens the room, which
 * the queue never hears of again. So the model keeps the rooms beside the queue's
 * snapshot: a room opens with each `queue.paired` a transition emits, and ends when a
 * member leaves it (leave_chat, or next before its join) or the server shuts down.
 *
 * Nor does the queue know whom a user avoids when it joins: its user does (the partner
 * of its last chat, until it has been idle for the rematch time), so the logic keeps
 * each user's memory of its last partner beside the queue, as the user chart keeps it.
 *
 * How long the interest wait and the rematch time last is each chart's choice (see
 * `MatchingTime`). One chart waits them out, with people who join with one interest or
 * none (u2 says it is human): there, time passing is a step, which fires every timer
 * that runs, in the order the running system does — the queue's in the order the
 * waiting users joined (each one's interest wait before its rematch time: both last
 * as long), the idle users' in any order (they change only what a later join asks).
 * So that no timer runs out between two steps, its paths are short, and the world's
 * timers long next to a few steps.
 */
import { expect } from 'vitest';
import type { ActorLogic, AnyEventObject, SnapshotFrom } from 'xstate';
import { commonInterests, type IAm, type Preferences, partnerFor, positionIn } from '../../machines/matching.js';
import { type QueueEmitted, type QueueEvent, queueMachine } from '../../machines/queue.js';
import { sleep } from '../support/eventually.js';
import { mockActorScope } from './chartPaths.js';
import { Ledger } from './ledger.js';
import type { ChartSpec } from './replay.js';
import { MATCHING_NEVER, type Person, type Status, type Timers, type World } from './world.js';

/** What a user remembers of its last chat: the partner, and whether its joins still avoid it. */
interface Memory {
  partner: string;
  avoids: boolean;
}

/** A room the broker opened for a pairing: the id the queue gave it, and its members, earliest first. */
interface ModelRoom {
  id: string;
  members: readonly [string, string];
}

/** The queue chart's snapshot. */
type Queue = SnapshotFrom<typeof queueMachine>;

/** The model's: the queue's, with the rooms open, each user's memory, and whether the server shut down. */
type QueueSnapshot = Queue & {
  readonly over?: true;
  /** The rooms open, in the order they were opened. */
  readonly rooms: readonly ModelRoom[];
  /** Each user's memory of its last chat, by user (one that never chatted has none). */
  readonly memory: Readonly<Record<string, Memory>>;
};

/** A room ends: its member `userId` leaves it (leave_chat). A step of the model's, not of the queue's. */
type RoomLeft = { type: 'room.leave'; userId: string };
type ModelEvent = QueueEvent | RoomLeft;

type Join = Extract<QueueEvent, { type: 'queue.join' }>;
type Timer = Extract<QueueEvent, { type: 'queue.widen' | 'queue.rematchable' }>;

const roomsOf = (state: QueueSnapshot): readonly ModelRoom[] => state.rooms;
const roomOf = (state: QueueSnapshot, user: string) => state.rooms.find((room) => room.members.includes(user));
const isWaiting = (state: Queue, user: string) => [...state.context.waiting].some((w) => w.userId === user);

/** The rooms of `to` that `from` did not have: the model carries a room on as the same object (its id may come back once it ended). */
function newRooms(from: QueueSnapshot, to: QueueSnapshot): ModelRoom[] {
  const before = new Set(from.rooms);
  return to.rooms.filter((room) => !before.has(room));
}

/**
 * The timers that run in `state`, in the order they run out: each waiting user's (in
 * the order they joined) interest wait, while it has interests it has not widened,
 * then its rematch time, while it avoids someone.
 */
const runningTimers = (state: Queue): Timer[] =>
  [...state.context.waiting].flatMap((w): Timer[] => [
    ...(w.interests.length > 0 && !w.widened ? [{ type: 'queue.widen' as const, userId: w.userId }] : []),
    ...(w.avoid !== null ? [{ type: 'queue.rematchable' as const, userId: w.userId }] : []),
  ]);

/** Users neither waiting nor chatting in `state`. */
const isIdle = (state: QueueSnapshot, user: string) => !isWaiting(state, user) && !roomOf(state, user);

/** Whom `user`'s next join asks the queue to avoid. */
const avoidOf = (state: QueueSnapshot, user: string): string | null => {
  const memory = state.memory[user];
  return memory?.avoids ? memory.partner : null;
};

const isPaired = (event: AnyEventObject): event is QueueEmitted => event.type === 'queue.paired';

/**
 * One transition of the queue chart, in a fresh actor scope, and the rooms its
 * pairings open (`queue.paired`, as the broker opens them): their members remember
 * each other.
 */
function run(state: QueueSnapshot, event: QueueEvent): QueueSnapshot {
  const emitted: AnyEventObject[] = [];
  const queue = queueMachine.transition(state, event, mockActorScope(emitted) as never) as Queue;
  const opened = emitted.filter(isPaired).map(({ roomId, members: [a, b] }): ModelRoom => ({ id: roomId, members: [a, b] }));
  const memory = { ...state.memory };
  for (const {
    members: [a, b],
  } of opened) {
    memory[a] = { partner: b, avoids: true };
    memory[b] = { partner: a, avoids: true };
  }
  return { ...queue, rooms: [...state.rooms, ...opened], memory, ...(state.over && { over: true as const }) };
}

/** `state` without the room `user` is in: it left it (and its partner, told, is idle). */
const leftRoom = (state: QueueSnapshot, user: string): QueueSnapshot => ({
  ...state,
  rooms: state.rooms.filter((room) => !room.members.includes(user)),
});

/**
 * Time passes: the queue's timers run out one after another (a user paired meanwhile
 * has none left), and every idle user may meet its last partner again.
 */
function timePassed(state: QueueSnapshot): QueueSnapshot {
  const memory = Object.fromEntries(
    Object.entries(state.memory).map(([user, m]) => [user, isIdle(state, user) ? { ...m, avoids: false } : m]),
  );
  let to: QueueSnapshot = { ...state, memory };
  for (const timer of runningTimers(state)) if (isWaiting(to, timer.userId)) to = run(to, timer);
  return to;
}

/** A step of a person or the server, with what the broker does to the rooms around it. */
function stepped(state: QueueSnapshot, event: ModelEvent): QueueSnapshot {
  // A room's end is no event of the queue's.
  if (event.type === 'room.leave') return leftRoom(state, event.userId);
  // `next`: the user leaves its room (the room ends) before it joins again.
  const from = event.type === 'queue.join' ? leftRoom(state, event.userId) : state;
  const to = run(from, event);
  // Shutdown: the broker empties the line (the queue's part) and closes every room.
  return event.type === 'queue.shutdown' ? { ...to, rooms: [], over: true } : to;
}

/**
 * The queue chart with what the rest of the system does around it. Every transition
 * gets a fresh actor scope: actions are resolved, never executed (no timer is
 * scheduled; the model runs them out itself), and what a transition emits is read
 * from it. Timers that run out at once (`instant`) do so after every step.
 */
const queueWithRooms = (instant: boolean) =>
  ({
    config: queueMachine.config,
    getInitialSnapshot: (_scope: unknown, input: unknown): QueueSnapshot => ({
      ...queueMachine.getInitialSnapshot(mockActorScope() as never, input as never),
      rooms: [],
      memory: {},
    }),
    transition(state: QueueSnapshot, event: ModelEvent): QueueSnapshot {
      if (event.type === 'queue.widen' || event.type === 'queue.rematchable') return timePassed(state);
      const to = stepped(state, event);
      return instant && !to.over ? timePassed(to) : to;
    },
    getPersistedSnapshot: (state: QueueSnapshot) => state,
  }) as unknown as ActorLogic<QueueSnapshot, ModelEvent, unknown>;

/** What a pairing told its two members. */
interface RealRoom {
  /** The room's id on the server. */
  id: string;
  commonInterests: string[];
  /** What each member's partner said it is, by member. */
  partnerIs: Record<string, IAm | undefined>;
}

interface QueueScene {
  world: World;
  people: Map<string, Person>;
  /** Who has a user: everyone who has called enter_queue (or next) once. */
  entered: Set<string>;
  /** The rooms on the server, by the model room's members (`u1+u2`). */
  rooms: Map<string, RealRoom>;
  ledger: Ledger;
  /** When the last step was done (`performance.now()`): no timer started later. */
  steppedAt: number;
}

const pairKey = (members: readonly string[]) => [...members].sort().join('+');

/** The queue actor's waiting list (white box). */
const realWaiting = (world: World) => (world.queue().getSnapshot() as Queue).context.waiting;

/** Whether the queue actor holds `person` as away (white box). */
function awayInQueue(world: World, person: Person): boolean {
  return [...realWaiting(world)].some((w) => w.userId === person.userId && w.away === true);
}

function queueKey(state: QueueSnapshot, time: MatchingTime): string {
  if (state.over) return 'shut down';
  const waiting = [...state.context.waiting].map((w) => {
    const memory = state.memory[w.userId];
    const notes = [
      w.interests.length > 0 && `likes ${w.interests.join(', ')}${w.widened ? ', open to anyone' : ''}`,
      w.avoid && `avoids ${w.avoid}`,
      // The queue may pair it with its last partner again, but its user, idle again, would avoid it (for a while).
      time !== 'instant' && !w.avoid && memory?.avoids && `remembers ${memory.partner}`,
      w.away && 'away',
    ].filter(Boolean);
    return notes.length > 0 ? `${w.userId} (${notes.join(', ')})` : w.userId;
  });
  const rooms = roomsOf(state).map((room) => room.members.join('+'));
  const idle = Object.entries(state.memory)
    .filter(([user, memory]) => memory.avoids && isIdle(state, user))
    .map(([user, memory]) => `${user} (avoids ${memory.partner})`)
    .sort();
  return `waiting [${waiting.join(', ')}] rooms [${rooms.join(', ')}]${idle.length > 0 ? ` idle [${idle.join(', ')}]` : ''}`;
}

const isAway = (state: QueueSnapshot, user: string) => [...state.context.waiting].some((w) => w.userId === user && w.away === true);

/** The partner a waiting user who comes back is paired with at once, if any. */
const partnerOnReturn = (state: QueueSnapshot, user: string) => {
  const returning = [...state.context.waiting].find((w) => w.userId === user);
  return returning && partnerFor(state.context.waiting, { ...returning, away: false });
};

/** What the pairing into `room` tells its members: the interests they share, and what each said it is. */
function pairingOf(from: QueueSnapshot, event: ModelEvent, room: ModelRoom): Omit<RealRoom, 'id'> {
  // A joiner asks with what its join says; anyone else as it waited.
  const asked = (user: string): Preferences =>
    event.type === 'queue.join' && event.userId === user
      ? { interests: event.interests ?? [], meet: 'anyone', ...(event.iAm && { iAm: event.iAm }) }
      : [...from.context.waiting].find((w) => w.userId === user)!;
  const [first, second] = room.members;
  const [a, b] = [asked(first), asked(second)];
  return { commonInterests: commonInterests(a, b), partnerIs: { [first]: b.iAm, [second]: a.iAm } };
}

/** What a pairing says to `user`: the interests shared, and what the partner said it is when it did. */
const pairingFor = (room: Omit<RealRoom, 'id'>, user: string) => ({
  common_interests: room.commonInterests,
  ...(room.partnerIs[user] !== undefined && { partner_is: room.partnerIs[user] }),
});

/** widens_in_s while `user`'s interest wait runs: whole seconds, at most the wait. */
function widensIn(world: World, state: QueueSnapshot, user: string) {
  const waiting = [...state.context.waiting].find((w) => w.userId === user);
  if (!waiting || waiting.interests.length === 0 || waiting.widened) return {};
  const most = Math.ceil(world.timers.interestWaitMs / 1000);
  return {
    widens_in_s: expect.toSatisfy((s: unknown) => Number.isInteger(s) && (s as number) >= 0 && (s as number) <= most, `0 to ${most} s`),
  };
}

/** Who `user` is in `state`, as its get_status should answer. */
function expectedStatus(scene: QueueScene, state: QueueSnapshot, user: string): Status {
  if (state.over) return { state: 'ended' };
  if (!scene.entered.has(user)) return { state: 'none' };
  const room = roomOf(state, user);
  if (room) {
    const real = scene.rooms.get(pairKey(room.members))!;
    return { state: 'chatting', room_id: real.id, ...pairingFor(real, user) };
  }
  const position = positionIn(state.context.waiting, user);
  return position === undefined ? { state: 'idle' } : { state: 'waiting', position, ...widensIn(scene.world, state, user) };
}

/** A join's answer, and the chatroom.found both members of a new room are owed. */
function joined(scene: QueueScene, join: Join, answer: { status: string; room_id?: string }, from: QueueSnapshot, to: QueueSnapshot): void {
  const user = join.userId;
  scene.entered.add(user);
  const room = roomOf(to, user);
  if (!room) {
    const { state: _waiting, ...place } = expectedStatus(scene, to, user);
    expect(answer, `${user}'s answer`).toEqual({ status: 'waiting', ...place });
    return;
  }
  const pairing = pairingOf(from, join, room);
  expect(answer, `${user}'s answer`).toEqual({ status: 'matched', room_id: expect.any(String), ...pairingFor(pairing, user) });
  paired(scene, room, { id: answer.room_id!, ...pairing });
}

/** A new room: its real id, and the chatroom.found both members are owed. */
function paired(scene: QueueScene, room: ModelRoom, real: RealRoom): void {
  scene.rooms.set(pairKey(room.members), real);
  for (const member of room.members)
    scene.ledger.owe(scene.people.get(member)!, 'chatroom.found', { room_id: real.id, ...pairingFor(real, member) });
}

/** The queue actor's waiting list, and whom each user's next join avoids, as the model has them (white box). */
function expectQueueAsModel(scene: QueueScene, state: QueueSnapshot): void {
  const byUserId = new Map([...scene.people].filter(([name]) => scene.entered.has(name)).map(([name, person]) => [person.userId, name]));
  const name = (userId: string | null) => userId && (byUserId.get(userId) ?? userId);
  const shown = (w: { userId: string; avoid: string | null; away?: boolean; interests: readonly string[]; widened: boolean }) => ({
    user: name(w.userId),
    avoid: name(w.avoid),
    away: w.away === true,
    interests: [...w.interests],
    widened: w.widened,
  });
  expect([...realWaiting(scene.world)].map(shown), 'the queue actor').toEqual([...state.context.waiting].map((w) => shown(w)));
  const avoids = (person: Person) => {
    const { lastChat, avoidsLastPartner } = person.actor().getSnapshot().context as {
      lastChat: { partnerId: string } | null;
      avoidsLastPartner: boolean;
    };
    return avoidsLastPartner && lastChat ? name(lastChat.partnerId) : null;
  };
  const entered = [...scene.people].filter(([user]) => scene.entered.has(user));
  expect(Object.fromEntries(entered.map(([user, person]) => [user, avoids(person)])), 'whom each user avoids when it joins').toEqual(
    Object.fromEntries(entered.map(([user]) => [user, avoidOf(state, user)])),
  );
}

/** The interest people of the timed chart join with: u1 always, u2 when it likes. */
const INTEREST = 'chess';
/** What a person of the timed chart says it is, if it says. */
const DECLARES: Readonly<Record<string, IAm>> = { u2: 'human' };

/**
 * How the matching timers go on a chart's paths:
 * - `never`: the interest wait and the rematch time outlast every path, so people avoid
 *   their last partners all along;
 * - `waited`: they run out when time passing is a step;
 * - `instant`: no rematch time at all (0 ms): it runs out right after the step that
 *   starts it, and the check waits for it.
 */
export type MatchingTime = 'never' | 'waited' | 'instant';

/**
 * With 2 users every edge of the queue model is on a path. With 3, whose memories of
 * their last partners multiply the states (some 100 states, 500 edges), every state is,
 * and a few long simple paths walk through the rest. With 4, even with no rematch time,
 * only the states that need all four get a shortest path, and a few long simple paths
 * walk through the rest. People who go quiet (`quiet`) multiply the states again, so
 * they are walked with 2 users, which is enough for every way back: alone, to the one
 * waiting it avoids, or to a stranger who came meanwhile; they leave the queue only by
 * going quiet. People who join with interests and wait the timers out
 * (`time: 'waited'`) are walked with 2 users, who only join (enter_queue, or next to
 * leave a room) and wait, on short paths: every wait costs the world's timers.
 */
export function queueChart(
  users: 2 | 3 | 4,
  { quiet = false, time = 'never' as MatchingTime } = {},
): ChartSpec<QueueSnapshot, ModelEvent, QueueScene> {
  const names = Array.from({ length: users }, (_, i) => `u${i + 1}`);
  const waited = time === 'waited';
  // All four busy, named in order of appearance (one state of each shape, not its permutations).
  const everyoneBusy = (state: QueueSnapshot) => {
    const seen = [...[...state.context.waiting].map((w) => w.userId), ...roomsOf(state).flatMap((room) => room.members)];
    return seen.length === users && seen.every((user, i) => user === names[i]);
  };
  /** What a join of `user` may ask for: nothing, or (waited) its interest, or none, and what it says it is. */
  const asks = (user: string): Partial<Join>[] => {
    if (!waited) return [{}];
    const declares = DECLARES[user] && { iAm: DECLARES[user] };
    return [...(user === 'u1' ? [] : [{ interests: [], ...declares }]), { interests: [INTEREST], ...declares }];
  };
  /** Time passing, as a step: an event of the type of the timer that runs out first. */
  const timePasses = (type: Timer['type']) => ({
    events: (state: QueueSnapshot): ModelEvent[] => {
      const first = waited && !state.over ? runningTimers(state)[0] : undefined;
      return first?.type === type ? [first] : [];
    },
    label: (_: ModelEvent, from: QueueSnapshot) => {
      const ends = runningTimers(from).map((t) =>
        t.type === 'queue.widen' ? `${t.userId}'s interest wait` : `${t.userId}'s rematch time`,
      );
      return `time passes: ${ends.join(', ')} run${ends.length === 1 ? 's' : ''} out`;
    },
    async run(scene: QueueScene, event: ModelEvent, from: QueueSnapshot, to: QueueSnapshot) {
      const { world } = scene;
      // A timer started by the last step at the latest: all have run out by then.
      await sleep(Math.max(0, scene.steppedAt + Math.max(world.timers.interestWaitMs, world.timers.rematchAfterMs) - performance.now()));
      await world.eventually(() => expectQueueAsModel(scene, to));
      for (const room of newRooms(from, to)) {
        const { roomId } = scene.people.get(room.members[0])!.actor().getSnapshot().context as { roomId: string | null };
        paired(scene, room, { id: roomId!, ...pairingOf(from, event, room) });
      }
    },
  });
  const mode = [
    quiet && 'who go quiet',
    waited && `liking ${INTEREST} or not, waiting the timers out`,
    time === 'instant' && 'with no rematch time',
  ].filter(Boolean);
  const timers: Record<MatchingTime, (world: Timers) => Timers> = {
    never: (world) => ({ ...world, ...MATCHING_NEVER }),
    // The world's: long next to a few steps, and waited out.
    waited: (world) => world,
    instant: (world) => ({ ...world, ...MATCHING_NEVER, rematchAfterMs: 0 }),
  };
  return {
    name: `queue (${users} users${mode.length > 0 ? `, ${mode.join(', ')}` : ''})`,
    machine: queueMachine,
    // A person may stay away for many steps: its user must not time out meanwhile.
    timers: (world) => ({ ...timers[time](world), ...(quiet && { idleMs: 60_000, graceMs: 60_000 }) }),
    model: {
      logic: queueWithRooms(time === 'instant'),
      key: (state) => queueKey(state, time),
      maxSimpleSteps: waited ? 5 : users === 4 ? 10 : 8,
      maxSimplePaths: users === 4 ? 4 : 8,
      ...(users === 3 && { everyEdge: false }),
      ...(users === 4 && { shortestTo: everyoneBusy, everyEdge: false }),
    },
    drivers: {
      'queue.join': {
        events: (state) =>
          state.over
            ? []
            : names.flatMap((userId): Join[] => {
                const waiting = [...state.context.waiting].find((w) => w.userId === userId);
                // Away, it would come back first: it only comes back (queue.back).
                if (waiting?.away) return [];
                const avoid = avoidOf(state, userId);
                // A waiting user who enters again asks the queue again and keeps its place.
                if (waiting) return waited ? [] : [{ type: 'queue.join', userId, avoid, roomId: `${userId}+again` }];
                return asks(userId).map((ask) => ({ type: 'queue.join', userId, avoid, roomId: `${userId}+`, ...ask }));
              }),
        label: (event, from) => {
          if (event.type !== 'queue.join') return '?';
          const asked =
            event.interests === undefined
              ? ''
              : event.interests.length > 0
                ? `, liking ${event.interests.join(', ')}`
                : ', with no interest';
          if (isWaiting(from, event.userId)) return `${event.userId} calls enter_queue again while waiting`;
          const room = roomOf(from, event.userId);
          return room
            ? `${event.userId} calls next${asked}, leaving ${room.members.find((m) => m !== event.userId)}`
            : `${event.userId} calls enter_queue${asked}`;
        },
        async run(scene, event, from, to) {
          if (event.type !== 'queue.join') throw new Error(`not queue.join: ${event.type}`);
          const person = scene.people.get(event.userId)!;
          const args = { ...(event.interests && { interests: [...event.interests] }), ...(event.iAm && { i_am: event.iAm }) };
          const left = roomOf(from, event.userId);
          if (!left) return joined(scene, event, await person.enterQueue(args), from, to);
          const answer = await person.next(args);
          const { id: roomId } = scene.rooms.get(pairKey(left.members))!;
          scene.rooms.delete(pairKey(left.members));
          const stayer = left.members.find((m) => m !== event.userId)!;
          scene.ledger.owe(scene.people.get(stayer)!, 'partner.disconnected', { room_id: roomId, reason: 'left' });
          joined(scene, event, answer, from, to);
        },
      },
      'queue.leave': {
        events: (state) =>
          state.over || waited || quiet
            ? []
            : [...state.context.waiting].filter((w) => !w.away).map((w) => ({ type: 'queue.leave' as const, userId: w.userId })),
        label: (event) => `${event.type === 'queue.leave' ? event.userId : '?'} calls leave_chat, leaving the queue`,
        async run(scene, event) {
          if (event.type !== 'queue.leave') throw new Error(`not queue.leave: ${event.type}`);
          expect(await scene.people.get(event.userId)!.leave()).toEqual({ status: 'idle' });
        },
      },
      'queue.away': {
        events: (state) =>
          state.over || !quiet
            ? []
            : [...state.context.waiting].filter((w) => !w.away).map((w) => ({ type: 'queue.away' as const, userId: w.userId })),
        label: (event) =>
          `${event.type === 'queue.away' ? event.userId : '?'} goes quiet (its client closes, no DELETE) for the pairable time`,
        async run(scene, event) {
          if (event.type !== 'queue.away') throw new Error(`not queue.away: ${event.type}`);
          const person = scene.people.get(event.userId)!;
          await person.vanish();
          // A sync point: the queue marks it away once the pairable time has passed.
          await scene.world.eventually(() => expect(awayInQueue(scene.world, person), `${event.userId} away in the queue`).toBe(true));
        },
      },
      'queue.back': {
        events: (state) =>
          state.over
            ? []
            : [...state.context.waiting]
                .filter((w) => w.away)
                .map((w) => ({ type: 'queue.back' as const, userId: w.userId, roomId: `${w.userId}+back` })),
        label: (event, from) => {
          if (event.type !== 'queue.back') return '?';
          const partner = partnerOnReturn(from, event.userId);
          return `${event.userId} comes back (get_status with its token, in a new session)${partner ? ` and meets ${partner.userId}` : ''}`;
        },
        async run(scene, event, from, to) {
          if (event.type !== 'queue.back') throw new Error(`not queue.back: ${event.type}`);
          const status = await scene.people.get(event.userId)!.comeBack();
          const room = roomOf(to, event.userId);
          if (!room) {
            expect(status, `${event.userId}'s get_status, back`).toEqual(expectedStatus(scene, to, event.userId));
            return;
          }
          const pairing = pairingOf(from, event, room);
          expect(status, `${event.userId}'s get_status, back`).toEqual({
            state: 'chatting',
            room_id: expect.any(String),
            ...pairingFor(pairing, event.userId),
          });
          paired(scene, room, { id: status.room_id!, ...pairing });
        },
      },
      'queue.widen': timePasses('queue.widen'),
      'queue.rematchable': timePasses('queue.rematchable'),
      'queue.shutdown': {
        // Shown where it says most: rooms to close and someone waiting, who is told nothing.
        events: (state) => (!state.over && roomsOf(state).length > 0 && state.context.waiting.size > 0 ? [{ type: 'queue.shutdown' }] : []),
        label: () => 'the server shuts down',
        async run(scene, _, from) {
          await scene.world.shutdown();
          for (const room of roomsOf(from)) {
            const roomId = scene.rooms.get(pairKey(room.members))?.id;
            for (const member of room.members)
              scene.ledger.owe(scene.people.get(member)!, 'partner.disconnected', { room_id: roomId, reason: 'shutdown' });
          }
        },
      },
      'queue.resume': { pending: 'sent only by a broker that restores the line (Redis lease holder)' },
    },
    steps: {
      'room.leave': {
        events: (state) =>
          state.over || waited ? [] : state.rooms.map((room): ModelEvent => ({ type: 'room.leave', userId: room.members[0] })),
        label: (event, from) => {
          const room = event.type === 'room.leave' ? roomOf(from, event.userId) : undefined;
          return room ? `${room.members[0]} calls leave_chat, leaving ${room.members[1]}` : '?';
        },
        async run(scene, event, from) {
          if (event.type !== 'room.leave') throw new Error(`not room.leave: ${event.type}`);
          const room = roomOf(from, event.userId)!;
          const stayer = room.members.find((m) => m !== event.userId)!;
          const { id: roomId } = scene.rooms.get(pairKey(room.members))!;
          expect(await scene.people.get(event.userId)!.leave(roomId)).toEqual({ status: 'idle' });
          scene.rooms.delete(pairKey(room.members));
          scene.ledger.owe(scene.people.get(stayer)!, 'partner.disconnected', { room_id: roomId, reason: 'left' });
        },
      },
    },

    async setup(world) {
      const people = new Map<string, Person>();
      for (const name of names) people.set(name, await world.join(name));
      return { world, people, entered: new Set(), rooms: new Map(), ledger: new Ledger(), steppedAt: performance.now() };
    },

    async check(scene, state, world) {
      scene.steppedAt = performance.now();
      const { people, ledger } = scene;
      // First what the actors hold: a timer of no length runs out a moment after its step.
      if (!state.over) await world.eventually(() => expectQueueAsModel(scene, state));
      await ledger.check(people.values());
      // A call is a sign of life: an away person is not asked (the queue says where it stands).
      for (const [name, person] of people)
        if (state.over || !isAway(state, name))
          expect(await person.status(), `${name}'s get_status`).toEqual(expectedStatus(scene, state, name));
      if (state.over) return;
      // A person has a user from its first enter_queue on (nobody ends on these paths but by shutdown).
      expect(await world.health(), '/healthz').toMatchObject({
        queue: state.context.waiting.size,
        rooms: roomsOf(state).length,
        users: scene.entered.size,
      });
    },
  };
}
