/**
 * userMachine — one person (or agent), named by its `user_token`; any session, or none,
 * may act for it.
 *
 * States: `idle` → `waiting` → `chatting` → `idle`, and `ended` (final) from any of
 *         them when the user ends.
 * Takes:  from its calls: `queue.enter`, `chat.send`, `chat.leave`, `chat.next`,
 *         `session.closed` (the server ends it, e.g. on shutdown), and `client.online` /
 *         `client.offline` / `client.detached` for its presence child, which answers
 *         `presence.away` / `presence.back` and ends it (`session.closed` with reason
 *         `timeout` or `disconnected`) when nobody comes back in time; from the queue and
 *         its room: `room.paired`, `room.message`, `room.receipt`, `room.closed`.
 * Emits:  to the queue and room (the broker carries them): `queue.join`, `queue.leave`,
 *         `queue.away`, `queue.back`, `room.send`, `room.leave`; to the user's clients:
 *         `chat.matched`, `chat.received`, `chat.partnerLeft`.
 *
 * The chart decides what a user may do; it never reads a clock or makes an id.
 */
import { and, assign, emit, sendTo, setup } from 'xstate';
import { presenceMachine, type PresenceEvent, type PresenceInput } from './presence.js';
import type { DepartureReason } from './room.js';

export type { DepartureReason } from './room.js';

/** Why a session ended (a subset of the reasons a partner is told). */
export type SessionEndReason = Exclude<DepartureReason, 'left'>;

/** How fast a user may send: a token bucket of `burst` tokens refilled at `perSecond`. */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

export interface UserInput {
  userId: string;
  /** How long the session may go unattended; see presenceMachine. */
  presence: PresenceInput;
  rate: RateLimit;
}

/** The send budget: `tokens` as of time `at` (ms, the clock of the events that spend them). */
interface SendBudget {
  tokens: number;
  at: number;
}

export interface Receipt {
  roomId: string;
  messageId: string;
  seq: number;
  sentAt: string;
}

interface UserContext extends UserInput {
  roomId: string | null;
  partnerId: string | null;
  /** The receipt for the last message this user sent: what `send_message` answers. */
  lastReceipt: Receipt | null;
  budget: SendBudget;
}

export interface IncomingMessage extends Receipt {
  text: string;
}

export type UserEvent =
  | { type: 'queue.enter' }
  /** `at`: when the session received the message (ms); it spends from the send budget. */
  | { type: 'chat.send'; roomId: string; text: string; at: number }
  | { type: 'chat.leave'; roomId?: string }
  | { type: 'chat.next' }
  | { type: 'session.closed'; reason: SessionEndReason }
  | PresenceEvent
  | { type: 'presence.away' }
  | { type: 'presence.back' }
  | { type: 'room.paired'; roomId: string; partnerId: string }
  | ({ type: 'room.message' } & IncomingMessage)
  | ({ type: 'room.receipt' } & Receipt)
  | { type: 'room.closed'; roomId: string; reason: DepartureReason };

export type UserEmitted =
  | { type: 'queue.join'; userId: string; avoid: string | null }
  | { type: 'queue.leave'; userId: string }
  | { type: 'queue.away'; userId: string }
  | { type: 'queue.back'; userId: string }
  | { type: 'room.send'; roomId: string; userId: string; text: string }
  | { type: 'room.leave'; roomId: string; userId: string; reason: DepartureReason }
  | { type: 'chat.matched'; roomId: string }
  | ({ type: 'chat.received' } & IncomingMessage)
  | { type: 'chat.partnerLeft'; roomId: string; reason: DepartureReason };

export type UserState = 'idle' | 'waiting' | 'chatting' | 'ended';

const roomIdOf = (event: UserEvent): string | undefined =>
  'roomId' in event ? event.roomId : undefined;

/** The budget refilled up to `at`, never above the burst. */
const budgetAt = ({ budget, rate }: Pick<UserContext, 'budget' | 'rate'>, at: number): SendBudget => ({
  tokens: Math.min(rate.burst, budget.tokens + (Math.max(0, at - budget.at) * rate.perSecond) / 1000),
  at: Math.max(at, budget.at),
});

export const userMachine = setup({
  types: {
    input: {} as UserInput,
    context: {} as UserContext,
    events: {} as UserEvent,
    emitted: {} as UserEmitted,
  },
  actors: { presence: presenceMachine },
  guards: {
    isOwnRoom: ({ context, event }) => roomIdOf(event) === context.roomId,
    hasSendBudget: ({ context, event }) => event.type === 'chat.send' && budgetAt(context, event.at).tokens >= 1,
    /** `leave_chat` may name the room, or leave it out to mean the current one. */
    leavesOwnRoom: ({ context, event }) => {
      const roomId = roomIdOf(event);
      return roomId === undefined || roomId === context.roomId;
    },
  },
  actions: {
    tellPresence: sendTo('presence', ({ event }) => event as PresenceEvent),
    joinQueue: emit(({ context }) => ({
      type: 'queue.join' as const,
      userId: context.userId,
      avoid: context.partnerId,
    })),
    leaveQueue: emit(({ context }) => ({ type: 'queue.leave' as const, userId: context.userId })),
    holdPlace: emit(({ context }) => ({ type: 'queue.away' as const, userId: context.userId })),
    resumePlace: emit(({ context }) => ({ type: 'queue.back' as const, userId: context.userId })),
    assignRoom: assign(({ event }) =>
      event.type === 'room.paired'
        ? { roomId: event.roomId, partnerId: event.partnerId, lastReceipt: null }
        : {},
    ),
    clearRoom: assign({ roomId: null, lastReceipt: null }),
    forgetReceipt: assign({ lastReceipt: null }),
    forgetPartner: assign({ partnerId: null }),
    emitMatched: emit(({ context }) => ({ type: 'chat.matched' as const, roomId: context.roomId! })),
    spendBudget: assign({
      budget: ({ context, event }) => {
        if (event.type !== 'chat.send') return context.budget;
        const refilled = budgetAt(context, event.at);
        return { tokens: refilled.tokens - 1, at: refilled.at };
      },
    }),
    sendToRoom: emit(({ context, event }) => ({
      type: 'room.send' as const,
      roomId: context.roomId!,
      userId: context.userId,
      text: event.type === 'chat.send' ? event.text : '',
    })),
    assignReceipt: assign({
      lastReceipt: ({ context, event }) =>
        event.type === 'room.receipt'
          ? { roomId: event.roomId, messageId: event.messageId, seq: event.seq, sentAt: event.sentAt }
          : context.lastReceipt,
    }),
    emitReceived: emit(({ event }) => {
      if (event.type !== 'room.message') throw new Error(`emitReceived cannot handle ${event.type}`);
      const { type: _type, ...message } = event;
      return { type: 'chat.received' as const, ...message };
    }),
    emitPartnerLeft: emit(({ context, event }) => ({
      type: 'chat.partnerLeft' as const,
      roomId: context.roomId!,
      reason: event.type === 'room.closed' ? event.reason : 'disconnected',
    })),
    leaveRoom: emit(({ context, event }) => ({
      type: 'room.leave' as const,
      roomId: context.roomId!,
      userId: context.userId,
      reason: event.type === 'session.closed' ? event.reason : 'left',
    })),
  },
}).createMachine({
  id: 'user',
  context: ({ input }) => ({
    ...input,
    roomId: null,
    partnerId: null,
    lastReceipt: null,
    budget: { tokens: input.rate.burst, at: 0 },
  }),
  invoke: { id: 'presence', src: 'presence', input: ({ context }) => context.presence },
  on: {
    'client.online': { actions: 'tellPresence' },
    'client.offline': { actions: 'tellPresence' },
    'client.detached': { actions: 'tellPresence' },
  },
  initial: 'idle',
  states: {
    idle: {
      on: {
        'queue.enter': { target: 'waiting', actions: 'joinQueue' },
        'chat.next': { target: 'waiting', actions: 'joinQueue' },
        'session.closed': 'ended',
      },
    },
    waiting: {
      on: {
        // Entering again while waiting asks the queue again, which keeps the user's place.
        'queue.enter': { actions: 'joinQueue' },
        'chat.next': { actions: 'joinQueue' },
        'room.paired': { target: 'chatting', actions: ['assignRoom', 'emitMatched'] },
        // A waiting user with no sign of life keeps its place but is not paired until it is back.
        'presence.away': { actions: 'holdPlace' },
        'presence.back': { actions: 'resumePlace' },
        'chat.leave': { guard: 'leavesOwnRoom', target: 'idle', actions: ['leaveQueue', 'forgetPartner'] },
        'session.closed': { target: 'ended', actions: 'leaveQueue' },
      },
    },
    chatting: {
      on: {
        // The receipt is cleared first: send_message answers only this message's receipt.
        'chat.send': { guard: and(['isOwnRoom', 'hasSendBudget']), actions: ['spendBudget', 'forgetReceipt', 'sendToRoom'] },
        'room.receipt': { guard: 'isOwnRoom', actions: 'assignReceipt' },
        'room.message': { guard: 'isOwnRoom', actions: 'emitReceived' },
        'room.closed': {
          guard: 'isOwnRoom',
          target: 'idle',
          actions: ['emitPartnerLeft', 'clearRoom', 'forgetPartner'],
        },
        'chat.leave': {
          guard: 'leavesOwnRoom',
          target: 'idle',
          actions: ['leaveRoom', 'clearRoom', 'forgetPartner'],
        },
        // The partner just left stays in `partnerId`, so the queue does not pair them again at once.
        'chat.next': { target: 'waiting', actions: ['leaveRoom', 'clearRoom', 'joinQueue'] },
        'session.closed': { target: 'ended', actions: ['leaveRoom', 'clearRoom'] },
      },
    },
    ended: { type: 'final' },
  },
});
