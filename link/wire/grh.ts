// Global Route Header (GRH), 40 bytes: IBA Vol 1 §8.3, as laid out by Linux ud_header.c grh_table
// (IPOIB-FACTS §1.3). PayLen and NxtHdr are kept as data here; ib-packet.ts derives and checks them.
import type { Codec } from '../../codec/contract.js';
import { targetBuffer } from '../../codec/contract.js';
import { badValue, checkBytes, checkUint, need } from '../../codec/checked.js';
import { GRH_BYTES, GRH_IPVER } from './ib-constants.js';

/**
 * ```
 *  bytes 0-3                                  4-5        6        7
 * +-------+----------+---------------------+ +--------+ +------+ +------+
 * | IPVer |  TClass  |      FlowLabel      | | PayLen | |NxtHdr| |HopLmt|
 * +-------+----------+---------------------+ +--------+ +------+ +------+
 *     4        8               20               16         8        8
 * +---------------------------------------+ +---------------------------------------+
 * |          SGID (bytes 8-23)            | |          DGID (bytes 24-39)           |
 * +---------------------------------------+ +---------------------------------------+
 * ```
 * IPVer is not in the record: it must be 6, so decode rejects others. `sgid` and `dgid` are 16-byte
 * views into the decoded buffer (no copy): copy them to keep them past the buffer's reuse.
 */
export interface Grh {
  tclass: number;
  flowLabel: number;
  /** Bytes after the GRH through the ICRC. */
  payLen: number;
  nxtHdr: number;
  hopLmt: number;
  sgid: Buffer;
  dgid: Buffer;
}

/** The GRH as ib-packet.ts keeps it: PayLen follows from PktLen, and NxtHdr is always 0x1B there. */
export type GrhFields = Omit<Grh, 'payLen' | 'nxtHdr'>;

const P = 'GRH';

export function decodeGrh(buf: Buffer, offset = 0): Grh {
  need(buf, offset, GRH_BYTES, P, 'grh');
  const w0 = buf.readUInt32BE(offset);
  if (w0 >>> 28 !== GRH_IPVER) throw badValue(P, 'ipVer', offset, `IPVer ${w0 >>> 28}, must be 6`);
  return {
    tclass: (w0 >>> 20) & 0xff,
    flowLabel: w0 & 0xfffff,
    payLen: (buf[offset + 4]! << 8) | buf[offset + 5]!,
    nxtHdr: buf[offset + 6]!,
    hopLmt: buf[offset + 7]!,
    sgid: buf.subarray(offset + 8, offset + 24),
    dgid: buf.subarray(offset + 24, offset + 40),
  };
}

/** TClass, FlowLabel, HopLmt and the GIDs, read without checks (ib-packet.ts has checked the bytes). */
export function readGrhFields(buf: Buffer, offset: number): GrhFields {
  const w0 = buf.readUInt32BE(offset);
  return {
    tclass: (w0 >>> 20) & 0xff,
    flowLabel: w0 & 0xfffff,
    hopLmt: buf[offset + 7]!,
    sgid: buf.subarray(offset + 8, offset + 24),
    dgid: buf.subarray(offset + 24, offset + 40),
  };
}

/** Writes the 40 bytes at offset with the given PayLen and NxtHdr; buf must have room. */
export function writeGrhWith(v: GrhFields, payLen: number, nxtHdr: number, buf: Buffer, offset: number): void {
  checkUint(P, 'tclass', v.tclass, 8);
  checkUint(P, 'flowLabel', v.flowLabel, 20);
  checkUint(P, 'payLen', payLen, 16);
  checkUint(P, 'nxtHdr', nxtHdr, 8);
  checkUint(P, 'hopLmt', v.hopLmt, 8);
  checkBytes(P, 'sgid', v.sgid, 16);
  checkBytes(P, 'dgid', v.dgid, 16);
  buf.writeUInt32BE(((GRH_IPVER << 28) | (v.tclass << 20) | v.flowLabel) >>> 0, offset);
  buf[offset + 4] = payLen >>> 8;
  buf[offset + 5] = payLen & 0xff;
  buf[offset + 6] = nxtHdr;
  buf[offset + 7] = v.hopLmt;
  v.sgid.copy(buf, offset + 8);
  v.dgid.copy(buf, offset + 24);
}

/** Writes the 40 bytes at offset; buf must have room (encodeGrh checks it). */
export function writeGrh(v: Grh, buf: Buffer, offset: number): void {
  writeGrhWith(v, v.payLen, v.nxtHdr, buf, offset);
}

export function encodeGrh(v: Grh, buf?: Buffer, offset = 0): Buffer {
  const out = targetBuffer(P, GRH_BYTES, buf, offset);
  writeGrh(v, out, offset);
  return out;
}

export const grh: Codec<Grh> = {
  name: P,
  encodedLength: () => GRH_BYTES,
  encode: encodeGrh,
  decode: decodeGrh,
};
