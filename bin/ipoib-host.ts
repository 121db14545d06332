// ipoib-host: one emulated machine (link/ipoib Host) as a process: its HCA attached to the
// `ipoib-fabric` daemon over UDP (or to a fabric of its own with --fabric inproc), its interfaces
// configured from the command line, and its control socket served for `ipoib` until SIGTERM.
//
//   ipoib-host --name NAME [--fabric HOST:PORT|inproc] [--ports N] [--mode datagram|connected]
//              [--without-connected-mode] [--addr DEV=A.B.C.D/LEN ...] [--up DEV ...]
//              [--runtime-dir DIR] [--carrier-timeout MS] [--log-level LEVEL]
//
// Once the control socket listens and every --up interface has carrier (or --carrier-timeout
// passed, which is logged), one line goes to stdout: "ready NAME SOCKET-PATH". Logs are JSON lines
// on stderr. SIGTERM or SIGINT: the socket is removed, the HCA detached, exit 0.
import { pino, type Logger } from 'pino';
import { Fabric } from '../link/fabric/fabric.js';
import { RealScheduler } from '../link/fabric/scheduler.js';
import { InProcessTransport, type Transport } from '../link/fabric/transport.js';
import { UdpTransport } from '../link/fabric/udp-client.js';
import { DEFAULT_FABRIC_HOST, DEFAULT_FABRIC_PORT, parseFabricAddress } from '../link/fabric/udp-protocol.js';
import { Host, isIpoibError, type IpoibEvent, type IpoibMode } from '../link/ipoib/index.js';
import { ControlError, ControlServer, checkHostName, defaultRuntimeDir, type ControlEvent } from '../link/ipoib/control-socket.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, intOption, program, run } from './cli.js';

const NAME = 'ipoib-host';
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface HostProcessOptions {
  name: string;
  /** 'inproc' or HOST:PORT of the fabric daemon. */
  fabric: string;
  ports: number;
  mode: IpoibMode;
  cmSupported: boolean;
  /** [device, A.B.C.D/LEN] in command-line order. */
  addrs: [string, string][];
  up: string[];
  runtimeDir: string;
  carrierTimeoutMs: number;
  log: Logger;
}

export interface RunningHost {
  host: Host;
  control: ControlServer;
  /** Every --up interface had carrier before the timeout. */
  carrier: boolean;
  close(): Promise<void>;
}

function parseAddrOption(v: string, prev: [string, string][] = []): [string, string][] {
  const m = /^([^=\s]+)=(\S+)$/.exec(v);
  if (m === null) throw new CliError(`--addr: '${v}' is not DEV=A.B.C.D/LEN`);
  return [...prev, [m[1]!, m[2]!]];
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** A configuration error of the host (bad address, unknown device) is a usage error. */
function configError(what: string, err: unknown): never {
  if (isIpoibError(err)) throw new CliError(`${what}: ${err.message}`, err.code === 'EINVAL' || err.code === 'ENODEV' || err.code === 'EEXIST' ? EXIT_USAGE : EXIT_RUNTIME);
  throw err;
}

async function waitCarrier(host: Host, devs: string[], timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (devs.every((d) => host.iface(d).carrier)) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Attaches the host, configures it, serves its control socket. The caller owns close(). */
export async function startHost(o: HostProcessOptions): Promise<RunningHost> {
  const log = o.log;
  const scheduler = new RealScheduler();
  let transport: Transport;
  let udp: UdpTransport | undefined;
  let fabric: Fabric | undefined;
  if (o.fabric === 'inproc') {
    fabric = new Fabric({ scheduler });
    transport = new InProcessTransport(fabric);
  } else {
    let addr: { host: string; port: number };
    try {
      addr = parseFabricAddress(o.fabric);
    } catch (err) {
      throw new CliError(`--fabric: ${(err as Error).message} (or 'inproc')`);
    }
    try {
      udp = await UdpTransport.connect(addr.host, addr.port, {
        onEvent: (e) => log.info({ ...e, event: `fabric_${e.type}` }, `fabric: ${e.type}`),
      });
    } catch (err) {
      throw new CliError(`--fabric ${o.fabric}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT_RUNTIME);
    }
    transport = udp;
  }
  const logger = (e: IpoibEvent): void => {
    // The host name is in every line already (the logger's base).
    const { msg, level, host: _host, ...rest } = e;
    log[level](rest, msg);
  };
  let host: Host;
  try {
    host = await Host.create(transport, { name: o.name, scheduler, logger, ports: o.ports, mode: o.mode, cmSupported: o.cmSupported });
  } catch (err) {
    await udp?.close();
    throw new CliError(`attaching ${o.name} to the fabric ${o.fabric}: ${(err as Error).message}`, EXIT_RUNTIME);
  }
  const undo = async (): Promise<void> => {
    host.close();
    await udp?.close();
  };
  let control: ControlServer;
  try {
    for (const [dev, cidr] of o.addrs) {
      try { host.addrAdd(dev, cidr); } catch (err) { configError(`--addr ${dev}=${cidr}`, err); }
    }
    for (const dev of o.up) {
      try { host.linkSet(dev, { up: true }); } catch (err) { configError(`--up ${dev}`, err); }
    }
    control = await ControlServer.listen(host, {
      dir: o.runtimeDir,
      onEvent: (e: ControlEvent) => {
        if (e.type === 'stale_socket_removed') log.warn({ event: 'control_stale_socket', path: e.path }, `removed the stale control socket ${e.path}`);
        else if (e.type === 'bad_request') log.warn({ event: 'control_bad_request', code: e.code }, `control: ${e.message}`);
        else log.error({ event: 'control_error', cmd: e.cmd, err: e.error }, `control: ${e.cmd} failed unexpectedly`);
      },
    });
  } catch (err) {
    await undo();
    if (err instanceof ControlError) throw new CliError(err.message, EXIT_RUNTIME);
    throw err;
  }
  log.info({ event: 'control_listening', path: control.path }, `control socket ${control.path}`);
  const carrier = await waitCarrier(host, o.up, o.carrierTimeoutMs);
  if (!carrier) {
    const missing = o.up.filter((d) => !host.iface(d).carrier);
    log.warn({ event: 'no_carrier', devs: missing }, `no carrier on ${missing.join(', ')} after ${o.carrierTimeoutMs} ms; serving anyway`);
  }
  let closed = false;
  return {
    host, control, carrier,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await control.close();
      await undo();
    },
  };
}

interface CliOptions {
  name: string;
  fabric: string;
  ports: number;
  mode: string;
  withoutConnectedMode?: boolean;
  addr?: [string, string][];
  up?: string[];
  runtimeDir?: string;
  carrierTimeout: number;
  logLevel: string;
}

export async function main(argv: string[]): Promise<number> {
  const defaultFabric = `${DEFAULT_FABRIC_HOST}:${DEFAULT_FABRIC_PORT}`;
  let code = EXIT_OK;
  const p = program(NAME, 'One emulated IPoIB host on the fabric, controlled with `ipoib` through its control socket.')
    .requiredOption('--name <name>', 'host name (GUIDs are derived from it; the control socket is <runtime dir>/<name>.sock)')
    .option('--fabric <host:port|inproc>', `fabric daemon address, or 'inproc' for a fabric inside this process`, defaultFabric)
    .option('--ports <n>', 'HCA ports (interfaces ib0..ib<n-1>)', intOption('--ports', 1, 8), 1)
    .option('--mode <mode>', 'IPoIB mode of the interfaces: datagram or connected', 'datagram')
    .option('--without-connected-mode', 'IPoIB built without connected mode (no RC flag; `mode connected` refused)')
    .option('--addr <dev=cidr>', 'add an IPv4 address, e.g. ib0=10.0.0.2/24 (repeatable)', parseAddrOption)
    .option('--up <dev>', 'bring an interface up (repeatable)', collect)
    .option('--runtime-dir <dir>', `directory of control sockets (default ${defaultRuntimeDir()})`)
    .option('--carrier-timeout <ms>', 'how long to wait for carrier on --up interfaces before "ready"', intOption('--carrier-timeout', 0, 600_000), 10_000)
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (c: CliOptions) => {
      try {
        checkHostName(c.name);
      } catch (err) {
        throw new CliError(`--name: ${(err as Error).message}`);
      }
      if (c.mode !== 'datagram' && c.mode !== 'connected') throw new CliError(`--mode: '${c.mode}' is not datagram or connected`);
      if (c.mode === 'connected' && c.withoutConnectedMode === true) throw new CliError('--mode connected contradicts --without-connected-mode');
      if (!LEVELS.includes(c.logLevel)) throw new CliError(`--log-level: '${c.logLevel}' is not a pino level`);
      const log = pino({ name: NAME, level: c.logLevel, base: { host: c.name, pid: process.pid } }, pino.destination(2));
      const h = await startHost({
        name: c.name, fabric: c.fabric, ports: c.ports, mode: c.mode, cmSupported: c.withoutConnectedMode !== true, addrs: c.addr ?? [],
        up: c.up ?? [], runtimeDir: c.runtimeDir ?? defaultRuntimeDir(), carrierTimeoutMs: c.carrierTimeout, log,
      });
      process.stdout.write(`ready ${c.name} ${h.control.path}\n`);
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      log.info({ event: 'shutdown', signal }, 'shutting down');
      await h.close();
      log.flush();
      // Everything is closed; should a timer of the fabric still hold the loop, do not hang.
      setTimeout(() => process.exit(EXIT_OK), 500).unref();
      code = EXIT_OK;
    });
  const r = await run(NAME, p, argv);
  return r !== EXIT_OK ? r : code;
}
