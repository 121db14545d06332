// ib-bond: the ib-bonding package's utility (OFED 1.2 release notes §6; its flags as the OFED 1.4
// ib-bonding.txt documents them) for an emulated host started by `ipoib-boot`.
//
//   ib-bond --host NAME [--start] [--bond-name bond0] --bond-ip IP[/MASK] [--slaves ib0,ib1] [--miimon 100]
//   ib-bond --host NAME --stop [--bond-name bond0] | --stop-all
//   ib-bond --host NAME --status [--bond-name bond0] | --status-all
//
// As with ib-bond, --bond-ip alone creates the bond (--start says so explicitly); MASK is a prefix
// length, 24 when not given. The bond lives in the host's process (link/ha/bond.ts: the host has no
// bond netdev), so this program sends the request to host NAME's ipoib-boot over
// <runtime dir>/NAME.boot.sock and prints what it answers. Exit 2 for bad usage or a request the
// host refuses (a slave that does not exist or is taken by the HA service), 1 when no ipoib-boot answers.
import { BootControlError, bootSocketPath, callBoot } from '../boot/execute-control.js';
import { BOND_DEFAULT_SLAVES, BOND_MIIMON_MS, formatBondStatus } from '../link/ha/index.js';
import { checkHostName, defaultRuntimeDir } from '../link/ipoib/control-socket.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, intOption, program, run } from './cli.js';

export interface BondCli {
  action: 'start' | 'stop' | 'stop-all' | 'status' | 'status-all';
  host: string;
  name: string;
  /** "10.0.0.4/24" (start only). */
  address: string | null;
  slaves: string[];
  miimonMs: number;
  runtimeDir: string;
}

interface RawOpts {
  host?: string;
  start?: boolean;
  stop?: boolean;
  stopAll?: boolean;
  status?: boolean;
  statusAll?: boolean;
  bondName?: string;
  bondIp?: string;
  slaves?: string;
  miimon?: number;
  runtimeDir?: string;
}

const IFNAME = /^ib\d+(\.[0-9a-f]{4})?$/;

/** ib-bond's --bond-ip: IP, or IP/MASK with MASK the number of 1 bits (default 24). */
export function parseBondIp(v: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(v);
  if (m === null || m.slice(1, 5).some((o) => Number(o) > 255)) throw new CliError(`--bond-ip '${v}': not IP[/MASK] (MASK = number of 1 bits)`);
  const mask = m[5] === undefined ? 24 : Number(m[5]);
  if (mask < 1 || mask > 32) throw new CliError(`--bond-ip '${v}': MASK ${mask} is not 1..32`);
  return `${m.slice(1, 5).join('.')}/${mask}`;
}

export function bondCliOptions(o: RawOpts): BondCli {
  const verbs = ([['start', o.start], ['stop', o.stop], ['stop-all', o.stopAll], ['status', o.status], ['status-all', o.statusAll]] as const)
    .filter(([, on]) => on === true).map(([v]) => v);
  if (verbs.length > 1) throw new CliError(`${verbs.map((v) => `--${v}`).join(' and ')}: choose one`);
  const action = verbs[0] ?? (o.bondIp !== undefined ? 'start' : undefined);
  if (action === undefined) throw new CliError('nothing to do: give --bond-ip (or --start) to create a bond, --stop, --stop-all, --status or --status-all');
  if (o.host === undefined) throw new CliError('--host NAME is required: the ipoib-boot host the bond lives on');
  const name = o.bondName ?? 'bond0';
  if (!/^bond\d+$/.test(name)) throw new CliError(`--bond-name '${name}': not bond<N>`);
  const slaves = o.slaves === undefined ? [...BOND_DEFAULT_SLAVES] : o.slaves.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const s of slaves) if (!IFNAME.test(s)) throw new CliError(`--slaves: '${s}' is not an IPoIB interface (ib<n> or ib<n>.<pkey>); only IPoIB slaves are bonded here`);
  if (slaves.length === 0) throw new CliError('--slaves: no slave');
  if (new Set(slaves).size !== slaves.length) throw new CliError(`--slaves ${o.slaves}: a slave is named twice`);
  if (action === 'start' && o.bondIp === undefined) throw new CliError('--start needs --bond-ip IP[/MASK]');
  if (action !== 'start' && (o.bondIp !== undefined || o.slaves !== undefined || o.miimon !== undefined)) {
    throw new CliError(`--${action} takes no --bond-ip, --slaves or --miimon`);
  }
  return {
    action, host: checkHostName(o.host), name, address: o.bondIp === undefined ? null : parseBondIp(o.bondIp), slaves,
    miimonMs: o.miimon ?? BOND_MIIMON_MS, runtimeDir: o.runtimeDir ?? defaultRuntimeDir(),
  };
}

const CONFIG_CODES = new Set(['ENODEV', 'EBUSY', 'EINVAL', 'EEXIST', 'ENOENT']);

export async function main(argv: string[]): Promise<number> {
  const p = program('ib-bond', 'ib-bonding: active-backup bonds over IPoIB interfaces, on a host run by ipoib-boot')
    .option('--host <name>', 'the ipoib-boot host')
    .option('--start', 'create the bond (implied by --bond-ip)')
    .option('--stop', 'release the slaves and delete the bond named by --bond-name')
    .option('--stop-all', 'delete every bond')
    .option('--status', 'the status of the bond named by --bond-name')
    .option('--status-all', 'the status of every bond')
    .option('--bond-name <name>', 'the bond interface (default bond0)')
    .option('--bond-ip <ip[/mask]>', 'the bond\'s address; MASK is the number of 1 bits (default 24)')
    .option('--slaves <list>', `comma-separated IPoIB slaves (default ${BOND_DEFAULT_SLAVES.join(',')})`)
    .option('--miimon <ms>', `link monitoring interval (default ${BOND_MIIMON_MS})`, intOption('--miimon', 1, 60_000))
    .option('--runtime-dir <dir>', 'where the hosts\' sockets live')
    .action(async (o: RawOpts) => {
      const c = bondCliOptions(o);
      const path = bootSocketPath(c.host, c.runtimeDir);
      try {
        switch (c.action) {
          case 'start':
            process.stdout.write(formatBondStatus(await callBoot(path, 'bond.start', { name: c.name, slaves: c.slaves, address: c.address, miimonMs: c.miimonMs })) + '\n');
            return;
          case 'stop': await callBoot(path, 'bond.stop', { name: c.name }); process.stdout.write(`${c.name} deleted\n`); return;
          case 'stop-all': process.stdout.write(`deleted: ${(await callBoot(path, 'bond.stop-all', {})).stopped.join(', ') || 'none'}\n`); return;
          case 'status': process.stdout.write(formatBondStatus(await callBoot(path, 'bond.status', { name: c.name })) + '\n'); return;
          case 'status-all': {
            const all = await callBoot(path, 'bond.status-all', {});
            process.stdout.write(all.length === 0 ? 'no bond\n' : all.map(formatBondStatus).join('\n\n') + '\n');
            return;
          }
        }
      } catch (err) {
        if (err instanceof BootControlError) throw new CliError(err.message, CONFIG_CODES.has(err.code) ? EXIT_USAGE : EXIT_RUNTIME);
        throw err;
      }
    });
  return run('ib-bond', p, argv);
}
