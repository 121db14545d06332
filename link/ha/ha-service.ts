// The IPoIB HA service of OFED 1.2 (release notes §5, ipoibtools' ipoib_ha.pl) on an emulated host:
// watch the primary interface; when it loses its link, give the secondary the primary's IP
// identity (addresses, static routes, mode, MTU), announce it with an unsolicited ARP reply
// (--with-arping, arpingib) and join the primary's multicast groups on it (--with-multicast,
// mcasthandle). Known issue 3 (a hotplug leaves the interface in datagram mode, MTU 2044) is undone.
//
// Link monitoring polls every `pollMs` (default 100 ms, the miimon default of ib-bond) instead of
// parsing `ip monitor link` as ipoib_ha.pl does: a poll is deterministic in virtual time and costs
// at most one interval of detection delay. "Link" = administratively up, carrier (broadcast group
// joined) and HCA port ACTIVE; a standby that is down is watched through its port state.
//
// The ipoibtools notes say the secondary "will be set down when the HA service starts", and nothing
// about moving back. Chosen (UNVERIFIED against ipoib_ha.pl's source, which we could not read): no
// failback by default — the roles swap, the old primary becomes the standby (down, its mode and MTU
// restored) and is taken again only if the new active interface fails; `failback: true` moves the
// identity back as soon as the primary's port is ACTIVE again.
import type { Timer } from '../fabric/scheduler.js';
import type { IpoibMode } from '../ipoib/index.js';
import {
  HaError, applyAddresses, applyLink, captureIdentity, claimDevices, hasLink, interfaceExists, ipv4GroupOfMgid, releaseDevices, stripIdentity,
  type HaHost, type IpIdentity,
} from './ha-host.js';

export const HA_DEFAULT_PRIMARY = 'ib0';
export const HA_DEFAULT_SECONDARY = 'ib1';
export const HA_POLL_MS = 100;
/** How long a new active interface may take to get its carrier (SA join) before the other is tried. */
export const HA_CARRIER_TIMEOUT_MS = 10_000;
const EVENTS_KEPT = 50;

export interface HaOptions {
  primary?: string;
  secondary?: string;
  /** Unsolicited ARP reply from the new active interface for each moved address (arping -A). */
  withArping?: boolean;
  /** Rejoin the primary's IPv4 multicast groups on the new active interface. */
  withMulticast?: boolean;
  pollMs?: number;
  failback?: boolean;
  /** The mode and MTU the HA interfaces run with (restored after a hotplug); default: the primary's now. */
  link?: { mode: IpoibMode; mtu: number };
  /** Every event, as it happens (the -v output). */
  onEvent?: (e: HaEvent) => void;
}

/** active: the identity is on a linked interface; taking-over: moved, waiting for carrier; no-link: neither has a port. */
export type HaState = 'active' | 'taking-over' | 'no-link' | 'stopped';

export type HaEventKind = 'started' | 'link-lost' | 'failover' | 'failback' | 'takeover-complete' | 'no-link' | 'hotplug-restored' | 'problem' | 'stopped';

export interface HaEvent {
  at: number;
  kind: HaEventKind;
  dev: string;
  message: string;
}

export interface HaFailover {
  from: string;
  to: string;
  /** Virtual/real ms (the host scheduler's clock) the lost link was seen, the move made, the carrier back. */
  detectedAt: number;
  completedAt: number | null;
}

export interface HaStatus {
  primary: string;
  secondary: string;
  active: string;
  standby: string;
  state: HaState;
  pollMs: number;
  withArping: boolean;
  withMulticast: boolean;
  failback: boolean;
  identity: IpIdentity;
  failovers: number;
  lastFailover: HaFailover | null;
  events: HaEvent[];
}

export class HaService {
  readonly primary: string;
  readonly secondary: string;
  private activeDev: string;
  private stateValue: HaState = 'active';
  private identity: IpIdentity;
  private readonly link: { mode: IpoibMode; mtu: number };
  private readonly pollMs: number;
  private readonly opts: HaOptions;
  private timer: Timer | undefined;
  private takeoverAt = 0;
  private failoverCount = 0;
  private last: HaFailover | null = null;
  private readonly events: HaEvent[] = [];
  private readonly portWasDown = new Map<string, boolean>();
  private readonly moveListeners: ((dev: string) => void)[] = [];
  private readonly owner: string;

  /** Checks the devices, sets the secondary down with the primary's mode and MTU, and starts polling. */
  static start(host: HaHost, opts: HaOptions = {}): HaService {
    return new HaService(host, opts);
  }

  private constructor(private readonly host: HaHost, opts: HaOptions) {
    this.opts = opts;
    this.primary = opts.primary ?? HA_DEFAULT_PRIMARY;
    this.secondary = opts.secondary ?? HA_DEFAULT_SECONDARY;
    this.pollMs = opts.pollMs ?? HA_POLL_MS;
    if (!Number.isInteger(this.pollMs) || this.pollMs < 1) throw new HaError('EINVAL', `poll interval ${this.pollMs} ms: must be a positive integer`);
    if (this.primary === this.secondary) throw new HaError('EINVAL', `the secondary is the primary (${this.primary})`);
    for (const [role, dev] of [['primary', this.primary], ['secondary', this.secondary]] as const) {
      if (!interfaceExists(host, dev)) {
        throw new HaError('ENODEV', `${role} ${dev} does not exist on host ${host.name} (it has ${host.interfaces().map((i) => i.name).join(', ')})`);
      }
    }
    this.owner = `the HA service (${this.primary} -> ${this.secondary})`;
    claimDevices(host, [this.primary, this.secondary], this.owner);
    const p = host.iface(this.primary);
    this.link = opts.link ?? { mode: p.mode, mtu: p.mtu };
    this.activeDev = this.primary;
    this.identity = { ...captureIdentity(host, this.primary), mode: this.link.mode, mtu: this.link.mtu };
    const problems = [...stripIdentity(host, this.secondary, captureIdentity(host, this.secondary))];
    try { host.linkSet(this.secondary, { up: false }); } catch (err) { problems.push((err as Error).message); }
    problems.push(...applyLink(host, this.secondary, this.link.mode, this.link.mtu));
    for (const m of problems) this.event('problem', this.secondary, m);
    this.event('started', this.primary,
      `watching ${this.primary} every ${this.pollMs} ms; ${this.secondary} is the standby (down)` +
      `${this.opts.withArping ? ', with arping' : ''}${this.opts.withMulticast ? ', with multicast' : ''}${this.opts.failback ? ', failback' : ''}`);
    this.arm();
  }

  get active(): string {
    return this.activeDev;
  }

  get standby(): string {
    return this.activeDev === this.primary ? this.secondary : this.primary;
  }

  get stopped(): boolean {
    return this.stateValue === 'stopped';
  }

  get state(): HaState {
    return this.stateValue;
  }

  /** Called with the new active interface each time the identity moves (a DHCP client follows it). */
  onMove(fn: (dev: string) => void): void {
    this.moveListeners.push(fn);
  }

  status(): HaStatus {
    return {
      primary: this.primary, secondary: this.secondary, active: this.activeDev, standby: this.standby, state: this.stateValue,
      pollMs: this.pollMs, withArping: this.opts.withArping === true, withMulticast: this.opts.withMulticast === true,
      failback: this.opts.failback === true, identity: this.identity, failovers: this.failoverCount,
      lastFailover: this.last === null ? null : { ...this.last }, events: [...this.events],
    };
  }

  /** Stops watching; the identity stays where it is. */
  stop(): void {
    if (this.stateValue === 'stopped') return;
    this.timer?.cancel();
    this.timer = undefined;
    this.stateValue = 'stopped';
    releaseDevices(this.host, this.owner);
    this.event('stopped', this.activeDev, `stopped; the identity stays on ${this.activeDev}`);
  }

  /** One monitoring step (the poll timer calls it; tests may too). */
  tick(): void {
    if (this.stateValue === 'stopped') return;
    const h = this.host;
    for (const dev of [this.primary, this.secondary]) this.watchPort(dev);
    const now = h.scheduler.now();
    const act = h.iface(this.activeDev);
    switch (this.stateValue) {
      case 'active': {
        if (hasLink(act)) {
          const live = captureIdentity(h, this.activeDev);
          this.identity = { ...live, mode: this.link.mode, mtu: this.link.mtu };
          if (this.opts.failback === true && this.activeDev !== this.primary && h.iface(this.primary).portActive) this.moveTo(this.primary, 'failback', now);
          return;
        }
        this.event('link-lost', this.activeDev, `${this.activeDev}: link lost (${!act.portActive ? 'port down' : !act.adminUp ? 'interface down' : 'no carrier'})`);
        this.fallOver(now);
        return;
      }
      case 'taking-over': {
        if (act.carrier && act.adminUp) { this.complete(now); return; }
        if (!act.portActive || now - this.takeoverAt >= HA_CARRIER_TIMEOUT_MS) {
          this.event('link-lost', this.activeDev, `${this.activeDev}: no carrier ${now - this.takeoverAt} ms after the takeover`);
          this.fallOver(now);
        }
        return;
      }
      case 'no-link': {
        const dev = [this.activeDev, this.standby].find((d) => h.iface(d).portActive);
        if (dev !== undefined) this.moveTo(dev, 'failover', now);
        return;
      }
    }
  }

  private arm(): void {
    this.timer = this.host.scheduler.setTimer(this.pollMs, () => {
      this.timer = undefined;
      if (this.stateValue === 'stopped') return;
      try {
        this.tick();
      } catch (err) {
        this.event('problem', this.activeDev, `monitor step failed: ${(err as Error).message}`);
      }
      if (!this.stopped) this.arm();
    });
  }

  private fallOver(now: number): void {
    const to = this.standby;
    if (this.host.iface(to).portActive) {
      this.moveTo(to, 'failover', now);
    } else {
      this.stateValue = 'no-link';
      this.event('no-link', this.activeDev, `neither ${this.primary} nor ${this.secondary} has an active port; the identity stays on ${this.activeDev}`);
    }
  }

  /** Known issue 3: a port back from DOWN leaves its interface in datagram mode with MTU 2044. */
  private watchPort(dev: string): void {
    const v = this.host.iface(dev);
    if (!v.portActive) { this.portWasDown.set(dev, true); return; }
    if (this.portWasDown.get(dev) !== true) return;
    this.portWasDown.set(dev, false);
    if (v.mode === this.link.mode && v.mtu === this.link.mtu) return;
    const before = `${v.mode}/${v.mtu}`;
    const problems = applyLink(this.host, dev, this.link.mode, this.link.mtu);
    for (const m of problems) this.event('problem', dev, m);
    const after = this.host.iface(dev);
    this.event('hotplug-restored', dev, `${dev}: port back after a hotplug in ${before}; restored ${after.mode} mode, MTU ${after.mtu}`);
  }

  /** ipoib_ha.pl's migration: the identity off `from`, onto `to`, `to` up; completion waits for its carrier. */
  private moveTo(to: string, kind: 'failover' | 'failback', now: number): void {
    const h = this.host;
    const from = this.activeDev;
    const problems: string[] = [];
    if (from !== to) {
      problems.push(...stripIdentity(h, from, this.identity));
      try { h.linkSet(from, { up: false }); } catch (err) { problems.push((err as Error).message); }
    }
    problems.push(...applyLink(h, to, this.link.mode, this.link.mtu));
    try { h.linkSet(to, { up: true }); } catch (err) { problems.push((err as Error).message); }
    problems.push(...applyAddresses(h, to, this.identity));
    if (this.opts.withMulticast === true) {
      const joined = new Set(h.iface(to).multicastGroups().filter((g) => !g.sendOnly).map((g) => ipv4GroupOfMgid(g.mgid)));
      for (const g of this.identity.groups) {
        try {
          if (!joined.has(g)) h.joinGroup(to, g);
        } catch (err) {
          problems.push(`multicast ${g}: ${(err as Error).message}`);
        }
      }
    }
    for (const m of problems) this.event('problem', to, m);
    this.activeDev = to;
    this.stateValue = 'taking-over';
    this.takeoverAt = now;
    if (from !== to) {
      this.failoverCount++;
      this.last = { from, to, detectedAt: now, completedAt: null };
    }
    this.event(kind, to, `${kind} ${from} -> ${to}: ${this.identity.addresses.join(', ') || 'no address'}, ${this.link.mode} mode, MTU ${this.link.mtu}` +
      `${this.opts.withMulticast === true && this.identity.groups.length > 0 ? `, groups ${this.identity.groups.join(', ')}` : ''}`);
    for (const fn of this.moveListeners) fn(to);
    if (h.iface(to).carrier) this.complete(now);
  }

  private complete(now: number): void {
    const dev = this.activeDev;
    if (this.opts.withArping === true) {
      for (const a of this.identity.addresses) {
        const ip = a.split('/')[0] as string;
        try { this.host.sendUnsolicitedArpReply(dev, ip); } catch (err) { this.event('problem', dev, `arping ${ip}: ${(err as Error).message}`); }
      }
    }
    this.stateValue = 'active';
    if (this.last !== null && this.last.to === dev && this.last.completedAt === null) this.last.completedAt = now;
    this.event('takeover-complete', dev, `${dev} has carrier and holds ${this.identity.addresses.join(', ') || 'no address'}` +
      `${this.opts.withArping === true ? ' (unsolicited ARP reply sent)' : ''}`);
  }

  private event(kind: HaEventKind, dev: string, message: string): void {
    const e: HaEvent = { at: this.host.scheduler.now(), kind, dev, message };
    this.events.push(e);
    if (this.events.length > EVENTS_KEPT) this.events.shift();
    this.opts.onEvent?.(e);
  }
}

/** What `ipoib-ha --status` prints. */
export function formatHaStatus(s: HaStatus): string {
  const lf = s.lastFailover;
  return [
    `HA ${s.primary} -> ${s.secondary}: ${s.state} on ${s.active} (standby ${s.standby}); poll ${s.pollMs} ms` +
      `${s.withArping ? ', --with-arping' : ''}${s.withMulticast ? ', --with-multicast' : ''}${s.failback ? ', failback' : ''}`,
    `identity: ${s.identity.addresses.join(', ') || 'no address'}; ${s.identity.mode} mode, MTU ${s.identity.mtu}` +
      `${s.identity.routes.length > 0 ? `; routes ${s.identity.routes.map((r) => `${r.dst}${r.via !== undefined ? ` via ${r.via}` : ''}`).join(', ')}` : ''}` +
      `${s.identity.groups.length > 0 ? `; groups ${s.identity.groups.join(', ')}` : ''}`,
    `failovers: ${s.failovers}${lf !== null ? ` (last ${lf.from} -> ${lf.to} at ${lf.detectedAt} ms${lf.completedAt !== null ? `, carrier after ${lf.completedAt - lf.detectedAt} ms` : ', waiting for carrier'})` : ''}`,
  ].join('\n');
}
