/**
 * Why a user's chart did not take an event, as a reason (for metrics) and a sentence
 * that tells the user what to do instead. The chart decided; this reads which of its
 * named guards refused (or that its state takes no such event) and explains it.
 */
import type { SnapshotFrom } from 'xstate';
import type { UserEvent, UserState, userMachine } from '../../machines/user.js';
import type { RefusalReason } from '../ops/metrics.js';

export interface Refusal {
  reason: RefusalReason;
  sentence: string;
}

type UserSnapshot = SnapshotFrom<typeof userMachine>;

/** The chart's named guards (those `setup` declares). */
type GuardName = keyof NonNullable<Parameters<typeof userMachine.provide>[0]['guards']>;

type Guard = (args: { context: UserSnapshot['context']; event: UserEvent }, params: undefined) => boolean;

/**
 * The named guard that refuses `event` on the transitions the user's state has for it
 * (the first that fails); undefined when the state has none, or one takes it.
 */
function refusingGuard(snapshot: UserSnapshot, event: UserEvent): GuardName | undefined {
  const state = snapshot.machine.root.states[snapshot.value as string];
  const guards = snapshot.machine.implementations.guards as unknown as Record<GuardName, Guard>;
  let refused: GuardName | undefined;
  for (const transition of state?.on[event.type] ?? []) {
    // A guard is named (`'isOwnRoom'`) or a combination of names (`and([...])`).
    const guard = transition.guard as unknown as GuardName | { guards?: GuardName[] } | undefined;
    const names = typeof guard === 'string' ? [guard] : (guard?.guards ?? []);
    const refusing = names.find((name) => !guards[name]({ context: snapshot.context, event }, undefined));
    if (refusing === undefined) return undefined;
    refused ??= refusing;
  }
  return refused;
}

/** What a user is told when one of the chart's guards refused its call. */
const guardRefusals: Record<GuardName, (snapshot: UserSnapshot, event: UserEvent) => Refusal> = {
  isOwnRoom: (snapshot, event) => notYourRoom(snapshot, event),
  leavesOwnRoom: (snapshot, event) => notYourRoom(snapshot, event),
  hasSendBudget: ({ context: { rate } }) => ({
    reason: 'rate_limited',
    sentence: `You are sending too fast: at most ${rate.perSecond} message(s) per second, in bursts of up to ${rate.burst}. Wait a moment, then send again.`,
  }),
  judgesLastPartner: ({ context }, event) =>
    event.type === 'chat.leave' && (event.block || event.report !== undefined) && !context.lastChat
      ? {
          reason: 'nothing_to_leave',
          sentence: 'You have had no partner yet, so there is no one to block or report. Call enter_queue to meet someone.',
        }
      : nothingToLeave,
};

function notYourRoom({ value, context }: UserSnapshot, event: UserEvent): Refusal {
  const asked = 'roomId' in event ? event.roomId : undefined;
  return value === 'waiting'
    ? {
        reason: 'not_your_room',
        sentence: `You are waiting in the queue, not in room ${JSON.stringify(asked)}. Call leave_chat without room_id to leave the queue.`,
      }
    : {
        reason: 'not_your_room',
        sentence: `room_id ${JSON.stringify(asked)} is not your room; you are chatting in room ${context.roomId ?? undefined}.`,
      };
}

const nothingToLeave: Refusal = {
  reason: 'nothing_to_leave',
  sentence: 'You are not waiting or chatting, so there is nothing to leave. Call enter_queue to meet someone.',
};

/** What a user is told when its state takes no such event at all. */
function unhandled({ value, context }: UserSnapshot, event: UserEvent): Refusal {
  const state = value as UserState;
  if (state === 'chatting' && event.type === 'queue.enter')
    return {
      reason: 'already_chatting',
      sentence: `You are already chatting in room ${context.roomId}. Talk with send_message, or call leave_chat or next before entering the queue again.`,
    };
  if (state === 'waiting' && event.type === 'chat.send')
    return {
      reason: 'still_waiting',
      sentence:
        'You are still waiting for a partner, so there is no one to send to yet. Call wait_for_events (or wait for chatroom.found), then send_message with its room_id.',
    };
  if (event.type === 'chat.send')
    return {
      reason: 'not_chatting',
      sentence: 'You are not in a chat. Call enter_queue to meet someone, then send_message with the room_id from chatroom.found.',
    };
  return nothingToLeave;
}

/** Why the user's chart refuses `event` now (call it once `snapshot.can(event)` said no). */
export function whyNot(snapshot: UserSnapshot, event: UserEvent): Refusal {
  const guard = refusingGuard(snapshot, event);
  return guard === undefined ? unhandled(snapshot, event) : guardRefusals[guard](snapshot, event);
}
