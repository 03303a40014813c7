/**
 * bench/results.json: every figure of the run, the settings and machine it ran on, and
 * the notes a reader needs to trust (or discount) the figures.
 */
import { cpus } from 'node:os';
import type { CrossCheckResult } from './sdkCrossCheck.js';
import type { LoadFigures, ServerFigures } from './figures.js';
import type { BenchOptions } from './options.js';
import { ephemeralPortCount, openFileLimit } from './procStats.js';
import { deliveryFaults, rows } from './report.js';
import type { StopReport } from './serverProcess.js';

export interface ServerRun {
  figures: ServerFigures;
  warmup: LoadFigures;
  shutdown?: StopReport;
}

const show = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });

const METHOD_NOTES = [
  'RSS (and heap) per session = (after − before opening the idle sessions) / sessions, after a settle pause, without forcing GC (young-generation garbage adds up to ~16 MB of noise, divided by the session count); RSS includes the server side of each session’s socket.',
  'Latency is from send_message sent to message.received parsed by the partner’s lean client; both clocks are in the same worker process.',
  'Saturation: every paired session keeps one send_message in flight (closed loop), the same concurrency for both servers; the latency phase is open loop at one fixed rate for both.',
];

/** What this run's own figures say about how far to trust them. */
export function caveats(floor: ServerRun, mcp: ServerRun, rate: number): string[] {
  const notes: string[] = [];
  const sat = floor.figures.saturate;
  if (sat.serverCores < 0.9)
    notes.push(
      `The floor used only ${show(sat.serverCores, 2)} cores at saturation while the load generator used ${show(sat.generatorCores, 2)} (of ${cpus().length} cores): ` +
        'the machine, not the floor, set the floor’s throughput, so mcp-chat/floor throughput flatters mcp-chat. ' +
        '“Relay capacity per server core” (1 / server CPU per message) compares the servers without the generator.',
    );
  const phases = [floor, mcp].flatMap(({ figures: f }) => [f.saturate, ...(f.rate ? [f.rate] : [])]);
  const other = Math.max(...phases.map((p) => p.otherCores));
  if (other > 0.25) notes.push(`Other processes used up to ${show(other, 2)} cores during the load phases: the machine was shared and the figures are noisy.`);
  for (const { figures: f } of [floor, mcp])
    if (f.rate && f.rate.throughput < 0.95 * rate)
      notes.push(`${f.name} delivered ${show(f.rate.throughput)} msgs/s of the ${show(rate)} offered: it could not keep up, so its latency at that rate grows with the phase length.`);
  const weighed = Math.min(floor.figures.memory.idleSessions, mcp.figures.memory.idleSessions);
  if (weighed < 2000)
    notes.push(`Memory per session was weighed over only ${show(weighed)} sessions: GC and JIT noise of a few MB dominates it; weigh thousands (--sessions 5000) for a figure to compare with the goal.`);
  if (mcp.figures.memory.heapPerSessionKiB === null)
    notes.push('mcp-chat reports no heap figure (not in /healthz, no nodejs_heap_size_used_bytes at /metrics): heap per idle session is n/a; RSS (from /proc) only.');
  for (const { figures: f, shutdown } of [floor, mcp])
    if (shutdown)
      notes.push(
        `${f.name} shut down (SIGTERM, its load workers already gone) in ${show(shutdown.seconds, 1)} s with ${show(f.maxConcurrentSessions)} sessions open${shutdown.killed ? ' — it did not finish and was killed' : ''}.`,
      );
  return [...notes, ...METHOD_NOTES];
}

/** Lost, duplicated, out of order or misrouted: delivery that was not exactly-once and in order. */
export function deliveryFailures(floor: ServerRun, mcp: ServerRun) {
  return [mcp, floor].flatMap(({ figures, warmup }) => {
    const f = deliveryFaults(figures, [warmup]);
    return f.lost + f.duplicated + f.outOfOrder + f.misrouted === 0
      ? []
      : [`${figures.name} delivery was not exactly-once and in order (lost ${f.lost}, duplicated ${f.duplicated}, out of order ${f.outOfOrder}, misrouted ${f.misrouted})`];
  });
}

export function assembleResults(input: {
  startedAt: Date;
  options: BenchOptions;
  rate: number;
  chosenBy: string;
  crossCheck: CrossCheckResult;
  floor: ServerRun;
  mcp: ServerRun;
  notes: string[];
}) {
  const { floor, mcp, rate } = input;
  const table = rows(mcp.figures, floor.figures, rate, [mcp.warmup], [floor.warmup]);
  return {
    table,
    json: {
      startedAt: input.startedAt.toISOString(),
      seconds: (Date.now() - input.startedAt.getTime()) / 1000,
      machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, openFileLimit: openFileLimit(), ephemeralPorts: ephemeralPortCount() },
      options: input.options,
      latencyRate: { rate, chosenBy: input.chosenBy },
      crossCheck: input.crossCheck,
      servers: { 'mcp-chat': mcp.figures, floor: floor.figures },
      warmup: { 'mcp-chat': mcp.warmup, floor: floor.warmup },
      shutdown: { 'mcp-chat': mcp.shutdown ?? null, floor: floor.shutdown ?? null },
      ratios: {
        throughput: mcp.figures.saturate.throughput / floor.figures.saturate.throughput,
        capacityPerCore: floor.figures.saturate.serverCpuUsPerMessage / mcp.figures.saturate.serverCpuUsPerMessage,
        p99AtRate: (mcp.figures.rate?.latencyMs.p99 ?? NaN) / (floor.figures.rate?.latencyMs.p99 ?? NaN),
        opensPerSecond: mcp.figures.open.opensPerSecond / floor.figures.open.opensPerSecond,
        rssPerSession: mcp.figures.memory.rssPerSessionKiB / floor.figures.memory.rssPerSessionKiB,
      },
      delivery: { 'mcp-chat': deliveryFaults(mcp.figures, [mcp.warmup]), floor: deliveryFaults(floor.figures, [floor.warmup]) },
      table: table.map(({ label, mcp: m, floor: f, goal, met }) => ({ label, mcp: m, floor: f, goal, met })),
      notes: input.notes,
    },
  };
}
