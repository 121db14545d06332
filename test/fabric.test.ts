// The emulated fabric: packet build/parse (checked against link/wire's independent codec), switch
// forwarding and counters, hostile input, LID assignment, partitions.conf and topology parsing, the
// SA (PathRecord and MCMemberRecord answers field by field against IPOIB-FACTS §2, with status
// codes), ports leaving groups, faults and the capture tap.
import t from 'tap';
import { Fabric } from '../link/fabric/fabric.js';
import { InProcessTransport, type PortLink } from '../link/fabric/transport.js';
import { VirtualScheduler, seededRandom } from '../link/fabric/scheduler.js';
import { buildPacket, newPacketFields, parsePacket } from '../link/fabric/packet-view.js';
import { parsePartitions, pkeyTableFor, defaultPartitions } from '../link/fabric/partitions.js';
import { parseTopology } from '../link/fabric/topology.js';
import { FabricError } from '../link/fabric/errors.js';
import { LidManager } from '../link/fabric/lid-manager.js';
import { FaultInjector } from '../link/fabric/fault.js';
import { deriveNodeGuid, derivePortGuid } from '../link/fabric/guid.js';
import type { PortInfo } from '../link/fabric/port-info.js';
import { compileMulticastFilter, type ByteMatch, type CompiledFilter, type FilterScope, type MulticastFilter } from '../link/fabric/multicast-filter.js';
import type { PacketView } from '../link/fabric/packet-view.js';
import { decodeIbPacket, stampVcrc } from '../link/wire/ib-packet.js';
import { ipoibBroadcastMgid, ipv4MulticastMgid, portGid } from '../link/wire/ib-address.js';
import { saMad, decodeSaMad, encodeSaRequest } from '../link/wire/sa.js';
import { pathRecord, makePathRecord, PathRecordMask as PM } from '../link/wire/path-record.js';
import { mcMemberRecord, makeMcMemberRecord, McMemberMask as MM, IPOIB_BROADCAST_JOIN_MASK, IPOIB_GROUP_JOIN_MASK } from '../link/wire/mc-member-record.js';
import { Method, SaAttr } from '../link/wire/mad-constants.js';

// ---------------------------------------------------------------------------------------------
// A raw host: a PortLink plus everything the fabric pushed to it. MADs are built by hand here so
// that the SA sees exactly the bytes a test chose.

interface RawHost {
  name: string;
  link: PortLink;
  info: PortInfo;
  rx: Buffer[];
  views: (PacketView | undefined)[];
}

function world(opts: Partial<ConstructorParameters<typeof Fabric>[0]> = {}) {
  const sched = new VirtualScheduler();
  const fabric = new Fabric({ scheduler: sched, ...opts });
  const transport = new InProcessTransport(fabric);
  const attach = (name: string, extra: { portNum?: number; mtuCap?: number; portGuid?: bigint } = {}): RawHost => {
    const h: RawHost = { name, link: undefined as unknown as PortLink, info: undefined as unknown as PortInfo, rx: [], views: [] };
    h.link = transport.attachSync({ hostName: name, portNum: extra.portNum ?? 1, ...(extra.mtuCap ? { mtuCap: extra.mtuCap } : {}), ...(extra.portGuid ? { portGuid: extra.portGuid } : {}) }, {
      packet: (buf, view) => { h.rx.push(buf); h.views.push(view); },
      portInfo: (info) => { h.info = info; },
    });
    return h;
  };
  return { sched, fabric, transport, attach };
}

const QP1_QKEY = 0x80010000;

/** A GMP from `from` to the SM: LRH/BTH/DETH around the 256-byte MAD, built with the fabric's builder. */
function gmp(from: RawHost, mad: Buffer, over: Partial<ReturnType<typeof newPacketFields>> = {}): Buffer {
  const f = newPacketFields();
  Object.assign(f, { dlid: from.info.smLid, slid: from.info.lid, pkey: 0xffff, destQp: 1, qkey: QP1_QKEY, srcQp: 1 }, over);
  return buildPacket(f, mad);
}

/** Sends a MAD, runs the SA, returns the MAD bytes of the reply (or undefined). */
function ask(w: ReturnType<typeof world>, h: RawHost, mad: Buffer, over = {}): Buffer | undefined {
  h.rx.length = 0;
  h.link.send(gmp(h, mad, over));
  w.sched.runUntilIdle();
  const r = h.rx.find((b) => parsePacket(b).srcQp === 1);
  if (r === undefined) return undefined;
  const v = parsePacket(r);
  return r.subarray(v.payloadOffset, v.payloadOffset + 256);
}

const saStatus = (reply: Buffer | undefined): number => (reply === undefined ? -1 : reply.readUInt16BE(4));

function joinMad(h: RawHost, fields: Parameters<typeof makeMcMemberRecord>[0], mask: bigint, method: number = Method.SET): Buffer {
  return encodeSaRequest({
    method, attributeId: SaAttr.MCMEMBER_RECORD, transactionId: 0x1234n, componentMask: mask,
    record: mcMemberRecord.encode(makeMcMemberRecord({ portGid: portGid(h.info.portGuid), ...fields })),
  });
}

function pathMad(fields: Parameters<typeof makePathRecord>[0], mask: bigint, method: number = Method.GET): Buffer {
  return encodeSaRequest({ method, attributeId: SaAttr.PATH_RECORD, transactionId: 0x77n, componentMask: mask, record: pathRecord.encode(makePathRecord(fields)) });
}

// ---------------------------------------------------------------------------------------------

t.test('packets: the builder agrees with link/wire ib-packet (ICRC, VCRC, PktLen, pad)', async (t) => {
  const f = newPacketFields();
  Object.assign(f, { sl: 3, dlid: 0xc000, slid: 7, pkey: 0xffff, destQp: 0xffffff, psn: 0x123456, qkey: 0x0b1b, srcQp: 0x48 });
  f.grh = { sgid: portGid(0x0002c90300000001n), dgid: ipoibBroadcastMgid(0xffff), tclass: 0, flowLabel: 0, hopLmt: 0 };
  for (const len of [0, 1, 2, 3, 4, 60, 333, 2044]) {
    const buf = buildPacket(f, Buffer.alloc(len, 0xab));
    // The builder leaves the per-hop VCRC for the switch's capture point to stamp (packet-view.ts).
    t.equal(buf.readUInt16LE(buf.length - 2), 0, `VCRC not stamped by the builder (${len})`);
    t.ok(stampVcrc(buf), 'stampVcrc fills it in');
    const p = decodeIbPacket(buf); // throws on a bad ICRC, VCRC, PktLen or PayLen
    t.equal(p.payload.length, len, `payload ${len} decodes with the wire codec`);
    t.equal(buf.length % 4, 2, 'frame = words + 2-byte VCRC');
    const v = parsePacket(buf);
    t.ok(v.icrcOk() && v.error === undefined && v.linkError === undefined, `own parse accepts ${len}`);
    t.equal(v.payloadLength, len);
  }
  // §3.6 worked size: broadcast ARP = 134 bytes, PktLen 33.
  const arp = buildPacket(f, Buffer.alloc(60));
  t.equal(arp.length, 134, 'ARP frame is 134 bytes (IPOIB-FACTS §3.6)');
  t.equal(((arp[4]! & 7) << 8) | arp[5]!, 33, 'PktLen 33');
  // §1.2: GRH + 332-byte payload => PktLen 101, 406 bytes with VCRC (UD, no ImmDt).
  const big = buildPacket(f, Buffer.alloc(332));
  t.equal(big.length, 406);
  t.equal(parsePacket(big).pktLen, 101);
});

t.test('parse never throws on hostile bytes and names the reason', async (t) => {
  const rnd = seededRandom(7);
  const f = newPacketFields();
  Object.assign(f, { dlid: 2, slid: 3, destQp: 5, qkey: 1, srcQp: 9 });
  const good = buildPacket(f, Buffer.alloc(40, 1));
  let reasons = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.from(good.subarray(0, Math.floor(rnd.next() * (good.length + 1))));
    for (let k = 0; k < 3; k++) if (b.length > 0) b[Math.floor(rnd.next() * b.length)] = Math.floor(rnd.next() * 256);
    const v = parsePacket(b);
    const r = v.linkError ?? v.error ?? (v.icrcOk() ? 'ok' : 'BAD_ICRC');
    reasons.add(r);
  }
  t.ok(reasons.has('BAD_LENGTH') && reasons.has('BAD_ICRC'), `reasons seen: ${[...reasons].join(', ')}`);
  reasons = new Set();
  t.equal(parsePacket(Buffer.alloc(0)).linkError, 'BAD_LENGTH');
});

t.test('LIDs: SM port first (LID 1), then in attach order, stable across host restarts', async (t) => {
  const w = world();
  t.equal(w.fabric.sm.port!.lid, 1, 'SM port gets LID 1');
  const a = w.attach('node-a');
  const b = w.attach('node-b');
  t.equal(a.info.state, 'INIT', 'a port starts in INIT, without a LID');
  t.equal(a.info.lid, 0);
  w.sched.runUntilIdle();
  t.equal(a.info.state, 'ACTIVE');
  t.same([a.info.lid, b.info.lid], [2, 3]);
  t.equal(a.info.smLid, 1, 'PortInfo.MasterSMLID');
  t.same(a.info.pkeys, [0xffff], 'no partitions.conf: full member of the default partition');
  // a "crashes" and comes back; meanwhile c attaches and must not take a's LID.
  a.link.detach();
  t.equal(a.info.state, 'DOWN');
  const c = w.attach('node-c');
  w.sched.runUntilIdle();
  t.equal(c.info.lid, 4, 'a new host does not take a remembered LID');
  const a2 = w.attach('node-a');
  w.sched.runUntilIdle();
  t.equal(a2.info.lid, 2, 'the restarted host gets its LID back');
  t.equal(a2.info.portGuid, a.info.portGuid, 'GUIDs derived from the host name are stable');
  // Across a new fabric process, through OpenSM's guid2lid file.
  const saved = w.fabric.sm.lids.exportGuid2Lid();
  t.match(saved, /^0x[0-9a-f]{16} 0x0001 0x0001$/m);
  const w2 = world({ guid2lid: saved });
  const c2 = w2.attach('node-c');
  w2.sched.runUntilIdle();
  t.equal(c2.info.lid, 4, 'guid2lid survives an SM restart');
  const lm = new LidManager();
  t.throws(() => lm.importGuid2Lid('0x1 0xc000 0xc000'), FabricError, 'a multicast LID in guid2lid is rejected');
});

t.test('attach errors: duplicate GUID, port range, unknown host with a topology', async (t) => {
  const w = world();
  w.attach('x');
  t.throws(() => w.attach('x'), { code: 'DUPLICATE_GUID' });
  t.throws(() => w.attach('y', { portNum: 0 }), { code: 'BAD_PORT_NUM' });
  t.throws(() => w.attach('y', { portNum: 255 }), { code: 'BAD_PORT_NUM' });
  t.throws(() => w.attach('', {}), { code: 'BAD_ATTACH' });
  await t.rejects(w.transport.attach({ hostName: 'x', portNum: 1 }, { packet: () => undefined, portInfo: () => undefined }), { code: 'DUPLICATE_GUID' });
  const topo = parseTopology('Switch 4 "S1"\n[1] "H-a"[1]\n\nCa 1 "H-a" # "alpha HCA-1"\n[1](2c90000001235) "S1"[1]\n');
  const wt = world({ topology: topo });
  t.throws(() => wt.attach('beta'), { code: 'UNKNOWN_HOST' });
  const h = wt.attach('alpha');
  t.equal(h.info.portGuid, 0x2c90000001235n, 'port GUID from the topology link line');
  t.throws(() => wt.attach('H-a', { portNum: 2 }), { code: 'BAD_PORT_NUM' });
  t.equal(derivePortGuid(deriveNodeGuid('x'), 1), deriveNodeGuid('x') + 1n);
});

t.test('topology: ibnetdiscover format as ibsim reads it', async (t) => {
  const text = [
    '# two switches',
    'switchguid=0x2c90000000001',
    'Switch 8 "S-1"   # "ISR9024" lid 1',
    '[1] "H-1"[1]',
    '[2] "H-2"[1]',
    '[8] "S-2"[8]',
    '',
    'Switch 8 "S-2"',
    '[8] "S-1"[8]',
    '',
    'vendid=0x2c9',
    'caguid=0x2c90000000100',
    'Ca 1 "H-1" # "node1 HCA-1"',
    '[1](2c90000000101) "S-1"[1] # lid 3 4xSDR',
    '',
    'Hca 2 "H-2"',
    '[1] "S-1"[2]',
  ].join('\n');
  const topo = parseTopology(text, 'net');
  t.equal(topo.nodes.size, 4);
  t.equal(topo.nodes.get('S-1')!.nodeGuid, 0x2c90000000001n);
  t.equal(topo.nodes.get('S-2')!.nodeGuid, 0x200000n, 'auto switch GUIDs from 0x200000 (ibsim)');
  t.equal(topo.hosts.get('H-1')!.portGuids.get(1), 0x2c90000000101n);
  t.equal(topo.hosts.get('node1'), topo.hosts.get('H-1'), 'the description names the host too');
  t.equal(topo.hosts.get('H-2')!.nodeGuid, 0x100000n, 'auto CA GUIDs from 0x100000 (ibsim)');
  t.equal(topo.hosts.get('H-2')!.portGuids.get(2), 0x100002n);
  t.equal(topo.hosts.get('H-2')!.switchPorts.get(1), 2);
  t.throws(() => parseTopology('Ca 1 "x"\n[2] "S"[1]\n', 'net'), /net:2: x has no port 2/);
  t.throws(() => parseTopology('include other.net\n', 'net'), /not supported/);
  t.throws(() => parseTopology('[1] "S"[1]\n', 'net'), /outside a node/);
});

t.test('partitions.conf: OpenSM syntax, membership, groups, errors with line numbers', async (t) => {
  const conf = [
    '# comment',
    'Default=0x7fff, ipoib : ALL=full ;',
    'storage=0x8001, ipoib, mtu=5, rate=7, sl=1 :',
    '   0x0002c90300001235=full, 0x0002c90300001236 ;   # limited by default',
    'mc=0x0003, ipoib, defmember=full :',
    '   mgid=ff12:401b::0707, sl=1',
    '   ALL ;',
    'both=0x0004 : SELF=both ;',
  ].join('\n');
  const ps = parsePartitions(conf, 'p.conf');
  t.same(ps.map((p) => [p.name, p.pkey, p.ipoib]), [['Default', 0x7fff, true], ['storage', 1, true], ['mc', 3, true], ['both', 4, false]]);
  const st = ps[1]!.groups[0]!;
  t.same([st.mtu, st.rate, st.sl, st.qkey], [5, 7, 1, 0x0b1b], 'group flags and the IPoIB default Q_Key');
  t.equal(st.mgid.toString('hex'), 'ff12401b' + '8001' + '000000000000' + 'ffffffff', 'broadcast MGID of P_Key 0x8001');
  const mg = ps[2]!.groups[1]!;
  t.equal(mg.mgid.toString('hex'), 'ff12401b800300000000000000000707', 'P_Key copied into an IP MGID with zero P_Key bytes');
  t.equal(mg.sl, 1);
  t.same(pkeyTableFor(ps, 0x0002c90300001235n, false), [0xffff, 0x8001, 0x8003]);
  t.same(pkeyTableFor(ps, 0x0002c90300001236n, false), [0xffff, 0x0001, 0x8003]);
  t.same(pkeyTableFor(ps, 0x99n, true), [0xffff, 0x8003, 0x8004, 0x0004], 'SELF=both gives full and limited keys');
  const noDefault = parsePartitions('p=0x10, ipoib : ALL=full ;');
  t.same(pkeyTableFor(noDefault, 0x5n, false), [0x7fff, 0x8010], 'without a Default rule: ALL=limited');
  t.same(pkeyTableFor(noDefault, 0x5n, true), [0xffff, 0x8010], '... and SELF=full');
  t.same(pkeyTableFor(defaultPartitions(), 0x5n, false), [0xffff]);
  t.throws(() => parsePartitions('a=0x1 : ALL=full ;\nb=0x8001 : ALL ;', 'p.conf'), /p.conf:2: P_Key 0x1 already used/);
  t.throws(() => parsePartitions('a=0x1, colour=red : ALL ;', 'p.conf'), /p.conf:1: unknown partition flag/);
  t.throws(() => parsePartitions('a=0x1 : ALL=sometimes ;', 'p.conf'), /membership/);
  t.throws(() => parsePartitions('a=0x1 : ALL', 'p.conf'), /not terminated/);
  t.throws(() => parsePartitions('a : ALL ;', 'p.conf'), /auto-generated/);
  t.throws(() => parsePartitions('a=0x8000 : ALL ;', 'p.conf'), /partition number 0/);
  t.throws(() => parsePartitions('a=0x2 : ALL_SWITCHES ;', 'p.conf'), /not supported/);
});

t.test('SA PathRecord: fields as OpenSM answers them (IPOIB-FACTS §2.2)', async (t) => {
  const w = world();
  const a = w.attach('pa', { mtuCap: 5 });
  const b = w.attach('pb', { mtuCap: 4 });
  w.sched.runUntilIdle();
  const mask = PM.DGID | PM.SGID | PM.NUMB_PATH | PM.TCLASS | PM.PKEY; // what Linux IPoIB sets
  const reply = ask(w, a, pathMad({ dgid: portGid(b.info.portGuid), sgid: portGid(a.info.portGuid), pkey: 0xffff, numbPath: 1, tclass: 0 }, mask))!;
  t.equal(reply[0], 1, 'BaseVersion 1');
  t.equal(reply[1], 0x03, 'SubnAdm');
  t.equal(reply[2], 2, 'class version 2');
  t.equal(reply[3], 0x81, 'GetResp');
  t.equal(reply.readUInt16BE(4), 0, 'status 0');
  t.equal(reply.readBigUInt64BE(8), 0x77n, 'TransactionID echoed');
  t.equal(reply.readUInt16BE(16), 0x0035, 'AttributeID PathRecord');
  const rec = reply.subarray(56, 56 + 64);
  t.equal(rec.subarray(8, 24).toString('hex'), portGid(b.info.portGuid).toString('hex'), 'DGID');
  t.equal(rec.subarray(24, 40).toString('hex'), portGid(a.info.portGuid).toString('hex'), 'SGID');
  t.equal(rec.readUInt16BE(40), b.info.lid, 'DLID');
  t.equal(rec.readUInt16BE(42), a.info.lid, 'SLID');
  t.equal(rec.readUInt32BE(44) & 0xff, 0, 'HopLimit 0 inside the subnet');
  t.equal(rec[49], 0x80, 'Reversible, NumbPath 0 (byte 0x80)');
  t.equal(rec.readUInt16BE(50), 0xffff, 'P_Key');
  t.equal(rec.readUInt16BE(52) & 0xf, 0, 'SL 0');
  t.equal(rec[54], 0x80 | 4, 'MTU = min along the path (2048), selector "exactly"');
  t.equal(rec[55], 0x80 | 3, 'rate 10 Gb/s, selector "exactly"');
  t.equal(rec[56], 0x80 | 0x12, 'PacketLifeTime = subnet timeout 0x12');
  // Loopback path: life time 0.
  const self = ask(w, a, pathMad({ dgid: portGid(a.info.portGuid), sgid: portGid(a.info.portGuid), pkey: 0xffff }, mask))!;
  t.equal(self[56 + 56], 0x80, 'loopback PacketLifeTime 0');
  t.equal(self[56 + 54], 0x80 | 5, 'loopback MTU = the port\'s 4096');
  // Status codes.
  t.equal(saStatus(ask(w, a, pathMad({ dgid: portGid(0x1234n), sgid: portGid(a.info.portGuid), pkey: 0xffff }, mask))), 0x0500, 'unknown DGID: INVALID_GID');
  t.equal(saStatus(ask(w, a, pathMad({ dlid: 0x99, sgid: portGid(a.info.portGuid) }, PM.DLID | PM.SGID))), 0x0300, 'unknown DLID: NO_RECORDS');
  t.equal(saStatus(ask(w, a, pathMad({ dgid: portGid(b.info.portGuid), sgid: portGid(a.info.portGuid), pkey: 0x8005 }, mask))), 0x0300, 'partition not shared: NO_RECORDS');
  t.equal(saStatus(ask(w, a, pathMad({ dgid: portGid(b.info.portGuid), mtuSelector: 0, mtu: 4 }, PM.DGID | PM.MTU | PM.MTU_SELECTOR))), 0x0300, 'MTU > 2048 impossible on this path: NO_RECORDS');
  const le = ask(w, a, pathMad({ dgid: portGid(b.info.portGuid), mtuSelector: 1, mtu: 4 }, PM.DGID | PM.MTU | PM.MTU_SELECTOR))!;
  t.equal(le[56 + 54], 0x80 | 3, 'MTU selector "less than 2048" gives 1024');
  t.equal(saStatus(ask(w, a, pathMad({}, 0n))), 0x0400, 'a Get matching several paths: TOO_MANY_RECORDS');
  const table = ask(w, a, pathMad({}, 0n, Method.GET_TABLE))!;
  t.equal(table[3], 0x92, 'GetTableResp');
  t.equal(table.readUInt16BE(44), 8, 'AttributeOffset 8 words = 64-byte records');
  // The port goes down: no path any more.
  w.fabric.setLinkState(b.info.portGuid, false);
  t.equal(saStatus(ask(w, a, pathMad({ dgid: portGid(b.info.portGuid), sgid: portGid(a.info.portGuid), pkey: 0xffff }, mask))), 0x0300, 'a DOWN port has no path');
});

t.test('SA MCMemberRecord: join, create, leave and their status codes (OpenSM rules)', async (t) => {
  const w = world();
  const a = w.attach('ma');
  const b = w.attach('mb');
  const small = w.attach('msmall', { mtuCap: 3 });
  w.sched.runUntilIdle();
  const bcast = ipoibBroadcastMgid(0xffff);
  // The pre-created broadcast group (IPOIB-FACTS §2.4): IPoIB's join cannot create, so it must exist.
  const r = ask(w, a, joinMad(a, { mgid: bcast, pkey: 0xffff, joinState: 1 }, IPOIB_BROADCAST_JOIN_MASK))!;
  t.equal(r[3], 0x81, 'a Set is answered by GetResp');
  t.equal(saStatus(r), 0);
  const rec = r.subarray(56, 56 + 56);
  t.equal(rec.subarray(0, 16).toString('hex'), 'ff12401bffff000000000000ffffffff', 'MGID');
  t.equal(rec.subarray(16, 32).toString('hex'), portGid(a.info.portGuid).toString('hex'), 'PortGID');
  t.equal(rec.readUInt32BE(32), 0x0b1b, 'Q_Key 0x0B1B');
  t.equal(rec.readUInt16BE(36), 0xc000, 'MLID 0xC000 (first group)');
  t.equal(rec[38], 0x84, 'MTU 2048, selector exactly');
  t.equal(rec[39], 0, 'TClass 0');
  t.equal(rec.readUInt16BE(40), 0xffff, 'P_Key');
  t.equal(rec[42], 0x83, 'rate 10 Gb/s, selector exactly');
  t.equal(rec[43], 0x92, 'PacketLifeTime 0x12, selector exactly');
  t.equal(rec.readUInt32BE(44), 0, 'SL 0, FlowLabel 0, HopLimit 0');
  t.equal(rec[48]! & 0xf, 1, 'JoinState FullMember');
  t.same(w.fabric.switch.multicastPorts(0xc000).map((p) => p.portGuid), [a.info.portGuid], 'the MFT now sends 0xC000 to a');
  // A port whose MTU is below the group's cannot join (validate_port_caps).
  t.equal(saStatus(ask(w, small, joinMad(small, { mgid: bcast, pkey: 0xffff, joinState: 1 }, IPOIB_BROADCAST_JOIN_MASK))), 0x0200, 'port MTU 1024 < group 2048: REQ_INVALID');
  // Missing components.
  t.equal(saStatus(ask(w, a, joinMad(a, { mgid: bcast, joinState: 1 }, MM.MGID | MM.JOIN_STATE))), 0x0600, 'no PortGID in the mask: INSUF_COMPS');
  const other = ipv4MulticastMgid('224.0.0.1', 0xffff);
  t.equal(saStatus(ask(w, a, joinMad(a, { mgid: other, pkey: 0xffff, joinState: 1 }, IPOIB_BROADCAST_JOIN_MASK))), 0x0600, 'create without Q_Key/TClass/FlowLabel/SL: INSUF_COMPS');
  t.equal(saStatus(ask(w, a, joinMad(a, { mgid: other, pkey: 0xffff, joinState: 2, qkey: 0x0b1b, mtuSelector: 2, mtu: 4, rateSelector: 2, rate: 3 }, IPOIB_GROUP_JOIN_MASK))), 0x0200, 'create as NonMember: REQ_INVALID');
  t.equal(saStatus(ask(w, a, joinMad(a, { mgid: other, pkey: 0xffff, joinState: 1, qkey: 0x0b1b, mtuSelector: 2, mtu: 5, rateSelector: 2, rate: 3 }, IPOIB_GROUP_JOIN_MASK))), 0x0200, 'IPoIB group with another MTU than its broadcast group: REQ_INVALID');
  t.equal(saStatus(ask(w, a, joinMad(a, { mgid: bcast, pkey: 0xffff, joinState: 1, qkey: 0x1111 }, IPOIB_BROADCAST_JOIN_MASK | MM.QKEY))), 0x0200, 'Q_Key differs from the group: REQ_INVALID');
  t.equal(saStatus(ask(w, a, joinMad(a, { mgid: bcast, pkey: 0xffff, joinState: 0 }, IPOIB_BROADCAST_JOIN_MASK))), 0x0200, 'JoinState 0: REQ_INVALID');
  t.equal(saStatus(ask(w, a, joinMad(a, { mgid: bcast, portGid: portGid(0xdeadn), pkey: 0xffff, joinState: 1 }, IPOIB_BROADCAST_JOIN_MASK))), 0x0200, 'unknown PortGID: REQ_INVALID');
  // Create an IPoIB group with the broadcast group's parameters (what Linux sends for 224.0.0.1).
  const groupFields = { mgid: other, pkey: 0xffff, joinState: 1, qkey: 0x0b1b, mtuSelector: 2, mtu: 4, rateSelector: 2, rate: 3 };
  const c = ask(w, a, joinMad(a, groupFields, IPOIB_GROUP_JOIN_MASK))!;
  t.equal(saStatus(c), 0, 'created');
  t.equal(c.readUInt16BE(56 + 36), 0xc001, 'next free MLID');
  // Send-only full member (0x8) of a new group: may create it; not in the forwarding set.
  const so = ipv4MulticastMgid('239.1.2.3', 0xffff);
  const s = ask(w, b, joinMad(b, { ...groupFields, mgid: so, joinState: 8 }, IPOIB_GROUP_JOIN_MASK))!;
  t.equal(saStatus(s), 0, 'SendOnlyFullMember creates the group');
  const soMlid = s.readUInt16BE(56 + 36);
  t.same(w.fabric.switch.multicastPorts(soMlid), [], 'a send-only member does not receive');
  // b leaves it: last full(-ish) member gone, the group is deleted (not well known).
  const lv = ask(w, b, joinMad(b, { mgid: so, joinState: 8 }, MM.MGID | MM.PORT_GID | MM.JOIN_STATE, Method.DELETE))!;
  t.equal(lv[3], 0x95, 'DeleteResp');
  t.equal(saStatus(lv), 0);
  t.equal(lv[56 + 48]! & 0xf, 0, 'JoinState left: 0');
  t.equal(w.fabric.sm.groups.byMgidOf(so), undefined, 'group deleted with its last full member');
  t.equal(saStatus(ask(w, b, joinMad(b, { mgid: so, joinState: 8 }, MM.MGID | MM.PORT_GID | MM.JOIN_STATE, Method.DELETE))), 0x0200, 'leave of a deleted group: REQ_INVALID');
  // Leave bits that were never joined: REQ_INVALID (o15-0.1.14).
  t.equal(saStatus(ask(w, a, joinMad(a, { mgid: bcast, joinState: 2 }, MM.MGID | MM.PORT_GID | MM.JOIN_STATE, Method.DELETE))), 0x0200, 'leave of a JoinState not held: REQ_INVALID');
  // b joins as NonMember while a is a full member, then a leaves: the broadcast group is well known and stays, emptied.
  t.equal(saStatus(ask(w, b, joinMad(b, { mgid: bcast, pkey: 0xffff, joinState: 2 }, IPOIB_BROADCAST_JOIN_MASK))), 0, 'NonMember join of an existing group');
  t.equal(w.fabric.switch.multicastPorts(0xc000).length, 2);
  t.equal(saStatus(ask(w, a, joinMad(a, { mgid: bcast, joinState: 1 }, MM.MGID | MM.PORT_GID | MM.JOIN_STATE, Method.DELETE))), 0);
  const g = w.fabric.sm.groups.byMgidOf(bcast)!;
  t.ok(g !== undefined && g.members.size === 0, 'last full member gone: every member removed, the well-known group kept');
  t.same(w.fabric.switch.multicastPorts(0xc000), [], 'MFT emptied');
  // A query (Get) for the broadcast group from an untrusted requester: no PortGID / JoinState.
  const q = ask(w, a, joinMad(a, { mgid: bcast }, MM.MGID, Method.GET))!;
  t.equal(saStatus(q), 0);
  t.equal(q.readUInt32BE(56 + 32), 0x0b1b);
  t.equal(q.subarray(56 + 16, 56 + 32).toString('hex'), '0'.repeat(32), 'PortGID zeroed for an untrusted query');
});

t.test('SA fuzz: random records under valid SA headers never throw, always answer or drop', async (t) => {
  const w = world();
  const a = w.attach('fz');
  w.sched.runUntilIdle();
  const rnd = seededRandom(11);
  let answered = 0;
  for (let i = 0; i < 400; i++) {
    const attr = [0x0035, 0x0038, 0x0031, 0x0001][i % 4]!;
    const method = [Method.GET, Method.SET, Method.DELETE, Method.GET_TABLE, 0x07][Math.floor(rnd.next() * 5)]!;
    const mad = encodeSaRequest({ method, attributeId: attr, transactionId: BigInt(i), componentMask: BigInt(Math.floor(rnd.next() * 2 ** 30)), record: Buffer.alloc(0) });
    for (let k = 56; k < 256; k++) mad[k] = rnd.next() < 0.5 ? 0 : Math.floor(rnd.next() * 256);
    if (i % 3 === 0) mad.writeBigUInt64BE(0xfe80000000000000n, 56 + (attr === 0x0035 ? 8 : 16));
    const r = ask(w, a, mad);
    if (r !== undefined) { answered++; t.equal(r.readBigUInt64BE(8), BigInt(i), 'TID echoed'); }
  }
  t.ok(answered > 300, `${answered} of 400 answered, the rest dropped with a reason`);
  t.equal(w.fabric.sm.port!.counters.discards.BAD_MAD, 400 - answered, 'every unanswered MAD counted as BAD_MAD');
});

t.test('a port that goes down, or detaches, leaves its groups; it rejoins after coming back', async (t) => {
  const w = world();
  const a = w.attach('da');
  const b = w.attach('db');
  w.sched.runUntilIdle();
  const bcast = ipoibBroadcastMgid(0xffff);
  for (const h of [a, b]) t.equal(saStatus(ask(w, h, joinMad(h, { mgid: bcast, pkey: 0xffff, joinState: 1 }, IPOIB_BROADCAST_JOIN_MASK))), 0);
  const other = ipv4MulticastMgid('224.0.0.251', 0xffff);
  t.equal(saStatus(ask(w, a, joinMad(a, { mgid: other, pkey: 0xffff, joinState: 1, qkey: 0x0b1b, mtuSelector: 2, mtu: 4, rateSelector: 2, rate: 3 }, IPOIB_GROUP_JOIN_MASK))), 0);
  t.equal(w.fabric.switch.multicastPorts(0xc000).length, 2);
  w.fabric.setLinkState(a.info.portGuid, false);
  t.equal(a.info.state, 'DOWN', 'hotplug: the port is DOWN');
  t.same(w.fabric.switch.multicastPorts(0xc000).map((p) => p.portGuid), [b.info.portGuid], 'a left the broadcast group');
  t.equal(w.fabric.sm.groups.byMgidOf(other), undefined, 'a was the only full member of 224.0.0.251: group deleted');
  w.fabric.setLinkState(a.info.portGuid, true);
  t.equal(a.info.state, 'INIT');
  w.sched.runUntilIdle();
  t.equal(a.info.state, 'ACTIVE', 'up again after the next sweep');
  t.equal(a.info.lid, 2, 'same LID');
  b.link.detach();
  t.same(w.fabric.switch.multicastPorts(0xc000), [], 'a detached port leaves too');
  t.same(w.fabric.status().groups.find((g) => g.mlid === 0xc000)!.members, [], 'status shows the group empty');
});

t.test('switch: bad input is counted with a reason and never throws', async (t) => {
  const w = world();
  const a = w.attach('sa');
  const b = w.attach('sb');
  w.sched.runUntilIdle();
  const f = newPacketFields();
  Object.assign(f, { dlid: b.info.lid, slid: a.info.lid, destQp: 0x99, qkey: 1, srcQp: 0x50 });
  const good = buildPacket(f, Buffer.alloc(20, 7));
  const ca = w.fabric.port(a.info.portGuid).counters;
  a.link.send(good);
  t.equal(b.rx.length, 1, 'a good packet is forwarded');
  t.ok(b.views[0] !== undefined, 'with the switch\'s parse (decoded once)');
  // Bad LRH length (one byte short / PktLen wrong).
  a.link.send(good.subarray(0, good.length - 1));
  const badLen = Buffer.from(good); badLen[5] = badLen[5]! + 1;
  a.link.send(badLen);
  t.equal(ca.discards.BAD_LENGTH, 2, 'bad LRH length: BAD_LENGTH at the switch');
  const badLver = Buffer.from(good); badLver[0] = 0x01;
  a.link.send(badLver);
  t.equal(ca.discards.BAD_LRH, 1, 'LVer 1: BAD_LRH');
  // Spoofed SLID.
  const spoof = Buffer.from(good); spoof[7] = 0x55;
  a.link.send(spoof);
  t.equal(ca.discards.SLID_MISMATCH, 1);
  // To an unassigned LID.
  const nowhere = Buffer.from(good); nowhere[3] = 0x77;
  a.link.send(nowhere);
  t.equal(ca.discards.NO_ROUTE, 1);
  // Bad ICRC and an unknown opcode pass the switch (it reads only the LRH); the receiving HCA drops them.
  const badIcrc = Buffer.from(good); badIcrc[30] = badIcrc[30]! ^ 1;
  const unknownOp = buildPacket(Object.assign(newPacketFields(), { dlid: b.info.lid, slid: a.info.lid, opcode: 0x0c }), Buffer.alloc(16));
  b.rx.length = 0;
  a.link.send(badIcrc);
  a.link.send(unknownOp);
  t.equal(b.rx.length, 2, 'forwarded to the receiver');
  const v1 = parsePacket(b.rx[0]!);
  t.notOk(v1.icrcOk(), 'receiver sees a bad ICRC');
  const v2 = parsePacket(b.rx[1]!);
  t.ok(v2.icrcOk(), 'opcode packet has a good ICRC ...');
  t.equal(v2.error, 'UNKNOWN_OPCODE', '... and an unknown opcode');
  // MADs with bad headers at the SM: dropped with BAD_MAD (no answer), never a throw.
  const smC = w.fabric.sm.port!.counters;
  const badBase = joinMad(a, { mgid: ipoibBroadcastMgid(0xffff), joinState: 1 }, IPOIB_BROADCAST_JOIN_MASK); badBase[0] = 2;
  t.equal(ask(w, a, badBase), undefined, 'BaseVersion 2: no answer');
  const wrongClass = Buffer.from(badBase); wrongClass[0] = 1; wrongClass[1] = 0x81;
  t.equal(ask(w, a, wrongClass), undefined, 'directed-route SMP to QP1: no answer');
  const resp = Buffer.from(wrongClass); resp[1] = 0x03; resp[3] = 0x81;
  t.equal(ask(w, a, resp), undefined, 'a response method to the SA: no answer');
  t.equal(smC.discards.BAD_MAD, 3, 'three BAD_MADs counted at the SM port');
  const shortMad = ask(w, a, Buffer.alloc(100));
  t.equal(shortMad, undefined);
  t.equal(smC.discards.BAD_MAD, 4, 'a 100-byte MAD: BAD_MAD');
  const badVer = joinMad(a, { mgid: ipoibBroadcastMgid(0xffff), joinState: 1 }, IPOIB_BROADCAST_JOIN_MASK); badVer[2] = 1;
  t.equal(saStatus(ask(w, a, badVer)), 0x0004, 'SA class version 1: status "unsupported class version"');
  const unsupAttr = Buffer.from(badVer); unsupAttr[2] = 2; unsupAttr.writeUInt16BE(0x0031, 16);
  t.equal(saStatus(ask(w, a, unsupAttr)), 0x000c, 'ServiceRecord: unsupported method/attribute');
  t.equal(ask(w, a, joinMad(a, {}, 0n), { qkey: 0x1234 }), undefined, 'wrong Q_Key to QP1: dropped');
  t.equal(smC.discards.QKEY_VIOLATION, 1);
  t.equal(ask(w, a, joinMad(a, {}, 0n), { destQp: 0 }), undefined, 'to QP0: dropped (no SMA)');
  t.equal(smC.discards.NO_QP, 1);
  // Random garbage from a host: counted, not thrown.
  const rnd = seededRandom(3);
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.alloc(Math.floor(rnd.next() * 300));
    for (let k = 0; k < junk.length; k++) junk[k] = Math.floor(rnd.next() * 256);
    if (junk.length > 7 && i % 2 === 0) { junk[0] = 0; junk[1] = 2; junk.writeUInt16BE(a.info.lid, 6); junk.writeUInt16BE(1, 2); }
    a.link.send(junk);
  }
  w.sched.runUntilIdle();
  t.pass('2000 garbage packets sent, nothing thrown');
  t.ok(ca.totalDiscards() > 2000 - 50, `discards counted (${ca.totalDiscards()})`);
  const pq = ca.perfquery();
  t.equal(pq.PortXmitPkts, ca.xmitPkts);
  t.equal(pq.PortXmitData, Math.floor(ca.xmitBytes / 4), 'PortXmitData in 4-byte words, as perfquery');
});

t.test('faults: deterministic loss, duplication, reordering, delay, corruption', async (t) => {
  const sched = new VirtualScheduler();
  const got: number[] = [];
  const run = (cfg: ConstructorParameters<typeof FaultInjector>[0], seed = 5, n = 1000) => {
    got.length = 0;
    const inj = new FaultInjector(cfg, seededRandom(seed), sched);
    const sink = inj.wrap((buf) => got.push(buf.readUInt32BE(0)));
    for (let i = 0; i < n; i++) { const b = Buffer.alloc(64); b.writeUInt32BE(i, 0); sink(b, undefined); }
    sched.runUntilIdle();
    return inj.stats;
  };
  const l1 = run({ loss: 0.1 });
  const firstRun = [...got];
  t.ok(l1.lost > 60 && l1.lost < 140, `~10% lost (${l1.lost})`);
  t.equal(got.length, 1000 - l1.lost);
  run({ loss: 0.1 });
  t.same(got, firstRun, 'same seed, same losses');
  const d = run({ duplicate: 0.2 });
  t.equal(got.length, 1000 + d.duplicated);
  const r = run({ reorder: 0.1 });
  t.equal(got.length, 1000, 'reordering loses nothing');
  t.ok(r.reordered > 0 && got.some((v, i) => i > 0 && v < got[i - 1]!), 'and some packets arrive out of order');
  const t0 = sched.now();
  let at = -1;
  const inj = new FaultInjector({ delayMs: 5 }, seededRandom(1), sched);
  inj.wrap(() => { at = sched.now(); })(Buffer.alloc(8), undefined);
  t.equal(at, -1, 'not delivered before the delay');
  sched.runUntilIdle();
  t.equal(at - t0, 5, 'delivered 5 ms later in virtual time');
  t.throws(() => new FaultInjector({ loss: 2 }, seededRandom(1), sched), RangeError);
  // Corruption on a port's receive path: the HCA-side parse sees a bad ICRC.
  const w = world();
  const a = w.attach('fa');
  const b = w.attach('fb');
  w.sched.runUntilIdle();
  const rx = w.fabric.setPortFaults(b.info.portGuid, { rx: { corrupt: 1 } }).rx!;
  const f = newPacketFields();
  Object.assign(f, { dlid: b.info.lid, slid: a.info.lid, destQp: 0x99, qkey: 1, srcQp: 0x50 });
  for (let i = 0; i < 50; i++) a.link.send(buildPacket(f, Buffer.alloc(100, i)));
  t.equal(rx.stats.corrupted, 50);
  t.ok(b.rx.every((buf, i) => b.views[i] === undefined && !parsePacket(buf).icrcOk() && parsePacket(buf).linkError === undefined),
    'every corrupted packet still routes but fails its ICRC');
  // Fabric-wide loss counts FAULT_LOSS on the sending port.
  w.fabric.setPortFaults(b.info.portGuid, {});
  w.fabric.setFaults({ loss: 1 });
  b.rx.length = 0;
  a.link.send(buildPacket(f, Buffer.alloc(8)));
  t.equal(b.rx.length, 0);
  t.equal(w.fabric.counters(a.info.portGuid).discards.FAULT_LOSS, 1);
  w.fabric.setFaults(undefined);
  a.link.send(buildPacket(f, Buffer.alloc(8)));
  t.equal(b.rx.length, 1, 'faults removed');
});

t.test('capture tap sees every packet a port sends, with virtual time', async (t) => {
  const w = world();
  const a = w.attach('ca');
  const b = w.attach('cb');
  w.sched.runUntilIdle();
  const seen: { len: number; ts: number; from: string }[] = [];
  const off = w.fabric.addTap((buf, ts, from) => seen.push({ len: buf.length, ts, from: from.hostName }));
  w.sched.advance(1500);
  const f = newPacketFields();
  Object.assign(f, { dlid: b.info.lid, slid: a.info.lid, destQp: 0x99, qkey: 1, srcQp: 0x50 });
  a.link.send(buildPacket(f, Buffer.alloc(8)));
  a.link.send(Buffer.alloc(3));
  off();
  a.link.send(buildPacket(f, Buffer.alloc(8)));
  t.same(seen, [{ len: 8 + 12 + 8 + 8 + 6, ts: 1500, from: 'ca' }, { len: 3, ts: 1500, from: 'ca' }], 'malformed frames are captured too');
});

// ---------------------------------------------------------------------------------------------
// The switch's multicast index (multicast-index.ts) against the plain loop it replaces: for random
// filters, packets, senders and membership changes, the ports a packet is handed to (and their
// order) and every port's counters must be what a loop running each port's own compiled filter
// (compileMulticastFilter, tested above through the verbs) gives.

t.test('multicast index: hands a packet to exactly the ports the per-port loop would, counters equal', async (t) => {
  const w = world();
  const rnd = seededRandom(99);
  const pickOf = <T>(xs: readonly T[]): T => xs[Math.floor(rnd.next() * xs.length)]!;
  const log: string[] = [];
  const hosts: RawHost[] = [];
  for (let i = 0; i < 48; i++) {
    const h = w.attach(`mx${i}`, i % 11 === 5 ? { mtuCap: 1 } : {});
    const inner = h.rx;
    h.rx = new Proxy(inner, { get: (a, k) => (k === 'push' ? (b: Buffer) => { log.push(h.name); return a.push(b); } : Reflect.get(a, k)) });
    hosts.push(h);
  }
  w.sched.runUntilIdle();
  const MLID = 0xc123;
  const QKEY = 0x0b1b;
  const port = (h: RawHost) => w.fabric.port(h.info.portGuid);
  const A = [0x08, 0x00];
  const B = [0x08, 0x06];
  const addrs = [[10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3], [10, 0, 1, 9], [0, 0, 0, 0], [255, 255, 255, 255]];
  const udpPorts = [[0x80, 0x43], [0x80, 0x44], [0x00, 0x35]];
  const long = [[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 9]];
  const m = (offset: number, value: number[], extra: { mask?: number[]; negate?: boolean } = {}): ByteMatch => ({
    offset, value: Uint8Array.from(value), ...(extra.mask ? { mask: Uint8Array.from(extra.mask) } : {}), ...(extra.negate ? { negate: true } : {}),
  });
  const randomRule = (): ByteMatch[] => {
    switch (Math.floor(rnd.next() * 10)) {
      case 0: return [m(0, A, { negate: true }), m(0, B, { negate: true })];
      case 1: return [m(0, A), m(16, pickOf(addrs))];
      case 2: return [m(0, A), m(9, [17]), m(22, pickOf(udpPorts))];
      case 3: return [m(0, B), m(28, pickOf(addrs))];
      case 4: return [m(0, A), m(4, [5], { mask: [0x0f], negate: true })];
      case 5: return [m(0, B), m(32, pickOf(long))];
      case 6: return [m(0, A), m(9, [1])];
      case 7: return [m(16, pickOf(addrs)), m(16, pickOf(addrs))];
      case 8: return [m(2, [0x40], { mask: [0xc0] })];
      default: return rnd.next() < 0.3 ? [] : [m(0, B), m(4, [20], { negate: true })];
    }
  };
  const scopes: (FilterScope | undefined)[] = [undefined,
    { pkey: 0xffff, qkey: QKEY, minPayload: 8, multicastGrh: true }, { pkey: 0xffff, qkey: QKEY, minPayload: 20, multicastGrh: false }];
  const filters = new Map<RawHost, CompiledFilter | undefined>();
  const setFilter = (h: RawHost): void => {
    if (rnd.next() < 0.15) { h.link.setMulticastFilter!(MLID, undefined); filters.set(h, undefined); return; }
    const rules = Array.from({ length: Math.floor(rnd.next() * 5) }, randomRule);
    const only = pickOf(scopes);
    const f: MulticastFilter = only === undefined ? { rules } : { rules, only };
    h.link.setMulticastFilter!(MLID, f);
    filters.set(h, compileMulticastFilter(f));
  };

  // The reference: members in MFT order, and each port's counters as the plain loop counts them.
  let members: RawHost[] = [];
  const expected = new Map<RawHost, { rcvPkts: number; rcvBytes: number; mcRcvPkts: number; notListened: number; PORT_NOT_ACTIVE: number; MTU_EXCEEDED: number }>();
  for (const h of hosts) expected.set(h, { rcvPkts: 0, rcvBytes: 0, mcRcvPkts: 0, notListened: 0, PORT_NOT_ACTIVE: 0, MTU_EXCEEDED: 0 });
  const countersNow = (h: RawHost) => {
    const c = w.fabric.counters(h.info.portGuid);
    return { rcvPkts: c.rcvPkts, rcvBytes: c.rcvBytes, mcRcvPkts: c.mcRcvPkts, notListened: c.notListened, PORT_NOT_ACTIVE: c.discards.PORT_NOT_ACTIVE, MTU_EXCEEDED: c.discards.MTU_EXCEEDED };
  };
  const base = new Map(hosts.map((h) => [h, countersNow(h)]));
  const delta = (h: RawHost) => {
    const now = countersNow(h);
    const b = base.get(h)!;
    return { rcvPkts: now.rcvPkts - b.rcvPkts, rcvBytes: now.rcvBytes - b.rcvBytes, mcRcvPkts: now.mcRcvPkts - b.mcRcvPkts, notListened: now.notListened - b.notListened,
      PORT_NOT_ACTIVE: now.PORT_NOT_ACTIVE - b.PORT_NOT_ACTIVE, MTU_EXCEEDED: now.MTU_EXCEEDED - b.MTU_EXCEEDED };
  };

  const send = (from: RawHost, payload: Buffer, opts: { qkey?: number; grh?: boolean; corrupt?: boolean }): void => {
    const f = newPacketFields();
    const dgid = Buffer.alloc(16); dgid[0] = 0xff; dgid[1] = 0x12;
    Object.assign(f, { dlid: MLID, slid: from.info.lid, destQp: 0xffffff, qkey: opts.qkey ?? QKEY, srcQp: 0x48, pkey: 0xffff,
      grh: opts.grh === false ? undefined : { sgid: portGid(from.info.portGuid), dgid, tclass: 0, flowLabel: 0, hopLmt: 1 } });
    const buf = buildPacket(f, payload);
    if (opts.corrupt === true) buf[buf.length - 12] = buf[buf.length - 12]! ^ 0x10;
    const v = parsePacket(buf);
    const want: string[] = [];
    const fromPort = port(from);
    if (fromPort.info.state !== 'ACTIVE') expected.get(from)!.PORT_NOT_ACTIVE++;
    for (const h of fromPort.info.state === 'ACTIVE' ? members : []) {
      if (h === from) continue;
      const e = expected.get(h)!;
      const p = port(h);
      if (p.info.state !== 'ACTIVE') { e.PORT_NOT_ACTIVE++; continue; }
      if ((v.payloadLength > fromPort.mtuBytes || v.payloadLength > p.mtuBytes) && v.error === undefined) { e.MTU_EXCEEDED++; continue; }
      e.rcvPkts++; e.rcvBytes += buf.length; e.mcRcvPkts++;
      const cf = filters.get(h);
      if (cf !== undefined && v.error === undefined && v.icrcOk() && !cf(v)) { e.notListened++; continue; }
      want.push(h.name);
    }
    log.length = 0;
    sent++;
    from.link.send(buf);
    if (JSON.stringify(log) !== JSON.stringify(want)) t.same(log, want, `packet ${payload.toString('hex')} from ${from.name}: handed to these ports, in this order`);
    else handedOk++;
  };
  const randomPayload = (): Buffer => {
    const b = Buffer.alloc(Math.floor(rnd.next() * 44) + (rnd.next() < 0.05 ? 300 : 0));
    const fill = (off: number, bytes: number[]): void => { for (let i = 0; i < bytes.length && off + i < b.length; i++) b[off + i] = bytes[i]!; };
    fill(0, pickOf([A, B, [0x86, 0xdd]]));
    fill(2, [Math.floor(rnd.next() * 256)]);
    fill(4, [pickOf([0x45, 0x46, 20, 6])]);
    fill(9, [pickOf([17, 1, 6])]);
    fill(16, pickOf(addrs));
    fill(22, pickOf(udpPorts));
    fill(28, pickOf(addrs));
    fill(32, pickOf([...long, pickOf(addrs)]));
    return b;
  };
  let handedOk = 0;
  let sent = 0;
  const burst = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const from = rnd.next() < 0.9 ? pickOf(members) : pickOf(hosts);
      send(from, randomPayload(), { qkey: rnd.next() < 0.05 ? QKEY + 1 : QKEY, grh: rnd.next() > 0.05, corrupt: rnd.next() < 0.03 });
    }
  };
  const checkCounters = (when: string): void => {
    const bad = hosts.filter((h) => JSON.stringify(delta(h)) !== JSON.stringify(expected.get(h)));
    t.same(bad.map((h) => [h.name, delta(h)]), bad.map((h) => [h.name, expected.get(h)]), `${when}: every port's counters are the per-port loop's`);
  };

  for (const h of hosts) if (rnd.next() < 0.8) setFilter(h);
  members = hosts.slice(0, 40);
  w.fabric.switch.setMulticast(MLID, members.map(port));
  burst(400);
  checkCounters('after 400 packets');
  // Filters change while the route is in use (a host's listening changes all the time).
  for (let i = 0; i < 20; i++) setFilter(pickOf(hosts));
  burst(300);
  // One key named by two rules, then by one: the port must still be found by it.
  const dup = members[1]!;
  const r1 = [m(0, A), m(16, addrs[0]!)];
  const install = (h: RawHost, f: MulticastFilter): void => { h.link.setMulticastFilter!(MLID, f); filters.set(h, compileMulticastFilter(f)); };
  install(dup, { rules: [r1, r1, [m(0, B), m(28, addrs[1]!)]], only: scopes[1]! });
  install(dup, { rules: [r1], only: scopes[1]! });
  const toDup = Buffer.alloc(24); toDup.set(A, 0); toDup.set(addrs[0]!, 16);
  send(members[2]!, toDup, {});
  t.ok(log.includes(dup.name), 'a packet for the key the filter still names reaches the port');
  // Joins and leaves one at a time (the SM's O(1) path), and one full reprogramming in another order.
  for (const h of hosts.slice(40)) { w.fabric.switch.addMulticastPort(MLID, port(h)); members.push(h); }
  for (const h of [members[3]!, members[17]!, members[0]!]) { w.fabric.switch.removeMulticastPort(MLID, port(h)); members = members.filter((x) => x !== h); }
  t.same(w.fabric.switch.multicastPorts(MLID).map((p) => p.hostName), members.map((h) => h.name), 'MFT list after appends and removals');
  burst(300);
  checkCounters('after joins and leaves');
  members = [...members].sort(() => rnd.next() - 0.5);
  w.fabric.switch.setMulticast(MLID, members.map(port));
  t.same(w.fabric.switch.multicastPorts(MLID).map((p) => p.hostName), members.map((h) => h.name), 'MFT list after reprogramming');
  // A port that is not ACTIVE is counted as a discard, not a delivery.
  port(members[5]!).update({ state: 'ARMED' });
  burst(300);
  port(members[5]!).update({ state: 'ACTIVE' });
  burst(200);
  checkCounters('after a port left ACTIVE and came back');
  // Ports leaving the MLID keep what they were counted.
  const gone = members.slice(0, 10);
  members = members.slice(10);
  w.fabric.switch.setMulticast(MLID, members.map(port));
  burst(200);
  w.fabric.switch.setMulticast(MLID, []);
  checkCounters('after the MLID was emptied');
  t.same(w.fabric.switch.multicastPorts(MLID), [], 'empty');
  t.ok(gone.every((h) => delta(h).rcvPkts > 0), 'ports that left had deliveries counted');
  t.equal(handedOk, sent, `all ${sent} packets handed to the expected ports in the expected order`);
  t.ok(hosts.reduce((n, h) => n + expected.get(h)!.notListened, 0) > 10 * sent, 'most deliveries were declined (the index counted them)');
});

t.test('virtual scheduler: timers run in (due time, creation order), cancelled ones never', async (t) => {
  const s = new VirtualScheduler();
  const rnd = seededRandom(5);
  const ran: number[] = [];
  const want: { at: number; id: number }[] = [];
  const timers = [];
  for (let id = 0; id < 3000; id++) {
    const at = Math.floor(rnd.next() * 200);
    timers.push(s.setTimer(at, () => ran.push(id)));
    want.push({ at, id });
  }
  const cancelled = new Set<number>();
  for (let k = 0; k < 700; k++) { const id = Math.floor(rnd.next() * 3000); cancelled.add(id); timers[id]!.cancel(); }
  // A timer that schedules another for now runs it in the same instant, after those already due.
  s.setTimer(50, () => { ran.push(-1); s.setTimer(0, () => ran.push(-2)); });
  s.runUntilIdle();
  const order = want.filter((w) => !cancelled.has(w.id)).sort((a, b) => a.at - b.at || a.id - b.id).map((w) => w.id);
  const at50 = order.findLastIndex((id) => want[id]!.at <= 50);
  order.splice(at50 + 1, 0, -1, -2);
  t.same(ran, order);
  t.equal(s.pending, 0);
});
