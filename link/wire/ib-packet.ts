// A whole native InfiniBand packet as it crosses a link: LRH [GRH] BTH [DETH] [ImmDt] payload pad ICRC VCRC.
// IBA Vol 1 §5.4 (packet format), §7.7-7.8 (LRH, CRCs), §8.3 (GRH), §9.2-9.3 (BTH, DETH); sizes and the
// length rules as Linux ud_header.c ib_ud_header_init()/unpack() apply them (IPOIB-FACTS §1.1-1.6).
// Also the peek accessors a switch forwards with, reading single fields without decoding.
import type { Codec } from '../../codec/contract.js';
import { targetBuffer } from '../../codec/contract.js';
import { badLength, badValue, checkUint, need } from '../../codec/checked.js';
import { WireError } from '../../codec/wire-error.js';
import { readBthFields, writeBthWith, type BthFields } from './bth.js';
import { decodeDeth, writeDeth, type Deth } from './deth.js';
import { readGrhFields, writeGrhWith, type GrhFields } from './grh.js';
import {
  BTH_BYTES, BTH_TVER, DETH_BYTES, GRH_BYTES, GRH_IPVER, GRH_NXTHDR_IBA, ICRC_BYTES, IMMDT_BYTES,
  LNH_IBA_GLOBAL, LNH_IBA_LOCAL, LRH_BYTES, LRH_LVER, PKTLEN_MAX_WORDS, VCRC_BYTES, isUdOpcode,
  opcodeHasImmDt,
} from './ib-constants.js';
import { computeIcrc, computeVcrc } from './ib-crc.js';
import { readLrhFields, writeLrhWith, type LrhFields } from './lrh.js';

/**
 * ```
 * +-----+-------+-----+--------+---------+---------------+-------+------+------+
 * | LRH | [GRH] | BTH | [DETH] | [ImmDt] |    payload    |  pad  | ICRC | VCRC |
 * +-----+-------+-----+--------+---------+---------------+-------+------+------+
 *    8     40     12      8         4          n          PadCnt    4      2
 * |<------------------------- LRH.PktLen * 4 ------------------------->|
 *                 |<------------------ GRH.PayLen -------------------->|
 * ```
 * The record holds what the sender chooses; the rest is derived on encode and verified on decode:
 * LRH.LNH (3 when `grh` is present, else 2), LRH.PktLen, GRH.PayLen, GRH.NxtHdr (0x1B), BTH.PadCnt,
 * the pad bytes (zeros), ICRC and VCRC (see ib-crc.ts).
 * - `deth` is present exactly for UD opcodes (0x60-0x7F), `immDt` exactly when opcodeHasImmDt(opcode).
 * - Other extension headers (RETH, AETH, AtomicETH, RDETH) are not parsed: they stay at the front of
 *   `payload`, so any opcode round-trips.
 * - Decode copies nothing: `payload` and the GIDs are views into the decoded buffer.
 */
export interface IbPacket {
  lrh: LrhFields;
  grh?: GrhFields;
  bth: BthFields;
  deth?: Deth;
  immDt?: number;
  payload: Buffer;
}

const P = 'IB';

/** Bytes before the payload: LRH, GRH, BTH, DETH, ImmDt as present. */
export function ibHeaderLength(pkt: IbPacket): number {
  return LRH_BYTES + (pkt.grh ? GRH_BYTES : 0) + BTH_BYTES + (pkt.deth ? DETH_BYTES : 0)
    + (pkt.immDt !== undefined ? IMMDT_BYTES : 0);
}

/** The whole frame, VCRC included. */
export function ibPacketLength(pkt: IbPacket): number {
  const n = pkt.payload.length;
  return ibHeaderLength(pkt) + n + ((4 - (n & 3)) & 3) + ICRC_BYTES + VCRC_BYTES;
}

/**
 * Writes the frame at offset of buf (allocating when buf is absent) and returns the buffer. With a
 * caller's buffer nothing is allocated. A sender may build its payload in place at
 * offset + ibHeaderLength(pkt) and pass that view as `payload`.
 */
export function encodeIbPacket(pkt: IbPacket, buf?: Buffer, offset = 0): Buffer {
  const opcode = pkt.bth.opcode;
  if ((pkt.deth !== undefined) !== isUdOpcode(opcode)) {
    throw new WireError('INVALID_RECORD', P, 'deth', -1,
      `opcode 0x${opcode.toString(16)} ${isUdOpcode(opcode) ? 'needs' : 'takes no'} DETH`);
  }
  if ((pkt.immDt !== undefined) !== opcodeHasImmDt(opcode)) {
    throw new WireError('INVALID_RECORD', P, 'immDt', -1,
      `opcode 0x${opcode.toString(16)} ${opcodeHasImmDt(opcode) ? 'needs' : 'takes no'} ImmDt`);
  }
  const total = ibPacketLength(pkt);
  const crcCovered = total - VCRC_BYTES;
  if (crcCovered / 4 > PKTLEN_MAX_WORDS) {
    throw new WireError('INVALID_RECORD', P, 'payload', -1,
      `${pkt.payload.length}-byte payload exceeds PktLen's ${PKTLEN_MAX_WORDS} words`);
  }
  const out = targetBuffer(P, total, buf, offset);
  const payLen = pkt.payload.length;
  const padCnt = (4 - (payLen & 3)) & 3;
  let p = offset;
  writeLrhWith(pkt.lrh, pkt.grh ? LNH_IBA_GLOBAL : LNH_IBA_LOCAL, crcCovered >>> 2, out, p);
  p += LRH_BYTES;
  if (pkt.grh) {
    writeGrhWith(pkt.grh, crcCovered - LRH_BYTES - GRH_BYTES, GRH_NXTHDR_IBA, out, p);
    p += GRH_BYTES;
  }
  writeBthWith(pkt.bth, padCnt, out, p);
  p += BTH_BYTES;
  if (pkt.deth) {
    writeDeth(pkt.deth, out, p);
    p += DETH_BYTES;
  }
  if (pkt.immDt !== undefined) {
    checkUint(P, 'immDt', pkt.immDt, 32);
    out.writeUInt32BE(pkt.immDt, p);
    p += IMMDT_BYTES;
  }
  pkt.payload.copy(out, p);
  p += payLen;
  for (let i = 0; i < padCnt; i++) out[p++] = 0;
  out.writeUInt32LE(computeIcrc(out, offset, p - offset), p);
  p += ICRC_BYTES;
  out.writeUInt16LE(computeVcrc(out, offset, p - offset), p);
  return out;
}

/**
 * Decodes and verifies the frame at offset. With `frameLength` (what a link delivered) the frame must be
 * exactly that long; without it, bytes after the VCRC are left alone. Checks in the order a port
 * does: LRH (LVer, LNH, PktLen against the bytes), VCRC, ICRC, then GRH (IPVer, NxtHdr, PayLen), BTH
 * (TVer, PadCnt) and the extension headers against PktLen.
 */
export function decodeIbPacket(buf: Buffer, offset = 0, frameLength?: number): IbPacket {
  need(buf, offset, LRH_BYTES, 'LRH', 'lrh');
  const b0 = buf[offset]!;
  if ((b0 & 0x0f) !== LRH_LVER) throw badValue('LRH', 'lver', offset, `LVer ${b0 & 0x0f}, only 0 is defined`);
  const lnh = buf[offset + 1]! & 3;
  if (lnh !== LNH_IBA_LOCAL && lnh !== LNH_IBA_GLOBAL) {
    throw badValue('LRH', 'lnh', offset + 1, `LNH ${lnh}: raw packets carry no IBA transport header`);
  }
  const words = ((buf[offset + 4]! & 7) << 8) | buf[offset + 5]!;
  const covered = words * 4;
  let present = buf.length - offset;
  if (frameLength !== undefined) {
    if (!Number.isInteger(frameLength) || frameLength < 0 || frameLength > present) {
      throw new WireError('TRUNCATED', P, 'frame', offset, `frame of ${frameLength} bytes, ${present} in the buffer`);
    }
    present = frameLength;
  }
  if (covered + VCRC_BYTES > present) {
    throw badLength('LRH', 'pktLen', offset + 4,
      `PktLen ${words} words = ${covered + VCRC_BYTES} bytes with VCRC, only ${present} present`);
  }
  if (frameLength !== undefined && covered + VCRC_BYTES !== frameLength) {
    throw badLength('LRH', 'pktLen', offset + 4,
      `PktLen ${words} words = ${covered + VCRC_BYTES} bytes with VCRC, frame has ${frameLength}`);
  }
  const global = lnh === LNH_IBA_GLOBAL;
  const bthAt = offset + LRH_BYTES + (global ? GRH_BYTES : 0);
  const icrcAt = offset + covered - ICRC_BYTES;
  if (bthAt + BTH_BYTES > icrcAt) {
    throw badLength('LRH', 'pktLen', offset + 4,
      `PktLen ${words} words cannot hold LRH${global ? '+GRH' : ''}+BTH+ICRC`);
  }

  const vcrcAt = offset + covered;
  const vcrc = computeVcrc(buf, offset, covered);
  const vcrcWire = buf.readUInt16LE(vcrcAt);
  if (vcrc !== vcrcWire) {
    throw new WireError('BAD_CHECKSUM', P, 'vcrc', vcrcAt,
      `VCRC 0x${hex(vcrcWire, 4)} on the wire, 0x${hex(vcrc, 4)} computed`);
  }
  const icrc = computeIcrc(buf, offset, covered - ICRC_BYTES);
  const icrcWire = buf.readUInt32LE(icrcAt);
  if (icrc !== icrcWire) {
    throw new WireError('BAD_CHECKSUM', P, 'icrc', icrcAt,
      `ICRC 0x${hex(icrcWire, 8)} on the wire, 0x${hex(icrc, 8)} computed`);
  }

  let grh: GrhFields | undefined;
  if (global) {
    const g = offset + LRH_BYTES;
    const ipVer = buf[g]! >>> 4;
    if (ipVer !== GRH_IPVER) throw badValue('GRH', 'ipVer', g, `IPVer ${ipVer}, must be 6`);
    const nxtHdr = buf[g + 6]!;
    if (nxtHdr !== GRH_NXTHDR_IBA) {
      throw badValue('GRH', 'nxtHdr', g + 6, `NxtHdr 0x${hex(nxtHdr, 2)}: not followed by a BTH (0x1b)`);
    }
    const payLen = (buf[g + 4]! << 8) | buf[g + 5]!;
    if (payLen !== covered - LRH_BYTES - GRH_BYTES) {
      throw badLength('GRH', 'payLen', g + 4,
        `PayLen ${payLen}, PktLen gives ${covered - LRH_BYTES - GRH_BYTES} bytes after the GRH`);
    }
    grh = readGrhFields(buf, g);
  }

  const b1 = buf[bthAt + 1]!;
  if ((b1 & 0x0f) !== BTH_TVER) throw badValue('BTH', 'tver', bthAt + 1, `TVer ${b1 & 0x0f}, only 0 is defined`);
  const bth = readBthFields(buf, bthAt);
  let p = bthAt + BTH_BYTES;
  let deth: Deth | undefined;
  if (isUdOpcode(bth.opcode)) {
    if (p + DETH_BYTES > icrcAt) throw badLength('LRH', 'pktLen', offset + 4, `PktLen ${words} words leave no room for the DETH`);
    deth = decodeDeth(buf, p);
    p += DETH_BYTES;
  }
  let immDt: number | undefined;
  if (opcodeHasImmDt(bth.opcode)) {
    if (p + IMMDT_BYTES > icrcAt) throw badLength('LRH', 'pktLen', offset + 4, `PktLen ${words} words leave no room for the ImmDt`);
    immDt = buf.readUInt32BE(p);
    p += IMMDT_BYTES;
  }
  const padCnt = (b1 >>> 4) & 3;
  if (p + padCnt > icrcAt) {
    throw badLength('BTH', 'padCnt', bthAt + 1, `PadCnt ${padCnt} exceeds the ${icrcAt - p} bytes after the headers`);
  }
  const payload = buf.subarray(p, icrcAt - padCnt);
  const lrh = readLrhFields(buf, offset);
  if (grh) {
    if (deth) return immDt !== undefined ? { lrh, grh, bth, deth, immDt, payload } : { lrh, grh, bth, deth, payload };
    return immDt !== undefined ? { lrh, grh, bth, immDt, payload } : { lrh, grh, bth, payload };
  }
  if (deth) return immDt !== undefined ? { lrh, bth, deth, immDt, payload } : { lrh, bth, deth, payload };
  return immDt !== undefined ? { lrh, bth, immDt, payload } : { lrh, bth, payload };
}

/** decodeIbPacket for a frame exactly as a link delivered it (no bytes after the VCRC). */
export function decodeIbFrame(frame: Buffer): IbPacket {
  return decodeIbPacket(frame, 0, frame.length);
}

export const ibPacket: Codec<IbPacket> = {
  name: P,
  encodedLength: ibPacketLength,
  encode: encodeIbPacket,
  decode: (buf, offset = 0) => decodeIbPacket(buf, offset),
};

function hex(v: number, digits: number): string {
  return v.toString(16).padStart(digits, '0');
}

// ---- peek accessors: one field, no decode, no checks, no allocation. They never throw: past the end
// of buf a byte reads as 0. Validate a frame once with isPlausibleIbFrame() (cheap, no CRC) or
// decodeIbPacket() (full) before trusting what they return.

export function peekVl(buf: Uint8Array, offset = 0): number {
  return (buf[offset] ?? 0) >>> 4;
}

export function peekSl(buf: Uint8Array, offset = 0): number {
  return (buf[offset + 1] ?? 0) >>> 4;
}

export function peekLnh(buf: Uint8Array, offset = 0): number {
  return (buf[offset + 1] ?? 0) & 3;
}

export function peekDlid(buf: Uint8Array, offset = 0): number {
  return ((buf[offset + 2] ?? 0) << 8) | (buf[offset + 3] ?? 0);
}

/** LRH.PktLen in 4-byte words; the frame is PktLen * 4 + 2 bytes. */
export function peekPktLen(buf: Uint8Array, offset = 0): number {
  return (((buf[offset + 4] ?? 0) & 7) << 8) | (buf[offset + 5] ?? 0);
}

export function peekSlid(buf: Uint8Array, offset = 0): number {
  return ((buf[offset + 6] ?? 0) << 8) | (buf[offset + 7] ?? 0);
}

/** Where the BTH starts: after the LRH, and after the GRH when LNH = 3. */
export function bthOffset(buf: Uint8Array, offset = 0): number {
  return offset + LRH_BYTES + (((buf[offset + 1] ?? 0) & 3) === LNH_IBA_GLOBAL ? GRH_BYTES : 0);
}

export function peekOpcode(buf: Uint8Array, offset = 0): number {
  return buf[bthOffset(buf, offset)] ?? 0;
}

export function peekPkey(buf: Uint8Array, offset = 0): number {
  const b = bthOffset(buf, offset);
  return ((buf[b + 2] ?? 0) << 8) | (buf[b + 3] ?? 0);
}

export function peekDestQp(buf: Uint8Array, offset = 0): number {
  const b = bthOffset(buf, offset);
  return ((buf[b + 5] ?? 0) << 16) | ((buf[b + 6] ?? 0) << 8) | (buf[b + 7] ?? 0);
}

export function peekPsn(buf: Uint8Array, offset = 0): number {
  const b = bthOffset(buf, offset);
  return ((buf[b + 9] ?? 0) << 16) | ((buf[b + 10] ?? 0) << 8) | (buf[b + 11] ?? 0);
}

/** DETH.Q_Key; meaningful for UD opcodes only. */
export function peekQkey(buf: Uint8Array, offset = 0): number {
  const d = bthOffset(buf, offset) + BTH_BYTES;
  return (((buf[d] ?? 0) << 24) | ((buf[d + 1] ?? 0) << 16) | ((buf[d + 2] ?? 0) << 8) | (buf[d + 3] ?? 0)) >>> 0;
}

/** DETH.SrcQP; meaningful for UD opcodes only. */
export function peekSrcQp(buf: Uint8Array, offset = 0): number {
  const d = bthOffset(buf, offset) + BTH_BYTES;
  return ((buf[d + 5] ?? 0) << 16) | ((buf[d + 6] ?? 0) << 8) | (buf[d + 7] ?? 0);
}

/**
 * Cheap framing check for forwarding (no CRC): LVer 0, LNH 2 or 3, PktLen * 4 + 2 === length, and room
 * for LRH [GRH] BTH [DETH] [ImmDt] ICRC. After it the peeks above read real header bytes.
 */
export function isPlausibleIbFrame(buf: Uint8Array, offset = 0, length = buf.length - offset): boolean {
  if (offset < 0 || length < LRH_BYTES || offset + length > buf.length) return false;
  if ((buf[offset]! & 0x0f) !== LRH_LVER) return false;
  const lnh = buf[offset + 1]! & 3;
  if (lnh !== LNH_IBA_LOCAL && lnh !== LNH_IBA_GLOBAL) return false;
  const covered = peekPktLen(buf, offset) * 4;
  if (covered + VCRC_BYTES !== length) return false;
  const b = offset + LRH_BYTES + (lnh === LNH_IBA_GLOBAL ? GRH_BYTES : 0);
  const opcode = buf[b]!;
  const headers = b - offset + BTH_BYTES + ICRC_BYTES + (isUdOpcode(opcode) ? DETH_BYTES : 0)
    + (opcodeHasImmDt(opcode) ? IMMDT_BYTES : 0);
  return headers <= covered;
}

/**
 * Recomputes the VCRC of the frame at offset in place, after a hop changed a variant field (LRH.VL,
 * BTH FECN/BECN); the ICRC does not cover those, so it stays valid. The frame must be plausible.
 */
export function restampVcrc(buf: Buffer, offset = 0): void {
  const covered = peekPktLen(buf, offset) * 4;
  buf.writeUInt16LE(computeVcrc(buf, offset, covered), offset + covered);
}

/**
 * Writes the VCRC of a frame whose VCRC field is still 0 (how the emulator's senders leave it, see
 * link/fabric/packet-view.ts buildPacket), in place; a frame that already carries a VCRC, or whose
 * PktLen does not match `length`, is left exactly as it is. Returns whether it wrote. A VCRC whose
 * true value is 0 is rewritten as 0: harmless.
 */
export function stampVcrc(buf: Buffer, offset = 0, length = buf.length - offset): boolean {
  const covered = peekPktLen(buf, offset) * 4;
  if (length < LRH_BYTES + VCRC_BYTES || covered + VCRC_BYTES !== length || offset + length > buf.length) return false;
  const at = offset + covered;
  if (buf[at] !== 0 || buf[at + 1] !== 0) return false;
  buf.writeUInt16LE(computeVcrc(buf, offset, covered), at);
  return true;
}
