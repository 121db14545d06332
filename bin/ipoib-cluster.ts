// ipoib-cluster: the project's main job (`npm start`). One process, one emulated fabric with its
// subnet manager, and N hosts whose ib0 is addressed either by DHCP (default: one ipoib-dhcpd host
// and N ipoib-dhclient hosts booting at once) or statically; then a table per host and proof that
// every address answers. Everything runs in virtual time.
//
//   ipoib-cluster [--nodes N] [--addressing dhcp|static] [--mode datagram|connected] [--ping-all]
//                 [--ping-sample K] [--lease-db sqlite:FILE|postgres:URL] [--port P] [--pool-size M]
//                 [--fabric inproc|spawn|HOST:PORT] [--processes G] [--partitions P] [--servers K]
//                 [--loss F] [--dup F] [--reorder F] [--delay MS] [--kill-server-every S]
//                 [--pcap FILE] [--pcap-raw FILE] [--plot FILE.svg] [--seed S] [--json] [--quiet]
//
// --fabric inproc (default) runs everything in this process in virtual time. --fabric spawn starts
// an `ipoib-fabric` daemon for the run, --fabric HOST:PORT uses a running one; either way the server
// (`ipoib-dhcpd --fabric`) and the hosts (grouped into --processes OS processes) are child processes
// in real time, and --kill-server-every kills the server with SIGKILL and starts it again
// (bin/cluster/processes.ts). Each host group is this program again, as the hidden subcommand
// `ipoib-cluster host-group SPEC` (bin/cluster/host-group.ts), so it needs no entry of its own.
//
// Exit 0 when every host is up (bound, with DHCP) and every ping was answered; 1 otherwise; 2 for
// impossible options (one line on stderr, nothing started).
import { Option } from 'commander';
import type { IpoibMode } from '../link/ipoib/index.js';
import { CliError, commanderParser, EXIT_OK, EXIT_RUNTIME, intOption, program, run } from './cli.js';
import { Progress } from './cluster/progress.js';
import { formatReport, reportJson, type ClusterReport } from './cluster/report.js';
import { MAX_STATIC_NODES, runStatic } from './cluster/static.js';
import { DEFAULT_SERVER_PORT, MAX_POOL_SIZE, runDhcp } from './cluster/dhcp.js';
import { faultsOf, fractionOption, type ClusterFaults } from './cluster/faults.js';
import { fabricOption, type FabricChoice } from './cluster/fabric-option.js';
import { runProcesses } from './cluster/processes.js';
import { hostGroupMain } from './cluster/host-group.js';
import { checkPlotPath, writePlot } from './cluster/plot.js';

export interface ClusterIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal (progress redrawn in place) or not (periodic plain lines). */
  readonly errIsTTY: boolean;
}

const stdio: ClusterIo = {
  out: (s) => { process.stdout.write(s); },
  err: (s) => { process.stderr.write(s); },
  get errIsTTY() { return process.stderr.isTTY === true; },
};

/** intOption(), its error reported through commander (so through the io given to main). */
function int(flag: string, min: number, max: number): (v: string) => number {
  return commanderParser(intOption(flag, min, max));
}

interface ClusterOpts {
  nodes: number;
  addressing: 'dhcp' | 'static';
  mode: IpoibMode;
  pingAll?: boolean;
  pingSample: number;
  leaseDb?: string;
  port: number;
  poolSize?: number;
  pcap?: string;
  pcapRaw?: string;
  fabric: FabricChoice;
  processes?: number;
  partitions: number;
  servers: number;
  loss?: number;
  dup?: number;
  reorder?: number;
  delay?: number;
  killServerEvery?: number;
  plot?: string;
  seed: number;
  json?: boolean;
  quiet?: boolean;
}

/** The options every form of the DHCP run reads (in-process and multi-process). */
export interface ClusterRunOptions {
  nodes: number;
  mode: IpoibMode;
  pingAll: boolean;
  pingSample: number;
  seed: number;
  leaseDb: string | undefined;
  port: number;
  poolSize: number;
  partitions: number;
  servers: number;
  faults: ClusterFaults | undefined;
  pcap: string | undefined;
  pcapRaw: string | undefined;
}

export async function main(argv: string[], io: ClusterIo = stdio): Promise<number> {
  // Hidden: one host group of --fabric spawn|HOST:PORT, started by the coordinator (cluster/host-group.ts).
  if (argv[0] === 'host-group') return hostGroupMain(argv.slice(1));
  let code = EXIT_OK;
  const p = program('ipoib-cluster',
    'Boots an emulated InfiniBand cluster in one process: a fabric with its subnet manager, one DHCP server host and N hosts ' +
    'addressed by DHCP (or statically), then shows every host and proves every address answers.')
    .option('-n, --nodes <N>', 'hosts to boot', int('--nodes', 1, MAX_STATIC_NODES), 16)
    .addOption(new Option('--addressing <how>', 'dhcp: ipoib-dhcpd + ipoib-dhclient; static: 10.0.0.k/16').choices(['dhcp', 'static']).default('dhcp'))
    .addOption(new Option('--mode <mode>', 'IPoIB mode of every ib0').choices(['datagram', 'connected']).default('datagram'))
    .option('--ping-all', 'ping every pair of hosts (beyond 64 hosts: every host to --ping-sample random peers)')
    .option('--ping-sample <K>', 'peers per host for --ping-all on large clusters', int('--ping-sample', 1, 64), 4)
    .option('--lease-db <spec>', 'lease database: sqlite:FILE, FILE, or postgres://URL (default: a SQLite file in a temporary directory)')
    .option('-p, --port <P>', `server port; clients use P+1 (OFED: above 0x8000; default 0x${DEFAULT_SERVER_PORT.toString(16)})`,
      int('--port', 1, 65534), DEFAULT_SERVER_PORT)
    .option('--pool-size <M>', 'addresses in the DHCP pool (default: --nodes)', int('--pool-size', 1, MAX_POOL_SIZE))
    .option('--fabric <where>', "inproc (one process, virtual time), spawn (start an ipoib-fabric daemon for the run) or HOST:PORT of a running one",
      fabricOption, 'inproc' as FabricChoice)
    .option('--processes <G>', 'with --fabric spawn|HOST:PORT: OS processes the hosts are grouped into (default 4)', int('--processes', 1, 256))
    .option('--partitions <P>', 'spread the hosts over P partitions (P_Keys 0x8001..), each with its own subnet', int('--partitions', 1, 64), 1)
    .option('--servers <K>', 'DHCP servers sharing one PostgreSQL lease database (--lease-db postgres://...)', int('--servers', 1, 16), 1)
    .option('--loss <F>', 'fraction of packets the fabric drops (0..1, or a percentage: 20%)', fractionOption('--loss'))
    .option('--dup <F>', 'fraction of packets the fabric delivers twice', fractionOption('--dup'))
    .option('--reorder <F>', 'fraction of packets the fabric holds back behind the next one', fractionOption('--reorder'))
    .option('--delay <MS>', 'fabric latency added to every packet, ms', int('--delay', 0, 10_000))
    .option('--kill-server-every <S>', 'kill a server process with SIGKILL every S seconds (with --servers K, each in turn) and start it again (needs --fabric spawn|HOST:PORT)',
      int('--kill-server-every', 1, 3600))
    .option('--plot <file.svg>', 'draw bound hosts over time and the distribution of time-to-bound as SVG')
    .option('--pcap <file>', 'write the IPoIB packets (ARP, DHCP, ICMP) as LINKTYPE_IPOIB 242')
    .option('--pcap-raw <file>', 'write every raw IB frame (SA/CM MADs too) as DLT_USER0 147 (tshark: user_dlts -> infiniband)')
    .option('--seed <S>', 'seed of every random choice (client xids and backoff, ping sample)', int('--seed', 0, 0xffffffff), 1)
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'no progress on stderr')
    .configureOutput({ writeErr: (s) => io.err(s), writeOut: (s) => io.out(s) })
    .action(async (o: ClusterOpts) => {
      try {
        code = await cluster(o, io);
      } catch (err) {
        if (!(err instanceof CliError)) throw err;
        io.err(`ipoib-cluster: ${err.message}\n`);
        code = err.exitCode;
      }
    });
  const rc = await run('ipoib-cluster', p, argv);
  return rc === EXIT_OK ? code : rc;
}

async function cluster(o: ClusterOpts, io: ClusterIo): Promise<number> {
  const progress = new Progress({ write: (s) => io.err(s), isTTY: io.errIsTTY }, o.quiet !== true);
  let report: ClusterReport;
  const faults = faultsOf(o);
  if (o.plot !== undefined) checkPlotPath(o.plot);
  if (o.processes !== undefined && o.fabric === 'inproc') throw new CliError('--processes needs --fabric spawn or --fabric HOST:PORT');
  if (o.killServerEvery !== undefined && o.fabric === 'inproc') {
    throw new CliError('--kill-server-every needs --fabric spawn or --fabric HOST:PORT (the server must be its own OS process to be killed)');
  }
  if (o.servers > 1 && (o.leaseDb === undefined || !/^postgres(ql)?:/i.test(o.leaseDb))) {
    throw new CliError(`--servers ${o.servers} needs --lease-db postgres://... (servers share leases through PostgreSQL)`);
  }
  if (o.addressing === 'static') {
    for (const [flag, v] of [['--lease-db', o.leaseDb], ['--pool-size', o.poolSize], ['--kill-server-every', o.killServerEvery],
      ['--servers', o.servers > 1 ? o.servers : undefined], ['--fabric', o.fabric === 'inproc' ? undefined : 'x']] as const) {
      if (v !== undefined) throw new CliError(`${flag} needs --addressing dhcp`);
    }
    report = await runStatic({
      nodes: o.nodes, mode: o.mode, pingAll: o.pingAll === true, pingSample: o.pingSample, seed: o.seed,
      pcap: o.pcap, pcapRaw: o.pcapRaw, progress, partitions: o.partitions, faults,
    });
  } else {
    const run: ClusterRunOptions = {
      nodes: o.nodes, mode: o.mode, pingAll: o.pingAll === true, pingSample: o.pingSample, seed: o.seed,
      pcap: o.pcap, pcapRaw: o.pcapRaw, leaseDb: o.leaseDb, port: o.port, poolSize: o.poolSize ?? o.nodes,
      partitions: o.partitions, servers: o.servers, faults,
    };
    report = o.fabric === 'inproc'
      ? await runDhcp({ ...run, progress })
      : await runProcesses({ ...run, progress, fabric: o.fabric, processes: o.processes ?? 4, killServerEveryMs: o.killServerEvery === undefined ? undefined : o.killServerEvery * 1000 });
  }
  if (o.plot !== undefined) writePlot(report, o.plot);
  io.out(o.json === true ? reportJson(report) : formatReport(report));
  return report.ok ? EXIT_OK : EXIT_RUNTIME;
}

