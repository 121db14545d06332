// ipoib-boot: a host brought up from openib.conf and ifcfg-ib<n> files, with openibd's verbs.
//
//   ipoib-boot [start|stop|restart|status] --conf OPENIB_CONF [--ifcfg-dir DIR] [--layout redhat|suse]
//              [--ports ib0,ib1] [--fabric HOST:PORT|inproc] [--host NAME] [--dhcp-port P]
//              [--ready-timeout MS] [--ha-poll MS] [--runtime-dir DIR] [--dry-run] [--json] [-v]
//
// --dry-run prints the bring-up plan (a table, or JSON with --json) and exits 0, or 2 when the
// configuration has errors; no fabric is needed. Without it, `start` attaches host NAME to the
// fabric (the `ipoib-fabric` daemon at HOST:PORT, or a fabric of its own with `inproc`), executes
// the plan (boot/execute.ts), prints what happened to each interface, and stays up as that host:
// its control socket for `ipoib`, and <runtime dir>/NAME.boot.sock for `ipoib-boot status|stop`,
// `ipoib-ha` and `ib-bond`. `status` and `stop` talk to that running instance; `restart` stops it
// and starts again. The DHCP client is client/daemon.ts on the host's UDP sockets, server port P
// (default 0x8043) and client port P + 1 (DESIGN.md, port convention).
import { Option } from 'commander';
import { formatDiagnostic } from '../boot/diagnostic.js';
import { BootControlError, BootControlServer, bootSocketPath, callBoot } from '../boot/execute-control.js';
import { executePlan, formatBootReport, type DhcpHandle, type DhcpStarter } from '../boot/execute.js';
import { ConfigFileError, loadBootPlan } from '../boot/load.js';
import { formatPlanTable, planJson } from '../boot/plan-table.js';
import type { BootPlan } from '../boot/plan.js';
import type { ArpOps, Clock, InterfaceConfigurator } from '../client/daemon.js';
import { ClientDaemon } from '../client/daemon.js';
import { Fabric } from '../link/fabric/fabric.js';
import { RealScheduler, seededRandom, type Random } from '../link/fabric/scheduler.js';
import { InProcessTransport, type Transport } from '../link/fabric/transport.js';
import { UdpTransport } from '../link/fabric/udp-client.js';
import { parseFabricAddress } from '../link/fabric/udp-protocol.js';
import { ControlServer, checkHostName, defaultRuntimeDir } from '../link/ipoib/control-socket.js';
import { Host, type DatagramEndpoint } from '../link/ipoib/index.js';
import { formatClientId, ipv4ToString } from '../protocol/index.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, intOption, program, run } from './cli.js';
import { HostArpOps, HostConfigurator, randomSource, virtualClock } from './cluster/host-ports.js';

export interface BootIo {
  out(text: string): void;
  err(text: string): void;
}

const stdio: BootIo = {
  out: (s) => { process.stdout.write(s); },
  err: (s) => { process.stderr.write(s); },
};

interface BootOpts {
  conf?: string;
  ifcfgDir?: string;
  layout?: 'redhat' | 'suse';
  ports?: string[];
  fabric?: string;
  host?: string;
  dhcpPort: number;
  readyTimeout: number;
  haPoll?: number;
  runtimeDir?: string;
  dryRun?: boolean;
  json?: boolean;
  verbose?: boolean;
}

const VERBS = ['start', 'stop', 'restart', 'status'] as const;
/** ipoib-cluster's server port: above 0x8000 as the OFED notes ask, ending in 0x43 like 67. */
export const DEFAULT_DHCP_SERVER_PORT = 0x8043;

export interface HostDhcpOptions {
  /** The server's port P; the client listens on P + 1. */
  serverPort: number;
  clock: Clock;
  random: Random;
  /** ISC dhclient's initial delay, drawn in [0, max) (default 1000 ms). */
  initialDelayMaxMs?: number;
}

/**
 * The executor's DHCP client on an emulated Host: client/daemon.ts with bin/cluster/host-ports.ts's
 * ARP and configurator, each pointed at the device that carries the interface now. The client's
 * identity (its interface name and the port GUID of its identifier) never changes, so after an HA
 * failover the renewal carries the same client identifier and the server keeps the address.
 */
export function hostDhcpStarter(o: HostDhcpOptions): DhcpStarter {
  return async (req) => {
    const { host, name } = req;
    const sock = host.udpSocket({ interface: req.device() }).bind('0.0.0.0', o.serverPort + 1);
    sock.setBroadcast(true);
    const endpoint: DatagramEndpoint = {
      send: (buf, address, port, so = {}) => sock.send(buf, address, port, { ...so, interface: req.device() }),
      onMessage: (h) => sock.onMessage(h),
      close: () => sock.close(),
    };
    let bound!: (a: string) => void;
    const boundP = new Promise<string>((resolve) => { bound = resolve; });
    let current: string | null = null;
    const inner = new HostConfigurator(host, o.clock);
    const configurator: InterfaceConfigurator = {
      prepare: () => inner.prepare(req.device()),
      apply: async (_iface, change) => {
        await inner.apply(req.device(), change);
        current = `${ipv4ToString(change.lease.address)}/${change.lease.prefixLength}`;
        bound(current);
      },
      deconfigure: async (_iface, lease) => {
        await inner.deconfigure(req.device(), lease);
        current = null;
      },
    };
    const arpInner = new HostArpOps(host, o.random);
    const arp: ArpOps = {
      probe: (_iface, address, probe) => arpInner.probe(req.device(), address, probe),
      announce: (_iface, address) => arpInner.announce(req.device(), address),
    };
    const daemon = new ClientDaemon({
      interfaces: [{
        config: {
          interface: name, portGuid: req.portGuid, hostName: host.name, link: { mode: req.mode, datagramMtu: req.datagramMtu },
          initialDelayMinMs: 0, initialDelayMaxMs: o.initialDelayMaxMs ?? 1000,
        },
        endpoint, serverPort: o.serverPort, arp, configurator,
      }],
      clock: o.clock, random: randomSource(o.random), leaseFile: null, hookScript: null,
    });
    await daemon.start();
    const handle: DhcpHandle = {
      bound: boundP,
      address: () => current,
      clientId: () => formatClientId(daemon.engine(name).clientId),
      moved: (dev) => { sock.bindToDevice(dev); },
      stop: () => daemon.stop({ release: false }),
    };
    return handle;
  };
}

/** Interfaces ib0..ib<n-1>: enough HCA ports for every physical interface the plan names. */
export function portCount(plan: BootPlan): number {
  let n = 1;
  for (const p of plan.ports) {
    const m = /^ib(\d+)$/.exec(p);
    if (m !== null) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (const c of s) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

export async function main(argv: string[], io: BootIo = stdio): Promise<number> {
  let code = EXIT_OK;
  const p = program('ipoib-boot',
    'Brings a host up from openib.conf and ifcfg-ib<n> files (OFED 1.2 openibd): --dry-run prints the plan; start executes it on a fabric and stays up.')
    .argument('[verb]', `${VERBS.join('|')} (default start)`, 'start')
    .option('--conf <file>', 'openib.conf to read (e.g. /etc/infiniband/openib.conf); needed by start and --dry-run')
    .option('--ifcfg-dir <dir>', 'directory with ifcfg-ib* and ifcfg-bond* files (/etc/sysconfig/network-scripts or /etc/sysconfig/network)')
    .addOption(new Option('--layout <layout>', 'ifcfg layout; default: from the directory name, then from the keys').choices(['redhat', 'suse']))
    .option('--ports <list>', "the host's physical IPoIB interfaces, comma separated; default: those the ifcfg files name",
      (v: string) => v.split(',').map((s) => s.trim()).filter((s) => s !== ''))
    .option('--fabric <host:port|inproc>', "fabric daemon to attach to, or 'inproc' for a fabric of this process alone (not used by --dry-run)", (v: string) => {
      if (v === 'inproc') return v;
      try {
        parseFabricAddress(v);
      } catch (err) {
        throw new CliError(`--fabric: ${(err as Error).message} (or 'inproc')`);
      }
      return v;
    })
    .option('--host <name>', 'host name on the fabric (and of the control sockets)')
    .option('--dhcp-port <port>', 'DHCP server port P (the client uses P + 1)', intOption('--dhcp-port', 1, 65534), DEFAULT_DHCP_SERVER_PORT)
    .option('--ready-timeout <ms>', 'bound on the wait for carriers and for each DHCP lease', intOption('--ready-timeout', 1, 3_600_000), 60_000)
    .option('--ha-poll <ms>', 'HA link monitor interval (default 100)', intOption('--ha-poll', 1, 60_000))
    .option('--runtime-dir <dir>', 'where the control sockets live (default: $IPOIB_RUNTIME_DIR, ...)')
    .option('--dry-run', 'print the plan; touch nothing')
    .option('--json', 'with --dry-run: print the plan as JSON')
    .option('-v, --verbose', 'show info notes and HA/bond events too')
    .action(async (verb: string, o: BootOpts) => {
      if (!(VERBS as readonly string[]).includes(verb)) {
        throw new CliError(`'${verb}' is not a verb: use ${VERBS.join(', ')}`);
      }
      if (o.json === true && o.dryRun !== true) throw new CliError('--json needs --dry-run');
      const dir = o.runtimeDir ?? defaultRuntimeDir();
      if (o.dryRun !== true && (verb === 'status' || verb === 'stop' || verb === 'restart')) {
        if (o.host === undefined) throw new CliError(`${verb}: --host NAME names the running ipoib-boot`);
        const path = bootSocketPath(checkHostName(o.host), dir);
        try {
          if (verb === 'status') {
            io.out(formatBootReport(await callBoot(path, 'boot.status', {})));
            return;
          }
          await callBoot(path, 'boot.stop', {});
          io.out(`ipoib-boot: ${o.host} stopped\n`);
        } catch (err) {
          if (!(err instanceof BootControlError)) throw err;
          if (verb !== 'restart') throw new CliError(err.message, EXIT_RUNTIME);
          io.err(`ipoib-boot: restart: ${err.message}; starting anyway\n`);
        }
        if (verb === 'stop') return;
        await new Promise((r) => setTimeout(r, 200));
      }
      if (o.conf === undefined) throw new CliError('--conf OPENIB_CONF is required');
      let plan;
      try {
        plan = loadBootPlan({
          conf: o.conf, ifcfgDir: o.ifcfgDir ?? null, layout: o.layout ?? null, ports: o.ports ?? null, host: o.host ?? null,
        });
      } catch (err) {
        if (err instanceof ConfigFileError) throw new CliError(err.message, EXIT_USAGE);
        throw err;
      }
      const errors = plan.warnings.filter((d) => d.severity === 'error');
      if (o.dryRun === true) {
        io.out(o.json === true ? planJson(plan) : formatPlanTable(plan, verb, o.verbose === true));
        const first = errors[0];
        if (first !== undefined) {
          io.err(`ipoib-boot: ${errors.length} configuration error${errors.length > 1 ? 's' : ''}; first: ${formatDiagnostic(first)}\n`);
          code = EXIT_USAGE;
        }
        return;
      }
      if (o.fabric === undefined) throw new CliError(`${verb}: --fabric HOST:PORT or --fabric inproc is required (or --dry-run)`);
      if (o.host === undefined) throw new CliError(`${verb}: --host NAME is required`);
      code = await serve(plan, { ...o, fabric: o.fabric, host: checkHostName(o.host), runtimeDir: dir }, io);
    });
  const rc = await run('ipoib-boot', p, argv);
  return rc === EXIT_OK ? code : rc;
}

/** Attaches, executes the plan, serves the sockets until SIGTERM/SIGINT or `ipoib-boot stop`. */
async function serve(plan: BootPlan, o: BootOpts & { fabric: string; host: string; runtimeDir: string }, io: BootIo): Promise<number> {
  const scheduler = new RealScheduler();
  let transport: Transport;
  let udp: UdpTransport | undefined;
  if (o.fabric === 'inproc') {
    transport = new InProcessTransport(new Fabric({ scheduler }));
  } else {
    let addr;
    try {
      addr = parseFabricAddress(o.fabric);
    } catch (err) {
      throw new CliError(`--fabric: ${(err as Error).message} (or 'inproc')`);
    }
    try {
      udp = await UdpTransport.connect(addr.host, addr.port);
    } catch (err) {
      throw new CliError(`--fabric ${o.fabric}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT_RUNTIME);
    }
    transport = udp;
  }
  const host = await Host.create(transport, { name: o.host, scheduler, ports: portCount(plan) });
  const random = seededRandom(fnv(o.host));
  const verbose = o.verbose === true;
  const ex = await executePlan(host, plan, {
    startDhcpClient: hostDhcpStarter({ serverPort: o.dhcpPort, clock: virtualClock(scheduler, 0), random }),
    readyMs: o.readyTimeout,
    ...(o.haPoll !== undefined ? { haPollMs: o.haPoll } : {}),
    onHaEvent: (e) => { if (verbose || e.kind !== 'started') io.err(`ipoib-ha: ${e.message}\n`); },
    onBondEvent: (e) => { if (verbose || e.kind === 'failover' || e.kind === 'no-active' || e.kind === 'problem') io.err(`ib-bond: ${e.message}\n`); },
  });
  const report = ex.report();
  io.out(formatBootReport(report));
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => { stop = resolve; });
  const control = await ControlServer.listen(host, { dir: o.runtimeDir });
  const boot = await BootControlServer.listen(ex, bootSocketPath(o.host, o.runtimeDir), () => setImmediate(stop));
  io.out(`ready ${o.host} ${control.path} ${boot.path}\n`);
  const onSignal = (): void => stop();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await stopped;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  await ex.stop();
  await boot.close();
  await control.close();
  host.close();
  await udp?.close();
  return report.ok ? EXIT_OK : EXIT_RUNTIME;
}
