// Issue 7's multi-process run on the project's link: the fabric daemon (bin/ipoib-fabric), the
// server (`ipoib-dhcpd --fabric ... -p P`, a Kea config and a SQLite lease file) and DHCP clients
// as separate OS processes (`ipoib-dhclient --fabric ... -p P+1`). Three clients get distinct
// addresses from the pool, their emulated interfaces carry them (`ipoib addr show`), they ping each
// other and the server, their lease files parse, and the server's database holds three bound
// leases with each client's 20-byte hardware address and client identifier. A fourth client is
// released with `ipoib-dhclient -r` while it runs; SIGTERM stops everything else with exit 0 and
// (ISC's way) without releasing. Also: a missing carrier is named (P_Key not in the partition),
// and a port at or below 0x8000 is refused. Every wait is bounded; teardown kills every child.
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLeaseFile } from '../client/lease-file.js';
import { runBin, startBin, type BinProcess } from './helpers/bin-process.js';
import { ipv4ToString } from '../protocol/index.js';

// tap puts its loader hooks into NODE_OPTIONS of every child it sees spawned; they break the tsx
// bin shims (ERR_REQUIRE_CYCLE_MODULE), and a user's shell has none of them. Hence env -u.
const env = { ...process.env };
delete env['NODE_OPTIONS'];

const dir = mkdtempSync(join(tmpdir(), 'dhclient-fabric-'));
const run = join(dir, 'run');
const children: ChildProcess[] = [];
t.teardown(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

type Proc = BinProcess;
const start = (bin: string, args: string[]): Proc => startBin(bin, args, children, env);

const runToEnd = (bin: string, args: string[], ms = 20_000) => runBin(bin, args, children, ms, env);

const ipoib = (...args: string[]) => runToEnd('ipoib', ['--runtime-dir', run, ...args]);

const P = 0x8143;
const SERVER_IP = '10.77.0.1';
const POOL = { first: 0x0a4d0064, last: 0x0a4d0096 }; // 10.77.0.100 - 10.77.0.150
const HW20 = /^([0-9a-f]{2}:){19}[0-9a-f]{2}$/;

interface LeaseJson { address: string; state: string; clientId: string | null; hwaddr: string | null; hostname: string | null }

t.test('ipoib-dhcpd and ipoib-dhclient as separate processes on the fabric daemon', async (t) => {
  const fabric = start('ipoib-fabric', ['--listen', '127.0.0.1:0', '--log-level', 'warn']);
  const [, F] = await fabric.line(/^listening (\S+)$/, 20_000);

  const db = join(dir, 'leases.sqlite');
  const conf = join(dir, 'kea-dhcp4.conf');
  writeFileSync(conf, JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: ['ib0'] },
      'lease-database': { type: 'sqlite', name: db },
      'valid-lifetime': 600,
      subnet4: [{
        id: 1, subnet: '10.77.0.0/24', pools: [{ pool: '10.77.0.100 - 10.77.0.150' }],
        'option-data': [{ name: 'routers', data: SERVER_IP }, { name: 'interface-mtu', data: '1500' }],
      }],
    },
  }));
  const server = start('ipoib-dhcpd', ['--fabric', F!, '-p', String(P), '-cf', conf]);
  await server.line(/"event":"ready"/, 20_000, 'err');

  const names = ['c1', 'c2', 'c3', 'c4'];
  const clients = names.map((n) => start('ipoib-dhclient', [
    '--fabric', F!, '-p', String(P + 1), '--host', n, '--runtime-dir', run, '-lf', join(dir, `${n}.leases`), '-d', 'ib0',
  ]));
  const ready = await Promise.all(clients.map((c, i) => c.line(new RegExp(`^ready ${names[i]} (\\S+)$`), 20_000)));
  ready.forEach((m, i) => t.equal(m[1], join(run, `${names[i]}.sock`), `${names[i]} serves its control socket`));
  const bound = await Promise.all(clients.map((c) => c.line(/^bound to (\S+)\/(\d+) on ib0 -- renewal in (\d+) seconds\.$/, 25_000)));
  const addrs = bound.map((m) => m[1]!);
  t.equal(new Set(addrs).size, 4, `four distinct addresses: ${addrs.join(', ')}`);
  for (const m of bound) {
    const a = m[1]!.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    t.ok(a >= POOL.first && a <= POOL.last, `${m[1]} is from the pool`);
    t.equal(m[2], '24', 'prefix from the subnet mask');
    t.ok(Number(m[3]) > 250 && Number(m[3]) <= 300, `renewal at T1 = lease/2 (${m[3]} s)`);
  }

  // The fourth client releases while running: `-r` with the same host name finds it by its pid file.
  const rel = await runToEnd('ipoib-dhclient', ['-r', '--fabric', F!, '-p', String(P + 1), '--host', 'c4', '--runtime-dir', run, '-lf', join(dir, 'c4.leases'), 'ib0']);
  t.equal(rel.code, 0, `ipoib-dhclient -r exits 0\n${rel.err}`);
  t.same(await clients[3]!.exited(10_000), { code: 0, signal: null }, 'the running c4 released and exited 0');
  t.equal(parseLeaseFile(readFileSync(join(dir, 'c4.leases'), 'utf8')).leases.length, 0, "c4's lease file no longer holds the lease");
  t.notOk(existsSync(join(run, 'c4.sock')), "c4's control socket is gone");

  // Each `ipoib` is a process of its own (about a second of start-up): the three hosts are asked at once.
  const views = await Promise.all(names.slice(0, 3).map((n) => Promise.all([
    ipoib('--host', n, 'addr', 'show', 'ib0'), ipoib('--host', n, 'route', 'show'), ipoib('--host', n, '--json', 'link', 'show', 'ib0'),
  ])));
  const hw: string[] = [];
  for (const [i, n] of names.slice(0, 3).entries()) {
    const [show, route, link] = views[i]!;
    t.equal(show.code, 0);
    t.match(show.out, new RegExp(`\\n {4}inet ${addrs[i]!.replace(/\./g, '\\.')}/24 brd 10\\.77\\.0\\.255 scope global ib0\\n`), `${n}: ib0 carries ${addrs[i]}/24`);
    t.match(show.out, /mtu 1500 /, `${n}: option 26 MTU 1500 applied (it fits datagram mode)`);
    t.match(route.out, new RegExp(`^default via ${SERVER_IP.replace(/\./g, '\\.')} dev ib0$`, 'm'), `${n}: default route from option 3`);
    const address = (JSON.parse(link.out) as { address: string }[])[0]!.address;
    t.match(address, HW20, `${n}: 20-byte link address`);
    hw.push(address);
  }

  const pairs = [[0, 1], [1, 2], [2, 0]] as const;
  const pings = await Promise.all([
    ...pairs.map(([from, to]) => ipoib('--host', names[from]!, 'ping', addrs[to]!, '-c', '1')),
    ...names.slice(0, 3).map((n) => ipoib('--host', n, 'ping', SERVER_IP, '-c', '1')),
  ]);
  pairs.forEach(([from, to], k) => {
    t.equal(pings[k]!.code, 0, `${names[from]} pings ${names[to]} (${addrs[to]})`);
    t.match(pings[k]!.out, /1 packets transmitted, 1 received, 0% packet loss/);
  });
  names.slice(0, 3).forEach((n, k) => {
    t.equal(pings[3 + k]!.code, 0, `${n} pings the server ${SERVER_IP}`);
    t.match(pings[3 + k]!.out, /1 packets transmitted, 1 received, 0% packet loss/);
  });

  const cids: string[] = [];
  for (const [i, n] of names.slice(0, 3).entries()) {
    const parsed = parseLeaseFile(readFileSync(join(dir, `${n}.leases`), 'utf8'));
    t.same(parsed.problems, [], `${n}.leases parses without problems`);
    t.equal(parsed.leases.length, 1);
    const l = parsed.leases[0]!;
    t.same([l.interface, ipv4ToString(l.address), ipv4ToString(l.serverIdentifier), l.leaseTime], ['ib0', addrs[i], SERVER_IP, 600], `${n}: lease file holds the bound lease`);
    const cid = /option dhcp-client-identifier (\S+);/.exec(readFileSync(join(dir, `${n}.leases`), 'utf8'))?.[1] ?? '';
    // The "Mellanox prefix" form (IPOIB-FACTS §5.3, as FlexBoot and the dnsmasq example write it):
    // type 255, IAID 0, DUID-EN, enterprise 0x2c9, identifier 00 ‖ port GUID; 20 bytes.
    t.match(cid, /^ff:00:00:00:00:00:02:00:00:02:c9:00:([0-9a-f]{2}:){7}[0-9a-f]{2}$/, `${n}: DUID-EN client identifier`);
    t.equal(cid.slice(-23), hw[i]!.slice(-23), `${n}: identifier built from the port GUID (the GID's low 8 bytes)`);
    cids.push(cid);
  }

  // SIGTERM: stop, keep the lease (ISC dhclient releases only with -r).
  for (const c of clients.slice(0, 3)) c.child.kill('SIGTERM');
  for (const [i, c] of clients.slice(0, 3).entries()) {
    t.same(await c.exited(10_000), { code: 0, signal: null }, `${names[i]} exits 0 on SIGTERM`);
    t.notOk(existsSync(join(run, `${names[i]}.sock`)) || existsSync(join(run, `${names[i]}.dhclient.pid`)), `${names[i]}: socket and pid file removed`);
    t.equal(parseLeaseFile(readFileSync(join(dir, `${names[i]}.leases`), 'utf8')).leases.length, 1, `${names[i]}: lease kept in the lease file`);
  }
  server.child.kill('SIGTERM');
  await server.line(/"event":"stopped".*lease database closed/, 10_000, 'err');
  t.pass('ipoib-dhcpd stops cleanly on SIGTERM: commits finished, lease database closed');
  // Host.close() cancels the neighbour timers, so nothing keeps the server alive once it has stopped.
  const serverExit = await server.exited(5000).catch(() => null);
  t.same(serverExit, { code: 0, signal: null }, 'ipoib-dhcpd exits 0 on SIGTERM');

  const exp = await runToEnd('ipoib-dhcpd', ['leases', 'export', '--db', db, '--format', 'json']);
  t.equal(exp.code, 0, exp.err);
  const leases = (JSON.parse(exp.out) as { leases: LeaseJson[] }).leases;
  const boundLeases = leases.filter((l) => l.state === 'bound');
  t.equal(boundLeases.length, 3, 'the server holds three bound leases');
  for (const [i, n] of names.slice(0, 3).entries()) {
    const l = boundLeases.find((x) => x.address === addrs[i]);
    t.ok(l, `${addrs[i]} is bound in the server's database`);
    t.equal(l?.hostname, n, `${n}: option 12 host name recorded`);
    t.equal(l?.clientId, cids[i], `${n}: keyed on the client identifier it sent`);
    t.match(l?.hwaddr ?? '', HW20, `${n}: a 20-byte hardware address`);
    // The flags byte (RC bit) is not carried by a UD datagram; QPN and GID are.
    t.equal(l?.hwaddr?.slice(3), hw[i]!.slice(3), `${n}: QPN and GID as the client's interface shows them`);
  }
  t.equal(leases.find((l) => l.address === addrs[3])?.state, 'released', "c4's lease is released");

  fabric.child.kill('SIGTERM');
  t.same(await fabric.exited(10_000), { code: 0, signal: null }, 'the fabric daemon exits 0');
});

t.test('no carrier is named; a low port is refused', async (t) => {
  const fabric = start('ipoib-fabric', ['--listen', '127.0.0.1:0', '--log-level', 'warn']);
  const [, F] = await fabric.line(/^listening (\S+)$/, 20_000);
  // The default partitions hold only the default P_Key: a child in 0x8001 never gets carrier.
  const child = await runToEnd('ipoib-dhclient', ['--fabric', F!, '-p', String(P + 1), '--host', 'lonely', '--runtime-dir', run,
    '-lf', join(dir, 'lonely.leases'), '--carrier-timeout', '1', '-1', 'ib0.8001']);
  t.equal(child.code, 2, '-1 without carrier: exit 2 (no lease)');
  t.match(child.err, /^ipoib-dhclient: ib0\.8001: no carrier: P_Key 0x8001 is not in port 1's P_Key table.*\(after 1 s\)$/m, 'names the missing P_Key');
  const low = await runToEnd('ipoib-dhclient', ['--fabric', F!, '-p', '68', '--host', 'low', '--runtime-dir', run, 'ib0']);
  t.equal(low.code, 2, '-p 68 on the fabric: exit 2');
  t.match(low.err, /server port 67 \(0x43\) is at or below 0x8000.*--allow-low-port/);
  fabric.child.kill('SIGTERM');
  t.same(await fabric.exited(10_000), { code: 0, signal: null });
});
