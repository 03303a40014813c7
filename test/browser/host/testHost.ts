/**
 * Serves the test host (hostPage.ts, bundled for the browser with esbuild) and its
 * sandbox proxy from two loopback ports, so they are two origins, as the MCP Apps spec
 * requires of a web host. The proxy's document carries the spec's default CSP (the
 * resource declares no `csp`), which the window's inner frame inherits: no network of
 * its own, no frames, no plugins.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

/** SEP-1865, "Restrictive Default", with the sandbox rules for frames, plugins and base URIs. */
export const DEFAULT_APP_CSP = [
  "default-src 'none'",
  "script-src 'self' 'unsafe-inline'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "media-src 'self' data:",
  "connect-src 'none'",
  "frame-src 'none'",
  "object-src 'none'",
  "base-uri 'self'",
].join('; ');

const HOST_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>test host</title><link rel="icon" href="data:,">
<style>body { font: 14px system-ui; margin: 12px; background: #ddd; } #frames { max-width: 640px; }</style>
</head><body><p>A chat in a host; the window below is the server's.</p><div id="frames"></div>
<script type="module" src="/host.js"></script></body></html>`;

/** The sandbox proxy: loads the window's HTML into an inner frame of its own origin and relays messages. */
const SANDBOX_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><style>html, body { margin: 0; height: 100%; overflow: hidden; } iframe { border: 0; width: 100%; height: 100%; }</style></head>
<body><script>
const inner = document.createElement('iframe');
inner.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms');
document.body.append(inner);
window.addEventListener('message', (event) => {
  if (event.source === window.parent) {
    if (event.data?.method === 'ui/notifications/sandbox-resource-ready') {
      const doc = inner.contentDocument;
      doc.open();
      doc.write(event.data.params.html);
      doc.close();
    } else inner.contentWindow.postMessage(event.data, '*');
  } else if (event.source === inner.contentWindow) {
    window.parent.postMessage(event.data, '*');
  }
});
window.parent.postMessage({ jsonrpc: '2.0', method: 'ui/notifications/sandbox-proxy-ready', params: {} }, '*');
</script></body></html>`;

let bundle: string | undefined;

function hostBundle(): string {
  bundle ??= buildSync({
    entryPoints: [fileURLToPath(new URL('./hostPage.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
  }).outputFiles[0]!.text;
  return bundle;
}

export interface TestHost {
  /** Every path asked of either origin, in order (a window that loads something shows here). */
  readonly requests: string[];
  /** The host page (origin one). */
  readonly hostUrl: string;
  /** The sandbox proxy (origin two). */
  readonly sandboxUrl: string;
  close(): Promise<void>;
}

export async function startTestHost(): Promise<TestHost> {
  const script = hostBundle();
  const requests: string[] = [];
  const serve = (routes: Record<string, { type: string; body: string; headers?: Record<string, string> }>): Server =>
    createServer((request, response) => {
      const path = new URL(request.url ?? '/', 'http://x').pathname;
      requests.push(path);
      const route = routes[path];
      if (!route) return void response.writeHead(404).end();
      response.writeHead(200, { 'content-type': route.type, 'cache-control': 'no-store', ...route.headers }).end(route.body);
    });
  const host = serve({
    '/host.html': { type: 'text/html; charset=utf-8', body: HOST_HTML },
    '/host.js': { type: 'text/javascript; charset=utf-8', body: script },
  });
  const sandbox = serve({
    '/sandbox.html': { type: 'text/html; charset=utf-8', body: SANDBOX_HTML, headers: { 'content-security-policy': DEFAULT_APP_CSP } },
  });
  const servers = [host, sandbox];
  for (const server of servers) {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  }
  const url = (server: Server, path: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  return {
    requests,
    hostUrl: url(host, '/host.html'),
    sandboxUrl: url(sandbox, '/sandbox.html'),
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  };
}
