// The boot storm (issue 9): ipoib-cluster's DHCP form in one process — fabric, SM, one server with a
// SQLite lease file, N hosts addressed by the DHCP client at once, then every host pinging the server
// and a peer — at 1,000, 2,000, 5,000 and 10,000 hosts (BENCH_CLUSTER_SIZES=1000,2000 picks others).
// Reported per size: the whole run's wall and CPU time, the cost per host (wall and CPU) and its
// ratio to the first size's (1.0 is linear growth; the size ratio would be quadratic), each phase's
// wall time, and what does not depend on the machine's load: packets sent into the fabric,
// deliveries out of it and how many of those early filters declined. Target (issue 9): 10,000 hosts
// bound in under 10 s of wall time ("all bound": from the start of the run until the last host is
// bound; the whole run, pings included, is reported beside it). A run that does not bind every host throws.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './harness.js';
import { runDhcp } from '../bin/cluster/dhcp.js';
import { Progress } from '../bin/cluster/progress.js';

interface Size {
  nodes: number;
  wallMs: number;
  cpuMs: number;
  phases: { name: string; wallMs: number; cpuMs: number; packets: number; delivered: number; notListened: number }[];
  packets: number;
  delivered: number;
  notListened: number;
  dora: number;
  /** Wall ms from the start of the run until the last host was bound (report totals.boundMs). */
  boundMs: number;
}

const TARGET_NODES = 10_000;
const TARGET_WALL_S = 10;

async function boot(nodes: number): Promise<Size> {
  const progress = new Progress({ write: () => undefined, isTTY: false }, false);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await runDhcp({ nodes, mode: 'datagram', pingAll: false, pingSample: 1, seed: 1, progress, port: 0x8043, poolSize: nodes });
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  if (!r.ok) throw new Error(`cluster of ${nodes}: ${r.problems[0] ?? 'failed'}`);
  return {
    nodes, wallMs, cpuMs: (c.user + c.system) / 1000,
    phases: r.phases.map((p) => ({ name: p.name, wallMs: p.wallMs, cpuMs: p.cpuMs ?? 0, packets: p.packets.total, delivered: p.delivered, notListened: p.notListened })),
    packets: r.totals.packets.total, delivered: r.totals.delivered, notListened: r.phases.reduce((n, p) => n + p.notListened, 0), dora: r.server!.doraPerSecond,
    boundMs: r.totals.boundMs ?? wallMs,
  };
}

function sizes(): number[] {
  const env = process.env['BENCH_CLUSTER_SIZES'];
  if (env === undefined || env === '') return [1000, 2000, 5000, TARGET_NODES];
  return env.split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

const label = (n: number): string => `${n.toLocaleString('en-US')} hosts`;

export async function run(): Promise<BenchResult[]> {
  // The one-core runs first, while this process is idle: after the in-process runs its large heap
  // keeps V8's background threads busy for seconds, and some of them would share CPU 0.
  const one = sizes().includes(TARGET_NODES) ? oneCore(TARGET_NODES) : undefined;
  await boot(50); // warm-up: JIT, SQLite, module loading
  const out: BenchResult[] = [];
  let first: Size | undefined;
  for (const n of sizes()) {
    const s = await boot(n);
    const base = first;
    first ??= s;
    const perHostMs = s.wallMs / n;
    const perHostCpuMs = s.cpuMs / n;
    out.push({
      suite: 'cluster', name: `boot storm, ${label(n)}: all bound`, value: s.boundMs / 1000, unit: 's', headline: n === TARGET_NODES,
      ...(base !== undefined ? { ratio: { to: `boot storm, ${label(base.nodes)}: all bound`, value: s.boundMs / base.boundMs } } : {}),
      note: 'from the start of the run (attach, SA joins, DORA with the ARP probe) until the last host was bound; the whole run then proves every address with pings. ' +
        'This process may use both cores (its SQLite worker thread, V8\'s GC and compiler threads): see the one-core run',
    });
    const growth = base === undefined ? '' : `${n / base.nodes}x the hosts: linear growth keeps the per-host cost (ratio 1.0), quadratic multiplies it by ${(n / base.nodes).toFixed(1)}; `;
    out.push({
      suite: 'cluster', name: `boot storm, ${label(n)}: whole run`, value: s.wallMs / 1000, unit: 's', headline: n === TARGET_NODES,
      ...(base !== undefined ? { ratio: { to: `boot storm, ${label(base.nodes)}: whole run`, value: s.wallMs / base.wallMs } } : {}),
      note: `CPU ${(s.cpuMs / 1000).toFixed(1)} s; phases (wall / CPU): ${s.phases.map((p) => `${p.name} ${(p.wallMs / 1000).toFixed(2)} / ${(p.cpuMs / 1000).toFixed(2)} s`).join(', ')}`,
    });
    out.push({
      suite: 'cluster', name: `boot storm, ${label(n)}: wall time per host`, value: perHostMs, unit: 'ms/host',
      ...(base !== undefined ? { ratio: { to: `boot storm, ${label(base.nodes)}: wall time per host`, value: perHostMs / (base.wallMs / base.nodes) } } : {}),
      note: `${growth}${(n / (s.wallMs / 1000)).toFixed(0)} hosts bound per second (attach + SA joins + DORA + ARP probe + pings)`,
    });
    out.push({
      suite: 'cluster', name: `boot storm, ${label(n)}: CPU time per host`, value: perHostCpuMs, unit: 'ms/host', headline: n !== first.nodes,
      ...(base !== undefined ? { ratio: { to: `boot storm, ${label(base.nodes)}: CPU time per host`, value: perHostCpuMs / (base.cpuMs / base.nodes) } } : {}),
      note: 'user + system CPU of this process (less sensitive than wall time to other processes on shared cores)',
    });
    out.push({
      suite: 'cluster', name: `boot storm, ${label(n)}: packets on the fabric`, value: s.packets, unit: 'packets',
      note: `${s.delivered.toLocaleString('en-US')} deliveries (a multicast reaches every port: ${(s.delivered / s.packets).toFixed(0)} per packet), ` +
        `${s.notListened.toLocaleString('en-US')} declined by early filters (counted, never handed over); by phase: ` +
        s.phases.map((p) => `${p.name} ${p.packets} packets / ${p.delivered} deliveries / ${p.notListened} declined`).join('; '),
    });
    out.push({ suite: 'cluster', name: `boot storm, ${label(n)}: server DORA/s`, value: s.dora, unit: 'DORA/s', note: 'DORA exchanges per wall-clock second from the first DISCOVER to the last ACK (fabric and probes of early clients included)' });
    process.stderr.write(`cluster bench: ${label(n)}: ${(s.wallMs / 1000).toFixed(1)} s wall, ${(s.cpuMs / 1000).toFixed(1)} s CPU, ` +
      `${perHostMs.toFixed(2)} ms/host wall, ${perHostCpuMs.toFixed(2)} ms/host CPU` +
      (base === undefined ? '' : ` (per-host ratio to ${label(base.nodes)}: wall ${(perHostMs / (base.wallMs / base.nodes)).toFixed(2)}, CPU ${(perHostCpuMs / (base.cpuMs / base.nodes)).toFixed(2)})`) +
      `\n  ${s.phases.map((p) => `${p.name}: ${(p.wallMs / 1000).toFixed(2)} s wall, ${(p.cpuMs / 1000).toFixed(2)} s CPU, ${p.packets} packets, ${p.delivered} deliveries, ${p.notListened} declined`).join('\n  ')}\n`);
  }
  if (one !== undefined) {
    out.push({
      suite: 'cluster', name: `boot storm, ${label(TARGET_NODES)} on one core: all bound`, value: one.boundMs / 1000, unit: 's', headline: true,
      target: { text: `${label(TARGET_NODES)} bound in under ${TARGET_WALL_S} s on one core`, met: one.ok && one.boundMs < TARGET_WALL_S * 1000 },
      note: `${ONE_CORE.join(' ')} bin/ipoib-cluster --nodes ${TARGET_NODES}: every thread of the process on CPU 0, V8 without background threads ` +
        `(they only compete there) and a 64 MB young generation; median of ${one.runs.length} runs (${one.runs.map((x) => (x / 1000).toFixed(2)).join(', ')} s); ` +
        `whole run ${(one.wallMs / 1000).toFixed(1)} s${one.ok ? '' : `; FAILED: ${one.problem}`}`,
    });
    process.stderr.write(`cluster bench: ${label(TARGET_NODES)} on one core: all bound after ${(one.boundMs / 1000).toFixed(2)} s, whole run ${(one.wallMs / 1000).toFixed(2)} s\n`);
  }
  return out;
}

/** How the one-core run is started: pinned to CPU 0, V8 tuned for a single core. */
const ONE_CORE = ['taskset', '-c', '0', process.execPath, '--single-threaded', '--max-semi-space-size=64'];

interface OneCore { ok: boolean; boundMs: number; wallMs: number; runs: number[]; problem?: string }

/** ONE_CORE_RUNS runs, the median by time to all bound (a failed run counts as the slowest). */
function oneCore(nodes: number): OneCore | undefined {
  const runs: Omit<OneCore, 'runs'>[] = [];
  for (let i = 0; i < ONE_CORE_RUNS; i++) {
    const r = oneCoreRun(nodes);
    if (r === undefined) return undefined;
    runs.push(r);
  }
  const key = (r: Omit<OneCore, 'runs'>): number => (r.ok ? r.boundMs : Infinity);
  runs.sort((a, b) => key(a) - key(b));
  return { ...runs[Math.floor(runs.length / 2)]!, runs: runs.map((r) => r.boundMs) };
}

const ONE_CORE_RUNS = 3;

/** The target's own measurement: the program as a user runs it, pinned to one core; undefined without taskset. */
function oneCoreRun(nodes: number): { ok: boolean; boundMs: number; wallMs: number; problem?: string } | undefined {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  const p = spawnSync(ONE_CORE[0]!, [...ONE_CORE.slice(1), join(root, 'bin', 'ipoib-cluster'), '--nodes', String(nodes), '--json', '--quiet'],
    { encoding: 'utf8', env, maxBuffer: 256 * 1024 * 1024 });
  if (p.error !== undefined) return undefined;
  try {
    const r = JSON.parse(p.stdout) as { ok: boolean; problems: string[]; totals: { wallMs: number; boundMs?: number } };
    return { ok: r.ok, boundMs: r.totals.boundMs ?? NaN, wallMs: r.totals.wallMs, ...(r.ok ? {} : { problem: r.problems[0] ?? '' }) };
  } catch {
    return { ok: false, boundMs: NaN, wallMs: NaN, problem: `exit ${p.status}: ${p.stderr.trim().split('\n').pop() ?? ''}` };
  }
}
