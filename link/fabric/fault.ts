// Fault injection as a wrapper around a packet path (smoltcp src/phy/fault_injector.rs): loss,
// duplication, reordering, delay and corruption, each drawn from an injected seeded Random and
// timed by an injected Scheduler, so a failing test replays exactly. The fabric puts one on a
// port's transmit path (host -> switch), receive path (switch -> host), or on every port.
import { BTH_BYTES, GRH_BYTES, LNH_IBA_GLOBAL, LRH_BYTES, ICRC_BYTES, VCRC_BYTES } from '../wire/ib-constants.js';
import type { PacketView } from './packet-view.js';
import type { Random, Scheduler } from './scheduler.js';

/** Where a packet goes next. view is the parse of buf when one exists and still describes it. */
export type PacketSink = (buf: Buffer, view: PacketView | undefined) => void;

export interface FaultConfig {
  /** Probability a packet is dropped. */
  loss?: number;
  /** Probability a packet is delivered twice. */
  duplicate?: number;
  /** Probability a packet is held back and delivered after the next one (or after reorderWindowMs). */
  reorder?: number;
  reorderWindowMs?: number;
  /** Fixed delay plus uniform jitter, in ms. */
  delayMs?: number;
  jitterMs?: number;
  /** Probability one bit of the transport header or payload is flipped: the ICRC then fails. */
  corrupt?: number;
}

export interface FaultStats {
  lost: number;
  duplicated: number;
  reordered: number;
  delayed: number;
  corrupted: number;
}

function checkProbability(name: string, p: number | undefined): void {
  if (p !== undefined && !(p >= 0 && p <= 1)) throw new RangeError(`fault ${name} must be a probability in [0, 1], got ${p}`);
}

export function validateFaultConfig(c: FaultConfig): void {
  checkProbability('loss', c.loss);
  checkProbability('duplicate', c.duplicate);
  checkProbability('reorder', c.reorder);
  checkProbability('corrupt', c.corrupt);
  for (const k of ['delayMs', 'jitterMs', 'reorderWindowMs'] as const) {
    const v = c[k];
    if (v !== undefined && !(v >= 0 && Number.isFinite(v))) throw new RangeError(`fault ${k} must be >= 0 ms, got ${v}`);
  }
}

/**
 * Flips one bit in a copy of the packet, somewhere the ICRC covers and no switch reads: from
 * BTH.DestQP to the end of the payload (the LRH, the GRH's variant fields and BTH.Resv8a are
 * left alone), so routing is unchanged and the receiving HCA's ICRC check is what catches it.
 */
export function corruptCopy(buf: Buffer, rnd: Random): Buffer {
  const copy = Buffer.from(buf);
  const bth = LRH_BYTES + ((copy[1]! & 3) === LNH_IBA_GLOBAL ? GRH_BYTES : 0);
  const first = bth + 5;
  const last = copy.length - ICRC_BYTES - VCRC_BYTES;
  if (last <= first || bth + BTH_BYTES > last) return copy;
  const at = first + Math.floor(rnd.next() * (last - first));
  copy[at] = copy[at]! ^ (1 << Math.floor(rnd.next() * 8));
  return copy;
}

export class FaultInjector {
  readonly stats: FaultStats = { lost: 0, duplicated: 0, reordered: 0, delayed: 0, corrupted: 0 };

  constructor(
    readonly config: FaultConfig,
    private readonly rnd: Random,
    private readonly sched: Scheduler,
    /** Told about every injected loss, so the owner counts it under FAULT_LOSS. */
    private readonly onLoss: (buf: Buffer) => void = () => undefined,
  ) {
    validateFaultConfig(config);
  }

  /** A PacketSink that applies this injector's faults, then hands packets to next; onLoss overrides the injector's. */
  wrap(next: PacketSink, onLoss: (buf: Buffer) => void = this.onLoss): PacketSink {
    const c = this.config;
    const rnd = this.rnd;
    let held: { buf: Buffer; view: PacketView | undefined; timer: { cancel(): void } } | undefined;
    const release = (): void => {
      const h = held;
      held = undefined;
      if (h !== undefined) { h.timer.cancel(); next(h.buf, h.view); }
    };
    const emit = (buf: Buffer, view: PacketView | undefined): void => {
      const delay = (c.delayMs ?? 0) + (c.jitterMs ? rnd.next() * c.jitterMs : 0);
      if (delay > 0) {
        this.stats.delayed++;
        this.sched.setTimer(delay, () => next(buf, view));
      } else {
        next(buf, view);
      }
    };
    return (buf, view) => {
      if (c.loss && rnd.next() < c.loss) { this.stats.lost++; onLoss(buf); return; }
      if (c.corrupt && rnd.next() < c.corrupt) { this.stats.corrupted++; buf = corruptCopy(buf, rnd); view = undefined; }
      const dup = c.duplicate !== undefined && c.duplicate > 0 && rnd.next() < c.duplicate;
      if (c.reorder && held === undefined && rnd.next() < c.reorder) {
        this.stats.reordered++;
        const h = { buf, view, timer: { cancel: (): void => undefined } };
        held = h;
        h.timer = this.sched.setTimer(c.reorderWindowMs ?? 1, release);
        if (dup) { this.stats.duplicated++; emit(buf, view); }
        return;
      }
      emit(buf, view);
      if (dup) { this.stats.duplicated++; emit(buf, view); }
      if (held !== undefined) release();
    };
  }
}
