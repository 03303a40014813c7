/**
 * presenceMachine — whether anyone is still behind a user. Runs as a child of the user
 * actor. The server counts the user's links — calls in flight that act for it (by its
 * token or its session) and streams of sessions bound to it — and reports only the
 * edges: `client.online` when the first opens, `client.offline` when the last closes
 * (a moment later, and not at all if a call follows at once: src/chat/chatUser.ts).
 * It reports `client.detached` when the last session bound to the user went away
 * (DELETE, or a legacy SSE stream that closed), and `client.leaving` when the person
 * is closing or reloading the page (`leave_chat` with `grace`).
 *
 * States: `online` (a link is open) ⇄ `offline` (none is: `recent`, then `away` once
 *         `pairableTimeout` has passed), `detached` (no session is left: away at once),
 *         `leaving` (away; any new link brings it back silently, else after `pageGrace`
 *         it leaves its chat and is `online` or `offline` as its links are), `expired`:
 *         - offline for `idleTimeout`: expires with reason `timeout`;
 *         - detached for `graceTimeout` with no call in between: expires with reason
 *           `disconnected`; a call carrying the user's token brings it back silently.
 * Takes:  `client.online`, `client.offline`, `client.detached`, `client.leaving`.
 * Sends:  to its parent (the user actor) `presence.away` when the user stops being
 *         pairable (nobody meets a ghost), `presence.back` when it shows up again,
 *         `chat.leave` when a page grace passed, and `session.closed` when it expires.
 */
import { sendParent, setup, stateIn } from 'xstate';

export interface PresenceInput {
  /** How long a user may show no sign of life before it ends (reason `timeout`), in ms. */
  idleMs: number;
  /** How long a user may show no sign of life before it is no longer paired, in ms. */
  pairableMs: number;
  /** How long a user whose last session went away may take to call again, in ms. */
  graceMs: number;
  /** How long a person who closed or reloaded the page may take to call again before it leaves its chat, in ms. */
  pageGraceMs: number;
}

export type PresenceEvent =
  | { type: 'client.online' }
  | { type: 'client.offline' }
  | { type: 'client.detached' }
  | { type: 'client.leaving' };

/** The tag of the state in which a leave waits out its page grace: every new link, not only the first, is news then. */
export const LEAVING = 'leaving';

export const presenceMachine = setup({
  types: {
    input: {} as PresenceInput,
    context: {} as PresenceInput,
    events: {} as PresenceEvent,
  },
  delays: {
    idleTimeout: ({ context }) => context.idleMs,
    pairableTimeout: ({ context }) => context.pairableMs,
    graceTimeout: ({ context }) => context.graceMs,
    pageGrace: ({ context }) => context.pageGraceMs,
  },
  guards: {
    /** A link opened before the leave (a stream, a held call) is still open. */
    isLinked: stateIn('#presence.leaving.linked'),
  },
  actions: {
    reportAway: sendParent({ type: 'presence.away' }),
    reportBack: sendParent({ type: 'presence.back' }),
    leaveChat: sendParent({ type: 'chat.leave' }),
    expireDisconnected: sendParent({ type: 'session.closed', reason: 'disconnected' }),
    expireTimedOut: sendParent({ type: 'session.closed', reason: 'timeout' }),
  },
}).createMachine({
  id: 'presence',
  context: ({ input }) => input,
  // A user starts offline: the call that made it opens its first link right after.
  initial: 'offline',
  states: {
    online: {
      on: { 'client.offline': 'offline', 'client.leaving': { target: 'leaving', actions: 'reportAway' } },
    },
    offline: {
      initial: 'recent',
      on: { 'client.detached': { target: 'detached', actions: 'reportAway' } },
      after: { idleTimeout: { target: 'expired', actions: 'expireTimedOut' } },
      states: {
        recent: {
          on: { 'client.online': '#presence.online' },
          after: { pairableTimeout: { target: 'away', actions: 'reportAway' } },
        },
        away: {
          on: { 'client.online': { target: '#presence.online', actions: 'reportBack' } },
        },
      },
    },
    // The last session went away (a client that never named the user by its token): it
    // is paired with no one, and has the grace period to call again.
    detached: {
      on: { 'client.online': { target: 'online', actions: 'reportBack' } },
      after: { graceTimeout: { target: 'expired', actions: 'expireDisconnected' } },
    },
    // The person is closing or reloading the page (the call that says so is a link): it
    // is paired with no one, and leaves its chat unless a call comes within the page grace.
    leaving: {
      tags: LEAVING,
      initial: 'linked',
      on: { 'client.online': { target: 'online', actions: 'reportBack' } },
      after: {
        pageGrace: [
          { guard: 'isLinked', target: 'online', actions: 'leaveChat' },
          { target: 'offline', actions: 'leaveChat' },
        ],
      },
      states: {
        linked: { on: { 'client.offline': 'unlinked' } },
        // A DELETE now is no call: the leave stands, and the idle rules follow it.
        unlinked: {},
      },
    },
    // Not final: the parent ends on `session.closed` and stops this actor with it.
    expired: {},
  },
});
