// ipoib-cluster (bin/ipoib-cluster.ts): the main job. Issue 4's static form and issue 9's DHCP
// form with 16 hosts, called in-process through main(); the captures it writes checked by tshark,
// the independent decoder; impossible options; and the bin shim spawned once. Issue 9's options:
// fabric faults, partitions (isolation proven by pings that must fail), two servers on one
// PostgreSQL database (checked in the database itself), and the SVG plot read back into numbers.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { main, type ClusterIo } from '../bin/ipoib-cluster.js';
import type { ClusterReport } from '../bin/cluster/report.js';
import { checkBootCaptures } from './helpers/cluster-capture.js';
import { deriveNodeGuid, derivePortGuid } from '../link/fabric/guid.js';
import { formatGuid } from '../link/wire/ib-address.js';
import { parsePartitions } from '../link/fabric/partitions.js';
import { dropSchemas, PG_URL, pgExec, pgGate, schemaName } from './helpers-lease-db/pg.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cluster(argv: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const io: ClusterIo = { out: (s) => { out += s; }, err: (s) => { err += s; }, errIsTTY: false };
  const code = await main(argv, io);
  return { code, out, err };
}

async function clusterJson(t: Test, argv: string[]): Promise<ClusterReport> {
  const r = await cluster([...argv, '--json']);
  t.equal(r.code, 0, `exit 0 (${r.err.trim().split('\n').pop() ?? ''})`);
  return JSON.parse(r.out) as ClusterReport;
}

const tmp = mkdtempSync(join(tmpdir(), 'cluster-test-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function distinct<T>(xs: T[]): number {
  return new Set(xs).size;
}

function checkHosts(t: Test, r: ClusterReport, mode: string, mtu: number): void {
  t.equal(r.nodes.length, 16);
  t.same(r.nodes.map((n) => n.name), Array.from({ length: 16 }, (_, i) => `node${String(i + 1).padStart(3, '0')}`));
  t.equal(distinct(r.nodes.map((n) => n.portGuid)), 16, '16 distinct port GUIDs');
  t.equal(r.nodes[0]!.portGuid, formatGuid(derivePortGuid(deriveNodeGuid('node001'), 1)), 'GUIDs derived from the host names');
  t.equal(distinct(r.nodes.map((n) => n.lid)), 16, '16 distinct LIDs');
  t.ok(r.nodes.every((n) => n.lid >= 1 && n.lid < 0xc000), 'LIDs are unicast LIDs');
  t.equal(distinct(r.nodes.map((n) => n.hwAddress)), 16, '16 distinct hardware addresses');
  for (const n of r.nodes) {
    const bytes = n.hwAddress.split(':');
    t.equal(bytes.length, 20, `${n.name}: 20-byte hardware address`);
    t.equal(bytes[0], '80', `${n.name}: connected-mode flag in the address (CM supported)`);
    t.equal(bytes.slice(4, 12).join(''), 'fe80000000000000', `${n.name}: GID starts with the default subnet prefix`);
    t.equal(`0x${bytes.slice(12).join('')}`, n.portGuid, `${n.name}: GID ends in its port GUID`);
  }
  t.ok(r.nodes.every((n) => n.mode === mode && n.mtu === mtu), `every ib0 in ${mode} mode with MTU ${mtu}`);
}

t.test('static addressing, datagram mode: 16 hosts and every pair pings', async (t) => {
  const r = await clusterJson(t, ['--nodes', '16', '--addressing', 'static', '--ping-all', '-q']);
  t.equal(r.addressing, 'static');
  checkHosts(t, r, 'datagram', 2044);
  t.same(r.nodes.map((n) => n.address), Array.from({ length: 16 }, (_, i) => `10.0.0.${i + 1}`), 'host k at 10.0.0.k');
  t.equal(r.reach[0]!.plan, 'every pair');
  t.equal(r.reach[0]!.attempted, 120, '16 * 15 / 2 pairs');
  t.equal(r.reach[0]!.ok, 120, 'every pair answered');
  t.ok(r.ok);
  t.same(r.problems, []);
  const bringUp = r.phases.find((p) => p.name.startsWith('bring-up'))!;
  t.equal(bringUp.packets.sa, 32, 'one SA join request and response per host');
  const ping = r.phases.find((p) => p.name === 'ping')!;
  t.equal(ping.packets.icmp, 240, 'one echo request and reply per pair');
  t.ok(ping.packets.arp >= 240, 'ARP resolves every pair');
});

t.test('static addressing, connected mode: 16 hosts and every pair pings over RC', async (t) => {
  const r = await clusterJson(t, ['--nodes', '16', '--addressing', 'static', '--mode', 'connected', '--ping-all', '-q']);
  checkHosts(t, r, 'connected', 65520);
  t.equal(r.reach[0]!.ok, 120, 'every pair answered');
  const ping = r.phases.find((p) => p.name === 'ping')!;
  t.ok(ping.packets.cm > 0, 'connections set up through CM MADs');
  t.ok(r.ok);
});

t.test('the table form names every column of issue 4 and ends with a verdict', async (t) => {
  const r = await cluster(['--nodes', '4', '--addressing', 'static']);
  t.equal(r.code, 0);
  t.match(r.out, /^NAME\s+PORT GUID\s+LID\s+HARDWARE ADDRESS\s+ADDRESS\s+MODE\s+MTU$/m);
  t.match(r.out, /^node004\s+0x[0-9a-f]{16}\s+\d+\s+80(:[0-9a-f]{2}){19}\s+10\.0\.0\.4\s+datagram\s+2044$/m);
  t.match(r.out, /ping ring \(each host to the next\): 4\/4 answered/);
  t.match(r.out, /^OK: 4 hosts \(static, datagram\)/m);
  t.match(r.err, /^4 hosts up with carrier$/m, 'progress closes each phase with a plain line when stderr is not a terminal');
});

t.test('DHCP: 16 hosts bound, distinct addresses, reachable, leases in the SQLite file', async (t) => {
  const db = join(tmp, 'leases.sqlite');
  const r = await clusterJson(t, ['--nodes', '16', '--lease-db', `sqlite:${db}`, '-q']);
  t.equal(r.addressing, 'dhcp');
  checkHosts(t, r, 'datagram', 2044);
  t.ok(r.nodes.every((n) => n.address !== null), 'every host bound');
  t.equal(distinct(r.nodes.map((n) => n.address)), 16, 'no address held twice');
  t.ok(r.nodes.every((n) => /^10\.0\.0\.(1\d|2[0-5])$/.test(n.address!)), 'addresses from the pool 10.0.0.10-25');
  t.ok(r.nodes.every((n) => typeof n.timeToBoundMs === 'number' && n.timeToBoundMs > 0), 'time to bound per host');
  for (const n of r.nodes) {
    t.equal(n.clientId, `ff:00:00:00:00:00:02:00:00:02:c9:00:${n.portGuid.slice(2).match(/../g)!.join(':')}`, `${n.name}: RFC 4390 DUID-EN client identifier from its port GUID`);
  }
  const s = r.server!;
  t.same([s.received['discover'], s.received['request'], s.sent['offer'], s.sent['ack']], [16, 16, 16, 16], 'one DORA per host');
  t.equal(s.port, 0x8043);
  t.equal(r.reach[0]!.attempted, 32, 'every host pings the server and a random peer');
  t.equal(r.reach[0]!.ok, 32);
  t.ok(r.ok);
  const dhcp = r.phases.find((p) => p.name.startsWith('dhcp'))!;
  t.equal(dhcp.packets.dhcp, 64, 'DISCOVER, OFFER, REQUEST, ACK per host: no retransmission');
  t.equal(dhcp.packets.arp, 16 * 4, 'three probes and one gratuitous ARP per host');

  t.ok(existsSync(db), 'the named lease file is kept');
  const sql = new Database(db, { readonly: true });
  const rows = sql.prepare('SELECT address, state, client_id, hwaddr FROM lease ORDER BY address').all() as
    { address: number; state: string; client_id: Buffer; hwaddr: Buffer | null }[];
  sql.close();
  t.equal(rows.length, 16, '16 leases in the file');
  const toText = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  const byAddress = new Map(r.nodes.map((n) => [n.address!, n]));
  for (const row of rows) {
    const n = byAddress.get(toText(row.address));
    t.ok(n !== undefined, `${toText(row.address)} is a host's leased address`);
    t.equal(row.state, 'bound');
    t.equal([...row.client_id].map((b) => b.toString(16).padStart(2, '0')).join(':'), n?.clientId, 'keyed by the host\'s client identifier');
    t.equal(row.hwaddr?.length, 20, 'with the 20-byte hardware address the server saw');
  }

  const again = await clusterJson(t, ['--nodes', '16', '--lease-db', db, '-q']);
  t.same(again.nodes.map((n) => n.address), r.nodes.map((n) => n.address), 'a second boot on the same lease file gives every host its address back');
});

t.test('captures of a DHCP boot decode in tshark without a malformed frame', async (t) => {
  const ipoib = join(tmp, 'boot.pcap');
  const raw = join(tmp, 'boot-raw.pcap');
  const r = await clusterJson(t, ['--nodes', '16', '--pcap', ipoib, '--pcap-raw', raw, '-q']);
  t.ok(r.capture !== undefined && r.capture.ipoibPackets > 0 && r.capture.frames > r.capture.ipoibPackets);
  checkBootCaptures(t, ipoib, raw, r.capture!, 16);
});

t.test('impossible options: one line, exit 2, nothing printed on stdout', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--nodes', '20', '--pool-size', '16'], /--nodes 20 is more than the pool holds \(--pool-size 16\)/],
    [['--mode', 'bogus'], /bogus/],
    [['--addressing', 'carrier-pigeon'], /carrier-pigeon/],
    [['--nodes', '0'], /--nodes: '0' is not an integer/],
    [['--nodes', 'many'], /--nodes: 'many'/],
    [['--addressing', 'static', '--lease-db', 'x.sqlite'], /--lease-db needs --addressing dhcp/],
    [['--lease-db', 'sqlite:'], /--lease-db 'sqlite:': no file name/],
    [['--lease-db', 'sqlite:/nonexistent-dir/leases.sqlite'], /--lease-db .*nonexistent-dir/],
    // A PostgreSQL server that does not answer (nothing listens on port 1): found before any host is built.
    [['--lease-db', 'postgres://nobody@127.0.0.1:1/leases'], /--lease-db postgres:\/\/nobody@127\.0\.0\.1:1\/leases: .*unreachable/i],
  ];
  for (const [argv, re] of cases) {
    const r = await cluster([...argv, '-q']);
    t.equal(r.code, 2, `${argv.join(' ')}: exit 2`);
    t.equal(r.out, '', `${argv.join(' ')}: nothing on stdout`);
    t.equal(r.err.split('\n').length, 2, `${argv.join(' ')}: one line`);
    t.match(r.err, re);
  }
});

t.test('the bin shim runs the program', async (t) => {
  // tap puts its loader hooks in NODE_OPTIONS of every child it sees spawned; they break the tsx
  // shim, so the child drops them itself (env -u), as a user's shell never had them.
  const p = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, 'bin/ipoib-cluster', '--nodes', '3', '--addressing', 'static', '--json', '-q'],
    { encoding: 'utf8' });
  t.equal(p.status, 0, p.stderr);
  const r = JSON.parse(p.stdout) as ClusterReport;
  t.equal(r.nodes.length, 3);
  t.ok(r.ok);
});

// ---- issue 9: faults, partitions, several servers, the plot ---------------------------------------

/** The plot's curve and bars turned back into milliseconds and hosts through their data-* scale. */
function readPlot(svg: string): { curve: { tMs: number; hosts: number }[]; pxPerMs: number; bars: number[]; title: string } {
  const poly = /<polyline class="bound-curve" data-x0="([\d.]+)" data-px-per-ms="([\d.e-]+)" data-y0="([\d.]+)" data-px-per-host="([\d.e-]+)" points="([^"]*)"/.exec(svg);
  if (poly === null) return { curve: [], pxPerMs: 0, bars: [], title: '' };
  const [x0, sx, y0, sy] = poly.slice(1, 5).map(Number) as [number, number, number, number];
  const curve = poly[5]!.split(' ').map((p) => {
    const [x, y] = p.split(',').map(Number) as [number, number];
    return { tMs: (x - x0) / sx, hosts: (y0 - y) / sy };
  });
  const bars = [...svg.matchAll(/<rect class="bar" data-count="(\d+)"/g)].map((m) => Number(m[1]));
  return { curve, pxPerMs: sx, bars, title: /<title>([^<]*)<\/title>/.exec(svg)?.[1] ?? '' };
}

function xmlParses(t: Test, file: string): void {
  const p = spawnSync('python3', ['-c', 'import xml.dom.minidom,sys; d=xml.dom.minidom.parse(sys.argv[1]); assert d.documentElement.tagName == "svg"', file], { encoding: 'utf8' });
  t.equal(p.status, 0, `${file} is well-formed XML with an <svg> root: ${p.stderr}`);
}

t.test('faults: 64 hosts through 20% loss, duplication and reordering all bind once, and the plot shows them', async (t) => {
  const svg = join(tmp, 'faults.svg');
  const r = await clusterJson(t, ['--nodes', '64', '--loss', '20%', '--dup', '0.2', '--reorder', '20%', '--plot', svg, '-q']);
  t.ok(r.ok, r.problems.join('; '));
  t.ok(r.nodes.every((n) => n.address !== null), 'every host bound');
  t.equal(distinct(r.nodes.map((n) => n.address)), 64, 'no address held by two hosts');
  const f = r.faults!;
  t.same([f.loss, f.duplicate, f.reorder], [0.2, 0.2, 0.2], 'the faults asked for');
  t.ok(f.lost > 0 && f.duplicated > 0 && f.reordered > 0, `the fabric lost ${f.lost}, duplicated ${f.duplicated}, reordered ${f.reordered}`);
  const s = r.server!;
  t.ok((s.received['discover'] ?? 0) + (s.received['request'] ?? 0) > 128, 'retransmitted and duplicated messages reached the server');
  t.equal(s.leasesInDb, 64, 'duplicated DISCOVERs and REQUESTs made no second lease');
  t.equal(r.reach[0]!.ok, r.reach[0]!.attempted, 'every ping answered within its retries');

  xmlParses(t, svg);
  const text = readFileSync(svg, 'utf8');
  const plot = readPlot(text);
  t.match(plot.title, /64 hosts, dhcp, datagram; faults: loss 20%, dup 20%, reorder 20%/, 'the title names the run');
  t.equal(plot.curve.length, 1 + 2 * 64, 'the curve: the origin and one step (two points) per host');
  t.same(plot.curve[0], { tMs: 0, hosts: 0 });
  t.equal(Math.round(plot.curve.at(-1)!.hosts), 64, 'the curve ends at 64 hosts bound');
  const times = r.nodes.map((n) => n.timeToBoundMs!).sort((a, b) => a - b);
  const tolerance = 0.01 / plot.pxPerMs + 1e-6;
  const steps = times.map((_, i) => plot.curve[2 + 2 * i]!);
  t.ok(steps.every((p, i) => Math.abs(p.tMs - times[i]!) <= tolerance && Math.round(p.hosts) === i + 1),
    'step k sits at the k-th smallest time to bound with k hosts bound');
  t.equal(plot.bars.reduce((a, b) => a + b, 0), 64, 'the histogram counts every bound host once');
});

t.test('faults in the static form: pings retried through loss', async (t) => {
  const r = await clusterJson(t, ['--nodes', '8', '--addressing', 'static', '--ping-all', '--loss', '25%', '-q']);
  t.ok(r.ok, r.problems.join('; '));
  t.equal(r.reach[0]!.ok, 28, 'every pair answered');
  t.ok(r.faults!.lost > 0, 'packets were lost');
  const svg = join(tmp, 'static.svg');
  t.equal((await cluster(['--nodes', '3', '--addressing', 'static', '--plot', svg, '-q'])).code, 0);
  xmlParses(t, svg);
  t.match(readFileSync(svg, 'utf8'), /no time-to-bound to plot \(static addressing/, 'a static run plots, saying why there is no curve');
});

t.test('partitions: hosts round-robin over P_Keys 0x8001..0x8003, each in its own subnet, isolated from the others', async (t) => {
  const r = await clusterJson(t, ['--nodes', '9', '--partitions', '3', '--ping-all', '-q']);
  t.ok(r.ok, r.problems.join('; '));
  r.nodes.forEach((n, i) => {
    const k = (i % 3) + 1;
    t.equal(n.pkey, `0x800${k}`, `${n.name}: ib0 in partition ${k}`);
    t.match(n.address ?? '', new RegExp(`^10\\.${k}\\.0\\.\\d+$`), `${n.name}: leased from 10.${k}.0.0/16`);
  });
  // The partitions.conf the SM ran with, read independently: each host a full member of one partition.
  const parts = parsePartitions(r.partitions!.conf);
  for (const [i, n] of r.nodes.entries()) {
    const member = parts.filter((p) => p.members.some((m) => m.who === BigInt(n.portGuid))).map((p) => p.pkey);
    t.same(member, [(i % 3) + 1], `${n.name}: member of partition ${(i % 3) + 1} only`);
  }
  t.same(r.server!.interfaces, ['ib0.8001 10.1.0.1', 'ib0.8002 10.2.0.1', 'ib0.8003 10.3.0.1'], 'the server serves each partition on a child interface');
  t.equal(r.reach[0]!.attempted, 9 + 3 * 3, 'the server from every host, and every pair within each partition');
  t.equal(r.reach[0]!.ok, r.reach[0]!.attempted, 'same partition: every ping answered');
  t.equal(r.isolation!.attempted, 3, 'one cross-partition ping per partition');
  t.equal(r.isolation!.blocked, 3, 'across partitions: none answered');
  t.same(r.isolation!.leaked, []);

  // Connected mode: the CM REQ/REP between a host (no default P_Key) and the server's child
  // interface must travel on the partition's P_Key, not on P_Key index 0.
  const rc = await clusterJson(t, ['--nodes', '4', '--partitions', '2', '--mode', 'connected', '-q']);
  t.ok(rc.ok, `connected mode across child interfaces: ${rc.problems.join('; ')}`);
  t.ok(rc.phases.find((p) => p.name === 'ping')!.packets.cm > 0, 'pings went over RC connections');

  const text = await cluster(['--nodes', '4', '--partitions', '2', '--addressing', 'static']);
  t.equal(text.code, 0);
  t.match(text.out, /^NAME\s+PORT GUID\s+LID\s+PKEY\s+HARDWARE ADDRESS/m, 'a PKEY column');
  t.match(text.out, /^node002\s+0x[0-9a-f]{16}\s+\d+\s+0x8002\s+80(:[0-9a-f]{2}){19}\s+10\.2\.0\.1\s/m, 'static: 10.k.0.j in partition k');
  t.match(text.out, /\(expected unanswered\): 2\/2 unanswered/);
});

// Under CI=true this runs whatever happens (a missing server fails it); locally it skips, visibly.
const gate = await pgGate();
t.test('two DHCP servers share one PostgreSQL lease database', { skip: gate.skip }, async (t) => {
  const schema = schemaName('cluster');
  await pgExec(`CREATE SCHEMA "${schema}"`);
  t.teardown(() => dropSchemas([schema]));
  const url = `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const r = await clusterJson(t, ['--nodes', '32', '--servers', '2', '--lease-db', url, '-q']);
  t.ok(r.ok, r.problems.join('; '));
  t.same(r.servers!.map((s) => [s.name, s.address]), [['dhcpd1', '10.0.0.1'], ['dhcpd2', '10.0.0.2']]);
  for (const s of r.servers!) t.ok((s.sent['ack'] ?? 0) > 0 && s.leasesGranted! > 0, `${s.name} acknowledged leases (${s.leasesGranted})`);
  t.equal(r.servers!.reduce((n, s) => n + s.leasesGranted!, 0), 32, 'the granted leases add up to the hosts');
  t.equal(distinct(r.nodes.map((n) => n.address)), 32, 'no address held by two hosts');
  const rows = (await pgExec(`SELECT address, state, server, encode(client_id, 'hex') AS cid FROM "${schema}".lease WHERE state = 'bound'`)).rows as
    { address: string; server: string; cid: string }[];
  t.equal(rows.length, 32, '32 bound leases in the database');
  t.equal(distinct(rows.map((x) => x.cid)), 32, 'one bound lease per client');
  const toText = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  t.same(rows.map((x) => toText(Number(x.address))).sort(), r.nodes.map((n) => n.address!).sort(), 'the database holds exactly the hosts\' addresses');
  t.same([...new Set(rows.map((x) => x.server))].sort(), ['dhcpd1', 'dhcpd2'], 'written by both servers');
});

t.test('issue 9 options: impossible combinations are one line, exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--servers', '2'], /--servers 2 needs --lease-db postgres:\/\//],
    [['--servers', '2', '--lease-db', 'x.sqlite'], /--servers 2 needs --lease-db postgres:\/\//],
    [['--servers', '2', '--lease-db', 'postgres://nobody@127.0.0.1:1/leases'], /--lease-db postgres:\/\/nobody@127\.0\.0\.1:1\/leases: .*unreachable/i],
    [['--nodes', '2', '--partitions', '3'], /--partitions 3 needs at least 3 hosts \(--nodes 2\)/],
    [['--nodes', '2', '--partitions', '3', '--addressing', 'static'], /--partitions 3 needs at least 3 hosts/],
    [['--partitions', '0'], /--partitions/],
    [['--loss', '1.5'], /--loss: '1.5' is outside 0..1/],
    [['--dup', 'lots'], /--dup: 'lots' is not a fraction/],
    [['--plot', '/nonexistent-dir/boot.svg'], /--plot \/nonexistent-dir\/boot\.svg: no directory/],
    [['--plot', join(tmp, 'boot.png')], /name the file \*\.svg/],
  ];
  // All at once: the unreachable PostgreSQL server costs its retry window, the others nothing.
  const runs = await Promise.all(cases.map(([argv]) => cluster([...argv, '-q'])));
  cases.forEach(([argv, re], i) => {
    const r = runs[i]!;
    t.equal(r.code, 2, `${argv.join(' ')}: exit 2`);
    t.equal(r.out, '', `${argv.join(' ')}: nothing on stdout`);
    t.equal(r.err.split('\n').length, 2, `${argv.join(' ')}: one line`);
    t.match(r.err, re);
  });
});
