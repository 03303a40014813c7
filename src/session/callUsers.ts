/**
 * Which user a tool call acts for (the tools' `CallUsers`): the user its `user_token`
 * names — and the call's session, if it has one, is bound to that user from then on —
 * else the user its session is bound to. `enter_queue` and `next` without either make
 * a new user, bound to the call's session; new users are limited per client address.
 * One `CallUsers` per protocol era: the 2025 era's calls come through the mux with
 * sessions, the 2026-07-28 era's without (their ids are the client's own, and would
 * name some other session's request in the mux). A user an operator banned is refused
 * when it asks to meet someone (enter_queue, next), and so is a new user from an
 * address banned with it.
 */
import type { Ban, ModerationStore } from '../chat/moderation.js';
import { secretHint } from '../chat/processDirectory.js';
import type { UserDirectory } from '../chat/userDirectory.js';
import type { ChatMessage } from '../mcp/notifications.js';
import type { Refusal } from '../mcp/refusals.js';
import type { SessionMux } from '../mcp/sessionMux.js';
import type { CallUsers, ToolExtra, ToolUser } from '../mcp/tools.js';
import { allowanceSentence, type AddressAllowance, type Release } from './addressAllowance.js';
import type { ChatSession } from './chatSession.js';

export interface CallUsersOptions {
  directory: UserDirectory<ChatMessage>;
  /** The limits both eras share: new users per client address, users in all, what an address holds. */
  limits: UserLimits;
  /** The session a call came in, if it has one. */
  sessionOf(extra: ToolExtra): ChatSession | undefined;
  /** The address of the client that made the call. */
  addressOf(extra: ToolExtra): string | undefined;
}


/** What limits the users calls make and the waits they hold. */
export interface UserLimits {
  newUsers: NewUserLimit;
  /** Users alive at once. */
  maxUsers: number;
  allowance: AddressAllowance;
  /** Who is banned (read without waiting), and where new users come from (for a ban that takes the address too). */
  bans: Pick<ModerationStore, 'banOn' | 'noteAddress'>;
}

/** The 2025 era's: calls through the mux, which knows their sessions and addresses. */
export const sessionCallUsers = (directory: UserDirectory<ChatMessage>, limits: UserLimits, mux: SessionMux<ChatSession>): CallUsers =>
  callUsers({ directory, limits, sessionOf: (extra) => mux.sessionOf(extra.mcpReq.id), addressOf: (extra) => mux.metaOf(extra.mcpReq.id)?.address });

/** The 2026-07-28 era's: calls without sessions, by token alone. */
export const sessionlessCallUsers = (directory: UserDirectory<ChatMessage>, limits: UserLimits, mux: SessionMux<ChatSession>): CallUsers =>
  callUsers({ directory, limits, sessionOf: () => undefined, addressOf: (extra) => mux.metaOfSessionless(extra.http?.req)?.address });

function callUsers({ directory, limits, sessionOf, addressOf }: CallUsersOptions): CallUsers {
  const { newUsers: limit, maxUsers, allowance, bans } = limits;
  /** The user, unless it asks to meet someone and is banned: then the call is refused, and nothing else changes. */
  const unlessBanned = (user: ToolUser, joining: boolean): ToolUser | Refusal => {
    const ban = joining ? bans.banOn({ userId: user.chat.userId }) : undefined;
    return ban ? bannedRefusal(ban, 'user') : user;
  };
  return {
    find(token: string | undefined, extra: ToolExtra, joining = false): ToolUser | Refusal | undefined {
      const session = sessionOf(extra);
      if (token === undefined) return session?.user ? unlessBanned(session.user, joining) : undefined;
      const user = directory.byToken(token);
      if (!user)
        return {
          reason: 'unknown_token',
          sentence: `The user_token you passed (${secretHint(token)}) names no user: it ended (after a long silence, or a shutdown) or was never issued. Call enter_queue without a user_token to start again, and pass the new one.`,
        };
      user.calledByToken();
      session?.bind(user);
      return unlessBanned(user, joining);
    },
    create(extra: ToolExtra): ToolUser | Refusal {
      if (directory.size >= maxUsers)
        return {
          reason: 'users_full',
          sentence: `The server is full (${maxUsers} users chatting or waiting); try again in a minute.`,
        };
      const address = addressOf(extra);
      const ban = address === undefined ? undefined : bans.banOn({ address });
      if (ban) return bannedRefusal(ban, 'address');
      if (!limit.take(address ?? 'unknown', Date.now()))
        return {
          reason: 'too_many_users',
          sentence: `Too many new users from your address (at most ${limit.perMinute} a minute). Pass the user_token you already have, or try again in a minute.`,
        };
      const user = directory.create();
      if (address !== undefined) bans.noteAddress(user.chat.userId, address);
      sessionOf(extra)?.bind(user);
      return user;
    },
    holdWait(extra: ToolExtra): Release | Refusal {
      const release = allowance.take(addressOf(extra) ?? 'unknown', 'waits');
      return release ?? { reason: 'address_waits', sentence: allowanceSentence('waits', allowance.perAddress) };
    },
  };
}

/** What a banned user (or a new user from a banned address) is told. */
const bannedRefusal = ({ until }: Ban, whom: 'user' | 'address'): Refusal => ({
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
