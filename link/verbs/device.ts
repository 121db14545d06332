// An emulated HCA seen through a verbs API shaped like libibverbs (ibv_open_device, ibv_query_port,
// ibv_alloc_pd, ibv_create_cq, ibv_create_qp, ibv_create_ah, ibv_attach_mcast, ibv_get_async_event):
// the device attaches its ports through a Transport, mirrors each port's PortInfo, raises async
// events on port changes, and does what the receiving HCA does with every packet: ICRC and header
// checks, DLID and QP demultiplexing, P_Key / Q_Key checks (in the QP), multicast replication to the
// QPs attached on the port and multicast / unicast loopback. QP1 (the GSI) is the device's own: MADs
// go through sendMad() / onMad() (see sa-client.ts).
import { isMulticastLid, OPCODE_RC_ACKNOWLEDGE, QKEY_QP1_WELL_KNOWN, QPN_MULTICAST } from '../wire/ib-constants.js';
import { portGid } from '../wire/ib-address.js';
import { PortCounters, type DropReason } from '../fabric/counters.js';
import { deriveNodeGuid, derivePortGuid } from '../fabric/guid.js';
import { buildPacket, newPacketFields, parsePacket, type PacketView } from '../fabric/packet-view.js';
import type { PortInfo, PortState } from '../fabric/port-info.js';
import type { Scheduler } from '../fabric/scheduler.js';
import type { PortLink, Transport } from '../fabric/transport.js';
import type { MulticastFilter } from '../fabric/multicast-filter.js';
import { CompletionQueue } from './cq.js';
import { VerbsError } from './errors.js';
import { Qp, type AddressHandle, type AhAttr, type QpDevice, type QpInitAttr, type QpPort } from './qp.js';

export type AsyncEventType = 'PORT_ACTIVE' | 'PORT_ERR' | 'LID_CHANGE' | 'PKEY_CHANGE' | 'SM_CHANGE';

export interface AsyncEvent {
  type: AsyncEventType;
  portNum: number;
}

/** ibv_port_attr, the fields a ULP reads. */
export interface PortAttr {
  state: PortState;
  lid: number;
  lmc: number;
  smLid: number;
  smSl: number;
  maxMtu: number;
  activeMtu: number;
  pkeyTableLen: number;
  gidTableLen: number;
  portGuid: bigint;
  subnetTimeout: number;
  rate: number;
}

export interface OpenDeviceOptions {
  hostName: string;
  scheduler: Scheduler;
  nodeGuid?: bigint;
  /** Number of HCA ports (default 1). */
  ports?: number;
  portGuids?: bigint[];
  /** MTU enum of every port (default 5 = 4096). */
  mtuCap?: number;
  /** Device name as ibv_get_device_name() gives it (default "mlx4_0"). */
  name?: string;
}

/** A MAD arriving on QP1: the MAD bytes (256) and where it came from, to answer it. */
export interface MadReceive {
  mad: Buffer;
  slid: number;
  sl: number;
  srcQp: number;
  pkey: number;
  grh: Buffer | undefined;
}

const IDLE_INFO = (portNum: number, portGuid: bigint, mtuCap: number): PortInfo => ({
  portGuid, portNum, state: 'DOWN', lid: 0, lmc: 0, smLid: 0, smSl: 0, subnetPrefix: 0xfe80000000000000n,
  pkeys: [], mtuCap, activeMtu: mtuCap, rate: 3, subnetTimeout: 0,
});

class DevicePort implements QpPort {
  info: PortInfo;
  gid: Buffer;
  readonly counters = new PortCounters();
  link: PortLink | undefined;
  /** MLID -> attached QPs; arrays are replaced, never mutated, so a delivery in progress is unaffected. */
  readonly mcast = new Map<number, Qp[]>();

  constructor(private readonly dev: Device, readonly portNum: number, readonly portGuid: bigint, mtuCap: number) {
    this.info = IDLE_INFO(portNum, portGuid, mtuCap);
    this.gid = portGid(portGuid);
  }

  transmit(buf: Buffer): void {
    this.dev.transmit(this, buf);
  }

  attach(qp: Qp, lid: number): void {
    this.mcast.set(lid, [...(this.mcast.get(lid) ?? []), qp]);
  }

  detach(qp: Qp, lid: number): void {
    const rest = (this.mcast.get(lid) ?? []).filter((q) => q !== qp);
    if (rest.length === 0) this.mcast.delete(lid);
    else this.mcast.set(lid, rest);
  }
}

export class ProtectionDomain {
  constructor(readonly device: Device) {}

  createQp(init: QpInitAttr): Qp {
    return this.device.newQp(init);
  }

  /** ibv_create_ah. */
  createAh(attr: AhAttr): AddressHandle {
    this.device.port(attr.portNum);
    if (!Number.isInteger(attr.dlid) || attr.dlid < 1 || attr.dlid > 0xffff) throw new VerbsError('BAD_ATTR', `AH DLID ${attr.dlid} is not a LID`);
    if (isMulticastLid(attr.dlid) && attr.grh === undefined) throw new VerbsError('BAD_ATTR', 'a multicast AH needs a GRH (DGID = MGID)');
    return { attr: { ...attr } };
  }
}

export class Device implements QpDevice {
  readonly name: string;
  readonly hostName: string;
  readonly nodeGuid: bigint;
  readonly scheduler: Scheduler;
  private readonly ports: DevicePort[] = [];
  private readonly qps = new Map<number, Qp>();
  private nextQpn: number;
  private readonly listeners = new Set<(e: AsyncEvent) => void>();
  private readonly eventQueue: AsyncEvent[] = [];
  private eventWaiters: ((e: AsyncEvent) => void)[] = [];
  private madHandlers: ((portNum: number, m: MadReceive) => void)[] = [];
  private gsiPsn = 0;
  closed = false;

  /** Use openDevice(). */
  constructor(opts: OpenDeviceOptions) {
    this.name = opts.name ?? 'mlx4_0';
    this.hostName = opts.hostName;
    this.nodeGuid = opts.nodeGuid ?? deriveNodeGuid(opts.hostName);
    this.scheduler = opts.scheduler;
    // QPNs differ from host to host and from one run of a QP to the next (IPOIB-FACTS §3.1).
    this.nextQpn = 0x48 + Number(this.nodeGuid % 0x3f00n) * 0x40;
    const n = opts.ports ?? 1;
    for (let p = 1; p <= n; p++) {
      this.ports.push(new DevicePort(this, p, opts.portGuids?.[p - 1] ?? derivePortGuid(this.nodeGuid, p), opts.mtuCap ?? 5));
    }
  }

  /** Attaches every port through the transport. */
  async attach(transport: Transport): Promise<void> {
    for (const p of this.ports) {
      p.link = await transport.attach({ hostName: this.hostName, nodeGuid: this.nodeGuid, portNum: p.portNum, portGuid: p.portGuid, mtuCap: p.info.mtuCap }, {
        packet: (buf, view) => this.receive(p, buf, view),
        portInfo: (info) => this.portInfoChanged(p, info),
      });
    }
  }

  port(portNum: number): DevicePort {
    const p = this.ports[portNum - 1];
    if (p === undefined) throw new VerbsError('BAD_ATTR', `${this.name} has no port ${portNum}`);
    return p;
  }

  get portCount(): number {
    return this.ports.length;
  }

  /** ibv_query_port. */
  queryPort(portNum: number): PortAttr {
    const i = this.port(portNum).info;
    return {
      state: i.state, lid: i.lid, lmc: i.lmc, smLid: i.smLid, smSl: i.smSl, maxMtu: i.mtuCap, activeMtu: i.activeMtu,
      pkeyTableLen: i.pkeys.length, gidTableLen: 1, portGuid: i.portGuid, subnetTimeout: i.subnetTimeout, rate: i.rate,
    };
  }

  /** ibv_query_gid (index 0: subnet prefix ‖ port GUID). */
  queryGid(portNum: number, index = 0): Buffer {
    if (index !== 0) throw new VerbsError('BAD_ATTR', `GID index ${index}: only index 0 exists`);
    return Buffer.from(this.port(portNum).gid);
  }

  /** ibv_query_pkey. */
  queryPkey(portNum: number, index: number): number {
    const k = this.port(portNum).info.pkeys[index];
    if (k === undefined) throw new VerbsError('BAD_ATTR', `P_Key index ${index} is beyond the table (${this.port(portNum).info.pkeys.length})`);
    return k;
  }

  /** Index of pkey (exact value) in the port's table, or -1 (what ib_find_pkey does). */
  findPkeyIndex(portNum: number, pkey: number): number {
    return this.port(portNum).info.pkeys.indexOf(pkey);
  }

  /** The HCA-side counters of a port (perfquery on this host). */
  counters(portNum: number): PortCounters {
    return this.port(portNum).counters;
  }

  allocPd(): ProtectionDomain {
    this.checkOpen();
    return new ProtectionDomain(this);
  }

  createCq(depth: number): CompletionQueue {
    this.checkOpen();
    return new CompletionQueue(depth);
  }

  /** Used by ProtectionDomain.createQp. */
  newQp(init: QpInitAttr): Qp {
    this.checkOpen();
    let qpn = this.nextQpn;
    while (this.qps.has(qpn) || qpn <= 1) qpn = (qpn + 1) & 0xffffff;
    this.nextQpn = (qpn + 1) & 0xffffff;
    const qp = new Qp(this, qpn, init);
    this.qps.set(qpn, qp);
    return qp;
  }

  unregister(qp: Qp): void {
    this.qps.delete(qp.qpNum);
  }

  private checkOpen(): void {
    if (this.closed) throw new VerbsError('DEVICE_CLOSED', `${this.name} on ${this.hostName} is closed`);
  }

  /** Detaches every port; QPs stop receiving. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.ports) p.link?.detach();
  }

  // ---- async events

  /** ibv_get_async_event as a listener. Returns an unsubscribe function. */
  onAsyncEvent(fn: (e: AsyncEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The next async event (queued ones first). */
  nextAsyncEvent(): Promise<AsyncEvent> {
    const e = this.eventQueue.shift();
    if (e !== undefined) return Promise.resolve(e);
    return new Promise((resolve) => this.eventWaiters.push(resolve));
  }

  private raise(e: AsyncEvent): void {
    // Delivered from a microtask: never re-enter the fabric from inside its own update.
    queueMicrotask(() => {
      for (const l of this.listeners) l(e);
      const w = this.eventWaiters.shift();
      if (w) w(e);
      else this.eventQueue.push(e);
      if (this.eventQueue.length > 1024) this.eventQueue.shift();
    });
  }

  private portInfoChanged(p: DevicePort, info: PortInfo): void {
    const old = p.info;
    p.info = info;
    p.gid = portGid(info.portGuid, info.subnetPrefix);
    const n = p.portNum;
    if (info.state === 'ACTIVE' && old.state !== 'ACTIVE') this.raise({ type: 'PORT_ACTIVE', portNum: n });
    else if (info.state !== 'ACTIVE' && old.state === 'ACTIVE') this.raise({ type: 'PORT_ERR', portNum: n });
    if (info.state === 'ACTIVE' && old.state === 'ACTIVE') {
      if (info.lid !== old.lid) this.raise({ type: 'LID_CHANGE', portNum: n });
      if (info.smLid !== old.smLid) this.raise({ type: 'SM_CHANGE', portNum: n });
    }
    if (old.pkeys.length > 0 && info.pkeys.join() !== old.pkeys.join()) this.raise({ type: 'PKEY_CHANGE', portNum: n });
  }

  // ---- data path

  /** A packet from a QP of this device: HCA loopback for our own LID and for multicast, the link otherwise. */
  transmit(p: DevicePort, buf: Buffer): void {
    const view = parsePacket(buf);
    view.markIcrcComputed();
    const dlid = view.dlid;
    if (isMulticastLid(dlid)) {
      this.deliverMulticast(p, view, true);
    } else if (dlid === p.info.lid && p.info.lid !== 0) {
      this.deliverUnicast(p, view);
      return;
    }
    const c = p.counters;
    c.xmitPkts++;
    c.xmitBytes += buf.length;
    if (isMulticastLid(dlid)) c.mcXmitPkts++;
    p.link?.send(buf, view);
  }

  /** A packet from the fabric. */
  private receive(p: DevicePort, buf: Buffer, given: PacketView | undefined): void {
    const c = p.counters;
    c.rcvPkts++;
    c.rcvBytes += buf.length;
    const v = given ?? parsePacket(buf);
    if (v.linkError !== undefined) { c.drop(v.linkError); return; }
    if (p.info.state !== 'ACTIVE') { c.drop('PORT_NOT_ACTIVE'); return; }
    if (!v.icrcOk()) { c.drop('BAD_ICRC'); return; }
    if (v.error !== undefined) { c.drop(v.error); return; }
    if (isMulticastLid(v.dlid)) {
      c.mcRcvPkts++;
      this.deliverMulticast(p, v, false);
    } else if (v.dlid !== p.info.lid) {
      c.drop('NO_ROUTE');
    } else {
      this.deliverUnicast(p, v);
    }
  }

  private deliverMulticast(p: DevicePort, v: PacketView, loopback: boolean): void {
    const c = p.counters;
    if (v.destQp !== QPN_MULTICAST) { c.drop('NO_QP'); return; }
    const qps = p.mcast.get(v.dlid);
    if (qps === undefined) { if (!loopback) c.drop('NOT_ATTACHED'); return; }
    for (let i = 0; i < qps.length; i++) {
      const qp = qps[i]!;
      if (loopback && qp.blockMulticastLoopback && qp.qpNum === v.srcQp) continue;
      const r = qp.receiveUd(v, p);
      if (r === undefined) continue;
      if (r === 'FILTERED') c.notListened++;
      else c.drop(r);
    }
  }

  private deliverUnicast(p: DevicePort, v: PacketView): void {
    const c = p.counters;
    if (v.destQp === 1) { this.receiveGsi(p, v); return; }
    const qp = this.qps.get(v.destQp);
    if (qp === undefined || qp.portNum !== p.portNum) { c.drop('NO_QP'); return; }
    let r: DropReason | 'FILTERED' | undefined;
    if (v.qkey !== -1 || qp.qpType === 'UD') r = qp.receiveUd(v, p);
    else r = qp.receiveRc(v, p);
    if (r === 'FILTERED') c.notListened++;
    else if (r !== undefined) c.drop(r);
  }

  // ---- QP1 / MADs

  private receiveGsi(p: DevicePort, v: PacketView): void {
    const c = p.counters;
    if (v.qkey === -1 || v.opcode === OPCODE_RC_ACKNOWLEDGE) { c.drop('QP_TYPE'); return; }
    if (!p.info.pkeys.some((k) => (k & 0x7fff) === (v.pkey & 0x7fff) && ((k | v.pkey) & 0x8000) !== 0)) { c.drop('PKEY_VIOLATION'); return; }
    if (v.qkey !== QKEY_QP1_WELL_KNOWN) { c.drop('QKEY_VIOLATION'); return; }
    if (v.payloadLength < 256) { c.drop('BAD_MAD'); return; }
    if (this.madHandlers.length === 0) { c.drop('NO_RECV_WQE'); return; }
    const m: MadReceive = {
      mad: Buffer.from(v.buf.subarray(v.payloadOffset, v.payloadOffset + 256)), slid: v.slid, sl: v.sl, srcQp: v.srcQp, pkey: v.pkey,
      grh: v.grhOffset >= 0 ? Buffer.from(v.buf.subarray(v.grhOffset, v.grhOffset + 40)) : undefined,
    };
    for (const h of this.madHandlers) h(p.portNum, m);
  }

  /**
   * Asks the fabric to deliver to this port only the packets to `mlid` that match `filter`
   * (multicast-filter.ts); the rest are counted by the fabric as delivered and not listened to.
   * Undefined removes the filter. Unlike a QP's `filter`, this one also saves the transport hop.
   */
  setMulticastFilter(portNum: number, mlid: number, filter: MulticastFilter | undefined): void {
    this.port(portNum).link?.setMulticastFilter?.(mlid, filter);
  }

  /** Registers a consumer of every MAD arriving on QP1 (an SA client, a CM agent). */
  onMad(handler: (portNum: number, m: MadReceive) => void): () => void {
    this.madHandlers.push(handler);
    return () => { this.madHandlers = this.madHandlers.filter((h) => h !== handler); };
  }

  /**
   * Sends a 256-byte MAD from QP1 to QP `destQp` (1 for GMPs) at `dlid`, with the well-known QP1
   * Q_Key, on the P_Key of table index `pkeyIndex` (the default P_Key by convention, index 0).
   */
  sendMad(portNum: number, mad: Buffer, dlid: number, opts: { sl?: number; destQp?: number; pkeyIndex?: number } = {}): void {
    this.checkOpen();
    const p = this.port(portNum);
    if (p.info.state !== 'ACTIVE') return;
    const f = newPacketFields();
    f.sl = opts.sl ?? p.info.smSl;
    f.dlid = dlid;
    f.slid = p.info.lid;
    f.pkey = p.info.pkeys[opts.pkeyIndex ?? 0] ?? 0xffff;
    f.destQp = opts.destQp ?? 1;
    f.psn = this.gsiPsn;
    this.gsiPsn = (this.gsiPsn + 1) & 0xffffff;
    f.qkey = QKEY_QP1_WELL_KNOWN;
    f.srcQp = 1;
    this.transmit(p, buildPacket(f, mad));
  }
}

/** ibv_open_device + attach: a device whose ports are plugged into the fabric through `transport`. */
export async function openDevice(transport: Transport, opts: OpenDeviceOptions): Promise<Device> {
  const d = new Device(opts);
  await d.attach(transport);
  return d;
}

