// Local Route Header (LRH), 8 bytes: IBA Vol 1 §7.7, as laid out by Linux ud_header.c lrh_table
// (IPOIB-FACTS §1.2). PktLen is kept as data here; ib-packet.ts derives and verifies it.
import type { Codec } from '../../codec/contract.js';
import { targetBuffer } from '../../codec/contract.js';
import { badValue, checkUint, need } from '../../codec/checked.js';
import { LRH_BYTES, LRH_LVER } from './ib-constants.js';

/**
 * ```
 *  byte 0      byte 1            bytes 2-3   bytes 4-5            bytes 6-7
 * +----+----+ +----+----+-----+ +--------+ +------+----------+ +--------+
 * | VL |LVer| | SL |rsv2| LNH | |  DLID  | | rsv5 |  PktLen  | |  SLID  |
 * +----+----+ +----+----+-----+ +--------+ +------+----------+ +--------+
 *   4    4      4    2    2        16         5       11           16
 * ```
 * LVer is not in the record: it must be 0 (a receiver drops anything else), so decode rejects others.
 */
export interface Lrh {
  vl: number;
  sl: number;
  /** Byte 1 bits 3-2, reserved: kept so that whatever a peer sent round-trips. */
  resv2: number;
  lnh: number;
  dlid: number;
  /** Byte 4 bits 7-3, reserved. */
  resv5: number;
  /** 4-byte words from the first LRH byte through the ICRC (VCRC excluded). */
  pktLen: number;
  slid: number;
}

/** The LRH as ib-packet.ts keeps it: LNH and PktLen follow from the rest of the packet. */
export type LrhFields = Omit<Lrh, 'lnh' | 'pktLen'>;

const P = 'LRH';

export function decodeLrh(buf: Buffer, offset = 0): Lrh {
  need(buf, offset, LRH_BYTES, P, 'lrh');
  const b0 = buf[offset]!;
  if ((b0 & 0x0f) !== LRH_LVER) throw badValue(P, 'lver', offset, `LVer ${b0 & 0x0f}, only 0 is defined`);
  const b1 = buf[offset + 1]!;
  const b4 = buf[offset + 4]!;
  return {
    vl: b0 >>> 4,
    sl: b1 >>> 4,
    resv2: (b1 >>> 2) & 3,
    lnh: b1 & 3,
    dlid: (buf[offset + 2]! << 8) | buf[offset + 3]!,
    resv5: b4 >>> 3,
    pktLen: ((b4 & 7) << 8) | buf[offset + 5]!,
    slid: (buf[offset + 6]! << 8) | buf[offset + 7]!,
  };
}

/** The fields other than LNH and PktLen, read without checks (ib-packet.ts has checked the bytes). */
export function readLrhFields(buf: Buffer, offset: number): LrhFields {
  const b1 = buf[offset + 1]!;
  return {
    vl: buf[offset]! >>> 4,
    sl: b1 >>> 4,
    resv2: (b1 >>> 2) & 3,
    dlid: (buf[offset + 2]! << 8) | buf[offset + 3]!,
    resv5: buf[offset + 4]! >>> 3,
    slid: (buf[offset + 6]! << 8) | buf[offset + 7]!,
  };
}

/** Writes the 8 bytes at offset with the given LNH and PktLen; buf must have room. */
export function writeLrhWith(v: LrhFields, lnh: number, pktLen: number, buf: Buffer, offset: number): void {
  checkUint(P, 'vl', v.vl, 4);
  checkUint(P, 'sl', v.sl, 4);
  checkUint(P, 'resv2', v.resv2, 2);
  checkUint(P, 'lnh', lnh, 2);
  checkUint(P, 'dlid', v.dlid, 16);
  checkUint(P, 'resv5', v.resv5, 5);
  checkUint(P, 'pktLen', pktLen, 11);
  checkUint(P, 'slid', v.slid, 16);
  buf[offset] = (v.vl << 4) | LRH_LVER;
  buf[offset + 1] = (v.sl << 4) | (v.resv2 << 2) | lnh;
  buf[offset + 2] = v.dlid >>> 8;
  buf[offset + 3] = v.dlid & 0xff;
  buf[offset + 4] = (v.resv5 << 3) | (pktLen >>> 8);
  buf[offset + 5] = pktLen & 0xff;
  buf[offset + 6] = v.slid >>> 8;
  buf[offset + 7] = v.slid & 0xff;
}

/** Writes the 8 bytes at offset; buf must have room (encodeLrh checks it). */
export function writeLrh(v: Lrh, buf: Buffer, offset: number): void {
  writeLrhWith(v, v.lnh, v.pktLen, buf, offset);
}

export function encodeLrh(v: Lrh, buf?: Buffer, offset = 0): Buffer {
  const out = targetBuffer(P, LRH_BYTES, buf, offset);
  writeLrh(v, out, offset);
  return out;
}

export const lrh: Codec<Lrh> = {
  name: P,
  encodedLength: () => LRH_BYTES,
  encode: encodeLrh,
  decode: decodeLrh,
};
