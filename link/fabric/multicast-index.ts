// One MLID's route through the switch (its MFT entry: the receiving ports, in the SM's order) with
// an index of those ports' early filters (multicast-filter.ts, DESIGN.md "Scale"). With 10,000
// ports in a broadcast group, running every port's filter on every broadcast is the boot storm's
// quadratic cost. The index groups the filters' rules by shape (multicast-filter.ts filterParts():
// the rule minus its key match) and, per shape, the ports by key value, so a packet costs one run
// per shape plus one lookup of its own bytes, and yields the only ports whose filter can accept it.
//
// The other ports' deliveries still happen, as counts: rcvPkts, rcvBytes, mcRcvPkts, notListened
// grow by exactly what the unindexed loop would have added, but lazily. The route keeps a ledger of
// the packets and bytes it forwarded on the indexed path; a port's share is the ledger minus its
// base, and every port the packet was handled for one by one (the candidates, the sender) has its
// base moved past the packet. PortCounters folds the share in whenever it is read, so no reader
// can tell the difference.
import type { PacketView } from './packet-view.js';
import { inScope, keyOf, ruleProgram, runRule, type CompiledFilter, type FilterParts, type FilterScope, type MulticastFilter } from './multicast-filter.js';

/** What the route needs of a switch port (FabricPort, without importing the switch). */
export interface RoutePort {
  readonly counters: { addDelivered(pkts: number, bytes: number): void };
  readonly mtuBytes: number;
  readonly info: { readonly state: string };
  /** This port's early filters by MLID. */
  mcFilters: Map<number, InstalledFilter> | undefined;
  /** This port's route entries by MLID. */
  mcEntries: Map<number, McEntry> | undefined;
}

export interface InstalledFilter {
  /** The per-port check of a candidate packet; compiled on first use (most filters are replaced before one is needed). */
  readonly compiled: CompiledFilter;
  parts: FilterParts;
  /** The filter as installed (a private copy), to recognise a reinstall that changes nothing. */
  source: MulticastFilter;
}

export interface McEntry {
  readonly port: RoutePort;
  readonly route: McRoute;
  /** Position in the MFT list: deliveries happen in this order on every path. */
  order: number;
  /** The port's installed filter for this MLID (its compiled check runs on each candidate packet). */
  filter: InstalledFilter | undefined;
  /** Indexed (ACTIVE, with a filter): its declined packets are counted through the ledger. */
  bulk: boolean;
  scope: ScopeGroup | undefined;
  regs: Reg[];
  /** The port's MTU when it was indexed (the route's MTU census is by this). */
  mtu: number;
  basePkts: number;
  baseBytes: number;
  /** Epoch of the last packet that picked this entry (deduplicates candidates). */
  seen: number;
}

interface Reg {
  shape: Shape;
  value: number | string;
}

interface ScopeGroup {
  sig: string;
  only: FilterScope | undefined;
  entries: Set<McEntry>;
  shapes: Map<string, Shape>;
}

interface Shape {
  sig: string;
  program: Int32Array;
  keyOffset: number;
  /** 0: no key, every port of the shape is a candidate when the rest holds. */
  keyLength: number;
  byValue: Map<number | string, Set<McEntry>>;
  refs: number;
}

/** Beyond this many unindexed members a packet takes the plain loop (sorting them would cost more). */
const PLAIN_LIMIT = 64;

export class McRoute {
  readonly entries: McEntry[] = [];
  ledgerPkts = 0;
  ledgerBytes = 0;
  /** Members visited on every packet: no filter for this MLID, or the port is not ACTIVE. */
  readonly plain = new Set<McEntry>();
  private readonly scopes = new Map<string, ScopeGroup>();
  /** Active MTU (bytes) -> indexed members with it: the indexed path needs a packet every one of them takes. */
  private readonly mtus = new Map<number, number>();
  private minMtuBytes = Infinity;
  private epoch = 0;
  /** Orders only need to grow along the list: appends take the next one, removals leave gaps. */
  private nextOrder = 0;

  constructor(readonly mlid: number) {}

  get ports(): RoutePort[] {
    return this.entries.map((e) => e.port);
  }

  /** Appends a receiving port (the SM's list grew by one at its end). */
  add(port: RoutePort): void {
    if (port.mcEntries?.has(this.mlid) === true) return;
    const e: McEntry = { port, route: this, order: this.nextOrder++, filter: undefined, bulk: false, scope: undefined, regs: [], mtu: 0, basePkts: 0, baseBytes: 0, seen: 0 };
    this.entries.push(e);
    (port.mcEntries ??= new Map()).set(this.mlid, e);
    this.plain.add(e);
    this.refresh(e);
  }

  /** Replaces the member list (any change other than an append). */
  set(ports: readonly RoutePort[]): void {
    const keep = new Set(ports);
    for (const e of this.entries) if (!keep.has(e.port)) this.drop(e);
    this.entries.length = 0;
    for (const p of ports) {
      const e = p.mcEntries?.get(this.mlid);
      if (e === undefined) this.add(p);
      else { e.order = this.nextOrder++; this.entries.push(e); }
    }
  }

  /** Takes one port out of the list. */
  remove(port: RoutePort): void {
    const e = port.mcEntries?.get(this.mlid);
    if (e === undefined) return;
    this.drop(e);
    const i = this.entries.indexOf(e);
    if (i >= 0) this.entries.splice(i, 1);
  }

  /** Empties the route (its MLID left the MFT); every share is folded into its port's counters first. */
  clear(): void {
    for (const e of this.entries) this.drop(e);
    this.entries.length = 0;
  }

  private drop(e: McEntry): void {
    this.unindex(e);
    this.plain.delete(e);
    const p = e.port;
    p.mcEntries?.delete(this.mlid);
    if (p.mcEntries?.size === 0) p.mcEntries = undefined;
  }

  /** The port's filter or state changed: move the entry to where it now belongs. */
  refresh(e: McEntry): void {
    const f = e.port.mcFilters?.get(this.mlid);
    e.filter = f;
    if (f === undefined || e.port.info.state !== 'ACTIVE') { this.unindex(e); this.plain.add(e); return; }
    const parts = f.parts;
    if (e.bulk && e.scope!.sig === parts.scope && e.mtu === e.port.mtuBytes) { this.rekey(e, e.scope!, parts); return; }
    this.unindex(e);
    this.plain.delete(e);
    e.bulk = true;
    e.basePkts = this.ledgerPkts;
    e.baseBytes = this.ledgerBytes;
    let g = this.scopes.get(parts.scope);
    if (g === undefined) { g = { sig: parts.scope, only: parts.only, entries: new Set(), shapes: new Map() }; this.scopes.set(parts.scope, g); }
    g.entries.add(e);
    e.scope = g;
    this.rekey(e, g, parts);
    const m = e.port.mtuBytes;
    e.mtu = m;
    this.mtus.set(m, (this.mtus.get(m) ?? 0) + 1);
    if (m < this.minMtuBytes) this.minMtuBytes = m;
  }

  /**
   * Moves an indexed entry's rules to `parts`, touching only the rules that changed (a host's new
   * filter usually differs from the last by one neighbour). Its share of the ledger is unaffected:
   * whether it was a candidate was decided packet by packet with the filter of the moment.
   */
  private rekey(e: McEntry, g: ScopeGroup, parts: FilterParts): void {
    const old = e.regs;
    const kept: boolean[] = new Array<boolean>(old.length).fill(false);
    const next: Reg[] = [];
    for (const r of parts.rules) {
      let sh = g.shapes.get(r.shape);
      if (sh === undefined) {
        sh = { sig: r.shape, program: ruleProgram(r.rest), keyOffset: r.key?.offset ?? 0, keyLength: r.key?.length ?? 0, byValue: new Map(), refs: 0 };
        g.shapes.set(r.shape, sh);
      }
      const value = r.key?.value ?? 0;
      let j = 0;
      while (j < old.length && (kept[j] === true || old[j]!.shape !== sh || old[j]!.value !== value)) j++;
      if (j < old.length) { kept[j] = true; next.push(old[j]!); continue; }
      let set = sh.byValue.get(value);
      if (set === undefined) { set = new Set(); sh.byValue.set(value, set); }
      set.add(e);
      sh.refs++;
      next.push({ shape: sh, value });
    }
    e.regs = next;
    for (let j = 0; j < old.length; j++) if (kept[j] !== true) unregister(e, g, old[j]!, next);
  }

  /** Folds the entry's share into its port's counters and takes it out of the index. */
  private unindex(e: McEntry): void {
    if (!e.bulk) return;
    settleEntry(e);
    e.bulk = false;
    const g = e.scope!;
    g.entries.delete(e);
    const regs = e.regs;
    e.regs = [];
    for (const r of regs) unregister(e, g, r, e.regs);
    if (g.entries.size === 0) this.scopes.delete(g.sig);
    e.scope = undefined;
    const m = e.mtu;
    const n = (this.mtus.get(m) ?? 1) - 1;
    if (n > 0) this.mtus.set(m, n);
    else {
      this.mtus.delete(m);
      this.minMtuBytes = Infinity;
      for (const k of this.mtus.keys()) if (k < this.minMtuBytes) this.minMtuBytes = k;
    }
  }

  /**
   * The members v must be handed to one by one, in MFT order, with everything else counted through
   * the ledger (as delivered and not listened); undefined when v must take the plain loop: a
   * damaged packet (filters never decline one), one some indexed member's MTU refuses, or too many
   * unindexed members. `from`'s entry (a switch never sends a packet back out of its port) is
   * neither returned nor counted.
   */
  candidates(v: PacketView, from: RoutePort, fromMtu: number): McEntry[] | undefined {
    if (v.error !== undefined || !v.icrcOk() || v.payloadLength > fromMtu || v.payloadLength > this.minMtuBytes || this.plain.size > PLAIN_LIMIT) return undefined;
    const ep = ++this.epoch;
    const out: McEntry[] = [];
    const len = v.buf.length;
    const self = from.mcEntries?.get(this.mlid);
    if (self !== undefined) {
      self.seen = ep;
      if (self.bulk) { self.basePkts++; self.baseBytes += len; }
    }
    for (const e of this.plain) if (e.seen !== ep) { e.seen = ep; out.push(e); }
    for (const g of this.scopes.values()) {
      if (g.only !== undefined && !inScope(v, g.only)) { pick(g.entries, ep, out, len); continue; }
      for (const sh of g.shapes.values()) {
        let set: Set<McEntry> | undefined;
        if (sh.keyLength === 0) set = sh.byValue.get(0);
        else if (sh.keyOffset + sh.keyLength <= v.payloadLength) set = sh.byValue.get(keyOf(v.buf, v.payloadOffset + sh.keyOffset, sh.keyLength));
        if (set !== undefined && runRule(sh.program, v)) pick(set, ep, out, len);
      }
    }
    this.ledgerPkts++;
    this.ledgerBytes += len;
    if (out.length > 1) out.sort(byOrder);
    return out;
  }
}

/** Drops one rule registration of e; `still` are its registrations that stay (one may hold the same key). */
function unregister(e: McEntry, g: ScopeGroup, r: Reg, still: readonly Reg[]): void {
  const sh = r.shape;
  sh.refs--;
  let shared = false;
  for (const x of still) if (x.shape === sh && x.value === r.value) { shared = true; break; }
  if (!shared) {
    const set = sh.byValue.get(r.value);
    if (set !== undefined && set.delete(e) && set.size === 0) sh.byValue.delete(r.value);
  }
  if (sh.refs === 0) g.shapes.delete(sh.sig);
}

function pick(set: Set<McEntry>, ep: number, out: McEntry[], len: number): void {
  for (const e of set) {
    if (e.seen === ep) continue;
    e.seen = ep;
    e.basePkts++;
    e.baseBytes += len;
    out.push(e);
  }
}

function byOrder(a: McEntry, b: McEntry): number {
  return a.order - b.order;
}

function settleEntry(e: McEntry): void {
  const r = e.route;
  const pkts = r.ledgerPkts - e.basePkts;
  if (pkts === 0) return;
  e.port.counters.addDelivered(pkts, r.ledgerBytes - e.baseBytes);
  e.basePkts = r.ledgerPkts;
  e.baseBytes = r.ledgerBytes;
}

/** Folds every pending share of a port into its counters (PortCounters calls it before any read). */
export function settlePort(entries: Map<number, McEntry> | undefined): void {
  if (entries === undefined) return;
  for (const e of entries.values()) if (e.bulk) settleEntry(e);
}
