// Text forms at the edges of the store: dotted IPv4, colon hex for identifiers, hex port GUIDs,
// and the checks every backend applies to a lease before writing it.
import { LeaseStoreError } from './errors.js';
import { LEASE_STATES, type NewLease } from './lease.js';

export const HWADDR_LENGTH = 20;
const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** 10.0.0.5 -> 0x0a000005; null when the text is not a dotted quad. */
export function parseIPv4(text: string): number | null {
  const m = DOTTED.exec(text.trim());
  if (m === null) return null;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = Number(m[i]);
    if (part > 255) return null;
    n = n * 256 + part;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** "10.1.0.0/16" -> first and last address of the prefix. */
export function parseCidr(text: string): { first: number; last: number } | null {
  const [a, p] = text.split('/');
  const base = a === undefined ? null : parseIPv4(a);
  const len = p === undefined ? 32 : Number(p);
  if (base === null || !Number.isInteger(len) || len < 0 || len > 32) return null;
  const size = 2 ** (32 - len);
  const first = base - (base % size);
  return { first, last: first + size - 1 };
}

/** Bytes as lowercase colon-separated hex, as Kea and ISC print identifiers ("01:02:0a"). */
export function toColonHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Colon, dash or unseparated hex -> bytes; null if the text is not hex. Single digits are allowed between colons ("1:2:a"). */
export function fromColonHex(text: string): Buffer | null {
  const t = text.trim();
  if (t === '') return Buffer.alloc(0);
  if (/[:-]/.test(t)) {
    const parts = t.split(/[:-]/);
    if (!parts.every((p) => /^[0-9a-f]{1,2}$/i.test(p))) return null;
    return Buffer.from(parts.map((p) => parseInt(p, 16)));
  }
  if (!/^([0-9a-f]{2})+$/i.test(t)) return null;
  return Buffer.from(t, 'hex');
}

/** A port GUID as 16 hex digits, the way ibstat and OpenSM print it with 0x. */
export function formatGuid(g: bigint): string {
  return `0x${g.toString(16).padStart(16, '0')}`;
}

export function parseGuid(text: string): bigint | null {
  const t = text.trim().replace(/:/g, '');
  if (!/^(0x)?[0-9a-f]{1,16}$/i.test(t)) return null;
  return BigInt(t.startsWith('0x') || t.startsWith('0X') ? t : `0x${t}`);
}

const U32 = 0xffff_ffff;

/** Throws BAD_INPUT unless the lease fits the schema (what SQL would otherwise reject less clearly). */
export function checkLease(l: NewLease, location: string): void {
  const bad = (field: string, why: string): never => {
    throw new LeaseStoreError('BAD_INPUT', location, `lease ${formatIPv4(l.address >>> 0)}: ${field} ${why}`);
  };
  if (!Number.isInteger(l.address) || l.address < 0 || l.address > U32) bad('address', `${l.address} is not an IPv4 address`);
  if (!Number.isInteger(l.subnetId) || l.subnetId < 0 || l.subnetId > U32) bad('subnetId', `${l.subnetId} is not a 32-bit id`);
  if (l.clientId !== null && (l.clientId.length < 1 || l.clientId.length > 255)) bad('clientId', `is ${l.clientId.length} bytes (1..255)`);
  if (l.hwaddr !== null && l.hwaddr.length !== HWADDR_LENGTH) bad('hwaddr', `is ${l.hwaddr.length} bytes, not ${HWADDR_LENGTH}`);
  if (l.portGuid !== null && (l.portGuid < 0n || l.portGuid >= 1n << 64n)) bad('portGuid', 'is not a 64-bit GUID');
  if (!LEASE_STATES.includes(l.state)) bad('state', `'${String(l.state)}' is not one of ${LEASE_STATES.join(', ')}`);
  if (!Number.isSafeInteger(l.start) || !Number.isSafeInteger(l.expiry)) bad('start/expiry', 'must be whole seconds');
  if (l.hostname !== null && l.hostname.length > 255) bad('hostname', 'is longer than 255 characters');
}
