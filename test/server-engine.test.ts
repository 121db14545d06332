// server/engine.ts: every RFC 2131 §4.3 path, each RFC 4390 variant seen in the field, reservations
// matched by every identity form, relays, pool exhaustion, DECLINE hold-off and hostile input, in
// virtual time. Expected values come from the RFCs (RFC 2131 Table 3 and §4.1, §4.3; RFC 4390 §2;
// RFC 6842; RFC 3046 §2.2) and the config, never from the engine's own earlier output.
import t from 'tap';
import fc from 'fast-check';
import { parseConfig, type ServerConfig } from '../server/config.js';
import { ServerEngine, type EngineInput, type EngineResult, type LeaseWrite } from '../server/engine.js';
import { commitWrites } from '../server/commit.js';
import { writeReply } from '../server/reply-writer.js';
import { openSqliteStore } from '../lease-db/sqlite-store.js';
import { hex } from './helpers/codec.js';
import {
  BOOTREPLY, BOOTREQUEST, DhcpMessageType, FLAG_BROADCAST, OptionCode, decodeDhcpMessage, emptyDhcpMessage,
  encodeDhcpMessage, findOption, formatHex, getMessageType, guidToMac, ibGuidClientId, ibHwaddrClientId,
  ipv4ToString, mellanoxClientId, parseIpv4, rfc4361ClientId, type DhcpMessage, type DhcpOption,
} from '../protocol/index.js';

const P = 0x8101; // the server's port; clients are answered on P + 1
const IF = 'ib0';
const SERVER = parseIpv4('10.0.0.1');
const T0 = 1_700_000_000_000; // virtual time, ms
const ip = (s: string): number => parseIpv4(s);

// scapy-built DISCOVERs (test/vectors/dhcp.py vectors a, b, c; layouts RFC 2131 §2, RFC 4390 §2.1,
// NVIDIA FlexBoot docs, RHEL 8 dhclient IPoIB patch), all with the Mellanox client-id of GUID
// 7c:fe:90:03:00:29:26:52 (IPOIB-FACTS §5.3).
const VECTOR = {
  rfc4390: hex('012000003903f326000080' + '00'.repeat(225) +
    '638253633501013d14ff000000000002000002c9007cfe900300292652390205c0370e0103060c0f1a1c2a33363a3b7779ff'),
  flexboot: hex('012006000badf00d00048000000000000000000000000000000000007cfe90292652' + '00'.repeat(202) +
    '638253633501013d14ff000000000002000002c9007cfe9003002926523c20505845436c69656e743a417263683a30303030303a554e44493a' +
    '3030323030315d0200005e030102016111004c4c4544003510328053b4c04f4e3032390205b8370a0103060c0f112b3c4243ff'),
  patched: hex('012008005eed123400008000000000000000000000000000000000007cfe900300292652' + '00'.repeat(200) +
    '638253633501013d14ff000000000002000002c9007cfe9003002926520c066e6f64653031370d011c02030f06770c2c2f1a792aff'),
};
const GUID = 0x7cfe900300292652n;

function config(extra: Record<string, unknown> = {}, subnetExtra: Record<string, unknown> = {}, more: unknown[] = []): ServerConfig {
  return parseConfig(JSON.stringify({
    Dhcp4: {
      'valid-lifetime': 3600,
      'decline-probation-period': 600,
      'option-data': [{ name: 'domain-name-servers', data: '10.0.0.53' }],
      subnet4: [{
        id: 1, subnet: '10.0.0.0/24', interface: IF, pools: [{ pool: '10.0.0.10 - 10.0.0.200' }],
        'option-data': [{ name: 'routers', data: '10.0.0.1' }, { name: 'interface-mtu', data: '2044' }],
        ...subnetExtra,
      }, ...more],
      ...extra,
    },
  }), 'test.conf');
}

function engine(cfg = config(), opts: Partial<ConstructorParameters<typeof ServerEngine>[0]> = {}): ServerEngine {
  return new ServerEngine({ config: cfg, interfaces: [{ name: IF, address: SERVER }], serverPort: P, ...opts });
}

interface Msg {
  type: number; cid?: Buffer | null; htype?: number; hlen?: number; chaddr?: Buffer; xid?: number; flags?: number;
  ciaddr?: number; giaddr?: number; requested?: number; serverId?: number; prl?: number[]; extra?: DhcpOption[];
}

function msg(o: Msg): DhcpMessage {
  const m = emptyDhcpMessage(BOOTREQUEST);
  m.htype = o.htype ?? 32; m.hlen = o.hlen ?? 0; m.xid = o.xid ?? 0x1234; m.flags = o.flags ?? FLAG_BROADCAST;
  m.ciaddr = o.ciaddr ?? 0; m.giaddr = o.giaddr ?? 0;
  if (o.chaddr !== undefined) o.chaddr.copy(m.chaddr);
  const opts: DhcpOption[] = [{ code: OptionCode.MESSAGE_TYPE, data: Buffer.from([o.type]) }];
  const cid = o.cid === undefined ? mellanoxClientId(GUID) : o.cid;
  if (cid !== null) opts.push({ code: OptionCode.CLIENT_IDENTIFIER, data: cid });
  const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  if (o.requested !== undefined) opts.push({ code: OptionCode.REQUESTED_ADDRESS, data: u32(o.requested) });
  if (o.serverId !== undefined) opts.push({ code: OptionCode.SERVER_IDENTIFIER, data: u32(o.serverId) });
  opts.push({ code: OptionCode.PARAMETER_REQUEST_LIST, data: Buffer.from(o.prl ?? [1, 3, 6, 26, 51, 54, 58, 59]) });
  opts.push(...(o.extra ?? []));
  m.options = opts;
  return m;
}

function send(e: ServerEngine, m: DhcpMessage | Buffer, now = T0, extra: Partial<EngineInput> = {}): EngineResult {
  const data = Buffer.isBuffer(m) ? m : encodeDhcpMessage(m);
  return e.handle({ data, interface: IF, source: { address: 0, port: P + 1 }, now, ...extra });
}

function reply(r: EngineResult): DhcpMessage {
  if (r.replies.length !== 1) throw new Error(`expected one reply, got ${r.replies.length} (drop: ${JSON.stringify(r.drop)})`);
  // Decode the bytes actually sent, not the record the engine kept.
  return decodeDhcpMessage(r.replies[0]!.bytes);
}

function version(w: LeaseWrite | undefined): number | undefined {
  return w?.op === 'update' ? w.lease.version : undefined;
}

function opt(m: DhcpMessage, code: number): Buffer | undefined { return findOption(m.options, code); }
function optU32(m: DhcpMessage, code: number): number | undefined { return opt(m, code)?.readUInt32BE(0); }

/** DISCOVER + REQUEST(SELECTING) for one client; returns the ACK's result. */
function dora(e: ServerEngine, o: Partial<Msg> = {}, now = T0, extra: Partial<EngineInput> = {}): { offer: EngineResult; ack: EngineResult } {
  const offer = send(e, msg({ ...o, type: DhcpMessageType.DHCPDISCOVER }), now, extra);
  const yiaddr = reply(offer).yiaddr;
  const ack = send(e, msg({ ...o, type: DhcpMessageType.DHCPREQUEST, requested: yiaddr, serverId: SERVER }), now, extra);
  return { offer, ack };
}

t.test('DISCOVER -> OFFER for each IPoIB variant: RFC 4390 replies, echoed chaddr, option 61 echoed', async (t) => {
  const e = engine();
  const cases: [keyof typeof VECTOR, string, number, string][] = [
    ['rfc4390', 'rfc4390', 0, '00'.repeat(16)],
    ['flexboot', 'flexboot', 6, '7cfe90292652' + '00'.repeat(10)],
    ['patched', 'patched-dhclient', 8, '7cfe900300292652' + '00'.repeat(8)],
  ];
  let first: number | null = null;
  for (const [name, variant, hlen, chaddr] of cases) {
    const r = send(e, VECTOR[name]);
    t.equal(r.variant, variant, `${name}: variant recorded`);
    t.match(r.label, /^cid=ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:52 guid=7cfe900300292652 htype=32 hlen=\d xid=0x[0-9a-f]{8}$/, `${name}: client label`);
    const m = reply(r);
    t.equal(m.op, BOOTREPLY, `${name}: BOOTREPLY`);
    t.equal(getMessageType(m), DhcpMessageType.DHCPOFFER, `${name}: OFFER`);
    t.equal(m.htype, 32, `${name}: htype 32 kept`);
    t.equal(m.hlen, hlen, `${name}: hlen as the client sent it`);
    t.equal(m.chaddr.toString('hex'), chaddr, `${name}: chaddr from client (RFC 2131 Table 3)`);
    t.equal(formatHex(opt(m, OptionCode.CLIENT_IDENTIFIER)!), 'ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:52', `${name}: option 61 echoed (RFC 6842)`);
    t.equal(optU32(m, OptionCode.SERVER_IDENTIFIER), SERVER, `${name}: server identifier`);
    const rep = r.replies[0]!;
    t.same([rep.address, rep.port, rep.broadcast, rep.route], [0xffffffff, P + 1, true, 'broadcast'], `${name}: broadcast to 255.255.255.255:P+1`);
    t.equal(r.writes.length, 0, `${name}: an offer writes nothing`);
    first ??= m.yiaddr;
    t.equal(m.yiaddr, first, `${name}: the same client (same option 61) is offered the same address`);
  }
  t.same(e.counters.variants, { rfc4390: 1, flexboot: 1, 'patched-dhclient': 1 }, 'variants counted');
});

t.test('DORA: ACK with lease time, T1/T2 = 0.5/0.875, interface-mtu, mask; one durable write with hwaddr and GUID', async (t) => {
  const e = engine();
  const hw = hex('80000048 fe800000 00000000 7cfe9003 00292652');
  const { offer, ack } = dora(e, {}, T0, { senderHwAddress: hw });
  const m = reply(ack);
  t.equal(getMessageType(m), DhcpMessageType.DHCPACK);
  t.equal(m.yiaddr, reply(offer).yiaddr, 'ACK confirms the offered address');
  t.equal(ipv4ToString(m.yiaddr), '10.0.0.10', 'first address of the pool');
  t.equal(optU32(m, OptionCode.LEASE_TIME), 3600, 'valid-lifetime');
  t.equal(optU32(m, OptionCode.RENEWAL_TIME), 1800, 'T1 = 0.5 x lease');
  t.equal(optU32(m, OptionCode.REBINDING_TIME), 3150, 'T2 = 0.875 x lease');
  t.equal(opt(m, OptionCode.INTERFACE_MTU)?.readUInt16BE(0), 2044, 'option 26 from the subnet');
  t.equal(ipv4ToString(optU32(m, OptionCode.SUBNET_MASK)!), '255.255.255.0', 'subnet mask from the prefix');
  t.equal(ipv4ToString(optU32(m, OptionCode.ROUTERS)!), '10.0.0.1', 'routers');
  t.equal(ipv4ToString(optU32(m, OptionCode.DOMAIN_NAME_SERVERS)!), '10.0.0.53', 'global option');
  t.equal(ack.writes.length, 1, 'one write');
  const w = ack.writes[0]!;
  t.equal(w.op, 'add');
  t.equal(w.lease.state, 'bound');
  t.equal(w.lease.expiry - w.lease.start, 3600);
  t.equal(w.lease.start, T0 / 1000);
  t.same(w.lease.clientId, mellanoxClientId(GUID), 'keyed on option 61');
  t.equal(w.lease.portGuid, GUID, 'port GUID recorded');
  t.same(w.lease.hwaddr, hw, '20-byte hardware address recorded');
  t.same(ack.replies[0]!.linkUnicast, hw, 'broadcast carried in a link-layer unicast to the sender');
  t.same(e.counters.sent, { offer: 1, ack: 1 });
  t.same(e.counters.received, { discover: 1, request: 1 });
  // An options list the client did not ask for is not sent (PRL honoured).
  const r2 = send(e, msg({ type: DhcpMessageType.DHCPDISCOVER, cid: ibGuidClientId(0x1n), prl: [1] }));
  t.equal(opt(reply(r2), OptionCode.INTERFACE_MTU), undefined, 'interface-mtu not sent when not requested');
  t.ok(opt(reply(r2), OptionCode.ROUTERS) !== undefined, 'routers is a basic option (Kea sends it unasked)');
});

t.test('link-unicast replies can be switched off; unknown address falls back to the broadcast group', async (t) => {
  const off = engine(config({ ipoib: { 'link-unicast-replies': false } }));
  const hw = hex('00000048 fe800000 00000000 7cfe9003 00292652');
  t.equal(send(off, msg({ type: 1 }), T0, { senderHwAddress: hw }).replies[0]!.linkUnicast, null);
  t.equal(send(engine(), msg({ type: 1 })).replies[0]!.linkUnicast, null, 'no sender address: broadcast group');
});

t.test('REQUEST naming another server withdraws our offer (RFC 2131 §4.3.2)', async (t) => {
  const e = engine(config({}, { pools: [{ pool: '10.0.0.10 - 10.0.0.10' }] }));
  const a = reply(send(e, msg({ type: 1 })));
  t.equal(ipv4ToString(a.yiaddr), '10.0.0.10');
  const other = ibGuidClientId(0x2n);
  t.equal(send(e, msg({ type: 1, cid: other })).drop?.reason, 'pool-exhausted', 'the only address is held by the offer');
  const r = send(e, msg({ type: 3, requested: a.yiaddr, serverId: ip('10.0.0.99') }));
  t.equal(r.drop?.reason, 'other-server');
  t.equal(r.replies.length, 0, 'silent');
  t.equal(ipv4ToString(reply(send(e, msg({ type: 1, cid: other }))).yiaddr), '10.0.0.10', 'the withdrawn offer is free again');
});

t.test('SELECTING for an address that is not available: NAK', async (t) => {
  const e = engine();
  dora(e, { cid: ibGuidClientId(0x2n) });
  const r = send(e, msg({ type: 3, requested: ip('10.0.0.10'), serverId: SERVER }));
  const m = reply(r);
  t.equal(getMessageType(m), DhcpMessageType.DHCPNAK);
  t.equal(m.yiaddr, 0); t.equal(m.ciaddr, 0);
  t.equal(optU32(m, OptionCode.LEASE_TIME), undefined, 'no lease time in a NAK');
  t.ok(opt(m, OptionCode.CLIENT_IDENTIFIER) !== undefined, 'option 61 echoed in NAK');
  t.equal(r.replies[0]!.broadcast, true, 'NAK is broadcast (RFC 2131 §4.1)');
  t.equal(r.writes.length, 0);
});

t.test('INIT-REBOOT: ACK for the client\'s own address; NAK or silence by authoritative', async (t) => {
  for (const authoritative of [true, false]) {
    const e = engine(config({ authoritative }));
    const { ack } = dora(e);
    const mine = reply(ack).yiaddr;
    const later = T0 + 60_000;
    const ok = send(e, msg({ type: 3, requested: mine }), later);
    t.equal(getMessageType(reply(ok)), DhcpMessageType.DHCPACK, `auth=${authoritative}: own address confirmed`);
    t.equal(ok.writes[0]?.op, 'update', 'lease extended by an update');
    t.equal(version(ok.writes[0]), 1, 'against the version the store holds');
    // Wrong network (the client moved).
    const moved = send(e, msg({ type: 3, requested: ip('192.168.1.5') }), later);
    if (authoritative) t.equal(getMessageType(reply(moved)), DhcpMessageType.DHCPNAK, 'auth: wrong subnet -> NAK');
    else t.same([moved.replies.length, moved.drop?.reason], [0, 'not-authoritative'], 'non-auth: wrong subnet -> silent');
    // Someone else's address, asked by an unknown client.
    const stranger = ibGuidClientId(0x99n);
    const theirs = send(e, msg({ type: 3, cid: stranger, requested: mine }), later);
    if (authoritative) t.equal(getMessageType(reply(theirs)), DhcpMessageType.DHCPNAK, 'auth: another client\'s address -> NAK');
    else t.same([theirs.replies.length, theirs.drop?.reason], [0, 'not-authoritative'], 'non-auth: no record -> silent');
    // Unknown client, free address.
    const free = send(e, msg({ type: 3, cid: stranger, requested: ip('10.0.0.150') }), later);
    if (authoritative) t.equal(getMessageType(reply(free)), DhcpMessageType.DHCPACK, 'auth: free pool address granted');
    else t.equal(free.drop?.reason, 'not-authoritative', 'non-auth: unknown client -> silent');
  }
  // Per-subnet authoritative overrides the global one.
  const e = engine(config({ authoritative: false }, { authoritative: true }));
  t.equal(getMessageType(reply(send(e, msg({ type: 3, requested: ip('192.168.1.5') })))), DhcpMessageType.DHCPNAK);
});

t.test('RENEWING (unicast) and REBINDING (broadcast): ACK to ciaddr, ciaddr echoed, versions chain', async (t) => {
  const e = engine(config({ authoritative: true }));
  const { ack } = dora(e);
  const a = reply(ack).yiaddr;
  for (const [i, flags] of [[1, 0], [2, FLAG_BROADCAST]] as const) {
    const r = send(e, msg({ type: 3, ciaddr: a, flags }), T0 + i * 1_800_000, { source: { address: a, port: P + 1 } });
    const m = reply(r);
    t.equal(getMessageType(m), DhcpMessageType.DHCPACK);
    t.equal(m.yiaddr, a); t.equal(m.ciaddr, a, 'ciaddr from client');
    t.same([r.replies[0]!.address, r.replies[0]!.port, r.replies[0]!.route], [a, P + 1, 'ciaddr'], 'unicast to ciaddr (RFC 2131 §4.1)');
    t.equal(version(r.writes[0]), i, `update against version ${i}`);
    t.equal(r.writes[0]!.lease.expiry, (T0 + i * 1_800_000) / 1000 + 3600, 'expiry extended');
  }
  const unknown = send(e, msg({ type: 3, cid: ibGuidClientId(0x77n), ciaddr: ip('10.0.0.250'), flags: 0 }));
  t.equal(getMessageType(reply(unknown)), DhcpMessageType.DHCPNAK, 'unknown client, address outside any pool, authoritative -> NAK');
  const lost = send(e, msg({ type: 3, cid: ibGuidClientId(0x78n), ciaddr: ip('10.0.0.99'), flags: 0 }));
  t.equal(getMessageType(reply(lost)), DhcpMessageType.DHCPACK, 'unknown client, free pool address, authoritative -> granted (the server lost its record)');
  t.equal(unknown.replies[0]!.broadcast, true, 'NAK broadcast even with ciaddr');
  t.equal(send(e, msg({ type: 3 })).drop?.reason, 'request-invalid', 'REQUEST naming no address');
});

t.test('DECLINE holds the address off for decline-probation-period, counted', async (t) => {
  const e = engine(config({}, { pools: [{ pool: '10.0.0.10 - 10.0.0.11' }] }));
  const a = reply(dora(e).ack).yiaddr;
  const d = send(e, msg({ type: 4, requested: a, serverId: SERVER }), T0 + 1000);
  t.equal(d.replies.length, 0, 'no reply to DECLINE');
  t.equal(d.writes[0]?.lease.state, 'declined');
  t.equal(d.writes[0]?.lease.clientId, null, 'declined address belongs to no client');
  t.equal(d.writes[0]?.lease.expiry, T0 / 1000 + 1 + 600, 'held for decline-probation-period');
  t.equal(e.counters.declines, 1);
  const next = reply(send(e, msg({ type: 1 }), T0 + 2000)).yiaddr;
  t.not(next, a, 'the same client is offered another address');
  t.equal(send(e, msg({ type: 1, cid: ibGuidClientId(5n) }), T0 + 3000).drop?.reason, 'pool-exhausted', 'declined + offered = pool full');
  t.equal(send(e, msg({ type: 4, requested: a, serverId: SERVER, cid: ibGuidClientId(6n) })).drop?.reason, 'decline-invalid', 'a stranger cannot decline');
  // After the hold-off (and the offer's 30 s) the sweep frees it.
  const later = T0 + 700_000;
  const swept = e.expire(later);
  t.ok(swept.some((w) => w.lease.address === a && w.lease.state === 'expired'), 'sweep expires the declined lease');
  const both = [5n, 6n].map((g) => reply(send(e, msg({ type: 1, cid: ibGuidClientId(g) }), later)).yiaddr);
  t.ok(both.includes(a), 'the declined address is offered again');
});

t.test('RELEASE frees the lease; a stranger\'s RELEASE is refused', async (t) => {
  const e = engine();
  const a = reply(dora(e).ack).yiaddr;
  t.equal(send(e, msg({ type: 7, ciaddr: a, cid: ibGuidClientId(9n), serverId: SERVER })).drop?.reason, 'release-invalid');
  const r = send(e, msg({ type: 7, ciaddr: a, serverId: SERVER }), T0 + 5000);
  t.same([r.replies.length, r.writes[0]?.lease.state, r.writes[0]?.lease.expiry], [0, 'released', T0 / 1000 + 5]);
  t.equal(reply(send(e, msg({ type: 1 }), T0 + 6000)).yiaddr, a, 'the client gets its old address back (existing lease)');
  t.equal(send(e, msg({ type: 7, ciaddr: a, serverId: SERVER }), T0 + 7000).drop?.reason, 'release-invalid', 'released twice');
});

t.test('INFORM: ACK without yiaddr or lease times, to ciaddr', async (t) => {
  const e = engine();
  const r = send(e, msg({ type: 8, ciaddr: ip('10.0.0.250'), flags: 0, prl: [3, 6, 26, 51, 58] }));
  const m = reply(r);
  t.equal(getMessageType(m), DhcpMessageType.DHCPACK);
  t.equal(m.yiaddr, 0, 'no yiaddr');
  t.equal(m.ciaddr, ip('10.0.0.250'));
  for (const c of [OptionCode.LEASE_TIME, OptionCode.RENEWAL_TIME, OptionCode.REBINDING_TIME]) t.equal(opt(m, c), undefined, `no option ${c}`);
  t.equal(opt(m, OptionCode.INTERFACE_MTU)?.readUInt16BE(0), 2044, 'configuration options still sent');
  t.same([r.replies[0]!.address, r.replies[0]!.port], [ip('10.0.0.250'), P + 1]);
  t.equal(r.writes.length, 0);
});

t.test('pool exhaustion: no OFFER, counted drop', async (t) => {
  const e = engine(config({}, { pools: [{ pool: '10.0.0.10 - 10.0.0.12' }] }));
  for (let i = 1; i <= 3; i++) dora(e, { cid: ibGuidClientId(BigInt(i)) });
  const r = send(e, msg({ type: 1, cid: ibGuidClientId(4n) }));
  t.same([r.replies.length, r.drop?.reason], [0, 'pool-exhausted']);
  t.equal(e.counters.drops['pool-exhausted'], 1);
  // Leases running out make room (the pool is rescanned, the bitmap follows states, not the clock).
  const late = T0 + 3_700_000;
  t.equal(reply(send(e, msg({ type: 1, cid: ibGuidClientId(4n) }), late)).yiaddr >= ip('10.0.0.10'), true, 'expired lease reused');
});

// ---- reservations by any identity ----

const RES_GUID = 0x0002c90300a1b2c3n;
const RES_HW = hex('80000048 fe800000 00000000') ;
const HW20 = Buffer.concat([RES_HW, Buffer.from(RES_GUID.toString(16).padStart(16, '0'), 'hex')]);
const SYSTEMD_CID = hex('ff 12345678 0002 0000ab11 a1b2c3d4e5f60718'); // RFC 4361, DUID-EN 43793 (no GUID inside)
const DUID_LL_IB = (iaid: number): Buffer => rfc4361ClientId(iaid, {
  kind: 'll', htype: 32, linkLayerAddress: Buffer.from(RES_GUID.toString(16).padStart(16, '0'), 'hex'),
});
const mellanoxIaid = (iaid: number): Buffer => { const b = Buffer.from(mellanoxClientId(RES_GUID)); b.writeUInt32BE(iaid, 1); return b; };

const RESERVATION_FORMS: [string, Record<string, string>][] = [
  ['port-guid', { 'port-guid': '00:02:c9:03:00:a1:b2:c3' }],
  ['ipoib-hw-address', { 'ipoib-hw-address': formatHex(HW20) }],
  ['client-id (Mellanox)', { 'client-id': formatHex(mellanoxClientId(RES_GUID)) }],
  ['client-id (20:GUID)', { 'client-id': formatHex(ibGuidClientId(RES_GUID)) }],
  ['client-id (RFC 4361 DUID-LL, IAID 1)', { 'client-id': formatHex(DUID_LL_IB(1)) }],
  ['duid (DUID-EN 713 + GUID)', { duid: formatHex(mellanoxClientId(RES_GUID).subarray(5)) }],
  ['hw-address (GUID-derived MAC)', { 'hw-address': formatHex(guidToMac(RES_GUID)) }],
  ['hw-address (20 bytes)', { 'hw-address': formatHex(HW20) }],
];

const PRESENTATIONS: [string, Partial<Msg>, Buffer | null][] = [
  ['option 61 Mellanox form (firmware)', { cid: mellanoxClientId(RES_GUID) }, null],
  ['option 61 Mellanox form, IAID 7', { cid: mellanoxIaid(7) }, null],
  ['option 61 20:GUID', { cid: ibGuidClientId(RES_GUID) }, null],
  ['option 61 20:<20-byte address> (legacy)', { cid: ibHwaddrClientId(HW20) }, null],
  ['option 61 RFC 4361 DUID-LL htype 32, IAID 9', { cid: DUID_LL_IB(9) }, null],
  ['FlexBoot: hlen 6 MAC in chaddr, unrelated option 61', { cid: SYSTEMD_CID, hlen: 6, chaddr: guidToMac(RES_GUID) }, null],
  ['patched dhclient: hlen 8 GUID in chaddr, unrelated option 61', { cid: SYSTEMD_CID, hlen: 8, chaddr: Buffer.from(RES_GUID.toString(16).padStart(16, '0'), 'hex') }, null],
  ['link layer: 20-byte source address, unrelated option 61', { cid: SYSTEMD_CID }, HW20],
];

t.test('a reservation naming any identity form matches a client presenting any other', async (t) => {
  for (const [form, ident] of RESERVATION_FORMS) {
    const cfg = config({}, { reservations: [{ ...ident, 'ip-address': '10.0.0.222', hostname: 'node7' }] });
    for (const [how, o, hw] of PRESENTATIONS) {
      const e = engine(cfg);
      const r = send(e, msg({ ...o, type: 1, prl: [1, 12] }), T0, hw === null ? {} : { senderHwAddress: hw });
      const m = reply(r);
      t.equal(ipv4ToString(m.yiaddr), '10.0.0.222', `${form} <- ${how}`);
      t.equal(opt(m, OptionCode.HOST_NAME)?.toString(), 'node7', `${form} <- ${how}: hostname`);
    }
    // A different port does not match.
    const e = engine(cfg);
    t.not(ipv4ToString(reply(send(e, msg({ type: 1, cid: mellanoxClientId(RES_GUID + 1n) }))).yiaddr), '10.0.0.222', `${form}: another GUID does not match`);
  }
  // Kea's identifiers that carry no GUID match exactly.
  const cfg = config({}, { reservations: [{ 'client-id': formatHex(SYSTEMD_CID), 'ip-address': '10.0.0.223' }, { 'hw-address': '02:00:00:aa:bb:cc', 'ip-address': '10.0.0.224' }] });
  t.equal(ipv4ToString(reply(send(engine(cfg), msg({ type: 1, cid: SYSTEMD_CID }))).yiaddr), '10.0.0.223', 'client-id exact');
  const ethernet = msg({ type: 1, cid: null, htype: 1, hlen: 6, chaddr: hex('0200 00aa bbcc'), flags: 0 });
  const er = send(engine(cfg), ethernet);
  t.equal(ipv4ToString(reply(er).yiaddr), '10.0.0.224', 'hw-address (Ethernet chaddr, no option 61)');
  t.equal(er.replies[0]!.route, 'broadcast', 'Ethernet client without BROADCAST flag: broadcast (no ARP injection)');
  t.equal(send(engine(cfg, { unicastToYiaddr: true }), ethernet).replies[0]!.route, 'yiaddr', 'unicastToYiaddr: to yiaddr at chaddr');
});

t.test('a reserved address in the pool is never given to another client; reservation wins over an existing lease', async (t) => {
  const cfg = config({}, { pools: [{ pool: '10.0.0.10 - 10.0.0.11' }], reservations: [{ 'port-guid': '0x0002c90300a1b2c3', 'ip-address': '10.0.0.10' }] });
  const e = engine(cfg);
  t.equal(ipv4ToString(reply(dora(e, { cid: ibGuidClientId(1n) }).ack).yiaddr), '10.0.0.11', 'pool pick skips the reserved address');
  t.equal(send(e, msg({ type: 1, cid: ibGuidClientId(2n) })).drop?.reason, 'pool-exhausted');
  t.equal(ipv4ToString(reply(send(e, msg({ type: 1, cid: mellanoxClientId(RES_GUID) }))).yiaddr), '10.0.0.10');
});

t.test('firmware, initramfs and OS identifiers of one port share a lease (match-port-guid)', async (t) => {
  const e = engine();
  const a = reply(dora(e, { cid: mellanoxClientId(GUID) }).ack).yiaddr;
  const hw = hex('80000048 fe800000 00000000 7cfe9003 00292652');
  const os = dora(e, { cid: SYSTEMD_CID }, T0 + 60_000, { senderHwAddress: hw });
  t.equal(reply(os.ack).yiaddr, a, 'the OS client id on the same port gets the same address');
  t.same(os.ack.writes.map((w) => [w.op, w.lease.state]), [['update', 'bound']], 'the lease is re-keyed, not duplicated');
  t.same(os.ack.writes[0]!.lease.clientId, SYSTEMD_CID);
  const off = engine(config({ ipoib: { 'match-port-guid': false } }));
  const b = reply(dora(off, { cid: mellanoxClientId(GUID) }).ack).yiaddr;
  t.not(reply(dora(off, { cid: SYSTEMD_CID }, T0, { senderHwAddress: hw }).ack).yiaddr, b, 'switched off: a new address');
});

// ---- options, classes ----

t.test('option precedence: host > pool > subnet > class > global; always-send / never-send; classes', async (t) => {
  const cfg = config({
    'client-classes': [
      { name: 'pxe', test: "substring(option[60].text,0,9) == 'PXEClient'", 'option-data': [{ name: 'domain-name', data: 'pxe.example' }, { name: 'ntp-servers', data: '10.9.9.9' }], 'boot-file-name': 'pxelinux.0', 'next-server': '10.0.0.5' },
      { name: 'ib', test: 'pkt4.htype == 32', 'option-data': [{ name: 'domain-name', data: 'ib.example' }, { name: 'time-offset', data: '-3600', 'always-send': true }] },
    ],
    'option-data': [{ name: 'domain-name-servers', data: '10.0.0.53' }, { name: 'domain-name', data: 'global.example' }, { name: 'ntp-servers', data: '10.8.8.8' }, { name: 'log-servers', data: '10.7.7.7' }],
  }, {
    pools: [{ pool: '10.0.0.10 - 10.0.0.20', 'option-data': [{ name: 'ntp-servers', data: '10.1.1.1' }] }],
    'option-data': [{ name: 'routers', data: '10.0.0.1' }, { name: 'log-servers', data: '10.6.6.6', 'never-send': true }],
    reservations: [{ 'client-id': formatHex(ibGuidClientId(0x42n)), 'ip-address': '10.0.0.100', 'option-data': [{ name: 'routers', data: '10.0.0.254' }] }],
  });
  const e = engine(cfg);
  const prl = [1, 3, 6, 7, 15, 42];
  const text = (m: DhcpMessage, c: number): string | undefined => opt(m, c)?.toString('latin1');
  const plain = reply(send(e, msg({ type: 1, prl })));
  t.equal(text(plain, OptionCode.DOMAIN_NAME), 'ib.example', 'class beats global');
  t.equal(ipv4ToString(optU32(plain, 42)!), '10.1.1.1', 'pool beats class and global');
  t.equal(opt(plain, 7), undefined, 'never-send at subnet level withholds the global value');
  t.equal(opt(plain, 2)?.readInt32BE(0), -3600, 'always-send option sent unasked');
  const pxe = reply(send(e, msg({ type: 1, prl, cid: ibGuidClientId(0x43n), extra: [{ code: 60, data: Buffer.from('PXEClient:Arch:00000') }] })));
  t.equal(text(pxe, OptionCode.DOMAIN_NAME), 'pxe.example', 'first matching class wins among classes');
  t.equal(pxe.file.toString('latin1').replace(/\0+$/, ''), 'pxelinux.0', 'boot-file-name in file');
  t.equal(ipv4ToString(pxe.siaddr), '10.0.0.5', 'next-server in siaddr');
  const host = reply(send(e, msg({ type: 1, prl, cid: ibGuidClientId(0x42n) })));
  t.equal(ipv4ToString(optU32(host, OptionCode.ROUTERS)!), '10.0.0.254', 'host beats subnet');
  t.equal(ipv4ToString(optU32(host, 42)!), '10.8.8.8', 'reserved address outside the pool: no pool options');
  // Option order: requested options in the client's order after 53, 54, 51, 58, 59, 1.
  const codes = plain.options.map((o) => o.code);
  t.same(codes.slice(0, 6), [53, 54, 51, 58, 59, 1]);
  t.ok(codes.indexOf(3) < codes.indexOf(6) && codes.indexOf(6) < codes.indexOf(15), 'PRL order kept');
  t.equal(codes[codes.length - 1], 61, 'option 61 echoed last (no relay)');
});

t.test('pool and subnet client-class restrict who may use them', async (t) => {
  const cfg = parseConfig(JSON.stringify({ Dhcp4: {
    'client-classes': [{ name: 'flexboot', test: 'pkt4.hlen == 6' }],
    subnet4: [{ id: 1, subnet: '10.0.0.0/24', interface: IF, pools: [
      { pool: '10.0.0.10 - 10.0.0.19', 'client-class': 'flexboot' }, { pool: '10.0.0.20 - 10.0.0.29' }] }],
  } }), 'c.conf');
  const e = engine(cfg);
  t.equal(ipv4ToString(reply(send(e, VECTOR.flexboot)).yiaddr), '10.0.0.10', 'FlexBoot gets the firmware pool');
  t.equal(ipv4ToString(reply(send(e, msg({ type: 1, cid: ibGuidClientId(1n) }))).yiaddr), '10.0.0.20', 'others get the OS pool');
});

// ---- relays ----

t.test('relays: giaddr selects the subnet; reply to giaddr:P; option 82 echoed last; broadcast flag kept', async (t) => {
  const cfg = config({ authoritative: true }, {}, [
    { id: 2, subnet: '10.2.0.0/16', pools: [{ pool: '10.2.0.10 - 10.2.0.20' }] },
    { id: 3, subnet: '10.3.0.0/24', pools: [{ pool: '10.3.0.10 - 10.3.0.20' }], relay: { 'ip-addresses': ['192.168.7.1'] } },
    { id: 4, subnet: '10.4.0.0/24', pools: [{ pool: '10.4.0.10 - 10.4.0.20' }] },
  ]);
  const e = engine(cfg);
  const o82 = hex('0106 6962302f3131 0208 0002c90300a1b2c3');
  const relayed = { giaddr: ip('10.2.5.1'), flags: FLAG_BROADCAST, extra: [{ code: OptionCode.AGENT_OPTIONS, data: o82 }] };
  const r = send(e, msg({ type: 1, ...relayed }), T0, { source: { address: ip('10.2.5.1'), port: P } });
  const m = reply(r);
  t.equal(ipv4ToString(m.yiaddr), '10.2.0.10', 'subnet chosen by giaddr');
  t.same([r.replies[0]!.address, r.replies[0]!.port, r.replies[0]!.broadcast], [ip('10.2.5.1'), P, false], 'to the relay on the server port');
  t.equal(m.giaddr, ip('10.2.5.1'), 'giaddr kept');
  t.equal(m.flags, FLAG_BROADCAST, 'broadcast flag kept in the relayed reply');
  t.same(m.options[m.options.length - 1], { code: 82, data: o82 }, 'option 82 echoed unchanged, last');
  const ack = send(e, msg({ type: 3, requested: m.yiaddr, serverId: SERVER, ...relayed }));
  t.equal(getMessageType(reply(ack)), DhcpMessageType.DHCPACK, 'relayed REQUEST acknowledged');
  t.equal(ipv4ToString(reply(send(e, msg({ type: 1, cid: ibGuidClientId(3n), giaddr: ip('192.168.7.1') }))).yiaddr), '10.3.0.10', 'relay ip-addresses select subnet 3');
  const ls = hex('0504 0a040001');
  t.equal(ipv4ToString(reply(send(e, msg({ type: 1, cid: ibGuidClientId(4n), giaddr: ip('10.2.5.1'), extra: [{ code: 82, data: ls }] }))).yiaddr), '10.4.0.10', 'link-selection sub-option beats giaddr (RFC 3527)');
  t.equal(ipv4ToString(reply(send(e, msg({ type: 1, cid: ibGuidClientId(5n), giaddr: ip('10.2.5.1'), extra: [{ code: 118, data: hex('0a040001') }] }))).yiaddr), '10.4.0.11', 'option 118 (RFC 3011)');
  const nak = send(e, msg({ type: 3, cid: ibGuidClientId(6n), requested: ip('10.9.9.9'), giaddr: ip('10.2.5.1'), flags: 0 }));
  t.equal(getMessageType(reply(nak)), DhcpMessageType.DHCPNAK);
  t.equal(reply(nak).flags & FLAG_BROADCAST, FLAG_BROADCAST, 'relayed NAK sets BROADCAST (RFC 2131 §4.3.2)');
  t.equal(send(e, msg({ type: 1, cid: ibGuidClientId(7n), giaddr: ip('172.16.0.1') })).drop?.reason, 'no-subnet');
});

// ---- hostile input ----

t.test('malformed and hostile messages are dropped with a counted reason', async (t) => {
  const e = engine();
  const cut = send(e, VECTOR.rfc4390.subarray(0, 100));
  t.equal(cut.drop?.reason, 'malformed');
  t.match(cut.drop?.detail, /^\w+ at offset \d+: /, 'detail names the field and offset');
  const overrun = Buffer.from(VECTOR.rfc4390); overrun[244] = 200; // option 61's length runs past the end
  t.match(send(e, overrun).drop, { reason: 'malformed', detail: /options\[61\] at offset 244/ });
  const loop = Buffer.concat([VECTOR.rfc4390.subarray(0, 240), hex('340103 3501 01 ff')]);
  loop.fill(0, 108, 236); loop[108] = 52; loop[109] = 1; loop[110] = 2; loop[111] = 255;
  t.equal(send(e, loop).drop?.reason, 'malformed', 'option overload inside file is refused, never followed');
  const rep = Buffer.from(VECTOR.rfc4390); rep[0] = 2;
  t.equal(send(e, rep).drop?.reason, 'not-request');
  t.equal(send(e, msg({ type: 1, cid: null })).drop?.reason, 'ipoib-no-client-id', 'htype 32 without option 61');
  t.equal(send(e, msg({ type: 1, cid: null, htype: 1, hlen: 0 })).drop?.reason, 'no-client-identity');
  const bootp = emptyDhcpMessage(BOOTREQUEST); bootp.htype = 1; bootp.hlen = 6;
  t.equal(send(e, bootp).drop?.reason, 'bootp');
  t.equal(send(e, msg({ type: 2 })).drop?.reason, 'unsupported-type', 'an OFFER sent to the server');
  t.equal(send(e, msg({ type: 1 }), T0, { interface: 'ib9' }).drop?.reason, 'unknown-interface');
  t.match(e.counters.drops, { malformed: 3, 'not-request': 1, 'ipoib-no-client-id': 1, 'no-client-identity': 1, bootp: 1, 'unsupported-type': 1, 'unknown-interface': 1 });
});

t.test('a flood from one client is rate-limited and does not stall others', async (t) => {
  const e = engine();
  let answered = 0;
  for (let i = 0; i < 1000; i++) if (send(e, VECTOR.rfc4390, T0 + i).replies.length > 0) answered++;
  t.ok(answered >= 20 && answered <= 40, `flooder answered ${answered} times in 1 s (burst 20 + 10/s)`);
  t.ok(e.counters.drops['rate-limited'] >= 960, 'the rest counted as rate-limited');
  const other = send(e, msg({ type: 1, cid: ibGuidClientId(123n) }), T0 + 1000);
  t.equal(getMessageType(reply(other)), DhcpMessageType.DHCPOFFER, 'another client is served at once');
});

t.test('fuzz: arbitrary bytes never throw and the engine keeps working', async (t) => {
  const e = engine(config({ ipoib: { 'client-rate-limit': { burst: 100000, 'per-second': 100000 } } }));
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 700 }), fc.integer({ min: 0, max: 700 }), (junk, cut) => {
    const mutated = Buffer.from(VECTOR.flexboot);
    for (let i = 0; i < junk.length && i < mutated.length; i += 7) mutated[(cut + i) % mutated.length] = junk[i]!;
    const r1 = send(e, Buffer.from(junk));
    const r2 = send(e, mutated);
    return r1.replies.length + r2.replies.length <= 2;
  }), { numRuns: 1500 });
  t.equal(getMessageType(reply(send(e, msg({ type: 1, cid: ibGuidClientId(777n) })))), DhcpMessageType.DHCPOFFER, 'still answers');
});

// ---- scale and the real store ----

t.test('100 clients on the link get distinct addresses; SQLite holds their 20-byte addresses', async (t) => {
  const store = await openSqliteStore(':memory:');
  t.teardown(() => store.close());
  const cfg = config();
  await store.configurePools(cfg.subnets.flatMap((s) => s.pools.map((p) => ({ id: p.id, subnetId: s.id, first: p.first, last: p.last }))));
  const e = engine(cfg);
  const seen = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const guid = 0x0002c90300000000n + BigInt(i);
    const hw = Buffer.concat([hex('80000100 fe800000 00000000'), Buffer.from(guid.toString(16).padStart(16, '0'), 'hex')]);
    hw.writeUIntBE(0x100 + i, 1, 3);
    const { ack } = dora(e, { cid: mellanoxClientId(guid), xid: i }, T0 + i, { senderHwAddress: hw });
    const out = await commitWrites(e, store, ack.writes, T0 + i);
    t.ok(out.ok, `client ${i} committed`);
    seen.add(reply(ack).yiaddr);
  }
  t.equal(seen.size, 100, 'distinct addresses');
  const leases = await store.list({ state: 'bound' });
  t.equal(leases.length, 100, '100 bound leases in the store');
  t.ok(leases.every((l) => l.hwaddr?.length === 20 && l.portGuid !== null && l.hwaddr.readBigUInt64BE(12) === l.portGuid), 'each with its 20-byte address and port GUID');
  // Renewals against the real store: the predicted versions are the store's.
  const first = leases[0]!;
  const r = send(e, msg({ type: 3, cid: first.clientId!, ciaddr: first.address, flags: 0 }), T0 + 10_000);
  t.ok((await commitWrites(e, store, r.writes, T0 + 10_000)).ok, 'renewal update accepted by the store');
  t.equal((await store.get(first.address))?.version, 2);
});

t.test('a failed commit resynchronises the engine with the store', async (t) => {
  const store = await openSqliteStore(':memory:');
  t.teardown(() => store.close());
  const cfg = config({}, { pools: [{ pool: '10.0.0.10 - 10.0.0.11' }] });
  const e = engine(cfg);
  // Another server (sharing the database) took 10.0.0.10 behind this engine's back.
  await store.add({ address: ip('10.0.0.10'), subnetId: 1, clientId: ibGuidClientId(0x55n), portGuid: null, hwaddr: null,
    hostname: null, state: 'bound', start: T0 / 1000, expiry: T0 / 1000 + 3600, server: 'other' });
  const { ack } = dora(e);
  t.equal(ipv4ToString(reply(ack).yiaddr), '10.0.0.10', 'the engine did not know');
  const out = await commitWrites(e, store, ack.writes, T0);
  t.equal(out.ok, false, 'commit refused: the ACK must not be sent');
  t.equal(e.lease(ip('10.0.0.10'))?.server, 'other', 'engine now holds the store\'s lease');
  t.equal(ipv4ToString(reply(send(e, msg({ type: 1 }), T0 + 1000)).yiaddr), '10.0.0.11', 'the client is offered another address');
});

t.test('a config reload keeps leases: a new engine built from the old one\'s leases', async (t) => {
  const e = engine();
  const a = reply(dora(e).ack).yiaddr;
  const e2 = engine(config({ 'valid-lifetime': 7200 }), { leases: e.leases(), now: T0 });
  const r = send(e2, msg({ type: 3, requested: a }), T0 + 1000);
  t.equal(reply(r).yiaddr, a);
  t.equal(optU32(reply(r), OptionCode.LEASE_TIME), 7200, 'new config applies');
  t.equal(version(r.writes[0]), 1, 'version carried over');
});

// ---- the per-packet path (engine.ts "Cost") and the `dhcp` npm client's REQUEST ----

t.test('the reply writer produces the protocol codec\'s bytes; too-large replies still go through the codec', async (t) => {
  // Differential: server/reply-writer.ts against protocol/dhcp-message.ts encodeDhcpMessage (an
  // independent implementation of RFC 2131 §2 / RFC 2132 / RFC 3396), on arbitrary reply records.
  const opt = fc.record({ code: fc.integer({ min: 1, max: 254 }).filter((c) => c !== 52), data: fc.uint8Array({ maxLength: 300 }) });
  fc.assert(fc.property(
    fc.record({
      htype: fc.integer({ min: 0, max: 255 }), hlen: fc.integer({ min: 0, max: 255 }), xid: fc.integer({ min: 0, max: 0xffffffff }),
      flags: fc.integer({ min: 0, max: 0xffff }), yiaddr: fc.integer({ min: 0, max: 0xffffffff }), giaddr: fc.integer({ min: 0, max: 0xffffffff }),
      chaddr: fc.uint8Array({ minLength: 16, maxLength: 16 }), sname: fc.boolean(), options: fc.uniqueArray(opt, { selector: (o) => o.code, maxLength: 12 }),
      max: fc.integer({ min: 0, max: 1500 }),
    }),
    (v) => {
      const m = emptyDhcpMessage(BOOTREPLY);
      Object.assign(m, { htype: v.htype, hlen: v.hlen, xid: v.xid, flags: v.flags, yiaddr: v.yiaddr, giaddr: v.giaddr });
      Buffer.from(v.chaddr).copy(m.chaddr);
      if (v.sname) m.sname.write('boot.example', 'latin1');
      m.options = v.options.map((o) => ({ code: o.code, data: Buffer.from(o.data) }));
      const mine = writeReply(m, v.max);
      let theirs: Buffer | null = null;
      try { theirs = encodeDhcpMessage(m, undefined, 0, v.max); } catch { theirs = null; }
      // null from the writer: it leaves overload (or refusal) to the codec.
      return mine === null || (theirs !== null && mine.equals(theirs));
    }), { numRuns: 2000 });
  const e = engine(config({}, { 'option-data': [{ name: 'routers', data: '10.0.0.1' }, { name: 'domain-name', data: 'x'.repeat(250) },
    { name: 'domain-search', data: 'a'.repeat(60) + '.example, ' + 'b'.repeat(60) + '.example, ' + 'c'.repeat(60) + '.example' }] }));
  const r = send(e, msg({ type: 1, prl: [1, 3, 15, 119] }));
  const m = reply(r);
  t.ok(r.replies[0]!.bytes.length <= 576 - 28, 'a reply past the options field still fits 576 bytes');
  t.ok(findOption(m.options, OptionCode.DOMAIN_NAME)?.length === 250, 'domain-name carried (file/sname overload by the codec)');
});

t.test('a logger that reports a level off is never called for it; the label is still there when read', async (t) => {
  const calls: string[] = [];
  const log = { info: (_o: object, s: string): void => { calls.push(s); }, debug: (_o: object, s: string): void => { calls.push(s); },
    isLevelEnabled: (): boolean => false };
  const e = engine(config(), { log });
  const { ack } = dora(e);
  const junk = send(e, Buffer.from('not dhcp'));
  t.same(calls, [], 'nothing formatted or logged');
  t.match(ack.label, /^cid=ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:52 guid=7cfe900300292652 htype=32 hlen=0 xid=0x00001234$/);
  t.equal(junk.label, 'src=0.0.0.0:33026', 'an undecodable datagram is labelled by its source');
  const on: string[] = [];
  const e2 = engine(config(), { log: { info: (_o: object, s: string): void => { on.push(s); }, debug: (): void => {}, isLevelEnabled: (l: string): boolean => l === 'info' } });
  dora(e2);
  t.ok(on.some((s) => / offer$/.test(s)) && on.some((s) => / ack$/.test(s)), 'with info on, OFFER and ACK are logged');
});

t.test('REQUEST without options 50 and 54 (the `dhcp` npm client): selects our offer by xid, and nothing else', async (t) => {
  // TOOLCHAIN.md §5 bug 2: dhcp@0.2.20 sends DHCPREQUEST with ciaddr 0, no option 50, no option 54,
  // the OFFER's xid, htype 1 / hlen 6 and option 61 = its MAC as text.
  const mac = hex('020000000042');
  const cid = Buffer.from('02:00:00:00:00:42', 'latin1');
  const who = { cid, htype: 1, hlen: 6, chaddr: mac, flags: 0, xid: 0x2a };
  const e = engine();
  const offer = reply(send(e, msg({ ...who, type: DhcpMessageType.DHCPDISCOVER })));
  const r = send(e, msg({ ...who, type: DhcpMessageType.DHCPREQUEST }));
  const ack = reply(r);
  t.equal(getMessageType(ack), DhcpMessageType.DHCPACK, 'ACK');
  t.equal(ack.yiaddr, offer.yiaddr, 'for the offered address');
  t.equal(optU32(ack, OptionCode.SERVER_IDENTIFIER), SERVER, 'from this server');
  t.equal(r.writes.length, 1, 'one durable write');
  t.equal(e.counters.variants['request-selecting-by-xid'], 1, 'the variant is counted');
  // Without a matching offer it names no address: dropped as before (RFC 2131 gives it no meaning).
  const other = send(e, msg({ ...who, type: DhcpMessageType.DHCPREQUEST, xid: 0x2b, cid: Buffer.from('02:00:00:00:00:43', 'latin1') }));
  t.equal(other.drop?.reason, 'request-invalid', 'another client with no offer: request-invalid');
  const e2 = engine();
  send(e2, msg({ ...who, type: DhcpMessageType.DHCPDISCOVER }));
  t.equal(send(e2, msg({ ...who, type: DhcpMessageType.DHCPREQUEST, xid: 0x99 })).drop?.reason, 'request-invalid', 'another xid: request-invalid');
  t.equal(send(e2, msg({ ...who, type: DhcpMessageType.DHCPREQUEST }), T0 + 31_000).drop?.reason, 'request-invalid', 'after the offer expired (30 s): request-invalid');
  t.equal(e2.counters.variants['request-selecting-by-xid'], undefined, 'and not counted as the variant');
});
