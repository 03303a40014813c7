/**
 * The tools' arguments as the user chart's events: what each call asks the chart
 * (src/mcp/tools.ts sends them; the model tests, test/model/memoryWorld.ts, too).
 * Arguments arrive checked by the zod schemas (interests trimmed and lowercased).
 */
import type { IAm, Meet } from '../../machines/matching.js';
import type { PartnerVerdict, PreferenceChange, UserEvent } from '../../machines/user.js';

/** What enter_queue and next may say about whom to meet. */
export interface PreferenceArgs {
  interests?: string[];
  i_am?: IAm;
  meet?: Meet;
}

/** What leave_chat and next may do to the partner. */
export interface VerdictArgs {
  block?: boolean;
  report?: string;
}

/** What leave_chat asks: which room (the current one when left out), and `grace` for a page being closed. */
export interface LeaveArgs extends VerdictArgs {
  room_id?: string;
  grace?: true;
}

/** The preferences given, each interest once. */
const preferencesOf = ({ interests, i_am, meet }: PreferenceArgs): PreferenceChange => ({
  ...(interests !== undefined && { interests: [...new Set(interests)] }),
  ...(i_am !== undefined && { iAm: i_am }),
  ...(meet !== undefined && { meet }),
});

const verdictOf = ({ block, report }: VerdictArgs): PartnerVerdict => ({
  ...(block !== undefined && { block }),
  ...(report !== undefined && { report }),
});

export const enterQueueEvent = (args: PreferenceArgs): UserEvent => ({ type: 'queue.enter', preferences: preferencesOf(args) });

export const nextEvent = (args: PreferenceArgs & VerdictArgs): UserEvent => ({
  type: 'chat.next',
  preferences: preferencesOf(args),
  ...verdictOf(args),
});

/** send_message's event; `at` is when the call came (ms), what the send budget is spent by. */
export const sendEvent = ({ room_id, message }: { room_id: string; message: string }, at: number) => ({
  type: 'chat.send' as const,
  roomId: room_id,
  text: message,
  at,
});

/** leave_chat's event: leaving now, or with `grace`, leaving unless a call comes within the page grace. */
export const leaveEvent = ({ room_id, grace, ...verdict }: LeaveArgs): UserEvent => {
  const room = room_id !== undefined && { roomId: room_id };
  return grace ? { type: 'client.leaving', ...room } : { type: 'chat.leave', ...room, ...verdictOf(verdict) };
};
