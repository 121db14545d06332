// ARP (RFC 826) with the IPoIB parameters of RFC 4391 §4.2 / Linux arp_hdr_len(): hardware type 32
// (ARPHRD_INFINIBAND), protocol 0x0800, hlen 20, plen 4 -> a 56-byte body (IPOIB-FACTS §3.6).
// The codec is generic in htype/hlen/plen, so Ethernet ARP (htype 1, hlen 6) and unknown
// hardware types and opcodes decode and round-trip too.

import { targetBuffer, type Codec } from '../../codec/contract.js';
import { checkUint, need } from '../../codec/checked.js';
import { WireError } from '../../codec/wire-error.js';

const PROTOCOL = 'ARP';
const FIXED = 8;

export const ARP_HTYPE_ETHERNET = 1;
export const ARP_HTYPE_INFINIBAND = 32; // ARPHRD_INFINIBAND, RFC 4391 §4.2
export const ARP_PTYPE_IPV4 = 0x0800;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;
/** 8 + 2 * (20 + 4): the body Linux requires on an IPoIB interface (ar_hln == dev->addr_len). */
export const IPOIB_ARP_LENGTH = 56;

/**
 * ```
 * +-------------------------------+-------------------------------+
 * |        htype (ar$hrd)         |        ptype (ar$pro)         |
 * +---------------+---------------+-------------------------------+
 * | hlen (ar$hln) | plen (ar$pln) |           op (ar$op)          |
 * +---------------+---------------+-------------------------------+
 * | sha: hlen bytes (IPoIB: the 20-byte address, flags included)  |
 * | spa: plen bytes | tha: hlen bytes | tpa: plen bytes           |
 * +---------------------------------------------------------------+
 * ```
 * hlen and plen are the lengths of sha/tha and spa/tpa, so the record does not repeat them.
 * The four addresses are views into the decoded buffer (copy them to keep them). Bytes after
 * the body (Ethernet pads ARP to 46 bytes) are ignored.
 */
export interface Arp {
  htype: number;
  ptype: number;
  op: number;
  sha: Buffer;
  spa: Buffer;
  tha: Buffer;
  tpa: Buffer;
}

export function arpLength(a: Arp): number {
  return FIXED + 2 * (a.sha.length + a.spa.length);
}

export function decodeArp(buf: Buffer, offset = 0): Arp {
  need(buf, offset, FIXED, PROTOCOL, 'header');
  const hlen = buf[offset + 4]!;
  const plen = buf[offset + 5]!;
  let at = offset + FIXED;
  const field = (name: string, len: number): Buffer => {
    need(buf, at, len, PROTOCOL, name);
    const view = buf.subarray(at, at + len);
    at += len;
    return view;
  };
  const htype = buf.readUInt16BE(offset);
  const ptype = buf.readUInt16BE(offset + 2);
  const op = buf.readUInt16BE(offset + 6);
  const sha = field('sha', hlen);
  const spa = field('spa', plen);
  const tha = field('tha', hlen);
  const tpa = field('tpa', plen);
  return { htype, ptype, op, sha, spa, tha, tpa };
}

export function encodeArp(a: Arp, buf?: Buffer, offset = 0): Buffer {
  checkUint(PROTOCOL, 'htype', a.htype, 16);
  checkUint(PROTOCOL, 'ptype', a.ptype, 16);
  checkUint(PROTOCOL, 'op', a.op, 16);
  checkUint(PROTOCOL, 'hlen', a.sha.length, 8);
  checkUint(PROTOCOL, 'plen', a.spa.length, 8);
  if (a.tha.length !== a.sha.length) {
    throw new WireError('INVALID_RECORD', PROTOCOL, 'tha', -1, `tha has ${a.tha.length} bytes, sha ${a.sha.length}`);
  }
  if (a.tpa.length !== a.spa.length) {
    throw new WireError('INVALID_RECORD', PROTOCOL, 'tpa', -1, `tpa has ${a.tpa.length} bytes, spa ${a.spa.length}`);
  }
  const out = targetBuffer(PROTOCOL, arpLength(a), buf, offset);
  out.writeUInt16BE(a.htype, offset);
  out.writeUInt16BE(a.ptype, offset + 2);
  out[offset + 4] = a.sha.length;
  out[offset + 5] = a.spa.length;
  out.writeUInt16BE(a.op, offset + 6);
  let at = offset + FIXED;
  at += a.sha.copy(out, at);
  at += a.spa.copy(out, at);
  at += a.tha.copy(out, at);
  a.tpa.copy(out, at);
  return out;
}

export const arp: Codec<Arp> = {
  name: PROTOCOL,
  encodedLength: arpLength,
  encode: encodeArp,
  decode: decodeArp,
};

/** What an IPoIB interface accepts (Linux arp_rcv(): ar_hln == addr_len, IPv4 over 4-byte addresses). */
export function isIpoibArp(a: Arp): boolean {
  return a.htype === ARP_HTYPE_INFINIBAND && a.ptype === ARP_PTYPE_IPV4 && a.sha.length === 20 && a.spa.length === 4;
}
