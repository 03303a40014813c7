/**
 * queueMachine — the one waiting line of the process.
 *
 * Holds waiting users in arrival order. When a user joins, it is paired with the
 * earliest waiting user it may meet (not the partner either of them just left), and
 * the queue spawns a room actor (`room:<roomId>`) for the pair; otherwise it waits at
 * the tail. A room that closes says `room.ended`, and the queue stops and forgets it.
 *
 * No event type the queue takes names a room: XState caches what it finds for each
 * event type a machine is asked about, for the life of the process, so one type per
 * room would grow with every room ever served (hence `room.ended`, not the
 * `xstate.done.actor.<roomId>` a final room would send). A room that fails still
 * sends `xstate.error.actor.<roomId>`; the queue does not handle it, so XState fails
 * the queue with the room's error (the broker reports it and pairs no one again):
 * one such type per failed queue, not per room.
 *
 * States: `open` (the queue never ends on its own).
 * Takes:  `queue.join` (with the id the room gets if this join makes a pair),
 *         `queue.leave`, `queue.away` / `queue.back` (a user with no sign of life keeps
 *         its place but is not paired; back, it is paired at once if it can be),
 *         `queue.shutdown` (empties the line and closes every room),
 *         and `room.ended` from its rooms.
 * Emits:  `queue.paired` (room id and both members, earliest first).
 */
import { assign, emit, enqueueActions, setup } from 'xstate';
import { roomMachine, type RoomEnded } from './room.js';

export interface WaitingUser {
  userId: string;
  /** A partner this user is not to be paired with again at once (after `next`). */
  avoid: string | null;
  /** No sign of life for a while: it keeps its place but is not paired until it is back. */
  away?: boolean;
}

interface QueueContext {
  waiting: WaitingUser[];
  /** Ids of the rooms this queue spawned that have not ended yet. */
  rooms: string[];
}

export type QueueEvent =
  | { type: 'queue.join'; userId: string; avoid: string | null; roomId: string }
  | { type: 'queue.leave'; userId: string }
  /** The user shows no sign of life: keep its place, pair no one with it. */
  | { type: 'queue.away'; userId: string }
  /** It is back: pair it now if it can be (into `roomId`), else it waits at its place. */
  | { type: 'queue.back'; userId: string; roomId: string }
  | { type: 'queue.shutdown' }
  | RoomEnded;

export type QueueEmitted = {
  type: 'queue.paired';
  roomId: string;
  members: readonly [string, string];
};

const mayMeet = (a: WaitingUser, b: WaitingUser): boolean =>
  a.userId !== b.userId && !a.away && !b.away && a.avoid !== b.userId && b.avoid !== a.userId;

/** The earliest waiting user that `joiner` may be paired with, if any. */
export const partnerFor = (waiting: readonly WaitingUser[], joiner: WaitingUser) =>
  waiting.find((candidate) => mayMeet(candidate, joiner));

/** A waiting user who came back, as it stands in line. */
const returning = (waiting: readonly WaitingUser[], userId: string): WaitingUser | undefined => {
  const user = waiting.find((w) => w.userId === userId);
  return user && { ...user, away: false };
};

export const queueMachine = setup({
  types: {
    context: {} as QueueContext,
    events: {} as QueueEvent,
    emitted: {} as QueueEmitted,
  },
  actors: { room: roomMachine },
  guards: {
    isWaiting: ({ context, event }) =>
      event.type === 'queue.join' && context.waiting.some((w) => w.userId === event.userId),
    hasPartner: ({ context, event }) =>
      event.type === 'queue.join' && partnerFor(context.waiting, event) !== undefined,
    isBackWithPartner: ({ context, event }) => {
      if (event.type !== 'queue.back') return false;
      const user = returning(context.waiting, event.userId);
      return user !== undefined && partnerFor(context.waiting, user) !== undefined;
    },
  },
  actions: {
    addToTail: assign({
      waiting: ({ context, event }) =>
        event.type === 'queue.join'
          ? [...context.waiting, { userId: event.userId, avoid: event.avoid }]
          : context.waiting,
    }),
    removeUser: assign({
      waiting: ({ context, event }) =>
        event.type === 'queue.leave'
          ? context.waiting.filter((w) => w.userId !== event.userId)
          : context.waiting,
    }),
    markAway: assign({
      waiting: ({ context, event }) =>
        context.waiting.map((w) => ('userId' in event && w.userId === event.userId ? { ...w, away: event.type === 'queue.away' } : w)),
    }),
    openRoom: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'queue.join' && event.type !== 'queue.back') return;
      const joiner = event.type === 'queue.join' ? event : returning(context.waiting, event.userId);
      const partner = joiner && partnerFor(context.waiting, joiner);
      if (!partner) return;
      // Earliest first: a user who came back may have waited longer than its partner.
      const returningFirst = event.type === 'queue.back' && context.waiting.indexOf(partner) > context.waiting.findIndex((w) => w.userId === event.userId);
      const members = returningFirst ? ([event.userId, partner.userId] as const) : ([partner.userId, event.userId] as const);
      enqueue.assign({
        waiting: context.waiting.filter((w) => w !== partner && w.userId !== event.userId),
        rooms: [...context.rooms, event.roomId],
      });
      enqueue.spawnChild('room', {
        id: event.roomId,
        systemId: `room:${event.roomId}`,
        input: { roomId: event.roomId, members },
      });
      enqueue(emit({ type: 'queue.paired', roomId: event.roomId, members }));
    }),
    closeEveryRoom: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ waiting: [] });
      for (const roomId of context.rooms) enqueue.sendTo(roomId, { type: 'room.shutdown' });
    }),
    forgetRoom: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'room.ended') return;
      enqueue.stopChild(event.roomId);
      enqueue.assign({ rooms: context.rooms.filter((id) => id !== event.roomId) });
    }),
  },
}).createMachine({
  id: 'queue',
  context: { waiting: [], rooms: [] },
  initial: 'open',
  states: {
    open: {
      on: {
        'queue.join': [
          { guard: 'isWaiting' },
          { guard: 'hasPartner', actions: 'openRoom' },
          { actions: 'addToTail' },
        ],
        'queue.leave': { actions: 'removeUser' },
        'queue.away': { actions: 'markAway' },
        'queue.back': [{ guard: 'isBackWithPartner', actions: 'openRoom' }, { actions: 'markAway' }],
        'queue.shutdown': { actions: 'closeEveryRoom' },
        'room.ended': { actions: 'forgetRoom' },
      },
    },
  },
});
