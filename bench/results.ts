/**
 * The relay part's results: mcp-chat beside the floor and by client kind — the rows of
 * its tables, its fields of bench/results.json, the notes a reader needs to trust (or
 * discount) its figures, and its delivery failures.
 */
import { cpus } from 'node:os';
import type { StopReport } from '../test/support/serverProcess.js';
import type { KindRun, LoadFigures, ServerFigures } from './figures.js';
import { deliveryFailuresOf, deliveryFaults, faultsOver, KIND_LABELS, type KindRow, kindRow, rows } from './report.js';
import { brief as show } from './table.js';

export interface ServerRun {
  figures: ServerFigures;
  warmup: LoadFigures;
  shutdown?: StopReport;
}

/** The kinds table: today's sessions (mcp-chat's saturation phase), then each token kind. */
export function kindRows(mcp: ServerRun, kinds: KindRun[]): KindRow[] {
  return [
    kindRow(KIND_LABELS.session, mcp.figures.pair.pairs, mcp.figures.saturate, mcp.warmup),
    ...kinds.map((k) => kindRow(KIND_LABELS[k.kind], k.pair.pairs, k.saturate, k.warmup)),
  ];
}

const METHOD_NOTES = [
  'RSS (and heap) per session = (after − before opening the idle sessions) / sessions, after a settle pause, without forcing GC (young-generation garbage adds up to ~16 MB of noise, divided by the session count); RSS includes the server side of each session’s socket.',
  'Latency is from send_message sent to message.received parsed by the partner’s lean client; both clocks are in the same worker process.',
  'Saturation: every paired session keeps one send_message in flight (closed loop), the same concurrency for both servers; the latency phase is open loop at one fixed rate for both.',
  'Client kinds: “fresh session per call” makes every tool call in a session of its own (POST initialize, POST notifications/initialized, POST tools/call, DELETE); “no session” makes it one POST without Mcp-Session-Id; “modern (2026-07-28)” one POST of the stateless revision (MCP-Protocol-Version, Mcp-Method and Mcp-Name headers, the _meta envelope in its params). All pass the user_token from enter_queue, and read through wait_for_events with the cursor of their last call (one held per user, on a connection of its own), never a GET stream. Each saturates as the sessions do: one send_message in flight per user. Tool calls/s and HTTP requests/s count what the server answered over the phase, polls included.',
];

/** What this run's own figures say about how far to trust them. */
export function caveats(floor: ServerRun, mcp: ServerRun, rate: number, kinds: KindRun[]): string[] {
  const notes: string[] = [];
  for (const k of kinds)
    if (k.pair.pairs !== mcp.figures.pair.pairs) {
      notes.push(
        `The client kinds ran with ${show(k.pair.pairs)} pairs and the sessions with ${show(mcp.figures.pair.pairs)}: server CPU per message depends on how many users chat at once, so pass --kind-pairs equal to --pairs to compare the kinds at one load.`,
      );
      break;
    }
  for (const k of kinds)
    if (k.release.pollErrors > 0)
      notes.push(`${KIND_LABELS[k.kind]}: ${show(k.release.pollErrors)} wait_for_events calls failed (${k.release.firstError}).`);
  const sat = floor.figures.saturate;
  if (sat.serverCores < 0.9)
    notes.push(
      `The floor used only ${show(sat.serverCores, 2)} cores at saturation while the load generator used ${show(sat.generatorCores, 2)} (of ${cpus().length} cores): ` +
        'the machine, not the floor, set the floor’s throughput, so mcp-chat/floor throughput flatters mcp-chat. ' +
        '“Relay capacity per server core” (1 / server CPU per message) compares the servers without the generator.',
    );
  const phases = [floor, mcp].flatMap(({ figures: f }) => [f.saturate, ...(f.rate ? [f.rate] : [])]);
  const other = Math.max(...phases.map((p) => p.otherCores));
  if (other > 0.25)
    notes.push(
      `Other processes used up to ${show(other, 2)} cores during the load phases: the machine was shared and the figures are noisy.`,
    );
  for (const { figures: f } of [floor, mcp])
    if (f.rate && f.rate.throughput < 0.95 * rate)
      notes.push(
        `${f.name} delivered ${show(f.rate.throughput)} msgs/s of the ${show(rate)} offered: it could not keep up, so its latency at that rate grows with the phase length.`,
      );
  const weighed = Math.min(floor.figures.memory.idleSessions, mcp.figures.memory.idleSessions);
  if (weighed < 2000)
    notes.push(
      `Memory per session was weighed over only ${show(weighed)} sessions: GC and JIT noise of a few MB dominates it; weigh thousands (--sessions 5000) for a figure to compare with the goal.`,
    );
  if (mcp.figures.memory.heapPerSessionKiB === null)
    notes.push(
      'mcp-chat reports no heap figure (not in /healthz, no nodejs_heap_size_used_bytes at /metrics): heap per idle session is n/a; RSS (from /proc) only.',
    );
  for (const { figures: f, shutdown } of [floor, mcp])
    if (shutdown)
      notes.push(
        `${f.name} shut down (SIGTERM, its load workers already gone) in ${show(shutdown.seconds, 1)} s with ${show(f.maxConcurrentSessions)} sessions open${shutdown.killed ? ' — it did not finish and was killed' : ''}.`,
      );
  return [...notes, ...METHOD_NOTES];
}

/**
 * Lost, duplicated, out of order or misrouted: delivery that was not exactly-once and in
 * order; and a client kind that got no message through, whose delivery went unchecked.
 */
export function deliveryFailures(floor: ServerRun, mcp: ServerRun, kinds: KindRun[]) {
  return [
    ...[mcp, floor].flatMap(({ figures: f, warmup }) => deliveryFailuresOf(f.name, [f.saturate, ...(f.rate ? [f.rate] : []), warmup])),
    ...kinds.flatMap(({ kind, warmup, saturate }) => deliveryFailuresOf(`mcp-chat (${KIND_LABELS[kind]})`, [warmup, saturate], saturate)),
  ];
}

/** The relay part's tables and its fields of bench/results.json. */
export function relayResults(input: { rate: number; chosenBy: string; floor: ServerRun; mcp: ServerRun; kinds: KindRun[] }) {
  const { floor, mcp, rate, kinds } = input;
  const table = rows(mcp.figures, floor.figures, rate, [mcp.warmup], [floor.warmup]);
  const kindTable = kindRows(mcp, kinds);
  return {
    table,
    kindTable,
    json: {
      latencyRate: { rate, chosenBy: input.chosenBy },
      servers: { 'mcp-chat': mcp.figures, floor: floor.figures },
      warmup: { 'mcp-chat': mcp.warmup, floor: floor.warmup },
      // mcp-chat by token-client kind; the sessions' figures are servers['mcp-chat'].
      clientKinds: Object.fromEntries(kinds.map((k) => [k.kind, k])),
      shutdown: { 'mcp-chat': mcp.shutdown ?? null, floor: floor.shutdown ?? null },
      ratios: {
        throughput: mcp.figures.saturate.throughput / floor.figures.saturate.throughput,
        capacityPerCore: floor.figures.saturate.serverCpuUsPerMessage / mcp.figures.saturate.serverCpuUsPerMessage,
        p99AtRate: (mcp.figures.rate?.latencyMs.p99 ?? NaN) / (floor.figures.rate?.latencyMs.p99 ?? NaN),
        opensPerSecond: mcp.figures.open.opensPerSecond / floor.figures.open.opensPerSecond,
        rssPerSession: mcp.figures.memory.rssPerSessionKiB / floor.figures.memory.rssPerSessionKiB,
      },
      delivery: {
        'mcp-chat': deliveryFaults(mcp.figures, [mcp.warmup]),
        floor: deliveryFaults(floor.figures, [floor.warmup]),
        ...Object.fromEntries(kinds.map((k) => [`mcp-chat, ${k.kind}`, faultsOver([k.warmup, k.saturate])])),
      },
      table: table.map(({ label, mcp: m, floor: f, goal, met }) => ({ label, mcp: m, floor: f, goal, met })),
      kindTable,
    },
  };
}
