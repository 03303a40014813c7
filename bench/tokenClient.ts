/**
 * A lean client that keeps no session open, as the hosts that hold no MCP session call:
 * it names its user by the `user_token` its first call was answered with, and learns its
 * news by long-polling `wait_for_events` from the cursor (`after`) of its last poll,
 * never from a GET stream. Two kinds:
 *
 *   - `fresh-session`: every call in a session of its own — POST initialize, POST
 *     notifications/initialized, POST tools/call, DELETE (the Claude connector pattern);
 *   - `no-session`: every call one POST tools/call without `Mcp-Session-Id` (the
 *     ChatGPT pattern);
 *   - `modern`: every call one POST of the stateless 2026-07-28 revision — its
 *     `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers and the `_meta`
 *     envelope (protocol version, client capabilities, client info) in its params.
 */
import type { ChatClient } from './chatter.js';
import { WireError } from './jsonRpcWire.js';
import { LeanSession, type LeanEndpoint, type NotificationHandler } from './leanSession.js';

export type TokenClientKind = 'fresh-session' | 'no-session' | 'modern';

/**
 * How long one poll may be held, in seconds. A stopped client abandons the poll it
 * holds, so this only sets how often an idle user asks again.
 */
const WAIT_S = 10;
/** Pause after a failed poll, so that a server refusing polls is not hammered. */
const RETRY_MS = 100;

interface PolledEvent {
  method: string;
  params: Record<string, unknown>;
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Rethrows a wire error with the step of a fresh-session call it broke. */
const failedIn = (step: string) => (error: unknown) => {
  throw new WireError(`${step}: ${messageOf(error)}`);
};

export class TokenClient implements ChatClient {
  onNotification: NotificationHandler = () => {};
  token: string | undefined;
  /** Polls that failed (an abandoned poll on stop is not a failure). */
  pollErrors = 0;
  firstPollError: string | undefined;
  readonly #stop = new AbortController();
  #cursor = '0';
  #polling: Promise<void> = Promise.resolve();

  /**
   * Calls go through `endpoint`; polls through `pollEndpoint`, whose connections a held
   * poll may keep busy without holding up a call.
   */
  constructor(
    readonly kind: TokenClientKind,
    private readonly endpoint: LeanEndpoint,
    private readonly pollEndpoint: LeanEndpoint,
  ) {}

  /** Calls a tool for this client's user (once it has a token), and starts polling once it has one. */
  async call(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const result = await this.#call(this.endpoint, name, this.token === undefined ? args : { ...args, user_token: this.token });
    if (this.token === undefined && typeof result.user_token === 'string') {
      this.token = result.user_token;
      this.#polling = this.#poll();
    }
    return result;
  }

  async #call(endpoint: LeanEndpoint, name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, unknown>> {
    // Never opened, a LeanSession calls without Mcp-Session-Id.
    if (this.kind === 'no-session') return new LeanSession(endpoint).call(name, args, signal);
    if (this.kind === 'modern') return new LeanSession(endpoint, 'modern').call(name, args, signal);
    const session = new LeanSession(endpoint);
    await session.open({ stream: false }).catch(failedIn('initialize'));
    try {
      return await session.call(name, args, signal);
    } finally {
      await session.close().catch(failedIn('DELETE'));
    }
  }

  async #poll(): Promise<void> {
    const { signal } = this.#stop;
    while (!signal.aborted) {
      try {
        const page = await this.#call(this.pollEndpoint, 'wait_for_events', { user_token: this.token, after: this.#cursor, timeout_s: WAIT_S }, signal);
        if (!Array.isArray(page.events) || typeof page.cursor !== 'string') throw new WireError(`wait_for_events answered ${JSON.stringify(page).slice(0, 200)}`);
        const at = performance.now();
        for (const event of page.events as PolledEvent[]) this.onNotification(event.method, event.params, at);
        this.#cursor = page.cursor;
      } catch (error) {
        if (signal.aborted) return;
        this.pollErrors += 1;
        this.firstPollError ??= `wait_for_events: ${messageOf(error)}`;
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  /** Stops polling: the poll held now is abandoned (its connection closes). */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#polling;
  }
}
