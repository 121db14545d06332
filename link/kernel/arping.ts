// RFC 5227 probe and announcement on the kernel transport, through iputils `arping` (arping(8):
// -D duplicate address detection, exit 1 when a host answered; -U unsolicited ARP). node has no
// access to ARP, so without arping the kernel transport skips the probe (the caller logs that).
// Thomas Habets' `arping` package has different flags and exit codes: it is detected and not used.
import { execFile } from 'node:child_process';

export interface ArpingOptions {
  binary?: string;
  timeoutMs?: number;
}

function exec(binary: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(binary, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** True when `binary` is iputils arping (its -V prints "iputils"). */
export async function haveIputilsArping(binary = 'arping'): Promise<boolean> {
  const r = await exec(binary, ['-V'], 2000);
  return /iputils/i.test(r.out);
}

export class Arping {
  private readonly binary: string;
  private readonly timeoutMs: number;

  constructor(opts: ArpingOptions = {}) {
    this.binary = opts.binary ?? 'arping';
    this.timeoutMs = opts.timeoutMs ?? 15_000;
  }

  /**
   * Sends `count` probes (sender IP 0) for `address` out of `iface` and waits `waitS` seconds in
   * all; true when some host answered. A failure of arping itself (not 0 or 1) rejects.
   */
  async probe(iface: string, address: string, count: number, waitS: number): Promise<boolean> {
    const r = await exec(this.binary, ['-D', '-q', '-I', iface, '-c', String(count), '-w', String(waitS), address], this.timeoutMs);
    if (r.code === 0) return false;
    if (r.code === 1 && !/usage|invalid|unknown/i.test(r.out)) return true;
    throw new Error(`arping -D ${address} on ${iface}: exit ${r.code}: ${r.out.trim()}`);
  }

  /** One unsolicited (gratuitous) ARP for `address`. */
  async announce(iface: string, address: string): Promise<void> {
    const r = await exec(this.binary, ['-U', '-q', '-I', iface, '-c', '1', address], this.timeoutMs);
    if (r.code !== 0) throw new Error(`arping -U ${address} on ${iface}: exit ${r.code}: ${r.out.trim()}`);
  }
}
