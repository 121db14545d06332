// The lease record and the LeaseStore interface every backend implements: Kea's LeaseMgr
// (src/lib/dhcpsrv/lease_mgr.h) reduced to what an RFC 2131 server on IPoIB needs, plus the
// atomic reserve-and-allocate that several servers sharing one pool need (DESIGN.md, Data).

/**
 * States a lease moves through. `offered` and `bound` hold the address; `declined` holds it until
 * `expiry` (the hold-off); `released` and `expired` leave it free for the next client.
 */
export type LeaseState = 'offered' | 'bound' | 'released' | 'expired' | 'declined';
export const LEASE_STATES: readonly LeaseState[] = ['offered', 'bound', 'released', 'expired', 'declined'];

/**
 * One lease. Addresses are IPv4 as unsigned 32-bit integers (10.0.0.5 = 0x0a000005): pools are
 * ranges, the free index is an offset into a bitmap, SQL sorts and pages them as integers, and
 * nothing is parsed on the hot path; dotted text appears only at the edges (CLI, export).
 * Times are whole seconds since the Unix epoch, as in ISC's and Kea's lease files.
 */
export interface Lease {
  address: number;
  subnetId: number;
  /** Option 61 as received (RFC 4390 / RFC 4361 bytes); null when the client sent none. */
  clientId: Buffer | null;
  /** The client's port GUID (from its RFC 4390 client identifier or the link), when known. */
  portGuid: bigint | null;
  /** The client's 20-byte IPoIB hardware address, when the server saw it on our link. */
  hwaddr: Buffer | null;
  hostname: string | null;
  state: LeaseState;
  start: number;
  expiry: number;
  /** The server that last wrote the lease (its name or server identifier). */
  server: string;
  /** Bumped by every write; update() succeeds only against the version it read. */
  version: number;
}

/** What add() takes: a lease without a version (the store assigns 1). */
export type NewLease = Omit<Lease, 'version'>;

/** A range of addresses the store allocates from; `first` and `last` are inclusive. */
export interface Pool {
  id: number;
  subnetId: number;
  first: number;
  last: number;
}

export interface AllocateRequest {
  poolId: number;
  clientId: Buffer | null;
  portGuid?: bigint | null;
  hwaddr?: Buffer | null;
  hostname?: string | null;
  state: 'offered' | 'bound';
  /** Seconds from `now` until the lease expires. */
  lifetime: number;
  now: number;
  server: string;
}

export interface ListQuery {
  subnetId?: number;
  state?: LeaseState;
  /** Keyset paging: only addresses greater than this one (pass the last address of the previous page). */
  after?: number;
  /** Page size; the store caps it at 10,000. */
  limit?: number;
}

export interface PoolStats {
  subnetId: number;
  /** Absent on the per-subnet total row. */
  poolId?: number;
  total: number;
  /** Leases that hold an address for a client: offered or bound. */
  assigned: number;
  declined: number;
  free: number;
}

/**
 * Every method is async; a write's promise resolves only once the write is durable (fsync'd for
 * SQLite, committed for PostgreSQL), so the server never acknowledges a lease that a crash could
 * take back. Errors are LeaseStoreError with a stable code.
 */
export interface LeaseStore {
  readonly backend: 'sqlite' | 'postgresql';
  /** Where the leases live, for messages: a file name or a PostgreSQL URL without password. */
  readonly location: string;

  /** Declares the pools to allocate from and rebuilds the free-address index from the database. */
  configurePools(pools: readonly Pool[]): Promise<void>;

  /** Inserts a new lease; CONFLICT if the address already has one. */
  add(lease: NewLease): Promise<Lease>;
  /** Replaces the lease at lease.address if its stored version is lease.version; CONFLICT otherwise. */
  update(lease: Lease): Promise<Lease>;
  /** Removes the lease at an address; false if there was none. */
  delete(address: number): Promise<boolean>;

  get(address: number): Promise<Lease | null>;
  /** The client's lease in a subnet (the newest if history left several). */
  getByClientId(subnetId: number, clientId: Buffer): Promise<Lease | null>;
  getByPortGuid(portGuid: bigint): Promise<Lease[]>;
  getByHwaddr(hwaddr: Buffer): Promise<Lease[]>;
  /** Leases in address order, filtered by subnet and/or state, one page at a time. */
  list(query?: ListQuery): Promise<Lease[]>;

  /**
   * Atomically takes the next free address of a pool (no lease, or one released, expired or past
   * its expiry) and writes the client's lease on it. POOL_EXHAUSTED when none is left.
   */
  allocate(req: AllocateRequest): Promise<Lease>;
  /** Marks an address declined (RFC 2131 §4.3.3) until now + holdOff seconds. */
  decline(address: number, holdOff: number, now: number, server: string): Promise<Lease>;
  /** Marks the lease released if it belongs to clientId (any client when null); null if it does not. */
  release(address: number, clientId: Buffer | null, now: number, server: string): Promise<Lease | null>;
  /** Moves up to `limit` leases whose expiry has passed to `expired` and returns them (the sweep). */
  expire(now: number, limit?: number): Promise<Lease[]>;

  /** Per-pool rows, then one total row per subnet (without poolId), counted at `now` (default: the clock). */
  stats(now?: number): Promise<PoolStats[]>;

  close(): Promise<void>;
}

/** States that keep an address out of the free pool (declined only until its hold-off ends). */
export function holdsAddress(l: Pick<Lease, 'state' | 'expiry'>, now: number): boolean {
  return (l.state === 'offered' || l.state === 'bound' || l.state === 'declined') && l.expiry > now;
}
