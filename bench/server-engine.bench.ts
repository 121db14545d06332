// The server engine (server/engine.ts): DORA exchanges per second through handle() with the lease
// writes left uncommitted (the engine's own cost: decode, identity, allocation, options, encode), and
// with every ACK's write committed to a real SQLite file (fsync'd, group-committed) before the ACK
// would be sent — the durable rate the daemon can reach before any socket cost — with the store's
// connection on the calling thread and on a worker thread (the daemon's store).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, type BenchResult } from './harness.js';
import { parseConfig } from '../server/config.js';
import { ServerEngine } from '../server/engine.js';
import { commitWrites } from '../server/commit.js';
import { openSqliteStore } from '../lease-db/sqlite-store.js';
import { openSqliteWorkerStore } from '../lease-db/sqlite-worker-store.js';
import {
  BOOTREQUEST, DhcpMessageType, FLAG_BROADCAST, OptionCode, emptyDhcpMessage, encodeDhcpMessage, mellanoxClientId, parseIpv4,
} from '../protocol/index.js';

const SERVER = parseIpv4('10.0.0.1');
const T0 = 1_700_000_000_000;

function config(): ReturnType<typeof parseConfig> {
  return parseConfig(JSON.stringify({ Dhcp4: {
    'valid-lifetime': 3600,
    'option-data': [{ name: 'domain-name-servers', data: '10.0.0.53' }, { name: 'domain-name', data: 'cluster.example' }],
    ipoib: { 'client-rate-limit': { burst: 1000, 'per-second': 1000 } },
    subnet4: [{ id: 1, subnet: '10.0.0.0/16', interface: 'ib0', pools: [{ pool: '10.0.1.0 - 10.0.255.254' }],
      'option-data': [{ name: 'routers', data: '10.0.0.1' }, { name: 'interface-mtu', data: '2044' }] }],
  } }), 'bench.conf');
}

function message(type: number, guid: bigint, xid: number, requested?: number): Buffer {
  const m = emptyDhcpMessage(BOOTREQUEST);
  m.htype = 32; m.xid = xid; m.flags = FLAG_BROADCAST;
  const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  m.options = [
    { code: OptionCode.MESSAGE_TYPE, data: Buffer.from([type]) },
    { code: OptionCode.CLIENT_IDENTIFIER, data: mellanoxClientId(guid) },
    ...(requested === undefined ? [] : [
      { code: OptionCode.REQUESTED_ADDRESS, data: u32(requested) }, { code: OptionCode.SERVER_IDENTIFIER, data: u32(SERVER) }]),
    { code: OptionCode.PARAMETER_REQUEST_LIST, data: Buffer.from([1, 3, 6, 15, 26, 51, 54, 58, 59]) },
  ];
  return encodeDhcpMessage(m);
}

function hwaddr(guid: bigint): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(0x80000048, 0); b.writeUInt16BE(0xfe80, 4); b.writeBigUInt64BE(guid, 12);
  return b;
}

/** One engine, `n` clients: DISCOVERs are pre-encoded; the REQUEST needs the offered address. */
function doraPure(n: number): number {
  const e = new ServerEngine({ config: config(), interfaces: [{ name: 'ib0', address: SERVER }], serverPort: 0x8101 });
  const guids = Array.from({ length: n }, (_, i) => 0x0002c90300000000n + BigInt(i));
  const discovers = guids.map((g, i) => message(DhcpMessageType.DHCPDISCOVER, g, i));
  const hws = guids.map(hwaddr);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const now = T0 + i;
    const offer = e.handle({ data: discovers[i]!, interface: 'ib0', source: { address: 0, port: 0x8102 }, senderHwAddress: hws[i]!, now });
    const yiaddr = offer.replies[0]!.message.yiaddr;
    const ack = e.handle({ data: message(DhcpMessageType.DHCPREQUEST, guids[i]!, i, yiaddr), interface: 'ib0', source: { address: 0, port: 0x8102 }, senderHwAddress: hws[i]!, now });
    if (ack.writes.length !== 1) throw new Error('no write');
  }
  return n / ((performance.now() - t0) / 1000);
}

const yieldTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * The same with SQLite: up to `window` exchanges in flight, each ACK released when its write is
 * durable. As in the daemon, exchanges arrive a few per event-loop turn (`perTurn`), not all in one
 * synchronous loop, so a store that commits off the main thread can overlap the engine's work.
 * `worker`: the store's connection and fsyncs on a worker thread (what the daemon uses).
 */
async function doraSqlite(n: number, window: number, worker: boolean, perTurn = 32): Promise<{ rate: number; batch: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ipoib-dhcpd-bench-'));
  try {
    const file = join(dir, 'leases.sqlite');
    const store = worker ? await openSqliteWorkerStore(file) : await openSqliteStore(file);
    const cfg = config();
    await store.configurePools(cfg.subnets.flatMap((s) => s.pools.map((p) => ({ id: p.id, subnetId: s.id, first: p.first, last: p.last }))));
    const e = new ServerEngine({ config: cfg, interfaces: [{ name: 'ib0', address: SERVER }], serverPort: 0x8101 });
    const guids = Array.from({ length: n }, (_, i) => 0x0002c90300000000n + BigInt(i));
    let acked = 0;
    const t0 = performance.now();
    const inflight = new Set<Promise<void>>();
    for (let i = 0; i < n; i++) {
      const now = T0 + i;
      const offer = e.handle({ data: message(DhcpMessageType.DHCPDISCOVER, guids[i]!, i), interface: 'ib0', source: { address: 0, port: 0x8102 }, now });
      const ack = e.handle({ data: message(DhcpMessageType.DHCPREQUEST, guids[i]!, i, offer.replies[0]!.message.yiaddr), interface: 'ib0', source: { address: 0, port: 0x8102 }, now });
      const p: Promise<void> = commitWrites(e, store, ack.writes, now).then((r) => { if (r.ok) acked++; inflight.delete(p); });
      inflight.add(p);
      if (inflight.size >= window) await Promise.race(inflight);
      else if (i % perTurn === perTurn - 1) await yieldTurn();
    }
    await Promise.all(inflight);
    const rate = acked / ((performance.now() - t0) / 1000);
    const batch = store.commits.writes / Math.max(1, store.commits.transactions);
    await store.close();
    if (acked !== n) throw new Error(`only ${acked} of ${n} committed`);
    return { rate, batch };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchResult[]> {
  doraPure(2000); // warm-up
  const pure = median([doraPure(20_000), doraPure(20_000), doraPure(20_000)]);
  const sq = await doraSqlite(20_000, 512, false);
  const wk = await doraSqlite(20_000, 512, true);
  return [
    { suite: 'server', name: 'engine DORA, writes not committed', value: pure, unit: 'DORA/s', note: '20,000 IPoIB clients, /16 pool, 9 requested options, median of 3' },
    {
      suite: 'server', name: 'engine DORA + SQLite commit (fsync) before ACK', value: sq.rate, unit: 'DORA/s',
      ratio: { to: 'engine DORA, writes not committed', value: sq.rate / pure },
      note: `20,000 clients, 512 in flight, ${sq.batch.toFixed(0)} writes per transaction`,
    },
    {
      suite: 'server', name: 'engine DORA + SQLite commit (fsync) on a worker thread before ACK', value: wk.rate, unit: 'DORA/s',
      ratio: { to: 'engine DORA + SQLite commit (fsync) before ACK', value: wk.rate / sq.rate },
      note: `20,000 clients, 512 in flight, ${wk.batch.toFixed(0)} writes per transaction; the daemon's store (lease-db/sqlite-worker-store.ts)`,
    },
  ];
}
