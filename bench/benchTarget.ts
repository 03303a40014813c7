/**
 * One server under test with its own load-generator processes (loadWorker.ts, forked and
 * driven one command per worker at a time, each answer awaited against a deadline): start
 * it, open idle sessions and weigh them, pair users of a client kind, run load phases,
 * weigh waiting users — each step with its progress line, measured from the client side
 * and, for CPU and memory, from /proc. A worker that dies or overstays fails the bench.
 */
import type { ChildProcess } from 'node:child_process';
import { on } from 'node:events';
import { fileURLToPath } from 'node:url';
import { type Dispatcher, request } from 'undici';
import { type SpawnedServer, type StopReport, stopChild } from '../test/support/serverProcess.js';
import type { TokenClientKind } from './leanSession.js';
import type { ClientKind, LoadReport, WorkerCommand, WorkerReply } from './loadWorker.js';
import type { BenchOptions } from './options.js';
import { CpuMeter, forkModule, machineBusySeconds, rssKiB, startServer, tailOf } from './procStats.js';
import type { ProgressLine } from './table.js';
import { brief as show } from './table.js';
import { percentiles, sleep } from './timing.js';

export interface TargetSpec {
  name: string;
  /** The compiled entry point `node` runs, its node flags (which preload forcedGc.js: a full GC on SIGUSR2), and its own flags (after `--port 0`). */
  entry: string;
  nodeArgs: string[];
  args: string[];
  /** Node flags for the load workers (e.g. --cpu-prof). */
  workerExecArgv: string[];
}

export interface LoadSettings {
  durationMs: number;
  maxMessages: number;
  messageSize: number;
}

export const KIND_LABELS: Record<ClientKind, string> = {
  session: 'session + GET stream',
  'fresh-session': 'fresh session per call',
  'no-session': 'no session',
  modern: 'modern (2026-07-28)',
};

const WORKER = fileURLToPath(new URL('./loadWorker.js', import.meta.url));
type Reply = WorkerReply | { type: 'progress'; done: number } | { type: 'failed'; message: string };

/** Splits `total` into `parts` near-equal whole shares. */
const split = (total: number, parts: number) =>
  Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
const sum = <T>(items: readonly T[], pick: (item: T) => number) => items.reduce((total, item) => total + pick(item), 0);
const perUnit = (delta: number, count: number) => (count > 0 ? delta / count : NaN);

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

/** Adds up the workers' reports of one load phase; CPU comes from /proc meanwhile. */
function loadFigures(
  offeredRate: number | null,
  reports: LoadReport[],
  cpu: { serverSeconds: number; serverCores: number; generatorCores: number; otherCores: number },
) {
  const busy = reports.filter((r) => r.senders > 0);
  const startedAt = Math.min(...busy.map((r) => r.startedAt));
  const seconds = Math.max(0.001, (Math.max(...busy.map((r) => Math.max(r.lastReceivedAt, r.sendEndedAt))) - startedAt) / 1000);
  const counted = ['senders', 'sent', 'acked', 'failed', 'unsent', 'received', 'duplicated', 'outOfOrder', 'lost', 'misrouted'] as const;
  const counts = Object.fromEntries(counted.map((key) => [key, sum(reports, (r) => r[key])])) as Record<(typeof counted)[number], number>;
  const [httpRequests, toolCalls] = [sum(reports, (r) => r.httpRequests), sum(reports, (r) => r.toolCalls)];
  return {
    offeredRate,
    ...counts,
    drained: reports.every((r) => r.drained),
    firstError: reports.find((r) => r.firstError)?.firstError,
    seconds,
    throughput: counts.received / seconds,
    latencyMs: percentiles(reports.flatMap((r) => r.latencyMs)),
    latencyFromDueMs: percentiles(reports.flatMap((r) => r.fromDueMs)),
    ...cpu,
    serverCpuUsPerMessage: counts.received > 0 ? (cpu.serverSeconds * 1e6) / counts.received : NaN,
    generatorLoopDelayP99Ms: Math.max(...busy.map((r) => r.loopDelayP99Ms)),
    liveStreams: sum(reports, (r) => r.liveStreams),
    httpRequestsPerSecond: httpRequests / seconds,
    toolCallsPerSecond: toolCalls / seconds,
  };
}
export type LoadFigures = ReturnType<typeof loadFigures>;

export class BenchTarget {
  readonly #workers: ChildProcess[];
  /** Sessions opened per worker. */
  readonly #sessions: number[];
  /** Pairs per worker, by client kind. */
  readonly #pairs = new Map<ClientKind, number[]>();
  readonly #progress: number[];

  private constructor(
    readonly name: string,
    readonly server: SpawnedServer,
    workers: number,
    execArgv: string[],
    private readonly progress: ProgressLine,
  ) {
    this.#workers = Array.from({ length: workers }, () => forkModule(WORKER, execArgv));
    this.#sessions = this.#workers.map(() => 0);
    this.#progress = this.#workers.map(() => 0);
  }

  static async start(spec: TargetSpec, workers: number, progress: ProgressLine): Promise<BenchTarget> {
    const server = await startServer({ entry: spec.entry, nodeArgs: spec.nodeArgs, args: spec.args });
    return new BenchTarget(spec.name, server, workers, spec.workerExecArgv, progress);
  }

  get url(): URL {
    return this.server.url;
  }

  /** Sends `command` to worker `index` and resolves with its answer (of type `expect`); a worker that fails, dies or overstays rejects. */
  async #ask<T extends WorkerReply['type']>(index: number, command: WorkerCommand, expect: T, deadlineMs: number) {
    const worker = this.#workers[index]!;
    const failed = (why: string) => new Error(`load worker ${index} ${why} during '${command.type}'`);
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(failed(`did not finish within ${Math.round(deadlineMs / 1000)} s`)), deadlineMs);
    const onExit = (code: number | null, signal: string | null) => stop.abort(failed(`exited (${signal ?? code})`));
    worker.once('exit', onExit);
    this.#progress[index] = 0;
    worker.send(command);
    try {
      for await (const [reply] of on(worker, 'message', { signal: stop.signal }) as AsyncIterable<[Reply]>) {
        if (reply.type === 'progress') {
          this.#progress[index] = reply.done;
          this.progress.update(sum(this.#progress, (done) => done));
        } else if (reply.type === 'failed') throw failed(`failed: ${reply.message}`);
        else if (reply.type !== expect) throw failed(`answered '${reply.type}'`);
        else return reply as Extract<WorkerReply, { type: T }>;
      }
      throw failed('went silent');
    } catch (error) {
      throw stop.signal.reason ?? error;
    } finally {
      clearTimeout(timer);
      worker.off('exit', onExit);
    }
  }

  /** Sends each worker its command at once and waits for all answers. */
  #all<T extends WorkerReply['type']>(commands: WorkerCommand[], expect: T, deadlineMs: number) {
    return Promise.all(commands.map((command, index) => this.#ask(index, command, expect, deadlineMs)));
  }

  async health(): Promise<Record<string, unknown>> {
    const response = await request(new URL('/healthz', this.url), { headersTimeout: 10_000, bodyTimeout: 10_000 });
    return (await response.body.json()) as Record<string, unknown>;
  }

  /** RSS (KiB, from /proc) and heap used (bytes: the floor and the peer say it in /healthz, mcp-chat at /metrics; null if neither). */
  async #weigh() {
    const { memory } = (await this.health()) as { memory?: { heapUsed?: number } };
    return { rssKiB: rssKiB(this.server.pid), heap: memory?.heapUsed ?? (await metricGauge(this.url, 'nodejs_heap_size_used_bytes')) };
  }

  /** RSS and heap per unit (KiB) between two weighings. */
  static #per(before: { rssKiB: number; heap: number | null }, after: typeof before, count: number) {
    const heap = before.heap === null || after.heap === null ? null : perUnit((after.heap - before.heap) / 1024, count);
    return { rssBeforeKiB: before.rssKiB, rssAfterKiB: after.rssKiB, rss: perUnit(after.rssKiB - before.rssKiB, count), heap };
  }

  /** A full GC in the server (forcedGc.js), then a pause: the signal is handled before a request sent after it. */
  async #collectGarbage(): Promise<void> {
    process.kill(this.server.pid, 'SIGUSR2');
    await sleep(50);
  }

  /** Opens `count` sessions (initialize, initialized, live GET stream) across the workers. */
  async #open(count: number) {
    const cpu = new CpuMeter([this.server.pid]);
    const reports = await this.#all(
      split(count, this.#workers.length).map((share) => ({ type: 'open', url: this.url.href, count: share })),
      'opened',
      360_000,
    );
    const { cpuSeconds } = cpu.stop();
    for (const [i, report] of reports.entries()) this.#sessions[i]! += report.opened;
    const opened = sum(reports, (r) => r.opened);
    const seconds = (Math.max(...reports.map((r) => r.endedAt)) - Math.min(...reports.map((r) => r.startedAt))) / 1000;
    return {
      sessions: opened,
      failed: sum(reports, (r) => r.failed),
      firstError: reports.find((r) => r.firstError)?.firstError,
      liveStreams: sum(reports, (r) => r.liveStreams),
      opensPerSecond: opened / Math.max(0.001, seconds),
      openLatencyMs: percentiles(reports.flatMap((r) => r.latencyMs)),
      serverCpuUsPerOpen: perUnit(cpuSeconds * 1e6, opened),
    };
  }

  /**
   * The relay part on one server: opens the warm-up sessions (JIT, keep-alive connections),
   * weighs the server, opens the idle sessions with live streams, lets it settle (what
   * holding them costs, with no request coming in, is measured meanwhile), weighs it again
   * (no GC forced); then pairs some of them, warms up and saturates.
   */
  async measureSessions(options: BenchOptions, settings: LoadSettings) {
    const [warmup, count, settleMs] = [options.warmupSessions, options.sessions, options.quick ? 500 : 3000];
    this.progress.begin(`${this.name} · open ${show(count)} idle sessions`, 'sessions', { total: count });
    const warm = await this.#open(warmup);
    if (warm.failed > 0) throw new Error(`${this.name}: ${warm.failed} warm-up sessions failed to open: ${warm.firstError}`);
    await sleep(settleMs / 2);
    const before = await this.#weigh();
    const open = await this.#open(count);
    const idle = new CpuMeter([this.server.pid]);
    await sleep(settleMs);
    const idleServerCores = idle.stop().cores;
    const { rss, heap, ...weighed } = BenchTarget.#per(before, await this.#weigh(), open.sessions);
    const { sessions } = await this.health();
    const memory = {
      idleSessions: open.sessions,
      ...weighed,
      rssPerSessionKiB: rss,
      heapPerSessionKiB: heap,
      serverSessions: typeof sessions === 'number' ? sessions : null,
      idleServerCores,
    };
    if (open.failed > 0) this.progress.note(`  ${open.failed} opens failed: ${open.firstError}`);
    this.progress.end(
      `${show(open.opensPerSecond)} opens/s, ${show(memory.rssPerSessionKiB * 1.024, 1)} KB RSS per session, ${show(open.liveStreams)} live streams`,
    );
    const run = await this.pairAndSaturate(Math.min(options.pairs, Math.floor((open.sessions + warmup) / 2)), 'session', options, settings);
    const health = await this.health();
    // Held at once: streams still live after saturation, as both sides count them.
    const maxConcurrentSessions = Math.min(
      run.saturate.liveStreams,
      typeof health.sessions === 'number' ? health.sessions : Number.POSITIVE_INFINITY,
    );
    return {
      name: this.name,
      open,
      memory,
      maxConcurrentSessions,
      ...run,
      rate: undefined as LoadFigures | undefined,
      shutdown: undefined as StopReport | undefined,
    };
  }

  /** Pairs `pairs` pairs of `clients`, one worker at a time so that every pair is inside one worker: of the sessions opened, or of token clients made now. */
  async pair(pairs: number, clients: ClientKind = 'session') {
    this.progress.begin(`${this.name} · ${clients === 'session' ? '' : `${KIND_LABELS[clients]} · `}pair ${show(pairs)}`, 'pairs', {
      total: pairs,
    });
    const shares = split(pairs, this.#workers.length).map((share, i) =>
      clients === 'session' ? Math.min(share, Math.floor(this.#sessions[i]! / 2)) : share,
    );
    const formed = this.#workers.map(() => 0);
    this.#pairs.set(clients, formed);
    const figures = { pairs: 0, failed: 0, pairsPerSecond: 0, firstError: undefined as string | undefined };
    let seconds = 0;
    for (const [i, share] of shares.entries()) {
      if (share === 0) continue;
      const report = await this.#ask(i, { type: 'pair', clients, url: this.url.href, pairs: share, deadlineMs: 60_000 }, 'paired', 90_000);
      formed[i] = report.pairs;
      figures.pairs += report.pairs;
      figures.failed += report.failed;
      figures.firstError ??= report.firstError;
      seconds += (report.endedAt - report.startedAt) / 1000;
    }
    figures.pairsPerSecond = figures.pairs / Math.max(0.001, seconds);
    this.progress.end(
      `${show(figures.pairsPerSecond)} pairs/s${figures.firstError ? ` (${figures.failed} failed: ${figures.firstError})` : ''}`,
    );
    if (figures.pairs === 0) throw new Error(`${this.name}: no ${clients} pairs formed: ${figures.firstError}`);
    return figures;
  }

  /** One load phase over every pair of `clients`: `rate` is the total offered msgs/s (rate mode). */
  async load(
    label: string,
    mode: 'saturate' | 'rate',
    rate: number,
    settings: LoadSettings,
    clients: ClientKind = 'session',
  ): Promise<LoadFigures> {
    this.progress.begin(`${this.name} · ${clients === 'session' ? '' : `${KIND_LABELS[clients]} · `}${label}`, 'msgs', {
      durationMs: settings.durationMs,
    });
    const senders = (this.#pairs.get(clients) ?? []).map((pairs) => pairs * 2);
    const total = sum(senders, (n) => n);
    if (total === 0) throw new Error(`${this.name}: no ${clients} pairs to load`);
    const budgets = split(settings.maxMessages, this.#workers.length);
    const server = new CpuMeter([this.server.pid]);
    const generator = new CpuMeter(this.#workers.map((worker) => worker.pid!));
    const machineStart = machineBusySeconds();
    const reports = await this.#all(
      senders.map((share, i) => ({
        type: 'load',
        clients,
        mode,
        rate: (rate * share) / total,
        maxMessages: share > 0 ? budgets[i]! : 0,
        durationMs: share > 0 ? settings.durationMs : 0,
        messageSize: settings.messageSize,
      })),
      'loaded',
      settings.durationMs + 65_000,
    );
    const serverCpu = server.stop();
    const generatorCores = generator.stop().cores;
    const machineCores = (machineBusySeconds() - machineStart) / serverCpu.wallSeconds;
    const f = loadFigures(mode === 'rate' ? rate : null, reports, {
      serverSeconds: serverCpu.cpuSeconds,
      serverCores: serverCpu.cores,
      generatorCores,
      otherCores: Math.max(0, machineCores - serverCpu.cores - generatorCores),
    });
    const wrong = f.lost + f.duplicated + f.outOfOrder + f.misrouted;
    this.progress.end(
      `${show(f.throughput)} msgs/s, p50 ${show(f.latencyMs.p50, 2)} ms, p99 ${show(f.latencyMs.p99, 2)} ms, server ${show(f.serverCores, 2)} cores, ${show(f.toolCallsPerSecond)} tool calls/s` +
        (wrong > 0 ? `, LOST ${f.lost} DUP ${f.duplicated} OOO ${f.outOfOrder} MISROUTED ${f.misrouted}` : '') +
        (f.failed > 0 ? `, ${f.failed} sends failed (${f.firstError})` : ''),
    );
    return f;
  }

  /** Pairs `pairs` pairs of `clients`, warms up (0.5 s quick, 2 s full), saturates. */
  async pairAndSaturate(pairs: number, clients: ClientKind, options: BenchOptions, settings: LoadSettings) {
    const pair = await this.pair(pairs, clients);
    const warmup = await this.load('warm-up', 'saturate', 0, { ...settings, durationMs: options.quick ? 500 : 2000 }, clients);
    return { pair, warmup, saturate: await this.load('saturate', 'saturate', 0, settings, clients) };
  }

  /** One kind of token client: pair, warm up, saturate, then stop its polls. */
  async measureKind(kind: TokenClientKind, options: BenchOptions, settings: LoadSettings) {
    const run = await this.pairAndSaturate(options.kindPairs, kind, options, settings);
    const release = await this.#release(kind);
    if (release.pollErrors > 0)
      this.progress.note(`  ${KIND_LABELS[kind]}: ${release.pollErrors} wait_for_events calls failed: ${release.firstError}`);
    return { kind, ...run, release };
  }

  /** Stops the token clients of `kind` (their held polls are abandoned): how many of their polls failed. */
  async #release(kind: TokenClientKind) {
    const reports = await this.#all(
      this.#workers.map(() => ({ type: 'release' })),
      'released',
      30_000,
    );
    this.#pairs.delete(kind);
    return {
      clients: sum(reports, (r) => r.clients),
      pollErrors: sum(reports, (r) => r.pollErrors),
      firstError: reports.find((r) => r.firstError)?.firstError,
    };
  }

  /**
   * Weighs `count` users of a token client kind as they wait, on a server already warm:
   * after a full GC, enters them — in pairs, each then holding a wait_for_events — lets it
   * settle, weighs it again after a full GC, and releases them.
   */
  async weighUsers(kind: TokenClientKind, count: number, settleMs: number) {
    // Collected twice, a pause apart: the pages that a load phase before grew are given
    // back to the system before the first weighing, not during the second.
    await this.#collectGarbage();
    await sleep(settleMs / 2);
    await this.#collectGarbage();
    const before = await this.#weigh();
    const pair = await this.pair(Math.floor(count / 2), kind);
    await sleep(settleMs);
    await this.#collectGarbage();
    const users = 2 * pair.pairs;
    const { rss, heap, ...weighed } = BenchTarget.#per(before, await this.#weigh(), users);
    await this.#release(kind);
    const figures = {
      users,
      failed: pair.failed,
      firstError: pair.firstError,
      usersPerSecond: 2 * pair.pairsPerSecond,
      ...weighed,
      rssPerUserKiB: rss,
      heapPerUserKiB: heap,
    };
    this.progress.note(`  ${show(rss * 1.024, 1)} KB RSS and ${show(heap === null ? NaN : heap * 1.024, 1)} KB heap per waiting user`);
    return figures;
  }

  /** Why the server is not there any more, with what it last said; undefined while it runs. */
  diagnose(): string | undefined {
    const exited = this.server.exited();
    const tail = exited && tailOf(this.server).trim();
    return exited && `${this.name} died (${exited})${tail ? `; its stderr ends with:\n${tail}` : ' and wrote nothing to stderr'}`;
  }

  /** Stops the workers (their sockets close), then the server: how long its shutdown took (long enough for thousands of sessions and a --cpu-prof write). */
  async stop() {
    await Promise.all(this.#workers.map((worker) => stopChild(worker, 5_000)));
    return stopChild(this.server.child, 30_000);
  }
}

export type KindRun = Awaited<ReturnType<BenchTarget['measureKind']>>;
export type UserFigures = Awaited<ReturnType<BenchTarget['weighUsers']>>;
export type ServerRun = Awaited<ReturnType<BenchTarget['measureSessions']>>;
