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
  const faults = new Map([mcp, floor].map((f) => [f, deliveryFaults(f, f === mcp ? mcpWarmup : floorWarmup)] as const));
  const misdelivered = (f: ServerFigures) => {
    const { duplicated, outOfOrder, misrouted } = faults.get(f)!;
    return duplicated + outOfOrder + misrouted;
  };
  /** A row of `pick` for both servers; `goal` as text and whether mcp-chat meets it, from mcp-chat's figure and the floor's. */
  const row = (
    label: string,
    pick: (f: ServerFigures) => number | null | undefined,
    digits?: number,
    extra: { goal?: string; met?: (m: number, f: number) => boolean | null; ratio?: boolean } = {},
  ): Row => {
    const [m, f] = [pick(mcp) ?? null, pick(floor) ?? null];
    return {
      label,
      mcp: m,
      floor: f,
      ...(digits !== undefined && { digits }),
      ...(extra.goal !== undefined && { goal: extra.goal, met: extra.met?.(m ?? NaN, f ?? NaN) ?? null }),
      ...(extra.ratio === false && { ratio: false }),
    };
  };
  const absolute = { ratio: false };
  const rssKB = (f: ServerFigures) => f.memory.rssPerSessionKiB * KB_PER_KIB;
  const at = `@ ${show(rate)} msgs/s`;
  const p99Ratio = mcp.rate && floor.rate ? mcp.rate.latencyMs.p99 / floor.rate.latencyMs.p99 : NaN;
  return [
    row('session opens/s (init + initialized + GET)', (f) => f.open.opensPerSecond, undefined, {
      goal: '≥ 1,500/s',
      met: (m) => m >= 1500,
    }),
    row('  open latency p50 (ms)', (f) => f.open.openLatencyMs.p50, 2),
    row('  open latency p99 (ms)', (f) => f.open.openLatencyMs.p99, 2),
    row('  server CPU per open (µs)', (f) => f.open.serverCpuUsPerOpen),
    row('pairing rate (pairs/s)', (f) => f.pair.pairsPerSecond),
    row(`relay throughput, saturated (msgs/s, ${mcp.saturate.senders} senders)`, (f) => f.saturate.throughput, undefined, {
      goal: '≥ 0.9 × floor',
      met: (m, f) => m / f >= 0.9,
    }),
    row('  server CPU, saturated (cores)', (f) => f.saturate.serverCores, 2),
    row('  server CPU per message (µs)', (f) => f.saturate.serverCpuUsPerMessage),
    row('  relay capacity per server core (msgs/s)', (f) => 1e6 / f.saturate.serverCpuUsPerMessage, undefined, {
      goal: '≥ 0.9 × floor',
      met: (m, f) => m / f >= 0.9,
    }),
    row('  latency p99, saturated (ms)', (f) => f.saturate.latencyMs.p99, 2),
    row(`relay latency p50 ${at} (ms)`, (f) => f.rate?.latencyMs.p50, 2),
    row(`relay latency p95 ${at} (ms)`, (f) => f.rate?.latencyMs.p95, 2),
    row(`relay latency p99 ${at} (ms)`, (f) => f.rate?.latencyMs.p99, 2, {
      goal: '≤ 1.25 × floor',
      met: () => (Number.isNaN(p99Ratio) ? null : p99Ratio <= 1.25),
    }),
    row('  p99 from due time, open loop (ms)', (f) => f.rate?.latencyFromDueMs.p99, 2),
    row(`  delivered ${at} (msgs/s)`, (f) => f.rate?.throughput),
    row(`  server CPU ${at} (cores)`, (f) => f.rate?.serverCores, 2),
    row(`RSS per idle session (KB, ${show(mcp.memory.idleSessions)} sessions)`, rssKB, 1, { goal: '≤ 16 KB', met: (m) => m <= 16 }),
    row('heap per idle session (KB)', (f) => (f.memory.heapPerSessionKiB === null ? null : f.memory.heapPerSessionKiB * KB_PER_KIB), 1),
    row('  server CPU while they sit idle (cores)', (f) => f.memory.idleServerCores, 3),
    row('max concurrent sessions (live GET streams)', (f) => f.maxConcurrentSessions, undefined, {
      goal: '≥ 10,000',
      met: (m) => m >= 10_000,
    }),
    row('messages lost', (f) => faults.get(f)!.lost, undefined, { ...absolute, goal: '0', met: (m) => m === 0 }),
    row('messages duplicated / out of order / misrouted', misdelivered, undefined, { ...absolute, goal: '0', met: (m) => m === 0 }),
    row('send_message refused / failed', (f) => faults.get(f)!.refused + faults.get(f)!.errors, undefined, absolute),
    row('load generator CPU, saturated (cores)', (f) => f.saturate.generatorCores, 2, absolute),
    row('other CPU on the machine, saturated (cores)', (f) => f.saturate.otherCores, 2, absolute),
    row('load generator loop delay p99, saturated (ms)', (f) => f.saturate.generatorLoopDelayP99Ms, 1, absolute),
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

/** One client kind's figures against mcp-chat, as the second table shows them; acked to misdelivered (duplicated, out of order or misrouted) over the warm-up and the measured phase. */
export type KindRow = ReturnType<typeof kindRow>;

/** Each client kind, saturated: what a delivered message costs the server and how many calls it answered. */
export function kindRow(kind: string, pairs: number, saturate: LoadFigures, warmup: LoadFigures) {
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
  const header =
    'mcp-chat, saturated, by client kind|pairs|msgs/s|cores|CPU/msg µs|tool calls/s|HTTP req/s|p50 ms|p99 ms|sent|delivered|lost|dup/ooo/misr'.split(
      '|',
    );
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
