// Bounds-checked reads for decoders: each names the protocol, field and offset it failed at,
// so a short packet becomes a WireError instead of a RangeError (codec/contract.ts, point 1).

import { WireError } from './wire-error.js';

/** Throws TRUNCATED unless buf holds length bytes at offset. */
export function need(buf: Uint8Array, offset: number, length: number, protocol: string, field: string): void {
  if (offset < 0 || offset + length > buf.length) {
    throw new WireError('TRUNCATED', protocol, field, offset,
      `needs ${length} byte(s), ${Math.max(0, buf.length - offset)} available`);
  }
}

export function badValue(protocol: string, field: string, offset: number, detail: string): WireError {
  return new WireError('BAD_VALUE', protocol, field, offset, detail);
}

export function badLength(protocol: string, field: string, offset: number, detail: string): WireError {
  return new WireError('BAD_LENGTH', protocol, field, offset, detail);
}

/** Encode-side guard: a record field out of its wire range is a caller bug, reported as INVALID_RECORD. */
export function checkUint(protocol: string, field: string, value: number, bits: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new WireError('INVALID_RECORD', protocol, field, -1, `${value} does not fit in ${bits} unsigned bits`);
  }
}

export function checkBytes(protocol: string, field: string, value: Uint8Array, length: number): void {
  if (value.length !== length) {
    throw new WireError('INVALID_RECORD', protocol, field, -1, `must be ${length} bytes, got ${value.length}`);
  }
}
