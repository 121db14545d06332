// DORA exchanges per second of ipoib-dhcpd --link kernel under Kea's perfdhcp (Debian kea-admin) at
// rising rates, in two network namespaces joined by a veth pair: the no-drop rate (the highest
// offered rate with 0 drops in both exchanges) and the peak (the most ACKs per second received in
// any step). Our leases are durable (SQLite, WAL, synchronous=FULL, group commit). When Debian's
// kea-dhcp4-server (Kea 2.2) is installed it runs the same steps in the same run with its memfile
// backend (CSV appended without fsync: not durable), and the ratio ours/Kea is printed.
// Needs root (namespaces) and perfdhcp; otherwise it returns nothing and says why.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetnsPair, netnsSkipReason, type NetnsPair } from '../test/helpers/netns.js';
import { sendControlCommand } from '../server/control-socket.js';
import type { BenchResult } from './harness.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const SHIM = join(root, 'bin/ipoib-dhcpd');
const PORT = 67;
const RATES = [500, 1000, 2000, 3000, 4000, 6000, 8000, 12000];
const STEP_SECONDS = 4;
const SERVER = '10.98.0.1';
const RELAY = '10.98.0.2';

interface Step { rate: number; sent: number; acks: number; drops: number; achieved: number }
interface Series { name: string; steps: Step[]; noDrop: number; peak: number }

function which(tool: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore', env: { PATH: `${process.env['PATH']}:/usr/sbin:/sbin` } }); return true; } catch { return false; }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function note(s: string): void { process.stderr.write(`    ${s}\n`); }

async function runPerfdhcp(pair: NetnsPair, rate: number, seed: number): Promise<Step> {
  // A fresh MAC range per step (-b mac=...) so every step allocates new leases (each ACK is a commit).
  const mac = `02:${(seed & 0xff).toString(16).padStart(2, '0')}:00:00:00:00`;
  const r = await pair.exec(pair.clientNs, 'perfdhcp', [
    '-4', '-N', String(PORT), '-L', String(PORT), '-R', String(rate * STEP_SECONDS * 2), '-b', `mac=${mac}`, '-r', String(rate),
    '-p', String(STEP_SECONDS), '-W', '100000', '-l', RELAY, SERVER,
  ], { timeoutMs: (STEP_SECONDS + 20) * 1000 });
  const sent = [...r.stdout.matchAll(/sent packets: (\d+)/g)].map((x) => Number(x[1]));
  const recv = [...r.stdout.matchAll(/received packets: (\d+)/g)].map((x) => Number(x[1]));
  const drops = [...r.stdout.matchAll(/^drops: (\d+)/gm)].map((x) => Number(x[1]));
  const achieved = Number(/Rate: ([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
  return { rate, sent: sent[1] ?? 0, acks: recv[1] ?? 0, drops: (drops[0] ?? 0) + (drops[1] ?? 0), achieved };
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

async function series(name: string, pair: NetnsPair, sock?: string): Promise<Series> {
  const steps: Step[] = [];
  let losing = 0;
  for (const [i, rate] of RATES.entries()) {
    const before = sock === undefined ? {} : await ourCounters(sock);
    const s = await runPerfdhcp(pair, rate, i + (name === 'kea' ? 100 : 1));
    steps.push(s);
    const where = sock === undefined ? '' : `; server: ${counterDelta(before, await ourCounters(sock))}`;
    note(`${name}: offered ${rate}/s -> ${s.achieved.toFixed(0)} DORA/s, ${s.acks} ACKs, ${s.drops} drops${where}`);
    // Every step runs while the server still answers: past capacity is where a collapse would show.
    if (s.drops > s.sent * 0.01 && s.acks < STEP_SECONDS * 50) { if (++losing >= 2) break; } else losing = 0;
  }
  const noDrop = Math.max(0, ...steps.filter((s) => s.drops === 0 && s.acks > 0).map((s) => s.achieved));
  const peak = Math.max(0, ...steps.map((s) => s.acks / STEP_SECONDS));
  return { name, steps, noDrop, peak };
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

async function ours(pair: NetnsPair, dir: string): Promise<Series | null> {
  const sock = join(dir, 'ours.sock');
  writeFileSync(join(dir, 'ours.conf'), JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: [pair.serverIf] },
      'lease-database': { type: 'sqlite', name: join(dir, 'ours.sqlite') },
      'valid-lifetime': 3600,
      subnet4: [{ id: 1, subnet: '10.98.0.0/16', pools: [{ pool: '10.98.0.10 - 10.98.255.250' }] }],
      'control-socket': { 'socket-type': 'unix', 'socket-name': sock },
      loggers: [{ name: 'kea-dhcp4', severity: 'WARN', output_options: [{ output: 'stderr' }] }],
    },
  }));
  const child = pair.spawn(pair.serverNs, 'env', ['-u', 'NODE_OPTIONS', SHIM, '-p', String(PORT), '--link', 'kernel', '-cf', join(dir, 'ours.conf')]);
  let err = '';
  child.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
  try {
    if (!await waitFile(sock, child, 20_000)) { note(`ipoib-dhcpd did not start: ${err.slice(-300)}`); return null; }
    return await series('ipoib-dhcpd', pair, sock);
  } finally {
    await stop(child);
  }
}

async function kea(pair: NetnsPair, dir: string): Promise<Series | null> {
  const sock = join(dir, 'kea.sock');
  writeFileSync(join(dir, 'kea.conf'), JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: [pair.serverIf], 'dhcp-socket-type': 'udp' },
      'lease-database': { type: 'memfile', persist: true, name: join(dir, 'kea-leases4.csv'), 'lfc-interval': 0 },
      'valid-lifetime': 3600,
      subnet4: [{ id: 1, subnet: '10.98.0.0/16', pools: [{ pool: '10.98.0.10 - 10.98.255.250' }] }],
      'control-socket': { 'socket-type': 'unix', 'socket-name': sock },
      loggers: [{ name: 'kea-dhcp4', severity: 'WARN', output_options: [{ output: 'stderr' }] }],
    },
  }));
  const env = { ...process.env, KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir };
  const child = pair.spawn(pair.serverNs, 'kea-dhcp4', ['-c', join(dir, 'kea.conf'), '-p', String(PORT)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
  try {
    if (!await waitFile(sock, child, 20_000)) { note(`kea-dhcp4 did not start: ${err.slice(-300)}`); return null; }
    await sleep(300);
    return await series('kea', pair);
  } finally {
    await stop(child);
  }
}

export async function run(): Promise<BenchResult[]> {
  const why = netnsSkipReason() ?? (which('perfdhcp') ? null : 'perfdhcp is not installed (apt-get install kea-admin)');
  if (why !== null) { note(`skipped: ${why}`); return []; }
  const dir = mkdtempSync(join(tmpdir(), 'ipoib-dhcpd-bench-'));
  const pair = createNetnsPair({ tag: 'bpd', serverAddress: `${SERVER}/16`, clientAddress: `${RELAY}/16` });
  const out: BenchResult[] = [];
  try {
    const a = await ours(pair, dir);
    const k = which('kea-dhcp4') ? await kea(pair, dir) : (note('kea-dhcp4 not installed (Debian kea-dhcp4-server): no Kea comparison'), null);
    const steps = (s: Series): string => s.steps.map((x) => `${x.rate}:${x.achieved.toFixed(0)}/${x.drops}d`).join(' ');
    if (a !== null) {
      const base = { suite: 'server', unit: 'DORA/s' };
      out.push({ ...base, name: 'ipoib-dhcpd no-drop rate (perfdhcp, SQLite durable)', value: a.noDrop,
        ...(k !== null && k.noDrop > 0 ? { ratio: { to: 'Kea 2.2 memfile', value: a.noDrop / k.noDrop } } : {}),
        note: `offered:achieved/drops ${steps(a)}` });
      out.push({ ...base, name: 'ipoib-dhcpd peak (perfdhcp, SQLite durable)', value: a.peak,
        ...(k !== null && k.peak > 0 ? { ratio: { to: 'Kea 2.2 memfile', value: a.peak / k.peak } } : {}) });
    }
    if (k !== null) {
      out.push({ suite: 'server', name: 'Kea 2.2 no-drop rate (perfdhcp, memfile, not durable)', value: k.noDrop, unit: 'DORA/s', note: `offered:achieved/drops ${steps(k)}` });
      out.push({ suite: 'server', name: 'Kea 2.2 peak (perfdhcp, memfile, not durable)', value: k.peak, unit: 'DORA/s' });
    }
    if (a !== null && k !== null) {
      note(`ratio ours/Kea: no-drop ${(a.noDrop / Math.max(1, k.noDrop)).toFixed(2)}x, peak ${(a.peak / Math.max(1, k.peak)).toFixed(2)}x`);
    }
  } finally {
    pair.remove();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
