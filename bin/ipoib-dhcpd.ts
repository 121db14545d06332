// ipoib-dhcpd: the DHCPv4 server for IP over InfiniBand (RFC 4390), with ISC dhcpd's flags and
// Kea's configuration file:
//
//   ipoib-dhcpd [-p PORT] [-cf CONFIG] [-lf LEASEDB] [-f] [-d] [-t|--check-config]
//               [--link kernel|fabric] [--fabric HOST:PORT] [--host NAME] [--metrics ADDR:PORT] [--allow-low-port] [IFACE...]
//   ipoib-dhcpd leases list|export|import ...
//
// -p P listens on P and answers clients on P + 1 (relays on P); default 67 on --link kernel. On the
// project's link (--fabric, --link fabric) P must be above 0x8000 unless --allow-low-port. -cf is a
// kea-dhcp4.conf; -lf overrides its lease-database (a file: SQLite; postgresql://...: PostgreSQL).
// -t checks the configuration and exits 0, or 2 with one line naming the file, the JSON path and the
// value. -d logs at debug level to stderr. The program never forks (-f is accepted for ISC
// compatibility). SIGHUP reloads the configuration keeping every lease; SIGTERM/SIGINT stop
// receiving, finish in-flight lease commits, close the database and exit 0.
// --host NAME (with --fabric) names the emulated host the server attaches as (default
// ipoib-dhcpd-<hostname>): its node and port GUIDs derive from the name, so two servers on one fabric
// need two names, and a partitions.conf names the server by the port GUID of that name. The name is
// also the server recorded in each lease it writes (the `server` column; default "ipoib-dhcpd").
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { isLeaseStoreError } from '../lease-db/errors.js';
import type { LeaseStore } from '../lease-db/lease.js';
import { isPgSpec, openLeaseStore } from '../lease-db/open.js';
import { ConfigError, loadConfig, type ServerConfig } from '../server/config.js';
import { ControlSocket } from '../server/control-socket.js';
import { ServerDaemon } from '../server/daemon.js';
import { ServerStartError, attachFabricHost, checkServerPort, startServerOnHost } from '../server/daemon-host.js';
import { openKernelLink } from '../server/daemon-kernel.js';
import { createServerLogger } from '../server/daemon-log.js';
import { checkHostName } from '../link/ipoib/control-socket.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, VERSION, linkOption, program, run } from './cli.js';
import { leasesCommand } from './ipoib-dhcpd-leases.js';

const NAME = 'ipoib-dhcpd';

export const USAGE = `usage: ${NAME} [-p PORT] [-cf CONFIG] [-lf LEASEDB] [-f] [-d] [-t|--check-config] ` +
  '[--link kernel|fabric] [--fabric HOST:PORT] [--host NAME] [--metrics ADDR:PORT] [--allow-low-port] [IFACE...]\n' +
  `       ${NAME} leases list|export|import [options]`;

export const DEFAULT_CONFIG = '/etc/ipoib-dhcpd/kea-dhcp4.conf';

/** --help: the usage, then a line per option. */
export const HELP = `${USAGE}

DHCPv4 server for IP over InfiniBand (RFC 4390), ISC dhcpd flags, Kea configuration file.

  -p PORT               listen on PORT, answer clients on PORT + 1 (default 67 on --link kernel; above 0x8000 on the fabric)
  -cf CONFIG            kea-dhcp4.conf (default ${DEFAULT_CONFIG})
  -lf LEASEDB           lease database: a file (SQLite) or postgresql://... (overrides the configuration's)
  -f                    stay in the foreground (always: accepted for ISC compatibility)
  -d                    log at debug level to stderr
  -t, --check-config    check the configuration and exit (0, or 2 naming the file, path and value)
  --link kernel|fabric  the kernel's UDP sockets, or the project's emulated link (implied by --fabric)
  --fabric HOST:PORT    the ipoib-fabric daemon to attach to
  --host NAME           the emulated host's name on the fabric (default ipoib-dhcpd-<hostname>): its GUIDs
                        derive from it, so two servers on one fabric need two names; also the server
                        recorded in the leases it writes
  --metrics ADDR:PORT   Prometheus metrics on http://ADDR:PORT/metrics
  --allow-low-port      allow a port at or below 0x8000 on the fabric
  IFACE                 interfaces to serve: ib0, ib0/10.0.0.1 (with that address), ib0.8001 (a P_Key child,
                        created when missing); default: the configuration's interfaces-config
  -h, --help / -V, --version
`;

export interface DhcpdOptions {
  port: number | null;
  configFile: string;
  leaseDb: string | null;
  foreground: boolean;
  debug: boolean;
  checkConfig: boolean;
  link: 'kernel' | 'fabric';
  fabric: string | null;
  /** --host: the emulated host's name on the fabric (its GUIDs derive from it); null: ipoib-dhcpd-<hostname>. */
  hostName: string | null;
  metrics: { host: string; port: number } | null;
  allowLowPort: boolean;
  interfaces: string[];
  help: boolean;
  version: boolean;
}

/** Parses ISC-style arguments (multi-letter single-dash flags such as -cf, hence no commander). */
export function parseArgs(argv: readonly string[]): DhcpdOptions {
  const o: DhcpdOptions = {
    port: null, configFile: DEFAULT_CONFIG, leaseDb: null, foreground: false, debug: false, checkConfig: false,
    link: 'kernel', fabric: null, hostName: null, metrics: null, allowLowPort: false, interfaces: [], help: false, version: false,
  };
  let linkGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new CliError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '-p': {
        const v = value();
        if (!/^(\d+|0x[0-9a-f]+)$/i.test(v) || Number(v) < 1 || Number(v) > 65534) throw new CliError(`-p: '${v}' is not a port in 1..65534 (the server answers on PORT + 1)`);
        o.port = Number(v);
        break;
      }
      case '-cf': o.configFile = value(); break;
      case '-lf': o.leaseDb = value(); break;
      case '-f': o.foreground = true; break;
      case '-d': o.debug = true; o.foreground = true; break;
      case '-q': case '-4': break;
      case '-t': case '--check-config': o.checkConfig = true; break;
      case '--link': {
        o.link = linkOption(value());
        linkGiven = true;
        break;
      }
      case '--fabric': {
        const v = value();
        if (!/^[^:\s]+:\d{1,5}$/.test(v) || Number(v.split(':').pop()) > 65535) throw new CliError(`--fabric: '${v}' is not HOST:PORT`);
        o.fabric = v;
        break;
      }
      case '--host': {
        const v = value();
        try { o.hostName = checkHostName(v); } catch (err) { throw new CliError(`--host: ${(err as Error).message}`); }
        break;
      }
      case '--metrics': {
        const v = value();
        const m = /^(.+):(\d{1,5})$/.exec(v);
        if (m === null || Number(m[2]) > 65535) throw new CliError(`--metrics: '${v}' is not ADDRESS:PORT (e.g. 127.0.0.1:9547)`);
        o.metrics = { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
        break;
      }
      case '--allow-low-port': o.allowLowPort = true; break;
      case '-h': case '--help': o.help = true; break;
      case '-V': case '--version': o.version = true; break;
      default:
        if (a.startsWith('-')) throw new CliError(`unknown option ${a}`);
        o.interfaces.push(a);
    }
  }
  if (o.fabric !== null) {
    if (linkGiven && o.link !== 'fabric') throw new CliError('--fabric needs --link fabric (or no --link)');
    o.link = 'fabric';
  }
  if (o.link === 'fabric' && o.fabric === null && !o.checkConfig && !o.help && !o.version) {
    throw new CliError('--link fabric needs --fabric HOST:PORT (the ipoib-fabric daemon to attach to)');
  }
  if (o.hostName !== null && o.link !== 'fabric') throw new CliError('--host names the emulated host on the fabric: it needs --fabric HOST:PORT');
  return o;
}

function usageExit(message: string): number {
  process.stderr.write(`${NAME}: ${message}\n${USAGE}\n`);
  return EXIT_USAGE;
}

function readConfig(file: string): ServerConfig {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT_USAGE);
    throw err;
  }
}

async function openStore(spec: string): Promise<LeaseStore> {
  if (!isPgSpec(spec)) mkdirSync(dirname(spec), { recursive: true });
  try {
    return await openLeaseStore(spec);
  } catch (err) {
    if (isLeaseStoreError(err)) {
      const usage = ['DB_CORRUPT', 'DB_NOT_LEASE_DB', 'DB_TOO_NEW', 'DB_MISSING', 'BAD_INPUT'].includes(err.code);
      throw new CliError(`lease database: ${err.message} [${err.code}]`, usage ? EXIT_USAGE : EXIT_RUNTIME);
    }
    throw err;
  }
}

async function serve(o: DhcpdOptions): Promise<number> {
  const config = readConfig(o.configFile);
  const onFabric = o.link === 'fabric';
  const port = o.port ?? (onFabric && !o.allowLowPort ? null : 67);
  if (port === null) throw new CliError('on the project\'s link name the port with -p PORT, above 0x8000 (or pass --allow-low-port for 67)');
  try { checkServerPort(port, onFabric, o.allowLowPort); } catch (err) {
    if (err instanceof ServerStartError) throw new CliError(err.message);
    throw err;
  }
  const log = createServerLogger({ loggers: config.loggers, debug: o.debug });
  for (const w of config.warnings) log.warn({ event: 'config-warning', path: w.path }, `${config.file}: ${w.path}: ${w.message}`);
  const store = await openStore(o.leaseDb ?? config.leaseDatabase.spec);
  const common = { log, configLoader: () => loadConfig(o.configFile) };
  let daemon: ServerDaemon;
  let cleanup: () => Promise<void> = async () => undefined;
  try {
    if (onFabric) {
      const { host, transport } = o.hostName === null ? await attachFabricHost(o.fabric!) : await attachFabricHost(o.fabric!, o.hostName);
      cleanup = async () => { host.close(); await transport.close(); };
      daemon = await startServerOnHost(host, config, store, {
        ...common, port, interfaces: o.interfaces, allowLowPort: o.allowLowPort, ...(o.hostName === null ? {} : { serverName: o.hostName }),
      });
    } else {
      const link = await openKernelLink(config, o.interfaces, port, log);
      daemon = await ServerDaemon.start({ ...common, config, store, links: [link], serverPort: port });
    }
  } catch (err) {
    await store.close().catch(() => undefined);
    await cleanup().catch(() => undefined);
    if (err instanceof ServerStartError) throw new CliError(err.message, err.code === 'BAD_PORT' ? EXIT_RUNTIME : EXIT_USAGE);
    throw err;
  }
  const done = new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ event: 'signal', signal }, `${signal}: stopping`);
      void daemon.stop().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  process.on('SIGHUP', () => { void daemon.reload(); });
  try {
    if (o.metrics !== null) {
      const p = await daemon.metrics.listen(o.metrics.host, o.metrics.port);
      log.info({ event: 'metrics', address: `${o.metrics.host}:${p}` }, `metrics on http://${o.metrics.host}:${p}/metrics`);
    }
    if (config.controlSocket !== null) {
      const cs = await ControlSocket.listen(config.controlSocket.socketName, daemon);
      daemon.onStop(() => cs.close());
      log.info({ event: 'control-socket', path: cs.path }, `control socket ${cs.path}`);
    }
  } catch (err) {
    await daemon.stop();
    await cleanup();
    throw new CliError(`${(err as Error).message}`, EXIT_RUNTIME);
  }
  log.info({ event: 'ready', port, link: o.link }, `ready: ${o.link} link, port ${port}`);
  await done;
  await cleanup();
  log.flush();
  return EXIT_OK;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'leases') {
    const p = program(NAME, 'DHCPv4 server for IP over InfiniBand (RFC 4390): the lease database from the command line');
    leasesCommand(p);
    return run(NAME, p, argv);
  }
  let o: DhcpdOptions;
  try {
    o = parseArgs(argv);
  } catch (err) {
    if (err instanceof CliError) return usageExit(err.message);
    throw err;
  }
  if (o.help) { process.stdout.write(HELP); return EXIT_OK; }
  if (o.version) { process.stdout.write(`${VERSION}\n`); return EXIT_OK; }
  try {
    if (o.checkConfig) {
      const c = readConfig(o.configFile);
      for (const w of c.warnings) process.stderr.write(`${c.file}: ${w.path}: ${w.message}\n`);
      process.stdout.write(`${c.file}: configuration OK (${c.subnets.length} subnet(s), ${c.subnets.reduce((n, s) => n + s.pools.length, 0)} pool(s), ${c.warnings.length} warning(s))\n`);
      return EXIT_OK;
    }
    return await serve(o);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`${NAME}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`${NAME}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_RUNTIME;
  }
}
