/**
 * The users alive now (src/chat/chatUser.ts), each named by a server-minted, unguessable
 * `user_token`; a user leaves the directory when its actor ends.
 *
 * Generic in what a user's log keeps (`E`): the chat layer knows no wire format; the
 * composition root gives it the mapping from a user's news to notifications.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { SessionEndReason } from '../../machines/user.js';
import { type ChatUser, type ChatUserOptions, startChatUser } from './chatUser.js';
import { inProcess } from './processDirectory.js';

export interface UserDirectoryOptions<E> extends Omit<ChatUserOptions<E>, 'userId' | 'token' | 'eventsKey'> {
  /** This server process's id: every token starts with it (`<processId>.<secret>`), so any process can tell whose user a token names. */
  processId?: string;
}

/** 192 bits from the operating system's CSPRNG, URL-safe, after the id of the process that made it. */
const newToken = (processId: string | undefined) => {
  const secret = randomBytes(24).toString('base64url');
  return processId === undefined ? secret : inProcess(processId, secret);
};

/** The read-only key of a token's events: `<processId>.` (so any process can tell whose it is) and 192 bits of its SHA-256. */
export function eventsKeyOf(token: string): string {
  const dot = token.indexOf('.');
  const digest = createHash('sha256').update(`mcp-chat events\0${token}`).digest('base64url').slice(0, 32);
  return dot < 0 ? digest : `${token.slice(0, dot + 1)}${digest}`;
}

export class UserDirectory<E> {
  readonly #byToken = new Map<string, ChatUser<E>>();
  readonly #byEventsKey = new Map<string, ChatUser<E>>();

  constructor(private readonly options: UserDirectoryOptions<E>) {}

  /** A new user, idle, with a fresh token. */
  create(): ChatUser<E> {
    const { processId, ...options } = this.options;
    const token = newToken(processId);
    const user = startChatUser({
      ...options,
      userId: processId ? inProcess(processId, randomUUID()) : randomUUID(),
      token,
      eventsKey: eventsKeyOf(token),
    });
    this.#byToken.set(token, user);
    this.#byEventsKey.set(user.eventsKey, user);
    const forget = () => {
      this.#byToken.delete(token);
      this.#byEventsKey.delete(user.eventsKey);
    };
    user.actor.subscribe({ complete: forget, error: forget });
    return user;
  }

  /** The live user this token names, if any. */
  byToken(token: string): ChatUser<E> | undefined {
    return this.#byToken.get(token);
  }

  /** The live user whose events this read-only key names, if any. */
  byEventsKey(key: string): ChatUser<E> | undefined {
    return this.#byEventsKey.get(key);
  }

  get size(): number {
    return this.#byToken.size;
  }

  values(): IterableIterator<ChatUser<E>> {
    return this.#byToken.values();
  }

  /**
   * Ends every user (on shutdown): each partner is told `reason`, held reads answer.
   * Resolves once what the users said to the broker as they went (leaving their rooms
   * and the line) has gone through, or failed to.
   */
  endAll(reason: SessionEndReason): Promise<void> {
    const said: Promise<void>[] = [];
    for (const user of [...this.#byToken.values()]) {
      if (user.actor.getSnapshot().status !== 'active') continue;
      user.actor.send({ type: 'session.closed', reason });
      user.actor.stop();
      said.push(user.settled().catch(() => {}));
    }
    return Promise.all(said).then(() => {});
  }
}
