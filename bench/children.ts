/**
 * The bench's child processes — servers under test, load workers, redis-server — tracked
 * in one place and killed when the bench exits for any reason.
 */
import { type ChildProcess, fork } from 'node:child_process';
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
