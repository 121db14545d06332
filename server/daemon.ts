// The server daemon: the pure engine (engine.ts) between DatagramEndpoints (DESIGN.md "The seam
// between DHCP and the network": kernel UDP or an emulated IPoIB host) and a LeaseStore.
//
//   datagram -> engine.handle() -> commitWrites() -> (durable) -> pacer -> send the replies
//
// Each datagram's commit runs concurrently with the next datagrams' handling, so many commits are
// in flight at once and the store group-commits them (SQLite: one transaction and fsync for all the
// writes that arrived during the previous one, on the store's worker thread, so this event loop
// never waits for the disk: lease-db/sqlite-worker-store.ts). A reply leaves only after its writes
// are durable; the replies a commit releases together go through a token bucket (daemon-pacer.ts),
// so an fsync that stalled does not release hundreds of ACKs into the peer's socket buffer at once. When the store fails (PostgreSQL
// gone, a disk error) the daemon stops answering — every message is dropped as 'db-unavailable' —
// keeps receiving, probes the store, and when it answers again rebuilds the engine from what the
// store holds (writes that failed in between are the store's truth, not the engine's guesses).
// A periodic sweep expires leases; reload() swaps in a new configuration keeping every lease; stop()
// stops receiving, lets in-flight commits finish and send, then closes endpoints and the store.
//
// Overload (offered more than the server can answer in time). The policy, in order:
//  1. The kernel socket's receive buffer is sized to hold under a second of work (daemon-kernel.ts),
//     so what the server cannot read in time is dropped by the kernel while it is still young,
//     instead of being queued until every answer is too late (with an 8 MiB buffer, 4,000 DORA/s
//     offered collapsed to 24 answered).
//  2. The socket is drained eagerly: a datagram is handled as it is read until this event-loop turn
//     has spent `turnBudgetMs` on handling; after that datagrams are only classified (option 53,
//     read in place) and queued, and the queue is worked through in the check phase, one budget per
//     turn, so each turn still reads the socket and lets the store commit its batch. Datagrams that
//     are not DHCP at all (short, no magic cookie) are dropped at once, never queued.
//  3. The queue has two classes: DISCOVERs, and everything else (REQUEST, DECLINE, RELEASE, INFORM,
//     no option 53 found), each oldest first. Everything else goes first: it finishes an exchange
//     the server already spent an OFFER on, and it is where a lease is made durable; a DISCOVER
//     only starts new work.
//  4. Age: a queued DISCOVER older than `discoverMaxAgeMs` (default 500 ms) or REQUEST / INFORM
//     older than `requestMaxAgeMs` (default 2 s) is dropped as 'stale'. Its client has given up or
//     retransmitted by then (perfdhcp waits 1 s; RFC 2131 clients retransmit after ~4 s), and the
//     bound keeps the queue's wait, hence every answer's delay, under a client's patience: DISCOVERs
//     need half of it, as the REQUEST that follows needs the other half. DECLINE and RELEASE expect
//     no answer and change lease state, so they never go stale.
//  5. Commits in flight: past half of `maxInFlight` DISCOVERs are dropped as 'overloaded'; past
//     `maxInFlight` every message that reaches the engine is (the store is behind: more answers
//     would only wait longer for their fsync). More than `maxQueuedDiscovers` waiting: the oldest
//     is dropped as 'overloaded'.
// Every message shed is counted under its drop reason (daemon-drops.ts) and by its type as received.
import { performance } from 'node:perf_hooks';
import type { DatagramEndpoint, DatagramMeta, SendOptions } from '../link/ipoib/udp-socket.js';
import { decodeIpoibHwAddress, encodeIpoibHwAddress } from '../link/wire/ipoib-hw-address.js';
import { isLeaseStoreError } from '../lease-db/errors.js';
import type { Lease, LeaseStore, Pool } from '../lease-db/lease.js';
import { allLeases } from '../lease-db/transfer.js';
import { decodeDhcpMessage, getMessageType, ipv4ToString, tryParseIpv4 } from '../protocol/index.js';
import { commitWrites } from './commit.js';
import { ConfigError, type ServerConfig } from './config.js';
import type { AnyDropReason } from './daemon-drops.js';
import { ReplyPacer, type PacerOptions } from './daemon-pacer.js';
import { ServerEngine, type EngineResult, type LeaseWrite } from './engine.js';
import { MESSAGE_TYPE_LABELS, ServerMetrics } from './metrics.js';

/** One interface the server answers on: the engine's name for it, its server identifier, its socket. */
export interface ServerLink {
  name: string;
  /** IPv4 address (uint32): the server identifier of replies to messages received here. */
  address: number;
  endpoint: DatagramEndpoint;
}

/** The pino methods the daemon calls ((object, message) form); pino's Logger fits. */
export interface DaemonLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ServerDaemonOptions {
  config: ServerConfig;
  store: LeaseStore;
  links: ServerLink[];
  /** P: the port listened on; clients are answered on P + 1, relays on P. */
  serverPort: number;
  log?: DaemonLogger;
  /** Wall clock in ms since the epoch (tests inject one). */
  now?: () => number;
  serverName?: string;
  /** Lease expiry sweep period (Kea's reclaim-timer-wait-time: 10 s). */
  expireIntervalMs?: number;
  /** How often an unavailable store is probed. */
  dbProbeIntervalMs?: number;
  /** Commits in flight beyond which messages are dropped as 'overloaded' (DISCOVERs from half of it). Default 4096. */
  maxInFlight?: number;
  /** Time an event-loop turn may spend handling datagrams as they are read, and on the queue (ms). Default 2. */
  turnBudgetMs?: number;
  /** A queued DISCOVER older than this is dropped as 'stale' (ms). Default 500. */
  discoverMaxAgeMs?: number;
  /** A queued REQUEST or INFORM older than this is dropped as 'stale' (ms). Default 2000. */
  requestMaxAgeMs?: number;
  /** Most DISCOVERs waiting; beyond it the oldest is dropped as 'overloaded'. Default 8192. */
  maxQueuedDiscovers?: number;
  /** Where reload() without an argument reads the configuration (the -cf file). */
  configLoader?: () => ServerConfig;
  /** Default: a new ServerMetrics over this daemon's store. */
  metrics?: ServerMetrics;
  /** stop() closes the store (default true). */
  closeStore?: boolean;
  /** Pacing of the replies that waited for a commit (daemon-pacer.ts); false: each leaves as its commit completes. */
  replyPacing?: PacerOptions | false;
}

export interface DaemonStats {
  received: Record<string, number>;
  sent: Record<string, number>;
  drops: Partial<Record<AnyDropReason, number>>;
  commits: number;
  reloads: number;
  dbOutages: number;
}

export type ReloadResult = { ok: true; leases: number } | { ok: false; error: string };

const silent: DaemonLogger = { debug() {}, info() {}, warn() {}, error() {} };
/** Store failures that mean "the database is not there" rather than "this write lost a race". */
const OUTAGE_CODES = new Set(['DB_UNAVAILABLE', 'DB_IO', 'CLOSED', 'DB_CORRUPT']);

export function poolsOf(config: ServerConfig): Pool[] {
  return config.subnets.flatMap((s) => s.pools.map((p) => ({ id: p.id, subnetId: s.id, first: p.first, last: p.last })));
}

function isOutage(err: unknown): boolean {
  return !isLeaseStoreError(err) || OUTAGE_CODES.has(err.code);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function readLeases(store: LeaseStore): Promise<Lease[]> {
  const out: Lease[] = [];
  for await (const l of allLeases(store)) out.push(l);
  return out;
}

/** The message type of a datagram without handing it to the engine (counting while the store is away). */
function peekType(buf: Buffer): number | undefined {
  try { return getMessageType(decodeDhcpMessage(buf)); } catch { return undefined; }
}

/** Send options of a reply without a link-layer destination: shared, never written. */
const NO_SEND_OPTIONS: SendOptions = Object.freeze({});
const DHCPDISCOVER = 1;
const DHCPREQUEST = 3;
const DHCPINFORM = 8;
/** quickType(): the bytes are not a DHCP message at all. */
const NOT_DHCP = -1;

/**
 * Option 53 read in place from the options field (RFC 2132 §9.6), for queueing only: NOT_DHCP when
 * the datagram is too short for a DHCP message or has no magic cookie; undefined when option 53 is
 * not in the options field (absent, in an overloaded file/sname, or the options are broken). The
 * engine decodes the message properly when its turn comes.
 */
function quickType(buf: Buffer): number | undefined {
  if (buf.length < 241 || buf.readUInt32BE(236) !== 0x63825363) return NOT_DHCP;
  for (let p = 240; p < buf.length;) {
    const code = buf[p]!;
    if (code === 0) { p++; continue; }
    if (code === 255 || p + 1 >= buf.length) return undefined;
    const len = buf[p + 1]!;
    if (code === 53) return len === 1 && p + 2 < buf.length ? buf[p + 2] : undefined;
    p += 2 + len;
  }
  return undefined;
}

/** A datagram waiting for its turn (overload: see the header). */
interface Queued {
  link: ServerLink;
  buf: Buffer;
  meta: DatagramMeta;
  /** performance.now() when it was read from the socket. */
  at: number;
  type: number | undefined;
}

/** A double-ended queue that does not move its elements on every shift. */
class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get length(): number { return this.items.length - this.head; }
  push(x: T): void { this.items.push(x); }
  /** The oldest. */
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) { this.items = []; this.head = 0; }
    else if (this.head > 1024 && this.head * 2 > this.items.length) { this.items = this.items.slice(this.head); this.head = 0; }
    return x;
  }
  /** The newest. */
  pop(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items.pop();
    if (this.head === this.items.length) { this.items = []; this.head = 0; }
    return x;
  }
  clear(): void { this.items = []; this.head = 0; }
}

export class ServerDaemon {
  readonly store: LeaseStore;
  readonly links: readonly ServerLink[];
  readonly serverPort: number;
  readonly metrics: ServerMetrics;
  readonly stats: DaemonStats = { received: {}, sent: {}, drops: {}, commits: 0, reloads: 0, dbOutages: 0 };
  private engineValue: ServerEngine;
  private configValue: ServerConfig;
  private readonly log: DaemonLogger;
  private readonly now: () => number;
  /** Commits of received messages not yet finished, and settle()'s waiters for none. */
  private inFlight = 0;
  private readonly settleWaiters: (() => void)[] = [];
  private readonly maxInFlight: number;
  private readonly turnBudgetMs: number;
  private readonly discoverMaxAgeMs: number;
  private readonly requestMaxAgeMs: number;
  private readonly maxQueuedDiscovers: number;
  /** Overload queues (see the header): DISCOVERs, and everything else, which goes first. */
  private readonly urgent = new Deque<Queued>();
  private readonly discovers = new Deque<Queued>();
  /** Time spent handling datagrams in this event-loop turn (ms), and whether the turn's end is scheduled. */
  private turnSpent = 0;
  private turnEndScheduled = false;
  private lastSourceText = '';
  private lastSource = 0;
  private lastDestination = -1;
  private lastDestinationText = '';
  private readonly expireTimer: NodeJS.Timeout;
  private probeTimer: NodeJS.Timeout | null = null;
  private dbDown = false;
  private stopping = false;
  private stoppedPromise: Promise<void> | null = null;
  private expiring = false;
  private readonly closers: (() => Promise<void>)[] = [];
  /** Replies whose writes are durable, on their way to the socket (null: no pacing). */
  readonly pacer: ReplyPacer<{ link: ServerLink; r: EngineResult }> | null;

  private constructor(private readonly opts: ServerDaemonOptions, engine: ServerEngine) {
    this.store = opts.store;
    this.links = opts.links;
    this.serverPort = opts.serverPort;
    this.log = opts.log ?? silent;
    this.now = opts.now ?? Date.now;
    this.maxInFlight = opts.maxInFlight ?? 4096;
    this.turnBudgetMs = opts.turnBudgetMs ?? 2;
    this.discoverMaxAgeMs = opts.discoverMaxAgeMs ?? 500;
    this.requestMaxAgeMs = opts.requestMaxAgeMs ?? 2000;
    this.maxQueuedDiscovers = opts.maxQueuedDiscovers ?? 8192;
    this.configValue = opts.config;
    this.engineValue = engine;
    this.pacer = opts.replyPacing === false ? null : new ReplyPacer((x) => this.send(x.link, x.r), opts.replyPacing);
    this.metrics = opts.metrics ?? new ServerMetrics({
      poolStats: () => this.store.stats(Math.floor(this.now() / 1000)),
      subnetPrefix: (id) => this.configValue.subnets.find((s) => s.id === id)?.subnet ?? '',
    });
    this.expireTimer = setInterval(() => { void this.sweep(); }, opts.expireIntervalMs ?? 10_000);
    this.expireTimer.unref();
    for (const link of opts.links) link.endpoint.onMessage((buf, meta) => this.receive(link, buf, meta));
  }

  /** Declares the config's pools to the store, reads every lease, builds the engine and starts listening. */
  static async start(opts: ServerDaemonOptions): Promise<ServerDaemon> {
    if (opts.links.length === 0) throw new Error('ServerDaemon: no interface to serve');
    await opts.store.configurePools(poolsOf(opts.config));
    const now = (opts.now ?? Date.now)();
    const leases = await readLeases(opts.store);
    const log = opts.log ?? silent;
    const d = new ServerDaemon(opts, ServerDaemon.engineFor(opts, opts.config, leases, now, log));
    log.info({ event: 'started', port: opts.serverPort, leases: leases.length, store: opts.store.location,
      interfaces: opts.links.map((l) => `${l.name}/${ipv4ToString(l.address)}`) },
    `serving ${opts.links.map((l) => `${l.name} (${ipv4ToString(l.address)})`).join(', ')} on port ${opts.serverPort}, answering clients on ${opts.serverPort + 1}; ${leases.length} lease(s) in ${opts.store.location}`);
    return d;
  }

  private static engineFor(opts: ServerDaemonOptions, config: ServerConfig, leases: Iterable<Lease>, now: number, log: DaemonLogger): ServerEngine {
    return new ServerEngine({
      config, interfaces: opts.links.map((l) => ({ name: l.name, address: l.address })), serverPort: opts.serverPort,
      leases, now, log, ...(opts.serverName !== undefined ? { serverName: opts.serverName } : {}),
    });
  }

  get engine(): ServerEngine { return this.engineValue; }
  get config(): ServerConfig { return this.configValue; }
  /** True while the store is unavailable and messages are dropped. */
  get databaseDown(): boolean { return this.dbDown; }
  get commitsInFlight(): number { return this.inFlight; }

  // ---- the receive path ----

  private count(table: Record<string, number>, key: string): void {
    table[key] = (table[key] ?? 0) + 1;
  }

  private drop(reason: AnyDropReason): void {
    this.stats.drops[reason] = (this.stats.drops[reason] ?? 0) + 1;
    this.metrics.dropped(reason);
  }

  private receivedType(type: number | undefined): void {
    this.count(this.stats.received, type === undefined ? 'none' : MESSAGE_TYPE_LABELS[type] ?? `type-${type}`);
    this.metrics.receivedMessage(type);
  }

  /** Datagrams read but not yet handled (overload). */
  get queued(): number { return this.urgent.length + this.discovers.length; }

  /**
   * One datagram from an endpoint (exposed for tests that bypass endpoints): handled now while this
   * event-loop turn has budget left and nothing is queued, else queued (see the header).
   */
  receive(link: ServerLink, buf: Buffer, meta: DatagramMeta): void {
    if (this.stopping) return;
    const t0 = performance.now();
    const type = quickType(buf);
    if (type === NOT_DHCP || (this.queued === 0 && this.turnSpent < this.turnBudgetMs)) {
      this.handle(link, buf, meta, type === DHCPDISCOVER);
      this.turnSpent += performance.now() - t0;
      this.scheduleTurnEnd();
      return;
    }
    if (type === DHCPDISCOVER) {
      if (this.inFlight >= this.maxInFlight >> 1) { this.shed(type, 'overloaded'); return; }
      this.discovers.push({ link, buf, meta, at: t0, type });
      if (this.discovers.length > this.maxQueuedDiscovers) this.shed(this.discovers.shift()!.type, 'overloaded');
    } else {
      this.urgent.push({ link, buf, meta, at: t0, type });
    }
    this.scheduleTurnEnd();
  }

  /** How long a queued message of this type stays worth answering (ms). */
  private maxAge(type: number | undefined): number {
    if (type === DHCPDISCOVER) return this.discoverMaxAgeMs;
    return type === DHCPREQUEST || type === DHCPINFORM ? this.requestMaxAgeMs : Infinity;
  }

  private scheduleTurnEnd(): void {
    if (this.turnEndScheduled) return;
    this.turnEndScheduled = true;
    setImmediate(() => this.endTurn());
  }

  /** The check phase of a turn: work through the queue for one budget, then open the next turn. */
  private endTurn(): void {
    this.turnEndScheduled = false;
    this.turnSpent = 0;
    if (this.stopping) { this.urgent.clear(); this.discovers.clear(); return; }
    if (this.queued === 0) return;
    const start = performance.now();
    let now = start;
    // At least one per turn, whatever the budget.
    do {
      const q = this.urgent.length > 0 ? this.urgent.shift()! : this.discovers.shift()!;
      if (now - q.at > this.maxAge(q.type)) this.shed(q.type, 'stale');
      else this.handle(q.link, q.buf, q.meta, q.type === DHCPDISCOVER);
      now = performance.now();
    } while (this.queued > 0 && now - start < this.turnBudgetMs);
    if (this.queued > 0) this.scheduleTurnEnd();
  }

  /** A datagram's source address as a number; a relay or client sends many, so the last is kept. */
  private sourceAddress(text: string): number {
    if (text !== this.lastSourceText) {
      this.lastSourceText = text;
      this.lastSource = tryParseIpv4(text) ?? 0;
    }
    return this.lastSource;
  }

  /** A message dropped before the engine saw it: counted as received (by its option 53) and dropped. */
  private shed(type: number | undefined, reason: AnyDropReason): void {
    this.receivedType(type);
    this.drop(reason);
  }

  private handle(link: ServerLink, buf: Buffer, meta: DatagramMeta, discover: boolean): void {
    const now = this.now();
    if (this.dbDown) {
      this.receivedType(peekType(buf));
      this.drop('db-unavailable');
      return;
    }
    if (this.inFlight >= (discover ? this.maxInFlight >> 1 : this.maxInFlight)) {
      this.receivedType(peekType(buf));
      this.drop('overloaded');
      return;
    }
    const engine = this.engineValue;
    let r: EngineResult;
    try {
      r = engine.handle({
        data: buf, interface: link.name, now,
        source: { address: this.sourceAddress(meta.address), port: meta.port },
        senderHwAddress: meta.hwAddress === undefined ? null : encodeIpoibHwAddress(meta.hwAddress),
      });
    } catch (err) {
      // The engine promises not to throw on any input; if it does, one message is lost, not the daemon.
      this.receivedType(undefined);
      this.drop('malformed');
      this.log.error({ event: 'engine-error', from: `${meta.address}:${meta.port}`, err: errorText(err) }, `src=${meta.address}:${meta.port} engine error: ${errorText(err)}`);
      return;
    }
    this.receivedType(r.messageType);
    if (r.drop !== undefined) this.drop(r.drop.reason);
    if (r.writes.length === 0) {
      this.send(link, r);
      return;
    }
    this.pacer?.commitStarted();
    this.inFlight++;
    void this.commit(engine, link, r, r.writes, now, true);
  }

  /** A counted commit has finished: wake settle() when none is left. */
  private commitDone(): void {
    if (--this.inFlight === 0) for (const w of this.settleWaiters.splice(0)) w();
  }

  /** `counted`: the commit of a received message, counted in commitsInFlight (the caller counted it). */
  private async commit(engine: ServerEngine, link: ServerLink | null, r: EngineResult | null, writes: readonly LeaseWrite[], now: number, counted = false): Promise<void> {
    const t0 = performance.now();
    let ok = false;
    let error: unknown;
    try {
      const out = await commitWrites(engine, this.store, writes, now);
      ok = out.ok;
      error = out.failed?.error;
    } catch (err) {
      error = err;
    } finally {
      // Counted as finished here; settle()'s waiters resume in a later microtask, after the rest of
      // this function has sent the reply or handed it to the pacer (which stop() flushes).
      if (counted) this.commitDone();
    }
    this.metrics.commitDuration((performance.now() - t0) / 1000);
    const label = r?.label ?? 'expiry sweep';
    if (ok) {
      this.stats.commits++;
      if (link !== null && r !== null) {
        if (this.pacer === null) this.send(link, r); else this.pacer.submit({ link, r });
      }
      return;
    }
    if (isOutage(error)) {
      if (r !== null) this.drop('db-unavailable');
      this.databaseLost(error, label);
    } else {
      if (r !== null) this.drop('commit-failed');
      this.log.warn({ event: 'commit-failed', err: errorText(error) }, `${label} lease write refused, reply withheld: ${errorText(error)}`);
    }
  }

  /** A reply's destination as text; a relay gets many, so the last is kept (like sourceAddress()). */
  private destinationText(address: number): string {
    if (address !== this.lastDestination) {
      this.lastDestination = address;
      this.lastDestinationText = ipv4ToString(address);
    }
    return this.lastDestinationText;
  }

  private send(link: ServerLink, r: EngineResult): void {
    for (const rep of r.replies) {
      const opts: SendOptions = rep.linkUnicast === null ? NO_SEND_OPTIONS : { viaHwAddress: decodeIpoibHwAddress(rep.linkUnicast) };
      try {
        link.endpoint.send(rep.bytes, this.destinationText(rep.address), rep.port, opts);
      } catch (err) {
        this.log.warn({ event: 'send-failed', to: `${ipv4ToString(rep.address)}:${rep.port}`, err: errorText(err) },
          `${r.label} send to ${ipv4ToString(rep.address)}:${rep.port} failed: ${errorText(err)}`);
        continue;
      }
      const type = getMessageType(rep.message);
      this.count(this.stats.sent, type === undefined ? 'none' : MESSAGE_TYPE_LABELS[type] ?? `type-${type}`);
      this.metrics.sentMessage(type);
    }
  }

  // ---- the store going away and coming back ----

  private databaseLost(err: unknown, label: string): void {
    if (this.dbDown || this.stopping) return;
    this.dbDown = true;
    this.stats.dbOutages++;
    this.log.error({ event: 'db-unavailable', store: this.store.location, err: errorText(err) },
      `${label} lease database unavailable, no longer answering until it is back: ${errorText(err)}`);
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.stopping) return;
    this.probeTimer = setTimeout(() => { void this.probe(); }, this.opts.dbProbeIntervalMs ?? 1000);
  }

  private async probe(): Promise<void> {
    this.probeTimer = null;
    if (this.stopping || !this.dbDown) return;
    let leases: Lease[];
    try {
      await this.store.configurePools(poolsOf(this.configValue));
      leases = await readLeases(this.store);
    } catch {
      this.scheduleProbe();
      return;
    }
    // Commits that were in flight when the store went away have failed by now, or will fail
    // against the store's truth; the new engine starts from that truth.
    const now = this.now();
    this.engineValue = ServerDaemon.engineFor(this.opts, this.configValue, leases, now, this.log);
    this.dbDown = false;
    this.log.info({ event: 'db-available', store: this.store.location, leases: leases.length },
      `lease database ${this.store.location} is back (${leases.length} lease(s)); answering again`);
  }

  // ---- expiry, reload, stop ----

  /** One expiry sweep (also run by the timer): expired leases are written as 'expired'. */
  async sweep(): Promise<number> {
    if (this.dbDown || this.stopping || this.expiring) return 0;
    this.expiring = true;
    try {
      const now = this.now();
      const writes = this.engineValue.expire(now);
      if (writes.length > 0) {
        await this.commit(this.engineValue, null, null, writes, now);
        this.log.debug({ event: 'expired', count: writes.length }, `expiry sweep: ${writes.length} lease(s) expired`);
      }
      return writes.length;
    } finally {
      this.expiring = false;
    }
  }

  /**
   * Replaces the configuration, keeping every lease (SIGHUP, config-reload). A configuration that
   * does not validate leaves the running one in place and is logged in one line.
   */
  async reload(next?: ServerConfig): Promise<ReloadResult> {
    let config: ServerConfig;
    try {
      if (next !== undefined) config = next;
      else if (this.opts.configLoader !== undefined) config = this.opts.configLoader();
      else return { ok: false, error: 'no configuration file to reload' };
    } catch (err) {
      const msg = errorText(err);
      this.log.error({ event: 'reload-failed', ...(err instanceof ConfigError ? { file: err.file } : {}) },
        `configuration not reloaded, keeping the running one: ${msg}`);
      return { ok: false, error: msg };
    }
    for (const w of config.warnings) this.log.warn({ event: 'config-warning', path: w.path }, `${config.file}: ${w.path}: ${w.message}`);
    // Let in-flight commits settle (bounded) so a write that fails resyncs the engine that made it.
    await this.settle(2000);
    try {
      await this.store.configurePools(poolsOf(config));
    } catch (err) {
      this.log.error({ event: 'reload-failed' }, `configuration not reloaded, keeping the running one: the lease database refused its pools: ${errorText(err)}`);
      return { ok: false, error: errorText(err) };
    }
    const leases = this.engineValue.leases();
    this.engineValue = ServerDaemon.engineFor(this.opts, config, leases, this.now(), this.log);
    this.configValue = config;
    this.stats.reloads++;
    this.log.info({ event: 'reloaded', subnets: config.subnets.length, leases: leases.length },
      `configuration reloaded from ${config.file}: ${config.subnets.length} subnet(s), ${leases.length} lease(s) kept`);
    return { ok: true, leases: leases.length };
  }

  /** Resolves when no commit is in flight, or after `ms`. */
  settle(ms = Infinity): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => { clearTimeout(timer); resolve(); };
      this.settleWaiters.push(done);
      if (Number.isFinite(ms)) {
        timer = setTimeout(() => {
          const i = this.settleWaiters.indexOf(done);
          if (i >= 0) this.settleWaiters.splice(i, 1);
          resolve();
        }, Math.max(1, ms));
      }
    });
  }

  /** Something stop() closes after the endpoints and before the store (the control socket). */
  onStop(close: () => Promise<void>): void {
    this.closers.push(close);
  }

  /** SIGTERM: stop receiving, let in-flight commits finish (and their replies leave), close endpoints and store. */
  stop(): Promise<void> {
    if (this.stoppedPromise !== null) return this.stoppedPromise;
    this.stopping = true;
    clearInterval(this.expireTimer);
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.stoppedPromise = (async () => {
      const pending = this.inFlight;
      await this.settle();
      this.pacer?.flush();
      for (const l of this.links) {
        const f = (l.endpoint as { flush?: () => Promise<void> }).flush;
        if (typeof f === 'function') await f.call(l.endpoint);
        l.endpoint.close();
      }
      for (const c of this.closers) await c().catch(() => undefined);
      if (this.opts.closeStore !== false) await this.store.close();
      await this.metrics.close();
      this.log.info({ event: 'stopped', commitsFinished: pending }, `stopped: ${pending} in-flight commit(s) finished, lease database closed`);
    })();
    return this.stoppedPromise;
  }
}
