// Queue pairs (IBA 10.3, 11.4; libibverbs ibv_create_qp / ibv_modify_qp / ibv_post_send /
// ibv_post_recv). The state machine RESET -> INIT -> RTR -> RTS with the attributes each transition
// requires; UD datagrams (IPoIB datagram mode) with the receive semantics of IPOIB-FACTS §1.8/§1.10:
// Q_Key checked at the receiver, controlled Q_Key substituted at the sender, a datagram without a
// posted receive dropped, every receive carrying the 40-byte GRH slot. RC (for connected mode):
// reliable, in order, messages cut into SEND_FIRST/MIDDLE/LAST by the path MTU, go-back-N
// retransmission on timeout, cumulative ACKs.
import {
  isMulticastLid, OPCODE_RC_ACKNOWLEDGE, OPCODE_RC_SEND_FIRST, OPCODE_RC_SEND_LAST, OPCODE_RC_SEND_MIDDLE,
  OPCODE_RC_SEND_ONLY, OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE, OPCODE_UD_SEND_ONLY, OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE,
  QKEY_PRIVILEGED_BIT, QPN_MULTICAST, pkeysMatch,
} from '../wire/ib-constants.js';
import type { DropReason, PortCounters } from '../fabric/counters.js';
import { buildPacket, newPacketFields, OPCODE_RC_SEND_LAST_WITH_IMMEDIATE, type PacketFields, type PacketView } from '../fabric/packet-view.js';
import { mtuBytes, type PortInfo } from '../fabric/port-info.js';
import type { Scheduler, Timer } from '../fabric/scheduler.js';
import { WC_GRH, WC_WITH_IMM, type CompletionQueue, type WcStatus, type WorkCompletion } from './cq.js';
import { VerbsError } from './errors.js';

export type QpType = 'UD' | 'RC';
export type QpState = 'RESET' | 'INIT' | 'RTR' | 'RTS' | 'SQD' | 'SQE' | 'ERR';

/** ibv_ah_attr: how to reach a port (or a multicast group). */
export interface AhAttr {
  dlid: number;
  sl?: number;
  portNum: number;
  staticRate?: number;
  grh?: { dgid: Uint8Array; flowLabel?: number; hopLimit?: number; trafficClass?: number; sgidIndex?: number };
}

export interface AddressHandle {
  readonly attr: AhAttr;
}

export interface QpAttr {
  qpState: QpState;
  portNum?: number;
  pkeyIndex?: number;
  qkey?: number;
  sqPsn?: number;
  rqPsn?: number;
  /** RC: the peer's QPN, path, MTU enum, retransmission timeout (IBA encoding: 4.096 us * 2^timeout) and retries. */
  destQpNum?: number;
  ahAttr?: AhAttr;
  pathMtu?: number;
  timeout?: number;
  retryCnt?: number;
  rnrRetry?: number;
}

export interface QpInitAttr {
  qpType: QpType;
  sendCq: CompletionQueue;
  recvCq: CompletionQueue;
  cap?: { maxSendWr?: number; maxRecvWr?: number };
  /** IBV_QP_INIT_ATTR: every send completes with a completion, not only signaled ones. */
  sqSigAll?: boolean;
  /** IB_QP_CREATE_BLOCK_MULTICAST_LOOPBACK: the QP never receives its own multicast. */
  blockMulticastLoopback?: boolean;
}

export interface SendWr {
  wrId: number;
  opcode?: 'SEND' | 'SEND_WITH_IMM';
  data: Uint8Array;
  imm?: number;
  signaled?: boolean;
  solicited?: boolean;
  /** UD only: destination. A remoteQkey with bit 31 set means "use this QP's own Q_Key" (IBA 10.2.5). */
  ud?: { ah: AddressHandle; remoteQpn: number; remoteQkey: number };
}

export interface RecvWr {
  wrId: number;
  /** Where the data goes: 40 bytes of GRH slot (UD) then the data. Without one, the completion carries views. */
  buf?: Buffer;
}

/**
 * Early filter: called with the parsed packet (payload at view.payloadOffset, view.payloadLength
 * bytes) before a receive is consumed. Returning false means the upper layer would have dropped
 * the packet anyway with no effect: it is counted as delivered (and as notListened) and never handed
 * over — the cheap path for the thousands of receivers of a broadcast that is not for them.
 */
export type RecvFilter = (view: PacketView) => boolean;

/** What a QP needs from its device port. */
export interface QpPort {
  readonly portNum: number;
  readonly info: PortInfo;
  readonly gid: Buffer;
  readonly counters: PortCounters;
  /** Sends a packet built by this QP (handles HCA loopback, the link, the counters). */
  transmit(buf: Buffer): void;
  attach(qp: Qp, lid: number): void;
  detach(qp: Qp, lid: number): void;
}

export interface QpDevice {
  readonly scheduler: Scheduler;
  port(portNum: number): QpPort;
  unregister(qp: Qp): void;
}

const NEXT: Readonly<Record<QpState, readonly QpState[]>> = {
  RESET: ['RESET', 'INIT', 'ERR'],
  INIT: ['RESET', 'INIT', 'RTR', 'ERR'],
  RTR: ['RESET', 'RTS', 'ERR'],
  RTS: ['RESET', 'RTS', 'SQD', 'ERR'],
  SQD: ['RESET', 'RTS', 'SQD', 'ERR'],
  SQE: ['RESET', 'RTS', 'ERR'],
  ERR: ['RESET', 'ERR'],
};

/** Attributes each transition requires (IBA 11.2.4.2 table, as ibv_modify_qp(3) lists them). */
function required(type: QpType, from: QpState, to: QpState): (keyof QpAttr)[] {
  if (from === 'RESET' && to === 'INIT') return type === 'UD' ? ['pkeyIndex', 'portNum', 'qkey'] : ['pkeyIndex', 'portNum'];
  if (from === 'INIT' && to === 'RTR') return type === 'UD' ? [] : ['ahAttr', 'pathMtu', 'destQpNum', 'rqPsn'];
  if (from === 'RTR' && to === 'RTS') return type === 'UD' ? ['sqPsn'] : ['sqPsn', 'timeout', 'retryCnt'];
  return [];
}

const PSN_MASK = 0xffffff;
/** Signed distance a - b on the 24-bit PSN circle. */
function psnDiff(a: number, b: number): number {
  return ((a - b + 0x800000) & PSN_MASK) - 0x800000;
}

interface RcSend {
  wr: SendWr;
  signaled: boolean;
  packets: Buffer[];
  lastPsn: number;
}

export class Qp {
  state: QpState = 'RESET';
  portNum = 0;
  pkeyIndex = 0;
  qkey = 0;
  sqPsn = 0;
  rqPsn = 0;
  destQpNum = 0;
  ahAttr: AhAttr | undefined;
  pathMtu = 0;
  timeoutMs = 0;
  retryCnt = 7;
  readonly qpType: QpType;
  readonly sendCq: CompletionQueue;
  readonly recvCq: CompletionQueue;
  readonly maxSendWr: number;
  readonly maxRecvWr: number;
  readonly sqSigAll: boolean;
  readonly blockMulticastLoopback: boolean;
  filter: RecvFilter | undefined;
  private readonly rq: RecvWr[] = [];
  private rqHead = 0;
  private readonly f: PacketFields = newPacketFields();
  private readonly attached = new Set<number>();
  // RC sender
  private readonly rcOut: RcSend[] = [];
  private rcTimer: Timer | undefined;
  private rcRetries = 0;
  // RC receiver
  private rcRecv: { wr: RecvWr; chunks: Buffer[]; len: number } | undefined;
  private rcMsn = 0;

  constructor(private readonly dev: QpDevice, readonly qpNum: number, init: QpInitAttr) {
    this.qpType = init.qpType;
    this.sendCq = init.sendCq;
    this.recvCq = init.recvCq;
    this.maxSendWr = init.cap?.maxSendWr ?? 128;
    this.maxRecvWr = init.cap?.maxRecvWr ?? 256;
    this.sqSigAll = init.sqSigAll ?? false;
    this.blockMulticastLoopback = init.blockMulticastLoopback ?? false;
  }

  /** ibv_modify_qp. Throws BAD_STATE_TRANSITION / MISSING_ATTR / BAD_ATTR and leaves the QP unchanged. */
  modify(attr: QpAttr): void {
    const to = attr.qpState;
    if (!NEXT[this.state].includes(to)) {
      throw new VerbsError('BAD_STATE_TRANSITION', `QP 0x${this.qpNum.toString(16)}: ${this.state} -> ${to} is not a legal transition`);
    }
    for (const k of required(this.qpType, this.state, to)) {
      if (attr[k] === undefined) throw new VerbsError('MISSING_ATTR', `QP 0x${this.qpNum.toString(16)}: ${this.state} -> ${to} requires ${k}`);
    }
    if (attr.portNum !== undefined) this.dev.port(attr.portNum);
    if (attr.pkeyIndex !== undefined && !(Number.isInteger(attr.pkeyIndex) && attr.pkeyIndex >= 0 && attr.pkeyIndex < 128)) {
      throw new VerbsError('BAD_ATTR', `P_Key index ${attr.pkeyIndex} out of range`);
    }
    if (attr.pathMtu !== undefined && mtuBytes(attr.pathMtu) === 0) throw new VerbsError('BAD_ATTR', `path MTU enum ${attr.pathMtu} is not 1..5`);
    if (to === 'RESET' || to === 'ERR') {
      this.flush(to);
      this.state = to;
      return;
    }
    if (attr.portNum !== undefined) this.portNum = attr.portNum;
    if (attr.pkeyIndex !== undefined) this.pkeyIndex = attr.pkeyIndex;
    if (attr.qkey !== undefined) this.qkey = attr.qkey >>> 0;
    if (attr.sqPsn !== undefined) this.sqPsn = attr.sqPsn & PSN_MASK;
    if (attr.rqPsn !== undefined) this.rqPsn = attr.rqPsn & PSN_MASK;
    if (attr.destQpNum !== undefined) this.destQpNum = attr.destQpNum;
    if (attr.ahAttr !== undefined) this.ahAttr = attr.ahAttr;
    if (attr.pathMtu !== undefined) this.pathMtu = attr.pathMtu;
    if (attr.timeout !== undefined) this.timeoutMs = attr.timeout === 0 ? 0 : Math.max(1, 4.096e-3 * 2 ** attr.timeout);
    if (attr.retryCnt !== undefined) this.retryCnt = attr.retryCnt;
    this.state = to;
  }

  /** Flushes outstanding work with WR_FLUSH_ERR (to ERR) or silently (to RESET). */
  private flush(to: QpState): void {
    this.rcTimer?.cancel();
    this.rcTimer = undefined;
    const report = to === 'ERR';
    for (let i = this.rqHead; i < this.rq.length; i++) {
      if (report) this.recvCq.push(this.wc(this.rq[i]!.wrId, 'WR_FLUSH_ERR', 'RECV'));
    }
    this.rq.length = 0;
    this.rqHead = 0;
    for (const s of this.rcOut.splice(0)) if (report) this.sendCq.push(this.wc(s.wr.wrId, 'WR_FLUSH_ERR', 'SEND'));
    this.rcRecv = undefined;
  }

  private wc(wrId: number, status: WcStatus, opcode: 'SEND' | 'RECV'): WorkCompletion {
    return { wrId, status, opcode, qpNum: this.qpNum, byteLen: 0, wcFlags: 0, imm: 0, srcQp: 0, slid: 0, sl: 0, pkeyIndex: this.pkeyIndex };
  }

  get recvQueued(): number {
    return this.rq.length - this.rqHead;
  }

  /** ibv_post_recv (one WR). Allowed from INIT on (receives may be posted before RTR). */
  postRecv(wr: RecvWr): void {
    if (this.state === 'RESET') throw new VerbsError('QP_STATE', `post_recv on QP 0x${this.qpNum.toString(16)} in RESET`);
    if (this.state === 'ERR') { this.recvCq.push(this.wc(wr.wrId, 'WR_FLUSH_ERR', 'RECV')); return; }
    if (this.recvQueued >= this.maxRecvWr) throw new VerbsError('QUEUE_FULL', `receive queue of QP 0x${this.qpNum.toString(16)} holds ${this.maxRecvWr} WRs`);
    if (this.rqHead > 256 && this.rqHead * 2 > this.rq.length) { this.rq.splice(0, this.rqHead); this.rqHead = 0; }
    this.rq.push(wr);
  }

  private takeRecv(): RecvWr | undefined {
    if (this.rqHead >= this.rq.length) return undefined;
    const wr = this.rq[this.rqHead++];
    if (this.rqHead === this.rq.length) { this.rq.length = 0; this.rqHead = 0; }
    return wr;
  }

  /** ibv_post_send (one WR). */
  postSend(wr: SendWr): void {
    if (this.state !== 'RTS') throw new VerbsError('QP_STATE', `post_send on QP 0x${this.qpNum.toString(16)} in ${this.state}`);
    if (this.qpType === 'UD') this.sendUd(wr);
    else this.sendRc(wr);
  }

  private sendUd(wr: SendWr): void {
    const ud = wr.ud;
    if (ud === undefined) throw new VerbsError('BAD_WR', 'UD send without ud.ah / remoteQpn / remoteQkey');
    const port = this.dev.port(this.portNum);
    const signaled = this.sqSigAll || wr.signaled === true;
    if (wr.data.length > mtuBytes(port.info.activeMtu)) {
      // The HCA refuses a datagram larger than the port MTU (UD is single-packet, IPOIB-FACTS §1.9).
      this.sendCq.push({ ...this.wc(wr.wrId, 'LOC_LEN_ERR', 'SEND'), byteLen: wr.data.length });
      return;
    }
    const a = ud.ah.attr;
    const f = this.f;
    f.sl = a.sl ?? 0;
    f.dlid = a.dlid;
    f.slid = port.info.lid;
    f.grh = a.grh === undefined ? undefined : {
      sgid: port.gid, dgid: a.grh.dgid, tclass: a.grh.trafficClass ?? 0, flowLabel: a.grh.flowLabel ?? 0, hopLmt: a.grh.hopLimit ?? 0,
    };
    const withImm = wr.opcode === 'SEND_WITH_IMM';
    f.opcode = withImm ? OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE : OPCODE_UD_SEND_ONLY;
    f.se = wr.solicited === true;
    f.pkey = port.info.pkeys[this.pkeyIndex] ?? 0;
    f.destQp = isMulticastLid(a.dlid) ? QPN_MULTICAST : ud.remoteQpn;
    f.ackReq = false;
    f.psn = this.sqPsn;
    this.sqPsn = (this.sqPsn + 1) & PSN_MASK;
    f.qkey = (ud.remoteQkey & QKEY_PRIVILEGED_BIT) !== 0 ? this.qkey : ud.remoteQkey >>> 0;
    f.srcQp = this.qpNum;
    f.imm = wr.imm ?? 0;
    port.transmit(buildPacket(f, wr.data));
    if (signaled) {
      this.sendCq.push({
        wrId: wr.wrId, status: 'SUCCESS', opcode: 'SEND', qpNum: this.qpNum, byteLen: wr.data.length, wcFlags: 0, imm: 0,
        srcQp: 0, slid: 0, sl: 0, pkeyIndex: this.pkeyIndex,
      });
    }
  }

  /**
   * A UD packet for this QP, after the port's checks (ICRC, headers, DLID). Returns the reason it
   * was dropped, 'FILTERED' when the early filter declined it, or undefined when it was received.
   */
  receiveUd(v: PacketView, port: QpPort): DropReason | 'FILTERED' | undefined {
    if (this.qpType !== 'UD' || (v.opcode !== OPCODE_UD_SEND_ONLY && v.opcode !== OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE)) return 'QP_TYPE';
    if (this.state !== 'RTR' && this.state !== 'RTS') return 'QP_STATE';
    if (this.qpNum === 1) {
      if (!port.info.pkeys.some((p) => pkeysMatch(p, v.pkey))) return 'PKEY_VIOLATION';
    } else if (!pkeysMatch(port.info.pkeys[this.pkeyIndex] ?? 0, v.pkey)) {
      return 'PKEY_VIOLATION';
    }
    if (this.qpNum !== 0 && v.qkey !== this.qkey) return 'QKEY_VIOLATION';
    if (this.filter !== undefined && !this.filter(v)) return 'FILTERED';
    const wr = this.takeRecv();
    if (wr === undefined) return 'NO_RECV_WQE';
    const len = v.payloadLength;
    const hasGrh = v.grhOffset >= 0;
    const wc: WorkCompletion = {
      wrId: wr.wrId, status: 'SUCCESS', opcode: 'RECV', qpNum: this.qpNum, byteLen: len + 40,
      wcFlags: (hasGrh ? WC_GRH : 0) | (v.hasImm ? WC_WITH_IMM : 0), imm: v.imm, srcQp: v.srcQp, slid: v.slid, sl: v.sl,
      pkeyIndex: this.qpNum === 1 ? Math.max(0, port.info.pkeys.findIndex((p) => pkeysMatch(p, v.pkey))) : this.pkeyIndex,
    };
    const b = wr.buf;
    if (b !== undefined) {
      if (b.length < len + 40) {
        this.recvCq.push({ ...wc, status: 'LOC_LEN_ERR' });
        return 'RECV_BUFFER_TOO_SMALL';
      }
      if (hasGrh) v.buf.copy(b, 0, v.grhOffset, v.grhOffset + 40);
      v.buf.copy(b, 40, v.payloadOffset, v.payloadOffset + len);
    } else {
      wc.data = v.buf.subarray(v.payloadOffset, v.payloadOffset + len);
      if (hasGrh) wc.grh = v.buf.subarray(v.grhOffset, v.grhOffset + 40);
    }
    this.recvCq.push(wc);
    return undefined;
  }

  /** ibv_attach_mcast: receive what arrives for this group on the QP's port (UD only). */
  attachMcast(gid: Uint8Array, lid: number): void {
    if (this.qpType !== 'UD') throw new VerbsError('BAD_WR', 'only UD QPs attach to multicast groups');
    if (!isMulticastLid(lid) || gid[0] !== 0xff) throw new VerbsError('BAD_ATTR', `attach_mcast: ${lid.toString(16)} / GID is not multicast`);
    if (this.portNum === 0) throw new VerbsError('QP_STATE', 'attach_mcast before the QP is bound to a port (modify to INIT first)');
    if (this.attached.has(lid)) return;
    this.attached.add(lid);
    this.dev.port(this.portNum).attach(this, lid);
  }

  detachMcast(_gid: Uint8Array, lid: number): void {
    if (!this.attached.delete(lid)) return;
    this.dev.port(this.portNum).detach(this, lid);
  }

  /** ibv_destroy_qp. */
  destroy(): void {
    for (const lid of this.attached) this.dev.port(this.portNum).detach(this, lid);
    this.attached.clear();
    this.flush('RESET');
    this.state = 'RESET';
    this.dev.unregister(this);
  }

  // ---- RC

  private rcFields(opcode: number, psn: number, ackReq: boolean): PacketFields {
    const port = this.dev.port(this.portNum);
    const a = this.ahAttr!;
    const f = this.f;
    f.sl = a.sl ?? 0;
    f.dlid = a.dlid;
    f.slid = port.info.lid;
    f.grh = a.grh === undefined ? undefined : {
      sgid: port.gid, dgid: a.grh.dgid, tclass: a.grh.trafficClass ?? 0, flowLabel: a.grh.flowLabel ?? 0, hopLmt: a.grh.hopLimit ?? 0,
    };
    f.opcode = opcode;
    f.se = false;
    f.pkey = port.info.pkeys[this.pkeyIndex] ?? 0;
    f.destQp = this.destQpNum;
    f.ackReq = ackReq;
    f.psn = psn;
    return f;
  }

  private sendRc(wr: SendWr): void {
    if (this.rcOut.length >= this.maxSendWr) throw new VerbsError('QUEUE_FULL', `send queue of QP 0x${this.qpNum.toString(16)} holds ${this.maxSendWr} WRs`);
    const mtu = mtuBytes(this.pathMtu);
    const d = wr.data;
    const n = Math.max(1, Math.ceil(d.length / mtu));
    const withImm = wr.opcode === 'SEND_WITH_IMM';
    const packets: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const last = i === n - 1;
      const op = n === 1
        ? (withImm ? OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE : OPCODE_RC_SEND_ONLY)
        : i === 0 ? OPCODE_RC_SEND_FIRST : last ? (withImm ? OPCODE_RC_SEND_LAST_WITH_IMMEDIATE : OPCODE_RC_SEND_LAST) : OPCODE_RC_SEND_MIDDLE;
      const f = this.rcFields(op, this.sqPsn, last);
      f.imm = wr.imm ?? 0;
      packets.push(buildPacket(f, d, i * mtu, Math.min(mtu, d.length - i * mtu)));
      this.sqPsn = (this.sqPsn + 1) & PSN_MASK;
    }
    const s: RcSend = { wr, signaled: this.sqSigAll || wr.signaled === true, packets, lastPsn: (this.sqPsn - 1) & PSN_MASK };
    this.rcOut.push(s);
    const port = this.dev.port(this.portNum);
    for (const p of packets) port.transmit(p);
    this.armRetransmit();
  }

  private armRetransmit(): void {
    if (this.rcTimer !== undefined || this.rcOut.length === 0 || this.timeoutMs === 0) return;
    this.rcTimer = this.dev.scheduler.setTimer(this.timeoutMs, () => {
      this.rcTimer = undefined;
      if (this.rcOut.length === 0 || this.state !== 'RTS') return;
      if (this.rcRetries >= this.retryCnt) {
        const failed = this.rcOut.shift()!;
        this.sendCq.push(this.wc(failed.wr.wrId, 'RETRY_EXC_ERR', 'SEND'));
        this.flush('ERR');
        this.state = 'ERR';
        return;
      }
      this.rcRetries++;
      const port = this.dev.port(this.portNum);
      for (const s of this.rcOut) for (const p of s.packets) port.transmit(p);
      this.armRetransmit();
    });
  }

  /** An RC packet for this QP. Returns a drop reason, or undefined when accepted. */
  receiveRc(v: PacketView, port: QpPort): DropReason | undefined {
    if (this.qpType !== 'RC' || v.qkey !== -1) return 'QP_TYPE';
    if (this.state !== 'RTR' && this.state !== 'RTS') return 'QP_STATE';
    if (!pkeysMatch(port.info.pkeys[this.pkeyIndex] ?? 0, v.pkey)) return 'PKEY_VIOLATION';
    if (v.opcode === OPCODE_RC_ACKNOWLEDGE) return this.onAck(v);
    const d = psnDiff(v.psn, this.rqPsn);
    if (d < 0) { this.sendAck((this.rqPsn - 1) & PSN_MASK); return 'RC_SEQUENCE'; }
    if (d > 0) return 'RC_SEQUENCE';
    const op = v.opcode;
    const first = op === OPCODE_RC_SEND_FIRST || op === OPCODE_RC_SEND_ONLY || op === OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE;
    const last = op !== OPCODE_RC_SEND_FIRST && op !== OPCODE_RC_SEND_MIDDLE;
    if (first) {
      if (this.rcRecv !== undefined) return 'RC_SEQUENCE';
      // No receive posted: the packet is not acknowledged, so the sender retransmits (RNR, simplified).
      const wr = this.takeRecv();
      if (wr === undefined) return 'NO_RECV_WQE';
      this.rcRecv = { wr, chunks: [], len: 0 };
    } else if (this.rcRecv === undefined) {
      return 'RC_SEQUENCE';
    }
    const r = this.rcRecv;
    r.chunks.push(Buffer.from(v.buf.subarray(v.payloadOffset, v.payloadOffset + v.payloadLength)));
    r.len += v.payloadLength;
    this.rqPsn = (this.rqPsn + 1) & PSN_MASK;
    if (last) {
      this.rcRecv = undefined;
      this.rcMsn = (this.rcMsn + 1) & PSN_MASK;
      const data = Buffer.concat(r.chunks, r.len);
      const wc: WorkCompletion = {
        wrId: r.wr.wrId, status: 'SUCCESS', opcode: 'RECV', qpNum: this.qpNum, byteLen: r.len,
        wcFlags: v.hasImm ? WC_WITH_IMM : 0, imm: v.imm, srcQp: this.destQpNum, slid: v.slid, sl: v.sl, pkeyIndex: this.pkeyIndex,
      };
      if (r.wr.buf !== undefined) {
        if (r.wr.buf.length < r.len) this.recvCq.push({ ...wc, status: 'LOC_LEN_ERR' });
        else { data.copy(r.wr.buf, 0); this.recvCq.push(wc); }
      } else {
        this.recvCq.push({ ...wc, data });
      }
    }
    if (v.ackReq || last) this.sendAck(v.psn);
    return undefined;
  }

  private sendAck(psn: number): void {
    const f = this.rcFields(OPCODE_RC_ACKNOWLEDGE, psn, false);
    f.aethSyndrome = 0x1f;
    f.aethMsn = this.rcMsn;
    this.dev.port(this.portNum).transmit(buildPacket(f, Buffer.alloc(0)));
  }

  private onAck(v: PacketView): DropReason | undefined {
    let progressed = false;
    while (this.rcOut.length > 0 && psnDiff(v.psn, this.rcOut[0]!.lastPsn) >= 0) {
      const s = this.rcOut.shift()!;
      progressed = true;
      if (s.signaled) this.sendCq.push({ ...this.wc(s.wr.wrId, 'SUCCESS', 'SEND'), byteLen: s.wr.data.length });
    }
    if (progressed) {
      this.rcRetries = 0;
      this.rcTimer?.cancel();
      this.rcTimer = undefined;
      this.armRetransmit();
    }
    return undefined;
  }
}
