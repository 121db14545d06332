// DHCPv4 client identifiers (option 61) as InfiniBand clients send them: RFC 2132 §9.14 (type byte +
// identifier), RFC 4361 §6.1 (type 255, IAID, DUID), RFC 8415 §11 (DUID-LLT/EN/LL) and RFC 6355
// (DUID-UUID), plus the IPoIB forms of IPOIB-FACTS §5.3: the "Mellanox" DUID-EN, 0x20 + port GUID,
// and the legacy 0x20 + 20-byte IPoIB hardware address. Port GUIDs are bigint.

import { targetBuffer, type Codec } from '../codec/contract.js';
import { need } from '../codec/checked.js';
import { WireError } from '../codec/wire-error.js';
import { HTYPE_ETHERNET, HTYPE_INFINIBAND, OptionCode } from './dhcp-constants.js';
import { optionDef } from './option-defs.js';
import { formatHex, parseHex } from './option-types.js';

/** DUID (RFC 8415 §11), by type. Types it cannot parse (or too short for their layout) stay raw. */
export type Duid =
  | { kind: 'llt'; htype: number; time: number; linkLayerAddress: Buffer } // type 1
  | { kind: 'en'; enterpriseNumber: number; identifier: Buffer }          // type 2
  | { kind: 'll'; htype: number; linkLayerAddress: Buffer }               // type 3
  | { kind: 'uuid'; uuid: Buffer }                                        // type 4, 16 bytes
  | { kind: 'other'; type: number; data: Buffer };

/**
 * Option 61's content, decoded:
 * ```
 * rfc4361: | 0xff | IAID (4) | DUID type (2) | DUID body ...        (RFC 4361 §6.1)
 * hwaddr:  | htype 1..254 | link-layer address ...                  (RFC 2132 §9.14)
 * raw:     | 0x00 | opaque ... |, or anything too short to be the above
 * ```
 */
export type ClientId =
  | { kind: 'rfc4361'; iaid: number; duid: Duid }
  | { kind: 'hwaddr'; htype: number; address: Buffer }
  | { kind: 'raw'; bytes: Buffer };

/** Which known form a client identifier has (IPOIB-FACTS §5.3). */
export type ClientIdForm =
  | 'mellanox'     // ff:00:00:00:00:00:02:00:00:02:c9:00:<GUID>: RFC 4361, DUID-EN 713 (0x2c9), 00 + GUID
  | 'ib-guid'      // 20:<GUID> (FlexBoot "HW Type IB", systemd/NM ClientIdentifier=mac on IB)
  | 'ib-hwaddr'    // 20:<20-byte IPoIB address> (old iPXE/gPXE, old OFED docs; QPN inside, unstable)
  | 'ethernet-mac' // 01:<MAC>
  | 'rfc4361'      // any other 0xff form (systemd's DUID-EN 43793, DUID-LLT, ...)
  | 'hwaddr'       // another htype + address
  | 'raw';

/** The enterprise number in the Mellanox prefix: Mellanox's IEEE OUI 00:02:c9 used as an IANA PEN. */
export const MELLANOX_ENTERPRISE = 713;
const MELLANOX_PREFIX = Buffer.from('ff0000000000020000' + '02c900', 'hex');

const DUID_LLT = 1;
const DUID_EN = 2;
const DUID_LL = 3;
const DUID_UUID = 4;
const TYPE_RFC4361 = 0xff;

function parseDuid(b: Buffer): Duid {
  const type = b.readUInt16BE(0);
  if (type === DUID_LLT && b.length >= 8) {
    return { kind: 'llt', htype: b.readUInt16BE(2), time: b.readUInt32BE(4), linkLayerAddress: b.subarray(8) };
  }
  if (type === DUID_EN && b.length >= 6) return { kind: 'en', enterpriseNumber: b.readUInt32BE(2), identifier: b.subarray(6) };
  if (type === DUID_LL && b.length >= 4) return { kind: 'll', htype: b.readUInt16BE(2), linkLayerAddress: b.subarray(4) };
  if (type === DUID_UUID && b.length === 18) return { kind: 'uuid', uuid: b.subarray(2) };
  return { kind: 'other', type, data: b.subarray(2) };
}

/** Option 61 data -> ClientId. Never throws: every byte string is some client identifier. */
export function parseClientId(bytes: Buffer): ClientId {
  const t = bytes.length > 0 ? bytes[0]! : 0;
  if (t === TYPE_RFC4361 && bytes.length >= 7) {
    return { kind: 'rfc4361', iaid: bytes.readUInt32BE(1), duid: parseDuid(bytes.subarray(5)) };
  }
  if (t !== 0 && t !== TYPE_RFC4361 && bytes.length >= 2) return { kind: 'hwaddr', htype: t, address: bytes.subarray(1) };
  return { kind: 'raw', bytes };
}

function invalid(field: string, detail: string): WireError {
  return new WireError('INVALID_RECORD', 'DHCP', field, -1, detail);
}

function u16(v: number, field: string): Buffer {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw invalid(field, `${v} is not 16-bit`);
  const b = Buffer.alloc(2); b.writeUInt16BE(v); return b;
}
function u32(v: number, field: string): Buffer {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw invalid(field, `${v} is not 32-bit`);
  const b = Buffer.alloc(4); b.writeUInt32BE(v); return b;
}

export function encodeDuid(d: Duid): Buffer {
  switch (d.kind) {
    case 'llt': return Buffer.concat([u16(DUID_LLT, 'duid'), u16(d.htype, 'duid.htype'), u32(d.time, 'duid.time'), d.linkLayerAddress]);
    case 'en': return Buffer.concat([u16(DUID_EN, 'duid'), u32(d.enterpriseNumber, 'duid.enterpriseNumber'), d.identifier]);
    case 'll': return Buffer.concat([u16(DUID_LL, 'duid'), u16(d.htype, 'duid.htype'), d.linkLayerAddress]);
    case 'uuid':
      if (d.uuid.length !== 16) throw invalid('duid.uuid', 'a UUID is 16 bytes');
      return Buffer.concat([u16(DUID_UUID, 'duid'), d.uuid]);
    case 'other': return Buffer.concat([u16(d.type, 'duid.type'), d.data]);
  }
}

/** ClientId -> option 61 data. */
export function encodeClientId(c: ClientId): Buffer {
  switch (c.kind) {
    case 'rfc4361': return Buffer.concat([Buffer.from([TYPE_RFC4361]), u32(c.iaid, 'iaid'), encodeDuid(c.duid)]);
    case 'hwaddr':
      if (!Number.isInteger(c.htype) || c.htype < 1 || c.htype > 254) throw invalid('htype', `type ${c.htype} is not 1..254`);
      if (c.address.length === 0) throw invalid('address', 'a hardware client identifier needs an address');
      return Buffer.concat([Buffer.from([c.htype]), c.address]);
    case 'raw': return Buffer.from(c.bytes);
  }
}

/**
 * Option 61 as an option TLV (code 61, length, data). The data is at most 255 bytes: RFC 4361 DUIDs
 * are at most 130 bytes, so a longer identifier is not one a client can send in one instance.
 */
export const clientIdOption: Codec<ClientId> = {
  name: 'DHCP client-id',
  encodedLength: (c) => 2 + encodeClientId(c).length,
  encode(c, buf, offset = 0) {
    const data = encodeClientId(c);
    if (data.length > 255) throw invalid('options[61]', `${data.length} bytes do not fit one option`);
    const out = targetBuffer('DHCP client-id', 2 + data.length, buf, offset);
    out[offset] = OptionCode.CLIENT_IDENTIFIER;
    out[offset + 1] = data.length;
    data.copy(out, offset + 2);
    return out;
  },
  decode(buf, offset = 0) {
    need(buf, offset, 2, 'DHCP client-id', 'options[61]');
    if (buf[offset] !== OptionCode.CLIENT_IDENTIFIER) {
      throw new WireError('BAD_VALUE', 'DHCP client-id', 'code', offset, `option ${buf[offset]!} is not 61`);
    }
    const len = buf[offset + 1]!;
    need(buf, offset + 2, len, 'DHCP client-id', 'options[61]');
    return parseClientId(buf.subarray(offset + 2, offset + 2 + len));
  },
};

// ---- GUIDs --------------------------------------------------------------------------------------

function checkGuid(guid: bigint): void {
  if (typeof guid !== 'bigint' || guid < 0n || guid > 0xffffffffffffffffn) throw invalid('guid', `${String(guid)} is not a 64-bit GUID`);
}

export function guidToBytes(guid: bigint): Buffer {
  checkGuid(guid);
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(guid);
  return b;
}

export function guidFromBytes(b: Buffer, offset = 0): bigint {
  need(b, offset, 8, 'DHCP', 'guid');
  return b.readBigUInt64BE(offset);
}

/** 7c:fe:90:03:00:29:26:52 */
export function formatGuid(guid: bigint): string {
  return formatHex(guidToBytes(guid));
}

/** Accepts 7c:fe:90:03:00:29:26:52, 7cfe:9003:0029:2652 (ibstat style), 0x7cfe900300292652 or 16 hex digits. */
export function parseGuid(text: string): bigint {
  const s = text.trim();
  const hex = /^([0-9a-f]{2}:){7}[0-9a-f]{2}$/i.test(s) || /^([0-9a-f]{4}:){3}[0-9a-f]{4}$/i.test(s)
    ? s.replace(/:/g, '')
    : s.replace(/^0x/i, '');
  if (!/^[0-9a-f]{1,16}$/i.test(hex)) throw new WireError('BAD_VALUE', 'DHCP', 'guid', -1, `${JSON.stringify(text)} is not a GUID`);
  return BigInt('0x' + hex);
}

/**
 * GUID -> 48-bit "MAC" by dropping GUID bytes 3-4 (Mellanox convention, IPOIB-FACTS §5.3:
 * 7c:fe:90:03:00:29:26:52 -> 7c:fe:90:29:26:52). FlexBoot puts this MAC in chaddr.
 */
export function guidToMac(guid: bigint): Buffer {
  const g = guidToBytes(guid);
  return Buffer.concat([g.subarray(0, 3), g.subarray(5, 8)]);
}

/**
 * MAC -> GUID by inserting 03:00 as bytes 3-4. ASSUMPTION: the GUID was derived from the MAC the
 * Mellanox/NVIDIA ConnectX way (OUI, 03:00, NIC-specific 3 bytes); other vendors' GUIDs differ, so
 * use this only to match a FlexBoot chaddr against a known GUID, never as an identity.
 */
export function macToGuid(mac: Buffer): bigint {
  if (mac.length !== 6) throw invalid('mac', `a MAC is 6 bytes, got ${mac.length}`);
  return Buffer.concat([mac.subarray(0, 3), Buffer.from([0x03, 0x00]), mac.subarray(3, 6)]).readBigUInt64BE(0);
}

// ---- forms --------------------------------------------------------------------------------------

/** ff:00:00:00:00:00:02:00:00:02:c9:00:<GUID> (20 bytes), the form FlexBoot, xCAT and dnsmasq examples use. */
export function mellanoxClientId(guid: bigint): Buffer {
  return Buffer.concat([MELLANOX_PREFIX, guidToBytes(guid)]);
}

/** 20:<GUID> (9 bytes). */
export function ibGuidClientId(guid: bigint): Buffer {
  return Buffer.concat([Buffer.from([HTYPE_INFINIBAND]), guidToBytes(guid)]);
}

/** Legacy 20:<20-byte IPoIB hardware address> (21 bytes); the QPN inside makes it unstable. */
export function ibHwaddrClientId(hwaddr: Buffer): Buffer {
  if (hwaddr.length !== 20) throw invalid('hwaddr', `an IPoIB hardware address is 20 bytes, got ${hwaddr.length}`);
  return Buffer.concat([Buffer.from([HTYPE_INFINIBAND]), hwaddr]);
}

/** 01:<MAC> (7 bytes). */
export function macClientId(mac: Buffer): Buffer {
  if (mac.length !== 6) throw invalid('mac', `a MAC is 6 bytes, got ${mac.length}`);
  return Buffer.concat([Buffer.from([HTYPE_ETHERNET]), mac]);
}

/** RFC 4361 type 255 + IAID + DUID. */
export function rfc4361ClientId(iaid: number, duid: Duid): Buffer {
  return encodeClientId({ kind: 'rfc4361', iaid, duid });
}

function asClientId(c: Buffer | ClientId): ClientId {
  return c instanceof Uint8Array ? parseClientId(c) : c;
}

export function clientIdForm(c: Buffer | ClientId): ClientIdForm {
  const id = asClientId(c);
  switch (id.kind) {
    case 'rfc4361': {
      const d = id.duid;
      return d.kind === 'en' && d.enterpriseNumber === MELLANOX_ENTERPRISE && d.identifier.length === 9 && d.identifier[0] === 0
        ? 'mellanox' : 'rfc4361';
    }
    case 'hwaddr':
      if (id.htype === HTYPE_INFINIBAND && id.address.length === 8) return 'ib-guid';
      if (id.htype === HTYPE_INFINIBAND && id.address.length === 20) return 'ib-hwaddr';
      if (id.htype === HTYPE_ETHERNET && id.address.length === 6) return 'ethernet-mac';
      return 'hwaddr';
    case 'raw': return 'raw';
  }
}

/**
 * The port GUID inside a client identifier, or null: the Mellanox form, 20:<GUID>, 20:<20-byte
 * address> (its last 8 bytes), and — an assumption, as systemd/NM take "the last 8 bytes of an IB
 * address" — an RFC 4361 DUID-LL/LLT with htype 32 and an 8- or 20-byte address. 01:<MAC> gives null.
 */
export function portGuidOf(c: Buffer | ClientId): bigint | null {
  const id = asClientId(c);
  const form = clientIdForm(id);
  if (form === 'mellanox' && id.kind === 'rfc4361' && id.duid.kind === 'en') return id.duid.identifier.readBigUInt64BE(1);
  if ((form === 'ib-guid' || form === 'ib-hwaddr') && id.kind === 'hwaddr') return id.address.readBigUInt64BE(id.address.length - 8);
  if (id.kind === 'rfc4361' && (id.duid.kind === 'll' || id.duid.kind === 'llt') && id.duid.htype === HTYPE_INFINIBAND) {
    const a = id.duid.linkLayerAddress;
    if (a.length === 8 || a.length === 20) return a.readBigUInt64BE(a.length - 8);
  }
  return null;
}

/** Option 61 bytes as config text: ff:00:00:... (Kea "client-id", dnsmasq "id:", ISC dhcpd). */
export function formatClientId(bytes: Uint8Array): string {
  return formatHex(bytes);
}

/** Config text to option 61 bytes: "ff:00:...", "ff 00 ...", "0xff00..." or "ff00..."; 'quoted' text is its bytes. */
export function parseClientIdText(text: string): Buffer {
  return parseHex(text, optionDef(OptionCode.CLIENT_IDENTIFIER));
}
