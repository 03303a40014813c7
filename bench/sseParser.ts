/**
 * An incremental parser for `text/event-stream`: feed it text chunks as they arrive and
 * it calls back once per complete event that carries data. Comments (`: keepalive`)
 * and empty-data events (the SDK's priming event) are skipped, as a client would.
 */
export type SseEventHandler = (data: string, id: string | undefined) => void;

export class SseParser {
  #buffer = '';

  constructor(private readonly onEvent: SseEventHandler) {}

  push(chunk: string): void {
    // The servers here frame with '\n'; a '\r\n' split across two chunks would slip
    // through, which is acceptable for a benchmark client.
    const text = chunk.includes('\r') ? chunk.replace(/\r\n?/g, '\n') : chunk;
    const buffer = this.#buffer + text;
    let start = 0;
    let end = buffer.indexOf('\n\n', start);
    while (end !== -1) {
      this.#dispatch(buffer.slice(start, end));
      start = end + 2;
      end = buffer.indexOf('\n\n', start);
    }
    this.#buffer = start === 0 ? buffer : buffer.slice(start);
  }

  #dispatch(block: string): void {
    let data: string | undefined;
    let id: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith('data:')) {
        const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
        data = data === undefined ? value : `${data}\n${value}`;
      } else if (line.startsWith('id:')) {
        id = line.charCodeAt(3) === 32 ? line.slice(4) : line.slice(3);
      }
    }
    if (data) this.onEvent(data, id);
  }
}

/** Every data-carrying event of a complete SSE body, in order. */
export function parseSseBody(body: string): string[] {
  const events: string[] = [];
  const parser = new SseParser((data) => events.push(data));
  parser.push(body.endsWith('\n\n') ? body : `${body}\n\n`);
  return events;
}
