// ipoib-cluster --addressing static (issue 4's first form): N hosts, ib0 of host k (1-based) at
// 10.0.0.0 + k in one /16, brought up in the chosen mode, carrier awaited (broadcast group joined
// through the SA), then pinged: a ring by default, every pair with --ping-all (a sample of peers per
// host beyond ALL_PAIRS_LIMIT hosts).
import { formatIpv4 } from '../../link/wire/ipv4.js';
import type { Host, IpoibMode } from '../../link/ipoib/index.js';
import { Cluster, ib0Address, nodeNames, nodeRow } from './cluster.js';
import type { Progress } from './progress.js';
import { ALL_PAIRS_LIMIT, allPairs, ring, runPings, samplePeers, type Peer, type PingTarget } from './reach.js';
import { totals, type ClusterReport } from './report.js';
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
  const epochMs = Date.now();
  const cluster = new Cluster({ seed: o.seed });
  const capture = startCapture(cluster.fabric, { ipoib: o.pcap, raw: o.pcapRaw }, epochMs);
  const names = nodeNames(o.nodes);
  let hosts: Host[] = [];
  try {
    cluster.beginPhase('attach');
    let attached = 0;
    o.progress.start(() => `attaching HCAs: ${attached}/${o.nodes}`);
    hosts = await cluster.createHosts(names, o.mode, (n) => { attached = n; });
    hosts.forEach((h, i) => h.addrAdd('ib0', `${formatIpv4(STATIC_NETWORK + i + 1)}/${STATIC_PREFIX}`));
    cluster.beginPhase('bring-up (SA joins)');
    let carriers = 0;
    o.progress.start(() => `ib0 up: carrier on ${carriers}/${o.nodes}`);
    await cluster.bringUp(hosts, (n) => { carriers = n; });
    o.progress.stop(`${o.nodes} hosts up with carrier`);

    const peers: Peer[] = hosts.map((h) => ({ host: h, address: ib0Address(h)! }));
    let plan: PingTarget[];
    let planName: string;
    if (!o.pingAll) {
      plan = ring(peers);
      planName = 'ring (each host to the next)';
    } else if (o.nodes <= ALL_PAIRS_LIMIT) {
      plan = allPairs(peers);
      planName = 'every pair';
    } else {
      plan = samplePeers(peers, o.pingSample, cluster.random);
      planName = `every host to ${Math.min(o.pingSample, o.nodes - 1)} random peers`;
    }
    cluster.beginPhase('ping');
    let pinged = 0;
    o.progress.start(() => `ping ${planName}: ${pinged}/${plan.length}`);
    const reach = await runPings(cluster, planName, plan, (n) => { pinged = n; });
    o.progress.stop();
    cluster.endPhase();

    const problems: string[] = [];
    const noCarrier = hosts.filter((h) => !h.iface('ib0').carrier);
    if (noCarrier.length > 0) problems.push(`${noCarrier.length} host(s) without carrier, first ${noCarrier[0]!.name}`);
    for (const f of reach.failed) problems.push(`${f.from} cannot reach ${f.toName} (${f.to}): ${f.error}`);
    const report: ClusterReport = {
      addressing: 'static', mode: o.mode,
      nodes: hosts.map((h) => ({ ...nodeRow(h), address: ib0Address(h) ?? null })),
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
