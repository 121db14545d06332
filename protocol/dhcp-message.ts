// The DHCP/BOOTP message: RFC 2131 §2 (format, Figure 1), RFC 951 (BOOTP, no option 53), RFC 1497
// (magic cookie), RFC 4390 §2.1 (IPoIB: htype 32, hlen 0, chaddr zero — so nothing assumes Ethernet).
// Options and their overload/RFC 3396 framing are options.ts; typed option values are option-defs.ts.

import { targetBuffer, type Codec } from '../codec/contract.js';
import { checkBytes, checkUint } from '../codec/checked.js';
import { WireError } from '../codec/wire-error.js';
import {
  CHADDR_LENGTH, DhcpMessageType, FILE_LENGTH, FIXED_HEADER_LENGTH, MAGIC_COOKIE, OPTIONS_OFFSET, OptionCode,
  SNAME_LENGTH,
} from './dhcp-constants.js';
import { DEFAULT_MAX_MESSAGE_SIZE, IP_UDP_OVERHEAD, MAX_MESSAGE_SIZE, MIN_MAX_MESSAGE_SIZE } from './limits.js';
import { checkOptions, decodeOptionAreas, findOption, layoutOptions, type DhcpOption } from './options.js';

const P = 'DHCP';

/**
 * A DHCP or BOOTP message (RFC 2131 §2):
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +---------------+---------------+---------------+---------------+
 * |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
 * +---------------+---------------+---------------+---------------+
 * |                            xid (4)                            |
 * +-------------------------------+-------------------------------+
 * |           secs (2)            |           flags (2)           |
 * +-------------------------------+-------------------------------+
 * |                          ciaddr  (4)                          |
 * |                          yiaddr  (4)                          |
 * |                          siaddr  (4)                          |
 * |                          giaddr  (4)                          |
 * +---------------------------------------------------------------+
 * |                          chaddr  (16)                         |
 * |                          sname   (64)                         |
 * |                          file    (128)                        |
 * +---------------------------------------------------------------+
 * |             magic cookie 99.130.83.99 (4)                     |
 * |                          options (variable)                   |
 * +---------------------------------------------------------------+
 * ```
 *
 * - Addresses are unsigned 32-bit numbers (ipv4.ts converts to text): no allocation on the hot
 *   path, and pools compare and add them directly.
 * - chaddr is the raw 16-byte field whatever hlen says: IPoIB clients send hlen 0 (RFC 4390), 6
 *   (FlexBoot), 8 (RHEL 8 dhclient) or anything else; rfc4390.ts interprets it.
 * - sname and file are the raw 64/128-byte fields. When option 52 made them carry options, decode
 *   moves those options into `options` and returns these fields zero-filled; encode overloads them
 *   only when they are all zero (so decode(encode(m)) == m).
 * - options: one entry per code, in order of first appearance (options field, then file, then
 *   sname), instances concatenated per RFC 3396; PAD, END and option 52 are framing, not entries.
 * - Buffers returned by decode are views of the input buffer (no copies): copy what outlives it.
 */
export interface DhcpMessage {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  chaddr: Buffer;
  sname: Buffer;
  file: Buffer;
  options: DhcpOption[];
}

const HEADER_FIELDS: readonly [string, number][] = [
  ['op', 1], ['htype', 2], ['hlen', 3], ['hops', 4], ['xid', 8], ['secs', 10], ['flags', 12], ['ciaddr', 16],
  ['yiaddr', 20], ['siaddr', 24], ['giaddr', 28], ['chaddr', 44], ['sname', 108], ['file', 236], ['cookie', 240],
];

/** The first header field that `available` bytes do not cover (for a precise TRUNCATED error). */
function cutField(available: number): [string, number] {
  let start = 0;
  for (const [name, end] of HEADER_FIELDS) {
    if (available < end) return [name, start];
    start = end;
  }
  return ['cookie', FIXED_HEADER_LENGTH];
}

export function decodeDhcpMessage(buf: Buffer, offset = 0): DhcpMessage {
  const end = buf.length;
  const available = end - offset;
  if (!Number.isInteger(offset) || offset < 0 || available < OPTIONS_OFFSET) {
    const [field, at] = cutField(Math.max(0, available));
    throw new WireError('TRUNCATED', P, field, offset + at,
      `a DHCP message needs ${OPTIONS_OFFSET} bytes (header and cookie), ${Math.max(0, available)} available`);
  }
  if (available > MAX_MESSAGE_SIZE) {
    throw new WireError('LIMIT', P, 'message', offset, `${available} bytes exceed the ${MAX_MESSAGE_SIZE}-byte maximum`);
  }
  const cookie = buf.readUInt32BE(offset + FIXED_HEADER_LENGTH);
  if (cookie !== MAGIC_COOKIE) {
    throw new WireError('BAD_VALUE', P, 'cookie', offset + FIXED_HEADER_LENGTH,
      `magic cookie 0x${cookie.toString(16).padStart(8, '0')} is not 99.130.83.99`);
  }
  const { options, overload } = decodeOptionAreas(buf, offset, end);
  return {
    op: buf[offset]!,
    htype: buf[offset + 1]!,
    hlen: buf[offset + 2]!,
    hops: buf[offset + 3]!,
    xid: buf.readUInt32BE(offset + 4),
    secs: buf.readUInt16BE(offset + 8),
    flags: buf.readUInt16BE(offset + 10),
    ciaddr: buf.readUInt32BE(offset + 12),
    yiaddr: buf.readUInt32BE(offset + 16),
    siaddr: buf.readUInt32BE(offset + 20),
    giaddr: buf.readUInt32BE(offset + 24),
    chaddr: buf.subarray(offset + 28, offset + 44),
    sname: (overload & 2) !== 0 ? Buffer.alloc(SNAME_LENGTH) : buf.subarray(offset + 44, offset + 108),
    file: (overload & 1) !== 0 ? Buffer.alloc(FILE_LENGTH) : buf.subarray(offset + 108, offset + 236),
    options,
  };
}

/**
 * DHCP payload limit for a peer's option 57 value, which counts the IP and UDP headers (RFC 2132
 * §9.10; RFC 2131 §2: 576 - 28 - 236 = 312 bytes of options). Values below 576 are raised to it.
 */
export function payloadLimit(maxMessageSize: number): number {
  const m = Math.min(Math.max(maxMessageSize, MIN_MAX_MESSAGE_SIZE), MAX_MESSAGE_SIZE + IP_UDP_OVERHEAD);
  return m - IP_UDP_OVERHEAD;
}

function checkHeader(m: DhcpMessage): void {
  checkUint(P, 'op', m.op, 8);
  checkUint(P, 'htype', m.htype, 8);
  checkUint(P, 'hlen', m.hlen, 8);
  checkUint(P, 'hops', m.hops, 8);
  checkUint(P, 'xid', m.xid, 32);
  checkUint(P, 'secs', m.secs, 16);
  checkUint(P, 'flags', m.flags, 16);
  checkUint(P, 'ciaddr', m.ciaddr, 32);
  checkUint(P, 'yiaddr', m.yiaddr, 32);
  checkUint(P, 'siaddr', m.siaddr, 32);
  checkUint(P, 'giaddr', m.giaddr, 32);
  checkBytes(P, 'chaddr', m.chaddr, CHADDR_LENGTH);
  checkBytes(P, 'sname', m.sname, SNAME_LENGTH);
  checkBytes(P, 'file', m.file, FILE_LENGTH);
  checkOptions(m.options);
}

/** Encoded length of `m` when the receiver accepts `maxMessageSize` (option 57 semantics; default 576). */
export function dhcpMessageLength(m: DhcpMessage, maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE): number {
  checkHeader(m);
  return layoutOptions(m.options, m.sname, m.file, payloadLimit(maxMessageSize), null, 0);
}

/**
 * Writes `m` (padded to 300 bytes, overloading file/sname if the options need it) for a receiver that
 * accepts `maxMessageSize` bytes (option 57 semantics: IP and UDP headers included; default 576).
 * Throws WireError LIMIT when the options cannot fit, INVALID_RECORD for an impossible record.
 */
export function encodeDhcpMessage(m: DhcpMessage, buf?: Buffer, offset = 0, maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE): Buffer {
  const length = dhcpMessageLength(m, maxMessageSize);
  const out = targetBuffer(P, length, buf, offset);
  out[offset] = m.op;
  out[offset + 1] = m.htype;
  out[offset + 2] = m.hlen;
  out[offset + 3] = m.hops;
  out.writeUInt32BE(m.xid, offset + 4);
  out.writeUInt16BE(m.secs, offset + 8);
  out.writeUInt16BE(m.flags, offset + 10);
  out.writeUInt32BE(m.ciaddr, offset + 12);
  out.writeUInt32BE(m.yiaddr, offset + 16);
  out.writeUInt32BE(m.siaddr, offset + 20);
  out.writeUInt32BE(m.giaddr, offset + 24);
  m.chaddr.copy(out, offset + 28);
  m.sname.copy(out, offset + 44);
  m.file.copy(out, offset + 108);
  out.writeUInt32BE(MAGIC_COOKIE, offset + FIXED_HEADER_LENGTH);
  layoutOptions(m.options, m.sname, m.file, payloadLimit(maxMessageSize), out, offset);
  return out;
}

/** A codec for messages sent to a receiver accepting `maxMessageSize` bytes (option 57 semantics). */
export function dhcpMessageCodec(maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE): Codec<DhcpMessage> {
  return {
    name: P,
    encodedLength: (m) => dhcpMessageLength(m, maxMessageSize),
    encode: (m, buf, offset = 0) => encodeDhcpMessage(m, buf, offset, maxMessageSize),
    decode: decodeDhcpMessage,
  };
}

/** The codec with the RFC 2131 default of 576 bytes. */
export const dhcpMessage: Codec<DhcpMessage> = dhcpMessageCodec();

/** A zeroed message skeleton: fill in what differs. Every Buffer is fresh. */
export function emptyDhcpMessage(op: number): DhcpMessage {
  return {
    op, htype: 0, hlen: 0, hops: 0, xid: 0, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0,
    chaddr: Buffer.alloc(CHADDR_LENGTH), sname: Buffer.alloc(SNAME_LENGTH), file: Buffer.alloc(FILE_LENGTH),
    options: [],
  };
}

/** Option 53, or undefined for BOOTP (or a malformed option 53). */
export function getMessageType(m: DhcpMessage): number | undefined {
  const d = findOption(m.options, OptionCode.MESSAGE_TYPE);
  return d !== undefined && d.length === 1 ? d[0] : undefined;
}

export function isBootp(m: DhcpMessage): boolean {
  return findOption(m.options, OptionCode.MESSAGE_TYPE) === undefined;
}

/** Option 61's bytes (type byte included), or undefined. */
export function getClientIdentifier(m: DhcpMessage): Buffer | undefined {
  return findOption(m.options, OptionCode.CLIENT_IDENTIFIER);
}

function ipv4Option(m: DhcpMessage, code: number): number | undefined {
  const d = findOption(m.options, code);
  return d !== undefined && d.length === 4 ? d.readUInt32BE(0) : undefined;
}

export function getRequestedAddress(m: DhcpMessage): number | undefined {
  return ipv4Option(m, OptionCode.REQUESTED_ADDRESS);
}

export function getServerIdentifier(m: DhcpMessage): number | undefined {
  return ipv4Option(m, OptionCode.SERVER_IDENTIFIER);
}

/** Option 57 as sent, or the 576 default when absent or malformed (values below 576 are kept: payloadLimit raises them). */
export function getMaxMessageSize(m: DhcpMessage): number {
  const d = findOption(m.options, OptionCode.MAX_MESSAGE_SIZE);
  return d !== undefined && d.length === 2 ? d.readUInt16BE(0) : DEFAULT_MAX_MESSAGE_SIZE;
}

/** Option 55's codes in the client's order, or an empty list. */
export function getParameterRequestList(m: DhcpMessage): number[] {
  const d = findOption(m.options, OptionCode.PARAMETER_REQUEST_LIST);
  return d === undefined ? [] : [...d];
}

/** sname or file as text: bytes up to the first NUL, latin1 (RFC 2131: "null terminated string"). */
export function fieldText(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.toString('latin1', 0, nul < 0 ? field.length : nul);
}

/** Label for logs, like Kea's: `cid=ff:00:… htype=32 hlen=0 xid=0x3903f326`. */
export function messageLabel(m: DhcpMessage): string {
  const cid = getClientIdentifier(m);
  const type = getMessageType(m);
  const name = type === undefined ? 'BOOTP' :
    Object.entries(DhcpMessageType).find(([, v]) => v === type)?.[0] ?? `type-${type}`;
  return `${name} cid=${cid === undefined ? '(none)' : [...cid].map((b) => b.toString(16).padStart(2, '0')).join(':')}` +
    ` htype=${m.htype} hlen=${m.hlen} xid=0x${m.xid.toString(16).padStart(8, '0')}`;
}
