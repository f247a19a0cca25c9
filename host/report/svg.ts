// Small SVG charts for the reports: horizontal bar charts (with min-max whiskers, optional
// reference lines, small multiples) and a labelled scatter plot. No dependencies; plain strings.
// Platform-neutral.

export interface Bar {
  label: string;
  value: number;
  min?: number;
  max?: number;
  color?: string;
  /** text after the bar (default: the value) */
  note?: string;
}

export interface Panel {
  title: string;
  bars: Bar[];
  /** vertical reference lines, e.g. a goal */
  lines?: { at: number; label: string }[];
}

export const PALETTE = ['#2b6cb0', '#dd6b20', '#38a169', '#805ad5', '#d53f8c', '#718096', '#b7791f', '#319795'];

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const FONT = 'font-family="DejaVu Sans, Verdana, Arial, sans-serif"';

export function fmtNum(x: number): string {
  const a = Math.abs(x);
  if (a >= 1e6) return `${(x / 1e6).toFixed(a >= 1e7 ? 1 : 2)}M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** Tick values for [0, max]: about 5 round steps. */
export function ticks(max: number): number[] {
  if (!(max > 0)) return [0];
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max * 1.0001; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Horizontal bars, one panel under another, each with its own scale. */
export function barChart(o: {
  title: string;
  subtitle?: string;
  unit: string;
  panels: Panel[];
  width?: number;
}): string {
  // labels are never clipped: the chart grows to fit the longest one
  const labelW = Math.min(560, 40 + 7 * Math.max(...o.panels.flatMap((p) => p.bars.map((b) => b.label.length)), 8));
  const right = Math.min(
    260,
    20 +
      6.5 *
        Math.max(...o.panels.flatMap((p) => p.bars.map((b) => (b.note ?? `${fmtNum(b.value)} ${o.unit}`).length)), 8),
  );
  const width = Math.ceil(Math.max(o.width ?? 760, labelW + right + 360));
  const barH = 20;
  const gap = 6;
  const plotW = width - labelW - right;
  let y = o.subtitle ? 58 : 44;
  const parts: string[] = [];
  parts.push(
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold" ${FONT}>${esc(o.title)}</text>`,
  );
  if (o.subtitle)
    parts.push(
      `<text x="${width / 2}" y="42" text-anchor="middle" font-size="11" fill="#555" ${FONT}>${esc(o.subtitle)}</text>`,
    );
  for (const p of o.panels) {
    const max =
      Math.max(...p.bars.map((b) => Math.max(b.value, b.max ?? 0)), ...(p.lines ?? []).map((l) => l.at), 1e-12) * 1.05;
    const x = (v: number): number => labelW + (v / max) * plotW;
    parts.push(`<text x="10" y="${y + 12}" font-size="13" font-weight="bold" ${FONT}>${esc(p.title)}</text>`);
    y += 20;
    const top = y;
    const h = p.bars.length * (barH + gap);
    for (const t of ticks(max / 1.05)) {
      parts.push(
        `<line x1="${x(t).toFixed(1)}" y1="${top - 2}" x2="${x(t).toFixed(1)}" y2="${top + h}" stroke="#e2e8f0"/>`,
      );
      parts.push(
        `<text x="${x(t).toFixed(1)}" y="${top + h + 12}" text-anchor="middle" font-size="10" fill="#555" ${FONT}>${fmtNum(t)}</text>`,
      );
    }
    p.bars.forEach((b, i) => {
      const by = top + i * (barH + gap);
      const color = b.color ?? PALETTE[i % PALETTE.length];
      parts.push(
        `<text x="${labelW - 6}" y="${by + barH / 2 + 4}" text-anchor="end" font-size="12" ${FONT}>${esc(b.label)}</text>`,
      );
      parts.push(
        `<rect x="${labelW}" y="${by}" width="${Math.max(0.5, x(b.value) - labelW).toFixed(1)}" height="${barH}" fill="${color}" opacity="0.85"/>`,
      );
      if (b.min !== undefined && b.max !== undefined) {
        const cy = by + barH / 2;
        parts.push(
          `<line x1="${x(b.min).toFixed(1)}" y1="${cy}" x2="${x(b.max).toFixed(1)}" y2="${cy}" stroke="#1a202c" stroke-width="1.5"/>`,
        );
        for (const v of [b.min, b.max])
          parts.push(
            `<line x1="${x(v).toFixed(1)}" y1="${cy - 5}" x2="${x(v).toFixed(1)}" y2="${cy + 5}" stroke="#1a202c" stroke-width="1.5"/>`,
          );
      }
      const tx = Math.max(x(b.value), b.max !== undefined ? x(b.max) : 0) + 6;
      parts.push(
        `<text x="${tx.toFixed(1)}" y="${by + barH / 2 + 4}" font-size="11" ${FONT}>${esc(b.note ?? `${fmtNum(b.value)} ${o.unit}`)}</text>`,
      );
    });
    (p.lines ?? []).forEach((l, i) => {
      parts.push(
        `<line x1="${x(l.at).toFixed(1)}" y1="${top - 4}" x2="${x(l.at).toFixed(1)}" y2="${top + h + 16 + i * 12}" stroke="#e53e3e" stroke-width="1.5" stroke-dasharray="5,3"/>`,
      );
      parts.push(
        `<text x="${(x(l.at) + 4).toFixed(1)}" y="${top + h + 26 + i * 12}" font-size="10" fill="#c53030" ${FONT}>${esc(l.label)}</text>`,
      );
    });
    y = top + h + 26 + (p.lines?.length ?? 0) * 12;
  }
  return svgDoc(width, y + 4, parts);
}

export interface Point {
  x: number;
  y: number;
  label: string;
  color?: string;
}

/** A scatter plot with labelled points; axes from 0 (or the data's range when logX). */
export function scatter(o: {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  points: Point[];
  width?: number;
  height?: number;
}): string {
  const width = o.width ?? 760;
  const height = o.height ?? 440;
  const m = { l: 70, r: 30, t: o.subtitle ? 60 : 44, b: 50 };
  const pw = width - m.l - m.r;
  const ph = height - m.t - m.b;
  const xmax = Math.max(...o.points.map((p) => p.x), 1e-12) * 1.1;
  const ymax = Math.max(...o.points.map((p) => p.y), 1e-12) * 1.1;
  const X = (v: number): number => m.l + (v / xmax) * pw;
  const Y = (v: number): number => m.t + ph - (v / ymax) * ph;
  const parts: string[] = [];
  parts.push(
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold" ${FONT}>${esc(o.title)}</text>`,
  );
  if (o.subtitle)
    parts.push(
      `<text x="${width / 2}" y="42" text-anchor="middle" font-size="11" fill="#555" ${FONT}>${esc(o.subtitle)}</text>`,
    );
  for (const t of ticks(xmax / 1.1)) {
    parts.push(`<line x1="${X(t).toFixed(1)}" y1="${m.t}" x2="${X(t).toFixed(1)}" y2="${m.t + ph}" stroke="#e2e8f0"/>`);
    parts.push(
      `<text x="${X(t).toFixed(1)}" y="${m.t + ph + 14}" text-anchor="middle" font-size="10" fill="#555" ${FONT}>${fmtNum(t)}</text>`,
    );
  }
  for (const t of ticks(ymax / 1.1)) {
    parts.push(`<line x1="${m.l}" y1="${Y(t).toFixed(1)}" x2="${m.l + pw}" y2="${Y(t).toFixed(1)}" stroke="#e2e8f0"/>`);
    parts.push(
      `<text x="${m.l - 6}" y="${(Y(t) + 3).toFixed(1)}" text-anchor="end" font-size="10" fill="#555" ${FONT}>${fmtNum(t)}</text>`,
    );
  }
  parts.push(
    `<line x1="${m.l}" y1="${m.t + ph}" x2="${m.l + pw}" y2="${m.t + ph}" stroke="#1a202c"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${m.t + ph}" stroke="#1a202c"/>`,
  );
  parts.push(
    `<text x="${m.l + pw / 2}" y="${height - 12}" text-anchor="middle" font-size="12" ${FONT}>${esc(o.xLabel)}</text>`,
  );
  parts.push(
    `<text x="16" y="${m.t + ph / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${m.t + ph / 2})" ${FONT}>${esc(o.yLabel)}</text>`,
  );
  o.points.forEach((p, i) => {
    const c = p.color ?? PALETTE[i % PALETTE.length];
    parts.push(`<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="6" fill="${c}" opacity="0.9"/>`);
    const anchor = X(p.x) > m.l + pw * 0.7 ? 'end' : 'start';
    const dx = anchor === 'end' ? -9 : 9;
    parts.push(
      `<text x="${(X(p.x) + dx).toFixed(1)}" y="${(Y(p.y) - 8 - (i % 2) * 12).toFixed(1)}" text-anchor="${anchor}" font-size="11" ${FONT}>${esc(p.label)}</text>`,
    );
  });
  return svgDoc(width, height, parts);
}

function svgDoc(w: number, h: number, parts: string[]): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${Math.ceil(h)}" viewBox="0 0 ${w} ${Math.ceil(h)}">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`
  );
}
