// ib-bonding (OFED 1.2 release notes §6; the Linux bonding driver adapted to IPoIB) on an emulated
// host: a bond in active-backup mode — the only mode usable over IPoIB, whose 20-byte hardware
// address holds a per-port QPN and GID, so slaves cannot share one — with MII-style link monitoring
// every `miimonMs` (default 100 ms, ib-bond's --miimon default), and on failover the bond's
// addresses on the new active slave and a gratuitous ARP (NETDEV_NOTIFY_PEERS, num_grat_arp 1).
//
// Model. The Host has no bond netdev, so `bond0` is this object: the slaves are real interfaces,
// all up (a backup slave keeps its carrier, so a failover needs no SA join); the bond's addresses
// sit on the active slave's netdev and move with it; the bond's hardware address is the active
// slave's (IPoIB bonding cannot impose its own: fail_over_mac is meaningless for IPoIB, per the
// Mellanox OFED manual; UNVERIFIED against the kernel source). `status()` presents bond0 as
// /proc/net/bonding/bond0 would. Linux bonding leaves a slave's mode and MTU alone after a port
// flap; here a slave back from a hotplug gets the bond's mode and MTU again (known issue 3), since
// a slave that fell back to datagram/2044 under a 65520 bond would drop large packets.
import type { Timer } from '../fabric/scheduler.js';
import type { IpoibMode } from '../ipoib/index.js';
import {
  HaError, applyAddresses, applyLink, claimDevices, hasLink, releaseDevices, stripIdentity, type HaHost, type IpIdentity,
} from './ha-host.js';

export const BOND_MIIMON_MS = 100;
export const BOND_DEFAULT_SLAVES = ['ib0', 'ib1'];
const EVENTS_KEPT = 50;

export interface BondOptions {
  name: string;
  slaves: readonly string[];
  /** "10.0.0.4/24"; null: a bond with no address (ib-bond always gives one). */
  address: string | null;
  miimonMs?: number;
  /** Mode and MTU set on every slave; default: the first slave's now. */
  link?: { mode: IpoibMode; mtu: number };
  /** The slave tried first. */
  initialActive?: string | null;
  /** Linux `primary=`: taken back whenever its link is up (primary_reselect=always). */
  primary?: string | null;
  onEvent?: (e: BondEvent) => void;
}

export interface BondEvent {
  at: number;
  kind: 'enslaved' | 'active' | 'failover' | 'link-down' | 'link-up' | 'no-active' | 'hotplug-restored' | 'problem' | 'released';
  dev: string;
  message: string;
}

export interface BondSlaveStatus {
  name: string;
  link: 'up' | 'down';
  active: boolean;
  failures: number;
  hwAddress: string;
  mode: IpoibMode;
  mtu: number;
}

export interface BondStatus {
  name: string;
  mode: 'active-backup';
  miimonMs: number;
  primary: string | null;
  activeSlave: string | null;
  /** The active slave's 20-byte address (the bond's own follows it). */
  hwAddress: string | null;
  addresses: string[];
  link: { mode: IpoibMode; mtu: number };
  slaves: BondSlaveStatus[];
  failovers: number;
  lastFailover: { from: string | null; to: string; at: number } | null;
  events: BondEvent[];
}

export class Bond {
  readonly name: string;
  readonly slaves: readonly string[];
  readonly miimonMs: number;
  private readonly link: { mode: IpoibMode; mtu: number };
  private readonly identity: IpIdentity;
  /** The slave whose netdev holds the bond's addresses. */
  private holder: string;
  private activeSlave: string | null = null;
  private readonly linkUp = new Map<string, boolean>();
  private readonly failures = new Map<string, number>();
  private readonly portWasDown = new Map<string, boolean>();
  private failoverCount = 0;
  private last: BondStatus['lastFailover'] = null;
  private readonly events: BondEvent[] = [];
  private timer: Timer | undefined;
  private released = false;
  private readonly failoverListeners: ((from: string | null, to: string) => void)[] = [];

  /** Enslaves the interfaces (mode, MTU, up), puts the address on the first slave, starts the monitor. */
  static start(host: HaHost, opts: BondOptions): Bond {
    return new Bond(host, opts);
  }

  private constructor(private readonly host: HaHost, private readonly opts: BondOptions) {
    this.name = opts.name;
    this.miimonMs = opts.miimonMs ?? BOND_MIIMON_MS;
    if (!/^bond[0-9]+$/.test(this.name)) throw new HaError('EINVAL', `bond name '${this.name}' is not bond<N>`);
    if (!Number.isInteger(this.miimonMs) || this.miimonMs < 1) throw new HaError('EINVAL', `${this.name}: miimon ${this.miimonMs} ms must be a positive integer`);
    if (opts.slaves.length === 0) throw new HaError('EINVAL', `${this.name}: no slave`);
    if (new Set(opts.slaves).size !== opts.slaves.length) throw new HaError('EINVAL', `${this.name}: a slave is named twice (${opts.slaves.join(', ')})`);
    if (opts.address !== null && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(opts.address)) {
      throw new HaError('EINVAL', `${this.name}: '${opts.address}' is not an IPv4 address/prefix`);
    }
    claimDevices(host, opts.slaves, this.name);
    this.slaves = [...opts.slaves];
    const first = this.slaves[0] as string;
    this.link = opts.link ?? { mode: host.iface(first).mode, mtu: host.iface(first).mtu };
    this.identity = { addresses: opts.address === null ? [] : [opts.address], routes: [], mode: this.link.mode, mtu: this.link.mtu, groups: [] };
    const initial = opts.initialActive ?? opts.primary ?? first;
    if (!this.slaves.includes(initial)) throw new HaError('EINVAL', `${this.name}: ${initial} is not one of its slaves (${this.slaves.join(', ')})`);
    for (const s of this.slaves) {
      // A slave carries no address of its own (the bond's are put on the active one).
      const own = host.addrShow(s).map((a) => `${a.address}/${a.prefixlen}`);
      const problems = stripIdentity(host, s, { addresses: own, routes: [], mode: this.link.mode, mtu: this.link.mtu, groups: [] });
      problems.push(...applyLink(host, s, this.link.mode, this.link.mtu));
      try { host.linkSet(s, { up: true }); } catch (err) { problems.push((err as Error).message); }
      for (const m of problems) this.event('problem', s, m);
      this.linkUp.set(s, false);
      this.failures.set(s, 0);
      this.event('enslaved', s, `${this.name}: enslaving ${s} as a backup interface${own.length > 0 ? ` (its own ${own.join(', ')} removed)` : ''}`);
    }
    this.holder = initial;
    for (const m of applyAddresses(host, initial, this.identity)) this.event('problem', initial, m);
    this.tick();
    this.arm();
  }

  onFailover(fn: (from: string | null, to: string) => void): void {
    this.failoverListeners.push(fn);
  }

  get active(): string | null {
    return this.activeSlave;
  }

  status(): BondStatus {
    const act = this.activeSlave;
    return {
      name: this.name, mode: 'active-backup', miimonMs: this.miimonMs, primary: this.opts.primary ?? null, activeSlave: act,
      hwAddress: act === null ? null : this.host.iface(act).hwAddressText, addresses: [...this.identity.addresses], link: { ...this.link },
      slaves: this.slaves.map((s) => {
        const v = this.host.iface(s);
        return { name: s, link: this.linkUp.get(s) === true ? 'up' : 'down', active: s === act, failures: this.failures.get(s) ?? 0, hwAddress: v.hwAddressText, mode: v.mode, mtu: v.mtu };
      }),
      failovers: this.failoverCount, lastFailover: this.last === null ? null : { ...this.last }, events: [...this.events],
    };
  }

  /** ib-bond --stop: the addresses go, the slaves are released (left up, without address). */
  stop(): void {
    if (this.released) return;
    this.released = true;
    this.timer?.cancel();
    this.timer = undefined;
    for (const m of stripIdentity(this.host, this.holder, this.identity)) this.event('problem', this.holder, m);
    releaseDevices(this.host, this.name);
    this.activeSlave = null;
    this.event('released', this.name, `${this.name}: slaves ${this.slaves.join(', ')} released`);
  }

  get stopped(): boolean {
    return this.released;
  }

  /** One miimon step. */
  tick(): void {
    if (this.released) return;
    const h = this.host;
    const now = h.scheduler.now();
    for (const s of this.slaves) {
      const v = h.iface(s);
      this.watchPort(s);
      const up = hasLink(v);
      const was = this.linkUp.get(s) === true;
      if (up === was) continue;
      this.linkUp.set(s, up);
      if (!up) this.failures.set(s, (this.failures.get(s) ?? 0) + 1);
      this.event(up ? 'link-up' : 'link-down', s, `${this.name}: link status ${up ? 'definitely up' : 'definitely down'} for interface ${s}`);
    }
    const primary = this.opts.primary ?? null;
    let next = this.activeSlave;
    if (next === null || this.linkUp.get(next) !== true) {
      const order = [...(primary !== null ? [primary] : []), this.holder, ...this.slaves];
      next = order.find((s) => this.linkUp.get(s) === true) ?? null;
    } else if (primary !== null && next !== primary && this.linkUp.get(primary) === true) {
      next = primary;
    }
    if (next === this.activeSlave) return;
    if (next === null) {
      this.activeSlave = null;
      this.event('no-active', this.name, `${this.name}: now running without any active interface!`);
      return;
    }
    this.makeActive(next, now);
  }

  private makeActive(to: string, now: number): void {
    const from = this.activeSlave;
    const problems: string[] = [];
    if (this.holder !== to) {
      problems.push(...stripIdentity(this.host, this.holder, this.identity));
      problems.push(...applyAddresses(this.host, to, this.identity));
      this.holder = to;
    }
    this.activeSlave = to;
    for (const a of this.identity.addresses) {
      try { this.host.sendGratuitousArp(to, a.split('/')[0] as string); } catch (err) { problems.push(`gratuitous ARP: ${(err as Error).message}`); }
    }
    for (const m of problems) this.event('problem', to, m);
    if (from !== null) {
      this.failoverCount++;
      this.last = { from, to, at: now };
      this.event('failover', to, `${this.name}: making interface ${to} the new active one (was ${from}); hardware address now ${this.host.iface(to).hwAddressText}`);
    } else {
      this.event('active', to, `${this.name}: making interface ${to} the new active one`);
    }
    for (const fn of this.failoverListeners) fn(from, to);
  }

  private watchPort(s: string): void {
    const v = this.host.iface(s);
    if (!v.portActive) { this.portWasDown.set(s, true); return; }
    if (this.portWasDown.get(s) !== true) return;
    this.portWasDown.set(s, false);
    if (v.mode === this.link.mode && v.mtu === this.link.mtu) return;
    const before = `${v.mode}/${v.mtu}`;
    for (const m of applyLink(this.host, s, this.link.mode, this.link.mtu)) this.event('problem', s, m);
    this.event('hotplug-restored', s, `${s}: port back after a hotplug in ${before}; restored ${this.host.iface(s).mode} mode, MTU ${this.host.iface(s).mtu}`);
  }

  private arm(): void {
    this.timer = this.host.scheduler.setTimer(this.miimonMs, () => {
      this.timer = undefined;
      if (this.released) return;
      try {
        this.tick();
      } catch (err) {
        this.event('problem', this.name, `monitor step failed: ${(err as Error).message}`);
      }
      if (!this.released) this.arm();
    });
  }

  private event(kind: BondEvent['kind'], dev: string, message: string): void {
    const e: BondEvent = { at: this.host.scheduler.now(), kind, dev, message };
    this.events.push(e);
    if (this.events.length > EVENTS_KEPT) this.events.shift();
    this.opts.onEvent?.(e);
  }
}

/** /proc/net/bonding/bondN, roughly: what `ib-bond --status` prints. */
export function formatBondStatus(s: BondStatus): string {
  const lines = [
    `${s.name}: Bonding Mode: fault-tolerance (active-backup)`,
    `Primary Slave: ${s.primary ?? 'None'}`,
    `Currently Active Slave: ${s.activeSlave ?? 'None'}`,
    `MII Status: ${s.activeSlave !== null ? 'up' : 'down'}`,
    `MII Polling Interval (ms): ${s.miimonMs}`,
    `IP address: ${s.addresses.join(', ') || 'none'}; mode ${s.link.mode}, MTU ${s.link.mtu}`,
    `HW address: ${s.hwAddress ?? 'none'}`,
    `Failovers: ${s.failovers}`,
  ];
  for (const sl of s.slaves) {
    lines.push('', `Slave Interface: ${sl.name}${sl.active ? ' (active)' : ''}`, `MII Status: ${sl.link}`, `Link Failure Count: ${sl.failures}`,
      `Permanent HW addr: ${sl.hwAddress}`, `Mode: ${sl.mode}, MTU ${sl.mtu}`);
  }
  return lines.join('\n');
}
