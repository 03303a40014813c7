/**
 * One load phase in a worker: every paired chatter sends to its partner, either as fast
 * as its previous send is answered (`saturate`: one call in flight per sender, the same
 * concurrency for every server) or on a fixed schedule (`rate`: open loop, a message due
 * every 1/rate s, round-robin over the senders). The partner's stream is read the whole
 * time; latency is from the call being made to the notification being parsed.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { build, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { ToolRefusal } from '../test/support/chatClient.js';
import { type Chatter, readStamp, stampText } from './chatter.js';
import type { WireTally } from './leanSession.js';
import type { LoadReport, WorkerCommand } from './workerProtocol.js';

type LoadCommand = Extract<WorkerCommand, { type: 'load' }>;

/** Latencies are recorded in µs, clamped to this (10 min). */
const MAX_LATENCY_US = 600_000_000;

export function latencyHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_LATENCY_US, numberOfSignificantValueDigits: 3, autoResize: false });
}

const absolute = (at: number) => performance.timeOrigin + at;
const clampUs = (us: number) => Math.min(MAX_LATENCY_US, Math.max(1, Math.round(us)));

export class RelayLoad {
  readonly latency = latencyHistogram();
  readonly latencyFromDue = latencyHistogram();
  sent = 0;
  acked = 0;
  refused = 0;
  errors = 0;
  firstError: string | undefined;
  unsent = 0;
  received = 0;
  duplicated = 0;
  outOfOrder = 0;
  misrouted = 0;
  #lastReceivedAt = 0;
  #budget: number;
  #deadline = 0;

  constructor(
    private readonly senders: Chatter[],
    private readonly command: LoadCommand,
    private readonly liveStreams: () => number,
    private readonly tally: WireTally,
  ) {
    this.#budget = command.maxMessages;
    for (const chatter of senders) {
      chatter.startPhase();
      chatter.onMessage = (receiver, params, at) => this.#receive(receiver, params, at);
    }
  }

  async run(): Promise<LoadReport> {
    const answered = { ...this.tally };
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const startedAt = performance.now();
    this.#deadline = startedAt + this.command.durationMs;
    await (this.command.mode === 'saturate' ? this.#saturate() : this.#offer(startedAt));
    const sendEndedAt = performance.now();
    const drained = await this.#drain(sendEndedAt + this.command.drainMs);
    loopDelay.disable();
    const lost = this.senders.reduce((sum, chatter) => sum + chatter.lostInPhase(), 0);
    for (const chatter of this.senders) chatter.onMessage = () => {};
    return {
      type: 'loaded',
      senders: this.senders.length,
      sent: this.sent,
      acked: this.acked,
      refused: this.refused,
      errors: this.errors,
      ...(this.firstError !== undefined && { firstError: this.firstError }),
      unsent: this.unsent,
      received: this.received,
      duplicated: this.duplicated,
      outOfOrder: this.outOfOrder,
      lost,
      misrouted: this.misrouted,
      startedAt: absolute(startedAt),
      sendEndedAt: absolute(sendEndedAt),
      lastReceivedAt: absolute(this.#lastReceivedAt || sendEndedAt),
      drained,
      latency: encodeIntoCompressedBase64(this.latency),
      latencyFromDue: encodeIntoCompressedBase64(this.latencyFromDue),
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      liveStreams: this.liveStreams(),
      httpRequests: this.tally.httpRequests - answered.httpRequests,
      toolCalls: this.tally.toolCalls - answered.toolCalls,
    };
  }

  get progress(): number {
    return this.received;
  }

  #mayStart(): boolean {
    return this.#budget > 0 && performance.now() < this.#deadline;
  }

  async #saturate(): Promise<void> {
    await Promise.all(
      this.senders.map(async (chatter) => {
        while (this.#mayStart()) await this.#send(chatter, performance.now());
      }),
    );
  }

  async #offer(startedAt: number): Promise<void> {
    const perMs = this.command.rate / 1000;
    const chains = new Set<Promise<void>>();
    let offered = 0;
    let next = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        if (!this.#mayStart()) return resolve();
        const due = Math.floor((performance.now() - startedAt) * perMs);
        while (offered < due && this.#budget > 0) {
          const dueAt = startedAt + offered / perMs;
          offered += 1;
          const chatter = this.senders[next++ % this.senders.length]!;
          if (chatter.inFlight) {
            chatter.backlog.push(dueAt);
            this.#budget -= 1;
          } else {
            const chain = this.#sendChain(chatter, dueAt);
            chains.add(chain);
            void chain.finally(() => chains.delete(chain));
          }
        }
        setTimeout(tick, 1);
      };
      tick();
    });
    await Promise.all(chains);
  }

  /** Sends `dueAt`'s message, then the sender's backlog, while the phase lasts. */
  async #sendChain(chatter: Chatter, dueAt: number): Promise<void> {
    await this.#send(chatter, dueAt);
    while (chatter.backlog.length > 0) {
      if (performance.now() >= this.#deadline) {
        this.unsent += chatter.backlog.length;
        chatter.backlog = [];
        return;
      }
      this.#budget += 1; // it was taken when the message was queued
      await this.#send(chatter, chatter.backlog.shift()!);
    }
  }

  async #send(chatter: Chatter, dueAt: number): Promise<void> {
    this.#budget -= 1;
    const seq = chatter.nextSeq++;
    const sentAt = performance.now();
    const message = stampText(
      { sender: chatter.index, seq, sentAtUs: Math.round(sentAt * 1000), dueAtUs: Math.round(dueAt * 1000) },
      this.command.messageSize,
    );
    chatter.inFlight = true;
    this.sent += 1;
    try {
      const result = await chatter.client.call('send_message', { room_id: chatter.roomId, message });
      if (result.status !== 'sent') throw new Error(`send_message answered ${JSON.stringify(result)}`);
      this.acked += 1;
      chatter.ackedInPhase += 1;
    } catch (error) {
      chatter.unacked.add(seq);
      if (error instanceof ToolRefusal) this.refused += 1;
      else this.errors += 1;
      this.firstError ??= error instanceof Error ? error.message : String(error);
    } finally {
      chatter.inFlight = false;
    }
  }

  #receive(receiver: Chatter, params: Record<string, unknown>, at: number): void {
    const stamp = typeof params.message === 'string' ? readStamp(params.message) : undefined;
    if (!stamp || params.room_id !== receiver.roomId || stamp.sender !== receiver.partner?.index) {
      this.misrouted += 1;
      return;
    }
    const arrival = receiver.reads.accept(stamp.seq);
    if (arrival === 'duplicate') {
      this.duplicated += 1;
      return;
    }
    if (arrival === 'late') this.outOfOrder += 1;
    this.received += 1;
    receiver.receivedInPhase += 1;
    this.#lastReceivedAt = at;
    const atUs = at * 1000;
    this.latency.recordValue(clampUs(atUs - stamp.sentAtUs));
    this.latencyFromDue.recordValue(clampUs(atUs - stamp.dueAtUs));
  }

  async #drain(deadline: number): Promise<boolean> {
    while (performance.now() < deadline) {
      if (this.senders.every((chatter) => chatter.drained)) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.senders.every((chatter) => chatter.drained);
  }
}
