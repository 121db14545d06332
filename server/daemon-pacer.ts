// Pacing of the replies that wait for a commit (ACKs): a token bucket between "the lease is
// durable" and the socket.
//
// Why: the store group-commits, so the ACKs of every REQUEST that arrived during one fsync become
// sendable at the same instant. Usually that is a handful, but when an fsync stalls (a busy disk:
// 100-150 ms seen on the project's machine under perfdhcp at 8,000 DORA/s) it is hundreds: 1,225
// ACKs left in one event-loop turn, and the peer's socket buffer (a relay's or perfdhcp's, 212 KiB
// by default: ~170-270 datagrams) overflowed and dropped most of them. An ACK the client never
// reads costs its lease's fsync for nothing and the client's retransmission.
//
// The bucket holds `burst` tokens and refills at `factor` times the rate at which commits were
// started over the last `windowMs` (the arrival rate of the work, which is smooth where the
// commits' completions are not), and never slower than `minPerMs`. In the steady state every
// reply finds a token and leaves in the turn its commit completed, as without pacing; after a
// stall the backlog leaves at about twice the offered rate, spread over 1 ms ticks, so a peer that
// keeps up with the offered rate keeps up with it. Nothing here delays a lease's durability: a
// reply is paced only after its writes are durable.
//
// Measured (bench/server-perfdhcp.bench.ts, the daemon with and without pacing side by side, 4
// rounds, load 3-4 on 2 cores): no-drop rate 4,877 DORA/s in every round paced vs 2,926-3,902
// unpaced; at 5,000/s offered, 0 drops in 4 of 4 rounds paced vs 111-793 (all in perfdhcp's
// socket buffer) unpaced; peak and CPU per ACK unchanged. A tighter bucket (16 deep, 1.5x, floor
// 4/ms) did no better within the noise.

export interface PacerOptions {
  /** Replies that may leave at once (the bucket's depth). Default 64. */
  burst?: number;
  /** The slowest refill, replies per ms. Default 8 (8,000/s). */
  minPerMs?: number;
  /** Refill at this multiple of the rate commits were started at. Default 2. */
  factor?: number;
  /** The window over which that rate is measured (ms). Default 100. */
  windowMs?: number;
}

export interface PacerClock {
  /** Monotonic ms. */
  now(): number;
  /** Calls fn after about `ms`. */
  later(fn: () => void, ms: number): void;
}

const realClock: PacerClock = {
  now: () => performance.now(),
  later: (fn, ms) => { setTimeout(fn, ms); },
};

export class ReplyPacer<T> {
  private readonly burst: number;
  private readonly minPerMs: number;
  private readonly factor: number;
  private readonly windowMs: number;
  private tokens: number;
  private lastRefill: number;
  private readonly queue: T[] = [];
  private head = 0;
  private tickScheduled = false;
  /** Commits started in the current window, and the rate (per ms) measured over the last one. */
  private started = 0;
  private windowStart: number;
  private ratePerMs = 0;
  /** Replies that had to wait for a token, and the longest backlog seen. */
  readonly stats = { delayed: 0, maxBacklog: 0 };

  constructor(private readonly send: (x: T) => void, opts: PacerOptions = {}, private readonly clock: PacerClock = realClock) {
    this.burst = opts.burst ?? 64;
    this.minPerMs = opts.minPerMs ?? 8;
    this.factor = opts.factor ?? 2;
    this.windowMs = opts.windowMs ?? 100;
    this.tokens = this.burst;
    this.lastRefill = clock.now();
    this.windowStart = this.lastRefill;
  }

  /** Replies waiting for a token. */
  get backlog(): number { return this.queue.length - this.head; }

  /** A commit was started (its reply will come to submit()): the arrival rate the refill follows. */
  commitStarted(): void {
    this.started++;
  }

  /** A reply whose writes are durable: sent now if a token is free and none waits, else queued. */
  submit(x: T): void {
    this.refill();
    if (this.backlog === 0 && this.tokens >= 1) {
      this.tokens--;
      this.send(x);
      return;
    }
    this.queue.push(x);
    this.stats.delayed++;
    if (this.backlog > this.stats.maxBacklog) this.stats.maxBacklog = this.backlog;
    this.schedule();
  }

  /** Sends everything queued now (stop: the replies of finished commits still leave). */
  flush(): void {
    while (this.backlog > 0) this.send(this.take());
    this.compact();
  }

  private take(): T {
    const x = this.queue[this.head]!;
    this.queue[this.head++] = undefined as T;
    return x;
  }

  private compact(): void {
    if (this.head === this.queue.length) { this.queue.length = 0; this.head = 0; }
    else if (this.head > 1024 && this.head * 2 > this.queue.length) { this.queue.splice(0, this.head); this.head = 0; }
  }

  private refill(): void {
    const now = this.clock.now();
    if (now - this.windowStart >= this.windowMs) {
      this.ratePerMs = this.started / (now - this.windowStart);
      this.started = 0;
      this.windowStart = now;
    }
    const perMs = Math.max(this.minPerMs, this.factor * this.ratePerMs);
    // `burst` bounds what an idle bucket saves up; with a backlog the refill is the rate itself,
    // however late the tick.
    this.tokens = Math.min(this.backlog > 0 ? Infinity : this.burst, this.tokens + (now - this.lastRefill) * perMs);
    this.lastRefill = now;
  }

  private schedule(): void {
    if (this.tickScheduled) return;
    this.tickScheduled = true;
    this.clock.later(() => this.tick(), 1);
  }

  private tick(): void {
    this.tickScheduled = false;
    this.refill();
    while (this.backlog > 0 && this.tokens >= 1) {
      this.tokens--;
      this.send(this.take());
    }
    this.compact();
    if (this.backlog > 0) this.schedule();
  }
}
