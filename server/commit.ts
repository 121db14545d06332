// The one place engine writes meet a LeaseStore: commit a result's writes in order and report whether
// all are durable, so the caller sends the result's replies only then. On a failed write (another
// server took the address in a shared PostgreSQL pool, a disk error) the engine is resynchronised
// with what the store holds for that address, and the replies are not sent: the client retries.

import type { Lease, LeaseStore } from '../lease-db/lease.js';
import type { LeaseWrite, ServerEngine } from './engine.js';

export interface CommitOutcome {
  ok: boolean;
  /** The stored leases, in write order (on success). */
  leases: Lease[];
  /** The first write that failed, and why. */
  failed?: { write: LeaseWrite; error: unknown };
}

export function applyWrite(store: LeaseStore, w: LeaseWrite): Promise<Lease> {
  return w.op === 'add' ? store.add(w.lease) : store.update(w.lease);
}

/**
 * Queues every write at once (the store group-commits them, in order) and waits for all. Returns
 * ok only when every write is durable.
 */
export async function commitWrites(engine: ServerEngine, store: LeaseStore, writes: readonly LeaseWrite[], nowMs: number): Promise<CommitOutcome> {
  if (writes.length === 0) return { ok: true, leases: [] };
  if (writes.length === 1) {
    // The common case (one ACK, one lease): one promise, no settled-array.
    const w = writes[0]!;
    try {
      return { ok: true, leases: [await applyWrite(store, w)] };
    } catch (error) {
      let stored: Lease | null = null;
      try { stored = await store.get(w.lease.address); } catch { stored = null; }
      engine.resync(w.lease.address, stored, nowMs);
      return { ok: false, leases: [], failed: { write: w, error } };
    }
  }
  const settled = await Promise.allSettled(writes.map((w) => applyWrite(store, w)));
  const leases: Lease[] = [];
  let failed: CommitOutcome['failed'];
  for (let i = 0; i < settled.length; i++) {
    const s = settled[i]!;
    if (s.status === 'fulfilled') { leases.push(s.value); continue; }
    const w = writes[i]!;
    failed ??= { write: w, error: s.reason };
    let stored: Lease | null = null;
    try { stored = await store.get(w.lease.address); } catch { stored = null; }
    engine.resync(w.lease.address, stored, nowMs);
  }
  return failed === undefined ? { ok: true, leases } : { ok: false, leases, failed };
}
