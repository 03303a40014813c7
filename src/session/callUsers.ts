/**
 * Which user a tool call acts for (the tools' `CallUsers`): the user its `user_token`
 * names — and the call's session, if it has one, is bound to that user from then on —
 * else the user its session is bound to. `enter_queue` and `next` without either make
 * a new user, bound to the call's session; new users are limited per client address.
 */
import type { UserDirectory } from '../chat/userDirectory.js';
import type { ChatMessage } from '../mcp/notifications.js';
import type { Refusal } from '../mcp/refusals.js';
import type { SessionMux } from '../mcp/sessionMux.js';
import type { CallUsers, ToolExtra, ToolUser } from '../mcp/tools.js';
import type { ChatSession } from './chatSession.js';

export interface CallUsersOptions {
  directory: UserDirectory<ChatMessage>;
  mux: SessionMux<ChatSession>;
  /** New users one client address may make per minute. */
  newUsersPerMinute: number;
}

/** A token as logs may show it: enough to tell two apart, not enough to use. */
export const tokenHint = (token: string) => `${token.slice(0, 4)}…`;

export function callUsers({ directory, mux, newUsersPerMinute }: CallUsersOptions): CallUsers {
  const limiter = new PerAddressLimit(newUsersPerMinute, 60_000);
  return {
    find(token: string | undefined, extra: ToolExtra): ToolUser | Refusal | undefined {
      const session = mux.sessionOf(extra.mcpReq.id);
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
      const address = mux.metaOf(extra.mcpReq.id)?.address ?? 'unknown';
      if (!limiter.take(address, Date.now()))
        return {
          reason: 'too_many_users',
          sentence: `Too many new users from your address (at most ${newUsersPerMinute} a minute). Pass the user_token you already have, or try again in a minute.`,
        };
      const user = directory.create();
      mux.sessionOf(extra.mcpReq.id)?.bind(user);
      return user;
    },
  };
}

/** At most `limit` takes per address in any `windowMs` (a fixed window per address, swept as it goes). */
class PerAddressLimit {
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  take(address: string, now: number): boolean {
    if (this.#windows.size > 10_000) for (const [key, w] of this.#windows) if (now - w.start >= this.windowMs) this.#windows.delete(key);
    const window = this.#windows.get(address);
    if (!window || now - window.start >= this.windowMs) {
      this.#windows.set(address, { start: now, count: 1 });
      return true;
    }
    if (window.count >= this.limit) return false;
    window.count += 1;
    return true;
  }
}
