// The DHCP server engine: RFC 2131 §4.3 (server behaviour: DISCOVER, REQUEST in SELECTING /
// INIT-REBOOT / RENEWING / REBINDING, DECLINE, RELEASE, INFORM), §4.1 (where replies go) and Table 3
// (reply fields); RFC 4390 (IPoIB: client identifier, broadcast replies), RFC 6842 (echo option 61),
// RFC 3046 (echo option 82) and RFC 3011 / RFC 3527 (subnet selection). Pure: a message and the time
// in; replies, lease-store writes and counters out. No sockets, no clock, no I/O.
//
// The contract with the daemon: it feeds handle() each received datagram with the time; it commits
// result.writes to the LeaseStore in order (server/commit.ts), and only once they are durable sends
// result.replies — every ACK carries the write that makes its lease durable, so "no lease is
// acknowledged before it is durable" holds by construction. If a write fails, it calls resync() with
// what the store holds and sends nothing.
//
// Cost: handle() runs once per received datagram, so it allocates little and formats nothing it
// may not need. Option values are resolved once per (subnet, pool) and reused; constant option
// data (message types, server identifiers, lease times) is encoded once; the client label and the
// reservation keys are built on first use; log objects are built only when the logger would write
// them (EngineLogger.isLevelEnabled). No closures are created per message (tsx compiles with
// esbuild's keepNames, which makes every named inner function a defineProperty call).

import { WireError } from '../codec/wire-error.js';
import type { Lease, NewLease } from '../lease-db/lease.js';
import {
  BOOTREPLY, BOOTREQUEST, CHADDR_LENGTH, DhcpMessageType, FLAG_BROADCAST, FILE_LENGTH, OptionCode, SNAME_LENGTH,
  decodeDhcpMessage, encodeDhcpMessage, findOption, getMaxMessageSize, getMessageType,
  getRequestedAddress, getServerIdentifier, ipv4ToString, replyRoute,
  type DhcpMessage, type DhcpOption, type HardwareVariant,
} from '../protocol/index.js';
import type { BootFields, OptionSpec, PoolConfig, ReservationConfig, ServerConfig, SubnetConfig } from './config.js';
import { DROP_REASON_NAMES, type Drop, type DropReason } from './drop-reasons.js';
import { clientIdentity, clientLabel, type ClientIdentity } from './identity.js';
import { LeaseTable, type LeaseWrite, type Owner } from './lease-table.js';
import { ClientRateLimiter } from './rate-limit.js';
import { ZERO_FILE, ZERO_SNAME, writeReply } from './reply-writer.js';

export type { LeaseWrite } from './lease-table.js';

export interface EngineInterface {
  name: string;
  /** The interface's IPv4 address: the server identifier of replies to messages received on it. */
  address: number;
}

/** The subset of pino's logger the engine calls (pino's own logger fits). */
export interface EngineLogger {
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
  /** pino's: when present, nothing is formatted for a level it reports off. */
  isLevelEnabled?(level: string): boolean;
}

export interface EngineOptions {
  config: ServerConfig;
  interfaces: readonly EngineInterface[];
  /** The port the server listens on (P); clients are answered on P + 1. Default 67. */
  serverPort?: number;
  /** Written into each lease's `server` field. */
  serverName?: string;
  /**
   * RFC 2131 §4.1 lets a server unicast to yiaddr at chaddr for a client (Ethernet-style, no
   * BROADCAST flag) that has no address yet; that needs an ARP entry injected, which only the daemon
   * can do. Off (default): such replies are broadcast, as ISC dhcpd does on plain sockets.
   */
  unicastToYiaddr?: boolean;
  /** Leases already in the store (the daemon reads them with LeaseStore.list() at start). */
  leases?: Iterable<Lease>;
  /** Time (ms) the leases were read, for their indexing; default 0. */
  now?: number;
  log?: EngineLogger;
}

export interface EngineInput {
  /** The UDP payload as received; or `message` when the caller decoded it already. */
  data?: Buffer;
  message?: DhcpMessage;
  /** Name of the receiving interface. */
  interface: string;
  source: { address: number; port: number };
  /** The 20-byte IPoIB source address of the datagram, on the project's link. */
  senderHwAddress?: Buffer | null;
  /** Milliseconds since the Unix epoch (leases use whole seconds of it). */
  now: number;
}

export interface EngineReply {
  /**
   * The reply as a record. Its buffers may be shared with the request (chaddr, echoed options) and
   * with other replies (constant option data, zero sname/file): read it, do not write into it.
   */
  message: DhcpMessage;
  bytes: Buffer;
  /** Destination IPv4 address and UDP port. */
  address: number;
  port: number;
  /** Sent to 255.255.255.255 (the IPoIB broadcast group unless linkUnicast is set). */
  broadcast: boolean;
  /**
   * When set, the IP broadcast is carried in a link-layer unicast to this 20-byte IPoIB address
   * (DESIGN.md "Scale"); null: use the interface's broadcast group.
   */
  linkUnicast: Buffer | null;
  /** For unicast to yiaddr (unicastToYiaddr): the client's chaddr[0..hlen] to reach it with. */
  chaddr: Buffer | null;
  route: 'relay' | 'ciaddr' | 'broadcast' | 'yiaddr';
}

export interface EngineResult {
  replies: EngineReply[];
  /** Commit these in order; send the replies only after all of them are durable. */
  writes: LeaseWrite[];
  drop?: Drop | undefined;
  /** `cid=... guid=... htype=32 hlen=0 xid=0x...`, or a short description when undecodable. */
  label: string;
  variant?: HardwareVariant | undefined;
  messageType?: number | undefined;
}

export interface EngineCounters {
  received: Record<string, number>;
  sent: Record<string, number>;
  drops: Record<DropReason, number>;
  variants: Record<string, number>;
  declines: number;
  leasesWritten: number;
}

/**
 * The variant counted (counters.variants) and logged when a REQUEST in INIT state names no address
 * at all but carries the xid of the offer we made to the same client (see request()).
 */
export const REQUEST_WITHOUT_ADDRESS_VARIANT = 'request-selecting-by-xid';

const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(DhcpMessageType).map(([k, v]) => [v, k.replace(/^DHCP/, '').toLowerCase()]),
);

/** Options Kea adds to every reply when configured, asked for or not (Dhcpv4Srv::appendBasicOptions). */
const BASIC_OPTIONS: readonly number[] = [OptionCode.ROUTERS, OptionCode.DOMAIN_NAME_SERVERS, OptionCode.DOMAIN_NAME];
/** Options never dropped to make a reply fit. */
const ESSENTIAL = new Set<number>([
  OptionCode.MESSAGE_TYPE, OptionCode.SERVER_IDENTIFIER, OptionCode.LEASE_TIME, OptionCode.RENEWAL_TIME,
  OptionCode.REBINDING_TIME, OptionCode.SUBNET_MASK, OptionCode.CLIENT_IDENTIFIER, OptionCode.AGENT_OPTIONS,
]);
const BROADCAST_ADDRESS = 0xffffffff;
/** Option 53's data per message type, encoded once (replies only read their option data). */
const MESSAGE_TYPE_DATA: readonly Buffer[] = Array.from({ length: 256 }, (_, i) => Buffer.from([i]));
const NO_CLASSES: ReadonlySet<string> = new Set();

/** Everything one message's handling needs, built once (Kea's ClientContext4). */
interface Context {
  m: DhcpMessage;
  input: EngineInput;
  id: ClientIdentity;
  who: Owner;
  now: number;
  serverId: number;
  subnet: SubnetConfig | null;
  /** The classes the client is in; the shared empty set until one is added. */
  classes: ReadonlySet<string>;
  reservation: ReservationConfig | null;
}

interface Allocation {
  address: number;
  pool: PoolConfig | null;
  source: 'reservation' | 'existing' | 'requested' | 'pool';
}

/** What a handler decided; handle() adds the label, variant and type. */
interface Handled {
  replies: EngineReply[];
  writes: LeaseWrite[];
  drop: Drop | undefined;
}

/**
 * The options and boot fields one client sees, by Kea's precedence (host reservation, pool, subnet,
 * classes in configuration order, global), resolved once per level combination.
 */
interface Resolved {
  /** code -> the value of the most specific level that has one (never-send values included: they block). */
  byCode: (OptionSpec | undefined)[];
  /** Codes with always-send at any level, in level order. */
  always: number[];
  boot: BootFields;
}

/** The label of an undecodable datagram. */
function sourceLabel(input: EngineInput): string {
  return `src=${ipv4ToString(input.source.address)}:${input.source.port}`;
}

/**
 * A result whose client label is formatted only when read (a log line, a failed commit): most
 * results are never labelled. It reads the identity and message it was made from, which stay as
 * they were (the engine never writes into a received message).
 */
class Outcome implements EngineResult {
  private labelText: string | null;
  constructor(
    readonly replies: EngineReply[],
    readonly writes: LeaseWrite[],
    readonly drop: Drop | undefined,
    private readonly m: DhcpMessage | null,
    private readonly id: ClientIdentity | null,
    fixedLabel: string | null,
    readonly variant: HardwareVariant | undefined,
    readonly messageType: number | undefined,
  ) {
    this.labelText = fixedLabel;
  }

  get label(): string {
    if (this.labelText === null) this.labelText = this.m === null ? '' : clientLabel(this.m, this.id);
    return this.labelText;
  }
}

function hasOption(opts: readonly DhcpOption[], code: number): boolean {
  for (let i = 0; i < opts.length; i++) if (opts[i]!.code === code) return true;
  return false;
}

/** Adds the resolved value of `code` unless it is there already, never-send, or (optional) unasked for. */
function addOption(opts: DhcpOption[], res: Resolved, code: number, mandatory: boolean, prl: Buffer | undefined): void {
  if (hasOption(opts, code)) return;
  const o = res.byCode[code];
  if (o === undefined || o.neverSend) return;
  if (!mandatory && !o.alwaysSend && (prl === undefined || !prl.includes(code))) return;
  opts.push({ code, data: o.data });
}

function firstBoot<K extends keyof BootFields>(levels: readonly BootFields[], k: K): BootFields[K] {
  for (const b of levels) if (b[k] !== null) return b[k];
  return null;
}

function isUsableSubnet(s: SubnetConfig, classes: ReadonlySet<string>): boolean {
  return s.clientClass === null || classes.has(s.clientClass);
}

function containingSubnet(subnets: readonly SubnetConfig[], classes: ReadonlySet<string>, a: number): SubnetConfig | null {
  for (const s of subnets) if (isUsableSubnet(s, classes) && ((a & s.mask) >>> 0) === s.network) return s;
  return null;
}

export class ServerEngine {
  readonly config: ServerConfig;
  readonly counters: EngineCounters;
  private readonly table: LeaseTable;
  private readonly limiter: ClientRateLimiter;
  private readonly interfaces = new Map<string, number>();
  /** Every address a client may name in option 54 to mean this server. */
  private readonly serverIds = new Set<number>();
  private readonly serverPort: number;
  private readonly serverName: string;
  private readonly unicastToYiaddr: boolean;
  private readonly log: EngineLogger | undefined;
  /** Resolved options per pool (or subnet, or the configuration) for clients without reservation or class. */
  private readonly resolvedCache = new WeakMap<object, Resolved>();
  /** 4-byte option data by value (server ids, masks, lease times): bounded, as a client may ask for any lease time. */
  private readonly u32Cache = new Map<number, Buffer>();

  constructor(opts: EngineOptions) {
    this.config = opts.config;
    this.serverPort = opts.serverPort ?? 67;
    this.serverName = opts.serverName ?? 'ipoib-dhcpd';
    this.unicastToYiaddr = opts.unicastToYiaddr ?? false;
    this.log = opts.log;
    for (const i of opts.interfaces) { this.interfaces.set(i.name, i.address); this.serverIds.add(i.address); }
    for (const s of opts.config.subnets) {
      for (const o of s.options) if (o.code === OptionCode.SERVER_IDENTIFIER) this.serverIds.add(o.data.readUInt32BE(0));
    }
    this.table = new LeaseTable(opts.config.subnets, opts.config.ipoib.matchPortGuid);
    this.table.load(opts.leases ?? [], Math.floor((opts.now ?? 0) / 1000));
    this.limiter = new ClientRateLimiter(opts.config.ipoib.rateLimit);
    this.counters = {
      received: {}, sent: {}, variants: {}, declines: 0, leasesWritten: 0,
      drops: Object.fromEntries(DROP_REASON_NAMES.map((r) => [r, 0])) as Record<DropReason, number>,
    };
  }

  /** The leases the engine holds (e.g. to build the next engine on a config reload without re-reading the store). */
  leases(): Lease[] { return [...this.table.all()]; }

  /** The lease at an address, as the engine sees it (committed or about to be). */
  lease(address: number): Lease | undefined { return this.table.get(address); }

  /** After a failed commit: replace what the engine holds at `address` with what the store holds. */
  resync(address: number, stored: Lease | null, nowMs: number): void {
    this.table.resync(address, stored, Math.floor(nowMs / 1000));
  }

  /**
   * The sweep: leases past their expiry become 'expired' (declined ones too, ending their hold-off),
   * and forgotten offers free their addresses. Returns the writes to commit (at most `limit`).
   */
  expire(nowMs: number, limit = 1000): LeaseWrite[] {
    const now = Math.floor(nowMs / 1000);
    this.table.expireOffers(now);
    const due = [...this.table.all()].filter((l) =>
      (l.state === 'offered' || l.state === 'bound' || l.state === 'declined') && l.expiry <= now).slice(0, limit);
    return due.map((l) => this.table.write({ ...stripVersion(l), state: 'expired' }, now));
  }

  /** Whether the logger writes `level` (then the engine builds the line). */
  private logs(level: 'info' | 'debug'): boolean {
    const l = this.log;
    return l !== undefined && (l.isLevelEnabled === undefined || l.isLevelEnabled(level));
  }

  handle(input: EngineInput): EngineResult {
    let m: DhcpMessage;
    if (input.message !== undefined) {
      m = input.message;
    } else {
      try {
        m = decodeDhcpMessage(input.data ?? Buffer.alloc(0));
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        return this.dropped(null, null, sourceLabel(input), 'malformed', `${err.field} at offset ${err.offset}: ${err.message}`, undefined, undefined);
      }
    }
    if (m.op !== BOOTREQUEST) return this.dropped(m, null, null, 'not-request', `op ${m.op}`, undefined, undefined);
    const type = getMessageType(m);
    if (type === undefined) return this.dropped(m, null, null, 'bootp', 'no option 53', undefined, undefined);
    const typeName = TYPE_NAMES[type] ?? `type-${type}`;
    const received = this.counters.received;
    received[typeName] = (received[typeName] ?? 0) + 1;
    const id = clientIdentity(m, input.senderHwAddress);
    if (typeof id === 'string') return this.dropped(m, null, null, id, `htype ${m.htype} hlen ${m.hlen}`, undefined, type);
    const variants = this.counters.variants;
    variants[id.variant] = (variants[id.variant] ?? 0) + 1;
    if (!this.limiter.take(id.leaseKeyText, input.now)) return this.dropped(m, id, null, 'rate-limited', typeName, id.variant, type);
    const serverId = this.interfaces.get(input.interface);
    if (serverId === undefined) return this.dropped(m, id, null, 'unknown-interface', input.interface, id.variant, type);

    let classes: Set<string> | null = null;
    for (const c of this.config.classes) {
      if (c.test !== null && c.test.evaluate(m, classes ?? NO_CLASSES)) (classes ??= new Set()).add(c.name);
    }
    const ctx: Context = {
      m, input, id, who: { client: id.leaseKeyText, portGuid: id.portGuid }, now: Math.floor(input.now / 1000),
      serverId, subnet: null, classes: classes ?? NO_CLASSES, reservation: null,
    };
    ctx.subnet = this.selectSubnet(ctx);
    if (ctx.subnet !== null) {
      if (ctx.subnet.reservationIndex.size > 0) ctx.reservation = ctx.subnet.reservationIndex.match(id.keys)?.value ?? null;
      const extra = ctx.reservation?.clientClasses;
      if (extra !== undefined && extra.length > 0) {
        const all = new Set(ctx.classes);
        for (const c of extra) all.add(c);
        ctx.classes = all;
      }
      const sid = this.resolved(ctx, null).byCode[OptionCode.SERVER_IDENTIFIER];
      if (sid !== undefined && sid.data.length === 4) ctx.serverId = sid.data.readUInt32BE(0);
    }
    if (this.logs('debug')) {
      this.log!.debug({ variant: id.variant, type: typeName, subnet: ctx.subnet?.id ?? null }, `${clientLabel(m, id)} received ${typeName}`);
    }

    let r: Handled;
    switch (type) {
      case DhcpMessageType.DHCPDISCOVER: r = this.discover(ctx); break;
      case DhcpMessageType.DHCPREQUEST: r = this.request(ctx); break;
      case DhcpMessageType.DHCPDECLINE: r = this.decline(ctx); break;
      case DhcpMessageType.DHCPRELEASE: r = this.release(ctx); break;
      case DhcpMessageType.DHCPINFORM: r = this.inform(ctx); break;
      default: r = this.drop('unsupported-type', typeName);
    }
    const out = new Outcome(r.replies, r.writes, r.drop, m, id, null, id.variant, type);
    const info = this.logs('info');
    if (r.drop !== undefined) {
      this.counters.drops[r.drop.reason]++;
      if (info) this.log!.info({ reason: r.drop.reason, detail: r.drop.detail, variant: id.variant }, `${out.label} dropped: ${r.drop.reason}`);
    }
    const sent = this.counters.sent;
    for (const rep of r.replies) {
      const n = TYPE_NAMES[getMessageType(rep.message) ?? 0] ?? 'unknown';
      sent[n] = (sent[n] ?? 0) + 1;
      if (info) this.log!.info({ yiaddr: ipv4ToString(rep.message.yiaddr), to: ipv4ToString(rep.address), variant: id.variant }, `${out.label} ${n}`);
    }
    this.counters.leasesWritten += r.writes.length;
    return out;
  }

  // ---- subnet selection (Kea's Dhcpv4Srv::selectSubnet order) ----

  private selectSubnet(ctx: Context): SubnetConfig | null {
    const { m, classes } = ctx;
    const subnets = this.config.subnets;
    const selector = this.linkSelection(m);
    if (selector !== null) return containingSubnet(subnets, classes, selector);
    if (m.giaddr !== 0) {
      for (const s of subnets) if (isUsableSubnet(s, classes) && s.relayAddresses.includes(m.giaddr)) return s;
      return containingSubnet(subnets, classes, m.giaddr);
    }
    if (m.ciaddr !== 0) {
      const s = containingSubnet(subnets, classes, m.ciaddr);
      if (s !== null) return s;
    }
    for (const s of subnets) if (isUsableSubnet(s, classes) && s.interface === ctx.input.interface) return s;
    return containingSubnet(subnets, classes, ctx.serverId);
  }

  /** RFC 3527 link-selection (option 82 sub-option 5), else RFC 3011 subnet-selection (option 118). */
  private linkSelection(m: DhcpMessage): number | null {
    const o82 = findOption(m.options, OptionCode.AGENT_OPTIONS);
    if (o82 !== undefined) {
      for (let p = 0; p + 2 <= o82.length;) {
        const len = o82[p + 1]!;
        if (p + 2 + len > o82.length) break;
        if (o82[p] === 5 && len === 4) return o82.readUInt32BE(p + 2);
        p += 2 + len;
      }
    }
    const o118 = findOption(m.options, OptionCode.SUBNET_SELECTION);
    return o118 !== undefined && o118.length === 4 ? o118.readUInt32BE(0) : null;
  }

  // ---- allocation ----

  private poolAllowed(ctx: Context, p: PoolConfig): boolean {
    return p.clientClass === null || ctx.classes.has(p.clientClass);
  }

  private poolOf(ctx: Context, address: number): PoolConfig | null {
    for (const p of ctx.subnet!.pools) if (address >= p.first && address <= p.last && this.poolAllowed(ctx, p)) return p;
    return null;
  }

  /** May the client have `address` in its subnet now: reserved for it, or in a pool it may use and free. */
  private usable(ctx: Context, address: number): PoolConfig | null | false {
    const reservedForMe = ctx.reservation?.ipAddress === address;
    const other = ctx.subnet!.reservedAddresses.get(address);
    if (other !== undefined && !reservedForMe) return false;
    if (!this.table.availableTo(address, ctx.who, ctx.now, reservedForMe)) return false;
    if (reservedForMe) return null;
    return this.poolOf(ctx, address) ?? false;
  }

  /**
   * Kea's allocation precedence (alloc_engine.h, allocateLease4), written once:
   *   1. the client's reservation, when its address is not held by another client;
   *   2. the client's existing lease or outstanding offer in this subnet (by client identifier, else
   *      by port GUID), when the address is still one it may have;
   *   3. the address the client asked for (option 50, or ciaddr), when free and in a pool it may use;
   *   4. the next free address of the first pool (in configuration order) it may use.
   * null when every step fails: the pools are exhausted for this client.
   */
  private allocate(ctx: Context, requested: number | null): Allocation | null {
    const subnet = ctx.subnet!;
    const res = ctx.reservation?.ipAddress ?? null;
    if (res !== null) {
      const u = this.usable(ctx, res);
      if (u !== false) return { address: res, pool: u, source: 'reservation' };
      if (this.logs('info')) this.log!.info({ address: ipv4ToString(res) }, `${clientLabel(ctx.m, ctx.id)} reserved address is held by another client`);
    }
    const offer = this.table.offerFor(subnet.id, ctx.who.client);
    if (offer !== undefined && offer.expires > ctx.now) {
      const u = this.usable(ctx, offer.address);
      if (u !== false) return { address: offer.address, pool: u, source: 'existing' };
    }
    const lease = this.table.forClient(subnet.id, ctx.who);
    if (lease !== undefined) {
      const u = this.usable(ctx, lease.address);
      if (u !== false) return { address: lease.address, pool: u, source: 'existing' };
    }
    if (requested !== null && requested !== 0) {
      const u = this.usable(ctx, requested);
      if (u !== false) return { address: requested, pool: u, source: 'requested' };
    }
    for (const p of subnet.pools) {
      if (!this.poolAllowed(ctx, p)) continue;
      const a = this.table.pick(p, ctx.who, ctx.now);
      if (a !== null) return { address: a, pool: p, source: 'pool' };
    }
    return null;
  }

  private lifetime(ctx: Context): { valid: number; t1: number | null; t2: number | null } {
    const l = ctx.subnet!.lifetimes;
    let valid = l.valid;
    const asked = findOption(ctx.m.options, OptionCode.LEASE_TIME);
    if (asked !== undefined && asked.length === 4) valid = Math.min(Math.max(asked.readUInt32BE(0), l.min), l.max);
    let t1 = l.renew ?? (l.calculateTeeTimes ? Math.floor(valid * l.t1Percent) : null);
    let t2 = l.rebind ?? (l.calculateTeeTimes ? Math.floor(valid * l.t2Percent) : null);
    if (t2 !== null && t2 >= valid) t2 = null;
    if (t1 !== null && (t1 >= valid || (t2 !== null && t1 >= t2))) t1 = null;
    return { valid, t1, t2 };
  }

  // ---- message handlers ----

  private discover(ctx: Context): Handled {
    if (ctx.subnet === null) return this.drop('no-subnet', this.selectorText(ctx));
    const a = this.allocate(ctx, getRequestedAddress(ctx.m) ?? null);
    if (a === null) return this.drop('pool-exhausted', `subnet ${ctx.subnet.subnet}`);
    if (this.config.offerLifetime > 0) {
      this.table.addOffer({
        subnetId: ctx.subnet.id, address: a.address, client: ctx.who.client, portGuid: ctx.who.portGuid,
        expires: ctx.now + this.config.offerLifetime, xid: ctx.m.xid,
      });
    }
    return this.reply(ctx, DhcpMessageType.DHCPOFFER, a.address, a.pool, [], 0);
  }

  private request(ctx: Context): Handled {
    const { m } = ctx;
    let sid = getServerIdentifier(m);
    let requested = getRequestedAddress(m) ?? null;
    if (sid !== undefined && !this.serverIds.has(sid)) {
      // SELECTING another server's offer (RFC 2131 §4.3.2): withdraw ours.
      if (ctx.subnet !== null) this.table.dropOffer(ctx.subnet.id, ctx.who.client);
      return this.drop('other-server', `server identifier ${ipv4ToString(sid)}`);
    }
    if (sid === undefined && requested === null && m.ciaddr === 0 && ctx.subnet !== null) {
      // RFC 2131 §4.3.2 deviation, on purpose: a REQUEST with ciaddr 0 and neither option 50 nor
      // option 54 names no address, and RFC 2131 gives it no meaning. The `dhcp` npm package's
      // client (0.2.20, a peer the project's user named; TOOLCHAIN.md §5 bug 2) sends exactly that
      // after our OFFER, echoing the OFFER's xid. When the xid and the client are those of an
      // offer we are still holding, the only reading is "I take your offer": treat it as
      // SELECTING that offer (nothing another server offered can be taken, as we hold the offer),
      // count and log the variant. Anything else stays a 'request-invalid' drop.
      const offer = this.table.offerFor(ctx.subnet.id, ctx.who.client);
      if (offer !== undefined && offer.xid === m.xid && offer.expires > ctx.now) {
        sid = ctx.serverId;
        requested = offer.address;
        const variants = this.counters.variants;
        variants[REQUEST_WITHOUT_ADDRESS_VARIANT] = (variants[REQUEST_WITHOUT_ADDRESS_VARIANT] ?? 0) + 1;
        if (this.logs('info')) {
          this.log!.info({ variant: REQUEST_WITHOUT_ADDRESS_VARIANT, address: ipv4ToString(offer.address) },
            `${clientLabel(m, ctx.id)} REQUEST without options 50 and 54 (RFC 2131 §4.3.2 requires both): taken as selecting our offer of ${ipv4ToString(offer.address)}, same xid`);
        }
      }
    }
    const address = requested ?? (m.ciaddr !== 0 ? m.ciaddr : null);
    if (address === null) return this.drop('request-invalid', 'no ciaddr and no option 50');
    const subnet = ctx.subnet;
    const selecting = sid !== undefined;
    const state = selecting ? 'SELECTING' : requested !== null && m.ciaddr === 0 ? 'INIT-REBOOT' : 'RENEWING/REBINDING';
    if (subnet === null) return this.drop('no-subnet', this.selectorText(ctx));
    const authoritative = subnet.authoritative;
    const old = this.table.forClient(subnet.id, ctx.who);
    const known = old !== undefined || this.table.offerFor(subnet.id, ctx.who.client) !== undefined;
    if (((address & subnet.mask) >>> 0) !== subnet.network) {
      // The client's notion of its network is wrong (it moved): RFC 2131 §4.3.2 INIT-REBOOT.
      return authoritative || selecting
        ? this.nak(ctx, `${ipv4ToString(address)} is not in ${subnet.subnet}`)
        : this.drop('not-authoritative', `${state}: ${ipv4ToString(address)} is not in ${subnet.subnet}`);
    }
    if (!selecting && !known && !authoritative) {
      return this.drop('not-authoritative', `${state}: no record of this client for ${ipv4ToString(address)}`);
    }
    const a = this.allocate(ctx, address);
    if (a === null || a.address !== address) {
      if (selecting || known || authoritative) {
        return this.nak(ctx, a === null ? `${ipv4ToString(address)} is not available` : `${ipv4ToString(address)} is not this client's address`);
      }
      return this.drop('not-authoritative', `${state}: ${ipv4ToString(address)} belongs to another client`);
    }
    const { valid } = this.lifetime(ctx);
    const writes: LeaseWrite[] = [];
    // A client moving to a new address (its reservation changed) leaves the old one released.
    if (old !== undefined && old.address !== address && (old.state === 'bound' || old.state === 'offered')) {
      writes.push(this.table.write({ ...stripVersion(old), state: 'released', expiry: ctx.now, server: this.serverName }, ctx.now));
    }
    // The identity's buffers are views of the received datagram; the lease outlives it.
    const lease: NewLease = {
      address, subnetId: subnet.id, clientId: Buffer.from(ctx.id.leaseKey), portGuid: ctx.id.portGuid,
      hwaddr: ctx.id.hwaddr === null ? null : Buffer.from(ctx.id.hwaddr),
      hostname: ctx.reservation?.hostname ?? this.clientHostname(m), state: 'bound', start: ctx.now,
      expiry: ctx.now + valid, server: this.serverName,
    };
    writes.push(this.table.write(lease, ctx.now, ctx.who.client));
    this.table.dropOffer(subnet.id, ctx.who.client);
    return this.reply(ctx, DhcpMessageType.DHCPACK, address, a.pool, writes, selecting || requested !== null ? 0 : m.ciaddr);
  }

  private decline(ctx: Context): Handled {
    const sid = getServerIdentifier(ctx.m);
    if (sid !== undefined && !this.serverIds.has(sid)) return this.drop('other-server', `server identifier ${ipv4ToString(sid)}`);
    const address = getRequestedAddress(ctx.m);
    if (address === undefined) return this.drop('decline-invalid', 'no option 50');
    const l = this.table.get(address);
    if (l === undefined || !this.table.owns(ctx.who, l.clientId, l.portGuid) || (l.state !== 'bound' && l.state !== 'offered')) {
      return this.drop('decline-invalid', `${ipv4ToString(address)} is not leased to this client`);
    }
    this.counters.declines++;
    const hold = this.config.declineProbationPeriod;
    const w = this.table.write({
      address, subnetId: l.subnetId, clientId: null, portGuid: null, hwaddr: null, hostname: null, state: 'declined',
      start: ctx.now, expiry: ctx.now + hold, server: this.serverName,
    }, ctx.now);
    this.table.dropOffer(l.subnetId, ctx.who.client);
    if (this.logs('info')) this.log!.info({ address: ipv4ToString(address), holdOff: hold }, `${clientLabel(ctx.m, ctx.id)} declined`);
    return { replies: [], writes: [w], drop: undefined };
  }

  private release(ctx: Context): Handled {
    const sid = getServerIdentifier(ctx.m);
    if (sid !== undefined && !this.serverIds.has(sid)) return this.drop('other-server', `server identifier ${ipv4ToString(sid)}`);
    const address = ctx.m.ciaddr;
    const l = this.table.get(address);
    if (address === 0 || l === undefined || !this.table.owns(ctx.who, l.clientId, l.portGuid) || (l.state !== 'bound' && l.state !== 'offered')) {
      return this.drop('release-invalid', `${ipv4ToString(address)} is not leased to this client`);
    }
    const w = this.table.write({ ...stripVersion(l), state: 'released', expiry: ctx.now, server: this.serverName }, ctx.now);
    return { replies: [], writes: [w], drop: undefined };
  }

  private inform(ctx: Context): Handled {
    if (ctx.subnet === null) return this.drop('no-subnet', this.selectorText(ctx));
    const pool = ctx.m.ciaddr === 0 ? null : this.poolOf(ctx, ctx.m.ciaddr);
    return this.reply(ctx, DhcpMessageType.DHCPACK, 0, pool, [], ctx.m.ciaddr, true);
  }

  private clientHostname(m: DhcpMessage): string | null {
    const h = findOption(m.options, OptionCode.HOST_NAME);
    return h === undefined || h.length === 0 ? null : h.toString('latin1').slice(0, 255);
  }

  private selectorText(ctx: Context): string {
    const { m } = ctx;
    return m.giaddr !== 0 ? `giaddr ${ipv4ToString(m.giaddr)}` : m.ciaddr !== 0 ? `ciaddr ${ipv4ToString(m.ciaddr)}`
      : `interface ${ctx.input.interface} (${ipv4ToString(ctx.serverId)})`;
  }

  // ---- replies ----

  /**
   * The options and boot fields for this client and pool, by Kea's precedence: host reservation,
   * pool, subnet, class (in configuration order), global. Without a reservation or class (the common
   * case) the answer depends on the pool (or subnet) only, and is computed once.
   */
  private resolved(ctx: Context, pool: PoolConfig | null): Resolved {
    const cacheable = ctx.reservation === null && ctx.classes.size === 0;
    const key: object = pool ?? ctx.subnet ?? this.config;
    if (cacheable) {
      const hit = this.resolvedCache.get(key);
      if (hit !== undefined) return hit;
    }
    const levels: OptionSpec[][] = [];
    const boots: BootFields[] = [];
    if (ctx.reservation !== null) { levels.push(ctx.reservation.options); boots.push(ctx.reservation.boot); }
    if (pool !== null) levels.push(pool.options);
    if (ctx.subnet !== null) { levels.push(ctx.subnet.options); boots.push(ctx.subnet.boot); }
    for (const c of this.config.classes) if (ctx.classes.has(c.name)) { levels.push(c.options); boots.push(c.boot); }
    levels.push(this.config.options);
    boots.push(this.config.boot);
    const byCode: (OptionSpec | undefined)[] = new Array<OptionSpec | undefined>(256).fill(undefined);
    const always: number[] = [];
    for (const list of levels) {
      for (const o of list) {
        if (byCode[o.code] === undefined) byCode[o.code] = o;
        if (o.alwaysSend) always.push(o.code);
      }
    }
    const boot: BootFields = {
      nextServer: firstBoot(boots, 'nextServer'), serverHostname: firstBoot(boots, 'serverHostname'),
      bootFileName: firstBoot(boots, 'bootFileName'),
    };
    const r: Resolved = { byCode, always, boot };
    if (cacheable) this.resolvedCache.set(key, r);
    return r;
  }

  /** 4-byte big-endian option data, shared by every reply carrying the same value. */
  private u32(n: number): Buffer {
    let b = this.u32Cache.get(n);
    if (b === undefined) {
      b = Buffer.alloc(4);
      b.writeUInt32BE(n >>> 0);
      if (this.u32Cache.size < 4096) this.u32Cache.set(n, b);
    }
    return b;
  }

  private reply(
    ctx: Context, type: number, yiaddr: number, pool: PoolConfig | null, writes: LeaseWrite[], ciaddr: number, inform = false,
  ): Handled {
    const { m } = ctx;
    const r = this.header(m);
    r.yiaddr = yiaddr;
    r.ciaddr = ciaddr;
    const res = this.resolved(ctx, pool);
    const boot = res.boot;
    if (boot.nextServer !== null) r.siaddr = boot.nextServer;
    if (boot.serverHostname !== null) {
      r.sname = Buffer.alloc(SNAME_LENGTH);
      Buffer.from(boot.serverHostname, 'latin1').copy(r.sname, 0, 0, SNAME_LENGTH - 1);
    }
    if (boot.bootFileName !== null) {
      r.file = Buffer.alloc(FILE_LENGTH);
      Buffer.from(boot.bootFileName, 'latin1').copy(r.file, 0, 0, FILE_LENGTH - 1);
    }

    const opts: DhcpOption[] = [
      { code: OptionCode.MESSAGE_TYPE, data: MESSAGE_TYPE_DATA[type]! },
      { code: OptionCode.SERVER_IDENTIFIER, data: this.u32(ctx.serverId) },
    ];
    if (!inform) {
      const lt = this.lifetime(ctx);
      opts.push({ code: OptionCode.LEASE_TIME, data: this.u32(lt.valid) });
      if (lt.t1 !== null) opts.push({ code: OptionCode.RENEWAL_TIME, data: this.u32(lt.t1) });
      if (lt.t2 !== null) opts.push({ code: OptionCode.REBINDING_TIME, data: this.u32(lt.t2) });
    }
    const prl = findOption(m.options, OptionCode.PARAMETER_REQUEST_LIST);
    if (res.byCode[OptionCode.SUBNET_MASK] === undefined && ctx.subnet !== null) {
      opts.push({ code: OptionCode.SUBNET_MASK, data: this.u32(ctx.subnet.mask) });
    } else {
      addOption(opts, res, OptionCode.SUBNET_MASK, true, prl);
    }
    if (prl !== undefined) {
      for (let i = 0; i < prl.length; i++) {
        const code = prl[i]!;
        if (code === OptionCode.HOST_NAME && ctx.reservation?.hostname != null && !hasOption(opts, code)) {
          opts.push({ code, data: Buffer.from(ctx.reservation.hostname, 'latin1') });
        }
        addOption(opts, res, code, false, prl);
      }
    }
    for (const code of BASIC_OPTIONS) addOption(opts, res, code, true, prl);
    for (const code of res.always) addOption(opts, res, code, false, prl);
    this.finishOptions(m, opts);
    r.options = opts;
    return this.send(ctx, r, writes);
  }

  private nak(ctx: Context, why: string): Handled {
    const r = this.header(ctx.m);
    const opts: DhcpOption[] = [
      { code: OptionCode.MESSAGE_TYPE, data: MESSAGE_TYPE_DATA[DhcpMessageType.DHCPNAK]! },
      { code: OptionCode.SERVER_IDENTIFIER, data: this.u32(ctx.serverId) },
      { code: OptionCode.MESSAGE, data: Buffer.from(why, 'latin1') },
    ];
    this.finishOptions(ctx.m, opts);
    r.options = opts;
    // RFC 2131 §4.3.2: a relayed NAK carries the BROADCAST flag so the relay broadcasts it.
    if (ctx.m.giaddr !== 0) r.flags |= FLAG_BROADCAST;
    if (this.logs('info')) this.log!.info({ why }, `${clientLabel(ctx.m, ctx.id)} NAK`);
    return this.send(ctx, r, []);
  }

  /**
   * Table 3 of RFC 2131: op, xid, flags, giaddr from the client; htype, hlen and chaddr echoed as the
   * client sent them ("chaddr from client"), so an RFC 4390 client gets htype 32 / hlen 0 / empty
   * chaddr back, and FlexBoot (hlen 6) or patched dhclient (hlen 8) find their own chaddr, which they
   * match replies on. The reply reads the request's chaddr in place (encoding copies it).
   */
  private header(m: DhcpMessage): DhcpMessage {
    let chaddr = m.chaddr;
    if (chaddr.length !== CHADDR_LENGTH) {
      chaddr = Buffer.alloc(CHADDR_LENGTH);
      m.chaddr.copy(chaddr);
    }
    return {
      op: BOOTREPLY, htype: m.htype, hlen: m.hlen, hops: 0, xid: m.xid, secs: 0, flags: m.flags,
      ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: m.giaddr, chaddr, sname: ZERO_SNAME, file: ZERO_FILE, options: [],
    };
  }

  /** RFC 6842: echo option 61; RFC 3046 §2.2: echo option 82 unchanged, as the last option (encoding copies both). */
  private finishOptions(m: DhcpMessage, opts: DhcpOption[]): void {
    const cid = findOption(m.options, OptionCode.CLIENT_IDENTIFIER);
    if (cid !== undefined && this.config.echoClientId) opts.push({ code: OptionCode.CLIENT_IDENTIFIER, data: cid });
    const o82 = findOption(m.options, OptionCode.AGENT_OPTIONS);
    if (o82 !== undefined && m.giaddr !== 0) opts.push({ code: OptionCode.AGENT_OPTIONS, data: o82 });
  }

  private send(ctx: Context, r: DhcpMessage, writes: LeaseWrite[]): Handled {
    const { m } = ctx;
    const max = getMaxMessageSize(m);
    let bytes = writeReply(r, max);
    while (bytes === null) {
      try {
        bytes = encodeDhcpMessage(r, undefined, 0, max);
        break;
      } catch (err) {
        if (!(err instanceof WireError) || err.code !== 'LIMIT') throw err;
        // Leave out the last optional option and try again (the client's own order put it last).
        let k = r.options.length - 1;
        while (k >= 0 && ESSENTIAL.has(r.options[k]!.code)) k--;
        if (k < 0) break;
        r.options.splice(k, 1);
      }
    }
    if (bytes === null) {
      const d = this.drop('reply-too-large', `client accepts ${max} bytes`);
      d.writes = writes;
      return d;
    }
    const route = replyRoute(m, r);
    const clientPort = this.serverPort + 1;
    let address = BROADCAST_ADDRESS;
    let port = clientPort;
    let broadcast = false;
    let linkUnicast: Buffer | null = null;
    let chaddr: Buffer | null = null;
    let kind: EngineReply['route'] = route.kind;
    if (route.kind === 'relay') {
      address = route.address; port = this.serverPort;
    } else if (route.kind === 'ciaddr') {
      address = route.address;
    } else if (route.kind === 'yiaddr' && this.unicastToYiaddr) {
      address = route.address; chaddr = Buffer.from(m.chaddr.subarray(0, m.hlen));
    } else {
      // Broadcast; also for 'yiaddr' without ARP injection, as ISC dhcpd does on plain sockets.
      const hw = ctx.input.senderHwAddress;
      broadcast = true;
      kind = 'broadcast';
      if (this.config.ipoib.linkUnicastReplies && hw !== undefined && hw !== null && hw.length === 20) linkUnicast = Buffer.from(hw);
    }
    const rep: EngineReply = { message: r, bytes, address, port, broadcast, linkUnicast, chaddr, route: kind };
    return { replies: [rep], writes, drop: undefined };
  }

  // ---- drops ----

  private drop(reason: DropReason, detail: string): Handled {
    return { replies: [], writes: [], drop: { reason, detail } };
  }

  private dropped(
    m: DhcpMessage | null, id: ClientIdentity | null, fixedLabel: string | null, reason: DropReason, detail: string,
    variant: HardwareVariant | undefined, messageType: number | undefined,
  ): EngineResult {
    this.counters.drops[reason]++;
    const out = new Outcome([], [], { reason, detail }, m, id, fixedLabel, variant, messageType);
    if (this.logs('info')) this.log!.info({ reason, detail }, `${out.label} dropped: ${reason}`);
    return out;
  }
}

function stripVersion(l: Lease): NewLease {
  const { version: _v, ...rest } = l;
  return rest;
}
