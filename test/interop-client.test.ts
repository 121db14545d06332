// ipoib-dhclient over the kernel transport against standard servers, in network namespaces joined
// by a veth pair (test/helpers/netns.ts): Debian's dnsmasq with --dhcp-alternate-port=P,P+1 and
// ISC dhcpd -p P. The client runs as the real program (`-1 -d --configure`), the lease it writes
// (dhclient.leases(5)) must match the server's own lease file (dnsmasq's leases file: "expiry
// hwaddr ip hostname client-id"; dhcpd.leases(5): lease blocks with `uid` and `ends`), the address
// must be on the interface, and `-r` must release it at the server. Root and `ip netns` needed;
// otherwise the tests skip with the reason.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { currentLease, parseLeaseFile, type ClientLease } from '../client/index.js';
import { ipv4ToString } from '../protocol/index.js';
import { netnsPair, netnsSkipReason, type NetnsPair } from './helpers/netns.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'bin', 'ipoib-dhclient');
/** Above 0x8000, as the OFED release notes ask for IPoIB DHCP ports. */
const P = 33067;
const CID = 'ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:52';

function have(cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; }
}

const NETNS_SKIP = netnsSkipReason();
/** The skip reason of a test needing `cmd` from Debian package `pkg` (false: run it). */
function gate(cmd: string, pkg: string): string | false {
  if (NETNS_SKIP !== null) return `network namespace test skipped: ${NETNS_SKIP}`;
  return have(cmd) ? false : `${cmd} not installed (Debian package ${pkg})`;
}

/**
 * tap's loader hooks (NODE_OPTIONS) break the tsx bin shim (ERR_REQUIRE_CYCLE_MODULE), and tap
 * re-adds NODE_OPTIONS to every child it sees spawned: so `env -u NODE_OPTIONS` runs the shim.
 */
const SHIM = ['env', '-u', 'NODE_OPTIONS', BIN] as const;

async function waitFor<T>(what: string, fn: () => T | null | undefined | false, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(child.exitCode); return; }
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
}

function collect(child: ChildProcess): { text: string } {
  const out = { text: '' };
  child.stdout?.on('data', (b: Buffer) => { out.text += b.toString('utf8'); });
  child.stderr?.on('data', (b: Buffer) => { out.text += b.toString('utf8'); });
  return out;
}

function readText(file: string): string {
  try { return readFileSync(file, 'utf8'); } catch { return ''; }
}

interface ClientRun { lease: ClientLease; code: number | null; log: string }

/** `ipoib-dhclient --link kernel -p P+1 -1 -d --configure`: waits for the lease file, then SIGTERM (stop, keep the lease). */
async function obtainLease(pair: NetnsPair, dir: string): Promise<ClientRun> {
  const lf = join(dir, 'client.leases');
  const child = pair.spawn(pair.clientNs, SHIM[0], [...SHIM.slice(1),
    '--link', 'kernel', '-p', String(P + 1), '-1', '-d', '-v', '--client-id', `hex:${CID}`, '--configure', '--timeout', '20',
    '-lf', lf, '-pf', join(dir, 'client.pid'), pair.clientIf,
  ]);
  const out = collect(child);
  let lease: ClientLease;
  try {
    lease = await waitFor('the client lease file', () => {
      if (child.exitCode !== null) throw new Error(`client exited ${child.exitCode}:\n${out.text}`);
      return currentLease(parseLeaseFile(readText(lf)), pair.clientIf);
    }, 30_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  child.kill('SIGTERM');
  const code = await exited(child, 10_000);
  return { lease, code, log: out.text };
}

async function release(pair: NetnsPair, dir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return pair.exec(pair.clientNs, SHIM[0], [...SHIM.slice(1),
    '--link', 'kernel', '-p', String(P + 1), '-r', '--client-id', `hex:${CID}`, '--configure',
    '-lf', join(dir, 'client.leases'), '-pf', join(dir, 'client.pid'), pair.clientIf,
  ], { timeoutMs: 20_000 });
}

async function addressesOf(pair: NetnsPair): Promise<string> {
  return (await pair.exec(pair.clientNs, 'ip', ['-4', '-o', 'addr', 'show', 'dev', pair.clientIf], { timeoutMs: 5000 })).stdout;
}

t.test('dnsmasq --dhcp-alternate-port=P,P+1', { skip: gate('dnsmasq', 'dnsmasq-base') }, async (t) => {
  const pair = netnsPair(t, { tag: 'dnm', serverAddress: '10.99.1.1/24' });
  const dir = mkdtempSync(join(tmpdir(), 'interop-dnsmasq-'));
  const leases = join(dir, 'dnsmasq.leases');
  const log = join(dir, 'dnsmasq.log');
  const srv = pair.spawn(pair.serverNs, 'dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', `--interface=${pair.serverIf}`, '--bind-interfaces',
    '--dhcp-range=10.99.1.50,10.99.1.99,255.255.255.0,1h', `--dhcp-alternate-port=${P},${P + 1}`, '--dhcp-authoritative',
    `--dhcp-leasefile=${leases}`, `--log-facility=${log}`, '--log-dhcp',
  ]);
  const srvOut = collect(srv);
  t.teardown(() => { srv.kill('SIGTERM'); });
  await waitFor('dnsmasq to listen', () => /sockets bound|DHCP, IP range/.test(readText(log) + srvOut.text), 10_000);

  const run = await obtainLease(pair, dir);
  t.equal(run.code, 0, 'client stopped cleanly on SIGTERM');
  const address = ipv4ToString(run.lease.address);
  t.match(address, /^10\.99\.1\.(5\d|[6-9]\d)$/, `lease ${address} inside the dhcp-range`);
  t.equal(ipv4ToString(run.lease.serverIdentifier), '10.99.1.1');
  t.equal(run.lease.prefixLength, 24);

  // dnsmasq's leases file: "<expiry epoch> <hwaddr> <ip> <hostname> <client-id>".
  const line = await waitFor('dnsmasq lease line', () => readText(leases).split('\n').find((l) => l.split(' ')[2] === address), 5000);
  const [expiry, , ipText, , clientId] = line.split(' ');
  t.equal(ipText, address, 'same address in dnsmasq\'s leases file');
  t.equal(clientId, CID, 'dnsmasq keyed the lease on our option 61');
  t.ok(Math.abs(Number(expiry) - run.lease.expiresAt / 1000) <= 2, `expiry ${expiry} matches ours (${run.lease.expiresAt / 1000}) within 2 s`);
  t.match(await addressesOf(pair), `inet ${address}/24`, '--configure put the address on the interface');
  t.match(readText(log), new RegExp(`DHCPACK\\(${pair.serverIf}\\) ${address.replace(/\./g, '\\.')} ${CID}`), 'dnsmasq logged the ACK');

  const rel = await release(pair, dir);
  t.equal(rel.code, 0, `-r exits 0 ${rel.stderr.slice(-300)}`);
  await waitFor('dnsmasq to drop the lease', () => !readText(leases).includes(` ${address} `), 5000);
  t.pass('dnsmasq removed the lease after DHCPRELEASE');
  t.match(readText(log), /DHCPRELEASE/, 'dnsmasq logged the RELEASE');
  t.notMatch(await addressesOf(pair), address, 'address removed from the interface');
  t.equal(currentLease(parseLeaseFile(readText(join(dir, 'client.leases'))), pair.clientIf), null, 'client lease file forgets it');
});

/** ISC dhcpd.leases(5) strings: printable characters as-is, others as \ooo octal. */
function iscString(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\') {
      const oct = /^[0-7]{3}/.exec(s.slice(i + 1));
      if (oct !== null) { bytes.push(parseInt(oct[0], 8)); i += 3; continue; }
      bytes.push(s.charCodeAt(++i));
      continue;
    }
    bytes.push(s.charCodeAt(i));
  }
  return Buffer.from(bytes);
}

interface DhcpdLease { address: string; ends: number; state: string; uid: string | null }

function dhcpdLeases(text: string): DhcpdLease[] {
  const out: DhcpdLease[] = [];
  for (const m of text.matchAll(/lease (\d+\.\d+\.\d+\.\d+) \{([^}]*)\}/g)) {
    const body = m[2]!;
    const ends = /ends \d (\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d);/.exec(body);
    const uid = /uid "((?:[^"\\]|\\.)*)";/.exec(body);
    out.push({
      address: m[1]!,
      ends: ends === null ? NaN : Date.UTC(+ends[1]!, +ends[2]! - 1, +ends[3]!, +ends[4]!, +ends[5]!, +ends[6]!),
      state: /(?:^|\n)\s*binding state (\w+);/.exec(body)?.[1] ?? '',
      uid: uid === null ? null : [...iscString(uid[1]!)].map((b) => b.toString(16).padStart(2, '0')).join(':'),
    });
  }
  return out;
}

// ISC's dhcpd by its Debian path: under `npm test`, node_modules/.bin is first on PATH and the `dhcp`
// npm package (a test peer) installs a `dhcpd` of its own there.
const ISC_DHCPD = '/usr/sbin/dhcpd';

t.test('ISC dhcpd -p P', { skip: gate(ISC_DHCPD, 'isc-dhcp-server') }, async (t) => {
  const pair = netnsPair(t, { tag: 'isc', serverAddress: '10.99.2.1/24' });
  const dir = mkdtempSync(join(tmpdir(), 'interop-dhcpd-'));
  const conf = join(dir, 'dhcpd.conf');
  const leases = join(dir, 'dhcpd.leases');
  writeFileSync(conf, [
    'default-lease-time 3600;', 'max-lease-time 7200;', 'authoritative;',
    'subnet 10.99.2.0 netmask 255.255.255.0 {', '  range 10.99.2.100 10.99.2.149;', '  option routers 10.99.2.1;', '}', '',
  ].join('\n'));
  writeFileSync(leases, '');
  const srv = pair.spawn(pair.serverNs, ISC_DHCPD, ['-4', '-f', '-d', '-p', String(P), '-cf', conf, '-lf', leases, '-pf', join(dir, 'dhcpd.pid'), pair.serverIf]);
  const srvOut = collect(srv);
  t.teardown(() => { srv.kill('SIGTERM'); });
  await waitFor('dhcpd to start', () => {
    if (srv.exitCode !== null) throw new Error(`dhcpd exited ${srv.exitCode}:\n${srvOut.text}`);
    return /Server starting service/.test(srvOut.text);
  }, 10_000);

  const run = await obtainLease(pair, dir);
  t.equal(run.code, 0, 'client stopped cleanly on SIGTERM');
  const address = ipv4ToString(run.lease.address);
  t.match(address, /^10\.99\.2\.(1[0-4]\d)$/, `lease ${address} inside the range`);
  t.same(run.lease.routers.map(ipv4ToString), ['10.99.2.1'], 'option routers');

  const mine = await waitFor('dhcpd lease block', () => dhcpdLeases(readText(leases)).filter((l) => l.address === address && l.state === 'active').at(-1), 5000);
  t.equal(mine.uid, CID, 'dhcpd recorded our option 61 as uid');
  t.ok(Math.abs(mine.ends - run.lease.expiresAt) <= 2000, `ends ${new Date(mine.ends).toISOString()} matches our expiry ${new Date(run.lease.expiresAt).toISOString()}`);
  t.match(srvOut.text, new RegExp(`DHCPACK on ${address.replace(/\./g, '\\.')}`), 'dhcpd logged the ACK');
  t.match(await addressesOf(pair), `inet ${address}/24`, '--configure put the address on the interface');

  const rel = await release(pair, dir);
  t.equal(rel.code, 0, `-r exits 0 ${rel.stderr.slice(-300)}`);
  await waitFor('dhcpd to free the lease', () => /DHCPRELEASE of/.test(srvOut.text), 5000);
  t.match(srvOut.text, new RegExp(`DHCPRELEASE of ${address.replace(/\./g, '\\.')} from .* \\(found\\)`), 'dhcpd found and released the lease');
  const after = await waitFor('free lease block', () => dhcpdLeases(readText(leases)).filter((l) => l.address === address).at(-1)?.state === 'free', 5000);
  t.ok(after, 'dhcpd.leases: binding state free');
  t.notOk(existsSync(join(dir, 'client.pid')), 'pid file removed by the stopped client');
});

t.test('without a route for 255.255.255.255 the client says which route to add', { skip: gate('ip', 'iproute2') }, async (t) => {
  const pair = netnsPair(t, { tag: 'nrt', serverAddress: '10.99.3.1/24' });
  const dir = mkdtempSync(join(tmpdir(), 'interop-noroute-'));
  const r = await pair.exec(pair.clientNs, SHIM[0], [...SHIM.slice(1),
    '--link', 'kernel', '-p', String(P + 1), '-1', '-d', '--client-id', `hex:${CID}`, '--timeout', '1',
    '-lf', join(dir, 'l'), '-pf', join(dir, 'p'), pair.clientIf,
  ], { timeoutMs: 20_000 });
  t.equal(r.code, 2, '-1: no lease -> exit 2');
  t.match(r.stderr, `ip route add 255.255.255.255 dev ${pair.clientIf}`, 'ENETUNREACH explained');
});
