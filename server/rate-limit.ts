// Per-client token buckets: a client may send `burst` messages at once and `perSecond` after that,
// so one client flooding the server costs it a map lookup per message and never delays others.
// The map is bounded: past `maxClients` entries the oldest half is forgotten (a forgotten client
// simply starts again with a full bucket).

export interface RateLimit { burst: number; perSecond: number }

interface Bucket { tokens: number; at: number }

export class ClientRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly limit: RateLimit, private readonly maxClients = 100_000) {}

  /** Takes one token for `client` at `nowMs`; false when the client is over its budget. */
  take(client: string, nowMs: number): boolean {
    let b = this.buckets.get(client);
    if (b === undefined) {
      if (this.buckets.size >= this.maxClients) this.prune();
      b = { tokens: this.limit.burst, at: nowMs };
      this.buckets.set(client, b);
    } else if (nowMs > b.at) {
      b.tokens = Math.min(this.limit.burst, b.tokens + ((nowMs - b.at) / 1000) * this.limit.perSecond);
      b.at = nowMs;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private prune(): void {
    let n = this.buckets.size >> 1;
    for (const k of this.buckets.keys()) {
      if (n-- <= 0) break;
      this.buckets.delete(k);
    }
  }

  get size(): number { return this.buckets.size; }
}
