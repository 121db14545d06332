// --loss, --dup, --reorder, --delay: the fabric-wide faults of a cluster run (link/fabric/fault.ts),
// applied to every port's transmit path (so a packet is lost, duplicated or held back once, on its way
// into the switch, as a lossy cable or a congested link would do to it).
import { commanderParser } from '../cli.js';
import type { FaultConfig } from '../../link/fabric/fault.js';

export interface ClusterFaults {
  loss: number;
  duplicate: number;
  reorder: number;
  delayMs: number;
}

/** A probability given as a fraction (0.2) or a percentage (20%). */
export function parseFraction(flag: string, text: string): number {
  const pct = text.endsWith('%');
  const body = pct ? text.slice(0, -1) : text;
  const n = Number(body);
  if (body.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag}: '${text}' is not a fraction (0..1) or a percentage`);
  const v = pct ? n / 100 : n;
  if (v < 0 || v > 1) throw new Error(`${flag}: '${text}' is outside 0..1 (0%..100%)`);
  return v;
}

/** parseFraction() for commander: its error goes through commander's one-line report. */
export function fractionOption(flag: string): (v: string) => number {
  return commanderParser((v) => parseFraction(flag, v));
}

/** The run's faults, or undefined when none was asked for. */
export function faultsOf(o: { loss?: number | undefined; dup?: number | undefined; reorder?: number | undefined; delay?: number | undefined }): ClusterFaults | undefined {
  const f: ClusterFaults = { loss: o.loss ?? 0, duplicate: o.dup ?? 0, reorder: o.reorder ?? 0, delayMs: o.delay ?? 0 };
  return f.loss === 0 && f.duplicate === 0 && f.reorder === 0 && f.delayMs === 0 ? undefined : f;
}

/**
 * The FaultConfig for the fabric. A held-back packet is released by the next one through the same
 * port or after the reorder window (5 ms), whichever comes first.
 */
export function faultConfig(f: ClusterFaults): FaultConfig {
  return {
    ...(f.loss > 0 ? { loss: f.loss } : {}),
    ...(f.duplicate > 0 ? { duplicate: f.duplicate } : {}),
    ...(f.reorder > 0 ? { reorder: f.reorder, reorderWindowMs: REORDER_WINDOW_MS } : {}),
    ...(f.delayMs > 0 ? { delayMs: f.delayMs } : {}),
  };
}

export const REORDER_WINDOW_MS = 5;

/** The same faults as `ipoib-fabric` flags (for a daemon the run starts). */
export function faultFlags(f: ClusterFaults): string[] {
  const out: string[] = [];
  if (f.loss > 0) out.push('--loss', String(f.loss));
  if (f.duplicate > 0) out.push('--dup', String(f.duplicate));
  if (f.reorder > 0) out.push('--reorder', String(f.reorder));
  if (f.delayMs > 0) out.push('--delay', String(f.delayMs));
  return out;
}
