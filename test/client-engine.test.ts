// The DHCP client engine (client/) in virtual time, against fake servers built from protocol/'s
// encoder and decoder: RFC 2131 §4.1 retransmission schedule, §4.4 states, §4.4.5 T1/T2, RFC 4390
// IPoIB fields, RFC 5227 probe -> DECLINE, reply validation, the MTU rule, dhclient-script variables
// (ISC dhcp 4.4 script_write_params) and the dhclient.leases(5) file.
import t from 'tap';
import {
  BOOTREPLY, BOOTREQUEST, DhcpMessageType, FLAG_BROADCAST, HTYPE_INFINIBAND, OptionCode, decodeDhcpMessage,
  emptyDhcpMessage, encodeDhcpMessage, findOption, getClientIdentifier, getMessageType, getParameterRequestList,
  getRequestedAddress, getServerIdentifier, ibGuidClientId, mellanoxClientId, optionFromText, parseIpv4,
  type DhcpMessage,
} from '../protocol/index.js';
import {
  ClientEngine, DROP_REASONS, currentLease, formatLease, formatLeaseFile, hookEnv, mtuDecision, parseClientIdChoice,
  parseLeaseFile, type ClientAction, type ClientConfig, type ClientLease, type Destination, type RandomSource,
} from '../client/index.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0); // Wednesday 2026-11-25 10:00:00 UTC
const GUID = 0x7cfe900300292652n;
const GUID2 = 0x7cfe900300292653n; // the HA/bond partner port
const ip = (s: string): number => parseIpv4(s);
const S = (ms: number): number => (ms - T0) / 1000;

/** Fixed randomness: float() always `f` (0.5 = no jitter), u32() counts up from `xid`. */
function fixedRandom(f = 0.5, xid = 0x1000): RandomSource & { floats: number[] } {
  let next = xid;
  const floats: number[] = [];
  return {
    floats,
    float: () => { floats.push(f); return f; },
    u32: () => next++,
  };
}

interface ServerOpts {
  id: number;
  offer: number;
  /** Option 51; null leaves it out. */
  leaseTime?: number | null;
  mask?: string | null;
  routers?: string | null;
  /** More options, Kea name -> Kea data text. */
  extra?: Record<string, string>;
}

/** A DHCP server reduced to what the tests need, speaking bytes through protocol/'s codec. */
class FakeServer {
  up = true;
  nakAll = false;
  /** Message types it does not answer. */
  ignore: number[] = [];
  /** Replaces the reply before it is encoded (invalid-reply tests). */
  mutate: ((m: DhcpMessage) => void) | null = null;
  readonly received: DhcpMessage[] = [];
  constructor(readonly o: ServerOpts) {}

  reply(req: DhcpMessage, type: number, yiaddr: number): DhcpMessage {
    const o = this.o;
    const m = emptyDhcpMessage(BOOTREPLY);
    m.htype = req.htype; m.hlen = req.hlen; m.xid = req.xid; m.flags = req.flags; m.ciaddr = req.ciaddr;
    m.yiaddr = type === DhcpMessageType.DHCPNAK ? 0 : yiaddr;
    m.options.push({ code: OptionCode.MESSAGE_TYPE, data: Buffer.from([type]) });
    m.options.push(optionFromText('dhcp-server-identifier', ipStr(o.id)));
    if (type !== DhcpMessageType.DHCPNAK) {
      if (o.leaseTime !== null) m.options.push(optionFromText('dhcp-lease-time', String(o.leaseTime ?? 3600)));
      if (o.mask !== null) m.options.push(optionFromText('subnet-mask', o.mask ?? '255.255.255.0'));
      if (o.routers !== null) m.options.push(optionFromText('routers', o.routers ?? '10.0.0.1'));
      for (const [name, text] of Object.entries(o.extra ?? {})) m.options.push(optionFromText(name, text));
    }
    this.mutate?.(m);
    return m;
  }

  handle(req: DhcpMessage, dest: Destination): DhcpMessage[] {
    if (!this.up || (dest.kind === 'unicast' && dest.address !== this.o.id)) return [];
    this.received.push(req);
    const type = getMessageType(req);
    if (type === undefined || this.ignore.includes(type)) return [];
    if (type === DhcpMessageType.DHCPDISCOVER) return [this.reply(req, DhcpMessageType.DHCPOFFER, this.o.offer)];
    if (type !== DhcpMessageType.DHCPREQUEST) return [];
    const sid = getServerIdentifier(req);
    if (sid !== undefined && sid !== this.o.id) return [];
    const wanted = getRequestedAddress(req) ?? req.ciaddr;
    if (this.nakAll || wanted !== this.o.offer) return [this.reply(req, DhcpMessageType.DHCPNAK, 0)];
    return [this.reply(req, DhcpMessageType.DHCPACK, wanted)];
  }
}

function ipStr(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

interface Sent { at: number; m: DhcpMessage; dest: Destination }

/** Drives an engine in virtual time: its deadlines, server replies (latency 0 unless set), probe answers. */
class Sim {
  now = T0;
  latency = 0;
  readonly log: { at: number; a: ClientAction }[] = [];
  private inbox: { at: number; bytes: Buffer }[] = [];
  /** The daemon's probe answer (null: never answers), after probeDelay. */
  probeConflict: boolean | null = false;
  probeDelay = 3000;
  private probeAt = Infinity;

  constructor(readonly engine: ClientEngine, readonly servers: FakeServer[] = []) {}

  take(actions: ClientAction[]): void {
    for (const a of actions) {
      this.log.push({ at: this.now, a });
      if (a.kind === 'send') {
        const m = decodeDhcpMessage(a.bytes); // what went on the wire, read back independently of `message`
        for (const s of this.servers) {
          for (const r of s.handle(m, a.destination)) this.inbox.push({ at: this.now + this.latency, bytes: encodeDhcpMessage(r) });
        }
      }
      if (a.kind === 'probe' && this.probeConflict !== null) this.probeAt = this.now + this.probeDelay;
    }
  }

  /** Starts the engine and runs everything due at the same instant (replies with latency 0). */
  start(saved: ClientLease | null = null): void {
    this.take(this.engine.start(this.now, saved));
    this.runUntil(this.now);
  }

  deliver(m: DhcpMessage | Buffer): ClientAction[] {
    const out = this.engine.handle(Buffer.isBuffer(m) ? m : encodeDhcpMessage(m), this.now);
    this.take(out);
    return out;
  }

  runUntil(until: number): void {
    for (let guard = 0; guard < 10_000; guard++) {
      const nd = this.engine.nextDeadline();
      const ni = this.inbox.length > 0 ? this.inbox[0]!.at : Infinity;
      const next = Math.min(nd, ni, this.probeAt);
      if (next > until) break;
      this.now = Math.max(this.now, next);
      if (ni <= next) this.take(this.engine.handle(this.inbox.shift()!.bytes, this.now));
      else if (this.probeAt <= next) { this.probeAt = Infinity; this.take(this.engine.probeResult(this.probeConflict!, this.now)); }
      else this.take(this.engine.poll(this.now));
    }
    this.now = Math.max(this.now, until);
  }

  sends(type?: number): Sent[] {
    const out: Sent[] = [];
    for (const { at, a } of this.log) {
      if (a.kind !== 'send') continue;
      const m = decodeDhcpMessage(a.bytes);
      if (type === undefined || getMessageType(m) === type) out.push({ at, m, dest: a.destination });
    }
    return out;
  }

  actions<K extends ClientAction['kind']>(kind: K): (Extract<ClientAction, { kind: K }> & { at: number })[] {
    return this.log.filter((e) => e.a.kind === kind).map((e) => ({ ...(e.a as Extract<ClientAction, { kind: K }>), at: e.at }));
  }
}

const BASE: ClientConfig = { interface: 'ib0', portGuid: GUID, selectWindowMs: 0 };

function sim(config: Partial<ClientConfig> = {}, servers: FakeServer[] = [], random = fixedRandom()): Sim {
  return new Sim(new ClientEngine({ ...BASE, ...config }, random), servers);
}

const serverA = (o: Partial<ServerOpts> = {}): FakeServer => new FakeServer({ id: ip('10.0.0.1'), offer: ip('10.0.0.50'), ...o });

/** A bound client (probe answered "free" after 3 s), at T0 + 3 s. */
function bound(config: Partial<ClientConfig> = {}, o: Partial<ServerOpts> = {}): { s: Sim; server: FakeServer } {
  const server = serverA(o);
  const s = sim(config, [server]);
  s.start();
  s.runUntil(T0 + 3000);
  return { s, server };
}

const { DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, DHCPDECLINE, DHCPACK, DHCPNAK, DHCPRELEASE } = DhcpMessageType;

// ---- wire format ----------------------------------------------------------------------------------

t.test('DISCOVER: the RFC 4390 message scapy builds (test/vectors/dhcp.py "rfc4390-discover")', async (t) => {
  // Same fields and option order as the scapy vector pasted in test/protocol.test.ts.
  const scapy = Buffer.from(
    '012000003903f326000080000000000000000000000000000000000000000000' + '00'.repeat(204) +
    '638253633501013d14ff000000000002000002c9007cfe900300292652390205c0370e0103060c0f1a1c2a33363a3b7779ff', 'hex');
  t.equal(scapy.length, 286);
  const s = sim({ parameterRequestList: [1, 3, 6, 12, 15, 26, 28, 42, 51, 54, 58, 59, 119, 121], maxMessageSize: 1472 },
    [], fixedRandom(0.5, 0x3903f326));
  s.start();
  const send = s.actions('send')[0]!;
  t.equal(send.bytes.length, 300, 'padded to the BOOTP minimum');
  t.same(send.bytes.subarray(0, 286), scapy, 'byte-identical to scapy');
  t.ok(send.bytes.subarray(286).every((b) => b === 0));
  t.same(send.destination, { kind: 'broadcast' });
});

t.test('every message: htype 32, hlen 0, chaddr zero, option 61; PRL and 57 in DISCOVER/REQUEST', async (t) => {
  const { s } = bound({ hostName: 'node7' });
  s.engine.stop(s.now, { release: false });
  const sends = s.sends();
  t.ok(sends.length >= 2);
  for (const { m } of sends) {
    t.equal(m.op, BOOTREQUEST);
    t.equal(m.htype, HTYPE_INFINIBAND);
    t.equal(m.hlen, 0);
    t.ok(m.chaddr.every((b) => b === 0), 'chaddr zero');
    t.same(getClientIdentifier(m), mellanoxClientId(GUID), 'Mellanox DUID-EN from the port GUID');
    t.same(getParameterRequestList(m), [1, 3, 6, 15, 26, 28, 51, 54, 58, 59, 121]);
    t.same(findOption(m.options, OptionCode.MAX_MESSAGE_SIZE), Buffer.from([0x07, 0xfc]), '57 = datagram MTU 2044');
    t.equal(findOption(m.options, OptionCode.HOST_NAME)?.toString(), 'node7');
  }
});

// ---- retransmission -------------------------------------------------------------------------------

t.test('exact DISCOVER schedule: 4, 8, 16, 32, 64, 64 s; same xid; secs counts; FAIL at 60 s', async (t) => {
  const s = sim();
  s.start();
  s.runUntil(T0 + 400_000);
  const d = s.sends(DHCPDISCOVER);
  t.same(d.map((x) => S(x.at)), [0, 4, 12, 28, 60, 124, 188, 252, 316, 380]);
  t.same(d.map((x) => x.m.secs), [0, 4, 12, 28, 60, 124, 188, 252, 316, 380]);
  t.same(new Set(d.map((x) => x.m.xid)), new Set([0x1000]), 'one xid for the exchange');
  const failed = s.actions('failed');
  t.equal(failed.length, 1, 'failed once');
  t.equal(S(failed[0]!.at), 60);
  t.same(s.actions('hook').map((h) => h.reason), ['PREINIT', 'FAIL']);
  t.equal(s.engine.state, 'SELECTING', 'keeps discovering after FAIL');
});

t.test('randomisation: -1 s and +0.5 s with the random source fixed', async (t) => {
  const low = sim({}, [], fixedRandom(0));
  low.start();
  low.runUntil(T0 + 200_000);
  t.same(low.sends(DHCPDISCOVER).map((x) => S(x.at)), [0, 3, 10, 25, 56, 119, 182]);
  const high = sim({}, [], fixedRandom(0.75));
  high.start();
  high.runUntil(T0 + 200_000);
  t.same(high.sends(DHCPDISCOVER).map((x) => S(x.at)), [0, 4.5, 13, 29.5, 62, 126.5, 191]);
  const custom = sim({ backoffMs: [1000, 2000], jitterMs: 0 }, [], fixedRandom(0.9));
  custom.start();
  custom.runUntil(T0 + 7000);
  t.same(custom.sends(DHCPDISCOVER).map((x) => S(x.at)), [0, 1, 3, 5, 7], 'configurable, jitter 0 draws nothing');
});

t.test('REQUEST retransmission and give-up: 5 REQUESTs, then INIT with a new xid', async (t) => {
  const server = serverA();
  server.ignore = [DhcpMessageType.DHCPREQUEST];
  const s = sim({}, [server]);
  s.start();
  server.up = false; // no more OFFERs either
  s.runUntil(T0 + 130_000);
  const r = s.sends(DHCPREQUEST);
  t.same(r.map((x) => S(x.at)), [0, 4, 12, 28, 60]);
  t.same(new Set(r.map((x) => x.m.xid)), new Set([0x1000]), 'REQUEST keeps the OFFER\'s xid');
  const d = s.sends(DHCPDISCOVER);
  t.same(d.map((x) => S(x.at)), [0, 124, 128], 'back to INIT at 124 s');
  t.equal(d[1]!.m.xid, 0x1001, 'new exchange, new xid');
});

// ---- acquiring ------------------------------------------------------------------------------------

t.test('INIT -> SELECTING -> REQUESTING -> PROBING -> BOUND', async (t) => {
  const server = serverA({ extra: { 'domain-name-servers': '10.0.0.2,10.0.0.3', 'domain-name': 'ib.example', 'interface-mtu': '2044' } });
  const s = sim({}, [server]);
  s.start();
  t.equal(s.engine.state, 'PROBING');
  const req = s.sends(DHCPREQUEST)[0]!;
  t.same(getRequestedAddress(req.m), ip('10.0.0.50'), 'option 50');
  t.same(getServerIdentifier(req.m), ip('10.0.0.1'), 'option 54');
  t.equal(req.m.ciaddr, 0);
  t.equal(req.m.flags, FLAG_BROADCAST);
  const probe = s.actions('probe');
  t.same(probe.map((p) => [p.address, p.probe.count, p.probe.waitMs]), [[ip('10.0.0.50'), 3, 1000]]);
  t.same(s.actions('apply'), [], 'nothing applied before the probe answers');
  s.runUntil(T0 + 3000);
  t.equal(s.engine.state, 'BOUND');
  const apply = s.actions('apply')[0]!;
  t.equal(apply.reason, 'BOUND');
  t.equal(apply.lease.address, ip('10.0.0.50'));
  t.equal(apply.lease.prefixLength, 24);
  t.same(apply.lease.routes, [{ destination: 0, prefixLength: 0, router: ip('10.0.0.1') }]);
  t.same(apply.lease.domainNameServers, [ip('10.0.0.2'), ip('10.0.0.3')]);
  t.equal(apply.lease.domainName, 'ib.example');
  t.same(apply.mtu, { apply: true, mtu: 2044 });
  t.equal(apply.lease.renewAt, T0 + 1800_000, 'T1 = 0.5 lease from the REQUEST');
  t.equal(apply.lease.rebindAt, T0 + 3150_000, 'T2 = 0.875 lease');
  t.equal(apply.lease.expiresAt, T0 + 3600_000);
  t.same(s.actions('announce').map((a) => [S(a.at), a.address]), [[3, ip('10.0.0.50')]], 'gratuitous ARP after binding');
  t.same(s.actions('save-lease').map((a) => a.lease?.address), [ip('10.0.0.50')]);
  t.same(s.actions('hook').map((h) => h.reason), ['PREINIT', 'BOUND']);
});

t.test('several OFFERs: the first within the window, or at once the previous address', async (t) => {
  const a = new FakeServer({ id: ip('10.0.0.1'), offer: ip('10.0.0.20') });
  const b = new FakeServer({ id: ip('10.0.0.2'), offer: ip('10.0.0.30') });
  const s = sim({ selectWindowMs: 1000, probe: { enabled: false } }, [a, b]);
  s.latency = 100;
  s.start();
  s.runUntil(T0 + 5000);
  const req = s.sends(DHCPREQUEST);
  t.same(req.map((r) => [S(r.at), getServerIdentifier(r.m), getRequestedAddress(r.m)]),
    [[1.1, ip('10.0.0.1'), ip('10.0.0.20')]], 'first offer, requested when the window closes');
  t.equal(s.engine.lease?.address, ip('10.0.0.20'));
  t.equal(b.received.filter((m) => getMessageType(m) === DHCPREQUEST).length, 1, 'b saw the REQUEST naming a (and declined silently)');

  // A previous address (from an expired saved lease) is asked for in DISCOVER and wins without waiting.
  const old = parseLeaseFile(LEASE_FILE).leases[0]!;
  const s2 = sim({ selectWindowMs: 1000, probe: { enabled: false } }, [
    new FakeServer({ id: ip('10.0.0.1'), offer: ip('10.0.0.20') }), new FakeServer({ id: ip('10.0.0.9'), offer: ip('10.0.0.50') }),
  ]);
  s2.latency = 100;
  s2.now = T0 + 7200_000; // the saved lease expired at T0 + 1 h
  s2.start(old);
  s2.runUntil(s2.now + 5000);
  const disc = s2.sends(DHCPDISCOVER)[0]!;
  t.equal(getRequestedAddress(disc.m), ip('10.0.0.50'), 'DISCOVER asks for the previous address');
  const req2 = s2.sends(DHCPREQUEST);
  t.same(req2.map((r) => [S(r.at - 7200_000), getServerIdentifier(r.m), getRequestedAddress(r.m)]),
    [[0.1, ip('10.0.0.9'), ip('10.0.0.50')]], 'previous address chosen as soon as it is offered');
});

t.test('DECLINE after a conflicting ARP probe, then INIT after 10 s', async (t) => {
  const server = serverA();
  const s = sim({}, [server]);
  s.probeConflict = true;
  s.start();
  s.runUntil(T0 + 3000);
  const dec = s.sends(DHCPDECLINE);
  t.equal(dec.length, 1);
  const m = dec[0]!.m;
  t.equal(S(dec[0]!.at), 3);
  t.equal(getRequestedAddress(m), ip('10.0.0.50'), 'option 50 = the declined address');
  t.equal(getServerIdentifier(m), ip('10.0.0.1'), 'option 54');
  t.equal(m.ciaddr, 0);
  t.not(m.xid, 0x1000, 'DECLINE has its own xid (RFC 2131 Table 5)');
  t.same(dec[0]!.dest, { kind: 'broadcast' });
  t.equal(findOption(m.options, OptionCode.PARAMETER_REQUEST_LIST), undefined, 'no 55 in DECLINE');
  t.same(s.actions('apply'), [], 'the address was never applied');
  t.equal(s.engine.state, 'INIT');
  s.probeConflict = false;
  s.runUntil(T0 + 20_000);
  const d = s.sends(DHCPDISCOVER);
  t.same(d.map((x) => S(x.at)), [0, 13], 'next DISCOVER 10 s after the DECLINE');
  t.equal(getRequestedAddress(d[1]!.m), undefined, 'the declined address is not asked for again');
  t.equal(s.engine.state, 'BOUND');
});

t.test('a probe the daemon never answers binds after the worst-case probe time', async (t) => {
  const s = sim({}, [serverA()]);
  s.probeConflict = null;
  s.start();
  s.runUntil(T0 + 60_000);
  // waitMs 1000 + 2 × maxInterval 2000 + announceWait 2000 + 1000 slack
  t.same(s.actions('apply').map((a) => S(a.at)), [8]);
  t.ok(s.actions('log').some((l) => l.event === 'probe-timeout'));
});

t.test('NAK in REQUESTING -> INIT after the NAK delay, new xid', async (t) => {
  const server = serverA();
  server.nakAll = true;
  const s = sim({}, [server]);
  s.start();
  t.equal(s.engine.state, 'INIT');
  t.ok(s.actions('log').some((l) => l.event === 'nak'));
  s.runUntil(T0 + 2500);
  const d = s.sends(DHCPDISCOVER);
  t.same(d.map((x) => [S(x.at), x.m.xid]), [[0, 0x1000], [2, 0x1001]]);
});

// ---- T1, T2, expiry -------------------------------------------------------------------------------

t.test('renew at T1 (unicast, ciaddr, no 50/54, no BROADCAST), rebind at T2 (broadcast), expiry', async (t) => {
  const { s, server } = bound();
  server.up = false;
  s.runUntil(T0 + 3700_000);
  const r = s.sends(DHCPREQUEST).slice(1);
  const renewing = r.filter((x) => x.dest.kind === 'unicast');
  const rebinding = r.filter((x) => x.dest.kind === 'broadcast');
  // RFC 2131 §4.4.5: half the time left to T2 (then to expiry), never less than 60 s.
  t.same(renewing.map((x) => S(x.at)), [1800, 2475, 2812.5, 2981.25, 3065.625, 3125.625]);
  t.same(rebinding.map((x) => S(x.at)), [3150, 3375, 3487.5, 3547.5]);
  for (const x of r) {
    t.equal(x.m.ciaddr, ip('10.0.0.50'));
    t.equal(x.m.flags, 0, 'BROADCAST flag clear once ciaddr is set');
    t.equal(getRequestedAddress(x.m), undefined);
    t.equal(getServerIdentifier(x.m), undefined);
  }
  t.same(renewing.map((x) => x.dest), renewing.map(() => ({ kind: 'unicast', address: ip('10.0.0.1') })));
  t.equal(new Set(renewing.map((x) => x.m.xid)).size, 1);
  t.equal(new Set(rebinding.map((x) => x.m.xid)).size, 1);
  t.not(renewing[0]!.m.xid, rebinding[0]!.m.xid, 'a new xid at T2');
  t.same(renewing.map((x) => x.m.secs), [0, 675, 1012, 1181, 1265, 1325], 'secs from T1');
  const dec = s.actions('deconfigure');
  t.same(dec.map((d) => [S(d.at), d.reason, d.lease.address]), [[3600, 'EXPIRE', ip('10.0.0.50')]]);
  const expire = s.actions('hook').find((h) => h.reason === 'EXPIRE')!;
  t.equal(expire.env.old_ip_address, '10.0.0.50');
  t.equal(expire.env.new_ip_address, undefined);
  t.same(s.actions('save-lease').map((a) => a.lease === null), [false, true], 'lease forgotten at expiry');
  t.same(s.sends(DHCPDISCOVER).map((x) => S(x.at)), [0, 3600, 3604, 3612, 3628, 3660], 'INIT again at expiry');
});

t.test('T1/T2 from options 58/59; inconsistent ones fall back to 0.5/0.875', async (t) => {
  const { s } = bound({}, { extra: { 'dhcp-renewal-time': '1000', 'dhcp-rebinding-time': '2000' } });
  t.equal(S(s.engine.lease!.renewAt), 1000);
  t.equal(S(s.engine.lease!.rebindAt), 2000);
  const { s: s2 } = bound({}, { extra: { 'dhcp-renewal-time': '3000', 'dhcp-rebinding-time': '2000' } });
  t.equal(S(s2.engine.lease!.rebindAt), 2000);
  t.equal(S(s2.engine.lease!.renewAt), 1000, 'T1 >= T2: T1 = min(0.5 lease, 0.5 T2)');
});

t.test('renewal answered: RENEW with old_ and new_, no new announce', async (t) => {
  const { s } = bound();
  s.runUntil(T0 + 1801_000);
  t.equal(s.engine.state, 'BOUND');
  const apply = s.actions('apply');
  t.same(apply.map((a) => [S(a.at), a.reason]), [[3, 'BOUND'], [1800, 'RENEW']]);
  t.equal(apply[1]!.previous?.address, ip('10.0.0.50'));
  t.equal(S(apply[1]!.lease.renewAt), 3600, 'times count from the renewal REQUEST');
  const env = s.actions('hook').find((h) => h.reason === 'RENEW')!.env;
  t.equal(env.old_ip_address, '10.0.0.50');
  t.equal(env.new_ip_address, '10.0.0.50');
  t.equal(env.new_expiry, String(Math.floor((T0 + 5400_000) / 1000)));
  t.equal(s.actions('announce').length, 1);
});

t.test('rebinding answered by another server: REBIND, new server identifier', async (t) => {
  const a = serverA();
  const b = new FakeServer({ id: ip('10.0.0.9'), offer: ip('10.0.0.50') });
  b.up = false;
  const s = sim({}, [a, b]);
  s.start();
  s.runUntil(T0 + 3000);
  a.up = false;
  b.up = true;
  s.runUntil(T0 + 3200_000);
  const apply = s.actions('apply');
  t.same(apply.map((x) => [S(x.at), x.reason]), [[3, 'BOUND'], [3150, 'REBIND']]);
  t.equal(s.engine.lease?.serverIdentifier, ip('10.0.0.9'));
  t.equal(s.engine.state, 'BOUND');
});

t.test('NAK while renewing: deconfigure, EXPIRE hook, INIT', async (t) => {
  const { s, server } = bound();
  server.nakAll = true;
  s.runUntil(T0 + 1800_000);
  t.same(s.actions('deconfigure').map((d) => [S(d.at), d.reason]), [[1800, 'NAK']]);
  t.ok(s.actions('hook').some((h) => h.reason === 'EXPIRE' && h.env.old_ip_address === '10.0.0.50'));
  t.equal(s.engine.state, 'INIT');
  t.equal(s.engine.lease, null);
});

// ---- INIT-REBOOT ----------------------------------------------------------------------------------

// Hand-written in dhclient.leases(5) syntax as ISC dhclient 4.4 writes it (write_client_lease(),
// print_time() "W YYYY/MM/DD HH:MM:SS;" UTC, pretty_print_option hex without zero padding).
const LEASE_FILE = `default-duid "\\000\\001\\000\\001\\037\\210";
lease {
  interface "ib0";
  fixed-address 10.0.0.50;
  option subnet-mask 255.255.255.0;
  option routers 10.0.0.1;
  option dhcp-lease-time 3600;
  option dhcp-message-type 5;
  option domain-name-servers 10.0.0.2,10.0.0.3;
  option dhcp-server-identifier 10.0.0.1;
  option interface-mtu 2044;
  option domain-name "ib.example";
  option dhcp-client-identifier ff:0:0:0:0:0:2:0:0:2:c9:0:7c:fe:90:3:0:29:26:52;
  renew 3 2026/11/25 10:30:00;
  rebind 3 2026/11/25 10:52:30;
  expire 3 2026/11/25 11:00:00;
}
lease6 {
  interface "eth0";
  ia-na 1a:2b:3c:4d { starts 1764064800; renew 1800; }
}
`;

t.test('lease file: ISC syntax parsed', async (t) => {
  const f = parseLeaseFile(LEASE_FILE);
  t.same(f.problems, []);
  t.equal(f.leases.length, 1, 'lease6 and default-duid skipped');
  const l = currentLease(f, 'ib0')!;
  t.equal(l.address, ip('10.0.0.50'));
  t.equal(l.serverIdentifier, ip('10.0.0.1'));
  t.equal(l.leaseTime, 3600);
  t.equal(l.renewAt, T0 + 1800_000);
  t.equal(l.rebindAt, T0 + 3150_000);
  t.equal(l.expiresAt, T0 + 3600_000);
  t.equal(l.startedAt, T0);
  t.same(l.domainNameServers, [ip('10.0.0.2'), ip('10.0.0.3')]);
  t.equal(l.domainName, 'ib.example');
  t.equal(l.interfaceMtu, 2044);
  t.same(findOption(l.options, OptionCode.CLIENT_IDENTIFIER), mellanoxClientId(GUID));
  t.equal(currentLease(f, 'ib1'), null);
});

t.test('lease file: written in ISC syntax and read back', async (t) => {
  const l = parseLeaseFile(LEASE_FILE).leases[0]!;
  const text = formatLease(l);
  t.equal(text, [
    'lease {', '  interface "ib0";', '  fixed-address 10.0.0.50;', '  option subnet-mask 255.255.255.0;',
    '  option routers 10.0.0.1;', '  option dhcp-lease-time 3600;', '  option dhcp-message-type 5;',
    '  option domain-name-servers 10.0.0.2,10.0.0.3;', '  option dhcp-server-identifier 10.0.0.1;',
    '  option interface-mtu 2044;', '  option domain-name "ib.example";',
    '  option dhcp-client-identifier ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:52;',
    '  renew 3 2026/11/25 10:30:00;', '  rebind 3 2026/11/25 10:52:30;', '  expire 3 2026/11/25 11:00:00;', '}', '',
  ].join('\n'));
  const back = parseLeaseFile(formatLeaseFile([l, { ...l, address: ip('10.0.0.51') }]));
  t.same(back.problems, []);
  t.same(back.leases[0], l);
  t.equal(currentLease(back, 'ib0')?.address, ip('10.0.0.51'), 'the last block wins');
  // Routes (121), infinite leases and a quote inside a string survive.
  const { s } = bound({}, {
    leaseTime: 0xffffffff,
    extra: { 'classless-static-route': '10.1.0.0/16 - 10.0.0.254', 'domain-name': 'a"b' },
  });
  const inf = s.engine.lease!;
  const text2 = formatLease(inf);
  t.match(text2, /option rfc3442-classless-static-routes 16,10,1,10,0,0,254;/);
  t.match(text2, /option domain-name "a\\"b";/);
  t.match(text2, /expire never;/);
  const back2 = parseLeaseFile(text2).leases[0]!;
  t.same(back2.options, inf.options);
  t.equal(back2.expiresAt, Infinity);
});

t.test('lease file: broken blocks are reported, good ones kept', async (t) => {
  const f = parseLeaseFile(`lease { interface "ib0"; option dhcp-lease-time 60; expire 3 2026/11/25 11:00:00; }
lease { interface "ib0"; fixed-address 10.0.0.7; option dhcp-server-identifier 10.0.0.1;
  option dhcp-lease-time 60; option no-such-option 1; renew yesterday; expire epoch 1800000000; }
lease { interface "ib0"
`);
  t.equal(f.leases.length, 1);
  t.equal(f.leases[0]!.expiresAt, 1800000000_000, 'epoch format');
  t.same(f.problems.map((p) => p.line), [1, 3, 3, 4]);
  t.match(f.problems[0]!.message, /fixed-address/);
});

t.test('INIT-REBOOT from the saved lease: REQUEST with 50, no 54, ciaddr 0; ACK -> REBOOT', async (t) => {
  const saved = parseLeaseFile(LEASE_FILE).leases[0]!;
  const s = sim({}, [serverA()]);
  s.now = T0 + 1200_000;
  s.start(saved);
  const r = s.sends(DHCPREQUEST);
  t.equal(r.length, 1);
  t.equal(getRequestedAddress(r[0]!.m), ip('10.0.0.50'));
  t.equal(getServerIdentifier(r[0]!.m), undefined);
  t.equal(r[0]!.m.ciaddr, 0);
  t.equal(r[0]!.m.flags, FLAG_BROADCAST);
  t.same(r[0]!.dest, { kind: 'broadcast' });
  t.same(s.sends(DHCPDISCOVER), []);
  t.same(s.actions('probe'), [], 'no probe for a confirmed address');
  t.same(s.actions('apply').map((a) => a.reason), ['REBOOT']);
  t.same(s.actions('hook').map((h) => h.reason), ['PREINIT', 'REBOOT']);
  t.equal(s.engine.state, 'BOUND');
  t.equal(s.engine.lease!.renewAt, T0 + 3000_000, 'new times from the REBOOT REQUEST');
});

t.test('INIT-REBOOT: NAK -> INIT, lease forgotten, no option 50', async (t) => {
  const saved = parseLeaseFile(LEASE_FILE).leases[0]!;
  const server = serverA({ offer: ip('10.0.0.77') }); // the network moved on: 10.0.0.50 is NAKed
  const s = sim({}, [server]);
  s.now = T0 + 1200_000;
  s.start(saved);
  t.equal(s.engine.state, 'INIT');
  t.same(s.actions('save-lease').map((a) => a.lease), [null]);
  s.runUntil(s.now + 5000);
  const d = s.sends(DHCPDISCOVER);
  t.equal(S(d[0]!.at), 1202);
  t.equal(getRequestedAddress(d[0]!.m), undefined);
  t.equal(s.engine.lease?.address, ip('10.0.0.77'));
});

t.test('INIT-REBOOT unanswered: keep the saved lease (TIMEOUT) or discover', async (t) => {
  const saved = parseLeaseFile(LEASE_FILE).leases[0]!;
  const s = sim();
  s.now = T0 + 1200_000;
  s.start(saved);
  s.runUntil(s.now + 11_000);
  t.same(s.sends(DHCPREQUEST).map((x) => S(x.at) - 1200), [0, 4]);
  t.same(s.actions('apply').map((a) => [S(a.at), a.reason]), [[1210, 'TIMEOUT']]);
  t.equal(s.engine.lease?.expiresAt, T0 + 3600_000, 'used until its own expiry');
  s.runUntil(T0 + 1800_000);
  t.equal(s.engine.state, 'RENEWING', 'and renewed at its T1');

  const s2 = sim({ rebootFallback: 'discover' });
  s2.now = T0 + 1200_000;
  s2.start(saved);
  s2.runUntil(s2.now + 11_000);
  t.same(s2.actions('apply'), []);
  t.same(s2.sends(DHCPDISCOVER).map((x) => S(x.at) - 1200), [10]);
});

t.test('an expired or foreign saved lease starts in INIT', async (t) => {
  const saved = parseLeaseFile(LEASE_FILE).leases[0]!;
  const s = sim();
  s.now = T0 + 3600_000;
  s.start(saved);
  t.equal(s.engine.state, 'SELECTING');
  const s2 = sim({ interface: 'ib1' });
  s2.start(saved);
  t.equal(s2.engine.state, 'SELECTING');
});

// ---- BROADCAST flag, client identifier -----------------------------------------------------------

t.test('BROADCAST flag: set while ciaddr is 0, clear in RENEWING/REBINDING/RELEASE; can be disabled', async (t) => {
  const { s, server } = bound();
  server.up = false;
  s.runUntil(T0 + 3200_000);
  s.take(s.engine.stop(s.now, { release: true }));
  const flags = s.sends().map((x) => [getMessageType(x.m), x.m.ciaddr !== 0, x.m.flags]);
  t.same(flags.slice(0, 2), [[DHCPDISCOVER, false, FLAG_BROADCAST], [DHCPREQUEST, false, FLAG_BROADCAST]]);
  t.ok(flags.slice(2).every(([, ci, f]) => ci === true && f === 0), 'renew, rebind, release: ciaddr set, flag clear');
  const quiet = sim({ broadcastFlag: false }, [serverA()]);
  quiet.start();
  t.ok(quiet.sends().every((x) => x.m.flags === 0));
});

t.test('client identifier: forms, stable across restart and port failover', async (t) => {
  t.same(new ClientEngine({ ...BASE }).clientId, mellanoxClientId(GUID), 'default duid-en');
  t.same(new ClientEngine({ ...BASE, clientId: parseClientIdChoice('guid') }).clientId, ibGuidClientId(GUID));
  t.same(new ClientEngine({ ...BASE, clientId: parseClientIdChoice('hex:01:02:03') }).clientId, Buffer.from([1, 2, 3]));
  t.throws(() => parseClientIdChoice('mac'), { code: 'BAD_CLIENT_ID' });
  t.throws(() => parseClientIdChoice('hex:zz'), { code: 'BAD_CLIENT_ID' });

  // Failover: the identifier stays, the bound address is announced on the new port.
  const { s } = bound();
  const out = s.engine.portChanged(GUID2, s.now);
  t.same(s.engine.clientId, mellanoxClientId(GUID));
  t.same(out.filter((a) => a.kind === 'announce').length, 1);
  s.runUntil(T0 + 1800_000);
  const renew = s.sends(DHCPREQUEST).at(-1)!;
  t.same(getClientIdentifier(renew.m), mellanoxClientId(GUID), 'renewal after failover: same identifier');

  // Restart (on the partner port) from the lease file written before: same identifier.
  const saved = parseLeaseFile(formatLease(s.engine.lease!)).leases[0]!;
  const again = sim({ portGuid: GUID2 }, [serverA()]);
  again.now = T0 + 1900_000;
  again.start(saved);
  t.same(getClientIdentifier(again.sends()[0]!.m), mellanoxClientId(GUID));

  // Unless told to follow the port.
  const follow = new ClientEngine({ ...BASE, followPortChange: true }, fixedRandom());
  follow.portChanged(GUID2, T0);
  t.same(follow.clientId, mellanoxClientId(GUID2));
  // An explicit identifier always wins over the saved one.
  const explicit = new ClientEngine({ ...BASE, clientId: { form: 'hex', bytes: Buffer.from('0102', 'hex') } }, fixedRandom());
  explicit.start(T0 + 1900_000, saved);
  t.same(explicit.clientId, Buffer.from('0102', 'hex'));
});

// ---- invalid replies ------------------------------------------------------------------------------

t.test('each invalid reply is ignored with its reason and counted', async (t) => {
  const s = sim();
  s.start();
  const disc = s.sends(DHCPDISCOVER)[0]!.m;
  const server = serverA();
  const offer = (mutate: (m: DhcpMessage) => void, type: number = DHCPOFFER): DhcpMessage => {
    const m = server.reply(disc, type, ip('10.0.0.50'));
    mutate(m);
    return m;
  };
  const drop = (label: string, m: DhcpMessage | Buffer, reason: string): void => {
    const out = s.deliver(m);
    const d = out.filter((a) => a.kind === 'drop');
    t.same(d.map((a) => a.kind === 'drop' && a.reason), [reason], label);
    t.equal(s.engine.state, 'SELECTING', `${label}: state unchanged`);
  };
  const without = (code: number) => (m: DhcpMessage): void => { m.options = m.options.filter((o) => o.code !== code); };
  drop('truncated bytes', Buffer.alloc(100), 'malformed');
  drop('a request', offer((m) => { m.op = BOOTREQUEST; }), 'not-a-reply');
  drop('Ethernet htype', offer((m) => { m.htype = 1; m.hlen = 6; }), 'htype-mismatch');
  drop('wrong xid', offer((m) => { m.xid ^= 1; }), 'xid-mismatch');
  drop('BOOTP reply', offer(without(OptionCode.MESSAGE_TYPE)), 'no-message-type');
  drop('ACK in SELECTING', offer(() => undefined, DHCPACK), 'unexpected-type');
  drop('someone else\'s client id', offer((m) => { m.options.push({ code: 61, data: mellanoxClientId(GUID2) }); }), 'client-id-mismatch');
  drop('no server id', offer(without(OptionCode.SERVER_IDENTIFIER)), 'no-server-id');
  drop('yiaddr 0', offer((m) => { m.yiaddr = 0; }), 'yiaddr-invalid');
  drop('yiaddr broadcast', offer((m) => { m.yiaddr = 0xffffffff; }), 'yiaddr-invalid');
  drop('mask not contiguous', offer((m) => { without(1)(m); m.options.push(optionFromText('subnet-mask', '255.0.255.0')); }), 'bad-subnet-mask');
  drop('mask excludes router', offer((m) => { without(3)(m); m.options.push(optionFromText('routers', '10.0.1.1')); }), 'router-outside-subnet');
  drop('3-byte subnet mask', offer((m) => { without(1)(m); m.options.push({ code: 1, data: Buffer.from([255, 255, 0]) }); }), 'malformed');
  // An echoed identifier that is ours is fine; the offer is then taken.
  const good = s.deliver(offer((m) => { m.options.push({ code: 61, data: mellanoxClientId(GUID) }); }));
  t.equal(good.filter((a) => a.kind === 'drop').length, 0);
  t.equal(s.engine.state, 'REQUESTING');

  // ACK-only checks, in REQUESTING.
  const req = s.sends(DHCPREQUEST)[0]!.m;
  const ack = (mutate: (m: DhcpMessage) => void, type: number = DHCPACK): DhcpMessage => {
    const m = server.reply(req, type, ip('10.0.0.50'));
    mutate(m);
    return m;
  };
  const dropAck = (label: string, m: DhcpMessage, reason: string): void => {
    const d = s.deliver(m).filter((a) => a.kind === 'drop');
    t.same(d.map((a) => a.kind === 'drop' && a.reason), [reason], label);
    t.equal(s.engine.state, 'REQUESTING', `${label}: state unchanged`);
  };
  dropAck('no lease time', ack(without(OptionCode.LEASE_TIME)), 'lease-time-missing');
  dropAck('lease time 0', ack((m) => { without(51)(m); m.options.push(optionFromText('dhcp-lease-time', '0')); }), 'lease-time-zero');
  dropAck('ACK from another server', ack((m) => { without(54)(m); m.options.push(optionFromText('dhcp-server-identifier', '10.0.0.9')); }), 'wrong-server');
  dropAck('NAK from another server', ack((m) => { without(54)(m); m.options.push(optionFromText('dhcp-server-identifier', '10.0.0.9')); }, DHCPNAK), 'wrong-server');
  dropAck('NAK without server id', ack(without(54), DHCPNAK), 'no-server-id');
  dropAck('a late OFFER', ack(() => undefined, DHCPOFFER), 'unexpected-type');
  dropAck('yiaddr 0 in ACK', ack((m) => { m.yiaddr = 0; }), 'yiaddr-invalid');

  const counted = Object.entries(s.engine.drops).filter(([, n]) => n > 0).map(([r]) => r).sort();
  t.same(counted, [...DROP_REASONS].sort(), 'every reason of the closed list was exercised');
  t.equal(s.engine.drops['yiaddr-invalid'], 3);
  t.equal(s.engine.drops.malformed, 2);
  s.deliver(ack(() => undefined));
  t.equal(s.engine.state, 'PROBING', 'a valid ACK still goes through');
  t.same(s.deliver(ack(() => undefined)).filter((a) => a.kind === 'drop').map((a) => a.kind === 'drop' && a.reason),
    ['xid-mismatch'], 'a duplicate ACK after the exchange ended');
});

// ---- applying: MTU, routes, hook -----------------------------------------------------------------

t.test('MTU rule: datagram mode <= datagram MTU, connected mode <= 65520, never < 68', async (t) => {
  t.same(mtuDecision(2044, { mode: 'datagram', datagramMtu: 2044 }), { apply: true, mtu: 2044 });
  t.same(mtuDecision(4092, { mode: 'datagram', datagramMtu: 4092 }), { apply: true, mtu: 4092 });
  const big = mtuDecision(4092, { mode: 'datagram', datagramMtu: 2044 });
  t.equal(big.apply, false);
  t.match(!big.apply && big.reason, /exceeds the datagram-mode MTU 2044/);
  t.same(mtuDecision(65520, { mode: 'connected', datagramMtu: 2044 }), { apply: true, mtu: 65520 });
  const huge = mtuDecision(65521, { mode: 'connected', datagramMtu: 2044 });
  t.match(!huge.apply && huge.reason, /connected-mode maximum 65520/);
  t.match((() => { const d = mtuDecision(67, { mode: 'connected', datagramMtu: 2044 }); return !d.apply && d.reason; })(), /minimum of 68/);
  t.equal(mtuDecision(null, { mode: 'datagram', datagramMtu: 2044 }).apply, false);

  // In the engine: refused in datagram mode (logged, left out of the hook), accepted in connected mode.
  const { s } = bound({}, { extra: { 'interface-mtu': '65520' } });
  const apply = s.actions('apply')[0]!;
  t.same(apply.mtu.apply, false);
  t.ok(s.actions('log').some((l) => l.event === 'mtu-not-applied' && /2044/.test(l.message)));
  const env = s.actions('hook').find((h) => h.reason === 'BOUND')!.env;
  t.equal(env.new_interface_mtu, undefined, 'a refused MTU is not handed to the script');
  const { s: cm } = bound({ link: { mode: 'connected', datagramMtu: 2044 } }, { extra: { 'interface-mtu': '65520' } });
  t.same(cm.actions('apply')[0]!.mtu, { apply: true, mtu: 65520 });
  t.equal(cm.actions('hook').find((h) => h.reason === 'BOUND')!.env.new_interface_mtu, '65520');
});

t.test('option 121 takes precedence over option 3 (RFC 3442)', async (t) => {
  const { s } = bound({}, { routers: '10.0.0.1', extra: { 'classless-static-route': '10.1.0.0/16 - 10.0.0.254, 0.0.0.0/0 - 10.0.0.2' } });
  const lease = s.engine.lease!;
  t.same(lease.routers, [ip('10.0.0.1')]);
  t.same(lease.routes, [
    { destination: ip('10.1.0.0'), prefixLength: 16, router: ip('10.0.0.254') },
    { destination: 0, prefixLength: 0, router: ip('10.0.0.2') },
  ]);
  const env = s.actions('hook').find((h) => h.reason === 'BOUND')!.env;
  t.equal(env.new_rfc3442_classless_static_routes, '16 10 1 10 0 0 254 0 10 0 0 2');
});

t.test('hook variables: dhclient-script names and values', async (t) => {
  const { s } = bound({}, {
    routers: '10.0.0.1,10.0.0.3',
    extra: { 'domain-name-servers': '10.0.0.2,10.0.0.3', 'domain-name': 'ib.example', 'interface-mtu': '2044' },
  });
  const env = s.actions('hook').find((h) => h.reason === 'BOUND')!.env;
  t.same(env, {
    interface: 'ib0',
    reason: 'BOUND',
    new_ip_address: '10.0.0.50',
    new_network_number: '10.0.0.0',
    new_broadcast_address: '10.0.0.255',
    new_subnet_mask: '255.255.255.0',
    new_routers: '10.0.0.1 10.0.0.3',
    new_domain_name_servers: '10.0.0.2 10.0.0.3',
    new_domain_name: 'ib.example',
    new_interface_mtu: '2044',
    new_dhcp_lease_time: '3600',
    new_dhcp_server_identifier: '10.0.0.1',
    new_expiry: String((T0 + 3600_000) / 1000),
    requested_subnet_mask: '1', requested_routers: '1', requested_domain_name_servers: '1', requested_domain_name: '1',
    requested_interface_mtu: '1', requested_broadcast_address: '1', requested_dhcp_lease_time: '1',
    requested_dhcp_server_identifier: '1', requested_dhcp_renewal_time: '1', requested_dhcp_rebinding_time: '1',
    requested_rfc3442_classless_static_routes: '1',
  });
  t.same(s.actions('hook')[0]!.env, { interface: 'ib0', reason: 'PREINIT' });
  const lease = s.engine.lease!;
  const release = hookEnv('RELEASE', 'ib0', null, lease);
  t.equal(release.old_ip_address, '10.0.0.50');
  t.equal(release.old_routers, '10.0.0.1 10.0.0.3');
  t.notOk(Object.keys(release).some((k) => k.startsWith('new_') || k.startsWith('requested_')));
});

// ---- stopping -------------------------------------------------------------------------------------

t.test('stop with release: unicast RELEASE, deconfigure, RELEASE hook, lease forgotten', async (t) => {
  const { s } = bound();
  s.take(s.engine.stop(s.now, { release: true }));
  const rel = s.sends(DHCPRELEASE);
  t.equal(rel.length, 1);
  t.same(rel[0]!.dest, { kind: 'unicast', address: ip('10.0.0.1') });
  t.equal(rel[0]!.m.ciaddr, ip('10.0.0.50'));
  t.equal(getServerIdentifier(rel[0]!.m), ip('10.0.0.1'));
  t.equal(getRequestedAddress(rel[0]!.m), undefined, 'no option 50 in RELEASE');
  t.same(getClientIdentifier(rel[0]!.m), mellanoxClientId(GUID));
  t.same(s.actions('deconfigure').map((d) => d.reason), ['RELEASE']);
  t.equal(s.actions('hook').at(-1)!.reason, 'RELEASE');
  t.equal(s.actions('save-lease').at(-1)!.lease, null);
  t.equal(s.engine.state, 'STOPPED');
  t.equal(s.engine.nextDeadline(), Infinity);
});

t.test('stop without release (-x): STOP hook, nothing sent, lease kept', async (t) => {
  const { s } = bound();
  const before = s.sends().length;
  s.take(s.engine.stop(s.now, { release: false }));
  t.equal(s.sends().length, before);
  t.same(s.actions('deconfigure'), []);
  const stop = s.actions('hook').at(-1)!;
  t.equal(stop.reason, 'STOP');
  t.equal(stop.env.old_ip_address, '10.0.0.50');
  t.equal(s.actions('save-lease').at(-1)!.lease?.address, ip('10.0.0.50'));
});

t.test('-r from a saved lease: RELEASE without a running exchange', async (t) => {
  const saved = parseLeaseFile(LEASE_FILE).leases[0]!;
  const e = new ClientEngine({ ...BASE }, fixedRandom());
  const out = e.releaseLease(saved, T0 + 60_000, false);
  const send = out.find((a) => a.kind === 'send');
  t.ok(send !== undefined && send.kind === 'send' && getMessageType(decodeDhcpMessage(send.bytes)) === DHCPRELEASE);
  t.same(out.filter((a) => a.kind === 'deconfigure'), [], 'not configured: nothing to remove');
  t.same(out.filter((a) => a.kind === 'hook').map((a) => a.kind === 'hook' && a.reason), ['RELEASE']);
});
