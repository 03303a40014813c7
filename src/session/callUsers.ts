/**
 * Which user a tool call acts for (the tools' `CallUsers`): the user its `user_token`
 * names — and the call's session, if it has one, is bound to that user from then on —
 * else the user its session is bound to. `enter_queue` and `next` without either make
 * a new user (newUsers.ts), bound to the call's session. One `CallUsers` per protocol
 * era: the 2025 era's calls come through the mux with sessions, the 2026-07-28 era's
 * without (their ids are the client's own, and would name some other session's request
 * in the mux). A banned user is refused when it asks to meet someone (enter_queue, next).
 */
import type { ChatUser } from '../chat/chatUser.js';
import { secretHint } from '../chat/processDirectory.js';
import type { UserDirectory } from '../chat/userDirectory.js';
import type { ChatMessage } from '../mcp/notifications.js';
import type { Refusal } from '../mcp/refusals.js';
import type { RequestMeta, SessionMux } from '../mcp/sessionMux.js';
import type { CallUsers, ToolExtra } from '../mcp/tools.js';
import { allowanceSentence, type Release } from './addressAllowance.js';
import type { ChatSession } from './chatSession.js';
import { admitNewUser, bannedRefusal, type UserLimits } from './newUsers.js';

interface CallUsersOptions {
  directory: UserDirectory<ChatMessage>;
  /** The limits both eras share: new users per client address, users in all, what an address holds. */
  limits: UserLimits;
  /** The session a call came in, if it has one. */
  sessionOf(extra: ToolExtra): ChatSession | undefined;
  /** What the HTTP layer said of the call: its client's address, and whether it held it. */
  metaOf(extra: ToolExtra): RequestMeta | undefined;
}

/** The 2025 era's: calls through the mux, which knows their sessions and addresses. */
export const sessionCallUsers = (directory: UserDirectory<ChatMessage>, limits: UserLimits, mux: SessionMux<ChatSession>): CallUsers =>
  callUsers({
    directory,
    limits,
    sessionOf: (extra) => mux.sessionOf(extra.mcpReq.id),
    metaOf: (extra) => mux.metaOf(extra.mcpReq.id),
  });

/** The 2026-07-28 era's: calls without sessions, by token alone. */
export const sessionlessCallUsers = (directory: UserDirectory<ChatMessage>, limits: UserLimits, mux: SessionMux<ChatSession>): CallUsers =>
  callUsers({ directory, limits, sessionOf: () => undefined, metaOf: (extra) => mux.metaOfSessionless(extra.http?.req) });

function callUsers({ directory, limits, sessionOf, metaOf }: CallUsersOptions): CallUsers {
  const { allowance, bans } = limits;
  /** The user, unless it asks to meet someone and is banned: then the call is refused, and nothing else changes. */
  const unlessBanned = (user: ChatUser<ChatMessage>, joining: boolean): ChatUser<ChatMessage> | Refusal => {
    const ban = joining ? bans.banOn({ userId: user.userId }) : undefined;
    return ban ? bannedRefusal(ban, 'user') : user;
  };
  return {
    find(token, extra, joining = false) {
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
    create(extra) {
      const admitted = admitNewUser(directory, limits, metaOf(extra)?.address);
      if (!('sentence' in admitted)) sessionOf(extra)?.bind(admitted);
      return admitted;
    },
    holdWait(extra): Release | Refusal {
      const meta = metaOf(extra);
      // A call the HTTP layer held holds its allowance already, until it is answered.
      if (meta?.heldWait) return () => {};
      const release = allowance.take(meta?.address ?? 'unknown', 'waits');
      return release ?? { reason: 'address_waits', sentence: allowanceSentence('waits', allowance.perAddress) };
    },
    replacedWhileHeld: (extra) => metaOf(extra)?.heldWait?.superseded === true,
  };
}
