// PostgreSQL (pg 8) for several servers sharing pools. Every write is one autocommit statement,
// so it is durable when PostgreSQL answers. Allocation is "unique key + conditional upsert": each
// server proposes a candidate from its own free-address bitmap, and
//   INSERT ... ON CONFLICT (address) DO UPDATE ... WHERE <the old lease no longer holds it>
// either takes the address or returns no row; the primary key, not any lock we hold, is what
// guarantees one holder per address. A miss marks the address in the local bitmap and the next
// candidate is tried; servers start at random points of a pool so they rarely propose the same one.
// A lost connection fails the statement; the store retries with backoff, and every write carries
// an op_id so a retry of a write that did commit finds it instead of writing it twice.
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { checkLease, formatIPv4 } from './address.js';
import { LeaseStoreError, isLeaseStoreError } from './errors.js';
import { FreeIndex } from './free-index.js';
import {
  type AllocateRequest, type Lease, type LeaseStore, type ListQuery, type NewLease, type Pool,
  type PoolStats,
} from './lease.js';
import { guidParam, rowToLease, type LeaseRow } from './row.js';
import { LEASE_COLUMNS, MIGRATIONS, SCHEMA_VERSION } from './schema.js';

export interface PgOptions {
  /** postgres://user@host:port/db; without it the PG* environment variables (PGHOST, PGPORT, ...) apply. */
  connectionString?: string;
  /** A schema of its own (created if missing), e.g. one per test run; default: the server's search_path. */
  schema?: string;
  /** Connections in the pool (default 8). */
  poolSize?: number;
  /** How long one operation keeps retrying a lost connection before it fails with DB_UNAVAILABLE (default 10 s). */
  retryWindowMs?: number;
  /** Where each pool's first candidate is: 'random' (default) spreads servers over the pool. */
  start?: 'lowest' | 'random';
  /** Migrate only up to this version (tests of the migrations themselves). */
  targetVersion?: number;
  /** Test hook, called after a write's statement returned and before the store resolves it. */
  afterWrite?: (op: string) => void;
}

const MAX_PAGE = 10_000;
/** Addresses re-read from the table after a candidate turns out to be held elsewhere. */
const RESYNC_WINDOW = 1024;
/** SQLSTATEs and socket errors after which the statement's fate is unknown and a retry is right. */
const CONNECTION_CODES = new Set([
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300',
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH',
]);

export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  const msg = err instanceof Error ? err.message : '';
  return /Connection terminated|terminating connection|connection error|timeout exceeded when trying to connect|not queryable/i.test(msg);
}

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function describe(opts: PgOptions): string {
  let where: string;
  if (opts.connectionString !== undefined) {
    try {
      const u = new URL(opts.connectionString);
      u.password = '';
      where = u.toString();
    } catch { where = 'postgresql://(unparsable URL)'; }
  } else {
    const e = process.env;
    where = `postgresql://${e['PGUSER'] ?? ''}@${e['PGHOST'] ?? 'localhost'}:${e['PGPORT'] ?? '5432'}/${e['PGDATABASE'] ?? ''}`;
  }
  return opts.schema === undefined ? where : `${where} (schema ${opts.schema})`;
}

export async function openPgStore(opts: PgOptions = {}): Promise<PgLeaseStore> {
  const location = describe(opts);
  const config: pg.PoolConfig = {
    max: opts.poolSize ?? 8,
    connectionTimeoutMillis: 5000,
    application_name: 'ipoib-dhcpd',
  };
  if (opts.connectionString !== undefined) config.connectionString = opts.connectionString;
  if (opts.schema !== undefined) config.options = `-c search_path=${ident(opts.schema)}`;
  const pool = new pg.Pool(config);
  // An idle connection whose backend dies emits 'error' on the pool; the pool drops it, and the
  // next query opens a new one. Without a listener Node would treat it as an uncaught error.
  pool.on('error', () => undefined);
  const store = new PgLeaseStore(pool, location, opts);
  try {
    await store.retry(async () => migratePg(pool, location, opts));
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  return store;
}

async function migratePg(pool: pg.Pool, location: string, opts: PgOptions): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    // Several servers may start at once against a new database: one migrates, the others wait.
    await c.query("SELECT pg_advisory_xact_lock(hashtext('ipoib-dhcp lease schema'))");
    if (opts.schema !== undefined) await c.query(`CREATE SCHEMA IF NOT EXISTS ${ident(opts.schema)}`);
    const t = await c.query<{ sv: string | null; lease: string | null }>(
      "SELECT to_regclass('schema_version')::text AS sv, to_regclass('lease')::text AS lease");
    let version = 0;
    if (t.rows[0]!.sv === null) {
      if (t.rows[0]!.lease !== null) {
        throw new LeaseStoreError('DB_NOT_LEASE_DB', location, 'has a lease table but no schema_version table: not ours');
      }
      await c.query('CREATE TABLE schema_version (version INTEGER NOT NULL)');
    } else {
      const v = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
      version = v.rows[0]!.v ?? 0;
    }
    if (version > SCHEMA_VERSION) {
      throw new LeaseStoreError('DB_TOO_NEW', location,
        `schema version ${version} is newer than this program supports (${SCHEMA_VERSION}); use a newer ipoib-dhcpd`);
    }
    const target = opts.targetVersion ?? SCHEMA_VERSION;
    for (const m of MIGRATIONS) {
      if (m.version <= version || m.version > target) continue;
      for (const sql of m.pg) await c.query(sql);
      await c.query('DELETE FROM schema_version');
      await c.query('INSERT INTO schema_version (version) VALUES ($1)', [m.version]);
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

const SETS = 'subnet_id = EXCLUDED.subnet_id, client_id = EXCLUDED.client_id, port_guid = EXCLUDED.port_guid, ' +
  'hwaddr = EXCLUDED.hwaddr, hostname = EXCLUDED.hostname, state = EXCLUDED.state, ' +
  'start_time = EXCLUDED.start_time, expiry = EXCLUDED.expiry, server = EXCLUDED.server, op_id = EXCLUDED.op_id';

const SQL = {
  get: `SELECT ${LEASE_COLUMNS} FROM lease WHERE address = $1`,
  byOp: `SELECT ${LEASE_COLUMNS} FROM lease WHERE op_id = $1 ORDER BY address`,
  byClient: `SELECT ${LEASE_COLUMNS} FROM lease WHERE subnet_id = $1 AND client_id = $2 ORDER BY expiry DESC LIMIT 1`,
  byGuid: `SELECT ${LEASE_COLUMNS} FROM lease WHERE port_guid = $1 ORDER BY address`,
  byHw: `SELECT ${LEASE_COLUMNS} FROM lease WHERE hwaddr = $1 ORDER BY address`,
  held: `SELECT address FROM lease WHERE address BETWEEN $1 AND $2 AND state IN ('offered','bound','declined')`,
  insert: `INSERT INTO lease (${LEASE_COLUMNS}, op_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,1,$11)
    ON CONFLICT (address) DO NOTHING RETURNING ${LEASE_COLUMNS}`,
  update: `UPDATE lease SET subnet_id = $2, client_id = $3, port_guid = $4, hwaddr = $5, hostname = $6, state = $7,
    start_time = $8, expiry = $9, server = $10, op_id = $11, version = version + 1
    WHERE address = $1 AND version = $12 RETURNING ${LEASE_COLUMNS}`,
  delete: 'DELETE FROM lease WHERE address = $1',
  claim: `INSERT INTO lease AS l (${LEASE_COLUMNS}, op_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,1,$11)
    ON CONFLICT (address) DO UPDATE SET ${SETS}, version = l.version + 1
    WHERE l.state IN ('released','expired') OR l.expiry <= $12
    RETURNING ${LEASE_COLUMNS}`,
  reusable: `SELECT address FROM lease WHERE address BETWEEN $1 AND $2
    AND (state IN ('released','expired') OR expiry <= $3) ORDER BY address LIMIT 8`,
  decline: `UPDATE lease SET state = 'declined', client_id = NULL, port_guid = NULL, hwaddr = NULL, hostname = NULL,
    start_time = $2, expiry = $3, server = $4, op_id = $5, version = version + 1
    WHERE address = $1 RETURNING ${LEASE_COLUMNS}`,
  release: `UPDATE lease SET state = 'released', expiry = $3, server = $4, op_id = $5, version = version + 1
    WHERE address = $1 AND state IN ('offered','bound') AND ($2::bytea IS NULL OR client_id = $2)
    RETURNING ${LEASE_COLUMNS}`,
  // SKIP LOCKED: two servers sweeping at once each take different leases instead of waiting.
  expire: `UPDATE lease SET state = 'expired', op_id = $3, version = version + 1 WHERE address IN
    (SELECT address FROM lease WHERE state IN ('offered','bound','declined') AND expiry <= $1
     ORDER BY expiry LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING ${LEASE_COLUMNS}`,
  poolCounts: `SELECT state, count(*)::int AS n FROM lease WHERE address BETWEEN $1 AND $2
    AND state IN ('offered','bound','declined') AND expiry > $3 GROUP BY state`,
} as const;

type SqlName = keyof typeof SQL;

export class PgLeaseStore implements LeaseStore {
  readonly backend = 'postgresql' as const;
  private index = new FreeIndex([]);
  private pools: readonly Pool[] = [];
  private closed = false;
  private readonly retryWindowMs: number;
  /** What allocation and recovery cost: candidates another server held, and statements retried. */
  readonly counters = { conflicts: 0, retries: 0, recoveredByOpId: 0 };

  constructor(private readonly pool: pg.Pool, readonly location: string, private readonly opts: PgOptions) {
    this.retryWindowMs = opts.retryWindowMs ?? 10_000;
  }

  /** Runs attempt until it succeeds, fails for a reason other than the connection, or time runs out. */
  async retry<T>(attempt: (first: boolean) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.retryWindowMs;
    let delay = 25;
    for (let first = true; ; first = false) {
      try {
        return await attempt(first);
      } catch (err) {
        if (!isConnectionError(err)) throw this.mapError(err);
        if (this.closed) throw new LeaseStoreError('CLOSED', this.location, 'the lease store is closed');
        if (Date.now() >= deadline) {
          throw new LeaseStoreError('DB_UNAVAILABLE', this.location,
            `PostgreSQL unreachable for ${this.retryWindowMs} ms (${err instanceof Error ? err.message : String(err)})`,
            { cause: err });
        }
        this.counters.retries++;
        await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
        delay = Math.min(delay * 2, 1000);
      }
    }
  }

  private mapError(err: unknown): unknown {
    if (isLeaseStoreError(err)) return err;
    const code = (err as { code?: string }).code ?? '';
    const msg = err instanceof Error ? err.message : String(err);
    return new LeaseStoreError('DB_IO', this.location, `${code || 'error'}: ${msg}`, { cause: err });
  }

  private async q(name: SqlName, values: unknown[]): Promise<LeaseRow[]> {
    if (this.closed) throw new LeaseStoreError('CLOSED', this.location, 'the lease store is closed');
    const r = await this.pool.query<LeaseRow>({ name, text: SQL[name], values });
    return r.rows;
  }

  private async rows(name: SqlName, values: unknown[]): Promise<Lease[]> {
    return this.retry(async () => (await this.q(name, values)).map(rowToLease));
  }

  /**
   * One write: `run(opId)` executes it; on a retry after a lost connection the rows carrying opId
   * are looked up first, and if the lost attempt committed they are its result.
   */
  private async write<T>(op: string, run: (opId: string) => Promise<T>, done: (rows: Lease[]) => T | undefined): Promise<T> {
    const opId = randomUUID();
    return this.retry(async (first) => {
      if (!first) {
        const prior = (await this.q('byOp', [opId])).map(rowToLease);
        const r = prior.length > 0 ? done(prior) : undefined;
        if (r !== undefined) { this.counters.recoveredByOpId++; return r; }
      }
      const out = await run(opId);
      this.opts.afterWrite?.(op);
      return out;
    });
  }

  private vals(l: NewLease, opId: string): unknown[] {
    const g = guidParam(l.portGuid);
    return [l.address, l.subnetId, l.clientId, g === null ? null : g.toString(), l.hwaddr, l.hostname, l.state,
      l.start, l.expiry, l.server, opId];
  }

  private track(l: Lease): Lease {
    if (l.state === 'released' || l.state === 'expired') this.index.clear(l.address); else this.index.mark(l.address);
    return l;
  }

  async configurePools(pools: readonly Pool[]): Promise<void> {
    this.pools = [...pools];
    const random = (this.opts.start ?? 'random') === 'random';
    const index = new FreeIndex(this.pools, (p) => (random ? Math.floor(Math.random() * (p.last - p.first + 1)) : 0));
    for (const bm of index.pools()) {
      const rows = await this.retry(() => this.q('held', [bm.pool.first, bm.pool.last]));
      for (const r of rows) bm.mark(Number(r.address));
    }
    this.index = index;
  }

  get indexBytes(): number { return this.index.bytes; }

  async add(lease: NewLease): Promise<Lease> {
    checkLease(lease, this.location);
    return this.write('add', async (opId) => {
      const r = await this.q('insert', this.vals(lease, opId));
      if (r.length === 0) throw new LeaseStoreError('CONFLICT', this.location, `${formatIPv4(lease.address)} already has a lease`);
      return this.track(rowToLease(r[0]!));
    }, (rows) => rows[0]);
  }

  async update(lease: Lease): Promise<Lease> {
    checkLease(lease, this.location);
    return this.write('update', async (opId) => {
      const r = await this.q('update', [...this.vals(lease, opId).slice(0, 10), opId, lease.version]);
      if (r.length > 0) return this.track(rowToLease(r[0]!));
      const cur = await this.q('get', [lease.address]);
      throw cur.length === 0
        ? new LeaseStoreError('NOT_FOUND', this.location, `no lease at ${formatIPv4(lease.address)}`)
        : new LeaseStoreError('CONFLICT', this.location,
          `${formatIPv4(lease.address)}: version ${lease.version} is stale (now ${Number(cur[0]!.version)})`);
    }, (rows) => rows[0]);
  }

  async delete(address: number): Promise<boolean> {
    const r = await this.retry(() => this.pool.query(SQL.delete, [address]));
    this.index.clear(address);
    return (r.rowCount ?? 0) > 0;
  }

  async get(address: number): Promise<Lease | null> {
    return (await this.rows('get', [address]))[0] ?? null;
  }

  async getByClientId(subnetId: number, clientId: Buffer): Promise<Lease | null> {
    return (await this.rows('byClient', [subnetId, clientId]))[0] ?? null;
  }

  async getByPortGuid(portGuid: bigint): Promise<Lease[]> {
    return this.rows('byGuid', [guidParam(portGuid)!.toString()]);
  }

  async getByHwaddr(hwaddr: Buffer): Promise<Lease[]> {
    return this.rows('byHw', [hwaddr]);
  }

  async list(q: ListQuery = {}): Promise<Lease[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    if (q.subnetId !== undefined) { values.push(q.subnetId); where.push(`subnet_id = $${values.length}`); }
    if (q.state !== undefined) { values.push(q.state); where.push(`state = $${values.length}`); }
    if (q.after !== undefined) { values.push(q.after); where.push(`address > $${values.length}`); }
    values.push(Math.min(Math.max(1, q.limit ?? 1000), MAX_PAGE));
    const text = `SELECT ${LEASE_COLUMNS} FROM lease ${where.length === 0 ? '' : 'WHERE ' + where.join(' AND ')}
      ORDER BY address LIMIT $${values.length}`;
    return this.retry(async () => (await this.pool.query<LeaseRow>(text, values)).rows.map(rowToLease));
  }

  async allocate(req: AllocateRequest): Promise<Lease> {
    const bm = this.index.pool(req.poolId);
    if (bm === undefined) throw new LeaseStoreError('NO_POOL', this.location, `pool ${req.poolId} is not configured`);
    const base: NewLease = {
      address: bm.pool.first, subnetId: bm.pool.subnetId, clientId: req.clientId, portGuid: req.portGuid ?? null,
      hwaddr: req.hwaddr ?? null, hostname: req.hostname ?? null, state: req.state, start: req.now,
      expiry: req.now + req.lifetime, server: req.server,
    };
    checkLease(base, this.location);
    return this.write('allocate', async (opId) => {
      const claim = async (address: number): Promise<Lease | null> => {
        const r = await this.q('claim', [...this.vals({ ...base, address }, opId), req.now]);
        return r.length === 0 ? null : rowToLease(r[0]!);
      };
      for (;;) {
        const cand = bm.next();
        if (cand === null) break;
        // Marked before the await, so concurrent allocations in this process never propose the same address.
        bm.mark(cand);
        const l = await claim(cand);
        if (l !== null) return l;
        this.counters.conflicts++;
        // Another server holds it, and probably its neighbours too: learn a window of the pool
        // with one read instead of one failed write per address.
        const held = await this.q('held', [cand, Math.min(cand + RESYNC_WINDOW - 1, bm.pool.last)]);
        for (const r of held) bm.mark(Number(r.address));
      }
      const free = await this.q('reusable', [bm.pool.first, bm.pool.last, req.now]);
      for (const r of free) {
        const l = await claim(Number(r.address));
        if (l !== null) { bm.mark(l.address); return l; }
        this.counters.conflicts++;
      }
      throw new LeaseStoreError('POOL_EXHAUSTED', this.location,
        `pool ${req.poolId} (${formatIPv4(bm.pool.first)}-${formatIPv4(bm.pool.last)}) has no free address`);
    }, (rows) => rows[0]);
  }

  async decline(address: number, holdOff: number, now: number, server: string): Promise<Lease> {
    return this.write('decline', async (opId) => {
      const r = await this.q('decline', [address, now, now + holdOff, server, opId]);
      if (r.length > 0) { this.index.mark(address); return rowToLease(r[0]!); }
      const bm = this.index.find(address);
      if (bm === undefined) throw new LeaseStoreError('NOT_FOUND', this.location, `no lease at ${formatIPv4(address)}`);
      const ins = await this.q('insert', this.vals({
        address, subnetId: bm.pool.subnetId, clientId: null, portGuid: null, hwaddr: null, hostname: null,
        state: 'declined', start: now, expiry: now + holdOff, server,
      }, opId));
      if (ins.length === 0) throw new LeaseStoreError('CONFLICT', this.location, `${formatIPv4(address)} changed meanwhile`);
      bm.mark(address);
      return rowToLease(ins[0]!);
    }, (rows) => rows[0]);
  }

  async release(address: number, clientId: Buffer | null, now: number, server: string): Promise<Lease | null> {
    return this.write('release', async (opId) => {
      const r = await this.q('release', [address, clientId, now, server, opId]);
      if (r.length === 0) return null;
      this.index.clear(address);
      return rowToLease(r[0]!);
    }, (rows) => rows[0]);
  }

  async expire(now: number, limit = 1000): Promise<Lease[]> {
    const out = await this.write('expire', async (opId) => (await this.q('expire', [now, limit, opId])).map(rowToLease),
      (rows) => rows);
    for (const l of out) this.index.clear(l.address);
    return out.sort((a, b) => a.expiry - b.expiry || a.address - b.address);
  }

  async stats(now = Math.floor(Date.now() / 1000)): Promise<PoolStats[]> {
    const rows: PoolStats[] = [];
    const subnets = new Map<number, PoolStats>();
    for (const p of this.pools) {
      const counts = await this.retry(async () =>
        (await this.pool.query<{ state: string; n: number }>({ name: 'poolCounts', text: SQL.poolCounts, values: [p.first, p.last, now] })).rows);
      const assigned = counts.filter((c) => c.state !== 'declined').reduce((a, c) => a + c.n, 0);
      const declined = counts.filter((c) => c.state === 'declined').reduce((a, c) => a + c.n, 0);
      const total = p.last - p.first + 1;
      rows.push({ subnetId: p.subnetId, poolId: p.id, total, assigned, declined, free: total - assigned - declined });
      const s = subnets.get(p.subnetId) ?? { subnetId: p.subnetId, total: 0, assigned: 0, declined: 0, free: 0 };
      s.total += total; s.assigned += assigned; s.declined += declined; s.free += total - assigned - declined;
      subnets.set(p.subnetId, s);
    }
    return [...rows, ...[...subnets.values()].sort((a, b) => a.subnetId - b.subnetId)];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
