// Real I/O inside a virtual-time run. VirtualScheduler.run() jumps to the next timer whenever one
// turn of the event loop settles nothing; a lease write that takes 2 ms of real time on a SQLite
// worker thread or a PostgreSQL connection would then last as many timer jumps as the event loop
// turns in 2 ms: tens or hundreds of virtual seconds once the timer queue is sparse (bound clients,
// retransmissions 64 s apart). The server's ACK, sent only when its write is durable, then arrives
// after the client gave up on that transaction. So the clock is held while the database works, and
// the fabric's timing stays what the emulation decides, not what the machine's disk does.
//
// It is held at a horizon, not at once: an operation started at virtual time t lets the run go on
// up to t + VIRTUAL_IO_MS and holds it there until the operation settles. The database is thereby
// modelled as answering within VIRTUAL_IO_MS (a durable commit on an SSD: a fraction of a millisecond
// to a few), and the rest of the cluster keeps working meanwhile: requests of other hosts in that
// window reach the server and join its next group commit, as they would on a real server. Holding
// at once (a write takes no virtual time) let nothing else happen during a commit, so every group
// commit held one lease and the run spent a fifth of the DHCP phase idle, waiting for fsyncs.
import type { LeaseStore } from '../../lease-db/lease.js';
import type { VirtualScheduler } from '../../link/fabric/scheduler.js';

/** The longest virtual time a lease-database operation may take (see above). */
export const VIRTUAL_IO_MS = 2;

/**
 * The store, with virtual time held at (start + horizonMs) while an operation started at `start` is
 * in flight (VirtualScheduler.hold: the run waits for the operation, it does not spin).
 */
export function holdClockDuringIo(store: LeaseStore, scheduler: VirtualScheduler, horizonMs = VIRTUAL_IO_MS): LeaseStore {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      let w = wrapped.get(prop);
      if (w === undefined) {
        const fn = v as (...args: unknown[]) => unknown;
        w = (...args: unknown[]): unknown => {
          const r = fn.apply(target, args);
          if (r instanceof Promise) scheduler.hold(scheduler.now() + horizonMs, r);
          return r;
        };
        wrapped.set(prop, w);
      }
      return w;
    },
  });
}
