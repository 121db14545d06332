// Lease files in and out: ISC dhcpd.leases (checked against ISC's own dhcpd when installed),
// Kea's memfile CSV (fixtures from Kea's unit tests), our JSON, and the `leases` CLI.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { leasesCommand } from '../bin/ipoib-dhcpd-leases.js';
import { program, run } from '../bin/cli.js';
import { formatIscLeases, iscQuote, iscTime, parseIscLeases } from '../lease-db/isc-leases.js';
import { formatJsonLeases, parseJsonLeases } from '../lease-db/json-format.js';
import { formatKeaCsv, KEA_LEASE4_HEADER, keaEscape, keaUnescape, parseKeaCsv } from '../lease-db/kea-csv.js';
import type { Lease, NewLease } from '../lease-db/lease.js';
import { openSqliteStore } from '../lease-db/sqlite-store.js';
import { cid, hw, ip, lease } from './helpers-lease-db/conformance.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The programs run as a user runs them: tap's process tracker adds its loader hooks to every
// child's NODE_OPTIONS (which break an extensionless ES module), so env(1) takes them out again.
const program$ = (args: string[]) => spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(root, 'bin', 'ipoib-dhcpd'), ...args],
  { encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'lease-fmt-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1795572000; // 2026-11-25 02:00:00 UTC, a Wednesday (python3: datetime(2026,11,25).strftime('%w') == '3')
const v = (l: NewLease, version = 1): Lease => ({ ...l, version });
const SAMPLE: Lease[] = [
  v(lease('10.1.0.50', { start: T0, expiry: T0 + 3600, clientId: Buffer.from([0xff, 0x00, 0x22, 0x5c, 0x61, 0x20, 0x0a]), hostname: 'node1' })),
  v(lease('10.1.0.51', { start: T0, expiry: T0 + 60, state: 'offered', hostname: null })),
  v(lease('10.1.0.52', { start: T0, expiry: T0 + 10, state: 'released', portGuid: null, hwaddr: null })),
  v(lease('10.1.0.53', { start: T0, expiry: T0 + 600, state: 'declined', clientId: null, portGuid: null, hwaddr: null, hostname: null })),
  v(lease('10.1.0.54', { start: T0 - 7200, expiry: T0 - 3600, state: 'expired', hostname: 'a,b&c é' })),
];
const strip = (ls: Lease[]): NewLease[] => ls.map(({ version: _v, ...rest }) => rest);

t.test('ISC: time and identifier syntax as dhcpd prints them', async (t) => {
  t.equal(iscTime(T0), '3 2026/11/25 02:00:00', 'print_time(): %w %Y/%m/%d %H:%M:%S in UTC');
  t.equal(iscTime(0xffff_ffff), 'never');
  t.equal(iscQuote(Buffer.from([0x01, 0x00, 0x16, 0x3e, 0xef, 0xa9, 0xc1])), '"\\001\\000\\026>\\357\\251\\301"',
    'the uid of the public sample below, byte for byte');
  t.equal(iscQuote(Buffer.from('a "b" \\c')), '"a \\"b\\" \\\\c"', 'quote and backslash escaped, space kept');
});

t.test('ISC: export text', async (t) => {
  const text = formatIscLeases([SAMPLE[0]!, SAMPLE[3]!]);
  t.equal(text, [
    '# The format of this file is documented in the dhcpd.leases(5) manual page.',
    '# This lease file was written by ipoib-dhcpd',
    '',
    'lease 10.1.0.50 {',
    '  starts 3 2026/11/25 02:00:00;',
    '  ends 3 2026/11/25 03:00:00;',
    '  cltt 3 2026/11/25 02:00:00;',
    '  binding state active;',
    '  next binding state free;',
    '  uid "\\377\\000\\"\\\\a \\012";',
    '  set ipoib-subnet-id = "1";',
    '  set ipoib-port-guid = "0x0002c90300000032";',
    '  set ipoib-hwaddr = "00:00:00:7a:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:32";',
    '  client-hostname "node1";',
    '}',
    'lease 10.1.0.53 {',
    '  starts 3 2026/11/25 02:00:00;',
    '  ends 3 2026/11/25 02:10:00;',
    '  cltt 3 2026/11/25 02:00:00;',
    '  binding state abandoned;',
    '  set ipoib-subnet-id = "1";',
    '}',
    '',
  ].join('\n'));
});

t.test('ISC: every lease survives export and import', async (t) => {
  const back = parseIscLeases(formatIscLeases(SAMPLE), 'x.leases');
  t.same(back.skipped, []);
  t.same(back.leases, strip(SAMPLE).map((l) => ({ ...l, server: 'import' })));
});

// Two declarations of one lease from a dhcpd.leases written by isc-dhcp-4.1.1-P1, published at
// https://pastebin.com/vMae0nu8 (the file repeats the lease as it is renewed; the last one wins).
const ISC_PUBLIC = `# The format of this file is documented in the dhcpd.leases(5) manual page.
# This lease file was written by isc-dhcp-4.1.1-P1
server-duid "\\000\\001\\000\\001%>\\347\\000\\000\\026>\\336\\233\\260";
lease 172.17.1.4 {
  starts 0 2019/10/20 09:58:13;
  ends 0 2019/10/20 10:03:13;
  cltt 0 2019/10/20 09:58:13;
  binding state active;
  next binding state free;
  hardware ethernet 00:16:3e:ef:a9:c1;
  uid "\\001\\000\\026>\\357\\251\\301";
  client-hostname "vxp_0";
}
lease 172.17.1.4 {
  starts 0 2019/10/20 10:08:12;
  ends 0 2019/10/20 10:13:12;
  cltt 0 2019/10/20 10:08:12;
  binding state active;
  next binding state free;
  hardware ethernet 00:16:3e:ef:a9:c1;
  uid "\\001\\000\\026>\\357\\251\\301";
  client-hostname "vxp_0";
}
`;

t.test('ISC: import a file dhcpd wrote', async (t) => {
  const r = parseIscLeases(ISC_PUBLIC, 'public.leases', { subnetOf: () => 7, server: 'isc' });
  t.same(r.leases, [{
    address: ip('172.17.1.4'), subnetId: 7, clientId: Buffer.from('0100163eefa9c1', 'hex'), portGuid: null, hwaddr: null,
    hostname: 'vxp_0', state: 'bound', start: 1571566092, expiry: 1571566392, server: 'isc',
  }], 'the last declaration; uid octal escapes decoded (python3: 2019-10-20 10:08:12 UTC = 1571566092)');
  const noUid = parseIscLeases('lease 10.0.0.9 { binding state free; hardware ethernet 00:16:3e:00:00:01; ends never; }', 'x');
  t.same(noUid.leases[0]?.clientId, Buffer.from('0100163e000001', 'hex'), 'no uid: htype 1 + MAC becomes the client id');
  t.equal(noUid.leases[0]?.expiry, 0xffff_ffff, 'ends never');
  t.equal(noUid.leases[0]?.state, 'expired', 'free: the address is not held');
  const ib = parseIscLeases(`lease 10.0.0.8 { binding state active; hardware infiniband ${[...hw(3)].map((b) => b.toString(16)).join(':')}; uid 01:02; }`, 'x');
  t.same([ib.leases[0]?.hwaddr, ib.leases[0]?.portGuid, ib.leases[0]?.clientId],
    [hw(3), 0x0002c90300000003n, Buffer.from([1, 2])], '20-byte hardware infiniband gives hwaddr and port GUID; hex uid');
  t.throws(() => parseIscLeases('lease 10.0.0.1 {\n  starts 3 2026/11/25 02:00:00\n}', 'bad.leases'),
    { code: 'BAD_INPUT', message: /^bad\.leases:3: expected ';' before '}'/ });
  t.throws(() => parseIscLeases('lease 10.0.0.1 { uid "abc', 'bad2.leases'), { code: 'BAD_INPUT', message: /unterminated string/ });
});

const dhcpd = ['/usr/sbin/dhcpd', '/usr/bin/dhcpd'].find((p) => existsSync(p));

t.test("ISC: ISC's own dhcpd reads the export", {
  skip: dhcpd === undefined ? 'isc-dhcp-server is not installed (apt-get install isc-dhcp-server): export not checked by dhcpd' : false,
}, async (t) => {
  const conf = join(dir, 'dhcpd.conf');
  writeFileSync(conf, 'subnet 10.1.0.0 netmask 255.255.0.0 { range 10.1.0.10 10.1.0.200; }\n');
  const file = join(dir, 'export.leases');
  writeFileSync(file, formatIscLeases(SAMPLE));
  const r = spawnSync(dhcpd!, ['-4', '-T', '-cf', conf, '-lf', file, '-pf', join(dir, 'dhcpd.pid')], { encoding: 'utf8' });
  const out = r.stdout + r.stderr;
  t.notMatch(out, /line \d+:/, 'no parse error or warning');
  t.match(out, new RegExp(`Wrote ${SAMPLE.length} leases to leases file`), `dhcpd read all ${SAMPLE.length} leases back`);
});

// The sample file of Kea's CSVLeaseFile4 unit test (src/lib/dhcpsrv/tests/csv_lease_file4_unittest.cc,
// writeSampleFile): Kea itself reads rows 1, 3, 4, 5 and rejects row 2 (no hwaddr, no client id).
const KEA_SAMPLE = 'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n' +
  '192.0.2.1,06:07:08:09:0a:bc,,200,200,8,1,1,host.example.com,0,\n' +
  '192.0.2.2,,,200,200,8,1,1,host.example.com,0,\n' +
  '192.0.2.3,dd:de:ba:0d:1b:2e:3e:4f,0a:00:01:04,100,100,7,0,0,,1,{ "foobar": true }\n' +
  '192.0.2.4,,11:22:33:44:55:66,200,200,8,1,1,host.example.com,0,\n' +
  '192.0.2.5,,,200,200,8,1,1,,1,\n';

t.test("Kea CSV: Kea's own sample file", async (t) => {
  const r = parseKeaCsv(KEA_SAMPLE, 'kea.csv', { server: 'kea' });
  t.same(r.skipped, [{ line: 3, reason: 'neither hwaddr nor client_id, and not declined' }]);
  t.same(r.leases.map((l) => [l.address, l.subnetId, l.state, l.start, l.expiry, l.clientId?.toString('hex') ?? null, l.hostname]), [
    [ip('192.0.2.1'), 8, 'bound', 0, 200, '01060708090abc', 'host.example.com'],
    [ip('192.0.2.3'), 7, 'declined', 0, 100, '0a000104', null],
    [ip('192.0.2.4'), 8, 'bound', 0, 200, '112233445566', 'host.example.com'],
    [ip('192.0.2.5'), 8, 'declined', 0, 200, null, null],
  ]);
  const del = parseKeaCsv(`${KEA_LEASE4_HEADER}\n10.0.0.1,,01:02,60,100,1,0,0,,0,,0\n10.0.0.1,,01:02,0,100,1,0,0,,0,,0\n`, 'k');
  t.same(del.leases, [], 'valid_lifetime 0 is how memfile records a deletion');
  t.throws(() => parseKeaCsv('address,hwaddr\n1.2.3.4,\n', 'short.csv'), { code: 'BAD_INPUT', message: /^short\.csv:1: not a Kea lease4 CSV file/ });
});

t.test('Kea CSV: escaping and a full round trip', async (t) => {
  t.equal(keaEscape('a,b&c é'), 'a&#x2cb&#x26c &#xc3&#xa9', 'CSVRow::escapeCharacters: separator, & and non-ASCII bytes');
  t.equal(keaUnescape('a&#x2cb&#x26c &#xc3&#xa9'), 'a,b&c é');
  const text = formatKeaCsv(SAMPLE, [{ id: 4, subnetId: 1, first: ip('10.1.0.0'), last: ip('10.1.0.255') }]);
  const lines = text.split('\n');
  t.equal(lines[0], KEA_LEASE4_HEADER);
  t.equal(lines[1], `10.1.0.50,${[...hw(50)].map((b) => b.toString(16).padStart(2, '0')).join(':')},ff:00:22:5c:61:20:0a,3600,${T0 + 3600},1,0,0,node1,0,` +
    '{"ipoib":{"server":"srv-a"&#x2c"port-guid":"0x0002c90300000032"}},4');
  const back = parseKeaCsv(text, 'rt.csv');
  t.same(back.skipped, []);
  t.same(back.leases, strip(SAMPLE));
});

t.test('JSON: round trip and bad input', async (t) => {
  const back = parseJsonLeases(formatJsonLeases(SAMPLE), 'x.json');
  t.same(back.leases, strip(SAMPLE));
  t.throws(() => parseJsonLeases('[', 'y.json'), { code: 'BAD_INPUT', message: /^y\.json: not JSON/ });
  const partial = parseJsonLeases(JSON.stringify({ leases: [{ address: '10.0.0.300' }] }), 'z.json');
  t.equal(partial.skipped.length, 1);
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const p = program('ipoib-dhcpd', 'test');
  leasesCommand(p, { out: (s) => { out += s; }, err: (s) => { err += s; } });
  const code = await run('ipoib-dhcpd', p, args);
  return { code, out, err };
}

t.test('CLI: import, list, export', async (t) => {
  t.ok(leasesCommand(new Command('x')) instanceof Command);
  const db = join(dir, 'cli.db');
  const iscFile = join(dir, 'in.leases');
  writeFileSync(iscFile, ISC_PUBLIC);
  const imp = await cli(['leases', 'import', iscFile, '--db', db, '--subnet', '3=172.17.0.0/16']);
  t.equal(imp.code, 0);
  t.match(imp.out, /imported 1 lease\(s\) from .* \(isc\): 1 added, 0 replaced, 0 skipped/);
  const kea = join(dir, 'in.csv');
  writeFileSync(kea, KEA_SAMPLE);
  const imp2 = await cli(['leases', 'import', kea, '--db', db]);
  t.match(imp2.out, /\(kea-csv\): 4 added/);
  t.match(imp2.err, /in\.csv:3: skipped: neither hwaddr nor client_id/);
  const list = await cli(['leases', 'list', '--db', db, '--state', 'bound']);
  t.equal(list.code, 0);
  t.match(list.out, /^address +state +subnet/);
  t.match(list.out, /172\.17\.1\.4 +bound +3 +2019-10-20 10:13:12 +vxp_0 +0100163eefa9c1/);
  t.equal(list.out.trim().split('\n').length, 1 + 3, 'header and the three bound leases');
  const exp = await cli(['leases', 'export', '--db', db, '--format', 'isc']);
  t.equal(parseIscLeases(exp.out, 'o').leases.length, 5);
  const out = join(dir, 'out.json');
  await cli(['leases', 'export', '--db', db, '--format', 'json', '-o', out]);
  t.equal(parseJsonLeases(readFileSync(out, 'utf8'), out).leases.length, 5);
  const csv = await cli(['leases', 'export', '--db', db, '--format', 'csv']);
  t.equal(parseKeaCsv(csv.out, 'c').leases.length, 5);
  const again = await cli(['leases', 'import', out, '--db', db]);
  t.match(again.out, /0 added, 5 replaced/, 'importing the same leases again replaces them');
  const s = await openSqliteStore(db, { readonly: true });
  t.equal((await s.get(ip('172.17.1.4')))?.subnetId, 3, '--subnet mapped the ISC lease');
  await s.close();
});

t.test('CLI: a bad database is one line naming the file, exit 2, file untouched', async (t) => {
  const bad = join(dir, 'garbage.db');
  writeFileSync(bad, 'not a database at all\n'.repeat(100));
  const before = createHash('sha256').update(readFileSync(bad)).digest('hex');
  const r = await cli(['leases', 'list', '--db', bad]);
  t.equal(r.code, 2);
  const shim = program$(['leases', 'export', '--db', bad]);
  t.equal(shim.status, 2, 'the real program exits 2');
  t.equal(shim.stdout, '');
  t.match(shim.stderr, new RegExp(`^ipoib-dhcpd: ${bad.replace(/[.]/g, '\\.')}: not a readable SQLite database .*\\[DB_CORRUPT\\]\\n$`));
  t.equal(shim.stderr.split('\n').length, 2, 'one line');
  t.equal(createHash('sha256').update(readFileSync(bad)).digest('hex'), before, 'unchanged');
  t.equal((await cli(['leases', 'import', join(dir, 'absent.leases'), '--db', join(dir, 'x.db')])).code, 2, 'unreadable input: exit 2');
  t.equal((await cli(['leases', 'list', '--db', join(dir, 'absent.db')])).code, 2, 'missing database: exit 2');
  t.notOk(existsSync(join(dir, 'absent.db')), 'list does not create a database');
  const help = program$(['--help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /ipoib-dhcpd leases list\|export\|import/, '--help names the leases subcommands');
  t.same(cid(1).length, 20);
});
