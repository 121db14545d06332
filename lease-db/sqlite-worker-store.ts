// The SQLite lease store on a worker thread: the same SqliteLeaseStore (WAL, synchronous=FULL,
// group commit), but its statements and its fsyncs run on sqlite-worker.ts's thread. On the main
// thread better-sqlite3 blocks while SQLite fsyncs the WAL: measured in ipoib-dhcpd under perfdhcp,
// 25-33% of the event loop's time, during which no datagram is read, handled or answered. Here the
// main thread only queues calls and posts them, once per event-loop turn, as one message; a write's
// promise resolves when the worker reports its transaction committed, so what the daemon
// acknowledges is as durable as before (test/lease-db-crash.test.ts kills a process mid-commit).
import { Worker } from 'node:worker_threads';
import { LeaseStoreError } from './errors.js';
import type {
  AllocateRequest, Lease, LeaseStore, ListQuery, NewLease, Pool, PoolStats,
} from './lease.js';
import { storedLease, type SqliteOptions } from './sqlite-store.js';
import { reviveBuffers, type Call, type ErrorInfo, type Reply, type WorkerInit, type WorkerReady } from './sqlite-worker-protocol.js';

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  /** add/update: the lease as stored, built here (the worker answers these without it). */
  stored: Lease | null;
}

const TS = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(`./sqlite-worker.${TS ? 'ts' : 'js'}`, import.meta.url).href;

/**
 * The worker's entry. From a TypeScript checkout (no build step) the worker has to load tsx before
 * it can import a .ts file: a process started through bin/launch.js registered tsx's hooks on its
 * main thread only, which Node 20 does not hand down to workers.
 */
function bootstrap(): string {
  if (!TS) return `import(${JSON.stringify(WORKER_URL)})`;
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL)}); })`;
}

function toError(e: ErrorInfo): LeaseStoreError {
  return new LeaseStoreError(e.code, e.location, e.detail);
}

export async function openSqliteWorkerStore(file: string, opts: SqliteOptions = {}): Promise<SqliteWorkerStore> {
  // Only SqliteOptions cross (openLeaseStore's options may carry PostgreSQL ones, functions included).
  const options: Record<string, unknown> = {};
  for (const k of ['readonly', 'groupCommit', 'maxBatch', 'targetVersion'] as const) if (opts[k] !== undefined) options[k] = opts[k];
  const init: WorkerInit = { file, options };
  const worker = new Worker(bootstrap(), { eval: true, workerData: init });
  const ready = await new Promise<WorkerReady>((resolve, reject) => {
    const onExit = (code: number): void => reject(new LeaseStoreError('DB_IO', file, `the database thread exited (code ${code}) before opening the database`));
    worker.once('error', (err) => { worker.off('exit', onExit); reject(new LeaseStoreError('DB_IO', file, `the database thread failed: ${err.message}`, { cause: err })); });
    worker.once('exit', onExit);
    worker.once('message', (m: WorkerReady) => { worker.off('exit', onExit); resolve(m); });
  });
  if (!ready.ready) {
    await worker.terminate();
    throw toError(ready.error);
  }
  return new SqliteWorkerStore(worker, file);
}

export class SqliteWorkerStore implements LeaseStore {
  readonly backend = 'sqlite' as const;
  /** Transactions committed and writes they carried, as the worker last reported them. */
  readonly commits = { transactions: 0, writes: 0 };
  private readonly pending = new Map<number, Pending>();
  private outbox: Call[] = [];
  private scheduled = false;
  private nextId = 1;
  private closed = false;
  /** Why the worker is gone, once it is (every call then fails with it). */
  private dead: LeaseStoreError | null = null;
  private readonly exited: Promise<void>;
  private readonly flushBound = (): void => this.flush();

  constructor(private readonly worker: Worker, readonly location: string) {
    worker.on('message', (r: Reply) => this.onReply(r));
    this.exited = new Promise((resolve) => {
      worker.on('error', (err) => this.fail(new LeaseStoreError('DB_IO', location, `the database thread failed: ${err.message}`, { cause: err })));
      worker.on('exit', (code) => {
        this.fail(new LeaseStoreError(this.closed ? 'CLOSED' : 'DB_IO', location, `the database thread exited (code ${code})`));
        resolve();
      });
    });
    // Idle, the worker does not keep the process alive (as the main-thread store does not); a call
    // in flight does, so a script awaiting a write is not cut short.
    worker.unref();
  }

  private onReply(r: Reply): void {
    this.commits.transactions = r.commits.transactions;
    this.commits.writes = r.commits.writes;
    for (const res of r.results) {
      const p = this.pending.get(res.id);
      if (p === undefined) continue;
      this.pending.delete(res.id);
      if (res.error !== undefined) p.reject(toError(res.error));
      else p.resolve(p.stored ?? reviveBuffers(res.value));
    }
    if (this.pending.size === 0) this.worker.unref();
  }

  /** The worker died (or was closed): every call in flight fails, and every later one. */
  private fail(err: LeaseStoreError): void {
    this.dead ??= err;
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.outbox = [];
    for (const p of pending) p.reject(this.dead);
  }

  private call<T>(method: string, args: unknown[], stored: Lease | null = null): Promise<T> {
    if (this.closed) return Promise.reject(new LeaseStoreError('CLOSED', this.location, 'the lease store is closed'));
    if (this.dead !== null) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, stored });
      this.outbox.push({ id, method, args });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flushBound);
      }
    });
  }

  /** Posts this turn's calls as one message. */
  private flush(): void {
    this.scheduled = false;
    if (this.outbox.length === 0) return;
    const calls = this.outbox;
    this.outbox = [];
    try {
      this.worker.postMessage(calls);
    } catch (err) {
      // A value that cannot be cloned fails its batch, not the store.
      const e = new LeaseStoreError('BAD_INPUT', this.location, `cannot pass to the database thread: ${(err as Error).message}`);
      for (const c of calls) {
        const p = this.pending.get(c.id);
        this.pending.delete(c.id);
        p?.reject(e);
      }
      if (this.pending.size === 0) this.worker.unref();
    }
  }

  configurePools(pools: readonly Pool[]): Promise<void> { return this.call('configurePools', [pools]); }
  add(lease: NewLease): Promise<Lease> { return this.call('add', [lease], storedLease(lease, 1)); }
  update(lease: Lease): Promise<Lease> { return this.call('update', [lease], storedLease(lease, lease.version + 1)); }
  delete(address: number): Promise<boolean> { return this.call('delete', [address]); }
  get(address: number): Promise<Lease | null> { return this.call('get', [address]); }
  getByClientId(subnetId: number, clientId: Buffer): Promise<Lease | null> { return this.call('getByClientId', [subnetId, clientId]); }
  getByPortGuid(portGuid: bigint): Promise<Lease[]> { return this.call('getByPortGuid', [portGuid]); }
  getByHwaddr(hwaddr: Buffer): Promise<Lease[]> { return this.call('getByHwaddr', [hwaddr]); }
  list(query: ListQuery = {}): Promise<Lease[]> { return this.call('list', [query]); }
  allocate(req: AllocateRequest): Promise<Lease> { return this.call('allocate', [req]); }
  decline(address: number, holdOff: number, now: number, server: string): Promise<Lease> {
    return this.call('decline', [address, holdOff, now, server]);
  }
  release(address: number, clientId: Buffer | null, now: number, server: string): Promise<Lease | null> {
    return this.call('release', [address, clientId, now, server]);
  }
  expire(now: number, limit?: number): Promise<Lease[]> { return this.call('expire', limit === undefined ? [now] : [now, limit]); }
  stats(now?: number): Promise<PoolStats[]> { return this.call('stats', now === undefined ? [] : [now]); }

  /** Every call made before it finishes (the worker's store flushes its queue), then the thread ends. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.dead === null) {
      const done = this.call<void>('close', []);
      this.closed = true;
      try { await done; } catch { /* the thread died: nothing left to close */ }
    }
    this.closed = true;
    await this.worker.terminate();
    await this.exited;
  }
}
