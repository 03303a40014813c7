/**
 * Connections to Redis for the broker, all made one way so that nothing waits on Redis
 * for more than a few seconds, and the Lua scripts the other files run.
 *
 * The settings, and why:
 * - `commandTimeout` (2 s by default): every command settles within it — Redis down,
 *   frozen (SIGSTOP keeps its sockets open, so only a timer notices) or unreachable.
 *   A connection for blocking reads gets its block time on top (`blockMs`).
 * - `retryStrategy`: reconnect for ever, backing off 50 ms, 100 ms, … capped at 1 s, so
 *   a restarted Redis is found again within about a second.
 * - `enableOfflineQueue: true`: a command issued while a cut connection is being made
 *   again (tens of milliseconds) waits for it instead of failing; `maxRetriesPerRequest:
 *   1` fails it when the reconnect after that fails too, and `commandTimeout` bounds the
 *   wait in any case. So a blip costs a round trip and a dead Redis an error in ≤ 2 s.
 * - `autoResendUnfulfilledCommands` stays on (ioredis resends what was in flight when a
 *   connection broke, and may do so after the caller's promise timed out): every write
 *   in this folder is idempotent by construction — appends carry a producer counter
 *   that a script checks, the lease and membership scripts compare before they set —
 *   so a resend is harmless and a cut costs no timeout.
 * - `protocol: 2`: ioredis 6 speaks RESP3 by default, and its "legacy" mapping of RESP3
 *   maps flattens XREAD's reply into a shape RESP2 never has; RESP2 keeps one shape.
 * - The URL goes to ioredis as given: it takes user, password and db from it, and TLS
 *   from `rediss://`; a private CA (`tlsCa`) is added to that TLS, never to `redis://`.
 */
import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';

export type { Redis } from 'ioredis';

/** The key prefix every file of this folder puts before its keys, unless told otherwise. */
export const DEFAULT_KEY_PREFIX = 'mcp-chat:';

/** Where Redis is, as every file of this folder is told. */
export interface RedisTarget {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS. */
  url: string;
  /** For a `rediss://` URL whose certificate a private CA signed: that CA, PEM. */
  tlsCa?: string;
}

export interface RedisConnectionOptions {
  /** Shown in `CLIENT LIST`, to tell the connections apart. */
  name?: string;
  /** Bound on every command, in ms (2,000 by default). */
  commandTimeoutMs?: number;
  /** For a connection that runs blocking reads: the longest `BLOCK`, added to the bound. */
  blockMs?: number;
  /** Connection errors (refused, reset); ioredis reports them while it reconnects. */
  onError?: (error: Error) => void;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;
const MAX_RECONNECT_DELAY_MS = 1_000;

/** The ioredis options this folder uses (exported for tests and for a reader's own connection). */
export function redisOptions(options: RedisConnectionOptions = {}): RedisOptions {
  const { commandTimeoutMs = DEFAULT_COMMAND_TIMEOUT_MS, blockMs = 0 } = options;
  return {
    protocol: 2,
    connectionName: options.name,
    commandTimeout: commandTimeoutMs + blockMs,
    connectTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    autoResendUnfulfilledCommands: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times - 1, 10), MAX_RECONNECT_DELAY_MS) + Math.floor(Math.random() * 50),
  };
}

/** A client for a URL (or a URL and its private CA) with the settings above; it connects at once. */
export function connectRedis(target: string | RedisTarget, options: RedisConnectionOptions = {}): Redis {
  const { url, tlsCa } = typeof target === 'string' ? { url: target } : target;
  const tls = tlsCa !== undefined && isTlsUrl(url) ? { tls: { ca: tlsCa } } : {};
  const client = new Redis(url, { ...redisOptions(options), ...tls });
  // Without a listener ioredis prints every reconnect failure as an unhandled error.
  client.on('error', (error: Error) => options.onError?.(error));
  return client;
}

/** Whether the URL asks for TLS (`rediss://`). */
export const isTlsUrl = (url: string): boolean => /^rediss:\/\//i.test(url);

/** The URL with its password masked (`redis://alice:***@host:port/2`), to print. */
export function maskedRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.href;
  } catch {
    return '(an unreadable URL)';
  }
}

/** Whether the client has a working connection now (its status is `ready`). */
export function isRedisUp(client: Redis): boolean {
  return client.status === 'ready';
}

/**
 * Calls `listener(up)` whenever the client's connection comes up or goes down (after a
 * cut, while Redis is down, and again when it is back); returns a function that stops.
 */
export function watchRedisUp(client: Redis, listener: (up: boolean) => void): () => void {
  let last = isRedisUp(client);
  const check = () => {
    const up = isRedisUp(client);
    if (up === last) return;
    last = up;
    listener(up);
  };
  const events = ['ready', 'close', 'end', 'reconnecting'] as const;
  for (const event of events) client.on(event, check);
  return () => {
    for (const event of events) client.off(event, check);
  };
}

/**
 * Resolves once the client is connected. Rejects at once with a `RedisRefusedError` when
 * Redis refuses the credentials or the TLS handshake fails (trying again cannot help),
 * else with a `RedisUnavailableError` after `timeoutMs`, naming the last connection error.
 */
export async function untilRedisReady(client: Redis, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<void> {
  if (isRedisUp(client)) return;
  await new Promise<void>((resolve, reject) => {
    let lastError: Error | undefined;
    const done = (error?: Error) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      if (error) reject(error);
      else resolve();
    };
    const onReady = () => done();
    const onError = (error: Error) => {
      const reason = refusalOf(error);
      if (reason) done(new RedisRefusedError(reason, error.message, { cause: error }));
      else lastError = error;
    };
    const timer = setTimeout(
      () =>
        done(
          new RedisUnavailableError(
            `Redis did not accept a connection within ${timeoutMs} ms${lastError ? ` (${lastError.message})` : ''}`,
          ),
        ),
      timeoutMs,
    );
    client.once('ready', onReady);
    client.on('error', onError);
  });
}

/** Redis did not answer in time, or the connection to it is down. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

/** Redis refused this client for good: its credentials (`authentication`), or the TLS handshake (`tls`). */
export class RedisRefusedError extends Error {
  override readonly name = 'RedisRefusedError';
  constructor(
    readonly reason: 'authentication' | 'tls',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Redis's replies to a wrong or missing password (Redis 6+ and older), and Node's TLS failures by code. */
const AUTH_REFUSED = /^(WRONGPASS|NOAUTH)|invalid password/;
const TLS_REFUSED = /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_|SELF_SIGNED_|UNABLE_TO_)/;

function refusalOf(error: Error): RedisRefusedError['reason'] | undefined {
  if (AUTH_REFUSED.test(error.message)) return 'authentication';
  const code = (error as NodeJS.ErrnoException).code;
  return code !== undefined && TLS_REFUSED.test(code) ? 'tls' : undefined;
}

/** What ioredis says when a command did not reach Redis or got no answer (not a Redis reply error). */
const UNAVAILABLE =
  /max retries per request|Command timed out|Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE/i;

/**
 * The error to report for a failed command: a `RedisUnavailableError` ("Redis is
 * unavailable: …", the ioredis error as its cause) when Redis could not be reached or
 * did not answer; any other error (a reply error such as a script's) unchanged.
 */
export function redisFailure(error: unknown): unknown {
  if (error instanceof RedisUnavailableError || !(error instanceof Error) || !UNAVAILABLE.test(error.message)) return error;
  return new RedisUnavailableError(`Redis is unavailable: ${error.message}`, { cause: error });
}

/**
 * A Lua script run with EVALSHA, loaded with EVAL when Redis does not know it (first use,
 * or a Redis restarted empty). Replies are left to the caller to check; a Redis that
 * cannot be reached rejects it with a `RedisUnavailableError`.
 */
export interface LuaScript {
  readonly lua: string;
  readonly numberOfKeys: number;
  run(client: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
}

export function luaScript(lua: string, numberOfKeys: number): LuaScript {
  const sha = createHash('sha1').update(lua).digest('hex');
  return {
    lua,
    numberOfKeys,
    async run(client, keys, args) {
      if (keys.length !== numberOfKeys) throw new RangeError(`this script takes ${numberOfKeys} keys, got ${keys.length}`);
      try {
        return await client.call('EVALSHA', sha, numberOfKeys, ...keys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw redisFailure(error);
        return await client.call('EVAL', lua, numberOfKeys, ...keys, ...args).catch((error: unknown) => {
          throw redisFailure(error);
        });
      }
    },
  };
}

/** The Lua prologue that reads Redis's clock into `now` (ms since the epoch, an integer). */
export const LUA_NOW = "local __t = redis.call('TIME'); local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)";
