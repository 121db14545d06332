// UDP (RFC 768) over IPv4: the checksum covers the IPv4 pseudo-header (src, dst, protocol 17,
// UDP length), the header and the data; a transmitted 0 means "no checksum", so a computed 0 is
// sent as 0xFFFF. Length handling follows Linux __udp4_lib_rcv(): a length beyond the bytes or
// below 8 is an error, a shorter one trims the datagram.

import { targetBuffer, type Codec } from '../../codec/contract.js';
import { badLength, checkUint, need } from '../../codec/checked.js';
import { WireError } from '../../codec/wire-error.js';
import { foldChecksum, onesSum, pseudoHeaderSum } from './inet-checksum.js';

const PROTOCOL = 'UDP';
export const UDP_HEADER_LENGTH = 8;
const IP_PROTO_UDP = 17; // IANA; also exported by ipv4.ts, repeated to keep udp.ts free of it
const MAX_UDP_LENGTH = 0xffff;

/** The IPv4 addresses the checksum's pseudo-header covers (uint32, as in Ipv4Header). */
export interface UdpPseudoHeader {
  src: number;
  dst: number;
}

/**
 * ```
 *  0      7 8     15 16    23 24    31
 * +--------+--------+--------+--------+
 * |     srcPort     |     dstPort     |
 * +--------+--------+--------+--------+
 * |     length      |    checksum     |
 * +--------+--------+--------+--------+
 * |          payload ...              |
 * +-----------------------------------+
 * ```
 * length and checksum are derived. `noChecksum` records a transmitted 0 (sender computed none);
 * decode leaves it out otherwise. payload is a view, not a copy.
 */
export interface Udp {
  srcPort: number;
  dstPort: number;
  noChecksum?: boolean;
  payload: Buffer;
}

export function udpLength(u: Udp): number {
  return UDP_HEADER_LENGTH + u.payload.length;
}

/**
 * Decodes the datagram at offset; buf should end where the IP payload ends (bytes after the
 * UDP length are ignored, as Linux trims them). Verifies the checksum unless it is 0.
 */
export function decodeUdp(buf: Buffer, offset: number, pseudo: UdpPseudoHeader): Udp {
  need(buf, offset, UDP_HEADER_LENGTH, PROTOCOL, 'header');
  const length = buf.readUInt16BE(offset + 4);
  if (length < UDP_HEADER_LENGTH) throw badLength(PROTOCOL, 'length', offset + 4, `length ${length} < 8`);
  if (offset + length > buf.length) {
    throw badLength(PROTOCOL, 'length', offset + 4, `length ${length} but only ${buf.length - offset} bytes present`);
  }
  const checksum = buf.readUInt16BE(offset + 6);
  if (checksum !== 0) {
    const sum = onesSum(buf, offset, length, pseudoHeaderSum(pseudo.src, pseudo.dst, IP_PROTO_UDP, length));
    if (foldChecksum(sum) !== 0) {
      throw new WireError('BAD_CHECKSUM', PROTOCOL, 'checksum', offset + 6,
        `checksum 0x${checksum.toString(16)} does not verify`);
    }
  }
  const u: Udp = {
    srcPort: buf.readUInt16BE(offset),
    dstPort: buf.readUInt16BE(offset + 2),
    payload: buf.subarray(offset + UDP_HEADER_LENGTH, offset + length),
  };
  if (checksum === 0) u.noChecksum = true;
  return u;
}

/**
 * Writes the 8-byte header for payloadLength bytes that already sit right after it, and the
 * checksum over them: the send path builds the payload in place and never copies it.
 */
export function encodeUdpHeader(srcPort: number, dstPort: number, payloadLength: number, pseudo: UdpPseudoHeader,
  buf: Buffer, offset = 0, noChecksum = false): Buffer {
  checkUint(PROTOCOL, 'srcPort', srcPort, 16);
  checkUint(PROTOCOL, 'dstPort', dstPort, 16);
  checkUint(PROTOCOL, 'src', pseudo.src, 32);
  checkUint(PROTOCOL, 'dst', pseudo.dst, 32);
  const length = UDP_HEADER_LENGTH + payloadLength;
  if (!Number.isInteger(payloadLength) || payloadLength < 0 || length > MAX_UDP_LENGTH) {
    throw new WireError('INVALID_RECORD', PROTOCOL, 'length', -1, `length ${length} exceeds 65535`);
  }
  const out = targetBuffer(PROTOCOL, length, buf, offset);
  out.writeUInt16BE(srcPort, offset);
  out.writeUInt16BE(dstPort, offset + 2);
  out.writeUInt16BE(length, offset + 4);
  out.writeUInt16BE(0, offset + 6);
  if (!noChecksum) {
    const sum = onesSum(out, offset, length, pseudoHeaderSum(pseudo.src, pseudo.dst, IP_PROTO_UDP, length));
    out.writeUInt16BE(foldChecksum(sum) || 0xffff, offset + 6);
  }
  return out;
}

export function encodeUdp(u: Udp, pseudo: UdpPseudoHeader, buf?: Buffer, offset = 0): Buffer {
  const out = targetBuffer(PROTOCOL, udpLength(u), buf, offset);
  u.payload.copy(out, offset + UDP_HEADER_LENGTH);
  return encodeUdpHeader(u.srcPort, u.dstPort, u.payload.length, pseudo, out, offset, u.noChecksum === true);
}

/** A Codec bound to one pseudo-header: UDP cannot be checked without the IP addresses around it. */
export function udpCodec(pseudo: UdpPseudoHeader): Codec<Udp> {
  return {
    name: PROTOCOL,
    encodedLength: udpLength,
    encode: (u, buf, offset = 0) => encodeUdp(u, pseudo, buf, offset),
    decode: (buf, offset = 0) => decodeUdp(buf, offset, pseudo),
  };
}
