// An IPoIB network interface (ib0, ib1, the P_Key child ib0.8001) as the Linux driver runs it
// (drivers/infiniband/ulp/ipoib; IPOIB-FACTS §3-4, OFED 1.2 release notes §2-3): a UD QP on one
// HCA port; a 20-byte hardware address (RC flag when connected mode is built in, QPN, port GID);
// bring-up = port ACTIVE -> SA join of the IPv4 broadcast group -> Q_Key and MTU from the reply ->
// carrier on. Unicast destinations are resolved by PathRecord into address handles (at most 3
// packets wait per neighbour); multicast goes to joined groups or through send-only joins (64 wait).
// In connected mode, peers whose address has the RC flag are reached over RC connections
// (connected-mode.ts); everything else, and all multicast, over UD.
import { gidEquals, formatGid } from '../wire/ib-address.js';
import { QPN_MULTICAST, mtuToBytes, pkeyBase } from '../wire/ib-constants.js';
import { JoinState } from '../wire/mad-constants.js';
import { IPOIB_BROADCAST_JOIN_MASK, IPOIB_GROUP_JOIN_MASK, type McMemberRecord } from '../wire/mc-member-record.js';
import {
  IPOIB_FLAG_RC, encodeIpoibHwAddress, formatIpoibHwAddress, ipoibBroadcastAddress, isMulticastHwAddress,
  supportsConnectedMode, type IpoibHwAddress,
} from '../wire/ipoib-hw-address.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_RARP, ETHERTYPE_TIPC } from '../wire/ipoib-header.js';
import type { ByteMatch } from '../fabric/multicast-filter.js';
import type { PacketView } from '../fabric/packet-view.js';
import type { Scheduler, Timer } from '../fabric/scheduler.js';
import {
  ahAttrFromMcMember, ahAttrFromPathRecord, type AddressHandle, type AhAttr, type AsyncEvent, type CompletionQueue,
  type Device, type ProtectionDomain, type Qp, type SaClient, type WorkCompletion,
} from '../verbs/index.js';
import type { CmAgent, CmInterface, CmRx, CmTx } from './connected-mode.js';
import {
  IPOIB_CM_MTU, IPOIB_DEFAULT_UD_MTU, IPOIB_ENCAP_LEN, IPOIB_MAX_MCAST_QUEUE, IPOIB_MAX_PATH_REC_QUEUE, IPOIB_MIN_MTU,
  IPOIB_RX_RING_SIZE, JOIN_BACKOFF_FIRST_MS, JOIN_BACKOFF_MAX_MS,
} from './constants.js';
import { InterfaceCounters, type IfaceDropReason } from './counters.js';
import { IpoibError } from './errors.js';
import { emit, type IpoibLogger, type LogLevel } from './log.js';

export type IpoibMode = 'datagram' | 'connected';
/** Linux skb->pkt_type of a received frame (ipoib_ib_handle_rx_wc()). */
export type PacketType = 'host' | 'broadcast' | 'multicast';

/** What sits above the link: the host's IP stack. */
/**
 * What the host listens to on the broadcast group, as payload byte matches (multicast-filter.ts):
 * a packet matching no rule is one `LinkUpper.accept` would decline. Payloads shorter than
 * minPayload are always handed over.
 */
export interface Listening {
  rules: readonly (readonly ByteMatch[])[];
  minPayload: number;
}

export interface LinkUpper {
  /** Early filter on the shared packet, before a receive is consumed (DESIGN.md "Scale"). */
  accept(iface: IpoibInterface, v: PacketView): boolean;
  /** A frame for the host: EtherType, the packet after the IPoIB header (a read-only view), its sender. */
  receive(iface: IpoibInterface, ethertype: number, packet: Buffer, src: IpoibHwAddress | undefined, pktType: PacketType): void;
  /** A frame was too long for the path: the IP layer learns the MTU and tells the local sender. */
  tooLong(iface: IpoibInterface, frame: Buffer, mtu: number): void;
  carrierChanged(iface: IpoibInterface, on: boolean): void;
}

export interface InterfaceInit {
  name: string;
  hostName: string;
  device: Device;
  pd: ProtectionDomain;
  portNum: number;
  sa: SaClient;
  cm: CmAgent;
  upper: LinkUpper;
  logger?: IpoibLogger | undefined;
  /** Child interfaces: their P_Key. The parent uses P_Key table index 0. */
  pkey?: number;
  parent?: string;
  /** False: built without connected mode (OFED's --without-ipoib-cm): no RC flag, `mode connected` refused. */
  cmSupported: boolean;
  mode: IpoibMode;
}

interface Path {
  readonly gid: Buffer;
  ahAttr: AhAttr | undefined;
  ah: AddressHandle | undefined;
  pathMtu: number;
  rate: number;
  querying: boolean;
  readonly neighs: Set<IbNeigh>;
}

/** Linux's struct ipoib_neigh: one per 20-byte destination address. */
interface IbNeigh {
  readonly key: string;
  readonly hw: IpoibHwAddress;
  readonly path: Path;
  readonly queue: Buffer[];
  tx: CmTx | undefined;
  lastUse: number;
}

interface McGroup {
  readonly mgid: Buffer;
  readonly sendOnly: boolean;
  rec: McMemberRecord | undefined;
  ah: AddressHandle | undefined;
  readonly queue: Buffer[];
  joining: boolean;
  attached: boolean;
  refs: number;
}

/** One row of the driver's path/neighbour view (/sys/kernel/debug/ipoib/ib0_path). */
export interface IpoibNeighRow {
  hwAddress: string;
  dlid: number | undefined;
  via: 'ud' | 'rc' | 'rc-connecting' | 'pending';
  queued: number;
}

const TX_ETHERTYPES = new Set([ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_IPV6, ETHERTYPE_RARP, ETHERTYPE_TIPC]);

export class IpoibInterface implements CmInterface {
  readonly name: string;
  readonly hostName: string;
  readonly parent: string | undefined;
  readonly portNum: number;
  readonly device: Device;
  readonly cmSupported: boolean;
  readonly counters = new InterfaceCounters();
  readonly recvCq: CompletionQueue;
  readonly rcSendCq: CompletionQueue;
  private readonly sendCq: CompletionQueue;
  readonly qp: Qp;
  /** Configured P_Key (child) or the table's index-0 P_Key once known (parent). */
  pkey: number;
  pkeyIndex = 0;
  readonly hwAddress: IpoibHwAddress;
  private readonly hwBytes: Buffer;
  broadcast: IpoibHwAddress;
  private readonly sched: Scheduler;
  private readonly pd: ProtectionDomain;
  private readonly sa: SaClient;
  private readonly cm: CmAgent;
  private readonly upper: LinkUpper;
  private readonly logger: IpoibLogger | undefined;

  adminUp = false;
  carrier = false;
  mode: IpoibMode;
  /** The MTU asked for (ip link set mtu), kept while the effective one is capped. */
  adminMtu: number;
  mtu: number;
  /** Broadcast-group MTU - 4 (2044 with OpenSM's defaults). */
  mcastMtu = IPOIB_DEFAULT_UD_MTU;
  qkey = 0;
  private bcast: { rec: McMemberRecord; ah: AddressHandle } | undefined;
  /** Set by the host; installed at the switch for the broadcast group's MLID while it is joined. */
  private listening: Listening | undefined;
  /** The MLID whose switch-level filter this interface installed. */
  private filteredMlid: number | undefined;
  private joining = false;
  private joinTimer: Timer | undefined;
  private joinBackoff = JOIN_BACKOFF_FIRST_MS;
  private joinGeneration = 0;
  private portWasDown = false;
  private readonly paths = new Map<string, Path>();
  private readonly neighs = new Map<string, IbNeigh>();
  private readonly groups = new Map<string, McGroup>();
  private readonly lidToGid = new Map<number, Buffer>();
  private readonly peerFlags = new Map<string, number>();
  private readonly rxConns = new Map<number, CmRx>();
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(init: InterfaceInit) {
    this.name = init.name;
    this.hostName = init.hostName;
    this.parent = init.parent;
    this.portNum = init.portNum;
    this.device = init.device;
    this.pd = init.pd;
    this.sa = init.sa;
    this.cm = init.cm;
    this.upper = init.upper;
    this.logger = init.logger;
    this.sched = init.device.scheduler;
    this.cmSupported = init.cmSupported;
    if (init.mode === 'connected' && !init.cmSupported) throw new IpoibError('EOPNOTSUPP', `${init.name}: connected mode is not built in`);
    this.mode = init.mode;
    this.mtu = this.adminMtu = init.mode === 'connected' ? IPOIB_CM_MTU : IPOIB_DEFAULT_UD_MTU;
    this.pkey = init.pkey ?? 0xffff;
    if (init.pkey !== undefined) this.pkeyIndex = this.findPkeyIndex() ?? 0;
    this.recvCq = init.device.createCq(65536);
    this.sendCq = init.device.createCq(1024);
    this.rcSendCq = init.device.createCq(4096);
    this.qp = init.pd.createQp({ qpType: 'UD', sendCq: this.sendCq, recvCq: this.recvCq, cap: { maxRecvWr: IPOIB_RX_RING_SIZE } });
    this.qp.modify({ qpState: 'INIT', pkeyIndex: this.pkeyIndex, portNum: this.portNum, qkey: 0 });
    this.qp.modify({ qpState: 'RTR' });
    this.qp.modify({ qpState: 'RTS', sqPsn: 0 });
    for (let i = 0; i < IPOIB_RX_RING_SIZE; i++) this.qp.postRecv({ wrId: 0 });
    this.qp.filter = (v) => this.upper.accept(this, v);
    this.hwAddress = { flags: init.cmSupported ? IPOIB_FLAG_RC : 0, qpn: this.qp.qpNum, gid: this.device.queryGid(this.portNum) };
    this.hwBytes = encodeIpoibHwAddress(this.hwAddress);
    this.broadcast = ipoibBroadcastAddress(this.pkey);
    this.cm.register(this);
    this.unsubscribe = this.device.onAsyncEvent((e) => this.onAsyncEvent(e));
    void this.pollLoop();
  }

  get udQpn(): number {
    return this.qp.qpNum;
  }

  get lid(): number {
    return this.device.queryPort(this.portNum).lid;
  }

  /** The broadcast group's MLID while it is joined. */
  get broadcastMlid(): number | undefined {
    return this.bcast?.rec.mlid;
  }

  /**
   * The switch-level early filter (DESIGN.md "Scale"): the fabric hands this port only the
   * broadcast-group packets `listening` matches; undefined asks for every packet. The QP-level
   * `accept` still runs on what is handed over, so the switch filter only has to be no stricter.
   * Counters: a packet declined at the switch is counted by the switch port (rcvPkts, mcRcvPkts,
   * notListened) but not by this HCA port nor by rx_packets/rx_bytes/rx_multicast here, which a
   * real host would count; a packet declined by `accept` still is.
   */
  setListening(listening: Listening | undefined): void {
    this.listening = listening;
    this.installFilter();
  }

  private installFilter(): void {
    const bc = this.bcast;
    const l = this.listening;
    if (bc === undefined || l === undefined) { this.removeFilter(); return; }
    if (this.filteredMlid !== undefined && this.filteredMlid !== bc.rec.mlid) this.removeFilter();
    this.device.setMulticastFilter(this.portNum, bc.rec.mlid, {
      rules: l.rules,
      // What the HCA rejects on its own (another P_Key or Q_Key) still reaches it and is counted there.
      only: { pkey: this.device.queryPkey(this.portNum, this.pkeyIndex), qkey: bc.rec.qkey, minPayload: l.minPayload, multicastGrh: true },
    });
    this.filteredMlid = bc.rec.mlid;
  }

  private removeFilter(): void {
    if (this.filteredMlid === undefined) return;
    this.device.setMulticastFilter(this.portNum, this.filteredMlid, undefined);
    this.filteredMlid = undefined;
  }

  get portActive(): boolean {
    return this.device.queryPort(this.portNum).state === 'ACTIVE';
  }

  /** `cat /sys/class/net/ib0/mode`. */
  get sysfsMode(): string {
    return `${this.mode}\n`;
  }

  // ---- logging -------------------------------------------------------------------------------

  log(level: LogLevel, event: string, msg: string, fields: Record<string, unknown> = {}): void {
    emit(this.logger, { level, event, host: this.hostName, dev: this.name, msg, ...fields });
  }

  cmLog(event: string, msg: string, fields: Record<string, unknown> = {}): void {
    this.log('debug', event, msg, fields);
  }

  // ---- configuration (validated by the host before any change) -------------------------------

  /** Throws EINVAL / EOPNOTSUPP without changing anything; returns the check for a combined `link set`. */
  checkMode(mode: string): IpoibMode {
    if (mode !== 'datagram' && mode !== 'connected') throw new IpoibError('EINVAL', `${this.name}: mode "${mode}" is not datagram or connected`);
    if (mode === 'connected' && !this.cmSupported) {
      throw new IpoibError('EOPNOTSUPP', `${this.name}: connected mode is not supported (IPoIB built without connected mode)`);
    }
    return mode;
  }

  /** The MTU range of a mode: datagram up to the port's IB MTU - 4, connected up to 65520 (ipoib_change_mtu()). */
  mtuRange(mode: IpoibMode = this.mode): { min: number; max: number } {
    const max = mode === 'connected' ? IPOIB_CM_MTU : (mtuToBytes(this.device.queryPort(this.portNum).maxMtu) ?? 2048) - IPOIB_ENCAP_LEN;
    return { min: IPOIB_MIN_MTU, max };
  }

  checkMtu(mtu: number, mode: IpoibMode = this.mode): number {
    const { min, max } = this.mtuRange(mode);
    if (!Number.isInteger(mtu) || mtu < min || mtu > max) {
      throw new IpoibError('EINVAL', `${this.name}: MTU ${mtu} is out of range ${min}..${max} for ${mode} mode`);
    }
    return mtu;
  }

  /** echo connected|datagram > /sys/class/net/ib0/mode (ipoib_set_mode()). */
  setMode(mode: IpoibMode): void {
    this.checkMode(mode);
    if (mode === this.mode) return;
    if (mode === 'connected') {
      this.mode = 'connected';
      this.log('warn', 'mode_connected', `${this.name}: enabling connected mode will cause multicast packet drops`);
      this.applyMtu(IPOIB_CM_MTU);
    } else {
      this.mode = 'datagram';
      this.flushConnections();
      this.applyMtu(Math.min(this.mcastMtu, this.mtu));
    }
    this.log('info', 'mode', `${this.name}: mode ${mode}, mtu ${this.mtu}`, { mode, mtu: this.mtu });
  }

  /** ifconfig ib0 mtu N (ipoib_change_mtu()). */
  setMtu(mtu: number): void {
    this.checkMtu(mtu);
    this.applyMtu(mtu);
  }

  private applyMtu(mtu: number): void {
    this.adminMtu = mtu;
    // Datagram mode cannot exceed the broadcast group's MTU; connected mode can (and warns).
    this.mtu = this.mode === 'datagram' ? Math.min(this.mcastMtu, mtu) : mtu;
    if (this.mtu > this.mcastMtu) {
      this.log('warn', 'mtu_warning', `${this.name}: mtu > ${this.mcastMtu} will cause multicast packet drops.`, { mtu: this.mtu, mcastMtu: this.mcastMtu });
    }
  }

  // ---- up / down / port events ---------------------------------------------------------------

  up(): void {
    if (this.adminUp) return;
    this.adminUp = true;
    this.log('info', 'admin_up', `${this.name}: up`);
    if (this.portActive) this.startJoin();
  }

  down(): void {
    if (!this.adminUp) return;
    this.adminUp = false;
    this.log('info', 'admin_down', `${this.name}: down`);
    this.linkLost(true);
  }

  close(): void {
    this.down();
    this.closed = true;
    this.unsubscribe();
    this.cm.unregister(this);
    this.qp.destroy();
  }

  private onAsyncEvent(e: AsyncEvent): void {
    if (e.portNum !== this.portNum || this.closed) return;
    switch (e.type) {
      case 'PORT_ERR':
        this.portWasDown = true;
        this.log('warn', 'port_down', `${this.name}: port ${this.portNum} is down`);
        this.linkLost(false);
        return;
      case 'PORT_ACTIVE':
        if (this.portWasDown) {
          // OFED 1.2 known issue 3: after a hotplug event the interface is back in datagram mode, MTU 2K.
          this.portWasDown = false;
          this.mode = 'datagram';
          this.adminMtu = IPOIB_DEFAULT_UD_MTU;
          this.mtu = IPOIB_DEFAULT_UD_MTU;
          this.log('warn', 'hotplug_fallback', `${this.name}: port back after hotplug: falling back to datagram mode, mtu ${IPOIB_DEFAULT_UD_MTU}`);
        }
        if (this.adminUp) this.startJoin();
        return;
      case 'LID_CHANGE': case 'SM_CHANGE': case 'PKEY_CHANGE':
        // ipoib_ib_dev_flush(): paths and groups are stale; join again.
        this.log('info', 'flush', `${this.name}: ${e.type}: flushing paths and rejoining`);
        if (this.adminUp) { this.linkLost(false); if (this.portActive) this.startJoin(); }
        return;
    }
  }

  /** Carrier off; every path, neighbour, connection and group is forgotten (ipoib_mcast_dev_flush, ipoib_flush_paths). */
  private linkLost(leave: boolean): void {
    this.joinGeneration++;
    this.joining = false;
    this.joinTimer?.cancel();
    this.joinTimer = undefined;
    this.setCarrier(false);
    this.flushPaths();
    const bc = this.bcast;
    this.bcast = undefined;
    this.removeFilter();
    if (bc !== undefined) {
      this.qp.detachMcast(bc.rec.mgid, bc.rec.mlid);
      if (leave && this.portActive) {
        this.sa.leave({ mgid: bc.rec.mgid, joinState: JoinState.FULL_MEMBER }, IPOIB_BROADCAST_JOIN_MASK).catch(() => undefined);
      }
    }
    for (const g of this.groups.values()) {
      if (g.attached && g.rec !== undefined) this.qp.detachMcast(g.rec.mgid, g.rec.mlid);
      if (leave && g.rec !== undefined && this.portActive) {
        this.sa.leave({ mgid: g.rec.mgid, joinState: g.sendOnly ? JoinState.SEND_ONLY_FULL_MEMBER : JoinState.FULL_MEMBER }, IPOIB_BROADCAST_JOIN_MASK).catch(() => undefined);
      }
      g.attached = false;
      g.rec = undefined;
      g.ah = undefined;
      g.joining = false;
      for (const _ of g.queue.splice(0)) this.counters.drop('no_carrier', 'tx');
    }
    for (const [k, g] of this.groups) if (g.sendOnly) this.groups.delete(k);
  }

  private findPkeyIndex(): number | undefined {
    const table = this.device.queryPort(this.portNum).pkeyTableLen;
    let partial: number | undefined;
    for (let i = 0; i < table; i++) {
      const k = this.device.queryPkey(this.portNum, i);
      if (k === (this.pkey | 0x8000)) return i;
      if (pkeyBase(k) === pkeyBase(this.pkey) && partial === undefined) partial = i;
    }
    return partial;
  }

  /** ipoib_mcast_join_task(): the broadcast group first; carrier comes on only when it is joined. */
  private startJoin(): void {
    if (this.joining || this.bcast !== undefined) return;
    if (this.parent === undefined) {
      this.pkey = this.device.queryPkey(this.portNum, 0);
      this.broadcast = ipoibBroadcastAddress(this.pkey);
    } else {
      const idx = this.findPkeyIndex();
      if (idx === undefined) {
        this.log('warn', 'pkey_missing', `${this.name}: P_Key 0x${this.pkey.toString(16).padStart(4, '0')} not found in the port's table: no carrier until it appears`);
        return;
      }
      if (idx !== this.pkeyIndex) { this.pkeyIndex = idx; this.qp.modify({ qpState: 'RTS', pkeyIndex: idx }); }
    }
    this.joining = true;
    const gen = this.joinGeneration;
    const mgid = this.broadcast.gid;
    this.sa.join({ mgid, joinState: JoinState.FULL_MEMBER, pkey: this.pkey | 0x8000 }, IPOIB_BROADCAST_JOIN_MASK).then((rec) => {
      if (gen !== this.joinGeneration || !this.adminUp) return;
      this.joining = false;
      this.joinBackoff = JOIN_BACKOFF_FIRST_MS;
      this.qkey = rec.qkey;
      this.qp.modify({ qpState: 'RTS', qkey: rec.qkey });
      this.qp.attachMcast(rec.mgid, rec.mlid);
      this.bcast = { rec, ah: this.pd.createAh(ahAttrFromMcMember(rec, this.portNum)) };
      this.installFilter();
      this.mcastMtu = (mtuToBytes(rec.mtu) ?? 2048) - IPOIB_ENCAP_LEN;
      if (this.mode === 'datagram') this.mtu = Math.min(this.mcastMtu, this.adminMtu);
      this.log('info', 'bcast_joined', `${this.name}: joined broadcast group ${formatGid(rec.mgid)} MLID 0x${rec.mlid.toString(16)} Q_Key 0x${rec.qkey.toString(16)} MTU ${this.mcastMtu + 4}`,
        { mgid: formatGid(rec.mgid), mlid: rec.mlid, qkey: rec.qkey, mtu: this.mtu });
      this.setCarrier(true);
      for (const g of this.groups.values()) if (!g.sendOnly) this.joinGroup(g);
    }, (err: unknown) => {
      if (gen !== this.joinGeneration) return;
      this.joining = false;
      const delay = this.joinBackoff;
      this.joinBackoff = Math.min(this.joinBackoff * 2, JOIN_BACKOFF_MAX_MS);
      this.log('warn', 'bcast_join_failed', `${this.name}: broadcast join failed (${(err as Error).message}); retrying in ${delay / 1000} s`);
      this.joinTimer = this.sched.setTimer(delay, () => { this.joinTimer = undefined; if (this.adminUp && this.portActive) this.startJoin(); });
    });
  }

  private setCarrier(on: boolean): void {
    if (this.carrier === on) return;
    this.carrier = on;
    this.log('info', on ? 'carrier_on' : 'carrier_off', `${this.name}: carrier ${on ? 'on' : 'off'}`);
    this.upper.carrierChanged(this, on);
  }

  /** Resolves when the carrier is on (polling through the scheduler). */
  waitCarrier(): Promise<void> {
    if (this.carrier) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => { if (this.carrier) resolve(); else this.sched.setTimer(10, check); };
      this.sched.setTimer(0, check);
    });
  }

  // ---- multicast groups ------------------------------------------------------------------------

  /** Full-member join of an IPv4/IPv6 multicast group (ipoib_set_mcast_list -> join). Reference counted. */
  joinMulticast(mgid: Buffer): void {
    const m = this.normaliseMgid(mgid);
    const key = m.toString('hex');
    let g = this.groups.get(key);
    if (g !== undefined && !g.sendOnly) { g.refs++; return; }
    if (g !== undefined) this.groups.delete(key);
    g = { mgid: m, sendOnly: false, rec: undefined, ah: undefined, queue: g?.queue ?? [], joining: false, attached: false, refs: 1 };
    this.groups.set(key, g);
    if (this.carrier) this.joinGroup(g);
  }

  leaveMulticast(mgid: Buffer): void {
    const key = this.normaliseMgid(mgid).toString('hex');
    const g = this.groups.get(key);
    if (g === undefined || g.sendOnly || --g.refs > 0) return;
    this.groups.delete(key);
    if (g.attached && g.rec !== undefined) this.qp.detachMcast(g.rec.mgid, g.rec.mlid);
    if (g.rec !== undefined) this.sa.leave({ mgid: g.mgid, joinState: JoinState.FULL_MEMBER }, IPOIB_BROADCAST_JOIN_MASK).catch(() => undefined);
  }

  private normaliseMgid(mgid: Buffer): Buffer {
    // ipoib_start_xmit() rewrites the P_Key of every multicast destination to the interface's own.
    const m = Buffer.from(mgid);
    m.writeUInt16BE(this.pkey | 0x8000, 4);
    return m;
  }

  /** Joins with the broadcast group's parameters, enough to create the group (ipoib_mcast_join()). */
  private joinGroup(g: McGroup, retry = true): void {
    if (g.joining || g.rec !== undefined || this.bcast === undefined) return;
    g.joining = true;
    const b = this.bcast.rec;
    const gen = this.joinGeneration;
    this.sa.join({
      mgid: g.mgid, joinState: g.sendOnly ? JoinState.SEND_ONLY_FULL_MEMBER : JoinState.FULL_MEMBER, pkey: this.pkey | 0x8000,
      qkey: b.qkey, mtuSelector: 2, mtu: b.mtu, tclass: b.tclass, rateSelector: 2, rate: b.rate, sl: b.sl, flowLabel: b.flowLabel, hopLimit: b.hopLimit,
    }, IPOIB_GROUP_JOIN_MASK).then((rec) => {
      g.joining = false;
      if (gen !== this.joinGeneration || this.groups.get(g.mgid.toString('hex')) !== g) return;
      g.rec = rec;
      g.ah = this.pd.createAh(ahAttrFromMcMember(rec, this.portNum));
      if (!g.sendOnly) { this.qp.attachMcast(rec.mgid, rec.mlid); g.attached = true; }
      this.log('debug', 'mcast_joined', `${this.name}: joined ${formatGid(rec.mgid)}${g.sendOnly ? ' (send-only)' : ''} MLID 0x${rec.mlid.toString(16)}`);
      for (const f of g.queue.splice(0)) this.udSend(g.ah, QPN_MULTICAST, f);
    }, (err: unknown) => {
      g.joining = false;
      if (gen !== this.joinGeneration) return;
      // Send-only joins are retried once, then their packets are dropped (IPOIB-FACTS §3.8).
      if (retry) { this.joinGroup(g, false); return; }
      this.log('warn', 'mcast_join_failed', `${this.name}: join of ${formatGid(g.mgid)} failed: ${(err as Error).message}`);
      for (const _ of g.queue.splice(0)) this.counters.drop('mcast_join_failed', 'tx');
      if (g.sendOnly) this.groups.delete(g.mgid.toString('hex'));
    });
  }

  // ---- transmit --------------------------------------------------------------------------------

  /**
   * Sends one frame: `frame` holds 4 free bytes for the IPoIB header, then the packet. The frame
   * is handed to the HCA (copied into the IB packet) or queued; the caller must not reuse it.
   */
  send(dst: IpoibHwAddress, ethertype: number, frame: Buffer): void {
    if (!TX_ETHERTYPES.has(ethertype)) { this.counters.drop('bad_ethertype_tx', 'tx'); return; }
    frame.writeUInt16BE(ethertype, 0);
    frame.writeUInt16BE(0, 2);
    if (!this.carrier) { this.counters.drop('no_carrier', 'tx'); return; }
    if (isMulticastHwAddress(dst)) { this.sendMulticast(dst.gid, frame); return; }
    const key = hwKey(dst);
    let n = this.neighs.get(key);
    if (n === undefined) {
      const gkey = dst.gid.toString('hex');
      let path = this.paths.get(gkey);
      if (path === undefined) {
        path = { gid: Buffer.from(dst.gid), ahAttr: undefined, ah: undefined, pathMtu: 0, rate: 0, querying: false, neighs: new Set() };
        this.paths.set(gkey, path);
      }
      n = { key, hw: { flags: dst.flags, qpn: dst.qpn, gid: path.gid }, path, queue: [], tx: undefined, lastUse: 0 };
      this.neighs.set(key, n);
      path.neighs.add(n);
      this.peerFlags.set(peerKey(dst.qpn, dst.gid), dst.flags);
    }
    n.lastUse = this.sched.now();
    if (n.path.ah === undefined) {
      this.enqueue(n, frame);
      this.queryPath(n.path);
      return;
    }
    this.xmitNeigh(n, frame);
  }

  private enqueue(n: IbNeigh, frame: Buffer): void {
    if (n.queue.length >= IPOIB_MAX_PATH_REC_QUEUE) { this.counters.drop('path_queue_full', 'tx'); return; }
    n.queue.push(frame);
  }

  private usesCm(n: IbNeigh): boolean {
    return this.mode === 'connected' && this.cmSupported && supportsConnectedMode(n.hw);
  }

  private xmitNeigh(n: IbNeigh, frame: Buffer): void {
    if (!this.usesCm(n)) { this.udSend(n.path.ah!, n.hw.qpn, frame); return; }
    const tx = n.tx;
    if (tx !== undefined && tx.state === 'established') { this.cmSend(tx, frame); return; }
    this.enqueue(n, frame);
    if (tx === undefined) n.tx = this.cm.connect(this, n.hw, n.path.ahAttr!, n.path.pathMtu, n.path.rate);
  }

  private sendMulticast(gid: Buffer, frame: Buffer): void {
    const bc = this.bcast!;
    if (gidEquals(gid, this.broadcast.gid) || (gid[2] === 0x40 && gid[3] === 0x1b && gid.readUInt32BE(12) === 0xffffffff && gid.readUInt32BE(8) === 0 && gid.readUInt16BE(6) === 0)) {
      // The broadcast address, whatever P_Key the sender wrote into it (DHCP clients write 0).
      this.udSend(bc.ah, QPN_MULTICAST, frame);
      return;
    }
    const m = this.normaliseMgid(gid);
    const key = m.toString('hex');
    let g = this.groups.get(key);
    if (g === undefined) {
      g = { mgid: m, sendOnly: true, rec: undefined, ah: undefined, queue: [], joining: false, attached: false, refs: 0 };
      this.groups.set(key, g);
    }
    if (g.ah !== undefined) { this.udSend(g.ah, QPN_MULTICAST, frame); return; }
    if (g.queue.length >= IPOIB_MAX_MCAST_QUEUE) this.counters.drop('mcast_queue_full', 'tx');
    else g.queue.push(frame);
    this.joinGroup(g);
  }

  /** ipoib_send(): the UD length check, then post. */
  private udSend(ah: AddressHandle, qpn: number, frame: Buffer): void {
    const max = this.mcastMtu + IPOIB_ENCAP_LEN;
    if (frame.length > max) { this.tooLong(frame, max, this.mcastMtu); return; }
    this.qp.postSend({ wrId: 0, data: frame, ud: { ah, remoteQpn: qpn, remoteQkey: this.qkey } });
    this.counters.txPackets++;
    this.counters.txBytes += frame.length;
    if (this.sendCq.length > 0) this.reapSendErrors(this.sendCq.poll(this.sendCq.length));
  }

  private cmSend(tx: CmTx, frame: Buffer): void {
    if (frame.length > tx.mtu) { this.tooLong(frame, tx.mtu, tx.mtu - IPOIB_ENCAP_LEN); return; }
    tx.lastUse = this.sched.now();
    try {
      tx.qp.postSend({ wrId: 0, data: frame });
    } catch {
      this.counters.drop('send_error', 'tx');
      this.counters.txErrors++;
      return;
    }
    this.counters.txPackets++;
    this.counters.txBytes += frame.length;
    if (this.rcSendCq.length > 0) this.reapSendErrors(this.rcSendCq.poll(this.rcSendCq.length));
  }

  private tooLong(frame: Buffer, max: number, mtu: number): void {
    this.log('warn', 'too_long', `packet len ${frame.length} (> ${max}) too long to send, dropping`, { len: frame.length, max });
    this.counters.drop('too_long', 'tx');
    this.counters.txErrors++;
    this.upper.tooLong(this, frame, mtu);
  }

  private reapSendErrors(wcs: WorkCompletion[]): void {
    for (const wc of wcs) {
      if (wc.status === 'SUCCESS') continue;
      this.counters.txErrors++;
      const c = this.cm.connByQpn(wc.qpNum);
      if (c?.dir === 'tx' && wc.status !== 'WR_FLUSH_ERR') this.cm.disconnect(c);
    }
  }

  private queryPath(path: Path): void {
    if (path.querying) return;
    path.querying = true;
    const gen = this.joinGeneration;
    this.sa.pathRecord(path.gid, this.pkey | 0x8000, { tclass: this.bcast?.rec.tclass ?? 0 }).then((pr) => {
      path.querying = false;
      if (gen !== this.joinGeneration || this.paths.get(path.gid.toString('hex')) !== path) return;
      path.ahAttr = ahAttrFromPathRecord(pr, this.portNum);
      path.ah = this.pd.createAh(path.ahAttr);
      path.pathMtu = pr.mtu;
      path.rate = pr.rate;
      this.lidToGid.set(pr.dlid, Buffer.from(path.gid));
      for (const n of path.neighs) {
        const q = n.queue.splice(0);
        for (const f of q) this.xmitNeigh(n, f);
      }
    }, (err: unknown) => {
      path.querying = false;
      if (gen !== this.joinGeneration) return;
      // path_rec_completion() on error: every neighbour of that GID goes, with its queue.
      this.log('warn', 'path_failed', `${this.name}: PathRecord for ${formatGid(path.gid)} failed: ${(err as Error).message}`);
      for (const n of path.neighs) {
        for (const _ of n.queue.splice(0)) this.counters.drop('path_failed', 'tx');
        this.neighs.delete(n.key);
      }
      this.paths.delete(path.gid.toString('hex'));
    });
  }

  /** Forgets paths and neighbours; queued packets are dropped; TX connections closed. */
  flushPaths(): void {
    for (const n of this.neighs.values()) {
      for (const _ of n.queue.splice(0)) this.counters.drop('no_carrier', 'tx');
      if (n.tx !== undefined) { const tx = n.tx; n.tx = undefined; this.cm.disconnect(tx); }
    }
    this.neighs.clear();
    this.paths.clear();
    for (const rx of [...this.rxConns.values()]) this.cm.disconnect(rx);
  }

  private flushConnections(): void {
    for (const n of this.neighs.values()) {
      if (n.tx !== undefined) { const tx = n.tx; n.tx = undefined; this.cm.disconnect(tx); }
    }
  }

  // ---- CM callbacks ----------------------------------------------------------------------------

  cmUp(tx: CmTx): void {
    const n = this.neighs.get(hwKey(tx.peer));
    if (n === undefined || n.tx !== tx) return;
    for (const f of n.queue.splice(0)) this.cmSend(tx, f);
  }

  cmDown(tx: CmTx, why: string): void {
    const n = this.neighs.get(hwKey(tx.peer));
    if (n === undefined || n.tx !== tx) return;
    n.tx = undefined;
    if (tx.state !== 'established' && why !== 'disconnected') for (const _ of n.queue.splice(0)) this.counters.drop('cm_failed', 'tx');
  }

  rxAttached(rx: CmRx): void {
    this.rxConns.set(rx.qp.qpNum, rx);
    this.peerFlags.set(peerKey(rx.peer.qpn, rx.peer.gid), IPOIB_FLAG_RC);
  }

  rxDetached(rx: CmRx): void {
    this.rxConns.delete(rx.qp.qpNum);
  }

  // ---- receive ---------------------------------------------------------------------------------

  private async pollLoop(): Promise<void> {
    while (!this.closed) {
      await this.recvCq.nextEvent();
      for (const wc of this.recvCq.poll(256)) this.handleWc(wc);
    }
  }

  private handleWc(wc: WorkCompletion): void {
    if (wc.qpNum === this.qp.qpNum) {
      if (this.qp.state === 'RTS' && !this.closed) this.qp.postRecv({ wrId: 0 });
      if (wc.status === 'SUCCESS') this.udReceive(wc);
      return;
    }
    const rx = this.rxConns.get(wc.qpNum);
    if (rx === undefined || wc.status !== 'SUCCESS') return;
    rx.qp.postRecv({ wrId: 0 });
    rx.lastUse = this.sched.now();
    this.deliver(wc.data!, rx.peer, 'host');
  }

  private udReceive(wc: WorkCompletion): void {
    if (wc.srcQp === this.qp.qpNum && wc.slid === this.lid) return;
    const data = wc.data!;
    const grh = wc.grh;
    let pktType: PacketType = 'host';
    let gid: Buffer | undefined;
    if (grh !== undefined) {
      gid = Buffer.from(grh.subarray(8, 24));
      if (grh[24] === 0xff) pktType = grh.subarray(24, 40).equals(this.broadcast.gid) ? 'broadcast' : 'multicast';
    } else {
      gid = this.lidToGid.get(wc.slid);
    }
    // The UD completion carries the sender's QPN and (GRH) GID, not its flags byte: the RC flag is
    // taken from what we already know of that peer (ARP, CM), else left 0.
    const src: IpoibHwAddress | undefined = gid === undefined ? undefined
      : { flags: this.peerFlags.get(peerKey(wc.srcQp, gid)) ?? 0, qpn: wc.srcQp, gid };
    this.deliver(data, src, pktType);
  }

  private deliver(data: Buffer, src: IpoibHwAddress | undefined, pktType: PacketType): void {
    const c = this.counters;
    c.rxPackets++;
    c.rxBytes += data.length;
    if (pktType !== 'host') c.rxMulticast++;
    if (data.length < IPOIB_ENCAP_LEN) { c.rxErrors++; c.drop('runt', 'rx'); return; }
    this.upper.receive(this, data.readUInt16BE(0), data.subarray(IPOIB_ENCAP_LEN), src, pktType);
  }

  /** Counts a delivery the early filter declined, as the interface would have (rx_packets/bytes). */
  countFiltered(v: PacketView): void {
    const c = this.counters;
    c.rxPackets++;
    c.rxBytes += v.payloadLength;
    if (v.grhOffset >= 0 && v.buf[v.grhOffset + 24] === 0xff) c.rxMulticast++;
  }

  /** Learns a peer's flags byte from an ARP packet (so received UD frames report it). */
  learnPeer(hw: IpoibHwAddress): void {
    this.peerFlags.set(peerKey(hw.qpn, hw.gid), hw.flags);
  }

  // ---- views -----------------------------------------------------------------------------------

  get hwAddressText(): string {
    return formatIpoibHwAddress(this.hwAddress);
  }

  get hwAddressBytes(): Buffer {
    return Buffer.from(this.hwBytes);
  }

  /** The driver's neighbours: which ones go over RC, UD, or wait. */
  ipoibNeighbours(): IpoibNeighRow[] {
    return [...this.neighs.values()].map((n) => ({
      hwAddress: formatIpoibHwAddress(n.hw),
      dlid: n.path.ahAttr?.dlid,
      via: n.path.ah === undefined ? 'pending' : !this.usesCm(n) ? 'ud' : n.tx?.state === 'established' ? 'rc' : 'rc-connecting',
      queued: n.queue.length,
    }));
  }

  /** Live CM connections of this interface. */
  connections(): { dir: 'tx' | 'rx'; state: string; peerQpn: number; mtu: number }[] {
    return this.cm.connections(this).map((c) => ({ dir: c.dir, state: c.state, peerQpn: c.peer.qpn, mtu: c.dir === 'tx' ? c.mtu : 0 }));
  }

  /** Multicast groups known to the interface (joined or send-only). */
  multicastGroups(): { mgid: string; sendOnly: boolean; joined: boolean; queued: number }[] {
    return [...this.groups.values()].map((g) => ({ mgid: formatGid(g.mgid), sendOnly: g.sendOnly, joined: g.rec !== undefined, queued: g.queue.length }));
  }
}

function hwKey(a: IpoibHwAddress): string {
  return encodeIpoibHwAddress(a).toString('hex');
}

function peerKey(qpn: number, gid: Buffer): string {
  return `${qpn}:${gid.toString('hex')}`;
}
