// Base Transport Header (BTH), 12 bytes: IBA Vol 1 §9.2, as laid out by Linux ud_header.c bth_table
// and Wireshark packet-infiniband.c (IPOIB-FACTS §1.4); FECN/BECN in Resv8a per IBA Annex A10 (hfi1
// IB_FECN_SHIFT/IB_BECN_SHIFT). PadCnt is kept as data here; ib-packet.ts derives and checks it.
import type { Codec } from '../../codec/contract.js';
import { targetBuffer } from '../../codec/contract.js';
import { badValue, checkUint, need } from '../../codec/checked.js';
import { BTH_BYTES, BTH_TVER } from './ib-constants.js';

/**
 * ```
 *  byte 0     byte 1                  bytes 2-3   byte 4                 bytes 5-7
 * +--------+ +--+--+------+------+ +---------+ +----+----+--------+ +----------+
 * | OpCode | |SE|M |PadCnt| TVer | |  P_Key  | |FECN|BECN| resv6  | |  DestQP  |
 * +--------+ +--+--+------+------+ +---------+ +----+----+--------+ +----------+
 *     8        1  1   2      4         16        1    1     6           24
 *  byte 8             bytes 9-11
 * +-------+-------+ +----------+
 * |AckReq | resv7 | |   PSN    |
 * +-------+-------+ +----------+
 *     1       7          24
 * ```
 * TVer is not in the record: it must be 0, so decode rejects others. The opcode stays a number so
 * unknown opcodes round-trip (see ib-constants.ts for the known ones).
 */
export interface Bth {
  opcode: number;
  se: boolean;
  migReq: boolean;
  padCnt: number;
  pkey: number;
  /** Resv8a bit 7 / bit 6 (congestion marks a switch may set: outside the ICRC). */
  fecn: boolean;
  becn: boolean;
  resv6: number;
  destQp: number;
  ackReq: boolean;
  resv7: number;
  psn: number;
}

/** The BTH as ib-packet.ts keeps it: PadCnt follows from the payload length. */
export type BthFields = Omit<Bth, 'padCnt'>;

const P = 'BTH';

export function decodeBth(buf: Buffer, offset = 0): Bth {
  need(buf, offset, BTH_BYTES, P, 'bth');
  const b1 = buf[offset + 1]!;
  if ((b1 & 0x0f) !== BTH_TVER) throw badValue(P, 'tver', offset + 1, `TVer ${b1 & 0x0f}, only 0 is defined`);
  const b4 = buf[offset + 4]!;
  const b8 = buf[offset + 8]!;
  return {
    opcode: buf[offset]!,
    se: (b1 & 0x80) !== 0,
    migReq: (b1 & 0x40) !== 0,
    padCnt: (b1 >>> 4) & 3,
    pkey: (buf[offset + 2]! << 8) | buf[offset + 3]!,
    fecn: (b4 & 0x80) !== 0,
    becn: (b4 & 0x40) !== 0,
    resv6: b4 & 0x3f,
    destQp: (buf[offset + 5]! << 16) | (buf[offset + 6]! << 8) | buf[offset + 7]!,
    ackReq: (b8 & 0x80) !== 0,
    resv7: b8 & 0x7f,
    psn: (buf[offset + 9]! << 16) | (buf[offset + 10]! << 8) | buf[offset + 11]!,
  };
}

/** Every field but PadCnt, read without checks (ib-packet.ts has checked the bytes). */
export function readBthFields(buf: Buffer, offset: number): BthFields {
  const b1 = buf[offset + 1]!;
  const b4 = buf[offset + 4]!;
  const b8 = buf[offset + 8]!;
  return {
    opcode: buf[offset]!,
    se: (b1 & 0x80) !== 0,
    migReq: (b1 & 0x40) !== 0,
    pkey: (buf[offset + 2]! << 8) | buf[offset + 3]!,
    fecn: (b4 & 0x80) !== 0,
    becn: (b4 & 0x40) !== 0,
    resv6: b4 & 0x3f,
    destQp: (buf[offset + 5]! << 16) | (buf[offset + 6]! << 8) | buf[offset + 7]!,
    ackReq: (b8 & 0x80) !== 0,
    resv7: b8 & 0x7f,
    psn: (buf[offset + 9]! << 16) | (buf[offset + 10]! << 8) | buf[offset + 11]!,
  };
}

/** Writes the 12 bytes at offset; buf must have room (encodeBth checks it). */
export function writeBth(v: Bth, buf: Buffer, offset: number): void {
  writeBthWith(v, v.padCnt, buf, offset);
}

/** Writes the 12 bytes at offset with the given PadCnt; buf must have room. */
export function writeBthWith(v: BthFields, padCnt: number, buf: Buffer, offset: number): void {
  checkUint(P, 'opcode', v.opcode, 8);
  checkUint(P, 'padCnt', padCnt, 2);
  checkUint(P, 'pkey', v.pkey, 16);
  checkUint(P, 'resv6', v.resv6, 6);
  checkUint(P, 'destQp', v.destQp, 24);
  checkUint(P, 'resv7', v.resv7, 7);
  checkUint(P, 'psn', v.psn, 24);
  buf[offset] = v.opcode;
  buf[offset + 1] = (v.se ? 0x80 : 0) | (v.migReq ? 0x40 : 0) | (padCnt << 4) | BTH_TVER;
  buf[offset + 2] = v.pkey >>> 8;
  buf[offset + 3] = v.pkey & 0xff;
  buf[offset + 4] = (v.fecn ? 0x80 : 0) | (v.becn ? 0x40 : 0) | v.resv6;
  buf[offset + 5] = v.destQp >>> 16;
  buf[offset + 6] = (v.destQp >>> 8) & 0xff;
  buf[offset + 7] = v.destQp & 0xff;
  buf[offset + 8] = (v.ackReq ? 0x80 : 0) | v.resv7;
  buf[offset + 9] = v.psn >>> 16;
  buf[offset + 10] = (v.psn >>> 8) & 0xff;
  buf[offset + 11] = v.psn & 0xff;
}

export function encodeBth(v: Bth, buf?: Buffer, offset = 0): Buffer {
  const out = targetBuffer(P, BTH_BYTES, buf, offset);
  writeBth(v, out, offset);
  return out;
}

export const bth: Codec<Bth> = {
  name: P,
  encodedLength: () => BTH_BYTES,
  encode: encodeBth,
  decode: decodeBth,
};
