/**
 * The messages between the bench (run.ts) and its load-generator processes
 * (loadWorker.ts), over the fork IPC channel. A worker runs one command at a time and
 * answers it with one reply, sending `progress` in between.
 */
import type { TokenClientKind } from './leanSession.js';

export type LoadMode = 'saturate' | 'rate';

/**
 * How the chatters of a command talk to the server: `session`, an MCP session with its
 * GET stream (opened by `open`); or a token client that keeps none (test/support/tokenClient.ts),
 * made by `pair`, one kind at a time, and stopped by `release`.
 */
export type ClientKind = 'session' | TokenClientKind;

export type WorkerCommand =
  | { type: 'open'; url: string; count: number; concurrency: number; postConnections: number }
  | { type: 'pair'; clients: ClientKind; url: string; postConnections: number; pairs: number; concurrency: number; deadlineMs: number }
  | { type: 'release' }
  /** `rate`: messages per second this worker offers (rate mode). */
  | {
      type: 'load';
      clients: ClientKind;
      mode: LoadMode;
      rate: number;
      maxMessages: number;
      durationMs: number;
      messageSize: number;
      drainMs: number;
    };

/**
 * Timestamps are absolute milliseconds (performance.timeOrigin + now), comparable across
 * processes; latencies are µs histograms, hdr-histogram-js compressed base64.
 */
export interface OpenReport {
  type: 'opened';
  opened: number;
  failed: number;
  firstError?: string;
  liveStreams: number;
  startedAt: number;
  endedAt: number;
  latency: string;
}

export interface PairReport {
  type: 'paired';
  pairs: number;
  failed: number;
  firstError?: string;
  startedAt: number;
  endedAt: number;
}

/**
 * What a load phase counts, per worker and summed: send_message calls made, answered
 * `sent`, refused (isError), failed on the wire, offered in rate mode but never sent (one
 * still in flight when the phase ended); messages read, duplicated, out of order, lost,
 * and notifications not from the receiver's partner or room (misrouted).
 */
export interface DeliveryCounts {
  senders: number;
  sent: number;
  acked: number;
  refused: number;
  errors: number;
  unsent: number;
  received: number;
  duplicated: number;
  outOfOrder: number;
  lost: number;
  misrouted: number;
  drained: boolean;
}

/**
 * A load phase's report: when sending stopped and the last message was read; latency
 * from when each call was made and from when it was due; the worker's event-loop delay
 * p99 (a sign of a saturated generator); its sessions whose GET stream is still open;
 * what the server answered meanwhile (HTTP requests, tool calls among them).
 */
export interface LoadReport extends DeliveryCounts {
  type: 'loaded';
  firstError?: string;
  startedAt: number;
  sendEndedAt: number;
  lastReceivedAt: number;
  latency: string;
  latencyFromDue: string;
  loopDelayP99Ms: number;
  liveStreams: number;
  httpRequests: number;
  toolCalls: number;
}

/** The token clients stopped: how many of their polls had failed. */
export interface ReleaseReport {
  type: 'released';
  clients: number;
  pollErrors: number;
  firstError?: string;
}

export type WorkerReply =
  | { type: 'progress'; done: number }
  | OpenReport
  | PairReport
  | LoadReport
  | ReleaseReport
  | { type: 'failed'; message: string };
