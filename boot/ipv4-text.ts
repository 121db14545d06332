// IPv4 addresses, netmasks and prefixes as configuration files write them (RFC 4632 §3.1 prefixes;
// RFC 791 §3.2 classes, which ifconfig and RedHat's `ipcalc --netmask` still use for a default mask).

/** Dotted quad, four decimal octets, no leading '+' or blanks; returns the 32-bit value or null. */
export function parseIpv4(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = v * 256 + n;
  }
  return v >>> 0;
}

export function formatIpv4(v: number): string {
  return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff].join('.');
}

/** A contiguous netmask (255.255.255.0) to its prefix length, or null. */
export function netmaskToPrefix(s: string): number | null {
  const v = parseIpv4(s);
  if (v === null) return null;
  const inv = ~v >>> 0;
  if ((inv & (inv + 1)) !== 0) return null;
  return 32 - Math.log2(inv + 1);
}

/** '24' -> 24; null unless an integer 0..32. */
export function parsePrefix(s: string): number | null {
  if (!/^\d{1,2}$/.test(s)) return null;
  const n = Number(s);
  return n <= 32 ? n : null;
}

/** The classful mask ifconfig and `ipcalc --netmask` give an address without one (class A /8, B /16, C /24). */
export function classfulPrefix(addr: number): number {
  const top = addr >>> 24;
  if (top < 128) return 8;
  if (top < 192) return 16;
  return 24;
}

export function networkOf(addr: number, prefix: number): number {
  return prefix === 0 ? 0 : (addr & (~0 << (32 - prefix))) >>> 0;
}
