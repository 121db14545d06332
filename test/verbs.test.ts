// Verbs over the in-process fabric: the QP state machine, UD delivery rules (P_Key, Q_Key,
// controlled Q_Key, multicast to attached QPs only, loopback blocking, receive-queue exhaustion,
// MTU, the 40-byte GRH slot), early receive filters, async port events, the SA client with
// timeouts and retries in virtual time, and RC segmentation and retransmission.
import t from 'tap';
import { Fabric, type FabricOptions } from '../link/fabric/fabric.js';
import { InProcessTransport } from '../link/fabric/transport.js';
import { VirtualScheduler } from '../link/fabric/scheduler.js';
import { parsePartitions } from '../link/fabric/partitions.js';
import { openDevice, SaClient, ahAttrFromMcMember, ahAttrFromPathRecord, VerbsError, WC_GRH, type Device, type Qp, type WorkCompletion, type AddressHandle } from '../link/verbs/index.js';
import { ipoibBroadcastMgid } from '../link/wire/ib-address.js';
import { IPOIB_BROADCAST_JOIN_MASK, type McMemberRecord } from '../link/wire/mc-member-record.js';

async function world(opts: Partial<FabricOptions> = {}) {
  const sched = new VirtualScheduler();
  const fabric = new Fabric({ scheduler: sched, ...opts });
  const transport = new InProcessTransport(fabric);
  const host = async (name: string, o: { mtuCap?: number } = {}): Promise<Device> => {
    const d = await openDevice(transport, { hostName: name, scheduler: sched, ...o });
    sched.runUntilIdle();
    return d;
  };
  return { sched, fabric, transport, host };
}

type W = Awaited<ReturnType<typeof world>>;

interface Ud {
  dev: Device;
  qp: Qp;
  cq: ReturnType<Device['createCq']>;
  pd: ReturnType<Device['allocPd']>;
}

function udQp(dev: Device, o: { qkey?: number; pkeyIndex?: number; block?: boolean; recv?: number; maxRecv?: number; bufSize?: number } = {}): Ud {
  const pd = dev.allocPd();
  const cq = dev.createCq(1024);
  const qp = pd.createQp({ qpType: 'UD', sendCq: cq, recvCq: cq, blockMulticastLoopback: o.block ?? false, cap: { maxRecvWr: o.maxRecv ?? 256 } });
  qp.modify({ qpState: 'INIT', pkeyIndex: o.pkeyIndex ?? 0, portNum: 1, qkey: o.qkey ?? 0x0b1b });
  qp.modify({ qpState: 'RTR' });
  qp.modify({ qpState: 'RTS', sqPsn: 0 });
  for (let i = 0; i < (o.recv ?? 8); i++) qp.postRecv(o.bufSize === undefined ? { wrId: i } : { wrId: i, buf: Buffer.alloc(o.bufSize) });
  return { dev, qp, cq, pd };
}

const recvs = (u: Ud): WorkCompletion[] => u.cq.poll(1000).filter((w) => w.opcode === 'RECV');

function unicastAh(from: Ud, to: Device): AddressHandle {
  return from.pd.createAh({ dlid: to.queryPort(1).lid, portNum: 1 });
}

async function join(w: W, dev: Device, pkey = 0xffff, joinState = 1): Promise<McMemberRecord> {
  const sa = new SaClient(dev, 1);
  return w.sched.run(sa.join({ mgid: ipoibBroadcastMgid(pkey), pkey, joinState }, IPOIB_BROADCAST_JOIN_MASK));
}

t.test('QP state machine: legal path, illegal transitions and missing attributes throw typed errors', async (t) => {
  const w = await world();
  const d = await w.host('h1');
  const pd = d.allocPd();
  const cq = d.createCq(16);
  const qp = pd.createQp({ qpType: 'UD', sendCq: cq, recvCq: cq });
  t.equal(qp.state, 'RESET');
  t.throws(() => qp.modify({ qpState: 'RTR' }), { code: 'BAD_STATE_TRANSITION' }, 'RESET -> RTR');
  t.throws(() => qp.modify({ qpState: 'RTS' }), { code: 'BAD_STATE_TRANSITION' }, 'RESET -> RTS');
  t.throws(() => qp.modify({ qpState: 'INIT', portNum: 1, pkeyIndex: 0 }), { code: 'MISSING_ATTR' }, 'UD INIT needs a Q_Key');
  t.throws(() => qp.modify({ qpState: 'INIT', portNum: 2, pkeyIndex: 0, qkey: 1 }), { code: 'BAD_ATTR' }, 'no port 2');
  t.throws(() => qp.postRecv({ wrId: 1 }), { code: 'QP_STATE' }, 'post_recv in RESET');
  qp.modify({ qpState: 'INIT', portNum: 1, pkeyIndex: 0, qkey: 0x0b1b });
  qp.postRecv({ wrId: 1 });
  t.throws(() => qp.postSend({ wrId: 1, data: Buffer.alloc(1) }), { code: 'QP_STATE' }, 'post_send before RTS');
  t.throws(() => qp.modify({ qpState: 'RTS', sqPsn: 0 }), { code: 'BAD_STATE_TRANSITION' }, 'INIT -> RTS');
  qp.modify({ qpState: 'RTR' });
  t.throws(() => qp.modify({ qpState: 'RTS' }), { code: 'MISSING_ATTR' }, 'RTS needs sq_psn');
  qp.modify({ qpState: 'RTS', sqPsn: 0 });
  t.equal(qp.state, 'RTS');
  t.throws(() => qp.modify({ qpState: 'INIT' }), VerbsError, 'RTS -> INIT');
  qp.modify({ qpState: 'ERR' });
  const flushed = cq.poll(10);
  t.same(flushed.map((c) => [c.wrId, c.status]), [[1, 'WR_FLUSH_ERR']], 'to ERR flushes posted receives');
  qp.modify({ qpState: 'RESET' });
  t.equal(qp.state, 'RESET', 'ERR -> RESET');
  const rc = pd.createQp({ qpType: 'RC', sendCq: cq, recvCq: cq });
  rc.modify({ qpState: 'INIT', portNum: 1, pkeyIndex: 0 });
  t.throws(() => rc.modify({ qpState: 'RTR' }), { code: 'MISSING_ATTR' }, 'RC RTR needs the path and the peer');
  const err = (() => { try { qp.modify({ qpState: 'SQD' }); } catch (e) { return e; } return undefined; })();
  t.ok(err instanceof VerbsError && err.errno === 'EINVAL', 'errno kept for C readers');
});

t.test('UD unicast: GRH slot, byte_len = data + 40, no GRH flag inside the subnet; loopback to own LID', async (t) => {
  const w = await world();
  const a = udQp(await w.host('ua'));
  const b = udQp(await w.host('ub'), { bufSize: 100 });
  a.qp.postSend({ wrId: 7, data: Buffer.from('ping'), signaled: true, ud: { ah: unicastAh(a, b.dev), remoteQpn: b.qp.qpNum, remoteQkey: 0x0b1b } });
  const sc = a.cq.poll(10);
  t.same(sc.map((c) => [c.opcode, c.wrId, c.status]), [['SEND', 7, 'SUCCESS']]);
  const [r] = recvs(b);
  t.equal(r?.byteLen, 4 + 40, 'byte_len counts the 40-byte GRH slot');
  t.equal((r?.wcFlags ?? 0) & WC_GRH, 0, 'no GRH on a unicast inside the subnet (IPOIB-FACTS §1.10)');
  t.equal(r?.srcQp, a.qp.qpNum);
  t.equal(r?.slid, a.dev.queryPort(1).lid);
  // Loopback to our own LID does not leave the HCA.
  const before = w.fabric.counters(a.dev.queryPort(1).portGuid).xmitPkts;
  const a2 = udQp(a.dev);
  a.qp.postSend({ wrId: 8, data: Buffer.from('self'), ud: { ah: unicastAh(a, a.dev), remoteQpn: a2.qp.qpNum, remoteQkey: 0x0b1b } });
  t.equal(recvs(a2)[0]?.data?.toString(), 'self', 'delivered by HCA loopback');
  t.equal(w.fabric.counters(a.dev.queryPort(1).portGuid).xmitPkts, before, 'nothing reached the switch');
});

t.test('Q_Key: mismatch dropped at the receiver, controlled Q_Key uses the QP\'s own', async (t) => {
  const w = await world();
  const a = udQp(await w.host('qa'), { qkey: 0x1111 });
  const b = udQp(await w.host('qb'), { qkey: 0x2222 });
  const ah = unicastAh(a, b.dev);
  a.qp.postSend({ wrId: 1, data: Buffer.from('x'), ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: 0x3333 } });
  t.equal(recvs(b).length, 0, 'Q_Key 0x3333 != 0x2222: dropped');
  t.equal(b.dev.counters(1).discards.QKEY_VIOLATION, 1, 'counted as QKEY_VIOLATION');
  a.qp.postSend({ wrId: 2, data: Buffer.from('y'), ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: 0x80000000 } });
  t.equal(recvs(b).length, 0, 'controlled Q_Key: the sender\'s 0x1111 goes out, still wrong');
  a.qp.modify({ qpState: 'RTS', qkey: 0x2222 });
  a.qp.postSend({ wrId: 3, data: Buffer.from('z'), ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: 0x80000000 } });
  t.equal(recvs(b).length, 1, 'controlled Q_Key = the QP\'s 0x2222: delivered');
  t.equal(b.dev.counters(1).discards.QKEY_VIOLATION, 2);
  a.qp.postSend({ wrId: 4, data: Buffer.from('z'), ud: { ah, remoteQpn: 0x777, remoteQkey: 0x2222 } });
  t.equal(b.dev.counters(1).discards.NO_QP, 1, 'unknown DestQP: NO_QP');
});

t.test('P_Key: limited-limited never delivers, full-limited does (IPOIB-FACTS §1.8)', async (t) => {
  const g = (n: string) => BigInt('0x0002c90300' + n) ;
  const parts = parsePartitions([
    'Default=0x7fff, ipoib : ALL=full ;',
    `p1=0x0001, ipoib : ${g('000011')}=full, ${g('000021')}=limited, ${g('000031')}=limited ;`,
  ].join('\n'));
  const sched = new VirtualScheduler();
  const fabric = new Fabric({ scheduler: sched, partitions: parts });
  const tr = new InProcessTransport(fabric);
  const mk = async (name: string, guid: bigint) => {
    const d = await openDevice(tr, { hostName: name, scheduler: sched, nodeGuid: guid - 1n });
    sched.runUntilIdle();
    return d;
  };
  const full = await mk('full', g('000011'));
  const lim1 = await mk('lim1', g('000021'));
  const lim2 = await mk('lim2', g('000031'));
  t.same([full.queryPkey(1, 1), lim1.queryPkey(1, 1)], [0x8001, 0x0001], 'P_Key tables from partitions.conf');
  const q = (d: Device) => udQp(d, { pkeyIndex: 1 });
  const [F, L1, L2] = [q(full), q(lim1), q(lim2)];
  const send = (from: Ud, to: Ud) => from.qp.postSend({ wrId: 0, data: Buffer.from('pk'), ud: { ah: unicastAh(from, to.dev), remoteQpn: to.qp.qpNum, remoteQkey: 0x0b1b } });
  send(L1, L2);
  t.equal(recvs(L2).length, 0, 'limited -> limited: dropped');
  t.equal(lim2.counters(1).discards.PKEY_VIOLATION, 1, 'counted as PKEY_VIOLATION');
  send(F, L1);
  t.equal(recvs(L1).length, 1, 'full -> limited: delivered');
  send(L1, F);
  t.equal(recvs(F).length, 1, 'limited -> full: delivered');
  // A QP on the default partition (index 0, 0xFFFF) does not receive partition 1 traffic.
  const F0 = udQp(full, { pkeyIndex: 0 });
  L1.qp.postSend({ wrId: 0, data: Buffer.from('x'), ud: { ah: unicastAh(L1, full), remoteQpn: F0.qp.qpNum, remoteQkey: 0x0b1b } });
  t.equal(recvs(F0).length, 0, 'other partition: dropped');
  t.equal(full.counters(1).discards.PKEY_VIOLATION, 1);
  // The SA refuses a path between two limited members.
  const sa = new SaClient(lim1, 1);
  await t.rejects(sched.run(sa.pathRecord(lim2.queryGid(1), 0x0001)), { code: 'SA_STATUS', status: 0x0300 }, 'PathRecord limited-limited: NO_RECORDS');
  const pr = await sched.run(sa.pathRecord(full.queryGid(1), 0x0001));
  t.equal(pr.pkey, 0x0001, 'limited -> full path exists');
});

t.test('multicast: every attached QP and only those; sender only without block-loopback', async (t) => {
  const w = await world();
  const devs = await Promise.all(['m0', 'm1', 'm2', 'm3'].map((n) => w.host(n)));
  const recs = [];
  for (const d of devs.slice(0, 3)) recs.push(await join(w, d));
  const rec = recs[0]!;
  t.equal(rec.qkey, 0x0b1b);
  const qs = devs.map((d, i) => udQp(d, { block: i === 1 }));
  // m0, m1 and m2 attach; m3 has a QP but neither joined nor attached; m2 also has a second QP not attached.
  for (const u of qs.slice(0, 3)) u.qp.attachMcast(rec.mgid, rec.mlid);
  const idle = udQp(devs[2]!);
  const send = (u: Ud, text: string) => u.qp.postSend({ wrId: 0, data: Buffer.from(text), ud: { ah: u.pd.createAh(ahAttrFromMcMember(rec, 1)), remoteQpn: 0xffffff, remoteQkey: rec.qkey } });
  send(qs[0]!, 'from0');
  t.same(qs.map((u) => recvs(u).map((c) => c.data?.toString())), [['from0'], ['from0'], ['from0'], []], 'attached QPs (sender included) receive; m3 does not');
  t.equal(recvs(idle).length, 0, 'a QP that did not attach receives nothing');
  send(qs[1]!, 'from1');
  t.same(qs.map((u) => recvs(u).length), [1, 0, 1, 0], 'block-loopback: the sender does not get its own');
  const c = qs[2]!.cq;
  void c;
  const r = recvs(qs[0]!);
  t.same(r, [], 'already polled');
  // GRH flag and contents on multicast receives.
  send(qs[0]!, 'g');
  const [m] = recvs(qs[2]!);
  t.equal((m!.wcFlags & WC_GRH), WC_GRH, 'multicast receives carry a valid GRH');
  t.equal(m!.grh!.subarray(24, 40).toString('hex'), rec.mgid.toString('hex'), 'GRH DGID = MGID');
  t.equal(m!.grh!.subarray(8, 24).toString('hex'), devs[0]!.queryGid(1).toString('hex'), 'GRH SGID = sender port GID');
  // Detach: no more deliveries; counted as NOT_ATTACHED at the port (the switch still forwards: the port joined).
  qs[2]!.qp.detachMcast(rec.mgid, rec.mlid);
  send(qs[0]!, 'after');
  t.equal(recvs(qs[2]!).length, 0);
  t.equal(devs[2]!.counters(1).discards.NOT_ATTACHED, 1);
});

t.test('receive queue exhaustion drops and counts; a buffer too small is a LOC_LEN_ERR', async (t) => {
  const w = await world();
  const a = udQp(await w.host('ra'));
  const b = udQp(await w.host('rb'), { recv: 3 });
  const ah = unicastAh(a, b.dev);
  for (let i = 0; i < 5; i++) a.qp.postSend({ wrId: i, data: Buffer.from([i]), ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: 0x0b1b } });
  t.same(recvs(b).map((c) => c.data![0]), [0, 1, 2], 'three posted receives, three datagrams');
  t.equal(b.dev.counters(1).discards.NO_RECV_WQE, 2, 'the other two dropped as NO_RECV_WQE');
  t.throws(() => { for (let i = 0; i < 300; i++) b.qp.postRecv({ wrId: i }); }, { code: 'QUEUE_FULL' });
  const c = udQp(b.dev, { recv: 1, bufSize: 43 });
  a.qp.postSend({ wrId: 9, data: Buffer.from('four'), ud: { ah, remoteQpn: c.qp.qpNum, remoteQkey: 0x0b1b } });
  t.same(recvs(c).map((x) => x.status), ['LOC_LEN_ERR'], '43-byte buffer < 40 + 4');
  t.equal(b.dev.counters(1).discards.RECV_BUFFER_TOO_SMALL, 1);
});

t.test('MTU: a datagram above the port MTU is refused, above the path MTU dropped by the switch', async (t) => {
  const w = await world();
  const big = udQp(await w.host('big', { mtuCap: 5 }));
  const small = udQp(await w.host('small', { mtuCap: 4 }));
  const ah = unicastAh(big, small.dev);
  big.qp.postSend({ wrId: 1, data: Buffer.alloc(4097), ud: { ah, remoteQpn: small.qp.qpNum, remoteQkey: 0x0b1b } });
  t.same(big.cq.poll(5).map((c) => c.status), ['LOC_LEN_ERR'], '4097 > 4096: local length error');
  big.qp.postSend({ wrId: 2, data: Buffer.alloc(3000), ud: { ah, remoteQpn: small.qp.qpNum, remoteQkey: 0x0b1b } });
  t.equal(recvs(small).length, 0, '3000 > 2048 on the path: not delivered');
  t.equal(w.fabric.counters(small.dev.queryPort(1).portGuid).discards.MTU_EXCEEDED, 0);
  t.equal(w.fabric.counters(big.dev.queryPort(1).portGuid).discards.MTU_EXCEEDED, 1, 'MTU_EXCEEDED counted on the sending port');
  big.qp.postSend({ wrId: 3, data: Buffer.alloc(2048), ud: { ah, remoteQpn: small.qp.qpNum, remoteQkey: 0x0b1b } });
  t.equal(recvs(small)[0]?.byteLen, 2048 + 40, '2048 fits');
  const pr = await w.sched.run(new SaClient(big.dev, 1).pathRecord(small.dev.queryGid(1), 0xffff));
  t.same([pr.mtu, pr.mtuSelector], [4, 2], 'the SA reports the 2048 path MTU');
  t.same(ahAttrFromPathRecord(pr, 1), { dlid: small.dev.queryPort(1).lid, sl: 0, portNum: 1, staticRate: 3 }, 'AH from a path record: no GRH inside the subnet');
});

t.test('early filter: declined deliveries are counted, never handed over, and change no other counter', async (t) => {
  const w = await world();
  const devs = await Promise.all(['f0', 'f1', 'f2'].map((n) => w.host(n)));
  const rec = (await Promise.all(devs.map((d) => join(w, d))))[0]!;
  const qs = devs.map((d) => udQp(d, { recv: 4 }));
  for (const u of qs) u.qp.attachMcast(rec.mgid, rec.mlid);
  let calls = 0;
  qs[2]!.qp.filter = (v) => { calls++; return v.buf[v.payloadOffset] === 0x01; };
  const ah = qs[0]!.pd.createAh(ahAttrFromMcMember(rec, 1));
  const send = (b: number) => qs[0]!.qp.postSend({ wrId: 0, data: Buffer.from([b, 2, 3]), ud: { ah, remoteQpn: 0xffffff, remoteQkey: rec.qkey } });
  const before = devs[2]!.counters(1).snapshot();
  send(0x00);
  send(0x01);
  const after = devs[2]!.counters(1).snapshot();
  t.equal(calls, 2);
  t.same(recvs(qs[2]!).map((c) => c.data![0]), [1], 'only the packet the filter accepted was handed over');
  t.equal(after.notListened - before.notListened, 1, 'the other counted as notListened');
  t.equal(after.rcvPkts - before.rcvPkts, 2, 'both counted as received by the port');
  t.equal(after.mcRcvPkts - before.mcRcvPkts, 2);
  t.equal(qs[2]!.qp.recvQueued, 3, 'the filtered packet consumed no receive');
  t.same(after.discards, before.discards, 'no discard recorded');
});

t.test('fabric-side multicast filter: counted at the switch as delivered and not listened, never handed over', async (t) => {
  const w = await world();
  const devs = await Promise.all(['pf0', 'pf1'].map((n) => w.host(n)));
  const rec = (await Promise.all(devs.map((d) => join(w, d))))[0]!;
  const [s, r] = devs.map((d) => udQp(d, { recv: 8 })) as [Ud, Ud];
  r.qp.attachMcast(rec.mgid, rec.mlid);
  // Listen only to payloads starting 08 06 (ARP) whose byte 5 is 0x2a.
  r.dev.setMulticastFilter(1, rec.mlid, { rules: [[{ offset: 0, value: Buffer.from([0x08, 0x06]) }, { offset: 5, value: Buffer.from([0x2a]), mask: Buffer.from([0xff]) }]] });
  const ah = s.pd.createAh(ahAttrFromMcMember(rec, 1));
  const send = (bytes: number[]) => s.qp.postSend({ wrId: 0, data: Buffer.from(bytes), ud: { ah, remoteQpn: 0xffffff, remoteQkey: rec.qkey } });
  const fc = () => w.fabric.counters(r.dev.queryPort(1).portGuid);
  const hcaBefore = r.dev.counters(1).rcvPkts;
  const before = fc();
  send([0x08, 0x00, 0, 0, 0, 0x2a]);
  send([0x08, 0x06, 0, 0, 0, 0x2b]);
  send([0x08, 0x06]);
  send([0x08, 0x06, 1, 1, 1, 0x2a, 9]);
  const after = fc();
  t.same(recvs(r).map((c) => c.data!.length), [7], 'only the matching packet reached the QP');
  t.equal(after.rcvPkts - before.rcvPkts, 4, 'the switch port counts all four as delivered');
  t.equal(after.mcRcvPkts - before.mcRcvPkts, 4);
  t.equal(after.notListened - before.notListened, 3, 'three not listened');
  t.equal(r.dev.counters(1).rcvPkts - hcaBefore, 1, 'the HCA saw one');
  r.dev.setMulticastFilter(1, rec.mlid, undefined);
  send([1]);
  t.equal(recvs(r).length, 1, 'filter removed');
  t.throws(() => r.dev.setMulticastFilter(1, rec.mlid, { rules: [[{ offset: -1, value: Buffer.from([1]) }]] }), RangeError);
});

t.test('fabric-side multicast filter: negated matches, keyed rules, and a scope that leaves other packets to the HCA', async (t) => {
  const w = await world();
  const devs = await Promise.all(['pg0', 'pg1'].map((n) => w.host(n)));
  const rec = (await Promise.all(devs.map((d) => join(w, d))))[0]!;
  const [s, r] = devs.map((d) => udQp(d, { recv: 16 })) as [Ud, Ud];
  r.qp.attachMcast(rec.mgid, rec.mlid);
  const ah = s.pd.createAh(ahAttrFromMcMember(rec, 1));
  const send = (bytes: number[]) => s.qp.postSend({ wrId: 0, data: Buffer.from(bytes), ud: { ah, remoteQpn: 0xffffff, remoteQkey: rec.qkey } });
  const got = () => recvs(r).map((c) => c.data!.toString('hex'));
  // Anything but 08 06; and 08 06 only with byte 2 = 0x2a (keyed on its first two bytes).
  const rules = [[{ offset: 0, value: Buffer.from([0x08, 0x06]), negate: true }], [{ offset: 0, value: Buffer.from([0x08, 0x06]) }, { offset: 2, value: Buffer.from([0x2a]) }]];
  r.dev.setMulticastFilter(1, rec.mlid, { rules });
  send([0x08, 0x00, 0, 0]);
  send([0x08, 0x06, 0x2b, 0]);
  send([0x08, 0x06, 0x2a, 0]);
  send([0x08]);
  t.same(got(), ['08000000', '08062a00', '08'], 'negated match holds when the bytes differ or are missing; keyed rule needs byte 2');
  const pkey = r.dev.queryPkey(1, 0);
  // The scope's Q_Key is not the one the packets carry: the filter may not decline them.
  r.dev.setMulticastFilter(1, rec.mlid, { rules: [], only: { pkey, qkey: rec.qkey ^ 1, minPayload: 0, multicastGrh: false } });
  const before = w.fabric.counters(r.dev.queryPort(1).portGuid).notListened;
  send([0x08, 0x06, 0x2b, 0]);
  t.equal(recvs(r).length, 1, 'a packet outside the scope is handed over');
  r.dev.setMulticastFilter(1, rec.mlid, { rules: [], only: { pkey, qkey: rec.qkey, minPayload: 4, multicastGrh: false } });
  send([0x08, 0x06, 0x2b]);
  send([0x08, 0x06, 0x2b, 0]);
  t.equal(recvs(r).length, 1, 'shorter than minPayload: handed over; in scope with no rule: declined');
  t.equal(w.fabric.counters(r.dev.queryPort(1).portGuid).notListened - before, 1);
  t.throws(() => r.dev.setMulticastFilter(1, rec.mlid, { rules: [], only: { pkey: 0x10000, qkey: 0, minPayload: 0, multicastGrh: false } }), RangeError);
});

t.test('port down/up: async events, groups left, rejoin after PORT_ACTIVE', async (t) => {
  const w = await world();
  const d = await w.host('ev');
  const other = await w.host('ev2');
  t.equal((await d.nextAsyncEvent()).type, 'PORT_ACTIVE', 'bring-up raised PORT_ACTIVE (queued until read)');
  const events: string[] = [];
  d.onAsyncEvent((e) => events.push(`${e.type}:${e.portNum}`));
  await join(w, d);
  await join(w, other);
  t.equal(w.fabric.switch.multicastPorts(0xc000).length, 2);
  const guid = d.queryPort(1).portGuid;
  w.fabric.setLinkState(guid, false);
  await Promise.resolve();
  t.same(events, ['PORT_ERR:1'], 'IBV_EVENT_PORT_ERR');
  t.equal(d.queryPort(1).state, 'DOWN');
  t.equal(w.fabric.switch.multicastPorts(0xc000).length, 1, 'the SM removed the port from the group');
  w.fabric.setLinkState(guid, true);
  w.sched.runUntilIdle();
  const e = await d.nextAsyncEvent();
  t.equal(e.type, 'PORT_ERR', 'queued events are also delivered in order through nextAsyncEvent');
  t.equal((await d.nextAsyncEvent()).type, 'PORT_ACTIVE');
  t.same(events, ['PORT_ERR:1', 'PORT_ACTIVE:1'], 'IBV_EVENT_PORT_ACTIVE after the sweep');
  await join(w, d);
  t.equal(w.fabric.switch.multicastPorts(0xc000).length, 2, 'rejoined');
  d.close();
  t.equal(w.fabric.switch.multicastPorts(0xc000).length, 1, 'closing the device detaches its port and leaves its groups');
  t.throws(() => d.allocPd(), { code: 'DEVICE_CLOSED' });
});

t.test('SA client: timeout and retries in virtual time, late answers ignored, status errors typed', async (t) => {
  const w = await world({ saDelayMs: 1500 });
  const d = await w.host('sa1');
  const sa = new SaClient(d, 1, { timeoutMs: 1000, retries: 2 });
  const t0 = w.sched.now();
  const rec = await w.sched.run(sa.join({ mgid: ipoibBroadcastMgid(0xffff), pkey: 0xffff, joinState: 1 }, IPOIB_BROADCAST_JOIN_MASK));
  t.equal(rec.mlid, 0xc000, 'answered');
  t.equal(w.sched.now() - t0, 1500, 'the first answer arrives after 1.5 s, during the first retry');
  w.sched.runUntilIdle();
  t.equal(sa.unmatched, 1, 'the answer to the retry matched nothing (same TID already answered)');
  const w2 = await world();
  const d2 = await w2.host('sa2');
  const sa2 = new SaClient(d2, 1, { timeoutMs: 1000, retries: 3 });
  w2.fabric.setFaults({ loss: 1 });
  const start = w2.sched.now();
  await t.rejects(w2.sched.run(sa2.pathRecord(d2.queryGid(1), 0xffff)), { code: 'MAD_TIMEOUT' });
  t.equal(w2.sched.now() - start, 4000, 'four attempts of 1000 ms');
  t.equal(w2.fabric.counters(d2.queryPort(1).portGuid).discards.FAULT_LOSS, 4, 'each attempt lost (and counted)');
  w2.fabric.setFaults(undefined);
  await t.rejects(w2.sched.run(sa2.join({ mgid: ipoibBroadcastMgid(0x1234), pkey: 0x1234, joinState: 1 }, IPOIB_BROADCAST_JOIN_MASK)),
    { code: 'SA_STATUS', status: 0x0600 }, 'join of a missing group with IPoIB\'s mask: INSUF_COMPS');
});

t.test('RC: segmentation by path MTU, in order, reliable under loss', async (t) => {
  const w = await world();
  const da = await w.host('rca');
  const db = await w.host('rcb');
  const mk = (d: Device) => {
    const pd = d.allocPd();
    const cq = d.createCq(256);
    const qp = pd.createQp({ qpType: 'RC', sendCq: cq, recvCq: cq, sqSigAll: true });
    qp.modify({ qpState: 'INIT', portNum: 1, pkeyIndex: 0 });
    return { pd, cq, qp };
  };
  const A = mk(da);
  const B = mk(db);
  const connect = (x: typeof A, y: typeof A, peer: Device) => {
    x.qp.modify({ qpState: 'RTR', ahAttr: { dlid: peer.queryPort(1).lid, portNum: 1 }, pathMtu: 1, destQpNum: y.qp.qpNum, rqPsn: 100 });
    x.qp.modify({ qpState: 'RTS', sqPsn: 100, timeout: 14, retryCnt: 7 });
  };
  connect(A, B, db);
  connect(B, A, da);
  for (let i = 0; i < 4; i++) B.qp.postRecv({ wrId: i });
  const sent: number[] = [];
  const tap = w.fabric.addTap((buf) => sent.push(buf[8]!));
  const msg = Buffer.alloc(700).map((_, i) => i & 0xff);
  A.qp.postSend({ wrId: 1, data: msg });
  tap();
  t.same(sent.slice(0, 3), [0x00, 0x01, 0x02], '700 bytes over a 256-byte MTU: SEND_FIRST, MIDDLE, LAST');
  t.ok(sent.includes(0x11), 'acknowledged');
  const got = B.cq.poll(10);
  t.equal(got.length, 1);
  t.same(got[0]!.data, msg, 'reassembled in order');
  t.same(A.cq.poll(10).map((c) => [c.opcode, c.status]), [['SEND', 'SUCCESS']], 'send completes on the ACK');
  // Lossy link: every message still arrives, once, in order.
  w.fabric.setPortFaults(db.queryPort(1).portGuid, { rx: { loss: 0.3 } });
  for (let i = 0; i < 20; i++) B.qp.postRecv({ wrId: 100 + i });
  for (let i = 0; i < 20; i++) A.qp.postSend({ wrId: 200 + i, data: Buffer.alloc(300, i) });
  w.sched.runUntilIdle();
  const rx = B.cq.poll(100);
  t.same(rx.map((c) => c.data![0]), Array.from({ length: 20 }, (_, i) => i), '20 messages, in order, despite 30% loss');
  const tx = A.cq.poll(100);
  t.equal(tx.filter((c) => c.status === 'SUCCESS').length, 20, 'all sends acknowledged');
  t.ok(db.counters(1).discards.RC_SEQUENCE >= 0);
});
