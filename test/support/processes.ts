/**
 * The processes a test starts, and the check that none outlives its test file.
 *
 * Every process a test starts through `startServerProcess` carries an environment
 * marker naming the test; whatever it starts in turn (npm → sh → node) inherits it.
 * After each test file, `survivorsOf` finds any process still carrying one of that
 * file's markers — including a server that its npm parent left behind — so the check
 * (test/support/leakCheck.ts) can fail naming the test. Only leakCheck.ts, the vitest
 * setup file, knows the running test (`markTestsBy`), so this file needs no vitest and the
 * bench shares it (its processes carry no marker).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { type SpawnedServer, type SpawnOptions, spawnServer } from './serverProcess.js';

const MARKER = 'MCP_CHAT_TEST_SPAWN';
let spawned = 0;

let currentTest: (() => { testPath?: string | undefined; currentTestName?: string | undefined }) | undefined;

/** Tells this file where the running test is (vitest's `expect.getState`); leakCheck.ts does, before every test file. */
export function markTestsBy(state: NonNullable<typeof currentTest>): void {
  currentTest = state;
}

/** The marker for a process started now by the running test: its file, its name, a number; none outside the tests. */
function markerForCurrentTest(): string | undefined {
  if (!currentTest) return undefined;
  const { testPath, currentTestName } = currentTest();
  return `${testPath ?? '?'}::${currentTestName ?? '(outside a test)'}::${process.pid}.${++spawned}`;
}

export interface Survivor {
  pid: number;
  test: string;
  command: string;
}

/** Processes still alive that a test of `testPath` started (directly or not). */
export function survivorsOf(testPath: string): Survivor[] {
  const found: Survivor[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let environ: string;
    let command: string;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    const marker = environ.split('\0').find((line) => line.startsWith(`${MARKER}=${testPath}::`));
    if (!marker || isZombie(Number(entry))) continue;
    const test = marker.slice(MARKER.length + 1 + testPath.length + 2).replace(/::[\d.]+$/, '');
    found.push({ pid: Number(entry), test, command });
  }
  return found;
}

function isZombie(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^\d+ \(.*\) /, ' '));
  } catch {
    return true;
  }
}

/** Whether a process with this id is alive (and not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !isZombie(pid);
}

/** A port free on the loopback interface a moment ago. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Whether anything accepts connections on this URL's port now. */
export function portAnswers(url: URL): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface ServerProcess extends SpawnedServer {
  /** The pid of the node process that serves (under npm, not the pid of npm). */
  readonly serverPid: number;
}

/**
 * Starts the built server as a user would (see serverProcess.ts), marked with
 * the running test's name, and finds the pid of the node process that serves.
 */
export async function startServerProcess(options: SpawnOptions = {}): Promise<ServerProcess> {
  const marker = markerForCurrentTest();
  if (!marker) throw new Error('startServerProcess marks its process for the leak check: call it from a test');
  const server = await spawnServer({ ...options, env: { ...options.env, [MARKER]: marker } });
  const [serverPid] = pidsWith(marker, 'dist/src/cli.js');
  if (serverPid === undefined) throw new Error(`started, but no process runs dist/src/cli.js: ${server.output()}`);
  return { ...server, serverPid };
}

/** Processes carrying exactly `marker` whose command line contains `needle`. */
function pidsWith(marker: string, needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (!environ.split('\0').includes(`${MARKER}=${marker}`)) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** The environment marker for a process a test starts itself (e.g. a client CLI); empty outside the tests. */
export function markedEnv(): NodeJS.ProcessEnv {
  const marker = markerForCurrentTest();
  return marker ? { [MARKER]: marker } : {};
}
