// The client daemon's ports (client/daemon.ts: Clock, ArpOps, InterfaceConfigurator) implemented on
// an emulated Host, with only the Host's public, `ip`-like API:
// - Clock: the cluster's virtual time placed at the run's wall-clock start (leases use epoch ms).
// - ArpOps.probe (RFC 5227 §2.1.1): while ib0 has no address, a /32 device route to the candidate
//   and one ping make the Host's neighbour table do the probing: it broadcasts "who-has X tell
//   0.0.0.0" (inet_select_addr() finds no source address) every retrans_time (1 s), mcast_solicit
//   (3) times, and gives up: that is PROBE_NUM 3 about PROBE_MIN..PROBE_MAX apart. A holder of X
//   answers a probe (net/ipv4/arp.c answers sender 0.0.0.0 too), which resolves the entry: conflict.
//   The probe timing is therefore the neighbour table's, not ProbeConfig's (only waitMs is used).
//   The Host has no probe primitive of its own; this is glue until link/ipoib grows one.
// - ArpOps.announce: Host.sendGratuitousArp (arping -U).
// - InterfaceConfigurator: ip addr add / del, ip link set mtu, default routes from the lease.
// hostClient() wires them to a ClientDaemon on a host's ib0: the in-process cluster (dhcp.ts, virtual
// clock) and each host group of the multi-process form (host-group.ts, wall clock) build hosts the same way.
import { ClientDaemon, type ArpOps, type Clock, type InterfaceConfigurator, type LeaseChange } from '../../client/daemon.js';
import type { ProbeConfig } from '../../client/actions.js';
import type { ClientLease } from '../../client/lease.js';
import type { ClientConfig, RandomSource } from '../../client/config.js';
import type { Random, Scheduler } from '../../link/fabric/scheduler.js';
import type { Host, IpoibMode } from '../../link/ipoib/index.js';
import { ipv4ToString } from '../../protocol/index.js';

export function virtualClock(s: Scheduler, epochMs: number): Clock {
  const now = (): number => epochMs + s.now();
  return {
    now,
    setTimer(at, fn) {
      const t = s.setTimer(Math.max(0, at - now()), fn);
      return () => t.cancel();
    },
  };
}

export function randomSource(r: Random): RandomSource {
  return { float: () => r.next(), u32: () => Math.floor(r.next() * 0x1_0000_0000) >>> 0 };
}

/** States of a neighbour entry that mean "someone answered for this address". */
const RESOLVED = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT']);

/** Virtual ms a probe may last: 3 solicitations 1 s apart, then the FAILED report, with margin. */
const PROBE_LIMIT_MS = 5_000;

export class HostArpOps implements ArpOps {
  /** Probes run and conflicts found, for the report. */
  probes = 0;
  conflicts = 0;

  constructor(private readonly host: Host, private readonly random: Random) {}

  async probe(iface: string, address: number, probe: ProbeConfig): Promise<boolean> {
    const h = this.host;
    const text = ipv4ToString(address);
    if (h.addrShow(iface).length > 0) throw new Error(`${iface} already has an address: a probe would not come from 0.0.0.0`);
    await new Promise<void>((resolve) => { h.scheduler.setTimer(this.random.next() * probe.waitMs, resolve); });
    this.probes++;
    h.routeAdd(`${text}/32`, { dev: iface });
    try {
      await h.ping(text, { count: 1, interface: iface, timeoutMs: PROBE_LIMIT_MS });
      const row = h.neighShow(iface).find((n) => n.ip === text);
      const conflict = row !== undefined && row.lladdr !== undefined && RESOLVED.has(row.state);
      if (conflict) this.conflicts++;
      return conflict;
    } finally {
      h.routeDel(`${text}/32`);
      h.neighFlush(iface);
    }
  }

  announce(iface: string, address: number): Promise<void> {
    this.host.sendGratuitousArp(iface, ipv4ToString(address));
    return Promise.resolve();
  }
}

export class HostConfigurator implements InterfaceConfigurator {
  /** When each apply with reason BOUND happened (clock ms), for time-to-bound. */
  boundAt: number | undefined;
  address: number | undefined;

  constructor(private readonly host: Host, private readonly clock: Clock, private readonly onBound?: () => void) {}

  prepare(iface: string): Promise<void> {
    // ib0 is already up with carrier: 255.255.255.255 from 0.0.0.0 needs nothing more on the Host.
    this.host.iface(iface);
    return Promise.resolve();
  }

  apply(iface: string, change: LeaseChange): Promise<void> {
    const h = this.host;
    const { lease, previous } = change;
    if (previous !== null && previous.address !== lease.address) this.remove(iface, previous);
    if (!h.addrShow(iface).some((a) => a.address === ipv4ToString(lease.address))) {
      h.addrAdd(iface, `${ipv4ToString(lease.address)}/${lease.prefixLength}`);
    }
    if (change.mtu.apply) h.linkSet(iface, { mtu: change.mtu.mtu });
    for (const r of lease.routes) {
      const dst = r.prefixLength === 0 ? 'default' : `${ipv4ToString(r.destination)}/${r.prefixLength}`;
      try {
        h.routeAdd(dst, { via: ipv4ToString(r.router) });
      } catch {
        // An existing route (a RENEW re-applies the lease) stays as it is.
      }
    }
    if (this.address === undefined) {
      this.address = lease.address;
      this.boundAt = this.clock.now();
      this.onBound?.();
    }
    return Promise.resolve();
  }

  deconfigure(iface: string, lease: ClientLease): Promise<void> {
    this.remove(iface, lease);
    this.address = undefined;
    return Promise.resolve();
  }

  private remove(iface: string, lease: ClientLease): void {
    try {
      this.host.addrDel(iface, `${ipv4ToString(lease.address)}/${lease.prefixLength}`);
    } catch {
      // Already gone.
    }
  }
}

export interface HostClient {
  host: Host;
  daemon: ClientDaemon;
  configurator: HostConfigurator;
  arp: HostArpOps;
  /** Clock ms when the client was built (time-to-bound counts from here). */
  startedAt: number;
}

export interface HostClientOptions {
  mode: IpoibMode;
  /** The server's port P; the client binds P + 1. */
  serverPort: number;
  clock: Clock;
  random: RandomSource;
  /** Draws the ARP probe's initial wait. */
  arpRandom: Random;
  onBound?: () => void;
  /** Timing and the like on top of what hostClient() sets (interface, GUID, host name, link). */
  config?: Partial<ClientConfig>;
}

/** A ClientDaemon for `host`'s ib0 (not started): UDP P + 1 with broadcast, the Host's ARP and addresses. */
export function hostClient(host: Host, o: HostClientOptions): HostClient {
  const endpoint = host.udpSocket({ interface: 'ib0' }).bind('0.0.0.0', o.serverPort + 1);
  endpoint.setBroadcast(true);
  const configurator = new HostConfigurator(host, o.clock, o.onBound);
  const arp = new HostArpOps(host, o.arpRandom);
  const portGuid = host.device.queryPort(1).portGuid;
  const daemon = new ClientDaemon({
    interfaces: [{
      config: {
        ...o.config,
        interface: 'ib0', portGuid, hostName: host.name, link: { mode: o.mode, datagramMtu: host.iface('ib0').mcastMtu },
      },
      endpoint, serverPort: o.serverPort, arp, configurator,
    }],
    clock: o.clock, random: o.random, leaseFile: null, hookScript: null,
  });
  return { host, daemon, configurator, arp, startedAt: o.clock.now() };
}
