/**
 * `npm run bench`: mcp-chat (production build) measured in parts, each alone with
 * `--only <part>` (options.ts lists them): relay (mcp-chat beside a raw relay floor, by
 * client kind), eras (beside the v2 peer and the floor, per protocol era), matching (the
 * queue chart alone), scale-out (real processes, in memory and on Redis) and under-attack.
 * Prints tables (progress on stderr meanwhile) and writes bench/results.json. Speed is
 * reported, never asserted: it exits 1 when delivery was wrong or the run could not
 * finish, 2 on a bad flag, 3 when the run overstays its deadline.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BenchTarget, type KindRun, type LoadSettings, type TargetSpec } from './benchTarget.js';
import type { TokenClientKind } from './leanSession.js';
import { formatMatching, measureMatching } from './matching.js';
import { BENCH_PARTS, type BenchOptions, type BenchPart, mcpChatFlags, readOptions, USAGE, UsageError } from './options.js';
import { ephemeralPortCount, openFileLimit } from './procStats.js';
import { ERA_SERVERS, ERAS, type EraRun, type EraServer, erasOutcome, relayOutcome } from './report.js';
import { scaleOutPart, scaleOutSettings } from './scaleOut.js';
import { type PartOutcome, ProgressLine, brief as show } from './table.js';
import { underAttackPart, underAttackSettings } from './underAttack.js';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const CLI = here('../src/cli.js');
const RESULTS = here('../../bench/results.json');
const PROFILES = here('../../bench/profiles');
const TOKEN_CLIENT_KINDS: TokenClientKind[] = ['fresh-session', 'no-session'];

const progress = new ProgressLine();

interface RunContext {
  options: BenchOptions;
  settings: LoadSettings;
  kindSettings: LoadSettings;
  specs: Record<EraServer, TargetSpec>;
  /** Servers running now, stopped on the way out of a failed run. */
  targets: BenchTarget[];
}

/** A server to start: `node [--cpu-prof …] --expose-gc --import forcedGc.js <entry> --port 0 <args>`, taking a full GC on SIGUSR2. */
function spec(options: BenchOptions, name: string, entry: string, args: string[] = []): TargetSpec {
  const profiled = options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${PROFILES}`] : [];
  return { name, entry, nodeArgs: [...profiled, '--expose-gc', '--import', here('./forcedGc.js')], args, workerExecArgv: profiled };
}

async function started(context: RunContext, server: EraServer): Promise<BenchTarget> {
  const target = await BenchTarget.start(context.specs[server], context.options.workers, progress);
  context.targets.push(target);
  return target;
}

/** Stops a server and its workers (SIGTERM): how long it took. */
function stopped(context: RunContext, target: BenchTarget) {
  context.targets.splice(context.targets.indexOf(target), 1);
  return target.stop();
}

/** The floor, then mcp-chat: idle sessions, pairs, saturation; both at one rate for latency; mcp-chat's client kinds; each server's shutdown. */
async function relayPart(context: RunContext): Promise<PartOutcome> {
  const { options, settings } = context;
  const floor = await started(context, 'floor');
  const floorRun = await floor.measureSessions(options, settings);
  const mcp = await started(context, 'mcp-chat');
  const mcpRun = await mcp.measureSessions(options, settings);
  const [floorSat, mcpSat] = [floorRun.saturate.throughput, mcpRun.saturate.throughput];
  // Half of the slower server's saturation, rounded to two digits: a load both can carry,
  // so that latency is compared below saturation.
  const half = 0.5 * Math.min(floorSat, mcpSat);
  const scale = 10 ** Math.max(0, Math.floor(Math.log10(Math.max(1, half))) - 1);
  const rate = options.rate ?? Math.max(1, Math.round(half / scale) * scale);
  const chosenBy =
    options.rate !== null
      ? '--rate'
      : floorSat <= mcpSat
        ? 'half the floor’s saturation throughput'
        : 'half of mcp-chat’s saturation throughput (below the floor’s)';
  progress.note(`bench: latency phases at ${show(rate)} msgs/s (${chosenBy})`);
  floorRun.rate = await floor.load(`${show(rate)} msgs/s`, 'rate', rate, settings);
  mcpRun.rate = await mcp.load(`${show(rate)} msgs/s`, 'rate', rate, settings);
  const kinds: KindRun[] = [];
  for (const kind of TOKEN_CLIENT_KINDS) kinds.push(await mcp.measureKind(kind, options, context.kindSettings));
  progress.begin('stop the load workers, then each server (SIGTERM)', 'servers', { total: 2 });
  floorRun.shutdown = await stopped(context, floor);
  mcpRun.shutdown = await stopped(context, mcp);
  progress.end(
    `floor in ${show(floorRun.shutdown.seconds, 1)} s, mcp-chat in ${show(mcpRun.shutdown.seconds, 1)} s${mcpRun.shutdown.killed ? ' (killed)' : ''}`,
  );
  return relayOutcome(rate, chosenBy, floorRun, mcpRun, kinds);
}

/**
 * mcp-chat, the v2 peer and the floor, each started afresh and measured alone: each era's
 * pairs saturated, then each era's users weighed as they wait — after the loads, so that
 * a fresh server is weighed warm, and no load follows the release of thousands of polls.
 */
async function erasPart(context: RunContext): Promise<PartOutcome> {
  const { options } = context;
  const runs: EraRun[] = [];
  for (const server of ERA_SERVERS) {
    const target = await started(context, server);
    const loads: KindRun[] = [];
    for (const { kind } of ERAS) loads.push(await target.measureKind(kind, options, context.kindSettings));
    // Each weighing follows a forced full GC, so a short settle suffices.
    for (const load of loads)
      runs.push({ server, load, users: await target.weighUsers(load.kind, options.users, options.quick ? 300 : 2000) });
    await stopped(context, target);
  }
  return erasOutcome(runs, options.kindPairs, options.users, options.quick);
}

function matchingPart({ options }: RunContext): Promise<PartOutcome> {
  const users = options.quick ? 2_000 : 10_000;
  progress.begin(`matching · the queue chart, ${show(users)} users`, 'runs', { total: 1 });
  const matching = measureMatching(users);
  progress.end(`${show(matching.longLine.joinsPerS)} joins/s into a line of ${show(users)}`);
  return Promise.resolve({ json: { matching }, tables: [formatMatching(matching)], notes: [], failures: [] });
}

const PARTS: Record<BenchPart, (context: RunContext) => Promise<PartOutcome>> = {
  relay: relayPart,
  eras: erasPart,
  matching: matchingPart,
  'scale-out': ({ options }) => scaleOutPart(CLI, options, progress),
  'under-attack': ({ options }) => underAttackPart(CLI, options, progress),
};

/** Generous for what each part asks — its load phases, opening sessions and entering users at ≥ 50/s, the in-process parts' own deadlines — but finite. */
function deadlineS(parts: readonly BenchPart[], options: BenchOptions): number {
  const phaseS = Math.max(options.duration, options.kindDuration) + 10;
  const seconds: Record<BenchPart, number> = {
    relay: (6 + 2 * TOKEN_CLIENT_KINDS.length) * phaseS + (2 * (options.sessions + options.warmupSessions)) / 50,
    eras: 2 * ERA_SERVERS.length * ERAS.length * phaseS + (ERA_SERVERS.length * ERAS.length * options.users) / 50,
    matching: 60,
    'scale-out': scaleOutSettings(CLI, options).deadlineMs / 1000,
    'under-attack': underAttackSettings(options).deadlineMs / 1000,
  };
  return Math.round(120 + parts.reduce((sum, part) => sum + seconds[part], 0));
}

/** results.json: the whole run's, or with `--only`, an earlier run's with this part's fields replaced. */
function writeResults(options: BenchOptions, startedAt: Date, outcomes: PartOutcome[], notes: string[]): void {
  let json: Record<string, unknown> = {};
  for (const { json: part } of outcomes)
    for (const [key, value] of Object.entries(part))
      json[key] = key === 'delivery' ? { ...(json.delivery as object), ...(value as object) } : value;
  if (options.only) {
    try {
      if (existsSync(RESULTS)) json = { ...(JSON.parse(readFileSync(RESULTS, 'utf8')) as Record<string, unknown>), ...json };
    } catch {
      // An unreadable file from an earlier run is replaced, not merged.
    }
  } else {
    const machine = {
      cores: cpus().length,
      cpu: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      openFileLimit: openFileLimit(),
      ephemeralPorts: ephemeralPortCount(),
    };
    json = { startedAt: startedAt.toISOString(), seconds: (Date.now() - startedAt.getTime()) / 1000, machine, options, ...json, notes };
  }
  writeFileSync(RESULTS, `${JSON.stringify(json, null, 2)}\n`);
}

async function main(): Promise<number> {
  let options: ReturnType<typeof readOptions>;
  try {
    options = readOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const parts: readonly BenchPart[] = options.only ? [options.only] : BENCH_PARTS;
  const startedAt = new Date();
  const runDeadlineS = deadlineS(parts, options);
  setTimeout(() => {
    process.stderr.write(`\nbench: still running after ${runDeadlineS} s; giving up (children are killed)\n`);
    process.exit(3);
  }, runDeadlineS * 1000).unref();

  const notes: string[] = [];
  const settings: LoadSettings = { durationMs: options.duration * 1000, maxMessages: options.messages, messageSize: options.messageSize };
  const mcpFlags = mcpChatFlags(CLI, options.sessions + options.warmupSessions + 2);
  if (parts.includes('relay') || parts.includes('eras')) {
    if (options.capNote) progress.note(`bench: ${options.capNote}`);
    notes.push(...(options.capNote ? [options.capNote] : []), mcpFlags.note);
    progress.note(
      `bench: ${options.quick ? 'quick, ' : ''}${show(options.sessions)} idle sessions (+${options.warmupSessions} warm-up), ${show(options.pairs)} pairs (${show(options.kindPairs)} of each client kind), ` +
        `${options.duration} s phases, ${options.workers} load workers per server, ${options.messageSize}-char messages, ${cpus().length} cores`,
    );
  }
  const context: RunContext = {
    options,
    settings,
    kindSettings: { ...settings, durationMs: options.kindDuration * 1000 },
    specs: {
      'mcp-chat': spec(options, 'mcp-chat', CLI, [...mcpFlags.args, ...options.serverArgs]),
      'v2 peer': spec(options, 'v2 peer', here('./v2Peer.js')),
      floor: spec(options, 'floor', here('./relayBaseline.js')),
    },
    targets: [],
  };
  const outcomes: PartOutcome[] = [];
  try {
    for (const part of parts) outcomes.push(await PARTS[part](context));
  } catch (error) {
    // A server that died explains the error better than the error does.
    for (const target of context.targets) {
      const diagnosis = target.diagnose();
      if (diagnosis) progress.note(`bench: ${diagnosis}`);
    }
    throw error;
  } finally {
    // Only on the way out of a failed run: a finished part has stopped its servers already.
    if (context.targets.length > 0) progress.note('bench: stopping servers and workers');
    await Promise.allSettled(context.targets.map((target) => target.stop()));
  }
  notes.push(...outcomes.flatMap((outcome) => outcome.notes));
  writeResults(options, startedAt, outcomes, notes);
  process.stdout.write(`\n${outcomes.flatMap((outcome) => outcome.tables).join('\n\n')}\n\n`);
  for (const note of notes) process.stdout.write(`note: ${note}\n`);
  const only = options.only ? ` (${Object.keys(outcomes[0]!.json).join(', ')})` : '';
  process.stdout.write(`results: ${RESULTS}${only}${options.cpuProf ? `; CPU profiles: ${PROFILES}` : ''}\n`);
  const failures = outcomes.flatMap((outcome) => outcome.failures);
  for (const failure of failures) process.stderr.write(`bench: FAILED: ${failure}\n`);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`\nbench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
