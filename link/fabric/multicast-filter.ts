// Early multicast filters registered by a receiving port at the switch (DESIGN.md "Scale"): with
// thousands of ports in a broadcast group, most deliveries are packets the host would drop at once
// (an ARP for someone else's address, a DHCP DISCOVER reaching a host that is not a server). A host
// describes what it listens to as byte matches on the payload; the switch counts a packet that
// matches none as delivered (rcvPkts, rcvBytes, mcRcvPkts) and notListened, and never hands it
// over. Declarative, so a transport between processes can carry it to the fabric daemon.
// A filter may only decline what the receiver would itself drop without effect; `only` keeps
// packets the receiving HCA rejects on its own (P_Key, Q_Key, opcode, QPN; IBA 10.9.3, 9.6.1.5)
// flowing to it, so its drop counters stay what they were.
import { OPCODE_UD_SEND_ONLY, OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE } from '../wire/ib-constants.js';
import type { PacketView } from './packet-view.js';

/**
 * payload[offset + i] & mask[i] === value[i] for every i (mask defaults to all ones); with negate,
 * the match holds when that is false, including when the payload is too short to hold the bytes.
 */
export interface ByteMatch {
  offset: number;
  value: Uint8Array;
  mask?: Uint8Array;
  negate?: boolean;
}

/** Which packets a filter may decline; every other packet is delivered. */
export interface FilterScope {
  /** The receiving QP's P_Key: a packet whose P_Key does not match it (IBA 10.9.3) is delivered. */
  pkey: number;
  /** The receiving QP's Q_Key: a packet with another Q_Key is delivered. */
  qkey: number;
  /** A payload shorter than this is delivered (the receiver counts it as malformed). */
  minPayload: number;
  /** True: a packet without a GRH, or whose DGID is not multicast, is delivered. */
  multicastGrh: boolean;
}

/**
 * A packet is delivered when every match of at least one rule holds. No rules: nothing is delivered.
 * With `only`, just the UD SENDs to the multicast QPN that fall inside the scope are filtered.
 */
export interface MulticastFilter {
  rules: readonly (readonly ByteMatch[])[];
  only?: FilterScope;
}

const QPN_MULTICAST = 0xffffff;

export type CompiledFilter = (v: PacketView) => boolean;

export function validateMulticastFilter(f: MulticastFilter): void {
  for (const rule of f.rules) {
    for (const m of rule) {
      if (!Number.isInteger(m.offset) || m.offset < 0 || m.offset > 0x10000) throw new RangeError(`filter offset ${m.offset} out of range`);
      if (m.value.length === 0 || m.value.length > 64) throw new RangeError('filter value must be 1..64 bytes');
      if (m.mask !== undefined && m.mask.length !== m.value.length) throw new RangeError('filter mask and value differ in length');
    }
  }
  const o = f.only;
  if (o !== undefined) {
    if (!Number.isInteger(o.pkey) || o.pkey < 0 || o.pkey > 0xffff) throw new RangeError(`filter pkey ${o.pkey} out of range`);
    if (!Number.isInteger(o.qkey) || o.qkey < 0 || o.qkey > 0xffffffff) throw new RangeError(`filter qkey ${o.qkey} out of range`);
    if (!Number.isInteger(o.minPayload) || o.minPayload < 0 || o.minPayload > 0x10000) throw new RangeError(`filter minPayload ${o.minPayload} out of range`);
  }
}

/**
 * Rules become flat integer programs, one per leading EtherType-like key (a rule that begins with
 * an exact, unmasked 2-byte match at offset 0) plus one for the rest, so a packet runs only the
 * rules that can hold for its first two bytes. One interpreter for every port keeps it monomorphic.
 */
export function compileMulticastFilter(f: MulticastFilter): CompiledFilter {
  validateMulticastFilter(f);
  const generic: ByteMatch[][] = [];
  const keyed = new Map<number, ByteMatch[][]>();
  for (const rule of f.rules) {
    const m = rule[0];
    const exact = m !== undefined && m.offset === 0 && m.value.length === 2 && m.negate !== true
      && (m.mask === undefined || (m.mask[0] === 0xff && m.mask[1] === 0xff));
    if (!exact) { generic.push([...rule]); continue; }
    const key = (m.value[0]! << 8) | m.value[1]!;
    let list = keyed.get(key);
    if (list === undefined) { list = []; keyed.set(key, list); }
    list.push(rule.slice(1));
  }
  const genericProgram = program(generic);
  const byKey = new Map<number, Int32Array>();
  for (const [k, list] of keyed) byKey.set(k, program(list));
  const only = f.only === undefined ? undefined : { ...f.only };
  return (v) => {
    const b = v.buf;
    if (only !== undefined && !inScope(v, only)) return true;
    const base = v.payloadOffset;
    const len = v.payloadLength;
    if (genericProgram.length > 0 && run(genericProgram, b, base, len)) return true;
    if (len < 2 || byKey.size === 0) return false;
    const p = byKey.get((b[base]! << 8) | b[base + 1]!);
    return p !== undefined && run(p, b, base, len);
  };
}

/** Whether a filter with this scope may decline v at all (outside the scope, v is delivered). */
export function inScope(v: PacketView, only: FilterScope): boolean {
  if (v.opcode !== OPCODE_UD_SEND_ONLY && v.opcode !== OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE) return false;
  if (v.destQp !== QPN_MULTICAST || v.qkey !== only.qkey) return false;
  if ((v.pkey & 0x7fff) !== (only.pkey & 0x7fff) || ((v.pkey | only.pkey) & 0x8000) === 0) return false;
  if (v.payloadLength < only.minPayload) return false;
  if (only.multicastGrh && (v.grhOffset < 0 || v.buf[v.grhOffset + 24] !== 0xff)) return false;
  return true;
}

/**
 * One rule split for the switch's index (multicast-index.ts): its key, the exact unmasked match
 * at the largest offset (a host's own address, a neighbour's, a UDP port: what differs between
 * ports), and the rest, which many ports share. `shape` names the rest and the key's position, so
 * rules that differ only in the key's value share one shape: the switch runs the rest once per
 * packet and finds the ports by the packet's bytes at the key.
 */
export interface RulePart {
  shape: string;
  rest: ByteMatch[];
  key: { offset: number; length: number; value: number | string } | undefined;
}

/** A filter as the index sees it: its scope (undefined: filters every packet) and its rules. */
export interface FilterParts {
  scope: string;
  only: FilterScope | undefined;
  rules: RulePart[];
}

// Hoisted helpers, no closures per call: a host reinstalls its filter at every neighbour change, and
// tsx's keepNames makes each closure created per call costly.
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hexOf(u: Uint8Array | undefined, at = 0, length = u === undefined ? 0 : u.length): string {
  if (u === undefined) return '';
  let out = '';
  for (let i = 0; i < length; i++) out += HEX[u[at + i]!]!;
  return out;
}

function isExact(m: ByteMatch): boolean {
  if (m.negate === true) return false;
  const k = m.mask;
  if (k === undefined) return true;
  for (let i = 0; i < k.length; i++) if (k[i] !== 0xff) return false;
  return true;
}

/** The bytes at [at, at + length) as an index key: a number up to 6 bytes, hex beyond. */
export function keyOf(b: Uint8Array, at: number, length: number): number | string {
  if (length > 6) return hexOf(b, at, length);
  let n = 0;
  for (let i = 0; i < length; i++) n = n * 256 + b[at + i]!;
  return n;
}

function matchText(m: ByteMatch): string {
  return `${m.offset}:${hexOf(m.value)}/${hexOf(m.mask)}${m.negate === true ? '!' : ''}`;
}

function rulePart(rule: readonly ByteMatch[]): RulePart {
  let k = -1;
  for (let i = 0; i < rule.length; i++) {
    const m = rule[i]!;
    if (isExact(m) && (k < 0 || m.offset >= rule[k]!.offset)) k = i;
  }
  const rest: ByteMatch[] = [];
  let shape = '';
  for (let i = 0; i < rule.length; i++) {
    if (i === k) continue;
    rest.push(rule[i]!);
    shape += `,${matchText(rule[i]!)}`;
  }
  if (k < 0) return { shape: `-|${shape}`, rest, key: undefined };
  const km = rule[k]!;
  return { shape: `${km.offset}+${km.value.length}|${shape}`, rest, key: { offset: km.offset, length: km.value.length, value: keyOf(km.value, 0, km.value.length) } };
}

export function filterParts(f: MulticastFilter): FilterParts {
  validateMulticastFilter(f);
  const o = f.only;
  const scope = o === undefined ? '*' : `${o.pkey}:${o.qkey}:${o.minPayload}:${o.multicastGrh ? 1 : 0}`;
  const rules: RulePart[] = [];
  for (const rule of f.rules) rules.push(rulePart(rule));
  return { scope, only: o === undefined ? undefined : { ...o }, rules };
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether two filters are the same rules and scope (so reinstalling one would change nothing). */
export function sameFilter(a: MulticastFilter, b: MulticastFilter): boolean {
  const oa = a.only;
  const ob = b.only;
  if (oa === undefined || ob === undefined) { if (oa !== ob) return false; } else if (oa.pkey !== ob.pkey || oa.qkey !== ob.qkey
    || oa.minPayload !== ob.minPayload || oa.multicastGrh !== ob.multicastGrh) return false;
  if (a.rules.length !== b.rules.length) return false;
  for (let r = 0; r < a.rules.length; r++) {
    const ra = a.rules[r]!;
    const rb = b.rules[r]!;
    if (ra.length !== rb.length) return false;
    for (let i = 0; i < ra.length; i++) {
      const ma = ra[i]!;
      const mb = rb[i]!;
      if (ma.offset !== mb.offset || (ma.negate === true) !== (mb.negate === true) || !sameBytes(ma.value, mb.value) || !sameBytes(ma.mask, mb.mask)) return false;
    }
  }
  return true;
}

/** A copy the caller cannot change afterwards (the switch keeps one to compare the next filter with). */
export function copyFilter(f: MulticastFilter): MulticastFilter {
  const rules: ByteMatch[][] = [];
  for (const rule of f.rules) {
    const out: ByteMatch[] = [];
    for (const m of rule) {
      const c: ByteMatch = { offset: m.offset, value: m.value.slice() };
      if (m.mask !== undefined) c.mask = m.mask.slice();
      if (m.negate === true) c.negate = true;
      out.push(c);
    }
    rules.push(out);
  }
  return f.only === undefined ? { rules } : { rules, only: { ...f.only } };
}

/** A single rule as a program for runRule(): true when every match holds. */
export function ruleProgram(rule: readonly ByteMatch[]): Int32Array {
  return program([rule]);
}

export function runRule(p: Int32Array, v: PacketView): boolean {
  return run(p, v.buf, v.payloadOffset, v.payloadLength);
}

// Layout, per rule: [next rule index, then per match: offset, length, negate, (mask, value) x length].
function program(rules: readonly (readonly ByteMatch[])[]): Int32Array {
  const out: number[] = [];
  for (const rule of rules) {
    const at = out.length;
    out.push(0);
    for (const m of rule) {
      out.push(m.offset, m.value.length, m.negate === true ? 1 : 0);
      for (let i = 0; i < m.value.length; i++) {
        const mask = m.mask === undefined ? 0xff : m.mask[i]!;
        out.push(mask, m.value[i]!);
      }
    }
    out[at] = out.length;
  }
  return Int32Array.from(out);
}

function run(p: Int32Array, b: Buffer, base: number, len: number): boolean {
  let i = 0;
  outer: while (i < p.length) {
    const next = p[i]!;
    i++;
    while (i < next) {
      const off = p[i]!;
      const n = p[i + 1]!;
      const negate = p[i + 2]! !== 0;
      i += 3;
      let holds = off + n <= len;
      if (holds) {
        const at = base + off;
        for (let j = 0; j < n; j++) {
          if ((b[at + j]! & p[i + 2 * j]!) !== p[i + 2 * j + 1]!) { holds = false; break; }
        }
      }
      if (holds === negate) { i = next; continue outer; }
      i += 2 * n;
    }
    return true;
  }
  return false;
}
