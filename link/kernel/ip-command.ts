// Interface configuration on the kernel through iproute2's `ip` (ip-address(8), ip-route(8),
// ip-link(8)), for the kernel transport. Every call runs with a timeout and fails with the command
// and its stderr in the message. Addresses are dotted text; the caller decides what to configure.
import { execFile } from 'node:child_process';

export class IpCommandError extends Error {
  override readonly name = 'IpCommandError';
  readonly code = 'IP_COMMAND_FAILED';
}

export interface IpCommandOptions {
  /** The `ip` binary. Default "ip" (PATH). */
  binary?: string;
  timeoutMs?: number;
}

export class IpCommand {
  private readonly binary: string;
  private readonly timeoutMs: number;
  /** Every command run (argument vectors), for logs and tests. */
  readonly history: string[][] = [];

  constructor(opts: IpCommandOptions = {}) {
    this.binary = opts.binary ?? 'ip';
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  run(args: string[]): Promise<string> {
    this.history.push(args);
    return new Promise((resolve, reject) => {
      execFile(this.binary, args, { timeout: this.timeoutMs }, (err, stdout, stderr) => {
        if (err !== null) {
          reject(new IpCommandError(`${this.binary} ${args.join(' ')}: ${stderr.trim() || err.message}`));
        } else {
          resolve(stdout);
        }
      });
    });
  }

  /** `ip addr replace ADDR/PREFIX broadcast B dev IFACE` (replace: a renewal of the same lease is not an error). */
  addAddress(iface: string, address: string, prefixLength: number, broadcast: string | null): Promise<string> {
    const args = ['addr', 'replace', `${address}/${prefixLength}`];
    if (broadcast !== null) args.push('broadcast', broadcast);
    return this.run([...args, 'dev', iface]);
  }

  delAddress(iface: string, address: string, prefixLength: number): Promise<string> {
    return this.run(['addr', 'del', `${address}/${prefixLength}`, 'dev', iface]);
  }

  /** `ip route replace DEST/LEN [via GW] dev IFACE [scope link]`. */
  replaceRoute(iface: string, destination: string, prefixLength: number, gateway: string | null): Promise<string> {
    const args = ['route', 'replace', `${destination}/${prefixLength}`];
    if (gateway !== null) args.push('via', gateway);
    else args.push('scope', 'link');
    return this.run([...args, 'dev', iface]);
  }

  delRoute(iface: string, destination: string, prefixLength: number): Promise<string> {
    return this.run(['route', 'del', `${destination}/${prefixLength}`, 'dev', iface]);
  }

  setMtu(iface: string, mtu: number): Promise<string> {
    return this.run(['link', 'set', 'dev', iface, 'mtu', String(mtu)]);
  }

  linkUp(iface: string): Promise<string> {
    return this.run(['link', 'set', 'dev', iface, 'up']);
  }
}
