// ipoib-perf: perftest-style UD measurements on the emulated fabric (ib_send_bw / ib_send_lat),
// over the UDP daemon or with both sides in this process.
//
//   ipoib-perf ud-bw  --fabric 127.0.0.1:18515 --server
//   ipoib-perf ud-bw  --fabric 127.0.0.1:18515 [--count N] [--size BYTES] [--json]
//   ipoib-perf ud-lat --fabric 127.0.0.1:18515 --server
//   ipoib-perf ud-lat --fabric 127.0.0.1:18515 [--count N] [--size BYTES] [--json]
//   ipoib-perf ud-bw|ud-lat --fabric inproc [--count N] [--size BYTES] [--json]
//
// How the two sides find each other, the InfiniBand way: the server attaches as a well-known host
// name (--server-name, default "ipoib-perf-server"), so its port GUID, and with it its GID, is
// known to the client (GUIDs are derived from host names, link/fabric/guid.ts). The client asks
// the SA for a PathRecord to that GID (which gives the server's LID), then sends a vendor-class
// MAD (class 0x09, attribute 0xFF01) to the server's QP1; the answer carries the server's UD QPN,
// Q_Key and test. perftest exchanges the same facts over a TCP socket instead.
//
// ud-bw: the client sends --count datagrams of --size bytes (each numbered), at most --window
// beyond the highest number the server has seen (it acknowledges every quarter window, at most
// every 256 arrivals, with its count and that number; a message below that number that never
// arrived is lost, not in flight); the server reports what arrived. Messages/s and MB/s are the
// server's (first to last arrival), losses = sent - received. ud-lat: ping-pong of --count
// datagrams; latency printed as perftest does, half the round trip (p50 / p99 / average), and the
// round trip itself.
import { performance } from 'node:perf_hooks';
import { Fabric } from '../link/fabric/fabric.js';
import { deriveNodeGuid, derivePortGuid } from '../link/fabric/guid.js';
import { RealScheduler } from '../link/fabric/scheduler.js';
import { InProcessTransport, type Transport } from '../link/fabric/transport.js';
import { UdpTransport } from '../link/fabric/udp-client.js';
import { DEFAULT_FABRIC_HOST, DEFAULT_FABRIC_PORT, parseFabricAddress } from '../link/fabric/udp-protocol.js';
import { openDevice, SaClient, type AddressHandle, type CompletionQueue, type Device, type Qp, type RecvWr, type SendWr } from '../link/verbs/index.js';
import { gidSubnetPrefix, portGid } from '../link/wire/ib-address.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, intOption, program, run } from './cli.js';

export type PerfTest = 'ud-bw' | 'ud-lat';

/** Vendor-specific MAD class (IBA 13.4.4 range 0x09-0x0F) used for the QPN exchange. */
const PERF_MGMT_CLASS = 0x09;
const PERF_ATTR_QP_INFO = 0xff01;
const PERF_QKEY = 0x11111111;
/**
 * The test's own header, the first 16 bytes of every message, big-endian: kind u8, 3 bytes 0, then by
 * kind: DATA seq u32, window u32; ACK received u32, seen u32 (the seq after the highest DATA that
 * arrived); FIN sent u32; FIN-ACK received u32, seconds f64 (first to last DATA); PING / PONG seq u32.
 */
const HDR = 16;
const KIND = { DATA: 1, ACK: 2, FIN: 3, FIN_ACK: 4, PING: 5, PONG: 6 } as const;
/** ud-bw: the server acknowledges every quarter window of arrivals (the client's window is in each DATA), and at least every this many. */
const ACK_EVERY_MAX = 256;
/** ud-bw: messages the client posts per event-loop turn at most. */
const BURST = 256;
/** ud-bw: with the window full and no ACK for this long, what is in flight is taken as lost... */
const STALL_MS = 50;
/** ... a wait that doubles, up to this, each time such a window turns out to have been only late. */
const STALL_MAX_MS = 1000;
const RECV_DEPTH = 4096;
const TEST_CODE: Record<PerfTest, number> = { 'ud-bw': 1, 'ud-lat': 2 };

export interface BwResult {
  test: 'ud-bw';
  fabric: string;
  size: number;
  count: number;
  sent: number;
  received: number;
  lost: number;
  /** Times the window was full with no ACK for the stall wait, and what was in flight was taken as lost. */
  stalls: number;
  seconds: number;
  messagesPerSecond: number;
  mbPerSecond: number;
}

export interface LatResult {
  test: 'ud-lat';
  fabric: string;
  size: number;
  count: number;
  received: number;
  lost: number;
  /** One-way latency (half the round trip), µs, as ib_send_lat prints it. */
  p50Us: number;
  p99Us: number;
  avgUs: number;
  rttP50Us: number;
  rttP99Us: number;
  roundTripsPerSecond: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when cq holds a completion, false after ms (the timer is cleared either way: one per wait adds up). */
function waitCq(cq: CompletionQueue, ms: number): Promise<boolean> {
  if (cq.length > 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    void cq.nextEvent().then(() => { clearTimeout(t); resolve(true); });
  });
}

/** One UD QP with its CQs, a ring of posted receives, in RTS. */
class Endpoint {
  readonly qp: Qp;
  readonly send: CompletionQueue;
  readonly recv: CompletionQueue;
  private readonly ahs = new Map<number, AddressHandle>();
  private readonly wrs: RecvWr[] = [];
  private lastWr: SendWr | undefined;

  constructor(readonly device: Device) {
    const pd = device.allocPd();
    this.send = device.createCq(64);
    this.recv = device.createCq(RECV_DEPTH * 2);
    this.qp = pd.createQp({ qpType: 'UD', sendCq: this.send, recvCq: this.recv, cap: { maxRecvWr: RECV_DEPTH, maxSendWr: 4096 } });
    this.qp.modify({ qpState: 'INIT', pkeyIndex: 0, portNum: 1, qkey: PERF_QKEY });
    for (let i = 0; i < RECV_DEPTH; i++) {
      this.wrs.push({ wrId: i });
      this.qp.postRecv(this.wrs[i]!);
    }
    this.qp.modify({ qpState: 'RTR' });
    this.qp.modify({ qpState: 'RTS', sqPsn: 0 });
  }

  ah(dlid: number): AddressHandle {
    let a = this.ahs.get(dlid);
    if (a === undefined) {
      a = this.device.allocPd().createAh({ dlid, portNum: 1 });
      this.ahs.set(dlid, a);
    }
    return a;
  }

  post(dlid: number, qpn: number, data: Uint8Array): void {
    // post_send copies the data into the packet at once: the last WR serves again for the same
    // destination and buffer (ud-bw posts one buffer, renumbered, a million times).
    let wr = this.lastWr;
    if (wr === undefined || wr.data !== data || wr.ud!.remoteQpn !== qpn || wr.ud!.ah.attr.dlid !== dlid) {
      wr = { wrId: 0, data, ud: { ah: this.ah(dlid), remoteQpn: qpn, remoteQkey: PERF_QKEY } };
      this.lastWr = wr;
    }
    this.qp.postSend(wr);
  }

  /** Every arrived datagram (payload view, sender LID and QPN); receives are re-posted at once. */
  drain(fn: (data: Buffer, slid: number, srcQp: number) => void): number {
    const wcs = this.recv.poll(this.recv.length);
    for (const wc of wcs) {
      // The QP keeps a WR only until a datagram takes it: each ring slot's WR is posted again as is.
      this.qp.postRecv(this.wrs[wc.wrId] ?? { wrId: wc.wrId });
      if (wc.status === 'SUCCESS' && wc.data !== undefined) fn(wc.data, wc.slid, wc.srcQp);
    }
    return wcs.length;
  }
}

async function waitActive(device: Device, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (device.queryPort(1).state !== 'ACTIVE') {
    if (Date.now() > end) throw new CliError(`${device.hostName}: port 1 not ACTIVE after ${timeoutMs} ms (is the fabric running?)`, EXIT_RUNTIME);
    await sleep(5);
  }
}

export interface FabricHandle {
  transport: Transport;
  name: string;
  close(): Promise<void>;
}

/** "inproc" (a fabric in this process) or HOST:PORT of an ipoib-fabric daemon. */
export async function openFabric(spec: string): Promise<FabricHandle> {
  if (spec === 'inproc') {
    const fabric = new Fabric({ scheduler: new RealScheduler() });
    return { transport: new InProcessTransport(fabric), name: 'inproc', close: async () => undefined };
  }
  const a = parseFabricAddress(spec);
  const t = await UdpTransport.connect(a.host, a.port, { reattach: false });
  return { transport: t, name: `${a.host}:${a.port}`, close: () => t.close() };
}

/** The server side: answers the QPN exchange, then serves one client until it finishes. */
export async function serve(f: FabricHandle, test: PerfTest, serverName: string,
  opts: { timeoutMs?: number; onReady?: () => void; signal?: AbortSignal } = {}): Promise<{ received: number; client: string }> {
  const device = await openDevice(f.transport, { hostName: serverName, scheduler: new RealScheduler() });
  try {
    await waitActive(device, 5000);
    opts.onReady?.();
    const ep = new Endpoint(device);
    device.onMad((portNum, m) => {
      if (m.mad[1] !== PERF_MGMT_CLASS || m.mad[3] !== 0x01 || m.mad.readUInt16BE(16) !== PERF_ATTR_QP_INFO) return;
      const r = Buffer.from(m.mad);
      r[3] = 0x81;
      r.writeUInt32BE(ep.qp.qpNum, 24);
      r.writeUInt32BE(PERF_QKEY, 28);
      r[32] = TEST_CODE[test];
      device.sendMad(portNum, r, m.slid, { sl: m.sl, destQp: m.srcQp });
    });
    let received = 0;
    /** ud-bw: the sequence number after the highest DATA that arrived. */
    let seen = 0;
    let ackedAt = 0;
    let first = 0;
    let last = 0;
    let done = false;
    let client = '';
    const reply = Buffer.alloc(HDR);
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    while (!done) {
      if (ep.recv.length === 0) {
        await waitCq(ep.recv, 200);
        if (Date.now() > deadline) throw new CliError(`no client finished within ${opts.timeoutMs} ms`, EXIT_RUNTIME);
        if (opts.signal?.aborted === true) throw new CliError('interrupted', EXIT_RUNTIME);
        continue;
      }
      // Arrival time of everything this drain finds: it was all queued when the drain began.
      const now = performance.now();
      ep.drain((data, slid, srcQp) => {
        if (data.length < HDR) return;
        const kind = data[0]!;
        if (client === '') client = `LID ${slid} QPN 0x${srcQp.toString(16)}`;
        if (kind === KIND.DATA) {
          if (received === 0) first = now;
          last = now;
          received++;
          const seq = data.readUInt32BE(4);
          if (seq >= seen) seen = seq + 1;
          if (received - ackedAt >= Math.min(ACK_EVERY_MAX, Math.max(1, data.readUInt32BE(8) >>> 2))) {
            ackedAt = received;
            reply[0] = KIND.ACK;
            reply.writeUInt32BE(received, 4);
            reply.writeUInt32BE(seen, 8);
            ep.post(slid, srcQp, reply);
          }
        } else if (kind === KIND.PING) {
          received++;
          const pong = Buffer.from(data);
          pong[0] = KIND.PONG;
          ep.post(slid, srcQp, pong);
        } else if (kind === KIND.FIN) {
          reply[0] = KIND.FIN_ACK;
          reply.writeUInt32BE(received, 4);
          reply.writeDoubleBE(received > 1 ? (last - first) / 1000 : 0, 8);
          ep.post(slid, srcQp, reply);
          done = true;
        }
      });
    }
    // The FIN-ACK may be lost: answer repeated FINs for a moment before going away.
    const lingerEnd = Date.now() + 300;
    while (Date.now() < lingerEnd) {
      await waitCq(ep.recv, 50);
      ep.drain((data, slid, srcQp) => { if (data[0] === KIND.FIN) ep.post(slid, srcQp, reply); });
    }
    return { received, client };
  } finally {
    device.close();
  }
}

interface Peer {
  ep: Endpoint;
  dlid: number;
  qpn: number;
}

/** Client side of the rendezvous: PathRecord to the well-known server GID, then the vendor MAD. */
async function findServer(device: Device, test: PerfTest, serverName: string, timeoutMs: number): Promise<Peer> {
  const ep = new Endpoint(device);
  const serverGuid = derivePortGuid(deriveNodeGuid(serverName), 1);
  const sa = new SaClient(device, 1, { timeoutMs: 200, retries: 3 });
  const dgid = portGid(serverGuid, gidSubnetPrefix(device.queryGid(1)));
  const end = Date.now() + timeoutMs;
  let dlid: number | undefined;
  try {
    // Until the server has attached, the SA does not know its GID: ask again, like a client
    // started a moment before its server.
    while (dlid === undefined) {
      try {
        dlid = (await sa.pathRecord(dgid, 0xffff)).dlid;
      } catch (err) {
        if (Date.now() > end) {
          throw new CliError(`no path to server "${serverName}" (is \`ipoib-perf ${test} --server\` running on this fabric?): ${(err as Error).message}`, EXIT_RUNTIME);
        }
        await sleep(100);
      }
    }
  } finally {
    sa.close();
  }
  const tid = BigInt(Date.now()) & 0xffffffffn;
  const mad = Buffer.alloc(256);
  mad[0] = 1;
  mad[1] = PERF_MGMT_CLASS;
  mad[2] = 1;
  mad[3] = 0x01;
  mad.writeBigUInt64BE(tid, 8);
  mad.writeUInt16BE(PERF_ATTR_QP_INFO, 16);
  const answer = await new Promise<Buffer | undefined>((resolve) => {
    let tries = 0;
    const off = device.onMad((_p, m) => {
      if (m.mad[1] !== PERF_MGMT_CLASS || m.mad[3] !== 0x81 || m.mad.readBigUInt64BE(8) !== tid) return;
      off();
      clearInterval(timer);
      resolve(m.mad);
    });
    const send = (): void => device.sendMad(1, mad, dlid);
    const timer = setInterval(() => {
      if (++tries * 200 > timeoutMs) { off(); clearInterval(timer); resolve(undefined); return; }
      send();
    }, 200);
    send();
  });
  if (answer === undefined) throw new CliError(`server "${serverName}" (LID ${dlid}) did not answer the QP exchange`, EXIT_RUNTIME);
  if (answer[32] !== TEST_CODE[test]) throw new CliError(`the server runs the other test (${answer[32] === 1 ? 'ud-bw' : 'ud-lat'}), not ${test}`);
  return { ep, dlid, qpn: answer.readUInt32BE(24) };
}

async function finish(p: Peer, sent: number): Promise<{ received: number; seconds: number } | undefined> {
  const fin = Buffer.alloc(HDR);
  fin[0] = KIND.FIN;
  fin.writeUInt32BE(sent, 4);
  for (let i = 0; i < 20; i++) {
    p.ep.post(p.dlid, p.qpn, fin);
    const end = Date.now() + 100;
    let got: { received: number; seconds: number } | undefined;
    while (got === undefined && Date.now() < end) {
      await waitCq(p.ep.recv, 20);
      p.ep.drain((d) => { if (d[0] === KIND.FIN_ACK) got = { received: d.readUInt32BE(4), seconds: d.readDoubleBE(8) }; });
    }
    if (got !== undefined) return got;
  }
  return undefined;
}

export interface ClientOptions {
  count: number;
  size: number;
  window?: number;
  serverName: string;
  timeoutMs?: number;
  hostName?: string;
}

export async function clientBw(f: FabricHandle, o: ClientOptions): Promise<BwResult> {
  const device = await openDevice(f.transport, { hostName: o.hostName ?? `ipoib-perf-client-${process.pid}`, scheduler: new RealScheduler() });
  try {
    await waitActive(device, 5000);
    const p = await findServer(device, 'ud-bw', o.serverName, o.timeoutMs ?? 5000);
    const window = o.window ?? 1024;
    const msg = Buffer.alloc(Math.max(HDR, o.size));
    msg[0] = KIND.DATA;
    msg.writeUInt32BE(window, 8);
    let sent = 0;
    // Flow control on what the server has seen, not on what it has received: an ACK carries the
    // sequence number after the highest DATA that arrived, and everything below it is no longer in
    // flight (delivered, or lost: the path keeps a session's order, so a hole below it is a loss).
    // A loss therefore costs nothing but the message; only a window lost whole leaves no ACK to
    // learn from, and that alone waits STALL_MS.
    let seen = 0;
    let lastProgress = performance.now();
    // A window taken as lost that was only late (the machine was busy), or a second one taken as
    // lost with no ACK in between, doubles the wait: in flight stays near the window.
    let stallMs = STALL_MS;
    let stalls = 0;
    let forgivenFrom = 0;
    let forgivenTo = 0;
    const onAck = (d: Buffer): void => {
      if (d[0] !== KIND.ACK || d.length < HDR) return;
      const s = d.readUInt32BE(8);
      if (s > forgivenFrom && s <= forgivenTo) stallMs = Math.min(STALL_MAX_MS, 2 * stallMs);
      if (s > forgivenFrom) forgivenTo = 0;
      if (s > seen) { seen = s; lastProgress = performance.now(); }
    };
    while (sent < o.count) {
      p.ep.drain(onAck);
      if (sent - seen >= window) {
        const waited = performance.now() - lastProgress;
        if (waited < stallMs) {
          // Sleep until an ACK arrives (no spinning: the daemon and the server need the CPU).
          await waitCq(p.ep.recv, Math.max(1, Math.ceil(stallMs - waited)));
          continue;
        }
        stalls++;
        if (forgivenTo !== 0) stallMs = Math.min(STALL_MAX_MS, 2 * stallMs);
        forgivenFrom = seen;
        forgivenTo = sent;
        seen = sent;
        lastProgress = performance.now();
      }
      const burst = Math.min(window - (sent - seen), BURST, o.count - sent);
      for (let i = 0; i < burst; i++) {
        msg.writeUInt32BE(sent, 4);
        p.ep.post(p.dlid, p.qpn, msg);
        sent++;
      }
      // One turn: the transport sends what this one queued, ACKs get read.
      await new Promise<void>((r) => setImmediate(r));
    }
    const fin = await finish(p, sent);
    if (fin === undefined) throw new CliError('the server never acknowledged the end of the test', EXIT_RUNTIME);
    const seconds = fin.seconds > 0 ? fin.seconds : Number.NaN;
    return {
      test: 'ud-bw', fabric: f.name, size: msg.length, count: o.count, sent, received: fin.received, lost: sent - fin.received, stalls, seconds,
      messagesPerSecond: fin.received / seconds, mbPerSecond: (fin.received * msg.length) / 1e6 / seconds,
    };
  } finally {
    device.close();
  }
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export async function clientLat(f: FabricHandle, o: ClientOptions): Promise<LatResult> {
  const device = await openDevice(f.transport, { hostName: o.hostName ?? `ipoib-perf-client-${process.pid}`, scheduler: new RealScheduler() });
  try {
    await waitActive(device, 5000);
    const p = await findServer(device, 'ud-lat', o.serverName, o.timeoutMs ?? 5000);
    const msg = Buffer.alloc(Math.max(HDR, o.size));
    msg[0] = KIND.PING;
    const rtts: number[] = [];
    let lost = 0;
    const warmup = Math.min(100, Math.ceil(o.count / 10));
    const t0 = performance.now();
    for (let i = 0; i < o.count + warmup; i++) {
      msg.writeUInt32BE(i, 4);
      const start = performance.now();
      p.ep.post(p.dlid, p.qpn, msg);
      let got = false;
      while (!got) {
        if (p.ep.recv.length === 0 && !(await waitCq(p.ep.recv, 200))) break;
        p.ep.drain((d) => { if (d[0] === KIND.PONG && d.readUInt32BE(4) === i) got = true; });
      }
      if (i < warmup) continue;
      if (got) rtts.push((performance.now() - start) * 1000);
      else lost++;
    }
    const elapsed = (performance.now() - t0) / 1000;
    await finish(p, o.count);
    rtts.sort((a, b) => a - b);
    const avg = rtts.reduce((a, b) => a + b, 0) / Math.max(1, rtts.length);
    return {
      test: 'ud-lat', fabric: f.name, size: msg.length, count: o.count, received: rtts.length, lost,
      p50Us: percentile(rtts, 0.5) / 2, p99Us: percentile(rtts, 0.99) / 2, avgUs: avg / 2,
      rttP50Us: percentile(rtts, 0.5), rttP99Us: percentile(rtts, 0.99), roundTripsPerSecond: (o.count + warmup) / elapsed,
    };
  } finally {
    device.close();
  }
}

function formatBw(r: BwResult): string {
  return `ud-bw over ${r.fabric}: ${r.received}/${r.sent} messages of ${r.size} B in ${r.seconds.toFixed(3)} s: `
    + `${Math.round(r.messagesPerSecond).toLocaleString('en-US')} msg/s, ${r.mbPerSecond.toFixed(2)} MB/s, `
    + `lost ${r.lost} (${((100 * r.lost) / Math.max(1, r.sent)).toFixed(2)}%)${r.stalls > 0 ? `, ${r.stalls} stall(s)` : ''}\n`;
}

function formatLat(r: LatResult): string {
  return `ud-lat over ${r.fabric}: ${r.received} round trips of ${r.size} B: latency (RTT/2) p50 ${r.p50Us.toFixed(1)} us, `
    + `p99 ${r.p99Us.toFixed(1)} us, avg ${r.avgUs.toFixed(1)} us; RTT p50 ${r.rttP50Us.toFixed(1)} us; lost ${r.lost}\n`;
}

interface CmdOpts {
  fabric: string;
  server?: boolean;
  count: number;
  size: number;
  window: number;
  serverName: string;
  json?: boolean;
  timeout: number;
}

async function command(test: PerfTest, o: CmdOpts): Promise<number> {
  if (o.fabric !== 'inproc') {
    try {
      parseFabricAddress(o.fabric);
    } catch (err) {
      throw new CliError(`--fabric: ${(err as Error).message} (or "inproc")`);
    }
  }
  if (o.server === true && o.fabric === 'inproc') throw new CliError('--server needs a fabric daemon: with --fabric inproc both sides run here');
  let f: FabricHandle;
  try {
    f = await openFabric(o.fabric);
  } catch (err) {
    throw new CliError(`--fabric ${o.fabric}: ${(err as Error).message}`, EXIT_RUNTIME);
  }
  const copts: ClientOptions = { count: o.count, size: o.size, window: o.window, serverName: o.serverName, timeoutMs: o.timeout };
  const clientRun = (h: FabricHandle): Promise<BwResult | LatResult> => (test === 'ud-bw' ? clientBw(h, copts) : clientLat(h, copts));
  try {
    if (o.server === true) {
      // On SIGTERM / SIGINT the port is detached properly, so the name can be reused at once.
      const stopper = new AbortController();
      const onSignal = (): void => stopper.abort();
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      const r = await serve(f, test, o.serverName, {
        signal: stopper.signal,
        onReady: () => process.stderr.write(`${test} server "${o.serverName}" waiting for a client on ${f.name}\n`),
      }).finally(() => {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      });
      process.stdout.write(o.json === true ? JSON.stringify({ test, role: 'server', ...r }) + '\n' : `${test} server: ${r.received} messages from ${r.client}\n`);
      return EXIT_OK;
    }
    let r: BwResult | LatResult;
    if (o.fabric === 'inproc') {
      const server = serve(f, test, o.serverName, { timeoutMs: o.timeout + 60_000 });
      server.catch(() => undefined);
      r = await clientRun(f);
      await server;
    } else {
      r = await clientRun(f);
    }
    process.stdout.write(o.json === true ? JSON.stringify(r) + '\n' : r.test === 'ud-bw' ? formatBw(r) : formatLat(r));
    return EXIT_OK;
  } finally {
    await f.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const p = program('ipoib-perf', 'perftest-style UD bandwidth and latency over the emulated InfiniBand fabric');
  const def = `${DEFAULT_FABRIC_HOST}:${DEFAULT_FABRIC_PORT}`;
  for (const test of ['ud-bw', 'ud-lat'] as const) {
    p.command(test)
      .description(test === 'ud-bw' ? 'UD send bandwidth, like ib_send_bw' : 'UD send latency (ping-pong), like ib_send_lat')
      .option('--fabric <host:port|inproc>', `fabric daemon address, or "inproc" for both sides in this process (default ${def})`, def)
      .option('--server', 'wait for one client and serve it')
      .option('--count <n>', 'messages (round trips for ud-lat)', intOption('--count', 1, 100_000_000), test === 'ud-bw' ? 100_000 : 10_000)
      .option('--size <bytes>', 'payload bytes (16..4096)', intOption('--size', 16, 4096), 64)
      .option('--window <n>', 'ud-bw: unacknowledged messages in flight', intOption('--window', 1, 1_000_000), 1024)
      .option('--server-name <name>', 'well-known host name of the server', 'ipoib-perf-server')
      .option('--timeout <ms>', 'how long the client looks for the server', intOption('--timeout', 1, 600_000), 5000)
      .option('--json', 'print one JSON object')
      .action(async (o: CmdOpts) => {
        process.exitCode = await command(test, o);
      });
  }
  return run('ipoib-perf', p, argv);
}
