// Lease database: durable allocations per second — SQLite with group commit, SQLite with one
// transaction per lease, PostgreSQL — all in the same run and with the same number of callers in
// flight; and what the free-address index costs in memory at 100k and 1M leases.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { FreeIndex } from '../lease-db/free-index.js';
import type { LeaseStore, Pool } from '../lease-db/lease.js';
import { openPgStore, type PgLeaseStore } from '../lease-db/pg-store.js';
import { openSqliteStore, type SqliteLeaseStore } from '../lease-db/sqlite-store.js';
import type { BenchResult } from './harness.js';

const SUITE = 'lease-db';
const NOW = 1_800_000_000;
const POOL: Pool = { id: 1, subnetId: 1, first: 0x0a000000, last: 0x0a0fffff };
const PG_URL = process.env['LEASE_DB_BENCH_PG'] ??
  `postgresql://${process.env['PGUSER'] ?? 'postgres'}@${process.env['PGHOST'] ?? '127.0.0.1'}:${process.env['PGPORT'] ?? '5432'}/${process.env['PGDATABASE'] ?? 'test'}`;

/** n allocations, `inFlight` callers each waiting for its previous lease to be durable. Returns leases/s. */
async function allocations(store: LeaseStore, n: number, inFlight: number): Promise<number> {
  let next = 0;
  const caller = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const clientId = Buffer.alloc(8);
      clientId.writeUInt32BE(i, 4);
      await store.allocate({ poolId: 1, clientId, state: 'bound', lifetime: 3600, now: NOW, server: 'bench' });
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, caller));
  return n / ((performance.now() - t0) / 1000);
}

async function pgUp(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try { await c.connect(); return true; } catch { return false; } finally { await c.end().catch(() => undefined); }
}

function indexBytesPerLease(n: number): { exact: number; measured: number } {
  const before = process.memoryUsage();
  const idx = new FreeIndex([{ id: 1, subnetId: 1, first: 0x0a000000, last: 0x0a000000 + n - 1 }]);
  const bm = idx.pool(1)!;
  for (let i = 0; i < n; i++) bm.mark(bm.next()!);
  const after = process.memoryUsage();
  const measured = (after.arrayBuffers - before.arrayBuffers + Math.max(0, after.heapUsed - before.heapUsed)) / n;
  return { exact: idx.bytes / n, measured };
}

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'lease-bench-'));
  const out: BenchResult[] = [];
  const IN_FLIGHT = 64;
  try {
    const group = await openSqliteStore(join(dir, 'group.db'));
    await group.configurePools([POOL]);
    const gN = 20_000;
    const gRate = await allocations(group, gN, IN_FLIGHT);
    const batch = group.commits.writes / group.commits.transactions;
    await group.close();

    const single = await openSqliteStore(join(dir, 'single.db'), { groupCommit: false });
    await single.configurePools([POOL]);
    const sRate = await allocations(single, 1_500, IN_FLIGHT);
    await single.close();

    out.push({ suite: SUITE, name: 'SQLite durable allocations, one transaction per lease', value: sRate, unit: 'leases/s',
      note: `WAL, synchronous=FULL, ${IN_FLIGHT} callers in flight, 1,500 leases` });
    out.push({ suite: SUITE, name: 'SQLite durable allocations, group commit', value: gRate, unit: 'leases/s',
      ratio: { to: 'SQLite one transaction per lease', value: gRate / sRate },
      note: `WAL, synchronous=FULL, ${IN_FLIGHT} callers in flight, ${gN.toLocaleString('en-US')} leases, ${batch.toFixed(1)} leases per commit on average` });

    if (await pgUp()) {
      const schema = `lease_bench_${process.pid}`;
      const store: PgLeaseStore = await openPgStore({ connectionString: PG_URL, schema, poolSize: 8 });
      try {
        await store.configurePools([POOL]);
        const pRate = await allocations(store, 3_000, IN_FLIGHT);
        out.push({ suite: SUITE, name: 'PostgreSQL durable allocations (one statement each)', value: pRate, unit: 'leases/s',
          ratio: { to: 'SQLite one transaction per lease', value: pRate / sRate },
          note: `8 connections, ${IN_FLIGHT} callers in flight, 3,000 leases, synchronous_commit on, ${store.counters.conflicts} conflicts` });
      } finally {
        await store.close();
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await c.end();
      }
    } else {
      out.push({ suite: SUITE, name: 'PostgreSQL durable allocations (one statement each)', value: 0, unit: 'leases/s',
        note: `not measured: no PostgreSQL at ${PG_URL}` });
    }

    // Memory: the index is all the store keeps per lease in the process (lookups go to SQL).
    for (const n of [100_000, 1_000_000]) {
      const b = indexBytesPerLease(n);
      out.push({ suite: SUITE, name: `free-address index memory, ${n.toLocaleString('en-US')} leases`, value: b.measured,
        unit: 'bytes/lease', note: `bitmap size ${b.exact.toFixed(3)} B/lease (1 bit per pool address)` });
    }

    // The index built from a real database: how long reopening 100k leases takes, and the file size.
    const big = await openSqliteStore(join(dir, 'big.db'));
    await big.configurePools([POOL]);
    await allocations(big, 100_000, 4096);
    await big.close();
    const t0 = performance.now();
    const re: SqliteLeaseStore = await openSqliteStore(join(dir, 'big.db'));
    await re.configurePools([POOL]);
    const ms = performance.now() - t0;
    out.push({ suite: SUITE, name: 'open + rebuild index, 100,000 leases (SQLite)', value: ms, unit: 'ms',
      note: `index ${re.indexBytes.toLocaleString('en-US')} B for a ${(POOL.last - POOL.first + 1).toLocaleString('en-US')}-address pool; ` +
        `file ${(statSync(join(dir, 'big.db')).size / 100_000).toFixed(0)} B/lease on disk` });
    await re.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
