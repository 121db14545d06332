// ipoib-ha: OFED's ipoib_ha.pl (release notes §5) for an emulated host started by `ipoib-boot`.
//
//   ipoib-ha --host NAME [-p PRIMARY] [-s SECONDARY] [--with-arping] [--with-multicast] [-v]
//            [--poll MS] [--failback] [--runtime-dir DIR]
//   ipoib-ha --host NAME --status | --stop
//
// The HA service must run where the interfaces are, so this program does not watch anything
// itself: it asks the running ipoib-boot of host NAME (its <runtime dir>/NAME.boot.sock) to start
// the service (link/ha/ha-service.ts) with these settings, prints the service's status and exits.
// Defaults as ipoib_ha.pl: -p ib0, -s ib1. Exit 2 for bad usage or a device the host refuses (no
// such interface, already a bond slave), 1 when no ipoib-boot answers.
import { BootControlError, bootSocketPath, callBoot } from '../boot/execute-control.js';
import { formatHaStatus, HA_DEFAULT_PRIMARY, HA_DEFAULT_SECONDARY, HA_POLL_MS } from '../link/ha/index.js';
import { checkHostName, defaultRuntimeDir } from '../link/ipoib/control-socket.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, intOption, program, run } from './cli.js';

export interface HaCli {
  action: 'start' | 'status' | 'stop';
  host: string;
  primary: string;
  secondary: string;
  withArping: boolean;
  withMulticast: boolean;
  verbose: boolean;
  pollMs: number;
  failback: boolean;
  runtimeDir: string;
}

interface RawOpts {
  host?: string;
  p?: string;
  s?: string;
  withArping?: boolean;
  withMulticast?: boolean;
  verbose?: boolean;
  poll?: number;
  failback?: boolean;
  status?: boolean;
  stop?: boolean;
  runtimeDir?: string;
}

const IFNAME = /^ib\d+(\.[0-9a-f]{4})?$/;

/** Checks the combination; throws CliError (exit 2) naming the flag. */
export function haCliOptions(o: RawOpts): HaCli {
  if (o.status === true && o.stop === true) throw new CliError('--status and --stop: choose one');
  if (o.host === undefined) throw new CliError('--host NAME is required: the ipoib-boot host to run the HA service on');
  const primary = o.p ?? HA_DEFAULT_PRIMARY;
  const secondary = o.s ?? HA_DEFAULT_SECONDARY;
  for (const [flag, v] of [['-p', primary], ['-s', secondary]] as const) {
    if (!IFNAME.test(v)) throw new CliError(`${flag} ${v}: not an IPoIB interface name (ib<n> or ib<n>.<pkey>)`);
  }
  if (primary === secondary) throw new CliError(`-p and -s are both ${primary}: the secondary must be another interface`);
  return {
    action: o.status === true ? 'status' : o.stop === true ? 'stop' : 'start', host: checkHostName(o.host), primary, secondary,
    withArping: o.withArping === true, withMulticast: o.withMulticast === true, verbose: o.verbose === true,
    pollMs: o.poll ?? HA_POLL_MS, failback: o.failback === true, runtimeDir: o.runtimeDir ?? defaultRuntimeDir(),
  };
}

const CONFIG_CODES = new Set(['ENODEV', 'EBUSY', 'EINVAL', 'EEXIST', 'ENOENT']);

export async function main(argv: string[]): Promise<number> {
  const p = program('ipoib-ha', "OFED ipoib_ha.pl: fail a primary IPoIB interface's IP identity over to a secondary, on a host run by ipoib-boot")
    .option('--host <name>', 'the ipoib-boot host')
    .option('-p <primary>', `primary IPoIB interface (default: ${HA_DEFAULT_PRIMARY})`)
    .option('-s <secondary>', `secondary IPoIB interface (default: ${HA_DEFAULT_SECONDARY})`)
    .option('--with-arping', 'send an unsolicited ARP REPLY from the secondary after a failover')
    .option('--with-multicast', "rejoin the primary's multicast groups on the secondary")
    .option('-v, --verbose', 'verbose output (the service events)')
    .option('--poll <ms>', `link monitor interval (default ${HA_POLL_MS})`, intOption('--poll', 1, 60_000))
    .option('--failback', 'move back to the primary when its port is active again (default: stay)')
    .option('--status', 'print the running service\'s status')
    .option('--stop', 'stop the service (the identity stays where it is)')
    .option('--runtime-dir <dir>', 'where the hosts\' sockets live')
    .action(async (o: RawOpts) => {
      const c = haCliOptions(o);
      const path = bootSocketPath(c.host, c.runtimeDir);
      try {
        if (c.action === 'stop') { await callBoot(path, 'ha.stop', {}); process.stdout.write(`ipoib-ha: stopped on ${c.host}\n`); return; }
        const st = c.action === 'status'
          ? await callBoot(path, 'ha.status', {})
          : await callBoot(path, 'ha.start', {
            primary: c.primary, secondary: c.secondary, withArping: c.withArping, withMulticast: c.withMulticast, pollMs: c.pollMs, failback: c.failback,
          });
        if (st === null) { process.stdout.write(`ipoib-ha: no HA service on ${c.host}\n`); return; }
        process.stdout.write(formatHaStatus(st) + '\n');
        if (c.verbose) for (const e of st.events) process.stdout.write(`  ${e.at} ${e.kind}: ${e.message}\n`);
      } catch (err) {
        if (err instanceof BootControlError) throw new CliError(err.message, CONFIG_CODES.has(err.code) ? EXIT_USAGE : EXIT_RUNTIME);
        throw err;
      }
    });
  const rc = await run('ipoib-ha', p, argv);
  return rc === EXIT_OK ? EXIT_OK : rc;
}
