// InfiniBand addresses: GIDs (IBA Vol 1 §4.1.1), GUIDs, port GIDs, and the IPoIB multicast GIDs of
// RFC 4391 §4 as Linux builds them (IPOIB-FACTS §1.7, §1.8, §3.3, §3.4: ipoib_main.c ipv4_bcast_addr,
// include/net/ip.h ip_ib_mc_map(), include/net/if_inet6.h ipv6_ib_mc_map(), addrconf_ifid_infiniband()).
//
// A GID is a 16-byte Buffer (what the GRH, the 20-byte IPoIB address and SA records carry), written as
// an IPv6 address ("fe80::2:c903:0:1") through ip-address's Address6.
// A GUID is a bigint. GUIDs use all 64 bits (vendor OUI in the top 24), past Number's 2^53, so a
// number would corrupt them; a bigint compares with ===, keys a Map, does arithmetic (GUID + port
// index, auto-assigned GUID ranges), is what Address6.getBits() and Buffer.readBigUInt64BE() give, and has
// one canonical text form — a hex string would need normalising (case, zero padding, "0x", colons)
// before every comparison.
import { Address4, Address6 } from 'ip-address';
import { WireError } from '../../codec/wire-error.js';
import { checkUint } from '../../codec/checked.js';
import { zeroed } from '../../codec/contract.js';
import {
  DEFAULT_SUBNET_PREFIX, IPOIB_MGID_SIGNATURE_IPV4, IPOIB_MGID_SIGNATURE_IPV6, MC_SCOPE_LINK_LOCAL,
  PKEY_FULL_MEMBER_BIT,
} from './ib-constants.js';

export const GID_BYTES = 16;
export const GUID_BYTES = 8;
const U64_MAX = 0xffffffffffffffffn;

function bad(protocol: string, detail: string): WireError {
  return new WireError('BAD_VALUE', protocol, 'text', -1, detail);
}

// ---- GUIDs

/** "0x0002c90300000001": the form ibstat, OpenSM and ibnetdiscover print. */
export function formatGuid(guid: bigint): string {
  checkGuid(guid);
  return '0x' + guid.toString(16).padStart(16, '0');
}

/**
 * Parses "0x0002c90300000001", "0002c90300000001" (1-16 hex digits, optional 0x) or the colon form
 * "0002:c903:0000:0001" (four groups of 1-4 hex digits, as in an IPv6 interface id).
 */
export function parseGuid(text: string): bigint {
  const s = text.trim();
  let hexDigits: string | undefined;
  const plain = /^(?:0x)?([0-9a-f]{1,16})$/i.exec(s);
  if (plain) hexDigits = plain[1];
  else if (/^[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){3}$/i.test(s)) {
    hexDigits = s.split(':').map((g) => g.padStart(4, '0')).join('');
  }
  if (hexDigits === undefined) throw bad('GUID', `"${text}" is not a GUID (0x followed by up to 16 hex digits)`);
  return BigInt('0x' + hexDigits);
}

function checkGuid(guid: bigint): void {
  if (typeof guid !== 'bigint' || guid < 0n || guid > U64_MAX) {
    throw new WireError('INVALID_RECORD', 'GUID', 'guid', -1, `${String(guid)} is not a 64-bit unsigned value`);
  }
}

export function readGuid(buf: Buffer, offset = 0): bigint {
  return buf.readBigUInt64BE(offset);
}

export function writeGuid(guid: bigint, buf: Buffer, offset = 0): void {
  checkGuid(guid);
  buf.writeBigUInt64BE(guid, offset);
}

// ---- GIDs

/** The GID written as an IPv6 address in its shortest form ("fe80::2:c903:0:1"). */
export function formatGid(gid: Uint8Array): string {
  if (gid.length !== GID_BYTES) {
    throw new WireError('INVALID_RECORD', 'GID', 'gid', -1, `must be 16 bytes, got ${gid.length}`);
  }
  return Address6.fromUnsignedByteArray(Array.from(gid)).correctForm();
}

/** Parses a GID in IPv6 text form; a prefix length or a zone ("%ib0") is not part of a GID. */
export function parseGid(text: string): Buffer {
  const s = text.trim();
  if (s.includes('/') || s.includes('%')) throw bad('GID', `"${text}": a GID has no prefix length or zone`);
  let a: Address6;
  try {
    a = new Address6(s);
  } catch {
    throw bad('GID', `"${text}" is not a GID (IPv6 text form expected)`);
  }
  return gidFromBigInt(a.bigInt());
}

function gidFromBigInt(v: bigint): Buffer {
  const out = zeroed(GID_BYTES);
  out.writeBigUInt64BE(v >> 64n, 0);
  out.writeBigUInt64BE(v & U64_MAX, 8);
  return out;
}

/** Port GID = subnet prefix ‖ port GUID (§1.7; GID index 0 is what IPoIB puts in its hardware address). */
export function portGid(guid: bigint, subnetPrefix: bigint = DEFAULT_SUBNET_PREFIX): Buffer {
  checkGuid(guid);
  checkGuid(subnetPrefix);
  const out = zeroed(GID_BYTES);
  out.writeBigUInt64BE(subnetPrefix, 0);
  out.writeBigUInt64BE(guid, 8);
  return out;
}

export function gidSubnetPrefix(gid: Buffer): bigint {
  return gid.readBigUInt64BE(0);
}

export function gidGuid(gid: Buffer): bigint {
  return gid.readBigUInt64BE(8);
}

export function gidEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== GID_BYTES || b.length !== GID_BYTES) return false;
  for (let i = 0; i < GID_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- multicast GIDs (§1.7, §3.3, §3.4)

/** A multicast GID starts with 0xFF; IPoIB tests exactly this byte on transmit [K:ipoib_start_xmit()]. */
export function isMgid(gid: Uint8Array): boolean {
  return gid[0] === 0xff;
}

/** Scope nibble of an MGID (byte 1 bits 3-0): 0x2 link-local, 0x5 site, 0x8 organisation, 0xE global. */
export function mgidScope(mgid: Uint8Array): number {
  return mgid[1]! & 0x0f;
}

/** IPoIB signature (bytes 2-3): 0x401B for IPv4 groups, 0x601B for IPv6. */
export function mgidSignature(mgid: Uint8Array): number {
  return (mgid[2]! << 8) | mgid[3]!;
}

/** The P_Key IPoIB embeds in its MGIDs (bytes 4-5). */
export function mgidPkey(mgid: Uint8Array): number {
  return (mgid[4]! << 8) | mgid[5]!;
}

/**
 * Writes the common IPoIB MGID prefix ff1S:SIGN:PKEY. Flags nibble 1 = transient; the P_Key always
 * goes in with the full-member bit forced on (`priv->pkey |= 0x8000` [K:ipoib_ndo_init()], §1.8), so
 * limited and full members of a partition join the same groups.
 */
function ipoibMgidPrefix(signature: number, pkey: number, scope: number): Buffer {
  checkUint('MGID', 'pkey', pkey, 16);
  checkUint('MGID', 'scope', scope, 4);
  const out = zeroed(GID_BYTES);
  out[0] = 0xff;
  out[1] = 0x10 | scope;
  out[2] = signature >>> 8;
  out[3] = signature & 0xff;
  const p = pkey | PKEY_FULL_MEMBER_BIT;
  out[4] = p >>> 8;
  out[5] = p & 0xff;
  return out;
}

/**
 * The IPv4 broadcast group of a partition: ff1S:401b:PKEY:0:0:0:ffff:ffff, e.g. ff12:401b:ffff::ffff:ffff
 * for P_Key 0xFFFF or 0x7FFF (§3.3, [K:ipoib_main.c ipv4_bcast_addr[]], [OSM:osm_prtn_config.c]).
 */
export function ipoibBroadcastMgid(pkey: number, scope: number = MC_SCOPE_LINK_LOCAL): Buffer {
  const out = ipoibMgidPrefix(IPOIB_MGID_SIGNATURE_IPV4, pkey, scope);
  out.writeUInt32BE(0xffffffff, 12);
  return out;
}

/**
 * IPv4 multicast group -> MGID: ff1S:401b:PKEY:0:0:0 then the group address with its top 4 bits (the
 * class-D 1110) cleared, [K:include/net/ip.h ip_ib_mc_map()] (§3.4). 224.0.0.1 -> ff12:401b:ffff::1;
 * 239.255.255.250 -> ff12:401b:ffff::fff:fffa.
 */
export function ipv4MulticastMgid(group: string | number, pkey: number, scope: number = MC_SCOPE_LINK_LOCAL): Buffer {
  const addr = ipv4ToUint(group);
  if (addr >>> 28 !== 0xe) throw bad('MGID', `${String(group)} is not an IPv4 multicast address (224.0.0.0/4)`);
  const out = ipoibMgidPrefix(IPOIB_MGID_SIGNATURE_IPV4, pkey, scope);
  out.writeUInt32BE(addr & 0x0fffffff, 12);
  return out;
}

/**
 * IPv6 multicast group -> MGID: ff1S:601b:PKEY then bytes 6-15 of the group address
 * [K:include/net/if_inet6.h ipv6_ib_mc_map()] (§3.4). ff02::1 -> ff12:601b:ffff::1.
 */
export function ipv6MulticastMgid(group: string, pkey: number, scope: number = MC_SCOPE_LINK_LOCAL): Buffer {
  let a: Address6;
  try {
    a = new Address6(group);
  } catch {
    throw bad('MGID', `"${group}" is not an IPv6 address`);
  }
  const bytes = gidFromBigInt(a.bigInt());
  if (bytes[0] !== 0xff) throw bad('MGID', `${group} is not an IPv6 multicast address (ff00::/8)`);
  const out = ipoibMgidPrefix(IPOIB_MGID_SIGNATURE_IPV6, pkey, scope);
  bytes.copy(out, 6, 6, 16);
  return out;
}

/** The IPv6 interface identifier of a port: its GUID with 0x02 OR-ed into the first byte (§3.4, RFC 4391 §8). */
export function ipv6InterfaceId(guid: bigint): bigint {
  checkGuid(guid);
  return guid | 0x0200000000000000n;
}

function ipv4ToUint(group: string | number): number {
  if (typeof group === 'number') {
    if (!Number.isInteger(group) || group < 0 || group > 0xffffffff) throw bad('IPv4', `${group} is not an IPv4 address`);
    return group;
  }
  if (!Address4.isValid(group) || group.includes('/')) throw bad('IPv4', `"${group}" is not an IPv4 address`);
  return Number(new Address4(group).bigInt());
}
