/**
 * The sessions that are open now, by `Mcp-Session-Id`. A session is added once its
 * client has initialized and deleted when it ends, so the count is what is live.
 */
export interface RegisteredSession {
  readonly sessionId: string;
}

export class SessionRegistry<S extends RegisteredSession> {
  readonly #sessions = new Map<string, S>();

  add(session: S): void {
    this.#sessions.set(session.sessionId, session);
  }

  get(sessionId: string): S | undefined {
    return this.#sessions.get(sessionId);
  }

  delete(session: S): void {
    if (this.#sessions.get(session.sessionId) === session) this.#sessions.delete(session.sessionId);
  }

  get size(): number {
    return this.#sessions.size;
  }

  values(): IterableIterator<S> {
    return this.#sessions.values();
  }
}
