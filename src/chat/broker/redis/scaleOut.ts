/**
 * What one server process needs to share the chat with others through Redis: its id,
 * the broker (one queue, rooms where their members are) and the directory other
 * processes forward requests through. `listen()` starts them when `--redis-url` is set.
 *
 * 2026-07-28 push needs no Redis here: a user's events are made by the process that
 * holds the user, and the router sends every listen naming that user's events there,
 * so the SDK's in-process bus reaches the listener. `RedisServerEventBus` (eventBus.ts)
 * carries push across processes for a listen naming users of several processes; it is
 * not wired in, because it would write to Redis on every event, and a pair on one
 * process must chat without touching Redis.
 */
import type { InspectionEvent, Observer } from 'xstate';
import type { QueueInput } from '../../../../machines/queue.js';
import { newProcessId } from '../../processDirectory.js';
import { redisBroker, type RedisChatBroker } from '../redisBroker.js';
import { redisProcessDirectory, type RedisProcessDirectory } from './addresses.js';

export interface ScaleOutOptions {
  url: string;
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
}

export async function startScaleOut({ url, matching, beatEveryMs, deadAfterMs, inspect, onError, clusterSecret }: ScaleOutOptions): Promise<ScaleOut> {
  const processId = newProcessId();
  const processDirectory = await redisProcessDirectory({ url, processId, onError, ...(clusterSecret && { clusterSecret }) });
  const broker = await redisBroker({
    url,
    processId,
    matching,
    beatEveryMs,
    deadAfterMs,
    // A lease lives a little longer than a process is given before it is declared dead.
    leaseTtlMs: Math.max(1_000, Math.round(deadAfterMs * 0.6)),
    inspect,
    onError,
    onProcessGone: (gone) => void processDirectory.forget(gone).catch(onError),
  });
  return { broker, processDirectory };
}
