// What a run of ipoib-cluster prints: one row per host (a table, or JSON with --json), the ping
// results, the cost of each phase (wall time, virtual time, packets by kind, deliveries) and a
// closing line with the totals people compare across sizes.
import type { IpoibMode } from '../../link/ipoib/index.js';
import type { NodeRow, PhaseCost } from './cluster.js';
import type { FaultStats } from '../../link/fabric/fault.js';
import type { ClusterFaults } from './faults.js';
import type { IsolationResult, ReachResult } from './reach.js';
import { TRAFFIC_KINDS, type TrafficCounts } from './traffic.js';

export interface NodeReport extends NodeRow {
  /** The address on ib0 (static or leased); null when DHCP never bound it. */
  address: string | null;
  /** Option 61 sent by the host's client (hex with colons); DHCP form only. */
  clientId?: string;
  /** Virtual ms from the client's start to BOUND; null when not bound. DHCP form only. */
  timeToBoundMs?: number | null;
  /** ib0's P_Key ("0x8001"), with --partitions above 1. */
  pkey?: string;
}

export interface ServerReport {
  name: string;
  address: string;
  port: number;
  leaseDb: string;
  /** The lease file is in a temporary directory removed at exit (no --lease-db). */
  leaseDbTemporary: boolean;
  pool: string;
  /** Messages the engine received and sent, by type (discover, offer, request, ack...). */
  received: Record<string, number>;
  sent: Record<string, number>;
  drops: Record<string, number>;
  /** DORA exchanges per wall-clock second, from the first DISCOVER received to the last ACK sent. */
  doraPerSecond: number;
  leasesInDb: number;
  /** The server's interfaces (ib0, or ib0.8001... with --partitions), each with its address. */
  interfaces?: string[];
  /** Bound leases in the database last written by this server (--servers above 1). */
  leasesGranted?: number;
  /**
   * Lease writes the shared database refused (--servers above 1): another server had committed the
   * address first, so the reply was withheld and the client retried.
   */
  commitsRefused?: number;
  /** Group commits of a SQLite lease store: transactions, and the lease writes they carried. */
  commits?: { transactions: number; writes: number };
}

/** --loss, --dup, --reorder, --delay as asked, and what the fabric did (link/fabric/fault.ts FaultStats). */
export interface FaultReport extends ClusterFaults {
  lost: number;
  duplicated: number;
  reordered: number;
  delayed: number;
}

/** The multi-process form: where the fabric was, how the hosts were grouped, what --kill-server-every did. */
export interface ProcessesReport {
  fabric: string;
  /** The run started the fabric daemon (--fabric spawn). */
  spawned: boolean;
  groups: number;
  /** SIGKILLs sent to the server, and restarts that got it serving again. */
  serverKills: number;
  serverRestarts: number;
  /** Wall ms from each kill until the restarted server was ready (its port GUID freed by the fabric's keep-alive timeout). */
  restartMs: number[];
}

export interface ClusterReport {
  addressing: 'static' | 'dhcp';
  mode: IpoibMode;
  nodes: NodeReport[];
  server?: ServerReport;
  /** Every server with --servers above 1 (server is then the first of them). */
  servers?: ServerReport[];
  /** --partitions above 1: how many, and the partitions.conf the SM ran with. */
  partitions?: { count: number; conf: string };
  /** Cross-partition pings that must go unanswered (--partitions above 1). */
  isolation?: IsolationResult;
  faults?: FaultReport;
  /** --fabric spawn|HOST:PORT: the OS processes of the run (processes.ts). */
  processes?: ProcessesReport;
  reach: ReachResult[];
  phases: PhaseCost[];
  /** boundMs: wall ms from the start of the run until the last host was bound (DHCP runs in which every host bound). */
  totals: { wallMs: number; virtualMs: number; packets: TrafficCounts; delivered: number; notListened: number; boundMs?: number };
  capture?: { ipoib?: string; raw?: string; frames: number; ipoibPackets: number; lost: number };
  /** Everything that makes the run fail, one sentence each; empty: exit 0. */
  problems: string[];
  ok: boolean;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function ms(v: number): string {
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
}

function packetsText(p: TrafficCounts): string {
  const parts = TRAFFIC_KINDS.filter((k) => p[k] > 0).map((k) => `${k} ${p[k]}`);
  return `${p.total} sent (${parts.join(', ') || 'none'})`;
}

/** Most runs print every host; very large ones print the first and last rows and say how many were left out. */
const MAX_TABLE_ROWS = 200;

export function formatReport(r: ClusterReport): string {
  const out: string[] = [];
  const dhcp = r.addressing === 'dhcp';
  const header = dhcp
    ? ['NAME', 'PORT GUID', 'LID', 'HARDWARE ADDRESS', 'CLIENT IDENTIFIER', 'LEASED ADDRESS', 'MODE', 'MTU', 'BOUND AFTER']
    : ['NAME', 'PORT GUID', 'LID', 'HARDWARE ADDRESS', 'ADDRESS', 'MODE', 'MTU'];
  const withPkey = r.partitions !== undefined;
  if (withPkey) header.splice(3, 0, 'PKEY');
  const row = (n: NodeReport): string[] => {
    const cells = dhcp
      ? [n.name, n.portGuid, String(n.lid), n.hwAddress, n.clientId ?? '', n.address ?? 'UNBOUND', n.mode, String(n.mtu),
        n.timeToBoundMs === null || n.timeToBoundMs === undefined ? '-' : ms(n.timeToBoundMs)]
      : [n.name, n.portGuid, String(n.lid), n.hwAddress, n.address ?? '-', n.mode, String(n.mtu)];
    if (withPkey) cells.splice(3, 0, n.pkey ?? '-');
    return cells;
  };
  let nodes = r.nodes;
  let skipped = 0;
  if (nodes.length > MAX_TABLE_ROWS) {
    skipped = nodes.length - MAX_TABLE_ROWS;
    nodes = [...nodes.slice(0, MAX_TABLE_ROWS / 2), ...nodes.slice(-MAX_TABLE_ROWS / 2)];
  }
  const rows = nodes.map(row);
  if (skipped > 0) rows.splice(MAX_TABLE_ROWS / 2, 0, header.map((_, i) => (i === 0 ? `... ${skipped} more` : '')));
  const servers = r.servers ?? (r.server !== undefined ? [r.server] : []);
  for (const s of servers) {
    out.push(`server ${s.name} ${s.address} port ${s.port} (clients ${s.port + 1}), pool ${s.pool}, leases in ${s.leaseDb}${s.leaseDbTemporary ? ' (temporary, removed at exit; --lease-db keeps them)' : ''}` +
      (s.interfaces !== undefined && s.interfaces.length > 1 ? `, serving ${s.interfaces.join(', ')}` : ''));
  }
  if (r.partitions !== undefined) out.push(`partitions: ${r.partitions.count} (P_Keys 0x8001-0x${(0x8000 + r.partitions.count).toString(16)}), hosts round-robin, each with its own subnet 10.k.0.0/16`);
  out.push(table(header, rows));
  out.push('');
  for (const x of r.reach) {
    out.push(`ping ${x.plan}: ${x.ok}/${x.attempted} answered`);
    for (const f of x.failed.slice(0, 10)) out.push(`  ${f.from} -> ${f.toName} (${f.to}): ${f.error}`);
    if (x.failed.length > 10) out.push(`  ... and ${x.failed.length - 10} more`);
  }
  if (r.isolation !== undefined) {
    const x = r.isolation;
    out.push(`ping ${x.plan}: ${x.blocked}/${x.attempted} unanswered`);
    for (const f of x.leaked.slice(0, 10)) out.push(`  LEAK: ${f.from} -> ${f.toName} (${f.to}) answered across partitions`);
  }
  for (const p of r.phases) {
    out.push(`phase ${p.name}: ${ms(p.wallMs)} wall, ${ms(p.virtualMs)} virtual, ${packetsText(p.packets)}, ${p.delivered} delivered (${p.notListened} early-filtered)`);
  }
  for (const s of servers) {
    const kv = (o: Record<string, number>): string => Object.entries(o).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    const mine = s.leasesGranted !== undefined ? `; ${s.leasesGranted} bound leases granted` : '';
    const conflicts = (s.commitsRefused !== undefined ? `; ${s.commitsRefused} lease writes refused (address taken by another server)` : '') +
      (s.commits !== undefined && s.commits.transactions > 0
        ? `; ${s.commits.writes} lease writes in ${s.commits.transactions} commits (${(s.commits.writes / s.commits.transactions).toFixed(1)} a commit)` : '');
    out.push(`server${servers.length > 1 ? ` ${s.name}` : ''}: received ${kv(s.received)}; sent ${kv(s.sent)}; drops ${kv(s.drops)}; ` +
      `${Math.round(s.doraPerSecond)} DORA/s${mine}${conflicts}; ${s.leasesInDb} leases in the database`);
  }
  if (r.faults !== undefined) out.push(`faults: ${faultsText(r.faults)}`);
  if (r.capture !== undefined) {
    const c = r.capture;
    const files = [c.ipoib ? `${c.ipoib} (IPoIB, DLT 242: ${c.ipoibPackets} packets)` : '', c.raw ? `${c.raw} (raw IB, DLT 147: ${c.frames} frames)` : ''].filter((x) => x);
    out.push(`capture: ${files.join(', ')}${c.lost > 0 ? `, ${c.lost} records lost` : ''}`);
  }
  if (r.processes !== undefined) {
    const x = r.processes;
    out.push(`processes: fabric ${x.fabric}${x.spawned ? ' (started for the run)' : ''}, ${x.groups} host groups, server killed ${x.serverKills} time(s), restarted ${x.serverRestarts}` +
      (x.restartMs.length > 0 ? ` (back after ${Math.round(Math.min(...x.restartMs))}..${Math.round(Math.max(...x.restartMs))} ms)` : ''));
  }
  for (const p of r.problems.slice(0, 20)) out.push(`problem: ${p}`);
  if (r.problems.length > 20) out.push(`problem: ... and ${r.problems.length - 20} more`);
  const bound = dhcp ? `${r.nodes.filter((n) => n.address !== null).length}/${r.nodes.length} bound, ` : '';
  const t = r.totals;
  const extra = [
    r.servers !== undefined ? `${r.servers.length} servers` : '',
    r.partitions !== undefined ? `${r.partitions.count} partitions` : '',
    r.faults !== undefined ? `${r.faults.lost} lost, ${r.faults.duplicated} duplicated, ${r.faults.reordered} reordered` : '',
  ].filter((x) => x !== '').map((x) => `, ${x}`).join('');
  const allBound = t.boundMs === undefined ? '' : `all bound after ${(t.boundMs / 1000).toFixed(2)} s, `;
  out.push(`${r.ok ? 'OK' : 'FAILED'}: ${r.nodes.length} host${r.nodes.length === 1 ? '' : 's'} (${r.addressing}, ${r.mode}${extra}), ${bound}${allBound}${t.wallMs >= 1000 ? (t.wallMs / 1000).toFixed(2) + ' s' : Math.round(t.wallMs) + ' ms'} wall, ` +
    `${ms(t.virtualMs)} virtual, ${t.packets.total} packets on the fabric, ${t.delivered} deliveries`);
  return out.join('\n') + '\n';
}

/** The counts a FaultReport carries, from the injector's stats. */
export function faultCounts(s: FaultStats): Pick<FaultReport, 'lost' | 'duplicated' | 'reordered' | 'delayed'> {
  return { lost: s.lost, duplicated: s.duplicated, reordered: s.reordered, delayed: s.delayed };
}

/** "loss 20%, dup 20%, reorder 20%: 311 lost, 290 duplicated, 280 reordered (of 1544 packets sent)". */
export function faultsText(f: FaultReport, withStats = true): string {
  const pct = (v: number): string => `${+(v * 100).toFixed(2)}%`;
  const asked = [f.loss > 0 ? `loss ${pct(f.loss)}` : '', f.duplicate > 0 ? `dup ${pct(f.duplicate)}` : '',
    f.reorder > 0 ? `reorder ${pct(f.reorder)}` : '', f.delayMs > 0 ? `delay ${f.delayMs} ms` : ''].filter((x) => x !== '').join(', ');
  return withStats ? `${asked}: ${f.lost} lost, ${f.duplicated} duplicated, ${f.reordered} reordered, ${f.delayed} delayed` : asked;
}

export function reportJson(r: ClusterReport): string {
  return JSON.stringify(r, null, 2) + '\n';
}

/** Sums the phases. */
export function totals(phases: readonly PhaseCost[]): ClusterReport['totals'] {
  const packets = { total: 0, multicast: 0 } as TrafficCounts;
  for (const k of TRAFFIC_KINDS) packets[k] = 0;
  let wallMs = 0;
  let virtualMs = 0;
  let delivered = 0;
  let notListened = 0;
  for (const p of phases) {
    wallMs += p.wallMs;
    virtualMs += p.virtualMs;
    delivered += p.delivered;
    notListened += p.notListened;
    for (const k of [...TRAFFIC_KINDS, 'total', 'multicast'] as const) packets[k] += p.packets[k];
  }
  return { wallMs, virtualMs, packets, delivered, notListened };
}

/** "X is held by both A and B", for every address two hosts of the run hold. */
export function sharedAddressProblems(nodes: readonly NodeReport[]): string[] {
  const out: string[] = [];
  const holders = new Map<string, string>();
  for (const n of nodes) {
    if (n.address === null) continue;
    const other = holders.get(n.address);
    if (other !== undefined) out.push(`${n.address} is held by both ${other} and ${n.name}`);
    holders.set(n.address, n.name);
  }
  return out;
}
