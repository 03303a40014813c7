/**
 * What the relay and eras parts print and record: mcp-chat beside the raw relay floor, their
 * ratio and the goal the project steers by (measured here, never asserted — a miss is a
 * finding, not a failure); mcp-chat by client kind; per protocol era, mcp-chat beside the v2
 * peer and the floor. Also the notes a reader needs to trust (or discount) the figures,
 * and the delivery failures that make the bench exit 1.
 */
import { cpus } from 'node:os';
import { KIND_LABELS, type KindRun, type LoadFigures, type ServerRun, type UserFigures } from './benchTarget.js';
import { pairFailures } from './chatter.js';
import type { TokenClientKind } from './leanSession.js';
import { brief, columns, show } from './table.js';

export const ERA_SERVERS = ['mcp-chat', 'v2 peer', 'floor'] as const;
export type EraServer = (typeof ERA_SERVERS)[number];
export const ERAS = [
  { name: '2025', label: '2025 era · no session (POST tools/call, no Mcp-Session-Id)', kind: 'no-session' },
  { name: '2026-07-28', label: '2026-07-28 · stateless (headers + _meta on every call)', kind: 'modern' },
] as const satisfies { name: string; label: string; kind: TokenClientKind }[];

/** One server in one era: its pairs chatting at saturation, and its users weighed as they wait. */
export interface EraRun {
  server: EraServer;
  load: KindRun;
  users: UserFigures;
}

const KB = 1.024;
const FAULTS = ['acked', 'lost', 'duplicated', 'outOfOrder', 'misrouted', 'failed', 'unsent'] as const;

/** Every correctness counter of some load phases, added up, with the first error. */
export function faultsOver(phases: (LoadFigures | undefined)[]) {
  const present = phases.filter((p) => p !== undefined);
  const counts = Object.fromEntries(FAULTS.map((key) => [key, present.reduce((sum, phase) => sum + phase[key], 0)]));
  return { ...(counts as Record<(typeof FAULTS)[number], number>), firstError: present.find((p) => p.firstError)?.firstError };
}

const serverPhases = (s: ServerRun) => [s.warmup, s.saturate, s.rate];
const misdelivered = (f: ReturnType<typeof faultsOver>) => f.duplicated + f.outOfOrder + f.misrouted;
/** Delivery that was not exactly-once and in order over `phases`, failed sends, or no message accepted (delivery unchecked): as in every part. */
const failuresOf = (who: string, phases: (LoadFigures | undefined)[]) => pairFailures(who, faultsOver(phases));

/** A metric for a set of servers: its label, digits, how to read it, and (relay) the goal and whether mcp-chat meets it. */
type Metric<T> = [
  label: string,
  pick: (run: T) => number | null | undefined,
  digits?: number,
  goal?: [text: string, met: (mcp: number, other: number) => boolean],
];

/** Rows of `metrics` over `runs` (null where a server has none), with mcp-chat's ratio to each other server (`ratios: false` for counts). */
function metricRows<T>(runs: (T | undefined)[], metrics: Metric<T>[], ratios = true): string[][] {
  return metrics.map(([label, pick, digits = 0, goal]) => {
    const values = runs.map((run) => (run === undefined ? null : (pick(run) ?? null)));
    const [mcp = null, ...others] = values;
    const ratio = (other: number | null) =>
      !ratios || mcp === null || other === null || !(mcp > 0) || !(other > 0) ? '' : `${(mcp / other).toFixed(2)}×`;
    const verdict = goal && mcp !== null ? (goal[1](mcp, others[0] ?? NaN) ? 'met' : 'not met') : '';
    return [label, ...values.map((v) => show(v, digits)), ...others.map(ratio), ...(goal ? [goal[0], verdict] : [])];
  });
}

/** The relay table: mcp-chat beside the floor. */
function relayTable(mcp: ServerRun, floor: ServerRun, rate: number): string {
  const at = `@ ${brief(rate)} msgs/s`;
  const floorP99 = floor.rate?.latencyMs.p99 ?? NaN;
  const measured: Metric<ServerRun>[] = [
    ['session opens/s (init + initialized + GET)', (s) => s.open.opensPerSecond, 0, ['≥ 1,500/s', (m) => m >= 1500]],
    ['  open latency p50 (ms)', (s) => s.open.openLatencyMs.p50, 2],
    ['  open latency p99 (ms)', (s) => s.open.openLatencyMs.p99, 2],
    ['  server CPU per open (µs)', (s) => s.open.serverCpuUsPerOpen],
    ['pairing rate (pairs/s)', (s) => s.pair.pairsPerSecond],
    [
      `relay throughput, saturated (msgs/s, ${mcp.saturate.senders} senders)`,
      (s) => s.saturate.throughput,
      0,
      ['≥ 0.9 × floor', (m, f) => m / f >= 0.9],
    ],
    ['  server CPU, saturated (cores)', (s) => s.saturate.serverCores, 2],
    ['  server CPU per message (µs)', (s) => s.saturate.serverCpuUsPerMessage],
    [
      '  relay capacity per server core (msgs/s)',
      (s) => 1e6 / s.saturate.serverCpuUsPerMessage,
      0,
      ['≥ 0.9 × floor', (m, f) => m / f >= 0.9],
    ],
    ['  latency p99, saturated (ms)', (s) => s.saturate.latencyMs.p99, 2],
    [`relay latency p50 ${at} (ms)`, (s) => s.rate?.latencyMs.p50, 2],
    [`relay latency p95 ${at} (ms)`, (s) => s.rate?.latencyMs.p95, 2],
    [`relay latency p99 ${at} (ms)`, (s) => s.rate?.latencyMs.p99, 2, ['≤ 1.25 × floor', (m) => m / floorP99 <= 1.25]],
    ['  p99 from due time, open loop (ms)', (s) => s.rate?.latencyFromDueMs.p99, 2],
    [`  delivered ${at} (msgs/s)`, (s) => s.rate?.throughput],
    [`  server CPU ${at} (cores)`, (s) => s.rate?.serverCores, 2],
    [
      `RSS per idle session (KB, ${brief(mcp.memory.idleSessions)} sessions)`,
      (s) => s.memory.rssPerSessionKiB * KB,
      1,
      ['≤ 16 KB', (m) => m <= 16],
    ],
    ['heap per idle session (KB)', (s) => (s.memory.heapPerSessionKiB === null ? null : s.memory.heapPerSessionKiB * KB), 1],
    ['  server CPU while they sit idle (cores)', (s) => s.memory.idleServerCores, 3],
    ['max concurrent sessions (live GET streams)', (s) => s.maxConcurrentSessions, 0, ['≥ 10,000', (m) => m >= 10_000]],
  ];
  const counts: Metric<ServerRun>[] = [
    ['messages lost', (s) => faultsOver(serverPhases(s)).lost, 0, ['0', (m) => m === 0]],
    ['messages duplicated / out of order / misrouted', (s) => misdelivered(faultsOver(serverPhases(s))), 0, ['0', (m) => m === 0]],
    ['send_message refused / failed', (s) => faultsOver(serverPhases(s)).failed],
    ['load generator CPU, saturated (cores)', (s) => s.saturate.generatorCores, 2],
    ['other CPU on the machine, saturated (cores)', (s) => s.saturate.otherCores, 2],
    ['load generator loop delay p99, saturated (ms)', (s) => s.saturate.generatorLoopDelayP99Ms, 1],
  ];
  // A row without a goal ends early: its last columns are blank.
  const body = [...metricRows([mcp, floor], measured), ...metricRows([mcp, floor], counts, false)];
  return columns(['', 'mcp-chat', 'floor', 'mcp/floor', 'goal', ''], body, (i) => i === 0 || i >= 4);
}

/** Each client kind, saturated: what a delivered message costs the server and how many calls it answered; sent to misdelivered over the warm-up and the measured phase. */
function kindTable(runs: { label: string; pair: { pairs: number }; warmup: LoadFigures; saturate: LoadFigures }[]): string {
  const header =
    'mcp-chat, saturated, by client kind|pairs|msgs/s|cores|CPU/msg µs|tool calls/s|HTTP req/s|p50 ms|p99 ms|sent|delivered|lost|dup/ooo/misr'.split(
      '|',
    );
  const body = runs.map(({ label, pair, warmup, saturate: s }) => {
    const f = faultsOver([warmup, s]);
    return [
      label,
      show(pair.pairs),
      show(s.throughput),
      show(s.serverCores, 2),
      show(s.serverCpuUsPerMessage),
      show(s.toolCallsPerSecond),
      show(s.httpRequestsPerSecond),
    ].concat([
      show(s.latencyMs.p50, 2),
      show(s.latencyMs.p99, 2),
      show(warmup.acked + s.acked),
      show(warmup.received + s.received),
      show(f.lost),
      show(misdelivered(f)),
    ]);
  });
  return columns(header, body);
}

const METHOD_NOTES = [
  'RSS (and heap) per session = (after − before opening the idle sessions) / sessions, after a settle pause, without forcing GC (young-generation garbage adds up to ~16 MB of noise, divided by the session count); RSS includes the server side of each session’s socket.',
  'Latency is from send_message sent to message.received parsed by the partner’s lean client; both clocks are in the same worker process.',
  'Saturation: every paired session keeps one send_message in flight (closed loop), the same concurrency for both servers; the latency phase is open loop at one fixed rate for both.',
  'Client kinds: “fresh session per call” makes every tool call in a session of its own (POST initialize, POST notifications/initialized, POST tools/call, DELETE); “no session” makes it one POST without Mcp-Session-Id; “modern (2026-07-28)” one POST of the stateless revision (MCP-Protocol-Version, Mcp-Method and Mcp-Name headers, the _meta envelope in its params). All pass the user_token from enter_queue, and read through wait_for_events with the cursor of their last call (one held per user, on a connection of its own), never a GET stream. Each saturates as the sessions do: one send_message in flight per user. Tool calls/s and HTTP requests/s count what the server answered over the phase, polls included.',
];

/** The relay part's tables, its fields of results.json, the notes its own figures call for, and its failures. */
export function relayOutcome(rate: number, chosenBy: string, floor: ServerRun, mcp: ServerRun, kinds: KindRun[]) {
  const notes: string[] = [];
  if (kinds.some((k) => k.pair.pairs !== mcp.pair.pairs))
    notes.push(
      `The client kinds ran with ${brief(kinds[0]!.pair.pairs)} pairs and the sessions with ${brief(mcp.pair.pairs)}: server CPU per message depends on how many users chat at once, so pass --kind-pairs equal to --pairs to compare the kinds at one load.`,
    );
  for (const k of kinds)
    if (k.release.pollErrors > 0)
      notes.push(`${KIND_LABELS[k.kind]}: ${brief(k.release.pollErrors)} wait_for_events calls failed (${k.release.firstError}).`);
  if (floor.saturate.serverCores < 0.9)
    notes.push(
      `The floor used only ${brief(floor.saturate.serverCores, 2)} cores at saturation while the load generator used ${brief(floor.saturate.generatorCores, 2)} (of ${cpus().length} cores): ` +
        'the machine, not the floor, set the floor’s throughput, so mcp-chat/floor throughput flatters mcp-chat. “Relay capacity per server core” (1 / server CPU per message) compares the servers without the generator.',
    );
  const other = Math.max(...[floor, mcp].flatMap((s) => [s.saturate, s.rate]).map((p) => p?.otherCores ?? 0));
  if (other > 0.25)
    notes.push(
      `Other processes used up to ${brief(other, 2)} cores during the load phases: the machine was shared and the figures are noisy.`,
    );
  for (const s of [floor, mcp])
    if (s.rate && s.rate.throughput < 0.95 * rate)
      notes.push(
        `${s.name} delivered ${brief(s.rate.throughput)} msgs/s of the ${brief(rate)} offered: it could not keep up, so its latency at that rate grows with the phase length.`,
      );
  const weighed = Math.min(floor.memory.idleSessions, mcp.memory.idleSessions);
  if (weighed < 2000)
    notes.push(
      `Memory per session was weighed over only ${brief(weighed)} sessions: GC and JIT noise of a few MB dominates it; weigh thousands (--sessions 5000) for a figure to compare with the goal.`,
    );
  for (const s of [floor, mcp])
    if (s.shutdown)
      notes.push(
        `${s.name} shut down (SIGTERM, its load workers already gone) in ${brief(s.shutdown.seconds, 1)} s with ${brief(s.maxConcurrentSessions)} sessions open${s.shutdown.killed ? ' — it did not finish and was killed' : ''}.`,
      );
  return {
    json: {
      latencyRate: { rate, chosenBy },
      servers: { 'mcp-chat': mcp, floor },
      // mcp-chat by token-client kind; the sessions' figures are servers['mcp-chat'].
      clientKinds: Object.fromEntries(kinds.map((k) => [k.kind, k])),
      ratios: {
        throughput: mcp.saturate.throughput / floor.saturate.throughput,
        capacityPerCore: floor.saturate.serverCpuUsPerMessage / mcp.saturate.serverCpuUsPerMessage,
        p99AtRate: (mcp.rate?.latencyMs.p99 ?? NaN) / (floor.rate?.latencyMs.p99 ?? NaN),
        opensPerSecond: mcp.open.opensPerSecond / floor.open.opensPerSecond,
        rssPerSession: mcp.memory.rssPerSessionKiB / floor.memory.rssPerSessionKiB,
      },
      delivery: {
        'mcp-chat': faultsOver(serverPhases(mcp)),
        floor: faultsOver(serverPhases(floor)),
        ...Object.fromEntries(kinds.map((k) => [`mcp-chat, ${k.kind}`, faultsOver([k.warmup, k.saturate])])),
      },
    },
    tables: [
      relayTable(mcp, floor, rate),
      kindTable([{ label: KIND_LABELS.session, ...mcp }, ...kinds.map((k) => ({ label: KIND_LABELS[k.kind], ...k }))]),
    ],
    notes: [...notes, ...METHOD_NOTES],
    failures: [
      ...[mcp, floor].flatMap((s) => failuresOf(s.name, serverPhases(s))),
      ...kinds.flatMap((k) => failuresOf(`mcp-chat (${KIND_LABELS[k.kind]})`, [k.warmup, k.saturate])),
    ],
  };
}

/** The eras part: per era, each server's figures, the table with mcp-chat's ratios to the peer and the floor, notes and failures. */
export function erasOutcome(runs: EraRun[], pairs: number, users: number, quick: boolean) {
  const metrics: Metric<EraRun>[] = [
    ['server CPU per delivered message (µs)', (r) => r.load.saturate.serverCpuUsPerMessage],
    ['tool calls/s, saturated (polls included)', (r) => r.load.saturate.toolCallsPerSecond],
    ['delivered, saturated (msgs/s)', (r) => r.load.saturate.throughput],
    ['  server CPU, saturated (cores)', (r) => r.load.saturate.serverCores, 2],
    ['  latency p99, saturated (ms)', (r) => r.load.saturate.latencyMs.p99, 1],
    ['RSS per waiting user (KB)', (r) => r.users.rssPerUserKiB * KB, 1],
    ['heap per waiting user (KB)', (r) => (r.users.heapPerUserKiB === null ? null : r.users.heapPerUserKiB * KB), 1],
    ['  users entered/s (enter_queue, first poll)', (r) => r.users.usersPerSecond],
  ];
  const counts: Metric<EraRun>[] = [
    ['messages lost', (r) => faultsOver([r.load.warmup, r.load.saturate]).lost],
    ['messages duplicated / out of order / misrouted', (r) => misdelivered(faultsOver([r.load.warmup, r.load.saturate]))],
  ];
  const body: string[][] = [];
  const json: Record<string, unknown> = {};
  for (const era of ERAS) {
    const inEra = ERA_SERVERS.map((server) => runs.find((r) => r.server === server && r.load.kind === era.kind));
    const rows = [...metricRows(inEra, metrics), ...metricRows(inEra, counts, false)];
    body.push([era.label], ...rows.map(([label, ...cells]) => [`  ${label}`, ...cells]));
    const servers = Object.fromEntries(inEra.flatMap((r) => (r ? [[r.server, { users: r.users, ...r.load }]] : [])));
    json[era.name] = { kind: era.kind, servers, table: rows.map(([label, ...cells]) => [label!.trim(), ...cells]) };
  }
  const title = `Per era: mcp-chat vs v2 peer vs floor — ${brief(pairs)} pairs saturated, ${brief(users)} waiting users weighed, each server`;
  const who = (r: EraRun) => `${r.server} (${r.load.kind === 'modern' ? '2026-07-28' : '2025 era, no session'})`;
  const notes = [
    "Per era: each server was started afresh and measured alone, after the other steps. The v2 peer serves both eras as the SDK’s examples do (examples/dual-era, examples/hono: createMcpHandler on its default legacy: 'stateless' posture, mounted on Hono; its zod schemas made once, not per request): every request gets a fresh McpServer from one factory and there are no sessions, so a GET stream answers 405 and the 2025 session kinds have no peer figure. Each server is driven by the era’s client that keeps no session (2025: no Mcp-Session-Id; 2026-07-28: MCP-Protocol-Version, Mcp-Method, Mcp-Name and the _meta envelope), reading through a held wait_for_events with the cursor of its last call; the floor reads no protocol headers, so the eras differ for it only in bytes.",
    'Memory per waiting user = (after − before entering the users) / users, each weighed after a full GC (the servers run with --expose-gc and bench/forcedGc.js, which collects on SIGUSR2); each user entered the queue (so is paired) and holds one wait_for_events on a connection of its own, whose server-side socket is counted.',
    ...(quick
      ? [
          'Quick: each era warms up for 0.5 s on a server started afresh, so the first era (2025) runs colder than the second on every server alike: compare the servers within an era, not the eras.',
        ]
      : []),
    ...(users < 2000
      ? [
          `Memory per user was weighed over ${brief(users)} users: allocator and JIT noise of a few MB weighs on it; weigh thousands (--users 2000) for a figure to compare.`,
        ]
      : []),
    ...runs.flatMap((r) => [
      ...(r.users.failed > 0 ? [`${who(r)}: ${brief(r.users.failed)} of the users weighed failed to enter (${r.users.firstError}).`] : []),
      ...(r.load.release.pollErrors > 0
        ? [`${who(r)}: ${brief(r.load.release.pollErrors)} wait_for_events calls failed (${r.load.release.firstError}).`]
        : []),
    ]),
  ];
  return {
    json: {
      eras: json,
      delivery: Object.fromEntries(
        runs.map((r) => [`${r.server} (per era), ${r.load.kind}`, faultsOver([r.load.warmup, r.load.saturate])]),
      ),
    },
    tables: [`${title}\n${columns(['', ...ERA_SERVERS, 'mcp/peer', 'mcp/floor'], body)}`],
    notes,
    failures: runs.flatMap((r) => failuresOf(who(r), [r.load.warmup, r.load.saturate])),
  };
}
