// The messages between SqliteWorkerStore (main thread) and sqlite-worker.ts (its worker thread).
// postMessage's structured clone keeps bigint, null and nested objects, but hands a Buffer over as
// a plain Uint8Array: both sides turn those back into Buffers (reviveBuffers), without copying.
import type { LeaseStoreErrorCode } from './errors.js';
import type { LeaseStore } from './lease.js';

/** The LeaseStore methods the worker runs (everything but the read-only properties). */
export type StoreMethod = Exclude<keyof LeaseStore, 'backend' | 'location'>;

export const STORE_METHODS: ReadonlySet<string> = new Set<StoreMethod>([
  'configurePools', 'add', 'update', 'delete', 'get', 'getByClientId', 'getByPortGuid', 'getByHwaddr', 'list',
  'allocate', 'decline', 'release', 'expire', 'stats', 'close',
]);

/**
 * Writes whose result the caller can build from its own argument (the row as written, with the
 * version the store gives it): the worker answers them without the lease, which saves cloning it
 * back and turning its Uint8Arrays into Buffers again on the per-packet path.
 */
export const ECHOED_WRITES: ReadonlySet<string> = new Set(['add', 'update']);

export interface WorkerInit {
  file: string;
  /** SqliteOptions (plain data). */
  options: Record<string, unknown>;
}

export type WorkerReady = { ready: true } | { ready: false; error: ErrorInfo };

export interface Call {
  id: number;
  method: string;
  args: unknown[];
}

export interface ErrorInfo {
  code: LeaseStoreErrorCode;
  location: string;
  detail: string;
}

export interface ReplyResult {
  id: number;
  value?: unknown;
  error?: ErrorInfo;
}

export interface Reply {
  results: ReplyResult[];
  /** The worker store's transaction counters after this batch. */
  commits: { transactions: number; writes: number };
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * A value as it crossed the thread boundary, with its Uint8Arrays as Buffers again: the value
 * itself, an array's elements, and an object's own properties (leases, requests, stats rows are
 * one level deep; a list of leases is two).
 */
export function reviveBuffers(v: unknown): unknown {
  if (v instanceof Uint8Array) return asBuffer(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = reviveBuffers(v[i]);
    return v;
  }
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    for (const k in o) {
      const x = o[k];
      if (x instanceof Uint8Array) o[k] = asBuffer(x);
    }
  }
  return v;
}
