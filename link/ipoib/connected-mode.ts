// IPoIB connected mode (RFC 4755 as Linux ipoib_cm.c implements it; IPOIB-FACTS §4): one CM agent
// per HCA. The active side opens an RC connection to a peer's UD QPN with a CM REQ (service ID
// 0x1000000000000000 | peer UD QPN, 8 bytes of private data: own UD QPN + receive MTU 65524), the
// passive side answers REP with its own, the active side completes with RTU. Each direction is its
// own connection (TX = ours to a peer, RX = a peer's to us). Idle connections are closed with
// DREQ/DREP. MADs travel over QP1 of the device (Device.sendMad / onMad), as real bytes.
import { CmRejReason, decodeCmMad, encodeCmMad, cmMessageMad, ipoibCmDataOf, ipoibPrivateData, CM_REQ_PRIVATE_DATA_SIZE, CM_REP_PRIVATE_DATA_SIZE, CmRejectedMessage, type CmReq, type CmRep, type CmMessage } from '../wire/cm.js';
import { IPOIB_CM_SERVICE_ID_IETF, MgmtClass } from '../wire/mad-constants.js';
import { formatGid } from '../wire/ib-address.js';
import { IPOIB_FLAG_RC, type IpoibHwAddress } from '../wire/ipoib-hw-address.js';
import { isWireError } from '../../codec/wire-error.js';
import type { Scheduler, Timer } from '../fabric/scheduler.js';
import type { AhAttr, CompletionQueue, Device, MadReceive, ProtectionDomain, Qp } from '../verbs/index.js';
import {
  CM_IDLE_TIMEOUT_MS, CM_MAX_RETRIES, CM_RC_RETRY_COUNT, CM_RC_TIMEOUT_ENUM, CM_REAP_INTERVAL_MS, CM_RESPONSE_TIMEOUT_MS,
  IPOIB_CM_BUF_SIZE, IPOIB_CM_RX_RING_SIZE, IPOIB_CM_SERVICE_ID, IPOIB_ENCAP_LEN,
} from './constants.js';

/** What the agent needs from an interface. */
export interface CmInterface {
  readonly name: string;
  readonly portNum: number;
  readonly udQpn: number;
  readonly pkeyIndex: number;
  readonly pkey: number;
  /** False = built "--without-ipoib-cm": REQs are rejected. */
  readonly cmSupported: boolean;
  readonly recvCq: CompletionQueue;
  readonly rcSendCq: CompletionQueue;
  /** REP received and RTU sent: the queued packets can go. */
  cmUp(tx: CmTx): void;
  /** The TX connection failed, was rejected or closed. */
  cmDown(tx: CmTx, why: string): void;
  rxAttached(rx: CmRx): void;
  rxDetached(rx: CmRx): void;
  cmLog(event: string, msg: string, fields?: Record<string, unknown>): void;
}

export interface CmTx {
  readonly dir: 'tx';
  state: 'connecting' | 'established' | 'closed';
  readonly iface: CmInterface;
  readonly qp: Qp;
  readonly localCommId: number;
  remoteCommId: number;
  readonly peer: IpoibHwAddress;
  readonly ahAttr: AhAttr;
  readonly pathMtu: number;
  /** The peer's receive MTU from its REP, including the 4-byte header (65524). */
  mtu: number;
  lastUse: number;
  retries: number;
  timer: Timer | undefined;
  readonly tid: bigint;
}

export interface CmRx {
  readonly dir: 'rx';
  state: 'rep_sent' | 'established' | 'closed';
  readonly iface: CmInterface;
  readonly qp: Qp;
  readonly localCommId: number;
  readonly remoteCommId: number;
  readonly peerLid: number;
  /** The peer's 20-byte address: RC flag, its UD QPN (REQ private data), its GID (REQ primary path). */
  readonly peer: IpoibHwAddress;
  lastUse: number;
  readonly tid: bigint;
  rep: Buffer;
}

export type CmConn = CmTx | CmRx;

export class CmAgent {
  private readonly ifaces = new Map<number, CmInterface>();
  private readonly conns = new Map<number, CmConn>();
  private readonly byQpn = new Map<number, CmConn>();
  private nextCommId: number;
  private tid: bigint;
  private reaper: Timer | undefined;
  private readonly unsubscribe: () => void;
  /** CM MADs that did not decode or matched nothing. */
  badMads = 0;
  unmatched = 0;

  constructor(private readonly device: Device, private readonly pd: ProtectionDomain, private readonly sched: Scheduler) {
    this.nextCommId = Number(device.nodeGuid & 0xffffn) * 0x10000 + 1;
    this.tid = ((device.nodeGuid & 0xffffn) << 48n) | (0x7n << 40n);
    this.unsubscribe = device.onMad((port, m) => { if (m.mad[1] === MgmtClass.COMM_MGMT) this.onMad(port, m); });
  }

  close(): void {
    this.unsubscribe();
    this.reaper?.cancel();
    for (const c of [...this.conns.values()]) this.destroy(c);
  }

  register(iface: CmInterface): void {
    this.ifaces.set(key(iface.portNum, iface.udQpn), iface);
  }

  unregister(iface: CmInterface): void {
    this.ifaces.delete(key(iface.portNum, iface.udQpn));
    for (const c of [...this.conns.values()]) if (c.iface === iface) this.disconnect(c);
  }

  /** Connection by the local QPN a completion arrived on. */
  connByQpn(qpn: number): CmConn | undefined {
    return this.byQpn.get(qpn);
  }

  connections(iface?: CmInterface): CmConn[] {
    return [...this.conns.values()].filter((c) => iface === undefined || c.iface === iface);
  }

  /** Opens a TX connection to peer over the given path (ipoib_cm_tx_init + ipoib_cm_send_req). */
  connect(iface: CmInterface, peer: IpoibHwAddress, ahAttr: AhAttr, pathMtu: number, rate: number): CmTx {
    const qp = this.pd.createQp({ qpType: 'RC', sendCq: iface.rcSendCq, recvCq: iface.recvCq });
    qp.modify({ qpState: 'INIT', pkeyIndex: iface.pkeyIndex, portNum: iface.portNum });
    const tx: CmTx = {
      dir: 'tx', state: 'connecting', iface, qp, localCommId: this.commId(), remoteCommId: 0, peer, ahAttr, pathMtu,
      mtu: 0, lastUse: this.sched.now(), retries: 0, timer: undefined, tid: this.tid++,
    };
    this.track(tx);
    const port = this.device.queryPort(iface.portNum);
    const req: CmReq = {
      localCommId: tx.localCommId, reserved4: Buffer.alloc(4), serviceId: IPOIB_CM_SERVICE_ID | BigInt(peer.qpn),
      localCaGuid: this.device.nodeGuid, reserved24: Buffer.alloc(4), localQkey: 0, localQpn: qp.qpNum,
      responderResources: 4, localEecn: 0, initiatorDepth: 0, remoteEecn: 0, remoteCmResponseTimeout: 20,
      transportServiceType: 0, endToEndFlowControl: false, startingPsn: 0, localCmResponseTimeout: 20, retryCount: 0,
      pkey: iface.pkey, pathMtu, rdcExists: false, rnrRetryCount: 0, maxCmRetries: CM_MAX_RETRIES, srq: false,
      extendedTransportType: 0, primaryLocalLid: port.lid, primaryRemoteLid: ahAttr.dlid,
      primaryLocalGid: this.device.queryGid(iface.portNum), primaryRemoteGid: Buffer.from(peer.gid),
      primaryFlowLabel: 0, primaryReserved88: 0, primaryPacketRate: rate, primaryTrafficClass: 0, primaryHopLimit: 0,
      primarySl: ahAttr.sl ?? 0, primarySubnetLocal: true, primaryReserved94: 0, primaryLocalAckTimeout: CM_RC_TIMEOUT_ENUM,
      primaryReserved95: 0, alternatePath: Buffer.alloc(44), privateData: ipoibPrivateData(iface.udQpn, CM_REQ_PRIVATE_DATA_SIZE, IPOIB_CM_BUF_SIZE),
    };
    const mad = encodeCmMad(cmMessageMad(tx.tid, { kind: 'REQ', body: req }));
    const sendReq = (): void => {
      this.device.sendMad(iface.portNum, mad, ahAttr.dlid, { destQp: 1, pkeyIndex: iface.pkeyIndex });
      tx.timer = this.sched.setTimer(CM_RESPONSE_TIMEOUT_MS, () => {
        tx.timer = undefined;
        if (tx.state !== 'connecting') return;
        if (tx.retries++ < CM_MAX_RETRIES) { sendReq(); return; }
        this.fail(tx, `no REP after ${CM_MAX_RETRIES + 1} REQs`);
      });
    };
    iface.cmLog('cm_req', `REQ to QPN 0x${peer.qpn.toString(16)} ${formatGid(peer.gid)}`, { peerQpn: peer.qpn, localCommId: tx.localCommId });
    // After the caller has recorded the connection: in one process the REP can come back inside the send.
    tx.timer = this.sched.setTimer(0, () => { if (tx.state === 'connecting') sendReq(); });
    return tx;
  }

  /** Closes a connection with DREQ (ipoib_cm_tx_destroy / the RX stale reaper). */
  disconnect(c: CmConn): void {
    if (c.state === 'closed') return;
    const dreq: CmMessage = { kind: 'DREQ', body: { localCommId: c.localCommId, remoteCommId: c.remoteCommId, remoteQpn: c.dir === 'tx' ? 0 : 0, reserved11: 0, privateData: Buffer.alloc(220) } };
    const dlid = c.dir === 'tx' ? c.ahAttr.dlid : c.peerLid;
    if (c.remoteCommId !== 0) this.device.sendMad(c.iface.portNum, encodeCmMad(cmMessageMad(this.tid++, dreq)), dlid, { destQp: 1, pkeyIndex: c.iface.pkeyIndex });
    c.iface.cmLog('cm_dreq', `DREQ (${c.dir}) to QPN 0x${c.peer.qpn.toString(16)}`, { localCommId: c.localCommId });
    this.destroy(c);
    if (c.dir === 'tx') c.iface.cmDown(c, 'disconnected');
  }

  private commId(): number {
    const id = this.nextCommId;
    this.nextCommId = (this.nextCommId + 1) >>> 0 || 1;
    return id;
  }

  private track(c: CmConn): void {
    this.conns.set(c.localCommId, c);
    this.byQpn.set(c.qp.qpNum, c);
    this.armReaper();
  }

  private destroy(c: CmConn): void {
    if (c.dir === 'tx') { c.timer?.cancel(); c.timer = undefined; }
    const was = c.state;
    c.state = 'closed';
    this.conns.delete(c.localCommId);
    this.byQpn.delete(c.qp.qpNum);
    c.qp.destroy();
    if (c.dir === 'rx' && was !== 'closed') c.iface.rxDetached(c);
  }

  private fail(tx: CmTx, why: string): void {
    if (tx.state === 'closed') return;
    this.destroy(tx);
    tx.iface.cmLog('cm_failed', `connection to QPN 0x${tx.peer.qpn.toString(16)} failed: ${why}`, { why });
    tx.iface.cmDown(tx, why);
  }

  /** Idle connections go after CM_IDLE_TIMEOUT_MS; the timer runs only while connections exist. */
  private armReaper(): void {
    if (this.reaper !== undefined) return;
    this.reaper = this.sched.setTimer(CM_REAP_INTERVAL_MS, () => {
      this.reaper = undefined;
      const now = this.sched.now();
      for (const c of [...this.conns.values()]) if (now - c.lastUse >= CM_IDLE_TIMEOUT_MS) this.disconnect(c);
      if (this.conns.size > 0) this.armReaper();
    });
  }

  /**
   * A reply to `m`, on the P_Key it came with (the kernel's cm_alloc_response_msg() uses the
   * receive completion's pkey_index): a peer in a partition whose port lacks the default P_Key
   * would drop a reply on index 0.
   */
  private send(portNum: number, m: MadReceive, tid: bigint, message: CmMessage): Buffer {
    const mad = encodeCmMad(cmMessageMad(tid, message));
    this.device.sendMad(portNum, mad, m.slid, { destQp: 1, pkeyIndex: this.replyPkeyIndex(portNum, m) });
    return mad;
  }

  private replyPkeyIndex(portNum: number, m: MadReceive): number {
    const exact = this.device.findPkeyIndex(portNum, m.pkey);
    if (exact >= 0) return exact;
    for (let i = 0; ; i++) {
      let k: number;
      try { k = this.device.queryPkey(portNum, i); } catch { return 0; }
      if ((k & 0x7fff) === (m.pkey & 0x7fff)) return i;
    }
  }

  private onMad(portNum: number, m: MadReceive): void {
    let mad;
    try {
      mad = decodeCmMad(m.mad);
    } catch (err) {
      if (isWireError(err)) { this.badMads++; return; }
      throw err;
    }
    const msg = mad.message;
    switch (msg.kind) {
      case 'REQ': this.onReq(portNum, m, mad.transactionId, msg.body); return;
      case 'REP': this.onRep(portNum, m, mad.transactionId, msg.body); return;
      case 'RTU': {
        const c = this.conns.get(msg.body.remoteCommId);
        if (c?.dir === 'rx' && c.state === 'rep_sent') c.state = 'established';
        else this.unmatched++;
        return;
      }
      case 'REJ': {
        const c = this.conns.get(msg.body.remoteCommId);
        if (c?.dir === 'tx') this.fail(c, `rejected (reason ${msg.body.reason})`);
        else this.unmatched++;
        return;
      }
      case 'DREQ': {
        const c = this.conns.get(msg.body.remoteCommId);
        this.send(portNum, m, mad.transactionId, { kind: 'DREP', body: { localCommId: msg.body.remoteCommId, remoteCommId: msg.body.localCommId, privateData: Buffer.alloc(224) } });
        if (c === undefined) { this.unmatched++; return; }
        c.iface.cmLog('cm_drep', `DREQ from QPN 0x${c.peer.qpn.toString(16)}: connection closed`, { localCommId: c.localCommId });
        this.destroy(c);
        if (c.dir === 'tx') c.iface.cmDown(c, 'peer disconnected');
        return;
      }
      case 'DREP':
        return;
      default:
        this.unmatched++;
    }
  }

  private onReq(portNum: number, m: MadReceive, tid: bigint, req: CmReq): void {
    // A retransmitted REQ for a connection we already accepted: send the same REP again.
    for (const c of this.conns.values()) {
      if (c.dir === 'rx' && c.remoteCommId === req.localCommId && c.peerLid === req.primaryLocalLid) {
        this.device.sendMad(portNum, c.rep, m.slid, { destQp: 1, pkeyIndex: this.replyPkeyIndex(portNum, m) });
        return;
      }
    }
    const high = req.serviceId & ~0xffffffn;
    const iface = high === IPOIB_CM_SERVICE_ID || high === IPOIB_CM_SERVICE_ID_IETF
      ? this.ifaces.get(key(portNum, Number(req.serviceId & 0xffffffn))) : undefined;
    if (iface === undefined || !iface.cmSupported) {
      this.send(portNum, m, tid, { kind: 'REJ', body: {
        localCommId: 0, remoteCommId: req.localCommId, messageRejected: CmRejectedMessage.REQ, reserved8: 0,
        rejectedInfoLength: 0, reserved9: 0, reason: CmRejReason.INVALID_SERVICE_ID, ari: Buffer.alloc(72), privateData: Buffer.alloc(148),
      } });
      return;
    }
    const priv = ipoibCmDataOf(req.privateData);
    const peer: IpoibHwAddress = { flags: IPOIB_FLAG_RC, qpn: priv.qpn, gid: Buffer.from(req.primaryLocalGid) };
    const qp = this.pd.createQp({ qpType: 'RC', sendCq: iface.rcSendCq, recvCq: iface.recvCq, cap: { maxRecvWr: IPOIB_CM_RX_RING_SIZE } });
    qp.modify({ qpState: 'INIT', pkeyIndex: iface.pkeyIndex, portNum });
    for (let i = 0; i < IPOIB_CM_RX_RING_SIZE; i++) qp.postRecv({ wrId: 0 });
    qp.modify({
      qpState: 'RTR', ahAttr: { dlid: req.primaryLocalLid, sl: req.primarySl, portNum }, pathMtu: req.pathMtu,
      destQpNum: req.localQpn, rqPsn: req.startingPsn,
    });
    qp.modify({ qpState: 'RTS', sqPsn: 0, timeout: CM_RC_TIMEOUT_ENUM, retryCnt: CM_RC_RETRY_COUNT });
    const rep: CmRep = {
      localCommId: this.commId(), remoteCommId: req.localCommId, localQkey: 0, localQpn: qp.qpNum, reserved15: 0,
      localEecn: 0, reserved19: 0, startingPsn: 0, reserved23: 0, responderResources: 4, initiatorDepth: 0,
      targetAckDelay: 0, failoverAccepted: 0, endToEndFlowControl: false, rnrRetryCount: 0, srq: false, reserved27: 0,
      localCaGuid: this.device.nodeGuid, privateData: ipoibPrivateData(iface.udQpn, CM_REP_PRIVATE_DATA_SIZE, IPOIB_CM_BUF_SIZE),
    };
    const rx: CmRx = {
      dir: 'rx', state: 'rep_sent', iface, qp, localCommId: rep.localCommId, remoteCommId: req.localCommId,
      peerLid: req.primaryLocalLid, peer, lastUse: this.sched.now(), tid, rep: Buffer.alloc(0),
    };
    this.track(rx);
    iface.rxAttached(rx);
    rx.rep = this.send(portNum, m, tid, { kind: 'REP', body: rep });
    iface.cmLog('cm_rep', `REQ from QPN 0x${priv.qpn.toString(16)} accepted, REP sent`, { peerQpn: priv.qpn, localCommId: rx.localCommId });
  }

  private onRep(portNum: number, m: MadReceive, tid: bigint, rep: CmRep): void {
    const tx = this.conns.get(rep.remoteCommId);
    if (tx?.dir !== 'tx' || tx.state !== 'connecting') { this.unmatched++; return; }
    const priv = ipoibCmDataOf(rep.privateData);
    if (priv.mtu <= IPOIB_ENCAP_LEN) {
      // ipoib_cm_rep_handler(): a REP announcing no room for even the header is refused.
      this.send(portNum, m, tid, { kind: 'REJ', body: {
        localCommId: tx.localCommId, remoteCommId: rep.localCommId, messageRejected: CmRejectedMessage.REP, reserved8: 0,
        rejectedInfoLength: 0, reserved9: 0, reason: CmRejReason.CONSUMER_DEFINED, ari: Buffer.alloc(72), privateData: Buffer.alloc(148),
      } });
      this.fail(tx, `REP with receive MTU ${priv.mtu}`);
      return;
    }
    tx.timer?.cancel();
    tx.timer = undefined;
    tx.remoteCommId = rep.localCommId;
    tx.mtu = priv.mtu;
    tx.qp.modify({ qpState: 'RTR', ahAttr: tx.ahAttr, pathMtu: tx.pathMtu, destQpNum: rep.localQpn, rqPsn: rep.startingPsn });
    tx.qp.modify({ qpState: 'RTS', sqPsn: 0, timeout: CM_RC_TIMEOUT_ENUM, retryCnt: CM_RC_RETRY_COUNT });
    this.send(portNum, m, tid, { kind: 'RTU', body: { localCommId: tx.localCommId, remoteCommId: rep.localCommId, privateData: Buffer.alloc(224) } });
    tx.state = 'established';
    tx.iface.cmLog('cm_established', `connected to QPN 0x${tx.peer.qpn.toString(16)} (peer MTU ${priv.mtu})`, { peerQpn: tx.peer.qpn, mtu: priv.mtu });
    tx.iface.cmUp(tx);
  }
}

function key(portNum: number, qpn: number): number {
  return portNum * 0x1000000 + qpn;
}
