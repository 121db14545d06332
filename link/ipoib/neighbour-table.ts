// The IPv4 neighbour (ARP) table of one interface, with Linux's state machine (net/core/neighbour.c
// neigh_timer_handler(), __neigh_event_send(), neigh_update(); arp_tbl defaults in constants.ts):
//
//   INCOMPLETE --reply--> REACHABLE --reachable_time--> STALE --send--> DELAY --delay_first_probe--> PROBE
//        |  (mcast_solicit broadcast requests,            ^  (confirmation at any point -> REACHABLE)   |
//        |   retrans_time apart)                          |                         (ucast_solicit      |
//        +-------------------> FAILED <-------------------+---------------------------unicast probes)---+
//
// At most unres_qlen (3) packets wait on an unresolved entry; more are dropped and counted. The
// table calls back into its owner to solicit (send ARP requests), transmit released packets and
// report failures; it never builds packets itself.
import { formatIpv4 } from '../wire/ipv4.js';
import { formatIpoibHwAddress, type IpoibHwAddress } from '../wire/ipoib-hw-address.js';
import type { Scheduler, Timer } from '../fabric/scheduler.js';
import {
  NEIGH_DELAY_FIRST_PROBE_MS, NEIGH_GC_INTERVAL_MS, NEIGH_GC_STALE_TIME_MS, NEIGH_LOCKTIME_MS, NEIGH_MCAST_SOLICIT,
  NEIGH_REACHABLE_TIME_MS, NEIGH_RETRANS_TIME_MS, NEIGH_UCAST_SOLICIT, NEIGH_UNRES_QLEN,
} from './constants.js';

export type NeighState = 'INCOMPLETE' | 'REACHABLE' | 'STALE' | 'DELAY' | 'PROBE' | 'FAILED' | 'PERMANENT';

/** A packet waiting for its neighbour: an IPoIB frame (4-byte header slot + IPv4 packet). */
export type QueuedFrame = Buffer;

export interface Neighbour {
  readonly ip: number;
  state: NeighState;
  hw: IpoibHwAddress | undefined;
  /** Last time the link-layer address was set (for locktime). */
  updated: number;
  /** Last time reachability was confirmed. */
  confirmed: number;
  /** Last time a packet was sent through the entry. */
  used: number;
  probes: number;
  queue: QueuedFrame[];
  timer: Timer | undefined;
}

export interface NeighbourOwner {
  /** Send an ARP request for ip: broadcast when unicastTo is undefined, else to that address. */
  solicit(ip: number, unicastTo: IpoibHwAddress | undefined): void;
  /** Transmit a frame to a resolved neighbour. */
  output(frame: QueuedFrame, hw: IpoibHwAddress): void;
  /** Resolution failed: the queued frames are dropped (the owner reports Host Unreachable). */
  failed(ip: number, dropped: QueuedFrame[]): void;
  /** A frame dropped because the queue was full. */
  queueOverflow(ip: number, frame: QueuedFrame): void;
  /** An entry was created or removed (what the host listens to for ARP depends on which exist). */
  changed?(): void;
}

/** One line of `ip neigh show`. */
export interface NeighbourRow {
  ip: string;
  dev: string;
  lladdr: string | undefined;
  state: NeighState;
}

export class NeighbourTable {
  private readonly entries = new Map<number, Neighbour>();
  private gcTimer: Timer | undefined;

  constructor(private readonly dev: string, private readonly sched: Scheduler, private readonly owner: NeighbourOwner) {}

  get size(): number {
    return this.entries.size;
  }

  has(ip: number): boolean {
    return this.entries.has(ip);
  }

  /** The addresses that have an entry, in any state. */
  ips(): IterableIterator<number> {
    return this.entries.keys();
  }

  get(ip: number): Neighbour | undefined {
    return this.entries.get(ip);
  }

  /** Sends frame to ip, resolving first when needed (neigh_resolve_output()). */
  send(ip: number, frame: QueuedFrame): void {
    const now = this.sched.now();
    let n = this.entries.get(ip);
    if (n === undefined) {
      n = this.create(ip, 'INCOMPLETE');
      n.used = now;
      this.enqueue(n, frame);
      this.startSolicit(n);
      return;
    }
    n.used = now;
    switch (n.state) {
      case 'REACHABLE': case 'PERMANENT': case 'DELAY': case 'PROBE':
        this.owner.output(frame, n.hw!);
        return;
      case 'STALE':
        this.setState(n, 'DELAY', NEIGH_DELAY_FIRST_PROBE_MS);
        this.owner.output(frame, n.hw!);
        return;
      case 'INCOMPLETE':
        this.enqueue(n, frame);
        return;
      case 'FAILED':
        n.hw = undefined;
        this.setState(n, 'INCOMPLETE', undefined);
        this.enqueue(n, frame);
        this.startSolicit(n);
        return;
    }
  }

  /**
   * An ARP packet told us ip is at hw (neigh_update()). `confirmed` = a reply addressed to us
   * (-> REACHABLE), else STALE. Without `override`, a different address for a valid entry is
   * ignored (locktime); `create` makes a missing entry (ARP requests for one of our addresses).
   */
  update(ip: number, hw: IpoibHwAddress, opts: { confirmed: boolean; create: boolean; override?: boolean }): Neighbour | undefined {
    const now = this.sched.now();
    let n = this.entries.get(ip);
    if (n === undefined) {
      if (!opts.create) return undefined;
      n = this.create(ip, 'STALE');
    }
    if (n.state === 'PERMANENT') return n;
    const valid = n.hw !== undefined && n.state !== 'INCOMPLETE' && n.state !== 'FAILED';
    const override = opts.override ?? now >= n.updated + NEIGH_LOCKTIME_MS;
    const differs = n.hw === undefined || !sameHw(n.hw, hw);
    if (valid && differs && !override) return n;
    if (differs) { n.hw = copyHw(hw); n.updated = now; }
    if (opts.confirmed) {
      n.confirmed = now;
      this.setState(n, 'REACHABLE', NEIGH_REACHABLE_TIME_MS);
    } else if (!valid || differs) {
      this.setState(n, 'STALE', undefined);
    }
    this.flush(n);
    return n;
  }

  /** `ip neigh add/replace ... nud permanent`. */
  addPermanent(ip: number, hw: IpoibHwAddress): void {
    const n = this.entries.get(ip) ?? this.create(ip, 'PERMANENT');
    n.hw = copyHw(hw);
    this.setState(n, 'PERMANENT', undefined);
    this.flush(n);
  }

  /** `ip neigh flush dev X`: every entry but PERMANENT ones goes; queued packets are dropped. */
  flush(n?: Neighbour): void {
    if (n !== undefined) {
      if (n.hw === undefined || n.queue.length === 0) return;
      const q = n.queue.splice(0);
      for (const f of q) this.owner.output(f, n.hw);
      return;
    }
  }

  flushAll(): number {
    let removed = 0;
    for (const [ip, n] of this.entries) {
      if (n.state === 'PERMANENT') continue;
      n.timer?.cancel();
      this.entries.delete(ip);
      removed++;
    }
    if (removed > 0) this.owner.changed?.();
    return removed;
  }

  rows(): NeighbourRow[] {
    return [...this.entries.values()].sort((a, b) => a.ip - b.ip).map((n) => ({
      ip: formatIpv4(n.ip), dev: this.dev,
      lladdr: n.hw !== undefined && n.state !== 'INCOMPLETE' && n.state !== 'FAILED' ? formatIpoibHwAddress(n.hw) : undefined,
      state: n.state,
    }));
  }

  private create(ip: number, state: NeighState): Neighbour {
    const now = this.sched.now();
    const n: Neighbour = { ip, state, hw: undefined, updated: now - NEIGH_LOCKTIME_MS, confirmed: 0, used: now, probes: 0, queue: [], timer: undefined };
    this.entries.set(ip, n);
    this.armGc();
    this.owner.changed?.();
    return n;
  }

  private enqueue(n: Neighbour, frame: QueuedFrame): void {
    if (n.queue.length >= NEIGH_UNRES_QLEN) { this.owner.queueOverflow(n.ip, frame); return; }
    n.queue.push(frame);
  }

  private startSolicit(n: Neighbour): void {
    n.probes = 1;
    this.owner.solicit(n.ip, undefined);
    this.setState(n, 'INCOMPLETE', NEIGH_RETRANS_TIME_MS);
  }

  private setState(n: Neighbour, state: NeighState, timerMs: number | undefined): void {
    n.state = state;
    n.timer?.cancel();
    n.timer = timerMs === undefined ? undefined : this.sched.setTimer(timerMs, () => { n.timer = undefined; this.expire(n); });
  }

  private expire(n: Neighbour): void {
    if (this.entries.get(n.ip) !== n) return;
    const now = this.sched.now();
    switch (n.state) {
      case 'INCOMPLETE':
        if (n.probes < NEIGH_MCAST_SOLICIT) {
          n.probes++;
          this.owner.solicit(n.ip, undefined);
          this.setState(n, 'INCOMPLETE', NEIGH_RETRANS_TIME_MS);
        } else {
          this.fail(n);
        }
        return;
      case 'REACHABLE':
        if (now < n.confirmed + NEIGH_REACHABLE_TIME_MS) this.setState(n, 'REACHABLE', n.confirmed + NEIGH_REACHABLE_TIME_MS - now);
        else this.setState(n, 'STALE', undefined);
        return;
      case 'DELAY':
        if (now < n.confirmed + NEIGH_DELAY_FIRST_PROBE_MS) { this.setState(n, 'REACHABLE', NEIGH_REACHABLE_TIME_MS); return; }
        n.probes = 1;
        this.owner.solicit(n.ip, n.hw);
        this.setState(n, 'PROBE', NEIGH_RETRANS_TIME_MS);
        return;
      case 'PROBE':
        if (n.probes < NEIGH_UCAST_SOLICIT) {
          n.probes++;
          this.owner.solicit(n.ip, n.hw);
          this.setState(n, 'PROBE', NEIGH_RETRANS_TIME_MS);
        } else {
          this.fail(n);
        }
        return;
      default:
        return;
    }
  }

  private fail(n: Neighbour): void {
    this.setState(n, 'FAILED', undefined);
    n.hw = undefined;
    const q = n.queue.splice(0);
    this.owner.failed(n.ip, q);
  }

  /** The interface is going away: cancel every timer so nothing keeps the process alive; queued packets are dropped. */
  close(): void {
    for (const n of this.entries.values()) {
      n.timer?.cancel();
      n.queue.length = 0;
    }
    this.entries.clear();
    this.gcTimer?.cancel();
    this.gcTimer = undefined;
  }

  /** One sweep every gc_interval while the table holds entries (neigh_periodic_work()). */
  private armGc(): void {
    if (this.gcTimer !== undefined) return;
    this.gcTimer = this.sched.setTimer(NEIGH_GC_INTERVAL_MS, () => {
      this.gcTimer = undefined;
      const now = this.sched.now();
      const before = this.entries.size;
      for (const [ip, n] of this.entries) {
        if ((n.state === 'STALE' || n.state === 'FAILED') && now - n.used >= NEIGH_GC_STALE_TIME_MS) {
          n.timer?.cancel();
          this.entries.delete(ip);
        }
      }
      if (this.entries.size !== before) this.owner.changed?.();
      if (this.entries.size > 0) this.armGc();
    });
  }
}

function sameHw(a: IpoibHwAddress, b: IpoibHwAddress): boolean {
  return a.flags === b.flags && a.qpn === b.qpn && a.gid.equals(b.gid);
}

function copyHw(a: IpoibHwAddress): IpoibHwAddress {
  return { flags: a.flags, qpn: a.qpn, gid: Buffer.from(a.gid) };
}
