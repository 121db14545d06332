// DORA exchanges per second of ipoib-dhcpd --link kernel under Kea's perfdhcp (Debian kea-admin) at
// rising rates: the no-drop rate (the highest offered rate with 0 drops in both exchanges) and the
// peak (the most ACKs per second received in any step). Issue 6's target: both at >= 3x Kea 2.2.
//
// Durability, as each side runs: ours is durable — SQLite, WAL, synchronous=FULL, group commit, and
// no ACK leaves before its lease is fsync'd. Kea's memfile (persist: true) appends each lease to its
// CSV without fsync: a crash can lose leases it acknowledged.
//
// Fairness on a shared, noisy machine: each server has its own pair of network namespaces joined by
// a veth pair, both servers run for the whole round, and each rate step runs against ours and then
// Kea back to back (the order alternates by step), so both see the same background load. A round
// restarts both servers on fresh lease files and warms each up (2 s at 300/s, not counted); the
// result is the median over rounds, and the ratio is the median of the rounds' ratios. Per step the
// kernel's UDP receive-buffer drops are printed for each side (/proc/net/snmp is per network
// namespace): the server's socket, and perfdhcp's — a perfdhcp starved of CPU drops replies it did
// not read in time, which counts against the server — and each server's CPU time per ACK (all
// threads), which does not depend on how much of the machine others take.
// Needs root (namespaces) and perfdhcp; otherwise it returns nothing and says why. Kea runs when
// Debian's kea-dhcp4-server is installed.
//
// Knobs: BENCH_PERFDHCP_RATES=500,1000,... (offered DORA/s per step), BENCH_PERFDHCP_ROUNDS (3),
// BENCH_PERFDHCP_SERVERS=ours,kea.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetnsPair, netnsSkipReason, type NetnsPair } from '../test/helpers/netns.js';
import { sendControlCommand } from '../server/control-socket.js';
import { median, type BenchResult } from './harness.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const SHIM = join(root, 'bin/ipoib-dhcpd');
const PORT = 67;
const RATES = (process.env['BENCH_PERFDHCP_RATES'] ?? '500,1000,2000,3000,4000,6000,8000,12000').split(',').map(Number);
const ROUNDS = Math.max(1, Number(process.env['BENCH_PERFDHCP_ROUNDS'] ?? 3));
const SERVERS = (process.env['BENCH_PERFDHCP_SERVERS'] ?? 'ours,kea').split(',');
const STEP_SECONDS = 4;
const SERVER = '10.98.0.1';
const RELAY = '10.98.0.2';
/** A /12: one round offers up to ~150,000 new clients, more than a /16 holds. */
const SUBNET = '10.96.0.0/12';
const POOL = '10.96.0.10 - 10.111.255.250';
const DURABILITY = {
  ours: 'SQLite WAL, synchronous=FULL: every ACK fsync\'d first',
  kea: 'memfile persist=true: CSV appended, never fsync\'d',
};

interface Step { rate: number; sent: number; acks: number; drops: number; achieved: number; cpuMs: number }
interface Series { steps: Step[]; noDrop: number; peak: number; cpuPerAck: number }

interface Server {
  name: 'ipoib-dhcpd' | 'kea';
  pair: NetnsPair;
  child: ChildProcess;
  /** Our control socket, for the per-step counters. */
  sock?: string;
  steps: Step[];
  losing: number;
}

function which(tool: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore', env: { PATH: `${process.env['PATH']}:/usr/sbin:/sbin` } }); return true; } catch { return false; }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function note(s: string): void { process.stderr.write(`    ${s}\n`); }

async function runPerfdhcp(pair: NetnsPair, rate: number, seed: number, seconds = STEP_SECONDS): Promise<Step> {
  // A fresh MAC range per step (-b mac=...) so every step allocates new leases (each ACK is a commit).
  const mac = `02:${(seed & 0xff).toString(16).padStart(2, '0')}:00:00:00:00`;
  const r = await pair.exec(pair.clientNs, 'perfdhcp', [
    '-4', '-N', String(PORT), '-L', String(PORT), '-R', String(rate * seconds * 2), '-b', `mac=${mac}`, '-r', String(rate),
    '-p', String(seconds), '-W', '100000', '-l', RELAY, SERVER,
  ], { timeoutMs: (seconds + 20) * 1000 });
  const sent = [...r.stdout.matchAll(/sent packets: (\d+)/g)].map((x) => Number(x[1]));
  const recv = [...r.stdout.matchAll(/received packets: (\d+)/g)].map((x) => Number(x[1]));
  const drops = [...r.stdout.matchAll(/^drops: (\d+)/gm)].map((x) => Number(x[1]));
  const achieved = Number(/Rate: ([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
  return { rate, sent: sent[1] ?? 0, acks: recv[1] ?? 0, drops: (drops[0] ?? 0) + (drops[1] ?? 0), achieved, cpuMs: 0 };
}

/** UDP RcvbufErrors of a namespace: datagrams its kernel dropped because a socket's buffer was full. */
async function rcvbufErrors(pair: NetnsPair, ns: string): Promise<number> {
  const r = await pair.exec(ns, 'cat', ['/proc/net/snmp'], { timeoutMs: 5000 });
  const udp = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  if (udp.length < 2) return 0;
  const names = udp[0]!.split(/\s+/), values = udp[1]!.split(/\s+/);
  return Number(values[names.indexOf('RcvbufErrors')] ?? 0);
}

/**
 * CPU time (user + system, every thread) a process has used, in ms: /proc/PID/stat fields 14 and 15,
 * in clock ticks (proc(5); USER_HZ is 100 on Linux). CPU per ACK does not depend on how much of the
 * machine others take, so it compares the servers' efficiency where rates are noisy.
 */
function cpuMs(pid: number | undefined): { user: number; sys: number } {
  if (pid === undefined) return { user: 0, sys: 0 };
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) * 10, sys: Number(f[12]) * 10 };
  } catch {
    return { user: 0, sys: 0 };
  }
}

/** Our daemon's counters (control socket statistic-get-all), to show where the messages of a step went. */
async function ourCounters(sock: string): Promise<Record<string, number>> {
  try {
    const r = await sendControlCommand(sock, 'statistic-get-all');
    return Object.fromEntries(Object.entries(r.arguments ?? {}).map(([k, v]) => [k, (v as [number, string][])[0]?.[0] ?? 0]));
  } catch {
    return {};
  }
}

function counterDelta(before: Record<string, number>, after: Record<string, number>): string {
  return Object.keys(after).filter((k) => k.startsWith('pkt4-drop-') || k === 'pkt4-received' || k === 'lease4-commits')
    .map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)] as const).filter(([, d]) => d > 0)
    .map(([k, d]) => `${k.replace('pkt4-', '')}=${d}`).join(' ');
}

/** One rate step against one server, with where its messages went. */
async function step(s: Server, rate: number, seed: number): Promise<void> {
  const before = s.sock === undefined ? {} : await ourCounters(s.sock);
  const k0 = [await rcvbufErrors(s.pair, s.pair.serverNs), await rcvbufErrors(s.pair, s.pair.clientNs)];
  const c0 = cpuMs(s.child.pid);
  const r = await runPerfdhcp(s.pair, rate, seed);
  const c1 = cpuMs(s.child.pid);
  r.cpuMs = c1.user + c1.sys - c0.user - c0.sys;
  const perAck = (ms: number): string => (ms / Math.max(1, r.acks) * 1000).toFixed(0);
  const k1 = [await rcvbufErrors(s.pair, s.pair.serverNs), await rcvbufErrors(s.pair, s.pair.clientNs)];
  s.steps.push(r);
  const where = s.sock === undefined ? '' : `; server: ${counterDelta(before, await ourCounters(s.sock))}`;
  note(`${s.name}: offered ${rate}/s -> ${r.achieved.toFixed(0)} DORA/s, ${r.acks} ACKs, ${r.drops} drops; ` +
    `server CPU ${perAck(r.cpuMs)} µs/ACK (user ${perAck(c1.user - c0.user)}, system ${perAck(c1.sys - c0.sys)}); ` +
    `socket-buffer drops: server ${k1[0]! - k0[0]!}, perfdhcp ${k1[1]! - k0[1]!}${where}`);
  // Every step runs while the server still answers: past capacity is where a collapse would show.
  if (r.drops > r.sent * 0.01 && r.acks < STEP_SECONDS * 50) s.losing++; else s.losing = 0;
}

function summarise(steps: Step[]): Series {
  const noDrop = Math.max(0, ...steps.filter((s) => s.drops === 0 && s.acks > 0).map((s) => s.achieved));
  const peak = Math.max(0, ...steps.map((s) => s.acks / STEP_SECONDS));
  const acks = steps.reduce((a, s) => a + s.acks, 0);
  const cpuPerAck = acks === 0 ? 0 : steps.reduce((a, s) => a + s.cpuMs, 0) / acks * 1000;
  return { steps, noDrop, peak, cpuPerAck };
}

async function waitFile(path: string, child: ChildProcess, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(path)) return true;
    if (child.exitCode !== null) return false;
    await sleep(50);
  }
  return false;
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  for (let i = 0; i < 100 && child.exitCode === null && child.signalCode === null; i++) await sleep(50);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

function config(iface: string, db: object, sock: string): string {
  return JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: [iface] },
      'lease-database': db,
      'valid-lifetime': 3600,
      subnet4: [{ id: 1, subnet: SUBNET, pools: [{ pool: POOL }] }],
      'control-socket': { 'socket-type': 'unix', 'socket-name': sock },
      loggers: [{ name: 'kea-dhcp4', severity: 'WARN', output_options: [{ output: 'stderr' }] }],
    },
  });
}

async function startOurs(pair: NetnsPair, dir: string): Promise<Server | null> {
  const sock = join(dir, 'ours.sock');
  writeFileSync(join(dir, 'ours.conf'), config(pair.serverIf, { type: 'sqlite', name: join(dir, 'ours.sqlite') }, sock));
  const child = pair.spawn(pair.serverNs, 'env', ['-u', 'NODE_OPTIONS', SHIM, '-p', String(PORT), '--link', 'kernel', '-cf', join(dir, 'ours.conf')]);
  let err = '';
  child.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
  if (!await waitFile(sock, child, 20_000)) { note(`ipoib-dhcpd did not start: ${err.slice(-300)}`); await stop(child); return null; }
  return { name: 'ipoib-dhcpd', pair, child, sock, steps: [], losing: 0 };
}

async function startKea(pair: NetnsPair, dir: string): Promise<Server | null> {
  const sock = join(dir, 'kea.sock');
  writeFileSync(join(dir, 'kea.conf'), config(pair.serverIf,
    { type: 'memfile', persist: true, name: join(dir, 'kea-leases4.csv'), 'lfc-interval': 0 }, sock));
  const env = { ...process.env, KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir };
  const child = pair.spawn(pair.serverNs, 'kea-dhcp4', ['-c', join(dir, 'kea.conf'), '-p', String(PORT)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
  if (!await waitFile(sock, child, 20_000)) { note(`kea-dhcp4 did not start: ${err.slice(-300)}`); await stop(child); return null; }
  await sleep(300);
  return { name: 'kea', pair, child, steps: [], losing: 0 };
}

/** One round: both servers fresh, every rate against each, back to back. */
async function round(n: number, pairs: { ours: NetnsPair | null; kea: NetnsPair | null }): Promise<{ ours: Series | null; kea: Series | null }> {
  const dir = mkdtempSync(join(tmpdir(), 'ipoib-dhcpd-bench-'));
  const servers: Server[] = [];
  try {
    const a = pairs.ours === null ? null : await startOurs(pairs.ours, dir);
    const k = pairs.kea === null ? null : await startKea(pairs.kea, dir);
    for (const s of [a, k]) if (s !== null) servers.push(s);
    // Not counted: a first step against a cold process measures start-up (our JIT, Kea's first
    // allocations), not the rate it sustains.
    for (const s of servers) await runPerfdhcp(s.pair, 300, 200 + 2 * n + (s.name === 'kea' ? 1 : 0), 2);
    for (const [i, rate] of RATES.entries()) {
      const order = i % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) {
        if (s.losing >= 2) continue;
        await step(s, rate, (n * 32 + i + (s.name === 'kea' ? 16 : 0)) & 0xff);
      }
    }
    return { ours: a === null ? null : summarise(a.steps), kea: k === null ? null : summarise(k.steps) };
  } finally {
    for (const s of servers) await stop(s.child);
    rmSync(dir, { recursive: true, force: true });
  }
}

const stepsText = (s: Series): string => s.steps.map((x) => `${x.rate}:${x.achieved.toFixed(0)}/${x.drops}d`).join(' ');

export async function run(): Promise<BenchResult[]> {
  const why = netnsSkipReason() ?? (which('perfdhcp') ? null : 'perfdhcp is not installed (apt-get install kea-admin)');
  if (why !== null) { note(`skipped: ${why}`); return []; }
  const withKea = SERVERS.includes('kea') && (which('kea-dhcp4') || (note('kea-dhcp4 not installed (Debian kea-dhcp4-server): no Kea comparison'), false));
  const pairs = {
    ours: SERVERS.includes('ours') ? createNetnsPair({ tag: 'bpd', serverAddress: `${SERVER}/12`, clientAddress: `${RELAY}/12` }) : null,
    kea: withKea ? createNetnsPair({ tag: 'bpk', serverAddress: `${SERVER}/12`, clientAddress: `${RELAY}/12` }) : null,
  };
  const ours: Series[] = [], kea: Series[] = [];
  try {
    for (let n = 0; n < ROUNDS; n++) {
      note(`round ${n + 1} of ${ROUNDS}`);
      const r = await round(n, pairs);
      if (r.ours !== null) ours.push(r.ours);
      if (r.kea !== null) kea.push(r.kea);
      if (r.ours !== null && r.kea !== null) {
        note(`round ${n + 1}: no-drop ${r.ours.noDrop.toFixed(0)} vs Kea ${r.kea.noDrop.toFixed(0)}, peak ${r.ours.peak.toFixed(0)} vs Kea ${r.kea.peak.toFixed(0)}, ` +
          `CPU ${r.ours.cpuPerAck.toFixed(0)} vs Kea ${r.kea.cpuPerAck.toFixed(0)} µs/ACK`);
      }
    }
  } finally {
    pairs.ours?.remove();
    pairs.kea?.remove();
  }
  const out: BenchResult[] = [];
  const base = { suite: 'server', unit: 'DORA/s' };
  const med = (xs: Series[], f: (s: Series) => number): number => median(xs.map(f));
  // The ratio of each round (side by side), then the median; a round where Kea had no drop-free
  // step has no no-drop ratio.
  const ratio = (f: (s: Series) => number): number | null => {
    const rs = ours.flatMap((o, i) => (kea[i] !== undefined && f(kea[i]!) > 0 ? [f(o) / f(kea[i]!)] : []));
    return rs.length === 0 ? null : median(rs);
  };
  const rounds = `median of ${ours.length} round(s)`;
  if (ours.length > 0) {
    for (const [what, f] of [['no-drop rate', (s: Series) => s.noDrop], ['peak', (s: Series) => s.peak]] as const) {
      const r = kea.length > 0 ? ratio(f) : null;
      out.push({
        ...base, name: `ipoib-dhcpd ${what} (perfdhcp, durable: ${DURABILITY.ours})`, value: med(ours, f),
        ...(r !== null ? { ratio: { to: 'Kea 2.2 memfile, same rounds', value: r }, target: { text: '>= 3x Kea 2.2 (issue 6)', met: r >= 3 } } : {}),
        note: `${rounds}; each round offered:achieved/drops: ${ours.map(stepsText).join(' | ')}`,
      });
    }
  }
  if (ours.length > 0) {
    const r = kea.length > 0 ? ratio((s) => s.cpuPerAck) : null;
    out.push({
      suite: 'server', name: 'ipoib-dhcpd server CPU per ACK under perfdhcp (all threads, every step)', value: med(ours, (s) => s.cpuPerAck), unit: 'µs',
      ...(r !== null ? { ratio: { to: 'Kea 2.2 memfile, same rounds (lower is better)', value: r } } : {}),
      ...(kea.length > 0 ? { note: `Kea: ${med(kea, (s) => s.cpuPerAck).toFixed(0)} µs` } : {}),
    });
  }
  if (kea.length > 0) {
    out.push({ ...base, name: `Kea 2.2 no-drop rate (perfdhcp, not durable: ${DURABILITY.kea})`, value: med(kea, (s) => s.noDrop),
      note: `median of ${kea.length} round(s); offered:achieved/drops: ${kea.map(stepsText).join(' | ')}` });
    out.push({ ...base, name: `Kea 2.2 peak (perfdhcp, not durable: ${DURABILITY.kea})`, value: med(kea, (s) => s.peak) });
  }
  if (ours.length > 0 && kea.length > 0) {
    note(`ratio ours/Kea (median of per-round ratios): no-drop ${ratio((s) => s.noDrop)?.toFixed(2) ?? 'n/a'}x, peak ${ratio((s) => s.peak)?.toFixed(2) ?? 'n/a'}x`);
  }
  return out;
}
