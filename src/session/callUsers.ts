/**
 * Which user a tool call acts for (the tools' `CallUsers`): the user its `user_token`
 * names — and the call's session, if it has one, is bound to that user from then on —
 * else the user its session is bound to. `enter_queue` and `next` without either make
 * a new user, bound to the call's session; new users are limited per client address.
 * One `CallUsers` per protocol era: the 2025 era's calls come through the mux with
 * sessions, the 2026-07-28 era's without (their ids are the client's own, and would
 * name some other session's request in the mux).
 */
import type { UserDirectory } from '../chat/userDirectory.js';
import type { ChatMessage } from '../mcp/notifications.js';
import type { Refusal } from '../mcp/refusals.js';
import type { SessionMux } from '../mcp/sessionMux.js';
import type { CallUsers, ToolExtra, ToolUser } from '../mcp/tools.js';
import type { ChatSession } from './chatSession.js';

export interface CallUsersOptions {
  directory: UserDirectory<ChatMessage>;
  /** The limit on new users per client address, shared by both eras. */
  limit: NewUserLimit;
  /** The session a call came in, if it has one. */
  sessionOf(extra: ToolExtra): ChatSession | undefined;
  /** The address of the client that made the call. */
  addressOf(extra: ToolExtra): string | undefined;
}

/** A token as logs may show it: enough to tell two apart, not enough to use. */
/** The first characters of a token's secret (after its process id), for logs and refusals. */
export const tokenHint = (token: string) => `${token.slice(token.indexOf('.') + 1, token.indexOf('.') + 5)}…`;

/** The 2025 era's: calls through the mux, which knows their sessions and addresses. */
export const sessionCallUsers = (directory: UserDirectory<ChatMessage>, limit: NewUserLimit, mux: SessionMux<ChatSession>): CallUsers =>
  callUsers({ directory, limit, sessionOf: (extra) => mux.sessionOf(extra.mcpReq.id), addressOf: (extra) => mux.metaOf(extra.mcpReq.id)?.address });

/** The 2026-07-28 era's: calls without sessions, by token alone. */
export const sessionlessCallUsers = (directory: UserDirectory<ChatMessage>, limit: NewUserLimit, mux: SessionMux<ChatSession>): CallUsers =>
  callUsers({ directory, limit, sessionOf: () => undefined, addressOf: (extra) => mux.metaOfSessionless(extra.http?.req)?.address });

function callUsers({ directory, limit, sessionOf, addressOf }: CallUsersOptions): CallUsers {
  return {
    find(token: string | undefined, extra: ToolExtra): ToolUser | Refusal | undefined {
      const session = sessionOf(extra);
      if (token === undefined) return session?.user ?? undefined;
      const user = directory.byToken(token);
      if (!user)
        return {
          reason: 'unknown_token',
          sentence: `The user_token you passed (${tokenHint(token)}) names no user: it ended (after a long silence, or a shutdown) or was never issued. Call enter_queue without a user_token to start again, and pass the new one.`,
        };
      user.calledByToken();
      session?.bind(user);
      return user;
    },
    create(extra: ToolExtra): ToolUser | Refusal {
      if (!limit.take(addressOf(extra) ?? 'unknown', Date.now()))
        return {
          reason: 'too_many_users',
          sentence: `Too many new users from your address (at most ${limit.perMinute} a minute). Pass the user_token you already have, or try again in a minute.`,
        };
      const user = directory.create();
      sessionOf(extra)?.bind(user);
      return user;
    },
  };
}

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
