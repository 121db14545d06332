// ipoib-boot: a host brought up from openib.conf and ifcfg-ib<n> files, with openibd's verbs.
//
//   ipoib-boot [start|stop|restart|status] --conf OPENIB_CONF [--ifcfg-dir DIR] [--layout redhat|suse]
//              [--ports ib0,ib1] [--fabric HOST:PORT] [--host NAME] [--dry-run] [--json] [-v]
//
// Only --dry-run works so far: it prints the bring-up plan (a table, or JSON with --json) and exits
// 0, or 2 when the configuration has errors. Executing the plan on a fabric is not built yet: without
// --dry-run the program says so in one line and exits 1.
import { Option } from 'commander';
import { formatDiagnostic } from '../boot/diagnostic.js';
import { ConfigFileError, loadBootPlan } from '../boot/load.js';
import { formatPlanTable, planJson } from '../boot/plan-table.js';
import { parseFabricAddress } from '../link/fabric/udp-protocol.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, program, run } from './cli.js';

export interface BootIo {
  out(text: string): void;
  err(text: string): void;
}

const stdio: BootIo = {
  out: (s) => { process.stdout.write(s); },
  err: (s) => { process.stderr.write(s); },
};

interface BootOpts {
  conf: string;
  ifcfgDir?: string;
  layout?: 'redhat' | 'suse';
  ports?: string[];
  fabric?: { host: string; port: number };
  host?: string;
  dryRun?: boolean;
  json?: boolean;
  verbose?: boolean;
}

const VERBS = ['start', 'stop', 'restart', 'status'] as const;

export async function main(argv: string[], io: BootIo = stdio): Promise<number> {
  let code = EXIT_OK;
  const p = program('ipoib-boot',
    'Brings a host up from openib.conf and ifcfg-ib<n> files (OFED 1.2 openibd). Only --dry-run is implemented: it prints the plan.')
    .argument('[verb]', `${VERBS.join('|')} (default start)`, 'start')
    .requiredOption('--conf <file>', 'openib.conf to read (e.g. /etc/infiniband/openib.conf)')
    .option('--ifcfg-dir <dir>', 'directory with ifcfg-ib* and ifcfg-bond* files (/etc/sysconfig/network-scripts or /etc/sysconfig/network)')
    .addOption(new Option('--layout <layout>', 'ifcfg layout; default: from the directory name, then from the keys').choices(['redhat', 'suse']))
    .option('--ports <list>', "the host's physical IPoIB interfaces, comma separated; default: those the ifcfg files name",
      (v: string) => v.split(',').map((s) => s.trim()).filter((s) => s !== ''))
    .option('--fabric <host:port>', 'fabric daemon to attach to (not used by --dry-run)', (v: string) => {
      try {
        return parseFabricAddress(v);
      } catch (err) {
        throw new CliError(`--fabric: ${(err as Error).message}`);
      }
    })
    .option('--host <name>', 'host name on the fabric')
    .option('--dry-run', 'print the plan; touch nothing')
    .option('--json', 'with --dry-run: print the plan as JSON')
    .option('-v, --verbose', 'with --dry-run: show info notes too')
    .action((verb: string, o: BootOpts) => {
      if (!(VERBS as readonly string[]).includes(verb)) {
        throw new CliError(`'${verb}' is not a verb: use ${VERBS.join(', ')}`);
      }
      if (o.json === true && o.dryRun !== true) throw new CliError('--json needs --dry-run');
      let plan;
      try {
        plan = loadBootPlan({
          conf: o.conf, ifcfgDir: o.ifcfgDir ?? null, layout: o.layout ?? null, ports: o.ports ?? null, host: o.host ?? null,
        });
      } catch (err) {
        if (err instanceof ConfigFileError) throw new CliError(err.message, EXIT_USAGE);
        throw err;
      }
      if (o.dryRun !== true) {
        throw new CliError(`${verb}: executing the plan on a fabric is not implemented yet; use --dry-run to print the plan`, EXIT_RUNTIME);
      }
      io.out(o.json === true ? planJson(plan) : formatPlanTable(plan, verb, o.verbose === true));
      const errors = plan.warnings.filter((d) => d.severity === 'error');
      const first = errors[0];
      if (first !== undefined) {
        io.err(`ipoib-boot: ${errors.length} configuration error${errors.length > 1 ? 's' : ''}; first: ${formatDiagnostic(first)}\n`);
        code = EXIT_USAGE;
      }
    });
  const rc = await run('ipoib-boot', p, argv);
  return rc === EXIT_OK ? code : rc;
}
