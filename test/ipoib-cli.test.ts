// The host's control socket (link/ipoib/control-socket.ts) and the `ipoib` CLI (bin/ipoib.ts), in
// one process: two Hosts on an in-process fabric in real time, each serving its control socket in
// a temporary runtime directory, and the CLI's main() called with its output captured. Issue 4:
// every command, iproute2/ping(8)/sysctl(8) output, --json, bad input (exit 2, nothing changed),
// unknown hosts (exit 1 naming the socket), and a control socket that no request can break.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fabric } from '../link/fabric/fabric.js';
import type { Scheduler } from '../link/fabric/scheduler.js';
import { InProcessTransport } from '../link/fabric/transport.js';
import { Host } from '../link/ipoib/index.js';
import {
  ControlClient, ControlError, ControlServer, MAX_REQUEST_BYTES, controlCall, defaultRuntimeDir, ensureRuntimeDir, socketPath,
  type ControlEvent,
} from '../link/ipoib/control-socket.js';
import { main } from '../bin/ipoib.js';
import { main as hostMain } from '../bin/ipoib-host.js';

/** Wall-clock time whose timers do not hold the test process open (neighbour ageing runs for minutes). */
const realTime: Scheduler = {
  now: () => performance.now(),
  setTimer(delayMs, fn) {
    const h = setTimeout(fn, Math.max(0, delayMs));
    h.unref();
    return { cancel: () => clearTimeout(h) };
  },
};

const dir = mkdtempSync(join(tmpdir(), 'ipoib-cli-'));
const fabric = new Fabric({ scheduler: realTime });
const transport = new InProcessTransport(fabric);
const servers: ControlServer[] = [];
const events: ControlEvent[] = [];

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function startHost(name: string, cidr: string): Promise<Host> {
  const h = await Host.create(transport, { name, scheduler: realTime });
  h.addrAdd('ib0', cidr);
  h.linkSet('ib0', { up: true });
  await until(`${name} carrier`, () => h.iface('ib0').carrier);
  servers.push(await ControlServer.listen(h, { dir, onEvent: (e) => events.push(e) }));
  return h;
}

const a = await startHost('a', '10.0.0.1/24');
const b = await startHost('b', '10.0.0.2/24');

t.teardown(async () => {
  for (const s of servers) await s.close();
  a.close();
  b.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Out { code: number; out: string; err: string }

async function cli(...argv: string[]): Promise<Out> {
  let out = '';
  let err = '';
  const code = await main(['--runtime-dir', dir, ...argv], { out: (s) => { out += s; }, err: (s) => { err += s; } });
  return { code, out, err };
}

/** Exit 2 with exactly one line on stderr and nothing on stdout. */
function usageError(t: Test, r: Out, pattern: RegExp, what: string): void {
  t.equal(r.code, 2, `${what}: exit 2`);
  t.equal(r.out, '', `${what}: nothing on stdout`);
  t.equal(r.err.split('\n').filter(Boolean).length, 1, `${what}: one line on stderr`);
  t.match(r.err, pattern, `${what}: the line says what is wrong`);
}

const HW20 = /^([0-9a-f]{2}:){19}[0-9a-f]{2}$/;

t.test('link show: iproute2 text with the 20-byte address, -s counters, --json records', async (t) => {
  const r = await cli('--host', 'a', 'link', 'show');
  t.equal(r.code, 0);
  const lines = r.out.split('\n');
  t.equal(lines[0], '2: ib0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 2044 state UP');
  const hw = a.iface('ib0').hwAddressText;
  t.match(hw, HW20, 'the address is 20 octets');
  t.equal(lines[1], `    link/infiniband ${hw} brd 00:ff:ff:ff:ff:12:40:1b:ff:ff:00:00:00:00:00:00:ff:ff:ff:ff`,
    'link/infiniband line: own 20-byte address and the IPv4 broadcast address of P_Key 0xffff');
  t.match(lines[2], /^ {4}ipoib pkey 0xffff mode datagram qpn 0x[0-9a-f]{6} lid \d+ port_guid 0x[0-9a-f]{16}$/);
  t.notMatch(r.out, /RX:/, 'no counters without -s');
  const s = await cli('--host', 'a', '-s', 'link', 'show', 'ib0');
  t.match(s.out, /\n {4}RX: +bytes +packets +errors +dropped +mcast +nohandler\n +\d+ +\d+ +\d+ +\d+ +\d+ +\d+\n {4}TX: +bytes/);
  const j = await cli('--host', 'a', '--json', 'link', 'show', 'dev', 'ib0');
  const rows = JSON.parse(j.out) as { name: string; address: string; mtu: number; mode: string; carrier: boolean }[];
  t.equal(rows.length, 1);
  t.match(rows[0], { name: 'ib0', address: hw, mtu: 2044, mode: 'datagram', carrier: true });
  const abbrev = await cli('--host', 'a', 'l');
  t.equal(abbrev.out, r.out, '`l` is `link show`, as in ip');
  usageError(t, await cli('--host', 'a', 'link', 'show', 'ib7'), /^ipoib: Device "ib7" does not exist\.\n$/, 'unknown device');
  usageError(t, await cli('--host', 'a', 'link', 'frob'), /link: unknown command 'frob'/, 'unknown link command');
});

t.test('link set: mode and MTU change; bad values are refused with exit 2 and nothing changes', async (t) => {
  const i = a.iface('ib0');
  usageError(t, await cli('--host', 'a', 'link', 'set', 'ib0', 'mtu', '70000'), /ib0: MTU 70000 is out of range/, 'mtu 70000');
  t.equal(i.mtu, 2044, 'MTU unchanged');
  usageError(t, await cli('--host', 'a', 'link', 'set', 'ib0', 'mode', 'bogus'), /mode "bogus" is not datagram or connected/, 'mode bogus');
  t.equal(i.mode, 'datagram', 'mode unchanged');
  usageError(t, await cli('--host', 'a', 'link', 'set', 'ib0', 'mode', 'connected', 'mtu', '70000'), /MTU 70000 is out of range/,
    'a valid mode with a bad MTU');
  t.equal(i.mode, 'datagram', 'the valid half was not applied either');
  usageError(t, await cli('--host', 'a', 'link', 'set', 'ib0', 'mtu', 'big'), /mtu 'big' is not a number/, 'mtu big');
  usageError(t, await cli('--host', 'a', 'link', 'set', 'ib0'), /nothing to change/, 'nothing to change');
  usageError(t, await cli('--host', 'a', 'link', 'set', 'ib0', 'txqueuelen', '5'), /unexpected 'txqueuelen'/, 'unknown keyword');
  usageError(t, await cli('--host', 'a', 'link', 'set', 'ib9', 'up'), /Device "ib9" does not exist/, 'unknown device');

  let r = await cli('--host', 'a', 'link', 'set', 'ib0', 'mode', 'connected', 'mtu', '65520');
  t.same([r.code, r.out, r.err], [0, '', ''], 'mode connected mtu 65520: silent success');
  t.equal(i.mode, 'connected');
  t.equal(i.mtu, 65520);
  r = await cli('--host', 'a', 'sys', '/sys/class/net/ib0/mode');
  t.equal(r.out, 'connected\n', 'cat /sys/class/net/ib0/mode');
  r = await cli('--host', 'a', 'link', 'set', 'dev', 'ib0', 'mode', 'datagram');
  t.equal(r.code, 0);
  t.equal(i.mode, 'datagram');
  t.equal(i.mtu, 2044, 'back to datagram mode: MTU 2044');
  r = await cli('--host', 'a', 'link', 'set', 'ib0', 'down');
  t.equal(r.code, 0);
  t.match((await cli('--host', 'a', 'link', 'show', 'ib0')).out, /^2: ib0: <BROADCAST,MULTICAST> mtu 2044 state DOWN\n/);
  t.equal((await cli('--host', 'a', 'link', 'set', 'ib0', 'up')).code, 0);
  await until('carrier back', () => i.carrier);
  t.match((await cli('--host', 'a', 'link', 'show', 'ib0')).out, /<BROADCAST,MULTICAST,UP,LOWER_UP> mtu 2044 state UP/);
});

t.test('addr show/add/del', async (t) => {
  let r = await cli('--host', 'a', 'addr', 'add', '10.0.1.1/24', 'dev', 'ib0');
  t.same([r.code, r.out, r.err], [0, '', '']);
  r = await cli('--host', 'a', 'addr', 'show', 'ib0');
  t.equal(r.code, 0);
  const lines = r.out.split('\n');
  t.equal(lines[0], '2: ib0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 2044 state UP');
  t.equal(lines[1], `    link/infiniband ${a.iface('ib0').hwAddressText} brd 00:ff:ff:ff:ff:12:40:1b:ff:ff:00:00:00:00:00:00:ff:ff:ff:ff`);
  t.equal(lines[2], '    inet 10.0.0.1/24 brd 10.0.0.255 scope global ib0');
  t.equal(lines[3], '    inet 10.0.1.1/24 brd 10.0.1.255 scope global ib0');
  const j = JSON.parse((await cli('--host', 'a', '-j', 'a', 'show')).out) as unknown;
  t.same(j, [
    { dev: 'ib0', address: '10.0.0.1', prefixlen: 24, broadcast: '10.0.0.255' },
    { dev: 'ib0', address: '10.0.1.1', prefixlen: 24, broadcast: '10.0.1.255' },
  ], '--json: the host\'s address records');
  r = await cli('--host', 'a', 'addr', 'add', '10.0.1.1/24', 'dev', 'ib0');
  t.equal(r.code, 1, 'an address already there: runtime failure');
  t.match(r.err, /^ipoib: 10\.0\.1\.1\/24 is already on ib0\n$/);
  usageError(t, await cli('--host', 'a', 'addr', 'add', '10.0.1.300/24', 'dev', 'ib0'), /"10\.0\.1\.300" is not an IPv4 address/, 'bad address');
  usageError(t, await cli('--host', 'a', 'addr', 'add', '10.0.2.1/24'), /which device/, 'no dev');
  usageError(t, await cli('--host', 'a', 'addr', 'add', '10.0.2.1/24', 'label', 'x'), /unexpected 'label'/, 'unknown keyword');
  r = await cli('--host', 'a', 'addr', 'del', '10.0.1.1/24', 'dev', 'ib0');
  t.equal(r.code, 0);
  t.same(a.addrShow('ib0').map((x) => x.address), ['10.0.0.1'], 'deleted');
  r = await cli('--host', 'a', 'addr', 'del', '10.0.1.1/24', 'dev', 'ib0');
  t.equal(r.code, 1);
  t.match(r.err, /10\.0\.1\.1\/24 is not on ib0/);
});

t.test('route show/add/del', async (t) => {
  let r = await cli('--host', 'a', 'route', 'add', '192.168.5.0/24', 'via', '10.0.0.2');
  t.same([r.code, r.err], [0, '']);
  r = await cli('--host', 'a', 'route', 'add', 'default', 'via', '10.0.0.2', 'metric', '100');
  t.equal(r.code, 0);
  r = await cli('--host', 'a', 'route');
  t.equal(r.out, [
    '10.0.0.0/24 dev ib0 proto kernel scope link src 10.0.0.1',
    '192.168.5.0/24 via 10.0.0.2 dev ib0',
    'default via 10.0.0.2 dev ib0 metric 100',
    '',
  ].join('\n'), 'ip route show, longest prefix first');
  const j = JSON.parse((await cli('--host', 'a', '--json', 'route', 'show')).out) as { routes: unknown[]; cache: unknown[] };
  t.same(j.routes[1], { dst: '192.168.5.0/24', gateway: '10.0.0.2', dev: 'ib0', protocol: 'static', scope: 'global' }, 'iproute2 JSON keys');
  t.same(j.cache, []);
  r = await cli('--host', 'a', 'route', 'add', '172.16.0.0/16', 'via', '10.9.9.9');
  t.equal(r.code, 1);
  t.match(r.err, /gateway 10\.9\.9\.9 is not on a connected subnet/);
  usageError(t, await cli('--host', 'a', 'route', 'add', '172.16.0.0/16'), /needs a gateway \(via\) or a device \(dev\)/, 'route without via/dev');
  usageError(t, await cli('--host', 'a', 'route', 'add', '172.16.0.0/16', 'dev', 'ib0', 'metric', 'x'), /metric: 'x' is not an integer/, 'bad metric');
  t.equal((await cli('--host', 'a', 'route', 'del', '192.168.5.0/24')).code, 0);
  t.equal((await cli('--host', 'a', 'route', 'del', 'default')).code, 0);
  r = await cli('--host', 'a', 'route', 'del', 'default');
  t.equal(r.code, 1);
  t.match(r.err, /no route default/);
  t.equal(a.routeShow().length, 1, 'only the subnet route is left');
});

t.test('ping: ping(8) output and exit status; neigh show lists the full 20-byte address; neigh flush', async (t) => {
  let r = await cli('--host', 'a', 'ping', '10.0.0.2', '-c', '2', '-i', '0.05');
  t.equal(r.code, 0, 'replies: exit 0');
  const lines = r.out.split('\n');
  t.equal(lines[0], 'PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.');
  t.match(lines[1], /^64 bytes from 10\.0\.0\.2: icmp_seq=1 ttl=64 time=\d+\.\d{3} ms$/);
  t.match(lines[2], /^64 bytes from 10\.0\.0\.2: icmp_seq=2 ttl=64 time=\d+\.\d{3} ms$/);
  t.equal(lines[3], '');
  t.equal(lines[4], '--- 10.0.0.2 ping statistics ---');
  t.match(lines[5], /^2 packets transmitted, 2 received, 0% packet loss, time \d+ms$/);
  t.match(lines[6], /^rtt min\/avg\/max\/mdev = \d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3} ms$/);

  r = await cli('--host', 'a', 'neigh', 'show');
  const hwB = b.iface('ib0').hwAddressText;
  t.match(hwB, HW20);
  t.equal(r.out, `10.0.0.2 dev ib0 lladdr ${hwB} REACHABLE\n`, 'ip neigh show: b with its full 20-byte address');
  const nj = JSON.parse((await cli('--host', 'b', '--json', 'neigh', 'show', 'ib0')).out) as { ip: string; lladdr: string }[];
  t.same(nj.map((n) => [n.ip, n.lladdr]), [['10.0.0.1', a.iface('ib0').hwAddressText]], 'b learnt a from its ARP request');

  const pj = JSON.parse((await cli('--host', 'b', '--json', 'ping', '10.0.0.1', '-s', '100')).out) as { transmitted: number; received: number; replies: { bytes: number }[] };
  t.match(pj, { transmitted: 1, received: 1 });
  t.equal(pj.replies[0]?.bytes, 108, '--json: the host\'s PingResult (100 data bytes + 8)');

  r = await cli('--host', 'a', 'ping', '10.0.0.2', '-s', '3000');
  t.equal(r.code, 1, 'larger than the datagram MTU: no reply, exit 1');
  t.match(r.out, /\nping: local error: message too long, mtu=2044\n/);
  t.match(r.out, /0 packets transmitted, 0 received, \+1 errors, /);

  r = await cli('--host', 'a', 'ping', '10.0.0.77', '-W', '0.2');
  t.equal(r.code, 1, 'nobody answers: exit 1');
  t.match(r.out, /1 packets transmitted, 0 received, 100% packet loss/);
  t.notMatch(r.out, /rtt/, 'no rtt line without replies');

  usageError(t, await cli('--host', 'a', 'ping', '10.0.0.256'), /"10\.0\.0\.256" is not an IPv4 address/, 'bad address');
  usageError(t, await cli('--host', 'a', 'ping', '-c', '0', '10.0.0.2'), /-c: '0' is not an integer in 1\.\.10000/, 'ping -c 0');
  usageError(t, await cli('--host', 'a', 'ping', '-i', 'soon', '10.0.0.2'), /-i: 'soon' is not a number of seconds/, 'ping -i soon');
  usageError(t, await cli('--host', 'a', 'ping', '-I', 'ib5', '10.0.0.2'), /Device "ib5" does not exist/, 'ping -I ib5');

  r = await cli('--host', 'a', 'neigh', 'flush', 'dev', 'ib0');
  t.same([r.code, r.out], [0, ''], 'flush is silent');
  t.notMatch((await cli('--host', 'a', 'neigh', 'show')).out, /10\.0\.0\.2/, 'b is gone from the cache');
  t.same(JSON.parse((await cli('--host', 'b', '-j', 'neigh', 'flush', 'ib0')).out), { flushed: 1 });
  usageError(t, await cli('--host', 'a', 'neigh', 'flush'), /which device/, 'neigh flush without a device');
});

t.test('sysctl and sys', async (t) => {
  let r = await cli('--host', 'a', 'sysctl', 'net.ipv4.conf.ib0.arp_ignore');
  t.equal(r.out, 'net.ipv4.conf.ib0.arp_ignore = 0\n');
  r = await cli('--host', 'a', 'sysctl', '-w', 'net.ipv4.conf.ib0.arp_ignore=1');
  t.same([r.code, r.out], [0, 'net.ipv4.conf.ib0.arp_ignore = 1\n']);
  t.equal(a.sysctlGet('net.ipv4.conf.ib0.arp_ignore'), 1, 'the host changed');
  r = await cli('--host', 'a', 'sysctl', '-n', 'net.ipv4.conf.ib0.arp_ignore', 'net.ipv4.conf.all.arp_filter');
  t.equal(r.out, '1\n0\n', '-n: values only');
  r = await cli('--host', 'a', 'sysctl', 'net.ipv4.conf.all.arp_filter=1');
  t.equal(a.sysctlGet('net.ipv4.conf.all.arp_filter'), 1, 'KEY=VALUE without -w writes, as procps sysctl');
  t.same(JSON.parse((await cli('--host', 'a', '--json', 'sysctl', 'net.ipv4.conf.ib0.arp_ignore')).out), { 'net.ipv4.conf.ib0.arp_ignore': 1 });
  usageError(t, await cli('--host', 'a', 'sysctl', '-w', 'net.ipv4.conf.ib0.arp_ignore=7'), /arp_ignore: 7 is not one of 0, 1, 2/, 'out of range');
  t.equal(a.sysctlGet('net.ipv4.conf.ib0.arp_ignore'), 1, 'unchanged after the refused write');
  usageError(t, await cli('--host', 'a', 'sysctl', '-w', 'net.ipv4.conf.ib0.arp_ignore'), /must be of the form name=value/, '-w without a value');
  usageError(t, await cli('--host', 'a', 'sysctl', 'net.ipv4.conf.ib0.arp_ignore=yes'), /'yes' is not an integer/, 'not a number');
  usageError(t, await cli('--host', 'a', 'sysctl', 'net.ipv4.conf.ib9.arp_ignore'), /unknown key/, 'unknown key');

  r = await cli('--host', 'a', 'sys', '/sys/class/net/ib0/mode');
  t.equal(r.out, a.readSysfs('/sys/class/net/ib0/mode'));
  t.equal(r.out, 'datagram\n', 'like cat: the value and a newline');
  t.equal((await cli('--host', 'a', 'sys', '/sys/class/net/ib0/carrier')).out, '1\n');
  t.same(JSON.parse((await cli('--host', 'a', '--json', 'sys', '/sys/class/net/ib0/pkey')).out), { path: '/sys/class/net/ib0/pkey', value: '0xffff' });
  r = await cli('--host', 'a', 'sys', '/sys/class/net/ib0/create_child', '0x8001');
  t.equal(r.code, 0, 'echo 0x8001 > create_child');
  t.match((await cli('--host', 'a', 'link', 'show', 'ib0.8001')).out, /^\d+: ib0\.8001@ib0: <BROADCAST,MULTICAST> mtu 2044 state DOWN\n.*\n {4}ipoib pkey 0x8001 mode datagram/);
  usageError(t, await cli('--host', 'a', 'sys', '/etc/passwd'), /not a \/sys\/class\/net\/DEV\/ATTR path/, 'not sysfs');
  usageError(t, await cli('--host', 'a', 'sys', '/sys/class/net/ib0/mode', 'fast'), /mode "fast" is not datagram or connected/, 'write a bad mode');
});

t.test('choosing the host', async (t) => {
  usageError(t, await cli('link', 'show'), new RegExp(`2 hosts in ${dir} \\(a, b\\): choose one with --host`), 'two hosts, none named');
  const r = await cli('--host', 'zz', 'link', 'show');
  t.equal(r.code, 1, 'unknown host: exit 1');
  t.equal(r.err, `ipoib: no host at ${join(dir, 'zz.sock')}: no such socket\n`, 'one line naming the socket path');
  usageError(t, await cli('--host', '../etc', 'link'), /host name "\.\.\/etc" must be/, 'a host name that is not a file name');
  const h = await cli('hosts');
  t.equal(h.out, `a ${join(dir, 'a.sock')}\nb ${join(dir, 'b.sock')}\n`);
  const viaSocket = await main(['--socket', join(dir, 'b.sock'), 'sys', '/sys/class/net/ib0/mode'], { out: () => undefined, err: () => undefined });
  t.equal(viaSocket, 0, '--socket PATH');
  const solo = mkdtempSync(join(tmpdir(), 'ipoib-solo-'));
  const s = await ControlServer.listen(b, { dir: solo });
  try {
    let out = '';
    const code = await main(['--runtime-dir', solo, 'addr'], { out: (x) => { out += x; }, err: () => undefined });
    t.equal(code, 0);
    t.match(out, /inet 10\.0\.0\.2\/24/, 'the only host in the directory is chosen');
  } finally {
    await s.close();
    rmSync(solo, { recursive: true, force: true });
  }
  const empty = mkdtempSync(join(tmpdir(), 'ipoib-empty-'));
  const e = await main(['--runtime-dir', empty, 'link'], { out: () => undefined, err: () => undefined });
  t.equal(e, 1, 'no host at all: exit 1');
  rmSync(empty, { recursive: true, force: true });
  usageError(t, await cli('frobnicate'), /unknown command 'frobnicate'/, 'unknown object');
  const help = await cli('--help');
  t.equal(help.code, 0);
  t.match(help.out, /\n +link\|l \[words\.\.\.\] +show or change interfaces/, '--help lists the objects');
});

/** A raw connection to a control socket: write lines, read answers. */
function raw(path: string): { sock: Socket; lines: string[]; closed: Promise<void> } {
  const sock = createConnection(path);
  const lines: string[] = [];
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
  });
  sock.on('error', () => undefined);
  const closed = new Promise<void>((r) => sock.on('close', () => r()));
  return { sock, lines, closed };
}

t.test('control socket: bad requests get error answers and never stop the host', async (t) => {
  const path = join(dir, 'a.sock');
  t.equal(statSync(path).mode & 0o777, 0o600, 'socket is 0600');
  t.equal(statSync(dir).mode & 0o777, 0o700, 'runtime directory is 0700');
  const c = raw(path);
  c.sock.write('not json\n[1,2]\n{"id":1,"cmd":"nope"}\n{"id":2,"cmd":"link.set","args":{"dev":5}}\n');
  c.sock.write('{"id":3,"cmd":"link.set","args":["ib0"]}\n{"id":4,"cmd":"link.set","args":{"dev":"ib0","mtu":"big"}}\n\n');
  c.sock.write('{"id":5,"cmd":"ping","args":{"address":"10.0.0.2","count":1e9}}\n{"id":"x","cmd":"sys.read","args":{"path":"/sys/class/net/ib0/mtu"}}\n');
  await until('8 answers', () => c.lines.length >= 8);
  const answers = c.lines.map((l) => JSON.parse(l) as { id?: unknown; ok: boolean; error?: { code: string; message: string }; result?: unknown });
  t.same(answers.map((x) => [x.id, x.ok, x.error?.code]), [
    [undefined, false, 'EBADMSG'], [undefined, false, 'EBADMSG'], [1, false, 'ENOSYS'], [2, false, 'EINVAL'],
    [3, false, 'EINVAL'], [4, false, 'EINVAL'], [5, false, 'EINVAL'], ['x', true, undefined],
  ], 'each bad line has its answer, in order; the empty line is ignored');
  t.match(answers[3]?.error?.message, /link\.set: argument "dev" must be a non-empty string/);
  t.equal(answers[7]?.result, '2044\n', 'the connection still serves good requests');

  // Answers carry ids: a quick request overtakes a ping still waiting for its timeout.
  c.sock.write('{"id":10,"cmd":"ping","args":{"address":"10.0.0.78","timeoutMs":300}}\n{"id":11,"cmd":"host.info"}\n');
  await until('both answers', () => c.lines.length >= 10);
  const late = c.lines.slice(8).map((l) => JSON.parse(l) as { id: number; result: { name?: string; received?: number } });
  t.same(late.map((x) => x.id), [11, 10], 'host.info answered before the ping');
  t.equal(late[0]?.result.name, 'a');
  t.equal(late[1]?.result.received, 0);

  c.sock.write('x'.repeat(MAX_REQUEST_BYTES + 10));
  await c.closed;
  const last = JSON.parse(c.lines[c.lines.length - 1]!) as { error: { code: string } };
  t.equal(last.error.code, 'E2BIG', 'an endless line: E2BIG, then the connection is closed');
  t.ok(events.some((e) => e.type === 'bad_request' && e.code === 'E2BIG'), 'and reported to the host\'s log');

  const half = raw(path);
  half.sock.write('{"id":1,"cmd":"ping","args":{"address":"10.0.0.2"}}\n');
  half.sock.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const info = await controlCall(path, 'host.info', {});
  t.equal(info.name, 'a', 'a client that leaves before its answer does not hurt the host');
  t.same(info.interfaces, ['ib0', 'ib0.8001']);
  await until('connections closed', () => servers[0]!.connections === 0, 2000);
  t.equal(servers[0]!.connections, 0, 'no connection left open');
});

t.test('control socket: stale files are replaced, live ones and other files are not', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'ipoib-stale-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  const path = socketPath('b', d);
  // A socket file whose owner died without removing it (bound by an independent program, never listened on).
  const py = spawnSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path]);
  t.equal(py.status, 0, 'python3 left a socket file behind');
  t.ok(statSync(path).isSocket());
  const ev: ControlEvent[] = [];
  const s = await ControlServer.listen(b, { dir: d, onEvent: (e) => ev.push(e) });
  t.same(ev, [{ type: 'stale_socket_removed', path }], 'the stale socket is replaced and reported');
  t.equal((await controlCall(path, 'sys.read', { path: '/sys/class/net/ib0/mode' })), 'datagram\n', 'and served');
  await t.rejects(ControlServer.listen(b, { dir: d }), { code: 'EADDRINUSE', message: `${path}: another host is serving this socket` },
    'a live socket is never taken over');
  await s.close();
  t.notOk(existsSync(path), 'close removes the socket file');
  await t.rejects(ControlClient.connect(path), { code: 'ENOHOST', message: `no host at ${path}: no such socket` });

  writeFileSync(path, 'precious');
  await t.rejects(ControlServer.listen(b, { dir: d }), { code: 'EEXIST' }, 'a regular file is not a socket to replace');
  t.equal(readFileSync(path, 'utf8'), 'precious', 'and it is left alone');

  const open = join(d, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  t.throws(() => ensureRuntimeDir(open), /writable by others \(mode 777\)/, 'a directory others can write is refused');
  t.throws(() => socketPath('x', '/' + 'd'.repeat(120)), /longer than 107 bytes/);
  t.throws(() => socketPath('.hidden', d), ControlError);
});

t.test('runtime directory defaults', async (t) => {
  t.equal(defaultRuntimeDir({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000), '/run/user/1000/ipoib');
  t.equal(defaultRuntimeDir({}, 0), '/run/ipoib', 'root');
  t.equal(defaultRuntimeDir({}, 1000), '/tmp/ipoib-1000', 'others');
  t.equal(defaultRuntimeDir({ IPOIB_RUNTIME_DIR: '/x', XDG_RUNTIME_DIR: '/run/user/1' }, 1), '/x', '$IPOIB_RUNTIME_DIR wins');
});

t.test('ipoib-host: bad usage exits 2 before serving anything', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'ipoib-hostargs-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  const base = ['--fabric', 'inproc', '--runtime-dir', d, '--log-level', 'silent'];
  const stderr = process.stderr.write;
  let err = '';
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  let codes: number[];
  try {
    codes = [
      await hostMain([...base]),
      await hostMain([...base, '--name', 'bad/name']),
      await hostMain([...base, '--name', 'h', '--mode', 'bogus']),
      await hostMain([...base, '--name', 'h', '--addr', 'ib0:10.0.0.1']),
      await hostMain([...base, '--name', 'h', '--ports', '0']),
      await hostMain(['--name', 'h', '--fabric', '127.0.0.1:99999', '--runtime-dir', d]),
      await hostMain([...base, '--name', 'h', '--addr', 'ib0=10.0.0.300/24']),
      await hostMain([...base, '--name', 'h', '--up', 'ib3']),
    ];
  } finally {
    process.stderr.write = stderr;
  }
  t.same(codes, [2, 2, 2, 2, 2, 2, 2, 2]);
  const lines = err.split('\n').filter(Boolean);
  t.equal(lines.length, 8, 'one line each');
  t.match(lines[0], /required option '--name <name>' not specified/);
  t.match(lines[1], /--name: host name "bad\/name" must be/);
  t.match(lines[2], /--mode: 'bogus' is not datagram or connected/);
  t.match(lines[3], /--addr: 'ib0:10\.0\.0\.1' is not DEV=A\.B\.C\.D\/LEN/);
  t.match(lines[5], /--fabric: '127\.0\.0\.1:99999': port 99999 is not 1\.\.65535/);
  t.match(lines[6], /--addr ib0=10\.0\.0\.300\/24: "10\.0\.0\.300" is not an IPv4 address/);
  t.match(lines[7], /--up ib3: Device "ib3" does not exist/);
  t.notOk(existsSync(join(d, 'h.sock')), 'no socket was left');
});
