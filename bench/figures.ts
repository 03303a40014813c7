/**
 * The figures one run measures for one server, as they go into bench/results.json,
 * and how worker reports add up to them.
 */
import { decodeFromCompressedBase64 } from 'hdr-histogram-js';
import type { TokenClientKind } from './leanSession.js';
import { latencyHistogram } from './relayLoad.js';
import type { Percentiles } from './timing.js';
import type { DeliveryCounts, LoadMode, LoadReport, ReleaseReport } from './workerProtocol.js';

export interface OpenFigures {
  sessions: number;
  failed: number;
  liveStreams: number;
  opensPerSecond: number;
  openLatencyMs: Percentiles;
  serverCpuUsPerOpen: number;
  firstError?: string;
}

/**
 * Idle sessions weighed: RSS before and after, per session; heap per session (null when
 * the server does not say); the sessions the server itself counts, to check the client's;
 * server CPU while they sat idle, in cores.
 */
export interface MemoryFigures {
  idleSessions: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  rssPerSessionKiB: number;
  heapPerSessionKiB: number | null;
  serverSessions: number | null;
  idleServerCores: number;
}

/** What users that keep no session cost the server while they wait, each holding a wait_for_events; entered per second (enter_queue, pairing, the first poll). */
export interface UserMemoryFigures {
  users: number;
  failed: number;
  firstError?: string;
  usersPerSecond: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  rssPerUserKiB: number;
  heapPerUserKiB: number | null;
}

export type PairFigures = { pairs: number; failed: number; pairsPerSecond: number; firstError?: string };

/**
 * One load phase, summed over the workers. `latencyFromDueMs`: from when each message was
 * due (open loop), so it includes waiting behind a slow previous send; `otherCores`: CPU
 * of everything else on the machine meanwhile; `liveStreams`: GET streams still open at
 * the end; `httpRequests` and `toolCalls`: what the server answered over the phase.
 */
export interface LoadFigures extends DeliveryCounts {
  mode: LoadMode;
  offeredRate: number | null;
  seconds: number;
  throughput: number;
  latencyMs: Percentiles;
  latencyFromDueMs: Percentiles;
  serverCores: number;
  serverCpuUsPerMessage: number;
  generatorCores: number;
  generatorLoopDelayP99Ms: number;
  otherCores: number;
  liveStreams: number;
  httpRequests: number;
  toolCalls: number;
  httpRequestsPerSecond: number;
  toolCallsPerSecond: number;
  firstError?: string;
}

/** Token clients stopped, across the workers, and how many of their wait_for_events calls failed. */
export type ReleaseFigures = Omit<ReleaseReport, 'type'>;

/** A kind of token client against a server: its pairs, warm-up, saturated phase, and how its polls fared. */
export interface KindRun {
  kind: TokenClientKind;
  pair: PairFigures;
  warmup: LoadFigures;
  saturate: LoadFigures;
  release: ReleaseFigures;
}

export interface ServerFigures {
  name: string;
  open: OpenFigures;
  memory: MemoryFigures;
  maxConcurrentSessions: number;
  pair: PairFigures;
  saturate: LoadFigures;
  rate?: LoadFigures;
}

/** Merges compressed µs histograms into ms percentiles. */
export function percentilesMs(encoded: string[]): Percentiles {
  const merged = latencyHistogram();
  for (const text of encoded) merged.add(decodeFromCompressedBase64(text));
  const ms = (us: number) => Math.round(us) / 1000;
  if (merged.totalCount === 0) return { p50: NaN, p95: NaN, p99: NaN, max: NaN };
  return {
    p50: ms(merged.getValueAtPercentile(50)),
    p95: ms(merged.getValueAtPercentile(95)),
    p99: ms(merged.getValueAtPercentile(99)),
    max: ms(merged.maxValue),
  };
}

const COUNTED = [
  'senders',
  'sent',
  'acked',
  'refused',
  'errors',
  'unsent',
  'received',
  'duplicated',
  'outOfOrder',
  'lost',
  'misrouted',
] as const;

const sum = (reports: LoadReport[], key: (typeof COUNTED)[number] | 'httpRequests' | 'toolCalls' | 'liveStreams') =>
  reports.reduce((total, report) => total + report[key], 0);

/** Adds up the workers' reports of one load phase; CPU comes from /proc meanwhile. */
export function loadFigures(
  mode: LoadMode,
  offeredRate: number | null,
  reports: LoadReport[],
  cpu: { serverSeconds: number; serverCores: number; generatorCores: number; otherCores: number },
): LoadFigures {
  const busy = reports.filter((r) => r.senders > 0);
  const startedAt = Math.min(...busy.map((r) => r.startedAt));
  const endedAt = Math.max(...busy.map((r) => Math.max(r.lastReceivedAt, r.sendEndedAt)));
  const seconds = Math.max(0.001, (endedAt - startedAt) / 1000);
  const counts = Object.fromEntries(COUNTED.map((key) => [key, sum(reports, key)])) as Record<(typeof COUNTED)[number], number>;
  const httpRequests = sum(reports, 'httpRequests');
  const toolCalls = sum(reports, 'toolCalls');
  const firstError = reports.find((r) => r.firstError !== undefined)?.firstError;
  return {
    mode,
    offeredRate,
    ...counts,
    drained: reports.every((r) => r.drained),
    seconds,
    throughput: counts.received / seconds,
    latencyMs: percentilesMs(reports.map((r) => r.latency)),
    latencyFromDueMs: percentilesMs(reports.map((r) => r.latencyFromDue)),
    serverCores: cpu.serverCores,
    serverCpuUsPerMessage: counts.received > 0 ? (cpu.serverSeconds * 1e6) / counts.received : NaN,
    generatorCores: cpu.generatorCores,
    otherCores: cpu.otherCores,
    liveStreams: sum(reports, 'liveStreams'),
    httpRequests,
    toolCalls,
    httpRequestsPerSecond: httpRequests / seconds,
    toolCallsPerSecond: toolCalls / seconds,
    generatorLoopDelayP99Ms: Math.max(...busy.map((r) => r.loopDelayP99Ms)),
    ...(firstError !== undefined && { firstError }),
  };
}

/** Splits `total` into `parts` near-equal whole shares. */
export function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}
