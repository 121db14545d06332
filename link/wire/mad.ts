// Management Datagram (MAD): IBA vol. 1 §13.4.2-13.4.3, the 256-byte GMP/SMP payload with its 24-byte
// common header, as OpenSM's ib_mad_t and rdma-core's libibmad/mad.h lay it out (IPOIB-FACTS §2.1).
// Also the small declarative layer every MAD-borne record of link/wire uses: layouts are declared
// once with buffer-layout, and this wrapper checks bounds first and values on both sides. Records
// read per packet at scale (the MAD header, the SA MAD, PathRecord, MCMemberRecord: every host of
// a boot storm joins and resolves paths) run a direct engine compiled from the same field list; the
// rest (CM) run buffer-layout itself, which stays the reference the direct engine is tested against.

import * as lo from 'buffer-layout';
import { targetBuffer, type Codec } from '../../codec/contract.js';
import { checkBytes, checkUint, need } from '../../codec/checked.js';
import { WireError } from '../../codec/wire-error.js';
import {
  MAD_BASE_VERSION, MAD_DATA_SIZE, MAD_HEADER_SIZE, MAD_SIZE, MAD_STATUS_CLASS_MASK,
  MAD_STATUS_INVALID_FIELD_MASK, MadStatus, Method, METHOD_RESPONSE_BIT,
} from './mad-constants.js';

// ---------------------------------------------------------------------------------------------
// Fixed-layout records over buffer-layout.
//
// buffer-layout does the byte work but trusts its input: short buffers throw RangeError, a missing
// property leaves old bytes in place, 64-bit integers lose precision (TOOLCHAIN.md §3). So each
// record is declared as a list of fields from which the buffer-layout Structure is built, and the
// same list drives the checks: need() before any read, every property range-checked before any
// write, bit fields that cover their whole word (so encode never keeps a byte it did not mean to).

/** One packed bit field, most significant first. `flag` fields are 1 bit and read as booleans. */
export interface BitPart {
  readonly name: string;
  readonly width: number;
  readonly flag: boolean;
}

export type FieldSpec =
  | { readonly kind: 'uint'; readonly name: string; readonly bytes: 1 | 2 | 4 }
  | { readonly kind: 'u64'; readonly name: string }
  | { readonly kind: 'bytes'; readonly name: string; readonly length: number }
  | { readonly kind: 'bits'; readonly bytes: 1 | 2 | 4; readonly parts: readonly BitPart[] };

type PartSpec = readonly [name: string, width: number | 'flag'];

function bitsOf(bytes: 1 | 2 | 4, parts: readonly PartSpec[]): FieldSpec {
  return {
    kind: 'bits',
    bytes,
    parts: parts.map(([name, w]) => ({ name, width: w === 'flag' ? 1 : w, flag: w === 'flag' })),
  };
}

/** Field constructors, named after the buffer-layout factories they stand for. */
export const f = {
  u8: (name: string): FieldSpec => ({ kind: 'uint', name, bytes: 1 }),
  u16be: (name: string): FieldSpec => ({ kind: 'uint', name, bytes: 2 }),
  u32be: (name: string): FieldSpec => ({ kind: 'uint', name, bytes: 4 }),
  /** lo.blob(8) read as an unsigned bigint (never nu64be, which rounds above 2^53). */
  u64be: (name: string): FieldSpec => ({ kind: 'u64', name }),
  blob: (length: number, name: string): FieldSpec => ({ kind: 'bytes', name, length }),
  /** lo.bits(lo.u8(), true) etc.: parts listed from the most significant bit down. */
  bits8: (...parts: PartSpec[]): FieldSpec => bitsOf(1, parts),
  bits16: (...parts: PartSpec[]): FieldSpec => bitsOf(2, parts),
  bits32: (...parts: PartSpec[]): FieldSpec => bitsOf(4, parts),
};

/** A problem a record-level check found: BAD_VALUE/BAD_LENGTH on decode, INVALID_RECORD on encode. */
export interface FieldProblem {
  readonly code: 'BAD_VALUE' | 'BAD_LENGTH';
  readonly field: string;
  readonly detail: string;
}

/**
 * How a record's bytes are read and written. 'buffer-layout': the Structure itself. 'direct':
 * readUInt*BE/writeUInt*BE at offsets computed once from the same field list, with no intermediate
 * objects; at 4,000 hosts buffer-layout's encode/decode of SA MADs was ~6% of a boot storm's CPU
 * and much of its garbage (blob encode goes through a hex string). test/link-wire-mad.test.ts holds
 * the two engines to the same bytes and values.
 */
export type RecordEngine = 'buffer-layout' | 'direct';

export interface FixedRecord<T> {
  readonly protocol: string;
  readonly span: number;
  readonly engine: RecordEngine;
  /** The buffer-layout Structure; its decode output is buffer-layout's nested shape, not T. */
  readonly layout: lo.Structure;
  /** Byte offset of a field (or of the word holding a bit field) inside the record. */
  offsetOf(field: string): number;
  /** need() first, then buffer-layout, then the record check. */
  decode(buf: Buffer, offset: number): T;
  /** Range checks, the record check, then buffer-layout into buf (which must have room). */
  write(value: T, buf: Buffer, offset: number): void;
}

function specSize(s: FieldSpec): number {
  switch (s.kind) {
    case 'uint': return s.bytes;
    case 'u64': return 8;
    case 'bytes': return s.length;
    case 'bits': return s.bytes;
  }
}

function specNames(s: FieldSpec): string[] {
  return s.kind === 'bits' ? s.parts.map((p) => p.name) : [s.name];
}

function wordLayout(bytes: 1 | 2 | 4): lo.Layout {
  return bytes === 1 ? lo.u8() : bytes === 2 ? lo.u16be() : lo.u32be();
}

/**
 * Builds the buffer-layout Structure for specs and wraps it. `check` states what the protocol
 * forbids; it runs after decode and before encode so that encode never writes what decode rejects.
 */
export function fixedRecord<T extends object>(
  protocol: string,
  specs: readonly FieldSpec[],
  check?: (value: T) => FieldProblem | undefined,
  engine: RecordEngine = 'buffer-layout',
): FixedRecord<T> {
  const offsets = new Map<string, number>();
  const layouts: lo.Layout[] = [];
  let span = 0;
  specs.forEach((s, i) => {
    for (const n of specNames(s)) {
      if (offsets.has(n)) throw new Error(`${protocol}: field ${n} declared twice`);
      offsets.set(n, span);
    }
    switch (s.kind) {
      case 'uint': layouts.push(s.bytes === 1 ? lo.u8(s.name) : s.bytes === 2 ? lo.u16be(s.name) : lo.u32be(s.name)); break;
      case 'u64': layouts.push(lo.blob(8, s.name)); break;
      case 'bytes': layouts.push(lo.blob(s.length, s.name)); break;
      case 'bits': {
        const word = lo.bits(wordLayout(s.bytes), true, `_bits${i}`);
        let used = 0;
        for (const p of s.parts) {
          if (p.flag) word.addBoolean(p.name); else word.addField(p.width, p.name);
          used += p.width;
        }
        if (used !== s.bytes * 8) throw new Error(`${protocol}: bit fields at ${span} cover ${used} of ${s.bytes * 8} bits`);
        layouts.push(word);
        break;
      }
    }
    span += specSize(s);
  });
  const layout = lo.struct(layouts, protocol);
  if (layout.span !== span) throw new Error(`${protocol}: layout span ${layout.span}, expected ${span}`);

  const offsetOf = (field: string): number => offsets.get(field) ?? 0;
  const direct = engine === 'direct' ? directEngine(protocol, specs) : undefined;

  const decode = (buf: Buffer, offset: number): T => {
    if (!Number.isInteger(offset)) {
      throw new WireError('TRUNCATED', protocol, specNames(specs[0]!)[0] ?? protocol, 0, `offset ${offset} is not a byte position`);
    }
    if (offset < 0 || offset + span > buf.length) {
      let at = 0;
      for (const s of specs) {
        need(buf, offset + at, specSize(s), protocol, specNames(s)[0] ?? protocol);
        at += specSize(s);
      }
    }
    if (direct !== undefined) {
      const value = direct.decode(buf, offset) as T;
      const problem = check?.(value);
      if (problem) throw new WireError(problem.code, protocol, problem.field, offset + offsetOf(problem.field), problem.detail);
      return value;
    }
    const raw = layout.decode(buf, offset) as Record<string, unknown>;
    const rec: Record<string, unknown> = {};
    specs.forEach((s, i) => {
      switch (s.kind) {
        case 'uint': rec[s.name] = raw[s.name]; break;
        case 'u64': rec[s.name] = (raw[s.name] as Buffer).readBigUInt64BE(0); break;
        // buffer-layout's blob is a view of the input: copy so the record owns its bytes.
        case 'bytes': rec[s.name] = Buffer.from(raw[s.name] as Buffer); break;
        case 'bits': {
          const word = raw[`_bits${i}`] as Record<string, number | boolean>;
          for (const p of s.parts) rec[p.name] = word[p.name];
          break;
        }
      }
    });
    const value = rec as T;
    const problem = check?.(value);
    if (problem) throw new WireError(problem.code, protocol, problem.field, offset + offsetOf(problem.field), problem.detail);
    return value;
  };

  const write = (value: T, buf: Buffer, offset: number): void => {
    const v = value as Record<string, unknown>;
    if (direct !== undefined) {
      direct.check(v);
      const problem = check?.(value);
      if (problem) throw invalid(protocol, problem.field, problem.detail);
      direct.write(v, buf, offset);
      return;
    }
    const raw: Record<string, unknown> = {};
    specs.forEach((s, i) => {
      switch (s.kind) {
        case 'uint': checkUint(protocol, s.name, v[s.name] as number, s.bytes * 8); raw[s.name] = v[s.name]; break;
        case 'u64': raw[s.name] = u64Bytes(protocol, s.name, v[s.name]); break;
        case 'bytes': {
          const b = v[s.name];
          if (!(b instanceof Uint8Array)) throw invalid(protocol, s.name, 'must be bytes');
          checkBytes(protocol, s.name, b, s.length);
          raw[s.name] = Buffer.isBuffer(b) ? b : Buffer.from(b);
          break;
        }
        case 'bits': {
          const word: Record<string, number | boolean> = {};
          for (const p of s.parts) {
            const x = v[p.name];
            if (p.flag) {
              if (typeof x !== 'boolean') throw invalid(protocol, p.name, 'must be a boolean');
            } else {
              checkUint(protocol, p.name, x as number, p.width);
            }
            word[p.name] = x as number | boolean;
          }
          raw[`_bits${i}`] = word;
          break;
        }
      }
    });
    const problem = check?.(value);
    if (problem) throw invalid(protocol, problem.field, problem.detail);
    layout.encode(raw, buf, offset);
  };

  return { protocol, span, engine, layout, offsetOf, decode, write };
}

interface DirectEngine {
  decode(buf: Buffer, offset: number): Record<string, unknown>;
  /** The same range and type checks as the buffer-layout path, with the same errors. */
  check(v: Record<string, unknown>): void;
  /** After check(): writes every byte of the record. */
  write(v: Record<string, unknown>, buf: Buffer, offset: number): void;
}

/**
 * The direct engine is generated JavaScript, one function per direction, from the field list (as
 * protobufjs and fast-json-stringify do): decode returns a single object literal, so every record
 * of a kind has one shape, and no loop or switch runs per field. Field names come from this
 * package's declarations, never from input, and are quoted with JSON.stringify all the same.
 * Bit fields use arithmetic (2 ** shift), so 32-bit words stay unsigned. A value out of range takes
 * the slow path into checkUint/checkBytes, which throw the same errors as the buffer-layout path.
 */
function directEngine(protocol: string, specs: readonly FieldSpec[]): DirectEngine {
  const q = (name: string): string => `v[${JSON.stringify(name)}]`;
  const read = (bytes: 1 | 2 | 4, at: string): string =>
    bytes === 1 ? `b[${at}]` : bytes === 2 ? `b.readUInt16BE(${at})` : `b.readUInt32BE(${at})`;
  const write = (bytes: 1 | 2 | 4, at: string, x: string): string =>
    bytes === 1 ? `b[${at}] = ${x};` : bytes === 2 ? `b.writeUInt16BE(${x}, ${at});` : `b.writeUInt32BE(${x}, ${at});`;
  const dec: string[] = [];
  const wordDecls: string[] = [];
  const chk: string[] = [];
  const enc: string[] = [];
  let at = 0;
  specs.forEach((s, i) => {
    const o = `o + ${at}`;
    switch (s.kind) {
      case 'uint': {
        const max = 2 ** (s.bytes * 8) - 1;
        dec.push(`${JSON.stringify(s.name)}: ${read(s.bytes, o)}`);
        chk.push(`{ const x = ${q(s.name)}; if (!(x >>> 0 === x && x <= ${max})) checkUint(P, ${JSON.stringify(s.name)}, x, ${s.bytes * 8}); }`);
        enc.push(write(s.bytes, o, q(s.name)));
        break;
      }
      case 'u64':
        dec.push(`${JSON.stringify(s.name)}: b.readBigUInt64BE(${o})`);
        chk.push(`{ const x = ${q(s.name)}; if (typeof x !== 'bigint' || x < 0n || x > 0xffffffffffffffffn) throw invalid(P, ${JSON.stringify(s.name)}, String(x) + ' is not an unsigned 64-bit bigint'); }`);
        enc.push(`b.writeBigUInt64BE(${q(s.name)}, ${o});`);
        break;
      case 'bytes':
        dec.push(`${JSON.stringify(s.name)}: Buffer.from(b.subarray(${o}, ${o} + ${s.length}))`);
        chk.push(`{ const x = ${q(s.name)}; if (!(x instanceof Uint8Array)) throw invalid(P, ${JSON.stringify(s.name)}, 'must be bytes'); checkBytes(P, ${JSON.stringify(s.name)}, x, ${s.length}); }`);
        enc.push(`b.set(${q(s.name)}, ${o});`);
        break;
      case 'bits': {
        const w = `w${i}`;
        wordDecls.push(`const ${w} = ${read(s.bytes, o)};`);
        let shift = s.bytes * 8;
        const sum: string[] = [];
        for (const p of s.parts) {
          shift -= p.width;
          const field = `Math.floor(${w} / ${2 ** shift}) % ${2 ** p.width}`;
          dec.push(`${JSON.stringify(p.name)}: ${p.flag ? `(${field}) === 1` : field}`);
          if (p.flag) {
            chk.push(`if (typeof ${q(p.name)} !== 'boolean') throw invalid(P, ${JSON.stringify(p.name)}, 'must be a boolean');`);
            sum.push(`(${q(p.name)} ? ${2 ** shift} : 0)`);
          } else {
            chk.push(`{ const x = ${q(p.name)}; if (!(x >>> 0 === x && x <= ${2 ** p.width - 1})) checkUint(P, ${JSON.stringify(p.name)}, x, ${p.width}); }`);
            sum.push(`${q(p.name)} * ${2 ** shift}`);
          }
        }
        enc.push(write(s.bytes, o, sum.join(' + ')));
        break;
      }
    }
    at += specSize(s);
  });
  const make = (params: string, body: string): never =>
    new Function('P', 'Buffer', 'checkUint', 'checkBytes', 'invalid', `return function (${params}) {\n${body}\n};`)(
      protocol, Buffer, checkUint, checkBytes, invalid) as never;
  return {
    decode: make('b, o', `${wordDecls.join('\n')}\nreturn {\n${dec.join(',\n')}\n};`),
    check: make('v', chk.join('\n')),
    write: make('v, b, o', enc.join('\n')),
  };
}

function invalid(protocol: string, field: string, detail: string): WireError {
  return new WireError('INVALID_RECORD', protocol, field, -1, detail);
}

function u64Bytes(protocol: string, field: string, x: unknown): Buffer {
  if (typeof x !== 'bigint' || x < 0n || x > 0xffffffffffffffffn) throw invalid(protocol, field, `${String(x)} is not an unsigned 64-bit bigint`);
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(x);
  return b;
}

/** The Codec of a fixed record, allocating encodedLength bytes or writing into the caller's buffer. */
export function fixedCodec<T extends object>(rec: FixedRecord<T>): Codec<T> {
  return {
    name: rec.protocol,
    encodedLength: () => rec.span,
    encode(value: T, buf?: Buffer, offset = 0): Buffer {
      const out = targetBuffer(rec.protocol, rec.span, buf, offset);
      rec.write(value, out, offset);
      return out;
    },
    decode: (buf: Buffer, offset = 0): T => rec.decode(buf, offset),
  };
}

// ---------------------------------------------------------------------------------------------
// The MAD.

/**
 * Common MAD header (24 bytes) followed by 232 bytes of class data:
 * ```
 *  0               1               2               3
 * +---------------+---------------+---------------+---------------+
 * |  BaseVersion  |   MgmtClass   | ClassVersion  |R|  Method     |  0
 * +---------------+---------------+---------------+---------------+
 * |            Status             |         ClassSpecific         |  4
 * +---------------+---------------+---------------+---------------+
 * |                    TransactionID (64 bits)                    |  8
 * +---------------+---------------+---------------+---------------+
 * |          AttributeID          |           Reserved            | 16
 * +---------------+---------------+---------------+---------------+
 * |                      AttributeModifier                        | 20
 * +---------------+---------------+---------------+---------------+
 * |                  class data (232 bytes) ...                   | 24
 * ```
 * `method` is the whole byte, R bit included (0x81 is GetResp), as tshark shows it.
 */
export interface MadHeader {
  /** Always 1; decode rejects anything else (IBA C13-1, the receiver drops it). */
  baseVersion: number;
  mgmtClass: number;
  classVersion: number;
  method: number;
  status: number;
  classSpecific: number;
  transactionId: bigint;
  attributeId: number;
  /** Bytes 18-19: sent as 0, kept as read. */
  reserved: number;
  attributeModifier: number;
}

export interface Mad extends MadHeader {
  /** The 232 bytes after the header. */
  data: Buffer;
}

/** The header fields, reused at the front of the SA MAD and the CM MAD layouts. */
export const MAD_HEADER_FIELDS: readonly FieldSpec[] = [
  f.u8('baseVersion'),
  f.u8('mgmtClass'),
  f.u8('classVersion'),
  f.u8('method'),
  f.u16be('status'),
  f.u16be('classSpecific'),
  f.u64be('transactionId'),
  f.u16be('attributeId'),
  f.u16be('reserved'),
  f.u32be('attributeModifier'),
];

export function checkMadHeader(h: MadHeader): FieldProblem | undefined {
  if (h.baseVersion !== MAD_BASE_VERSION) {
    return { code: 'BAD_VALUE', field: 'baseVersion', detail: `BaseVersion ${h.baseVersion}, only ${MAD_BASE_VERSION} is defined` };
  }
  return undefined;
}

const MAD_HEADER = fixedRecord<MadHeader>('MAD', MAD_HEADER_FIELDS, checkMadHeader, 'direct');
const MAD = fixedRecord<Mad>('MAD', [...MAD_HEADER_FIELDS, f.blob(MAD_DATA_SIZE, 'data')], checkMadHeader, 'direct');
if (MAD_HEADER.span !== MAD_HEADER_SIZE || MAD.span !== MAD_SIZE) throw new Error('MAD layout size');

/** The 24-byte header alone: enough to route a MAD to its class before decoding the rest. */
export const madHeader: Codec<MadHeader> = fixedCodec(MAD_HEADER);
/**
 * The whole 256-byte MAD. decode reads exactly 256 bytes from offset: a GMP is always that size on
 * the wire, and bytes after it belong to the caller.
 */
export const mad: Codec<Mad> = fixedCodec(MAD);

export const decodeMad = mad.decode;
export const encodeMad = mad.encode;
export const decodeMadHeader = madHeader.decode;

// ---------------------------------------------------------------------------------------------
// Method and status helpers.

export function isResponseMethod(method: number): boolean {
  return (method & METHOD_RESPONSE_BIT) !== 0;
}

/**
 * The method a responder answers with: the request's with the R bit set, except that a Set is
 * answered by GetResp (IBA 13.4.5; OpenSM osm_sa_respond()) and a Trap by TrapRepress, which has
 * no R bit.
 */
export function responseMethod(method: number): number {
  if (method === Method.TRAP) return Method.TRAP_REPRESS;
  return (method === Method.SET ? Method.GET : method) | METHOD_RESPONSE_BIT;
}

export const madStatusIsBusy = (status: number): boolean => (status & MadStatus.BUSY) !== 0;
export const madStatusIsRedirect = (status: number): boolean => (status & MadStatus.REDIRECT) !== 0;
/** Bits 2-4 of Status as the 3-bit code (0 none, 1 bad version, 2 method, 3 method/attribute, 7 field value). */
export const madStatusInvalidField = (status: number): number => (status & MAD_STATUS_INVALID_FIELD_MASK) >>> 2;
/** The class-specific upper byte; for the SA that is an SaStatus code. */
export const madStatusClassCode = (status: number): number => (status & MAD_STATUS_CLASS_MASK) >>> 8;

/** Transient errors a requester may retry (busy) from the ones it must not. */
export type MadStatusKind = 'success' | 'busy' | 'redirect' | 'invalid-field' | 'class-error';

export function madStatusKind(status: number): MadStatusKind {
  if (status === MadStatus.SUCCESS) return 'success';
  if (madStatusIsBusy(status)) return 'busy';
  if (madStatusIsRedirect(status)) return 'redirect';
  if (madStatusInvalidField(status) !== 0) return 'invalid-field';
  return 'class-error';
}

/** A header for a fresh request; the caller supplies the rest. */
export function madRequestHeader(init: {
  mgmtClass: number; classVersion: number; method: number; attributeId: number; transactionId: bigint;
  attributeModifier?: number;
}): MadHeader {
  return {
    baseVersion: MAD_BASE_VERSION,
    mgmtClass: init.mgmtClass,
    classVersion: init.classVersion,
    method: init.method,
    status: 0,
    classSpecific: 0,
    transactionId: init.transactionId,
    attributeId: init.attributeId,
    reserved: 0,
    attributeModifier: init.attributeModifier ?? 0,
  };
}

