// ipoib-cluster --addressing static (issue 4's first form): N hosts, ib0 of host k (1-based) at
// 10.0.0.0 + k in one /16, brought up in the chosen mode, carrier awaited (broadcast group joined
// through the SA), then pinged: a ring by default, every pair with --ping-all (a sample of peers per
// host beyond ALL_PAIRS_LIMIT hosts).
import { formatIpv4 } from '../../link/wire/ipv4.js';
import type { Host, IpoibMode } from '../../link/ipoib/index.js';
import { Cluster, ib0Address, nodeNames, nodeRow } from './cluster.js';
import type { Progress } from './progress.js';
import {
  ALL_PAIRS_LIMIT, PING_ATTEMPTS_WITH_FAULTS, allPairs, ring, runIsolation, runPings, samplePeers, type IsolationResult, type Peer, type PingTarget,
} from './reach.js';
import { faultCounts, totals, type ClusterReport } from './report.js';
import { faultConfig } from './faults.js';
import { partitionNetwork, partitionOfHost, partitionsConf } from './partitions.js';
import { parsePartitions } from '../../link/fabric/partitions.js';
import { CliError } from '../cli.js';
import { startCapture } from './capture.js';
import type { ClusterFaults } from './faults.js';

export const STATIC_NETWORK = 0x0a000000;
export const STATIC_PREFIX = 16;
/** 10.0.0.1 .. 10.0.253.232: a /16 less its network and broadcast addresses, with room to spare. */
export const MAX_STATIC_NODES = 65_000;

export interface StaticOptions {
  nodes: number;
  mode: IpoibMode;
  pingAll: boolean;
  pingSample: number;
  seed: number;
  pcap?: string | undefined;
  pcapRaw?: string | undefined;
  progress: Progress;
  /** Hosts spread over this many partitions (default 1: the default partition only). */
  partitions?: number;
  /** Fabric-wide faults (--loss, --dup, --reorder, --delay). */
  faults?: ClusterFaults | undefined;
}

export async function runStatic(o: StaticOptions): Promise<ClusterReport> {
  const P = o.partitions ?? 1;
  if (P > o.nodes) throw new CliError(`--partitions ${P} needs at least ${P} hosts (--nodes ${o.nodes})`);
  const epochMs = Date.now();
  const names = nodeNames(o.nodes);
  const conf = P > 1 ? partitionsConf(names, [], P) : undefined;
  const cluster = new Cluster({ seed: o.seed, partitions: conf === undefined ? undefined : parsePartitions(conf, 'ipoib-cluster partitions.conf') });
  const capture = startCapture(cluster.fabric, { ipoib: o.pcap, raw: o.pcapRaw }, epochMs);
  let hosts: Host[] = [];
  try {
    cluster.beginPhase('attach');
    let attached = 0;
    o.progress.start(() => `attaching HCAs: ${attached}/${o.nodes}`);
    hosts = await cluster.createHosts(names, o.mode, (n) => { attached = n; });
    // Host k at 10.0.0.k; with partitions, the j-th host of partition p at 10.p.0.j.
    hosts.forEach((h, i) => h.addrAdd('ib0', `${formatIpv4(P > 1 ? partitionNetwork(partitionOfHost(i, P)) + Math.floor(i / P) + 1 : STATIC_NETWORK + i + 1)}/${STATIC_PREFIX}`));
    // Faults from the bring-up on, as in the DHCP form (dhcp.ts).
    const injector = o.faults === undefined ? undefined : cluster.fabric.setFaults(faultConfig(o.faults));
    cluster.beginPhase('bring-up (SA joins)');
    let carriers = 0;
    o.progress.start(() => `ib0 up: carrier on ${carriers}/${o.nodes}`);
    await cluster.bringUp(hosts, (n) => { carriers = n; });
    o.progress.stop(`${o.nodes} hosts up with carrier`);

    // Pings stay inside a partition (the whole cluster is one without --partitions).
    const groups = Array.from({ length: P }, () => [] as Peer[]);
    hosts.forEach((h, i) => groups[partitionOfHost(i, P) - 1]!.push({ host: h, address: ib0Address(h)! }));
    const within = P > 1 ? ' within each partition' : '';
    let plan: PingTarget[];
    let planName: string;
    if (!o.pingAll) {
      plan = groups.flatMap((g) => ring(g));
      planName = `ring (each host to the next${within})`;
    } else if (o.nodes <= ALL_PAIRS_LIMIT) {
      plan = groups.flatMap((g) => allPairs(g));
      planName = `every pair${within}`;
    } else {
      plan = groups.flatMap((g) => samplePeers(g, o.pingSample, cluster.random));
      planName = `every host to ${Math.min(o.pingSample, o.nodes - 1)} random peers${within}`;
    }
    const attempts = o.faults === undefined ? 1 : PING_ATTEMPTS_WITH_FAULTS;
    cluster.beginPhase('ping');
    let pinged = 0;
    o.progress.start(() => `ping ${planName}: ${pinged}/${plan.length}`);
    const reach = await runPings(cluster, planName, plan, (n) => { pinged = n; }, attempts);
    o.progress.stop();
    let isolation: IsolationResult | undefined;
    if (P > 1) {
      const cross = groups.map((g, k) => ({ from: g[0]!.host, to: groups[(k + 1) % P]![0]!.address, toName: groups[(k + 1) % P]![0]!.host.name }));
      isolation = await runIsolation(cluster, cross, attempts);
    }
    cluster.endPhase();

    const problems: string[] = [];
    const noCarrier = hosts.filter((h) => !h.iface('ib0').carrier);
    if (noCarrier.length > 0) problems.push(`${noCarrier.length} host(s) without carrier, first ${noCarrier[0]!.name}`);
    for (const f of reach.failed) problems.push(`${f.from} cannot reach ${f.toName} (${f.to}): ${f.error}`);
    for (const f of isolation?.leaked ?? []) problems.push(`${f.from} reached ${f.toName} (${f.to}) in another partition`);
    const report: ClusterReport = {
      addressing: 'static', mode: o.mode,
      nodes: hosts.map((h) => ({
        ...nodeRow(h), address: ib0Address(h) ?? null, ...(P > 1 ? { pkey: `0x${h.iface('ib0').pkey.toString(16).padStart(4, '0')}` } : {}),
      })),
      ...(conf !== undefined ? { partitions: { count: P, conf } } : {}),
      ...(isolation !== undefined ? { isolation } : {}),
      ...(o.faults !== undefined && injector !== undefined ? { faults: { ...o.faults, ...faultCounts(injector.stats) } } : {}),
      reach: [reach], phases: cluster.phases, totals: totals(cluster.phases), problems, ok: problems.length === 0,
    };
    if (capture !== undefined) {
      await capture.close();
      report.capture = { ...(o.pcap ? { ipoib: o.pcap } : {}), ...(o.pcapRaw ? { raw: o.pcapRaw } : {}), ...capture.stats() };
    }
    return report;
  } finally {
    o.progress.stop();
    cluster.close(hosts);
    await capture?.close().catch(() => undefined);
  }
}
