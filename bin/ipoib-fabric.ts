// ipoib-fabric: the emulated InfiniBand fabric as a daemon (switch + subnet manager) that hosts in
// other processes attach to over UDP (link/fabric/udp-protocol.ts), and `status`, which prints its
// ports, LIDs, partitions and multicast groups like ibstat / saquery.
//
//   ipoib-fabric [--listen 127.0.0.1:18515] [--pcap FILE [--pcap-linktype 147|247] [--pcap-ipoib FILE]]
//                [--topology FILE] [--partitions FILE] [--keepalive-ms MS] [--keepalive-timeout-ms MS]
//                [--loss F] [--dup F] [--reorder F] [--delay MS] [--corrupt F] [--seed S]
//   ipoib-fabric status [--fabric 127.0.0.1:18515] [--json]
//
// --loss/--dup/--reorder/--corrupt (a fraction 0..1 or a percentage, 20%) and --delay put the
// fabric-wide faults of link/fabric/fault.ts (Fabric.setFaults) on every port's transmit path, drawn
// from a Random seeded by --seed, so ipoib-cluster --fabric spawn can run its chaos test against the
// daemon. They apply to frames only: the UDP control messages (ATTACH, KEEPALIVE) are never faulted.
//
// The daemon runs in the foreground until SIGTERM or SIGINT, then tells its hosts, flushes the
// capture files and exits 0. Logs are JSON lines on stderr.
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { CaptureFile, type RawLinkType } from '../link/fabric/capture-file.js';
import { FabricError } from '../link/fabric/errors.js';
import type { FaultConfig } from '../link/fabric/fault.js';
import { seededRandom } from '../link/fabric/scheduler.js';
import { parsePartitions, type Partition } from '../link/fabric/partitions.js';
import { parseTopology, type Topology } from '../link/fabric/topology.js';
import { queryFabricStatus } from '../link/fabric/udp-client.js';
import { DEFAULT_FABRIC_HOST, DEFAULT_FABRIC_PORT, parseFabricAddress } from '../link/fabric/udp-protocol.js';
import { FabricDaemon, type DaemonStatus } from '../link/fabric/udp-server.js';
import { LINKTYPE_INFINIBAND, LINKTYPE_USER0, TSHARK_USER0_INFINIBAND_ARGS } from '../link/wire/pcap.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, intOption, program, run } from './cli.js';
import { REORDER_WINDOW_MS, faultConfig, fractionOption } from './cluster/faults.js';

const DEFAULT_ADDRESS = `${DEFAULT_FABRIC_HOST}:${DEFAULT_FABRIC_PORT}`;

export function address(flag: string, minPort = 1): (v: string) => { host: string; port: number } {
  return (v: string) => {
    try {
      return parseFabricAddress(v, minPort);
    } catch (err) {
      throw new CliError(`${flag}: ${(err as Error).message}`);
    }
  };
}

function readConfig<T>(flag: string, file: string, parse: (text: string, file: string) => T): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parse(text, file);
  } catch (err) {
    if (err instanceof FabricError) throw new CliError(err.message);
    throw err;
  }
}

interface DaemonOpts {
  listen: { host: string; port: number };
  pcap?: string;
  pcapLinktype: number;
  pcapIpoib?: string;
  topology?: string;
  partitions?: string;
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
  logLevel: string;
  loss?: number;
  dup?: number;
  reorder?: number;
  delay?: number;
  corrupt?: number;
  seed: number;
}

/** The daemon's fault flags as a FaultConfig, or undefined when none is set. */
export function daemonFaults(o: Pick<DaemonOpts, 'loss' | 'dup' | 'reorder' | 'delay' | 'corrupt'>): FaultConfig | undefined {
  const c: FaultConfig = {
    ...faultConfig({ loss: o.loss ?? 0, duplicate: o.dup ?? 0, reorder: o.reorder ?? 0, delayMs: o.delay ?? 0 }),
    ...(o.corrupt !== undefined && o.corrupt > 0 ? { corrupt: o.corrupt } : {}),
  };
  return Object.keys(c).length === 0 ? undefined : c;
}

async function daemon(o: DaemonOpts): Promise<number> {
  if (o.pcapIpoib !== undefined && o.pcap === undefined) throw new CliError('--pcap-ipoib needs --pcap');
  if (o.pcapLinktype !== LINKTYPE_USER0 && o.pcapLinktype !== LINKTYPE_INFINIBAND) {
    throw new CliError(`--pcap-linktype: ${o.pcapLinktype} is not ${LINKTYPE_USER0} or ${LINKTYPE_INFINIBAND}`);
  }
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(o.logLevel)) throw new CliError(`--log-level: '${o.logLevel}' is not a pino level`);
  const partitions: Partition[] | undefined = o.partitions === undefined ? undefined : readConfig('--partitions', o.partitions, parsePartitions);
  const topology: Topology | undefined = o.topology === undefined ? undefined : readConfig('--topology', o.topology, parseTopology);
  const log = pino({ name: 'ipoib-fabric', level: o.logLevel }, pino.destination(2));
  let d: FabricDaemon;
  try {
    d = await FabricDaemon.start({
      host: o.listen.host, port: o.listen.port, log,
      ...(o.keepaliveMs !== undefined ? { keepaliveMs: o.keepaliveMs } : {}),
      ...(o.keepaliveTimeoutMs !== undefined ? { keepaliveTimeoutMs: o.keepaliveTimeoutMs } : {}),
      fabric: { ...(partitions ? { partitions } : {}), ...(topology ? { topology } : {}), random: seededRandom(o.seed) },
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE' || e.code === 'EADDRNOTAVAIL' || e.code === 'EACCES') {
      throw new CliError(`--listen ${o.listen.host}:${o.listen.port}: ${e.code}`, EXIT_RUNTIME);
    }
    throw err;
  }
  const faults = daemonFaults(o);
  if (faults !== undefined) {
    const injector = d.fabric.setFaults(faults)!;
    d.faultStats = () => injector.stats;
    log.info({ faults }, 'fault injection on every port\'s transmit path');
  }
  let capture: CaptureFile | undefined;
  if (o.pcap !== undefined) {
    capture = new CaptureFile(d.fabric, {
      file: o.pcap, linkType: o.pcapLinktype as RawLinkType, ...(o.pcapIpoib !== undefined ? { ipoibFile: o.pcapIpoib } : {}),
    });
    log.info({ pcap: o.pcap, linkType: o.pcapLinktype, ipoib: o.pcapIpoib, tshark: o.pcapLinktype === LINKTYPE_USER0 ? TSHARK_USER0_INFINIBAND_ARGS.join(' ') : undefined },
      'capturing');
  }
  const a = d.address();
  // One line on stdout so a script that started us on port 0 learns the port.
  process.stdout.write(`listening ${a.host}:${a.port}\n`);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ signal }, 'shutting down');
  await d.close();
  if (capture !== undefined) {
    await capture.close();
    log.info(capture.stats, 'capture written');
  }
  log.flush();
  // Everything is closed; should anything still hold the loop (a timer of the SM), do not hang.
  setTimeout(() => process.exit(EXIT_OK), 500).unref();
  return EXIT_OK;
}

function hex4(n: number): string {
  return '0x' + n.toString(16).padStart(4, '0');
}

function pad(s: string | number, n: number): string {
  return String(s).padEnd(n);
}

/** ibstat / saquery-like text. */
export function formatStatus(s: DaemonStatus): string {
  const f = s.fabric;
  const d = s.daemon;
  const out: string[] = [];
  out.push(`Fabric ${d.listen} (protocol v${d.protocolVersion}, up ${d.uptimeS} s, keep-alive ${d.keepaliveMs} ms, timeout ${d.keepaliveTimeoutMs} ms)`);
  out.push(`SM: LID ${f.smLid}, port GUID ${f.smPortGuid}`);
  out.push('');
  out.push(`Partitions (${s.partitions.length}):`);
  for (const x of s.partitions) out.push(`  ${x.name}=${x.pkey}${x.ipoib ? ', ipoib' : ''} : ${x.members.join(', ')}${x.groups.length ? `  groups ${x.groups.join(', ')}` : ''}`);
  out.push('');
  out.push(`Ports (${f.ports.length}):`);
  out.push(`  ${pad('SW', 4)} ${pad('HOST', 20)} ${pad('HCA', 4)} ${pad('NODE GUID', 19)} ${pad('PORT GUID', 19)} ${pad('LID', 6)} ${pad('STATE', 7)} ${pad('MTU', 4)} ${pad('P_KEYS', 20)} ${pad('XMIT', 9)} ${pad('RCV', 9)} DISCARDS`);
  for (const p of f.ports) {
    const disc = Object.entries(p.counters.discards).filter(([, n]) => n > 0).map(([r, n]) => `${r}=${n}`).join(',') || '-';
    out.push(`  ${pad(p.switchPort, 4)} ${pad(p.hostName, 20)} ${pad(p.portNum, 4)} ${pad(p.nodeGuid, 19)} ${pad(p.portGuid, 19)} ${pad(p.lid, 6)} ${pad(p.state, 7)} ${pad(p.mtuCap, 4)} ${pad(p.pkeys.join(',') || '-', 20)} ${pad(p.counters.xmitPkts, 9)} ${pad(p.counters.rcvPkts, 9)} ${disc}`);
  }
  out.push('');
  out.push(`Multicast groups (${f.groups.length}):`);
  for (const g of f.groups) {
    out.push(`  MGID ${g.mgid}  MLID ${hex4(g.mlid)}  Q_Key ${hex4(g.qkey)}  P_Key ${g.pkey}  MTU ${g.mtu}  rate ${g.rate}  SL ${g.sl}${g.wellKnown ? '  (created by the SM)' : ''}`);
    if (g.members.length === 0) out.push('    (no members)');
    for (const m of g.members) out.push(`    member ${m.portGuid}  JoinState 0x${m.joinState.toString(16)}${m.proxyJoin ? '  proxy' : ''}`);
  }
  out.push('');
  out.push(`Sessions (${d.sessions.length}):`);
  for (const x of d.sessions) out.push(`  ${pad(x.session, 6)} ${pad(x.hostName, 20)} ${pad(x.portGuid, 19)} ${pad(x.address, 22)} ${x.alive ? 'alive' : 'timed out'}  last heard ${x.lastSeenMsAgo} ms ago`);
  out.push('');
  out.push(`Datagrams: rx ${d.datagrams.rx} (${d.datagrams.rxBytes} B), tx ${d.datagrams.tx} (${d.datagrams.txBytes} B)`);
  const drops = Object.entries(d.drops).filter(([, n]) => n > 0).map(([r, n]) => `${r}=${n}`);
  const frameDrops = Object.entries(d.frameDrops).filter(([, n]) => n > 0).map(([r, n]) => `${r}=${n}`);
  out.push(`Dropped datagrams: ${drops.join(', ') || 'none'}`);
  out.push(`Dropped frames: ${frameDrops.join(', ') || 'none'}`);
  const fs = d.faults;
  if (fs !== undefined) out.push(`Faults injected: ${fs.lost} lost, ${fs.duplicated} duplicated, ${fs.reordered} reordered, ${fs.delayed} delayed, ${fs.corrupted} corrupted`);
  return out.join('\n') + '\n';
}

export async function main(argv: string[]): Promise<number> {
  const p = program('ipoib-fabric', 'Emulated InfiniBand fabric daemon: switch + subnet manager; hosts attach over UDP.')
    .option('--listen <host:port>', `address to listen on, port 0 = any free one (default ${DEFAULT_ADDRESS})`, address('--listen', 0), parseFabricAddress(DEFAULT_ADDRESS))
    .option('--pcap <file>', 'capture every packet at the switch as raw IB frames (LRH..VCRC)')
    .option('--pcap-linktype <n>', `link type of --pcap: ${LINKTYPE_USER0} (tshark 4.0 with user_dlts) or ${LINKTYPE_INFINIBAND}`, intOption('--pcap-linktype', 0, 0xffff), LINKTYPE_USER0)
    .option('--pcap-ipoib <file>', 'also write the IPoIB packets to a LINKTYPE_IPOIB (242) capture')
    .option('--topology <file>', 'ibnetdiscover-format topology (host names, GUIDs, switch ports)')
    .option('--partitions <file>', 'OpenSM partitions.conf')
    .option('--keepalive-ms <ms>', 'keep-alive interval asked of hosts', intOption('--keepalive-ms', 50, 60_000))
    .option('--keepalive-timeout-ms <ms>', 'silence after which a host is timed out', intOption('--keepalive-timeout-ms', 100, 3_600_000))
    .option('--loss <F>', 'fraction of frames the fabric drops (0..1, or a percentage: 20%)', fractionOption('--loss'))
    .option('--dup <F>', 'fraction of frames the fabric delivers twice', fractionOption('--dup'))
    .option('--reorder <F>', `fraction of frames held back behind the next one (at most ${REORDER_WINDOW_MS} ms)`, fractionOption('--reorder'))
    .option('--delay <MS>', 'latency added to every frame, ms', intOption('--delay', 0, 10_000))
    .option('--corrupt <F>', 'fraction of frames with one bit flipped (the receiver\'s ICRC check drops them)', fractionOption('--corrupt'))
    .option('--seed <S>', 'seed of the fault draws', intOption('--seed', 0, 0xffffffff), 1)
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (o: DaemonOpts) => {
      process.exitCode = await daemon(o);
    });
  p.command('status')
    .description('print the fabric\'s ports, LIDs, states, partitions and multicast groups (ibstat / saquery)')
    .option('--fabric <host:port>', `daemon address (default ${DEFAULT_ADDRESS})`, address('--fabric'), parseFabricAddress(DEFAULT_ADDRESS))
    .option('--json', 'print JSON for scripts')
    .option('--timeout <ms>', 'how long to wait for the answer', intOption('--timeout', 1, 60_000), 2000)
    .action(async (o: { fabric: { host: string; port: number }; json?: boolean; timeout: number }) => {
      let s: DaemonStatus;
      try {
        s = await queryFabricStatus(o.fabric.host, o.fabric.port, o.timeout);
      } catch (err) {
        throw new CliError(`${o.fabric.host}:${o.fabric.port}: ${(err as Error).message}`, EXIT_RUNTIME);
      }
      process.stdout.write(o.json === true ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
      process.exitCode = EXIT_OK;
    });
  return run('ipoib-fabric', p, argv);
}
