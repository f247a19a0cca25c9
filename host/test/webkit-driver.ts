// WebKit for the tests: WebKitGTK's MiniBrowser driven through WebKitWebDriver (W3C WebDriver over
// plain fetch) under an Xvfb display it picks itself. Used by the WebKit tier (tier-webkit.test.ts)
// and the bundler apps of the package test (package.test.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';

export const MINIBROWSER = process.env.ITERA_MINIBROWSER ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

export const which = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Why WebKit cannot be driven here, or null when it can. */
export function missingWebKit(): string | null {
  if (!which('WebKitWebDriver')) return 'WebKitWebDriver is not installed';
  if (!which('Xvfb')) return 'Xvfb is not installed';
  if (!existsSync(MINIBROWSER)) return `MiniBrowser is not installed (${MINIBROWSER})`;
  return null;
}

export async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => ok(p));
    });
  });
}

/** Xvfb on a display it picks itself (-displayfd). */
export async function startXvfb(): Promise<{ proc: ChildProcess; display: string }> {
  const proc = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  const display = await new Promise<string>((ok, fail) => {
    let buf = '';
    const timer = setTimeout(() => fail(new Error('Xvfb did not report a display in 10 s')), 10000);
    (proc.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) {
        clearTimeout(timer);
        ok(':' + buf.trim());
      }
    });
    proc.once('exit', (c) => fail(new Error(`Xvfb exited (${c})`)));
  });
  return { proc, display };
}

/** A W3C WebDriver session over plain fetch. */
export class WebDriver {
  constructor(
    readonly base: string,
    readonly id: string,
  ) {}
  static async open(base: string): Promise<WebDriver> {
    const caps = {
      capabilities: {
        alwaysMatch: {
          browserName: 'MiniBrowser',
          'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
        },
      },
    };
    const r = await fetch(`${base}/session`, {
      method: 'POST',
      body: JSON.stringify(caps),
      headers: { 'content-type': 'application/json' },
    });
    const j = (await r.json()) as { value: { sessionId: string; message?: string } };
    if (!j.value?.sessionId) throw new Error(`WebDriver session failed: ${JSON.stringify(j).slice(0, 300)}`);
    return new WebDriver(base, j.value.sessionId);
  }
  async cmd<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await fetch(`${this.base}/session/${this.id}${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    const j = (await r.json()) as { value: T & { error?: string; message?: string } };
    if (!r.ok) throw new Error(`WebDriver ${path}: ${j.value?.error ?? r.status} ${j.value?.message ?? ''}`);
    return j.value;
  }
  go(url: string): Promise<unknown> {
    return this.cmd('POST', '/url', { url });
  }
  run<T>(script: string, ...args: unknown[]): Promise<T> {
    return this.cmd<T>('POST', '/execute/sync', { script, args });
  }
  runAsync<T>(script: string, ...args: unknown[]): Promise<T> {
    return this.cmd<T>('POST', '/execute/async', { script, args });
  }
  async waitFor(expr: string, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await this.run<boolean>(`return !!(${expr});`)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }
  close(): Promise<unknown> {
    return fetch(`${this.base}/session/${this.id}`, { method: 'DELETE' }).catch(() => null);
  }
}

/** Xvfb, WebKitWebDriver on a free loopback port and a MiniBrowser session; `close` ends all three. */
export async function startWebKit(): Promise<{ wd: WebDriver; close(): Promise<void> }> {
  const x = await startXvfb();
  const port = await freePort();
  const driver = spawn('WebKitWebDriver', [`--port=${port}`], {
    env: { ...process.env, DISPLAY: x.display },
    stdio: 'ignore',
  });
  const stop = (): void => {
    driver.kill();
    x.proc.kill();
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`${base}/status`)).ok) break;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const wd = await WebDriver.open(base);
    await wd.cmd('POST', '/window/rect', { width: 1000, height: 900 }).catch(() => null);
    return {
      wd,
      close: async () => {
        await wd.close();
        stop();
      },
    };
  } catch (e) {
    stop();
    throw e;
  }
}
