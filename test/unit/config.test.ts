import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, helpText, loadConfig, settings } from '../../src/config.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('configuration in one place', () => {
  it.each(settings.map((s) => [s.flag, s.env] as const))('--%s (%s) is in --help and in the README table', (flag, env) => {
    expect(helpText()).toContain(`--${flag}`);
    expect(helpText()).toContain(env);
    expect(readme).toMatch(new RegExp(`\\| \`--${flag}(\\[=PORT\\])?\` \\| \`${env}\` \\|`));
  });

  it('takes flags over env, and env over defaults', () => {
    expect(loadConfig([], {}).port).toBe(defaultConfig.port);
    expect(loadConfig([], { PORT: '4000' }).port).toBe(4000);
    expect(loadConfig(['--port', '5000'], { PORT: '4000' }).port).toBe(5000);
    expect(loadConfig(['--allowed-origins', 'https://a.example, https://b.example:*'], {}).allowedOrigins).toEqual([
      'https://a.example',
      'https://b.example:*',
    ]);
    expect(loadConfig(['--inspect'], {}).inspect).toBe(8080);
    expect(loadConfig(['--inspect=9000'], {}).inspect).toBe(9000);
    expect(loadConfig([], { MCP_CHAT_INSPECT: 'off' }).inspect).toBe(null);
  });

  it.each([
    [['--port', '70000'], '--port'],
    [['--max-message-length', '0'], '--max-message-length'],
    [['--messages-per-second', 'fast'], '--messages-per-second'],
    [['--log-level', 'loud'], '--log-level'],
    [['--token', 'short'], '--token'],
    [['--headers-timeout-ms', '0'], '--headers-timeout-ms'],
    [['--request-timeout-ms', 'soon'], '--request-timeout-ms'],
    [['--max-connections', '0'], '--max-connections'],
    [['--stalled-stream-ms', '-1'], '--stalled-stream-ms'],
    [['--headers-timeout-ms', '40000'], '--request-timeout-ms'],
    [['--no-such-flag'], 'no-such-flag'],
  ])('fails fast on %j, naming %s', (argv, named) => {
    expect(() => loadConfig(argv, {})).toThrow(ConfigError);
    expect(() => loadConfig(argv, {})).toThrow(named);
  });

  it('takes the connection limits from flags and env, with defaults that fit together', () => {
    expect(loadConfig(['--headers-timeout-ms', '2000', '--request-timeout-ms', '4000'], {})).toMatchObject({
      headersTimeoutMs: 2000,
      requestTimeoutMs: 4000,
    });
    expect(loadConfig([], { MCP_CHAT_MAX_CONNECTIONS: '64', MCP_CHAT_STALLED_STREAM_MS: '5000' })).toMatchObject({
      maxConnections: 64,
      stalledStreamMs: 5000,
    });
    // Node refuses a head timeout longer than the whole request's.
    expect(defaultConfig.headersTimeoutMs).toBeLessThanOrEqual(defaultConfig.requestTimeoutMs);
    // Every session may hold a stream and still leave connections for its requests.
    expect(defaultConfig.maxConnections).toBeGreaterThan(defaultConfig.maxSessions);
  });

  it('names the flag of a bad connection limit given in the environment', () => {
    expect(() => loadConfig([], { MCP_CHAT_MAX_CONNECTIONS: 'many' })).toThrow(
      /--max-connections \(MCP_CHAT_MAX_CONNECTIONS\) cannot be "many"/,
    );
    expect(() => loadConfig([], { MCP_CHAT_REQUEST_TIMEOUT_MS: '5000' })).toThrow(
      /--headers-timeout-ms \(10000\) cannot be more than --request-timeout-ms \(5000\)/,
    );
  });

  it('never echoes a bad token', () => {
    expect(() => loadConfig([], { MCP_CHAT_TOKEN: 'sh ort' })).toThrow(/cannot be that value/);
  });
});
