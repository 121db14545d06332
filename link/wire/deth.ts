// Datagram Extended Transport Header (DETH), 8 bytes, present on every UD packet: IBA Vol 1 §9.3.3,
// as laid out by Linux ud_header.c deth_table (IPOIB-FACTS §1.5).
import type { Codec } from '../../codec/contract.js';
import { targetBuffer } from '../../codec/contract.js';
import { checkUint, need } from '../../codec/checked.js';
import { DETH_BYTES } from './ib-constants.js';

/**
 * ```
 *  bytes 0-3              byte 4     bytes 5-7
 * +---------------------+ +-------+ +----------+
 * |        Q_Key        | | resv8 | |  SrcQP   |
 * +---------------------+ +-------+ +----------+
 *          32                 8          24
 * ```
 */
export interface Deth {
  qkey: number;
  resv8: number;
  srcQp: number;
}

const P = 'DETH';

export function decodeDeth(buf: Buffer, offset = 0): Deth {
  need(buf, offset, DETH_BYTES, P, 'deth');
  return {
    qkey: buf.readUInt32BE(offset),
    resv8: buf[offset + 4]!,
    srcQp: (buf[offset + 5]! << 16) | (buf[offset + 6]! << 8) | buf[offset + 7]!,
  };
}

export function writeDeth(v: Deth, buf: Buffer, offset: number): void {
  checkUint(P, 'qkey', v.qkey, 32);
  checkUint(P, 'resv8', v.resv8, 8);
  checkUint(P, 'srcQp', v.srcQp, 24);
  buf.writeUInt32BE(v.qkey, offset);
  buf[offset + 4] = v.resv8;
  buf[offset + 5] = v.srcQp >>> 16;
  buf[offset + 6] = (v.srcQp >>> 8) & 0xff;
  buf[offset + 7] = v.srcQp & 0xff;
}

export function encodeDeth(v: Deth, buf?: Buffer, offset = 0): Buffer {
  const out = targetBuffer(P, DETH_BYTES, buf, offset);
  writeDeth(v, out, offset);
  return out;
}

export const deth: Codec<Deth> = {
  name: P,
  encodedLength: () => DETH_BYTES,
  encode: encodeDeth,
  decode: decodeDeth,
};
