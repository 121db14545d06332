// Where the DHCP servers of a cluster run sit and what they serve, for --servers K and --partitions P:
// servers dhcpd1..dhcpdK (just "dhcpd" when K = 1) at .1...K of every subnet; one subnet per
// partition (10.k.0.0/16 on the servers' child interface ib0.800k), or 10.0.0.0/16 on ib0 without
// partitions; in each subnet a pool from .10 (above the servers) of ceil(M / P) addresses for
// --pool-size M. Every server runs the same configuration (same subnets, same pools): with a shared
// PostgreSQL lease database they hand out one address space together.
import type { IpoibMode } from '../../link/ipoib/index.js';
import { ipv4ToString } from '../../protocol/index.js';
import { partitionInterface, partitionNetwork, partitionPkey } from './partitions.js';

/** Offset of the first pool address in a subnet when fewer than 10 servers sit below it. */
export const POOL_OFFSET = 10;
/** Addresses of a /16 a pool may use above its offset (less the broadcast address, with room to spare). */
export const SUBNET_POOL_ROOM = 65_000;

export interface ClusterSubnet {
  /** Subnet id in the configuration, and the partition number (1..P); 1 without partitions. */
  id: number;
  network: number;
  /** The servers' interface on this subnet: ib0, or ib0.800k. */
  iface: string;
  /** The partition's P_Key with --partitions above 1. */
  pkey: number | undefined;
  poolFirst: number;
  poolLast: number;
}

export interface ServerLayout {
  partitions: number;
  servers: number;
  serverNames: string[];
  subnets: ClusterSubnet[];
}

export function serverNamesFor(servers: number): string[] {
  return servers === 1 ? ['dhcpd'] : Array.from({ length: servers }, (_, j) => `dhcpd${j + 1}`);
}

export function serverLayout(o: { partitions: number; servers: number; poolSize: number }): ServerLayout {
  const offset = Math.max(POOL_OFFSET, o.servers + 1);
  const perPool = Math.ceil(o.poolSize / o.partitions);
  const subnets: ClusterSubnet[] = [];
  for (let k = 1; k <= o.partitions; k++) {
    const partitioned = o.partitions > 1;
    const network = partitionNetwork(partitioned ? k : 0);
    subnets.push({
      id: k, network, iface: partitioned ? partitionInterface(k) : 'ib0', pkey: partitioned ? partitionPkey(k) : undefined,
      poolFirst: network + offset, poolLast: network + offset + perPool - 1,
    });
  }
  return { partitions: o.partitions, servers: o.servers, serverNames: serverNamesFor(o.servers), subnets };
}

/** Address of server j (0-based) in a subnet. */
export function serverAddressIn(subnet: ClusterSubnet, j: number): number {
  return subnet.network + j + 1;
}

/** Pool size per subnet that fits a /16 (the check behind --pool-size). */
export function poolFits(layout: ServerLayout): boolean {
  const s = layout.subnets[0]!;
  return s.poolLast - s.network < SUBNET_POOL_ROOM + POOL_OFFSET;
}

/** The kea-dhcp4.conf (as JSON) every server of the layout runs with. */
export function layoutConfigJson(layout: ServerLayout, mode: IpoibMode, leaseFile: string, leaseTime: number): { Dhcp4: Record<string, unknown> } {
  return {
    Dhcp4: {
      'interfaces-config': { interfaces: layout.subnets.map((s) => s.iface) },
      'lease-database': { type: 'sqlite', name: leaseFile },
      'valid-lifetime': leaseTime,
      ipoib: { 'link-unicast-replies': true },
      subnet4: layout.subnets.map((s) => ({
        id: s.id, subnet: `${ipv4ToString(s.network)}/16`, interface: s.iface,
        pools: [{ pool: `${ipv4ToString(s.poolFirst)} - ${ipv4ToString(s.poolLast)}` }],
        'option-data': [{ name: 'interface-mtu', data: mode === 'connected' ? '65520' : '2044' }],
      })),
    },
  };
}
