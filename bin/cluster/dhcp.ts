// ipoib-cluster --addressing dhcp (the default, what `npm start` runs): one server host "dhcpd"
// (ib0 10.0.0.1/16, static) running server/daemon.ts over a UDP socket on its ib0 with a SQLite
// (or PostgreSQL) lease database, and N hosts whose ib0 comes up without an address and is
// addressed by client/daemon.ts: DISCOVER/REQUEST broadcast through the IPoIB broadcast group, an
// ARP probe of the offered address, the lease applied (address, MTU), a gratuitous ARP. Then every
// host pings the server and one random peer (or every pair with --ping-all).
//
// Ports follow the OFED/ISC convention (DESIGN.md): the server listens on P and answers on P + 1;
// P defaults to 0x8043 (32835): above 0x8000 as the OFED release notes ask, and ending in 0x43/0x44
// like 67/68. The generated configuration: one subnet 10.0.0.0/16, a pool of --pool-size addresses
// from 10.0.0.10, valid-lifetime 3600 s, interface-mtu 2044 in datagram mode (the broadcast group's
// MTU - 4) or 65520 in connected mode (so a connected-mode client keeps its large MTU), and
// link-unicast replies (DESIGN.md "Scale": an OFFER/ACK reaches one port, not every port).
import { mkdtempSync, rmSync } from 'node:fs';
import type { StaticOptions } from './static.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ClientDaemon } from '../../client/daemon.js';
import { isLeaseStoreError } from '../../lease-db/errors.js';
import type { LeaseStore } from '../../lease-db/lease.js';
import { isPgSpec, openLeaseStore } from '../../lease-db/open.js';
import { allLeases } from '../../lease-db/transfer.js';
import type { DatagramEndpoint, DatagramMeta, Host, IpoibMode, SendOptions } from '../../link/ipoib/index.js';
import { formatClientId, ipv4ToString, parseIpv4 } from '../../protocol/index.js';
import { parseConfig, type ServerConfig } from '../../server/config.js';
import { ServerDaemon, poolsOf } from '../../server/daemon.js';
import { CliError } from '../cli.js';
import { startCapture } from './capture.js';
import { Cluster, ib0Address, nodeNames, nodeRow } from './cluster.js';
import { HostArpOps, HostConfigurator, randomSource, virtualClock } from './host-ports.js';
import type { Progress } from './progress.js';
import { ALL_PAIRS_LIMIT, allPairs, runPings, samplePeers, type Peer, type PingTarget } from './reach.js';
import { totals, type ClusterReport, type NodeReport } from './report.js';

export const DEFAULT_SERVER_PORT = 0x8043;
export const SERVER_ADDRESS = 0x0a000001;
export const POOL_FIRST = 0x0a00000a;
/** 10.0.0.10 .. 10.0.253.241 stays inside 10.0.0.0/16. */
export const MAX_POOL_SIZE = 65_000;
export const LEASE_TIME = 3600;
/** Virtual time every client gets to be bound: DISCOVER retransmissions reach 64 s apart (RFC 2131 §4.1). */
export const BIND_LIMIT_MS = 600_000;
/**
 * Each client waits a random time in [0, BOOT_WINDOW_MS) before its first DISCOVER (RFC 2131 §4.4.1
 * suggests 1 to 10 s; ISC dhclient's initial-delay). Hosts never power on in the same microsecond,
 * and a storm compressed into one instant would only overflow the server's receive ring.
 */
export const BOOT_WINDOW_MS = 1000;

/** The static form's options, plus what the DHCP server needs. */
export interface DhcpOptions extends StaticOptions {
  leaseDb?: string | undefined;
  port: number;
  poolSize: number;
  /** Servers sharing one PostgreSQL lease database (default 1). */
  servers?: number;
}

/** The kea-dhcp4.conf the cluster's server runs with. */
export function clusterConfig(poolSize: number, mode: IpoibMode, leaseFile: string): ServerConfig {
  const last = POOL_FIRST + poolSize - 1;
  return parseConfig(JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: ['ib0'] },
      'lease-database': { type: 'sqlite', name: leaseFile },
      'valid-lifetime': LEASE_TIME,
      ipoib: { 'link-unicast-replies': true },
      subnet4: [{
        id: 1, subnet: '10.0.0.0/16', interface: 'ib0',
        pools: [{ pool: `${ipv4ToString(POOL_FIRST)} - ${ipv4ToString(last)}` }],
        'option-data': [{ name: 'interface-mtu', data: mode === 'connected' ? '65520' : '2044' }],
      }],
    },
  }), 'ipoib-cluster (generated)');
}

/** --lease-db: sqlite:FILE, a bare FILE, or a postgres(ql):// URL. */
export function leaseDbSpec(text: string): string {
  if (isPgSpec(text)) return text;
  const file = text.replace(/^sqlite:/i, '');
  if (file === '') throw new CliError(`--lease-db '${text}': no file name`);
  return file;
}

interface Client {
  host: Host;
  daemon: ClientDaemon;
  configurator: HostConfigurator;
  arp: HostArpOps;
  startedAt: number;
}

export async function runDhcp(o: DhcpOptions): Promise<ClusterReport> {
  if (o.nodes > o.poolSize) throw new CliError(`--nodes ${o.nodes} is more than the pool holds (--pool-size ${o.poolSize})`);
  if (o.poolSize > MAX_POOL_SIZE) throw new CliError(`--pool-size ${o.poolSize} does not fit 10.0.0.0/16 (at most ${MAX_POOL_SIZE})`);
  if (o.port + 1 > 0xffff) throw new CliError(`--port ${o.port}: the clients' port ${o.port + 1} is not a UDP port`);
  const scratch = o.leaseDb === undefined ? mkdtempSync(join(tmpdir(), 'ipoib-cluster-')) : undefined;
  const spec = o.leaseDb === undefined ? join(scratch!, 'dhcp4.leases.sqlite') : leaseDbSpec(o.leaseDb);
  const config = clusterConfig(o.poolSize, o.mode, spec);
  // The database is opened and its pools declared before anything else starts: a database that
  // does not answer is a bad option (exit 2), found before a single host is built.
  let store: LeaseStore | undefined;
  try {
    store = await openLeaseStore(spec);
    await store.configurePools(poolsOf(config));
  } catch (err) {
    await store?.close().catch(() => undefined);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
    const msg = (err as Error).message;
    throw new CliError(msg.startsWith(spec) ? `--lease-db ${msg}` : `--lease-db ${o.leaseDb ?? spec}: ${msg}`);
  }

  const epochMs = Date.now();
  const cluster = new Cluster({ seed: o.seed, dhcpPorts: [o.port, o.port + 1] });
  const clock = virtualClock(cluster.scheduler, epochMs);
  const capture = startCapture(cluster.fabric, { ipoib: o.pcap, raw: o.pcapRaw }, epochMs);
  const names = nodeNames(o.nodes);
  let server: Host | undefined;
  let hosts: Host[] = [];
  let daemon: ServerDaemon | undefined;
  try {
    cluster.beginPhase('attach');
    let attached = 0;
    o.progress.start(() => `attaching HCAs: ${attached}/${o.nodes + 1}`);
    const srv = (await cluster.createHosts(['dhcpd'], o.mode))[0]!;
    server = srv;
    hosts = await cluster.createHosts(names, o.mode, (n) => { attached = n + 1; });
    srv.addrAdd('ib0', `${ipv4ToString(SERVER_ADDRESS)}/16`);

    cluster.beginPhase('bring-up (SA joins)');
    let carriers = 0;
    o.progress.start(() => `ib0 up: carrier on ${carriers}/${o.nodes + 1}`);
    await cluster.bringUp([srv, ...hosts], (n) => { carriers = n; });

    const sock = srv.udpSocket({ interface: 'ib0' }).bind('0.0.0.0', o.port);
    sock.setBroadcast(true);
    const timed = new TimedEndpoint(sock);
    try {
      daemon = await ServerDaemon.start({
        config, store, serverPort: o.port, now: clock.now, serverName: 'dhcpd',
        links: [{ name: 'ib0', address: SERVER_ADDRESS, endpoint: timed }],
      });
    } catch (err) {
      if (isLeaseStoreError(err)) throw new CliError(`--lease-db ${o.leaseDb ?? spec}: ${err.message}`);
      throw err;
    }

    cluster.beginPhase('dhcp (DORA, ARP probe, announce)');
    let bound = 0;
    let allBound!: () => void;
    const everyoneBound = new Promise<void>((resolve) => { allBound = resolve; });
    const rnd = randomSource(cluster.random);
    const clients: Client[] = hosts.map((host) => {
      const endpoint = host.udpSocket({ interface: 'ib0' }).bind('0.0.0.0', o.port + 1);
      endpoint.setBroadcast(true);
      const configurator = new HostConfigurator(host, clock, () => { if (++bound === o.nodes) allBound(); });
      const arp = new HostArpOps(host, cluster.random);
      const portGuid = host.device.queryPort(1).portGuid;
      const d = new ClientDaemon({
        interfaces: [{
          config: {
            interface: 'ib0', portGuid, hostName: host.name, link: { mode: o.mode, datagramMtu: host.iface('ib0').mcastMtu },
            initialDelayMinMs: 0, initialDelayMaxMs: BOOT_WINDOW_MS,
          },
          endpoint, serverPort: o.port, arp, configurator,
        }],
        clock, random: rnd, leaseFile: null, hookScript: null,
      });
      return { host, daemon: d, configurator, arp, startedAt: clock.now() };
    });
    o.progress.start(() => `booting: ${bound}/${o.nodes} bound, ${daemon!.stats.sent['offer'] ?? 0} OFFERs, ${daemon!.stats.sent['ack'] ?? 0} ACKs, ` +
      `${clients.reduce((n, c) => n + c.arp.probes, 0)} ARP probes, virtual t=${(cluster.scheduler.now() / 1000).toFixed(1)} s`);
    const problems: string[] = [];
    try {
      await cluster.run(Promise.all(clients.map((c) => c.daemon.start())), BIND_LIMIT_MS);
      if (o.nodes > 0) await cluster.run(everyoneBound, BIND_LIMIT_MS);
    } catch (err) {
      problems.push(`${o.nodes - bound} of ${o.nodes} host(s) not bound after ${BIND_LIMIT_MS / 1000} s of virtual time (${(err as Error).message})`);
    }
    o.progress.stop(`${bound}/${o.nodes} hosts bound`);

    const peers: Peer[] = clients.filter((c) => c.configurator.address !== undefined).map((c) => ({ host: c.host, address: ipv4ToString(c.configurator.address!) }));
    let plan: PingTarget[];
    let planName: string;
    if (o.pingAll && peers.length <= ALL_PAIRS_LIMIT) {
      plan = [...peers.map((p) => ({ from: p.host, to: ipv4ToString(SERVER_ADDRESS), toName: 'dhcpd' })), ...allPairs(peers)];
      planName = 'the server and every pair';
    } else {
      const k = o.pingAll ? o.pingSample : 1;
      plan = [...peers.map((p) => ({ from: p.host, to: ipv4ToString(SERVER_ADDRESS), toName: 'dhcpd' })), ...samplePeers(peers, k, cluster.random)];
      planName = `the server and ${k === 1 ? 'a random peer' : `${k} random peers`} from every host`;
    }
    cluster.beginPhase('ping');
    let pinged = 0;
    o.progress.start(() => `ping ${planName}: ${pinged}/${plan.length}`);
    const reach = await runPings(cluster, planName, plan, (n) => { pinged = n; });
    o.progress.stop();
    cluster.endPhase();

    let leasesInDb = 0;
    const boundInDb = new Set<number>();
    for await (const l of allLeases(store)) {
      leasesInDb++;
      if (l.state === 'bound') boundInDb.add(l.address);
    }
    const nodes: NodeReport[] = clients.map((c) => ({
      ...nodeRow(c.host),
      clientId: formatClientId(c.daemon.engine('ib0').clientId),
      address: ib0Address(c.host) ?? null,
      timeToBoundMs: c.configurator.boundAt === undefined ? null : c.configurator.boundAt - c.startedAt,
    }));
    const unbound = nodes.filter((n) => n.address === null);
    if (unbound.length > 0 && problems.length === 0) problems.push(`${unbound.length} host(s) not bound, first ${unbound[0]!.name}`);
    const holders = new Map<string, string>();
    for (const n of nodes) {
      if (n.address === null) continue;
      const other = holders.get(n.address);
      if (other !== undefined) problems.push(`${n.address} is held by both ${other} and ${n.name}`);
      holders.set(n.address, n.name);
    }
    const missing = nodes.filter((n) => n.address !== null && !boundInDb.has(parseIpv4(n.address)));
    if (missing.length > 0) problems.push(`${missing.length} bound address(es) have no bound lease in ${store.location}, first ${missing[0]!.address} (${missing[0]!.name})`);
    for (const f of reach.failed) problems.push(`${f.from} cannot reach ${f.toName} (${f.to}): ${f.error}`);
    const conflicts = clients.reduce((n, c) => n + c.arp.conflicts, 0);
    if (conflicts > 0) problems.push(`${conflicts} ARP probe(s) found the offered address in use`);

    const st = daemon.stats;
    const report: ClusterReport = {
      addressing: 'dhcp', mode: o.mode, nodes,
      server: {
        name: 'dhcpd', address: ipv4ToString(SERVER_ADDRESS), port: o.port, leaseDb: store.location, leaseDbTemporary: scratch !== undefined,
        pool: `${ipv4ToString(POOL_FIRST)}-${ipv4ToString(POOL_FIRST + o.poolSize - 1)}`,
        received: { ...st.received }, sent: { ...st.sent }, drops: Object.fromEntries(Object.entries(st.drops).map(([k, v]) => [k, v ?? 0])),
        doraPerSecond: timed.ratePerSecond(), leasesInDb,
      },
      reach: [reach], phases: cluster.phases, totals: totals(cluster.phases), problems, ok: problems.length === 0,
    };
    if (capture !== undefined) {
      await capture.close();
      report.capture = { ...(o.pcap ? { ipoib: o.pcap } : {}), ...(o.pcapRaw ? { raw: o.pcapRaw } : {}), ...capture.stats() };
    }
    return report;
  } finally {
    o.progress.stop();
    cluster.close(server === undefined ? hosts : [server, ...hosts]);
    await capture?.close().catch(() => undefined);
    if (daemon !== undefined) await daemon.stop();
    else await store.close().catch(() => undefined);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The server's socket, watched: wall-clock time of the first datagram in and of each reply out, so
 * the DORA rate is measured from the first DISCOVER to the last ACK (everything the fabric does in
 * between included), not diluted by the probes and announcements that follow.
 */
class TimedEndpoint implements DatagramEndpoint {
  private first: number | undefined;
  private last = 0;
  private replies = 0;

  constructor(private readonly inner: DatagramEndpoint) {}

  send(buf: Buffer, address: string, port: number, opts?: SendOptions): void {
    this.inner.send(buf, address, port, opts);
    this.replies++;
    this.last = performance.now();
  }

  onMessage(handler: (buf: Buffer, meta: DatagramMeta) => void): void {
    this.inner.onMessage((buf, meta) => {
      this.first ??= performance.now();
      handler(buf, meta);
    });
  }

  close(): void {
    this.inner.close();
  }

  /** Exchanges (two replies each: OFFER and ACK) per second between the first request and the last reply. */
  ratePerSecond(): number {
    if (this.first === undefined || this.replies === 0) return 0;
    return this.replies / 2 / Math.max(1e-3, (this.last - this.first) / 1000);
  }
}
