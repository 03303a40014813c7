/**
 * presenceMachine — whether anyone is still behind a session. Runs as a child of the
 * user actor. The session counts the HTTP requests and streams it serves (its links)
 * and reports only the edges: `client.online` when the first opens, `client.offline`
 * when the last closes — not an event pair for every request.
 *
 * States: `online` (a request or stream is open) ⇄ `offline` (none is), and `expired`
 *         once the session has been offline too long:
 *         - a session that can resume (Streamable HTTP) may come back silently until
 *           `idleTimeout`, then expires with reason `timeout`;
 *         - a session that cannot resume (a legacy SSE stream that closed) has the
 *           `graceTimeout` to prove otherwise, then expires with reason `disconnected`.
 * Takes:  `client.online`, `client.offline`.
 * Sends:  `session.closed` to its parent (the user actor) when it expires.
 */
import { not, sendParent, setup } from 'xstate';

export interface PresenceInput {
  /** Whether a client can come back to this session after its streams close. */
  resumable: boolean;
  /** How long an unresumable session may stay offline, in ms. */
  graceMs: number;
  /** How long a resumable session may stay offline, in ms. */
  idleMs: number;
}

export type PresenceEvent = { type: 'client.online' } | { type: 'client.offline' };

export const presenceMachine = setup({
  types: {
    input: {} as PresenceInput,
    context: {} as PresenceInput,
    events: {} as PresenceEvent,
  },
  delays: {
    graceTimeout: ({ context }) => context.graceMs,
    idleTimeout: ({ context }) => context.idleMs,
  },
  guards: {
    isResumable: ({ context }) => context.resumable,
  },
  actions: {
    expireDisconnected: sendParent({ type: 'session.closed', reason: 'disconnected' }),
    expireTimedOut: sendParent({ type: 'session.closed', reason: 'timeout' }),
  },
}).createMachine({
  id: 'presence',
  context: ({ input }) => input,
  // A session starts offline: the initialize request that made it is already answered.
  initial: 'offline',
  states: {
    online: {
      on: { 'client.offline': 'offline' },
    },
    offline: {
      on: { 'client.online': 'online' },
      after: {
        graceTimeout: { guard: not('isResumable'), target: 'expired', actions: 'expireDisconnected' },
        idleTimeout: { guard: 'isResumable', target: 'expired', actions: 'expireTimedOut' },
      },
    },
    // Not final: the parent ends on `session.closed` and stops this actor with it.
    expired: {},
  },
});
