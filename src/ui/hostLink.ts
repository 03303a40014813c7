/**
 * The window inside an MCP Apps host (SEP-1865, `@modelcontextprotocol/ext-apps`):
 * JSON-RPC 2.0 over `postMessage` with the host, written by hand as the spec allows
 * (ext-apps' `App` class would bring zod and the SDK's protocol layer, hundreds of KB).
 *
 * The window asks `ui/initialize`, says `ui/notifications/initialized`, then hears the
 * tool call that opened it (`ui/notifications/tool-input`, `…/tool-result`) and theme
 * changes (`…/host-context-changed`); it calls mcp-chat's tools with `tools/call`,
 * which the host forwards to the server. It has no network of its own: under the
 * spec's default CSP it could not have any.
 */
import type { ToolLink, ToolResult } from './toolLink.js';

/** The part of the host's context the window reads. */
export interface HostContext {
  theme?: string;
  styles?: { variables?: Record<string, string | undefined>; css?: { fonts?: string } };
  containerDimensions?: { height?: number; maxHeight?: number };
}

export interface HostEvents {
  /** The arguments of the tool call that opened the window. */
  toolInput(args: Record<string, unknown>): void;
  /** The result of the tool call that opened the window (enter_queue or next). */
  toolResult(result: ToolResult): void;
  context(context: HostContext): void;
  /** The host is about to remove the window: stop reading, but stay in the chat. */
  teardown(): void;
}

const PROTOCOL_VERSION = '2026-01-26';
/** Longer than any wait_for_events the window asks for (25 s) and than hosts' own limit (60 s). */
const CALL_TIMEOUT_MS = 65_000;

type Id = number | string;
interface Message {
  jsonrpc: '2.0';
  id?: Id;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: { code: number; message: string };
}

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

const isMessage = (data: unknown): data is Message =>
  typeof data === 'object' && data !== null && (data as { jsonrpc?: unknown }).jsonrpc === '2.0';

export class HostLink implements ToolLink {
  #nextId = 1;
  readonly #pending = new Map<Id, Pending>();

  constructor(private readonly events: HostEvents) {
    window.addEventListener('message', (event) => {
      // Only the host (the frame that holds the window) speaks to it.
      if (event.source === window.parent && isMessage(event.data)) this.#receive(event.data);
    });
  }

  /** The handshake: the host's context (theme, sizes), then "initialized". */
  async connect(): Promise<void> {
    const result = (await this.#request('ui/initialize', {
      appInfo: { name: 'mcp-chat', version: '0.1.0' },
      appCapabilities: {},
      protocolVersion: PROTOCOL_VERSION,
    })) as { hostContext?: HostContext };
    if (result?.hostContext) this.events.context(result.hostContext);
    this.#post({ jsonrpc: '2.0', method: 'ui/notifications/initialized', params: {} });
    this.#reportSize();
  }

  call(name: string, args: Record<string, unknown>): Promise<ToolResult> {
    return this.#request('tools/call', { name, arguments: args }) as Promise<ToolResult>;
  }

  #request(method: string, params: Record<string, unknown>): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`The host did not answer ${method}.`));
      }, CALL_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      this.#post({ jsonrpc: '2.0', id, method, params });
    });
  }

  #receive(message: Message): void {
    if (message.method === undefined) {
      const pending = message.id === undefined ? undefined : this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id!);
      clearTimeout(pending.timer);
      if (message.error) pending.reject(new Error(message.error.message));
      else pending.resolve(message.result);
      return;
    }
    if (message.id !== undefined) {
      this.#answer(message.id, message.method);
      return;
    }
    const params = message.params ?? {};
    if (message.method === 'ui/notifications/tool-input') this.events.toolInput((params.arguments as Record<string, unknown>) ?? {});
    else if (message.method === 'ui/notifications/tool-result') this.events.toolResult(params as ToolResult);
    else if (message.method === 'ui/notifications/host-context-changed') this.events.context(params as HostContext);
  }

  /** Requests from the host: teardown (answered once the window stopped) and ping. */
  #answer(id: Id, method: string): void {
    if (method === 'ui/resource-teardown') this.events.teardown();
    if (method === 'ui/resource-teardown' || method === 'ping') this.#post({ jsonrpc: '2.0', id, result: {} });
    else this.#post({ jsonrpc: '2.0', id, error: { code: -32601, message: `Method not found: ${method}` } });
  }

  /** Tells the host how tall the window is whenever that changes, so it can size its frame. */
  #reportSize(): void {
    let reported = -1;
    const report = () => {
      const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
      if (height === reported) return;
      reported = height;
      this.#post({ jsonrpc: '2.0', method: 'ui/notifications/size-changed', params: { height } });
    };
    new ResizeObserver(report).observe(document.documentElement);
    report();
  }

  #post(message: Message): void {
    // The window cannot know the host's origin (a sandbox proxy sits between them).
    window.parent.postMessage(message, '*');
  }
}
