// The engine's view of the lease database: every lease in memory (indexed by address, by client and
// by port GUID), the offers made but not yet requested (held in memory only: an offer is a promise,
// not a lease, and is never written), and a free-address bitmap per pool (lease-db/free-index.ts).
// The engine reads and changes only this table; each change is also returned as a LeaseStore write,
// and the daemon commits those writes in order, so the table predicts each lease's stored version.

import { FreeIndex } from '../lease-db/free-index.js';
import { holdsAddress, type Lease, type NewLease, type Pool } from '../lease-db/lease.js';
import { leaseKeyText } from './identity.js';
import type { PoolConfig, SubnetConfig } from './config.js';

/** One write for the daemon to commit with LeaseStore.add() / update(), in order. */
export type LeaseWrite =
  | { op: 'add'; lease: NewLease }
  /** lease.version is the version the store holds now; the store makes it version + 1. */
  | { op: 'update'; lease: Lease };

export interface Offer {
  subnetId: number;
  address: number;
  /** The client's lease key (identity.ts leaseKeyText of option 61, or of htype + chaddr). */
  client: string;
  portGuid: bigint | null;
  /** Seconds since the epoch. */
  expires: number;
  /** The DISCOVER's xid (a REQUEST naming no address may select the offer by it: engine.ts request()). */
  xid?: number;
}

/** Who is asking, for ownership tests: the lease key, and the port GUID when port matching is on. */
export interface Owner {
  client: string;
  portGuid: bigint | null;
}

/**
 * A map per subnet: lookups use the caller's key as it is (the identity's lease-key text, the port
 * GUID as a bigint), so no key string is built per lookup.
 */
class PerSubnet<K, V> {
  private readonly maps = new Map<number, Map<K, V>>();
  get(subnetId: number, k: K): V | undefined { return this.maps.get(subnetId)?.get(k); }
  set(subnetId: number, k: K, v: V): void {
    let m = this.maps.get(subnetId);
    if (m === undefined) { m = new Map(); this.maps.set(subnetId, m); }
    m.set(k, v);
  }
  delete(subnetId: number, k: K): void { this.maps.get(subnetId)?.delete(k); }
}

export class LeaseTable {
  private readonly byAddress = new Map<number, Lease>();
  private readonly byClient = new PerSubnet<string, Lease>();
  private readonly byGuid = new PerSubnet<bigint, Lease>();
  /** The lease-key text each indexed lease is filed under in byClient (saves re-formatting it). */
  private readonly clientKeyAt = new Map<number, string>();
  private readonly offersByAddress = new Map<number, Offer>();
  private readonly offersByClient = new PerSubnet<string, Offer>();
  readonly free: FreeIndex;
  /** Addresses no dynamic allocation may take: reserved ones, and network/broadcast addresses. */
  private readonly pinned = new Set<number>();
  private readonly lastScan = new Map<number, number>();

  constructor(subnets: readonly SubnetConfig[], private readonly matchPortGuid: boolean) {
    const pools: Pool[] = subnets.flatMap((s) => s.pools.map((p) => ({ id: p.id, subnetId: s.id, first: p.first, last: p.last })));
    this.free = new FreeIndex(pools);
    for (const s of subnets) {
      for (const a of s.reservedAddresses.keys()) this.pinned.add(a);
      this.pinned.add(s.network);
      this.pinned.add(s.broadcast);
    }
    for (const a of this.pinned) this.free.mark(a);
  }

  load(leases: Iterable<Lease>, now: number): void {
    for (const l of leases) this.index(l, now);
  }

  all(): IterableIterator<Lease> { return this.byAddress.values(); }
  get size(): number { return this.byAddress.size; }

  get(address: number): Lease | undefined { return this.byAddress.get(address); }

  /** The client's lease in the subnet: by lease key, else (port matching on) by port GUID. */
  forClient(subnetId: number, who: Owner): Lease | undefined {
    const l = this.byClient.get(subnetId, who.client);
    if (l !== undefined || !this.matchPortGuid || who.portGuid === null) return l;
    return this.byGuid.get(subnetId, who.portGuid);
  }

  /** True when the lease or offer is this client's (same key, or same port when port matching is on). */
  owns(who: Owner, clientId: Buffer | null | string, portGuid: bigint | null): boolean {
    const key = typeof clientId === 'string' ? clientId : clientId === null ? null : leaseKeyText(clientId);
    if (key !== null && key === who.client) return true;
    return this.matchPortGuid && who.portGuid !== null && portGuid === who.portGuid;
  }

  /** Whether `address` may be given to `who` now: no one else holds, is offered or has reserved it. */
  availableTo(address: number, who: Owner, now: number, reservedForWho: boolean): boolean {
    if (this.pinned.has(address) && !reservedForWho) return false;
    const l = this.byAddress.get(address);
    if (l !== undefined && holdsAddress(l, now) && !this.owns(who, l.clientId, l.portGuid)) return false;
    const o = this.offersByAddress.get(address);
    if (o !== undefined && o.expires > now && !this.owns(who, o.client, o.portGuid)) return false;
    return true;
  }

  /** A free address of `pool` for `who`, or null. Reads the bitmap, re-checking each candidate. */
  pick(pool: PoolConfig, who: Owner, now: number): number | null {
    const bm = this.free.pool(pool.id);
    if (bm === undefined) return null;
    for (let pass = 0; pass < 2; pass++) {
      for (let tries = 0; tries <= bm.size; tries++) {
        const a = bm.next();
        if (a === null) break;
        if (this.availableTo(a, who, now, false)) return a;
        bm.mark(a);
      }
      // The bitmap follows states, not the clock: leases and offers past their time still hold bits.
      // Rescan the pool at most once per second, so a DISCOVER flood on a full pool stays cheap.
      if (pass === 0 && !this.rescan(pool, now)) break;
    }
    return null;
  }

  private rescan(pool: PoolConfig, now: number): boolean {
    const last = this.lastScan.get(pool.id);
    if (last !== undefined && last >= now) return false;
    this.lastScan.set(pool.id, now);
    const bm = this.free.pool(pool.id)!;
    let cleared = 0;
    for (let a = pool.first; a <= pool.last; a++) {
      if (this.pinned.has(a) || !bm.isUsed(a)) continue;
      const l = this.byAddress.get(a);
      const o = this.offersByAddress.get(a);
      if ((l === undefined || !holdsAddress(l, now)) && (o === undefined || o.expires <= now)) {
        bm.clear(a);
        cleared++;
      }
    }
    return cleared > 0;
  }

  // ---- offers ----

  offerFor(subnetId: number, client: string): Offer | undefined {
    return this.offersByClient.get(subnetId, client);
  }

  addOffer(o: Offer): void {
    this.dropOffer(o.subnetId, o.client);
    this.offersByAddress.set(o.address, o);
    this.offersByClient.set(o.subnetId, o.client, o);
    this.free.mark(o.address);
  }

  dropOffer(subnetId: number, client: string): void {
    const o = this.offersByClient.get(subnetId, client);
    if (o === undefined) return;
    this.offersByClient.delete(subnetId, client);
    if (this.offersByAddress.get(o.address) === o) {
      this.offersByAddress.delete(o.address);
      const l = this.byAddress.get(o.address);
      if (!this.pinned.has(o.address) && (l === undefined || l.state === 'released' || l.state === 'expired')) this.free.clear(o.address);
    }
  }

  /** Forgets offers past their time (the sweep). */
  expireOffers(now: number): number {
    let n = 0;
    for (const o of [...this.offersByAddress.values()]) {
      if (o.expires <= now) { this.dropOffer(o.subnetId, o.client); n++; }
    }
    return n;
  }

  // ---- writes ----

  /**
   * Puts `next` at its address and returns the store write that makes it durable: an update against
   * the version the table holds (the store will hold version + 1), or an add. `clientKey` is
   * leaseKeyText(next.clientId) when the caller has it already (the engine's identity does).
   */
  write(next: NewLease, now: number, clientKey?: string): LeaseWrite {
    const cur = this.byAddress.get(next.address);
    if (cur === undefined) {
      this.index({ ...next, version: 1 }, now, clientKey);
      return { op: 'add', lease: next };
    }
    const lease: Lease = { ...next, version: cur.version };
    this.index({ ...next, version: cur.version + 1 }, now, clientKey);
    return { op: 'update', lease };
  }

  /** Replaces what the table holds at `address` with the store's truth (after a failed commit). */
  resync(address: number, stored: Lease | null, now: number): void {
    const cur = this.byAddress.get(address);
    if (cur !== undefined) this.unindex(cur);
    if (stored !== null) this.index(stored, now);
    else if (!this.pinned.has(address)) this.free.clear(address);
  }

  private unindex(l: Lease): void {
    this.byAddress.delete(l.address);
    const k = this.clientKeyAt.get(l.address);
    if (k !== undefined) {
      this.clientKeyAt.delete(l.address);
      if (this.byClient.get(l.subnetId, k) === l) this.byClient.delete(l.subnetId, k);
    }
    if (l.portGuid !== null && this.byGuid.get(l.subnetId, l.portGuid) === l) this.byGuid.delete(l.subnetId, l.portGuid);
  }

  /** `clientKey`: leaseKeyText(l.clientId) when the caller has it already. */
  private index(l: Lease, now: number, clientKey?: string): void {
    const cur = this.byAddress.get(l.address);
    if (cur !== undefined) this.unindex(cur);
    this.byAddress.set(l.address, l);
    // A client's newest lease wins its index entry; an older one stays reachable by address.
    if (l.clientId !== null) {
      const k = clientKey ?? leaseKeyText(l.clientId);
      this.clientKeyAt.set(l.address, k);
      const other = this.byClient.get(l.subnetId, k);
      if (other === undefined || other.start <= l.start || !holdsAddress(other, now)) this.byClient.set(l.subnetId, k, l);
    }
    if (l.portGuid !== null && l.state !== 'declined') {
      const other = this.byGuid.get(l.subnetId, l.portGuid);
      if (other === undefined || other.start <= l.start || !holdsAddress(other, now)) this.byGuid.set(l.subnetId, l.portGuid, l);
    }
    if (holdsAddress(l, now) || this.pinned.has(l.address)) this.free.mark(l.address);
    else if (!this.offersByAddress.has(l.address)) this.free.clear(l.address);
  }
}
