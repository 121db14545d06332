// The IPv4 header (RFC 791 §3.1) with options, checksum per RFC 1071; flags and fragment offset
// kept as they are (this layer does not reassemble). Addresses are uint32 numbers, so the hot path
// (routing, ARP, neighbour lookups) compares integers instead of strings.

import { targetBuffer, type Codec } from '../../codec/contract.js';
import { badLength, badValue, checkUint, need } from '../../codec/checked.js';
import { WireError } from '../../codec/wire-error.js';
import { inetChecksum } from './inet-checksum.js';

const PROTOCOL = 'IPv4';
export const IPV4_MIN_HEADER_LENGTH = 20;
export const IPV4_MAX_HEADER_LENGTH = 60;
export const IPV4_MAX_TOTAL_LENGTH = 0xffff;

// Protocol numbers (IANA).
export const IP_PROTO_ICMP = 1;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;

// The 3-bit flags field, as a number (RFC 791: bit 0 reserved, bit 1 DF, bit 2 MF).
export const IPV4_FLAG_RESERVED = 0b100;
export const IPV4_FLAG_DF = 0b010;
export const IPV4_FLAG_MF = 0b001;

export const IPV4_BROADCAST = 0xffffffff;

/**
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Version|  IHL  |      tos      |          Total Length         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |               id              |flags|      fragOffset         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |      ttl      |   protocol    |         Header Checksum       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                              src                              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                              dst                              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    options (0-40 bytes, IHL-5 words)          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 * Version (4), IHL, Total Length and the checksum are derived: computed on encode, checked on
 * decode. fragOffset is in 8-byte units, as on the wire.
 */
export interface Ipv4Header {
  tos: number;
  id: number;
  flags: number;
  fragOffset: number;
  ttl: number;
  protocol: number;
  src: number;
  dst: number;
  /** Raw option bytes, a multiple of 4 (pad with End-of-Options 0), at most 40. */
  options: Buffer;
}

export interface Ipv4 extends Ipv4Header {
  /** A view of the datagram's payload: Total Length minus the header, not a copy. */
  payload: Buffer;
}

export function ipv4HeaderLength(h: Ipv4Header): number {
  return IPV4_MIN_HEADER_LENGTH + h.options.length;
}

export function ipv4Length(p: Ipv4): number {
  return ipv4HeaderLength(p) + p.payload.length;
}

/** Decodes and validates; bytes after Total Length (link-layer padding) are ignored. */
export function decodeIpv4(buf: Buffer, offset = 0): Ipv4 {
  need(buf, offset, IPV4_MIN_HEADER_LENGTH, PROTOCOL, 'header');
  const b0 = buf[offset]!;
  if (b0 >> 4 !== 4) throw badValue(PROTOCOL, 'version', offset, `version ${b0 >> 4}, expected 4`);
  const ihl = b0 & 0xf;
  if (ihl < 5) throw badValue(PROTOCOL, 'ihl', offset, `IHL ${ihl} is below the minimum 5`);
  const headerLength = ihl * 4;
  need(buf, offset, headerLength, PROTOCOL, 'options');
  const totalLength = buf.readUInt16BE(offset + 2);
  if (totalLength < headerLength) {
    throw badLength(PROTOCOL, 'totalLength', offset + 2, `total length ${totalLength} < header length ${headerLength}`);
  }
  if (offset + totalLength > buf.length) {
    throw badLength(PROTOCOL, 'totalLength', offset + 2,
      `total length ${totalLength} but only ${buf.length - offset} bytes present`);
  }
  const sum = inetChecksum(buf, offset, headerLength);
  if (sum !== 0) {
    throw new WireError('BAD_CHECKSUM', PROTOCOL, 'checksum', offset + 10,
      `header checksum 0x${buf.readUInt16BE(offset + 10).toString(16)} does not verify`);
  }
  const ff = buf.readUInt16BE(offset + 6);
  return {
    tos: buf[offset + 1]!,
    id: buf.readUInt16BE(offset + 4),
    flags: ff >> 13,
    fragOffset: ff & 0x1fff,
    ttl: buf[offset + 8]!,
    protocol: buf[offset + 9]!,
    src: buf.readUInt32BE(offset + 12),
    dst: buf.readUInt32BE(offset + 16),
    options: buf.subarray(offset + IPV4_MIN_HEADER_LENGTH, offset + headerLength),
    payload: buf.subarray(offset + headerLength, offset + totalLength),
  };
}

/**
 * Writes only the header, for a payload of payloadLength bytes that the caller has already put
 * (or will put) right after it: the send path builds UDP in place and never copies it.
 */
export function encodeIpv4Header(h: Ipv4Header, payloadLength: number, buf?: Buffer, offset = 0): Buffer {
  checkUint(PROTOCOL, 'tos', h.tos, 8);
  checkUint(PROTOCOL, 'id', h.id, 16);
  checkUint(PROTOCOL, 'flags', h.flags, 3);
  checkUint(PROTOCOL, 'fragOffset', h.fragOffset, 13);
  checkUint(PROTOCOL, 'ttl', h.ttl, 8);
  checkUint(PROTOCOL, 'protocol', h.protocol, 8);
  checkUint(PROTOCOL, 'src', h.src, 32);
  checkUint(PROTOCOL, 'dst', h.dst, 32);
  const headerLength = ipv4HeaderLength(h);
  if (h.options.length % 4 !== 0 || headerLength > IPV4_MAX_HEADER_LENGTH) {
    throw new WireError('INVALID_RECORD', PROTOCOL, 'options', -1,
      `${h.options.length} option bytes: must be a multiple of 4, at most 40`);
  }
  const totalLength = headerLength + payloadLength;
  if (!Number.isInteger(payloadLength) || payloadLength < 0 || totalLength > IPV4_MAX_TOTAL_LENGTH) {
    throw new WireError('INVALID_RECORD', PROTOCOL, 'totalLength', -1, `total length ${totalLength} exceeds 65535`);
  }
  const out = targetBuffer(PROTOCOL, headerLength, buf, offset);
  out[offset] = 0x40 | (headerLength >> 2);
  out[offset + 1] = h.tos;
  out.writeUInt16BE(totalLength, offset + 2);
  out.writeUInt16BE(h.id, offset + 4);
  out.writeUInt16BE((h.flags << 13) | h.fragOffset, offset + 6);
  out[offset + 8] = h.ttl;
  out[offset + 9] = h.protocol;
  out.writeUInt16BE(0, offset + 10);
  out.writeUInt32BE(h.src, offset + 12);
  out.writeUInt32BE(h.dst, offset + 16);
  h.options.copy(out, offset + IPV4_MIN_HEADER_LENGTH);
  out.writeUInt16BE(inetChecksum(out, offset, headerLength), offset + 10);
  return out;
}

export function encodeIpv4(p: Ipv4, buf?: Buffer, offset = 0): Buffer {
  const headerLength = ipv4HeaderLength(p);
  const out = targetBuffer(PROTOCOL, headerLength + p.payload.length, buf, offset);
  encodeIpv4Header(p, p.payload.length, out, offset);
  p.payload.copy(out, offset + headerLength);
  return out;
}

export const ipv4: Codec<Ipv4> = {
  name: PROTOCOL,
  encodedLength: ipv4Length,
  encode: encodeIpv4,
  decode: decodeIpv4,
};

// ---- dotted-quad text -------------------------------------------------------------------------

export function formatIpv4(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** Strict dotted quad: four decimal octets 0-255 without leading zeros (which some parsers read as octal). */
export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
    throw new WireError('BAD_VALUE', PROTOCOL, 'address', 0, `${JSON.stringify(text)} is not a dotted-quad IPv4 address`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}
