/**
 * A real nginx for a test: Debian's `nginx-light` (`.ci/run` installs it when missing),
 * run as the test's own process — one process in the foreground (`master_process off`),
 * its config, pid, error log and temp files in a temp directory — listening on a free
 * loopback port. It carries the test's process marker, so the leak check fails the file
 * if it outlives it: every test that starts one stops it (`await nginx.stop()`).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './eventually.js';
import { freePort, markedEnv, portAnswers } from './processes.js';

/** Where Debian's package puts it; PATH otherwise. */
export const NGINX = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';

/** How long nginx may take to accept connections. */
const START_TIMEOUT_MS = 10_000;

export interface TestNginx {
  /** `http://127.0.0.1:<port>/`. */
  readonly url: URL;
  /** What nginx logged (warnings and errors: an upstream that failed, a timeout). */
  errorLog(): string;
  /** SIGTERM (nginx's fast shutdown: open streams are cut), waits for it to exit, and asserts the port closed. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts nginx with `site` — the contents of its `http {}` block (upstreams and
 * servers), made for the `listen` address it is given.
 */
export async function startNginx(site: (listen: string) => string): Promise<TestNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-chat-nginx-'));
  const port = await freePort();
  const url = new URL(`http://127.0.0.1:${port}/`);
  const errorLog = join(dir, 'error.log');
  // Every path nginx writes is in `dir`; as root it runs as root (no `user`: there are no workers to switch).
  const conf = [
    'daemon off;',
    'master_process off;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${errorLog} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${dir}/${kind};`),
    site(`127.0.0.1:${port}`),
    '}',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'nginx.conf'), conf);
  // `-e`: nginx writes to its built-in error log before it reads the config.
  const child = spawn(NGINX, ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', errorLog], {
    env: { ...process.env, ...markedEnv() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let failure: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      failure = error;
      resolve();
    });
  });
  const readLog = () => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '');
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await portAnswers(url))) {
    if (failure || child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      const why = `nginx did not start (${NGINX}): ${failure?.message ?? ''}${output}${readLog()}\n${conf}`;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(why);
    }
    await sleep(20);
  }
  let stopped = false;
  return {
    url,
    errorLog: readLog,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      if (await portAnswers(url)) throw new Error(`nginx exited, yet ${url.host} still answers`);
    },
  };
}
