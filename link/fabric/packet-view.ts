// One parse per packet: the switch and every receiving HCA read the same PacketView of one shared,
// immutable Buffer (DESIGN.md "Scale": decode once, not once per receiver). Header layouts: IBA
// Vol 1 §5.2 (LRH, GRH, BTH, DETH, AETH, ImmDt), IPOIB-FACTS §1.1-1.6; ICRC/VCRC from ../wire/ib-crc.
// Hand-written reads and writes: this is the per-packet hot path, it allocates nothing but the
// packet itself.
import { crc32 as zlibCrc32 } from 'node:zlib';
import {
  BTH_BYTES, DETH_BYTES, GRH_BYTES, GRH_IPVER, GRH_NXTHDR_IBA, ICRC_BYTES, IMMDT_BYTES, LNH_IBA_GLOBAL,
  LNH_IBA_LOCAL, LRH_BYTES, OPCODE_RC_ACKNOWLEDGE, OPCODE_RC_SEND_FIRST, OPCODE_RC_SEND_LAST,
  OPCODE_RC_SEND_MIDDLE, OPCODE_RC_SEND_ONLY, OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE, OPCODE_UD_SEND_ONLY,
  OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE, VCRC_BYTES,
} from '../wire/ib-constants.js';
import { crc32 } from '../wire/ib-crc.js';
import type { DropReason } from './counters.js';

const OPCODE_RC_SEND_LAST_WITH_IMMEDIATE = 0x03;
const AETH_BYTES = 4;

/** Opcodes the emulated HCA implements: UD SEND (IPoIB datagram mode) and RC SEND + ACK (connected mode). */
export function isImplementedOpcode(op: number): boolean {
  return op === OPCODE_UD_SEND_ONLY || op === OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE
    || (op >= OPCODE_RC_SEND_FIRST && op <= OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE) || op === OPCODE_RC_ACKNOWLEDGE;
}

/**
 * The fields of one packet, read once. Offsets are into `buf`; grhOffset is -1 without a GRH.
 * `linkError` is what a switch itself rejects (it only reads the LRH); `error` is what the
 * receiving HCA rejects after its ICRC check (headers, opcode, lengths).
 */
export class PacketView {
  vl = 0;
  sl = 0;
  lnh = 0;
  dlid = 0;
  slid = 0;
  pktLen = 0;
  grhOffset = -1;
  tclass = 0;
  flowLabel = 0;
  hopLmt = 0;
  bthOffset = 0;
  opcode = 0;
  se = false;
  padCnt = 0;
  pkey = 0;
  destQp = 0;
  ackReq = false;
  psn = 0;
  /** DETH (UD only); -1 elsewhere. */
  qkey = -1;
  srcQp = -1;
  hasImm = false;
  imm = 0;
  /** AETH (RC ACK): syndrome and MSN. */
  aethSyndrome = 0;
  aethMsn = 0;
  payloadOffset = 0;
  payloadLength = 0;
  icrcOffset = 0;
  linkError: DropReason | undefined = undefined;
  error: DropReason | undefined = undefined;
  private icrcState = 0;

  constructor(readonly buf: Buffer) {}

  /**
   * The sending HCA just computed this packet's ICRC from these very bytes: a receiver's check
   * could only agree. Anything that alters the bytes (corruption faults) makes a new view.
   */
  markIcrcComputed(): void {
    this.icrcState = 1;
  }

  /** Verified once, however many ports receive the packet. */
  icrcOk(): boolean {
    if (this.icrcState === 0) {
      this.icrcState = icrcOf(this.buf, this.icrcOffset) === this.buf.readUInt32LE(this.icrcOffset) ? 1 : 2;
    }
    return this.icrcState === 1;
  }

  /** 16-byte views (no copy) of the GRH GIDs; undefined without a GRH. */
  sgid(): Buffer | undefined {
    return this.grhOffset < 0 ? undefined : this.buf.subarray(this.grhOffset + 8, this.grhOffset + 24);
  }

  dgid(): Buffer | undefined {
    return this.grhOffset < 0 ? undefined : this.buf.subarray(this.grhOffset + 24, this.grhOffset + 40);
  }

  payload(): Buffer {
    return this.buf.subarray(this.payloadOffset, this.payloadOffset + this.payloadLength);
  }
}

/** Reads a packet (LRH .. ICRC ‖ VCRC). Never throws: problems land in linkError / error. */
export function parsePacket(buf: Buffer): PacketView {
  const v = new PacketView(buf);
  const n = buf.length;
  if (n < LRH_BYTES) { v.linkError = 'BAD_LENGTH'; return v; }
  const b0 = buf[0]!;
  const b1 = buf[1]!;
  v.vl = b0 >>> 4;
  v.sl = b1 >>> 4;
  v.lnh = b1 & 3;
  v.dlid = (buf[2]! << 8) | buf[3]!;
  v.pktLen = ((buf[4]! & 7) << 8) | buf[5]!;
  v.slid = (buf[6]! << 8) | buf[7]!;
  if ((b0 & 0x0f) !== 0 || (v.lnh !== LNH_IBA_LOCAL && v.lnh !== LNH_IBA_GLOBAL)) { v.linkError = 'BAD_LRH'; return v; }
  const end = v.pktLen * 4;
  if (end + VCRC_BYTES !== n || end < LRH_BYTES + BTH_BYTES + ICRC_BYTES) { v.linkError = 'BAD_LENGTH'; return v; }
  v.icrcOffset = end - ICRC_BYTES;
  let o = LRH_BYTES;
  if (v.lnh === LNH_IBA_GLOBAL) {
    if (o + GRH_BYTES + BTH_BYTES > v.icrcOffset) { v.error = 'BAD_LENGTH'; return v; }
    if (buf[o]! >>> 4 !== GRH_IPVER || buf[o + 6] !== GRH_NXTHDR_IBA) { v.error = 'BAD_GRH'; return v; }
    v.grhOffset = o;
    v.tclass = ((buf[o]! & 0x0f) << 4) | (buf[o + 1]! >>> 4);
    v.flowLabel = ((buf[o + 1]! & 0x0f) << 16) | (buf[o + 2]! << 8) | buf[o + 3]!;
    v.hopLmt = buf[o + 7]!;
    o += GRH_BYTES;
  }
  v.bthOffset = o;
  const op = buf[o]!;
  const bb1 = buf[o + 1]!;
  v.opcode = op;
  v.se = (bb1 & 0x80) !== 0;
  v.padCnt = (bb1 >>> 4) & 3;
  v.pkey = (buf[o + 2]! << 8) | buf[o + 3]!;
  v.destQp = (buf[o + 5]! << 16) | (buf[o + 6]! << 8) | buf[o + 7]!;
  v.ackReq = (buf[o + 8]! & 0x80) !== 0;
  v.psn = (buf[o + 9]! << 16) | (buf[o + 10]! << 8) | buf[o + 11]!;
  if ((bb1 & 0x0f) !== 0) { v.error = 'BAD_BTH'; return v; }
  if (!isImplementedOpcode(op)) { v.error = 'UNKNOWN_OPCODE'; return v; }
  o += BTH_BYTES;
  const ud = op === OPCODE_UD_SEND_ONLY || op === OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE;
  if (ud) {
    if (o + DETH_BYTES > v.icrcOffset) { v.error = 'BAD_LENGTH'; return v; }
    v.qkey = buf.readUInt32BE(o);
    v.srcQp = (buf[o + 5]! << 16) | (buf[o + 6]! << 8) | buf[o + 7]!;
    o += DETH_BYTES;
  }
  if (op === OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE || op === OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE
    || op === OPCODE_RC_SEND_LAST_WITH_IMMEDIATE) {
    if (o + IMMDT_BYTES > v.icrcOffset) { v.error = 'BAD_LENGTH'; return v; }
    v.hasImm = true;
    v.imm = buf.readUInt32BE(o);
    o += IMMDT_BYTES;
  }
  if (op === OPCODE_RC_ACKNOWLEDGE) {
    if (o + AETH_BYTES > v.icrcOffset) { v.error = 'BAD_LENGTH'; return v; }
    v.aethSyndrome = buf[o]!;
    v.aethMsn = (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!;
    o += AETH_BYTES;
  }
  const len = v.icrcOffset - o - v.padCnt;
  if (len < 0) { v.error = 'BAD_BTH'; return v; }
  v.payloadOffset = o;
  v.payloadLength = len;
  return v;
}

// The masked header prefix is at most LRH + GRH + BTH = 60 bytes and goes through a scratch copy;
// the rest continues the same running CRC-32: in JS (../wire/ib-crc, no allocation) for short
// packets, through zlib's native crc32 for long ones, where the call overhead pays off.
const scratch = Buffer.alloc(LRH_BYTES + GRH_BYTES + BTH_BYTES);
const NATIVE_CRC_FROM = 512;

/** The ICRC of buf[0, icrcOffset) (IBA §7.8.1 masking, the same value as ../wire/ib-crc computeIcrc). */
export function icrcOf(buf: Buffer, icrcOffset: number): number {
  const global = (buf[1]! & 3) === LNH_IBA_GLOBAL;
  const maskLen = Math.min(icrcOffset, global ? LRH_BYTES + GRH_BYTES + BTH_BYTES : LRH_BYTES + BTH_BYTES);
  for (let i = 0; i < maskLen; i++) scratch[i] = buf[i]!;
  if (global) {
    scratch.fill(0xff, 0, 8);
    if (maskLen > 8) scratch[8] = scratch[8]! | 0x0f;
    if (maskLen > 11) { scratch[9] = 0xff; scratch[10] = 0xff; scratch[11] = 0xff; }
    if (maskLen > 15) scratch[15] = 0xff;
    if (maskLen > 52) scratch[52] = 0xff;
  } else {
    scratch[0] = scratch[0]! | 0xf0;
    if (maskLen > 12) scratch[12] = 0xff;
  }
  const head = crc32(scratch, 0, maskLen);
  if (icrcOffset - maskLen < NATIVE_CRC_FROM) return crc32(buf, maskLen, icrcOffset, head);
  return zlibCrc32(buf.subarray(maskLen, icrcOffset), head);
}

/** Header fields of an outgoing packet. One mutable object per QP, reused for every send. */
export interface PacketFields {
  sl: number;
  dlid: number;
  slid: number;
  /** With a GRH when set (multicast, or a path with HopLimit > 0). */
  grh: { sgid: Uint8Array; dgid: Uint8Array; tclass: number; flowLabel: number; hopLmt: number } | undefined;
  opcode: number;
  se: boolean;
  pkey: number;
  destQp: number;
  ackReq: boolean;
  psn: number;
  /** DETH for UD opcodes. */
  qkey: number;
  srcQp: number;
  imm: number;
  /** AETH for RC ACK. */
  aethSyndrome: number;
  aethMsn: number;
}

export function newPacketFields(): PacketFields {
  return {
    sl: 0, dlid: 0, slid: 0, grh: undefined, opcode: OPCODE_UD_SEND_ONLY, se: false, pkey: 0xffff, destQp: 0,
    ackReq: false, psn: 0, qkey: 0, srcQp: 0, imm: 0, aethSyndrome: 0, aethMsn: 0,
  };
}

/** Bytes of the headers after the LRH for these fields (GRH, BTH, DETH, ImmDt, AETH). */
function headerBytes(f: PacketFields): number {
  const op = f.opcode;
  let n = LRH_BYTES + BTH_BYTES;
  if (f.grh !== undefined) n += GRH_BYTES;
  if (op === OPCODE_UD_SEND_ONLY || op === OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE) n += DETH_BYTES;
  if (op === OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE || op === OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE
    || op === OPCODE_RC_SEND_LAST_WITH_IMMEDIATE) n += IMMDT_BYTES;
  if (op === OPCODE_RC_ACKNOWLEDGE) n += AETH_BYTES;
  return n;
}

/**
 * Builds LRH [GRH] BTH [DETH] [ImmDt] [AETH] payload pad ICRC VCRC into one new Buffer (IPOIB-FACTS
 * §1.2: PktLen counts 4-byte words through the ICRC; PadCnt = (4 - len) & 3). VL is 0 (data VL).
 *
 * The ICRC is computed here, as the sending HCA does: it is end to end, and every receiver checks it.
 * The VCRC is left 0 (not stamped). It is a link-level CRC (IBA §7.8.2), regenerated by each
 * hop and checked by the next one: it can only catch damage on a physical link, and the emulator's
 * links are memory and loopback UDP, which do not damage frames (fault.ts corruption models damage
 * inside a switch, which the end-to-end ICRC is there to catch). So nobody on the path checks it, and
 * it is computed only where the bytes leave the emulator: the switch stamps it when a frame reaches a
 * capture point (switch.ts taps -> pcap files, tests), with stampVcrc (../wire/ib-packet). At 2 KB
 * that saves ~3 µs of JS CRC-16 per frame sent, about as much as the rest of the build.
 */
export function buildPacket(f: PacketFields, payload: Uint8Array, start = 0, length = payload.length - start): Buffer {
  const hdr = headerBytes(f);
  const pad = (4 - (length & 3)) & 3;
  const icrcOffset = hdr + length + pad;
  const total = icrcOffset + ICRC_BYTES + VCRC_BYTES;
  const b = Buffer.allocUnsafe(total);
  const pktLen = (icrcOffset + ICRC_BYTES) >>> 2;
  const op = f.opcode;
  b[0] = 0;
  b[1] = (f.sl << 4) | (f.grh !== undefined ? LNH_IBA_GLOBAL : LNH_IBA_LOCAL);
  b[2] = f.dlid >>> 8;
  b[3] = f.dlid & 0xff;
  b[4] = (pktLen >>> 8) & 7;
  b[5] = pktLen & 0xff;
  b[6] = f.slid >>> 8;
  b[7] = f.slid & 0xff;
  let o = LRH_BYTES;
  const g = f.grh;
  if (g !== undefined) {
    const payLen = icrcOffset + ICRC_BYTES - LRH_BYTES - GRH_BYTES;
    b[o] = (GRH_IPVER << 4) | (g.tclass >>> 4);
    b[o + 1] = ((g.tclass & 0x0f) << 4) | ((g.flowLabel >>> 16) & 0x0f);
    b[o + 2] = (g.flowLabel >>> 8) & 0xff;
    b[o + 3] = g.flowLabel & 0xff;
    b[o + 4] = payLen >>> 8;
    b[o + 5] = payLen & 0xff;
    b[o + 6] = GRH_NXTHDR_IBA;
    b[o + 7] = g.hopLmt;
    b.set(g.sgid, o + 8);
    b.set(g.dgid, o + 24);
    o += GRH_BYTES;
  }
  b[o] = op;
  b[o + 1] = (f.se ? 0x80 : 0) | (pad << 4);
  b[o + 2] = f.pkey >>> 8;
  b[o + 3] = f.pkey & 0xff;
  b[o + 4] = 0;
  b[o + 5] = (f.destQp >>> 16) & 0xff;
  b[o + 6] = (f.destQp >>> 8) & 0xff;
  b[o + 7] = f.destQp & 0xff;
  b[o + 8] = f.ackReq ? 0x80 : 0;
  b[o + 9] = (f.psn >>> 16) & 0xff;
  b[o + 10] = (f.psn >>> 8) & 0xff;
  b[o + 11] = f.psn & 0xff;
  o += BTH_BYTES;
  if (op === OPCODE_UD_SEND_ONLY || op === OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE) {
    b.writeUInt32BE(f.qkey >>> 0, o);
    b[o + 4] = 0;
    b[o + 5] = (f.srcQp >>> 16) & 0xff;
    b[o + 6] = (f.srcQp >>> 8) & 0xff;
    b[o + 7] = f.srcQp & 0xff;
    o += DETH_BYTES;
  }
  if (op === OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE || op === OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE
    || op === OPCODE_RC_SEND_LAST_WITH_IMMEDIATE) {
    b.writeUInt32BE(f.imm >>> 0, o);
    o += IMMDT_BYTES;
  }
  if (op === OPCODE_RC_ACKNOWLEDGE) {
    b[o] = f.aethSyndrome;
    b[o + 1] = (f.aethMsn >>> 16) & 0xff;
    b[o + 2] = (f.aethMsn >>> 8) & 0xff;
    b[o + 3] = f.aethMsn & 0xff;
    o += AETH_BYTES;
  }
  if (length > 0) b.set(start === 0 && length === payload.length ? payload : payload.subarray(start, start + length), o);
  o += length;
  for (let i = 0; i < pad; i++) b[o + i] = 0;
  b.writeUInt32LE(icrcOf(b, icrcOffset), icrcOffset);
  b[icrcOffset + ICRC_BYTES] = 0;
  b[icrcOffset + ICRC_BYTES + 1] = 0;
  return b;
}

export { OPCODE_RC_SEND_LAST_WITH_IMMEDIATE };
