// The in-memory free-address index: one bit per address of each pool (set = in use), so
// allocate() finds a candidate without scanning the lease table. 1 bit per address is
// 0.125 bytes per lease, plus a few dozen bytes per pool; bench/lease-db.bench.ts measures it.
import type { Pool } from './lease.js';

const ALL = 0xffff_ffff;

/** One pool's bitmap with a next-fit cursor (the search resumes where the last one ended). */
export class PoolBitmap {
  readonly size: number;
  private readonly words: Uint32Array;
  private cursor: number;
  private inUse = 0;

  constructor(readonly pool: Pool, startAt = 0) {
    this.size = pool.last - pool.first + 1;
    this.words = new Uint32Array(Math.ceil(this.size / 32));
    // The tail of the last word lies outside the pool: mark it used so it is never offered.
    const tail = this.size % 32;
    if (tail !== 0) this.words[this.words.length - 1] = (ALL << tail) >>> 0;
    this.cursor = Math.min(Math.max(0, startAt), this.size - 1);
  }

  get used(): number { return this.inUse; }
  get bytes(): number { return this.words.byteLength; }

  contains(address: number): boolean {
    return address >= this.pool.first && address <= this.pool.last;
  }

  isUsed(address: number): boolean {
    const o = address - this.pool.first;
    return (this.words[o >>> 5]! & (1 << (o & 31))) !== 0;
  }

  mark(address: number): void {
    const o = address - this.pool.first;
    const w = o >>> 5, bit = 1 << (o & 31);
    if ((this.words[w]! & bit) === 0) { this.words[w] = this.words[w]! | bit; this.inUse++; }
  }

  clear(address: number): void {
    const o = address - this.pool.first;
    const w = o >>> 5, bit = 1 << (o & 31);
    if ((this.words[w]! & bit) !== 0) { this.words[w] = this.words[w]! & ~bit; this.inUse--; }
  }

  /** The first free address at or after the cursor, wrapping once; null when every bit is set. */
  next(): number | null {
    const n = this.words.length;
    let w = this.cursor >>> 5;
    // The first word is searched only from the cursor's bit; it is searched again in full at the end.
    let mask = (ALL << (this.cursor & 31)) >>> 0;
    for (let i = 0; i <= n; i++) {
      const free = ~this.words[w]! & mask;
      if (free !== 0) {
        const o = (w << 5) + (31 - Math.clz32(free & -free));
        this.cursor = o;
        return this.pool.first + o;
      }
      mask = ALL;
      w = w + 1 === n ? 0 : w + 1;
    }
    return null;
  }
}

/** The bitmaps of every configured pool, found by pool id or by address. */
export class FreeIndex {
  private readonly byId = new Map<number, PoolBitmap>();
  private readonly sorted: PoolBitmap[];

  /** `startAt(pool)` picks each bitmap's first cursor (0 = lowest address first). */
  constructor(pools: readonly Pool[], startAt: (p: Pool) => number = () => 0) {
    for (const p of pools) this.byId.set(p.id, new PoolBitmap(p, startAt(p)));
    this.sorted = [...this.byId.values()].sort((a, b) => a.pool.first - b.pool.first);
  }

  pool(id: number): PoolBitmap | undefined { return this.byId.get(id); }
  pools(): IterableIterator<PoolBitmap> { return this.byId.values(); }

  /** The pool holding an address (binary search over the pools sorted by first address). */
  find(address: number): PoolBitmap | undefined {
    let lo = 0, hi = this.sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const b = this.sorted[mid]!;
      if (address < b.pool.first) hi = mid - 1;
      else if (address > b.pool.last) lo = mid + 1;
      else return b;
    }
    return undefined;
  }

  mark(address: number): void { this.find(address)?.mark(address); }
  clear(address: number): void { this.find(address)?.clear(address); }

  get bytes(): number {
    let n = 0;
    for (const b of this.byId.values()) n += b.bytes;
    return n;
  }
}
