/**
 * The bench's child processes — servers under test, load workers, redis-server — tracked
 * in one place and killed when the bench exits for any reason; and what Linux says about
 * a process: CPU time from /proc/<pid>/stat (utime + stime, in clock ticks of 1/100 s),
 * resident memory from /proc/<pid>/status (VmRSS), plus this process's open-file limit and
 * the loopback port range, which bound how many sessions one run can hold.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type SpawnedServer, type SpawnOptions, spawnServer } from '../test/support/serverProcess.js';

const children = new Set<ChildProcess>();

/** Kills `child` with the others when the bench exits. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping the servers and workers\n`);
    process.exit(130);
  });
}

/** A server under test (test/support/serverProcess.ts), killed with the others when the bench exits. */
export function startServer(options: SpawnOptions): Promise<SpawnedServer> {
  return spawnServer({ ...options, onSpawn: track });
}

/** Forks a compiled bench module (a load worker) with an IPC channel. */
export function forkModule(modulePath: string, execArgv: string[] = []): ChildProcess {
  return track(fork(modulePath, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' }));
}

/** The last 2,000 characters a server printed, for a diagnosis. */
export const tailOf = (server: SpawnedServer) => server.output().slice(-2000);

const CLOCK_TICKS_PER_S = 100;

function readProc(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`process ${pid} is gone (no /proc/${pid}/${file})`);
    throw error;
  }
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readProc(pid, 'stat');
  // Field 2 (comm) may contain spaces; the fields after it start past the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After comm, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/** Resident set size in KiB. */
export function rssKiB(pid: number): number {
  const status = readProc(pid, 'status');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/** The soft limit on open files (`ulimit -n`), which children inherit. */
export function openFileLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  return !match || match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
}

/** How many local ports one client address can use towards one server port. */
export function ephemeralPortCount(): number {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low !== undefined && high !== undefined ? high - low + 1 : 28_232;
  } catch {
    return 28_232;
  }
}

/** CPU used by a set of processes between two readings, in cores (1.0 = one core busy). */
export class CpuMeter {
  readonly #start: number[];
  readonly #startedAt = performance.now();

  constructor(private readonly pids: number[]) {
    this.#start = pids.map(cpuSeconds);
  }

  stop(): { cpuSeconds: number; cores: number; wallSeconds: number } {
    const used = this.pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - (this.#start[i] ?? 0), 0);
    const wallSeconds = (performance.now() - this.#startedAt) / 1000;
    return { cpuSeconds: used, cores: wallSeconds > 0 ? used / wallSeconds : 0, wallSeconds };
  }
}

/** CPU seconds all processes on the machine have used (from /proc/stat's first line). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / CLOCK_TICKS_PER_S;
}
