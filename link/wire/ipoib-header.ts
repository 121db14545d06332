// The 4-byte IPoIB encapsulation header: RFC 4391 §6, as Linux builds it (struct ipoib_header in
// drivers/infiniband/ulp/ipoib/ipoib.h) and Wireshark dissects it (ipoib.type, ipoib.reserved).
// It opens every UD payload after the DETH and every RC message in connected mode (IPOIB-FACTS §3.2).

import { targetBuffer, type Codec } from '../../codec/contract.js';
import { checkUint, need } from '../../codec/checked.js';

const PROTOCOL = 'IPoIB';
export const IPOIB_HEADER_LENGTH = 4;

// EtherTypes (IEEE registry). Linux IPoIB transmits only these five and drops the rest
// (ipoib_start_xmit(), IPOIB-FACTS §3.2).
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_RARP = 0x8035;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_TIPC = 0x88ca;

/**
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          Type (EtherType)     |           Reserved            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 * `reserved` is sent as 0 but kept as read: Wireshark's IB dissector uses reserved == 0 to
 * recognise an IPoIB payload, so a capture must show what was really on the wire.
 */
export interface IpoibHeader {
  type: number;
  reserved: number;
}

export function decodeIpoibHeader(buf: Buffer, offset = 0): IpoibHeader {
  need(buf, offset, IPOIB_HEADER_LENGTH, PROTOCOL, 'type');
  return { type: buf.readUInt16BE(offset), reserved: buf.readUInt16BE(offset + 2) };
}

export function encodeIpoibHeader(h: IpoibHeader, buf?: Buffer, offset = 0): Buffer {
  checkUint(PROTOCOL, 'type', h.type, 16);
  checkUint(PROTOCOL, 'reserved', h.reserved, 16);
  const out = targetBuffer(PROTOCOL, IPOIB_HEADER_LENGTH, buf, offset);
  out.writeUInt16BE(h.type, offset);
  out.writeUInt16BE(h.reserved, offset + 2);
  return out;
}

export const ipoibHeader: Codec<IpoibHeader> = {
  name: PROTOCOL,
  encodedLength: () => IPOIB_HEADER_LENGTH,
  encode: encodeIpoibHeader,
  decode: decodeIpoibHeader,
};
