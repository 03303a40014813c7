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
  | {
      type: 'load';
      clients: ClientKind;
      mode: LoadMode;
      /** Messages per second offered by this worker (rate mode). */
      rate: number;
      maxMessages: number;
      durationMs: number;
      messageSize: number;
      drainMs: number;
    };

/** Timestamps are absolute milliseconds (performance.timeOrigin + now), comparable across processes. */
export interface OpenReport {
  type: 'opened';
  opened: number;
  failed: number;
  firstError?: string;
  liveStreams: number;
  startedAt: number;
  endedAt: number;
  /** Per-open latency in µs, hdr-histogram-js compressed base64. */
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

/** What a load phase counts: per worker, and summed over the workers. */
export interface DeliveryCounts {
  senders: number;
  /** send_message calls made, answered `sent`, refused (isError), failed on the wire. */
  sent: number;
  acked: number;
  refused: number;
  errors: number;
  /** Offered in rate mode but never sent: the sender still had one in flight when the phase ended. */
  unsent: number;
  received: number;
  duplicated: number;
  outOfOrder: number;
  lost: number;
  /** Notifications that were not from the receiver's partner or room. */
  misrouted: number;
  drained: boolean;
}

export interface LoadReport extends DeliveryCounts {
  type: 'loaded';
  firstError?: string;
  startedAt: number;
  /** When sending stopped, and when the last message of the phase was read. */
  sendEndedAt: number;
  lastReceivedAt: number;
  /** Send → receive latency in µs, from when the call was made and from when it was due. */
  latency: string;
  latencyFromDue: string;
  /** The worker's own event-loop delay p99, in ms: a sign of a saturated generator. */
  loopDelayP99Ms: number;
  /** Sessions of this worker (paired or idle) whose GET stream is still open at the end. */
  liveStreams: number;
  /** What the server answered during the phase: HTTP requests, and tool calls among them. */
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
