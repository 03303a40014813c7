/**
 * A person behind a per-call client, as the Claude connector works: every tool call
 * opens a fresh MCP session (initialize) and carries the `user_token` from the first
 * call's answer; it never opens a GET stream. It learns what happens by holding
 * `wait_for_events` (each in a session of its own) from the cursor of the last answer,
 * one after another, as an agent that waits between its turns: the held call is its
 * sign of life. It never ends a session: the server drops them when they fall idle.
 */
import type { AnyActorRef } from 'xstate';
import { eventually } from '../support/eventually.js';
import { openRawSession } from '../support/rawSession.js';
import { callTool, type Shared, settleCount, type ToolAnswer, UserHandle } from './httpPeople.js';
import type { LeavingAnswer, Notification, Person, PreferenceArgs, QueueAnswer, SentAnswer, Status, VerdictArgs } from './world.js';

/** How long one wait_for_events is held at most (the tool's own bound). */
const WAIT_S = 50;

export class PerCallPerson implements Person {
  readonly notifications: Notification[] = [];
  readonly #user: UserHandle;
  /** The cursor of the last wait_for_events answer. */
  #cursor = '0';
  /** Set while it waits for events, one held call after another; cleared when it goes quiet. */
  #listening: AbortController | undefined;
  /** The held call now, and how many have been held so far. */
  #held: AbortController | undefined;
  #holds = 0;
  #loop: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly shared: Shared,
  ) {
    this.#user = new UserHandle(name, shared);
  }

  get userId(): string {
    return this.#user.user.userId;
  }

  actor(): AnyActorRef {
    return this.#user.actor();
  }

  /** One call in a fresh session, with the token once it has one. */
  async #call(name: string, args: Record<string, unknown> = {}, signal?: AbortSignal): Promise<ToolAnswer> {
    const sessionId = await openRawSession(this.shared.server.url);
    const token = this.#user.token;
    const answer = await callTool(this.shared, {
      sessionId,
      name,
      args: { ...args, ...(token !== undefined && { user_token: token }) },
      signal,
    });
    return 'result' in answer ? { result: this.#user.strip(answer.result) } : answer;
  }

  async #result(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const answer = await this.#call(name, args);
    if ('refusal' in answer) throw new Error(`${name} refused: ${answer.refusal}`);
    if (this.#user.token !== undefined && !this.#listening && this.#holds === 0) this.#listen();
    return answer.result;
  }

  enterQueue = async (args: PreferenceArgs = {}) => (await this.#result('enter_queue', { ...args })) as unknown as QueueAnswer;
  next = async (args: PreferenceArgs & VerdictArgs = {}) => (await this.#result('next', { ...args })) as unknown as QueueAnswer;
  leave = async (roomId?: string, verdict: VerdictArgs = {}) =>
    (await this.#result('leave_chat', { ...(roomId !== undefined && { room_id: roomId }), ...verdict })) as { status: 'idle' };
  leaveWithGrace = async () => (await this.#result('leave_chat', { grace: true })) as unknown as LeavingAnswer;
  send = async (roomId: string, text: string) =>
    (await this.#result('send_message', { room_id: roomId, message: text })) as unknown as SentAnswer;

  /** Holds wait_for_events, one after another, until it goes quiet or its user is gone. */
  #listen(): void {
    const listening = new AbortController();
    this.#listening = listening;
    this.#loop = (async () => {
      while (!listening.signal.aborted) {
        const held = new AbortController();
        this.#held = held;
        this.#holds += 1;
        let answer: ToolAnswer;
        try {
          answer = await this.#call(
            'wait_for_events',
            { after: this.#cursor, timeout_s: WAIT_S },
            AbortSignal.any([listening.signal, held.signal]),
          );
        } catch (error) {
          // A cut held call is called again; a server that stopped answers no more.
          if (held.signal.aborted && !listening.signal.aborted) continue;
          if (listening.signal.aborted || this.shared.stopped) return;
          throw error;
        }
        // Its user is gone (the token names no user): there is nothing more to wait for.
        if ('refusal' in answer) return;
        const { events, cursor } = answer.result as { events: { method: string; params: Record<string, unknown> }[]; cursor: string };
        for (const { method, params } of events) this.notifications.push({ method, params });
        this.#cursor = cursor;
      }
    })();
  }

  async #quiet(): Promise<void> {
    this.#listening?.abort(new Error('quiet'));
    this.#listening = undefined;
    await this.#loop;
  }

  async status(): Promise<Status> {
    if (this.shared.stopped) return { state: 'ended' };
    const answer = await this.#call('get_status');
    return 'refusal' in answer ? this.#user.statusAfter(answer.refusal) : (answer.result as unknown as Status);
  }

  notified = (count: number) => settleCount(() => this.notifications, count, this.name);

  async end(): Promise<void> {
    throw new Error('a per-call client ends no session: it leaves each to the server, which drops it once idle');
  }

  async vanish(): Promise<void> {
    await this.#quiet();
  }

  /** It waits for events again, and calls get_status with its token. */
  async comeBack(): Promise<Status> {
    if (this.#listening) throw new Error(`${this.name} never went`);
    this.#listen();
    const answer = await this.#call('get_status');
    if ('refusal' in answer) throw new Error(`get_status refused: ${answer.refusal}`);
    return answer.result as unknown as Status;
  }

  gone = () => this.#user.gone();

  async openLink(): Promise<void> {
    throw new Error('a per-call client opens no stream');
  }

  async closeLink(): Promise<void> {
    throw new Error('a per-call client opens no stream; use dropStream to cut its held wait_for_events');
  }

  /** Its held wait_for_events is cut, as a dropped connection does; it waits again at once. */
  async dropStream(): Promise<void> {
    if (!this.#listening) throw new Error(`${this.name} holds no wait_for_events`);
    const holds = this.#holds;
    this.#held?.abort(new Error('cut by the replay'));
    await eventually(() => {
      if (this.#holds === holds) throw new Error(`${this.name} has not waited again`);
    });
  }

  async release(): Promise<void> {
    await this.#quiet().catch(() => {});
  }
}
