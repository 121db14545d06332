// Proof that addresses work: ICMP echo (Host.ping, one probe each) along a plan of (source host,
// destination address) pairs, all in flight at once in virtual time. Plans: every unordered pair
// (each ping exercises both directions: ARP both ways, request and reply), or for large clusters
// every host to a few random peers, or a ring.
import type { Random } from '../../link/fabric/scheduler.js';
import type { Host } from '../../link/ipoib/index.js';
import type { Cluster } from './cluster.js';

export interface PingTarget {
  from: Host;
  to: string;
  /** Who `to` is, for the report (a host name, or "server"). */
  toName: string;
}

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

export interface Peer {
  host: Host;
  address: string;
}

export function allPairs(peers: readonly Peer[]): PingTarget[] {
  const out: PingTarget[] = [];
  for (let i = 0; i < peers.length; i++) {
    for (let j = i + 1; j < peers.length; j++) out.push({ from: peers[i]!.host, to: peers[j]!.address, toName: peers[j]!.host.name });
  }
  return out;
}

/** Every host pings `k` distinct peers drawn with the seeded Random. */
export function samplePeers(peers: readonly Peer[], k: number, rnd: Random): PingTarget[] {
  const n = peers.length;
  const want = Math.min(k, n - 1);
  const out: PingTarget[] = [];
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

/** Runs the plan's pings, started across pingWindowMs(); a ping fails on no reply within PING_TIMEOUT_MS or an ICMP error. */
export async function runPings(cluster: Cluster, plan: string, targets: readonly PingTarget[], onProgress?: (done: number) => void): Promise<ReachResult> {
  const failed: PingFailure[] = [];
  let ok = 0;
  let done = 0;
  const window = pingWindowMs(targets.length);
  const all = targets.map(async (t) => {
    await new Promise<void>((resolve) => { cluster.scheduler.setTimer(cluster.random.next() * window, resolve); });
    let error: string | undefined;
    try {
      const r = await t.from.ping(t.to, { count: 1, interface: 'ib0' });
      if (r.received !== 1) error = r.errors[0]?.message ?? 'no reply';
    } catch (err) {
      error = (err as Error).message;
    }
    if (error === undefined) ok++;
    else failed.push({ from: t.from.name, to: t.to, toName: t.toName, error });
    done++;
    onProgress?.(done);
  });
  await cluster.run(Promise.all(all));
  return { plan, attempted: targets.length, ok, failed };
}
