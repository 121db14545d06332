// Time for the fabric and everything above it: one interface, two clocks. Tests and large
// simulations use VirtualScheduler (timers run in virtual time, deterministically, in the order
// they are due); daemons use RealScheduler. Nothing in link/fabric or link/verbs reads the wall
// clock or calls setTimeout directly.

export interface Timer {
  cancel(): void;
}

export interface Scheduler {
  /** Milliseconds since an arbitrary origin. */
  now(): number;
  /** Runs fn once, delayMs from now (0 = as soon as the current work is done). */
  setTimer(delayMs: number, fn: () => void): Timer;
}

/** A heap entry is its own Timer handle: no closure per timer (tsx's keepNames makes closures costly). */
class Entry implements Timer {
  cancelled = false;

  constructor(readonly at: number, readonly seq: number, readonly fn: () => void) {}

  cancel(): void {
    this.cancelled = true;
  }
}

/**
 * A binary heap of timers ordered by (due time, creation order). Time moves only when a test
 * calls advance(), runUntilIdle() or run(); timers due at the same time run in creation order.
 */
export class VirtualScheduler implements Scheduler {
  private t: number;
  private seq = 0;
  private readonly heap: Entry[] = [];
  private readonly holds = new Set<Hold>();

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const e = new Entry(this.t + Math.max(0, delayMs), this.seq++, fn);
    this.push(e);
    return e;
  }

  /** Number of timers not yet run or cancelled. */
  get pending(): number {
    return this.heap.reduce((n, e) => n + (e.cancelled ? 0 : 1), 0);
  }

  /** Due time of the next live timer, or undefined. */
  nextDue(): number | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0]?.at;
  }

  /** Runs every timer due at or before now (including ones they schedule for now). Returns how many ran. */
  runDue(): number {
    let n = 0;
    for (;;) {
      const next = this.nextDue();
      if (next === undefined || next > this.t) return n;
      const e = this.pop()!;
      e.fn();
      n++;
    }
  }

  /** Moves time forward by ms, running timers in due order at their due times. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = this.nextDue();
      if (next === undefined || next > end) break;
      this.t = Math.max(this.t, next);
      this.runDue();
    }
    this.t = end;
  }

  /** Jumps from timer to timer until none is left (bounded by maxMs of virtual time). */
  runUntilIdle(maxMs = 3_600_000): void {
    const end = this.t + maxMs;
    for (;;) {
      const next = this.nextDue();
      if (next === undefined || next > end) return;
      this.t = Math.max(this.t, next);
      this.runDue();
    }
  }

  /**
   * Real work virtual time waits for (a lease write on a worker thread, a PostgreSQL query): run()
   * does not move the clock past `at` until `until` settles, and waits for it without spinning.
   */
  hold(at: number, until: Promise<unknown>): void {
    const h: Hold = { at, until: until.then(noop, noop) };
    this.holds.add(h);
    void h.until.then(() => { this.holds.delete(h); });
  }

  /**
   * Drives virtual time until promise settles: lets pending promise callbacks run, runs due
   * timers, and jumps to the next timer when nothing else can happen (never past a hold()).
   * Rejects if the promise can never settle (no timers left) or maxMs of virtual time pass.
   *
   * Between passes over due timers it drains the microtask queue (a process.nextTick runs after
   * every queued promise callback, cascades included) and yields to the real event loop only every
   * YIELD_EVERY passes and before the clock moves: a macrotask turn per timer was most of the
   * scheduler's cost in a 10,000-host run. Real I/O (a worker's answer, setImmediate) therefore
   * always gets a turn before virtual time passes.
   */
  async run<T>(promise: Promise<T>, maxMs = 3_600_000): Promise<T> {
    let settled = false;
    const watched = promise.finally(() => { settled = true; });
    watched.catch(() => undefined);
    const end = this.t + maxMs;
    let passes = 0;
    for (;;) {
      if (++passes >= YIELD_EVERY) {
        passes = 0;
        await turn();
      } else {
        await drain();
      }
      if (settled) return watched;
      if (this.runDue() > 0) continue;
      if (passes !== 0) {
        // Nothing due now: let real I/O in before deciding that nothing else can happen.
        passes = 0;
        await turn();
        if (settled) return watched;
        if (this.runDue() > 0) continue;
      }
      const next = this.nextDue();
      const horizon = this.holdHorizon();
      if (horizon !== undefined && (next === undefined || next > horizon)) {
        if (horizon > this.t) this.t = horizon;
        await Promise.race([...this.holds].map((h) => h.until));
        continue;
      }
      if (next === undefined || next > end) {
        await turn();
        if (settled) return watched;
        throw new Error(`VirtualScheduler.run: promise still pending at t=${this.t} ms and no timer left`);
      }
      this.t = next;
    }
  }

  private holdHorizon(): number | undefined {
    let at: number | undefined;
    for (const h of this.holds) if (at === undefined || h.at < at) at = h.at;
    return at;
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (!before(e, parent)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = e;
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      // Sift `last` down from the root, moving smaller children up into the hole.
      const n = h.length;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && before(h[r]!, h[l]!) ? r : l;
        if (!before(h[m]!, last)) break;
        h[i] = h[m]!;
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}

interface Hold {
  at: number;
  until: Promise<void>;
}

const noop = (): void => undefined;

/** Timer passes run() makes between turns of the real event loop (see run()). */
const YIELD_EVERY = 32;

/** Resolves after every promise callback queued so far has run (nextTick runs after the microtask queue). */
function drain(): Promise<void> {
  return new Promise((resolve) => { process.nextTick(resolve); });
}

/** Resolves after one turn of the real event loop (I/O callbacks, setImmediate). */
function turn(): Promise<void> {
  return new Promise((resolve) => { setImmediate(resolve); });
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Wall-clock time for daemons and benchmarks. */
export class RealScheduler implements Scheduler {
  now(): number {
    return performance.now();
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    if (delayMs <= 0) {
      const h = setImmediate(fn);
      return { cancel: () => clearImmediate(h) };
    }
    const h = setTimeout(fn, delayMs);
    return { cancel: () => clearTimeout(h) };
  }
}

/** Seeded randomness (mulberry32): every fault and retry jitter draws from one of these. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return {
    next(): number {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}
