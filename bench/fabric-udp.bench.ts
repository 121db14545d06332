// UD through the UDP fabric daemon (issue 3): messages/s and p50/p99 latency for 64 B and 2 KB
// payloads, each process on its own (daemon, ipoib-perf server, this process as the client), next
// to raw node:dgram loopback between two processes measured in the same run — the physical limit
// of this design, since every UD message crosses the loopback twice (host -> daemon -> host).
// Target (issue 3): fabric messages/s >= 0.5x raw dgram datagrams/s. Each size runs a few rounds of
// raw then fabric, back to back, and reports the medians (of the rounds' ratios for the ratio).
// On a shared machine both rates mostly measure the other tenants, so each size also gets the CPU
// time (user + system, every process involved, from /proc) per delivered message beside the CPU time
// per raw datagram: the ratio raw / fabric is what the throughput ratio would be if both ran alone
// on enough cores.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { clientBw, clientLat, openFabric, type BwResult } from '../bin/ipoib-perf.js';
import { median, type BenchResult } from './harness.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SIZES = [64, 2048] as const;
const RAW_SECONDS = 2;

/** CPU time (user + system) of a process so far, ms; NaN where /proc is missing. Linux ticks are 10 ms (USER_HZ 100). */
function cpuMsOf(pid: number | undefined): number {
  const f = `/proc/${pid}/stat`;
  if (pid === undefined || !existsSync(f)) return Number.NaN;
  const st = readFileSync(f, 'utf8');
  const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function selfCpuMs(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

/** Children without the coverage hooks a test runner may have put in NODE_OPTIONS. */
function start(args: string[]): ChildProcess {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  return spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function firstLine(c: ChildProcess, pred: (l: string) => boolean, ms: number, what: string): Promise<string> {
  return new Promise((resolveLine, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms (${err.slice(-500)})`)), ms);
    c.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    c.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const l of buf.split('\n')) {
        if (pred(l)) { clearTimeout(timer); resolveLine(l); return; }
      }
    });
    c.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what}: exited ${code} (${err.slice(-500)})`)); });
  });
}

/** Waits graceMs for the child to end by itself (an ipoib-perf server does), then SIGTERM, then SIGKILL. */
function stop(c: ChildProcess, graceMs = 0): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    const term = setTimeout(() => c.kill('SIGTERM'), graceMs);
    const kill = setTimeout(() => { c.kill('SIGKILL'); r(); }, graceMs + 5000);
    c.once('exit', () => { clearTimeout(term); clearTimeout(kill); r(); });
  });
}

// A counting receiver: datagrams until a 1-byte end marker, then {n, seconds} (first to last).
const RAW_SINK = `
const s = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
let n = 0, first = 0, last = 0;
s.on('message', (m) => {
  if (m.length === 1) { console.log(JSON.stringify({ n, seconds: (last - first) / 1000 })); process.exit(0); }
  const t = performance.now(); if (n === 0) first = t; last = t; n++;
});
s.bind(0, '127.0.0.1', () => console.log('port ' + s.address().port));
`;

// An echo: every datagram goes straight back.
const RAW_ECHO = `
const s = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(0, '127.0.0.1', () => console.log('port ' + s.address().port));
`;

/** Raw loopback datagrams/s between two processes, the sender writing batches of 64 per turn. */
async function rawPps(size: number): Promise<{ pps: number; sent: number; received: number; cpuUs: number }> {
  const sink = start(['-e', RAW_SINK]);
  try {
    const port = Number((await firstLine(sink, (l) => l.startsWith('port '), 10_000, 'dgram sink')).slice(5));
    const result = firstLine(sink, (l) => l.startsWith('{'), 30_000, 'dgram sink result');
    const s = createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
    await new Promise<void>((r) => s.connect(port, '127.0.0.1', () => r()));
    const msg = Buffer.alloc(size, 0x5a);
    const self0 = process.cpuUsage();
    const sink0 = cpuMsOf(sink.pid);
    const end = performance.now() + RAW_SECONDS * 1000;
    let sent = 0;
    while (performance.now() < end) {
      // The same pacing as the fabric's batching: a turn's worth, then let the loop run.
      if (s.getSendQueueCount() < 256) for (let i = 0; i < 64; i++) { s.send(msg); sent++; }
      await new Promise<void>((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 200));
    const senderMs = selfCpuMs(self0);
    const sinkMs = cpuMsOf(sink.pid) - sink0;
    for (let i = 0; i < 5; i++) s.send(Buffer.from([0]));
    const r = JSON.parse(await result) as { n: number; seconds: number };
    s.close();
    // Each side per datagram it handled: the sender's cost of a datagram the sink then dropped is
    // not charged to the ones delivered.
    return { pps: r.n / r.seconds, sent, received: r.n, cpuUs: (senderMs / sent + sinkMs / r.n) * 1000 };
  } finally {
    await stop(sink);
  }
}

/** Raw loopback ping-pong: half the round trip, p50 and p99 in µs. */
async function rawLatency(size: number, count: number): Promise<{ p50: number; p99: number }> {
  const echo = start(['-e', RAW_ECHO]);
  try {
    const port = Number((await firstLine(echo, (l) => l.startsWith('port '), 10_000, 'dgram echo')).slice(5));
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.connect(port, '127.0.0.1', () => r()));
    const msg = Buffer.alloc(size);
    const rtts: number[] = [];
    for (let i = 0; i < count + 100; i++) {
      const t0 = performance.now();
      const got = await new Promise<boolean>((r) => {
        const to = setTimeout(() => { s.off('message', on); r(false); }, 200);
        const on = (): void => { clearTimeout(to); r(true); };
        s.once('message', on);
        s.send(msg);
      });
      if (got && i >= 100) rtts.push((performance.now() - t0) * 1000);
    }
    s.close();
    rtts.sort((a, b) => a - b);
    return { p50: rtts[Math.floor(rtts.length * 0.5)]! / 2, p99: rtts[Math.floor(rtts.length * 0.99)]! / 2 };
  } finally {
    await stop(echo);
  }
}

async function withServer<T>(address: string, test: 'ud-bw' | 'ud-lat', fn: (serverPid: number | undefined) => Promise<T>): Promise<T> {
  const server = start([join(root, 'bin/ipoib-perf'), test, '--fabric', address, '--server', '--json']);
  try {
    const ready = new Promise<void>((r, reject) => {
      let err = '';
      server.stderr!.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('waiting for a client')) r(); });
      server.once('exit', (code) => reject(new Error(`ipoib-perf server exited ${code}: ${err}`)));
    });
    await ready;
    return await fn(server.pid);
  } finally {
    await stop(server, 3000);
  }
}

/** Rounds per size: raw dgram and the fabric alternate, so both see the same load; medians are reported. */
const ROUNDS = 3;

export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const rawLat = new Map<number, { p50: number; p99: number }>();
  for (const size of SIZES) rawLat.set(size, await rawLatency(size, 3000));

  const daemon = start([join(root, 'bin/ipoib-fabric'), '--listen', '127.0.0.1:0', '--log-level', 'warn']);
  try {
    const line = await firstLine(daemon, (l) => l.startsWith('listening '), 20_000, 'ipoib-fabric');
    const address = line.slice('listening '.length).trim();
    for (const size of SIZES) {
      const count = size === 64 ? 200_000 : 100_000;
      const rounds: { raw: Awaited<ReturnType<typeof rawPps>>; bw: BwResult; cpuUs: number }[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Each round measures raw dgram right before the fabric: a shared machine's load drifts.
        const raw = await rawPps(size);
        let cpuUs = Number.NaN;
        const bw = await withServer(address, 'ud-bw', async (serverPid) => {
          const f = await openFabric(address);
          try {
            const self0 = process.cpuUsage();
            const daemon0 = cpuMsOf(daemon.pid);
            const server0 = cpuMsOf(serverPid);
            // A window of about 2 MB in flight (1024 messages of 2 KB; 2048 of 64 B): the kernel
            // charges a 64 KiB DATA datagram its size + ~800 B against a socket's buffer (8 MiB once
            // 4 MiB is asked for), so even a window taken as lost that arrives after all fits twice.
            const b = await clientBw(f, { count, size, serverName: 'ipoib-perf-server', window: Math.max(1024, Math.min(2048, (1 << 21) / size)) });
            const clientMs = selfCpuMs(self0);
            const restMs = cpuMsOf(daemon.pid) - daemon0 + cpuMsOf(serverPid) - server0;
            // The client per message sent; the daemon and the server per message delivered (the
            // daemon also handled the ones lost after it: charged to the fabric, conservatively).
            cpuUs = (clientMs / b.sent + restMs / b.received) * 1000;
            return b;
          } finally {
            await f.close();
          }
        });
        rounds.push({ raw, bw, cpuUs });
      }
      const rawPpsMedian = median(rounds.map((r) => r.raw.pps));
      const ratios = rounds.map((r) => r.bw.messagesPerSecond / r.raw.pps);
      const ratio = median(ratios);
      const k = (n: number): string => `${Math.round(n / 1000)}k`;
      out.push({
        suite: 'fabric', name: `raw node:dgram loopback, ${size} B`, value: rawPpsMedian, unit: 'datagrams/s',
        note: `2 processes, ${RAW_SECONDS} s, 64 sends per turn; median of ${ROUNDS} rounds (${rounds.map((r) => k(r.raw.pps)).join(', ')}); `
          + `received ${rounds.map((r) => `${r.raw.received} of ${r.raw.sent}`).join(', ')}`,
      });
      out.push({
        suite: 'fabric', name: `UD send via UDP daemon, ${size} B`, value: median(rounds.map((r) => r.bw.messagesPerSecond)), unit: 'msg/s',
        ratio: { to: `raw dgram ${size} B`, value: ratio },
        target: { text: '>= 0.5x raw dgram (issue 3)', met: ratio >= 0.5 }, headline: true,
        note: `3 processes; median of ${ROUNDS} rounds: ${rounds.map((r) => k(r.bw.messagesPerSecond)).join(', ')} msg/s, `
          + `ratios ${ratios.map((x) => x.toFixed(2)).join(', ')} (each to the raw round just before); `
          + `${rounds.map((r) => `${r.bw.received}/${r.bw.sent}`).join(', ')} delivered, ${rounds.map((r) => r.bw.stalls).join(', ')} stalls; `
          + `${(median(rounds.map((r) => r.bw.mbPerSecond))).toFixed(1)} MB/s`,
      });
      const rawCpu = median(rounds.map((r) => r.raw.cpuUs));
      const cpuUs = median(rounds.map((r) => r.cpuUs));
      out.push({
        suite: 'fabric', name: `CPU per UD message via UDP daemon, ${size} B`, value: cpuUs, unit: 'us CPU/msg',
        ratio: { to: `raw dgram CPU ${rawCpu.toFixed(1)} us/datagram (raw / fabric)`, value: rawCpu / cpuUs },
        note: `user + system time of client, daemon and server (sender and sink for raw), from /proc, medians of ${ROUNDS} rounds; `
          + 'measures the code, not the machine\'s other load',
      });
      const lat = await withServer(address, 'ud-lat', async () => {
        const f = await openFabric(address);
        try {
          return await clientLat(f, { count: 3000, size, serverName: 'ipoib-perf-server' });
        } finally {
          await f.close();
        }
      });
      const rl = rawLat.get(size)!;
      out.push({
        suite: 'fabric', name: `UD latency p50 via UDP daemon, ${size} B`, value: lat.p50Us, unit: 'us (RTT/2)',
        ratio: { to: `raw dgram ping-pong p50 ${rl.p50.toFixed(1)} us`, value: lat.p50Us / rl.p50 },
        note: `${lat.received} round trips, ${lat.lost} lost`,
      });
      out.push({
        suite: 'fabric', name: `UD latency p99 via UDP daemon, ${size} B`, value: lat.p99Us, unit: 'us (RTT/2)',
        ratio: { to: `raw dgram ping-pong p99 ${rl.p99.toFixed(1)} us`, value: lat.p99Us / rl.p99 },
      });
    }
  } finally {
    await stop(daemon);
  }
  return out;
}
