// The generic option-data codec driven by option-defs.ts, as Kea's option definitions drive its
// OptionCustom: RFC 2132 §2 data types, records and arrays (Kea semantics: in an array record the
// last field repeats), RFC 3442 classless routes, RFC 3046 sub-options, RFC 3925 vendor blocks.
// Text is Kea's "data" format (csv-format true): comma-separated values, hex for binary.

import { WireError } from '../codec/wire-error.js';
import { decodeName, encodeNames } from './domain-name.js';
import { ipv4ToString, tryParseIpv4 } from './ipv4.js';
import { MAX_ARRAY_ELEMENTS } from './limits.js';

const P = 'DHCP';

export type FieldType =
  | 'ipv4-address' | 'uint8' | 'uint16' | 'uint32' | 'int8' | 'int16' | 'int32'
  | 'string' | 'fqdn' | 'boolean' | 'binary';

/** Kea's types plus three whole-option shapes Kea handles in dedicated classes. */
export type OptionType =
  | FieldType | 'empty' | 'record'
  | 'classless-static-route' // RFC 3442 (Kea "internal")
  | 'suboptions'             // RFC 3046 option 82 (Kea "empty" + dhcp-agent-options-space)
  | 'vivso';                 // RFC 3925 option 125 (Kea "uint32" + vendor space)

export interface OptionDef {
  readonly code: number;
  /** Kea's option name ("interface-mtu"). */
  readonly name: string;
  readonly type: OptionType;
  /** Array of `type`; for a record, the last field repeats. */
  readonly array: boolean;
  /** Field types of a record; empty otherwise. */
  readonly fields: readonly FieldType[];
}

export type FieldValue = number | string | boolean | Buffer;

/** One RFC 3442 route: destination/prefixLength via router (addresses as numbers, ipv4.ts). */
export interface StaticRoute { destination: number; prefixLength: number; router: number }
/** One sub-option of option 82 (RFC 3046 §2.0), kept raw like any unknown option. */
export interface SubOption { code: number; data: Buffer }
/** One RFC 3925 §4 block of option 125: enterprise number and its option data. */
export interface VendorBlock { enterpriseId: number; data: Buffer }

/**
 * A typed option value. Scalars for single values; FieldValue[] for arrays and records (record
 * fields in order, repeated last field appended); null for 'empty'.
 */
export type OptionValue = FieldValue | FieldValue[] | null | StaticRoute[] | SubOption[] | VendorBlock[];

const FIXED_SIZE: Partial<Record<FieldType, number>> = {
  'ipv4-address': 4, uint8: 1, uint16: 2, uint32: 4, int8: 1, int16: 2, int32: 4, boolean: 1,
};

function fieldOf(def: OptionDef): string {
  return def.name;
}

function readField(t: FieldType, data: Buffer, pos: number, def: OptionDef, base: number): [FieldValue, number] {
  const size = FIXED_SIZE[t];
  if (size !== undefined && pos + size > data.length) {
    throw new WireError('BAD_LENGTH', P, fieldOf(def), base + pos, `${t} needs ${size} byte(s), ${data.length - pos} left`);
  }
  switch (t) {
    case 'ipv4-address': case 'uint32': return [data.readUInt32BE(pos), pos + 4];
    case 'uint8': return [data[pos]!, pos + 1];
    case 'uint16': return [data.readUInt16BE(pos), pos + 2];
    case 'int8': return [data.readInt8(pos), pos + 1];
    case 'int16': return [data.readInt16BE(pos), pos + 2];
    case 'int32': return [data.readInt32BE(pos), pos + 4];
    case 'boolean': {
      const b = data[pos]!;
      if (b > 1) throw new WireError('BAD_VALUE', P, fieldOf(def), base + pos, `boolean byte ${b} is not 0 or 1`);
      return [b === 1, pos + 1];
    }
    case 'string': return [data.toString('latin1', pos), data.length];
    case 'binary': return [data.subarray(pos), data.length];
    case 'fqdn': return decodeName(data, pos, fieldOf(def), base);
  }
}

function readArray(t: FieldType, data: Buffer, pos: number, def: OptionDef, base: number, out: FieldValue[]): void {
  const size = FIXED_SIZE[t];
  if (size !== undefined && (data.length - pos) % size !== 0) {
    throw new WireError('BAD_LENGTH', P, fieldOf(def), base + pos,
      `${data.length - pos} byte(s) is not a whole number of ${size}-byte ${t} values`);
  }
  while (pos < data.length) {
    if (out.length >= MAX_ARRAY_ELEMENTS) throw new WireError('LIMIT', P, fieldOf(def), base + pos, 'too many elements');
    const [v, next] = readField(t, data, pos, def, base);
    out.push(v);
    pos = next;
  }
}

/** Decodes option data per its definition; malformed data is a WireError naming the option. */
export function decodeValue(def: OptionDef, data: Buffer, base = 0): OptionValue {
  switch (def.type) {
    case 'empty':
      if (data.length !== 0) throw new WireError('BAD_LENGTH', P, fieldOf(def), base, `must be empty, has ${data.length} byte(s)`);
      return null;
    case 'record': {
      const out: FieldValue[] = [];
      let pos = 0;
      const n = def.fields.length;
      for (let k = 0; k < n - (def.array ? 1 : 0); k++) {
        const [v, next] = readField(def.fields[k]!, data, pos, def, base);
        out.push(v);
        pos = next;
      }
      if (def.array) readArray(def.fields[n - 1]!, data, pos, def, base, out);
      else if (pos !== data.length) {
        throw new WireError('BAD_LENGTH', P, fieldOf(def), base + pos, `${data.length - pos} byte(s) after the last field`);
      }
      return out;
    }
    case 'classless-static-route': return decodeRoutes(def, data, base);
    case 'suboptions': return decodeSubOptions(def, data, base);
    case 'vivso': return decodeVendorBlocks(def, data, base);
    default: {
      const t = def.type;
      if (def.array) {
        const out: FieldValue[] = [];
        readArray(t, data, 0, def, base, out);
        return out;
      }
      const [v, next] = readField(t, data, 0, def, base);
      if (next !== data.length) {
        throw new WireError('BAD_LENGTH', P, fieldOf(def), base + next, `${data.length - next} byte(s) after the ${t} value`);
      }
      return v;
    }
  }
}

function decodeRoutes(def: OptionDef, data: Buffer, base: number): StaticRoute[] {
  const out: StaticRoute[] = [];
  let pos = 0;
  while (pos < data.length) {
    const width = data[pos]!;
    if (width > 32) throw new WireError('BAD_VALUE', P, fieldOf(def), base + pos, `prefix length ${width} is above 32`);
    const octets = (width + 7) >> 3;
    if (pos + 1 + octets + 4 > data.length) {
      throw new WireError('BAD_LENGTH', P, fieldOf(def), base + pos, `route /${width} needs ${1 + octets + 4} bytes, ${data.length - pos} left`);
    }
    let destination = 0;
    for (let k = 0; k < 4; k++) destination = destination * 256 + (k < octets ? data[pos + 1 + k]! : 0);
    out.push({ destination, prefixLength: width, router: data.readUInt32BE(pos + 1 + octets) });
    pos += 1 + octets + 4;
  }
  return out;
}

function decodeSubOptions(def: OptionDef, data: Buffer, base: number): SubOption[] {
  const out: SubOption[] = [];
  let pos = 0;
  while (pos < data.length) {
    if (pos + 2 > data.length) throw new WireError('TRUNCATED', P, `${def.name}[${data[pos]!}]`, base + pos, 'sub-option without a length');
    const len = data[pos + 1]!;
    if (pos + 2 + len > data.length) {
      throw new WireError('BAD_LENGTH', P, `${def.name}[${data[pos]!}]`, base + pos + 1, `length ${len} runs past the end of the option`);
    }
    out.push({ code: data[pos]!, data: data.subarray(pos + 2, pos + 2 + len) });
    pos += 2 + len;
  }
  return out;
}

function decodeVendorBlocks(def: OptionDef, data: Buffer, base: number): VendorBlock[] {
  const out: VendorBlock[] = [];
  let pos = 0;
  while (pos < data.length) {
    if (pos + 5 > data.length) throw new WireError('TRUNCATED', P, fieldOf(def), base + pos, 'enterprise block needs 5 bytes');
    const len = data[pos + 4]!;
    if (pos + 5 + len > data.length) {
      throw new WireError('BAD_LENGTH', P, fieldOf(def), base + pos + 4, `data-len ${len} runs past the end of the option`);
    }
    out.push({ enterpriseId: data.readUInt32BE(pos), data: data.subarray(pos + 5, pos + 5 + len) });
    pos += 5 + len;
  }
  return out;
}

// ---- encode -------------------------------------------------------------------------------------

function invalid(def: OptionDef, detail: string): WireError {
  return new WireError('INVALID_RECORD', P, fieldOf(def), -1, detail);
}

const INT_RANGE: Partial<Record<FieldType, [number, number]>> = {
  'ipv4-address': [0, 0xffffffff], uint8: [0, 0xff], uint16: [0, 0xffff], uint32: [0, 0xffffffff],
  int8: [-0x80, 0x7f], int16: [-0x8000, 0x7fff], int32: [-0x80000000, 0x7fffffff],
};

function fieldBytes(t: FieldType, v: unknown, def: OptionDef): Buffer {
  const range = INT_RANGE[t];
  if (range !== undefined) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) {
      throw invalid(def, `${String(v)} is not a ${t}`);
    }
    const b = Buffer.alloc(FIXED_SIZE[t]!);
    switch (t) {
      case 'uint8': b[0] = v; break;
      case 'int8': b.writeInt8(v); break;
      case 'uint16': b.writeUInt16BE(v); break;
      case 'int16': b.writeInt16BE(v); break;
      case 'int32': b.writeInt32BE(v); break;
      default: b.writeUInt32BE(v);
    }
    return b;
  }
  switch (t) {
    case 'boolean':
      if (typeof v !== 'boolean') throw invalid(def, `${String(v)} is not a boolean`);
      return Buffer.from([v ? 1 : 0]);
    case 'string':
      if (typeof v !== 'string' || /[^\x00-\xff]/.test(v)) throw invalid(def, 'string must be text of 8-bit characters');
      return Buffer.from(v, 'latin1');
    case 'binary':
      if (!(v instanceof Uint8Array)) throw invalid(def, 'binary must be a Buffer');
      return Buffer.from(v);
    default:
      if (typeof v !== 'string') throw invalid(def, `${String(v)} is not a domain name`);
      return encodeNames([v], false, fieldOf(def));
  }
}

/** Option data for `value` per its definition; a value no decode could produce is INVALID_RECORD. */
export function encodeValue(def: OptionDef, value: OptionValue): Buffer {
  switch (def.type) {
    case 'empty':
      if (value !== null) throw invalid(def, 'an empty option has the value null');
      return Buffer.alloc(0);
    case 'classless-static-route': return encodeRoutes(def, value);
    case 'suboptions': return encodeSubOptions(def, value);
    case 'vivso': return encodeVendorBlocks(def, value);
    case 'record': {
      if (!Array.isArray(value)) throw invalid(def, 'a record value is an array of fields');
      const n = def.fields.length;
      const fixed = def.array ? n - 1 : n;
      if (value.length < fixed || (!def.array && value.length !== n)) throw invalid(def, `record needs ${n} field(s)`);
      const parts: Buffer[] = [];
      for (let k = 0; k < value.length; k++) {
        const t = def.fields[Math.min(k, n - 1)]!;
        checkTailField(def, t, k, value.length, fixed);
        parts.push(fieldBytes(t, value[k], def));
      }
      return Buffer.concat(parts);
    }
    default: {
      const t = def.type;
      if (!def.array) {
        if (Array.isArray(value)) throw invalid(def, 'not an array option');
        return fieldBytes(t, value, def);
      }
      if (!Array.isArray(value)) throw invalid(def, 'an array option takes an array');
      if (t === 'fqdn') {
        if (!value.every((v) => typeof v === 'string')) throw invalid(def, 'domain names must be strings');
        return encodeNames(value as string[], true, fieldOf(def));
      }
      checkVariableArray(def, t, value.length);
      return Buffer.concat(value.map((v) => fieldBytes(t, v, def)));
    }
  }
}

/** A string/binary field consumes the rest of the option, so only one can come last (and not repeat). */
function checkTailField(def: OptionDef, t: FieldType, k: number, count: number, fixed: number): void {
  if ((t === 'string' || t === 'binary') && (k !== count - 1 || (def.array && k >= fixed && count - fixed > 1))) {
    throw invalid(def, `${t} field must be last and single`);
  }
}

function checkVariableArray(def: OptionDef, t: FieldType, count: number): void {
  if ((t === 'string' || t === 'binary') && count !== 1) throw invalid(def, `an array of ${t} cannot be delimited on the wire`);
}

function encodeRoutes(def: OptionDef, value: OptionValue): Buffer {
  if (!Array.isArray(value)) throw invalid(def, 'routes are an array');
  const parts: Buffer[] = [];
  for (const r of value) {
    if (typeof r !== 'object' || r === null || !('prefixLength' in r)) throw invalid(def, 'route must be {destination, prefixLength, router}');
    const { destination, prefixLength, router } = r;
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) throw invalid(def, `prefix length ${prefixLength}`);
    if (!isU32(destination) || !isU32(router)) throw invalid(def, 'route addresses must be 32-bit numbers');
    const octets = (prefixLength + 7) >> 3;
    const keep = octets === 0 ? 0 : (0xffffffff << (32 - octets * 8)) >>> 0;
    if (((destination & ~keep) >>> 0) !== 0) throw invalid(def, `destination has bits beyond its ${octets} significant octet(s)`);
    const b = Buffer.alloc(1 + octets + 4);
    b[0] = prefixLength;
    for (let k = 0; k < octets; k++) b[1 + k] = (destination >>> (24 - 8 * k)) & 0xff;
    b.writeUInt32BE(router, 1 + octets);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

function encodeSubOptions(def: OptionDef, value: OptionValue): Buffer {
  if (!Array.isArray(value)) throw invalid(def, 'sub-options are an array');
  const parts: Buffer[] = [];
  for (const s of value) {
    if (typeof s !== 'object' || s === null || !('code' in s) || !(s.data instanceof Uint8Array)) {
      throw invalid(def, 'sub-option must be {code, data}');
    }
    if (!Number.isInteger(s.code) || s.code < 0 || s.code > 255 || s.data.length > 255) throw invalid(def, `sub-option ${s.code} out of range`);
    parts.push(Buffer.from([s.code, s.data.length]), Buffer.from(s.data));
  }
  return Buffer.concat(parts);
}

function encodeVendorBlocks(def: OptionDef, value: OptionValue): Buffer {
  if (!Array.isArray(value)) throw invalid(def, 'vendor blocks are an array');
  const parts: Buffer[] = [];
  for (const v of value) {
    if (typeof v !== 'object' || v === null || !('enterpriseId' in v) || !isU32(v.enterpriseId) || !(v.data instanceof Uint8Array) || v.data.length > 255) {
      throw invalid(def, 'vendor block must be {enterpriseId, data (<= 255 bytes)}');
    }
    const h = Buffer.alloc(5);
    h.writeUInt32BE(v.enterpriseId);
    h[4] = v.data.length;
    parts.push(h, Buffer.from(v.data));
  }
  return Buffer.concat(parts);
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

// ---- text (Kea "data") --------------------------------------------------------------------------

function badText(def: OptionDef, text: string, why: string): WireError {
  return new WireError('BAD_VALUE', P, fieldOf(def), -1, `${JSON.stringify(text)}: ${why}`);
}

/**
 * Hex in any of Kea's spellings: "01:02:0a", "01 02 0a", "0x01020a", "01020a"; a 'single-quoted'
 * string gives its bytes. Empty text is zero bytes.
 */
export function parseHex(text: string, def: OptionDef): Buffer {
  const s = text.trim();
  if (s.length >= 2 && s.startsWith("'") && s.endsWith("'")) {
    const inner = s.slice(1, -1);
    if (/[^\x00-\xff]/.test(inner)) throw badText(def, text, 'quoted text must be 8-bit characters');
    return Buffer.from(inner, 'latin1');
  }
  if (s === '') return Buffer.alloc(0);
  if (/[: ]/.test(s)) {
    const bytes = s.split(/[: ]+/).map((o) => {
      if (!/^[0-9a-fA-F]{1,2}$/.test(o)) throw badText(def, text, `"${o}" is not a hex octet`);
      return parseInt(o, 16);
    });
    return Buffer.from(bytes);
  }
  let digits = s.startsWith('0x') || s.startsWith('0X') ? s.slice(2) : s;
  if (!/^[0-9a-fA-F]*$/.test(digits)) throw badText(def, text, 'not hexadecimal');
  if (digits.length % 2 === 1) digits = '0' + digits;
  return Buffer.from(digits, 'hex');
}

const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Colon hex ("ff:00:02"); on the server's per-packet path (identity keys), hence the table. */
export function formatHex(b: Uint8Array): string {
  if (b.length === 0) return '';
  let s = HEX_BYTE[b[0]!]!;
  for (let i = 1; i < b.length; i++) s += ':' + HEX_BYTE[b[i]!]!;
  return s;
}

function parseField(t: FieldType, text: string, def: OptionDef): FieldValue {
  const s = t === 'string' ? text : text.trim();
  const range = INT_RANGE[t];
  if (t === 'ipv4-address') {
    const v = tryParseIpv4(s);
    if (v === null) throw badText(def, text, 'not an IPv4 address');
    return v;
  }
  if (range !== undefined) {
    if (!/^-?(\d+|0x[0-9a-fA-F]+)$/.test(s)) throw badText(def, text, `not a ${t}`);
    const v = s.startsWith('-') ? -Number(s.slice(1)) : Number(s);
    if (!Number.isInteger(v) || v < range[0] || v > range[1]) throw badText(def, text, `out of range for ${t}`);
    return v;
  }
  switch (t) {
    case 'boolean':
      if (/^(true|1)$/i.test(s)) return true;
      if (/^(false|0)$/i.test(s)) return false;
      throw badText(def, text, 'boolean is true or false');
    case 'binary': return parseHex(s, def);
    case 'string': return text;
    default:
      encodeNames([s], false, fieldOf(def));
      return s.endsWith('.') && !s.endsWith('\\.') && s !== '.' ? s.slice(0, -1) : (s === '.' ? '' : s);
  }
}

function formatField(t: FieldType, v: FieldValue): string {
  if (t === 'ipv4-address' && typeof v === 'number') return ipv4ToString(v);
  if (v instanceof Uint8Array) return formatHex(v);
  return String(v);
}

/** Splits Kea csv text; empty text is no values. */
function splitCsv(text: string): string[] {
  return text.trim() === '' ? [] : text.split(',');
}

/** Kea "data" text to a value (e.g. interface-mtu "2044", routers "10.0.0.1, 10.0.0.2", hex for binary). */
export function parseValue(def: OptionDef, text: string): OptionValue {
  switch (def.type) {
    case 'empty':
      if (text.trim() !== '') throw badText(def, text, 'an empty option takes no data');
      return null;
    case 'classless-static-route':
      return splitCsv(text).map((item) => {
        const m = /^\s*(\S+)\/(\d{1,2})\s*-\s*(\S+)\s*$/.exec(item);
        const destination = m === null ? null : tryParseIpv4(m[1]!);
        const router = m === null ? null : tryParseIpv4(m[3]!);
        const prefixLength = m === null ? 33 : Number(m[2]);
        if (destination === null || router === null || prefixLength > 32) {
          throw badText(def, text, `"${item.trim()}" is not "subnet/len - router"`);
        }
        return { destination, prefixLength, router };
      });
    case 'suboptions': {
      const value = decodeSubOptions(def, parseHex(text, def), 0);
      return value.map((s) => ({ code: s.code, data: Buffer.from(s.data) }));
    }
    case 'vivso':
      return splitCsv(text).map((item) => {
        const m = /^\s*(\d+)\s*=\s*(.*)$/.exec(item);
        const id = m === null ? NaN : Number(m[1]);
        if (m === null || !isU32(id)) throw badText(def, text, `"${item.trim()}" is not "enterprise=hex"`);
        const data = parseHex(m[2]!, def);
        if (data.length > 255) throw badText(def, text, 'vendor data above 255 bytes');
        return { enterpriseId: id, data };
      });
    case 'record': {
      const items = splitCsv(text);
      const n = def.fields.length;
      const last = def.fields[n - 1]!;
      if (!def.array && (last === 'string' || last === 'binary') && items.length > n) {
        items.splice(n - 1, items.length - n + 1, items.slice(n - 1).join(','));
      }
      if (items.length < (def.array ? n - 1 : n) || (!def.array && items.length !== n)) {
        throw badText(def, text, `record needs ${n} comma-separated field(s)`);
      }
      return items.map((it, k) => parseField(def.fields[Math.min(k, n - 1)]!, it.trim(), def));
    }
    default: {
      const t = def.type;
      if (!def.array) return parseField(t, text, def);
      return splitCsv(text).map((it) => parseField(t, it, def));
    }
  }
}

/** A value back to Kea "data" text (parseValue's inverse). */
export function formatValue(def: OptionDef, value: OptionValue): string {
  switch (def.type) {
    case 'empty': return '';
    case 'classless-static-route':
      return (value as StaticRoute[]).map((r) => `${ipv4ToString(r.destination)}/${r.prefixLength} - ${ipv4ToString(r.router)}`).join(', ');
    case 'suboptions':
      return formatHex(encodeSubOptions(def, value));
    case 'vivso':
      return (value as VendorBlock[]).map((v) => `${v.enterpriseId}=${formatHex(v.data)}`).join(', ');
    case 'record': {
      const n = def.fields.length;
      return (value as FieldValue[]).map((v, k) => formatField(def.fields[Math.min(k, n - 1)]!, v)).join(', ');
    }
    default:
      if (def.array) return (value as FieldValue[]).map((v) => formatField(def.type as FieldType, v)).join(', ');
      return formatField(def.type as FieldType, value as FieldValue);
  }
}
