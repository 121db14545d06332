// Domain names inside DHCP options: RFC 1035 §3.1 (labels) and §4.1.4 (compression), as option 119
// uses them (RFC 3397 §2: pointers are relative to the start of the option's concatenated data).
// Text form: labels joined by '.', no trailing dot, the root is ''; '.', '\' and bytes outside
// printable ASCII inside a label are escaped as \. \\ \DDD (RFC 1035 §5.1), so text round-trips.

import { WireError } from '../codec/wire-error.js';
import { MAX_DOMAIN_NAME_LENGTH, MAX_LABEL_LENGTH, MAX_NAME_POINTERS } from './limits.js';

const P = 'DHCP';

function labelText(data: Buffer, start: number, len: number): string {
  let s = '';
  for (let i = start; i < start + len; i++) {
    const b = data[i]!;
    if (b === 0x2e || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b > 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\' + b.toString().padStart(3, '0');
  }
  return s;
}

/**
 * Reads one name at `pos` of `data` (the whole option data, which pointers index). Returns the name
 * and the position after it in the original sequence. Every pointer must point before the start of
 * the segment that contains it, so reading always terminates.
 */
export function decodeName(data: Buffer, pos: number, field: string, base = 0): [string, number] {
  const labels: string[] = [];
  let wire = 1;
  let i = pos;
  let segmentStart = pos;
  let after = -1;
  let jumps = 0;
  for (;;) {
    if (i >= data.length) throw new WireError('TRUNCATED', P, field, base + i, 'domain name runs past the end of the option');
    const len = data[i]!;
    if (len === 0) { i++; break; }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (i + 1 >= data.length) throw new WireError('TRUNCATED', P, field, base + i, 'compression pointer cut short');
      const target = ((len & 0x3f) << 8) | data[i + 1]!;
      if (target >= segmentStart) {
        throw new WireError('BAD_VALUE', P, field, base + i, `compression pointer to ${target} does not point backwards`);
      }
      if (++jumps > MAX_NAME_POINTERS) throw new WireError('LIMIT', P, field, base + i, 'too many compression pointers');
      if (after < 0) after = i + 2;
      i = target;
      segmentStart = target;
      continue;
    }
    if (kind !== 0) throw new WireError('BAD_VALUE', P, field, base + i, `label type 0x${kind.toString(16)} is not supported`);
    if (i + 1 + len > data.length) throw new WireError('TRUNCATED', P, field, base + i, `label of ${len} bytes runs past the end`);
    wire += len + 1;
    if (wire > MAX_DOMAIN_NAME_LENGTH) {
      throw new WireError('BAD_VALUE', P, field, base + i, `domain name longer than ${MAX_DOMAIN_NAME_LENGTH} bytes`);
    }
    labels.push(labelText(data, i + 1, len));
    i += 1 + len;
  }
  return [labels.join('.'), after < 0 ? i : after];
}

/** Splits name text into label bytes, undoing the escapes; '' and '.' are the root. */
export function nameLabels(name: string, field: string): Buffer[] {
  if (name === '' || name === '.') return [];
  const text = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  const labels: Buffer[] = [];
  let cur: number[] = [];
  const bad = (why: string): WireError => new WireError('INVALID_RECORD', P, field, -1, `${why} in domain name ${JSON.stringify(name)}`);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (cur.length === 0) throw bad('empty label');
      labels.push(Buffer.from(cur)); cur = [];
    } else if (c === 0x5c) {
      const d = /^\d{3}/.exec(text.slice(i + 1, i + 4));
      if (d !== null) {
        const v = Number(d[0]);
        if (v > 255) throw bad('escape above 255');
        cur.push(v); i += 3;
      } else if (i + 1 < text.length) {
        cur.push(text.charCodeAt(++i));
      } else throw bad('dangling backslash');
    } else if (c > 0x7f) {
      throw bad('non-ASCII character');
    } else cur.push(c);
    if (cur.length > MAX_LABEL_LENGTH) throw bad(`label longer than ${MAX_LABEL_LENGTH} bytes`);
  }
  if (cur.length === 0) throw bad('empty label');
  labels.push(Buffer.from(cur));
  let wire = 1;
  for (const l of labels) wire += l.length + 1;
  if (wire > MAX_DOMAIN_NAME_LENGTH) throw bad(`longer than ${MAX_DOMAIN_NAME_LENGTH} bytes`);
  return labels;
}

/**
 * Encodes names back to back; with `compress`, a suffix already written becomes a pointer (RFC 1035
 * §4.1.4, as RFC 3397 recommends for option 119). Suffixes match byte for byte, so case survives.
 */
export function encodeNames(names: readonly string[], compress: boolean, field: string): Buffer {
  const parts: Buffer[] = [];
  const seen = new Map<string, number>();
  let pos = 0;
  for (const name of names) {
    const labels = nameLabels(name, field);
    let k = 0;
    for (; k < labels.length; k++) {
      if (compress) {
        const key = labels.slice(k).map((l) => l.toString('hex')).join('.');
        const at = seen.get(key);
        if (at !== undefined) {
          parts.push(Buffer.from([0xc0 | (at >> 8), at & 0xff]));
          pos += 2;
          break;
        }
        if (pos < 0x4000) seen.set(key, pos);
      }
      const l = labels[k]!;
      parts.push(Buffer.from([l.length]), l);
      pos += 1 + l.length;
    }
    if (k === labels.length) { parts.push(Buffer.from([0])); pos += 1; }
  }
  return Buffer.concat(parts);
}
