/**
 * machines/queue.ts as paths: a few people (u1, u2, …) coming and going in the one
 * queue. Each chart event is what one of them, or the server, does:
 *
 * | event | what happens |
 * |---|---|
 * | `queue.join`, no one to avoid | that person calls enter_queue |
 * | `queue.join`, avoiding its partner | that person, chatting, calls next: its room ends first |
 * | `queue.leave` | that person, waiting, calls leave_chat |
 * | `queue.away` | that person, waiting, goes quiet (its client closes, no DELETE) for the pairable time |
 * | `queue.back`, with or without a partner | that person, away, comes back: a new session whose first call is get_status with its token |
 * | `room.ended` | a room ends: its first member calls leave_chat |
 * | `queue.shutdown` | the server shuts down (what SIGTERM does) |
 *
 * A person has no user until its first enter_queue: before, get_status refuses. An
 * away person is not asked (a call is a sign of life, and would bring it back), and
 * does nothing but come back; its user does not time out on these paths (the chart
 * asks for a long idle timeout), however many steps it stays away.
 *
 * The queue alone cannot say that `next` ends a room before the join, nor that a
 * shutdown ends every room: the model runs the queue chart inside a small logic that
 * adds the rooms' `room.ended` events where the running system sends them.
 * `closeEveryRoom` is given a fake with `provide`: the real one reads the live actor's
 * children, which a pure transition does not have (the rooms' ends are then added as above).
 */
import { expect } from 'vitest';
import { assign, type ActorLogic, type SnapshotFrom } from 'xstate';
import { partnerFor, queueMachine, type QueueEvent } from '../../machines/queue.js';
import { mockActorScope } from './chartPaths.js';
import { Ledger } from './ledger.js';
import type { ChartSpec } from './replay.js';
import type { Person, Status, Timers, World } from './world.js';

type QueueSnapshot = SnapshotFrom<typeof queueMachine> & { readonly over?: true };

const modelQueue = queueMachine.provide({ actions: { closeEveryRoom: assign({ waiting: [] }) } });

interface ModelRoom {
  id: string;
  members: [string, string];
}

const roomsOf = (state: QueueSnapshot): ModelRoom[] =>
  Object.entries(state.children).map(([id, room]) => ({
    id,
    members: [...(room as { getSnapshot(): { context: { members: readonly [string, string] } } }).getSnapshot().context.members] as [string, string],
  }));

const roomOf = (state: QueueSnapshot, user: string) => roomsOf(state).find((room) => room.members.includes(user));
const ended = (room: ModelRoom): QueueEvent => ({ type: 'room.ended', roomId: room.id });
const endedRoom = (from: QueueSnapshot, event: QueueEvent) => roomsOf(from).find((r) => event.type === 'room.ended' && event.roomId === r.id);

/**
 * The queue chart with what the rest of the system does around it. Every transition
 * gets a fresh actor scope, so that rooms spawned on different branches of the
 * traversal never share a system (and a room id may come back after its room ended).
 */
const queueWithRooms = {
  config: modelQueue.config,
  getInitialSnapshot: (_scope: unknown, input: unknown) => modelQueue.getInitialSnapshot(mockActorScope() as never, input as never),
  transition(state: QueueSnapshot, event: QueueEvent): QueueSnapshot {
    const run = (from: QueueSnapshot, next: QueueEvent) => modelQueue.transition(from, next, mockActorScope() as never) as QueueSnapshot;
    let from = state;
    // `next`: the user leaves its room (the room ends) before it joins again.
    const room = event.type === 'queue.join' && event.avoid !== null ? roomOf(from, event.userId) : undefined;
    if (room) from = run(from, ended(room));
    let to = run(from, event);
    if (event.type === 'queue.shutdown') {
      for (const open of roomsOf(to)) to = run(to, ended(open));
      to = { ...to, over: true };
    }
    return to;
  },
  getPersistedSnapshot: (state: QueueSnapshot) => state,
} as unknown as ActorLogic<QueueSnapshot, QueueEvent, unknown>;

interface QueueScene {
  world: World;
  people: Map<string, Person>;
  /** Who has a user: everyone who has called enter_queue (or next) once. */
  entered: Set<string>;
  /** Real room ids, by the model room's members (`u1+u2`). */
  rooms: Map<string, string>;
  ledger: Ledger;
}

const pairKey = (members: readonly string[]) => [...members].sort().join('+');

/** Whether the queue actor holds `person` as away (white box). */
function awayInQueue(world: World, person: Person): boolean {
  const { waiting } = (world.queue().getSnapshot() as SnapshotFrom<typeof queueMachine>).context;
  return waiting.some((w) => w.userId === person.userId && w.away === true);
}

function queueKey(state: QueueSnapshot): string {
  if (state.over) return 'shut down';
  const waiting = state.context.waiting.map((w) => {
    const notes = [w.avoid && `avoids ${w.avoid}`, w.away && 'away'].filter(Boolean);
    return notes.length > 0 ? `${w.userId} (${notes.join(', ')})` : w.userId;
  });
  const rooms = roomsOf(state).map((room) => room.members.join('+'));
  return `waiting [${waiting.join(', ')}] rooms [${rooms.join(', ')}]`;
}

const isAway = (state: QueueSnapshot, user: string) => state.context.waiting.some((w) => w.userId === user && w.away === true);

/** The partner a waiting user who comes back is paired with at once, if any. */
const partnerOnReturn = (state: QueueSnapshot, user: string) => {
  const returning = state.context.waiting.find((w) => w.userId === user);
  return returning && partnerFor(state.context.waiting, { ...returning, away: false });
};

/** Who `user` is in `state`, as its get_status should answer. */
function expectedStatus(scene: QueueScene, state: QueueSnapshot, user: string): Status {
  if (state.over) return { state: 'ended' };
  if (!scene.entered.has(user)) return { state: 'none' };
  const room = roomOf(state, user);
  if (room) return { state: 'chatting', room_id: scene.rooms.get(pairKey(room.members)) };
  const place = state.context.waiting.findIndex((w) => w.userId === user);
  return place === -1 ? { state: 'idle' } : { state: 'waiting', position: place + 1 };
}

/** A join's answer, and the chatroom.found both members of a new room are owed. */
function joined(scene: QueueScene, user: string, answer: { status: string; room_id?: string }, to: QueueSnapshot): void {
  scene.entered.add(user);
  const room = roomOf(to, user);
  if (!room) {
    expect(answer, `${user}'s answer`).toEqual({ status: 'waiting', position: expectedStatus(scene, to, user).position });
    return;
  }
  expect(answer, `${user}'s answer`).toEqual({ status: 'matched', room_id: expect.any(String) });
  paired(scene, room, answer.room_id!);
}

/** A new room: its real id, and the chatroom.found both members are owed. */
function paired(scene: QueueScene, room: ModelRoom, roomId: string): void {
  scene.rooms.set(pairKey(room.members), roomId);
  for (const member of room.members) scene.ledger.owe(scene.people.get(member)!, 'chatroom.found', { room_id: roomId });
}

/**
 * With 3 users every edge of the queue model is on a path. With 4 the model has some
 * 400 edges, so only the states that need all four get a shortest path, and a few long
 * simple paths walk through the rest. People who go quiet (`quiet`) multiply the states
 * again, so they are walked with 2 users, which is enough for every way back: alone,
 * to the one waiting it avoids, or to a stranger who came meanwhile.
 */
export function queueChart(users: 2 | 3 | 4, { quiet = false } = {}): ChartSpec<QueueSnapshot, QueueEvent, QueueScene> {
  const names = Array.from({ length: users }, (_, i) => `u${i + 1}`);
  // All four busy, named in order of appearance (one state of each shape, not its permutations).
  const everyoneBusy = (state: QueueSnapshot) => {
    const seen = [...state.context.waiting.map((w) => w.userId), ...roomsOf(state).flatMap((room) => room.members)];
    return seen.length === users && seen.every((user, i) => user === names[i]);
  };
  return {
    name: `queue (${users} users${quiet ? ', who go quiet' : ''})`,
    machine: queueMachine,
    // A person may stay away for many steps: its user must not time out meanwhile.
    ...(quiet && { timers: (world: Timers) => ({ ...world, idleMs: 60_000, graceMs: 60_000 }) }),
    model: {
      logic: queueWithRooms,
      key: queueKey,
      maxSimpleSteps: users === 4 ? 10 : 8,
      maxSimplePaths: users === 4 ? 4 : 8,
      ...(users === 4 && { shortestTo: everyoneBusy, everyEdge: false }),
    },
    drivers: {
      'queue.join': {
        events: (state) =>
          state.over
            ? []
            : names.flatMap((userId) => {
                // A waiting user who enters again asks the queue again and keeps its place.
                const waiting = state.context.waiting.find((w) => w.userId === userId);
                // Away, it would come back first: it only comes back (queue.back).
                if (waiting?.away) return [];
                if (waiting) return [{ type: 'queue.join' as const, userId, avoid: waiting.avoid, roomId: `${userId}+again` }];
                const avoid = roomOf(state, userId)?.members.find((m) => m !== userId) ?? null;
                const partner = partnerFor(state.context.waiting, { userId, avoid });
                return [{ type: 'queue.join' as const, userId, avoid, roomId: partner ? `${partner.userId}+${userId}` : `${userId}+` }];
              }),
        label: (event) => {
          if (event.type !== 'queue.join') return '?';
          if (event.roomId.endsWith('+again')) return `${event.userId} calls enter_queue again while waiting`;
          return event.avoid ? `${event.userId} calls next, leaving ${event.avoid}` : `${event.userId} calls enter_queue`;
        },
        async run(scene, event, from, to) {
          if (event.type !== 'queue.join') throw new Error(`not queue.join: ${event.type}`);
          const person = scene.people.get(event.userId)!;
          if (event.avoid === null || from.context.waiting.some((w) => w.userId === event.userId))
            return joined(scene, event.userId, await person.enterQueue(), to);
          const left = roomOf(from, event.userId)!;
          const answer = await person.next();
          const roomId = scene.rooms.get(pairKey(left.members))!;
          scene.rooms.delete(pairKey(left.members));
          scene.ledger.owe(scene.people.get(event.avoid)!, 'partner.disconnected', { room_id: roomId, reason: 'left' });
          joined(scene, event.userId, answer, to);
        },
      },
      'queue.leave': {
        events: (state) =>
          state.over ? [] : state.context.waiting.filter((w) => !w.away).map((w) => ({ type: 'queue.leave' as const, userId: w.userId })),
        label: (event) => `${event.type === 'queue.leave' ? event.userId : '?'} calls leave_chat, leaving the queue`,
        async run(scene, event) {
          if (event.type !== 'queue.leave') throw new Error(`not queue.leave: ${event.type}`);
          expect(await scene.people.get(event.userId)!.leave()).toEqual({ status: 'idle' });
        },
      },
      'queue.away': {
        events: (state) =>
          state.over || !quiet ? [] : state.context.waiting.filter((w) => !w.away).map((w) => ({ type: 'queue.away' as const, userId: w.userId })),
        label: (event) => `${event.type === 'queue.away' ? event.userId : '?'} goes quiet (its client closes, no DELETE) for the pairable time`,
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
            : state.context.waiting
                .filter((w) => w.away)
                .map((w) => {
                  const partner = partnerOnReturn(state, w.userId);
                  return { type: 'queue.back' as const, userId: w.userId, roomId: partner ? `${partner.userId}+${w.userId}` : `${w.userId}+back` };
                }),
        label: (event, from) => {
          if (event.type !== 'queue.back') return '?';
          const partner = partnerOnReturn(from, event.userId);
          return `${event.userId} comes back (get_status with its token, in a new session)${partner ? ` and meets ${partner.userId}` : ''}`;
        },
        async run(scene, event, _, to) {
          if (event.type !== 'queue.back') throw new Error(`not queue.back: ${event.type}`);
          const status = await scene.people.get(event.userId)!.comeBack();
          const room = roomOf(to, event.userId);
          if (!room) {
            expect(status, `${event.userId}'s get_status, back`).toEqual(expectedStatus(scene, to, event.userId));
            return;
          }
          expect(status, `${event.userId}'s get_status, back`).toEqual({ state: 'chatting', room_id: expect.any(String) });
          paired(scene, room, status.room_id!);
        },
      },
      'room.ended': {
        events: (state) => (state.over ? [] : roomsOf(state).map(ended)),
        label: (event, from) => {
          const room = endedRoom(from, event);
          return room ? `${room.members[0]} calls leave_chat, leaving ${room.members[1]}` : '?';
        },
        async run(scene, event, from) {
          const room = endedRoom(from, event)!;
          const [leaver, stayer] = room.members;
          const roomId = scene.rooms.get(pairKey(room.members))!;
          expect(await scene.people.get(leaver)!.leave(roomId)).toEqual({ status: 'idle' });
          scene.rooms.delete(pairKey(room.members));
          scene.ledger.owe(scene.people.get(stayer)!, 'partner.disconnected', { room_id: roomId, reason: 'left' });
        },
      },
      'queue.shutdown': {
        // Shown where it says most: rooms to close and someone waiting, who is told nothing.
        events: (state) => (!state.over && roomsOf(state).length > 0 && state.context.waiting.length > 0 ? [{ type: 'queue.shutdown' }] : []),
        label: () => 'the server shuts down',
        async run(scene, _, from) {
          await scene.world.shutdown();
          for (const room of roomsOf(from)) {
            const roomId = scene.rooms.get(pairKey(room.members));
            for (const member of room.members) scene.ledger.owe(scene.people.get(member)!, 'partner.disconnected', { room_id: roomId, reason: 'shutdown' });
          }
        },
      },
    },

    async setup(world) {
      const people = new Map<string, Person>();
      for (const name of names) people.set(name, await world.join(name));
      return { world, people, entered: new Set(), rooms: new Map(), ledger: new Ledger() };
    },

    async check(scene, state, world) {
      const { people, ledger } = scene;
      await ledger.check(people.values());
      // A call is a sign of life: an away person is not asked (the queue says where it stands).
      for (const [name, person] of people)
        if (state.over || !isAway(state, name)) expect(await person.status(), `${name}'s get_status`).toEqual(expectedStatus(scene, state, name));
      if (state.over) return;
      const byUserId = new Map([...people].filter(([name]) => scene.entered.has(name)).map(([name, person]) => [person.userId, name]));
      const queue = world.queue().getSnapshot() as SnapshotFrom<typeof queueMachine>;
      expect(
        queue.context.waiting.map((w) => ({ user: byUserId.get(w.userId), avoid: w.avoid && byUserId.get(w.avoid), away: w.away === true })),
        'the queue actor',
      ).toEqual(state.context.waiting.map((w) => ({ user: w.userId, avoid: w.avoid, away: w.away === true })));
      // A person has a user from its first enter_queue on (nobody ends on these paths but by shutdown).
      expect(await world.health(), '/healthz').toMatchObject({ queue: state.context.waiting.length, rooms: roomsOf(state).length, users: scene.entered.size });
    },
  };
}
