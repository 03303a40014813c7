/**
 * A web host for MCP Apps, in the browser, built on ext-apps' own host side
 * (`AppBridge`) and the v2 SDK client, as the spec asks a web host to be: the window
 * runs in a sandbox proxy on another origin (served under the spec's default CSP),
 * which loads it into an inner frame and relays messages.
 *
 * `testHost.open()` does what a host does when its model calls enter_queue or next:
 * calls the tool, reads the `ui://` resource the tool names, shows it, and hands it
 * the call's input and result. The window's `tools/call`s go through the bridge to
 * the server (recorded in `windowCalls`). With `separateSessions`, the model's calls
 * and the window's go through two clients, two MCP sessions, as Claude Desktop does.
 */

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { AppBridge, getToolUiResourceUri, type McpUiHostContext, PostMessageTransport } from '@modelcontextprotocol/ext-apps/app-bridge';

export interface OpenOptions {
  /** The mcp-chat endpoint. */
  server: string;
  /** The sandbox proxy's URL (another origin). */
  sandbox: string;
  tool: string;
  args?: Record<string, unknown>;
  separateSessions?: boolean;
  /** The host's theme, styles and sizes (McpUiHostContext; hosts may send any subset of its variables). */
  hostContext?: Record<string, unknown>;
}

type Structured = Record<string, unknown>;

const HOST_INFO = { name: 'mcp-chat test host', version: '1.0.0' };

async function connect(server: string): Promise<Client> {
  const client = new Client(HOST_INFO);
  await client.connect(new StreamableHTTPClientTransport(new URL(server)));
  return client;
}

let model: Client | undefined;
let windowClient: Client | undefined;
let bridge: AppBridge | undefined;
const windowCalls: string[] = [];

/** Resolves when the sandbox proxy in `frame` says it is ready. */
function proxyReady(frame: HTMLIFrameElement): Promise<void> {
  return new Promise((resolve) => {
    const listener = ({ source, data }: MessageEvent) => {
      if (source !== frame.contentWindow || data?.method !== 'ui/notifications/sandbox-proxy-ready') return;
      window.removeEventListener('message', listener);
      resolve();
    };
    window.addEventListener('message', listener);
  });
}

const testHost = {
  windowCalls,

  /** The model calls `tool`; the host shows the tool's window. Answers the call's structured result. */
  async open(options: OpenOptions): Promise<Structured | undefined> {
    model ??= await connect(options.server);
    windowClient ??= options.separateSessions ? await connect(options.server) : model;
    const tool = (await model.listTools()).tools.find((t) => t.name === options.tool);
    const uri = tool && getToolUiResourceUri(tool);
    if (!uri) throw new Error(`${options.tool} names no ui:// resource`);
    const args = options.args ?? {};
    const result = model.callTool({ name: options.tool, arguments: args });

    const read = await windowClient.readResource({ uri });
    const content = read.contents[0] as { text?: string; mimeType?: string; _meta?: { ui?: { csp?: Record<string, string[]> } } };
    if (content.mimeType !== 'text/html;profile=mcp-app' || typeof content.text !== 'string')
      throw new Error(`${uri} is not an MCP App: ${content.mimeType}`);

    const frame = document.createElement('iframe');
    frame.id = 'window';
    frame.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms');
    frame.style.cssText = 'width: 100%; height: 200px; border: 1px solid #888; border-radius: 8px;';
    const ready = proxyReady(frame);
    frame.src = options.sandbox;
    document.getElementById('frames')!.append(frame);
    await ready;

    bridge = new AppBridge(
      windowClient,
      HOST_INFO,
      { serverTools: {}, serverResources: {}, logging: {} },
      { hostContext: (options.hostContext ?? {}) as McpUiHostContext },
    );
    bridge.onsizechange = ({ height }) => {
      if (height !== undefined) frame.style.height = `${height + 2}px`;
    };
    const initialized = new Promise<void>((resolve) => (bridge!.oninitialized = () => resolve()));
    await bridge.connect(new PostMessageTransport(frame.contentWindow!, frame.contentWindow!));
    const forward = bridge.oncalltool!;
    bridge.oncalltool = (params, extra) => {
      windowCalls.push(params.name);
      return forward(params, extra);
    };
    await bridge.sendSandboxResourceReady({ html: content.text, csp: content._meta?.ui?.csp });
    await initialized;
    await bridge.sendToolInput({ arguments: args });
    const answered = await result;
    await bridge.sendToolResult(answered as Parameters<AppBridge['sendToolResult']>[0]);
    return answered.structuredContent as Structured | undefined;
  },

  /** A call by the model (its own session when the host keeps two). */
  async modelCall(name: string, args: Structured = {}): Promise<Structured | string> {
    const result = await model!.callTool({ name, arguments: args });
    if (result.isError) return (result.content as { text?: string }[]).map((c) => c.text ?? '').join('');
    return result.structuredContent as Structured;
  },

  async themeChanged(context: Record<string, unknown>): Promise<void> {
    await bridge!.sendHostContextChange(context as McpUiHostContext);
  },

  /** The host removes the window (as when it is scrolled away or closed); the chat goes on. */
  async closeWindow(): Promise<void> {
    await bridge!.teardownResource({});
    document.getElementById('window')?.remove();
  },

  /** Ends the host's sessions, as a host does when it shuts down. */
  async close(): Promise<void> {
    for (const client of new Set([model, windowClient])) await client?.close();
  },
};

declare global {
  interface Window {
    testHost: typeof testHost;
  }
}
window.testHost = testHost;
