/**
 * The world in memory: the same actor system the server runs (the in-memory broker
 * with its queue and rooms, a user actor per person wired by `startChatUser`), with
 * no HTTP. A person's tools do what the tool handlers do — make the user on the first
 * enter_queue or next, translate the arguments as they do (src/mcp/toolEvents.ts), ask
 * the chart with `can`, send the event, wait until the broker calls it made have settled
 * (a message: its receipt), answer from the snapshot (and the broker) — and its links
 * are what the server counts: every call is one while it
 * runs, and a client that keeps a stream (or, per call, a held wait_for_events) holds
 * one between calls. Ending a session is what the server does when the last session
 * of a user goes: the user is detached — unless a call has named it by its token (a
 * person coming back), which then lives by its token. Time is real and short: the presence timers
 * are `after` delays of a few dozen milliseconds, and the matching timers (the queue's
 * interest wait and rematch time, the users' rematch time) what the chart asks for.
 */
import { performance } from 'node:perf_hooks';
import type { AnyActorRef } from 'xstate';
import type { SessionEndReason, UserEvent } from '../../machines/user.js';
import { memoryBroker } from '../../src/chat/broker/memoryBroker.js';
import { type ChatUser, startChatUser } from '../../src/chat/chatUser.js';
import { type ChatNotification, toNotification } from '../../src/mcp/notifications.js';
import { enterQueueEvent, leaveEvent, nextEvent, sendEvent } from '../../src/mcp/toolEvents.js';
import { ActorDirectory } from './actorDirectory.js';
import {
  eventually,
  type LeavingAnswer,
  type Notification,
  type Person,
  type PersonOptions,
  type PreferenceArgs,
  type QueueAnswer,
  type SentAnswer,
  type Status,
  type Timers,
  type VerdictArgs,
  type World,
} from './world.js';

/** A person's user: its log keeps the notifications its client gets. */
type MemoryUser = ChatUser<ChatNotification>;

export function memoryWorld(timers: Timers): World {
  const actors = new ActorDirectory();
  const broker = memoryBroker({
    inspect: actors.see,
    matching: { interestWaitMs: timers.interestWaitMs, rematchAfterMs: timers.rematchAfterMs },
  });
  const people: MemoryPerson[] = [];
  let counter = 0;
  let reports = 0;

  return {
    kind: 'memory',
    timers,
    async join(name: string, { client }: PersonOptions = { client: 'sdk' }) {
      const person = new MemoryPerson(name, client, (notify) => {
        const userId = `${name}-${++counter}`;
        return startChatUser({
          userId,
          token: userId,
          eventsKey: userId,
          presence: { idleMs: timers.idleMs, pairableMs: timers.pairableMs, graceMs: timers.graceMs, pageGraceMs: timers.pageGraceMs },
          rate: { perSecond: 5, burst: 20 },
          rematchAfterMs: timers.rematchAfterMs,
          onReport: () => (reports += 1),
          broker,
          log: { events: 1_000, bytes: 1_000_000 },
          toEntry: toNotification,
          sizeOf: () => 1,
          onNews: (_user, notification) => notify(notification),
          inspect: actors.see,
        });
      });
      people.push(person);
      return person;
    },
    queue: () => actors.get('queue'),
    room: (roomId) => actors.room(roomId),
    async health() {
      const { waiting, rooms } = broker.stats();
      return { queue: waiting, rooms, users: people.filter((p) => p.active).length };
    },
    reports: async () => reports,
    async shutdown() {
      await broker.shutdown();
      for (const person of people) person.endUser('shutdown');
      await broker.close();
      for (const person of people) person.stopped = true;
    },
    eventually,
    async close() {
      for (const person of people) person.endUser('disconnected');
      await broker.close();
    },
  };
}

class MemoryPerson implements Person {
  readonly notifications: Notification[] = [];
  #user: MemoryUser | undefined;
  /** The link a client holds between calls (its stream, or a held wait_for_events), while it does. */
  #stream: (() => void) | undefined;
  /** The server stopped: nothing answers any more. */
  stopped = false;
  /** A call named the user by its token (it came back): the end of a session no longer detaches it. */
  #named = false;

  constructor(
    readonly name: string,
    readonly client: PersonOptions['client'],
    private readonly start: (notify: (notification: Notification) => void) => MemoryUser,
  ) {}

  get userId(): string {
    return this.#chat().userId;
  }

  get active(): boolean {
    return this.#user?.actor.getSnapshot().status === 'active';
  }

  actor(): AnyActorRef {
    return this.#chat().actor;
  }

  #chat(): MemoryUser {
    if (!this.#user) throw new Error(`${this.name} has no user yet`);
    return this.#user;
  }

  /** As a tool handler: refuse what the chart does not take, else send, and answer once the broker has it. */
  async #attempt(event: UserEvent): Promise<void> {
    const user = this.#chat();
    if (!user.actor.getSnapshot().can(event))
      throw new Error(`${this.name}: the chart refuses ${event.type} in ${String(user.actor.getSnapshot().value)}`);
    user.actor.send(event);
    await user.settled();
  }

  /** What enter_queue and next answer: the status, with `matched` or `waiting` for the state. */
  async #queueAnswer(): Promise<QueueAnswer> {
    const { state, ...status } = await this.#chat().status();
    return { status: state === 'chatting' ? 'matched' : 'waiting', ...status };
  }

  /**
   * A call: a link for as long as it runs, as the server counts one around every call.
   * enter_queue and next make the user when there is none; its client's stream (or
   * held wait) then counts for it, as a session bound to the user does.
   */
  async #request<T>(serve: () => Promise<T>, { creates = false } = {}): Promise<T> {
    if (!this.#user) {
      if (!creates) throw new Error(`${this.name}: call enter_queue first`);
      this.#user = this.start((notification) => this.notifications.push(notification));
      if (this.client !== 'bare') this.#stream = this.#user.openLink();
    }
    if (!this.active) throw new Error(`${this.name}'s user has ended`);
    const close = this.#user.openLink();
    try {
      return await serve();
    } finally {
      close();
    }
  }

  async enterQueue(args: PreferenceArgs = {}): Promise<QueueAnswer> {
    return this.#request(
      async () => {
        await this.#attempt(enterQueueEvent(args));
        return this.#queueAnswer();
      },
      { creates: true },
    );
  }

  async next(args: PreferenceArgs & VerdictArgs = {}): Promise<QueueAnswer> {
    return this.#request(
      async () => {
        await this.#attempt(nextEvent(args));
        return this.#queueAnswer();
      },
      { creates: true },
    );
  }

  async leave(roomId?: string, verdict: VerdictArgs = {}): Promise<{ status: 'idle' }> {
    return this.#request(async () => {
      await this.#attempt(leaveEvent({ ...(roomId !== undefined && { room_id: roomId }), ...verdict }));
      return { status: 'idle' as const };
    });
  }

  /** As the leave_chat handler with grace: nothing to leave while idle, else the chart's page grace. */
  async leaveWithGrace(): Promise<LeavingAnswer> {
    return this.#request(async () => {
      const { value, context } = this.#chat().actor.getSnapshot();
      if (value === 'idle') return { status: 'idle' as const };
      await this.#attempt(leaveEvent({ grace: true }));
      return { status: 'leaving' as const, within_s: Math.ceil(context.presence.pageGraceMs / 1000) };
    });
  }

  async send(roomId: string, text: string): Promise<SentAnswer> {
    return this.#request(async () => {
      const user = this.#chat();
      const event = sendEvent({ room_id: roomId, message: text }, performance.now());
      if (!user.actor.getSnapshot().can(event))
        throw new Error(`${this.name}: the chart refuses chat.send in ${String(user.actor.getSnapshot().value)}`);
      const sent = await user.sendMessage(event);
      if (sent.status !== 'sent') throw new Error(`${this.name}: no receipt for the message (the room closed)`);
      return { status: 'sent' as const, message_id: sent.receipt.messageId, seq: sent.receipt.seq };
    });
  }

  async status(): Promise<Status> {
    if (this.stopped) return { state: 'ended' };
    if (!this.#user) return { state: 'none' };
    if (!this.active) return { state: 'ended' };
    return this.#request(() => this.#chat().status());
  }

  async notified(count: number): Promise<void> {
    await eventually(() => {
      if (this.notifications.length < count) throw new Error(`${this.name} has ${this.notifications.length} notifications, not ${count}`);
    });
  }

  /** What the server does to a user that ends (shutdown) or that it drops (close). */
  endUser(reason: SessionEndReason): void {
    if (!this.active) return;
    this.#user!.actor.send({ type: 'session.closed', reason });
    this.#user!.actor.stop();
  }

  /** What DELETE of the only session bound to the user does: its links close, then it is detached. */
  async end(): Promise<void> {
    if (this.client === 'per-call') throw new Error('a per-call client ends no session');
    await this.vanish();
    if (!this.#named) this.#chat().detached();
  }

  async vanish(): Promise<void> {
    this.#stream?.();
    this.#stream = undefined;
  }

  async comeBack(): Promise<Status> {
    if (this.#stream) throw new Error(`${this.name} never went`);
    this.#named = true;
    this.#stream = this.#chat().openLink();
    return this.status();
  }

  async gone(): Promise<void> {
    await eventually(() => {
      if (this.active) throw new Error(`${this.name}'s user is still active`);
    });
  }

  async openLink(): Promise<void> {
    if (this.#stream) throw new Error(`${this.name} has a link open already`);
    this.#stream = this.#chat().openLink();
  }

  /** A legacy stream that drops takes its session with it: the user is detached. */
  async closeLink(): Promise<void> {
    if (!this.#stream) throw new Error(`${this.name} has no link to close`);
    if (this.client === 'legacy') return this.end();
    await this.vanish();
  }

  async dropStream(): Promise<void> {
    if (!this.#stream) throw new Error(`${this.name} has no stream to drop`);
    this.#stream();
    this.#stream = this.#chat().openLink();
  }
}
