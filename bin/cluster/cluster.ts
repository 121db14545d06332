// The emulated cluster every form of ipoib-cluster starts from: one in-process fabric with its
// subnet manager, in virtual time (VirtualScheduler: timers jump, so a 10,000-host boot takes as
// long as the work, not as long as its timeouts), and Hosts named node001, node002, ... whose
// GUIDs are derived from their names (link/fabric/guid.ts) and whose LIDs the SM assigns.
import { performance } from 'node:perf_hooks';
import { Fabric } from '../../link/fabric/fabric.js';
import type { Partition } from '../../link/fabric/partitions.js';
import { VirtualScheduler, seededRandom, type Random } from '../../link/fabric/scheduler.js';
import { InProcessTransport } from '../../link/fabric/transport.js';
import { formatGuid } from '../../link/wire/ib-address.js';
import { Host, type IpoibMode } from '../../link/ipoib/index.js';
import { TrafficCounter, diffCounts, fabricDeliveries, type TrafficCounts } from './traffic.js';

/** Virtual time a phase may take before the run is declared stuck (a run that ends early costs nothing). */
export const DEFAULT_PHASE_LIMIT_MS = 600_000;

export interface PhaseCost {
  name: string;
  /** Wall-clock milliseconds the phase took in this process. */
  wallMs: number;
  /** CPU milliseconds (user + system) this process spent in the phase (in-process runs): on shared cores, steadier than wall time. */
  cpuMs?: number;
  /** Virtual milliseconds that passed on the fabric. */
  virtualMs: number;
  /** Packets sent into the switch, by kind. */
  packets: TrafficCounts;
  /** Packets the switch handed to end ports (a multicast counts once per receiving port). */
  delivered: number;
  /** Of those, deliveries an early filter declined (counted, never copied). */
  notListened: number;
}

export interface NodeRow {
  name: string;
  portGuid: string;
  lid: number;
  hwAddress: string;
  mode: IpoibMode;
  mtu: number;
}

export class Cluster {
  readonly scheduler = new VirtualScheduler();
  readonly fabric: Fabric;
  readonly transport: InProcessTransport;
  readonly traffic: TrafficCounter;
  readonly random: Random;
  readonly phases: PhaseCost[] = [];
  private phaseStart: { name: string; wall: number; cpu: NodeJS.CpuUsage; virt: number; packets: TrafficCounts; delivered: number; notListened: number } | undefined;

  constructor(opts: { seed: number; dhcpPorts?: readonly number[]; partitions?: Partition[] | undefined }) {
    this.random = seededRandom(opts.seed);
    this.fabric = new Fabric({
      scheduler: this.scheduler, random: seededRandom(opts.seed + 1), ...(opts.partitions !== undefined ? { partitions: opts.partitions } : {}),
    });
    this.transport = new InProcessTransport(this.fabric);
    this.traffic = new TrafficCounter(this.fabric, new Set(opts.dhcpPorts ?? []));
  }

  /** Drives virtual time until `p` settles (at most limitMs of it). */
  run<T>(p: Promise<T>, limitMs = DEFAULT_PHASE_LIMIT_MS): Promise<T> {
    return this.scheduler.run(p, limitMs);
  }

  beginPhase(name: string): void {
    this.endPhase();
    const d = fabricDeliveries(this.fabric);
    this.phaseStart = {
      name, wall: performance.now(), cpu: process.cpuUsage(), virt: this.scheduler.now(), packets: this.traffic.snapshot(), delivered: d.delivered, notListened: d.notListened,
    };
  }

  endPhase(): void {
    const s = this.phaseStart;
    if (s === undefined) return;
    this.phaseStart = undefined;
    const d = fabricDeliveries(this.fabric);
    const cpu = process.cpuUsage(s.cpu);
    this.phases.push({
      name: s.name, wallMs: performance.now() - s.wall, cpuMs: (cpu.user + cpu.system) / 1000, virtualMs: this.scheduler.now() - s.virt,
      packets: diffCounts(this.traffic.snapshot(), s.packets), delivered: d.delivered - s.delivered, notListened: d.notListened - s.notListened,
    });
  }

  /**
   * Attaches one Host per name (ib0 down); the SM's sweep activates the ports. Done in batches so
   * the progress line moves while thousands of HCAs attach.
   */
  async createHosts(names: readonly string[], mode: IpoibMode, onProgress?: (done: number) => void): Promise<Host[]> {
    const hosts: Host[] = [];
    const BATCH = 256;
    for (let i = 0; i < names.length; i += BATCH) {
      const batch = names.slice(i, i + BATCH).map((name) => Host.create(this.transport, { name, scheduler: this.scheduler, mode }));
      hosts.push(...await this.run(Promise.all(batch)));
      onProgress?.(hosts.length);
    }
    return hosts;
  }

  /** ip link set ib0 up on every host, then waits for every carrier (port ACTIVE, broadcast group joined through the SA). */
  async bringUp(hosts: readonly Host[], onProgress?: (carriers: number) => void): Promise<void> {
    let carriers = 0;
    const waits = hosts.map((h) => {
      h.linkSet('ib0', { up: true });
      return h.iface('ib0').waitCarrier().then(() => { carriers++; onProgress?.(carriers); });
    });
    await this.run(Promise.all(waits));
  }

  close(hosts: readonly Host[]): void {
    this.endPhase();
    this.traffic.close();
    for (const h of hosts) h.close();
  }
}

/** node001, node002, ...: at least three digits, more when N needs them. */
export function nodeNames(n: number, prefix = 'node'): string[] {
  const width = Math.max(3, String(n).length);
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(width, '0')}`);
}

export function nodeRow(h: Host): NodeRow {
  const i = h.iface('ib0');
  const port = h.device.queryPort(i.portNum);
  return { name: h.name, portGuid: formatGuid(port.portGuid), lid: port.lid, hwAddress: i.hwAddressText, mode: i.mode, mtu: i.mtu };
}

/** The first IPv4 address (dotted) on ib0, or undefined. */
export function ib0Address(h: Host): string | undefined {
  return h.addrShow('ib0')[0]?.address;
}
