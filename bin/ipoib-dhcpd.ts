// ipoib-dhcpd: the DHCPv4 server for IP over InfiniBand. The server itself is not built yet;
// for now the program carries only `leases` (list, export, import of the lease database).
import { leasesCommand } from './ipoib-dhcpd-leases.js';
import { program, run } from './cli.js';

export async function main(argv: string[]): Promise<number> {
  const p = program('ipoib-dhcpd',
    'DHCPv4 server for IP over InfiniBand (RFC 4390). The server itself is not built yet: only `leases` is available.');
  leasesCommand(p);
  return run('ipoib-dhcpd', p, argv);
}
