// ipoib-dhclient: the DHCP client for IP over InfiniBand (RFC 4390), with ISC dhclient's habits:
//
//   ipoib-dhclient [-p PORT] [-1] [-d] [-v] [-r] [-x] [-sf SCRIPT] [-lf FILE] [-pf FILE]
//                  [--client-id duid-en|guid|hex:BYTES] [--link kernel|fabric] [--server ADDRESS] [--timeout SECONDS]
//                  [--configure]                                                       (kernel link)
//                  [--fabric HOST:PORT] [--host NAME] [--port-guid GUID] [--ports N] [--mode datagram|connected]
//                  [--runtime-dir DIR] [--carrier-timeout SECONDS] [--allow-low-port]   (the project's link)
//                  IFACE...
//
// -p PORT is the client's own port; requests go to PORT−1 (default 68/67). -1 tries once: no lease
// within --timeout (default 60 s, ISC's `timeout 60`) exits 2. Without -r/-x the program stays in
// the foreground renewing until SIGTERM/SIGINT, which stop it WITHOUT releasing (as ISC dhclient:
// only -r releases; the lease stays configured and saved for INIT-REBOOT). -r stops a running client
// (pid file) and releases its lease; -x stops it without releasing. It never forks: -d is accepted
// for ISC compatibility; run it under a service manager or with `&`.
// --link kernel uses the kernel's UDP sockets (one interface per process: node has no
// SO_BINDTODEVICE); --configure then applies the lease with `ip`, else only the -sf script does.
// --link fabric (implied by --fabric; the default) attaches an emulated host NAME (default
// <hostname>-<pid>; GUIDs derived from NAME unless --port-guid) with --ports HCA ports to the
// `ipoib-fabric` daemon, brings each IFACE (ib<n>, or a P_Key child ib<n>.<pkey>) up, waits at most
// --carrier-timeout (default 10 s) for carrier and otherwise names what is missing (port down, no
// SM, P_Key missing, join refused or unanswered), serves the host's control socket for `ipoib --host
// NAME`, runs the client on every IFACE in parallel and applies each lease to the emulated interface
// (address, prefix, routes, option 26 MTU when it fits the mode). Stdout gets "ready NAME SOCKET"
// once the control socket listens and "bound to A.B.C.D/LEN on IFACE -- renewal in N seconds." per
// lease. On this link PORT−1 must be above 0x8000 (OFED 1.2 release notes), unless --allow-low-port.
// The pid file defaults to <runtime dir>/NAME.dhclient.pid; `-r`/`-x` with the same --host find it
// (a running fabric client releases on SIGUSR1, which is what -r sends it).
import { readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ClientDaemon, LeaseFileStore, systemClock, type DaemonInterface, type InterfaceConfigurator, writeFileAtomic } from '../client/daemon.js';
import { CarrierWatch, waitForCarrier } from '../client/daemon-fabric.js';
import { createDaemonLogger } from '../client/daemon-log.js';
import { KernelIpConfigurator, kernelArpOps } from '../client/daemon-kernel.js';
import { ClientIdChoiceError, parseClientIdChoice, type ClientConfig, type ClientIdChoice } from '../client/index.js';
import { RealScheduler } from '../link/fabric/scheduler.js';
import { UdpTransport } from '../link/fabric/udp-client.js';
import { DEFAULT_FABRIC_HOST, DEFAULT_FABRIC_PORT, parseFabricAddress } from '../link/fabric/udp-protocol.js';
import { ControlError, ControlServer, checkHostName, defaultRuntimeDir } from '../link/ipoib/control-socket.js';
import { Host, isIpoibError, type DatagramEndpoint, type IpoibEvent } from '../link/ipoib/index.js';
import { KernelUdpEndpoint, KernelUdpError } from '../link/kernel/kernel-udp.js';
import { KernelInterfaceError, portGuidOfInterface, readKernelInterface } from '../link/kernel/sysfs.js';
import { ipv4ToString, parseGuid, tryParseIpv4 } from '../protocol/index.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, VERSION, linkOption } from './cli.js';
import { HostArpOps, HostConfigurator } from './cluster/host-ports.js';

const NAME = 'ipoib-dhclient';

export const USAGE = `usage: ${NAME} [-p PORT] [-1] [-d] [-v] [-r] [-x] [-sf SCRIPT] [-lf FILE] [-pf FILE] ` +
  '[--client-id duid-en|guid|hex:BYTES] [--link kernel|fabric] [--fabric HOST:PORT] [--host NAME] [--port-guid GUID] ' +
  '[--ports N] [--mode datagram|connected] [--runtime-dir DIR] [--carrier-timeout SECONDS] [--allow-low-port] ' +
  '[--server ADDRESS] [--configure] [--timeout SECONDS] IFACE...';

export const DEFAULT_LEASE_FILE = '/var/lib/dhcp/ipoib-dhclient.leases';
export const DEFAULT_PID_FILE = '/run/ipoib-dhclient.pid';

export interface DhclientOptions {
  port: number;
  once: boolean;
  foreground: boolean;
  verbose: boolean;
  release: boolean;
  exit: boolean;
  script: string | null;
  leaseFile: string;
  /** -pf; null: DEFAULT_PID_FILE on the kernel link, <runtime dir>/NAME.dhclient.pid on the fabric. */
  pidFile: string | null;
  clientId: ClientIdChoice;
  link: 'kernel' | 'fabric';
  fabric: string | null;
  /** Emulated host name on the fabric; null: <hostname>-<pid>. */
  hostName: string | null;
  portGuid: bigint | null;
  ports: number;
  mode: 'datagram' | 'connected';
  runtimeDir: string | null;
  carrierTimeoutS: number;
  allowLowPort: boolean;
  server: string | null;
  configure: boolean;
  timeoutS: number;
  interfaces: string[];
  help: boolean;
  version: boolean;
}

function portValue(flag: string, v: string): number {
  const n = Number(v);
  // The server listens on PORT−1, so PORT 1 has no server port.
  if (!/^\d+$/.test(v) || n < 2 || n > 65535) throw new CliError(`${flag}: '${v}' is not a port in 2..65535`);
  return n;
}

/** Parses ISC-style arguments (multi-letter single-dash flags such as -sf, hence no commander). */
export function parseArgs(argv: readonly string[]): DhclientOptions {
  const o: DhclientOptions = {
    port: 68, once: false, foreground: false, verbose: false, release: false, exit: false, script: null,
    leaseFile: DEFAULT_LEASE_FILE, pidFile: null, clientId: { form: 'duid-en' }, link: 'fabric',
    fabric: null, hostName: null, portGuid: null, ports: 1, mode: 'datagram', runtimeDir: null, carrierTimeoutS: 10,
    allowLowPort: false, server: null, configure: false, timeoutS: 60, interfaces: [], help: false, version: false,
  };
  let linkGiven = false;
  const seconds = (flag: string, v: string, max: number): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new CliError(`${flag}: '${v}' is not a number of seconds in 1..${max}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new CliError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '-p': o.port = portValue('-p', value()); break;
      case '-1': o.once = true; break;
      case '-d': o.foreground = true; break;
      case '-v': o.verbose = true; break;
      case '-r': o.release = true; break;
      case '-x': o.exit = true; break;
      case '-4': break;
      case '-sf': o.script = value(); break;
      case '-lf': o.leaseFile = value(); break;
      case '-pf': o.pidFile = value(); break;
      case '-cf': value(); throw new CliError('-cf: dhclient.conf files are not read yet; use --client-id, --timeout and -sf');
      case '--client-id':
        try { o.clientId = parseClientIdChoice(value()); } catch (err) {
          if (err instanceof ClientIdChoiceError) throw new CliError(err.message);
          throw err;
        }
        break;
      case '--link': {
        o.link = linkOption(value());
        linkGiven = true;
        break;
      }
      case '--fabric': {
        const v = value();
        try { parseFabricAddress(v); } catch { throw new CliError(`--fabric: '${v}' is not HOST:PORT`); }
        o.fabric = v;
        break;
      }
      case '--host': {
        const v = value();
        try { o.hostName = checkHostName(v); } catch (err) { throw new CliError(`--host: ${(err as Error).message}`); }
        break;
      }
      case '--ports': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 8) throw new CliError(`--ports: '${v}' is not a number of HCA ports in 1..8`);
        o.ports = Number(v);
        break;
      }
      case '--mode': {
        const v = value();
        if (v !== 'datagram' && v !== 'connected') throw new CliError(`--mode: '${v}' is not datagram or connected`);
        o.mode = v;
        break;
      }
      case '--runtime-dir': o.runtimeDir = value(); break;
      case '--carrier-timeout': o.carrierTimeoutS = seconds('--carrier-timeout', value(), 3600); break;
      case '--allow-low-port': o.allowLowPort = true; break;
      case '--port-guid': {
        const v = value();
        try { o.portGuid = parseGuid(v); } catch { throw new CliError(`--port-guid: '${v}' is not a GUID (e.g. 7c:fe:90:03:00:29:26:52)`); }
        break;
      }
      case '--server': case '-s': {
        const v = value();
        if (tryParseIpv4(v) === null) throw new CliError(`${a}: '${v}' is not an IPv4 address`);
        o.server = v;
        break;
      }
      case '--configure': o.configure = true; break;
      case '--timeout': o.timeoutS = seconds('--timeout', value(), 86400); break;
      case '-h': case '--help': o.help = true; break;
      case '-V': case '--version': o.version = true; break;
      default:
        if (a.startsWith('-')) throw new CliError(`unknown option ${a}`);
        o.interfaces.push(a);
    }
  }
  if (!o.help && !o.version && o.interfaces.length === 0) throw new CliError('no interface named');
  if (o.release && o.exit) throw new CliError('-r and -x exclude each other');
  if (o.fabric !== null) {
    if (linkGiven && o.link !== 'fabric') throw new CliError('--fabric needs --link fabric (or no --link)');
    o.link = 'fabric';
  }
  return o;
}

/** The engine configuration of a kernel interface: identity from --client-id/--port-guid/sysfs, link from sysfs. */
export function kernelClientConfig(o: DhclientOptions, iface: string, sysRoot?: string): ClientConfig {
  let info;
  try {
    info = readKernelInterface(iface, sysRoot);
  } catch (err) {
    if (err instanceof KernelInterfaceError) throw new CliError(err.message);
    throw err;
  }
  let portGuid = o.portGuid;
  if (portGuid === null && o.clientId.form !== 'hex') {
    try {
      portGuid = portGuidOfInterface(info);
    } catch (err) {
      if (err instanceof KernelInterfaceError) {
        throw new CliError(`${err.message}: the ${o.clientId.form} client identifier needs a port GUID; pass --port-guid GUID or --client-id hex:BYTES`);
      }
      throw err;
    }
  }
  return {
    interface: iface,
    portGuid: portGuid ?? 0n,
    clientId: o.clientId,
    // Connected mode does not show the datagram MTU in sysfs: assume IB MTU 2048 − 4 (IPOIB-FACTS §3.5).
    link: info.mode === 'connected' ? { mode: 'connected', datagramMtu: 2044 } : { mode: 'datagram', datagramMtu: info.mtu },
    failAfterMs: o.timeoutS * 1000,
  };
}

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** -r/-x: SIGTERM the client named by the pid file and wait (up to 10 s) for it to go. */
async function stopRunning(pidFile: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  const pid = readPid(pidFile);
  if (pid === null || pid === process.pid || !alive(pid)) return null;
  process.kill(pid, signal);
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) throw new CliError(`process ${pid} (from ${pidFile}) did not stop within 10 s`, EXIT_RUNTIME);
  return pid;
}

async function runKernel(o: DhclientOptions): Promise<number> {
  if (o.interfaces.length > 1) {
    throw new CliError(`--link kernel serves one interface per process (node:dgram has no SO_BINDTODEVICE); got ${o.interfaces.join(', ')}`);
  }
  const iface = o.interfaces[0]!;
  const config = kernelClientConfig(o, iface);
  const log = createDaemonLogger({ name: NAME, level: o.verbose ? 'debug' : 'info' });
  if (o.release || o.exit) {
    const stopped = await stopRunning(o.pidFile ?? DEFAULT_PID_FILE);
    if (stopped !== null) log.info({ event: 'stopped', pid: stopped }, `stopped ${NAME} process ${stopped}`);
    if (o.exit) return EXIT_OK;
  }
  let endpoint: KernelUdpEndpoint;
  try {
    endpoint = await KernelUdpEndpoint.open({ interface: iface, port: o.port });
  } catch (err) {
    if (err instanceof KernelUdpError) throw new CliError(err.message, EXIT_RUNTIME);
    throw err;
  }
  const spec: DaemonInterface = {
    config, endpoint, serverPort: o.port - 1,
    arp: await kernelArpOps(),
    configurator: o.configure ? new KernelIpConfigurator() : null,
  };
  const daemon = new ClientDaemon({
    interfaces: [spec], leaseFile: o.leaseFile, hookScript: o.script, log, once: o.once, server: o.server,
  });
  try {
    if (o.release) {
      await daemon.releaseSaved();
      return EXIT_OK;
    }
    await writeFileAtomic(o.pidFile ?? DEFAULT_PID_FILE, `${process.pid}\n`);
    const onSignal = (): void => { void daemon.stop({ release: false }); };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    try {
      await daemon.start();
      const exit = await daemon.exited;
      await daemon.idle();
      if (exit.code !== 0) log.error({ event: 'exit', code: exit.code }, `exiting: ${exit.reason}`);
      return exit.code;
    } finally {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      try { unlinkSync(o.pidFile ?? DEFAULT_PID_FILE); } catch { /* already gone */ }
    }
  } finally {
    await endpoint.flush();
    endpoint.close();
  }
}

// ---- the project's link ------------------------------------------------------------------------

/** The lowest server port (PORT − 1) allowed on the project's link without --allow-low-port, as ipoib-dhcpd's. */
export const FABRIC_MIN_SERVER_PORT = 0x8001;

/**
 * -p C on the project's link: the server's port C − 1 must be above 0x8000 (the OFED 1.2 release
 * notes ask for free ports greater than 0x8000 on IPoIB, and ipoib-dhcpd refuses lower ones), so
 * both ports of the pair are.
 */
export function checkFabricPort(port: number, allowLowPort: boolean): void {
  if (port - 1 < FABRIC_MIN_SERVER_PORT && !allowLowPort) {
    throw new CliError(`-p ${port}: the server port ${port - 1} (0x${(port - 1).toString(16)}) is at or below 0x8000: on IPoIB free port numbers ` +
      'greater than 0x8000 must be chosen (OFED 1.2 release notes), e.g. -p 32836 for a server on 0x8043; pass --allow-low-port to use it anyway');
  }
}

/** <hostname>-<pid>, cut to what a control-socket name allows. */
export function defaultHostName(machine: string = hostname(), pid: number = process.pid): string {
  const base = machine.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'host';
  const suffix = `-${pid}`;
  return checkHostName(`${base.slice(0, 64 - suffix.length)}${suffix}`);
}

/** IFACE on an emulated host: ib<n> with n below --ports, or its P_Key child ib<n>.<pkey> (as Linux names it). */
export function checkFabricInterface(name: string, ports: number): { parent: string; pkey: number | null } {
  const m = /^ib(\d+)(?:\.([0-9a-f]{4}))?$/i.exec(name);
  if (m === null) throw new CliError(`${name}: not an interface of an emulated host (ib0..ib${ports - 1}, or a P_Key child such as ib0.8001)`);
  if (Number(m[1]) >= ports) throw new CliError(`${name}: the host has ${ports} HCA port${ports > 1 ? 's' : ''} (ib0..ib${ports - 1}); pass --ports ${Number(m[1]) + 1}`);
  const pkey = m[2] === undefined ? null : parseInt(m[2], 16);
  if (pkey !== null && (pkey & 0x7fff) === 0) throw new CliError(`${name}: P_Key 0x${m[2]} is not a valid partition key`);
  return { parent: `ib${m[1]}`, pkey };
}

/** The host's `ipoib` log lines go to the daemon's logger, at their level, under the event's name. */
function hostLogger(log: Logger, watch: CarrierWatch): (e: IpoibEvent) => void {
  return (e) => {
    watch.observe(e);
    const { msg, level, host: _host, ...rest } = e;
    log[level]({ ...rest, event: `ipoib_${e.event}` }, msg);
  };
}

interface FabricHost {
  host: Host;
  transport: UdpTransport;
  watch: CarrierWatch;
  close(): Promise<void>;
}

/** Attaches host `name` to the fabric daemon and brings `ifaces` up (creating P_Key children). */
async function attachFabricHost(o: DhclientOptions, name: string, log: Logger): Promise<FabricHost> {
  const fabric = o.fabric ?? `${DEFAULT_FABRIC_HOST}:${DEFAULT_FABRIC_PORT}`;
  const addr = parseFabricAddress(fabric);
  let transport: UdpTransport;
  try {
    transport = await UdpTransport.connect(addr.host, addr.port, {
      onEvent: (e) => log.info({ ...e, event: `fabric_${e.type}` }, `fabric ${fabric}: ${e.type}${e.type === 'link-down' ? ` (${e.why})` : ''}`),
    });
  } catch (err) {
    throw new CliError(`--fabric ${fabric}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT_RUNTIME);
  }
  const watch = new CarrierWatch();
  let host: Host;
  try {
    const portGuids = o.portGuid === null ? undefined : Array.from({ length: o.ports }, (_, i) => o.portGuid! + BigInt(i));
    host = await Host.create(transport, {
      name, scheduler: new RealScheduler(), ports: o.ports, mode: o.mode, logger: hostLogger(log, watch), ...(portGuids ? { portGuids } : {}),
    });
  } catch (err) {
    await transport.close().catch(() => undefined);
    throw new CliError(`attaching host ${name} to the fabric ${fabric}: ${(err as Error).message}`, EXIT_RUNTIME);
  }
  const close = async (): Promise<void> => {
    host.close();
    await transport.close().catch(() => undefined);
  };
  try {
    for (const iface of o.interfaces) {
      const { parent, pkey } = checkFabricInterface(iface, o.ports);
      if (pkey !== null && !host.interfaces().some((i) => i.name === iface)) host.createChild(parent, pkey);
      host.linkSet(iface, { up: true });
    }
  } catch (err) {
    await close();
    if (isIpoibError(err)) throw new CliError(err.message);
    throw err;
  }
  return { host, transport, watch, close };
}

/**
 * Waits (bounded) for carrier on every interface; a missing one is a runtime failure (exit 1, or 2
 * under -1: no lease) with one line per interface naming what is missing.
 */
async function requireCarrier(o: DhclientOptions, f: FabricHost, log: Logger, abandoned: () => boolean): Promise<void> {
  const status = await waitForCarrier(f.host, o.interfaces, o.carrierTimeoutS * 1000, f.watch, { abandoned });
  if (abandoned()) return;
  const missing = status.filter((s) => !s.carrier);
  if (missing.length === 0) return;
  for (const s of missing) log.error({ iface: s.iface, event: 'no-carrier', problem: s.problem }, s.message);
  throw new CliError(`${missing.map((s) => s.message).join('; ')} (after ${o.carrierTimeoutS} s)`, o.once ? 2 : EXIT_RUNTIME);
}

/**
 * The lease applied to the emulated interface with bin/cluster/host-ports.ts's HostConfigurator, an
 * option 26 MTU the interface would refuse (ip link set mtu) left out with a log line, and a line
 * on stdout per lease as ISC dhclient prints ("bound to ... -- renewal in N seconds.").
 */
function fabricConfigurator(host: Host, log: Logger, out: (line: string) => void): InterfaceConfigurator {
  const inner = new HostConfigurator(host, systemClock);
  return {
    prepare: (iface) => inner.prepare(iface),
    apply: async (iface, change) => {
      let mtu = change.mtu;
      if (mtu.apply) {
        try {
          host.iface(iface).checkMtu(mtu.mtu);
        } catch (err) {
          log.warn({ iface, event: 'mtu-not-applied', mtu: mtu.mtu }, `${iface}: interface-mtu ${mtu.mtu} not applied: ${(err as Error).message}`);
          mtu = { apply: false, offered: mtu.mtu, reason: (err as Error).message };
        }
      }
      await inner.apply(iface, { ...change, mtu });
      const l = change.lease;
      out(`bound to ${ipv4ToString(l.address)}/${l.prefixLength} on ${iface} -- renewal in ${Math.max(0, Math.round((l.renewAt - systemClock.now()) / 1000))} seconds.`);
    },
    deconfigure: (iface, lease) => inner.deconfigure(iface, lease),
  };
}

/** One UDP socket per interface, bound to it (SO_BINDTODEVICE) on the client port, allowed to broadcast. */
function fabricEndpoint(host: Host, iface: string, port: number): DatagramEndpoint {
  const sock = host.udpSocket({ interface: iface });
  try {
    sock.bind('0.0.0.0', port);
  } catch (err) {
    if (isIpoibError(err)) throw new CliError(`${iface}: ${err.message}`, EXIT_RUNTIME);
    throw err;
  }
  sock.setBroadcast(true);
  return sock;
}

/** The engine configuration of an emulated interface with carrier: its port's GUID, mode and broadcast-group MTU. */
export function fabricClientConfig(o: DhclientOptions, host: Host, iface: string): ClientConfig {
  const i = host.iface(iface);
  return {
    interface: iface,
    portGuid: i.device.queryPort(i.portNum).portGuid,
    clientId: o.clientId,
    hostName: host.name,
    link: { mode: i.mode, datagramMtu: i.mcastMtu },
    failAfterMs: o.timeoutS * 1000,
  };
}

/**
 * Before a DHCPRELEASE (unicast to the server), the server's 20-byte address is resolved with one
 * ping, so the release leaves before the address it comes from is removed.
 */
async function resolveServers(host: Host, daemon: ClientDaemon): Promise<void> {
  await Promise.all(daemon.slots.map(async (s) => {
    const lease = s.engine.lease;
    if (lease === null) return;
    await host.ping(ipv4ToString(lease.serverIdentifier), { count: 1, interface: s.spec.config.interface, timeoutMs: 1000 }).catch(() => undefined);
  }));
}

async function runFabric(o: DhclientOptions): Promise<number> {
  checkFabricPort(o.port, o.allowLowPort);
  for (const iface of o.interfaces) checkFabricInterface(iface, o.ports);
  if (new Set(o.interfaces).size !== o.interfaces.length) throw new CliError(`an interface is named twice (${o.interfaces.join(' ')})`);
  const name = o.hostName ?? defaultHostName();
  const dir = o.runtimeDir ?? defaultRuntimeDir();
  const pidFile = o.pidFile ?? join(dir, `${name}.dhclient.pid`);
  const log = createDaemonLogger({ name: NAME, level: o.verbose ? 'debug' : 'info' });
  const out = (line: string): void => { process.stdout.write(`${line}\n`); };
  if (o.release || o.exit) {
    // A running client releases on SIGUSR1 (it holds the resolved neighbours and the configured
    // address a DHCPRELEASE needs); SIGTERM stops it keeping the lease.
    const stopped = await stopRunning(pidFile, o.release ? 'SIGUSR1' : 'SIGTERM');
    if (stopped !== null) {
      log.info({ event: 'stopped', pid: stopped }, `${o.release ? 'released and stopped' : 'stopped'} ${NAME} process ${stopped} (host ${name})`);
      return EXIT_OK;
    }
    if (o.exit) {
      log.info({ event: 'stopped' }, `no running ${NAME} for host ${name} (${pidFile})`);
      return EXIT_OK;
    }
  }
  // Signals are taken from here on, so a SIGTERM while attaching or waiting for carrier still ends
  // in an orderly exit 0; once the daemon runs they stop it (SIGUSR1: with a DHCPRELEASE).
  let request: 'stop' | 'release' | null = null;
  let act = (): void => undefined;
  const onStop = (): void => { request ??= 'stop'; act(); };
  const onRelease = (): void => { if (request !== 'release') { request = 'release'; act(); } };
  process.once('SIGTERM', onStop);
  process.once('SIGINT', onStop);
  process.on('SIGUSR1', onRelease);
  const unhook = (): void => {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGUSR1', onRelease);
  };
  let f: FabricHost;
  try {
    f = await attachFabricHost(o, name, log);
  } catch (err) {
    unhook();
    throw err;
  }
  let control: ControlServer | null = null;
  try {
    await requireCarrier(o, f, log, () => request !== null);
    if (request !== null) return EXIT_OK;
    const specs: DaemonInterface[] = o.interfaces.map((iface) => ({
      config: fabricClientConfig(o, f.host, iface),
      endpoint: fabricEndpoint(f.host, iface, o.port),
      serverPort: o.port - 1,
      arp: new HostArpOps(f.host, { next: () => Math.random() }),
      configurator: fabricConfigurator(f.host, log, out),
    }));
    const daemon = new ClientDaemon({ interfaces: specs, leaseFile: o.leaseFile, hookScript: o.script, log, once: o.once, server: o.server });
    if (o.release) {
      // No running client: this host (same name, so same GUIDs and client identifiers) puts each
      // saved lease's address back for the unicast DHCPRELEASE, then releases it.
      const store = new LeaseFileStore(o.leaseFile, log);
      await store.load();
      for (const iface of o.interfaces) {
        const l = store.current(iface);
        if (l === null || l.expiresAt <= systemClock.now()) continue;
        f.host.addrAdd(iface, `${ipv4ToString(l.address)}/${l.prefixLength}`);
        await f.host.ping(ipv4ToString(l.serverIdentifier), { count: 1, interface: iface, timeoutMs: 1000 }).catch(() => undefined);
      }
      const n = await daemon.releaseSaved();
      log.info({ event: 'released', count: n }, `released ${n} lease${n === 1 ? '' : 's'}`);
      return EXIT_OK;
    }
    try {
      control = await ControlServer.listen(f.host, {
        dir,
        onEvent: (e) => {
          if (e.type === 'stale_socket_removed') log.warn({ event: 'control_stale_socket', path: e.path }, `removed the stale control socket ${e.path}`);
          else if (e.type === 'bad_request') log.warn({ event: 'control_bad_request', code: e.code }, `control: ${e.message}`);
          else log.error({ event: 'control_error', cmd: e.cmd, err: e.error }, `control: ${e.cmd} failed unexpectedly`);
        },
      });
    } catch (err) {
      if (err instanceof ControlError) throw new CliError(err.message, EXIT_RUNTIME);
      throw err;
    }
    await writeFileAtomic(pidFile, `${process.pid}\n`);
    out(`ready ${name} ${control.path}`);
    let started = false;
    act = (): void => {
      if (!started) return;
      if (request === 'release') void resolveServers(f.host, daemon).then(() => daemon.stop({ release: true }));
      else void daemon.stop({ release: false });
    };
    try {
      await daemon.start();
      started = true;
      if (request !== null) act();
      const exit = await daemon.exited;
      await daemon.idle();
      if (exit.code !== 0) log.error({ event: 'exit', code: exit.code }, `exiting: ${exit.reason}`);
      else log.info({ event: 'exit', code: 0 }, `exiting: ${exit.reason}`);
      return exit.code;
    } finally {
      try { unlinkSync(pidFile); } catch { /* already gone */ }
    }
  } finally {
    unhook();
    await control?.close();
    // A DHCPRELEASE waiting on ARP gets a moment to leave before the HCA detaches.
    await new Promise((r) => setTimeout(r, 50));
    await f.close();
    log.flush();
    // Everything is closed; should a timer of the emulated host still hold the loop, do not hang
    // (process.exitCode is set from main's result by then).
    setTimeout(() => process.exit(), 1000).unref();
  }
}

export async function main(argv: string[]): Promise<number> {
  let o: DhclientOptions;
  try {
    o = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`${NAME}: ${err.message}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (o.help) { process.stdout.write(`${USAGE}\n`); return EXIT_OK; }
  if (o.version) { process.stdout.write(`${VERSION}\n`); return EXIT_OK; }
  try {
    return o.link === 'fabric' ? await runFabric(o) : await runKernel(o);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`${NAME}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`${NAME}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_RUNTIME;
  }
}
