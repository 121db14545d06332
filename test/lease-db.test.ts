// The lease stores: the conformance suite on SQLite and on PostgreSQL, then what each backend
// promises on its own (durability settings, group commit, migrations, refusing bad databases,
// surviving a lost PostgreSQL connection).
import t from 'tap';
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FreeIndex, PoolBitmap } from '../lease-db/free-index.js';
import type { LeaseStore } from '../lease-db/lease.js';
import { openPgStore, PgLeaseStore } from '../lease-db/pg-store.js';
import { openSqliteStore, SqliteLeaseStore } from '../lease-db/sqlite-store.js';
import { openSqliteWorkerStore, SqliteWorkerStore } from '../lease-db/sqlite-worker-store.js';
import { openLeaseStore } from '../lease-db/open.js';
import { SCHEMA_VERSION } from '../lease-db/schema.js';
import { cid, conformance, ip, lease, NOW, POOLS } from './helpers-lease-db/conformance.js';
import { dropSchemas, PG_URL, pgExec, pgGate, schemaName } from './helpers-lease-db/pg.js';

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lease-db-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newFile = (): string => join(dir, `leases-${files++}.db`);
const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

t.test('free-address bitmap', async (t) => {
  const bm = new PoolBitmap({ id: 1, subnetId: 1, first: 100, last: 169 });
  t.equal(bm.size, 70);
  t.equal(bm.bytes, 12, '70 addresses: three 32-bit words');
  const got: number[] = [];
  for (let a = bm.next(); a !== null; a = bm.next()) { got.push(a); bm.mark(a); }
  t.same(got, Array.from({ length: 70 }, (_, i) => 100 + i), 'every address once, lowest first, none beyond the pool');
  t.equal(bm.used, 70);
  bm.clear(133); bm.clear(101);
  t.equal(bm.next(), 101, 'next-fit: from the cursor at the end the search wraps to the start');
  bm.mark(101);
  t.equal(bm.next(), 133, 'and resumes from there');
  const idx = new FreeIndex([{ id: 1, subnetId: 1, first: 10, last: 19 }, { id: 2, subnetId: 1, first: 40, last: 49 }],
    (p) => (p.id === 2 ? 5 : 0));
  t.equal(idx.pool(2)!.next(), 45, 'a start offset picks the first candidate');
  t.equal(idx.find(44)?.pool.id, 2);
  t.equal(idx.find(20), undefined);
  idx.mark(45);
  t.equal(idx.pool(2)!.next(), 46);
});

t.test('conformance: SQLite', async (t) => {
  conformance(t, {
    name: 'sqlite',
    open: () => openSqliteStore(newFile()),
    reopen: (s) => openSqliteStore(s.location),
  });
});

t.test('conformance: SQLite on a worker thread', async (t) => {
  conformance(t, {
    name: 'sqlite-worker',
    open: () => openSqliteWorkerStore(newFile()),
    reopen: (s) => openSqliteWorkerStore(s.location),
  });
});

// Under CI=true these run whatever happens (a missing server fails them); locally they skip, visibly.
const gate = await pgGate();

t.test('conformance: PostgreSQL', { skip: gate.skip }, async (t) => {
  const schemas: string[] = [];
  t.teardown(() => dropSchemas(schemas));
  const open = async (schema = schemaName('conf')): Promise<LeaseStore> => {
    schemas.push(schema);
    return openPgStore({ connectionString: PG_URL, schema, start: 'lowest', poolSize: 4 });
  };
  conformance(t, {
    name: 'postgresql',
    open: () => open(),
    reopen: (s) => open(/\(schema (.*)\)$/.exec(s.location)![1]!),
  });
});

t.test('SQLite: WAL, synchronous=FULL, and writes group-committed', async (t) => {
  const file = newFile();
  const s = await openSqliteStore(file);
  await s.configurePools(POOLS);
  const db = new Database(file, { readonly: true });
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  db.close();
  const reqs = Array.from({ length: 200 }, (_, n) =>
    s.allocate({ poolId: 2, clientId: cid(n), state: 'bound', lifetime: 60, now: NOW, server: 'x' }));
  const got = await Promise.all(reqs);
  t.equal(new Set(got.map((l) => l.address)).size, 200);
  t.equal(s.commits.writes, 200);
  t.ok(s.commits.transactions <= 2, `200 concurrent writes took ${s.commits.transactions} transaction(s)`);
  const one = await openSqliteStore(newFile(), { groupCommit: false });
  await one.configurePools(POOLS);
  await Promise.all(Array.from({ length: 20 }, (_, n) =>
    one.allocate({ poolId: 2, clientId: cid(n), state: 'bound', lifetime: 60, now: NOW, server: 'x' })));
  t.equal(one.commits.transactions, 20, 'groupCommit: false commits each write alone');
  // One failing write does not take down the others of its batch.
  const mixed = await Promise.allSettled([s.add(lease('10.2.0.250')), s.add(lease('10.2.0.250')), s.add(lease('10.2.0.251'))]);
  t.same(mixed.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  // synchronous is a per-connection setting: read it through the store's own connection.
  t.equal((s as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true }), 2n, 'synchronous = 2 (FULL)');
  await s.close();
  await one.close();
});

t.test('SQLite on a worker thread: group commit, stable open errors, CLOSED after close', async (t) => {
  const file = newFile();
  const s = await openSqliteWorkerStore(file);
  await s.configurePools(POOLS);
  const db = new Database(file, { readonly: true });
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  db.close();
  const got = await Promise.all(Array.from({ length: 200 }, (_, n) =>
    s.allocate({ poolId: 2, clientId: cid(n), state: 'bound', lifetime: 60, now: NOW, server: 'x' })));
  t.equal(new Set(got.map((l) => l.address)).size, 200);
  t.ok(got.every((l) => Buffer.isBuffer(l.clientId)), 'leases come back with Buffers, not bare Uint8Arrays');
  t.equal(s.commits.writes, 200);
  t.ok(s.commits.transactions <= 2, `200 concurrent writes took ${s.commits.transactions} transaction(s)`);
  const mixed = await Promise.allSettled([s.add(lease('10.2.1.0')), s.add(lease('10.2.1.0')), s.add(lease('10.2.1.1'))]);
  t.same(mixed.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'], 'one failed write does not fail its batch');
  t.match((mixed[1] as PromiseRejectedResult).reason, { code: 'CONFLICT', location: file, name: 'LeaseStoreError' });
  const closing = s.close();
  await t.rejects(s.add(lease('10.2.1.2')), { code: 'CLOSED' });
  await closing;
  const again = await openSqliteWorkerStore(file);
  t.equal((await again.list({ subnetId: 2 })).length, 202, 'every write made before close() is in the file');
  await again.close();

  const bad = join(dir, 'worker-bad');
  mkdirSync(bad);
  execFileSync('/usr/bin/python3', [join(here, 'helpers-lease-db', 'make-bad-dbs.py'), bad]);
  const before = sha(join(bad, 'newer.db'));
  await t.rejects(openSqliteWorkerStore(join(bad, 'newer.db')), { code: 'DB_TOO_NEW', location: join(bad, 'newer.db') });
  await t.rejects(openSqliteWorkerStore(join(bad, 'garbage.db')), { code: 'DB_CORRUPT' });
  t.equal(sha(join(bad, 'newer.db')), before, 'a refused file is left as it was');

  const dflt = await openLeaseStore(newFile());
  t.ok(dflt instanceof SqliteWorkerStore, 'openLeaseStore: a writable SQLite store runs on a worker thread');
  await dflt.close();
  const ro = await openLeaseStore(file, { readonly: true });
  t.ok(ro instanceof SqliteLeaseStore, 'and a read-only one on the calling thread');
  await ro.close();
});

t.test('SQLite: forward migration keeps the leases of an older file', async (t) => {
  const file = newFile();
  const v1 = await openSqliteStore(file, { targetVersion: 1 });
  const db = new Database(file);
  t.same(db.prepare('SELECT version FROM schema_version').pluck().all(), [1]);
  t.notOk(db.prepare('PRAGMA table_info(lease)').all().some((c) => (c as { name: string }).name === 'op_id'));
  db.prepare(`INSERT INTO lease VALUES (${ip('10.1.0.10')}, 1, x'ff01', 5, NULL, 'old', 'bound', ${NOW}, ${NOW + 60}, 'v1', 1)`).run();
  db.close();
  await v1.close();
  const v2 = await openSqliteStore(file);
  const db2 = new Database(file, { readonly: true });
  t.same(db2.prepare('SELECT version FROM schema_version').pluck().all(), [SCHEMA_VERSION], 'migrated to the latest');
  t.ok(db2.prepare('PRAGMA table_info(lease)').all().some((c) => (c as { name: string }).name === 'op_id'), 'op_id added');
  db2.close();
  const l = await v2.get(ip('10.1.0.10'));
  t.same([l?.hostname, l?.clientId, l?.portGuid, l?.server], ['old', Buffer.from([0xff, 1]), 5n, 'v1']);
  await v2.close();
});

t.test('SQLite: a bad database file is refused with a stable code, and left untouched', async (t) => {
  const bad = join(dir, 'bad');
  mkdirSync(bad);
  execFileSync('/usr/bin/python3', [join(here, 'helpers-lease-db', 'make-bad-dbs.py'), bad]);
  const cases: [string, string, RegExp][] = [
    ['newer.db', 'DB_TOO_NEW', /schema version 99 is newer than this program supports \(2\)/],
    ['foreign.db', 'DB_NOT_LEASE_DB', /not a lease database/],
    ['corrupt.db', 'DB_CORRUPT', /not a readable SQLite database/],
    ['garbage.db', 'DB_CORRUPT', /not a readable SQLite database/],
  ];
  for (const [name, code, msg] of cases) {
    const f = join(bad, name);
    const before = sha(f);
    for (const readonly of [false, true]) {
      const err = await openSqliteStore(f, { readonly }).then(() => null, (e: unknown) => e);
      t.match(err, { code, location: f }, `${name}${readonly ? ' (read-only)' : ''}: ${code}`);
      t.match((err as Error).message, msg);
      t.ok((err as Error).message.startsWith(f + ': '), 'the message names the file first');
    }
    t.equal(sha(f), before, `${name} is byte-for-byte unchanged`);
    t.notOk(existsSync(f + '-wal') || existsSync(f + '-shm'), `${name}: no -wal/-shm left behind`);
  }
  await t.rejects(openSqliteStore(join(bad, 'absent.db'), { readonly: true }), { code: 'DB_MISSING' });
  t.notOk(existsSync(join(bad, 'absent.db')), 'a read-only open does not create the file');
  t.same(readdirSync(bad).sort(), ['corrupt.db', 'foreign.db', 'garbage.db', 'newer.db']);
});

t.test('SQLite: read-only store reads, and refuses to write', async (t) => {
  const file = newFile();
  const s = await openSqliteStore(file);
  await s.add(lease('10.1.0.10'));
  await s.close();
  const before = sha(file);
  const ro = await openSqliteStore(file, { readonly: true });
  t.equal((await ro.list()).length, 1);
  await t.rejects(ro.add(lease('10.1.0.11')), { code: 'DB_IO' });
  await ro.close();
  t.equal(sha(file), before);
});

t.test('PostgreSQL: migrations, refusal of a newer schema, lost connections', { skip: gate.skip }, async (t) => {
  const schemas: string[] = [];
  t.teardown(() => dropSchemas(schemas));
  const schema = (): string => { const s = schemaName('pg'); schemas.push(s); return s; };

  t.test('forward migration from version 1, and DB_TOO_NEW for a newer one', async (t) => {
    const sc = schema();
    const v1 = await openPgStore({ connectionString: PG_URL, schema: sc, targetVersion: 1 });
    await pgExec(`INSERT INTO "${sc}".lease VALUES (${ip('10.1.0.10')}, 1, '\\xff01', 5, NULL, 'old', 'bound', ${NOW}, ${NOW + 60}, 'v1', 1)`);
    await v1.close();
    const v2 = await openPgStore({ connectionString: PG_URL, schema: sc });
    t.same((await pgExec(`SELECT version FROM "${sc}".schema_version`)).rows, [{ version: SCHEMA_VERSION }]);
    const l = await v2.get(ip('10.1.0.10'));
    t.same([l?.hostname, l?.clientId, l?.portGuid], ['old', Buffer.from([0xff, 1]), 5n]);
    await v2.close();
    await pgExec(`UPDATE "${sc}".schema_version SET version = 99`);
    const err = await openPgStore({ connectionString: PG_URL, schema: sc }).then(() => null, (e: unknown) => e);
    t.match(err, { code: 'DB_TOO_NEW' });
    t.match((err as Error).message, /schema version 99 is newer/);
    t.same((await pgExec(`SELECT version FROM "${sc}".schema_version`)).rows, [{ version: 99 }], 'left as it was');
  });

  t.test('unreachable server: operations fail with DB_UNAVAILABLE after retrying', async (t) => {
    const started = Date.now();
    const err = await openPgStore({ connectionString: 'postgresql://postgres@127.0.0.1:1/test', retryWindowMs: 300 })
      .then(() => null, (e: unknown) => e);
    t.match(err, { code: 'DB_UNAVAILABLE' });
    t.ok(Date.now() - started >= 250, 'it retried for the window before giving up');
  });

  t.test('a backend killed mid-run: every acknowledged lease is there once, and the store resumes', async (t) => {
    const sc = schema();
    const s = await openPgStore({ connectionString: PG_URL, schema: sc, poolSize: 4, retryWindowMs: 15_000 });
    await s.configurePools([{ id: 9, subnetId: 3, first: ip('10.3.0.0'), last: ip('10.3.3.255') }]);
    const acked: { address: number; client: string }[] = [];
    let failed = 0;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 100; i++) {
        const n = w * 1000 + i;
        try {
          const l = await s.allocate({ poolId: 9, clientId: cid(n), state: 'bound', lifetime: 60, now: NOW, server: 'x' });
          acked.push({ address: l.address, client: cid(n).toString('hex') });
        } catch { failed++; }
      }
    };
    let done = false;
    const run = Promise.all([0, 1, 2, 3].map(worker)).finally(() => { done = true; });
    let killed = 0;
    // Terminate the store's backends every 30 ms for as long as it allocates (pg_terminate_backend
    // is what an administrator or a failover does; the client sees 57P01 or a dropped socket).
    while (!done) {
      await new Promise((r) => setTimeout(r, 30));
      const r = await pgExec("SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = 'ipoib-dhcpd' AND pid <> pg_backend_pid() AND query LIKE '%lease%'");
      killed += (r.rows[0] as { n: number }).n;
    }
    await run;
    t.ok(killed > 0, `${killed} backends terminated while allocating`);
    t.ok(s.counters.retries > 0, `the store retried ${s.counters.retries} statement(s)`);
    t.equal(failed, 0, 'no operation failed: each retried within its window');
    const rows = (await pgExec(`SELECT address, encode(client_id, 'hex') AS client FROM "${sc}".lease`)).rows as { address: string; client: string }[];
    const db = new Map(rows.map((r) => [Number(r.address), r.client]));
    t.equal(acked.length, 400);
    t.ok(acked.every((a) => db.get(a.address) === a.client), 'every acknowledged lease is in the table, with its client');
    t.equal(new Set(rows.map((r) => r.client)).size, rows.length, 'no client holds two addresses (no duplicated allocation)');
    t.equal(rows.length, 400, 'nothing extra was written');
    const after = await s.allocate({ poolId: 9, clientId: cid(99_999), state: 'bound', lifetime: 60, now: NOW, server: 'x' });
    t.ok(after.address > 0, 'the store works after the outage');
    await s.close();
  });

  t.test('a write whose commit succeeded but whose answer was lost is not written twice', async (t) => {
    const sc = schema();
    let fail = 2;
    const s = await openPgStore({
      connectionString: PG_URL, schema: sc,
      afterWrite: (op) => {
        if (op === 'allocate' && fail-- > 0) throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
      },
    });
    await s.configurePools(POOLS);
    const l = await s.allocate({ poolId: 3, clientId: cid(1), state: 'bound', lifetime: 60, now: NOW, server: 'x' });
    t.equal(s.counters.recoveredByOpId, 1, 'the retry found the committed row by its op_id');
    const rows = await s.list();
    t.same(rows.map((r) => r.address), [l.address], 'one lease, not two');
    t.ok(s instanceof PgLeaseStore);
    await s.close();
  });
});

t.test('SQLite store class is what openSqliteStore returns', async (t) => {
  const s = await openSqliteStore(newFile());
  t.ok(s instanceof SqliteLeaseStore);
  t.equal(s.backend, 'sqlite');
  await s.close();
  writeFileSync(join(dir, 'empty.db'), '');
  const e = await openSqliteStore(join(dir, 'empty.db'));
  t.equal((await e.list()).length, 0, 'an empty file is a new database');
  await e.close();
});
