// The one error type the lease stores throw; `code` is stable (scripts and the CLI key on it).

export type LeaseStoreErrorCode =
  | 'DB_CORRUPT'        // the file is not a readable SQLite database
  | 'DB_NOT_LEASE_DB'   // a database, but not one of ours (no schema_version table)
  | 'DB_TOO_NEW'        // written by a newer program: schema version above what we know
  | 'DB_MISSING'        // asked to open an existing database that is not there
  | 'DB_UNAVAILABLE'    // PostgreSQL unreachable, and retrying with backoff did not bring it back in time
  | 'DB_IO'             // the database reported an I/O or other failure
  | 'CONFLICT'          // the address already has a lease, or the version read is stale
  | 'NOT_FOUND'         // no lease at that address
  | 'NO_POOL'           // allocate() named a pool that configurePools() did not declare
  | 'POOL_EXHAUSTED'    // no free address left in the pool
  | 'BAD_INPUT'         // a lease or argument outside its range (address, 20-byte hwaddr, ...)
  | 'CLOSED';           // the store was closed

export class LeaseStoreError extends Error {
  override readonly name = 'LeaseStoreError';
  constructor(
    readonly code: LeaseStoreErrorCode,
    /** The database (file or URL) the error is about. */
    readonly location: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${location}: ${detail}`, options);
  }
}

export function isLeaseStoreError(err: unknown, code?: LeaseStoreErrorCode): err is LeaseStoreError {
  return err instanceof LeaseStoreError && (code === undefined || err.code === code);
}
