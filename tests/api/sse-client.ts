/**
 * A minimal server-sent-events client for tests: connects to `/mesh/events` on 127.0.0.1 and parses
 * frames as they arrive, so a test can assert on exactly what went over the wire.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';

/** One SSE frame as sent: its fields, or the text of a comment line. */
export interface Frame { id?: string; event?: string; data?: string; retry?: string; comment?: string }

/** Connects and collects frames; `events()` are the frames that carry an id. */
export async function connect(port: number, headers: Record<string, string> = {}) {
  const req = http.get({ host: '127.0.0.1', port, path: '/mesh/events', headers, agent: false });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  res.setEncoding('utf8');
  const frames: Frame[] = [];
  let buffer = '';
  res.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      frames.push(parseFrame(buffer.slice(0, end)));
      buffer = buffer.slice(end + 2);
    }
  });
  const ended = once(res, 'end');
  ended.catch(() => {}); // a client the test destroys on purpose never ends cleanly
  return { res, frames, ended, destroy: () => req.destroy(), events: () => frames.filter((f) => f.id !== undefined) };
}

/** Parses the lines of one frame (`field: value`, or `:comment`). */
export function parseFrame(text: string): Frame {
  const frame: Frame = {};
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) frame.comment = line.slice(1).trim();
    else {
      const at = line.indexOf(': ');
      (frame as Record<string, string>)[line.slice(0, at)] = line.slice(at + 2);
    }
  }
  return frame;
}

/** Waits (5 ms steps, at most `attempts`) until `check` holds, or fails naming `what`. */
export async function until(check: () => boolean, what: string, attempts = 400): Promise<void> {
  for (let i = 0; i < attempts && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(check(), `timed out waiting for ${what}`);
}
