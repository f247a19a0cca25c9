// Small HTTP helpers the server tests share (server.test.ts, server-workers.test.ts).
import { request } from 'node:http';

export interface Reply {
  status: number;
  headers: Headers;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: r.status, headers: r.headers, json };
}

/** POSTs saved session state bytes to /v1/sessions (a restore). */
export function postState(url: string, state: Uint8Array<ArrayBuffer>): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: state });
}

/** The data: payloads of a server-sent event stream. */
export function events(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
}

export async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/** Starts a streaming completion that lasts until it is cut (a million tokens: the server needs
 *  maxTokens that high) and resolves once its first event has arrived; abort() hangs up. A thousand
 *  tokens, as before, took only 25-50 ms here, and a stream could end before the test looked. */
export const LONG_STREAM_TOKENS = 1_000_000;

export function longStream(
  url: string,
  extra: Record<string, unknown> = {},
): Promise<{ abort(): void; rest: Promise<string> }> {
  const u = new URL(url);
  return new Promise((ok, fail) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        method: 'POST',
        path: '/v1/completions',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let body = '';
        let first = true;
        let done!: (s: string) => void;
        const rest = new Promise<string>((r) => (done = r));
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
          if (first) {
            first = false;
            ok({ abort: () => req.destroy(), rest });
          }
        });
        res.on('end', () => done(body));
        res.on('close', () => done(body));
        res.on('error', () => done(body));
      },
    );
    req.on('error', (e) => fail(e));
    req.end(
      JSON.stringify({
        prompt: 'The jury said',
        max_tokens: LONG_STREAM_TOKENS,
        ignore_eos: true,
        stream: true,
        ...extra,
      }),
    );
  });
}
