// The switch: forwards whole IB packets by LRH.DLID (IBA 18.2.4: unicast through the linear
// forwarding table, multicast through the multicast forwarding table, both programmed by the SM)
// and counts every packet and every discard per port. It reads only the LRH (one parse per packet,
// shared with every receiver); transport checks (P_Key, Q_Key, QPs) belong to the receiving HCA.
import { isMulticastLid, isUnicastLid } from '../wire/ib-constants.js';
import { PortCounters, type DropReason } from './counters.js';
import type { PacketSink } from './fault.js';
import type { CompiledFilter } from './multicast-filter.js';
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
  mcFilters: Map<number, CompiledFilter> | undefined;
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
  }

  get portGuid(): bigint { return this.info.portGuid; }
  get lid(): number { return this.info.lid; }
  get state(): PortState { return this.info.state; }

  update(changes: Partial<PortInfo>): void {
    this.info = { ...this.info, ...changes };
    this.mtuBytes = mtuBytes(this.info.activeMtu);
    if (this.attached) this.sink.portInfo(this.info);
  }
}

/** Capture point (a port mirror on the switch): every packet a port sends, with the time it arrived. */
export type Tap = (buf: Buffer, timestampMs: number, from: FabricPort) => void;

export class Switch {
  /** LFT: LID -> port. */
  private readonly lft: (FabricPort | undefined)[] = new Array<FabricPort | undefined>(0xc000).fill(undefined);
  /** MFT: MLID -> ports that asked to receive (full and non members). */
  private readonly mft = new Map<number, FabricPort[]>();
  private readonly taps: Tap[] = [];

  constructor(private readonly now: () => number) {}

  setUnicast(lid: number, port: FabricPort | undefined): void {
    if (isUnicastLid(lid)) this.lft[lid] = port;
  }

  unicastPort(lid: number): FabricPort | undefined {
    return this.lft[lid];
  }

  setMulticast(mlid: number, ports: FabricPort[]): void {
    if (ports.length === 0) this.mft.delete(mlid);
    else this.mft.set(mlid, ports);
  }

  multicastPorts(mlid: number): readonly FabricPort[] {
    return this.mft.get(mlid) ?? [];
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
    for (const tap of this.taps) tap(buf, this.now(), from);
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
      const members = this.mft.get(dlid);
      if (members === undefined) { c.drop('NO_ROUTE'); return; }
      // A switch never sends a multicast packet back out of the port it came from; the sending HCA
      // loops it back to its own attached QPs itself (IPOIB-FACTS §1.10).
      for (let i = 0; i < members.length; i++) {
        const to = members[i]!;
        if (to === from) continue;
        const r = this.egressCheck(from, to, v);
        const tc = to.counters;
        if (r !== undefined) { tc.drop(r); continue; }
        tc.rcvPkts++;
        tc.rcvBytes += buf.length;
        tc.mcRcvPkts++;
        const filters = to.mcFilters;
        if (filters !== undefined) {
          const f = filters.get(dlid);
          // A packet the HCA would drop as damaged is handed over, so it is counted as such there.
          if (f !== undefined && v.error === undefined && v.icrcOk() && !f(v)) { tc.notListened++; continue; }
        }
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
