// What a run of ipoib-cluster prints: one row per host (a table, or JSON with --json), the ping
// results, the cost of each phase (wall time, virtual time, packets by kind, deliveries) and a
// closing line with the totals people compare across sizes.
import type { IpoibMode } from '../../link/ipoib/index.js';
import type { NodeRow, PhaseCost } from './cluster.js';
import type { ReachResult } from './reach.js';
import { TRAFFIC_KINDS, type TrafficCounts } from './traffic.js';

export interface NodeReport extends NodeRow {
  /** The address on ib0 (static or leased); null when DHCP never bound it. */
  address: string | null;
  /** Option 61 sent by the host's client (hex with colons); DHCP form only. */
  clientId?: string;
  /** Virtual ms from the client's start to BOUND; null when not bound. DHCP form only. */
  timeToBoundMs?: number | null;
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
}

export interface ClusterReport {
  addressing: 'static' | 'dhcp';
  mode: IpoibMode;
  nodes: NodeReport[];
  server?: ServerReport;
  reach: ReachResult[];
  phases: PhaseCost[];
  totals: { wallMs: number; virtualMs: number; packets: TrafficCounts; delivered: number; notListened: number };
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
  const row = (n: NodeReport): string[] => dhcp
    ? [n.name, n.portGuid, String(n.lid), n.hwAddress, n.clientId ?? '', n.address ?? 'UNBOUND', n.mode, String(n.mtu),
      n.timeToBoundMs === null || n.timeToBoundMs === undefined ? '-' : ms(n.timeToBoundMs)]
    : [n.name, n.portGuid, String(n.lid), n.hwAddress, n.address ?? '-', n.mode, String(n.mtu)];
  let nodes = r.nodes;
  let skipped = 0;
  if (nodes.length > MAX_TABLE_ROWS) {
    skipped = nodes.length - MAX_TABLE_ROWS;
    nodes = [...nodes.slice(0, MAX_TABLE_ROWS / 2), ...nodes.slice(-MAX_TABLE_ROWS / 2)];
  }
  const rows = nodes.map(row);
  if (skipped > 0) rows.splice(MAX_TABLE_ROWS / 2, 0, header.map((_, i) => (i === 0 ? `... ${skipped} more` : '')));
  if (r.server !== undefined) {
    const s = r.server;
    out.push(`server ${s.name} ${s.address} port ${s.port} (clients ${s.port + 1}), pool ${s.pool}, leases in ${s.leaseDb}${s.leaseDbTemporary ? ' (temporary, removed at exit; --lease-db keeps them)' : ''}`);
  }
  out.push(table(header, rows));
  out.push('');
  for (const x of r.reach) {
    out.push(`ping ${x.plan}: ${x.ok}/${x.attempted} answered`);
    for (const f of x.failed.slice(0, 10)) out.push(`  ${f.from} -> ${f.toName} (${f.to}): ${f.error}`);
    if (x.failed.length > 10) out.push(`  ... and ${x.failed.length - 10} more`);
  }
  for (const p of r.phases) {
    out.push(`phase ${p.name}: ${ms(p.wallMs)} wall, ${ms(p.virtualMs)} virtual, ${packetsText(p.packets)}, ${p.delivered} delivered (${p.notListened} early-filtered)`);
  }
  if (r.server !== undefined) {
    const s = r.server;
    const kv = (o: Record<string, number>): string => Object.entries(o).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    out.push(`server: received ${kv(s.received)}; sent ${kv(s.sent)}; drops ${kv(s.drops)}; ${Math.round(s.doraPerSecond)} DORA/s; ${s.leasesInDb} leases in the database`);
  }
  if (r.capture !== undefined) {
    const c = r.capture;
    const files = [c.ipoib ? `${c.ipoib} (IPoIB, DLT 242: ${c.ipoibPackets} packets)` : '', c.raw ? `${c.raw} (raw IB, DLT 147: ${c.frames} frames)` : ''].filter((x) => x);
    out.push(`capture: ${files.join(', ')}${c.lost > 0 ? `, ${c.lost} records lost` : ''}`);
  }
  for (const p of r.problems.slice(0, 20)) out.push(`problem: ${p}`);
  if (r.problems.length > 20) out.push(`problem: ... and ${r.problems.length - 20} more`);
  const bound = dhcp ? `${r.nodes.filter((n) => n.address !== null).length}/${r.nodes.length} bound, ` : '';
  const t = r.totals;
  out.push(`${r.ok ? 'OK' : 'FAILED'}: ${r.nodes.length} host${r.nodes.length === 1 ? '' : 's'} (${r.addressing}, ${r.mode}), ${bound}${t.wallMs >= 1000 ? (t.wallMs / 1000).toFixed(2) + ' s' : Math.round(t.wallMs) + ' ms'} wall, ` +
    `${ms(t.virtualMs)} virtual, ${t.packets.total} packets on the fabric, ${t.delivered} deliveries`);
  return out.join('\n') + '\n';
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
