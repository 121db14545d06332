// IPv4 addresses as the DHCP layer carries them: unsigned 32-bit numbers (RFC 791 order, so
// 10.0.0.1 is 0x0a000001). Numbers decode and encode without allocating and make pool arithmetic
// and comparison trivial; these helpers are the only conversions to and from dotted text.

import { WireError } from '../codec/wire-error.js';

export function ipv4ToString(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses strict dotted-quad text; returns null when it is not one. */
export function tryParseIpv4(text: string): number | null {
  const m = DOTTED.exec(text.trim());
  if (m === null) return null;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const part = Number(m[i]);
    if (part > 255) return null;
    v = v * 256 + part;
  }
  return v;
}

/** Dotted-quad text to a number; a WireError (BAD_VALUE) names the field when the text is not an address. */
export function parseIpv4(text: string, field = 'ipv4-address'): number {
  const v = tryParseIpv4(text);
  if (v === null) throw new WireError('BAD_VALUE', 'DHCP', field, -1, `not an IPv4 address: ${JSON.stringify(text)}`);
  return v;
}

/** Network mask of a prefix length (0..32). */
export function prefixMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}
