/**
 * The process directory (src/chat/processDirectory.ts) shared in Redis: one hash,
 * `<prefix>processes:addresses`, maps each listening process's id to its base URL.
 * A process lists itself once it listens (`register`) and takes itself off when it
 * closes; a process that is not in the hash is gone, and what it named is unknown.
 *
 * A process that dies without closing stays listed until someone `forget`s it (the
 * membership's `onMemberGone` is the place); meanwhile a request forwarded to it finds
 * nothing listening, which the HTTP layer takes as gone too.
 *
 * Every command goes through `connectRedis`'s settings: it settles within the command
 * timeout, and a Redis that cannot be reached rejects it with a `RedisUnavailableError`.
 */
import { isProcessId, newProcessId, newSecret, type ProcessDirectory } from '../../processDirectory.js';
import {
  connectRedis,
  DEFAULT_KEY_PREFIX,
  type RedisConnectionOptions,
  type RedisTarget,
  redisFailure,
  untilRedisReady,
} from './connection.js';

export interface RedisProcessDirectoryOptions extends RedisTarget {
  /** This process's id; a new one when not given. */
  processId?: string;
  /** What processes sign forwarded requests with; when not given, the one in Redis (made by the first process). */
  clusterSecret?: string;
  keyPrefix?: string;
  /** Bound on every command, in ms (connection.ts's default when not given). */
  commandTimeoutMs?: number;
  /** Connection errors while ioredis reconnects, and a failed unlisting on close. */
  onError?: (error: unknown) => void;
}

export interface RedisProcessDirectory extends ProcessDirectory {
  /** Takes another process off the directory (it was declared dead). */
  forget(processId: string): Promise<void>;
}

/** The cluster secret made on first start, when processes are given none (`--cluster-secret`). */
export const secretKey = (keyPrefix = DEFAULT_KEY_PREFIX) => `${keyPrefix}processes:secret`;

/** The hash of listening processes' addresses. */
export const addressesKey = (keyPrefix = DEFAULT_KEY_PREFIX) => `${keyPrefix}processes:addresses`;

/**
 * Connects to Redis (rejects with a `RedisUnavailableError` when it cannot within the
 * command timeout) and answers the directory; `register(url)` lists this process.
 */
export async function redisProcessDirectory(options: RedisProcessDirectoryOptions): Promise<RedisProcessDirectory> {
  const { url, processId = newProcessId(), keyPrefix, commandTimeoutMs, onError, clusterSecret } = options;
  if (!isProcessId(processId)) throw new RangeError(`not a process id: ${JSON.stringify(processId)}`);
  const connection: RedisConnectionOptions = {
    name: `${processId}:addresses`,
    ...(commandTimeoutMs !== undefined && { commandTimeoutMs }),
    ...(onError && { onError }),
  };
  const client = connectRedis({ url, tlsCa: options.tlsCa }, connection);
  try {
    await untilRedisReady(client, commandTimeoutMs);
  } catch (error) {
    client.disconnect();
    throw error;
  }
  const key = addressesKey(keyPrefix);
  const command = <T>(run: Promise<T>): Promise<T> =>
    run.catch((error: unknown) => {
      throw redisFailure(error);
    });
  // The first process to start makes the secret; every later one reads the same.
  const secret =
    clusterSecret ??
    (await command(client.set(secretKey(keyPrefix), newSecret(), 'NX')).then(() => command(client.get(secretKey(keyPrefix))))) ??
    newSecret();
  let listedAt: string | undefined;
  let closed = false;
  return {
    self: processId,
    secret,
    async addressOf(id) {
      if (id === processId) return listedAt;
      return (await command(client.hget(key, id))) ?? undefined;
    },
    async register(address) {
      if (closed) throw new Error('the process directory is closed');
      await command(client.hset(key, processId, address));
      listedAt = address;
    },
    async forget(id) {
      if (id !== processId) await command(client.hdel(key, id));
    },
    async close() {
      if (closed) return;
      closed = true;
      // Closing goes on when Redis is down: the listing is then left for others to forget.
      if (listedAt !== undefined) await command(client.hdel(key, processId)).catch((error: unknown) => onError?.(error));
      listedAt = undefined;
      client.disconnect();
    },
  };
}
