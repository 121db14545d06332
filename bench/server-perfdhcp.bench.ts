// DORA exchanges per second of ipoib-dhcpd --link kernel under Kea's perfdhcp (Debian kea-admin) at
// rising rates: the no-drop rate (the highest step's achieved rate with 0 drops in both exchanges)
// and the peak (the most ACKs per second received in any step). Issue 6's target: both at >= 3x Kea
// 2.2.
//
// Durability, as each side runs: ours is durable — SQLite, WAL, synchronous=FULL, group commit, and
// no ACK leaves before its lease is fsync'd. Kea's memfile (persist: true) appends each lease to its
// CSV without fsync: a crash can lose leases it acknowledged.
//
// The instrument's ceiling, in the same run: two stateless responders (bench/dhcp-responder.ts on
// node:dgram, and bench/dhcp-responder.c, compiled with gcc into a temporary directory when gcc is
// there) answer the same steps with correct OFFERs and ACKs from pre-encoded templates, keeping no
// state and writing nothing. What they reach is what perfdhcp and the netns/veth path carry at all
// on this machine — the Node one is the fastest any Node server on these sockets could be — so a
// target above the Node ceiling is out of reach here for any design in Node, durable or not.
//
// A like-for-like line (never the headline), `ours-tmpfs`: ours
// with its SQLite file on tmpfs (/dev/shm), where fsync is a no-op — what synchronous=NORMAL would
// save and more (lease-db has no synchronous knob); not durable against power loss, like Kea's
// memfile without fsync.
//
// Fairness on a shared, noisy machine: each server has its own pair of network namespaces joined by
// a veth pair, every server runs for the whole round, and each rate step runs against every server
// back to back (the order rotates by step), so all see the same background load. A round restarts
// every server on fresh lease files and warms each up (2 s at 1,000/s, not counted: JIT and first
// allocations); the result is the median over rounds, and a ratio is the median of the rounds'
// ratios. A server stops climbing after two consecutive steps past its capacity (over 2% dropped
// and no more ACKs per second than its best step): its peak is behind it. Per step the kernel's UDP
// receive-buffer drops are printed for each side (/proc/net/snmp is per network namespace): the
// server's socket, and perfdhcp's — a perfdhcp starved of CPU drops replies it did not read in
// time, which counts against the server — and each server's CPU time per ACK (all threads), which
// does not depend on how much of the machine others take.
// Needs root (namespaces) and perfdhcp; otherwise it returns nothing and says why. Kea runs when
// Debian's kea-dhcp4-server is installed.
//
// Knobs: BENCH_PERFDHCP_RATES=1000,2000,... (offered DORA/s per step), BENCH_PERFDHCP_ROUNDS (3),
// BENCH_PERFDHCP_SERVERS=ours,ours-tmpfs,kea,node,c (the default; any of them).
import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetnsPair, netnsSkipReason, type NetnsPair } from '../test/helpers/netns.js';
import { sendControlCommand } from '../server/control-socket.js';
import { median, type BenchResult } from './harness.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const SHIM = join(root, 'bin/ipoib-dhcpd');
const RESPONDER_TS = join(root, 'bench/dhcp-responder.ts');
const PORT = 67;
/**
 * Steps ~25% apart up to 6,000 (where the durable servers' no-drop rates fall: a coarser ladder set
 * both servers' no-drop rate to the same rung), then wider up to what the C responder carries.
 */
const RATES = (process.env['BENCH_PERFDHCP_RATES'] ?? '1000,2000,3000,4000,5000,6000,8000,10000,12000,16000,20000,24000').split(',').map(Number);
const ROUNDS = Math.max(1, Number(process.env['BENCH_PERFDHCP_ROUNDS'] ?? 3));
const SERVERS = (process.env['BENCH_PERFDHCP_SERVERS'] ?? 'ours,ours-tmpfs,kea,node,c').split(',');
const STEP_SECONDS = 4;
const SERVER = '10.98.0.1';
const RELAY = '10.98.0.2';
/** A /12: one round offers up to ~150,000 new clients, more than a /16 holds. */
const SUBNET = '10.96.0.0/12';
const POOL = '10.96.0.10 - 10.111.255.250';
const DURABILITY = {
  ours: 'SQLite WAL, synchronous=FULL: every ACK fsync\'d first',
  oursTmpfs: 'SQLite on tmpfs: committed before each ACK, fsync a no-op',
  kea: 'memfile persist=true: CSV appended, never fsync\'d',
};

type ServerKind = 'ours' | 'ours-tmpfs' | 'kea' | 'node' | 'c';
const KINDS: readonly ServerKind[] = ['ours', 'ours-tmpfs', 'kea', 'node', 'c'];
const LABEL: Record<ServerKind, string> = {
  ours: 'ipoib-dhcpd', 'ours-tmpfs': 'ipoib-dhcpd (tmpfs)', kea: 'kea', node: 'node-ceiling', c: 'c-ceiling',
};
/** Network-namespace tags, one pair per server. */
const TAG: Record<ServerKind, string> = { ours: 'bpd', 'ours-tmpfs': 'bpt', kea: 'bpk', node: 'bpn', c: 'bpc' };

interface Step { rate: number; sent: number; acks: number; drops: number; achieved: number; cpuMs: number }
interface Series { steps: Step[]; noDrop: number; peak: number; cpuPerAck: number }

interface Server {
  kind: ServerKind;
  name: string;
  pair: NetnsPair;
  child: ChildProcess;
  /** Our control socket, for the per-step counters. */
  sock?: string;
  steps: Step[];
  /** Consecutive steps past capacity (see step()). */
  losing: number;
  /** The most ACKs per second of any step so far. */
  best: number;
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
  // Past capacity: more than 2% lost and no more answered than at its best step. Two such steps in a
  // row and the server's peak is behind it; the steps above it would only measure the collapse.
  const ackRate = r.acks / STEP_SECONDS;
  if (r.drops > r.sent * 0.02 && ackRate <= s.best * 1.02) s.losing++; else s.losing = 0;
  s.best = Math.max(s.best, ackRate);
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

/** Resolves true when the child prints "ready" (the responders), false if it exits or `ms` pass. */
async function waitReady(child: ChildProcess, ms: number): Promise<boolean> {
  let out = '';
  const ready = new Promise<boolean>((resolve) => {
    child.stdout?.on('data', (b: Buffer) => { out += b.toString(); if (out.includes('ready')) resolve(true); });
    child.once('exit', () => resolve(false));
  });
  const timer = sleep(ms).then(() => false);
  return Promise.race([ready, timer]);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
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

function server(kind: ServerKind, pair: NetnsPair, child: ChildProcess, sock?: string): Server {
  return { kind, name: LABEL[kind], pair, child, ...(sock !== undefined ? { sock } : {}), steps: [], losing: 0, best: 0 };
}

/** ipoib-dhcpd on a lease file in `dbDir` (a tmpfs one for ours-tmpfs). */
async function startOurs(kind: 'ours' | 'ours-tmpfs', pair: NetnsPair, dir: string, dbDir: string): Promise<Server | null> {
  const sock = join(dir, `${kind}.sock`);
  writeFileSync(join(dir, `${kind}.conf`), config(pair.serverIf, { type: 'sqlite', name: join(dbDir, `${kind}.sqlite`) }, sock));
  const child = pair.spawn(pair.serverNs, 'env', ['-u', 'NODE_OPTIONS', SHIM, '-p', String(PORT), '--link', 'kernel', '-cf', join(dir, `${kind}.conf`)]);
  let err = '';
  child.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
  if (!await waitFile(sock, child, 20_000)) { note(`${LABEL[kind]} did not start: ${err.slice(-300)}`); await stop(child); return null; }
  return server(kind, pair, child, sock);
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
  return server('kea', pair, child);
}

/** A stateless responder (the instrument's ceiling): bench/dhcp-responder.ts, or the C one compiled into `cBinary`. */
async function startResponder(kind: 'node' | 'c', pair: NetnsPair, cBinary: string | null): Promise<Server | null> {
  const child = kind === 'node'
    ? pair.spawn(pair.serverNs, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '--import', 'tsx', RESPONDER_TS, SERVER, String(PORT)], { cwd: root })
    : pair.spawn(pair.serverNs, cBinary!, [SERVER, String(PORT)]);
  let err = '';
  child.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
  if (!await waitReady(child, 20_000)) { note(`${LABEL[kind]} did not start: ${err.slice(-300)}`); await stop(child); return null; }
  return server(kind, pair, child);
}

/** Compiles bench/dhcp-responder.c into `dir`; null (and a note) without gcc or on an error. */
function compileResponder(dir: string): string | null {
  if (!which('gcc')) { note('gcc not installed: no C ceiling'); return null; }
  const out = join(dir, 'dhcp-responder');
  try {
    execFileSync('gcc', ['-O2', '-o', out, join(root, 'bench/dhcp-responder.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
    return out;
  } catch (err) {
    note(`gcc failed on bench/dhcp-responder.c: no C ceiling (${String((err as { stderr?: Buffer }).stderr ?? err).slice(0, 300)})`);
    return null;
  }
}

type RoundResult = Partial<Record<ServerKind, Series>>;

/** One round: every server fresh, every rate against each, back to back. */
async function round(n: number, pairs: Partial<Record<ServerKind, NetnsPair>>, cBinary: string | null): Promise<RoundResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ipoib-dhcpd-bench-'));
  const shm = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/ipoib-dhcpd-bench-') : dir;
  const servers: Server[] = [];
  try {
    for (const kind of KINDS) {
      const pair = pairs[kind];
      if (pair === undefined) continue;
      const s = kind === 'ours' || kind === 'ours-tmpfs' ? await startOurs(kind, pair, dir, kind === 'ours' ? dir : shm)
        : kind === 'kea' ? await startKea(pair, dir)
          : await startResponder(kind, pair, cBinary);
      if (s !== null) servers.push(s);
    }
    // Not counted: a first step against a cold process measures start-up (our JIT, Kea's first
    // allocations), not the rate it sustains.
    for (const s of servers) await runPerfdhcp(s.pair, 1000, 200 + n, 2);
    for (const [i, rate] of RATES.entries()) {
      const order = [...servers.slice(i % servers.length), ...servers.slice(0, i % servers.length)];
      for (const s of order) {
        if (s.losing >= 2) continue;
        await step(s, rate, (n * 32 + i) & 0xff);
      }
    }
    const out: RoundResult = {};
    for (const s of servers) out[s.kind] = summarise(s.steps);
    return out;
  } finally {
    for (const s of servers) await stop(s.child);
    rmSync(dir, { recursive: true, force: true });
    if (shm !== dir) rmSync(shm, { recursive: true, force: true });
  }
}

const stepsText = (s: Series): string => s.steps.map((x) => `${x.rate}:${x.achieved.toFixed(0)}/${x.drops}d`).join(' ');

export async function run(): Promise<BenchResult[]> {
  const why = netnsSkipReason() ?? (which('perfdhcp') ? null : 'perfdhcp is not installed (apt-get install kea-admin)');
  if (why !== null) { note(`skipped: ${why}`); return []; }
  const wanted = new Set(SERVERS.filter((k): k is ServerKind => (KINDS as readonly string[]).includes(k)));
  if (wanted.has('kea') && !which('kea-dhcp4')) { note('kea-dhcp4 not installed (Debian kea-dhcp4-server): no Kea comparison'); wanted.delete('kea'); }
  const binDir = mkdtempSync(join(tmpdir(), 'dhcp-responder-'));
  const cBinary = wanted.has('c') ? compileResponder(binDir) : null;
  if (cBinary === null) wanted.delete('c');
  const pairs: Partial<Record<ServerKind, NetnsPair>> = {};
  const rounds: RoundResult[] = [];
  note(`load at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')}; servers: ${[...wanted].map((k) => LABEL[k]).join(', ')}; rates ${RATES.join(',')}`);
  try {
    for (const k of KINDS) if (wanted.has(k)) pairs[k] = createNetnsPair({ tag: TAG[k], serverAddress: `${SERVER}/12`, clientAddress: `${RELAY}/12` });
    for (let n = 0; n < ROUNDS; n++) {
      note(`round ${n + 1} of ${ROUNDS} (load ${loadavg()[0]!.toFixed(2)})`);
      const r = await round(n, pairs, cBinary);
      rounds.push(r);
      note(`round ${n + 1}: ` + KINDS.filter((k) => r[k] !== undefined).map((k) =>
        `${LABEL[k]} no-drop ${r[k]!.noDrop.toFixed(0)} peak ${r[k]!.peak.toFixed(0)} CPU ${r[k]!.cpuPerAck.toFixed(0)} µs/ACK`).join('; '));
    }
  } finally {
    for (const p of Object.values(pairs)) p.remove();
    rmSync(binDir, { recursive: true, force: true });
  }
  note(`load at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  const series = (k: ServerKind): Series[] => rounds.flatMap((r) => (r[k] !== undefined ? [r[k]!] : []));
  const med = (k: ServerKind, f: (s: Series) => number): number => median(series(k).map(f));
  /** The ratio a/b of each round where both ran (side by side), then the median; null without one. */
  const ratio = (a: ServerKind, b: ServerKind, f: (s: Series) => number): number | null => {
    const rs = rounds.flatMap((r) => (r[a] !== undefined && r[b] !== undefined && f(r[b]!) > 0 ? [f(r[a]!) / f(r[b]!)] : []));
    return rs.length === 0 ? null : median(rs);
  };
  const out: BenchResult[] = [];
  const base = { suite: 'server', unit: 'DORA/s' };
  const metrics = [['no-drop rate', (s: Series) => s.noDrop], ['peak', (s: Series) => s.peak]] as const;
  const toKea = 'Kea 2.2 memfile, same rounds';
  const ceilingNote = (k: ServerKind, f: (s: Series) => number): string => (['node', 'c'] as const)
    .flatMap((c) => { const r = ratio(k, c, f); return r === null ? [] : [`${(r * 100).toFixed(0)}% of the ${LABEL[c]}`]; }).join(', ');
  for (const [kind, durability, headline] of [['ours', DURABILITY.ours, true], ['ours-tmpfs', DURABILITY.oursTmpfs, false]] as const) {
    const xs = series(kind);
    if (xs.length === 0) continue;
    for (const [what, f] of metrics) {
      const r = ratio(kind, 'kea', f);
      const ceil = ceilingNote(kind, f);
      out.push({
        ...base, name: `${LABEL[kind]} ${what} (perfdhcp, ${kind === 'ours' ? 'durable' : 'NOT durable, like-for-like'}: ${durability})`, value: med(kind, f),
        ...(r !== null ? { ratio: { to: toKea, value: r } } : {}),
        ...(r !== null && kind === 'ours' ? { target: { text: '>= 3x Kea 2.2 (issue 6)', met: r >= 3 } } : {}),
        ...(headline ? { headline } : {}),
        note: `median of ${xs.length} round(s)${ceil === '' ? '' : `; ${ceil} (same rounds)`}; each round offered:achieved/drops: ${xs.map(stepsText).join(' | ')}`,
      });
    }
  }
  for (const kind of ['node', 'c'] as const) {
    const xs = series(kind);
    if (xs.length === 0) continue;
    for (const [what, f] of metrics) {
      const r = ratio(kind, 'kea', f);
      out.push({
        ...base, name: `instrument ceiling: stateless ${kind === 'node' ? 'node:dgram' : 'C (recvmmsg/sendmmsg)'} responder ${what} (perfdhcp, netns/veth)`,
        value: med(kind, f), ...(r !== null ? { ratio: { to: toKea, value: r } } : {}), headline: kind === 'node',
        note: `median of ${xs.length} round(s); bench/dhcp-responder.${kind === 'node' ? 'ts' : 'c'}, no state, no writes; offered:achieved/drops: ${xs.map(stepsText).join(' | ')}`,
      });
    }
  }
  for (const kind of ['ours', 'ours-tmpfs', 'kea', 'node', 'c'] as const) {
    if (series(kind).length === 0) continue;
    const r = kind === 'kea' ? null : ratio(kind, 'kea', (s) => s.cpuPerAck);
    out.push({
      suite: 'server', name: `${LABEL[kind]} server CPU per ACK under perfdhcp (all threads, every step)`, value: med(kind, (s) => s.cpuPerAck), unit: 'µs',
      ...(r !== null ? { ratio: { to: `${toKea} (lower is better)`, value: r } } : {}),
    });
  }
  if (series('kea').length > 0) {
    for (const [what, f] of metrics) {
      out.push({ ...base, name: `Kea 2.2 ${what} (perfdhcp, not durable: ${DURABILITY.kea})`, value: med('kea', f),
        note: `median of ${series('kea').length} round(s); offered:achieved/drops: ${series('kea').map(stepsText).join(' | ')}` });
    }
  }
  for (const k of ['ours', 'ours-tmpfs', 'node', 'c'] as const) {
    const nd = ratio(k, 'kea', (s) => s.noDrop), pk = ratio(k, 'kea', (s) => s.peak);
    if (nd !== null || pk !== null) note(`ratio ${LABEL[k]}/Kea (median of per-round ratios): no-drop ${nd?.toFixed(2) ?? 'n/a'}x, peak ${pk?.toFixed(2) ?? 'n/a'}x`);
  }
  return out;
}
