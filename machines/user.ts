/**
 * userMachine — one person (or agent), named by its `user_token`; any session, or none,
 * may act for it.
 *
 * States: `idle` → `waiting` → `chatting` → `idle`, and `ended` (final) from any of
 *         them when the user ends.
 * Takes:  from its calls: `queue.enter` and `chat.next` (with the preferences to be
 *         paired by: interests, what it is, whom it meets; a bare one keeps the last),
 *         `chat.send`, `chat.leave` (both it and `chat.next` may block or report the
 *         partner),
 *         `session.closed` (the server ends it, e.g. on shutdown), and `client.online` /
 *         `client.offline` / `client.detached` / `client.leaving` (waiting or chatting
 *         only) for its presence child, which answers `presence.away` / `presence.back`,
 *         `chat.leave` when a page grace passed, and ends it (`session.closed` with reason
 *         `timeout` or `disconnected`) when nobody comes back in time; from the queue and
 *         its room: `room.paired`, `room.message`, `room.closed`.
 * Emits:  to the queue and room (the broker carries them): `queue.join`, `queue.leave`,
 *         `queue.away`, `queue.back`, `room.send`, `room.leave`; to the user's clients:
 *         `chat.matched`, `chat.received`, `chat.partnerLeft`; to the operator:
 *         `chat.reported`.
 *
 * The partner of the current or last chat is remembered until the next pairing, so
 * `block` and `report` can name it after it left. The queue is asked to avoid it
 * while the user has been idle for less than `rematchAfter` (and then, for that long
 * after the join, the queue avoids it itself), so `next` never pairs the same two again
 * at once, yet two users alone meet again.
 *
 * The chart decides what a user may do; it never reads a clock or makes an id.
 */
import { and, assign, emit, enqueueActions, sendTo, setup } from 'xstate';
import { type IAm, NO_PREFERENCES, type Preferences } from './matching.js';
import { type PresenceEvent, type PresenceInput, presenceMachine } from './presence.js';
import type { JoinRequest } from './queue.js';
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
  /** How long an idle user keeps asking the queue to avoid its last partner, in ms. */
  rematchAfterMs: number;
}

/** Users one user may block: the oldest block goes first beyond this. */
export const MAX_BLOCKED = 1000;

/** The current chat, or the last one until the next pairing. */
export interface ChatMemory {
  roomId: string;
  partnerId: string;
  commonInterests: string[];
  /** What the partner said it is, if it did. */
  partnerIs?: IAm;
}

/** The send budget: `tokens` as of time `at` (ms, the clock of the events that spend them). */
interface SendBudget {
  tokens: number;
  at: number;
}

/** What a room says of a message it numbered: the sender's answer (the broker's `send`), the partner's message. */
export interface Receipt {
  roomId: string;
  messageId: string;
  seq: number;
  sentAt: string;
}

interface UserContext extends UserInput {
  /** The room while chatting. */
  roomId: string | null;
  /** The current partner while chatting. */
  partnerId: string | null;
  lastChat: ChatMemory | null;
  /** Whether a join asks the queue to avoid `lastChat`'s partner. */
  avoidsLastPartner: boolean;
  preferences: Preferences;
  blocked: string[];
  budget: SendBudget;
}

export interface IncomingMessage extends Receipt {
  text: string;
}

/** What `enter_queue` and `next` may change; a field left out keeps its last value. */
export type PreferenceChange = Partial<Preferences>;

/** What `leave_chat` and `next` may do to the partner: block it, or block and report it. */
export interface PartnerVerdict {
  block?: boolean;
  /** Why the partner is reported (blocks it too). */
  report?: string;
}

export type UserEvent =
  | { type: 'queue.enter'; preferences?: PreferenceChange }
  /** `at`: when the session received the message (ms); it spends from the send budget. */
  | { type: 'chat.send'; roomId: string; text: string; at: number }
  | ({ type: 'chat.leave'; roomId?: string } & PartnerVerdict)
  /** `leave_chat` with `grace`: the person is closing or reloading the page (see presenceMachine). */
  | { type: 'client.leaving'; roomId?: string }
  | ({ type: 'chat.next'; preferences?: PreferenceChange } & PartnerVerdict)
  | { type: 'session.closed'; reason: SessionEndReason }
  | Exclude<PresenceEvent, { type: 'client.leaving' }>
  | { type: 'presence.away' }
  | { type: 'presence.back' }
  | { type: 'room.paired'; roomId: string; partnerId: string; commonInterests?: string[]; partnerIs?: IAm }
  | ({ type: 'room.message' } & IncomingMessage)
  | { type: 'room.closed'; roomId: string; reason: DepartureReason };

export type UserEmitted =
  | ({ type: 'queue.join' } & Required<Omit<JoinRequest, 'iAm'>> & Pick<JoinRequest, 'iAm'>)
  | { type: 'queue.leave'; userId: string }
  | { type: 'queue.away'; userId: string }
  | { type: 'queue.back'; userId: string }
  | { type: 'room.send'; roomId: string; userId: string; text: string }
  | { type: 'room.leave'; roomId: string; userId: string; reason: DepartureReason }
  | { type: 'chat.matched'; roomId: string; commonInterests: string[]; partnerIs?: IAm }
  | ({ type: 'chat.received' } & IncomingMessage)
  | { type: 'chat.partnerLeft'; roomId: string; reason: DepartureReason }
  | { type: 'chat.reported'; roomId: string; userId: string; partnerId: string; reason: string };

export type UserState = 'idle' | 'waiting' | 'chatting' | 'ended';

/** The fields of a change that are set. */
const definedOf = (change: PreferenceChange): PreferenceChange =>
  Object.fromEntries(Object.entries(change).filter(([, value]) => value !== undefined));

const roomIdOf = (event: UserEvent): string | undefined => ('roomId' in event ? event.roomId : undefined);

const verdictOf = (event: UserEvent): PartnerVerdict =>
  event.type === 'chat.leave' || event.type === 'chat.next' ? { block: event.block, report: event.report } : {};

const blocks = (verdict: PartnerVerdict): boolean => verdict.block === true || verdict.report !== undefined;

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
    /** An idle user blocks or reports the partner of its last chat. */
    judgesLastPartner: ({ context, event }) => context.lastChat !== null && roomIdOf(event) === undefined && blocks(verdictOf(event)),
  },
  delays: {
    rematchAfter: ({ context }) => context.rematchAfterMs,
  },
  actions: {
    tellPresence: sendTo('presence', ({ event }) => ({ type: event.type }) as PresenceEvent),
    /** Takes a `queue.enter` or `chat.next`'s preferences; a field left out keeps its value. */
    assignPreferences: assign({
      preferences: ({ context, event }) =>
        (event.type === 'queue.enter' || event.type === 'chat.next') && event.preferences
          ? { ...context.preferences, ...definedOf(event.preferences) }
          : context.preferences,
    }),
    /** Blocks the last (or current) partner for good, and reports it when asked to. */
    judgePartner: enqueueActions(({ context, event, enqueue }) => {
      const verdict = verdictOf(event);
      if (!context.lastChat || !blocks(verdict)) return;
      const { partnerId, roomId } = context.lastChat;
      if (!context.blocked.includes(partnerId)) enqueue.assign({ blocked: [...context.blocked, partnerId].slice(-MAX_BLOCKED) });
      if (verdict.report !== undefined)
        enqueue.emit({ type: 'chat.reported', roomId, userId: context.userId, partnerId, reason: verdict.report });
    }),
    joinQueue: emit(({ context }) => ({
      type: 'queue.join' as const,
      userId: context.userId,
      avoid: context.avoidsLastPartner && context.lastChat ? context.lastChat.partnerId : null,
      blocked: context.blocked,
      interests: context.preferences.interests,
      ...(context.preferences.iAm !== undefined && { iAm: context.preferences.iAm }),
      meet: context.preferences.meet,
    })),
    forgetAvoidance: assign({ avoidsLastPartner: false }),
    leaveQueue: emit(({ context }) => ({ type: 'queue.leave' as const, userId: context.userId })),
    holdPlace: emit(({ context }) => ({ type: 'queue.away' as const, userId: context.userId })),
    resumePlace: emit(({ context }) => ({ type: 'queue.back' as const, userId: context.userId })),
    assignRoom: assign(({ event }) => {
      if (event.type !== 'room.paired') return {};
      const { roomId, partnerId, commonInterests = [], partnerIs } = event;
      return {
        roomId,
        partnerId,
        lastChat: { roomId, partnerId, commonInterests, ...(partnerIs !== undefined && { partnerIs }) },
        avoidsLastPartner: true,
      };
    }),
    clearRoom: assign({ roomId: null, partnerId: null }),
    emitMatched: emit(({ context }) => ({
      type: 'chat.matched' as const,
      roomId: context.roomId!,
      commonInterests: context.lastChat?.commonInterests ?? [],
      ...(context.lastChat?.partnerIs !== undefined && { partnerIs: context.lastChat.partnerIs }),
    })),
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
    lastChat: null,
    avoidsLastPartner: false,
    preferences: NO_PREFERENCES,
    blocked: [],
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
      // Idle long enough, a user may be paired with its last partner at once again.
      after: { rematchAfter: { actions: 'forgetAvoidance' } },
      on: {
        'queue.enter': { target: 'waiting', actions: ['assignPreferences', 'joinQueue'] },
        'chat.next': { target: 'waiting', actions: ['judgePartner', 'assignPreferences', 'joinQueue'] },
        'chat.leave': { guard: 'judgesLastPartner', actions: 'judgePartner' },
        'session.closed': 'ended',
      },
    },
    waiting: {
      on: {
        // Asking again while waiting keeps the user's place; the queue takes its new preferences.
        'queue.enter': { actions: ['assignPreferences', 'joinQueue'] },
        'chat.next': { actions: ['judgePartner', 'assignPreferences', 'joinQueue'] },
        'room.paired': { target: 'chatting', actions: ['assignRoom', 'emitMatched'] },
        // A waiting user with no sign of life keeps its place but is not paired until it is back.
        'presence.away': { actions: 'holdPlace' },
        'presence.back': { actions: 'resumePlace' },
        'chat.leave': { guard: 'leavesOwnRoom', target: 'idle', actions: ['judgePartner', 'leaveQueue'] },
        'client.leaving': { guard: 'leavesOwnRoom', actions: 'tellPresence' },
        'session.closed': { target: 'ended', actions: 'leaveQueue' },
      },
    },
    chatting: {
      on: {
        // The broker answers the send with the message's receipt (src/chat/broker.ts).
        'chat.send': { guard: and(['isOwnRoom', 'hasSendBudget']), actions: ['spendBudget', 'sendToRoom'] },
        'room.message': { guard: 'isOwnRoom', actions: 'emitReceived' },
        'room.closed': {
          guard: 'isOwnRoom',
          target: 'idle',
          actions: ['emitPartnerLeft', 'clearRoom'],
        },
        'chat.leave': {
          guard: 'leavesOwnRoom',
          target: 'idle',
          actions: ['judgePartner', 'leaveRoom', 'clearRoom'],
        },
        'client.leaving': { guard: 'leavesOwnRoom', actions: 'tellPresence' },
        // The partner just left is the join's `avoid`, so the queue does not pair them again at once.
        'chat.next': { target: 'waiting', actions: ['judgePartner', 'leaveRoom', 'clearRoom', 'assignPreferences', 'joinQueue'] },
        'session.closed': { target: 'ended', actions: ['leaveRoom', 'clearRoom'] },
      },
    },
    ended: { type: 'final' },
  },
});
