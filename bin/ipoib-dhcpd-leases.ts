// `ipoib-dhcpd leases list|export|import`: the lease database from the command line. The server
// CLI adds it with leasesCommand(program). A database we refuse (corrupt, not ours, newer schema,
// missing) is one line naming the file and what is wrong, exit 2; the file is never touched.
import { type Command, Option } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { formatIPv4, parseCidr } from '../lease-db/address.js';
import { isLeaseStoreError } from '../lease-db/errors.js';
import { formatIscLeases, parseIscLeases, type ImportResult } from '../lease-db/isc-leases.js';
import { formatJsonLeases, parseJsonLeases } from '../lease-db/json-format.js';
import { formatKeaCsv, parseKeaCsv } from '../lease-db/kea-csv.js';
import { LEASE_STATES, type Lease, type LeaseState, type LeaseStore } from '../lease-db/lease.js';
import { openLeaseStore } from '../lease-db/open.js';
import { allLeases, importLeases } from '../lease-db/transfer.js';
import { CliError, EXIT_RUNTIME, EXIT_USAGE, intOption } from './cli.js';

export const DEFAULT_LEASE_DB = '/var/lib/ipoib-dhcp/leases.db';

export interface LeasesIo {
  out(text: string): void;
  err(text: string): void;
}

const stdio: LeasesIo = {
  out: (s) => { process.stdout.write(s); },
  err: (s) => { process.stderr.write(s); },
};

/** Codes that mean the database or the input is wrong (exit 2), not that something failed at run time. */
const USAGE_CODES = new Set(['DB_CORRUPT', 'DB_NOT_LEASE_DB', 'DB_TOO_NEW', 'DB_MISSING', 'BAD_INPUT', 'NO_POOL']);

async function withStore<T>(db: string, readonly: boolean, fn: (s: LeaseStore) => Promise<T>): Promise<T> {
  let store: LeaseStore | undefined;
  try {
    store = await openLeaseStore(db, { readonly, retryWindowMs: 3000 });
    return await fn(store);
  } catch (err) {
    if (isLeaseStoreError(err)) throw new CliError(`${err.message} [${err.code}]`, USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_RUNTIME);
    throw err;
  } finally {
    await store?.close();
  }
}

function hex(b: Buffer | null, max = 24): string {
  if (b === null) return '-';
  const h = b.toString('hex');
  return h.length > max * 2 ? `${h.slice(0, max * 2)}…` : h;
}

function table(leases: Lease[]): string {
  const rows = [['address', 'state', 'subnet', 'expires (UTC)', 'hostname', 'client-id']];
  for (const l of leases) {
    rows.push([formatIPv4(l.address), l.state, String(l.subnetId),
      new Date(l.expiry * 1000).toISOString().replace('T', ' ').replace(/\.000Z$/, ''), l.hostname ?? '-', hex(l.clientId)]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ')).join('\n') + '\n';
}

/** "3=10.1.0.0/16" -> subnet id 3 for addresses in that prefix. */
function subnetMap(specs: string[]): (a: number) => number | undefined {
  const maps = specs.map((s) => {
    const m = /^(\d+)=(.+)$/.exec(s);
    const range = m === null ? null : parseCidr(m[2]!);
    if (m === null || range === null) throw new CliError(`--subnet: '${s}' is not ID=A.B.C.D/LEN`);
    return { id: Number(m[1]), ...range };
  });
  return (a) => maps.find((m) => a >= m.first && a <= m.last)?.id;
}

function detect(text: string): 'isc' | 'kea-csv' | 'json' {
  const head = text.trimStart();
  if (head.startsWith('{')) return 'json';
  if (head.startsWith('address,')) return 'kea-csv';
  return 'isc';
}

export function leasesCommand(program: Command, io: LeasesIo = stdio): Command {
  const dbOption = (): Option => new Option('--db <file|url>',
    'lease database: a SQLite file, or postgresql://user@host/db (postgresql: alone reads the PG* variables)')
    .default(DEFAULT_LEASE_DB);
  const leases = program.command('leases').description('list, export and import the lease database');

  leases.command('list')
    .description('print leases as a table')
    .addOption(dbOption())
    .option('--subnet <id>', 'only this subnet id', intOption('--subnet', 0, 0xffff_ffff))
    .addOption(new Option('--state <state>', 'only leases in this state').choices(LEASE_STATES))
    .option('--limit <n>', 'at most this many', intOption('--limit', 1, 10_000_000), 1000)
    .action(async (o: { db: string; subnet?: number; state?: LeaseState; limit: number }) => {
      await withStore(o.db, true, async (s) => {
        const out: Lease[] = [];
        for await (const l of allLeases(s)) {
          if (o.subnet !== undefined && l.subnetId !== o.subnet) continue;
          if (o.state !== undefined && l.state !== o.state) continue;
          out.push(l);
          if (out.length >= o.limit) break;
        }
        io.out(table(out));
      });
    });

  leases.command('export')
    .description('write every lease as JSON, Kea memfile CSV, or ISC dhcpd.leases text')
    .addOption(dbOption())
    .addOption(new Option('--format <format>', 'output format').choices(['json', 'csv', 'isc']).default('json'))
    .option('-o, --output <file>', 'write here instead of standard output')
    .action(async (o: { db: string; format: 'json' | 'csv' | 'isc'; output?: string }) => {
      await withStore(o.db, true, async (s) => {
        const all: Lease[] = [];
        for await (const l of allLeases(s)) all.push(l);
        const text = o.format === 'json' ? formatJsonLeases(all) : o.format === 'csv' ? formatKeaCsv(all) : formatIscLeases(all);
        if (o.output === undefined) io.out(text); else writeFileSync(o.output, text);
      });
    });

  leases.command('import')
    .description('read leases from an ISC dhcpd.leases file, a Kea memfile CSV, or our JSON, into the database')
    .argument('<file>', 'the lease file')
    .addOption(dbOption())
    .addOption(new Option('--format <format>', 'input format (default: from the content)').choices(['isc', 'kea-csv', 'json']))
    .option('--subnet <id=cidr>', 'subnet id for addresses in a prefix (ISC files have none); repeatable',
      (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--server <name>', 'the server recorded on imported leases', 'import')
    .action(async (file: string, o: { db: string; format?: 'isc' | 'kea-csv' | 'json'; subnet: string[]; server: string }) => {
      let text: string;
      try { text = readFileSync(file, 'utf8'); } catch (err) {
        throw new CliError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      const opts = { subnetOf: subnetMap(o.subnet), server: o.server };
      const format = o.format ?? detect(text);
      let parsed: ImportResult;
      try {
        parsed = format === 'json' ? parseJsonLeases(text, file) : format === 'kea-csv' ? parseKeaCsv(text, file, opts) : parseIscLeases(text, file, opts);
      } catch (err) {
        if (isLeaseStoreError(err)) throw new CliError(`${err.message} [${err.code}]`);
        throw err;
      }
      for (const s of parsed.skipped) io.err(`${file}:${s.line}: skipped: ${s.reason}\n`);
      await withStore(o.db, false, async (s) => {
        const r = await importLeases(s, parsed.leases);
        io.out(`imported ${parsed.leases.length} lease(s) from ${file} (${format}): ${r.added} added, ${r.replaced} replaced, ${parsed.skipped.length} skipped\n`);
      });
    });
  return leases;
}
