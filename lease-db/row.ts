// Database rows <-> Lease, shared by both backends. SQLite hands integers back as bigint (the
// connection reads 64-bit GUIDs safely) and PostgreSQL hands BIGINT back as text, so every
// numeric column goes through one conversion here.
import { LEASE_STATES, type Lease, type LeaseState } from './lease.js';

export interface LeaseRow {
  address: number | bigint | string;
  subnet_id: number | bigint | string;
  client_id: Uint8Array | null;
  port_guid: number | bigint | string | null;
  hwaddr: Uint8Array | null;
  hostname: string | null;
  state: string;
  start_time: number | bigint | string;
  expiry: number | bigint | string;
  server: string;
  version: number | bigint | string;
}

const buf = (b: Uint8Array | null): Buffer | null =>
  b === null ? null : Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export function rowToLease(r: LeaseRow): Lease {
  return {
    address: Number(r.address),
    subnetId: Number(r.subnet_id),
    clientId: buf(r.client_id),
    // Stored signed (both SQL dialects have only signed 64-bit integers); GUIDs are unsigned.
    portGuid: r.port_guid === null ? null : BigInt.asUintN(64, BigInt(r.port_guid)),
    hwaddr: buf(r.hwaddr),
    hostname: r.hostname,
    state: (LEASE_STATES as readonly string[]).includes(r.state) ? (r.state as LeaseState) : 'expired',
    start: Number(r.start_time),
    expiry: Number(r.expiry),
    server: r.server,
    version: Number(r.version),
  };
}

/** The GUID as the signed 64-bit value the databases store. */
export function guidParam(g: bigint | null): bigint | null {
  return g === null ? null : BigInt.asIntN(64, g);
}
