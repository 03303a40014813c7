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
 *         `queue.leave`, `queue.shutdown` (empties the line and closes every room),
 *         and `room.ended` from its rooms.
 * Emits:  `queue.paired` (room id and both members, earliest first).
 */
import { assign, emit, enqueueActions, setup } from 'xstate';
import { roomMachine, type RoomEnded } from './room.js';

export interface WaitingUser {
  userId: string;
  /** A partner this user is not to be paired with again at once (after `next`). */
  avoid: string | null;
}

interface QueueContext {
  waiting: WaitingUser[];
  /** Ids of the rooms this queue spawned that have not ended yet. */
  rooms: string[];
}

export type QueueEvent =
  | { type: 'queue.join'; userId: string; avoid: string | null; roomId: string }
  | { type: 'queue.leave'; userId: string }
  | { type: 'queue.shutdown' }
  | RoomEnded;

export type QueueEmitted = {
  type: 'queue.paired';
  roomId: string;
  members: readonly [string, string];
};

const mayMeet = (a: WaitingUser, b: WaitingUser): boolean =>
  a.userId !== b.userId && a.avoid !== b.userId && b.avoid !== a.userId;

/** The earliest waiting user that `joiner` may be paired with, if any. */
export const partnerFor = (waiting: readonly WaitingUser[], joiner: WaitingUser) =>
  waiting.find((candidate) => mayMeet(candidate, joiner));

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
    openRoom: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'queue.join') return;
      const partner = partnerFor(context.waiting, event);
      if (!partner) return;
      const members = [partner.userId, event.userId] as const;
      enqueue.assign({ waiting: context.waiting.filter((w) => w !== partner), rooms: [...context.rooms, event.roomId] });
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
        'queue.shutdown': { actions: 'closeEveryRoom' },
        'room.ended': { actions: 'forgetRoom' },
      },
    },
  },
});
