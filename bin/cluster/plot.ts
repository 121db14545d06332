// --plot FILE.svg: how a cluster boot went, as one hand-written SVG 1.1 file (no dependency).
// Left panel: hosts bound over time, a step curve (one step per host, at its timeToBoundMs since the
// start of the boot) with the median and 95th percentile marked. Right panel: the distribution of
// time-to-bound, a histogram with "nice" bin widths (1, 2 or 5 x 10^n ms). The title names the run
// (hosts, addressing, mode, servers, partitions, faults). Works for every report form: the data
// is NodeReport.timeToBoundMs, and a run without it (static addressing) gets panels that say so.
//
// The curve and the bars carry their scale as data-* attributes, so a reader (the tests) can turn
// pixels back into milliseconds and hosts.
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CliError } from '../cli.js';
import { faultsText, type ClusterReport } from './report.js';

const WIDTH = 1000;
const HEIGHT = 480;
const TOP = 98;
const BOTTOM = HEIGHT - 58;
const PANELS = [{ left: 70, right: 480 }, { left: 570, right: 980 }] as const;
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Pixel coordinates with two decimals: enough to invert the scale to well under a millisecond per pixel. */
function px(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** The 1, 2 or 5 x 10^n nearest to `raw` (on a log scale): a histogram bin width. */
export function nearestNiceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  let best = p;
  for (const m of [1, 2, 5, 10]) if (Math.abs(Math.log(m * p / raw)) < Math.abs(Math.log(best / raw))) best = m * p;
  return best;
}

/** 1, 2 or 5 x 10^n, the smallest at least `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** Ticks 0, step, 2 step, ... covering [0, max] with about `count` intervals; whole steps for counts of hosts. */
function ticks(max: number, count: number, integer = false): { step: number; top: number; values: number[] } {
  const step = integer ? Math.max(1, niceStep(max / count)) : niceStep(max / count);
  const top = Math.max(step, Math.ceil(max / step - 1e-9) * step);
  const values: number[] = [];
  // Multiplied, not accumulated: 0.2 added three times is not 0.6.
  for (let i = 0; i * step <= top + step / 2; i++) values.push(Number((i * step).toPrecision(12)));
  return { step, top, values };
}

function timeLabel(ms: number, inSeconds: boolean): string {
  if (!inSeconds) return String(Math.round(ms));
  return String(Number((ms / 1000).toPrecision(6)));
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? sorted[0]!;
}

function runTitle(r: ClusterReport): string {
  const parts = [`${r.nodes.length} host${r.nodes.length === 1 ? '' : 's'}`, r.addressing, r.mode];
  if (r.servers !== undefined) parts.push(`${r.servers.length} servers`);
  if (r.partitions !== undefined) parts.push(`${r.partitions.count} partitions`);
  return `ipoib-cluster: ${parts.join(', ')}`;
}

function faultLine(r: ClusterReport): string {
  return r.faults === undefined ? 'no faults injected' : `faults: ${faultsText(r.faults, false)}`;
}

/** Axes, grid, tick labels and axis titles of one panel; returns the SVG lines. */
function axes(p: { left: number; right: number }, x: { values: number[]; top: number }, y: { values: number[]; top: number },
  xLabel: (v: number) => string, xTitle: string, yTitle: string): string[] {
  const out: string[] = [];
  const sx = (p.right - p.left) / x.top;
  const sy = (BOTTOM - TOP) / y.top;
  for (const v of y.values) {
    const yy = BOTTOM - v * sy;
    out.push(`<line x1="${px(p.left)}" y1="${px(yy)}" x2="${px(p.right)}" y2="${px(yy)}" stroke="#e3e3e3" stroke-width="1"/>`);
    out.push(`<text x="${px(p.left - 6)}" y="${px(yy + 4)}" text-anchor="end" font-size="11" fill="#333">${v}</text>`);
  }
  for (const v of x.values) {
    const xx = p.left + v * sx;
    out.push(`<line x1="${px(xx)}" y1="${px(BOTTOM)}" x2="${px(xx)}" y2="${px(BOTTOM + 5)}" stroke="#333" stroke-width="1"/>`);
    out.push(`<text x="${px(xx)}" y="${px(BOTTOM + 18)}" text-anchor="middle" font-size="11" fill="#333">${esc(xLabel(v))}</text>`);
  }
  out.push(`<line x1="${p.left}" y1="${BOTTOM}" x2="${p.right}" y2="${BOTTOM}" stroke="#333" stroke-width="1"/>`);
  out.push(`<line x1="${p.left}" y1="${TOP}" x2="${p.left}" y2="${BOTTOM}" stroke="#333" stroke-width="1"/>`);
  out.push(`<text x="${px((p.left + p.right) / 2)}" y="${BOTTOM + 40}" text-anchor="middle" font-size="12" fill="#111">${esc(xTitle)}</text>`);
  const my = (TOP + BOTTOM) / 2;
  out.push(`<text x="${p.left - 46}" y="${px(my)}" text-anchor="middle" font-size="12" fill="#111" transform="rotate(-90 ${p.left - 46} ${px(my)})">${esc(yTitle)}</text>`);
  return out;
}

/** The SVG text of the plot. */
export function plotSvg(r: ClusterReport): string {
  const times = r.nodes.map((n) => n.timeToBoundMs).filter((t): t is number => typeof t === 'number' && Number.isFinite(t)).sort((a, b) => a - b);
  const n = times.length;
  const unbound = r.nodes.length - n;
  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ${FONT}>`);
  const title = runTitle(r);
  out.push(`<title>${esc(`${title}; ${faultLine(r)}`)}</title>`);
  out.push(`<rect x="0" y="0" width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(`<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold" fill="#111">${esc(title)}</text>`);
  out.push(`<text x="${WIDTH / 2}" y="44" text-anchor="middle" font-size="12" fill="#444">${esc(faultLine(r))}</text>`);
  const [left, right] = PANELS;
  if (n === 0) {
    const why = r.addressing === 'static' ? 'static addressing: no host waits for a lease' : 'no host was bound';
    out.push(`<text x="${WIDTH / 2}" y="62" text-anchor="middle" font-size="12" fill="#444">${esc(`no time-to-bound to plot (${why})`)}</text>`);
    for (const p of PANELS) {
      out.push(`<rect x="${p.left}" y="${TOP}" width="${p.right - p.left}" height="${BOTTOM - TOP}" fill="none" stroke="#999" stroke-dasharray="4 3"/>`);
    }
    out.push('</svg>');
    return out.join('\n') + '\n';
  }
  const maxT = times[n - 1]!;
  const inSeconds = maxT >= 2000;
  const unit = inSeconds ? 's' : 'ms';
  const tl = (v: number): string => timeLabel(v, inSeconds);
  const p50 = quantile(times, 0.5);
  const p95 = quantile(times, 0.95);
  const fmt = (ms: number): string => (inSeconds ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
  out.push(`<text x="${WIDTH / 2}" y="62" text-anchor="middle" font-size="12" fill="#444">${esc(
    `${n}/${r.nodes.length} bound${unbound > 0 ? ` (${unbound} never)` : ''}; time to bound: median ${fmt(p50)}, 95th percentile ${fmt(p95)}, last ${fmt(maxT)}`)}</text>`);

  // Left: cumulative bound hosts, a step per host.
  const xT = ticks(maxT, 6);
  const yN = ticks(n, 5, true);
  out.push(`<text x="${px((left.left + left.right) / 2)}" y="${TOP - 10}" text-anchor="middle" font-size="13" fill="#111">Hosts bound over time</text>`);
  out.push(...axes(left, xT, yN, tl, `time since the boot started (${unit})`, 'hosts bound'));
  const sx = (left.right - left.left) / xT.top;
  const sy = (BOTTOM - TOP) / yN.top;
  const pts: string[] = [`${px(left.left)},${px(BOTTOM)}`];
  times.forEach((t, i) => {
    const x = left.left + t * sx;
    pts.push(`${px(x)},${px(BOTTOM - i * sy)}`, `${px(x)},${px(BOTTOM - (i + 1) * sy)}`);
  });
  for (const [q, name] of [[p50, 'median'], [p95, '95%']] as const) {
    const x = left.left + q * sx;
    out.push(`<line x1="${px(x)}" y1="${TOP}" x2="${px(x)}" y2="${BOTTOM}" stroke="#d95f02" stroke-width="1" stroke-dasharray="5 4"/>`);
    out.push(`<text x="${px(x + 4)}" y="${TOP + (name === 'median' ? 12 : 26)}" font-size="11" fill="#d95f02">${name}</text>`);
  }
  out.push(`<polyline class="bound-curve" data-x0="${left.left}" data-px-per-ms="${sx}" data-y0="${BOTTOM}" data-px-per-host="${sy}" ` +
    `points="${pts.join(' ')}" fill="none" stroke="#1b6ca8" stroke-width="2" stroke-linejoin="round"/>`);

  // Right: histogram of time to bound.
  // About sqrt(n) bins (5 to 40), at a round width.
  const binWidth = nearestNiceStep(Math.max(maxT, 1) / Math.min(40, Math.max(5, Math.ceil(Math.sqrt(n)))));
  const bins = Math.max(1, Math.floor(maxT / binWidth) + 1);
  const counts = new Array<number>(bins).fill(0);
  for (const t of times) counts[Math.min(bins - 1, Math.floor(t / binWidth))]!++;
  const hx = ticks(bins * binWidth, 6);
  const hy = ticks(Math.max(...counts) * 1.08, 5, true);
  out.push(`<text x="${px((right.left + right.right) / 2)}" y="${TOP - 10}" text-anchor="middle" font-size="13" fill="#111">` +
    `Distribution of time to bound (bins of ${esc(tl(binWidth))} ${unit})</text>`);
  out.push(...axes(right, hx, hy, tl, `time to bound (${unit})`, 'hosts'));
  const hsx = (right.right - right.left) / hx.top;
  const hsy = (BOTTOM - TOP) / hy.top;
  counts.forEach((c, i) => {
    if (c === 0) return;
    const x = right.left + i * binWidth * hsx;
    const h = c * hsy;
    out.push(`<rect class="bar" data-count="${c}" data-from-ms="${i * binWidth}" data-to-ms="${(i + 1) * binWidth}" x="${px(x)}" y="${px(BOTTOM - h)}" ` +
      `width="${px(Math.max(1, binWidth * hsx - 1))}" height="${px(h)}" fill="#1b9e77"/>`);
    if (bins <= 40) out.push(`<text x="${px(x + (binWidth * hsx) / 2)}" y="${px(BOTTOM - h - 4)}" text-anchor="middle" font-size="10" fill="#333">${c}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Fails (exit 2) before the run when the plot could not be written: a missing directory, a directory named as the file. */
export function checkPlotPath(file: string): void {
  const dir = dirname(file);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`--plot ${file}: no directory ${dir}`);
  if (existsSync(file) && statSync(file).isDirectory()) throw new CliError(`--plot ${file}: is a directory`);
  if (!file.toLowerCase().endsWith('.svg')) throw new CliError(`--plot ${file}: the plot is SVG; name the file *.svg`);
}

export function writePlot(report: ClusterReport, file: string): void {
  try {
    writeFileSync(file, plotSvg(report));
  } catch (err) {
    throw new CliError(`--plot ${file}: ${(err as Error).message}`, 1);
  }
}
