/**
 * Who may become a new user: while the server has room, from an address no operator
 * banned, and at most `perMinute` new users per client address in any minute. A user
 * an operator banned is refused too when it asks to meet someone (callUsers.ts).
 */

import type { ChatUser } from '../chat/chatUser.js';
import type { Ban, ModerationStore } from '../chat/moderation.js';
import type { UserDirectory } from '../chat/userDirectory.js';
import type { ChatMessage } from '../mcp/notifications.js';
import type { Refusal } from '../mcp/refusals.js';
import type { AddressAllowance } from './addressAllowance.js';

/** What limits the users calls make and the waits they hold. */
export interface UserLimits {
  newUsers: NewUserLimit;
  /** Users alive at once. */
  maxUsers: number;
  allowance: AddressAllowance;
  /** Who is banned (read without waiting), and where new users come from (for a ban that takes the address too). */
  bans: Pick<ModerationStore, 'banOn' | 'noteAddress'>;
}

/** A new user for a call from `address`, or why not. */
export function admitNewUser(
  directory: UserDirectory<ChatMessage>,
  limits: UserLimits,
  address: string | undefined,
): ChatUser<ChatMessage> | Refusal {
  const { newUsers, maxUsers, bans } = limits;
  if (directory.size >= maxUsers)
    return {
      reason: 'users_full',
      sentence: `The server is full (${maxUsers} users chatting or waiting); try again in a minute.`,
    };
  const ban = address === undefined ? undefined : bans.banOn({ address });
  if (ban) return bannedRefusal(ban, 'address');
  if (!newUsers.take(address ?? 'unknown', Date.now()))
    return {
      reason: 'too_many_users',
      sentence: `Too many new users from your address (at most ${newUsers.perMinute} a minute). Pass the user_token you already have, or try again in a minute.`,
    };
  const user = directory.create();
  if (address !== undefined) bans.noteAddress(user.userId, address);
  return user;
}

/** What a banned user (or a new user from a banned address) is told. */
export const bannedRefusal = ({ until }: Ban, whom: 'user' | 'address'): Refusal => ({
  reason: 'banned',
  sentence:
    whom === 'user'
      ? `You are banned from this chat server until ${new Date(until).toISOString()} (an operator's decision). You cannot meet anyone new until then.`
      : `New users from your address are banned from this chat server until ${new Date(until).toISOString()} (an operator's decision). Try again after that.`,
});

const MINUTE_MS = 60_000;

/** At most `perMinute` new users per address in any minute (a fixed window per address, swept as it goes). */
export class NewUserLimit {
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(readonly perMinute: number) {}

  take(address: string, now: number): boolean {
    if (this.#windows.size > 10_000) for (const [key, w] of this.#windows) if (now - w.start >= MINUTE_MS) this.#windows.delete(key);
    const window = this.#windows.get(address);
    if (!window || now - window.start >= MINUTE_MS) {
      this.#windows.set(address, { start: now, count: 1 });
      return true;
    }
    if (window.count >= this.perMinute) return false;
    window.count += 1;
    return true;
  }
}
