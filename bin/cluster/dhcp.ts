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
//
// --servers K: hosts dhcpd1..dhcpdK, each with its own ServerDaemon and its own connection to one
// PostgreSQL database; all answer, a client takes the first OFFER, and the database's primary key is
// what keeps one holder per address (a refused write withholds the ACK; the client retries).
// --partitions P: layout.ts and partitions.ts (a subnet and a child interface per partition).
// --loss/--dup/--reorder/--delay: the fabric's faults on every host's link from the bring-up on.
import { mkdtempSync, rmSync } from 'node:fs';
import type { StaticOptions } from './static.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Random, Scheduler } from '../../link/fabric/scheduler.js';
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
import { hostClient, randomSource, virtualClock, type HostClient } from './host-ports.js';
import type { Progress } from './progress.js';
import {
  PING_ATTEMPTS_WITH_FAULTS, runIsolation, runPings, serverAndPeersPlan, type IsolationResult, type Peer, type PingTarget,
} from './reach.js';
import { faultCounts, totals, type ClusterReport, type NodeReport, type ServerReport, sharedAddressProblems } from './report.js';
import { faultConfig } from './faults.js';
import { holdClockDuringIo } from './virtual-io.js';
import { layoutConfigJson, poolFits, serverAddressIn, serverLayout, type ServerLayout } from './layout.js';
import { partitionOfHost, partitionsConf } from './partitions.js';
import { parsePartitions } from '../../link/fabric/partitions.js';

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

/**
 * With several servers each reply leaves after a random 0..SERVER_JITTER_MS of virtual time, as
 * servers under different load answer at different moments; without it the emulation's fixed
 * order would make the first server win every client's choice of the first OFFER.
 */
export const SERVER_JITTER_MS = 4;

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
  return parseConfig(JSON.stringify(clusterConfigJson(poolSize, mode, leaseFile)), 'ipoib-cluster (generated)');
}

/**
 * clusterConfig() as the JSON object written to a file (for an ipoib-dhcpd child, -cf); with a
 * layout (--partitions, --servers: layout.ts), its subnets and pools.
 */
export function clusterConfigJson(poolSize: number, mode: IpoibMode, leaseFile: string,
  layout: ServerLayout = serverLayout({ partitions: 1, servers: 1, poolSize })): { Dhcp4: Record<string, unknown> } {
  return layoutConfigJson(layout, mode, leaseFile, LEASE_TIME);
}

/** --lease-db: sqlite:FILE, a bare FILE, or a postgres(ql):// URL. */
export function leaseDbSpec(text: string): string {
  if (isPgSpec(text)) return text;
  const file = text.replace(/^sqlite:/i, '');
  if (file === '') throw new CliError(`--lease-db '${text}': no file name`);
  return file;
}

type Client = HostClient;

/** A SQLite store's group-commit counters (transactions, lease writes they carried), for the report. */
function groupCommits(store: LeaseStore): { commits?: { transactions: number; writes: number } } {
  const c = (store as { commits?: { transactions: number; writes: number } }).commits;
  return c === undefined ? {} : { commits: { transactions: c.transactions, writes: c.writes } };
}

export async function runDhcp(o: DhcpOptions): Promise<ClusterReport> {
  const runStart = performance.now();
  const P = o.partitions ?? 1;
  const K = o.servers ?? 1;
  if (o.nodes > o.poolSize) throw new CliError(`--nodes ${o.nodes} is more than the pool holds (--pool-size ${o.poolSize})`);
  if (P > o.nodes) throw new CliError(`--partitions ${P} needs at least ${P} hosts (--nodes ${o.nodes})`);
  if (o.port + 1 > 0xffff) throw new CliError(`--port ${o.port}: the clients' port ${o.port + 1} is not a UDP port`);
  const layout = serverLayout({ partitions: P, servers: K, poolSize: o.poolSize });
  if (o.poolSize > MAX_POOL_SIZE || !poolFits(layout)) throw new CliError(`--pool-size ${o.poolSize} does not fit 10.0.0.0/16 (at most ${MAX_POOL_SIZE})`);
  if (K > 1 && (o.leaseDb === undefined || !isPgSpec(o.leaseDb))) {
    throw new CliError(`--servers ${K} needs --lease-db postgres://... (servers share leases through PostgreSQL)`);
  }
  const scratch = o.leaseDb === undefined ? mkdtempSync(join(tmpdir(), 'ipoib-cluster-')) : undefined;
  const spec = o.leaseDb === undefined ? join(scratch!, 'dhcp4.leases.sqlite') : leaseDbSpec(o.leaseDb);
  const config = parseConfig(JSON.stringify(layoutConfigJson(layout, o.mode, spec, LEASE_TIME)), 'ipoib-cluster (generated)');
  // The database is opened and its pools declared before anything else starts: a database that
  // does not answer is a bad option (exit 2), found before a single host is built. Each server has
  // a connection (pool) of its own, as separate ipoib-dhcpd processes would.
  const stores: LeaseStore[] = [];
  try {
    for (let j = 0; j < K; j++) {
      const store = await openLeaseStore(spec);
      stores.push(store);
      await store.configurePools(poolsOf(config));
    }
  } catch (err) {
    for (const s of stores) await s.close().catch(() => undefined);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
    const msg = (err as Error).message;
    throw new CliError(msg.startsWith(spec) ? `--lease-db ${msg}` : `--lease-db ${o.leaseDb ?? spec}: ${msg}`);
  }

  const epochMs = Date.now();
  const names = nodeNames(o.nodes);
  const partitionsConfText = P > 1 ? partitionsConf(names, layout.serverNames, P) : undefined;
  const cluster = new Cluster({
    seed: o.seed, dhcpPorts: [o.port, o.port + 1],
    partitions: partitionsConfText === undefined ? undefined : parsePartitions(partitionsConfText, 'ipoib-cluster partitions.conf'),
  });
  const clock = virtualClock(cluster.scheduler, epochMs);
  // A lease write takes at most VIRTUAL_IO_MS of virtual time (virtual-io.ts): SQLite on its worker
  // thread and PostgreSQL answer in real time, which must not let the virtual clock run on.
  const held = stores.map((s) => holdClockDuringIo(s, cluster.scheduler));
  const capture = startCapture(cluster.fabric, { ipoib: o.pcap, raw: o.pcapRaw }, epochMs);
  let serverHosts: Host[] = [];
  let hosts: Host[] = [];
  const daemons: ServerDaemon[] = [];
  try {
    cluster.beginPhase('attach');
    let attached = 0;
    o.progress.start(() => `attaching HCAs: ${attached}/${o.nodes + K}`);
    serverHosts = await cluster.createHosts(layout.serverNames, o.mode);
    hosts = await cluster.createHosts(names, o.mode, (n) => { attached = n + K; });
    // Without partitions the servers' ib0 is the subnet's interface; with them ib0 stays in the
    // default partition (10.0.0.j, reachable by no host) and each partition gets a child interface.
    serverHosts.forEach((srv, j) => {
      srv.addrAdd('ib0', `${ipv4ToString(SERVER_ADDRESS + j)}/16`);
      for (const s of layout.subnets) {
        if (s.pkey === undefined) continue;
        srv.createChild('ib0', s.pkey);
        srv.addrAdd(s.iface, `${ipv4ToString(serverAddressIn(s, j))}/16`);
      }
    });
    // Faults from the bring-up on: SA joins cross the same lossy links (the SA client retries a MAD
    // 3 times, 1 s apart, and IPoIB retries a failed broadcast join with backoff), then DHCP, ARP
    // and ICMP. The SM's own port sends cleanly (it is the fabric's, not a host's link).
    const injector = o.faults === undefined ? undefined : cluster.fabric.setFaults(faultConfig(o.faults));

    cluster.beginPhase('bring-up (SA joins)');
    let carriers = 0;
    o.progress.start(() => `ib0 up: carrier on ${carriers}/${o.nodes + K}`);
    await cluster.bringUp([...serverHosts, ...hosts], (n) => { carriers = n; });
    const children = serverHosts.flatMap((srv) => layout.subnets.filter((s) => s.pkey !== undefined).map((s) => ({ srv, name: s.iface })));
    for (const c of children) c.srv.linkSet(c.name, { up: true });
    await cluster.run(Promise.all(children.map((c) => c.srv.iface(c.name).waitCarrier())));

    const meters = serverHosts.map(() => new DoraMeter());
    for (let j = 0; j < K; j++) {
      const srv = serverHosts[j]!;
      const links = layout.subnets.map((s) => {
        const sock = srv.udpSocket({ interface: s.iface }).bind('0.0.0.0', o.port);
        sock.setBroadcast(true);
        const jitter = K > 1 ? { scheduler: cluster.scheduler, random: cluster.random, maxMs: SERVER_JITTER_MS } : undefined;
        return { name: s.iface, address: s.pkey === undefined ? SERVER_ADDRESS + j : serverAddressIn(s, j), endpoint: new TimedEndpoint(sock, meters[j]!, jitter) };
      });
      try {
        // No reply pacing (server/daemon-pacer.ts): it spaces a commit's ACKs on the wall clock, and
        // here time is virtual; each emulated client has its own receive ring, nothing to overflow.
        daemons.push(await ServerDaemon.start({ config, store: held[j]!, serverPort: o.port, now: clock.now, serverName: layout.serverNames[j]!, links, replyPacing: false }));
      } catch (err) {
        if (isLeaseStoreError(err)) throw new CliError(`--lease-db ${o.leaseDb ?? spec}: ${err.message}`);
        throw err;
      }
    }

    cluster.beginPhase('dhcp (DORA, ARP probe, announce)');
    let bound = 0;
    let boundAt: number | undefined;
    let allBound!: () => void;
    const everyoneBound = new Promise<void>((resolve) => { allBound = resolve; });
    const rnd = randomSource(cluster.random);
    const clients: Client[] = hosts.map((host) => hostClient(host, {
      mode: o.mode, serverPort: o.port, clock, random: rnd, arpRandom: cluster.random,
      onBound: () => { if (++bound === o.nodes) { boundAt = performance.now(); allBound(); } },
      config: { initialDelayMinMs: 0, initialDelayMaxMs: BOOT_WINDOW_MS },
    }));
    const sentOf = (kind: string): number => daemons.reduce((n, d) => n + (d.stats.sent[kind] ?? 0), 0);
    o.progress.start(() => `booting: ${bound}/${o.nodes} bound, ${sentOf('offer')} OFFERs, ${sentOf('ack')} ACKs, ` +
      `${clients.reduce((n, c) => n + c.arp.probes, 0)} ARP probes, virtual t=${(cluster.scheduler.now() / 1000).toFixed(1)} s`);
    const problems: string[] = [];
    try {
      await cluster.run(Promise.all(clients.map((c) => c.daemon.start())), BIND_LIMIT_MS);
      if (o.nodes > 0) await cluster.run(everyoneBound, BIND_LIMIT_MS);
    } catch (err) {
      problems.push(`${o.nodes - bound} of ${o.nodes} host(s) not bound after ${BIND_LIMIT_MS / 1000} s of virtual time (${(err as Error).message})`);
    }
    o.progress.stop(`${bound}/${o.nodes} hosts bound`);

    // Pings stay inside a partition: each host pings one server (round-robin over the servers) at
    // its address in the host's subnet, and peers of its own partition.
    const partitionOf = (i: number): number => partitionOfHost(i, P);
    const groups = layout.subnets.map(() => [] as Peer[]);
    const serverTargets: PingTarget[] = [];
    clients.forEach((c, i) => {
      if (c.configurator.address === undefined) return;
      const s = layout.subnets[partitionOf(i) - 1]!;
      const j = i % K;
      groups[s.id - 1]!.push({ host: c.host, address: ipv4ToString(c.configurator.address) });
      serverTargets.push({ from: c.host, to: ipv4ToString(s.pkey === undefined ? SERVER_ADDRESS + j : serverAddressIn(s, j)), toName: layout.serverNames[j]! });
    });
    const { plan, name: planName } = serverAndPeersPlan(serverTargets, groups, o, K, P, cluster.random);
    const attempts = o.faults === undefined ? 1 : PING_ATTEMPTS_WITH_FAULTS;
    cluster.beginPhase('ping');
    let pinged = 0;
    o.progress.start(() => `ping ${planName}: ${pinged}/${plan.length}`);
    const reach = await runPings(cluster, planName, plan, (n) => { pinged = n; }, attempts);
    o.progress.stop();
    let isolation: IsolationResult | undefined;
    if (P > 1) {
      // One host of each partition pings a host of the next one: every such ping must go unanswered.
      const cross: PingTarget[] = [];
      for (let k = 0; k < P; k++) {
        const from = groups[k]![0];
        const to = groups[(k + 1) % P]![0];
        if (from !== undefined && to !== undefined) cross.push({ from: from.host, to: to.address, toName: to.host.name });
      }
      isolation = await runIsolation(cluster, cross, attempts);
    }
    cluster.endPhase();

    let leasesInDb = 0;
    const boundInDb = new Set<number>();
    const grantedBy = new Map<string, number>();
    const boundPerClient = new Map<string, number>();
    for await (const l of allLeases(held[0]!)) {
      leasesInDb++;
      if (l.state !== 'bound') continue;
      boundInDb.add(l.address);
      grantedBy.set(l.server, (grantedBy.get(l.server) ?? 0) + 1);
      if (l.clientId !== null) {
        const id = l.clientId.toString('hex');
        boundPerClient.set(id, (boundPerClient.get(id) ?? 0) + 1);
      }
    }
    const nodes: NodeReport[] = clients.map((c) => ({
      ...nodeRow(c.host),
      clientId: formatClientId(c.daemon.engine('ib0').clientId),
      address: ib0Address(c.host) ?? null,
      timeToBoundMs: c.configurator.boundAt === undefined ? null : c.configurator.boundAt - c.startedAt,
      ...(P > 1 ? { pkey: `0x${c.host.iface('ib0').pkey.toString(16).padStart(4, '0')}` } : {}),
    }));
    const unbound = nodes.filter((n) => n.address === null);
    if (unbound.length > 0 && problems.length === 0) problems.push(`${unbound.length} host(s) not bound, first ${unbound[0]!.name}`);
    problems.push(...sharedAddressProblems(nodes));
    const missing = nodes.filter((n) => n.address !== null && !boundInDb.has(parseIpv4(n.address)));
    if (missing.length > 0) problems.push(`${missing.length} bound address(es) have no bound lease in ${stores[0]!.location}, first ${missing[0]!.address} (${missing[0]!.name})`);
    const twice = [...boundPerClient.values()].filter((n) => n > 1).length;
    if (twice > 0) problems.push(`${twice} client identifier(s) hold more than one bound lease in ${stores[0]!.location}`);
    if (P > 1) {
      nodes.forEach((n, i) => {
        const s = layout.subnets[partitionOf(i) - 1]!;
        if (n.pkey !== `0x${s.pkey!.toString(16)}`) problems.push(`${n.name}: ib0 has P_Key ${n.pkey ?? '?'}, not its partition's 0x${s.pkey!.toString(16)}`);
        if (n.address !== null && (parseIpv4(n.address) & 0xffff0000) >>> 0 !== s.network) problems.push(`${n.name}: ${n.address} is outside its partition's subnet ${ipv4ToString(s.network)}/16`);
      });
    }
    for (const f of reach.failed) problems.push(`${f.from} cannot reach ${f.toName} (${f.to}): ${f.error}`);
    for (const f of isolation?.leaked ?? []) problems.push(`${f.from} reached ${f.toName} (${f.to}) in another partition`);
    const conflicts = clients.reduce((n, c) => n + c.arp.conflicts, 0);
    if (conflicts > 0) problems.push(`${conflicts} ARP probe(s) found the offered address in use`);

    const pool = layout.subnets.map((s) => `${ipv4ToString(s.poolFirst)}-${ipv4ToString(s.poolLast)}`).join(', ');
    const serverReports: ServerReport[] = daemons.map((d, j) => {
      const st = d.stats;
      return {
        name: layout.serverNames[j]!, address: ipv4ToString(SERVER_ADDRESS + j), port: o.port, leaseDb: stores[j]!.location, leaseDbTemporary: scratch !== undefined,
        pool,
        received: { ...st.received }, sent: { ...st.sent }, drops: Object.fromEntries(Object.entries(st.drops).map(([k, v]) => [k, v ?? 0])),
        doraPerSecond: meters[j]!.ratePerSecond(), leasesInDb,
        ...(P > 1 ? { interfaces: d.links.map((l) => `${l.name} ${ipv4ToString(l.address)}`) } : {}),
        ...(K > 1 ? { leasesGranted: grantedBy.get(layout.serverNames[j]!) ?? 0, commitsRefused: st.drops['commit-failed'] ?? 0 } : {}),
        ...groupCommits(stores[j]!),
      };
    });
    if (K > 1) {
      const idle = serverReports.filter((s) => (s.sent['ack'] ?? 0) === 0);
      if (idle.length > 0 && o.nodes >= 2 * K) problems.push(`${idle.map((s) => s.name).join(', ')} acknowledged no lease: the servers did not share the work`);
    }
    const report: ClusterReport = {
      addressing: 'dhcp', mode: o.mode, nodes,
      server: serverReports[0]!,
      ...(K > 1 ? { servers: serverReports } : {}),
      ...(partitionsConfText !== undefined ? { partitions: { count: P, conf: partitionsConfText } } : {}),
      ...(isolation !== undefined ? { isolation } : {}),
      ...(o.faults !== undefined && injector !== undefined ? { faults: { ...o.faults, ...faultCounts(injector.stats) } } : {}),
      reach: [reach], phases: cluster.phases,
      totals: { ...totals(cluster.phases), ...(boundAt === undefined ? {} : { boundMs: boundAt - runStart }) }, problems, ok: problems.length === 0,
    };
    if (capture !== undefined) {
      await capture.close();
      report.capture = { ...(o.pcap ? { ipoib: o.pcap } : {}), ...(o.pcapRaw ? { raw: o.pcapRaw } : {}), ...capture.stats() };
    }
    return report;
  } finally {
    o.progress.stop();
    cluster.close([...serverHosts, ...hosts]);
    await capture?.close().catch(() => undefined);
    for (const d of daemons) await d.stop();
    for (const s of stores.slice(daemons.length)) await s.close().catch(() => undefined);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

/** Wall-clock time of a server's first datagram in and of each reply out, over all its links. */
class DoraMeter {
  first: number | undefined;
  last = 0;
  replies = 0;

  /** Exchanges (two replies each: OFFER and ACK) per second between the first request and the last reply. */
  ratePerSecond(): number {
    if (this.first === undefined || this.replies === 0) return 0;
    return this.replies / 2 / Math.max(1e-3, (this.last - this.first) / 1000);
  }
}

/**
 * A server's socket, watched: wall-clock time of the first datagram in and of each reply out, so
 * the DORA rate is measured from the first DISCOVER to the last ACK (everything the fabric does in
 * between included), not diluted by the probes and announcements that follow.
 */
class TimedEndpoint implements DatagramEndpoint {
  constructor(private readonly inner: DatagramEndpoint, private readonly meter: DoraMeter,
    private readonly jitter?: { scheduler: Scheduler; random: Random; maxMs: number }) {}

  send(buf: Buffer, address: string, port: number, opts?: SendOptions): void {
    const j = this.jitter;
    if (j === undefined) {
      this.inner.send(buf, address, port, opts);
    } else {
      const copy = Buffer.from(buf);
      j.scheduler.setTimer(j.random.next() * j.maxMs, () => this.inner.send(copy, address, port, opts));
    }
    this.meter.replies++;
    this.meter.last = performance.now();
  }

  onMessage(handler: (buf: Buffer, meta: DatagramMeta) => void): void {
    this.inner.onMessage((buf, meta) => {
      this.meter.first ??= performance.now();
      handler(buf, meta);
    });
  }

  close(): void {
    this.inner.close();
  }
}
