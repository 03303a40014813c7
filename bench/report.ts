/**
 * The printed tables: mcp-chat beside the raw relay floor, their ratio, and the goal the
 * project steers by (measured here, never asserted — a miss is a finding, not a failure);
 * then mcp-chat by client kind — sessions with streams, and clients that keep none.
 */
import type { LoadFigures, ServerFigures } from './figures.js';
import { columns, show } from './table.js';
import type { ClientKind } from './workerProtocol.js';

export const KIND_LABELS: Record<ClientKind, string> = {
  session: 'session + GET stream',
  'fresh-session': 'fresh session per call',
  'no-session': 'no session',
  modern: 'modern (2026-07-28)',
};

interface Row {
  label: string;
  mcp: number | null;
  floor: number | null;
  digits?: number;
  /** The goal, as text, and whether mcp-chat meets it. */
  goal?: string;
  met?: boolean | null;
  /** Show mcp/floor (default true when both are numbers). */
  ratio?: boolean;
}

const KB_PER_KIB = 1.024;

/** Every correctness counter of every load phase of one server, added up. */
export function deliveryFaults(figures: ServerFigures, extra: LoadFigures[] = []) {
  return faultsOver([figures.saturate, ...(figures.rate ? [figures.rate] : []), ...extra]);
}

const FAULTS = ['lost', 'duplicated', 'outOfOrder', 'misrouted', 'refused', 'errors', 'unsent'] as const;

/** Every correctness counter of some load phases, added up. */
export function faultsOver(phases: LoadFigures[]): Record<(typeof FAULTS)[number], number> {
  return Object.fromEntries(FAULTS.map((key) => [key, phases.reduce((sum, phase) => sum + phase[key], 0)])) as Record<
    (typeof FAULTS)[number],
    number
  >;
}

const misdelivery = (who: string, f: Record<(typeof FAULTS)[number], number>) =>
  f.lost + f.duplicated + f.outOfOrder + f.misrouted === 0
    ? []
    : [
        `${who} delivery was not exactly-once and in order (lost ${f.lost}, duplicated ${f.duplicated}, out of order ${f.outOfOrder}, misrouted ${f.misrouted})`,
      ];

/** Delivery that was not exactly-once and in order over `phases`; with `saturate`, also a phase that got no message through (delivery unchecked). */
export function deliveryFailuresOf(who: string, phases: LoadFigures[], saturate?: LoadFigures): string[] {
  const unchecked =
    saturate?.acked === 0 ? [`${who} accepted no message (${saturate.firstError ?? 'no error given'}): delivery went unchecked`] : [];
  return [...misdelivery(who, faultsOver(phases)), ...unchecked];
}

export function rows(mcp: ServerFigures, floor: ServerFigures, rate: number, mcpWarmup: LoadFigures[], floorWarmup: LoadFigures[]): Row[] {
  const throughputRatio = mcp.saturate.throughput / floor.saturate.throughput;
  const p99Ratio = mcp.rate && floor.rate ? mcp.rate.latencyMs.p99 / floor.rate.latencyMs.p99 : NaN;
  const mcpFaults = deliveryFaults(mcp, mcpWarmup);
  const floorFaults = deliveryFaults(floor, floorWarmup);
  const rssKB = (f: ServerFigures) => f.memory.rssPerSessionKiB * KB_PER_KIB;
  const heapKB = (f: ServerFigures) => (f.memory.heapPerSessionKiB === null ? null : f.memory.heapPerSessionKiB * KB_PER_KIB);
  const at = `@ ${show(rate)} msgs/s`;
  return [
    {
      label: 'session opens/s (init + initialized + GET)',
      mcp: mcp.open.opensPerSecond,
      floor: floor.open.opensPerSecond,
      goal: '≥ 1,500/s',
      met: mcp.open.opensPerSecond >= 1500,
    },
    { label: '  open latency p50 (ms)', mcp: mcp.open.openLatencyMs.p50, floor: floor.open.openLatencyMs.p50, digits: 2 },
    { label: '  open latency p99 (ms)', mcp: mcp.open.openLatencyMs.p99, floor: floor.open.openLatencyMs.p99, digits: 2 },
    { label: '  server CPU per open (µs)', mcp: mcp.open.serverCpuUsPerOpen, floor: floor.open.serverCpuUsPerOpen },
    { label: 'pairing rate (pairs/s)', mcp: mcp.pair.pairsPerSecond, floor: floor.pair.pairsPerSecond },
    {
      label: `relay throughput, saturated (msgs/s, ${mcp.saturate.senders} senders)`,
      mcp: mcp.saturate.throughput,
      floor: floor.saturate.throughput,
      goal: '≥ 0.9 × floor',
      met: throughputRatio >= 0.9,
    },
    { label: '  server CPU, saturated (cores)', mcp: mcp.saturate.serverCores, floor: floor.saturate.serverCores, digits: 2 },
    { label: '  server CPU per message (µs)', mcp: mcp.saturate.serverCpuUsPerMessage, floor: floor.saturate.serverCpuUsPerMessage },
    {
      label: '  relay capacity per server core (msgs/s)',
      mcp: 1e6 / mcp.saturate.serverCpuUsPerMessage,
      floor: 1e6 / floor.saturate.serverCpuUsPerMessage,
      goal: '≥ 0.9 × floor',
      met: floor.saturate.serverCpuUsPerMessage / mcp.saturate.serverCpuUsPerMessage >= 0.9,
    },
    { label: '  latency p99, saturated (ms)', mcp: mcp.saturate.latencyMs.p99, floor: floor.saturate.latencyMs.p99, digits: 2 },
    { label: `relay latency p50 ${at} (ms)`, mcp: mcp.rate?.latencyMs.p50 ?? null, floor: floor.rate?.latencyMs.p50 ?? null, digits: 2 },
    { label: `relay latency p95 ${at} (ms)`, mcp: mcp.rate?.latencyMs.p95 ?? null, floor: floor.rate?.latencyMs.p95 ?? null, digits: 2 },
    {
      label: `relay latency p99 ${at} (ms)`,
      mcp: mcp.rate?.latencyMs.p99 ?? null,
      floor: floor.rate?.latencyMs.p99 ?? null,
      digits: 2,
      goal: '≤ 1.25 × floor',
      met: Number.isNaN(p99Ratio) ? null : p99Ratio <= 1.25,
    },
    {
      label: '  p99 from due time, open loop (ms)',
      mcp: mcp.rate?.latencyFromDueMs.p99 ?? null,
      floor: floor.rate?.latencyFromDueMs.p99 ?? null,
      digits: 2,
    },
    { label: `  delivered ${at} (msgs/s)`, mcp: mcp.rate?.throughput ?? null, floor: floor.rate?.throughput ?? null },
    { label: `  server CPU ${at} (cores)`, mcp: mcp.rate?.serverCores ?? null, floor: floor.rate?.serverCores ?? null, digits: 2 },
    {
      label: `RSS per idle session (KB, ${show(mcp.memory.idleSessions)} sessions)`,
      mcp: rssKB(mcp),
      floor: rssKB(floor),
      digits: 1,
      goal: '≤ 16 KB',
      met: rssKB(mcp) <= 16,
    },
    { label: 'heap per idle session (KB)', mcp: heapKB(mcp), floor: heapKB(floor), digits: 1 },
    { label: '  server CPU while they sit idle (cores)', mcp: mcp.memory.idleServerCores, floor: floor.memory.idleServerCores, digits: 3 },
    {
      label: 'max concurrent sessions (live GET streams)',
      mcp: mcp.maxConcurrentSessions,
      floor: floor.maxConcurrentSessions,
      goal: '≥ 10,000',
      met: mcp.maxConcurrentSessions >= 10_000,
    },
    { label: 'messages lost', mcp: mcpFaults.lost, floor: floorFaults.lost, ratio: false, goal: '0', met: mcpFaults.lost === 0 },
    {
      label: 'messages duplicated / out of order / misrouted',
      mcp: mcpFaults.duplicated + mcpFaults.outOfOrder + mcpFaults.misrouted,
      floor: floorFaults.duplicated + floorFaults.outOfOrder + floorFaults.misrouted,
      ratio: false,
      goal: '0',
      met: mcpFaults.duplicated + mcpFaults.outOfOrder + mcpFaults.misrouted === 0,
    },
    {
      label: 'send_message refused / failed',
      mcp: mcpFaults.refused + mcpFaults.errors,
      floor: floorFaults.refused + floorFaults.errors,
      ratio: false,
    },
    {
      label: 'load generator CPU, saturated (cores)',
      mcp: mcp.saturate.generatorCores,
      floor: floor.saturate.generatorCores,
      digits: 2,
      ratio: false,
    },
    {
      label: 'other CPU on the machine, saturated (cores)',
      mcp: mcp.saturate.otherCores,
      floor: floor.saturate.otherCores,
      digits: 2,
      ratio: false,
    },
    {
      label: 'load generator loop delay p99, saturated (ms)',
      mcp: mcp.saturate.generatorLoopDelayP99Ms,
      floor: floor.saturate.generatorLoopDelayP99Ms,
      digits: 1,
      ratio: false,
    },
  ];
}

export function formatTable(table: Row[]): string {
  const header = ['', 'mcp-chat', 'floor', 'mcp/floor', 'goal', ''];
  const body = table.map((row) => {
    const ratio =
      row.ratio !== false && row.mcp !== null && row.floor !== null && row.floor !== 0 ? `${(row.mcp / row.floor).toFixed(2)}×` : '';
    const verdict = row.met === undefined || row.met === null ? '' : row.met ? 'met' : 'not met';
    return [row.label, show(row.mcp, row.digits), show(row.floor, row.digits), ratio, row.goal ?? '', verdict];
  });
  return columns(header, body, (i) => i === 0 || i >= 4);
}

/** One client kind's figures against mcp-chat, as the second table shows them. */
export interface KindRow {
  kind: string;
  pairs: number;
  delivered: number;
  serverCores: number;
  serverCpuUsPerMessage: number;
  toolCallsPerSecond: number;
  httpRequestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Over the warm-up and the measured phase: messages the server accepted, and read by the partner. */
  acked: number;
  received: number;
  lost: number;
  /** Duplicated, out of order or misrouted. */
  misdelivered: number;
}

/** Each client kind, saturated: what a delivered message costs the server and how many calls it answered. */
export function kindRow(kind: string, pairs: number, saturate: LoadFigures, warmup: LoadFigures): KindRow {
  const faults = faultsOver([warmup, saturate]);
  return {
    kind,
    pairs,
    delivered: saturate.throughput,
    serverCores: saturate.serverCores,
    serverCpuUsPerMessage: saturate.serverCpuUsPerMessage,
    toolCallsPerSecond: saturate.toolCallsPerSecond,
    httpRequestsPerSecond: saturate.httpRequestsPerSecond,
    latencyP50Ms: saturate.latencyMs.p50,
    latencyP99Ms: saturate.latencyMs.p99,
    acked: warmup.acked + saturate.acked,
    received: warmup.received + saturate.received,
    lost: faults.lost,
    misdelivered: faults.duplicated + faults.outOfOrder + faults.misrouted,
  };
}

export function formatKindTable(kinds: KindRow[]): string {
  const header = [
    'mcp-chat, saturated, by client kind',
    'pairs',
    'msgs/s',
    'cores',
    'CPU/msg µs',
    'tool calls/s',
    'HTTP req/s',
    'p50 ms',
    'p99 ms',
    'sent',
    'delivered',
    'lost',
    'dup/ooo/misr',
  ];
  const body = kinds.map((k) => [
    k.kind,
    ...[k.pairs, k.delivered, k.serverCores, k.serverCpuUsPerMessage, k.toolCallsPerSecond, k.httpRequestsPerSecond].map((v, i) =>
      show(v, i === 2 ? 2 : 0),
    ),
    show(k.latencyP50Ms, 2),
    show(k.latencyP99Ms, 2),
    ...[k.acked, k.received, k.lost, k.misdelivered].map((v) => show(v)),
  ]);
  return columns(header, body);
}
