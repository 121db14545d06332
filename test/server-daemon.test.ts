// server/daemon.ts and its parts: the daemon between a DatagramEndpoint and a real SQLite store —
// DORA end to end, no ACK before its lease is durable, a lost database (no answers, counted, then
// resumed), reload keeping leases, floods that must not stall a good client, Prometheus metrics,
// the Kea-style control socket, SIGTERM-style stop — and on the project's link, 100 emulated hosts
// running the client engine on an in-process fabric. Expectations come from RFC 2131 (§4.1 where
// replies go, §4.3 what they carry), the configuration and the Kea management API's response shape.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { LeaseStoreError } from '../lease-db/errors.js';
import type { Lease, LeaseStore, NewLease } from '../lease-db/lease.js';
import { openSqliteStore } from '../lease-db/sqlite-store.js';
import { openSqliteWorkerStore } from '../lease-db/sqlite-worker-store.js';
import type { DatagramEndpoint, DatagramMeta, SendOptions } from '../link/ipoib/udp-socket.js';
import { Fabric } from '../link/fabric/fabric.js';
import { RealScheduler } from '../link/fabric/scheduler.js';
import { InProcessTransport } from '../link/fabric/transport.js';
import { Host } from '../link/ipoib/host.js';
import {
  BOOTREQUEST, DhcpMessageType, FLAG_BROADCAST, OptionCode, decodeDhcpMessage, emptyDhcpMessage, encodeDhcpMessage,
  findOption, getMessageType, ipv4ToString, mellanoxClientId, parseIpv4, type DhcpMessage, type DhcpOption,
} from '../protocol/index.js';
import { ConfigError, parseConfig, type ServerConfig } from '../server/config.js';
import { ControlSocket, sendControlCommand } from '../server/control-socket.js';
import { ServerDaemon, type DaemonLogger, type ServerDaemonOptions, type ServerLink } from '../server/daemon.js';
import { ServerStartError, checkServerPort, startServerOnHost } from '../server/daemon-host.js';
import { ALL_DROP_REASONS } from '../server/daemon-drops.js';
import { ReplyPacer, type PacerClock } from '../server/daemon-pacer.js';
import { ClientDaemon } from '../client/daemon.js';
import { parseArgs } from '../bin/ipoib-dhcpd.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const P = 0x8101;
const SERVER = '10.0.0.1';
const dir = mkdtempSync(join(tmpdir(), 'ipoib-dhcpd-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let dbSeq = 0;
const dbFile = (): string => join(dir, `leases-${++dbSeq}.sqlite`);

function configText(validLifetime = 3600, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    Dhcp4: {
      'valid-lifetime': validLifetime,
      subnet4: [{
        id: 1, subnet: '10.0.0.0/24', interface: 'ib0', pools: [{ pool: '10.0.0.10 - 10.0.0.200' }],
        'option-data': [{ name: 'routers', data: '10.0.0.1' }],
      }],
      ...extra,
    },
  });
}
const config = (validLifetime = 3600, extra: Record<string, unknown> = {}): ServerConfig =>
  parseConfig(configText(validLifetime, extra), 'test.conf');

/** A DatagramEndpoint the test feeds and reads. */
class FakeEndpoint implements DatagramEndpoint {
  readonly sent: { buf: Buffer; address: string; port: number; opts: SendOptions | undefined; message: DhcpMessage }[] = [];
  private handlers: ((buf: Buffer, meta: DatagramMeta) => void)[] = [];
  closed = false;
  constructor(private readonly events: string[] = []) {}
  send(buf: Buffer, address: string, port: number, opts?: SendOptions): void {
    const message = decodeDhcpMessage(buf);
    this.events.push(`send ${getMessageType(message)}`);
    this.sent.push({ buf, address, port, opts, message });
  }
  onMessage(h: (buf: Buffer, meta: DatagramMeta) => void): void { this.handlers.push(h); }
  close(): void { this.closed = true; }
  inject(buf: Buffer, from = '0.0.0.0', port = P + 1): void {
    const meta: DatagramMeta = { address: from, port, interface: 'ib0', hwAddress: undefined, destination: '255.255.255.255' };
    for (const h of this.handlers) h(buf, meta);
  }
  ofType(type: number, xid?: number): DhcpMessage[] {
    return this.sent.map((s) => s.message).filter((m) => getMessageType(m) === type && (xid === undefined || m.xid === xid));
  }
}

/** A LeaseStore around SQLite that can hold writes after they are durable (gate) or fail (down). */
class TestStore implements LeaseStore {
  readonly backend = 'sqlite' as const;
  down = false;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  constructor(readonly inner: LeaseStore, private readonly events: string[] = []) {}
  get location(): string { return this.inner.location; }
  hold(): void { this.gate = new Promise((r) => { this.open = r; }); }
  unhold(): void { this.open?.(); this.gate = null; this.open = null; }
  private check(): void {
    if (this.down) throw new LeaseStoreError('DB_UNAVAILABLE', this.location, 'test: database unreachable');
  }
  private async write(fn: () => Promise<Lease>): Promise<Lease> {
    this.check();
    const l = await fn();
    this.events.push('durable');
    if (this.gate !== null) await this.gate;
    this.events.push('resolved');
    return l;
  }
  async configurePools(p: Parameters<LeaseStore['configurePools']>[0]): Promise<void> { this.check(); return this.inner.configurePools(p); }
  add(l: NewLease): Promise<Lease> { return this.write(() => this.inner.add(l)); }
  update(l: Lease): Promise<Lease> { return this.write(() => this.inner.update(l)); }
  async delete(a: number): Promise<boolean> { this.check(); return this.inner.delete(a); }
  async get(a: number): Promise<Lease | null> { this.check(); return this.inner.get(a); }
  async getByClientId(s: number, c: Buffer): Promise<Lease | null> { this.check(); return this.inner.getByClientId(s, c); }
  async getByPortGuid(g: bigint): Promise<Lease[]> { this.check(); return this.inner.getByPortGuid(g); }
  async getByHwaddr(h: Buffer): Promise<Lease[]> { this.check(); return this.inner.getByHwaddr(h); }
  async list(q?: Parameters<LeaseStore['list']>[0]): Promise<Lease[]> { this.check(); return this.inner.list(q); }
  async allocate(r: Parameters<LeaseStore['allocate']>[0]): Promise<Lease> { this.check(); return this.inner.allocate(r); }
  async decline(a: number, h: number, n: number, s: string): Promise<Lease> { this.check(); return this.inner.decline(a, h, n, s); }
  async release(a: number, c: Buffer | null, n: number, s: string): Promise<Lease | null> { this.check(); return this.inner.release(a, c, n, s); }
  async expire(n: number, l?: number): Promise<Lease[]> { this.check(); return this.inner.expire(n, l); }
  async stats(n?: number): Promise<Awaited<ReturnType<LeaseStore['stats']>>> { this.check(); return this.inner.stats(n); }
  close(): Promise<void> { return this.inner.close(); }
}

interface LogLine { level: string; obj: object; msg: string }
function captureLog(): { log: DaemonLogger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: object, msg: string): void => { lines.push({ level, obj, msg }); };
  return { lines, log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };
const GUID0 = 0x7cfe900300292600n;

function msg(type: number, o: { guid?: bigint; xid?: number; requested?: number; serverId?: number; ciaddr?: number } = {}): Buffer {
  const m = emptyDhcpMessage(BOOTREQUEST);
  m.htype = 32; m.hlen = 0; m.xid = o.xid ?? 0x1000; m.flags = FLAG_BROADCAST; m.ciaddr = o.ciaddr ?? 0;
  const opts: DhcpOption[] = [
    { code: OptionCode.MESSAGE_TYPE, data: Buffer.from([type]) },
    { code: OptionCode.CLIENT_IDENTIFIER, data: mellanoxClientId(o.guid ?? GUID0) },
  ];
  if (o.requested !== undefined) opts.push({ code: OptionCode.REQUESTED_ADDRESS, data: u32(o.requested) });
  if (o.serverId !== undefined) opts.push({ code: OptionCode.SERVER_IDENTIFIER, data: u32(o.serverId) });
  opts.push({ code: OptionCode.PARAMETER_REQUEST_LIST, data: Buffer.from([1, 3, 51, 54]) });
  m.options = opts;
  return encodeDhcpMessage(m);
}

interface Rig { daemon: ServerDaemon; ep: FakeEndpoint; store: TestStore; events: string[]; lines: LogLine[] }

async function rig(
  t: { teardown(fn: () => unknown): void },
  o: { cfg?: ServerConfig; configLoader?: () => ServerConfig; probeMs?: number; daemon?: Partial<ServerDaemonOptions>; worker?: boolean } = {},
): Promise<Rig> {
  const events: string[] = [];
  const store = new TestStore(o.worker === true ? await openSqliteWorkerStore(dbFile()) : await openSqliteStore(dbFile()), events);
  const ep = new FakeEndpoint(events);
  const { log, lines } = captureLog();
  const link: ServerLink = { name: 'ib0', address: parseIpv4(SERVER), endpoint: ep };
  const daemon = await ServerDaemon.start({
    config: o.cfg ?? config(), store, links: [link], serverPort: P, log, dbProbeIntervalMs: o.probeMs ?? 20,
    ...(o.configLoader !== undefined ? { configLoader: o.configLoader } : {}),
    ...o.daemon,
  });
  t.teardown(() => daemon.stop());
  return { daemon, ep, store, events, lines };
}

/** DISCOVER -> OFFER -> REQUEST -> ACK for one client; returns the ACKed address. */
async function dora(r: Rig, guid: bigint, xid: number): Promise<number> {
  r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid, xid }));
  await waitFor(`OFFER xid ${xid}`, () => r.ep.ofType(DhcpMessageType.DHCPOFFER, xid).length > 0);
  const offer = r.ep.ofType(DhcpMessageType.DHCPOFFER, xid)[0]!;
  r.ep.inject(msg(DhcpMessageType.DHCPREQUEST, { guid, xid, requested: offer.yiaddr, serverId: parseIpv4(SERVER) }));
  await waitFor(`ACK xid ${xid}`, () => r.ep.ofType(DhcpMessageType.DHCPACK, xid).length > 0);
  return r.ep.ofType(DhcpMessageType.DHCPACK, xid)[0]!.yiaddr;
}

for (const worker of [false, true]) {
  t.test(`DORA end to end${worker ? ' (the store on its worker thread)' : ''}: the OFFER and ACK go to 255.255.255.255:P+1 and the lease is durable in SQLite`, async (t) => {
    const r = await rig(t, { worker });
    const a = await dora(r, GUID0, 0x11);
    t.ok(a >= parseIpv4('10.0.0.10') && a <= parseIpv4('10.0.0.200'), `address ${ipv4ToString(a)} is in the pool`);
    const sent = r.ep.sent.map((s) => `${s.address}:${s.port}`);
    t.same(sent, [`255.255.255.255:${P + 1}`, `255.255.255.255:${P + 1}`], 'RFC 4390 client (BROADCAST flag, no address): broadcast to P + 1');
    const ack = r.ep.ofType(DhcpMessageType.DHCPACK)[0]!;
    t.equal(ack.htype, 32, 'htype 32 kept'); t.equal(ack.hlen, 0, 'hlen 0 kept');
    t.same(findOption(ack.options, OptionCode.CLIENT_IDENTIFIER), mellanoxClientId(GUID0), 'option 61 echoed (RFC 6842)');
    t.equal(findOption(ack.options, OptionCode.LEASE_TIME)?.readUInt32BE(0), 3600, 'valid-lifetime from the config');
    const stored = await r.store.inner.get(a);
    t.equal(stored?.state, 'bound', 'the store holds a bound lease');
    t.same(stored?.clientId, mellanoxClientId(GUID0), 'keyed on the client identifier');
    t.equal(r.daemon.stats.commits, 1, 'one commit (the REQUEST; the OFFER writes nothing)');
  });
}

t.test('no ACK leaves before its lease write resolves', async (t) => {
  const r = await rig(t);
  r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { xid: 0x21 }));
  await waitFor('OFFER', () => r.ep.sent.length === 1);
  const offer = r.ep.sent[0]!.message;
  r.store.hold();
  r.ep.inject(msg(DhcpMessageType.DHCPREQUEST, { xid: 0x21, requested: offer.yiaddr, serverId: parseIpv4(SERVER) }));
  await waitFor('the write to be durable', () => r.events.includes('durable'));
  await new Promise((res) => setTimeout(res, 50));
  t.equal(r.ep.ofType(DhcpMessageType.DHCPACK).length, 0, 'no ACK while the commit is unresolved');
  t.equal(r.daemon.commitsInFlight, 1, 'one commit in flight');
  r.store.unhold();
  await waitFor('ACK', () => r.ep.ofType(DhcpMessageType.DHCPACK).length === 1);
  const iResolved = r.events.indexOf('resolved');
  const iAck = r.events.indexOf(`send ${DhcpMessageType.DHCPACK}`);
  t.ok(iResolved >= 0 && iResolved < iAck, `commit resolved (${iResolved}) before the ACK was sent (${iAck}): ${r.events.join(', ')}`);
});

t.test('a lost database: no ACK, counted as db-unavailable, receiving goes on, answers resume', async (t) => {
  const r = await rig(t, { probeMs: 30 });
  r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { xid: 0x31 }));
  await waitFor('OFFER', () => r.ep.sent.length === 1);
  const offer = r.ep.sent[0]!.message;
  r.store.down = true;
  const req = msg(DhcpMessageType.DHCPREQUEST, { xid: 0x31, requested: offer.yiaddr, serverId: parseIpv4(SERVER) });
  r.ep.inject(req);
  await waitFor('the daemon to notice', () => r.daemon.databaseDown);
  for (let i = 0; i < 5; i++) r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid: GUID0 + 9n, xid: 0x3100 + i }));
  await new Promise((res) => setTimeout(res, 60));
  t.equal(r.ep.ofType(DhcpMessageType.DHCPACK).length, 0, 'no ACK while the store is down');
  t.equal(r.ep.sent.length, 1, 'nothing at all answered while the store is down (only the earlier OFFER)');
  t.equal(r.daemon.stats.drops['db-unavailable'], 6, 'the failed REQUEST and 5 DISCOVERs counted as db-unavailable');
  t.equal(r.daemon.stats.received['discover'], 6, 'messages are still received and counted by type');
  t.match(r.lines.find((l) => l.level === 'error')?.msg ?? '', /^cid=ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:00 .* lease database unavailable/,
    'one error line, starting with the client label');
  t.match(await r.daemon.metrics.text(), /dhcp4_drops_total\{reason="db-unavailable"\} 6/, 'and in the metrics');
  r.store.down = false;
  await waitFor('the store to be back', () => !r.daemon.databaseDown, 3000);
  r.ep.inject(req);
  await waitFor('ACK after recovery', () => r.ep.ofType(DhcpMessageType.DHCPACK).length === 1);
  t.equal(r.ep.ofType(DhcpMessageType.DHCPACK)[0]!.yiaddr, offer.yiaddr, 'the retried REQUEST is ACKed with the offered address');
  t.equal((await r.store.inner.get(offer.yiaddr))?.state, 'bound', 'and the lease is durable');
});

t.test('reload keeps leases; a bad configuration keeps the running one and logs one line', async (t) => {
  let next: () => ServerConfig = () => config(7200);
  const r = await rig(t, { configLoader: () => next() });
  const a = await dora(r, GUID0, 0x41);
  const res = await r.daemon.reload();
  t.same(res, { ok: true, leases: 1 }, 'reloaded with the lease kept');
  t.equal(r.daemon.config.subnets[0]!.lifetimes.valid, 7200, 'the new configuration is in force');
  r.ep.inject(msg(DhcpMessageType.DHCPREQUEST, { xid: 0x42, ciaddr: a }));
  await waitFor('renewal ACK', () => r.ep.ofType(DhcpMessageType.DHCPACK, 0x42).length === 1);
  const ack = r.ep.ofType(DhcpMessageType.DHCPACK, 0x42)[0]!;
  t.equal(ack.yiaddr, a, 'RENEWING after reload: same address');
  t.equal(findOption(ack.options, OptionCode.LEASE_TIME)?.readUInt32BE(0), 7200, 'with the new lease time');
  next = () => parseConfig('{"Dhcp4": {"valid-lifetime": -5}}', 'broken.conf');
  t.throws(() => next(), ConfigError);
  const bad = await r.daemon.reload();
  t.equal(bad.ok, false, 'a bad configuration is refused');
  const errs = r.lines.filter((l) => l.level === 'error');
  t.equal(errs.length, 1, 'one log line');
  t.match(errs[0]!.msg, /broken\.conf: Dhcp4\.valid-lifetime/, 'naming the file and the JSON path');
  t.equal(r.daemon.config.subnets[0]!.lifetimes.valid, 7200, 'the running configuration stays');
  t.equal(r.daemon.engine.lease(a)?.state, 'bound', 'and the lease too');
});

t.test('a malformed flood and one client\'s flood do not stall a good client', async (t) => {
  const r = await rig(t);
  const junk: Buffer[] = [];
  for (let i = 0; i < 3000; i++) {
    const n = (i * 37) % 600;
    const b = Buffer.alloc(n);
    for (let k = 0; k < n; k++) b[k] = (i * 131 + k * 7) & 0xff;
    junk.push(b);
  }
  const t0 = Date.now();
  for (const b of junk.slice(0, 1500)) r.ep.inject(b);
  for (let i = 0; i < 300; i++) r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid: GUID0 + 1n, xid: 0x5000 + i }));
  const good = dora(r, GUID0 + 2n, 0x51);
  for (const b of junk.slice(1500)) r.ep.inject(b);
  const a = await good;
  t.ok(a !== 0, `the good client got ${ipv4ToString(a)} in ${Date.now() - t0} ms`);
  t.ok((r.daemon.stats.drops['malformed'] ?? 0) > 2900, `malformed datagrams counted (${r.daemon.stats.drops['malformed']})`);
  t.ok((r.daemon.stats.drops['rate-limited'] ?? 0) > 200, `the flooding client is rate limited (${r.daemon.stats.drops['rate-limited']})`);
  t.ok(r.ep.ofType(DhcpMessageType.DHCPOFFER).filter((m) => m.xid >= 0x5000).length <= 25, 'the flooding client got at most its burst answered');
});

t.test('overload: queued messages that finish exchanges go before DISCOVERs; non-DHCP bytes are never queued', async (t) => {
  // turnBudgetMs 0: every DHCP datagram is queued, as under overload (daemon.ts "Overload" 2-3).
  const r = await rig(t, { daemon: { turnBudgetMs: 0 } });
  r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid: GUID0 + 1n, xid: 0x71 }));
  r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid: GUID0 + 2n, xid: 0x72 }));
  r.ep.inject(msg(DhcpMessageType.DHCPINFORM, { guid: GUID0 + 3n, xid: 0x73, ciaddr: parseIpv4('10.0.0.50') }));
  r.ep.inject(Buffer.from('not dhcp at all'));
  t.equal(r.daemon.stats.drops['malformed'], 1, 'a datagram that is not DHCP is dropped at once, not queued');
  t.equal(r.daemon.queued, 3, 'three DHCP messages queued');
  await waitFor('three answers', () => r.ep.sent.length === 3);
  t.same(r.ep.sent.map((x) => x.message.xid), [0x73, 0x71, 0x72], 'the INFORM first, then the DISCOVERs in order');
  t.equal(r.daemon.queued, 0, 'queue drained');
});

t.test('overload: a queued DISCOVER or REQUEST past its age is dropped as stale; a RELEASE never is', async (t) => {
  const r = await rig(t, { daemon: { turnBudgetMs: 0, discoverMaxAgeMs: -1, requestMaxAgeMs: -1 } });
  for (let i = 0; i < 3; i++) r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid: GUID0 + BigInt(i), xid: 0x80 + i }));
  r.ep.inject(msg(DhcpMessageType.DHCPREQUEST, { xid: 0x90, requested: parseIpv4('10.0.0.20'), serverId: parseIpv4(SERVER) }));
  r.ep.inject(msg(DhcpMessageType.DHCPRELEASE, { xid: 0x91, ciaddr: parseIpv4('10.0.0.21') }));
  await waitFor('the queue to drain', () => r.daemon.queued === 0);
  t.equal(r.daemon.stats.drops['stale'], 4, 'three DISCOVERs and the REQUEST stale');
  t.equal(r.daemon.stats.received['discover'], 3, 'and still counted as received');
  t.equal(r.daemon.stats.received['release'], 1, 'the RELEASE reached the engine');
  t.equal(r.daemon.stats.drops['release-invalid'], 1, '(which refused it: no such lease)');
  t.equal(r.ep.sent.length, 0, 'nothing answered');
  t.match(await r.daemon.metrics.text(), /dhcp4_drops_total\{reason="stale"\} 4/, 'in the metrics');
});

t.test('overload: with commits in flight past the bound, DISCOVERs are shed first, then REQUESTs; held ACKs still leave', async (t) => {
  const r = await rig(t, { daemon: { maxInFlight: 2 } });
  const offers: DhcpMessage[] = [];
  for (const [i, xid] of [[1, 0xa1], [2, 0xa2]] as const) {
    r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid: GUID0 + BigInt(i), xid }));
    await waitFor(`OFFER ${xid}`, () => r.ep.ofType(DhcpMessageType.DHCPOFFER, xid).length === 1);
    offers.push(r.ep.ofType(DhcpMessageType.DHCPOFFER, xid)[0]!);
  }
  r.store.hold();
  r.ep.inject(msg(DhcpMessageType.DHCPREQUEST, { guid: GUID0 + 1n, xid: 0xa1, requested: offers[0]!.yiaddr, serverId: parseIpv4(SERVER) }));
  await waitFor('one commit in flight', () => r.daemon.commitsInFlight === 1);
  r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid: GUID0 + 3n, xid: 0xa3 }));
  t.equal(r.daemon.stats.drops['overloaded'], 1, 'at half the bound a new DISCOVER is shed');
  r.ep.inject(msg(DhcpMessageType.DHCPREQUEST, { guid: GUID0 + 2n, xid: 0xa2, requested: offers[1]!.yiaddr, serverId: parseIpv4(SERVER) }));
  await waitFor('two commits in flight', () => r.daemon.commitsInFlight === 2);
  t.equal(r.daemon.stats.drops['overloaded'], 1, 'a REQUEST is still taken below the bound');
  r.ep.inject(msg(DhcpMessageType.DHCPREQUEST, { guid: GUID0 + 4n, xid: 0xa4, requested: parseIpv4('10.0.0.99'), serverId: parseIpv4(SERVER) }));
  t.equal(r.daemon.stats.drops['overloaded'], 2, 'at the bound a REQUEST is shed too');
  t.equal(r.daemon.stats.received['request'], 3, 'every REQUEST counted as received');
  r.store.unhold();
  await waitFor('both ACKs', () => r.ep.ofType(DhcpMessageType.DHCPACK).length === 2);
  r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid: GUID0 + 3n, xid: 0xa5 }));
  await waitFor('OFFER after the backlog', () => r.ep.ofType(DhcpMessageType.DHCPOFFER, 0xa5).length === 1);
  t.pass('served again once the commits are durable');
});

t.test('metrics: counters by type and reason, pool utilisation, commit latency; served over HTTP', async (t) => {
  const r = await rig(t);
  await dora(r, GUID0, 0x61);
  r.ep.inject(Buffer.from('not dhcp'));
  const text = await r.daemon.metrics.text();
  t.match(text, /dhcp4_received_total\{type="discover"\} 1/);
  t.match(text, /dhcp4_received_total\{type="request"\} 1/);
  t.match(text, /dhcp4_received_total\{type="none"\} 1/);
  t.match(text, /dhcp4_sent_total\{type="offer"\} 1/);
  t.match(text, /dhcp4_sent_total\{type="ack"\} 1/);
  t.match(text, /dhcp4_drops_total\{reason="malformed"\} 1/);
  for (const reason of ALL_DROP_REASONS) t.match(text, new RegExp(`dhcp4_drops_total\\{reason="${reason}"\\} \\d`), `drop reason ${reason} exported`);
  t.match(text, /dhcp4_pool_addresses\{subnet="1",prefix="10\.0\.0\.0\/24",pool="1",state="assigned"\} 1/, 'one address assigned in pool 1');
  t.match(text, /dhcp4_pool_addresses\{subnet="1",prefix="10\.0\.0\.0\/24",pool="1",state="total"\} 191/, '10.0.0.10-200 is 191 addresses');
  t.match(text, /dhcp4_pool_utilisation_ratio\{subnet="1",prefix="10\.0\.0\.0\/24",pool="1"\} 0\.005/, 'utilisation 1/191');
  t.match(text, /dhcp4_commit_duration_seconds_count 1/, 'one commit timed');
  const port = await r.daemon.metrics.listen('127.0.0.1', 0);
  const body = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => { b += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: b }));
    }).on('error', reject).end();
  });
  t.equal(body.status, 200);
  t.match(body.type, /text\/plain/);
  t.match(body.body, /dhcp4_sent_total\{type="ack"\} 1/, 'the same counters over HTTP');
});

t.test('control socket: Kea-style commands and responses', async (t) => {
  const r = await rig(t, { configLoader: () => config(1800) });
  const a = await dora(r, GUID0, 0x71);
  const path = join(dir, 'ctl.sock');
  const cs = await ControlSocket.listen(path, r.daemon);
  t.teardown(() => cs.close());
  const get = await sendControlCommand(path, 'lease4-get', { 'ip-address': ipv4ToString(a) });
  t.equal(get.result, 0);
  t.equal(get.text, 'IPv4 lease found.');
  t.match(get.arguments, { 'ip-address': ipv4ToString(a), 'subnet-id': 1, 'valid-lft': 3600, state: 0, 'ipoib-state': 'bound',
    'client-id': 'ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:00', 'port-guid': '0x7cfe900300292600' });
  const byCid = await sendControlCommand(path, 'lease4-get', { 'identifier-type': 'client-id', identifier: 'ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:00', 'subnet-id': 1 });
  t.equal(byCid.arguments?.['ip-address'], ipv4ToString(a), 'found by client-id');
  const all = await sendControlCommand(path, 'lease4-get-all');
  t.equal(all.result, 0);
  t.equal((all.arguments?.['leases'] as unknown[]).length, 1, 'one lease');
  const none = await sendControlCommand(path, 'lease4-get-all', { subnets: [9] });
  t.equal(none.result, 3, 'empty result for a subnet without leases');
  const stats = await sendControlCommand(path, 'statistic-get-all');
  t.equal(stats.result, 0);
  t.same(stats.arguments?.['pkt4-ack-sent']?.constructor, Array, 'statistics as [value, timestamp] samples');
  t.equal((stats.arguments?.['pkt4-ack-sent'] as [number, string][])[0]![0], 1);
  t.equal((stats.arguments?.['pkt4-received'] as [number, string][])[0]![0], 2);
  const reload = await sendControlCommand(path, 'config-reload');
  t.same(reload, { result: 0, text: 'Configuration successful.' });
  t.equal(r.daemon.config.subnets[0]!.lifetimes.valid, 1800, 'config-reload re-read the configuration');
  const del = await sendControlCommand(path, 'lease4-del', { 'ip-address': ipv4ToString(a) });
  t.same(del, { result: 0, text: 'IPv4 lease deleted.' });
  t.equal((await sendControlCommand(path, 'lease4-get', { 'ip-address': ipv4ToString(a) })).result, 3, 'gone from the store');
  t.equal(r.daemon.engine.lease(a), undefined, 'and from the engine');
  t.equal((await sendControlCommand(path, 'lease4-del', { 'ip-address': ipv4ToString(a) })).result, 3, 'deleting again: not found');
  t.equal((await sendControlCommand(path, 'bogus')).result, 2, 'unsupported command: result 2');
  t.equal((await sendControlCommand(path, 'lease4-get', { 'ip-address': 'x' })).result, 1, 'bad argument: result 1');
});

t.test('stop: in-flight commits finish and their replies leave, then the store is closed', async (t) => {
  const r = await rig(t);
  r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { xid: 0x81 }));
  await waitFor('OFFER', () => r.ep.sent.length === 1);
  r.store.hold();
  r.ep.inject(msg(DhcpMessageType.DHCPREQUEST, { xid: 0x81, requested: r.ep.sent[0]!.message.yiaddr, serverId: parseIpv4(SERVER) }));
  await waitFor('durable', () => r.events.includes('durable'));
  const stopped = r.daemon.stop();
  r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid: GUID0 + 5n, xid: 0x82 }));
  t.equal(r.ep.sent.length, 1, 'nothing new is handled once stopping');
  r.store.unhold();
  await stopped;
  t.equal(r.ep.ofType(DhcpMessageType.DHCPACK).length, 1, 'the in-flight ACK was sent');
  t.ok(r.ep.closed, 'endpoint closed');
  await t.rejects(r.store.inner.get(1), { code: 'CLOSED' }, 'store closed');
});

t.test('reply pacing: replies beyond the bucket leave over 1 ms ticks in order, at the floor rate or twice the rate commits started', async (t) => {
  let now = 0;
  const timers: { at: number; fn: () => void }[] = [];
  const clock: PacerClock = { now: () => now, later: (fn, ms) => { timers.push({ at: now + ms, fn }); } };
  /** Advances the fake clock by `ms`, running the timers that fall due (one 1 ms tick at a time). */
  const advance = (ms: number): void => {
    for (const end = now + ms; now < end;) {
      now += 1;
      for (let i = 0; i < timers.length;) {
        if (timers[i]!.at <= now) timers.splice(i, 1)[0]!.fn(); else i++;
      }
    }
  };
  const out: number[] = [];
  const pacer = new ReplyPacer<number>((x) => out.push(x), { burst: 4, minPerMs: 2, factor: 2, windowMs: 10 }, clock);
  for (let i = 0; i < 3; i++) pacer.submit(i);
  t.same(out, [0, 1, 2], 'within the bucket: sent at once');
  for (let i = 3; i < 12; i++) pacer.submit(i);
  t.same(out, [0, 1, 2, 3], 'the bucket empty: the rest wait');
  t.equal(pacer.backlog, 8);
  advance(1);
  t.same(out.length, 6, 'one tick later: the floor rate (2 per ms)');
  advance(3);
  t.same(out, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 'drained in order');
  t.equal(pacer.backlog, 0);
  t.same(pacer.stats, { delayed: 8, maxBacklog: 8 }, 'what waited is counted');
  // 50 commits started over a 10 ms window: 5 per ms, so the bucket refills at 10 per ms. (The
  // window closes when a reply is submitted; the submit at 14 ms closes one with none started.)
  advance(10);
  pacer.submit(-1);
  for (let i = 0; i < 50; i++) pacer.commitStarted();
  advance(10);
  out.length = 0;
  for (let i = 0; i < 44; i++) pacer.submit(i);
  t.equal(out.length, 4, 'a burst: the bucket (4) at once');
  advance(1);
  t.equal(out.length, 14, 'then 10 per ms: twice the rate commits started at');
  pacer.flush();
  t.equal(out.length, 44, 'flush() sends everything waiting');
  t.same(out, Array.from({ length: 44 }, (_, i) => i), 'in order');
});

t.test('reply pacing in the daemon: ACKs made durable together leave through the pacer; stop() sends those still waiting', async (t) => {
  const r = await rig(t, { daemon: { replyPacing: { burst: 1, minPerMs: 1e-6, windowMs: 1e9 } } });
  const xids = [0xb1, 0xb2, 0xb3];
  const offers: DhcpMessage[] = [];
  for (const [i, xid] of xids.entries()) {
    r.ep.inject(msg(DhcpMessageType.DHCPDISCOVER, { guid: GUID0 + BigInt(i), xid }));
    await waitFor(`OFFER ${xid}`, () => r.ep.ofType(DhcpMessageType.DHCPOFFER, xid).length === 1);
    offers.push(r.ep.ofType(DhcpMessageType.DHCPOFFER, xid)[0]!);
  }
  t.equal(r.ep.sent.length, 3, 'OFFERs (no commit) are not paced');
  r.store.hold();
  for (const [i, xid] of xids.entries()) {
    r.ep.inject(msg(DhcpMessageType.DHCPREQUEST, { guid: GUID0 + BigInt(i), xid, requested: offers[i]!.yiaddr, serverId: parseIpv4(SERVER) }));
  }
  await waitFor('three commits in flight', () => r.daemon.commitsInFlight === 3);
  r.store.unhold();
  await waitFor('the commits', () => r.daemon.commitsInFlight === 0);
  await new Promise((res) => setTimeout(res, 20));
  t.equal(r.ep.ofType(DhcpMessageType.DHCPACK).length, 1, 'one ACK leaves (the bucket holds one token)');
  t.equal(r.daemon.pacer?.backlog, 2, 'two wait for tokens');
  await r.daemon.stop();
  t.same(r.ep.ofType(DhcpMessageType.DHCPACK).map((m) => m.xid).sort(), xids, 'stop() sent the waiting ACKs before closing');
  t.ok(r.ep.closed, 'then closed the endpoint');
});

t.test('ports on the project\'s link, and the CLI', async (t) => {
  t.throws(() => checkServerPort(67, true, false), ServerStartError, '67 refused on the project\'s link');
  t.throws(() => checkServerPort(0x8000, true, false), { code: 'LOW_PORT' }, '0x8000 refused (greater than 0x8000 required)');
  t.doesNotThrow(() => checkServerPort(0x8001, true, false));
  t.doesNotThrow(() => checkServerPort(67, true, true), '--allow-low-port');
  t.doesNotThrow(() => checkServerPort(67, false, false), 'kernel link: 67 is the default');
  t.throws(() => checkServerPort(65535, false, false), { code: 'BAD_PORT' }, 'P + 1 must exist');
  const o = parseArgs(['-p', '33025', '-cf', 'x.conf', '-lf', 'postgres://h/db', '-d', '--fabric', 'fab:9000', '--metrics', '127.0.0.1:9547', 'ib0.8001']);
  t.match(o, { port: 33025, configFile: 'x.conf', leaseDb: 'postgres://h/db', debug: true, link: 'fabric', fabric: 'fab:9000',
    metrics: { host: '127.0.0.1', port: 9547 }, interfaces: ['ib0.8001'] });
  t.throws(() => parseArgs(['--link', 'fabric']), /needs --fabric/);
  t.throws(() => parseArgs(['-p', '70000']), /not a port/);
  // The shim, as an operator runs it (tap's loader hooks removed: they break tsx's).
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  const bad = join(dir, 'bad.conf');
  (await import('node:fs')).writeFileSync(bad, '{"Dhcp4": {"subnet4": [{"id": 1, "subnet": "10.0.0.0/24", "pools": [{"pool": "10.0.1.1 - 10.0.1.9"}]}]}}');
  // tap's process-info hook puts NODE_OPTIONS back into every child's environment: env -u drops it.
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', join(root, 'bin/ipoib-dhcpd'), '-t', '-cf', bad], { env, encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 2, '-t on a bad configuration exits 2');
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, 'one line');
  t.match(lines[0], /^ipoib-dhcpd: bad\.conf: Dhcp4\.subnet4\[0\]\.pools\[0\]\.pool: '10\.0\.1\.1 - 10\.0\.1\.9' /, 'naming the file, the JSON path and the value');
  const good = join(dir, 'good.conf');
  (await import('node:fs')).writeFileSync(good, configText());
  const ok = spawnSync('env', ['-u', 'NODE_OPTIONS', join(root, 'bin/ipoib-dhcpd'), '--check-config', '-cf', good], { env, encoding: 'utf8', timeout: 30_000 });
  t.equal(ok.status, 0, '--check-config on a good configuration exits 0');
});

t.test('on the project\'s link: 100 emulated hosts get distinct addresses; leases carry their 20-byte addresses', async (t) => {
  const sched = new RealScheduler();
  const fabric = new Fabric({ scheduler: sched });
  const transport = new InProcessTransport(fabric);
  const hosts: Host[] = [];
  t.teardown(() => { for (const h of hosts) h.close(); });
  const server = await Host.create(transport, { name: 'dhcp-server', scheduler: sched });
  hosts.push(server);
  // The daemon's own store: SQLite on its worker thread.
  const store = await openSqliteWorkerStore(dbFile());
  const { log, lines } = captureLog();
  const cfg = config(3600, { ipoib: { 'client-rate-limit': { burst: 50, 'per-second': 50 } } });
  const daemon = await startServerOnHost(server, cfg, store, { port: P, interfaces: ['ib0'], log });
  t.teardown(() => daemon.stop());
  t.same(server.addrShow('ib0').map((a) => `${a.address}/${a.prefixlen}`), ['10.0.0.1/24'], 'the server took the subnet\'s first address');
  const N = 100;
  const clients: { host: Host; daemon: ClientDaemon }[] = [];
  for (let i = 0; i < N; i++) {
    const h = await Host.create(transport, { name: `node${String(i).padStart(3, '0')}`, scheduler: sched });
    hosts.push(h);
    h.linkSet('ib0', { up: true });
    clients.push({ host: h, daemon: null as unknown as ClientDaemon });
  }
  await Promise.all(hosts.map((h) => h.iface('ib0').waitCarrier()));
  for (const c of clients) {
    const sock = c.host.udpSocket({ interface: 'ib0' }).bind('0.0.0.0', P + 1);
    sock.setBroadcast(true);
    c.daemon = new ClientDaemon({
      interfaces: [{
        config: { interface: 'ib0', portGuid: c.host.device.port(1).portGuid, probe: { enabled: false }, selectWindowMs: 0 },
        endpoint: sock, serverPort: P, arp: null, configurator: null,
      }],
      leaseFile: null,
    });
  }
  const t0 = Date.now();
  await Promise.all(clients.map((c) => c.daemon.start()));
  await waitFor('every client BOUND', () => clients.every((c) => c.daemon.engine('ib0').state === 'BOUND'), 60_000);
  t.comment(`100 clients bound in ${Date.now() - t0} ms`);
  for (const c of clients) await c.daemon.stop({ release: false });
  const bound = clients.map((c) => c.daemon.engine('ib0').lease!.address);
  t.equal(new Set(bound).size, N, '100 distinct addresses');
  const leases = (await store.list()).filter((l) => l.state === 'bound');
  t.equal(leases.length, N, '100 bound leases in the store');
  let hwOk = 0, guidOk = 0;
  for (const c of clients) {
    const l = leases.find((x) => x.address === c.daemon.engine('ib0').lease!.address);
    // A UD completion carries the sender's QPN and GID, not the flags byte (the RC capability bit,
    // IPOIB-FACTS §3.1), which only ARP reveals: the server records what it saw, bytes 1..19.
    const own = c.host.iface('ib0').hwAddressBytes;
    if (l?.hwaddr?.length === 20 && l.hwaddr.subarray(1).equals(own.subarray(1))) hwOk++;
    if (l?.portGuid === c.host.device.port(1).portGuid) guidOk++;
  }
  t.equal(hwOk, N, 'each lease records its client\'s 20-byte IPoIB hardware address (QPN and GID as received)');
  t.equal(guidOk, N, 'and its port GUID');
  t.equal(daemon.stats.drops['db-unavailable'] ?? 0, 0, 'no store trouble');
  t.ok(lines.some((l) => /^cid=\S+ guid=[0-9a-f]{16} htype=32 hlen=0 xid=0x[0-9a-f]{8} ack/.test(l.msg)), 'log lines begin with the client label');
});
