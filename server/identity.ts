// Who a client is, in every form an InfiniBand client may present itself (IPOIB-FACTS §5.3-5.5):
// option 61 in any form (Mellanox DUID-EN + GUID, 20:+GUID, 20:+20-byte address, RFC 4361 with any
// IAID), the hlen 6 / hlen 8 chaddr of FlexBoot / patched dhclient, and the 20-byte IPoIB source
// address the link layer saw. Every form is reduced to keys: exact bytes, plus the port GUID where the
// form contains one (and the 48-bit MAC derived from it), so one reservation naming any form matches
// a client presenting any other.

import {
  CHADDR_LENGTH, HTYPE_INFINIBAND, OptionCode, classifyHardware, findOption, formatHex, getClientIdentifier,
  guidToMac, parseClientId, portGuidOf, type DhcpMessage, type HardwareVariant,
} from '../protocol/index.js';

/**
 * Key prefixes, in the order a client's keys are tried against reservations: the most specific first.
 * - `cid:`      option 61 bytes, exactly (Kea "client-id")
 * - `duid:`     the DUID inside an RFC 4361 client identifier, any IAID (Kea "duid", >= 2.1.2)
 * - `hw20:`     the 20-byte IPoIB hardware address (flags, QPN and GID; the QPN changes on reboot)
 * - `guid:`     the 64-bit port GUID, from whatever form carried it
 * - `mac:`      a 6-byte hardware address: FlexBoot's chaddr, an Ethernet chaddr, or the GUID's MAC
 * - `hw:`       any other chaddr (Kea "hw-address" of another length)
 * - `circuit:`  option 82 circuit-id (Kea "circuit-id")
 */
export const KEY_PRIORITY = ['cid:', 'duid:', 'hw20:', 'guid:', 'mac:', 'hw:', 'circuit:'] as const;

export function guidKey(guid: bigint): string {
  return 'guid:' + guid.toString(16).padStart(16, '0');
}

function guidKeys(guid: bigint, out: string[]): void {
  out.push(guidKey(guid), 'mac:' + formatHex(guidToMac(guid)));
}

/** Keys of a hardware address given as bytes (a chaddr, or a Kea "hw-address" in a reservation). */
export function hardwareKeys(bytes: Buffer, out: string[] = []): string[] {
  if (bytes.length === 6) out.push('mac:' + formatHex(bytes));
  else if (bytes.length === 8) guidKeys(bytes.readBigUInt64BE(0), out);
  else if (bytes.length === 20) { out.push('hw20:' + formatHex(bytes)); guidKeys(bytes.readBigUInt64BE(12), out); }
  else out.push('hw:' + formatHex(bytes));
  return out;
}

/** Keys of an option 61 value (a client's, or a reservation's "client-id"). */
export function clientIdKeys(cid: Buffer, withDuid: boolean, out: string[] = []): string[] {
  out.push('cid:' + formatHex(cid));
  const parsed = parseClientId(cid);
  if (withDuid && parsed.kind === 'rfc4361') out.push('duid:' + formatHex(cid.subarray(5)));
  const g = portGuidOf(parsed);
  if (g !== null) guidKeys(g, out);
  return out;
}

/** Keys of a Kea "duid" reservation: the DUID itself, and the port GUID when the DUID carries one. */
export function duidKeys(duid: Buffer, out: string[] = []): string[] {
  out.push('duid:' + formatHex(duid));
  if (duid.length >= 2) {
    const g = portGuidOf(Buffer.concat([Buffer.from([0xff, 0, 0, 0, 0]), duid]));
    if (g !== null) guidKeys(g, out);
  }
  return out;
}

export function portGuidKeys(guid: bigint, out: string[] = []): string[] {
  guidKeys(guid, out);
  return out;
}

export function circuitIdKeys(id: Buffer, out: string[] = []): string[] {
  out.push('circuit:' + formatHex(id));
  return out;
}

function rankAt(key: string, i: number): number {
  return key.startsWith(KEY_PRIORITY[i]!) ? i : KEY_PRIORITY.length;
}

function rank(key: string): number {
  // A switch on the first letters, then one prefix test: this runs several times per packet.
  switch (key.charCodeAt(0)) {
    case 0x63: return key.charCodeAt(1) === 0x69 && key.charCodeAt(2) === 0x64 ? rankAt(key, 0) : rankAt(key, 6); // cid: / circuit:
    case 0x64: return rankAt(key, 1); // duid:
    case 0x68: return key.charCodeAt(2) === 0x32 ? rankAt(key, 2) : rankAt(key, 5); // hw20: / hw:
    case 0x67: return rankAt(key, 3); // guid:
    case 0x6d: return rankAt(key, 4); // mac:
    default: return KEY_PRIORITY.length;
  }
}

/** Keys without duplicates, most specific first, stable within a rank: an insertion pass (a handful of keys). */
export function orderKeys(keys: readonly string[]): string[] {
  const out: string[] = [];
  const ranks: number[] = [];
  for (const k of keys) {
    if (out.includes(k)) continue;
    const r = rank(k);
    let i = out.length;
    while (i > 0 && ranks[i - 1]! > r) i--;
    out.splice(i, 0, k);
    ranks.splice(i, 0, r);
  }
  return out;
}

export interface ClientIdentity {
  /** Option 61 as received, or null. A view of the received datagram: copy what outlives it. */
  clientId: Buffer | null;
  /** What the client's leases are keyed on: option 61, or htype + chaddr for a non-IB client without it (a view, as clientId). */
  leaseKey: Buffer;
  /** leaseKey as a map key (leaseKeyText()): one character per byte, not for display. */
  leaseKeyText: string;
  /** The port GUID: from the link's 20-byte source address when known, else from option 61 or chaddr. */
  portGuid: bigint | null;
  /** The 20-byte IPoIB source address, when the link layer reported it (a view, as clientId). */
  hwaddr: Buffer | null;
  variant: HardwareVariant;
  /** Identity keys, most specific first. */
  keys: string[];
}

export type IdentityProblem = 'ipoib-no-client-id' | 'no-client-identity';

function relayCircuitId(m: DhcpMessage): Buffer | undefined {
  const o82 = findOption(m.options, OptionCode.AGENT_OPTIONS);
  if (o82 === undefined) return undefined;
  for (let p = 0; p + 2 <= o82.length;) {
    const len = o82[p + 1]!;
    if (p + 2 + len > o82.length) return undefined;
    if (o82[p] === 1) return o82.subarray(p + 2, p + 2 + len);
    p += 2 + len;
  }
  return undefined;
}

/**
 * A lease key (option 61, or htype + chaddr) as the string the lease table and rate limiter file it
 * under: one latin1 character per byte, which node builds natively and which is distinct for distinct
 * bytes (colon hex, for people, is formatHex; this runs per packet and is never shown).
 */
export function leaseKeyText(key: Buffer): string {
  return key.toString('latin1');
}

/**
 * The port GUID in option 61. The Mellanox form (ff, any IAID, DUID-EN 713 with a 9-byte identifier
 * 00 + GUID: IPOIB-FACTS §5.3) is what nearly every IB client sends, so it is read in place; any
 * other form goes through the full parse (protocol/client-id.ts portGuidOf, which gives the same
 * answer for this form).
 */
function cidPortGuid(cid: Buffer): bigint | null {
  if (cid.length === 20 && cid[0] === 0xff && cid[5] === 0x00 && cid[6] === 0x02 && cid[7] === 0x00 && cid[8] === 0x00 &&
    cid[9] === 0x02 && cid[10] === 0xc9 && cid[11] === 0x00) {
    return cid.readBigUInt64BE(12);
  }
  return portGuidOf(cid);
}

/**
 * One client's identity. Built per received message, so everything only some messages need (the
 * reservation keys: only a subnet with reservations looks at them) is computed on first use, while
 * the message's buffers are still the ones it arrived in.
 */
class Identity implements ClientIdentity {
  private keyList: string[] | null = null;

  constructor(
    private readonly m: DhcpMessage,
    readonly clientId: Buffer | null,
    readonly leaseKey: Buffer,
    readonly leaseKeyText: string,
    readonly portGuid: bigint | null,
    readonly hwaddr: Buffer | null,
    readonly variant: HardwareVariant,
    private readonly hlen: number,
  ) {}

  get keys(): string[] {
    if (this.keyList !== null) return this.keyList;
    const keys: string[] = [];
    if (this.clientId !== null) clientIdKeys(this.clientId, true, keys);
    if (this.hwaddr !== null) hardwareKeys(this.hwaddr, keys);
    if (this.hlen > 0) hardwareKeys(this.m.chaddr.subarray(0, this.hlen), keys);
    const circuit = relayCircuitId(this.m);
    if (circuit !== undefined && circuit.length > 0) circuitIdKeys(circuit, keys);
    this.keyList = orderKeys(keys);
    return this.keyList;
  }
}

/**
 * The identity of the client that sent `m`, or why it has none. `senderHwAddress` is the 20-byte
 * IPoIB source address of the datagram, when the server runs on the project's link. Nothing is
 * copied: the identity's buffers are views of the message's.
 */
export function clientIdentity(m: DhcpMessage, senderHwAddress?: Buffer | null): ClientIdentity | IdentityProblem {
  const variant = classifyHardware(m);
  const cidView = getClientIdentifier(m);
  const cid = cidView === undefined || cidView.length === 0 ? null : cidView;
  const hlen = m.hlen >= 1 && m.hlen <= CHADDR_LENGTH ? m.hlen : 0;
  let leaseKey: Buffer;
  if (cid !== null) leaseKey = cid;
  else if (m.htype === HTYPE_INFINIBAND) return 'ipoib-no-client-id';
  else if (hlen === 0) return 'no-client-identity';
  else leaseKey = Buffer.concat([Buffer.from([m.htype]), m.chaddr.subarray(0, hlen)]);
  const hwaddr = senderHwAddress !== undefined && senderHwAddress !== null && senderHwAddress.length === 20
    ? senderHwAddress : null;
  let portGuid: bigint | null;
  if (hwaddr !== null) portGuid = hwaddr.readBigUInt64BE(12);
  else {
    portGuid = cid !== null ? cidPortGuid(cid) : null;
    if (portGuid === null && m.htype === HTYPE_INFINIBAND && hlen === 8) portGuid = m.chaddr.readBigUInt64BE(0);
  }
  return new Identity(m, cid, leaseKey, leaseKeyText(leaseKey), portGuid, hwaddr, variant, hlen);
}

/** Identity keys -> value, refusing a second value under a key (two reservations for one client). */
export class IdentityIndex<T> {
  private readonly map = new Map<string, T>();

  /** Adds `value` under every key; returns the keys that already named another value. */
  add(keys: readonly string[], value: T): { key: string; other: T }[] {
    const clashes: { key: string; other: T }[] = [];
    for (const k of keys) {
      const other = this.map.get(k);
      if (other !== undefined && other !== value) clashes.push({ key: k, other });
      else this.map.set(k, value);
    }
    return clashes;
  }

  /** The value under the first (most specific) key that has one, with that key. */
  match(keys: readonly string[]): { value: T; key: string } | null {
    for (const k of keys) {
      const v = this.map.get(k);
      if (v !== undefined) return { value: v, key: k };
    }
    return null;
  }

  get size(): number { return this.map.size; }
}

/** The client label every log line starts with: `cid=... guid=... htype=32 hlen=0 xid=0x...`. */
export function clientLabel(m: DhcpMessage, id: ClientIdentity | null): string {
  const cid = id?.clientId ?? getClientIdentifier(m) ?? null;
  const guid = id?.portGuid ?? null;
  return `cid=${cid === null ? '(none)' : formatHex(cid)} guid=${guid === null ? '(none)' : guid.toString(16).padStart(16, '0')}` +
    ` htype=${m.htype} hlen=${m.hlen} xid=0x${m.xid.toString(16).padStart(8, '0')}`;
}
