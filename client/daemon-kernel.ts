// The client daemon's ports on the kernel transport: an InterfaceConfigurator that runs iproute2
// `ip` (address, routes, MTU; and, before the first DISCOVER, the 255.255.255.255 route without
// which a kernel UDP socket cannot broadcast from 0.0.0.0 — see link/kernel/kernel-udp.ts), and
// ArpOps through iputils arping when it is installed (node itself has no access to ARP).

import { Arping, haveIputilsArping } from '../link/kernel/arping.js';
import { IpCommand } from '../link/kernel/ip-command.js';
import { ipv4ToString } from '../protocol/index.js';
import type { ProbeConfig } from './actions.js';
import type { ArpOps, InterfaceConfigurator, LeaseChange } from './daemon.js';
import type { ClientLease } from './lease.js';

export class KernelIpConfigurator implements InterfaceConfigurator {
  constructor(readonly ip: IpCommand = new IpCommand()) {}

  async prepare(iface: string): Promise<void> {
    await this.ip.linkUp(iface);
    await this.ip.replaceRoute(iface, '255.255.255.255', 32, null);
  }

  async apply(iface: string, change: LeaseChange): Promise<void> {
    const { lease, previous } = change;
    if (previous !== null && previous.address !== lease.address) {
      await this.ip.delAddress(iface, ipv4ToString(previous.address), previous.prefixLength).catch(() => undefined);
    }
    await this.ip.addAddress(iface, ipv4ToString(lease.address), lease.prefixLength, ipv4ToString(lease.broadcastAddress));
    if (change.mtu.apply) await this.ip.setMtu(iface, change.mtu.mtu);
    for (const r of lease.routes) {
      await this.ip.replaceRoute(iface, ipv4ToString(r.destination), r.prefixLength, r.router === 0 ? null : ipv4ToString(r.router));
    }
  }

  /** Removing the address also removes the routes through it (the kernel flushes them). */
  async deconfigure(iface: string, lease: ClientLease): Promise<void> {
    await this.ip.delAddress(iface, ipv4ToString(lease.address), lease.prefixLength);
  }
}

/** RFC 5227 timing mapped onto arping -D: `count` probes, waiting for the whole probe window. */
export class ArpingArpOps implements ArpOps {
  constructor(readonly arping: Arping = new Arping()) {}

  probe(iface: string, address: number, probe: ProbeConfig): Promise<boolean> {
    const windowMs = probe.waitMs + Math.max(0, probe.count - 1) * probe.maxIntervalMs + probe.announceWaitMs;
    return this.arping.probe(iface, ipv4ToString(address), probe.count, Math.max(1, Math.ceil(windowMs / 1000)));
  }

  announce(iface: string, address: number): Promise<void> {
    return this.arping.announce(iface, ipv4ToString(address));
  }
}

/** ArpOps for the kernel transport: arping when iputils arping is on PATH, else null (probe skipped). */
export async function kernelArpOps(binary = 'arping'): Promise<ArpOps | null> {
  return await haveIputilsArping(binary) ? new ArpingArpOps(new Arping({ binary })) : null;
}
