// Issue 4's multi-process run: the fabric daemon (bin/ipoib-fabric) and two hosts (bin/ipoib-host)
// in separate OS processes, driven by the `ipoib` CLI (bin/ipoib) as a user would: `ipoib ping`
// between the hosts and `ipoib neigh show` listing the peer's full 20-byte address. Then a host
// killed with SIGKILL leaves a stale control socket that its restart replaces, and SIGTERM makes
// every process exit 0 and remove its socket. Every wait is bounded; teardown kills every child.
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBin, startBin, type BinProcess } from './helpers/bin-process.js';

// tap puts its loader hooks into NODE_OPTIONS of every child it sees spawned, even when the env
// given leaves them out; they break the tsx bin shims (ERR_REQUIRE_CYCLE_MODULE), and a user's
// shell has none of them. Hence env -u between us and node.
const env = { ...process.env };
delete env['NODE_OPTIONS'];

const dir = mkdtempSync(join(tmpdir(), 'ipoib-mp-'));
const children: ChildProcess[] = [];
t.teardown(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

type Proc = BinProcess;
const start = (bin: string, args: string[]): Proc => startBin(bin, args, children, env);

/** Runs `ipoib ARGS` to completion (bounded), as a shell would. */
const ipoib = (...args: string[]) => runBin('ipoib', ['--runtime-dir', dir, ...args], children, 30_000, env);

function startHost(name: string, fabric: string, cidr: string): Proc {
  return start('ipoib-host', ['--fabric', fabric, '--name', name, '--addr', `ib0=${cidr}`, '--up', 'ib0', '--runtime-dir', dir, '--log-level', 'warn']);
}

const HW20 = /^([0-9a-f]{2}:){19}[0-9a-f]{2}$/;

t.test('fabric daemon + two ipoib-host processes: ipoib ping and ipoib neigh show', async (t) => {
  // Short keep-alives so the fabric forgets a killed host quickly and its restart can attach again.
  const fabric = start('ipoib-fabric', ['--listen', '127.0.0.1:0', '--keepalive-ms', '100', '--keepalive-timeout-ms', '500', '--log-level', 'warn']);
  const [, addr] = await fabric.line(/^listening (\S+)$/, 20_000);
  t.match(addr, /^127\.0\.0\.1:\d+$/, `daemon listening on ${addr}`);

  let a = startHost('a', addr!, '10.0.0.1/24');
  let b = startHost('b', addr!, '10.0.0.2/24');
  const [ra, rb] = await Promise.all([a.line(/^ready a (\S+)$/, 30_000), b.line(/^ready b (\S+)$/, 30_000)]);
  t.equal(ra[1], join(dir, 'a.sock'), 'a serves its control socket');
  t.equal(rb[1], join(dir, 'b.sock'), 'b serves its control socket');
  t.notMatch(a.err.join('\n'), /no_carrier/, 'a had carrier before "ready"');

  const ping = await ipoib('--host', 'a', 'ping', '10.0.0.2', '-c', '2', '-i', '0.2');
  t.equal(ping.code, 0, 'ipoib ping exits 0');
  t.match(ping.out, /^PING 10\.0\.0\.2 \(10\.0\.0\.2\) 56\(84\) bytes of data\.\n64 bytes from 10\.0\.0\.2: icmp_seq=1 ttl=64 time=/);
  t.match(ping.out, /\n2 packets transmitted, 2 received, 0% packet loss/);

  const link = await ipoib('--host', 'b', '--json', 'link', 'show', 'ib0');
  t.equal(link.code, 0);
  const bAddr = (JSON.parse(link.out) as { address: string }[])[0]!.address;
  t.match(bAddr, HW20, "b's hardware address has 20 octets");
  const neigh = await ipoib('--host', 'a', 'neigh', 'show');
  t.equal(neigh.code, 0);
  t.equal(neigh.out, `10.0.0.2 dev ib0 lladdr ${bAddr} REACHABLE\n`, "a's ARP cache holds b's full 20-byte address");

  // A host that dies without cleaning up leaves its socket file; the CLI says so, a restart replaces it.
  b.child.kill('SIGKILL');
  await b.exited(10_000);
  t.ok(existsSync(join(dir, 'b.sock')), 'SIGKILL leaves the socket file');
  const dead = await ipoib('--host', 'b', 'link');
  t.equal(dead.code, 1, 'a dead host: exit 1');
  t.equal(dead.err, `ipoib: no host at ${join(dir, 'b.sock')}: nothing listening (stale socket)\n`);
  b = startHost('b', addr!, '10.0.0.2/24');
  await b.line(/^ready b /, 30_000);
  t.match(b.err.join('\n'), /removed the stale control socket/, 'the restarted host replaced the stale socket and logged it');
  const again = await ipoib('--host', 'b', 'ping', '10.0.0.1', '-c', '1');
  t.equal(again.code, 0, 'the restarted host pings a');

  const unknown = await ipoib('--host', 'zz', 'link');
  t.equal(unknown.code, 1);
  t.equal(unknown.err, `ipoib: no host at ${join(dir, 'zz.sock')}: no such socket\n`, 'unknown host: one line naming the socket');
  const bad = await ipoib('--host', 'a', 'link', 'set', 'ib0', 'mtu', '70000');
  t.equal(bad.code, 2, 'mtu 70000: exit 2');
  t.match(bad.err, /^ipoib: ib0: MTU 70000 is out of range \d+\.\.\d+ for datagram mode\n$/);

  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  t.same(await a.exited(10_000), { code: 0, signal: null }, 'a exits 0 on SIGTERM');
  t.same(await b.exited(10_000), { code: 0, signal: null }, 'b exits 0 on SIGTERM');
  t.notOk(existsSync(join(dir, 'a.sock')) || existsSync(join(dir, 'b.sock')), 'both sockets removed');
  fabric.child.kill('SIGTERM');
  t.same(await fabric.exited(10_000), { code: 0, signal: null }, 'the daemon exits 0');
});

t.test('ipoib-host --fabric inproc: a standalone host with a fabric of its own', async (t) => {
  const h = start('ipoib-host', ['--fabric', 'inproc', '--name', 'solo', '--addr', 'ib0=192.168.7.1/24', '--up', 'ib0', '--runtime-dir', dir, '--log-level', 'warn']);
  await h.line(/^ready solo /, 30_000);
  const mode = await ipoib('--host', 'solo', 'sys', '/sys/class/net/ib0/mode');
  t.same([mode.code, mode.out], [0, 'datagram\n']);
  const addr = await ipoib('--host', 'solo', 'addr', 'show', 'ib0');
  t.match(addr.out, /\n {4}inet 192\.168\.7\.1\/24 brd 192\.168\.7\.255 scope global ib0\n/);
  h.child.kill('SIGTERM');
  t.same(await h.exited(10_000), { code: 0, signal: null });
});
