#!/usr/bin/env node
/**
 * `mcp-chat`: reads flags and env, starts the server, prints where it listens, and
 * shuts down cleanly on SIGINT/SIGTERM.
 */
import { ConfigError, helpText, loadConfig } from './config.js';
import { listen } from './listen.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`mcp-chat: ${error.message}\n`);
    process.exit(2);
  }
  if (config.help) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  const { help: _help, ...settings } = config;
  const server = await listen({ config: settings });
  process.stdout.write(`mcp-chat listening on ${server.url.href}\n`);

  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    server.services.log.info({ signal }, 'shutting down');
    await server.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`mcp-chat: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
