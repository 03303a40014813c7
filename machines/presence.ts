/**
 * presenceMachine — whether anyone is still behind a session. Runs as a child of the
 * user actor; the session reports every HTTP request and stream it serves as a link.
 *
 * States: `online` (a request or stream is open) ⇄ `offline` (none is), and `expired`
 *         once the session has been offline too long:
 *         - a session that can resume (Streamable HTTP) may come back silently until
 *           `idleTimeout`, then expires with reason `timeout`;
 *         - a session that cannot resume (a legacy SSE stream that closed) has the
 *           `graceTimeout` to prove otherwise, then expires with reason `disconnected`.
 * Takes:  `link.opened`, `link.closed`.
 * Sends:  `session.closed` to its parent (the user actor) when it expires.
 */
import { assign, not, sendParent, setup } from 'xstate';

export interface PresenceInput {
  /** Whether a client can come back to this session after its streams close. */
  resumable: boolean;
  /** How long an unresumable session may stay offline, in ms. */
  graceMs: number;
  /** How long a resumable session may stay offline, in ms. */
  idleMs: number;
}

export interface PresenceContext extends PresenceInput {
  /** Requests and streams open now. */
  links: number;
}

export type PresenceEvent = { type: 'link.opened' } | { type: 'link.closed' };

export const presenceMachine = setup({
  types: {
    input: {} as PresenceInput,
    context: {} as PresenceContext,
    events: {} as PresenceEvent,
  },
  delays: {
    graceTimeout: ({ context }) => context.graceMs,
    idleTimeout: ({ context }) => context.idleMs,
  },
  guards: {
    isLastLink: ({ context }) => context.links <= 1,
    isResumable: ({ context }) => context.resumable,
  },
  actions: {
    countOpened: assign({ links: ({ context }) => context.links + 1 }),
    countClosed: assign({ links: ({ context }) => Math.max(0, context.links - 1) }),
    expireDisconnected: sendParent({ type: 'session.closed', reason: 'disconnected' }),
    expireTimedOut: sendParent({ type: 'session.closed', reason: 'timeout' }),
  },
}).createMachine({
  id: 'presence',
  context: ({ input }) => ({ ...input, links: 0 }),
  // A session starts offline: the initialize request that made it is already answered.
  initial: 'offline',
  states: {
    online: {
      on: {
        'link.opened': { actions: 'countOpened' },
        'link.closed': [
          { guard: 'isLastLink', target: 'offline', actions: 'countClosed' },
          { actions: 'countClosed' },
        ],
      },
    },
    offline: {
      on: {
        'link.opened': { target: 'online', actions: 'countOpened' },
      },
      after: {
        graceTimeout: { guard: not('isResumable'), target: 'expired', actions: 'expireDisconnected' },
        idleTimeout: { guard: 'isResumable', target: 'expired', actions: 'expireTimedOut' },
      },
    },
    // Not final: the parent ends on `session.closed` and stops this actor with it.
    expired: {},
  },
});
