// Moving leases in and out of a store: every lease page by page, and an import that writes a
// lease file's leases over whatever the store holds at those addresses.
import type { Lease, LeaseStore, NewLease } from './lease.js';

export async function* allLeases(store: LeaseStore, pageSize = 5000): AsyncGenerator<Lease> {
  let after: number | undefined;
  for (;;) {
    const page = await store.list(after === undefined ? { limit: pageSize } : { after, limit: pageSize });
    yield* page;
    if (page.length < pageSize) return;
    after = page[page.length - 1]!.address;
  }
}

/**
 * Writes each lease: added where the address is free in the store, replacing the stored lease
 * otherwise. Writes go out in chunks so a backend that group-commits writes each chunk in one
 * transaction. Returns how many were added and replaced.
 */
export async function importLeases(store: LeaseStore, leases: readonly NewLease[], chunk = 1000):
  Promise<{ added: number; replaced: number }> {
  let added = 0, replaced = 0;
  for (let i = 0; i < leases.length; i += chunk) {
    await Promise.all(leases.slice(i, i + chunk).map(async (l) => {
      const cur = await store.get(l.address);
      if (cur === null) { await store.add(l); added++; } else { await store.update({ ...l, version: cur.version }); replaced++; }
    }));
  }
  return { added, replaced };
}
