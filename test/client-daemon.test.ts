// The client daemon (client/daemon.ts) with a fake DatagramEndpoint and virtual time: it feeds
// replies to the engine, sends to server port = client port − 1, runs the RFC 5227 probe through
// ArpOps (DECLINE on conflict), applies leases through the configurator, runs the -sf hook with
// the dhclient-script environment (dhclient-script(8): only its variables and PATH), writes the
// dhclient.leases(5) file atomically, and implements -1 (exit 2), -r (release) and -x (keep).
// Also: the kernel UDP endpoint on loopback, and the ipoib-dhclient CLI's argument handling.
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BOOTREPLY, DhcpMessageType, FLAG_BROADCAST, HTYPE_INFINIBAND, OptionCode, decodeDhcpMessage, emptyDhcpMessage,
  encodeDhcpMessage, getMessageType, getRequestedAddress, getServerIdentifier, getClientIdentifier, ipv4ToString,
  optionFromText, parseIpv4, mellanoxClientId, type DhcpMessage,
} from '../protocol/index.js';
import { parseLeaseFile, currentLease, type ClientConfig, type ClientLease } from '../client/index.js';
import {
  ClientDaemon, spawnHookRunner, writeFileAtomic, type ArpOps, type Clock, type DaemonLogger, type InterfaceConfigurator,
  type LeaseChange,
} from '../client/daemon.js';
import { prettyLine } from '../client/daemon-log.js';
import type { DatagramEndpoint, DatagramMeta } from '../link/ipoib/udp-socket.js';
import { KernelUdpEndpoint, KernelUdpError } from '../link/kernel/kernel-udp.js';
import { portGuidOfInterface, readKernelInterface } from '../link/kernel/sysfs.js';
import { USAGE, kernelClientConfig, main, parseArgs } from '../bin/ipoib-dhclient.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const GUID = 0x7cfe900300292652n;
const SERVER = '10.1.0.1';
const CLIENT_PORT = 33068;
const SERVER_PORT = 33067;
const ip = (s: string): number => parseIpv4(s);

class VirtualClock implements Clock {
  t = T0;
  private timers: { at: number; fn: () => void; seq: number }[] = [];
  private seq = 0;
  now(): number { return this.t; }
  setTimer(at: number, fn: () => void): () => void {
    const timer = { at, fn, seq: this.seq++ };
    this.timers.push(timer);
    return () => { this.timers = this.timers.filter((x) => x !== timer); };
  }
  get pending(): number[] { return this.timers.map((x) => x.at); }
  /** Fires every timer up to `target` in time order, letting the daemon settle after each. */
  async advanceTo(target: number, settle: () => Promise<void>): Promise<void> {
    for (;;) {
      await settle();
      const due = this.timers.filter((x) => x.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = target;
    await settle();
  }
}

interface Sent { buf: Buffer; m: DhcpMessage; address: string; port: number; at: number }

/** A DatagramEndpoint whose sends are recorded and answered by `responder` (synchronously). */
class FakeEndpoint implements DatagramEndpoint {
  sent: Sent[] = [];
  closed = false;
  responder: ((s: Sent) => Buffer[]) | null = null;
  private handlers: ((buf: Buffer, meta: DatagramMeta) => void)[] = [];
  constructor(private readonly clock: VirtualClock) {}
  send(buf: Buffer, address: string, port: number): void {
    const s = { buf: Buffer.from(buf), m: decodeDhcpMessage(buf), address, port, at: this.clock.now() };
    this.sent.push(s);
    for (const reply of this.responder?.(s) ?? []) this.deliver(reply, SERVER, SERVER_PORT);
  }
  deliver(buf: Buffer, address: string, port: number): void {
    const meta: DatagramMeta = { address, port, interface: 'ib0', hwAddress: undefined, destination: '255.255.255.255' };
    for (const h of this.handlers) h(buf, meta);
  }
  onMessage(h: (buf: Buffer, meta: DatagramMeta) => void): void { this.handlers.push(h); }
  close(): void { this.closed = true; }
}

/** A server reduced to OFFER/ACK for one address, speaking bytes through protocol/'s codec. */
function server(offer: string, opts: { leaseTime?: number; silent?: boolean } = {}): (s: Sent) => Buffer[] {
  return (s) => {
    if (opts.silent) return [];
    const type = getMessageType(s.m);
    const replyType = type === DhcpMessageType.DHCPDISCOVER ? DhcpMessageType.DHCPOFFER
      : type === DhcpMessageType.DHCPREQUEST ? DhcpMessageType.DHCPACK : null;
    if (replyType === null) return [];
    const m = emptyDhcpMessage(BOOTREPLY);
    m.htype = s.m.htype; m.hlen = s.m.hlen; m.xid = s.m.xid; m.flags = s.m.flags; m.ciaddr = s.m.ciaddr;
    m.yiaddr = ip(offer);
    m.options.push({ code: OptionCode.MESSAGE_TYPE, data: Buffer.from([replyType]) });
    m.options.push(optionFromText('dhcp-server-identifier', SERVER));
    m.options.push(optionFromText('dhcp-lease-time', String(opts.leaseTime ?? 3600)));
    m.options.push(optionFromText('subnet-mask', '255.255.255.0'));
    m.options.push(optionFromText('routers', '10.1.0.254'));
    m.options.push(optionFromText('interface-mtu', '2044'));
    return [encodeDhcpMessage(m)];
  };
}

class FakeArp implements ArpOps {
  probes: string[] = [];
  announces: string[] = [];
  conflicts: boolean[] = [];
  async probe(iface: string, address: number): Promise<boolean> {
    this.probes.push(`${iface} ${ipv4ToString(address)}`);
    return this.conflicts.shift() ?? false;
  }
  async announce(iface: string, address: number): Promise<void> {
    this.announces.push(`${iface} ${ipv4ToString(address)}`);
  }
}

class FakeConfigurator implements InterfaceConfigurator {
  calls: string[] = [];
  async prepare(iface: string): Promise<void> { this.calls.push(`prepare ${iface}`); }
  async apply(iface: string, c: LeaseChange): Promise<void> {
    this.calls.push(`apply ${iface} ${c.reason} ${ipv4ToString(c.lease.address)}/${c.lease.prefixLength} mtu=${c.mtu.apply ? c.mtu.mtu : 'no'}`);
  }
  async deconfigure(iface: string, lease: ClientLease, reason: string): Promise<void> {
    this.calls.push(`deconfigure ${iface} ${reason} ${ipv4ToString(lease.address)}`);
  }
}

class MemoryLog implements DaemonLogger {
  lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  debug(obj: object, msg: string): void { this.lines.push({ level: 'debug', obj: obj as Record<string, unknown>, msg }); }
  info(obj: object, msg: string): void { this.lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }); }
  warn(obj: object, msg: string): void { this.lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }); }
  error(obj: object, msg: string): void { this.lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }); }
  events(): string[] { return this.lines.map((l) => String(l.obj['event'])); }
}

/** A hook script that writes its whole environment (NUL-separated: values may hold newlines) to DIR/hook-out/<n>-<reason>.env. */
function hookScript(dir: string): string {
  const out = join(dir, 'hook-out');
  mkdirSync(out);
  const script = join(dir, 'hook.sh');
  writeFileSync(script, `#!/bin/sh\nn=$(ls ${out} | wc -l)\nenv -0 > ${out}/$n-$reason.env\nexit 0\n`);
  chmodSync(script, 0o755);
  return script;
}

function hookEnvs(dir: string): { reason: string; env: Record<string, string> }[] {
  const out = join(dir, 'hook-out');
  return readdirSync(out).sort((a, b) => parseInt(a) - parseInt(b)).map((f) => ({
    reason: f.replace(/^\d+-|\.env$/g, ''),
    env: Object.fromEntries(readFileSync(join(out, f), 'utf8').split('\0').filter((l) => l !== '').map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)];
    })),
  }));
}

interface Rig {
  dir: string; clock: VirtualClock; ep: FakeEndpoint; arp: FakeArp; conf: FakeConfigurator; log: MemoryLog;
  daemon: ClientDaemon; leaseFile: string; settle: () => Promise<void>;
}

function rig(opts: { once?: boolean; config?: Partial<ClientConfig>; hook?: boolean; leaseFileText?: string } = {}): Rig {
  const dir = mkdtempSync(join(tmpdir(), 'dhclient-daemon-'));
  const clock = new VirtualClock();
  const ep = new FakeEndpoint(clock);
  const arp = new FakeArp();
  const conf = new FakeConfigurator();
  const log = new MemoryLog();
  const leaseFile = join(dir, 'dhclient.leases');
  if (opts.leaseFileText !== undefined) writeFileSync(leaseFile, opts.leaseFileText);
  let n = 0;
  const random = { float: () => 0.5, u32: () => 0x5000 + n++ };
  const daemon = new ClientDaemon({
    interfaces: [{
      config: { interface: 'ib0', portGuid: GUID, failAfterMs: 10_000, ...opts.config },
      endpoint: ep, serverPort: SERVER_PORT, arp, configurator: conf,
    }],
    clock, random, leaseFile, log, once: opts.once ?? false,
    hookScript: opts.hook === false ? null : hookScript(dir), hookRunner: spawnHookRunner,
  });
  return { dir, clock, ep, arp, conf, log, daemon, leaseFile, settle: () => daemon.idle() };
}

t.test('DISCOVER to BOUND: sends to the server port, probes, configures, runs the hook, saves the lease', async (t) => {
  const r = rig();
  r.ep.responder = server('10.1.0.10');
  await r.daemon.start();
  await r.clock.advanceTo(T0 + 2000, r.settle);

  const types = r.ep.sent.map((s) => getMessageType(s.m));
  t.same(types, [DhcpMessageType.DHCPDISCOVER, DhcpMessageType.DHCPREQUEST], 'DISCOVER then REQUEST');
  for (const s of r.ep.sent) {
    t.equal(s.address, '255.255.255.255', 'broadcast while unconfigured');
    t.equal(s.port, SERVER_PORT, 'to the server port (client port − 1)');
    t.equal(s.m.htype, HTYPE_INFINIBAND);
    t.equal(s.m.flags, FLAG_BROADCAST);
    t.same(getClientIdentifier(s.m), mellanoxClientId(GUID), 'RFC 4361 DUID-EN client identifier');
  }
  t.equal(r.ep.sent[1]!.at - r.ep.sent[0]!.at, 1000, 'REQUEST after the 1 s offer window');
  t.same(r.arp.probes, ['ib0 10.1.0.10'], 'RFC 5227 probe through ArpOps before use');
  t.same(r.arp.announces, ['ib0 10.1.0.10'], 'gratuitous ARP after binding');
  t.same(r.conf.calls, ['prepare ib0', 'apply ib0 BOUND 10.1.0.10/24 mtu=2044'], 'configurator prepared then applied');
  t.equal(r.daemon.engine('ib0').state, 'BOUND');

  const text = readFileSync(r.leaseFile, 'utf8');
  const parsed = parseLeaseFile(text);
  t.same(parsed.problems, [], 'lease file parses without problems');
  const lease = currentLease(parsed, 'ib0');
  t.equal(lease && ipv4ToString(lease.address), '10.1.0.10');
  t.equal(lease?.expiresAt, T0 + 1000 + 3600_000, 'expiry counted from the first REQUEST');
  t.match(text, /expire 3 2026\/11\/25 11:00:01;/, 'ISC print_time() format, UTC');
  t.same(readdirSync(r.dir).filter((f) => f.includes('.tmp')), [], 'no temporary file left beside it');

  const hooks = hookEnvs(r.dir);
  t.same(hooks.map((h) => h.reason), ['PREINIT', 'BOUND'], 'PREINIT at start, BOUND after the ACK');
  const bound = hooks[1]!.env;
  t.equal(bound['interface'], 'ib0');
  t.equal(bound['new_ip_address'], '10.1.0.10');
  t.equal(bound['new_subnet_mask'], '255.255.255.0');
  t.equal(bound['new_routers'], '10.1.0.254');
  t.equal(bound['new_interface_mtu'], '2044');
  t.equal(bound['new_dhcp_server_identifier'], SERVER);
  t.equal(bound['new_expiry'], String((T0 + 1000 + 3600_000) / 1000));
  t.equal(bound['PATH'], process.env['PATH'], 'PATH passed on');
  // tap injects NODE_OPTIONS and _TAPJS_* into every child it sees spawned; /bin/sh adds PWD.
  const others = Object.keys(bound).filter((k) => !/^(new_|old_|requested_|_TAPJS_)/.test(k) && k !== 'NODE_OPTIONS').sort();
  t.same(others, ['PATH', 'PWD', 'interface', 'reason'], 'nothing else from the daemon\'s environment (ISC script_go)');

  const next = r.clock.pending;
  t.same(next, [T0 + 1000 + 1800_000], 'timer armed at T1');
  await r.daemon.stop({ release: false });
  t.same(await r.daemon.exited, { code: 0, reason: 'stopped' });
});

t.test('renewal at T1 is a unicast to the server and runs the RENEW hook', async (t) => {
  const r = rig({ hook: true });
  r.ep.responder = server('10.1.0.10');
  await r.daemon.start();
  await r.clock.advanceTo(T0 + 1000 + 1800_000, r.settle);
  const renew = r.ep.sent.at(-1)!;
  t.equal(getMessageType(renew.m), DhcpMessageType.DHCPREQUEST);
  t.equal(renew.address, SERVER, 'RENEWING: unicast to the server identifier');
  t.equal(renew.m.ciaddr, ip('10.1.0.10'));
  t.equal(renew.m.flags, 0, 'no BROADCAST flag once ciaddr is set');
  t.same(hookEnvs(r.dir).map((h) => h.reason), ['PREINIT', 'BOUND', 'RENEW']);
  t.equal(r.conf.calls.at(-1), 'apply ib0 RENEW 10.1.0.10/24 mtu=2044');
  await r.daemon.stop({ release: false });
});

t.test('a conflicting ARP reply makes the daemon DECLINE and start over', async (t) => {
  const r = rig({ hook: false });
  r.arp.conflicts = [true];
  r.ep.responder = server('10.1.0.10');
  await r.daemon.start();
  await r.clock.advanceTo(T0 + 1000, r.settle);
  const decline = r.ep.sent.at(-1)!;
  t.equal(getMessageType(decline.m), DhcpMessageType.DHCPDECLINE, 'DHCPDECLINE after the conflict');
  t.equal(getRequestedAddress(decline.m), ip('10.1.0.10'));
  t.equal(getServerIdentifier(decline.m), ip(SERVER));
  t.same(r.conf.calls, ['prepare ib0'], 'nothing configured');
  t.ok(r.log.events().includes('conflict'), 'conflict logged');
  await r.clock.advanceTo(T0 + 12_000, r.settle);
  t.equal(getMessageType(r.ep.sent.at(-1)!.m), DhcpMessageType.DHCPREQUEST, 'discovered again after the 10 s wait');
  t.equal(r.daemon.engine('ib0').state, 'BOUND');
  await r.daemon.stop({ release: false });
});

t.test('-1: no lease within the timeout ends the daemon with exit code 2 and a FAIL hook', async (t) => {
  const r = rig({ once: true });
  r.ep.responder = server('10.1.0.10', { silent: true });
  await r.daemon.start();
  await r.clock.advanceTo(T0 + 9_999, r.settle);
  let settled = false;
  void r.daemon.exited.then(() => { settled = true; });
  await r.settle();
  t.notOk(settled, 'still trying before the timeout');
  await r.clock.advanceTo(T0 + 10_000, r.settle);
  const exit = await r.daemon.exited;
  t.equal(exit.code, 2, 'exit code 2');
  t.match(exit.reason, /no DHCP lease on ib0 after 10 s/);
  t.same(hookEnvs(r.dir).map((h) => h.reason), ['PREINIT', 'FAIL']);
  t.same(r.ep.sent.map((s) => s.at - T0), [0, 4000], 'DISCOVER at 0 and 4 s (4 s backoff)');
  t.same(r.clock.pending, [], 'no timer left after the exit');
  t.notOk(existsSync(r.leaseFile), 'no lease file written');
});

t.test('without -1 a failure is logged and discovery goes on', async (t) => {
  const r = rig({ once: false, hook: false });
  r.ep.responder = server('10.1.0.10', { silent: true });
  await r.daemon.start();
  await r.clock.advanceTo(T0 + 30_000, r.settle);
  t.ok(r.log.lines.some((l) => l.level === 'error' && l.obj['event'] === 'failed'), 'failure logged');
  t.same(r.ep.sent.map((s) => s.at - T0), [0, 4000, 12000, 28000], 'backoff 4, 8, 16 s continues');
  await r.daemon.stop({ release: false });
});

const SAVED = `# written by hand in ISC dhclient.leases(5) syntax
lease {
  interface "ib0";
  fixed-address 10.1.0.77;
  option subnet-mask 255.255.255.0;
  option routers 10.1.0.254;
  option dhcp-lease-time 86400;
  option dhcp-message-type 5;
  option dhcp-server-identifier 10.1.0.1;
  renew 3 2026/11/25 20:00:00;
  rebind 4 2026/11/26 05:00:00;
  expire 4 2026/11/26 08:00:00;
}
lease {
  interface "ib1";
  fixed-address 10.2.0.5;
  option dhcp-lease-time 3600;
  option dhcp-server-identifier 10.2.0.1;
  expire 4 2026/11/26 08:00:00;
}
`;

t.test('-r: releases the saved lease (unicast RELEASE, deconfigure, RELEASE hook) and removes it from the file', async (t) => {
  const r = rig({ leaseFileText: SAVED });
  const n = await r.daemon.releaseSaved();
  t.equal(n, 1, 'one lease released');
  t.equal(r.ep.sent.length, 1);
  const rel = r.ep.sent[0]!;
  t.equal(getMessageType(rel.m), DhcpMessageType.DHCPRELEASE);
  t.equal(rel.address, '10.1.0.1', 'unicast to the server identifier');
  t.equal(rel.port, SERVER_PORT);
  t.equal(rel.m.ciaddr, ip('10.1.0.77'), 'ciaddr = the released address');
  t.equal(getServerIdentifier(rel.m), ip('10.1.0.1'));
  t.same(r.conf.calls, ['deconfigure ib0 RELEASE 10.1.0.77'], 'address removed');
  const hooks = hookEnvs(r.dir);
  t.same(hooks.map((h) => h.reason), ['RELEASE']);
  t.equal(hooks[0]!.env['old_ip_address'], '10.1.0.77');
  const after = parseLeaseFile(readFileSync(r.leaseFile, 'utf8'));
  t.equal(currentLease(after, 'ib0'), null, 'ib0 forgotten');
  t.equal(ipv4ToString(currentLease(after, 'ib1')!.address), '10.2.0.5', 'the other interface\'s lease kept');
  t.same(await r.daemon.exited, { code: 0, reason: 'released' });
});

t.test('-r with nothing saved sends nothing', async (t) => {
  const r = rig();
  t.equal(await r.daemon.releaseSaved(), 0);
  t.same(r.ep.sent, []);
  t.same(r.conf.calls, []);
});

t.test('-x / SIGTERM: stops without releasing; the lease stays configured and saved, then INIT-REBOOT reuses it', async (t) => {
  const r = rig();
  r.ep.responder = server('10.1.0.10');
  await r.daemon.start();
  await r.clock.advanceTo(T0 + 2000, r.settle);
  const sentBefore = r.ep.sent.length;
  await r.daemon.stop({ release: false });
  t.equal(r.ep.sent.length, sentBefore, 'no DHCPRELEASE');
  t.notOk(r.conf.calls.some((c) => c.startsWith('deconfigure')), 'not deconfigured');
  t.same(hookEnvs(r.dir).map((h) => h.reason), ['PREINIT', 'BOUND', 'STOP']);
  const saved = currentLease(parseLeaseFile(readFileSync(r.leaseFile, 'utf8')), 'ib0');
  t.equal(saved && ipv4ToString(saved.address), '10.1.0.10', 'lease kept in the file');

  // A new daemon on the same lease file starts with INIT-REBOOT for that address.
  const clock = new VirtualClock();
  clock.t = T0 + 60_000;
  const ep = new FakeEndpoint(clock);
  ep.responder = server('10.1.0.10');
  const d2 = new ClientDaemon({
    interfaces: [{ config: { interface: 'ib0', portGuid: GUID }, endpoint: ep, serverPort: SERVER_PORT, arp: null, configurator: null }],
    clock, leaseFile: r.leaseFile,
  });
  await d2.start();
  await d2.idle();
  t.equal(getMessageType(ep.sent[0]!.m), DhcpMessageType.DHCPREQUEST, 'INIT-REBOOT: REQUEST first');
  t.equal(getRequestedAddress(ep.sent[0]!.m), ip('10.1.0.10'));
  t.equal(d2.engine('ib0').state, 'BOUND', 'REBOOT acknowledged');
  await d2.stop({ release: false });
});

t.test('stop with release: RELEASE, deconfigure, RELEASE hook, lease forgotten', async (t) => {
  const r = rig();
  r.ep.responder = server('10.1.0.10');
  await r.daemon.start();
  await r.clock.advanceTo(T0 + 2000, r.settle);
  await r.daemon.stop({ release: true });
  t.equal(getMessageType(r.ep.sent.at(-1)!.m), DhcpMessageType.DHCPRELEASE);
  t.equal(r.conf.calls.at(-1), 'deconfigure ib0 RELEASE 10.1.0.10');
  t.same(hookEnvs(r.dir).map((h) => h.reason), ['PREINIT', 'BOUND', 'RELEASE']);
  t.equal(currentLease(parseLeaseFile(readFileSync(r.leaseFile, 'utf8')), 'ib0'), null);
});

t.test('replies from a port other than the server port are ignored with a reason', async (t) => {
  const r = rig({ hook: false });
  await r.daemon.start();
  const offer = server('10.1.0.10')(r.ep.sent[0]!)[0]!;
  r.ep.deliver(offer, SERVER, 9999);
  await r.settle();
  t.equal(r.daemon.engine('ib0').state, 'SELECTING', 'offer not taken');
  t.ok(r.log.lines.some((l) => l.obj['reason'] === 'wrong-source-port'), 'logged with a reason');
  r.ep.deliver(Buffer.from([1, 2, 3]), SERVER, SERVER_PORT);
  await r.settle();
  t.ok(r.log.lines.some((l) => l.obj['reason'] === 'malformed'), 'malformed datagram logged, daemon alive');
  await r.daemon.stop({ release: false });
});

t.test('writeFileAtomic replaces by rename and leaves the old file when it cannot', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
  const f = join(dir, 'x.leases');
  writeFileSync(f, 'old\n');
  const inode = statSync(f).ino;
  await writeFileAtomic(f, 'new\n');
  t.equal(readFileSync(f, 'utf8'), 'new\n');
  t.not(statSync(f).ino, inode, 'a new inode: renamed over, not rewritten in place');
  const d = join(dir, 'adir');
  mkdirSync(d);
  writeFileSync(join(d, 'keep'), '');
  await t.rejects(writeFileAtomic(d, 'x'), 'rename onto a non-empty directory fails');
  t.same(readdirSync(dir).sort(), ['adir', 'x.leases'], 'temporary file removed after the failure');
});

t.test('pretty log lines for a terminal', async (t) => {
  const line = prettyLine(JSON.stringify({ level: 30, time: T0, pid: 1, name: 'ipoib-dhclient', iface: 'ib0', event: 'send', to: '255.255.255.255', msg: 'DHCPDISCOVER on ib0' }));
  t.equal(line, '10:00:00 INFO  DHCPDISCOVER on ib0  (to=255.255.255.255)\n');
  t.equal(prettyLine('not json\n'), 'not json\n');
});

t.test('kernel UDP endpoint on loopback: send, receive with meta, errors with a hint', async (t) => {
  const a = await KernelUdpEndpoint.open({ interface: 'lo', port: 0, address: '127.0.0.1' });
  const b = await KernelUdpEndpoint.open({ interface: 'lo', port: 0, address: '127.0.0.1' });
  t.teardown(() => { a.close(); b.close(); });
  t.ok(b.recvBufferSize >= 4 * 1024 * 1024 || b.recvBufferSize > 0, `SO_RCVBUF ${b.recvBufferSize}`);
  const got = new Promise<{ buf: Buffer; meta: DatagramMeta }>((resolve) => b.onMessage((buf, meta) => resolve({ buf, meta })));
  a.send(Buffer.from('hello'), '127.0.0.1', b.port);
  await a.flush();
  const { buf, meta } = await got;
  t.equal(buf.toString(), 'hello');
  t.same(meta, { address: '127.0.0.1', port: a.port, interface: 'lo', hwAddress: undefined, destination: '127.0.0.1' });
  t.throws(() => a.send(Buffer.from('x'), '127.0.0.1', b.port, { interface: 'ib0' }), KernelUdpError, 'another interface refused');
  await t.rejects(KernelUdpEndpoint.open({ interface: 'lo', port: b.port, address: '127.0.0.1' }), { code: 'EADDRINUSE' });
});

t.test('ipoib-dhclient arguments', async (t) => {
  const o = parseArgs(['--link', 'kernel', '-p', '33068', '-1', '-d', '-sf', '/x.sh', '-lf', '/l', '--client-id', 'guid', 'ib0']);
  t.match(o, { link: 'kernel', port: 33068, once: true, foreground: true, script: '/x.sh', leaseFile: '/l', clientId: { form: 'guid' }, interfaces: ['ib0'] });
  t.equal(parseArgs(['ib0']).port, 68, 'default port 68 (server 67)');
  for (const bad of [['--bogus', 'ib0'], ['-p', '1', 'ib0'], ['-p'], [], ['--client-id', 'mac', 'ib0'], ['-r', '-x', 'ib0'], ['--link', 'tcp', 'ib0'], ['-cf', '/etc/dhclient.conf', 'ib0']]) {
    const errs: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => { errs.push(String(s)); return true; }) as typeof process.stderr.write;
    let code: number;
    try { code = await main(bad); } finally { process.stderr.write = orig; }
    t.equal(code, 2, `${bad.join(' ') || '(nothing)'} -> exit 2`);
    t.match(errs.join(''), USAGE, 'usage line printed');
  }
  const errs: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => { errs.push(String(s)); return true; }) as typeof process.stderr.write;
  let code: number;
  try { code = await main(['--link', 'fabric', '--fabric', '127.0.0.1:18515', 'ib0']); } finally { process.stderr.write = orig; }
  t.equal(code, 2, '--link fabric with the default port: usage error');
  t.match(errs.join(''), /server port 67 \(0x43\) is at or below 0x8000/, 'names the port rule of the seed');
});

t.test('kernel mode identity: port GUID from a 20-byte IPoIB address in sysfs, else a clear error', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'sysfs-'));
  const ib = join(root, 'ib0');
  mkdirSync(ib);
  // A Linux IPoIB address: flags+QPN 80:00:00:48, GID fe80::7cfe:9003:0029:2652 (IPOIB-FACTS §3.1).
  writeFileSync(join(ib, 'address'), '80:00:00:48:fe:80:00:00:00:00:00:00:7c:fe:90:03:00:29:26:52\n');
  writeFileSync(join(ib, 'type'), '32\n');
  writeFileSync(join(ib, 'mtu'), '2044\n');
  writeFileSync(join(ib, 'mode'), 'datagram\n');
  const eth = join(root, 'veth0');
  mkdirSync(eth);
  writeFileSync(join(eth, 'address'), '52:bf:1c:64:88:96\n');
  writeFileSync(join(eth, 'type'), '1\n');
  writeFileSync(join(eth, 'mtu'), '1500\n');
  t.equal(portGuidOfInterface(readKernelInterface('ib0', root)), GUID);
  const o = parseArgs(['--link', 'kernel', 'ib0']);
  t.match(kernelClientConfig(o, 'ib0', root), { portGuid: GUID, link: { mode: 'datagram', datagramMtu: 2044 }, failAfterMs: 60_000 });
  t.throws(() => kernelClientConfig(parseArgs(['--link', 'kernel', 'veth0']), 'veth0', root), /not an InfiniBand interface.*--port-guid GUID or --client-id hex/);
  t.match(kernelClientConfig(parseArgs(['--link', 'kernel', '--port-guid', '7c:fe:90:03:00:29:26:53', 'veth0']), 'veth0', root),
    { portGuid: GUID + 1n, link: { mode: 'datagram', datagramMtu: 1500 } });
  t.match(kernelClientConfig(parseArgs(['--link', 'kernel', '--client-id', 'hex:01:02:03', 'veth0']), 'veth0', root), { portGuid: 0n });
  t.throws(() => kernelClientConfig(parseArgs(['--link', 'kernel', 'nope0']), 'nope0', root), /nope0: no such interface/);
});
