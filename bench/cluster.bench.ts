// The boot storm (issue 9): ipoib-cluster's DHCP form in one process — fabric, SM, one server with a
// SQLite lease file, N hosts addressed by the DHCP client at once, then every host pinging the server
// and a peer — at 1,000 and 2,000 hosts (5,000 and 10,000 with BENCH_CLUSTER_BIG=1). Reported: the
// whole run's wall time, hosts bound per second, packets sent into the fabric and deliveries out of
// it, the server's DORA/s, and the ratio of each size's time to the first size's, beside the size
// ratio, so growth (linear or worse) is visible. A run that does not bind every host throws.
import { performance } from 'node:perf_hooks';
import type { BenchResult } from './harness.js';
import { runDhcp } from '../bin/cluster/dhcp.js';
import { Progress } from '../bin/cluster/progress.js';

interface Size {
  nodes: number;
  wallMs: number;
  dhcpMs: number;
  packets: number;
  delivered: number;
  dora: number;
}

async function boot(nodes: number): Promise<Size> {
  const progress = new Progress({ write: () => undefined, isTTY: false }, false);
  const t0 = performance.now();
  const r = await runDhcp({ nodes, mode: 'datagram', pingAll: false, pingSample: 1, seed: 1, progress, port: 0x8043, poolSize: nodes });
  const wallMs = performance.now() - t0;
  if (!r.ok) throw new Error(`cluster of ${nodes}: ${r.problems[0] ?? 'failed'}`);
  const dhcp = r.phases.find((p) => p.name.startsWith('dhcp'))!;
  return { nodes, wallMs, dhcpMs: dhcp.wallMs, packets: r.totals.packets.total, delivered: r.totals.delivered, dora: r.server!.doraPerSecond };
}

export async function run(): Promise<BenchResult[]> {
  const sizes = process.env['BENCH_CLUSTER_BIG'] === '1' ? [1000, 2000, 5000, 10_000] : [1000, 2000];
  await boot(50); // warm-up: JIT, SQLite, module loading
  const out: BenchResult[] = [];
  let first: Size | undefined;
  for (const n of sizes) {
    const s = await boot(n);
    const label = `${n.toLocaleString('en-US')} hosts`;
    const base = first;
    first ??= s;
    out.push({
      suite: 'cluster', name: `boot storm, ${label}: whole run`, value: s.wallMs / 1000, unit: 's',
      ...(base !== undefined ? { ratio: { to: `boot storm, ${base.nodes.toLocaleString('en-US')} hosts: whole run`, value: s.wallMs / base.wallMs } } : {}),
      note: (base === undefined ? '' : `${n / base.nodes}x the hosts: linear growth would be ${(n / base.nodes).toFixed(1)}x, quadratic ${((n / base.nodes) ** 2).toFixed(1)}x; `) +
        `DHCP phase ${(s.dhcpMs / 1000).toFixed(1)} s`,
    });
    out.push({ suite: 'cluster', name: `boot storm, ${label}: hosts bound per second`, value: n / (s.wallMs / 1000), unit: 'hosts/s', note: 'attach + SA joins + DORA + ARP probe + pings, wall clock' });
    out.push({
      suite: 'cluster', name: `boot storm, ${label}: packets on the fabric`, value: s.packets, unit: 'packets',
      note: `${s.delivered.toLocaleString('en-US')} deliveries (each multicast reaches every port: ${(s.delivered / s.packets).toFixed(0)} per packet)`,
    });
    out.push({ suite: 'cluster', name: `boot storm, ${label}: server DORA/s`, value: s.dora, unit: 'DORA/s', note: 'DORA exchanges per wall-clock second from the first DISCOVER to the last ACK (fabric and probes of early clients included)' });
  }
  return out;
}
