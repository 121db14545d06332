// One host group of `ipoib-cluster --fabric spawn|HOST:PORT`: an OS process holding a share of the
// cluster's hosts, all attached to the `ipoib-fabric` daemon through one UdpTransport (one UDP
// socket carries every port of the process: the daemon tells sessions apart by their session id,
// link/fabric/udp-protocol.ts). Run by the coordinator (processes.ts) as the hidden subcommand
//
//   ipoib-cluster host-group '<GroupSpec as JSON>'
//
// It attaches its hosts, brings ib0 up (port ACTIVE, broadcast group joined), and on "go" starts a
// ClientDaemon per host wired as the in-process form does (hostClient(), host-ports.ts) but on the
// wall clock. With --partitions the fabric's SM puts each host's ib0 in its partition (its port's
// P_Key table holds that one P_Key), so a host is configured the same either way; the group reports
// ib0's P_Key with each bound host, and runs the cross-partition pings the coordinator asks for
// ("isolate": each must go unanswered). It talks to the coordinator in JSON lines: events on stdout
// (GroupEvent), commands on stdin (GroupCommand). When stdin closes (the coordinator is gone) the
// group exits at once, so a coordinator that dies leaves no host group behind.
import { createInterface } from 'node:readline';
import { systemClock } from '../../client/daemon.js';
import { RealScheduler, seededRandom } from '../../link/fabric/scheduler.js';
import { UdpTransport } from '../../link/fabric/udp-client.js';
import { Host, type IpoibMode } from '../../link/ipoib/index.js';
import { formatClientId, ipv4ToString } from '../../protocol/index.js';
import { nodeRow, type NodeRow } from './cluster.js';
import { hostClient, randomSource, type HostClient } from './host-ports.js';
import { pingTargets, type PingTarget, type ReachResult } from './reach.js';

export interface GroupSpec {
  /** Group number (0..G-1), for messages and seeds. */
  group: number;
  fabric: { host: string; port: number };
  names: string[];
  mode: IpoibMode;
  /** The server's port P (clients use P + 1). */
  port: number;
  seed: number;
  /** Retransmission schedule of DISCOVER/REQUEST, ms (the last repeats). */
  backoffMs: number[];
  jitterMs: number;
  /** Each client's first DISCOVER waits a random time in [0, bootWindowMs). */
  bootWindowMs: number;
}

/** What a group prints on stdout, one JSON object a line. */
export type GroupEvent =
  | { t: 'progress'; attached: number; carriers: number; bound: number; probes: number }
  | { t: 'ready' }
  | { t: 'bound'; node: NodeRow; clientId: string; address: string; timeToBoundMs: number; pkey: string }
  | { t: 'pinged'; reach: ReachResult }
  | { t: 'isolated'; blocked: number; leaked: { from: string; to: string; toName: string }[] }
  | { t: 'final'; leases: FinalLease[] }
  | { t: 'error'; message: string };

/** Each host's lease at the end: the last one it was ACKed for (null: never bound). */
export interface FinalLease {
  name: string;
  clientId: string;
  address: string | null;
  expiresAt: number | null;
  conflicts: number;
}

/** What the coordinator writes on stdin. */
export type GroupCommand =
  | { t: 'go' }
  | { t: 'ping'; plan: string; targets: [from: string, to: string, toName: string][]; attempts: number; timeoutMs: number; windowMs: number }
  /** Pings that must go unanswered (another partition): each with a /32 route on ib0, as runIsolation() (reach.ts) does. */
  | { t: 'isolate'; targets: [from: string, to: string, toName: string][]; attempts: number; timeoutMs: number }
  | { t: 'stop' };

/**
 * Cross-partition pings (runIsolation() in reach.ts, on this group's hosts): each source gets a /32
 * route to the target on ib0, so IP considers it on-link and only the partition can stop the ping;
 * a ping answered within `attempts` tries is a leak.
 */
async function isolation(hosts: readonly Host[], cmd: Extract<GroupCommand, { t: 'isolate' }>): Promise<{ blocked: number; leaked: { from: string; to: string; toName: string }[] }> {
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const leaked: { from: string; to: string; toName: string }[] = [];
  let blocked = 0;
  await Promise.all(cmd.targets.map(async ([from, to, toName]) => {
    const h = byName.get(from);
    if (h === undefined) return;
    const route = `${to}/32`;
    h.routeAdd(route, { dev: 'ib0' });
    try {
      let answered = false;
      for (let a = 0; a < cmd.attempts && !answered; a++) {
        const r = await h.ping(to, { count: 1, interface: 'ib0', timeoutMs: cmd.timeoutMs }).catch(() => undefined);
        answered = r?.received === 1;
      }
      if (answered) leaked.push({ from, to, toName });
      else blocked++;
    } finally {
      h.routeDel(route);
    }
  }));
  return { blocked, leaked };
}

/** Hosts attached at once: enough to keep the daemon busy, few enough that no ATTACH times out. */
const ATTACH_BATCH = 64;
const PROGRESS_EVERY_MS = 250;

function emit(e: GroupEvent): void {
  process.stdout.write(JSON.stringify(e) + '\n');
}

export async function hostGroupMain(argv: string[]): Promise<number> {
  let spec: GroupSpec;
  try {
    spec = JSON.parse(argv[0] ?? '') as GroupSpec;
  } catch {
    process.stderr.write('ipoib-cluster host-group: the argument must be the group spec as JSON (run by ipoib-cluster, not by hand)\n');
    return 2;
  }
  try {
    return await runGroup(spec);
  } catch (err) {
    emit({ t: 'error', message: (err as Error).message });
    return 1;
  }
}

async function runGroup(spec: GroupSpec): Promise<number> {
  const scheduler = new RealScheduler();
  const commands: GroupCommand[] = [];
  let wake: (() => void) | undefined;
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    try {
      commands.push(JSON.parse(line) as GroupCommand);
    } catch {
      return;
    }
    wake?.();
  });
  // The coordinator is gone (exited, killed): nothing is left to report to.
  rl.on('close', () => process.exit(1));
  const next = async (): Promise<GroupCommand> => {
    while (commands.length === 0) await new Promise<void>((resolve) => { wake = resolve; });
    return commands.shift()!;
  };

  // Attaches retry for a while: a thousand ports attaching at once keep the daemon busy.
  const transport = await UdpTransport.connect(spec.fabric.host, spec.fabric.port, { attachTimeoutMs: 1000, attachRetries: 20 });
  const hosts: Host[] = [];
  let carriers = 0;
  let bound = 0;
  let clients: HostClient[] = [];
  const progress = (): void => emit({ t: 'progress', attached: hosts.length, carriers, bound, probes: clients.reduce((n, c) => n + c.arp.probes, 0) });
  const ticker = setInterval(progress, PROGRESS_EVERY_MS);
  try {
    for (let i = 0; i < spec.names.length; i += ATTACH_BATCH) {
      const batch = spec.names.slice(i, i + ATTACH_BATCH).map((name) => Host.create(transport, { name, scheduler, mode: spec.mode }));
      hosts.push(...await Promise.all(batch));
    }
    await Promise.all(hosts.map((h) => {
      h.linkSet('ib0', { up: true });
      return h.iface('ib0').waitCarrier().then(() => { carriers++; });
    }));
    progress();
    emit({ t: 'ready' });

    for (;;) {
      const cmd = await next();
      if (cmd.t === 'go') {
        const rnd = randomSource(seededRandom(spec.seed * 1000 + spec.group));
        const arpRandom = seededRandom(spec.seed * 1000 + spec.group + 500);
        clients = hosts.map((host) => {
          const c: HostClient = hostClient(host, {
            mode: spec.mode, serverPort: spec.port, clock: systemClock, random: rnd, arpRandom,
            onBound: () => {
              bound++;
              emit({
                t: 'bound', node: nodeRow(host), clientId: formatClientId(c.daemon.engine('ib0').clientId),
                address: ipv4ToString(c.configurator.address!), timeToBoundMs: c.configurator.boundAt! - c.startedAt,
                pkey: `0x${host.iface('ib0').pkey.toString(16).padStart(4, '0')}`,
              });
            },
            config: {
              backoffMs: spec.backoffMs, jitterMs: spec.jitterMs, initialDelayMinMs: 0, initialDelayMaxMs: spec.bootWindowMs,
              // Take the first OFFER, from whichever server (ISC dhclient's select-timeout defaults to 0 too).
              selectWindowMs: 0,
            },
          });
          return c;
        });
        await Promise.all(clients.map((c) => c.daemon.start()));
      } else if (cmd.t === 'ping') {
        const byName = new Map(hosts.map((h) => [h.name, h]));
        const targets: PingTarget[] = [];
        for (const [from, to, toName] of cmd.targets) {
          const h = byName.get(from);
          if (h !== undefined) targets.push({ from: h, to, toName });
        }
        const reach = await pingTargets(scheduler, seededRandom(spec.seed + spec.group), cmd.plan, targets, undefined, cmd.attempts, cmd.timeoutMs, cmd.windowMs);
        emit({ t: 'pinged', reach });
      } else if (cmd.t === 'isolate') {
        emit({ t: 'isolated', ...await isolation(hosts, cmd) });
      } else {
        // Stopped without DHCPRELEASE (dhclient -x): every lease stays bound in the server's database.
        await Promise.all(clients.map((c) => c.daemon.stop({ release: false })));
        emit({
          t: 'final', leases: clients.map((c) => {
            const e = c.daemon.engine('ib0');
            return {
              name: c.host.name, clientId: formatClientId(e.clientId), address: e.lease === null ? null : ipv4ToString(e.lease.address),
              expiresAt: e.lease?.expiresAt ?? null, conflicts: c.arp.conflicts,
            };
          }),
        });
        return 0;
      }
    }
  } finally {
    clearInterval(ticker);
    for (const h of hosts) h.close();
    await transport.close().catch(() => undefined);
    rl.removeAllListeners('close');
    rl.close();
    process.stdin.destroy();
  }
}
