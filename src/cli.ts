#!/usr/bin/env node
/**
 * `mcp-chat`: reads flags and env, builds the server (src/server.ts) and serves it
 * (src/http/listen.ts) — with `--inspect`, the Stately inspector bridge too — prints where
 * they listen, and shuts down cleanly on SIGINT/SIGTERM.
 */
import { ConfigError, helpText, loadConfig } from './config.js';
import { listen } from './http/listen.js';
import type { InspectorBridge } from './ops/inspect.js';
import { createChatServer } from './server.js';

/** Starts the inspector bridge; loaded only when asked for, so that it costs nothing when off. */
async function startInspectorOrExit(port: number): Promise<InspectorBridge> {
  const { InspectorPortError, startInspector } = await import('./ops/inspect.js');
  try {
    return await startInspector({ port });
  } catch (error) {
    if (!(error instanceof InspectorPortError)) throw error;
    process.stderr.write(`mcp-chat: ${error.message}\n`);
    process.exit(2);
  }
}

/** The settings of this run, or exit 2 naming what is wrong with them. */
function configOrExit(): ReturnType<typeof loadConfig> {
  try {
    return loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`mcp-chat: ${error.message}\n`);
    process.exit(2);
  }
}

async function main(): Promise<void> {
  const config = configOrExit();
  if (config.help) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  const { help: _help, ...settings } = config;
  const inspector = settings.inspect === null ? undefined : await startInspectorOrExit(settings.inspect);
  const server = await listen(await createChatServer({ config: settings, ...(inspector && { inspect: inspector.inspect }) }));
  process.stdout.write(`mcp-chat listening on ${server.url.href}\n`);
  if (inspector)
    process.stdout.write(
      `mcp-chat inspector: open ${inspector.url} in a browser (the bridge listens on 127.0.0.1 only; the inspector UI loads from stately.ai)\n`,
    );

  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    server.services.log.info({ signal }, 'shutting down');
    await server.close();
    await inspector?.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`mcp-chat: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
