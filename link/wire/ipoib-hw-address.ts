// The 20-byte IPoIB link-layer address: RFC 4391 §9.1.1 (reserved/flags, QPN, GID), the
// connected-mode flag of RFC 4755 as Linux sets it (IPOIB_FLAGS_RC, ipoib.h), the broadcast
// address and IP multicast -> MGID mapping of RFC 4391 §4 as Linux builds them (ipv4_bcast_addr[],
// ip_ib_mc_map(), ipv6_ib_mc_map()). Facts: IPOIB-FACTS §3.1, §3.3, §3.4, §1.7.

import { targetBuffer, zeroed, type Codec } from '../../codec/contract.js';
import { checkBytes, checkUint, need } from '../../codec/checked.js';
import { WireError } from '../../codec/wire-error.js';

const PROTOCOL = 'IPoIB-HWADDR';
export const IPOIB_HW_ADDRESS_LENGTH = 20; // INFINIBAND_ALEN
const GID_LENGTH = 16;

/** Flags byte, bit 7: the interface accepts RC connections (RFC 4755); Linux sets it whenever CM is initialised. */
export const IPOIB_FLAG_RC = 0x80;
/** Flags byte, bit 6: UC connected mode (defined, unused by Linux). */
export const IPOIB_FLAG_UC = 0x40;
/** Flags byte, bit 5: MLNX-OFED TSS (out-of-tree ipoib_rss.h); kept, never interpreted. */
export const IPOIB_FLAG_TSS = 0x20;

/** QPN of multicast destinations (IB_MULTICAST_QPN; IBA multicast DestQP). IPOIB-FACTS §1.7. */
export const IB_MULTICAST_QPN = 0xffffff;
/** MGID scope nibble: link-local (IB_MC_SCOPE_LINK_LOCAL, OpenSM ib_types.h). */
export const IB_MC_SCOPE_LINK_LOCAL = 0x2;
/** MGID bytes 2-3: IPoIB signatures for IPv4 and IPv6 groups (RFC 4391 §4). */
export const IPOIB_MGID_SIGNATURE_IPV4 = 0x401b;
export const IPOIB_MGID_SIGNATURE_IPV6 = 0x601b;
/** P_Key bit 15 (full membership), forced on in every IPoIB MGID (ipoib_ndo_init()). */
const PKEY_FULL_MEMBER = 0x8000;

/**
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |R|U|T| reserved|               Queue Pair Number (QPN)          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                                                               |
 * +              GID (16 bytes): subnet prefix (8) ||             +
 * |                port GUID (8), or an MGID (ff1S:401b:PKEY:...) |
 * +                                                               +
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 * R = IPOIB_FLAG_RC, U = IPOIB_FLAG_UC, T = IPOIB_FLAG_TSS. All 8 flag bits are kept as read.
 * `gid` is a copy, not a view: addresses outlive the packet they came in (ARP, neighbour tables).
 */
export interface IpoibHwAddress {
  flags: number;
  qpn: number;
  gid: Buffer;
}

export function decodeIpoibHwAddress(buf: Buffer, offset = 0): IpoibHwAddress {
  need(buf, offset, IPOIB_HW_ADDRESS_LENGTH, PROTOCOL, 'address');
  return {
    flags: buf[offset]!,
    qpn: buf.readUIntBE(offset + 1, 3),
    gid: Buffer.from(buf.subarray(offset + 4, offset + IPOIB_HW_ADDRESS_LENGTH)),
  };
}

export function encodeIpoibHwAddress(a: IpoibHwAddress, buf?: Buffer, offset = 0): Buffer {
  checkUint(PROTOCOL, 'flags', a.flags, 8);
  checkUint(PROTOCOL, 'qpn', a.qpn, 24);
  checkBytes(PROTOCOL, 'gid', a.gid, GID_LENGTH);
  const out = targetBuffer(PROTOCOL, IPOIB_HW_ADDRESS_LENGTH, buf, offset);
  out[offset] = a.flags;
  out.writeUIntBE(a.qpn, offset + 1, 3);
  a.gid.copy(out, offset + 4);
  return out;
}

export const ipoibHwAddress: Codec<IpoibHwAddress> = {
  name: PROTOCOL,
  encodedLength: () => IPOIB_HW_ADDRESS_LENGTH,
  encode: encodeIpoibHwAddress,
  decode: decodeIpoibHwAddress,
};

/** True when the peer advertises RC connected mode (IPOIB_CM_SUPPORTED(ha) in Linux). */
export function supportsConnectedMode(a: IpoibHwAddress): boolean {
  return (a.flags & IPOIB_FLAG_RC) !== 0;
}

/** Multicast destinations carry an MGID: first GID byte 0xFF (ipoib_start_xmit()). */
export function isMulticastHwAddress(a: IpoibHwAddress): boolean {
  return a.gid[0] === 0xff;
}

/** The 8-byte port GUID: the low half of the port GID (ipoib_parent_init() copies GID index 0). */
export function portGuid(a: IpoibHwAddress): Buffer {
  return Buffer.from(a.gid.subarray(8, 16));
}

// ---- text form --------------------------------------------------------------------------------

const HEX = /^[0-9a-fA-F]{2}$/;

/** `80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01`: 20 colon-separated hex bytes. */
export function formatIpoibHwAddress(a: IpoibHwAddress): string {
  const bytes = encodeIpoibHwAddress(a);
  let s = '';
  for (let i = 0; i < IPOIB_HW_ADDRESS_LENGTH; i++) {
    if (i > 0) s += ':';
    s += bytes.toString('hex', i, i + 1);
  }
  return s;
}

/**
 * Parses the text form strictly: exactly 20 groups of two hex digits separated by ':' (either
 * case), nothing around them. The WireError names the text and the character offset it failed at.
 */
export function parseIpoibHwAddress(text: string): IpoibHwAddress {
  const bytes = zeroed(IPOIB_HW_ADDRESS_LENGTH);
  for (let i = 0; i < IPOIB_HW_ADDRESS_LENGTH; i++) {
    const at = i * 3;
    const pair = text.slice(at, at + 2);
    if (!HEX.test(pair)) throw badText(text, at, `byte ${i} is not two hex digits`);
    bytes[i] = parseInt(pair, 16);
    const sep = text[at + 2];
    if (i < IPOIB_HW_ADDRESS_LENGTH - 1 && sep !== ':') throw badText(text, at + 2, `expected ':' after byte ${i}`);
  }
  if (text.length !== IPOIB_HW_ADDRESS_LENGTH * 3 - 1) {
    throw badText(text, IPOIB_HW_ADDRESS_LENGTH * 3 - 1, 'unexpected text after the 20th byte');
  }
  return decodeIpoibHwAddress(bytes);
}

function badText(text: string, at: number, why: string): WireError {
  return new WireError('BAD_VALUE', PROTOCOL, 'text', at,
    `${JSON.stringify(text)} is not a 20-byte IPoIB hardware address (${why})`);
}

// ---- map keys ---------------------------------------------------------------------------------

/**
 * A compact Map key: the 20 bytes as 40 lowercase hex digits. It covers the flags and QPN too,
 * as Linux's neighbour lookup compares all 20 bytes: a peer whose QP was recreated is a new neighbour.
 */
export function ipoibHwKey(a: IpoibHwAddress): string {
  return encodeIpoibHwAddress(a).toString('hex');
}

/** The same key read straight from a packet, without decoding the address first. */
export function ipoibHwKeyAt(buf: Buffer, offset = 0): string {
  need(buf, offset, IPOIB_HW_ADDRESS_LENGTH, PROTOCOL, 'address');
  return buf.toString('hex', offset, offset + IPOIB_HW_ADDRESS_LENGTH);
}

export function ipoibHwFromKey(key: string): IpoibHwAddress {
  if (!/^[0-9a-f]{40}$/.test(key)) {
    throw new WireError('BAD_VALUE', PROTOCOL, 'key', 0, `${JSON.stringify(key)} is not 40 lowercase hex digits`);
  }
  return decodeIpoibHwAddress(Buffer.from(key, 'hex'));
}

// ---- broadcast and multicast (RFC 4391 §4) ----------------------------------------------------

function multicastAddress(signature: number, pkey: number, scope: number, tail: Uint8Array): IpoibHwAddress {
  const gid = zeroed(GID_LENGTH);
  gid[0] = 0xff;
  gid[1] = 0x10 | scope; // flags nibble 1: transient (non-permanent) group
  gid.writeUInt16BE(signature, 2);
  gid.writeUInt16BE(pkey | PKEY_FULL_MEMBER, 4);
  gid.set(tail, GID_LENGTH - tail.length);
  return { flags: 0, qpn: IB_MULTICAST_QPN, gid };
}

/**
 * The interface's broadcast address `00:ff:ff:ff | ff1S:401b:PKEY::ffff:ffff`, with the P_Key's
 * membership bit forced on as ipoib_ndo_init() does, so 0x7fff and 0xffff give the same group.
 */
export function ipoibBroadcastAddress(pkey: number, scope = IB_MC_SCOPE_LINK_LOCAL): IpoibHwAddress {
  checkUint(PROTOCOL, 'pkey', pkey, 16);
  checkUint(PROTOCOL, 'scope', scope, 4);
  return multicastAddress(IPOIB_MGID_SIGNATURE_IPV4, pkey, scope, Buffer.from([0xff, 0xff, 0xff, 0xff]));
}

/** The P_Key a broadcast or multicast address was built for (MGID bytes 4-5). */
export function mgidPkey(a: IpoibHwAddress): number {
  return a.gid.readUInt16BE(4);
}

/**
 * IPv4 group (224.0.0.0/4, as a uint32) -> hardware address: scope and P_Key are copied from the
 * interface's broadcast address, the low 28 bits of the group fill MGID bytes 12-15 (ip_ib_mc_map()).
 * 224.0.0.1 on P_Key 0xffff -> ff12:401b:ffff::1.
 */
export function ipv4MulticastHwAddress(group: number, broadcast: IpoibHwAddress): IpoibHwAddress {
  checkUint(PROTOCOL, 'group', group, 32);
  if (group >>> 28 !== 0xe) {
    throw new WireError('INVALID_RECORD', PROTOCOL, 'group', -1, `0x${group.toString(16)} is not an IPv4 multicast address`);
  }
  const tail = zeroed(4);
  tail.writeUInt32BE((group & 0x0fffffff) >>> 0);
  return multicastAddress(IPOIB_MGID_SIGNATURE_IPV4, mgidPkey(broadcast), broadcast.gid[1]! & 0xf, tail);
}

/** IPv6 group (16 bytes, ff00::/8) -> hardware address: MGID bytes 6-15 = group bytes 6-15 (ipv6_ib_mc_map()). */
export function ipv6MulticastHwAddress(group: Uint8Array, broadcast: IpoibHwAddress): IpoibHwAddress {
  checkBytes(PROTOCOL, 'group', group, GID_LENGTH);
  if (group[0] !== 0xff) {
    throw new WireError('INVALID_RECORD', PROTOCOL, 'group', -1, 'not an IPv6 multicast address');
  }
  return multicastAddress(IPOIB_MGID_SIGNATURE_IPV6, mgidPkey(broadcast), broadcast.gid[1]! & 0xf, group.subarray(6));
}
