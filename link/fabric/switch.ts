// The switch: forwards whole IB packets by LRH.DLID (IBA 18.2.4: unicast through the linear
// forwarding table, multicast through the multicast forwarding table, both programmed by the SM)
// and counts every packet and every discard per port. It reads only the LRH (one parse per packet,
// shared with every receiver); transport checks (P_Key, Q_Key, QPs) belong to the receiving HCA.
import { isMulticastLid, isUnicastLid } from '../wire/ib-constants.js';
import { stampVcrc } from '../wire/ib-packet.js';
import { PortCounters, type DropReason } from './counters.js';
import type { PacketSink } from './fault.js';
import { compileMulticastFilter, copyFilter, filterParts, sameFilter, validateMulticastFilter, type CompiledFilter, type FilterParts, type MulticastFilter } from './multicast-filter.js';
import { McRoute, settlePort, type InstalledFilter, type McEntry } from './multicast-index.js';
import { parsePacket, type PacketView } from './packet-view.js';
import { mtuBytes, type PortInfo, type PortState } from './port-info.js';

/** What the host side of a link receives. */
export interface PortSink {
  /** A packet for this port. view is the switch's parse, shared by every receiver: never write to buf. */
  packet(buf: Buffer, view: PacketView | undefined): void;
  /** The port's PortInfo changed (state, LID, SM LID, P_Keys). */
  portInfo(info: PortInfo): void;
}

/** Switch-side record of one attached end port. Counters are from that end port's point of view. */
export class FabricPort {
  readonly counters = new PortCounters();
  info: PortInfo;
  /** Host -> switch path (may be wrapped by fault injection). */
  ingress: PacketSink;
  /** Switch -> host path (may be wrapped by fault injection). */
  egress: PacketSink;
  attached = true;
  /** Early filters by MLID (multicast-filter.ts); undefined while the port has none. */
  mcFilters: Map<number, InstalledFilter> | undefined;
  /** This port's place in each multicast route it receives (multicast-index.ts). */
  mcEntries: Map<number, McEntry> | undefined;
  /** info.activeMtu in bytes, cached for the per-delivery MTU check. */
  mtuBytes: number;

  constructor(
    readonly switchPort: number,
    readonly hostName: string,
    readonly nodeGuid: bigint,
    info: PortInfo,
    readonly sink: PortSink,
    ingressTo: (port: FabricPort, buf: Buffer, view: PacketView | undefined) => void,
  ) {
    this.info = info;
    this.mtuBytes = mtuBytes(info.activeMtu);
    this.ingress = (buf, view) => ingressTo(this, buf, view);
    this.egress = (buf, view) => this.sink.packet(buf, view);
    const settle = (): void => {
      // Unset while folding: settlePort writes through addDelivered, never through the accessors.
      this.counters.pending = undefined;
      settlePort(this.mcEntries);
      if (this.mcEntries !== undefined) this.counters.pending = settle;
    };
    this.settle = settle;
  }

  /** Folds the deliveries the switch counted in bulk for this port into its counters. */
  readonly settle: () => void;

  /** Called by the routes after this port's entries changed: counters fold lazily only while it has some. */
  entriesChanged(): void {
    this.counters.pending = this.mcEntries === undefined ? undefined : this.settle;
  }

  get portGuid(): bigint { return this.info.portGuid; }
  get lid(): number { return this.info.lid; }
  get state(): PortState { return this.info.state; }

  update(changes: Partial<PortInfo>): void {
    this.info = { ...this.info, ...changes };
    this.mtuBytes = mtuBytes(this.info.activeMtu);
    // State and MTU decide whether a route may count this port's deliveries in bulk.
    if (this.mcEntries !== undefined) for (const e of [...this.mcEntries.values()]) e.route.refresh(e);
    if (this.attached) this.sink.portInfo(this.info);
  }
}

/** Capture point (a port mirror on the switch): every packet a port sends, with the time it arrived. */
export type Tap = (buf: Buffer, timestampMs: number, from: FabricPort) => void;

export class Switch {
  /** LFT: LID -> port. */
  private readonly lft: (FabricPort | undefined)[] = new Array<FabricPort | undefined>(0xc000).fill(undefined);
  /** MFT: MLID -> ports that asked to receive (full and non members), with their filters indexed. */
  private readonly mft = new Map<number, McRoute>();
  private readonly taps: Tap[] = [];

  constructor(private readonly now: () => number) {}

  setUnicast(lid: number, port: FabricPort | undefined): void {
    if (isUnicastLid(lid)) this.lft[lid] = port;
  }

  unicastPort(lid: number): FabricPort | undefined {
    return this.lft[lid];
  }

  setMulticast(mlid: number, ports: readonly FabricPort[]): void {
    const r = this.mft.get(mlid);
    if (ports.length === 0) {
      if (r === undefined) return;
      r.clear();
      this.mft.delete(mlid);
    } else if (r === undefined) {
      const nr = new McRoute(mlid);
      this.mft.set(mlid, nr);
      nr.set(ports);
    } else {
      r.set(ports);
    }
    for (const p of ports) p.entriesChanged();
    if (r !== undefined) for (const e of r.entries) (e.port as FabricPort).entriesChanged();
  }

  /** The SM's list for mlid grew by one port at its end (a new receiving member): O(1), not O(members). */
  addMulticastPort(mlid: number, port: FabricPort): void {
    let r = this.mft.get(mlid);
    if (r === undefined) { r = new McRoute(mlid); this.mft.set(mlid, r); }
    r.add(port);
    port.entriesChanged();
  }

  /** One port left the SM's list for mlid; the others keep their order. */
  removeMulticastPort(mlid: number, port: FabricPort): void {
    const r = this.mft.get(mlid);
    if (r === undefined) return;
    r.remove(port);
    if (r.entries.length === 0) this.mft.delete(mlid);
    port.entriesChanged();
  }

  multicastPorts(mlid: number): readonly FabricPort[] {
    return (this.mft.get(mlid)?.ports ?? []) as FabricPort[];
  }

  /** Installs (or, with undefined, removes) port's early filter for mlid (PortLink.setMulticastFilter). */
  setMulticastFilter(port: FabricPort, mlid: number, filter: MulticastFilter | undefined): void {
    if (filter === undefined) {
      port.mcFilters?.delete(mlid);
      if (port.mcFilters?.size === 0) port.mcFilters = undefined;
    } else {
      // A host recomputes its filter at every neighbour change; most recomputations change nothing.
      const was = port.mcFilters?.get(mlid);
      if (was !== undefined && sameFilter(was.source, filter)) return;
      validateMulticastFilter(filter);
      const source = copyFilter(filter);
      const installed = new LazyFilter(filterParts(source), source);
      (port.mcFilters ??= new Map()).set(mlid, installed);
    }
    const e = port.mcEntries?.get(mlid);
    if (e !== undefined) e.route.refresh(e);
  }

  addTap(tap: Tap): () => void {
    this.taps.push(tap);
    return () => {
      const i = this.taps.indexOf(tap);
      if (i >= 0) this.taps.splice(i, 1);
    };
  }

  /** A packet from `from`'s HCA arrives at its switch port. Never throws on packet content. */
  forward(from: FabricPort, buf: Buffer, given: PacketView | undefined): void {
    const c = from.counters;
    c.xmitPkts++;
    c.xmitBytes += buf.length;
    if (this.taps.length > 0) {
      // The mirror is where a frame leaves the emulator: senders leave the per-hop VCRC unstamped
      // (packet-view.ts buildPacket says why), so it is written here, once, before anyone sees the bytes.
      stampVcrc(buf);
      for (const tap of this.taps) tap(buf, this.now(), from);
    }
    if (from.info.state !== 'ACTIVE') { c.drop('PORT_NOT_ACTIVE'); return; }
    const v = given ?? parsePacket(buf);
    if (v.linkError !== undefined) { c.drop(v.linkError); return; }
    if (v.slid !== from.info.lid) { c.drop('SLID_MISMATCH'); return; }
    const dlid = v.dlid;
    if (isUnicastLid(dlid)) {
      const to = this.lft[dlid];
      if (to === undefined) { c.drop('NO_ROUTE'); return; }
      const r = this.egressCheck(from, to, v);
      if (r !== undefined) { c.drop(r); return; }
      const tc = to.counters;
      tc.rcvPkts++;
      tc.rcvBytes += buf.length;
      to.egress(buf, v);
      return;
    }
    if (isMulticastLid(dlid)) {
      c.mcXmitPkts++;
      const route = this.mft.get(dlid);
      if (route === undefined) { c.drop('NO_ROUTE'); return; }
      // A switch never sends a multicast packet back out of the port it came from; the sending HCA
      // loops it back to its own attached QPs itself (IPOIB-FACTS §1.10).
      const picked = route.candidates(v, from, from.mtuBytes);
      // Indexed: only the members whose filter may accept v (the rest are counted by the route).
      const list = picked ?? route.entries;
      for (let i = 0; i < list.length; i++) {
        const e = list[i]!;
        const to = e.port as FabricPort;
        if (to === from) continue;
        const r = this.egressCheck(from, to, v);
        const tc = to.counters;
        if (r !== undefined) { tc.drop(r); continue; }
        tc.received(buf.length);
        const f = e.filter;
        // A packet the HCA would drop as damaged is handed over, so it is counted as such there.
        if (f !== undefined && v.error === undefined && v.icrcOk() && !f.compiled(v)) { tc.notListened++; continue; }
        to.egress(buf, v);
      }
      return;
    }
    c.drop('NO_ROUTE');
  }

  private egressCheck(from: FabricPort, to: FabricPort, v: PacketView): DropReason | undefined {
    if (to.info.state !== 'ACTIVE') return 'PORT_NOT_ACTIVE';
    // The path MTU is the smaller of the two links' active MTUs (single switch).
    if ((v.payloadLength > from.mtuBytes || v.payloadLength > to.mtuBytes) && v.error === undefined) return 'MTU_EXCEEDED';
    return undefined;
  }
}

/** An installed filter whose compiled check is built the first time a candidate packet needs it. */
class LazyFilter implements InstalledFilter {
  private fn: CompiledFilter | undefined;

  constructor(readonly parts: FilterParts, readonly source: MulticastFilter) {}

  get compiled(): CompiledFilter {
    return this.fn ??= compileMulticastFilter(this.source);
  }
}

