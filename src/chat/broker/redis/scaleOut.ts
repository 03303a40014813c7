/**
 * What one server process needs to share the chat with others through Redis: its id,
 * the broker (one queue, rooms where their members are), the directory other processes
 * forward requests through, and the bus that carries 2026-07-28 push. `listen()` starts
 * them when `--redis-url` is set, and stops the bus after the server closed the rest.
 */
import type { InspectionEvent, Observer } from 'xstate';
import type { QueueInput } from '../../../../machines/queue.js';
import { newProcessId } from '../../processDirectory.js';
import { redisBroker, type RedisChatBroker } from '../redisBroker.js';
import { redisProcessDirectory, type RedisProcessDirectory } from './addresses.js';
import { connectRedis } from './connection.js';
import { RedisServerEventBus } from './eventBus.js';

export interface ScaleOutOptions {
  url: string;
  matching: QueueInput;
  beatEveryMs: number;
  deadAfterMs: number;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  onError?: (error: unknown) => void;
}

export interface ScaleOut {
  broker: RedisChatBroker;
  processDirectory: RedisProcessDirectory;
  bus: RedisServerEventBus;
  /** Stops the bus (the server closes the broker and the directory). */
  close(): Promise<void>;
}

export async function startScaleOut({ url, matching, beatEveryMs, deadAfterMs, inspect, onError }: ScaleOutOptions): Promise<ScaleOut> {
  const processId = newProcessId();
  const processDirectory = await redisProcessDirectory({ url, processId, onError });
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
  const client = connectRedis(url, { name: `mcp-chat:${processId}:bus`, onError });
  const bus = await RedisServerEventBus.create({ client, url, processId, onError });
  return {
    broker,
    processDirectory,
    bus,
    async close() {
      await bus.close();
      client.disconnect();
    },
  };
}
