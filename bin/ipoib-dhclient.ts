// ipoib-dhclient: the DHCP client for IP over InfiniBand (RFC 4390), with ISC dhclient's habits:
//
//   ipoib-dhclient [-p PORT] [-1] [-d] [-v] [-r] [-x] [-sf SCRIPT] [-lf FILE] [-pf FILE]
//                  [--client-id duid-en|guid|hex:BYTES] [--link kernel|fabric] [--fabric HOST:PORT]
//                  [--port-guid GUID] [--server ADDRESS] [--configure] [--timeout SECONDS] IFACE...
//
// -p PORT is the client's own port; requests go to PORT−1 (default 68/67). -1 tries once: no lease
// within --timeout (default 60 s, ISC's `timeout 60`) exits 2. -r stops a running client (pid file)
// and releases the saved lease; -x stops it without releasing. Without -r/-x the program stays in
// the foreground renewing until SIGTERM/SIGINT (then it stops like -x). It never forks: -d is
// accepted for ISC compatibility; run it under a service manager or with `&`.
// --link kernel uses the kernel's UDP sockets (one interface per process: node has no
// SO_BINDTODEVICE); --configure then applies the lease with `ip`, else only the -sf script does.
// --link fabric (the project's emulated IPoIB host) is not available yet.
import { readFileSync, unlinkSync } from 'node:fs';
import { ClientDaemon, type DaemonInterface, writeFileAtomic } from '../client/daemon.js';
import { createDaemonLogger } from '../client/daemon-log.js';
import { KernelIpConfigurator, kernelArpOps } from '../client/daemon-kernel.js';
import { ClientIdChoiceError, parseClientIdChoice, type ClientConfig, type ClientIdChoice } from '../client/index.js';
import { KernelUdpEndpoint, KernelUdpError } from '../link/kernel/kernel-udp.js';
import { KernelInterfaceError, portGuidOfInterface, readKernelInterface } from '../link/kernel/sysfs.js';
import { parseGuid, tryParseIpv4 } from '../protocol/index.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, VERSION } from './cli.js';

const NAME = 'ipoib-dhclient';

export const USAGE = `usage: ${NAME} [-p PORT] [-1] [-d] [-v] [-r] [-x] [-sf SCRIPT] [-lf FILE] [-pf FILE] ` +
  '[--client-id duid-en|guid|hex:BYTES] [--link kernel|fabric] [--fabric HOST:PORT] [--port-guid GUID] ' +
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
  pidFile: string;
  clientId: ClientIdChoice;
  link: 'kernel' | 'fabric';
  fabric: string | null;
  portGuid: bigint | null;
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
    leaseFile: DEFAULT_LEASE_FILE, pidFile: DEFAULT_PID_FILE, clientId: { form: 'duid-en' }, link: 'fabric',
    fabric: null, portGuid: null, server: null, configure: false, timeoutS: 60, interfaces: [], help: false, version: false,
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
        const v = value();
        if (v !== 'kernel' && v !== 'fabric') throw new CliError(`--link: '${v}' is not kernel or fabric`);
        o.link = v;
        break;
      }
      case '--fabric': {
        const v = value();
        if (!/^[^:\s]+:\d{1,5}$/.test(v)) throw new CliError(`--fabric: '${v}' is not HOST:PORT`);
        o.fabric = v;
        break;
      }
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
      case '--timeout': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 86400) throw new CliError(`--timeout: '${v}' is not a number of seconds in 1..86400`);
        o.timeoutS = Number(v);
        break;
      }
      case '-h': case '--help': o.help = true; break;
      case '-V': case '--version': o.version = true; break;
      default:
        if (a.startsWith('-')) throw new CliError(`unknown option ${a}`);
        o.interfaces.push(a);
    }
  }
  if (!o.help && !o.version && o.interfaces.length === 0) throw new CliError('no interface named');
  if (o.release && o.exit) throw new CliError('-r and -x exclude each other');
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
async function stopRunning(pidFile: string): Promise<number | null> {
  const pid = readPid(pidFile);
  if (pid === null || pid === process.pid || !alive(pid)) return null;
  process.kill(pid, 'SIGTERM');
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
    const stopped = await stopRunning(o.pidFile);
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
    await writeFileAtomic(o.pidFile, `${process.pid}\n`);
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
      try { unlinkSync(o.pidFile); } catch { /* already gone */ }
    }
  } finally {
    await endpoint.flush();
    endpoint.close();
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
  if (o.link === 'fabric') {
    process.stderr.write(`${NAME}: --link fabric: not available yet (the emulated IPoIB host is still being built); use --link kernel\n`);
    return EXIT_RUNTIME;
  }
  try {
    return await runKernel(o);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`${NAME}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`${NAME}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_RUNTIME;
  }
}
