// The DHCP client state machine of RFC 2131 §4.4 (Figure 5: INIT, SELECTING, REQUESTING, BOUND,
// RENEWING, REBINDING, INIT-REBOOT, REBOOTING), §4.1 retransmission, §4.4.5 T1/T2, with RFC 4390's
// IPoIB rules (htype 32, hlen 0, chaddr zero, option 61 always, BROADCAST while unconfigured) and an
// RFC 5227 probe before use. Pure: time and randomness come in, actions (actions.ts) go out.

import { WireError } from '../codec/wire-error.js';
import {
  BOOTREPLY, BOOTREQUEST, DhcpMessageType, FLAG_BROADCAST, HTYPE_INFINIBAND, OptionCode, decodeDhcpMessage,
  emptyDhcpMessage, encodeDhcpMessage, findOption, getClientIdentifier, getMessageType, getOptionValue,
  getServerIdentifier, ipv4ToString, messageLabel, type DhcpMessage, type DhcpOption,
} from '../protocol/index.js';
import type { ApplyReason, ClientAction, ClientEvent, Destination, DropReason } from './actions.js';
import { DROP_REASONS } from './actions.js';
import { buildClientId, startupClientId } from './client-identifier.js';
import { mathRandom, resolveConfig, type ClientConfig, type RandomSource, type ResolvedClientConfig } from './config.js';
import {
  LeaseParameterError, hookEnv, leaseParameters, leaseTimes, mtuDecision, type ClientLease, type HookReason,
  type LinkInfo,
} from './lease.js';

/**
 * RFC 2131 Figure 5, plus PROBING: the §4.4.1 "final check" (an RFC 5227 probe) between the DHCPACK
 * and BOUND, and STOPPED after stop(). INIT and INIT-REBOOT last until the first transmission.
 */
export type ClientState =
  | 'INIT' | 'SELECTING' | 'REQUESTING' | 'PROBING' | 'BOUND' | 'RENEWING' | 'REBINDING'
  | 'INIT-REBOOT' | 'REBOOTING' | 'STOPPED';

interface Offer {
  address: number;
  serverIdentifier: number;
  receivedAt: number;
}

/** Bound on timer steps per poll() so a clock jump can never loop forever. */
const MAX_STEPS_PER_POLL = 64;

function isUnicast(a: number): boolean {
  const first = a >>> 24;
  return a !== 0 && first !== 0 && first !== 127 && first < 224;
}

function addOption(options: DhcpOption[], code: number, data: Buffer): void {
  options.push({ code, data });
}

function ipv4Bytes(a: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(a >>> 0);
  return b;
}

function u16Bytes(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function typeName(type: number): string {
  return Object.entries(DhcpMessageType).find(([, v]) => v === type)?.[0] ?? `type-${type}`;
}

/** Options copied out of a decoded message (its buffers are views of the receive buffer). */
function copyOptions(options: readonly DhcpOption[]): DhcpOption[] {
  return options.map((o) => ({ code: o.code, data: Buffer.from(o.data) }));
}

export class ClientEngine {
  readonly config: ResolvedClientConfig;
  private readonly random: RandomSource;

  private stateValue: ClientState = 'STOPPED';
  private started = false;
  private clientIdValue: Buffer;
  private link: LinkInfo;

  /** The transaction in progress (null: none; every reply is then an xid mismatch). */
  private xid: number | null = null;
  /** Start of the acquisition or renewal process: the base of `secs`. */
  private processStart = 0;
  /** First REQUEST of this exchange: lease times count from it (RFC 2131 §4.4.1). */
  private requestSentAt = 0;
  /** Transmissions so far in this exchange. */
  private attempts = 0;
  private retransmitAt = Infinity;
  /** INIT/INIT-REBOOT: first transmission; SELECTING: end of the offer window; REBOOTING: give up; PROBING: probe timeout. */
  private stateDeadline = Infinity;
  private failAt = Infinity;
  private failReported = false;

  private offers: Offer[] = [];
  private selected: Offer | null = null;
  /** The ACKed lease awaiting the probe result. */
  private candidate: ClientLease | null = null;

  private leaseValue: ClientLease | null = null;
  /** The lease read from the lease file, tried by INIT-REBOOT. */
  private saved: ClientLease | null = null;
  /** Address asked for in DISCOVER (option 50) and preferred among offers. */
  private preferredAddress: number | null = null;

  readonly drops: Record<DropReason, number>;
  readonly sent: Record<string, number> = {};

  constructor(config: ClientConfig, random: RandomSource = mathRandom) {
    this.config = resolveConfig(config);
    this.random = random;
    this.link = this.config.link;
    this.clientIdValue = buildClientId(this.config.clientId, this.config.portGuid);
    this.drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  }

  get state(): ClientState { return this.stateValue; }
  get lease(): ClientLease | null { return this.leaseValue; }
  /** Option 61 data sent in every message. */
  get clientId(): Buffer { return Buffer.from(this.clientIdValue); }
  get currentXid(): number | null { return this.xid; }

  /**
   * Starts the client. With a saved lease for this interface that has not expired, INIT-REBOOT
   * (RFC 2131 §3.2); otherwise INIT. Runs the PREINIT hook, then whatever is due at `now`.
   */
  start(now: number, savedLease: ClientLease | null = null): ClientAction[] {
    const out: ClientAction[] = [];
    this.started = true;
    const usable = savedLease !== null && savedLease.interface === this.config.interface && savedLease.expiresAt > now;
    const savedId = savedLease === null ? null : findOption(savedLease.options, OptionCode.CLIENT_IDENTIFIER) ?? null;
    this.clientIdValue = startupClientId(this.config.clientId, this.config.portGuid, savedId);
    this.failAt = now + this.config.failAfterMs;
    this.failReported = false;
    this.hook(out, 'PREINIT', null, null);
    if (usable) {
      this.saved = savedLease;
      this.preferredAddress = savedLease.address;
      this.setState(out, 'INIT-REBOOT', `saved lease ${ipv4ToString(savedLease.address)} until ${new Date(savedLease.expiresAt).toISOString()}`);
      this.stateDeadline = now + this.initialDelay();
    } else {
      if (savedLease !== null) this.preferredAddress = savedLease.address;
      this.enterInit(out, now, 0, 'no usable saved lease');
    }
    this.runTimers(now, out);
    return out;
  }

  /** The earliest time poll() has something to do (Infinity: nothing until a message or call). */
  nextDeadline(): number {
    switch (this.stateValue) {
      case 'INIT': case 'INIT-REBOOT': case 'PROBING': return this.stateDeadline;
      case 'SELECTING': return Math.min(this.retransmitAt, this.stateDeadline, this.failReported ? Infinity : this.failAt);
      case 'REQUESTING': return this.retransmitAt;
      case 'REBOOTING': return Math.min(this.retransmitAt, this.stateDeadline);
      case 'BOUND': return Math.min(this.leaseValue!.renewAt, this.leaseValue!.expiresAt);
      case 'RENEWING': return Math.min(this.retransmitAt, this.leaseValue!.rebindAt, this.leaseValue!.expiresAt);
      case 'REBINDING': return Math.min(this.retransmitAt, this.leaseValue!.expiresAt);
      case 'STOPPED': return Infinity;
    }
  }

  /** Runs every timer due at `now`. */
  poll(now: number): ClientAction[] {
    const out: ClientAction[] = [];
    this.runTimers(now, out);
    return out;
  }

  /** A datagram received on the client port (bytes, or an already decoded message). */
  handle(packet: Buffer | DhcpMessage, now: number): ClientAction[] {
    const out: ClientAction[] = [];
    let m: DhcpMessage;
    if (Buffer.isBuffer(packet)) {
      try {
        m = decodeDhcpMessage(packet);
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        this.drop(out, 'malformed', err.message);
        return out;
      }
    } else {
      m = packet;
    }
    this.receive(m, now, out);
    this.runTimers(now, out);
    return out;
  }

  /** The daemon's answer to a `probe` action: did any host claim the address? */
  probeResult(conflict: boolean, now: number): ClientAction[] {
    const out: ClientAction[] = [];
    if (this.stateValue !== 'PROBING' || this.candidate === null) {
      this.log(out, 'debug', 'conflict', `probe result ignored in ${this.stateValue}`);
      return out;
    }
    const lease = this.candidate;
    this.candidate = null;
    if (conflict) this.decline(out, now, lease);
    else this.bind(out, now, lease, 'BOUND');
    this.runTimers(now, out);
    return out;
  }

  /**
   * The interface now sits on another port (bond or HA failover). The identifier stays unless
   * followPortChange; a bound client announces its address so neighbours learn the new hardware address.
   */
  portChanged(portGuid: bigint, now: number): ClientAction[] {
    const out: ClientAction[] = [];
    if (this.config.followPortChange) {
      this.clientIdValue = buildClientId(this.config.clientId, portGuid);
      this.log(out, 'info', 'client-id-changed', `port GUID 0x${portGuid.toString(16)}: client identifier rebuilt (followPortChange)`);
    } else {
      this.log(out, 'info', 'port-changed', `port GUID 0x${portGuid.toString(16)}: client identifier kept`);
    }
    const bound = this.stateValue === 'BOUND' || this.stateValue === 'RENEWING' || this.stateValue === 'REBINDING';
    if (bound && this.leaseValue !== null) out.push({ kind: 'announce', address: this.leaseValue.address });
    this.runTimers(now, out);
    return out;
  }

  /** Interface mode or datagram MTU changed; used for option 57 and the MTU rule of the next lease applied. */
  setLink(link: LinkInfo): void {
    this.link = link;
  }

  /**
   * Orderly stop. `release` (dhclient -r): DHCPRELEASE to the server, deconfigure, RELEASE hook, forget
   * the lease. Otherwise (dhclient -x) the STOP hook runs and the lease stays saved for INIT-REBOOT.
   */
  stop(now: number, opts: { release: boolean }): ClientAction[] {
    const out: ClientAction[] = [];
    const bound = this.stateValue === 'BOUND' || this.stateValue === 'RENEWING' || this.stateValue === 'REBINDING';
    const held = bound ? this.leaseValue : this.saved;
    if (opts.release && held !== null) {
      out.push(...this.releaseLease(held, now, bound));
    } else {
      this.hook(out, 'STOP', null, bound ? this.leaseValue : null);
    }
    this.leaseValue = opts.release ? null : this.leaseValue;
    this.xid = null;
    this.retransmitAt = Infinity;
    this.stateDeadline = Infinity;
    this.setState(out, 'STOPPED', opts.release ? 'released' : 'stopped, lease kept');
    return out;
  }

  /** DHCPRELEASE for `lease` (also a saved one, for `-r` without a running client), and its consequences. */
  releaseLease(lease: ClientLease, now: number, configured = true): ClientAction[] {
    const out: ClientAction[] = [];
    const m = this.message(DhcpMessageType.DHCPRELEASE, this.random.u32() >>> 0, 0, lease.address);
    addOption(m.options, OptionCode.SERVER_IDENTIFIER, ipv4Bytes(lease.serverIdentifier));
    this.send(out, m, { kind: 'unicast', address: lease.serverIdentifier });
    if (configured) out.push({ kind: 'deconfigure', reason: 'RELEASE', lease });
    this.hook(out, 'RELEASE', null, lease);
    out.push({ kind: 'save-lease', lease: null });
    this.log(out, 'info', 'released', `released ${ipv4ToString(lease.address)} to ${ipv4ToString(lease.serverIdentifier)} at ${now}`);
    return out;
  }

  // ---- receive ------------------------------------------------------------------------------------

  private expected(): readonly number[] {
    switch (this.stateValue) {
      case 'SELECTING': return [DhcpMessageType.DHCPOFFER];
      case 'REQUESTING': case 'REBOOTING': case 'RENEWING': case 'REBINDING':
        return [DhcpMessageType.DHCPACK, DhcpMessageType.DHCPNAK];
      default: return [];
    }
  }

  private receive(m: DhcpMessage, now: number, out: ClientAction[]): void {
    if (m.op !== BOOTREPLY) return this.drop(out, 'not-a-reply', `op ${m.op} (${messageLabel(m)})`);
    if (m.htype !== HTYPE_INFINIBAND) return this.drop(out, 'htype-mismatch', `htype ${m.htype} is not 32 (${messageLabel(m)})`);
    if (this.xid === null || m.xid !== this.xid) {
      return this.drop(out, 'xid-mismatch', `${messageLabel(m)}: expected ${this.xid === null ? 'no reply' : `xid 0x${this.xid.toString(16).padStart(8, '0')}`}`);
    }
    const type = getMessageType(m);
    if (type === undefined) return this.drop(out, 'no-message-type', `BOOTP reply ${messageLabel(m)}`);
    if (!this.expected().includes(type)) return this.drop(out, 'unexpected-type', `${typeName(type)} in ${this.stateValue}`);
    const cid = getClientIdentifier(m);
    if (cid !== undefined && !cid.equals(this.clientIdValue)) return this.drop(out, 'client-id-mismatch', messageLabel(m));
    const sid = getServerIdentifier(m);
    if (sid === undefined) return this.drop(out, 'no-server-id', `${typeName(type)} without option 54 (${messageLabel(m)})`);
    if (type === DhcpMessageType.DHCPOFFER) return this.onOffer(m, sid, now, out);
    const requiredServer = this.stateValue === 'REQUESTING' ? this.selected?.serverIdentifier
      : this.stateValue === 'RENEWING' ? this.leaseValue?.serverIdentifier : undefined;
    if (requiredServer !== undefined && sid !== requiredServer) {
      return this.drop(out, 'wrong-server', `${typeName(type)} from ${ipv4ToString(sid)}, expected ${ipv4ToString(requiredServer)}`);
    }
    if (type === DhcpMessageType.DHCPNAK) return this.onNak(m, sid, now, out);
    return this.onAck(m, sid, now, out);
  }

  /** Checks shared by OFFER and ACK: yiaddr, and options 1/3 consistency. */
  private checkAddressing(m: DhcpMessage, out: ClientAction[]): boolean {
    if (!isUnicast(m.yiaddr)) {
      this.drop(out, 'yiaddr-invalid', `yiaddr ${ipv4ToString(m.yiaddr)} (${messageLabel(m)})`);
      return false;
    }
    let params;
    try {
      params = leaseParameters(m.yiaddr, m.options);
    } catch (err) {
      if (err instanceof LeaseParameterError) this.drop(out, 'bad-subnet-mask', `${err.message} (${messageLabel(m)})`);
      else if (err instanceof WireError) this.drop(out, 'malformed', `${err.message} (${messageLabel(m)})`);
      else throw err;
      return false;
    }
    for (const r of params.routers) {
      if (((r & params.subnetMask) >>> 0) !== params.networkNumber) {
        this.drop(out, 'router-outside-subnet',
          `router ${ipv4ToString(r)} is outside ${ipv4ToString(params.networkNumber)}/${params.prefixLength} (${messageLabel(m)})`);
        return false;
      }
    }
    return true;
  }

  private onOffer(m: DhcpMessage, sid: number, now: number, out: ClientAction[]): void {
    if (!this.checkAddressing(m, out)) return;
    const offer: Offer = { address: m.yiaddr, serverIdentifier: sid, receivedAt: now };
    this.offers.push(offer);
    this.log(out, 'debug', 'selected', `OFFER ${ipv4ToString(m.yiaddr)} from ${ipv4ToString(sid)}`);
    if (this.offers.length === 1) this.stateDeadline = now + this.config.selectWindowMs;
    if (this.preferredAddress !== null && m.yiaddr === this.preferredAddress) this.stateDeadline = now;
  }

  private onNak(m: DhcpMessage, sid: number, now: number, out: ClientAction[]): void {
    const text = findOption(m.options, OptionCode.MESSAGE)?.toString('latin1') ?? '';
    this.log(out, 'warn', 'nak', `DHCPNAK from ${ipv4ToString(sid)} in ${this.stateValue}${text === '' ? '' : `: ${text}`}`);
    const held = this.leaseValue;
    if (held !== null && (this.stateValue === 'RENEWING' || this.stateValue === 'REBINDING')) {
      out.push({ kind: 'deconfigure', reason: 'NAK', lease: held });
      this.hook(out, 'EXPIRE', null, held);
    }
    if (held !== null || this.saved !== null) out.push({ kind: 'save-lease', lease: null });
    this.leaseValue = null;
    this.saved = null;
    this.preferredAddress = null;
    this.enterInit(out, now, this.config.nakDelayMs, 'DHCPNAK');
  }

  private onAck(m: DhcpMessage, sid: number, now: number, out: ClientAction[]): void {
    if (!this.checkAddressing(m, out)) return;
    let leaseTime: number;
    try {
      const v = getOptionValue(m.options, OptionCode.LEASE_TIME);
      if (typeof v !== 'number') return this.drop(out, 'lease-time-missing', `DHCPACK without option 51 (${messageLabel(m)})`);
      leaseTime = v;
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      return this.drop(out, 'malformed', `${err.message} (${messageLabel(m)})`);
    }
    if (leaseTime === 0) return this.drop(out, 'lease-time-zero', `DHCPACK with lease time 0 (${messageLabel(m)})`);
    const options = copyOptions(m.options);
    // The identifier goes into the lease (and so the lease file) even when the server did not echo it:
    // a restart on the HA/bond partner port then keeps the identity (client-identifier.ts startupClientId).
    if (findOption(options, OptionCode.CLIENT_IDENTIFIER) === undefined) {
      options.push({ code: OptionCode.CLIENT_IDENTIFIER, data: Buffer.from(this.clientIdValue) });
    }
    const params = leaseParameters(m.yiaddr, options);
    if (!params.subnetMaskGiven) {
      this.log(out, 'warn', 'no-subnet-mask', `DHCPACK without option 1: using /${params.prefixLength}`);
    }
    const lease: ClientLease = {
      ...params, interface: this.config.interface, address: m.yiaddr, serverIdentifier: sid, options, leaseTime,
      startedAt: this.requestSentAt, ...leaseTimes(leaseTime, options, this.requestSentAt),
    };
    this.xid = null;
    this.retransmitAt = Infinity;
    switch (this.stateValue) {
      case 'REQUESTING':
        if (this.config.probe.enabled) {
          this.candidate = lease;
          this.stateDeadline = now + this.probeTimeout();
          this.setState(out, 'PROBING', `probing ${ipv4ToString(lease.address)}`);
          out.push({ kind: 'probe', address: lease.address, probe: this.config.probe });
        } else {
          this.bind(out, now, lease, 'BOUND');
        }
        return;
      case 'REBOOTING': return this.bind(out, now, lease, 'REBOOT');
      case 'RENEWING': return this.bind(out, now, lease, 'RENEW');
      default: return this.bind(out, now, lease, 'REBIND');
    }
  }

  /** Longest an RFC 5227 probe can take, plus a second for the daemon to answer. */
  private probeTimeout(): number {
    const p = this.config.probe;
    return p.waitMs + Math.max(0, p.count - 1) * p.maxIntervalMs + p.announceWaitMs + 1000;
  }

  // ---- transitions --------------------------------------------------------------------------------

  private bind(out: ClientAction[], now: number, lease: ClientLease, reason: ApplyReason): void {
    const previous = this.leaseValue;
    const mtu = mtuDecision(lease.interfaceMtu, this.link);
    if (!mtu.apply && mtu.offered !== null) this.log(out, 'warn', 'mtu-not-applied', mtu.reason);
    this.leaseValue = lease;
    this.saved = null;
    this.preferredAddress = lease.address;
    this.offers = [];
    this.selected = null;
    this.xid = null;
    this.retransmitAt = Infinity;
    this.stateDeadline = Infinity;
    this.failAt = Infinity;
    out.push({ kind: 'apply', reason, lease, previous, mtu });
    this.hook(out, reason, lease, previous, mtu.apply);
    out.push({ kind: 'save-lease', lease });
    if (previous === null || previous.address !== lease.address || reason === 'BOUND' || reason === 'REBOOT' || reason === 'TIMEOUT') {
      out.push({ kind: 'announce', address: lease.address });
    }
    const until = Number.isFinite(lease.expiresAt) ? new Date(lease.expiresAt).toISOString() : 'never';
    this.setState(out, 'BOUND', `${reason} ${ipv4ToString(lease.address)}/${lease.prefixLength} from ${ipv4ToString(lease.serverIdentifier)} until ${until} (at ${now})`);
  }

  private decline(out: ClientAction[], now: number, lease: ClientLease): void {
    this.log(out, 'warn', 'conflict', `${ipv4ToString(lease.address)} is in use by another host: DHCPDECLINE`);
    const m = this.message(DhcpMessageType.DHCPDECLINE, this.random.u32() >>> 0, 0, 0);
    addOption(m.options, OptionCode.REQUESTED_ADDRESS, ipv4Bytes(lease.address));
    addOption(m.options, OptionCode.SERVER_IDENTIFIER, ipv4Bytes(lease.serverIdentifier));
    this.send(out, m, { kind: 'broadcast' });
    if (this.preferredAddress === lease.address) this.preferredAddress = null;
    this.enterInit(out, now, this.config.declineWaitMs, 'DHCPDECLINE');
  }

  private expire(out: ClientAction[], now: number): void {
    const lease = this.leaseValue!;
    this.log(out, 'warn', 'expired', `lease on ${ipv4ToString(lease.address)} expired`);
    out.push({ kind: 'deconfigure', reason: 'EXPIRE', lease });
    this.hook(out, 'EXPIRE', null, lease);
    out.push({ kind: 'save-lease', lease: null });
    this.leaseValue = null;
    this.enterInit(out, now, 0, 'lease expired');
  }

  private enterInit(out: ClientAction[], now: number, delay: number, why: string): void {
    this.xid = null;
    this.offers = [];
    this.selected = null;
    this.candidate = null;
    this.retransmitAt = Infinity;
    this.stateDeadline = now + delay + this.initialDelay();
    if (this.failAt === Infinity || this.failReported) {
      this.failAt = this.stateDeadline + this.config.failAfterMs;
      this.failReported = false;
    }
    this.setState(out, 'INIT', why);
  }

  private initialDelay(): number {
    const { initialDelayMinMs: lo, initialDelayMaxMs: hi } = this.config;
    return hi > lo ? Math.round(lo + this.random.float() * (hi - lo)) : lo;
  }

  /** RFC 2131 §4.1: the k-th delay (0-based) of the backoff, randomised by ±jitter. */
  private backoff(k: number): number {
    const b = this.config.backoffMs;
    const base = b[Math.min(k, b.length - 1)]!;
    const j = this.config.jitterMs;
    return j > 0 ? Math.round(base + (this.random.float() * 2 - 1) * j) : base;
  }

  /** RFC 2131 §4.4.5: half the time left until `limit`, at least the minimum; Infinity when `limit` comes first. */
  private renewRetransmit(now: number, limit: number): number {
    const next = now + Math.max(this.config.renewMinRetransmitMs, (limit - now) / 2);
    return next >= limit ? Infinity : Math.round(next);
  }

  private runTimers(now: number, out: ClientAction[]): void {
    for (let i = 0; i < MAX_STEPS_PER_POLL && this.started; i++) {
      if (!this.step(now, out)) return;
    }
  }

  /** Handles the earliest due timer of the current state; false when nothing is due. */
  private step(now: number, out: ClientAction[]): boolean {
    const lease = this.leaseValue;
    switch (this.stateValue) {
      case 'INIT':
        if (this.stateDeadline > now) return false;
        this.xid = this.random.u32() >>> 0;
        this.processStart = now;
        this.attempts = 0;
        this.stateDeadline = Infinity;
        this.setState(out, 'SELECTING', `DHCPDISCOVER xid 0x${this.xid.toString(16).padStart(8, '0')}`);
        this.sendDiscover(out, now);
        return true;
      case 'SELECTING':
        if (this.stateDeadline <= now && this.offers.length > 0) { this.select(out, now); return true; }
        if (!this.failReported && this.failAt <= now) { this.fail(out); return true; }
        if (this.retransmitAt <= now) { this.sendDiscover(out, now); return true; }
        return false;
      case 'REQUESTING':
        if (this.retransmitAt > now) return false;
        if (this.attempts >= this.config.requestAttempts) {
          this.enterInit(out, now, 0, `no DHCPACK after ${this.attempts} DHCPREQUEST(s)`);
        } else {
          this.sendRequest(out, now);
        }
        return true;
      case 'PROBING':
        if (this.stateDeadline > now) return false;
        this.log(out, 'warn', 'probe-timeout', 'no probe result from the daemon: treating the address as free');
        return this.finishProbeTimeout(out, now);
      case 'BOUND':
        if (lease!.expiresAt <= now) { this.expire(out, now); return true; }
        if (lease!.renewAt > now) return false;
        this.xid = this.random.u32() >>> 0;
        this.processStart = now;
        this.attempts = 0;
        this.setState(out, 'RENEWING', `T1: DHCPREQUEST to ${ipv4ToString(lease!.serverIdentifier)}`);
        this.sendRenew(out, now);
        return true;
      case 'RENEWING':
        if (lease!.expiresAt <= now) { this.expire(out, now); return true; }
        if (lease!.rebindAt <= now) {
          this.xid = this.random.u32() >>> 0;
          this.attempts = 0;
          this.setState(out, 'REBINDING', 'T2: broadcast DHCPREQUEST');
          this.sendRenew(out, now);
          return true;
        }
        if (this.retransmitAt <= now) { this.sendRenew(out, now); return true; }
        return false;
      case 'REBINDING':
        if (lease!.expiresAt <= now) { this.expire(out, now); return true; }
        if (this.retransmitAt <= now) { this.sendRenew(out, now); return true; }
        return false;
      case 'INIT-REBOOT':
        if (this.stateDeadline > now) return false;
        this.xid = this.random.u32() >>> 0;
        this.processStart = now;
        this.attempts = 0;
        this.stateDeadline = now + this.config.rebootTimeoutMs;
        this.setState(out, 'REBOOTING', `DHCPREQUEST for ${ipv4ToString(this.saved!.address)}`);
        this.sendReboot(out, now);
        return true;
      case 'REBOOTING':
        if (this.stateDeadline <= now) { this.rebootTimeout(out, now); return true; }
        if (this.retransmitAt <= now) { this.sendReboot(out, now); return true; }
        return false;
      case 'STOPPED':
        return false;
    }
  }

  private finishProbeTimeout(out: ClientAction[], now: number): boolean {
    const lease = this.candidate!;
    this.candidate = null;
    this.bind(out, now, lease, 'BOUND');
    return true;
  }

  private select(out: ClientAction[], now: number): void {
    const preferred = this.offers.find((o) => o.address === this.preferredAddress);
    const offer = preferred ?? this.offers[0]!;
    this.selected = offer;
    this.offers = [];
    this.attempts = 0;
    this.stateDeadline = Infinity;
    this.log(out, 'info', 'selected',
      `selected ${ipv4ToString(offer.address)} from ${ipv4ToString(offer.serverIdentifier)}${preferred !== undefined ? ' (previous address)' : ''}`);
    this.setState(out, 'REQUESTING', `DHCPREQUEST for ${ipv4ToString(offer.address)}`);
    this.sendRequest(out, now);
  }

  private fail(out: ClientAction[]): void {
    this.failReported = true;
    this.hook(out, 'FAIL', null, null);
    out.push({ kind: 'failed', message: `no DHCP lease on ${this.config.interface} after ${this.config.failAfterMs / 1000} s` });
  }

  private rebootTimeout(out: ClientAction[], now: number): void {
    const saved = this.saved!;
    this.log(out, 'warn', 'reboot-timeout', `no answer to INIT-REBOOT within ${this.config.rebootTimeoutMs / 1000} s`);
    this.xid = null;
    this.retransmitAt = Infinity;
    if (this.config.rebootFallback === 'keep' && saved.expiresAt > now) {
      this.bind(out, now, saved, 'TIMEOUT');
    } else {
      this.saved = null;
      this.enterInit(out, now, 0, 'INIT-REBOOT unanswered');
    }
  }

  // ---- transmissions ------------------------------------------------------------------------------

  private secs(now: number): number {
    return Math.max(0, Math.min(0xffff, Math.floor((now - this.processStart) / 1000)));
  }

  /** The common part of every client message (RFC 4390 §2.1; RFC 2131 Table 5). */
  private message(type: number, xid: number, secs: number, ciaddr: number): DhcpMessage {
    const m = emptyDhcpMessage(BOOTREQUEST);
    m.htype = HTYPE_INFINIBAND;
    m.hlen = 0;
    m.xid = xid;
    m.secs = secs;
    m.ciaddr = ciaddr;
    m.flags = this.config.broadcastFlag && ciaddr === 0 && type !== DhcpMessageType.DHCPRELEASE ? FLAG_BROADCAST : 0;
    addOption(m.options, OptionCode.MESSAGE_TYPE, Buffer.from([type]));
    addOption(m.options, OptionCode.CLIENT_IDENTIFIER, Buffer.from(this.clientIdValue));
    return m;
  }

  /** Options 57, 12 and 55, in DISCOVER and REQUEST. */
  private addRequestOptions(m: DhcpMessage): void {
    const max = this.config.maxMessageSize ?? Math.max(576, Math.min(0xffff, this.link.datagramMtu));
    addOption(m.options, OptionCode.MAX_MESSAGE_SIZE, u16Bytes(max));
    if (this.config.hostName !== null) addOption(m.options, OptionCode.HOST_NAME, Buffer.from(this.config.hostName, 'latin1'));
    addOption(m.options, OptionCode.PARAMETER_REQUEST_LIST, Buffer.from(this.config.parameterRequestList));
  }

  private send(out: ClientAction[], message: DhcpMessage, destination: Destination): void {
    const bytes = encodeDhcpMessage(message);
    const name = typeName(getMessageType(message)!);
    this.sent[name] = (this.sent[name] ?? 0) + 1;
    out.push({ kind: 'send', message, bytes, destination });
  }

  /** Counts a transmission of a DISCOVER/REQUEST exchange and schedules the next by the backoff. */
  private scheduleBackoff(now: number): void {
    this.retransmitAt = now + this.backoff(this.attempts);
    this.attempts++;
  }

  private sendDiscover(out: ClientAction[], now: number): void {
    const m = this.message(DhcpMessageType.DHCPDISCOVER, this.xid!, this.secs(now), 0);
    if (this.preferredAddress !== null) addOption(m.options, OptionCode.REQUESTED_ADDRESS, ipv4Bytes(this.preferredAddress));
    this.addRequestOptions(m);
    this.send(out, m, { kind: 'broadcast' });
    this.scheduleBackoff(now);
  }

  /** SELECTING -> REQUESTING: options 50 and 54, ciaddr 0, broadcast (RFC 2131 §4.3.2). */
  private sendRequest(out: ClientAction[], now: number): void {
    const offer = this.selected!;
    if (this.attempts === 0) this.requestSentAt = now;
    const m = this.message(DhcpMessageType.DHCPREQUEST, this.xid!, this.secs(now), 0);
    addOption(m.options, OptionCode.REQUESTED_ADDRESS, ipv4Bytes(offer.address));
    addOption(m.options, OptionCode.SERVER_IDENTIFIER, ipv4Bytes(offer.serverIdentifier));
    this.addRequestOptions(m);
    this.send(out, m, { kind: 'broadcast' });
    this.scheduleBackoff(now);
  }

  /** INIT-REBOOT: option 50, no 54, ciaddr 0, broadcast. */
  private sendReboot(out: ClientAction[], now: number): void {
    if (this.attempts === 0) this.requestSentAt = now;
    const m = this.message(DhcpMessageType.DHCPREQUEST, this.xid!, this.secs(now), 0);
    addOption(m.options, OptionCode.REQUESTED_ADDRESS, ipv4Bytes(this.saved!.address));
    this.addRequestOptions(m);
    this.send(out, m, { kind: 'broadcast' });
    this.scheduleBackoff(now);
  }

  /** RENEWING (unicast to the server) and REBINDING (broadcast): ciaddr set, no 50/54, no BROADCAST flag. */
  private sendRenew(out: ClientAction[], now: number): void {
    const lease = this.leaseValue!;
    if (this.attempts === 0) this.requestSentAt = now;
    this.attempts++;
    const m = this.message(DhcpMessageType.DHCPREQUEST, this.xid!, this.secs(now), lease.address);
    this.addRequestOptions(m);
    const renewing = this.stateValue === 'RENEWING';
    this.send(out, m, renewing ? { kind: 'unicast', address: lease.serverIdentifier } : { kind: 'broadcast' });
    this.retransmitAt = this.renewRetransmit(now, renewing ? lease.rebindAt : lease.expiresAt);
  }

  // ---- output helpers -----------------------------------------------------------------------------

  private hook(out: ClientAction[], reason: HookReason, next: ClientLease | null, old: ClientLease | null, mtuApplied = true): void {
    out.push({
      kind: 'hook', reason,
      env: hookEnv(reason, this.config.interface, next, old, { mtuApplied, parameterRequestList: this.config.parameterRequestList }),
    });
  }

  private drop(out: ClientAction[], reason: DropReason, message: string): void {
    this.drops[reason]++;
    out.push({ kind: 'drop', reason, message });
  }

  private log(out: ClientAction[], level: 'debug' | 'info' | 'warn', event: ClientEvent, message: string): void {
    out.push({ kind: 'log', level, event, message });
  }

  private setState(out: ClientAction[], next: ClientState, why: string): void {
    const prev = this.stateValue;
    this.stateValue = next;
    this.log(out, 'info', 'state', `${prev} -> ${next}: ${why}`);
  }
}
