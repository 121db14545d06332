// The embedded default: one SQLite file (better-sqlite3 12), WAL journal, synchronous=FULL so a
// COMMIT returns only after the WAL is fsync'd. Writes are group-committed: each write is queued,
// and one flush per event-loop turn (setImmediate) runs every queued write inside one transaction,
// then resolves all their promises after its single fsync. better-sqlite3 blocks while it fsyncs,
// so whatever arrives meanwhile waits in the socket buffers and forms the next batch: the batch
// grows with the load, and one fsync covers it. Reads run at once and see only committed leases.
import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { checkLease, formatIPv4 } from './address.js';
import { LeaseStoreError, isLeaseStoreError } from './errors.js';
import { FreeIndex } from './free-index.js';
import {
  type AllocateRequest, type Lease, type LeaseStore, type ListQuery, type NewLease, type Pool,
  type PoolStats,
} from './lease.js';
import { guidParam, rowToLease, type LeaseRow } from './row.js';
import { LEASE_COLUMNS, MIGRATIONS, SCHEMA_VERSION } from './schema.js';

export interface SqliteOptions {
  /** Open an existing database read-only, never migrating it (the CLI's list and export). */
  readonly?: boolean;
  /** false: one transaction (and one fsync) per write — the baseline the benchmark compares to. */
  groupCommit?: boolean;
  /** Most writes one transaction takes (default 4096). */
  maxBatch?: number;
  /** Migrate only up to this version (tests of the migrations themselves). */
  targetVersion?: number;
}

type Db = Database.Database;
type Stmt = Database.Statement;

interface Job {
  run(): unknown;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

const MAX_PAGE = 10_000;
const HELD = "state IN ('offered','bound','declined') AND expiry > @now";

/**
 * Checks an existing file before anything writes to it: a SQLite database, ours, and not from a
 * newer program. Opened read-only, so a file we refuse is left byte-for-byte as it was.
 */
function inspect(file: string): number | null {
  if (!existsSync(file)) return null;
  if (statSync(file).size === 0) return null;
  let db: Db | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.defaultSafeIntegers(true);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    if (tables.length === 0) return null;
    if (!tables.includes('schema_version')) {
      throw new LeaseStoreError('DB_NOT_LEASE_DB', file,
        `not a lease database (a SQLite file without a schema_version table; tables: ${tables.slice(0, 5).join(', ')})`);
    }
    const v = db.prepare('SELECT max(version) FROM schema_version').pluck().get() as bigint | null;
    const version = v === null ? 0 : Number(v);
    if (version > SCHEMA_VERSION) {
      throw new LeaseStoreError('DB_TOO_NEW', file,
        `schema version ${version} is newer than this program supports (${SCHEMA_VERSION}); use a newer ipoib-dhcpd`);
    }
    return version;
  } catch (err) {
    throw sqliteError(err, file);
  } finally {
    db?.close();
  }
}

function sqliteError(err: unknown, file: string): LeaseStoreError {
  if (isLeaseStoreError(err)) return err;
  const code = (err as { code?: string }).code ?? '';
  const msg = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new LeaseStoreError('DB_CORRUPT', file, `not a readable SQLite database (${msg})`, { cause: err });
  }
  if (code === 'SQLITE_CANTOPEN') {
    return new LeaseStoreError('DB_MISSING', file, `cannot open the database (${msg})`, { cause: err });
  }
  return new LeaseStoreError('DB_IO', file, `${code || 'error'}: ${msg}`, { cause: err });
}

function migrate(db: Db, from: number, to: number): void {
  if (from === 0) {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  }
  for (const m of MIGRATIONS) {
    if (m.version <= from || m.version > to) continue;
    db.transaction(() => {
      for (const sql of m.sqlite) db.exec(sql);
      db.prepare('DELETE FROM schema_version').run();
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(m.version);
    }).immediate();
  }
}

/** The lease as the row just written holds it (what RETURNING would have read back). */
export function storedLease(l: NewLease, version: number): Lease {
  return {
    address: l.address, subnetId: l.subnetId, clientId: l.clientId, portGuid: l.portGuid, hwaddr: l.hwaddr,
    hostname: l.hostname, state: l.state, start: l.start, expiry: l.expiry, server: l.server, version,
  };
}

export async function openSqliteStore(file: string, opts: SqliteOptions = {}): Promise<SqliteLeaseStore> {
  const version = inspect(file);
  if (opts.readonly === true && version === null) {
    throw new LeaseStoreError('DB_MISSING', file, 'no lease database here (nothing to read)');
  }
  let db: Db | undefined;
  try {
    db = new Database(file, { readonly: opts.readonly === true });
    db.defaultSafeIntegers(true);
    if (opts.readonly !== true) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      migrate(db, version ?? 0, opts.targetVersion ?? SCHEMA_VERSION);
    }
    return new SqliteLeaseStore(db, file, opts);
  } catch (err) {
    db?.close();
    throw sqliteError(err, file);
  }
}

export class SqliteLeaseStore implements LeaseStore {
  readonly backend = 'sqlite' as const;
  private readonly s: Record<string, Stmt>;
  private readonly listStmts = new Map<string, Stmt>();
  private index = new FreeIndex([]);
  private pools: readonly Pool[] = [];
  private queue: Job[] = [];
  private scheduled = false;
  private closed = false;
  private readonly maxBatch: number;
  /** Transactions committed and writes they carried (the benchmark reports the batch size). */
  readonly commits = { transactions: 0, writes: 0 };

  constructor(private readonly db: Db, readonly location: string, opts: SqliteOptions) {
    this.maxBatch = opts.groupCommit === false ? 1 : Math.max(1, opts.maxBatch ?? 4096);
    const cols = LEASE_COLUMNS;
    const vals = '@address, @subnet_id, @client_id, @port_guid, @hwaddr, @hostname, @state, @start_time, @expiry, @server';
    const sets = 'subnet_id = @subnet_id, client_id = @client_id, port_guid = @port_guid, hwaddr = @hwaddr, ' +
      'hostname = @hostname, state = @state, start_time = @start_time, expiry = @expiry, server = @server';
    const p = (sql: string): Stmt => db.prepare(sql);
    const ro = opts.readonly === true;
    this.s = {
      get: p(`SELECT ${cols} FROM lease WHERE address = ?`),
      byClient: p(`SELECT ${cols} FROM lease WHERE subnet_id = ? AND client_id = ? ORDER BY expiry DESC LIMIT 1`),
      byGuid: p(`SELECT ${cols} FROM lease WHERE port_guid = ? ORDER BY address`),
      byHw: p(`SELECT ${cols} FROM lease WHERE hwaddr = ? ORDER BY address`),
      held: p(`SELECT address FROM lease WHERE address BETWEEN ? AND ? AND state IN ('offered','bound','declined')`),
      poolCounts: p(`SELECT state, count(*) AS n FROM lease WHERE address BETWEEN @first AND @last AND ${HELD} GROUP BY state`),
      ...(ro ? {} : {
        // add() and update() know the row they write, so they do not read it back (RETURNING would
        // turn every column into a JS value again, at a cost the per-packet path notices).
        insert: p(`INSERT INTO lease (${cols}) VALUES (${vals}, 1)`),
        update: p(`UPDATE lease SET ${sets}, version = version + 1 WHERE address = @address AND version = @version`),
        delete: p('DELETE FROM lease WHERE address = ?'),
        // Insert, or take over a lease nobody holds any more; returns nothing if the address is held.
        claim: p(`INSERT INTO lease (${cols}) VALUES (${vals}, 1)
          ON CONFLICT (address) DO UPDATE SET ${sets}, version = lease.version + 1
          WHERE lease.state IN ('released','expired') OR lease.expiry <= @now
          RETURNING ${cols}`),
        reusable: p(`SELECT address FROM lease WHERE address BETWEEN ? AND ?
          AND (state IN ('released','expired') OR expiry <= ?) ORDER BY address LIMIT 1`),
        decline: p(`UPDATE lease SET state = 'declined', client_id = NULL, port_guid = NULL, hwaddr = NULL,
          hostname = NULL, start_time = @now, expiry = @expiry, server = @server, version = version + 1
          WHERE address = @address RETURNING ${cols}`),
        release: p(`UPDATE lease SET state = 'released', expiry = @now, server = @server, version = version + 1
          WHERE address = @address AND state IN ('offered','bound') AND (@client_id IS NULL OR client_id = @client_id)
          RETURNING ${cols}`),
        expire: p(`UPDATE lease SET state = 'expired', version = version + 1 WHERE address IN
          (SELECT address FROM lease WHERE state IN ('offered','bound','declined') AND expiry <= ? ORDER BY expiry LIMIT ?)
          RETURNING ${cols}`),
      }),
    };
  }

  // ---- the write queue ----

  private write<T>(run: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new LeaseStoreError('CLOSED', this.location, 'the lease store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    const results: { ok: boolean; v: unknown }[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
      for (const job of batch) {
        // A failed statement rolls back only itself (SQLite's ABORT), so one bad write does not
        // cost the others in its batch their transaction.
        try { results.push({ ok: true, v: job.run() }); } catch (err) { results.push({ ok: false, v: err }); }
      }
      this.db.exec('COMMIT');
      this.commits.transactions++;
      this.commits.writes += batch.length;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      // Nothing of this batch is durable: fail every write and rebuild the index from the file.
      const e = sqliteError(err, this.location);
      for (const job of batch) job.reject(e);
      this.rebuildIndex();
      this.reschedule();
      return;
    }
    batch.forEach((job, i) => {
      const r = results[i]!;
      if (r.ok) job.resolve(r.v); else job.reject(this.opError(r.v));
    });
    this.reschedule();
  }

  private reschedule(): void {
    if (this.queue.length > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private opError(err: unknown): unknown {
    if (isLeaseStoreError(err)) return err;
    return sqliteError(err, this.location);
  }

  /**
   * The index follows lease states only, not the clock: a lease past its expiry stays marked until
   * the sweep expires it, and allocate() falls back to the table when the bitmap is full.
   */
  private rebuildIndex(): void {
    this.index = new FreeIndex(this.pools);
    for (const bm of this.index.pools()) {
      for (const a of this.s.held!.pluck().iterate(bm.pool.first, bm.pool.last) as Iterable<bigint>) {
        bm.mark(Number(a));
      }
    }
  }

  // ---- LeaseStore ----

  async configurePools(pools: readonly Pool[]): Promise<void> {
    this.pools = [...pools];
    this.rebuildIndex();
  }

  /** Bytes the free-address index takes (the bitmaps). */
  get indexBytes(): number { return this.index.bytes; }

  private params(l: NewLease, now = 0): Record<string, unknown> {
    return {
      address: l.address, subnet_id: l.subnetId, client_id: l.clientId, port_guid: guidParam(l.portGuid),
      hwaddr: l.hwaddr, hostname: l.hostname, state: l.state, start_time: l.start, expiry: l.expiry,
      server: l.server, now,
    };
  }

  private one(stmt: Stmt, ...args: unknown[]): Lease | null {
    const r = stmt.get(...args) as LeaseRow | undefined;
    return r === undefined ? null : rowToLease(r);
  }

  private track(l: Lease): Lease {
    if (l.state === 'released' || l.state === 'expired') this.index.clear(l.address); else this.index.mark(l.address);
    return l;
  }

  async add(lease: NewLease): Promise<Lease> {
    checkLease(lease, this.location);
    return this.write(() => {
      try {
        this.s.insert!.run(this.params(lease));
        return this.track(storedLease(lease, 1));
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new LeaseStoreError('CONFLICT', this.location, `${formatIPv4(lease.address)} already has a lease`);
        }
        throw err;
      }
    });
  }

  async update(lease: Lease): Promise<Lease> {
    checkLease(lease, this.location);
    return this.write(() => {
      const params = this.params(lease);
      params['version'] = lease.version;
      if (this.s.update!.run(params).changes === 1) return this.track(storedLease(lease, lease.version + 1));
      const cur = this.one(this.s.get!, lease.address);
      throw cur === null
        ? new LeaseStoreError('NOT_FOUND', this.location, `no lease at ${formatIPv4(lease.address)}`)
        : new LeaseStoreError('CONFLICT', this.location,
          `${formatIPv4(lease.address)}: version ${lease.version} is stale (now ${cur.version})`);
    });
  }

  delete(address: number): Promise<boolean> {
    return this.write(() => {
      const n = this.s.delete!.run(address).changes;
      this.index.clear(address);
      return n > 0;
    });
  }

  async get(address: number): Promise<Lease | null> {
    return this.read(() => this.one(this.s.get!, address));
  }

  async getByClientId(subnetId: number, clientId: Buffer): Promise<Lease | null> {
    return this.read(() => this.one(this.s.byClient!, subnetId, clientId));
  }

  async getByPortGuid(portGuid: bigint): Promise<Lease[]> {
    return this.read(() => (this.s.byGuid!.all(guidParam(portGuid)) as LeaseRow[]).map(rowToLease));
  }

  async getByHwaddr(hwaddr: Buffer): Promise<Lease[]> {
    return this.read(() => (this.s.byHw!.all(hwaddr) as LeaseRow[]).map(rowToLease));
  }

  async list(q: ListQuery = {}): Promise<Lease[]> {
    return this.read(() => {
      const where: string[] = [];
      if (q.subnetId !== undefined) where.push('subnet_id = @subnet');
      if (q.state !== undefined) where.push('state = @state');
      if (q.after !== undefined) where.push('address > @after');
      const key = where.join(' AND ');
      let stmt = this.listStmts.get(key);
      if (stmt === undefined) {
        stmt = this.db.prepare(`SELECT ${LEASE_COLUMNS} FROM lease ${key === '' ? '' : 'WHERE ' + key} ORDER BY address LIMIT @limit`);
        this.listStmts.set(key, stmt);
      }
      const params: Record<string, unknown> = { limit: Math.min(Math.max(1, q.limit ?? 1000), MAX_PAGE) };
      if (q.subnetId !== undefined) params['subnet'] = q.subnetId;
      if (q.state !== undefined) params['state'] = q.state;
      if (q.after !== undefined) params['after'] = q.after;
      return (stmt.all(params) as LeaseRow[]).map(rowToLease);
    });
  }

  async allocate(req: AllocateRequest): Promise<Lease> {
    const bm = this.index.pool(req.poolId);
    if (bm === undefined) {
      throw new LeaseStoreError('NO_POOL', this.location, `pool ${req.poolId} is not configured`);
    }
    const lease: NewLease = {
      address: bm.pool.first, subnetId: bm.pool.subnetId, clientId: req.clientId, portGuid: req.portGuid ?? null,
      hwaddr: req.hwaddr ?? null, hostname: req.hostname ?? null, state: req.state, start: req.now,
      expiry: req.now + req.lifetime, server: req.server,
    };
    checkLease(lease, this.location);
    return this.write(() => {
      for (;;) {
        const cand = bm.next();
        if (cand === null) break;
        bm.mark(cand);
        const l = this.one(this.s.claim!, this.params({ ...lease, address: cand }, req.now));
        if (l !== null) return l;
      }
      // The bitmap is full, but leases may have run out since the last sweep: ask the table.
      const r = this.s.reusable!.pluck().get(bm.pool.first, bm.pool.last, req.now) as bigint | undefined;
      if (r !== undefined) {
        const l = this.one(this.s.claim!, this.params({ ...lease, address: Number(r) }, req.now));
        if (l !== null) return l;
      }
      throw new LeaseStoreError('POOL_EXHAUSTED', this.location,
        `pool ${req.poolId} (${formatIPv4(bm.pool.first)}-${formatIPv4(bm.pool.last)}) has no free address`);
    });
  }

  decline(address: number, holdOff: number, now: number, server: string): Promise<Lease> {
    return this.write(() => {
      const l = this.one(this.s.decline!, { address, now, expiry: now + holdOff, server });
      if (l !== null) { this.index.mark(address); return l; }
      const bm = this.index.find(address);
      if (bm === undefined) throw new LeaseStoreError('NOT_FOUND', this.location, `no lease at ${formatIPv4(address)}`);
      const declined: NewLease = {
        address, subnetId: bm.pool.subnetId, clientId: null, portGuid: null, hwaddr: null, hostname: null,
        state: 'declined', start: now, expiry: now + holdOff, server,
      };
      this.s.insert!.run(this.params(declined));
      bm.mark(address);
      return storedLease(declined, 1);
    });
  }

  release(address: number, clientId: Buffer | null, now: number, server: string): Promise<Lease | null> {
    return this.write(() => {
      const l = this.one(this.s.release!, { address, client_id: clientId, now, server });
      if (l !== null) this.index.clear(address);
      return l;
    });
  }

  expire(now: number, limit = 1000): Promise<Lease[]> {
    return this.write(() => {
      const out = (this.s.expire!.all(now, limit) as LeaseRow[]).map(rowToLease);
      for (const l of out) this.index.clear(l.address);
      return out.sort((a, b) => a.expiry - b.expiry || a.address - b.address);
    });
  }

  async stats(now = Math.floor(Date.now() / 1000)): Promise<PoolStats[]> {
    return this.read(() => {
      const rows: PoolStats[] = [];
      const subnets = new Map<number, PoolStats>();
      for (const p of this.pools) {
        const counts = this.s.poolCounts!.all({ first: p.first, last: p.last, now }) as { state: string; n: bigint }[];
        const assigned = counts.filter((c) => c.state !== 'declined').reduce((a, c) => a + Number(c.n), 0);
        const declined = counts.filter((c) => c.state === 'declined').reduce((a, c) => a + Number(c.n), 0);
        const total = p.last - p.first + 1;
        rows.push({ subnetId: p.subnetId, poolId: p.id, total, assigned, declined, free: total - assigned - declined });
        const s = subnets.get(p.subnetId) ?? { subnetId: p.subnetId, total: 0, assigned: 0, declined: 0, free: 0 };
        s.total += total; s.assigned += assigned; s.declined += declined; s.free += total - assigned - declined;
        subnets.set(p.subnetId, s);
      }
      return [...rows, ...[...subnets.values()].sort((a, b) => a.subnetId - b.subnetId)];
    });
  }

  private read<T>(fn: () => T): T {
    if (this.closed) throw new LeaseStoreError('CLOSED', this.location, 'the lease store is closed');
    try { return fn(); } catch (err) { throw this.opError(err); }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.queue.length > 0) this.flush();
    this.closed = true;
    this.db.close();
  }
}
