// ipoib-cluster --fabric spawn|HOST:PORT: the fabric daemon, the DHCP server and the hosts as separate
// OS processes in real time. This process is the coordinator:
//
//   ipoib-fabric --listen 127.0.0.1:0 [--loss ...] [--partitions FILE]   (spawn only; its "listening HOST:PORT" line names the port)
//   ipoib-dhcpd --link fabric --fabric HOST:PORT --host dhcpd -p P -cf <clusterConfigJson() as a file> -lf <lease DB> ib0/10.0.0.1
//   ipoib-cluster host-group '<spec>'  x G               (host-group.ts: N/G hosts each, one UDP socket per group)
//
// --servers K (a PostgreSQL --lease-db, as in-process): K ipoib-dhcpd children, hosts dhcpd1..dhcpdK on
// the fabric (--host: each its own port GUID), server j at .j of the subnet (layout.ts serverAddressIn,
// given as the interface spec ib0/10.0.0.j), all on the same configuration, each with a control socket
// of its own from which its counters are read. The report has a row per server (leases granted: bound
// leases in the database written by it; commits refused: lease writes the database turned down because
// another server held the address).
// --partitions P: the partitions.conf the in-process form gives its SM (partitions.ts: hosts round-robin,
// servers in every partition) is written for the spawned daemon (--partitions FILE); a daemon named by
// HOST:PORT must already run it (checked against its status: the run refuses with one line naming a
// file it wrote, to start the daemon with). The SM puts each host's ib0 (P_Key index 0) in its
// partition, so the host groups need nothing more; every server serves partition k on the child
// interface ib0.800k/10.k.0.j. Pings stay inside a partition, and one host of each partition pings a
// host of the next one with a /32 route: those must go unanswered (the isolation proof, as in-process).
//
// The groups attach and bring ib0 up while the server starts; once both are ready the coordinator
// says "go" and every client starts DORA. Groups report each host bound (JSON lines on stdout);
// with every host bound, each pings the server and one random peer (the plan is made here and sent
// to the groups on stdin), then everything stops and the lease database is checked: every host
// bound, no address held twice, and each host's last ACKed lease bound to its client id.
//
// --kill-server-every S: S seconds after the server became ready it gets SIGKILL and is started
// again at once (so S counts serving time, and S = 1 still leaves the server time to answer). With
// --servers K one server is killed per period, round robin (dhcpd1, dhcpd2, ..., dhcpdK, dhcpd1, ...),
// while the others keep serving; the database check at the end is the same. The
// restarted server attaches with the same port GUID (derived from its host name); the daemon refuses
// a GUID whose previous session is still alive (DUPLICATE_GUID) until that session misses its
// keep-alives for --keepalive-timeout-ms, so the run starts its daemon with a short timeout and
// restarts a refused server until it gets in. On a real fabric the SM would see the port go down
// (a trap or its next sweep), and the port coming back with the same GUID gets the same LID again
// (OpenSM's guid2lid); the refusal window here stands in for that down/up.
//
// Every child is killed (SIGKILL) when the run ends, fails, or this process gets SIGINT/SIGTERM;
// host groups also exit when their stdin closes, which covers a coordinator that was SIGKILLed.
// The server and the fabric daemon cannot notice that (Node has no PR_SET_PDEATHSIG): they are
// the one leak left, and only after kill -9 of the coordinator.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isPgSpec, openLeaseStore } from '../../lease-db/open.js';
import { allLeases } from '../../lease-db/transfer.js';
import { seededRandom } from '../../link/fabric/scheduler.js';
import { DEFAULT_PARTITION_PKEY, parsePartitions, type Partition } from '../../link/fabric/partitions.js';
import { queryFabricStatus } from '../../link/fabric/udp-client.js';
import type { DaemonStatus } from '../../link/fabric/udp-server.js';
import { formatGuid } from '../../link/wire/ib-address.js';
import { LINKTYPE_USER0 } from '../../link/wire/pcap.js';
import { formatClientId, ipv4ToString, parseIpv4 } from '../../protocol/index.js';
import { sendControlCommand } from '../../server/control-socket.js';
import type { ClusterRunOptions } from '../ipoib-cluster.js';
import { CliError, PACKAGE_ROOT } from '../cli.js';
import { nodeNames, type PhaseCost } from './cluster.js';
import { BOOT_WINDOW_MS, MAX_POOL_SIZE, clusterConfigJson, leaseDbSpec } from './dhcp.js';
import type { FabricChoice } from './fabric-option.js';
import { faultFlags } from './faults.js';
import type { FinalLease, GroupCommand, GroupEvent, GroupSpec } from './host-group.js';
import { poolFits, serverAddressIn, serverLayout } from './layout.js';
import { partitionOfHost, partitionsConf } from './partitions.js';
import type { Progress } from './progress.js';
import {
  PING_ATTEMPTS_WITH_FAULTS, pingWindowMs, serverAndPeersPlan, type IsolationResult, type PeerOf, type PingTargetOf, type ReachResult,
} from './reach.js';
import { sharedAddressProblems, totals, type ClusterReport, type NodeReport, type ProcessesReport, type ServerReport } from './report.js';
import { zeroCounts } from './traffic.js';

export interface ProcessesOptions extends ClusterRunOptions {
  progress: Progress;
  fabric: Exclude<FabricChoice, 'inproc'>;
  processes: number;
  killServerEveryMs: number | undefined;
}

/**
 * The clients' DISCOVER/REQUEST retransmission schedule. RFC 2131 §4.1's 4, 8, 16, 32, 64 s is
 * meant for a real network at boot; here a lost packet or a server being restarted would cost a
 * host 4 s and then 8 s of idle waiting, so a lossy run spends most of its time asleep, and with
 * --kill-server-every a client waiting 8 s can sleep through the whole window in which the server
 * is up. ISC dhclient makes the schedule configurable (dhclient.conf(5) initial-interval,
 * backoff-cutoff); the cluster uses initial-interval 1 s and backoff-cutoff 2 s, with ±250 ms of
 * randomisation (RFC 2131's ±1 s scaled to the shorter first delay).
 */
export const CLUSTER_BACKOFF_MS = [1000, 2000];
export const CLUSTER_JITTER_MS = 250;

/**
 * The keep-alive the spawned daemon asks of hosts, and the silence after which it times a port out.
 * The timeout bounds how long a SIGKILLed server's port GUID stays taken; it must still be well
 * above any event-loop stall of a busy host group, or live hosts would be timed out too.
 */
export const SPAWN_KEEPALIVE_MS = 300;
export const SPAWN_KEEPALIVE_TIMEOUT_MS = 1500;

/**
 * The clients' boot window (each waits a random time in it before its first DISCOVER) grows with the
 * cluster, 1 ms a host (1 s at least): the fabric daemon sends a host group one UDP datagram per frame
 * for each of its ports the frame reaches, and every broadcast (DISCOVER, REQUEST, the three ARP
 * probes, the announcement) reaches every port whose multicast filter accepts it. Before the early
 * filters travelled over the UDP protocol, a broadcast was a datagram per attached port; 4 ms a host
 * was then what the daemon sustained. With them, 1,000 hosts in a 1 s window bind without a retransmission
 * from an overflowing socket buffer (the server's counters in the report show it).
 */
export function bootWindowMs(nodes: number): number {
  return Math.max(BOOT_WINDOW_MS, nodes * BOOT_WINDOW_MS_PER_HOST);
}
const BOOT_WINDOW_MS_PER_HOST = 1;

interface ServerCounters {
  received: Record<string, number>;
  sent: Record<string, number>;
  drops: Record<string, number>;
}

/** A server's message counters from its control socket (Kea's statistic-get-all names: pkt4-<type>-received...). */
async function readServerCounters(path: string): Promise<ServerCounters> {
  const r = await sendControlCommand(path, 'statistic-get-all', undefined, 3000);
  if (r.result !== 0 || r.arguments === undefined) throw new Error(`statistic-get-all: ${r.text}`);
  const out: ServerCounters = { received: {}, sent: {}, drops: {} };
  for (const [name, samples] of Object.entries(r.arguments as Record<string, [number, string][]>)) {
    const v = samples[0]?.[0];
    if (typeof v !== 'number') continue;
    let m: RegExpExecArray | null;
    if ((m = /^pkt4-(.+)-received$/.exec(name)) !== null) out.received[m[1]!] = v;
    else if ((m = /^pkt4-(.+)-sent$/.exec(name)) !== null) out.sent[m[1]!] = v;
    else if ((m = /^pkt4-drop-(.+)$/.exec(name)) !== null) out.drops[m[1]!] = v;
  }
  return out;
}

function addCounters(into: ServerCounters, more: ServerCounters): void {
  for (const k of ['received', 'sent', 'drops'] as const) {
    for (const [name, v] of Object.entries(more[k])) into[k][name] = (into[k][name] ?? 0) + v;
  }
}

/** Records in a pcap file the fabric daemon wrote (it has closed the file: every record is whole). */
function pcapRecords(file: string): number {
  const b = readFileSync(file);
  if (b.length < 24 || b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${file}: not a little-endian pcap file`);
  let n = 0;
  for (let at = 24; at + 16 <= b.length; at += 16 + b.readUInt32LE(at + 8)) n++;
  return n;
}

/**
 * In real time the pings of a plan start over at least 0.5 ms each (2,000 a second across the
 * cluster; pingWindowMs allows 4,000 in virtual time): each is an ARP exchange, two SA PathRecord
 * queries and an echo through the daemon, and at 5,000 hosts the faster pace overflowed socket
 * buffers (tens of thousands of kernel RcvbufErrors, 700-1,200 failed pings); at this pace two
 * runs had 34 and 0 failures. 1,000 hosts keep their 1 s window.
 */
const REAL_TIME_MS_PER_PING = 0.5;

/** Wall time limits: start-up of each child, binding every host, the ping phase, restarting the server. */
const START_LIMIT_MS = 120_000;
const BIND_LIMIT_MS = 180_000;
const PING_LIMIT_MS = 120_000;
const RESTART_LIMIT_MS = 30_000;
const PING_TIMEOUT_MS = 1500;
const PING_ATTEMPTS = 3;

/** The shims (bin/<name>), found from the package root: this file may run from a compiled tree. */
const BIN_DIR = join(PACKAGE_ROOT, 'bin');

/** A child process with its output split into lines. */
class Child {
  readonly proc: ChildProcess;
  readonly tail: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  private readonly lineWaiters = new Set<(line: string, stream: 'out' | 'err') => void>();

  constructor(readonly what: string, bin: string, args: string[], kids: Set<Child>, onOut?: (line: string) => void) {
    const env = { ...process.env };
    // tsx's or tap's loader hooks in NODE_OPTIONS break the bin shim (which registers tsx itself).
    delete env['NODE_OPTIONS'];
    // Every child stops when this process is gone, even if it was SIGKILLed (bin/launch.js).
    env['IPOIB_EXIT_WITH_PARENT'] = '1';
    this.proc = spawn(process.execPath, [join(BIN_DIR, bin), ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    kids.add(this);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => {
      kids.delete(this);
      resolve({ code, signal });
    }));
    // A child that exits early makes writes to its stdin fail with EPIPE: that is reported by its exit.
    this.proc.stdin!.on('error', () => undefined);
    const split = (stream: 'out' | 'err') => {
      let buf = '';
      return (d: Buffer): void => {
        buf += d.toString('utf8');
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (stream === 'err') {
            this.tail.push(line);
            if (this.tail.length > 20) this.tail.shift();
          } else {
            onOut?.(line);
          }
          for (const w of this.lineWaiters) w(line, stream);
        }
      };
    };
    this.proc.stdout!.on('data', split('out'));
    this.proc.stderr!.on('data', split('err'));
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  send(cmd: GroupCommand): void {
    if (this.alive) this.proc.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.proc.kill(signal);
  }

  /** The last stderr line worth quoting (a CLI's one-line error, or the last log message). */
  lastError(): string {
    for (let i = this.tail.length - 1; i >= 0; i--) {
      const l = this.tail[i]!.trim();
      if (l === '') continue;
      try {
        const j = JSON.parse(l) as { msg?: string };
        if (typeof j.msg === 'string') return j.msg;
      } catch {
        return l;
      }
    }
    return '(no output)';
  }

  /** Resolves with the first line matching re from now on; rejects when the child exits first or after ms. */
  waitLine(re: RegExp, stream: 'out' | 'err', ms: number): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const done = (): void => { clearTimeout(timer); this.lineWaiters.delete(check); };
      const check = (line: string, s: 'out' | 'err'): void => {
        if (s !== stream) return;
        const m = re.exec(line);
        if (m !== null) { done(); resolve(m); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`${this.what}: nothing within ${ms / 1000} s (${this.lastError()})`)); }, ms);
      this.lineWaiters.add(check);
      void this.exited.then(({ code, signal }) => {
        if (!this.lineWaiters.has(check)) return;
        done();
        reject(new Error(`${this.what} exited (${code ?? signal}): ${this.lastError()}`));
      });
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms / 1000} s`)), ms); })])
    .finally(() => clearTimeout(timer));
}

/** Host names split into G contiguous groups, sizes differing by at most one. */
export function splitGroups(names: readonly string[], groups: number): string[][] {
  const g = Math.max(1, Math.min(groups, names.length));
  const out: string[][] = [];
  let at = 0;
  for (let i = 0; i < g; i++) {
    const size = Math.floor(names.length / g) + (i < names.length % g ? 1 : 0);
    out.push(names.slice(at, at + size));
    at += size;
  }
  return out;
}

interface GroupState {
  child: Child;
  names: string[];
  attached: number;
  carriers: number;
  bound: number;
  ready: Promise<void>;
  pinged: Promise<ReachResult>;
  isolated: Promise<Extract<GroupEvent, { t: 'isolated' }>>;
  final: Promise<FinalLease[]>;
}

interface Bound {
  node: NodeReport;
}

/** One of the --servers K ipoib-dhcpd processes, across its lives (--kill-server-every restarts it). */
interface ServerState {
  /** dhcpd (K = 1) or dhcpd1..dhcpdK: the host name on the fabric (--host), so its port GUID. */
  name: string;
  /** The running process; undefined while it starts or restarts. */
  child: Child | undefined;
  /** Its kea-dhcp4.conf: the cluster's, with a control socket of its own. */
  confFile: string;
  controlPath: string;
  /** Interface specs it is started with: ib0/10.0.0.j, or ib0.800k/10.k.0.j for each partition. */
  interfaces: string[];
  /** Its counters summed over its lives (read before each SIGKILL and before the last stop). */
  stats: ServerCounters;
  unreadLives: number;
}

/**
 * With --fabric HOST:PORT and --partitions: the partitions the daemon runs must hold this run's hosts
 * and servers as partitionsConf() places them. Returns the first thing missing, or undefined.
 */
function partitionsMissing(have: DaemonStatus['partitions'], want: readonly Partition[]): string | undefined {
  for (const p of want) {
    if (p.pkey === DEFAULT_PARTITION_PKEY) continue;
    const pkey = `0x${p.pkey.toString(16).padStart(4, '0')}`;
    const d = have.find((x) => x.pkey === pkey);
    if (d === undefined) return `no partition ${pkey}`;
    for (const m of p.members) {
      if (m.who === 'SELF' || m.who === 'ALL' || m.who === 'ALL_CAS') continue;
      const text = `${formatGuid(m.who)}=${m.membership}`;
      if (!d.members.includes(text)) return `partition ${pkey} lacks ${text}`;
    }
  }
  return undefined;
}

export async function runProcesses(o: ProcessesOptions): Promise<ClusterReport> {
  const P = o.partitions;
  const K = o.servers;
  if (o.nodes > o.poolSize) throw new CliError(`--nodes ${o.nodes} is more than the pool holds (--pool-size ${o.poolSize})`);
  if (P > o.nodes) throw new CliError(`--partitions ${P} needs at least ${P} hosts (--nodes ${o.nodes})`);
  const layout = serverLayout({ partitions: P, servers: K, poolSize: o.poolSize });
  if (o.poolSize > MAX_POOL_SIZE || !poolFits(layout)) throw new CliError(`--pool-size ${o.poolSize} does not fit 10.0.0.0/16 (at most ${MAX_POOL_SIZE})`);
  if (o.port + 1 > 0xffff || o.port <= 0x8000) throw new CliError(`--port ${o.port}: on the fabric the server port must be above 0x8000 and P + 1 a port`);
  if (K > 1 && (o.leaseDb === undefined || !isPgSpec(o.leaseDb))) {
    throw new CliError(`--servers ${K} needs --lease-db postgres://... (servers share leases through PostgreSQL)`);
  }
  const capturing = o.pcap !== undefined || o.pcapRaw !== undefined;
  if (capturing && o.fabric !== 'spawn') {
    throw new CliError(`--pcap/--pcap-raw capture at the fabric daemon the run starts: with --fabric ${o.fabric.host}:${o.fabric.port} start that daemon with them (ipoib-fabric --pcap FILE --pcap-ipoib FILE)`);
  }
  if (o.fabric !== 'spawn' && o.faults !== undefined) {
    throw new CliError(`--loss/--dup/--reorder/--delay set faults on a fabric the run starts: with --fabric ${o.fabric.host}:${o.fabric.port} start that daemon with them (ipoib-fabric --loss F ...)`);
  }
  const names = nodeNames(o.nodes);
  // The partitions.conf the fabric's SM runs with: hosts round-robin, every server in every partition.
  const partitionsText = P > 1 ? partitionsConf(names, layout.serverNames, P) : undefined;
  const t0 = performance.now();
  const phases: PhaseCost[] = [];
  let phase: { name: string; start: number } | undefined;
  const beginPhase = (name: string): void => {
    const now = performance.now();
    if (phase !== undefined) phases.push({ name: phase.name, wallMs: now - phase.start, virtualMs: now - phase.start, packets: zeroCounts(), delivered: 0, notListened: 0 });
    phase = name === '' ? undefined : { name, start: now };
  };

  // A daemon named by HOST:PORT must answer before anything starts (exit 2 otherwise), and with
  // --partitions already run this cluster's partitions (a running SM's partitions are its own).
  let fabricAddr: { host: string; port: number };
  if (o.fabric !== 'spawn') {
    fabricAddr = o.fabric;
    let status: DaemonStatus;
    try {
      status = await queryFabricStatus(o.fabric.host, o.fabric.port, 1500);
    } catch (err) {
      throw new CliError(`--fabric ${o.fabric.host}:${o.fabric.port}: no ipoib-fabric daemon answers there (${(err as Error).message})`);
    }
    if (partitionsText !== undefined) {
      const missing = partitionsMissing(status.partitions, parsePartitions(partitionsText, 'ipoib-cluster partitions.conf'));
      if (missing !== undefined) {
        const file = join(tmpdir(), `ipoib-cluster-partitions-${o.nodes}-hosts-${K}-servers-${P}.conf`);
        writeFileSync(file, partitionsText);
        throw new CliError(`--partitions ${P} with --fabric ${o.fabric.host}:${o.fabric.port}: the daemon there does not run this cluster's partitions (${missing}); ` +
          `start it with ipoib-fabric --partitions ${file} (written now), or use --fabric spawn`);
      }
    }
  }

  const kids = new Set<Child>();
  const killAll = (): void => { for (const k of kids) k.kill('SIGKILL'); };
  const scratch = mkdtempSync(join(tmpdir(), 'ipoib-cluster-'));
  const onSignal = (signal: NodeJS.Signals): void => {
    killAll();
    rmSync(scratch, { recursive: true, force: true });
    process.stderr.write(`ipoib-cluster: ${signal}: every child process killed\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAll);

  const spec = o.leaseDb === undefined ? join(scratch, 'dhcp4.leases.sqlite') : leaseDbSpec(o.leaseDb);
  // The daemon captures raw frames whenever it captures at all; without --pcap-raw they go to scratch.
  const rawCapture = o.pcapRaw ?? join(scratch, 'raw.pcap');
  const partitionsFile = join(scratch, 'partitions.conf');
  if (partitionsText !== undefined) writeFileSync(partitionsFile, partitionsText);
  // Every server runs the cluster's configuration (same subnets, same pools: with a shared PostgreSQL
  // database they hand out one address space together), each with a control socket of its own.
  const servers: ServerState[] = layout.serverNames.map((name, j) => {
    const confFile = join(scratch, `kea-dhcp4-${name}.conf`);
    const controlPath = join(scratch, `${name}.sock`);
    const conf = clusterConfigJson(o.poolSize, o.mode, spec, layout);
    conf.Dhcp4['control-socket'] = { 'socket-type': 'unix', 'socket-name': controlPath };
    writeFileSync(confFile, JSON.stringify(conf, null, 2));
    return {
      name, child: undefined, confFile, controlPath,
      interfaces: layout.subnets.map((s) => `${s.iface}/${ipv4ToString(serverAddressIn(s, j))}`),
      stats: { received: {}, sent: {}, drops: {} }, unreadLives: 0,
    };
  });
  const readServerStats = async (sv: ServerState): Promise<void> => {
    try {
      addCounters(sv.stats, await readServerCounters(sv.controlPath));
    } catch {
      sv.unreadLives++;
    }
  };
  const problems: string[] = [];
  const info: ProcessesReport = {
    fabric: o.fabric === 'spawn' ? 'spawn' : `${o.fabric.host}:${o.fabric.port}`, spawned: o.fabric === 'spawn', groups: 0,
    serverKills: 0, serverRestarts: 0, restartMs: [],
  };
  let fabric: Child | undefined;
  const groups: GroupState[] = [];
  try {
    beginPhase(`start (fabric, ${K === 1 ? 'server' : `${K} servers`}, host groups attach and join)`);
    if (o.fabric === 'spawn') {
      fabric = new Child('ipoib-fabric', 'ipoib-fabric', [
        '--listen', '127.0.0.1:0',
        // Without kills the daemon's defaults (1 s, 3 s) leave more room for a busy host group.
        ...(o.killServerEveryMs === undefined ? [] : ['--keepalive-ms', String(SPAWN_KEEPALIVE_MS), '--keepalive-timeout-ms', String(SPAWN_KEEPALIVE_TIMEOUT_MS)]),
        '--log-level', 'warn', '--seed', String(o.seed), ...(o.faults === undefined ? [] : faultFlags(o.faults)),
        ...(partitionsText === undefined ? [] : ['--partitions', partitionsFile]),
        // The switch's capture point (DLT 147 raw IB; DLT 242 IPoIB beside it): the daemon writes both.
        ...(capturing ? ['--pcap', rawCapture, '--pcap-linktype', String(LINKTYPE_USER0), ...(o.pcap === undefined ? [] : ['--pcap-ipoib', o.pcap])] : []),
      ], kids);
      const m = await fabric.waitLine(/^listening (\S+):(\d+)$/, 'out', START_LIMIT_MS);
      fabricAddr = { host: m[1]!, port: Number(m[2]) };
    }
    const where = `${fabricAddr!.host}:${fabricAddr!.port}`;

    // A server: started again after each kill until it serves (its GUID may still be taken). It
    // attaches as host `name` and serves its interfaces (ipoib-dhcpd creates a P_Key child ib0.800k
    // named as an interface, and gives each interface the address after the slash).
    const startServer = async (sv: ServerState, limitMs: number): Promise<Child> => {
      const end = performance.now() + limitMs;
      let last = '';
      while (performance.now() < end) {
        const s = new Child(K === 1 ? 'ipoib-dhcpd' : `ipoib-dhcpd ${sv.name}`, 'ipoib-dhcpd', [
          '--link', 'fabric', '--fabric', where, '--host', sv.name, '-p', String(o.port), '-cf', sv.confFile, '-lf', spec, ...sv.interfaces,
        ], kids);
        try {
          await s.waitLine(/"event":"ready"/, 'err', Math.max(1, end - performance.now()));
          // Drained from now on (the server logs every lease), never parsed.
          return s;
        } catch (err) {
          last = (err as Error).message;
          s.kill();
          await s.exited;
          // DUPLICATE_GUID: the killed server's session is not timed out yet; no answer to ATTACH: the
          // daemon is too busy to answer within the server's 3 s of attempts. Both pass; anything
          // else (a bad configuration or lease database) will not, so it ends the run.
          if (!/DUPLICATE_GUID|refused|no answer from the fabric/i.test(last)) break;
          await sleep(100);
        }
      }
      throw new Error(`the DHCP server${K === 1 ? '' : ` ${sv.name}`} did not start: ${last}`);
    };
    const serversStarted = Promise.all(servers.map((sv) => startServer(sv, START_LIMIT_MS).then((c) => { sv.child = c; })));
    serversStarted.catch(() => undefined);
    const serving = (): number => servers.filter((sv) => sv.child !== undefined).length;

    const byName = new Map<string, Bound>();
    const pkeyOf = new Map<string, string>();
    let firstBoundAt: number | undefined;
    let lastBoundAt = 0;
    let boundAt: number | undefined;
    let goAt = 0;
    let allBound!: () => void;
    const everyoneBound = new Promise<void>((resolve) => { allBound = resolve; });
    if (o.nodes === 0) allBound();
    for (const [gi, share] of splitGroups(names, o.processes).entries()) {
      const gspec: GroupSpec = {
        group: gi, fabric: fabricAddr!, names: share, mode: o.mode, port: o.port, seed: o.seed,
        backoffMs: CLUSTER_BACKOFF_MS, jitterMs: CLUSTER_JITTER_MS, bootWindowMs: bootWindowMs(o.nodes),
      };
      let onReady!: () => void;
      let onPinged!: (r: ReachResult) => void;
      let onIsolated!: (r: Extract<GroupEvent, { t: 'isolated' }>) => void;
      let onFinal!: (l: FinalLease[]) => void;
      let onError!: (e: Error) => void;
      const failed = new Promise<never>((_, reject) => { onError = reject; });
      failed.catch(() => undefined);
      const g: GroupState = {
        child: undefined as unknown as Child, names: share, attached: 0, carriers: 0, bound: 0,
        ready: Promise.race([new Promise<void>((r) => { onReady = r; }), failed]),
        pinged: Promise.race([new Promise<ReachResult>((r) => { onPinged = r; }), failed]),
        isolated: Promise.race([new Promise<Extract<GroupEvent, { t: 'isolated' }>>((r) => { onIsolated = r; }), failed]),
        final: Promise.race([new Promise<FinalLease[]>((r) => { onFinal = r; }), failed]),
      };
      for (const p of [g.ready, g.pinged, g.isolated, g.final]) p.catch(() => undefined);
      g.child = new Child(`host group ${gi}`, 'ipoib-cluster', ['host-group', JSON.stringify(gspec)], kids, (line) => {
        let e: GroupEvent;
        try {
          e = JSON.parse(line) as GroupEvent;
        } catch {
          return;
        }
        switch (e.t) {
          case 'progress': g.attached = e.attached; g.carriers = e.carriers; g.bound = e.bound; break;
          case 'ready': onReady(); break;
          case 'bound': {
            const now = performance.now();
            firstBoundAt ??= now;
            lastBoundAt = now;
            pkeyOf.set(e.node.name, e.pkey);
            if (!byName.has(e.node.name)) {
              byName.set(e.node.name, { node: { ...e.node, clientId: e.clientId, address: e.address, timeToBoundMs: e.timeToBoundMs } });
              if (byName.size === o.nodes) { boundAt = performance.now(); allBound(); }
            }
            break;
          }
          case 'pinged': onPinged(e.reach); break;
          case 'isolated': onIsolated(e); break;
          case 'final': onFinal(e.leases); break;
          case 'error': onError(new Error(`host group ${gi}: ${e.message}`)); break;
        }
      });
      void g.child.exited.then(({ code, signal }) => onError(new Error(`host group ${gi} exited (${code ?? signal}): ${g.child.lastError()}`)));
      groups.push(g);
    }
    info.groups = groups.length;
    const sum = (k: 'attached' | 'carriers' | 'bound'): number => groups.reduce((n, g) => n + g[k], 0);
    const serverWord = K === 1 ? 'server' : `${K} servers`;
    o.progress.start(() => `starting: ${groups.length} host groups, ${sum('attached')}/${o.nodes} HCAs attached, carrier on ${sum('carriers')}/${o.nodes}, ` +
      (K === 1 ? `server ${serving() === 0 ? 'starting' : 'ready'}` : `servers ready ${serving()}/${K}`));
    await within(Promise.all(groups.map((g) => g.ready)), START_LIMIT_MS + o.nodes * 20, 'attaching the hosts and bringing ib0 up');
    await serversStarted;
    o.progress.stop(`${o.nodes} hosts attached in ${groups.length} processes, ib0 up${P > 1 ? ` in ${P} partitions` : ''}; ${serverWord} ready on ${where}`);

    beginPhase('dhcp (DORA, ARP probe, announce)');
    goAt = performance.now();
    for (const g of groups) g.child.send({ t: 'go' });
    let killsStopped = false;
    let wakeKill: (() => void) | undefined;
    let restarting: Promise<void> = Promise.resolve();
    let restartingName: string | undefined;
    // --kill-server-every with K servers: one server per period, round robin (dhcpd1, dhcpd2, ...,
    // dhcpd1, ...); the others keep serving while it restarts.
    const killLoop = async (every: number): Promise<void> => {
      for (let victim = 0; !killsStopped; victim = (victim + 1) % K) {
        await new Promise<void>((resolve) => { const t = setTimeout(resolve, every); wakeKill = () => { clearTimeout(t); resolve(); }; });
        if (killsStopped) return;
        const sv = servers[victim]!;
        await readServerStats(sv);
        const killedAt = performance.now();
        sv.child!.kill('SIGKILL');
        info.serverKills++;
        await sv.child!.exited;
        sv.child = undefined;
        restartingName = sv.name;
        let done!: () => void;
        restarting = new Promise<void>((r) => { done = r; });
        try {
          sv.child = await startServer(sv, RESTART_LIMIT_MS);
          info.serverRestarts++;
          info.restartMs.push(performance.now() - killedAt);
        } finally {
          restartingName = undefined;
          done();
        }
      }
    };
    const kills = o.killServerEveryMs === undefined ? Promise.resolve() : killLoop(o.killServerEveryMs);
    kills.catch(() => undefined);
    o.progress.start(() => `booting: ${sum('bound')}/${o.nodes} bound` +
      (o.killServerEveryMs === undefined ? '' : `, server killed ${info.serverKills}x, ${restartingName === undefined ? 'serving' : `restarting${K === 1 ? '' : ` ${restartingName}`}`}`) +
      `, t=${((performance.now() - goAt) / 1000).toFixed(1)} s`);
    const groupFailure = Promise.race(groups.map((g) => g.final.then(() => undefined)));
    try {
      await within(Promise.race([everyoneBound, groupFailure, kills.then(() => new Promise<never>(() => undefined))]), BIND_LIMIT_MS, 'binding every host');
    } catch (err) {
      problems.push(`${o.nodes - byName.size} of ${o.nodes} host(s) not bound (${(err as Error).message})`);
    }
    killsStopped = true;
    wakeKill?.();
    try {
      await kills;
      await restarting;
    } catch (err) {
      problems.push((err as Error).message);
    }
    o.progress.stop(`${byName.size}/${o.nodes} hosts bound in ${((performance.now() - goAt) / 1000).toFixed(1)} s` +
      (o.killServerEveryMs === undefined ? '' : `, ${K === 1 ? 'server' : 'a server'} killed ${info.serverKills} time(s)`));

    // Reachability, inside each partition: every bound host pings one server (round robin over the
    // servers) at its address in the host's subnet, and one random peer of its partition (or more
    // with --ping-all). Then, with partitions, pings across them that must go unanswered.
    beginPhase('ping');
    let reach: ReachResult = { plan: '', attempted: 0, ok: 0, failed: [] };
    let isolation: IsolationResult | undefined;
    const groupOf = new Map<string, GroupState>();
    for (const g of groups) for (const n of g.names) groupOf.set(n, g);
    // Retried as through faults when servers were killed too: the last one restarted may have begun
    // serving before its broadcast group join completed (ipoib-dhcpd waits 10 s for carrier, then
    // serves anyway), and an ARP request reaches it only once the join is done (retried 1 s apart).
    const attempts = o.faults === undefined && info.serverKills === 0 ? PING_ATTEMPTS : PING_ATTEMPTS_WITH_FAULTS;
    if (servers.every((sv) => sv.child !== undefined) && problems.length === 0) {
      const rnd = seededRandom(o.seed);
      const peerGroups = layout.subnets.map(() => [] as PeerOf<{ name: string }>[]);
      const toServer: PingTargetOf<{ name: string }>[] = [];
      names.forEach((n, i) => {
        const b = byName.get(n);
        if (b === undefined) return;
        const s = layout.subnets[partitionOfHost(i, P) - 1]!;
        const j = i % K;
        peerGroups[s.id - 1]!.push({ host: { name: n }, address: b.node.address! });
        toServer.push({ from: { name: n }, to: ipv4ToString(serverAddressIn(s, j)), toName: layout.serverNames[j]! });
      });
      const { plan, name: planName } = serverAndPeersPlan(toServer, peerGroups, o, K, P, rnd);
      for (const g of groups) {
        const mine = plan.filter((t) => groupOf.get(t.from.name) === g).map((t): [string, string, string] => [t.from.name, t.to, t.toName]);
        g.child.send({ t: 'ping', plan: planName, targets: mine, attempts, timeoutMs: PING_TIMEOUT_MS, windowMs: Math.max(pingWindowMs(plan.length), plan.length * REAL_TIME_MS_PER_PING) });
      }
      o.progress.start(() => `ping ${planName}: ${plan.length} pings from ${groups.length} host groups`);
      try {
        const parts = await within(Promise.all(groups.map((g) => g.pinged)), PING_LIMIT_MS, 'the ping phase');
        reach = { plan: planName, attempted: 0, ok: 0, failed: [] };
        for (const r of parts) {
          reach.attempted += r.attempted;
          reach.ok += r.ok;
          reach.failed.push(...r.failed);
        }
      } catch (err) {
        problems.push((err as Error).message);
      }
      o.progress.stop();
      if (P > 1) {
        // One host of each partition pings a host of the next one (as the in-process form does).
        const cross: [string, string, string][] = [];
        for (let k = 0; k < P; k++) {
          const from = peerGroups[k]![0];
          const to = peerGroups[(k + 1) % P]![0];
          if (from !== undefined && to !== undefined) cross.push([from.host.name, to.address, to.host.name]);
        }
        // Without faults one unanswered ping proves the partition; with them a leak could hide behind a loss.
        const isolationAttempts = o.faults === undefined ? 1 : PING_ATTEMPTS_WITH_FAULTS;
        for (const g of groups) {
          g.child.send({ t: 'isolate', targets: cross.filter(([from]) => groupOf.get(from) === g), attempts: isolationAttempts, timeoutMs: PING_TIMEOUT_MS });
        }
        o.progress.start(() => `ping across partitions: ${cross.length} pings that must go unanswered`);
        try {
          const parts = await within(Promise.all(groups.map((g) => g.isolated)), PING_LIMIT_MS, 'the cross-partition pings');
          isolation = {
            plan: 'one host of each partition to a host of the next partition (expected unanswered)', attempted: cross.length,
            blocked: parts.reduce((n, r) => n + r.blocked, 0), leaked: parts.flatMap((r) => r.leaked),
          };
        } catch (err) {
          problems.push((err as Error).message);
        }
        o.progress.stop();
      }
    }
    for (const f of reach.failed) problems.push(`${f.from} cannot reach ${f.toName} (${f.to}): ${f.error}`);
    for (const f of isolation?.leaked ?? []) problems.push(`${f.from} reached ${f.toName} (${f.to}) in another partition`);

    // Stop: the groups report each host's last ACKed lease, the servers close the database.
    beginPhase('stop and check the lease database');
    const finals: FinalLease[] = [];
    for (const g of groups) g.child.send({ t: 'stop' });
    for (const g of groups) {
      try {
        finals.push(...await within(g.final, 30_000, `stopping ${g.child.what}`));
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    let fabricStatus: DaemonStatus | undefined;
    if (fabric !== undefined) fabricStatus = await queryFabricStatus(fabricAddr!.host, fabricAddr!.port, 3000).catch(() => undefined);
    await Promise.all(servers.map(async (sv) => {
      if (sv.child !== undefined) await readServerStats(sv);
      if (sv.unreadLives > 0) problems.push(`the counters of ${sv.unreadLives} ${sv.name} process(es) could not be read from ${sv.controlPath}`);
      await stopChild(sv.child, 'SIGTERM');
      sv.child = undefined;
    }));

    let leasesInDb = 0;
    const inDb = new Map<number, { state: string; clientId: string | null }>();
    const grantedBy = new Map<string, number>();
    const boundPerClient = new Map<string, number>();
    try {
      const store = await openLeaseStore(spec);
      try {
        for await (const l of allLeases(store)) {
          leasesInDb++;
          const clientId = l.clientId === null ? null : formatClientId(l.clientId);
          inDb.set(l.address, { state: l.state, clientId });
          if (l.state !== 'bound') continue;
          grantedBy.set(l.server, (grantedBy.get(l.server) ?? 0) + 1);
          if (clientId !== null) boundPerClient.set(clientId, (boundPerClient.get(clientId) ?? 0) + 1);
        }
      } finally {
        await store.close();
      }
    } catch (err) {
      problems.push(`the lease database ${spec} cannot be read: ${(err as Error).message}`);
    }
    const finalByName = new Map(finals.map((f) => [f.name, f]));
    const nodes: NodeReport[] = names.map((n) => {
      const b = byName.get(n);
      const f = finalByName.get(n);
      const address = f !== undefined ? f.address : b?.node.address ?? null;
      const pkey = P > 1 && pkeyOf.has(n) ? { pkey: pkeyOf.get(n)! } : {};
      if (b !== undefined) return { ...b.node, address, ...pkey };
      return { name: n, portGuid: '', lid: 0, hwAddress: '', mode: o.mode, mtu: 0, clientId: f?.clientId ?? '', address, timeToBoundMs: null };
    });
    const unbound = nodes.filter((n) => n.address === null);
    if (unbound.length > 0 && !problems.some((p) => p.includes('not bound'))) problems.push(`${unbound.length} host(s) not bound, first ${unbound[0]!.name}`);
    problems.push(...sharedAddressProblems(nodes));
    const where_ = isPgSpec(spec) ? spec : 'the lease database';
    const notInDb: string[] = [];
    for (const f of finals) {
      if (f.address === null) continue;
      const l = inDb.get(parseIpv4(f.address));
      if (l === undefined || l.state !== 'bound' || l.clientId !== f.clientId) {
        notInDb.push(`${f.address} (${f.name}: ${l === undefined ? 'no lease' : l.state !== 'bound' ? `lease ${l.state}` : `bound to ${l.clientId}`})`);
      }
    }
    if (notInDb.length > 0) problems.push(`${notInDb.length} ACKed lease(s) are not bound to their client in ${where_}, first ${notInDb[0]}`);
    const twice = [...boundPerClient.values()].filter((n) => n > 1).length;
    if (twice > 0) problems.push(`${twice} client identifier(s) hold more than one bound lease in ${where_}`);
    if (P > 1) {
      nodes.forEach((n, i) => {
        const s = layout.subnets[partitionOfHost(i, P) - 1]!;
        const want = `0x${s.pkey!.toString(16)}`;
        if (n.pkey !== undefined && n.pkey !== want) problems.push(`${n.name}: ib0 has P_Key ${n.pkey}, not its partition's ${want}`);
        if (n.address !== null && (parseIpv4(n.address) & 0xffff0000) >>> 0 !== s.network) problems.push(`${n.name}: ${n.address} is outside its partition's subnet ${ipv4ToString(s.network)}/16`);
      });
    }
    const conflicts = finals.reduce((n, f) => n + f.conflicts, 0);
    if (conflicts > 0) problems.push(`${conflicts} ARP probe(s) found the offered address in use`);
    await Promise.all(groups.map((g) => stopChild(g.child, 'SIGKILL', 5000)));
    await stopChild(fabric, 'SIGTERM');
    let capture: ClusterReport['capture'];
    if (capturing) {
      try {
        capture = {
          ...(o.pcap === undefined ? {} : { ipoib: o.pcap }), ...(o.pcapRaw === undefined ? {} : { raw: o.pcapRaw }),
          frames: pcapRecords(rawCapture), ipoibPackets: o.pcap === undefined ? 0 : pcapRecords(o.pcap), lost: 0,
        };
      } catch (err) {
        problems.push(`the capture is unreadable: ${(err as Error).message}`);
      }
    }
    beginPhase('');

    const spanS = firstBoundAt === undefined ? 0 : Math.max(1e-3, (lastBoundAt - goAt) / 1000);
    const pool = layout.subnets.map((s) => `${ipv4ToString(s.poolFirst)}-${ipv4ToString(s.poolLast)}`).join(', ');
    const serverReports: ServerReport[] = servers.map((sv, j) => {
      const granted = grantedBy.get(sv.name) ?? 0;
      return {
        name: sv.name, address: ipv4ToString(serverAddressIn(layout.subnets[0]!, j)), port: o.port, leaseDb: spec, leaseDbTemporary: o.leaseDb === undefined,
        pool,
        // Another process: its control socket's statistic-get-all, summed over every life of it.
        ...sv.stats,
        // One server: hosts bound per second; several: the bound leases each granted, per second of the same span.
        doraPerSecond: spanS === 0 ? 0 : (K === 1 ? byName.size : granted) / spanS, leasesInDb,
        ...(P > 1 ? { interfaces: layout.subnets.map((s) => `${s.iface} ${ipv4ToString(serverAddressIn(s, j))}`) } : {}),
        ...(K > 1 ? { leasesGranted: granted, commitsRefused: sv.stats.drops['commit-failed'] ?? 0 } : {}),
      };
    });
    // Every server must have answered. Unlike the in-process form (whose replies leave after a random
    // 0..4 ms so that no server wins every client's first-OFFER choice), this does not ask that each
    // ACKed a lease: in real time the servers race, and one that loses a client offers that address
    // to the next one, only to find at commit that the winner holds it (commitsRefused, and a NAK);
    // one server can end up granting nearly every lease. The report shows each server's share.
    if (K > 1 && o.nodes >= 2 * K) {
      const idle = serverReports.filter((s) => (s.sent['offer'] ?? 0) === 0);
      if (idle.length > 0) problems.push(`${idle.map((s) => s.name).join(', ')} answered no DISCOVER: not every server served`);
    }
    const report: ClusterReport = {
      addressing: 'dhcp', mode: o.mode, nodes,
      server: serverReports[0]!,
      ...(K > 1 ? { servers: serverReports } : {}),
      ...(partitionsText !== undefined ? { partitions: { count: P, conf: partitionsText } } : {}),
      ...(isolation !== undefined ? { isolation } : {}),
      processes: info, ...(capture === undefined ? {} : { capture }),
      reach: reach.attempted > 0 ? [reach] : [], phases, totals: totals(phases), problems, ok: problems.length === 0,
    };
    report.totals.wallMs = performance.now() - t0;
    if (boundAt !== undefined) report.totals.boundMs = boundAt - t0;
    if (fabricStatus !== undefined) {
      let sent = 0;
      let delivered = 0;
      for (const p of fabricStatus.fabric.ports) { sent += p.counters.xmitPkts; delivered += p.counters.rcvPkts; }
      report.totals.packets.total = sent;
      report.totals.delivered = delivered;
      const fs = fabricStatus.daemon.faults;
      if (o.faults !== undefined && fs !== undefined) {
        report.faults = { ...o.faults, lost: fs.lost, duplicated: fs.duplicated, reordered: fs.reordered, delayed: fs.delayed };
      }
    }
    return report;
  } finally {
    o.progress.stop();
    killAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killAll);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Asks a child to stop with `signal`, then SIGKILLs it after `ms`; resolves once it is gone. */
async function stopChild(c: Child | undefined, signal: NodeJS.Signals, ms = 10_000): Promise<void> {
  if (c === undefined || !c.alive) return;
  c.kill(signal);
  const t = setTimeout(() => c.kill('SIGKILL'), ms);
  await c.exited;
  clearTimeout(t);
}
