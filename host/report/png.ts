// SVG -> PNG for viewing: rsvg-convert (Debian's librsvg2-bin, scripts/ci/setup-report.sh) when
// it is on PATH, else Chromium through playwright-core when /usr/bin/chromium exists, else none
// (with the reason). Node only.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PngResult {
  made: string[];
  how: string | null;
  reason?: string;
}

function hasRsvg(): boolean {
  try {
    execFileSync('rsvg-convert', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function svgsToPng(svgPaths: string[]): Promise<PngResult> {
  if (hasRsvg()) {
    for (const p of svgPaths)
      execFileSync('rsvg-convert', ['-b', 'white', '-z', '1.5', '-o', p.replace(/\.svg$/, '.png'), p]);
    return { made: svgPaths.map((p) => p.replace(/\.svg$/, '.png')), how: 'rsvg-convert' };
  }
  const chromium = '/usr/bin/chromium';
  if (!existsSync(chromium))
    return {
      made: [],
      how: null,
      reason: 'neither rsvg-convert (run scripts/ci/setup-report.sh) nor /usr/bin/chromium is installed',
    };
  let pw: { chromium: { launchPersistentContext(dir: string, o: Record<string, unknown>): Promise<any> } };
  try {
    pw = (await import('playwright-core')) as never;
  } catch {
    return { made: [], how: null, reason: 'playwright-core is not installed and rsvg-convert is missing' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'itera-report-'));
  const ctx = await pw.chromium.launchPersistentContext(dir, {
    executablePath: chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  try {
    const page = await ctx.newPage();
    for (const p of svgPaths) {
      const svg = readFileSync(p, 'utf8');
      const m = /width="(\d+)" height="(\d+)"/.exec(svg);
      await page.setViewportSize({ width: Number(m?.[1] ?? 800), height: Number(m?.[2] ?? 600) });
      await page.setContent(`<html><body style="margin:0">${svg.replace(/^<\?xml[^>]*>/, '')}</body></html>`);
      await page.screenshot({ path: p.replace(/\.svg$/, '.png') });
    }
  } finally {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { made: svgPaths.map((p) => p.replace(/\.svg$/, '.png')), how: 'Chromium (playwright-core) screenshots' };
}
