/**
 * The load-generator processes for one server under test: forked from
 * dist/bench/loadWorker.js, driven one command per worker at a time, each answer
 * awaited against a deadline. A worker that dies or overstays fails the bench.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopChild } from '../test/support/serverProcess.js';
import { forkModule } from './children.js';
import type { WorkerCommand, WorkerReply } from './workerProtocol.js';

const WORKER_MODULE = fileURLToPath(new URL('./loadWorker.js', import.meta.url));

type Answer = Exclude<WorkerReply, { type: 'progress' } | { type: 'failed' }>;

export class WorkerFleet {
  readonly #workers: ChildProcess[];
  readonly #progress: number[];

  constructor(count: number, execArgv: string[] = []) {
    this.#workers = Array.from({ length: count }, () => forkModule(WORKER_MODULE, execArgv));
    this.#progress = this.#workers.map(() => 0);
  }

  get size(): number {
    return this.#workers.length;
  }

  get pids(): number[] {
    return this.#workers.map((worker) => worker.pid!);
  }

  /** Sends `command` to worker `index` and resolves with its answer. */
  ask<T extends Answer['type']>(
    index: number,
    command: WorkerCommand,
    expect: T,
    deadlineMs: number,
    onProgress: (done: number) => void = () => {},
  ): Promise<Extract<Answer, { type: T }>> {
    const worker = this.#workers[index];
    if (!worker) throw new Error(`no worker ${index}`);
    this.#progress[index] = 0;
    return new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`load worker ${index} did not finish '${command.type}' within ${Math.round(deadlineMs / 1000)} s`));
      }, deadlineMs);
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        finish();
        reject(new Error(`load worker ${index} exited (${signal ?? code}) during '${command.type}'`));
      };
      const onMessage = (reply: WorkerReply) => {
        if (reply.type === 'progress') {
          this.#progress[index] = reply.done;
          onProgress(this.#progress.reduce((sum, done) => sum + done, 0));
          return;
        }
        finish();
        if (reply.type === 'failed') reject(new Error(`load worker ${index}: ${reply.message}`));
        else if (reply.type !== expect) reject(new Error(`load worker ${index} answered '${reply.type}' to '${command.type}'`));
        else resolve(reply as Extract<Answer, { type: T }>);
      };
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      worker.send(command);
    });
  }

  /** Sends each worker its command at once and waits for all answers. */
  all<T extends Answer['type']>(
    commands: WorkerCommand[],
    expect: T,
    deadlineMs: number,
    onProgress?: (done: number) => void,
  ): Promise<Extract<Answer, { type: T }>[]> {
    return Promise.all(commands.map((command, index) => this.ask(index, command, expect, deadlineMs, onProgress)));
  }

  async stop(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => stopChild(worker, 5_000)));
  }
}
