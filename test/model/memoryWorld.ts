/**
 * The world in memory: the same actor system the server runs (the in-memory broker
 * with its queue and rooms, a user actor per person wired by `startChatUser`), with
 * no HTTP. A person's tools do what the tool handlers do — ask the chart with `can`,
 * send the event, answer from the snapshot — and the session's end is what
 * the sessions do, and every request is a link while it runs, as the server counts
 * them. Time is real and short: the presence timers are `after` delays of a few
 * milliseconds.
 */
import { performance } from 'node:perf_hooks';
import type { AnyActorRef } from 'xstate';
import type { UserEvent } from '../../machines/user.js';
import { memoryBroker } from '../../src/chat/broker/memoryBroker.js';
import { startChatUser, statusOf, type ChatUser } from '../../src/chat/chatUser.js';
import { toNotification } from '../../src/mcp/notifications.js';
import type { SessionEndReason } from '../../machines/user.js';
import { ActorDirectory } from './actorDirectory.js';
import { eventually, type Notification, type Person, type PersonOptions, type QueueAnswer, type SentAnswer, type Status, type World } from './world.js';

export interface MemoryWorldOptions {
  /** The idle timeout of resumable sessions, and the grace period of legacy ones. */
  idleMs: number;
}

export function memoryWorld({ idleMs }: MemoryWorldOptions): World {
  const actors = new ActorDirectory();
  const broker = memoryBroker({ inspect: actors.see });
  const people: MemoryPerson[] = [];
  let counter = 0;

  return {
    kind: 'memory',
    async join(name: string, { client }: PersonOptions = { client: 'sdk' }) {
      const person = new MemoryPerson(name, `${name}-${++counter}`, (userId, notify) =>
        startChatUser({
          userId,
          presence: { resumable: client !== 'legacy', graceMs: idleMs, idleMs },
          rate: { perSecond: 5, burst: 20 },
          broker,
          notify: (news) => notify(toNotification(news)),
          inspect: actors.see,
        }),
      );
      if (client !== 'bare') await person.openLink();
      people.push(person);
      return person;
    },
    queue: () => actors.get('queue'),
    room: (roomId) => actors.get(`room:${roomId}`),
    async health() {
      const { waiting, rooms } = broker.stats();
      return { queue: waiting, rooms, sessions: people.filter((p) => p.active).length };
    },
    async shutdown() {
      broker.shutdown();
      for (const person of people) person.endSession('shutdown');
      broker.close();
    },
    eventually,
    async close() {
      for (const person of people) person.endSession('disconnected');
      broker.close();
    },
  };
}

class MemoryPerson implements Person {
  readonly notifications: Notification[] = [];
  readonly #user: ChatUser;
  /** Open links, newest last: what closing each one does. */
  readonly #links: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly userId: string,
    start: (userId: string, notify: (notification: Notification) => void) => ChatUser,
  ) {
    this.#user = start(userId, (notification) => this.notifications.push(notification));
  }

  get active(): boolean {
    return this.#user.actor.getSnapshot().status === 'active';
  }

  actor(): AnyActorRef {
    return this.#user.actor;
  }

  /** As a tool handler: refuse what the chart does not take, else send and answer. */
  #attempt(event: UserEvent): void {
    if (!this.#user.actor.getSnapshot().can(event)) throw new Error(`${this.name}: the chart refuses ${event.type} in ${String(this.#user.actor.getSnapshot().value)}`);
    this.#user.actor.send(event);
  }

  #queueAnswer(): QueueAnswer {
    const status = statusOf(this.#user);
    return status.state === 'chatting'
      ? { status: 'matched', room_id: status.room_id! }
      : { status: 'waiting', ...(status.position !== undefined && { position: status.position }) };
  }

  /** A request: a link for as long as it takes, as the server counts one around every request. */
  #request<T>(serve: () => T): T {
    const close = this.#user.openLink();
    try {
      return serve();
    } finally {
      close();
    }
  }

  async enterQueue(): Promise<QueueAnswer> {
    return this.#request(() => {
      if (!this.#user.actor.getSnapshot().matches('waiting')) this.#attempt({ type: 'queue.enter' });
      return this.#queueAnswer();
    });
  }

  async next(): Promise<QueueAnswer> {
    return this.#request(() => {
      if (!this.#user.actor.getSnapshot().matches('waiting')) this.#attempt({ type: 'chat.next' });
      return this.#queueAnswer();
    });
  }

  async leave(roomId?: string): Promise<{ status: 'idle' }> {
    return this.#request(() => {
      this.#attempt({ type: 'chat.leave', ...(roomId !== undefined && { roomId }) });
      return { status: 'idle' as const };
    });
  }

  async send(roomId: string, text: string): Promise<SentAnswer> {
    return this.#request(() => {
      this.#attempt({ type: 'chat.send', roomId, text, at: performance.now() });
      const receipt = this.#user.actor.getSnapshot().context.lastReceipt;
      if (!receipt) throw new Error(`${this.name}: no receipt for the message`);
      return { status: 'sent' as const, message_id: receipt.messageId, seq: receipt.seq };
    });
  }

  async status(): Promise<Status> {
    return this.#request(() => (this.active ? statusOf(this.#user) : { state: 'ended' as const }));
  }


  async notified(count: number): Promise<void> {
    await eventually(() => {
      if (this.notifications.length < count) throw new Error(`${this.name} has ${this.notifications.length} notifications, not ${count}`);
    });
  }

  /** What StreamableSession.end does. */
  endSession(reason: SessionEndReason): void {
    if (!this.active) return;
    this.#user.actor.send({ type: 'session.closed', reason });
    this.#user.actor.stop();
  }

  async end(): Promise<void> {
    this.endSession('disconnected');
  }

  async vanish(): Promise<void> {
    while (this.#links.length > 0) await this.closeLink();
  }

  async gone(): Promise<void> {
    await eventually(() => {
      if (this.active) throw new Error(`${this.name}'s session is still active`);
    });
  }

  async openLink(): Promise<void> {
    this.#links.push(this.#user.openLink());
  }

  async closeLink(): Promise<void> {
    const close = this.#links.pop();
    if (!close) throw new Error(`${this.name} has no link to close`);
    close();
  }

  async dropStream(): Promise<void> {
    await this.closeLink();
    await this.openLink();
  }
}
