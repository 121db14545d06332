// One way to name a lease database everywhere (config, CLI): a PostgreSQL URL, "postgresql:"
// alone for the PG* environment variables, or else a SQLite file name.
import type { LeaseStore } from './lease.js';
import { openPgStore, type PgOptions } from './pg-store.js';
import { openSqliteStore, type SqliteOptions } from './sqlite-store.js';

export function isPgSpec(spec: string): boolean {
  return /^postgres(ql)?:/i.test(spec);
}

export async function openLeaseStore(spec: string, opts: SqliteOptions & Omit<PgOptions, 'connectionString'> = {}):
  Promise<LeaseStore> {
  if (isPgSpec(spec)) {
    const bare = /^postgres(ql)?:$/i.test(spec);
    return openPgStore(bare ? opts : { ...opts, connectionString: spec });
  }
  return openSqliteStore(spec, opts);
}
