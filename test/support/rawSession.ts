/**
 * A session opened with plain fetch, for tests that need to see the wire itself
 * (SSE comments, event ids, status codes) without an SDK client in between.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { jsonHeaders, PROTOCOL_VERSION } from './jsonRpcWire.js';

export async function openRawSession(url: URL, protocolVersion = PROTOCOL_VERSION): Promise<string> {
  const init = await fetch(url, {
    method: 'POST',
    headers: jsonHeaders(),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1.0.0' } },
    }),
  });
  const sessionId = init.headers.get('mcp-session-id');
  await init.text();
  if (!init.ok || !sessionId) throw new Error(`initialize failed: HTTP ${init.status}`);
  const initialized = await fetch(url, {
    method: 'POST',
    headers: jsonHeaders(sessionId),
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await initialized.text();
  return sessionId;
}

/** Ends a raw session as a polite client does. */
export async function deleteRawSession(url: URL, sessionId: string): Promise<void> {
  const response = await fetch(url, { method: 'DELETE', headers: jsonHeaders(sessionId) });
  await response.text();
}

/**
 * A request through node:http, which (unlike fetch) lets a test send any Host header,
 * as a DNS-rebinding attacker's browser would.
 */
export function rawRequest(url: URL, options: { method?: string; headers?: Record<string, string>; body?: string; chunks?: string[] }) {
  return new Promise<{ status: number; headers: IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const request = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text }));
    });
    request.on('error', reject);
    // Chunks go out with Transfer-Encoding: chunked, so the server cannot know the size up front.
    for (const chunk of options.chunks ?? []) request.write(chunk);
    request.end(options.body);
  });
}

/** Reads an SSE body until `done(text)` holds or `ms` pass; answers what was read. */
export async function readSse(response: Response, done: (text: string) => boolean, ms = 2000): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const timer = setTimeout(() => void reader.cancel(), ms);
  try {
    while (!done(text)) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
  }
  return text;
}
