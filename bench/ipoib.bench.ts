// UDP over IPoIB between two emulated hosts (link/ipoib): datagrams per second in datagram and in
// connected mode, beside the raw fabric UD rate (verbs only, no IP) measured in the same run.
// Wall-clock throughput of the emulation itself; the fabric runs in virtual time with zero delays.
import { performance } from 'node:perf_hooks';
import type { BenchResult } from './harness.js';
import { Fabric } from '../link/fabric/fabric.js';
import { InProcessTransport } from '../link/fabric/transport.js';
import { VirtualScheduler } from '../link/fabric/scheduler.js';
import { openDevice } from '../link/verbs/index.js';
import { Host } from '../link/ipoib/index.js';

const PAYLOAD = 256;
const WINDOW = 128;
const COUNT = 20_000;

async function rawUd(): Promise<number> {
  const s = new VirtualScheduler();
  const t = new InProcessTransport(new Fabric({ scheduler: s }));
  const [a, b] = await Promise.all([openDevice(t, { hostName: 'raw-a', scheduler: s }), openDevice(t, { hostName: 'raw-b', scheduler: s })]);
  s.runUntilIdle();
  const mk = (d: typeof a) => {
    const pd = d.allocPd();
    const cq = d.createCq(4096);
    const qp = pd.createQp({ qpType: 'UD', sendCq: cq, recvCq: cq, cap: { maxRecvWr: 1024 } });
    qp.modify({ qpState: 'INIT', pkeyIndex: 0, portNum: 1, qkey: 0x0b1b });
    qp.modify({ qpState: 'RTR' });
    qp.modify({ qpState: 'RTS', sqPsn: 0 });
    return { pd, cq, qp };
  };
  const A = mk(a);
  const B = mk(b);
  const ah = A.pd.createAh({ dlid: b.queryPort(1).lid, portNum: 1 });
  const data = Buffer.alloc(PAYLOAD + 4, 0x5a);
  const t0 = performance.now();
  let got = 0;
  while (got < COUNT) {
    for (let i = 0; i < WINDOW; i++) B.qp.postRecv({ wrId: i });
    for (let i = 0; i < WINDOW; i++) A.qp.postSend({ wrId: i, data, ud: { ah, remoteQpn: B.qp.qpNum, remoteQkey: 0x0b1b } });
    got += B.cq.poll(WINDOW).length;
  }
  return COUNT / ((performance.now() - t0) / 1000);
}

async function udp(mode: 'datagram' | 'connected'): Promise<number> {
  const s = new VirtualScheduler();
  const t = new InProcessTransport(new Fabric({ scheduler: s }));
  const a = await Host.create(t, { name: 'bench-a', scheduler: s });
  const b = await Host.create(t, { name: 'bench-b', scheduler: s });
  a.addrAdd('ib0', '10.0.0.1/24');
  b.addrAdd('ib0', '10.0.0.2/24');
  for (const h of [a, b]) h.linkSet('ib0', { up: true, mode });
  await s.run(Promise.all([a.iface('ib0').waitCarrier(), b.iface('ib0').waitCarrier()]));
  await s.run(a.ping('10.0.0.2'));
  await s.run(b.ping('10.0.0.1'));
  const rx = b.udpSocket().bind('0.0.0.0', 9000);
  let got = 0;
  let wake: (() => void) | undefined;
  let want = 0;
  rx.onMessage(() => { got++; if (got >= want && wake) { const w = wake; wake = undefined; w(); } });
  const tx = a.udpSocket();
  const data = Buffer.alloc(PAYLOAD, 0x5a);
  const t0 = performance.now();
  let sent = 0;
  while (sent < COUNT) {
    for (let i = 0; i < WINDOW; i++) tx.send(data, '10.0.0.2', 9000);
    sent += WINDOW;
    want = sent;
    // Through the scheduler, so an RC retransmission (virtual time) could still complete the window.
    if (got < want) await s.run(new Promise<void>((r) => { wake = r; }));
  }
  const rate = COUNT / ((performance.now() - t0) / 1000);
  a.close();
  b.close();
  return rate;
}

export async function run(): Promise<BenchResult[]> {
  const raw = await rawUd();
  const dg = await udp('datagram');
  const cm = await udp('connected');
  const note = `${COUNT} x ${PAYLOAD}-byte payloads, windows of ${WINDOW}, two hosts, in-process fabric`;
  return [
    { suite: 'ipoib', name: 'raw fabric UD SEND (verbs, no IP)', value: raw, unit: 'datagrams/s', note },
    { suite: 'ipoib', name: 'UDP over IPoIB, datagram mode', value: dg, unit: 'datagrams/s', ratio: { to: 'raw fabric UD', value: dg / raw }, note },
    { suite: 'ipoib', name: 'UDP over IPoIB, connected mode (RC)', value: cm, unit: 'datagrams/s', ratio: { to: 'raw fabric UD', value: cm / raw }, note },
  ];
}
