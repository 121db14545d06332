// Where the emulator computes and checks its CRCs (packet-view.ts buildPacket, switch.ts taps), and
// the UDP transport's gather-list batching (udp-protocol.ts takeDataDatagram). The promises:
// - the per-hop VCRC is not computed by senders, yet every frame in a pcap capture carries a valid
//   VCRC and ICRC, checked by an independent computation (test/vectors/check_pcap_crcs.py: Python
//   zlib and a bitwise CRC-16), in process and through the UDP daemon;
// - a corruption fault still costs the frame its ICRC: the receiving HCA drops it as BAD_ICRC, and the
//   capture shows it with a bad ICRC (and a valid VCRC, as a switch would regenerate it);
// - DATA datagrams built as gather lists (small frames copied, large ones referenced, received runs
//   forwarded in place) carry exactly the frames queued, in order.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureFile } from '../link/fabric/capture-file.js';
import { Fabric } from '../link/fabric/fabric.js';
import { buildPacket, newPacketFields } from '../link/fabric/packet-view.js';
import { RealScheduler, VirtualScheduler, type Scheduler } from '../link/fabric/scheduler.js';
import { InProcessTransport, type Transport } from '../link/fabric/transport.js';
import { UdpTransport } from '../link/fabric/udp-client.js';
import {
  HEADER_BYTES, LOOPBACK_MAX_BATCH_BYTES, MessageType, batchIsFull, decodeDatagram, encodeControl, forEachFrame,
  queueFrame, takeDataDatagram, type FrameQueue, type ReceivedDatagrams,
} from '../link/fabric/udp-protocol.js';
import { FabricDaemon } from '../link/fabric/udp-server.js';
import { openDevice, type CompletionQueue, type Device, type Qp } from '../link/verbs/index.js';

const root = join(import.meta.dirname, '..');
const QKEY = 0x0b1b;

interface CrcRow { len: number; lnh: number | null; icrc_ok: boolean | null; vcrc_ok: boolean | null }

/** The Python oracle over a raw-IB pcap file. */
function checkCrcs(t: Test, file: string): CrcRow[] {
  const r = spawnSync('/usr/bin/python3', [join(root, 'test/vectors/check_pcap_crcs.py'), file], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `check_pcap_crcs.py ran (${r.stderr.trim()})`);
  return r.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as CrcRow);
}

interface End { dev: Device; qp: Qp; cq: CompletionQueue }

function udEnd(dev: Device): End {
  const cq = dev.createCq(4096);
  const qp = dev.allocPd().createQp({ qpType: 'UD', sendCq: cq, recvCq: cq, cap: { maxRecvWr: 2048 } });
  qp.modify({ qpState: 'INIT', pkeyIndex: 0, portNum: 1, qkey: QKEY });
  qp.modify({ qpState: 'RTR' });
  qp.modify({ qpState: 'RTS', sqPsn: 0 });
  for (let i = 0; i < 2048; i++) qp.postRecv({ wrId: i });
  return { dev, qp, cq };
}

/** Payload i: its index and size in the first bytes, then a pattern that moves with i. */
function payload(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k++) b[k] = (i * 31 + k * 7) & 0xff;
  if (size >= 4) b.writeUInt32BE(i, 0);
  return b;
}

const SIZES = [0, 1, 3, 64, 333, 511, 512, 513, 1024, 2044];

async function waitActive(dev: Device, sched: Scheduler): Promise<void> {
  for (let i = 0; i < 2000 && dev.queryPort(1).state !== 'ACTIVE'; i++) {
    if (sched instanceof VirtualScheduler) sched.runUntilIdle();
    else await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Two devices on `transport`: a sends every size to b (local and, with a GRH, global packets), then
 * with `corrupt()` in force sends `bad` more. Returns what b received and its BAD_ICRC count.
 */
async function exercise(t: Test, transport: Transport, sched: Scheduler, corrupt: (portGuid: bigint) => void,
  settle: (done: () => boolean) => Promise<void>) {
  const a = udEnd(await openDevice(transport, { hostName: 'crc-a', scheduler: sched }));
  const b = udEnd(await openDevice(transport, { hostName: 'crc-b', scheduler: sched }));
  await waitActive(a.dev, sched);
  await waitActive(b.dev, sched);
  const pd = a.dev.allocPd();
  const local = pd.createAh({ dlid: b.dev.queryPort(1).lid, portNum: 1 });
  const global = pd.createAh({ dlid: b.dev.queryPort(1).lid, portNum: 1, grh: { dgid: b.dev.queryGid(1), hopLimit: 1, flowLabel: 0x12345, trafficClass: 0xa0 } });
  const sent: Buffer[] = [];
  let i = 0;
  for (let round = 0; round < 3; round++) {
    for (const size of SIZES) {
      for (const ah of [local, global]) {
        const p = payload(i++, size);
        sent.push(p);
        a.qp.postSend({ wrId: i, data: p, ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: QKEY } });
      }
    }
  }
  await settle(() => b.cq.length >= sent.length);
  const got = b.cq.poll(4096).filter((wc) => wc.status === 'SUCCESS').map((wc) => wc.data!);
  t.equal(got.length, sent.length, `all ${sent.length} datagrams arrived`);
  t.ok(got.every((d, k) => d.equals(sent[k]!)), 'byte for byte, in order');
  for (const wc of got.keys()) b.qp.postRecv({ wrId: 10_000 + wc });
  const before = b.dev.counters(1).discards.BAD_ICRC;
  corrupt(a.dev.queryPort(1).portGuid);
  const bad = 7;
  for (let k = 0; k < bad; k++) a.qp.postSend({ wrId: k, data: payload(k, 700), ud: { ah: local, remoteQpn: b.qp.qpNum, remoteQkey: QKEY } });
  await settle(() => b.dev.counters(1).discards.BAD_ICRC - before >= bad);
  t.equal(b.dev.counters(1).discards.BAD_ICRC - before, bad, `the ${bad} corrupted frames are dropped by the receiving HCA as BAD_ICRC`);
  t.equal(b.cq.poll(4096).length, 0, 'and complete nothing');
  a.dev.close();
  b.dev.close();
  return { sent: sent.length, bad };
}

t.test('in process: frames leave the builder without a VCRC; captures carry valid ICRC and VCRC', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fabric-crc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sched = new VirtualScheduler();
  const fabric = new Fabric({ scheduler: sched });
  // Without a capture point, nothing computes the VCRC: what a receiver gets still has it 0.
  const bare: Buffer[] = [];
  const f = newPacketFields();
  Object.assign(f, { dlid: 5, slid: 6, destQp: 0x99, qkey: 1, srcQp: 0x50 });
  const frame = buildPacket(f, payload(1, 100));
  bare.push(frame);
  t.equal(frame.readUInt16LE(frame.length - 2), 0, 'buildPacket leaves the VCRC field 0');

  const cap = new CaptureFile(fabric, { file: join(dir, 'inproc.pcap') });
  const r = await exercise(t, new InProcessTransport(fabric), sched,
    (guid) => { fabric.setPortFaults(guid, { tx: { corrupt: 1 } }); },
    async () => { sched.runUntilIdle(); });
  await cap.close();
  const rows = checkCrcs(t, join(dir, 'inproc.pcap'));
  t.ok(rows.length >= r.sent + r.bad, `${rows.length} frames captured (SA traffic, ${r.sent} datagrams, ${r.bad} corrupted)`);
  t.same(rows.filter((x) => x.icrc_ok === null), [], 'every record is a whole frame');
  t.ok(rows.some((x) => x.lnh === 3) && rows.some((x) => x.lnh === 2), 'local and global (GRH) packets both captured');
  t.equal(rows.filter((x) => x.vcrc_ok !== true).length, 0, 'every captured frame has a valid VCRC (bitwise CRC-16 in Python)');
  t.equal(rows.filter((x) => x.icrc_ok === false).length, r.bad, 'only the corrupted frames fail their ICRC (zlib.crc32 in Python)');
  t.same(rows.slice(-r.bad).map((x) => x.icrc_ok), new Array<boolean>(r.bad).fill(false), 'and they are the last ones sent');
});

t.test('through the UDP daemon: delivery intact, ICRC drops at the receiver, captures valid', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fabric-crc-udp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const daemon = await FabricDaemon.start({ port: 0 });
  const cap = new CaptureFile(daemon.fabric, { file: join(dir, 'udp.pcap') });
  const transport = await UdpTransport.connect('127.0.0.1', daemon.address().port);
  t.teardown(async () => { await transport.close(); await daemon.close(); });
  const sched = new RealScheduler();
  const r = await exercise(t, transport, sched,
    (guid) => { daemon.fabric.setPortFaults(guid, { tx: { corrupt: 1 } }); },
    async (done) => {
      // Real time over loopback: wait for the expected outcome (bounded), then a moment for strays.
      for (let i = 0; i < 1000 && !done(); i++) await new Promise((res) => setTimeout(res, 10));
      await new Promise((res) => setTimeout(res, 50));
    });
  t.equal(daemon.frameDrops.BAD_ICRC, 0, 'the daemon\'s own ingress check passed every frame the host built');
  await cap.close();
  const rows = checkCrcs(t, join(dir, 'udp.pcap'));
  t.ok(rows.length >= r.sent + r.bad, `${rows.length} frames captured by the daemon`);
  t.equal(rows.filter((x) => x.vcrc_ok !== true).length, 0, 'every frame captured by the daemon has a valid VCRC');
  t.equal(rows.filter((x) => x.icrc_ok === false).length, r.bad, 'only the corrupted frames fail their ICRC');
});

// ---- gather-list DATA datagrams ---------------------------------------------------------------

function queue(): FrameQueue {
  return { out: [], outBytes: 0 };
}

function frames(sizes: number[], seed: number): Buffer[] {
  return sizes.map((n, i) => payload(seed + i, n).fill(seed + i, 4));
}

t.test('takeDataDatagram: small frames copied, large ones referenced, received runs forwarded in place', async (t) => {
  // A DATA datagram "received" from a host (bytes as encodeControl lays them out, one contiguous copy).
  const inFrames = frames([600, 1500, 40, 2000, 2000, 700], 1);
  const rx = encodeControl({ type: 'DATA', session: 9, frames: inFrames });
  const received: ReceivedDatagrams = new WeakMap([[rx.buffer, rx]]);
  const views: Buffer[] = [];
  forEachFrame(rx, 0, (f) => views.push(f));
  const own = frames([10, 900, 513, 512], 50);
  // Order: own small, two received in a run, own large, the rest of the received ones (the 40-byte
  // one breaks the run and is copied), own small, own large; then a view into the received bytes that
  // is not one of its frames (its two bytes before are not its length): copied, not trusted.
  const notAFrame = rx.subarray(HEADER_BYTES + 2 + 2 + 100, HEADER_BYTES + 2 + 2 + 100 + 600);
  const order = [own[0]!, views[0]!, views[1]!, own[1]!, views[2]!, views[3]!, views[4]!, views[5]!, own[3]!, own[2]!, notAFrame];
  const q = queue();
  for (const f of order) queueFrame(q, f);
  t.notOk(batchIsFull(q, own[0]!, LOOPBACK_MAX_BATCH_BYTES), 'the batch is far from full');
  const bytes = HEADER_BYTES + 2 + q.outBytes;
  const parts = takeDataDatagram(q, 0x01020304, received);
  t.same(q.out, [], 'the queue is emptied');
  const dgram = Buffer.concat(parts);
  t.equal(dgram.length, bytes, 'the datagram is as long as the queue said');
  const m = decodeDatagram(dgram);
  t.equal(m.type, 'DATA');
  if (m.type !== 'DATA') return;
  t.equal(m.session, 0x01020304);
  t.same(m.frames.map((f) => f.toString('hex')), order.map((f) => f.toString('hex')), 'every frame, in order, byte for byte');
  t.equal(dgram[3], MessageType.DATA);
  // Referenced, not copied: the large frames' own memory is in the gather list.
  const fromRx = parts.filter((p) => p.buffer === rx.buffer && p !== notAFrame);
  t.same(fromRx.map((p) => p.length), [2 + 600 + 2 + 1500, 2 + 2000 + 2 + 2000 + 2 + 700],
    'received frames over 512 bytes leave as two slices of the received datagram, length prefixes included');
  t.ok(parts.includes(own[1]!) && parts.includes(own[2]!), 'own frames over 512 bytes are referenced as they are');
  t.notOk(parts.includes(own[3]!) || parts.includes(own[0]!), 'frames of 512 bytes or less are copied');
  t.ok(parts.includes(notAFrame) && !parts.some((p) => p.buffer === rx.buffer && p.byteOffset === notAFrame.byteOffset - 2),
    'a view that is not a received frame gets its own length prefix, not the two bytes before it');
});

t.test('takeDataDatagram: a full loopback batch of the smallest referenced frames stays under the iovec limit', async (t) => {
  const q = queue();
  const own = frames(new Array<number>(200).fill(513), 7);
  let n = 0;
  for (const f of own) { if (batchIsFull(q, f, LOOPBACK_MAX_BATCH_BYTES)) break; queueFrame(q, f); n++; }
  t.ok(n > 100, `${n} frames of 513 bytes fill a ${LOOPBACK_MAX_BATCH_BYTES}-byte datagram`);
  const parts = takeDataDatagram(q, 1);
  t.ok(parts.length <= 2 * n + 1 && parts.length < 1024, `${parts.length} gather entries (UIO_MAXIOV is 1024)`);
  const dgram = Buffer.concat(parts);
  t.ok(dgram.length <= LOOPBACK_MAX_BATCH_BYTES, `${dgram.length} bytes fit in one UDP/IPv4 datagram`);
  const m = decodeDatagram(dgram);
  t.ok(m.type === 'DATA' && m.frames.length === n && m.frames.every((f, i) => f.equals(own[i]!)), 'and decode to the frames queued');
});
