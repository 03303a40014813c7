/**
 * The flags mcp-chat is started with for a bench run. Its per-user message rate limit
 * (a few messages per second by default) and its limit on new users per client address
 * and on what one address holds at once (every bench user comes from 127.0.0.1) would
 * refuse the bench's own load, so they are
 * raised — the limiters still run, they just never say no — and the session cap is
 * lifted above the sessions the run opens. Only flags this build lists
 * in `--help` are passed, so the bench runs against older and newer builds alike.
 */
import { execFileSync } from 'node:child_process';

export interface McpChatFlags {
  args: string[];
  note?: string;
}

/** What `mcp-chat --help` prints. */
export function helpOf(cliPath: string): string {
  try {
    return execFileSync(process.execPath, [cliPath, '--help'], { encoding: 'utf8', timeout: 15_000 });
  } catch (error) {
    throw new Error(`node ${cliPath} --help failed (is the build current? run npm run build): ${(error as Error).message}`);
  }
}

/** A flag's default as `--help` lists it; NaN when it lists none. */
export const defaultOf = (help: string, flag: string) =>
  Number(new RegExp(`^\\s*--${flag}\\b.*\\(default: (\\d+)\\)`, 'm').exec(help)?.[1] ?? NaN);

export function mcpChatFlags(cliPath: string, sessionsOpened: number): McpChatFlags {
  const help = helpOf(cliPath);
  const has = (flag: string) => new RegExp(`^\\s*--${flag}\\b`, 'm').test(help);
  const args = ['--log-level', 'silent'];
  const raised: string[] = [];
  if (has('messages-per-second')) {
    args.push('--messages-per-second', '10000');
    raised.push(`--messages-per-second 10000 (default ${defaultOf(help, 'messages-per-second')})`);
  }
  if (has('message-burst')) {
    args.push('--message-burst', '100000');
    raised.push(`--message-burst 100000 (default ${defaultOf(help, 'message-burst')})`);
  }
  if (has('new-users-per-minute')) {
    args.push('--new-users-per-minute', '1000000');
    raised.push(`--new-users-per-minute 1000000 (default ${defaultOf(help, 'new-users-per-minute')})`);
  }
  if (has('max-per-address')) {
    args.push('--max-per-address', '1000000');
    raised.push(`--max-per-address 1000000 (default ${defaultOf(help, 'max-per-address')})`);
  }
  const cap = defaultOf(help, 'max-sessions');
  if (has('max-sessions') && !(cap >= sessionsOpened + 64)) {
    args.push('--max-sessions', String(sessionsOpened + 1024));
    raised.push(`--max-sessions ${sessionsOpened + 1024} (default ${cap})`);
  }
  return raised.length === 0
    ? { args }
    : { args, note: `mcp-chat ran with ${raised.join(', ')}, so that its limits never refuse the bench’s load; the limiters still run.` };
}
