/**
 * roomMachine — one conversation between two users. Runs as a child of the queue.
 *
 * States: `open` → `closed`. `closed` takes nothing, yet it is not a final state: a
 *         final child sends its parent `xstate.done.actor.<its id>`, an event type per
 *         room, and XState caches what it finds for every event type a machine is asked
 *         about, for the life of the process. The room says `room.ended` instead, with
 *         its id in the payload, and the queue stops it.
 * Takes:  `room.message` (a member sends text; the room numbers it),
 *         `room.leave` (a member leaves or is gone; the room closes),
 *         `room.shutdown` (the server stops; the room closes under both members).
 * Emits:  `room.relayed` (a numbered message, for the partner and as the sender's receipt),
 *         `room.closed` (to each member who stayed, with the reason the room ended).
 * Sends:  `room.ended` to its parent (the queue) when it closes.
 *
 * Ids and clock readings arrive in the events: the chart itself never reads the clock.
 */
import { assign, emit, enqueueActions, sendParent, setup } from 'xstate';

/** Why a room ended, as the member who stayed is told. */
export type DepartureReason = 'left' | 'disconnected' | 'timeout' | 'shutdown';

export interface RoomInput {
  roomId: string;
  members: readonly [string, string];
}

interface RoomContext extends RoomInput {
  /** The `seq` of the last relayed message; the first message is 1. */
  seq: number;
}

export type RoomEvent =
  | { type: 'room.message'; from: string; text: string; messageId: string; sentAt: string }
  | { type: 'room.leave'; userId: string; reason: DepartureReason }
  | { type: 'room.shutdown' };

/** A message as the room relays it: numbered, stamped, addressed. */
interface RelayedMessage {
  roomId: string;
  from: string;
  to: string;
  text: string;
  messageId: string;
  seq: number;
  sentAt: string;
}

/** What a room tells its parent when it closes: one event type for every room. */
export type RoomEnded = { type: 'room.ended'; roomId: string };

export type RoomEmitted =
  | ({ type: 'room.relayed' } & RelayedMessage)
  | { type: 'room.closed'; roomId: string; to: string; reason: DepartureReason };

const partnerOf = (members: readonly [string, string], userId: string): string =>
  members[0] === userId ? members[1] : members[0];

export const roomMachine = setup({
  types: {
    input: {} as RoomInput,
    context: {} as RoomContext,
    events: {} as RoomEvent,
    emitted: {} as RoomEmitted,
  },
  guards: {
    isMember: ({ context, event }) =>
      (event.type === 'room.message' && context.members.includes(event.from)) ||
      (event.type === 'room.leave' && context.members.includes(event.userId)),
  },
  actions: {
    numberMessage: assign({ seq: ({ context }) => context.seq + 1 }),
    emitRelayed: emit(({ context, event }) => {
      if (event.type !== 'room.message') throw new Error(`emitRelayed cannot handle ${event.type}`);
      return {
        type: 'room.relayed' as const,
        roomId: context.roomId,
        from: event.from,
        to: partnerOf(context.members, event.from),
        text: event.text,
        messageId: event.messageId,
        seq: context.seq,
        sentAt: event.sentAt,
      };
    }),
    emitClosed: emit(({ context, event }) => {
      if (event.type !== 'room.leave') throw new Error(`emitClosed cannot handle ${event.type}`);
      return {
        type: 'room.closed' as const,
        roomId: context.roomId,
        to: partnerOf(context.members, event.userId),
        reason: event.reason,
      };
    }),
    emitShutdownToBoth: enqueueActions(({ context, enqueue }) => {
      for (const to of context.members) enqueue.emit({ type: 'room.closed', roomId: context.roomId, to, reason: 'shutdown' });
    }),
    reportEnded: sendParent(({ context }): RoomEnded => ({ type: 'room.ended', roomId: context.roomId })),
  },
}).createMachine({
  id: 'room',
  context: ({ input }) => ({ ...input, seq: 0 }),
  initial: 'open',
  states: {
    open: {
      on: {
        'room.message': { guard: 'isMember', actions: ['numberMessage', 'emitRelayed'] },
        'room.leave': { guard: 'isMember', target: 'closed', actions: ['emitClosed', 'reportEnded'] },
        'room.shutdown': { target: 'closed', actions: ['emitShutdownToBoth', 'reportEnded'] },
      },
    },
    closed: {},
  },
});
