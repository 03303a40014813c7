/**
 * The world over HTTP: a real mcp-chat on a loopback port chosen by the OS, and people
 * who are real MCP SDK clients (test/support/chatClient.ts) — or, to drive presence one
 * link at a time, a session opened with plain fetch whose GET stream and held
 * `wait_for_events` call are the links. The server runs in this process, so a replay
 * may also read its actors (white box) besides what the clients observe.
 */
import pino from 'pino';
import type { InspectionEvent } from 'xstate';
import type { ChatConfig } from '../../src/config.js';
import { listen } from '../../src/http/listen.js';
import { ActorDirectory } from './actorDirectory.js';
import { LegacyPerson } from './httpLegacyPerson.js';
import { RawPerson, StreamPerson, type Shared } from './httpPeople.js';
import { eventually, type PersonOptions, type World } from './world.js';

export interface HttpWorldOptions {
  config: Partial<ChatConfig>;
  /** Sees every inspection event of the server's actors (the coverage recorder). */
  inspect?: (event: InspectionEvent) => void;
}

export async function httpWorld({ config, inspect }: HttpWorldOptions): Promise<World> {
  const actors = new ActorDirectory();
  const server = await listen({
    config: { host: '127.0.0.1', port: 0, ...config },
    log: pino({ level: process.env.LOG_LEVEL ?? 'silent' }),
    inspect: (event) => {
      actors.see(event);
      inspect?.(event);
    },
  });
  const shared: Shared = { server, stopped: false };
  const people: (StreamPerson | RawPerson | LegacyPerson)[] = [];

  const stop = async () => {
    if (shared.stopped) return;
    shared.stopped = true;
    await server.close();
  };

  return {
    kind: 'http',
    async join(name: string, { client }: PersonOptions = { client: 'sdk' }) {
      const person =
        client === 'sdk' ? await StreamPerson.connect(name, shared) : client === 'bare' ? await RawPerson.open(name, shared) : await LegacyPerson.connect(name, shared);
      people.push(person);
      return person;
    },
    queue: () => actors.get('queue'),
    room: (roomId) => actors.get(`room:${roomId}`),
    async health() {
      const response = await fetch(new URL('/healthz', server.url));
      const body = (await response.json()) as { queue: number; sessions: number; actors: { rooms: number } };
      return { queue: body.queue, rooms: body.actors.rooms, sessions: body.sessions };
    },
    async shutdown() {
      // The clients stay open: what the server said last may still be on its way to them.
      await stop();
    },
    eventually,
    async close() {
      await Promise.all(people.map((person) => person.release()));
      await stop();
    },
  };
}
