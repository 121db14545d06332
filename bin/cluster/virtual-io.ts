// Real I/O inside a virtual-time run. VirtualScheduler.run() jumps to the next timer whenever one
// turn of the event loop settles nothing; a lease write that takes 2 ms of real time on a SQLite
// worker thread or a PostgreSQL connection would then last as many timer jumps as the event loop
// turns in 2 ms: tens or hundreds of virtual seconds once the timer queue is sparse (bound clients,
// retransmissions 64 s apart). The server's ACK, sent only when its write is durable, then arrives
// after the client gave up on that transaction. Holding the clock while the database works makes a
// write take no virtual time, as a synchronous store did: the fabric's timing stays what the
// emulation decides, not what the machine's disk does.
import type { LeaseStore } from '../../lease-db/lease.js';
import type { Scheduler } from '../../link/fabric/scheduler.js';

/**
 * The store, with virtual time standing still while any of its operations is in flight: a 0 ms
 * timer stays armed (re-armed from setImmediate, never from inside the scheduler's pass, which
 * would spin), so the scheduler always has something due now and never jumps ahead.
 */
export function holdClockDuringIo(store: LeaseStore, scheduler: Scheduler): LeaseStore {
  let pending = 0;
  const rearm = (): void => { if (pending > 0) scheduler.setTimer(0, tick); };
  const tick = (): void => { setImmediate(rearm); };
  const settle = (): void => { pending--; };
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
          if (!(r instanceof Promise)) return r;
          if (pending++ === 0) scheduler.setTimer(0, tick);
          return r.finally(settle);
        };
        wrapped.set(prop, w);
      }
      return w;
    },
  });
}
