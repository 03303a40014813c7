/**
 * roomMachine — one conversation between two users. The broker starts one per pair the
 * queue makes, in the process of one of its members.
 *
 * States: `open` → `closed` (final).
 * Takes:  `room.message` (a member sends text; the room numbers it),
 *         `room.leave` (a member leaves or is gone; the room closes),
 *         `room.shutdown` (the server stops; the room closes under both members).
 * Emits:  `room.relayed` (a numbered message, for the partner and as the sender's receipt),
 *         `room.closed` (to each member who stayed, with the reason the room ended).
 *
 * Ids and clock readings arrive in the events: the chart itself never reads the clock.
 */
import { assign, emit, enqueueActions, setup } from 'xstate';

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

export type RoomEmitted =
  | ({ type: 'room.relayed' } & RelayedMessage)
  | { type: 'room.closed'; roomId: string; to: string; reason: DepartureReason };

const partnerOf = (members: readonly [string, string], userId: string): string => (members[0] === userId ? members[1] : members[0]);

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
  },
}).createMachine({
  id: 'room',
  context: ({ input }) => ({ ...input, seq: 0 }),
  initial: 'open',
  states: {
    open: {
      on: {
        'room.message': { guard: 'isMember', actions: ['numberMessage', 'emitRelayed'] },
        'room.leave': { guard: 'isMember', target: 'closed', actions: 'emitClosed' },
        'room.shutdown': { target: 'closed', actions: 'emitShutdownToBoth' },
      },
    },
    closed: { type: 'final' },
  },
});
