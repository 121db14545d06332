// link/ha: the HA service and active-backup bond state machines on a fake host (exact steps in
// virtual time), the ipoib-ha / ib-bond flag rules, conflicting configurations executed on real
// emulated hosts (each problem names its file and key; the rest of the plan still runs), and the
// ib-bond / ipoib-ha programs talking to a running boot execution over its socket.
import t from 'tap';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BootControlServer, bootSocketPath } from '../boot/execute-control.js';
import { executePlan } from '../boot/execute.js';
import { loadBootPlan } from '../boot/load.js';
import { bondCliOptions, main as ibBond, parseBondIp } from '../bin/ib-bond.js';
import { haCliOptions, main as ipoibHa } from '../bin/ipoib-ha.js';
import { Fabric } from '../link/fabric/fabric.js';
import { VirtualScheduler, seededRandom } from '../link/fabric/scheduler.js';
import { InProcessTransport } from '../link/fabric/transport.js';
import { Bond, HaError, HaService, ipv4GroupOfMgid, type HaHost, type HaLinkView } from '../link/ha/index.js';
import { Host, type AddrRow, type IpoibMode, type Route } from '../link/ipoib/index.js';

// ---- a fake host: links, addresses, routes, and a log of what was sent -------------------------

const JOIN_MS = 50;

class FakeIface implements HaLinkView {
  adminUp = false;
  carrier = false;
  portActive = true;
  mode: IpoibMode = 'connected';
  mtu = 65520;
  groups: string[] = [];
  constructor(readonly name: string, readonly hwAddressText: string) {}
  multicastGroups(): { mgid: string; sendOnly: boolean }[] {
    return this.groups.map((g) => {
      const n = g.split('.').reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0) & 0x0fffffff;
      return { mgid: `ff12:401b:ffff::${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`, sendOnly: false };
    });
  }
}

class FakeHost implements HaHost {
  readonly name = 'fake';
  readonly scheduler = new VirtualScheduler();
  readonly ifs = new Map<string, FakeIface>();
  readonly addrs: { dev: string; cidr: string }[] = [];
  readonly routes: Route[] = [];
  readonly sent: string[] = [];
  constructor(names: string[]) {
    names.forEach((n, i) => this.ifs.set(n, new FakeIface(n, `hw-${n}-${i}`)));
  }
  iface(name: string): FakeIface {
    const i = this.ifs.get(name);
    if (i === undefined) throw new Error(`Device "${name}" does not exist.`);
    return i;
  }
  interfaces(): { name: string }[] { return [...this.ifs.keys()].map((name) => ({ name })); }
  addrShow(dev?: string): AddrRow[] {
    return this.addrs.filter((a) => dev === undefined || a.dev === dev)
      .map((a) => ({ dev: a.dev, address: a.cidr.split('/')[0]!, prefixlen: Number(a.cidr.split('/')[1]), broadcast: '' }));
  }
  addrAdd(dev: string, cidr: string): void { this.iface(dev); this.addrs.push({ dev, cidr }); }
  addrDel(dev: string, cidr: string): void {
    const i = this.addrs.findIndex((a) => a.dev === dev && a.cidr === cidr);
    if (i < 0) throw new Error(`${cidr} is not on ${dev}`);
    this.addrs.splice(i, 1);
  }
  routeShow(): Route[] { return [...this.routes]; }
  routeAdd(dst: string, o: { via?: string; dev?: string; metric?: number }): void {
    const [a, l] = dst === 'default' ? ['0.0.0.0', '0'] : dst.split('/');
    this.routes.push({ dst: ip(a!), len: Number(l), via: o.via === undefined ? undefined : ip(o.via), dev: o.dev!, metric: o.metric ?? 0, proto: 'static', scope: 'global', src: undefined } as Route);
  }
  routeDel(dst: string): void {
    const len = dst === 'default' ? 0 : Number(dst.split('/')[1]);
    const i = this.routes.findIndex((r) => r.len === len);
    if (i < 0) throw new Error(`no route ${dst}`);
    this.routes.splice(i, 1);
  }
  linkSet(dev: string, c: { up?: boolean; mode?: string; mtu?: number }): void {
    const i = this.iface(dev);
    if (c.mode !== undefined) i.mode = c.mode as IpoibMode;
    if (c.mtu !== undefined) {
      if (i.mode === 'datagram' && c.mtu > 2044) throw new Error(`${dev}: MTU ${c.mtu} is out of range 72..2044 for datagram mode`);
      i.mtu = c.mtu;
    }
    if (c.up === true && !i.adminUp) { i.adminUp = true; this.join(i); }
    if (c.up === false) { i.adminUp = false; i.carrier = false; }
  }
  private join(i: FakeIface): void {
    this.scheduler.setTimer(JOIN_MS, () => { if (i.adminUp && i.portActive) i.carrier = true; });
  }
  portDown(dev: string): void { const i = this.iface(dev); i.portActive = false; i.carrier = false; }
  /** Known issue 3, as the emulated interface does it. */
  portUp(dev: string): void {
    const i = this.iface(dev);
    i.portActive = true;
    i.mode = 'datagram';
    i.mtu = 2044;
    if (i.adminUp) this.join(i);
  }
  sendGratuitousArp(dev: string, ipa?: string): void { this.sent.push(`garp ${dev} ${ipa}`); }
  sendUnsolicitedArpReply(dev: string, ipa?: string): void { this.sent.push(`arp-reply ${dev} ${ipa}`); }
  joinGroup(dev: string, group: string): void { this.iface(dev).groups.push(group); this.sent.push(`join ${dev} ${group}`); }
  advance(ms: number): void { this.scheduler.advance(ms); }
}

function ip(s: string): number {
  return s.split('.').reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0);
}

function haHost(): FakeHost {
  const h = new FakeHost(['ib0', 'ib1', 'ib2']);
  h.linkSet('ib0', { up: true });
  h.addrAdd('ib0', '10.0.0.3/24');
  h.routeAdd('default', { via: '10.0.0.254', dev: 'ib0' });
  h.iface('ib0').groups.push('239.1.2.3');
  h.addrAdd('ib1', '10.9.9.9/24');
  h.advance(JOIN_MS);
  return h;
}

t.test('HA service: failover, takeover, arping, multicast, no failback, hotplug restore', async (t) => {
  const h = haHost();
  const moves: string[] = [];
  const ha = HaService.start(h, { withArping: true, withMulticast: true, pollMs: 100 });
  ha.onMove((d) => moves.push(d));
  t.equal(ha.primary, 'ib0', 'default primary ib0');
  t.equal(ha.secondary, 'ib1', 'default secondary ib1');
  t.notOk(h.iface('ib1').adminUp, 'the secondary is set down at start');
  t.same(h.addrShow('ib1'), [], "the secondary's own address is removed");
  t.equal(h.iface('ib1').mode, 'connected');
  h.advance(500);
  t.equal(ha.state, 'active');
  t.same(ha.status().identity.groups, ['239.1.2.3'], 'the multicast group is part of the identity');

  h.portDown('ib0');
  h.advance(99);
  t.equal(ha.active, 'ib0', 'not seen before the next poll');
  h.advance(1);
  t.equal(ha.active, 'ib1', 'seen at the poll: moved');
  t.equal(ha.state, 'taking-over', 'waiting for the carrier of ib1');
  t.same(h.addrShow().map((a) => `${a.dev} ${a.address}/${a.prefixlen}`), ['ib1 10.0.0.3/24'], 'the address moved');
  t.same(h.routes.map((r) => `${r.dev} ${r.len}`), ['ib1 0'], 'the default route moved');
  t.ok(h.sent.includes('join ib1 239.1.2.3'), '--with-multicast: the group joined on ib1');
  t.notOk(h.sent.some((s) => s.startsWith('arp-reply')), 'no ARP before the carrier');
  t.same(moves, ['ib1'], 'listeners told (the DHCP client follows)');
  h.advance(100);
  t.equal(ha.state, 'active');
  t.ok(h.sent.includes('arp-reply ib1 10.0.0.3'), '--with-arping: unsolicited ARP reply from ib1 for the address');
  const lf = ha.status().lastFailover!;
  t.same([lf.from, lf.to, lf.completedAt! - lf.detectedAt], ['ib0', 'ib1', 100], 'completion recorded one poll after the move');

  h.portUp('ib0');
  h.advance(100);
  t.equal(h.iface('ib0').mode, 'connected', 'hotplug: the standby is back in connected mode');
  t.equal(h.iface('ib0').mtu, 65520, 'and MTU 65520');
  t.ok(ha.status().events.some((e) => e.kind === 'hotplug-restored' && /datagram\/2044/.test(e.message)));
  h.advance(1000);
  t.equal(ha.active, 'ib1', 'no failback by default: the roles swap');
  t.notOk(h.iface('ib0').adminUp, 'the old primary is the standby, down');

  h.portDown('ib1');
  h.advance(200);
  t.equal(ha.active, 'ib0', 'the next failure moves the identity back to ib0');
  t.equal(ha.status().failovers, 2);
  ha.stop();
  t.equal(ha.state, 'stopped');
});

t.test('HA service: both ports down, failback, no arping', async (t) => {
  const h = haHost();
  const ha = HaService.start(h, { pollMs: 100, failback: true });
  h.advance(200);
  h.portDown('ib1');
  h.portDown('ib0');
  h.advance(100);
  t.equal(ha.state, 'no-link', 'neither port: nothing to move to');
  t.same(h.addrShow().map((a) => a.dev), ['ib0'], 'the identity stays on ib0');
  h.portUp('ib1');
  h.advance(200);
  t.equal(ha.active, 'ib1', 'the secondary takes over as soon as its port is back');
  t.equal(ha.state, 'active');
  t.equal(h.iface('ib1').mode, 'connected', 'in the configured mode');
  t.notOk(h.sent.some((s) => s.startsWith('arp-reply')), 'without --with-arping no ARP reply');
  t.notOk(h.sent.some((s) => s.startsWith('join')), 'without --with-multicast no group join');
  h.portUp('ib0');
  h.advance(300);
  t.equal(ha.active, 'ib0', 'failback: the primary takes its identity back');
  t.same(h.addrShow().map((a) => `${a.dev} ${a.address}`), ['ib0 10.0.0.3']);
  ha.stop();
});

t.test('HA service and bond refuse what cannot work, with errors naming the device', async (t) => {
  const h = haHost();
  t.throws(() => HaService.start(h, { primary: 'ib0', secondary: 'ib0' }), { code: 'EINVAL', message: /the secondary is the primary \(ib0\)/ });
  t.throws(() => HaService.start(h, { primary: 'ib0', secondary: 'ib7' }), { code: 'ENODEV', message: /secondary ib7 does not exist on host fake \(it has ib0, ib1, ib2\)/ });
  t.throws(() => HaService.start(h, { pollMs: 0 }), { code: 'EINVAL' });
  const bond = Bond.start(h, { name: 'bond0', slaves: ['ib1', 'ib2'], address: '10.0.1.1/24' });
  const e = t.throws(() => HaService.start(h, { primary: 'ib0', secondary: 'ib1' })) as HaError;
  t.equal(e.code, 'EBUSY');
  t.match(e.message, /ib1 is already used by bond0/);
  t.throws(() => Bond.start(h, { name: 'bond1', slaves: ['ib2'], address: null }), { code: 'EBUSY', message: /ib2 is already used by bond0/ });
  t.throws(() => Bond.start(h, { name: 'bond1', slaves: ['ib9'], address: null }), { code: 'ENODEV', message: /ib9 does not exist/ });
  t.throws(() => Bond.start(h, { name: 'team0', slaves: ['ib0'], address: null }), { code: 'EINVAL' });
  t.throws(() => Bond.start(h, { name: 'bond1', slaves: ['ib0', 'ib0'], address: null }), { code: 'EINVAL', message: /named twice/ });
  t.throws(() => Bond.start(h, { name: 'bond1', slaves: ['ib0'], address: '10.0.0.300' }), { code: 'EINVAL' });
  bond.stop();
  const ha = HaService.start(h, { primary: 'ib0', secondary: 'ib1' });
  t.equal(ha.state, 'active', 'once the bond is gone, the HA service may have ib1');
  ha.stop();
});

t.test('bond: active-backup, miimon, address and hardware address follow the active slave', async (t) => {
  const h = new FakeHost(['ib0', 'ib1', 'ib2']);
  h.addrAdd('ib1', '10.5.5.5/24');
  const events: string[] = [];
  const b = Bond.start(h, { name: 'bond0', slaves: ['ib0', 'ib1'], address: '10.0.0.4/24', miimonMs: 100, onEvent: (e) => events.push(e.kind) });
  t.ok(h.iface('ib0').adminUp && h.iface('ib1').adminUp, 'every slave is up (a backup keeps its carrier)');
  t.same(h.addrShow().map((a) => `${a.dev} ${a.address}/${a.prefixlen}`), ['ib0 10.0.0.4/24'], "a slave's own address is removed; the bond's is on the first slave");
  t.equal(b.active, null, 'no active slave before a link is up');
  h.advance(100);
  t.equal(b.active, 'ib0');
  t.equal(b.status().hwAddress, 'hw-ib0-0');
  t.same(h.sent, ['garp ib0 10.0.0.4'], 'a gratuitous ARP when the slave becomes active');
  h.portDown('ib0');
  h.advance(100);
  t.equal(b.active, 'ib1', 'failover at the next miimon');
  t.same(h.addrShow().map((a) => a.dev), ['ib1'], 'the address is on ib1');
  t.equal(b.status().hwAddress, 'hw-ib1-1', "the bond's hardware address is ib1's");
  t.equal(h.sent.at(-1), 'garp ib1 10.0.0.4', 'gratuitous ARP on failover');
  t.same(b.status().slaves.map((s) => [s.name, s.link, s.failures]), [['ib0', 'down', 1], ['ib1', 'up', 0]]);
  h.portUp('ib0');
  h.advance(200);
  t.same([h.iface('ib0').mode, h.iface('ib0').mtu], ['connected', 65520], 'a slave back from a hotplug gets the bond\'s mode and MTU');
  t.equal(b.active, 'ib1', 'no primary=: no failback');
  h.portDown('ib1');
  h.portDown('ib0');
  h.advance(100);
  t.equal(b.active, null, 'no slave with link: no active slave');
  t.ok(events.includes('no-active'));
  b.stop();
  t.same(h.addrShow(), [], 'stop: the address goes');
  const p = Bond.start(h, { name: 'bond1', slaves: ['ib1', 'ib2'], address: '10.0.2.1/24', primary: 'ib2' });
  h.portUp('ib1');
  h.advance(300);
  t.equal(p.active, 'ib2', 'primary=ib2 is preferred while its link is up');
  h.portDown('ib2');
  h.advance(100);
  t.equal(p.active, 'ib1');
  h.portUp('ib2');
  h.advance(200);
  t.equal(p.active, 'ib2', 'and taken back when it returns (primary_reselect=always)');
  p.stop();
});

t.test('IPv4 group from an IPoIB MGID (RFC 4391 §4)', async (t) => {
  t.equal(ipv4GroupOfMgid('ff12:401b:ffff::e0:1'), '224.224.0.1', 'low 28 bits, top nibble 1110');
  t.equal(ipv4GroupOfMgid('ff12:401b:8001::1:203'), '224.1.2.3');
  t.equal(ipv4GroupOfMgid('ff12:601b:ffff::1'), null, 'an IPv6 MGID is not an IPv4 group');
  t.equal(ipv4GroupOfMgid('not a gid'), null);
});

t.test('ipoib-ha and ib-bond flags', async (t) => {
  t.match(haCliOptions({ host: 'n1' }), { action: 'start', primary: 'ib0', secondary: 'ib1', withArping: false, withMulticast: false, pollMs: 100 });
  t.match(haCliOptions({ host: 'n1', p: 'ib1', s: 'ib0', withArping: true, withMulticast: true, verbose: true }),
    { primary: 'ib1', secondary: 'ib0', withArping: true, withMulticast: true, verbose: true });
  t.throws(() => haCliOptions({ host: 'n1', p: 'ib1', s: 'ib1' }), /-p and -s are both ib1/);
  t.throws(() => haCliOptions({ host: 'n1', p: 'eth0' }), /-p eth0: not an IPoIB interface name/);
  t.throws(() => haCliOptions({}), /--host NAME is required/);
  t.throws(() => haCliOptions({ host: 'n1', status: true, stop: true }), /choose one/);

  t.match(bondCliOptions({ host: 'n4', bondIp: '10.0.0.4' }), { action: 'start', name: 'bond0', address: '10.0.0.4/24', slaves: ['ib0', 'ib1'], miimonMs: 100 },
    '--bond-ip alone creates bond0 over ib0,ib1 with a /24');
  t.match(bondCliOptions({ host: 'n4', start: true, bondName: 'bond1', bondIp: '10.1.0.1/16', slaves: 'ib0.8001, ib2', miimon: 50 }),
    { action: 'start', name: 'bond1', address: '10.1.0.1/16', slaves: ['ib0.8001', 'ib2'], miimonMs: 50 });
  t.match(bondCliOptions({ host: 'n4', statusAll: true }), { action: 'status-all' });
  t.match(bondCliOptions({ host: 'n4', stop: true, bondName: 'bond3' }), { action: 'stop', name: 'bond3' });
  t.throws(() => bondCliOptions({ host: 'n4' }), /nothing to do/);
  t.throws(() => bondCliOptions({ host: 'n4', start: true }), /--start needs --bond-ip/);
  t.throws(() => bondCliOptions({ host: 'n4', stop: true, statusAll: true }), /--stop and --status-all: choose one/);
  t.throws(() => bondCliOptions({ host: 'n4', stop: true, slaves: 'ib0' }), /--stop takes no --bond-ip, --slaves or --miimon/);
  t.throws(() => bondCliOptions({ host: 'n4', bondIp: '10.0.0.4', slaves: 'ib0,eth1' }), /'eth1' is not an IPoIB interface/);
  t.throws(() => bondCliOptions({ host: 'n4', bondIp: '10.0.0.4', slaves: 'ib0,ib0' }), /named twice/);
  t.throws(() => bondCliOptions({ host: 'n4', bondIp: '10.0.0.4', bondName: 'eth0' }), /not bond<N>/);
  t.equal(parseBondIp('192.168.10.100'), '192.168.10.100/24', 'ib-bond: without MASK, 24 bits');
  t.throws(() => parseBondIp('10.0.0.256'), /not IP\[\/MASK\]/);
  t.throws(() => parseBondIp('10.0.0.1/33'), /MASK 33 is not 1..32/);
  t.throws(() => parseBondIp('10.0.0.1/255.255.0.0'), /MASK = number of 1 bits/);
});

// ---- conflicting configurations executed on emulated hosts --------------------------------------

async function cluster(names: string[]): Promise<{ sched: VirtualScheduler; hosts: Host[] }> {
  const sched = new VirtualScheduler();
  const fabric = new Fabric({ scheduler: sched, random: seededRandom(1) });
  const tr = new InProcessTransport(fabric);
  const hosts: Host[] = [];
  for (const n of names) hosts.push(await sched.run(Host.create(tr, { name: n, scheduler: sched, ports: 3 })));
  return { sched, hosts };
}

t.test('conflicting settings: a clear message naming the file and key, and the rest still runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ha-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const scripts = join(dir, 'network-scripts');
  mkdirSync(scripts);
  const conf = join(dir, 'openib.conf');
  // HA on ib0/ib1 and a bond over ib1,ib2: the seed says no bond when HA is configured.
  writeFileSync(conf, 'IPOIB_LOAD=yes\nSET_IPOIB_CM=yes\nIPOIBHA_ENABLE=yes\nPRIMARY_IPOIB_DEV=ib0\nSECONDARY_IPOIB_DEV=ib1\n' +
    'IPOIBBOND_ENABLE=yes\nIPOIB_BONDS=bond0\nbond0_IP=10.0.0.4/24\nbond0_SLAVES=ib1,ib2\n');
  writeFileSync(join(scripts, 'ifcfg-ib0'), 'DEVICE=ib0\nONBOOT=yes\nBOOTPROTO=static\nIPADDR=10.0.0.3\nPREFIX=24\n');
  // An MTU datagram mode cannot carry.
  writeFileSync(join(scripts, 'ifcfg-ib2'), 'DEVICE=ib2\nONBOOT=yes\nBOOTPROTO=static\nIPADDR=10.0.0.13\nPREFIX=24\nCONNECTED_MODE=no\nMTU=65520\n');
  const plan = loadBootPlan({ conf, ifcfgDir: scripts, ports: ['ib0', 'ib1', 'ib2'], host: 'c1' });
  const conflict = plan.warnings.find((d) => d.code === 'ha-bond-conflict')!;
  t.match(conflict, { file: conf, key: 'bond0_SLAVES', message: /ib1 is both a slave of bond0 and an HA device/ }, 'HA and bond on ib1: file and key named');
  const mtu = plan.warnings.find((d) => d.code === 'mtu-out-of-range')!;
  t.match(mtu, { file: join(scripts, 'ifcfg-ib2'), key: 'MTU', message: /MTU 65520 cannot be carried in datagram mode/ }, 'the MTU problem names ifcfg-ib2 and MTU');
  const { sched, hosts } = await cluster(['c1', 'peer']);
  t.teardown(() => { for (const h of hosts) h.close(); });
  const [c1, peer] = hosts as [Host, Host];
  const ex = await sched.run(executePlan(c1, plan, { readyMs: 10_000 }), 60_000);
  const r = ex.report();
  t.equal(ex.bonds.size, 0, 'no bond (HA is configured)');
  t.equal(ex.ha?.active, 'ib0', 'the HA service runs');
  t.match(r.interfaces.find((o) => o.name === 'ib2'), { state: 'up', mode: 'datagram', mtu: 2044, address: '10.0.0.13/24' }, 'ib2 still comes up, with the MTU its mode allows');
  t.match(r.interfaces.find((o) => o.name === 'ib0'), { state: 'up', address: '10.0.0.3/24' });
  t.equal(r.interfaces.find((o) => o.name === 'ib1')?.state, 'standby');
  peer.addrAdd('ib0', '10.0.0.99/24');
  peer.linkSet('ib0', { up: true });
  await sched.run(peer.iface('ib0').waitCarrier());
  const pings = await sched.run(Promise.all(['10.0.0.3', '10.0.0.13'].map((a) => peer.ping(a, { count: 2, timeoutMs: 3000 }))), 30_000);
  t.same(pings.map((p) => p.received > 0), [true, true], 'both configured addresses answer');

  // A slave that does not exist: the bond goes on without it.
  const conf2 = join(dir, 'openib2.conf');
  writeFileSync(conf2, 'IPOIB_LOAD=yes\nSET_IPOIB_CM=yes\nIPOIBBOND_ENABLE=yes\nIPOIB_BONDS=bond0\nbond0_IP=10.0.0.5/24\nbond0_SLAVES=ib1,ib7\n');
  const plan2 = loadBootPlan({ conf: conf2, ports: ['ib0', 'ib1', 'ib2'], host: 'c2' });
  t.match(plan2.warnings.find((d) => d.code === 'slave-missing'), { file: conf2, key: 'bond0_SLAVES', message: /ib7 does not exist on this host/ });
  const { sched: s2, hosts: h2 } = await cluster(['c2']);
  t.teardown(() => { for (const h of h2) h.close(); });
  const ex2 = await s2.run(executePlan(h2[0]!, plan2, { readyMs: 10_000 }), 60_000);
  t.equal(ex2.bonds.get('bond0')?.active, 'ib1', 'bond0 runs on the slave that exists');
  t.same(h2[0]!.addrShow().map((a) => `${a.dev} ${a.address}`), ['ib1 10.0.0.5']);
  await s2.run(ex2.stop());
  await sched.run(ex.stop());
});

t.test('ib-bond and ipoib-ha talk to a running boot execution over its socket', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ha-sock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'openib.conf');
  writeFileSync(conf, 'IPOIB_LOAD=yes\nSET_IPOIB_CM=yes\n');
  const { sched, hosts } = await cluster(['sock1']);
  t.teardown(() => { for (const h of hosts) h.close(); });
  const host = hosts[0]!;
  const ex = await sched.run(executePlan(host, loadBootPlan({ conf, ports: ['ib0', 'ib1', 'ib2'], host: 'sock1' })));
  let stopped = false;
  const srv = await BootControlServer.listen(ex, bootSocketPath('sock1', dir), () => { stopped = true; });
  t.teardown(() => srv.close());
  const rt = ['--runtime-dir', dir, '--host', 'sock1'];
  t.equal(await ibBond([...rt, '--bond-ip', '10.0.0.4/24', '--slaves', 'ib0,ib1']), 0, 'ib-bond --bond-ip creates bond0');
  t.same(ex.bonds.get('bond0')?.slaves, ['ib0', 'ib1']);
  t.same(host.addrShow().map((a) => `${a.dev} ${a.address}`), ['ib0 10.0.0.4'], 'its address on the first slave');
  t.equal(await ibBond([...rt, '--bond-ip', '10.0.0.5', '--bond-name', 'bond0']), 2, 'bond0 twice: refused, exit 2');
  t.equal(await ipoibHa([...rt, '-p', 'ib1', '-s', 'ib2']), 2, 'ipoib-ha on a bond slave: EBUSY, exit 2');
  t.equal(await ipoibHa([...rt, '-p', 'ib2', '-s', 'ib9']), 2, 'a secondary that does not exist: exit 2');
  t.equal(await ibBond([...rt, '--status-all']), 0);
  t.equal(await ibBond([...rt, '--stop']), 0, 'ib-bond --stop deletes bond0');
  t.same(host.addrShow(), []);
  t.equal(await ipoibHa([...rt, '-p', 'ib1', '-s', 'ib2', '--with-arping']), 0, 'now ipoib-ha may have ib1');
  t.equal(ex.ha?.primary, 'ib1');
  t.equal(await ipoibHa([...rt, '--status']), 0);
  t.equal(await ipoibHa(['--runtime-dir', dir, '--host', 'nobody', '--status']), 1, 'no ipoib-boot there: exit 1');
  t.equal(await ipoibHa([...rt, '--stop']), 0);
  t.notOk(stopped);
  ex.ha?.stop();
});
