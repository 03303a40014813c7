/**
 * One server under test with its own load workers: start it, open idle sessions (and
 * weigh them), pair some, run load phases — each step measured from the client side
 * and, for CPU and memory, from /proc. Pairs and load phases are of one client kind:
 * the sessions opened, or token clients made for the purpose and then released.
 */
import { type Dispatcher, request } from 'undici';
import { type SpawnedServer, type StopReport, stopChild } from '../test/support/serverProcess.js';
import { startServer, tailOf } from './children.js';
import {
  type LoadFigures,
  loadFigures,
  type MemoryFigures,
  type OpenFigures,
  type PairFigures,
  percentilesMs,
  type ReleaseFigures,
  split,
  type UserMemoryFigures,
} from './figures.js';
import type { TokenClientKind } from './leanSession.js';
import { CpuMeter, machineBusySeconds, rssKiB } from './procStats.js';
import { sleep } from './timing.js';
import { WorkerFleet } from './workerFleet.js';
import type { ClientKind, LoadMode } from './workerProtocol.js';

export interface TargetSpec {
  name: string;
  /** The compiled entry point `node` runs, its node flags, and its own flags (after `--port 0`). */
  entry: string;
  nodeArgs: string[];
  args: string[];
  /** Node flags for the load workers (e.g. --cpu-prof). */
  workerExecArgv?: string[];
  /** Whether `args` preload forcedGc.js, so that SIGUSR2 makes a full GC (without it, SIGUSR2 kills). */
  gcOnSignal?: boolean;
}

export interface LoadSettings {
  durationMs: number;
  maxMessages: number;
  messageSize: number;
  drainMs: number;
}

export type ProgressFn = (done: number) => void;

const OPEN_CONCURRENCY_PER_WORKER = 32;
export const POST_CONNECTIONS_PER_WORKER = 64;
const PAIR_CONCURRENCY = 64;

/** Finds a heap-used figure anywhere in a /healthz answer (`heapUsed`, `heap_used`, …), in bytes. */
function heapUsedBytes(value: unknown, depth = 0): number | undefined {
  if (typeof value !== 'object' || value === null || depth > 3) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    if (/^heap_?used(_bytes)?$/i.test(key) && typeof inner === 'number') return inner;
    const found = heapUsedBytes(inner, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A gauge from a server's /metrics (prom-client's, under whatever prefix the server gives them), or null if it has none. */
export async function metricGauge(url: URL, name: string, dispatcher?: Dispatcher): Promise<number | null> {
  const response = await request(new URL('/metrics', url), {
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
    ...(dispatcher && { dispatcher }),
  });
  const text = await response.body.text();
  const match = response.statusCode === 200 ? new RegExp(`^(?:\\w+_)?${name}(?:\\{[^}]*\\})?\\s+([\\d.e+]+)`, 'm').exec(text) : null;
  return match?.[1] !== undefined ? Number(match[1]) : null;
}

export class BenchTarget {
  readonly #sessions: number[];
  /** Pairs per worker, by client kind. */
  readonly #pairs = new Map<ClientKind, number[]>();

  private constructor(
    readonly name: string,
    readonly server: SpawnedServer,
    readonly fleet: WorkerFleet,
    readonly gcOnSignal: boolean,
  ) {
    this.#sessions = fleet.pids.map(() => 0);
  }

  static async start(spec: TargetSpec, workers: number): Promise<BenchTarget> {
    const server = await startServer({ entry: spec.entry, nodeArgs: spec.nodeArgs, args: spec.args });
    return new BenchTarget(spec.name, server, new WorkerFleet(workers, spec.workerExecArgv), spec.gcOnSignal === true);
  }

  get url(): URL {
    return this.server.url;
  }

  get openSessions(): number {
    return this.#sessions.reduce((a, b) => a + b, 0);
  }

  async health(): Promise<Record<string, unknown>> {
    const response = await request(new URL('/healthz', this.url), { headersTimeout: 10_000, bodyTimeout: 10_000 });
    return (await response.body.json()) as Record<string, unknown>;
  }

  /** Heap used, in bytes, from /healthz or else Prometheus' `…nodejs_heap_size_used_bytes` at /metrics; undefined if neither says. */
  async heapUsed(health?: Record<string, unknown>): Promise<number | undefined> {
    const fromHealth = heapUsedBytes(health ?? (await this.health()));
    if (fromHealth !== undefined) return fromHealth;
    return (await metricGauge(this.url, 'nodejs_heap_size_used_bytes')) ?? undefined;
  }

  /** A full GC in the server, when it was started to take one on SIGUSR2; a pause otherwise. */
  async collectGarbage(): Promise<void> {
    if (this.gcOnSignal) process.kill(this.server.pid, 'SIGUSR2');
    // The signal is handled on the server's event loop before a request sent after this
    // pause: a weighing asks the server first, and reads /proc once it has answered.
    await sleep(50);
  }

  /** Opens `count` sessions (initialize, initialized, live GET stream) across the workers. */
  async open(count: number, progress: ProgressFn): Promise<OpenFigures> {
    const shares = split(count, this.fleet.size);
    const cpu = new CpuMeter([this.server.pid]);
    const command = {
      type: 'open',
      url: this.url.href,
      concurrency: OPEN_CONCURRENCY_PER_WORKER,
      postConnections: POST_CONNECTIONS_PER_WORKER,
    } as const;
    const reports = await this.fleet.all(
      shares.map((count) => ({ ...command, count })),
      'opened',
      360_000,
      progress,
    );
    const { cpuSeconds: used } = cpu.stop();
    for (const [i, report] of reports.entries()) this.#sessions[i] = (this.#sessions[i] ?? 0) + report.opened;
    const opened = reports.reduce((total, r) => total + r.opened, 0);
    const seconds = (Math.max(...reports.map((r) => r.endedAt)) - Math.min(...reports.map((r) => r.startedAt))) / 1000;
    const firstError = reports.find((r) => r.firstError !== undefined)?.firstError;
    return {
      sessions: opened,
      failed: reports.reduce((total, r) => total + r.failed, 0),
      liveStreams: reports.reduce((total, r) => total + r.liveStreams, 0),
      opensPerSecond: opened / Math.max(0.001, seconds),
      openLatencyMs: percentilesMs(reports.map((r) => r.latency)),
      serverCpuUsPerOpen: opened > 0 ? (used * 1e6) / opened : NaN,
      ...(firstError !== undefined && { firstError }),
    };
  }

  /**
   * Opens `warmup` sessions (JIT, keep-alive connections), weighs the server, opens
   * `count` more idle sessions with live streams, lets it settle, weighs it again.
   */
  async openIdle(
    warmup: number,
    count: number,
    settleMs: number,
    progress: ProgressFn,
  ): Promise<{ open: OpenFigures; memory: MemoryFigures }> {
    const warm = await this.open(warmup, () => {});
    if (warm.failed > 0) throw new Error(`${this.name}: ${warm.failed} warm-up sessions failed to open: ${warm.firstError}`);
    await sleep(settleMs / 2);
    const rssBeforeKiB = rssKiB(this.server.pid);
    const heapBefore = await this.heapUsed();
    const open = await this.open(count, (done) => progress(done));
    // The settle pause doubles as the idle measurement: what holding the sessions costs
    // (SSE keep-alives, timers) with no request coming in.
    const idle = new CpuMeter([this.server.pid]);
    await sleep(settleMs);
    const idleCores = idle.stop().cores;
    const rssAfterKiB = rssKiB(this.server.pid);
    const health = await this.health();
    const heapAfter = await this.heapUsed(health);
    const per = (delta: number) => (open.sessions > 0 ? delta / open.sessions : NaN);
    return {
      open,
      memory: {
        idleSessions: open.sessions,
        rssBeforeKiB,
        rssAfterKiB,
        rssPerSessionKiB: per(rssAfterKiB - rssBeforeKiB),
        heapPerSessionKiB: heapBefore !== undefined && heapAfter !== undefined ? per((heapAfter - heapBefore) / 1024) : null,
        serverSessions: typeof health.sessions === 'number' ? health.sessions : null,
        idleServerCores: idleCores,
      },
    };
  }

  /**
   * Weighs users of a token client kind as they wait, on a server already warm (loaded
   * with them before): weighs it, enters `count` users — in pairs, each then holding a
   * wait_for_events — lets it settle, weighs it again, and releases them. Each weighing
   * follows a full GC when the server takes one (`gcOnSignal`).
   */
  async weighUsers(clients: TokenClientKind, count: number, settleMs: number, progress: ProgressFn): Promise<UserMemoryFigures> {
    // Collected twice, a pause apart: the pages that a load phase before grew are given
    // back to the system before the first weighing, not during the second.
    await this.collectGarbage();
    await sleep(settleMs / 2);
    await this.collectGarbage();
    const heapBefore = await this.heapUsed();
    const rssBeforeKiB = rssKiB(this.server.pid);
    const pair = await this.pair(Math.floor(count / 2), (done) => progress(2 * done), clients);
    await sleep(settleMs);
    await this.collectGarbage();
    const heapAfter = await this.heapUsed();
    const rssAfterKiB = rssKiB(this.server.pid);
    await this.release(clients);
    const users = 2 * pair.pairs;
    const per = (delta: number) => (users > 0 ? delta / users : NaN);
    return {
      users,
      failed: pair.failed,
      ...(pair.firstError !== undefined && { firstError: pair.firstError }),
      usersPerSecond: 2 * pair.pairsPerSecond,
      rssBeforeKiB,
      rssAfterKiB,
      rssPerUserKiB: per(rssAfterKiB - rssBeforeKiB),
      heapPerUserKiB: heapBefore !== undefined && heapAfter !== undefined ? per((heapAfter - heapBefore) / 1024) : null,
    };
  }

  /**
   * Pairs `pairs` pairs of `clients`, one worker at a time so that every pair is inside
   * one worker: of the sessions opened, or of token clients made now.
   */
  async pair(pairs: number, progress: ProgressFn, clients: ClientKind = 'session'): Promise<PairFigures> {
    const shares = split(pairs, this.fleet.size).map((share, i) =>
      clients === 'session' ? Math.min(share, Math.floor((this.#sessions[i] ?? 0) / 2)) : share,
    );
    const formedBy = this.fleet.pids.map(() => 0);
    this.#pairs.set(clients, formedBy);
    let formed = 0;
    let failed = 0;
    let seconds = 0;
    let firstError: string | undefined;
    for (const [i, share] of shares.entries()) {
      if (share === 0) continue;
      const url = this.url.href;
      const command = {
        type: 'pair',
        clients,
        url,
        postConnections: POST_CONNECTIONS_PER_WORKER,
        pairs: share,
        concurrency: PAIR_CONCURRENCY,
        deadlineMs: 60_000,
      } as const;
      const report = await this.fleet.ask(i, command, 'paired', 90_000, (done) => progress(formed + done));
      formedBy[i] = report.pairs;
      formed += report.pairs;
      failed += report.failed;
      seconds += (report.endedAt - report.startedAt) / 1000;
      firstError ??= report.firstError;
    }
    return { pairs: formed, failed, pairsPerSecond: formed / Math.max(0.001, seconds), ...(firstError !== undefined && { firstError }) };
  }

  /** One load phase over every pair of `clients`: `rate` is the total offered msgs/s (rate mode). */
  async load(
    mode: LoadMode,
    rate: number,
    settings: LoadSettings,
    progress: ProgressFn,
    clients: ClientKind = 'session',
  ): Promise<LoadFigures> {
    const senders = (this.#pairs.get(clients) ?? []).map((pairs) => pairs * 2);
    const total = senders.reduce((a, b) => a + b, 0);
    if (total === 0) throw new Error(`${this.name}: no ${clients} pairs to load`);
    const budgets = split(settings.maxMessages, this.fleet.size);
    const server = new CpuMeter([this.server.pid]);
    const generator = new CpuMeter(this.fleet.pids);
    const machineStart = machineBusySeconds();
    const reports = await this.fleet.all(
      senders.map((share, i) => ({
        type: 'load',
        clients,
        mode,
        rate: (rate * share) / total,
        maxMessages: share > 0 ? (budgets[i] ?? 0) : 0,
        durationMs: share > 0 ? settings.durationMs : 0,
        messageSize: settings.messageSize,
        drainMs: settings.drainMs,
      })),
      'loaded',
      settings.durationMs + settings.drainMs + 60_000,
      progress,
    );
    const serverCpu = server.stop();
    const generatorCpu = generator.stop();
    const machineCores = (machineBusySeconds() - machineStart) / serverCpu.wallSeconds;
    return loadFigures(mode, mode === 'rate' ? rate : null, reports, {
      serverSeconds: serverCpu.cpuSeconds,
      serverCores: serverCpu.cores,
      generatorCores: generatorCpu.cores,
      otherCores: Math.max(0, machineCores - serverCpu.cores - generatorCpu.cores),
    });
  }

  /** Stops the token clients (their held polls are abandoned); their pairs are gone. */
  async release(clients: Exclude<ClientKind, 'session'>): Promise<ReleaseFigures> {
    const reports = await this.fleet.all(
      this.fleet.pids.map(() => ({ type: 'release' })),
      'released',
      30_000,
    );
    this.#pairs.delete(clients);
    const firstError = reports.find((r) => r.firstError !== undefined)?.firstError;
    return {
      clients: reports.reduce((total, r) => total + r.clients, 0),
      pollErrors: reports.reduce((total, r) => total + r.pollErrors, 0),
      ...(firstError !== undefined && { firstError }),
    };
  }

  /** Why the server is not there any more, with what it last said; undefined while it runs. */
  diagnose(): string | undefined {
    const exited = this.server.exited();
    if (!exited) return undefined;
    const tail = tailOf(this.server).trim();
    return `${this.name} died (${exited})${tail ? `; its stderr ends with:\n${tail}` : ' and wrote nothing to stderr'}`;
  }

  /** Stops the workers (their sockets close), then the server: how long its shutdown took. */
  async stop(): Promise<StopReport> {
    await this.fleet.stop();
    // Long enough for a graceful shutdown of thousands of sessions (and a --cpu-prof write).
    return stopChild(this.server.child, 30_000);
  }
}
