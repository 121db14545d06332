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

import { WireError } from '../codec/wire-error.js';
import type { Lease, NewLease } from '../lease-db/lease.js';
import {
  BOOTREPLY, BOOTREQUEST, DhcpMessageType, FLAG_BROADCAST, FILE_LENGTH, OptionCode, SNAME_LENGTH,
  decodeDhcpMessage, emptyDhcpMessage, encodeDhcpMessage, findOption, getMaxMessageSize, getMessageType,
  getParameterRequestList, getRequestedAddress, getServerIdentifier, ipv4ToString, replyRoute,
  type DhcpMessage, type DhcpOption, type HardwareVariant,
} from '../protocol/index.js';
import type { BootFields, OptionSpec, PoolConfig, ReservationConfig, ServerConfig, SubnetConfig } from './config.js';
import { DROP_REASON_NAMES, type Drop, type DropReason } from './drop-reasons.js';
import { clientIdentity, clientLabel, type ClientIdentity } from './identity.js';
import { LeaseTable, type LeaseWrite, type Owner } from './lease-table.js';
import { ClientRateLimiter } from './rate-limit.js';

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
  drop?: Drop;
  /** `cid=... guid=... htype=32 hlen=0 xid=0x...`, or a short description when undecodable. */
  label: string;
  variant?: HardwareVariant;
  messageType?: number;
}

export interface EngineCounters {
  received: Record<string, number>;
  sent: Record<string, number>;
  drops: Record<DropReason, number>;
  variants: Record<string, number>;
  declines: number;
  leasesWritten: number;
}

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

/** Everything one message's handling needs, built once (Kea's ClientContext4). */
interface Context {
  m: DhcpMessage;
  input: EngineInput;
  id: ClientIdentity;
  who: Owner;
  now: number;
  serverId: number;
  subnet: SubnetConfig | null;
  classes: Set<string>;
  reservation: ReservationConfig | null;
}

interface Allocation {
  address: number;
  pool: PoolConfig | null;
  source: 'reservation' | 'existing' | 'requested' | 'pool';
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
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

  handle(input: EngineInput): EngineResult {
    let m: DhcpMessage;
    if (input.message !== undefined) {
      m = input.message;
    } else {
      try {
        m = decodeDhcpMessage(input.data ?? Buffer.alloc(0));
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        return this.dropped(`src=${ipv4ToString(input.source.address)}:${input.source.port}`, 'malformed',
          `${err.field} at offset ${err.offset}: ${err.message}`);
      }
    }
    if (m.op !== BOOTREQUEST) return this.dropped(clientLabel(m, null), 'not-request', `op ${m.op}`);
    const type = getMessageType(m);
    if (type === undefined) return this.dropped(clientLabel(m, null), 'bootp', 'no option 53');
    const typeName = TYPE_NAMES[type] ?? `type-${type}`;
    this.counters.received[typeName] = (this.counters.received[typeName] ?? 0) + 1;
    const id = clientIdentity(m, input.senderHwAddress);
    if (typeof id === 'string') {
      return { ...this.dropped(clientLabel(m, null), id, `htype ${m.htype} hlen ${m.hlen}`), messageType: type };
    }
    const label = clientLabel(m, id);
    this.counters.variants[id.variant] = (this.counters.variants[id.variant] ?? 0) + 1;
    const base = { label, variant: id.variant, messageType: type };
    if (!this.limiter.take(id.leaseKeyText, input.now)) return { ...this.dropped(label, 'rate-limited', typeName), ...base };
    const serverId = this.interfaces.get(input.interface);
    if (serverId === undefined) return { ...this.dropped(label, 'unknown-interface', input.interface), ...base };

    const classes = new Set<string>();
    for (const c of this.config.classes) if (c.test !== null && c.test.evaluate(m, classes)) classes.add(c.name);
    const ctx: Context = {
      m, input, id, who: { client: id.leaseKeyText, portGuid: id.portGuid }, now: Math.floor(input.now / 1000),
      serverId, subnet: null, classes, reservation: null,
    };
    ctx.subnet = this.selectSubnet(ctx);
    if (ctx.subnet !== null) {
      ctx.reservation = ctx.subnet.reservationIndex.match(id.keys)?.value ?? null;
      for (const c of ctx.reservation?.clientClasses ?? []) classes.add(c);
      const sid = this.option(ctx, OptionCode.SERVER_IDENTIFIER);
      if (sid !== undefined && sid.data.length === 4) ctx.serverId = sid.data.readUInt32BE(0);
    }
    this.log?.debug({ variant: id.variant, type: typeName, subnet: ctx.subnet?.id ?? null }, `${label} received ${typeName}`);

    let r: Omit<EngineResult, 'label'>;
    switch (type) {
      case DhcpMessageType.DHCPDISCOVER: r = this.discover(ctx); break;
      case DhcpMessageType.DHCPREQUEST: r = this.request(ctx); break;
      case DhcpMessageType.DHCPDECLINE: r = this.decline(ctx); break;
      case DhcpMessageType.DHCPRELEASE: r = this.release(ctx); break;
      case DhcpMessageType.DHCPINFORM: r = this.inform(ctx); break;
      default: r = this.drop('unsupported-type', typeName);
    }
    if (r.drop !== undefined) {
      this.counters.drops[r.drop.reason]++;
      this.log?.info({ reason: r.drop.reason, detail: r.drop.detail, variant: id.variant }, `${label} dropped: ${r.drop.reason}`);
    }
    for (const rep of r.replies) {
      const n = TYPE_NAMES[getMessageType(rep.message) ?? 0] ?? 'unknown';
      this.counters.sent[n] = (this.counters.sent[n] ?? 0) + 1;
      this.log?.info({ yiaddr: ipv4ToString(rep.message.yiaddr), to: ipv4ToString(rep.address), variant: id.variant }, `${label} ${n}`);
    }
    this.counters.leasesWritten += r.writes.length;
    return { ...r, ...base };
  }

  // ---- subnet selection (Kea's Dhcpv4Srv::selectSubnet order) ----

  private selectSubnet(ctx: Context): SubnetConfig | null {
    const { m } = ctx;
    const usable = (s: SubnetConfig): boolean => s.clientClass === null || ctx.classes.has(s.clientClass);
    const containing = (a: number): SubnetConfig | null =>
      this.config.subnets.find((s) => usable(s) && ((a & s.mask) >>> 0) === s.network) ?? null;
    const selector = this.linkSelection(m);
    if (selector !== null) return containing(selector);
    if (m.giaddr !== 0) {
      return this.config.subnets.find((s) => usable(s) && s.relayAddresses.includes(m.giaddr)) ?? containing(m.giaddr);
    }
    if (m.ciaddr !== 0) {
      const s = containing(m.ciaddr);
      if (s !== null) return s;
    }
    return this.config.subnets.find((s) => usable(s) && s.interface === ctx.input.interface) ?? containing(ctx.serverId);
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
    return ctx.subnet!.pools.find((p) => address >= p.first && address <= p.last && this.poolAllowed(ctx, p)) ?? null;
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
    const res = ctx.reservation?.ipAddress ?? null;
    if (res !== null) {
      const u = this.usable(ctx, res);
      if (u !== false) return { address: res, pool: u, source: 'reservation' };
      this.log?.info({ address: ipv4ToString(res) }, `${clientLabel(ctx.m, ctx.id)} reserved address is held by another client`);
    }
    const offer = this.table.offerFor(ctx.subnet!.id, ctx.who.client);
    const existing = [offer?.expires !== undefined && offer.expires > ctx.now ? offer.address : null,
      this.table.forClient(ctx.subnet!.id, ctx.who)?.address ?? null];
    for (const a of existing) {
      if (a === null) continue;
      const u = this.usable(ctx, a);
      if (u !== false) return { address: a, pool: u, source: 'existing' };
    }
    if (requested !== null && requested !== 0) {
      const u = this.usable(ctx, requested);
      if (u !== false) return { address: requested, pool: u, source: 'requested' };
    }
    for (const p of ctx.subnet!.pools) {
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

  private discover(ctx: Context): Omit<EngineResult, 'label'> {
    if (ctx.subnet === null) return this.drop('no-subnet', this.selectorText(ctx));
    const a = this.allocate(ctx, getRequestedAddress(ctx.m) ?? null);
    if (a === null) return this.drop('pool-exhausted', `subnet ${ctx.subnet.subnet}`);
    if (this.config.offerLifetime > 0) {
      this.table.addOffer({
        subnetId: ctx.subnet.id, address: a.address, client: ctx.who.client, portGuid: ctx.who.portGuid,
        expires: ctx.now + this.config.offerLifetime,
      });
    }
    return this.reply(ctx, DhcpMessageType.DHCPOFFER, a.address, a.pool, [], 0);
  }

  private request(ctx: Context): Omit<EngineResult, 'label'> {
    const { m } = ctx;
    const sid = getServerIdentifier(m);
    const requested = getRequestedAddress(m) ?? null;
    if (sid !== undefined && !this.serverIds.has(sid)) {
      // SELECTING another server's offer (RFC 2131 §4.3.2): withdraw ours.
      if (ctx.subnet !== null) this.table.dropOffer(ctx.subnet.id, ctx.who.client);
      return this.drop('other-server', `server identifier ${ipv4ToString(sid)}`);
    }
    const address = requested ?? (m.ciaddr !== 0 ? m.ciaddr : null);
    if (address === null) return this.drop('request-invalid', 'no ciaddr and no option 50');
    const subnet = ctx.subnet;
    const selecting = sid !== undefined;
    const state = selecting ? 'SELECTING' : requested !== null && m.ciaddr === 0 ? 'INIT-REBOOT' : 'RENEWING/REBINDING';
    if (subnet === null) return this.drop('no-subnet', this.selectorText(ctx));
    const authoritative = subnet.authoritative;
    const known = this.table.forClient(subnet.id, ctx.who) !== undefined || this.table.offerFor(subnet.id, ctx.who.client) !== undefined;
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
    const old = this.table.forClient(subnet.id, ctx.who);
    if (old !== undefined && old.address !== address && (old.state === 'bound' || old.state === 'offered')) {
      writes.push(this.table.write({ ...stripVersion(old), state: 'released', expiry: ctx.now, server: this.serverName }, ctx.now));
    }
    const lease: NewLease = {
      address, subnetId: subnet.id, clientId: ctx.id.leaseKey, portGuid: ctx.id.portGuid, hwaddr: ctx.id.hwaddr,
      hostname: ctx.reservation?.hostname ?? this.clientHostname(m), state: 'bound', start: ctx.now,
      expiry: ctx.now + valid, server: this.serverName,
    };
    writes.push(this.table.write(lease, ctx.now));
    this.table.dropOffer(subnet.id, ctx.who.client);
    return this.reply(ctx, DhcpMessageType.DHCPACK, address, a.pool, writes, selecting || requested !== null ? 0 : m.ciaddr);
  }

  private decline(ctx: Context): Omit<EngineResult, 'label'> {
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
    this.log?.info({ address: ipv4ToString(address), holdOff: hold }, `${clientLabel(ctx.m, ctx.id)} declined`);
    return { replies: [], writes: [w] };
  }

  private release(ctx: Context): Omit<EngineResult, 'label'> {
    const sid = getServerIdentifier(ctx.m);
    if (sid !== undefined && !this.serverIds.has(sid)) return this.drop('other-server', `server identifier ${ipv4ToString(sid)}`);
    const address = ctx.m.ciaddr;
    const l = this.table.get(address);
    if (address === 0 || l === undefined || !this.table.owns(ctx.who, l.clientId, l.portGuid) || (l.state !== 'bound' && l.state !== 'offered')) {
      return this.drop('release-invalid', `${ipv4ToString(address)} is not leased to this client`);
    }
    const w = this.table.write({ ...stripVersion(l), state: 'released', expiry: ctx.now, server: this.serverName }, ctx.now);
    return { replies: [], writes: [w] };
  }

  private inform(ctx: Context): Omit<EngineResult, 'label'> {
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

  /** An option value by Kea's precedence: host reservation, pool, subnet, class (in order), global. */
  private option(ctx: Context, code: number, pool: PoolConfig | null = null): OptionSpec | undefined {
    for (const list of this.optionLevels(ctx, pool)) {
      for (const o of list) if (o.code === code) return o;
    }
    return undefined;
  }

  private optionLevels(ctx: Context, pool: PoolConfig | null): OptionSpec[][] {
    const levels: OptionSpec[][] = [];
    if (ctx.reservation !== null) levels.push(ctx.reservation.options);
    if (pool !== null) levels.push(pool.options);
    if (ctx.subnet !== null) levels.push(ctx.subnet.options);
    for (const c of this.config.classes) if (ctx.classes.has(c.name)) levels.push(c.options);
    levels.push(this.config.options);
    return levels;
  }

  private bootFields(ctx: Context): BootFields {
    const levels: BootFields[] = [];
    if (ctx.reservation !== null) levels.push(ctx.reservation.boot);
    if (ctx.subnet !== null) levels.push(ctx.subnet.boot);
    for (const c of this.config.classes) if (ctx.classes.has(c.name)) levels.push(c.boot);
    levels.push(this.config.boot);
    const pick = <K extends keyof BootFields>(k: K): BootFields[K] => levels.find((b) => b[k] !== null)?.[k] ?? null;
    return { nextServer: pick('nextServer'), serverHostname: pick('serverHostname'), bootFileName: pick('bootFileName') };
  }

  private reply(
    ctx: Context, type: number, yiaddr: number, pool: PoolConfig | null, writes: LeaseWrite[], ciaddr: number, inform = false,
  ): Omit<EngineResult, 'label'> {
    const { m } = ctx;
    const r = this.header(m);
    r.yiaddr = yiaddr;
    r.ciaddr = ciaddr;
    const boot = this.bootFields(ctx);
    if (boot.nextServer !== null) r.siaddr = boot.nextServer;
    if (boot.serverHostname !== null) Buffer.from(boot.serverHostname, 'latin1').copy(r.sname, 0, 0, SNAME_LENGTH - 1);
    if (boot.bootFileName !== null) Buffer.from(boot.bootFileName, 'latin1').copy(r.file, 0, 0, FILE_LENGTH - 1);

    const opts: DhcpOption[] = [
      { code: OptionCode.MESSAGE_TYPE, data: Buffer.from([type]) },
      { code: OptionCode.SERVER_IDENTIFIER, data: u32(ctx.serverId) },
    ];
    if (!inform) {
      const lt = this.lifetime(ctx);
      opts.push({ code: OptionCode.LEASE_TIME, data: u32(lt.valid) });
      if (lt.t1 !== null) opts.push({ code: OptionCode.RENEWAL_TIME, data: u32(lt.t1) });
      if (lt.t2 !== null) opts.push({ code: OptionCode.REBINDING_TIME, data: u32(lt.t2) });
    }
    const have = new Set(opts.map((o) => o.code));
    const add = (code: number, mandatory: boolean): void => {
      if (have.has(code)) return;
      const o = this.option(ctx, code, pool);
      if (o === undefined || o.neverSend || (!mandatory && !o.alwaysSend && !requested.has(code))) return;
      have.add(code);
      opts.push({ code, data: o.data });
    };
    const prl = getParameterRequestList(m);
    const requested = new Set(prl);
    const mask = this.option(ctx, OptionCode.SUBNET_MASK, pool);
    if (mask === undefined && ctx.subnet !== null) { opts.push({ code: OptionCode.SUBNET_MASK, data: u32(ctx.subnet.mask) }); have.add(OptionCode.SUBNET_MASK); }
    else add(OptionCode.SUBNET_MASK, true);
    for (const code of prl) {
      if (code === OptionCode.HOST_NAME && ctx.reservation?.hostname != null && !have.has(code)) {
        opts.push({ code, data: Buffer.from(ctx.reservation.hostname, 'latin1') }); have.add(code);
      }
      add(code, false);
    }
    for (const code of BASIC_OPTIONS) add(code, true);
    for (const list of this.optionLevels(ctx, pool)) for (const o of list) if (o.alwaysSend) add(o.code, false);
    this.finishOptions(m, opts);
    r.options = opts;
    return this.send(ctx, r, writes);
  }

  private nak(ctx: Context, why: string): Omit<EngineResult, 'label'> {
    const r = this.header(ctx.m);
    const opts: DhcpOption[] = [
      { code: OptionCode.MESSAGE_TYPE, data: Buffer.from([DhcpMessageType.DHCPNAK]) },
      { code: OptionCode.SERVER_IDENTIFIER, data: u32(ctx.serverId) },
      { code: OptionCode.MESSAGE, data: Buffer.from(why, 'latin1') },
    ];
    this.finishOptions(ctx.m, opts);
    r.options = opts;
    // RFC 2131 §4.3.2: a relayed NAK carries the BROADCAST flag so the relay broadcasts it.
    if (ctx.m.giaddr !== 0) r.flags |= FLAG_BROADCAST;
    this.log?.info({ why }, `${clientLabel(ctx.m, ctx.id)} NAK`);
    return this.send(ctx, r, []);
  }

  /**
   * Table 3 of RFC 2131: op, xid, flags, giaddr from the client; htype, hlen and chaddr echoed as the
   * client sent them ("chaddr from client"), so an RFC 4390 client gets htype 32 / hlen 0 / empty
   * chaddr back, and FlexBoot (hlen 6) or patched dhclient (hlen 8) find their own chaddr, which they
   * match replies on.
   */
  private header(m: DhcpMessage): DhcpMessage {
    const r = emptyDhcpMessage(BOOTREPLY);
    r.htype = m.htype; r.hlen = m.hlen; m.chaddr.copy(r.chaddr);
    r.xid = m.xid; r.flags = m.flags; r.giaddr = m.giaddr;
    return r;
  }

  /** RFC 6842: echo option 61; RFC 3046 §2.2: echo option 82 unchanged, as the last option. */
  private finishOptions(m: DhcpMessage, opts: DhcpOption[]): void {
    const cid = findOption(m.options, OptionCode.CLIENT_IDENTIFIER);
    if (cid !== undefined && this.config.echoClientId) opts.push({ code: OptionCode.CLIENT_IDENTIFIER, data: Buffer.from(cid) });
    const o82 = findOption(m.options, OptionCode.AGENT_OPTIONS);
    if (o82 !== undefined && m.giaddr !== 0) opts.push({ code: OptionCode.AGENT_OPTIONS, data: Buffer.from(o82) });
  }

  private send(ctx: Context, r: DhcpMessage, writes: LeaseWrite[]): Omit<EngineResult, 'label'> {
    const { m } = ctx;
    const max = getMaxMessageSize(m);
    let bytes: Buffer | null = null;
    for (;;) {
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
    if (bytes === null) return { ...this.drop('reply-too-large', `client accepts ${max} bytes`), writes };
    const route = replyRoute(m, r);
    const clientPort = this.serverPort + 1;
    const base = { message: r, bytes, linkUnicast: null, chaddr: null };
    let rep: EngineReply;
    if (route.kind === 'relay') {
      rep = { ...base, address: route.address, port: this.serverPort, broadcast: false, route: 'relay' };
    } else if (route.kind === 'ciaddr') {
      rep = { ...base, address: route.address, port: clientPort, broadcast: false, route: 'ciaddr' };
    } else if (route.kind === 'yiaddr' && this.unicastToYiaddr) {
      rep = { ...base, address: route.address, port: clientPort, broadcast: false, chaddr: Buffer.from(m.chaddr.subarray(0, m.hlen)), route: 'yiaddr' };
    } else {
      // Broadcast; also for 'yiaddr' without ARP injection, as ISC dhcpd does on plain sockets.
      const hw = ctx.input.senderHwAddress;
      const link = this.config.ipoib.linkUnicastReplies && hw !== undefined && hw !== null && hw.length === 20 ? Buffer.from(hw) : null;
      rep = { ...base, address: BROADCAST_ADDRESS, port: clientPort, broadcast: true, linkUnicast: link, route: 'broadcast' };
    }
    return { replies: [rep], writes };
  }

  // ---- drops ----

  private drop(reason: DropReason, detail: string): Omit<EngineResult, 'label'> {
    return { replies: [], writes: [], drop: { reason, detail } };
  }

  private dropped(label: string, reason: DropReason, detail: string): EngineResult {
    this.counters.drops[reason]++;
    this.log?.info({ reason, detail }, `${label} dropped: ${reason}`);
    return { replies: [], writes: [], drop: { reason, detail }, label };
  }
}

function stripVersion(l: Lease): NewLease {
  const { version: _v, ...rest } = l;
  return rest;
}
