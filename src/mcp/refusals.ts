/**
 * Why a user's actor did not take an event, as a reason (for metrics) and a sentence
 * that tells the user what to do instead. The actor decided; this only explains.
 */
import type { UserEvent, UserState } from '../../machines/user.js';
import type { ChatUser } from '../chat/chatUser.js';
import type { RefusalReason } from '../ops/metrics.js';

export interface Refusal {
  reason: RefusalReason;
  sentence: string;
}

export function whyNot(user: ChatUser, event: UserEvent): Refusal {
  // The snapshot, not statusOf: a refusal needs no queue position (a scan of the queue).
  const { value, context } = user.actor.getSnapshot();
  const state = value as UserState;
  const roomId = context.roomId ?? undefined;
  const asked = 'roomId' in event ? event.roomId : undefined;
  if (state === 'chatting') {
    if (event.type === 'queue.enter')
      return {
        reason: 'already_chatting',
        sentence: `You are already chatting in room ${roomId}. Talk with send_message, or call leave_chat or next before entering the queue again.`,
      };
    if (asked !== undefined && asked !== roomId)
      return { reason: 'not_your_room', sentence: `room_id ${JSON.stringify(asked)} is not your room; you are chatting in room ${roomId}.` };
    if (event.type === 'chat.send') {
      const { perSecond, burst } = user.actor.getSnapshot().context.rate;
      return {
        reason: 'rate_limited',
        sentence: `You are sending too fast: at most ${perSecond} message(s) per second, in bursts of up to ${burst}. Wait a moment, then send again.`,
      };
    }
  }
  if (state === 'waiting') {
    if (event.type === 'chat.send')
      return {
        reason: 'still_waiting',
        sentence: 'You are still waiting for a partner, so there is no one to send to yet. Call wait_for_events (or wait for chatroom.found), then send_message with its room_id.',
      };
    if (asked !== undefined)
      return {
        reason: 'not_your_room',
        sentence: `You are waiting in the queue, not in room ${JSON.stringify(asked)}. Call leave_chat without room_id to leave the queue.`,
      };
  }
  if (event.type === 'chat.send')
    return {
      reason: 'not_chatting',
      sentence: 'You are not in a chat. Call enter_queue to meet someone, then send_message with the room_id from chatroom.found.',
    };
  if (event.type === 'chat.leave' && (event.block || event.report !== undefined) && !context.lastChat)
    return {
      reason: 'nothing_to_leave',
      sentence: 'You have had no partner yet, so there is no one to block or report. Call enter_queue to meet someone.',
    };
  return {
    reason: 'nothing_to_leave',
    sentence: 'You are not waiting or chatting, so there is nothing to leave. Call enter_queue to meet someone.',
  };
}
