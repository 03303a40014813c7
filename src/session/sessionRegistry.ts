/**
 * The sessions that are open now, by `Mcp-Session-Id`. A session lists itself once its
 * client has initialized and takes itself off when it ends (both in ChatSession, the
 * only caller of `add` and `delete`), so the count is what is live.
 */
import type { ChatSession, SessionMembership } from './chatSession.js';

export class SessionRegistry implements SessionMembership {
  readonly #sessions = new Map<string, ChatSession>();

  add(session: ChatSession): void {
    this.#sessions.set(session.sessionId, session);
  }

  get(sessionId: string): ChatSession | undefined {
    return this.#sessions.get(sessionId);
  }

  delete(session: ChatSession): void {
    if (this.#sessions.get(session.sessionId) === session) this.#sessions.delete(session.sessionId);
  }

  get size(): number {
    return this.#sessions.size;
  }

  values(): IterableIterator<ChatSession> {
    return this.#sessions.values();
  }
}
