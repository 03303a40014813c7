/**
 * Whether the server takes new sessions and calls without a session now: not once it is
 * closing or its broker failed, and no new session past `--max-sessions` (counting those
 * being initialized, which register only when their `initialize` is answered).
 */
import type { RequestId } from '@modelcontextprotocol/server';
import type { Context } from 'hono';
import type { ChatConfig } from '../config.js';
import type { ChatMetrics } from '../ops/metrics.js';
import type { SessionRegistry } from '../session/sessionRegistry.js';
import { refuseHttp } from './guards.js';

export class SessionGate {
  #closing = false;
  #failed = false;
  #opening = 0;

  constructor(
    private readonly config: ChatConfig,
    private readonly metrics: ChatMetrics,
    private readonly sessions: SessionRegistry,
  ) {}

  get closing(): boolean {
    return this.#closing;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** Sessions being initialized: they count against the cap before they register. */
  get opening(): number {
    return this.#opening;
  }

  /** From now on no session opens and no call is served without one (503). */
  close(): void {
    this.#closing = true;
  }

  /** The broker failed: no session opens and no call is served without one (503). */
  fail(): void {
    this.#failed = true;
  }

  /** Why no request may be served without a session of its own now, if one may not. */
  refuseWithoutSession(c: Context, id: RequestId | null = null): Response | undefined {
    if (this.#closing)
      return refuseHttp(
        c,
        this.metrics,
        'shutting_down',
        503,
        -32000,
        'The server is shutting down and takes no new sessions or calls without one.',
        {},
        id,
      );
    if (this.#failed)
      return refuseHttp(
        c,
        this.metrics,
        'server_failed',
        503,
        -32000,
        'The server cannot pair anyone right now (its queue failed); try again later.',
        {},
        id,
      );
    return undefined;
  }

  /** Why no new session may open now, if one may not. */
  refuseNewSession(c: Context, id: RequestId | null = null): Response | undefined {
    const { maxSessions } = this.config;
    return (
      this.refuseWithoutSession(c, id) ??
      (this.sessions.size + this.#opening >= maxSessions
        ? refuseHttp(
            c,
            this.metrics,
            'server_full',
            503,
            -32000,
            `The server is full (${maxSessions} sessions); try again later.`,
            { 'Retry-After': '5' },
            id,
          )
        : undefined)
    );
  }

  /** Runs `initialize`, counting its session as opening until it is answered. */
  async opened(initialize: () => Promise<Response>): Promise<Response> {
    this.#opening += 1;
    try {
      return await initialize();
    } finally {
      this.#opening -= 1;
    }
  }
}
