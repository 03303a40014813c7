/**
 * The server side of the legacy HTTP+SSE transport (protocol 2024-11-05), which the
 * v2 SDK ships only as a client: `GET /sse` opens a stream whose first event names the
 * endpoint (`POST /messages?sessionId=…`); each POST carries one message, answered
 * `202 Accepted`, and every answer and notification goes out on the stream.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { type JSONRPCMessage, type MessageExtraInfo, parseJSONRPCMessage, type Transport } from '@modelcontextprotocol/server';
import { inProcess } from '../chat/processDirectory.js';

export class LegacySseTransport implements Transport {
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  /** Names its process (`<processId>.<uuid>`), so any process can send its POSTs on to it. */
  readonly sessionId: string;
  #open = false;

  constructor(
    private readonly endpoint: string,
    private readonly response: ServerResponse,
    processId?: string,
  ) {
    this.sessionId = processId === undefined ? randomUUID() : inProcess(processId, randomUUID());
  }

  /** Writes the SSE headers and the `endpoint` event. */
  async start(): Promise<void> {
    if (this.#open) throw new Error('The legacy SSE transport is already started.');
    this.response.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
    });
    this.response.write(`event: endpoint\ndata: ${this.endpoint}?sessionId=${this.sessionId}\n\n`);
    this.#open = true;
    this.response.once('close', () => {
      this.#open = false;
      this.onclose?.();
    });
  }

  /**
   * Takes one POSTed message (already read and parsed as JSON); answers the HTTP status
   * for the POST: 202 when it was handed on, 400 when it is no JSON-RPC message.
   */
  receive(body: unknown, request?: Request): 202 | 400 {
    let message: JSONRPCMessage;
    try {
      message = parseJSONRPCMessage(body);
    } catch (error) {
      this.onerror?.(error as Error);
      return 400;
    }
    this.onmessage?.(message, request ? { request } : undefined);
    return 202;
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (!this.#open) throw new Error('The legacy SSE stream is closed.');
    this.response.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  async close(): Promise<void> {
    if (this.#open) this.response.end();
    this.#open = false;
  }
}
