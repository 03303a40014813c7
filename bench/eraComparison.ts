/**
 * Per era, what a user would write instead, measured: mcp-chat beside the v2 peer
 * (v2Peer.ts) and the floor (relayBaseline.ts), each driven by the era's client that keeps
 * no session. Server CPU per delivered message and calls/s at saturation, and memory per
 * user waiting with a held wait_for_events: the table, its JSON and its failures.
 */
import type { KindRun, UserMemoryFigures } from './figures.js';
import type { TokenClientKind } from './leanSession.js';
import { deliveryFailuresOf, faultsOver } from './report.js';
import { columns, show } from './table.js';

export type EraServer = 'mcp-chat' | 'v2 peer' | 'floor';
export const ERA_SERVERS: EraServer[] = ['mcp-chat', 'v2 peer', 'floor'];

export interface Era {
  name: '2025' | '2026-07-28';
  label: string;
  kind: TokenClientKind;
}

const KIND_NAMES: Record<TokenClientKind, string> = {
  'fresh-session': 'fresh session per call',
  'no-session': '2025 era, no session',
  modern: '2026-07-28',
};

export const ERAS: Era[] = [
  { name: '2025', label: '2025 era · no session (POST tools/call, no Mcp-Session-Id)', kind: 'no-session' },
  { name: '2026-07-28', label: '2026-07-28 · stateless (headers + _meta on every call)', kind: 'modern' },
];

/** One server in one era: its users weighed, and its pairs chatting at saturation. */
export interface EraRun {
  server: EraServer;
  kind: TokenClientKind;
  users: UserMemoryFigures;
  load: KindRun;
}

interface EraRow {
  label: string;
  values: Record<EraServer, number | null>;
  digits?: number;
  /** Show mcp-chat / peer and mcp-chat / floor. */
  ratio?: boolean;
}

const KB_PER_KIB = 1.024;

function metric(runs: EraRun[], label: string, pick: (run: EraRun) => number | null, digits = 0, ratio = true): EraRow {
  const values = Object.fromEntries(ERA_SERVERS.map((server) => [server, null])) as Record<EraServer, number | null>;
  for (const run of runs) values[run.server] = pick(run);
  return { label, values, digits, ratio };
}

const misdelivered = (run: EraRun) => {
  const f = faultsOver([run.load.warmup, run.load.saturate]);
  return f.duplicated + f.outOfOrder + f.misrouted;
};

/** The rows of one era, for the servers that ran it. */
export function eraRows(runs: EraRun[]): EraRow[] {
  return [
    metric(runs, 'server CPU per delivered message (µs)', (r) => r.load.saturate.serverCpuUsPerMessage),
    metric(runs, 'tool calls/s, saturated (polls included)', (r) => r.load.saturate.toolCallsPerSecond),
    metric(runs, 'delivered, saturated (msgs/s)', (r) => r.load.saturate.throughput),
    metric(runs, '  server CPU, saturated (cores)', (r) => r.load.saturate.serverCores, 2),
    metric(runs, '  latency p99, saturated (ms)', (r) => r.load.saturate.latencyMs.p99, 1),
    metric(runs, 'RSS per waiting user (KB)', (r) => r.users.rssPerUserKiB * KB_PER_KIB, 1),
    metric(runs, 'heap per waiting user (KB)', (r) => (r.users.heapPerUserKiB === null ? null : r.users.heapPerUserKiB * KB_PER_KIB), 1),
    metric(runs, '  users entered/s (enter_queue, first poll)', (r) => r.users.usersPerSecond),
    metric(runs, 'messages lost', (r) => faultsOver([r.load.warmup, r.load.saturate]).lost, 0, false),
    metric(runs, 'messages duplicated / out of order / misrouted', misdelivered, 0, false),
  ];
}

/** a / b, left out where either is not a positive figure (a memory delta within noise). */
const times = (a: number | null, b: number | null) => (a === null || b === null || !(a > 0) || !(b > 0) ? '' : `${(a / b).toFixed(2)}×`);

/** The printed table: a title, then each era's rows under its heading. */
export function formatEraTable(eras: Era[], runs: EraRun[], pairs: number, users: number): string {
  const title = `Per era: mcp-chat vs v2 peer vs floor — ${show(pairs)} pairs saturated, ${show(users)} waiting users weighed, each server`;
  const header = ['', ...ERA_SERVERS, 'mcp/peer', 'mcp/floor'];
  const body: string[][] = [];
  for (const era of eras) {
    const inEra = runs.filter((r) => r.kind === era.kind);
    body.push([era.label]);
    for (const row of eraRows(inEra)) {
      const cells = ERA_SERVERS.map((server) => show(row.values[server], row.digits));
      const mcp = row.values['mcp-chat'];
      const ratios = row.ratio === false ? ['', ''] : [times(mcp, row.values['v2 peer']), times(mcp, row.values.floor)];
      body.push([`  ${row.label}`, ...cells, ...ratios]);
    }
  }
  return `${title}\n${columns(header, body)}`;
}

/** results.json's `eras`: per era, each server's figures and mcp-chat's ratios to the others. */
export function eraJson(eras: Era[], runs: EraRun[]) {
  return Object.fromEntries(
    eras.map((era) => {
      const inEra = runs.filter((r) => r.kind === era.kind);
      const rows = eraRows(inEra);
      const ratioTo = (server: EraServer) =>
        Object.fromEntries(
          rows
            .filter((row) => row.ratio !== false)
            .map((row) => [row.label.trim(), (row.values['mcp-chat'] ?? NaN) / (row.values[server] ?? NaN)]),
        );
      return [
        era.name,
        {
          kind: era.kind,
          servers: Object.fromEntries(
            inEra.map((r) => [
              r.server,
              { users: r.users, pairs: r.load.pair, warmup: r.load.warmup, saturate: r.load.saturate, release: r.load.release },
            ]),
          ),
          table: rows.map(({ label, values }) => ({ label: label.trim(), ...values })),
          mcpChatOverPeer: ratioTo('v2 peer'),
          mcpChatOverFloor: ratioTo('floor'),
        },
      ];
    }),
  );
}

/** Delivery that was not exactly-once and in order, or never checked, in an era run. */
export function eraFailures(runs: EraRun[]): string[] {
  return runs.flatMap((r) => deliveryFailuresOf(`${r.server} (${KIND_NAMES[r.kind]})`, [r.load.warmup, r.load.saturate], r.load.saturate));
}

/** What the era runs' own figures say about how far to trust them. */
export function eraCaveats(runs: EraRun[], users: number, quick: boolean): string[] {
  const notes = [
    "Per era: each server was started afresh and measured alone, after the other steps. The v2 peer serves both eras as the SDK’s examples do (examples/dual-era, examples/hono: createMcpHandler on its default legacy: 'stateless' posture, mounted on Hono; its zod schemas made once, not per request): every request gets a fresh McpServer from one factory and there are no sessions, so a GET stream answers 405 and the 2025 session kinds have no peer figure. Each server is driven by the era’s client that keeps no session (2025: no Mcp-Session-Id; 2026-07-28: MCP-Protocol-Version, Mcp-Method, Mcp-Name and the _meta envelope), reading through a held wait_for_events with the cursor of its last call; the floor reads no protocol headers, so the eras differ for it only in bytes.",
    'Memory per waiting user = (after − before entering the users) / users, each weighed after a full GC (the servers run with --expose-gc and bench/forcedGc.js, which collects on SIGUSR2); each user entered the queue (so is paired) and holds one wait_for_events on a connection of its own, whose server-side socket is counted.',
  ];
  if (quick)
    notes.push(
      'Quick: each era warms up for 0.5 s on a server started afresh, so the first era (2025) runs colder than the second on every server alike: compare the servers within an era, not the eras.',
    );
  if (users < 2000)
    notes.push(
      `Memory per user was weighed over ${show(users)} users: allocator and JIT noise of a few MB weighs on it; weigh thousands (--users 2000) for a figure to compare.`,
    );
  for (const r of runs) {
    if (r.users.failed > 0)
      notes.push(
        `${r.server} (${KIND_NAMES[r.kind]}): ${show(r.users.failed)} of the users weighed failed to enter (${r.users.firstError}).`,
      );
    if (r.load.release.pollErrors > 0)
      notes.push(
        `${r.server} (${KIND_NAMES[r.kind]}): ${show(r.load.release.pollErrors)} wait_for_events calls failed (${r.load.release.firstError}).`,
      );
  }
  return notes;
}
