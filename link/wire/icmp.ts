// ICMP for IPv4 (RFC 792): echo request/reply, destination unreachable with the RFC 1191
// next-hop MTU of code 4 ("fragmentation needed and DF set"), which IPoIB connected mode emits
// for packets above the UD MTU (IPOIB-FACTS §4). Other types survive as raw bytes. The
// checksum covers the whole message and is computed on encode, verified on decode.

import { targetBuffer, type Codec } from '../../codec/contract.js';
import { checkUint, need } from '../../codec/checked.js';
import { WireError } from '../../codec/wire-error.js';
import { inetChecksum } from './inet-checksum.js';

const PROTOCOL = 'ICMP';
export const ICMP_HEADER_LENGTH = 8;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
/** Destination unreachable codes (RFC 792; RFC 1191 for 4). */
export const ICMP_CODE_NET_UNREACHABLE = 0;
export const ICMP_CODE_HOST_UNREACHABLE = 1;
export const ICMP_CODE_PORT_UNREACHABLE = 3;
export const ICMP_CODE_FRAG_NEEDED = 4;

/**
 * Every ICMP message:
 * ```
 * +--------+--------+-----------------+
 * |  type  |  code  |    checksum     |
 * +--------+--------+-----------------+
 * |   rest of header (4 bytes)        |   echo: id | seq
 * +-----------------------------------+   unreachable: unused | nextHopMtu
 * |   data ...                        |
 * +-----------------------------------+
 * ```
 * The message runs to the end of the buffer given to decode (the IP payload): ICMP has no
 * length field. Data buffers are views, not copies.
 */
export type Icmp = IcmpEcho | IcmpDestUnreachable | IcmpRaw;

/** Types 0 and 8. */
export interface IcmpEcho {
  kind: 'echo';
  type: typeof ICMP_ECHO_REPLY | typeof ICMP_ECHO_REQUEST;
  code: number;
  id: number;
  seq: number;
  data: Buffer;
}

/** Type 3. `nextHopMtu` is meaningful for code 4 (RFC 1191) and kept as read for every code. */
export interface IcmpDestUnreachable {
  kind: 'unreachable';
  code: number;
  /** Bytes 4-5; zero from RFC 1191 senders (RFC 4884 puts a length in byte 5). */
  unused: number;
  nextHopMtu: number;
  /** The offending datagram's IP header and at least its first 8 payload bytes. */
  original: Buffer;
}

/** Any other type: bytes 4 onward as they were (rest of header + data, at least 4 bytes). */
export interface IcmpRaw {
  kind: 'raw';
  type: number;
  code: number;
  rest: Buffer;
}

export function icmpLength(m: Icmp): number {
  switch (m.kind) {
    case 'echo': return ICMP_HEADER_LENGTH + m.data.length;
    case 'unreachable': return ICMP_HEADER_LENGTH + m.original.length;
    case 'raw': return 4 + m.rest.length;
  }
}

/** Decodes `length` bytes at offset (default: to the end of buf, i.e. the whole IP payload). */
export function decodeIcmp(buf: Buffer, offset = 0, length = buf.length - offset): Icmp {
  need(buf, offset, ICMP_HEADER_LENGTH, PROTOCOL, 'header');
  if (!(length >= ICMP_HEADER_LENGTH)) {
    throw new WireError('TRUNCATED', PROTOCOL, 'header', offset, `message of ${length} bytes, header needs 8`);
  }
  need(buf, offset, length, PROTOCOL, 'data');
  const end = offset + length;
  if (inetChecksum(buf, offset, length) !== 0) {
    throw new WireError('BAD_CHECKSUM', PROTOCOL, 'checksum', offset + 2,
      `checksum 0x${buf.readUInt16BE(offset + 2).toString(16)} does not verify`);
  }
  const type = buf[offset]!;
  const code = buf[offset + 1]!;
  const data = buf.subarray(offset + ICMP_HEADER_LENGTH, end);
  if (type === ICMP_ECHO_REPLY || type === ICMP_ECHO_REQUEST) {
    return { kind: 'echo', type, code, id: buf.readUInt16BE(offset + 4), seq: buf.readUInt16BE(offset + 6), data };
  }
  if (type === ICMP_DEST_UNREACHABLE) {
    return {
      kind: 'unreachable', code, unused: buf.readUInt16BE(offset + 4),
      nextHopMtu: buf.readUInt16BE(offset + 6), original: data,
    };
  }
  return { kind: 'raw', type, code, rest: buf.subarray(offset + 4, end) };
}

export function encodeIcmp(m: Icmp, buf?: Buffer, offset = 0): Buffer {
  checkUint(PROTOCOL, 'code', m.code, 8);
  let type: number;
  switch (m.kind) {
    case 'echo':
      if (m.type !== ICMP_ECHO_REPLY && m.type !== ICMP_ECHO_REQUEST) {
        throw new WireError('INVALID_RECORD', PROTOCOL, 'type', -1, `echo type must be 0 or 8, got ${String(m.type)}`);
      }
      type = m.type;
      checkUint(PROTOCOL, 'id', m.id, 16);
      checkUint(PROTOCOL, 'seq', m.seq, 16);
      break;
    case 'unreachable':
      type = ICMP_DEST_UNREACHABLE;
      checkUint(PROTOCOL, 'unused', m.unused, 16);
      checkUint(PROTOCOL, 'nextHopMtu', m.nextHopMtu, 16);
      break;
    case 'raw':
      type = m.type;
      checkUint(PROTOCOL, 'type', type, 8);
      if (type === ICMP_ECHO_REPLY || type === ICMP_ECHO_REQUEST || type === ICMP_DEST_UNREACHABLE) {
        throw new WireError('INVALID_RECORD', PROTOCOL, 'type', -1, `type ${type} has its own record kind`);
      }
      if (m.rest.length < 4) {
        throw new WireError('INVALID_RECORD', PROTOCOL, 'rest', -1, `rest must hold at least 4 bytes, got ${m.rest.length}`);
      }
      break;
  }
  const length = icmpLength(m);
  const out = targetBuffer(PROTOCOL, length, buf, offset);
  out[offset] = type;
  out[offset + 1] = m.code;
  out.writeUInt16BE(0, offset + 2);
  switch (m.kind) {
    case 'echo':
      out.writeUInt16BE(m.id, offset + 4);
      out.writeUInt16BE(m.seq, offset + 6);
      m.data.copy(out, offset + ICMP_HEADER_LENGTH);
      break;
    case 'unreachable':
      out.writeUInt16BE(m.unused, offset + 4);
      out.writeUInt16BE(m.nextHopMtu, offset + 6);
      m.original.copy(out, offset + ICMP_HEADER_LENGTH);
      break;
    case 'raw':
      m.rest.copy(out, offset + 4);
      break;
  }
  out.writeUInt16BE(inetChecksum(out, offset, length), offset + 2);
  return out;
}

export const icmp: Codec<Icmp> = {
  name: PROTOCOL,
  encodedLength: icmpLength,
  encode: encodeIcmp,
  decode: decodeIcmp,
};

/**
 * The RFC 1191 message a host sends back when a DF datagram exceeds the next hop's MTU: the
 * offending IP header plus the first 8 bytes of its payload (RFC 792), capped at the bytes given.
 */
export function fragmentationNeeded(offending: Buffer, nextHopMtu: number): IcmpDestUnreachable {
  need(offending, 0, 20, PROTOCOL, 'original');
  const ihl = (offending[0]! & 0xf) * 4;
  return {
    kind: 'unreachable', code: ICMP_CODE_FRAG_NEEDED, unused: 0, nextHopMtu,
    original: offending.subarray(0, Math.min(offending.length, ihl + 8)),
  };
}
