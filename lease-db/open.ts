// One way to name a lease database everywhere (config, CLI): a PostgreSQL URL, "postgresql:"
// alone for the PG* environment variables, or else a SQLite file name. A writable SQLite database
// is served from a worker thread (sqlite-worker-store.ts: its fsyncs do not stop the caller's event
// loop); a read-only one (the CLI's list and export) on the calling thread.
import type { LeaseStore } from './lease.js';
import { openPgStore, type PgOptions } from './pg-store.js';
import { openSqliteStore, type SqliteOptions } from './sqlite-store.js';
import { openSqliteWorkerStore } from './sqlite-worker-store.js';

export function isPgSpec(spec: string): boolean {
  return /^postgres(ql)?:/i.test(spec);
}

export interface OpenOptions extends SqliteOptions, Omit<PgOptions, 'connectionString'> {
  /** SQLite: where the connection lives; default 'worker' unless read-only. */
  sqliteThread?: 'worker' | 'main';
}

export async function openLeaseStore(spec: string, opts: OpenOptions = {}): Promise<LeaseStore> {
  const { sqliteThread, ...rest } = opts;
  if (isPgSpec(spec)) {
    const bare = /^postgres(ql)?:$/i.test(spec);
    return openPgStore(bare ? rest : { ...rest, connectionString: spec });
  }
  const worker = (sqliteThread ?? (rest.readonly === true ? 'main' : 'worker')) === 'worker';
  return worker ? openSqliteWorkerStore(spec, rest) : openSqliteStore(spec, rest);
}
