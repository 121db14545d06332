// Processes, not promises: a SQLite writer killed with SIGKILL at random moments loses nothing it
// acknowledged, and four processes sharing one PostgreSQL pool never hand out an address twice.
import t from 'tap';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openPgStore } from '../lease-db/pg-store.js';
import { dropSchemas, PG_URL, pgExec, pgGate, schemaName } from './helpers-lease-db/pg.js';

const helpers = join(dirname(fileURLToPath(import.meta.url)), 'helpers-lease-db');
const dir = mkdtempSync(join(tmpdir(), 'lease-crash-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface Child { lines: string[]; code: number | null; signal: NodeJS.Signals | null; stderr: string }

interface Spawned { go(): void; done: Promise<Child> }

/**
 * Starts a helper under tsx; `onLine` may kill it. `done` resolves when its stdout is drained
 * and it exited. With `gated`, stdin stays open and go() writes the line the helper waits for.
 */
function spawnChild(script: string, args: string[], onLine?: (line: string, kill: () => void) => void, gated = false): Spawned {
  const p = spawn(process.execPath, ['--import', 'tsx', join(helpers, script), ...args],
    { stdio: [gated ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const out: Child = { lines: [], code: null, signal: null, stderr: '' };
  const done = new Promise<Child>((resolve, reject) => {
    let rest = '';
    p.stdout!.setEncoding('utf8');
    p.stdout!.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop()!;
      for (const l of parts) { out.lines.push(l); onLine?.(l, () => p.kill('SIGKILL')); }
    });
    p.stderr!.on('data', (c: Buffer) => { out.stderr += c.toString(); });
    p.stdin?.on('error', () => undefined);
    p.on('error', reject);
    // 'close' comes after the pipes are drained: every line written before the kill has been read.
    p.on('close', (code, signal) => { out.code = code; out.signal = signal; resolve(out); });
  });
  return { go: () => { p.stdin?.write('go\n'); }, done };
}

const runChild = (script: string, args: string[]): Promise<Child> => spawnChild(script, args).done;

// Per store (on the calling thread, and on its worker thread): each run costs a Node + tsx start-up.
const KILLS = 15;
// Two stores' kill runs and the PostgreSQL run take longer than tap's default per-file limit.
t.setTimeout(300_000);

for (const thread of ['main', 'worker'] as const) {
  t.test(`SQLite (${thread} thread): ${KILLS} SIGKILLs at random moments lose no acknowledged lease`, async (t) => {
    const file = join(dir, `crash-${thread}.db`);
    const acked = new Map<number, string>();
    let kills = 0;
    const start = (run: number): Spawned => {
      let timer: NodeJS.Timeout | undefined;
      return spawnChild('crash-child.ts', [file, String(run), thread], (line, kill) => {
        // The kill lands at a random moment 5-150 ms after the child's first acknowledged lease.
        if (timer === undefined && line !== 'ready') timer = setTimeout(kill, 5 + Math.random() * 145);
      }, true);
    };
    // Two children start ahead, so their start-up overlaps the running one; only one at a time writes.
    const ahead = [start(1), start(2)];
    for (let run = 1; run <= KILLS; run++) {
      const cur = ahead.shift()!;
      if (run + 2 <= KILLS) ahead.push(start(run + 2));
      cur.go();
      const child = await cur.done;
      if (child.signal === 'SIGKILL') kills++;
      else t.fail(`run ${run} ended by itself (code ${child.code}): ${child.stderr.slice(0, 500)}`);
      for (const l of child.lines) {
        const m = /^(\d+) ([0-9a-f]{16})$/.exec(l);
        if (m === null) continue;
        const a = Number(m[1]);
        if (acked.has(a)) t.fail(`address ${a} acknowledged twice (${acked.get(a)} and ${m[2]})`);
        acked.set(a, m[2]!);
      }
    }
    t.equal(kills, KILLS, `killed ${KILLS} times`);
    t.ok(acked.size > 200, `${acked.size} leases were acknowledged before the kills`);
    const db = new Database(file, { readonly: true });
    t.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'the file is intact');
    const rows = db.prepare("SELECT address, hex(client_id) AS client FROM lease").all() as { address: number; client: string }[];
    db.close();
    const stored = new Map(rows.map((r) => [r.address, r.client.toLowerCase()]));
    const missing = [...acked].filter(([a, c]) => stored.get(a) !== c);
    t.same(missing, [], 'every acknowledged lease is in the database with its client');
    t.equal(new Set(rows.map((r) => r.client)).size, rows.length, 'no client has two addresses, no address two clients');
  });
}

const gate = await pgGate();

t.test('PostgreSQL: 4 processes allocate 5,000 leases from one pool at once', { skip: gate.skip }, async (t) => {
  const schema = schemaName('conc');
  t.teardown(() => dropSchemas([schema]));
  const first = 0x0a090000, last = first + 4999;
  // The four race to create and migrate the schema too: the advisory lock lets one do it.
  const children = await Promise.all([1, 2, 3, 4].map((w) =>
    runChild('pg-alloc-child.ts', [PG_URL, schema, String(w), '1250', String(first), String(last)])));
  const acked = new Map<number, string>();
  let dup = 0;
  const stats: { conflicts: number; ms: number }[] = [];
  for (const c of children) {
    t.equal(c.code, 0, `child exited 0 ${c.stderr.slice(0, 300)}`);
    for (const l of c.lines) {
      if (l.startsWith('stats ')) { stats.push(JSON.parse(l.slice(6)) as { conflicts: number; ms: number }); continue; }
      const [a, cl] = l.split(' ');
      if (acked.has(Number(a))) dup++;
      acked.set(Number(a), cl!);
    }
  }
  t.equal(dup, 0, '0 duplicates: no address acknowledged to two processes');
  t.equal(acked.size, 5000, 'all 5,000 acknowledged');
  const rows = (await pgExec(`SELECT address, encode(client_id, 'hex') AS client FROM "${schema}".lease`)).rows as { address: string; client: string }[];
  t.equal(rows.length, 5000);
  const inDb = new Map(rows.map((r) => [Number(r.address), r.client]));
  const lost = [...acked].filter(([a, c]) => inDb.get(a) !== c);
  t.equal(lost.length, 0, '0 lost: every acknowledged lease is in the table with its client');
  t.ok([...acked.keys()].every((a) => a >= first && a <= last), 'all inside the pool');
  const s = await openPgStore({ connectionString: PG_URL, schema });
  await s.configurePools([{ id: 1, subnetId: 1, first, last }]);
  await t.rejects(s.allocate({ poolId: 1, clientId: Buffer.from('late'), state: 'bound', lifetime: 1, now: 1_800_000_000, server: 'x' }),
    { code: 'POOL_EXHAUSTED' }, 'the 5,001st finds the pool full');
  await s.close();
  t.comment(`conflicts (candidates another process held): ${stats.map((x) => x.conflicts).join(', ')}; ` +
    `time per process: ${stats.map((x) => x.ms).join(', ')} ms`);
});
