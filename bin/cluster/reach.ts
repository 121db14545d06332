// Proof that addresses work: ICMP echo (Host.ping, one probe each) along a plan of (source host,
// destination address) pairs, all in flight at once in virtual time. Plans: every unordered pair
// (each ping exercises both directions: ARP both ways, request and reply), or for large clusters
// every host to a few random peers, or a ring. The plans are generic over what a host is, so the
// multi-process form (processes.ts) plans by host name and each host group runs its share
// (pingTargets() on the group's real-time scheduler).
import type { Random, Scheduler } from '../../link/fabric/scheduler.js';
import type { Host } from '../../link/ipoib/index.js';
import type { Cluster } from './cluster.js';

export interface PingTargetOf<H> {
  from: H;
  to: string;
  /** Who `to` is, for the report (a host name, or "server"). */
  toName: string;
}

export type PingTarget = PingTargetOf<Host>;

export interface PingFailure {
  from: string;
  to: string;
  toName: string;
  error: string;
}

export interface ReachResult {
  plan: string;
  attempted: number;
  ok: number;
  failed: PingFailure[];
}

/** Above this many hosts, --ping-all samples peers instead of pinging every pair (n(n-1)/2 pings). */
export const ALL_PAIRS_LIMIT = 64;

export interface PeerOf<H> {
  host: H;
  address: string;
}

export type Peer = PeerOf<Host>;

export function allPairs<H extends { name: string }>(peers: readonly PeerOf<H>[]): PingTargetOf<H>[] {
  const out: PingTargetOf<H>[] = [];
  for (let i = 0; i < peers.length; i++) {
    for (let j = i + 1; j < peers.length; j++) out.push({ from: peers[i]!.host, to: peers[j]!.address, toName: peers[j]!.host.name });
  }
  return out;
}

/** Every host pings `k` distinct peers drawn with the seeded Random. */
export function samplePeers<H extends { name: string }>(peers: readonly PeerOf<H>[], k: number, rnd: Random): PingTargetOf<H>[] {
  const n = peers.length;
  const want = Math.min(k, n - 1);
  const out: PingTargetOf<H>[] = [];
  for (let i = 0; i < n; i++) {
    const seen = new Set<number>([i]);
    while (seen.size < want + 1) {
      const j = Math.floor(rnd.next() * n);
      if (seen.has(j)) continue;
      seen.add(j);
      out.push({ from: peers[i]!.host, to: peers[j]!.address, toName: peers[j]!.host.name });
    }
  }
  return out;
}

/**
 * The DHCP forms' reachability plan: every host pings a server (toServer), then peers of its own
 * partition (peerGroups): every pair with pingAll up to ALL_PAIRS_LIMIT hosts, else pingSample
 * random peers with pingAll, else one. `name` says which, for the report.
 */
export function serverAndPeersPlan<H extends { name: string }>(toServer: PingTargetOf<H>[], peerGroups: readonly (readonly PeerOf<H>[])[],
  o: { pingAll: boolean; pingSample: number }, servers: number, partitions: number, rnd: Random): { plan: PingTargetOf<H>[]; name: string } {
  const peerCount = peerGroups.reduce((n, g) => n + g.length, 0);
  const who = servers === 1 ? 'the server' : 'a server';
  if (o.pingAll && peerCount <= ALL_PAIRS_LIMIT) {
    return { plan: [...toServer, ...peerGroups.flatMap((g) => allPairs(g))], name: `${who} and every pair${partitions > 1 ? ' within a partition' : ''}` };
  }
  const k = o.pingAll ? o.pingSample : 1;
  return {
    plan: [...toServer, ...peerGroups.flatMap((g) => samplePeers(g, k, rnd))],
    name: `${who} and ${k === 1 ? 'a random peer' : `${k} random peers`}${partitions > 1 ? ' of its partition' : ''} from every host`,
  };
}

export function ring(peers: readonly Peer[]): PingTarget[] {
  if (peers.length < 2) return [];
  return peers.map((p, i) => {
    const next = peers[(i + 1) % peers.length]!;
    return { from: p.host, to: next.address, toName: next.host.name };
  });
}

/**
 * Virtual time over which the pings of a plan start: each at a random moment in it. Hosts that all
 * ARP for the same server in the same instant would overflow its receive ring (256 posted receives,
 * IPOIB_RX_RING_SIZE) and lose requests, as a real HCA would; real hosts are never that synchronous.
 */
export function pingWindowMs(pings: number): number {
  return Math.max(1000, pings / 4);
}

/**
 * Attempts per ping when the fabric has faults: a lost echo or ARP reply is retried (fping -r), as
 * an operator would before calling a host unreachable. At 20 % loss on each of request and reply an
 * attempt fails about 0.4 of the time (ARP included); 15 attempts leave about 1e-6 of pings failing
 * by chance, so a run of thousands of pings does not fail for want of patience.
 */
export const PING_ATTEMPTS_WITH_FAULTS = 15;

/**
 * Runs the plan's pings, started across pingWindowMs(); a ping fails on no reply within
 * PING_TIMEOUT_MS or an ICMP error, `attempts` times in a row.
 */
export async function runPings(cluster: Cluster, plan: string, targets: readonly PingTarget[], onProgress?: (done: number) => void,
  attempts = 1): Promise<ReachResult> {
  return cluster.run(pingTargets(cluster.scheduler, cluster.random, plan, targets, onProgress, attempts));
}

/**
 * runPings() on any scheduler: the host groups of the multi-process form (host-group.ts) run their
 * share of a plan in real time, with a shorter per-ping timeout so a lost echo is retried soon, and
 * with the whole plan's window (pingWindowMs(plan size)), so the cluster's ping rate does not grow
 * with the number of groups.
 */
export async function pingTargets(scheduler: Scheduler, random: Random, plan: string, targets: readonly PingTarget[],
  onProgress: ((done: number) => void) | undefined, attempts: number, timeoutMs?: number,
  window = pingWindowMs(targets.length)): Promise<ReachResult> {
  const failed: PingFailure[] = [];
  let ok = 0;
  let done = 0;
  const all = targets.map(async (t) => {
    await new Promise<void>((resolve) => { scheduler.setTimer(random.next() * window, resolve); });
    const error = await pingRetried(t, attempts, 'ib0', timeoutMs);
    if (error === undefined) ok++;
    else failed.push({ from: t.from.name, to: t.to, toName: t.toName, error });
    done++;
    onProgress?.(done);
  });
  await Promise.all(all);
  return { plan, attempted: targets.length, ok, failed };
}

/** undefined when one of `attempts` pings was answered, else the last error. */
async function pingRetried(t: PingTarget, attempts: number, iface = 'ib0', timeoutMs?: number): Promise<string | undefined> {
  let error: string | undefined;
  for (let a = 0; a < attempts; a++) {
    try {
      const r = await t.from.ping(t.to, { count: 1, interface: iface, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
      if (r.received === 1) return undefined;
      error = r.errors[0]?.message ?? 'no reply';
    } catch (err) {
      error = (err as Error).message;
    }
  }
  return error;
}

/** Pings across a partition boundary, each expected to go unanswered. */
export interface IsolationResult {
  plan: string;
  attempted: number;
  /** Pings that got no reply, as they should. */
  blocked: number;
  /** Pings that were answered: a partition leak. */
  leaked: { from: string; to: string; toName: string }[];
}

/**
 * Each target is pinged from a host in another partition, with a /32 route on the source's ib0 so
 * IP considers the destination on-link (as a flat 10.0.0.0/8 plan would): only the partition can
 * stop it. The ARP request goes to the source partition's broadcast group, which the destination
 * has not joined (its port's P_Key table lacks that P_Key), so the neighbour entry fails.
 */
export async function runIsolation(cluster: Cluster, targets: readonly PingTarget[], attempts = 1): Promise<IsolationResult> {
  const leaked: IsolationResult['leaked'] = [];
  let blocked = 0;
  const all = targets.map(async (t) => {
    const route = `${t.to}/32`;
    t.from.routeAdd(route, { dev: 'ib0' });
    try {
      if (await pingRetried(t, attempts) === undefined) leaked.push({ from: t.from.name, to: t.to, toName: t.toName });
      else blocked++;
    } finally {
      t.from.routeDel(route);
    }
  });
  await cluster.run(Promise.all(all));
  return { plan: 'one host of each partition to a host of the next partition (expected unanswered)', attempted: targets.length, blocked, leaked };
}
