/**
 * machines/queue.ts as paths: a few people (u1, u2, …) coming and going in the one
 * queue. Each chart event is what one of them, or the server, does:
 *
 * | event | what happens |
 * |---|---|
 * | `queue.join`, no one to avoid | that person calls enter_queue |
 * | `queue.join`, avoiding its partner | that person, chatting, calls next: its room ends first |
 * | `queue.leave` | that person, waiting, calls leave_chat |
 * | `room.ended` | a room ends: its first member calls leave_chat |
 * | `queue.shutdown` | the server shuts down (what SIGTERM does) |
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
import type { Person, World } from './world.js';

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
  /** Real room ids, by the model room's members (`u1+u2`). */
  rooms: Map<string, string>;
  ledger: Ledger;
}

const pairKey = (members: readonly string[]) => [...members].sort().join('+');

function queueKey(state: QueueSnapshot): string {
  if (state.over) return 'shut down';
  const waiting = state.context.waiting.map((w) => (w.avoid ? `${w.userId} (avoids ${w.avoid})` : w.userId));
  const rooms = roomsOf(state).map((room) => room.members.join('+'));
  return `waiting [${waiting.join(', ')}] rooms [${rooms.join(', ')}]`;
}

/** Who `user` is in `state`, as its get_status should answer. */
function expectedStatus(scene: QueueScene, state: QueueSnapshot, user: string) {
  if (state.over) return { state: 'ended' };
  const room = roomOf(state, user);
  if (room) return { state: 'chatting', room_id: scene.rooms.get(pairKey(room.members)) };
  const place = state.context.waiting.findIndex((w) => w.userId === user);
  return place === -1 ? { state: 'idle' } : { state: 'waiting', position: place + 1 };
}

/** A join's answer, and the chatroom.found both members of a new room are owed. */
function joined(scene: QueueScene, user: string, answer: { status: string; room_id?: string }, to: QueueSnapshot): void {
  const room = roomOf(to, user);
  if (!room) {
    expect(answer, `${user}'s answer`).toEqual({ status: 'waiting', position: expectedStatus(scene, to, user).position });
    return;
  }
  expect(answer, `${user}'s answer`).toEqual({ status: 'matched', room_id: expect.any(String) });
  scene.rooms.set(pairKey(room.members), answer.room_id!);
  for (const member of room.members) scene.ledger.owe(scene.people.get(member)!, 'chatroom.found', { room_id: answer.room_id });
}

/**
 * With 3 users every edge of the queue model is on a path. With 4 the model has some
 * 400 edges, so only the states that need all four get a shortest path, and a few long
 * simple paths walk through the rest.
 */
export function queueChart(users: 3 | 4): ChartSpec<QueueSnapshot, QueueEvent, QueueScene> {
  const names = Array.from({ length: users }, (_, i) => `u${i + 1}`);
  // All four busy, named in order of appearance (one state of each shape, not its permutations).
  const everyoneBusy = (state: QueueSnapshot) => {
    const seen = [...state.context.waiting.map((w) => w.userId), ...roomsOf(state).flatMap((room) => room.members)];
    return seen.length === users && seen.every((user, i) => user === names[i]);
  };
  return {
    name: `queue (${users} users)`,
    machine: queueMachine,
    model: {
      logic: queueWithRooms,
      key: queueKey,
      maxSimpleSteps: users === 3 ? 8 : 10,
      maxSimplePaths: users === 3 ? 8 : 4,
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
        events: (state) => (state.over ? [] : state.context.waiting.map((w) => ({ type: 'queue.leave' as const, userId: w.userId }))),
        label: (event) => `${event.type === 'queue.leave' ? event.userId : '?'} calls leave_chat, leaving the queue`,
        async run(scene, event) {
          if (event.type !== 'queue.leave') throw new Error(`not queue.leave: ${event.type}`);
          expect(await scene.people.get(event.userId)!.leave()).toEqual({ status: 'idle' });
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
      return { world, people, rooms: new Map(), ledger: new Ledger() };
    },

    async check(scene, state, world) {
      const { people, ledger } = scene;
      await ledger.check(people.values());
      for (const [name, person] of people) expect(await person.status(), `${name}'s get_status`).toEqual(expectedStatus(scene, state, name));
      if (state.over) return;
      const byUserId = new Map([...people].map(([name, person]) => [person.userId, name]));
      const queue = world.queue().getSnapshot() as SnapshotFrom<typeof queueMachine>;
      expect(
        queue.context.waiting.map((w) => ({ user: byUserId.get(w.userId), avoid: w.avoid && byUserId.get(w.avoid) })),
        'the queue actor',
      ).toEqual(state.context.waiting.map((w) => ({ user: w.userId, avoid: w.avoid })));
      expect(await world.health(), '/healthz').toMatchObject({ queue: state.context.waiting.length, rooms: roomsOf(state).length });
    },
  };
}
