// The option area of a DHCP message: RFC 2132 §2-3 (PAD, END, TLVs), RFC 2131 §4.1 and RFC 2132 §9.3
// (option overload: options continue in 'file', then 'sname'), RFC 3396 (an option longer than 255
// bytes is split into several instances, and every instance of a code is concatenated on decode).

import { WireError } from '../codec/wire-error.js';
import {
  FILE_LENGTH, OPTIONS_OFFSET, OVERLOAD_FILE, OVERLOAD_SNAME, OptionCode, SNAME_LENGTH,
} from './dhcp-constants.js';
import { BOOTP_MIN_LENGTH, MAX_MESSAGE_SIZE, MAX_OPTION_INSTANCES } from './limits.js';

const P = 'DHCP';
const SNAME_OFFSET = 44;
const FILE_OFFSET = 108;

/**
 * One option as carried on the wire: its code and its (concatenated, RFC 3396) data. The typed view
 * of the data is option-defs.ts / option-types.ts; the message codec never needs it, so unknown and
 * malformed option contents survive untouched.
 */
export interface DhcpOption {
  code: number;
  /** On decode, a view of the input buffer unless RFC 3396 concatenation had to copy. */
  data: Buffer;
}

/** Where a decoded option area sits; names the field in errors ("file.options[52]"). */
type Area = 'options' | 'file' | 'sname';

interface Accumulator {
  options: DhcpOption[];
  /** Later instances of a code already seen (RFC 3396), keyed by code; null until the first repeat. */
  extra: Map<number, Buffer[]> | null;
  instances: number;
  overloadOffset: number;
}

function fieldName(area: Area, code: number): string {
  return area === 'options' ? `options[${code}]` : `${area}.options[${code}]`;
}

function scanArea(buf: Buffer, start: number, end: number, area: Area, acc: Accumulator): void {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === OptionCode.PAD) { i++; continue; }
    if (code === OptionCode.END) return;
    if (i + 1 >= end) {
      throw new WireError('TRUNCATED', P, fieldName(area, code), i, `option ${code} has no length byte before the end of ${area}`);
    }
    const len = buf[i + 1]!;
    if (i + 2 + len > end) {
      throw new WireError('BAD_LENGTH', P, fieldName(area, code), i + 1,
        `length ${len} runs past the end of ${area} (${end - i - 2} byte(s) left)`);
    }
    if (++acc.instances > MAX_OPTION_INSTANCES) {
      throw new WireError('LIMIT', P, 'options', i, `more than ${MAX_OPTION_INSTANCES} option instances`);
    }
    if (code === OptionCode.OPTION_OVERLOAD) {
      if (area !== 'options') {
        // MAX_OVERLOAD_DEPTH: option 52 is only honoured in the options field, so it can never loop.
        throw new WireError('BAD_VALUE', P, fieldName(area, code), i, `option overload inside the overloaded ${area} field`);
      }
      if (acc.overloadOffset < 0) acc.overloadOffset = i;
    }
    const data = buf.subarray(i + 2, i + 2 + len);
    const opts = acc.options;
    let seen = false;
    for (let k = 0; k < opts.length; k++) {
      if (opts[k]!.code === code) { seen = true; break; }
    }
    if (!seen) {
      opts.push({ code, data });
    } else {
      acc.extra ??= new Map();
      const parts = acc.extra.get(code);
      if (parts === undefined) acc.extra.set(code, [data]); else parts.push(data);
    }
    i += 2 + len;
  }
}

export interface DecodedOptionAreas {
  options: DhcpOption[];
  /** Option 52's value (0 when absent): which of file (1) and sname (2) held options. */
  overload: number;
}

/**
 * Reads the options field of the message at `base` (cookie already checked) up to `end`, and file then
 * sname when option 52 says so. Option 52 itself is framing and is not returned.
 */
export function decodeOptionAreas(buf: Buffer, base: number, end: number): DecodedOptionAreas {
  const acc: Accumulator = { options: [], extra: null, instances: 0, overloadOffset: -1 };
  scanArea(buf, base + OPTIONS_OFFSET, end, 'options', acc);
  let overload = 0;
  if (acc.overloadOffset >= 0) {
    const at = acc.overloadOffset;
    const idx = acc.options.findIndex((o) => o.code === OptionCode.OPTION_OVERLOAD);
    const first = acc.options[idx]!;
    if (first.data.length !== 1 || acc.extra?.has(OptionCode.OPTION_OVERLOAD) === true) {
      throw new WireError('BAD_LENGTH', P, 'options[52]', at + 1, 'option overload must be exactly 1 byte');
    }
    overload = first.data[0]!;
    if (overload < 1 || overload > 3) {
      throw new WireError('BAD_VALUE', P, 'options[52]', at + 2, `option overload value ${overload} is not 1, 2 or 3`);
    }
    acc.options.splice(idx, 1);
    if ((overload & OVERLOAD_FILE) !== 0) scanArea(buf, base + FILE_OFFSET, base + FILE_OFFSET + FILE_LENGTH, 'file', acc);
    if ((overload & OVERLOAD_SNAME) !== 0) scanArea(buf, base + SNAME_OFFSET, base + SNAME_OFFSET + SNAME_LENGTH, 'sname', acc);
  }
  if (acc.extra !== null) {
    for (const opt of acc.options) {
      const parts = acc.extra.get(opt.code);
      if (parts !== undefined) opt.data = Buffer.concat([opt.data, ...parts]);
    }
  }
  return { options: acc.options, overload };
}

/** Wire bytes of one option once split into instances of at most 255 bytes (RFC 3396). */
export function optionWireLength(dataLength: number): number {
  return dataLength === 0 ? 2 : dataLength + 2 * Math.ceil(dataLength / 255);
}

function invalid(field: string, detail: string): WireError {
  return new WireError('INVALID_RECORD', P, field, -1, detail);
}

/** Encode-side checks: codes 1..254 except 52 (the codec owns it), each code once, data a Buffer. */
export function checkOptions(options: readonly DhcpOption[]): void {
  // A bitmap in a plain array: allocating a typed array costs more than the whole check.
  const seen = [0, 0, 0, 0, 0, 0, 0, 0];
  for (const opt of options) {
    const { code, data } = opt;
    if (!Number.isInteger(code) || code < 1 || code > 254) throw invalid('options', `option code ${code} is not 1..254`);
    if (code === OptionCode.OPTION_OVERLOAD) throw invalid('options[52]', 'option overload is chosen by the encoder, not given');
    if (!(data instanceof Uint8Array)) throw invalid(`options[${code}]`, 'data must be a Buffer');
    if (data.length > MAX_MESSAGE_SIZE) throw invalid(`options[${code}]`, `${data.length} bytes cannot fit any message`);
    const word = code >> 5;
    const bit = 1 << (code & 31);
    if ((seen[word]! & bit) !== 0) throw invalid(`options[${code}]`, 'code appears twice; RFC 3396 instances are one option');
    seen[word]! |= bit;
  }
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

interface Region { start: number; room: number; used: number }

/**
 * Lays the options out for a DHCP payload of at most `payloadLimit` bytes and returns the message
 * length. Writes into `out` (message at `base`) when given, else only measures. When the options do not
 * fit the options field, they continue in file, then sname (RFC 2131 §4.1), whichever of the two the
 * record leaves all-zero; option 52 is put first. A short option moves whole to the next area when it
 * fits there; a long one is split across areas (RFC 3396). `options` must have passed checkOptions().
 */
export function layoutOptions(
  options: readonly DhcpOption[], sname: Buffer, file: Buffer, payloadLimit: number, out: Buffer | null, base: number,
): number {
  const room = payloadLimit - OPTIONS_OFFSET;
  let total = 1;
  for (let k = 0; k < options.length; k++) total += optionWireLength(options[k]!.data.length);
  if (total <= room) {
    let p = base + OPTIONS_OFFSET;
    const length = Math.max(BOOTP_MIN_LENGTH, OPTIONS_OFFSET + total);
    if (out !== null) {
      for (let k = 0; k < options.length; k++) p = writeWhole(out, p, options[k]!);
      out[p++] = OptionCode.END;
      out.fill(0, p, base + length);
    }
    return length;
  }
  const regions: Region[] = [{ start: base + OPTIONS_OFFSET + 3, room: room - 3 - 1, used: 0 }];
  const fileFree = isZero(file);
  const snameFree = isZero(sname);
  if (fileFree) regions.push({ start: base + FILE_OFFSET, room: FILE_LENGTH - 1, used: 0 });
  if (snameFree) regions.push({ start: base + SNAME_OFFSET, room: SNAME_LENGTH - 1, used: 0 });
  const tooBig = (): WireError => new WireError('LIMIT', P, 'options', -1,
    `options need ${total} bytes; ${room} fit in the options field of a ${payloadLimit}-byte message` +
    (fileFree || snameFree ? ' even with file/sname overload' : ' and file/sname are in use'));
  if (regions.length === 1) throw tooBig();
  let r = 0;
  for (const opt of options) {
    const data = opt.data;
    const len = data.length;
    let from = 0;
    let first = true;
    while (first || from < len) {
      const reg = regions[r]!;
      const free = reg.room - reg.used;
      const rest = len - from;
      const whole = rest === 0 ? 2 : rest + 2 * Math.ceil(rest / 255);
      if (whole <= free) {
        if (out !== null) {
          let p = reg.start + reg.used;
          while (first || from < len) {
            const n = Math.min(255, len - from);
            out[p] = opt.code; out[p + 1] = n; data.copy(out, p + 2, from, from + n);
            p += 2 + n; from += n; first = false;
          }
        } else {
          from = len; first = false;
        }
        reg.used += whole;
        break;
      }
      const next = regions[r + 1];
      if (next === undefined) throw tooBig();
      if (!(len <= 255 && first && whole <= next.room) && free >= 3) {
        const n = Math.min(255, rest, free - 2);
        if (out !== null) {
          const p = reg.start + reg.used;
          out[p] = opt.code; out[p + 1] = n; data.copy(out, p + 2, from, from + n);
        }
        reg.used += 2 + n; from += n; first = false;
      }
      r++;
    }
  }
  let overload = 0;
  for (let k = 1; k < regions.length; k++) {
    if (regions[k]!.used > 0) overload |= regions[k]!.start === base + FILE_OFFSET ? OVERLOAD_FILE : OVERLOAD_SNAME;
  }
  const main = regions[0]!;
  const length = Math.max(BOOTP_MIN_LENGTH, OPTIONS_OFFSET + 3 + main.used + 1);
  if (out !== null) {
    const o = base + OPTIONS_OFFSET;
    out[o] = OptionCode.OPTION_OVERLOAD; out[o + 1] = 1; out[o + 2] = overload;
    let p = main.start + main.used;
    out[p++] = OptionCode.END;
    out.fill(0, p, base + length);
    for (let k = 1; k < regions.length; k++) {
      const reg = regions[k]!;
      const size = reg.room + 1;
      if (reg.used > 0) {
        out[reg.start + reg.used] = OptionCode.END;
        out.fill(0, reg.start + reg.used + 1, reg.start + size);
      }
    }
  }
  return length;
}

function writeWhole(out: Buffer, p: number, opt: DhcpOption): number {
  const data = opt.data;
  const len = data.length;
  if (len <= 255) {
    out[p] = opt.code; out[p + 1] = len;
    if (len > 0) data.copy(out, p + 2);
    return p + 2 + len;
  }
  for (let from = 0; from < len; from += 255) {
    const n = Math.min(255, len - from);
    out[p] = opt.code; out[p + 1] = n; data.copy(out, p + 2, from, from + n);
    p += 2 + n;
  }
  return p;
}

/** The data of option `code`, or undefined. */
export function findOption(options: readonly DhcpOption[], code: number): Buffer | undefined {
  for (let k = 0; k < options.length; k++) {
    const o = options[k]!;
    if (o.code === code) return o.data;
  }
  return undefined;
}
