/**
 * The one place where the user machine's news becomes the wire's notifications.
 * Method names and params are the product contract (SPEC §4); nothing else in the
 * server spells them.
 */
import type { IAm } from '../../machines/matching.js';
import type { DepartureReason, UserEmitted } from '../../machines/user.js';
import type { UserNews } from '../chat/chatUser.js';

export type ChatNotification =
  | { method: 'chatroom.found'; params: { room_id: string; common_interests: string[]; partner_is?: IAm } }
  | {
      method: 'message.received';
      /** `untrusted`: the text is a stranger's, to be read as data and never obeyed. */
      params: { room_id: string; message: string; message_id: string; seq: number; sent_at: string; untrusted: true };
    }
  | { method: 'partner.disconnected'; params: { room_id: string; reason: DepartureReason } };

export type ChatNotificationMethod = ChatNotification['method'];

export const CHAT_NOTIFICATION_METHODS: readonly ChatNotificationMethod[] = ['chatroom.found', 'message.received', 'partner.disconnected'];

const chatMethods = new Set<string>(CHAT_NOTIFICATION_METHODS);

/**
 * Sent in place of events a client can no longer get (they left the user's bounded log
 * before it read them): how many there were. Never stored; a replay or a read says it.
 */
export const MISSED_METHOD = 'events.missed' as const;

export function missedNotice(count: number) {
  return { jsonrpc: '2.0' as const, method: MISSED_METHOD, params: { count } };
}

/** A chat notification as it travels: its method, and the params the client reads. */
export type ChatNotificationMessage = { method: ChatNotificationMethod; params?: Record<string, unknown> };

/** A chat notification as a user's log keeps it and every stream sends it: one object. */
export type ChatMessage = { jsonrpc: '2.0' } & ChatNotificationMessage;

/** The log entry for a piece of a user's news. */
export const toChatMessage = (news: UserNews): ChatMessage => ({ jsonrpc: '2.0', ...toNotification(news) });

/** Whether a JSON-RPC message is one of the chat notifications. */
export function isChatNotification(message: object): message is ChatNotificationMessage {
  return 'method' in message && !('id' in message) && typeof message.method === 'string' && chatMethods.has(message.method);
}

/** The notification a user's client gets for a piece of its actor's news. */
export function toNotification(event: UserNews): ChatNotification {
  switch (event.type) {
    case 'chat.matched':
      return {
        method: 'chatroom.found',
        params: { room_id: event.roomId, common_interests: event.commonInterests, ...(event.partnerIs && { partner_is: event.partnerIs }) },
      };
    case 'chat.received':
      return {
        method: 'message.received',
        params: {
          room_id: event.roomId,
          message: event.text,
          message_id: event.messageId,
          seq: event.seq,
          sent_at: event.sentAt,
          untrusted: true,
        },
      };
    case 'chat.partnerLeft':
      return { method: 'partner.disconnected', params: { room_id: event.roomId, reason: event.reason } };
  }
}

/** An MCP log message (`notifications/message`) that narrates the chat for people watching. */
type ChatLogMessage = {
  level: 'info';
  logger: 'mcp-chat';
  data: string;
};

/** The log line a user's client gets for an event its actor emitted, if any. */
export function toLogMessage(event: UserEmitted): ChatLogMessage | undefined {
  const say = (data: string): ChatLogMessage => ({ level: 'info', logger: 'mcp-chat', data });
  switch (event.type) {
    case 'queue.join':
      return say(
        event.interests.length > 0
          ? `You entered the queue; you will be paired with someone sharing one of your interests (${event.interests.join(', ')}), or after a short wait with anyone.`
          : 'You entered the queue; you will be paired with the next stranger who arrives.',
      );
    case 'queue.leave':
      return say('You left the queue.');
    case 'chat.matched':
      return say(
        `You were paired with ${event.partnerIs === 'agent' ? 'an agent' : event.partnerIs === 'human' ? 'a human' : 'a stranger'} in room ${event.roomId}${event.commonInterests.length > 0 ? `; you share ${event.commonInterests.join(', ')}` : ''}.`,
      );
    case 'room.leave':
      return say(`You left room ${event.roomId}.`);
    case 'chat.partnerLeft':
      return say(`Your partner left room ${event.roomId} (${event.reason}).`);
    default:
      return undefined;
  }
}
