// PostgreSQL for tests: the machine's server (127.0.0.1:5432, trust auth, database `test`) unless
// PG* variables say otherwise; one schema per test run, dropped afterwards, so runs never collide.
import pg from 'pg';

export const PG_URL = process.env['LEASE_DB_TEST_PG'] ??
  `postgresql://${process.env['PGUSER'] ?? 'postgres'}@${process.env['PGHOST'] ?? '127.0.0.1'}:${process.env['PGPORT'] ?? '5432'}/${process.env['PGDATABASE'] ?? 'test'}`;

/** null if a server answers; otherwise why not. */
export async function pgUnavailable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (err) {
    return `${PG_URL}: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

let n = 0;
export function schemaName(tag: string): string {
  return `lease_test_${tag}_${process.pid}_${Date.now().toString(36)}_${n++}`;
}

export async function pgExec(sql: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try { return await c.query(sql, values); } finally { await c.end(); }
}

export async function dropSchemas(names: Iterable<string>): Promise<void> {
  for (const s of names) await pgExec(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
}

/**
 * Whether PostgreSQL tests run: always under CI=true (a missing server then fails them), else only
 * when a server answers, with a visible skip message when none does.
 */
export async function pgGate(): Promise<{ run: boolean; skip: string | false }> {
  const why = await pgUnavailable();
  if (why === null) return { run: true, skip: false };
  if (process.env['CI'] === 'true') return { run: true, skip: false };
  return { run: false, skip: `PostgreSQL tests skipped: no server answers (${why})` };
}
