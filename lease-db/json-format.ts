// The lease list as JSON: one object per lease, addresses dotted, identifiers colon hex, times
// ISO 8601 UTC, so the file is readable and diffable; parseJsonLeases reads it back exactly.
import { formatGuid, formatIPv4, fromColonHex, parseGuid, parseIPv4, toColonHex, checkLease } from './address.js';
import { LeaseStoreError } from './errors.js';
import type { ImportResult } from './isc-leases.js';
import { LEASE_STATES, type Lease, type LeaseState, type NewLease } from './lease.js';

export interface JsonLease {
  address: string;
  subnetId: number;
  clientId: string | null;
  portGuid: string | null;
  hwaddr: string | null;
  hostname: string | null;
  state: LeaseState;
  start: string;
  expiry: string;
  server: string;
  version: number;
}

const iso = (t: number): string => new Date(t * 1000).toISOString().replace('.000Z', 'Z');

export function toJsonLease(l: Lease): JsonLease {
  return {
    address: formatIPv4(l.address), subnetId: l.subnetId,
    clientId: l.clientId === null ? null : toColonHex(l.clientId),
    portGuid: l.portGuid === null ? null : formatGuid(l.portGuid),
    hwaddr: l.hwaddr === null ? null : toColonHex(l.hwaddr),
    hostname: l.hostname, state: l.state, start: iso(l.start), expiry: iso(l.expiry), server: l.server, version: l.version,
  };
}

export function formatJsonLeases(leases: Iterable<Lease>): string {
  return JSON.stringify({ leases: [...leases].map(toJsonLease) }, null, 2) + '\n';
}

export function parseJsonLeases(text: string, file: string): ImportResult {
  let doc: unknown;
  try { doc = JSON.parse(text); } catch (err) {
    throw new LeaseStoreError('BAD_INPUT', file, `not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const list = (doc as { leases?: unknown }).leases;
  if (!Array.isArray(list)) throw new LeaseStoreError('BAD_INPUT', file, 'expected an object with a "leases" array');
  const leases: NewLease[] = [];
  const skipped: ImportResult['skipped'] = [];
  list.forEach((raw: Partial<Record<keyof JsonLease, unknown>>, n) => {
    const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
    const time = (v: unknown): number => Math.floor(Date.parse(str(v) ?? '') / 1000);
    const address = parseIPv4(str(raw.address) ?? '');
    const cid = str(raw.clientId), hw = str(raw.hwaddr), g = str(raw.portGuid);
    const l: NewLease = {
      address: address ?? -1, subnetId: Number(raw.subnetId),
      clientId: cid === null ? null : fromColonHex(cid), hwaddr: hw === null ? null : fromColonHex(hw),
      portGuid: g === null ? null : parseGuid(g), hostname: str(raw.hostname),
      state: (LEASE_STATES as readonly unknown[]).includes(raw.state) ? (raw.state as LeaseState) : ('?' as LeaseState),
      start: time(raw.start), expiry: time(raw.expiry), server: str(raw.server) ?? 'import',
    };
    try { checkLease(l, file); leases.push(l); } catch (err) {
      skipped.push({ line: n + 1, reason: err instanceof Error ? err.message : String(err) });
    }
  });
  return { leases, skipped };
}
