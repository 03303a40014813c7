/**
 * What one server process needs to share the chat with others through Redis: its id,
 * the broker (one queue, rooms where their members are) and the directory other
 * processes forward requests through. `createChatServer()` starts them when `--redis-url` is set.
 *
 * 2026-07-28 push needs no Redis here: a user's events are made by the process that
 * holds the user, and the router sends every listen naming that user's events there,
 * so the SDK's in-process bus reaches the listener (a listen names users of one process
 * only: src/http/listenGate.ts refuses any other URI).
 *
 * Start-up fails at once, naming the flag to fix, when the CA file cannot be read or
 * Redis refuses the credentials or the TLS handshake; the URL is printed masked.
 */
import { readFileSync } from 'node:fs';
import type { InspectionEvent, Observer } from 'xstate';
import type { QueueInput } from '../../../../machines/queue.js';
import { newProcessId } from '../../processDirectory.js';
import { type RedisChatBroker, redisBroker } from '../redisBroker.js';
import { type RedisProcessDirectory, redisProcessDirectory } from './addresses.js';
import { isTlsUrl, maskedRedisUrl, RedisRefusedError, type RedisTarget, RedisUnavailableError } from './connection.js';

export interface ScaleOutOptions {
  /** `--redis-url`. */
  url: string;
  /** `--redis-tls-ca`: the path of a PEM file, read once here. */
  tlsCa?: string;
  matching: QueueInput;
  beatEveryMs: number;
  deadAfterMs: number;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  onError?: (error: unknown) => void;
  /** What processes sign forwarded requests with (`--cluster-secret`); else the one shared in Redis. */
  clusterSecret?: string;
}

export interface ScaleOut {
  broker: RedisChatBroker;
  processDirectory: RedisProcessDirectory;
  /** The URL and the CA's PEM text as read at start: for any other connection this process makes. */
  redis: RedisTarget;
}

/** Connects to Redis and starts this process's broker and directory; rejects with an error naming the flag to fix. */
export async function startScaleOut(options: ScaleOutOptions): Promise<ScaleOut> {
  const tlsCa = options.tlsCa === undefined ? undefined : readTlsCa(options.tlsCa, options.url);
  try {
    return await connect(options, tlsCa);
  } catch (error) {
    throw startError(error, options.url);
  }
}

/** `tlsCa`: the CA's PEM text, read from the file `options.tlsCa` names. */
async function connect(options: ScaleOutOptions, tlsCa: string | undefined): Promise<ScaleOut> {
  const { url, matching, beatEveryMs, deadAfterMs, inspect, onError, clusterSecret } = options;
  const processId = newProcessId();
  const processDirectory = await redisProcessDirectory({ url, tlsCa, processId, onError, ...(clusterSecret && { clusterSecret }) });
  const broker = await redisBroker({
    url,
    tlsCa,
    processId,
    matching,
    beatEveryMs,
    deadAfterMs,
    // A lease lives a little longer than a process is given before it is declared dead.
    leaseTtlMs: Math.max(1_000, Math.round(deadAfterMs * 0.6)),
    inspect,
    onError,
    onProcessGone: (gone) => void processDirectory.forget(gone).catch(onError),
  }).catch(async (error: unknown) => {
    await processDirectory.close();
    throw error;
  });
  return { broker, processDirectory, redis: { url, tlsCa } };
}

/** The CA's PEM text; a file that cannot be read, holds no certificate or goes with a plain `redis://` stops start-up. */
function readTlsCa(path: string, url: string): string {
  if (!isTlsUrl(url)) throw new Error(`--redis-tls-ca is for a TLS connection, but --redis-url (${maskedRedisUrl(url)}) is not rediss://`);
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`--redis-tls-ca (MCP_CHAT_REDIS_TLS_CA): cannot read ${path}: ${(error as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new Error(`--redis-tls-ca (MCP_CHAT_REDIS_TLS_CA): ${path} holds no PEM certificate`);
  return pem;
}

/** A start-up failure told in the flags' terms (the URL masked); other errors unchanged. */
function startError(error: unknown, url: string): unknown {
  const at = `--redis-url (${maskedRedisUrl(url)})`;
  if (error instanceof RedisRefusedError && error.reason === 'authentication')
    return new Error(`Redis authentication failed: it refused the user and password in ${at}: ${error.message}`, { cause: error });
  if (error instanceof RedisRefusedError)
    return new Error(
      `the TLS connection to Redis at ${at} failed: ${error.message}. A certificate from a private CA needs that CA in --redis-tls-ca; a plain port needs redis://.`,
      { cause: error },
    );
  if (error instanceof RedisUnavailableError) return new Error(`cannot reach Redis at ${at}: ${error.message}`, { cause: error });
  return error;
}
