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
  const raise = (flag: string, value: number) => {
    if (!has(flag)) return;
    args.push(`--${flag}`, String(value));
    raised.push(`--${flag} ${value} (default ${defaultOf(help, flag)})`);
  };
  raise('messages-per-second', 10_000);
  raise('message-burst', 100_000);
  raise('new-users-per-minute', 1_000_000);
  raise('max-per-address', 1_000_000);
  if (!(defaultOf(help, 'max-sessions') >= sessionsOpened + 64)) raise('max-sessions', sessionsOpened + 1024);
  return raised.length === 0
    ? { args }
    : { args, note: `mcp-chat ran with ${raised.join(', ')}, so that its limits never refuse the bench’s load; the limiters still run.` };
}
