// Network namespaces for tests that need real kernel networking (interop with dnsmasq, ISC dhcpd):
// two namespaces joined by a veth pair, commands run inside either, and cleanup that always
// happens — on t.teardown, on process exit, on SIGINT/SIGTERM — killing the children it started
// and deleting the namespaces (which deletes the veth pair). Needs root and iproute2's `ip netns`;
// netnsSkipReason() says why not, so a test can skip with a visible message.
//
//   t.test('...', { skip: netnsSkipReason() ?? false }, async (t) => {
//     const pair = netnsPair(t, { tag: 'dnm', serverAddress: '10.99.0.1/24' });
//   const srv = pair.spawn(pair.serverNs, 'dnsmasq', [...]);
//   const r = await pair.exec(pair.clientNs, 'ip', ['addr'], { timeoutMs: 5000 });
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { Test } from 'tap';

/** Every namespace this helper makes starts with this, followed by the owning pid. */
export const NETNS_PREFIX = 'ipoibt-';

export interface NetnsPairOptions {
  /** 1-3 letters naming the test, used in namespace and interface names. */
  tag: string;
  /** CIDR of the server side, e.g. "10.99.0.1/24". */
  serverAddress: string;
  /** CIDR of the client side, or null (default) for none — a DHCP client starts without one. */
  clientAddress?: string | null;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface NetnsPair {
  serverNs: string;
  clientNs: string;
  serverIf: string;
  clientIf: string;
  /** Starts `cmd` inside `ns`; the child is killed (SIGTERM, then SIGKILL) on cleanup. */
  spawn(ns: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Runs `cmd` inside `ns` to completion, killed after timeoutMs (default 30 s). */
  exec(ns: string, cmd: string, args: string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<ExecResult>;
  /** Kills the children and deletes both namespaces; idempotent and synchronous. */
  remove(): void;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

/** Why namespace tests cannot run here, or null when they can. */
export function netnsSkipReason(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (network namespaces, veth pairs)';
  try {
    ip(['netns', 'list']);
  } catch (err) {
    return `\`ip netns\` is unavailable: ${(err as Error).message.split('\n')[0]}`;
  }
  return null;
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Deletes namespaces left by test processes that died without cleaning up (SIGKILL). */
export function removeStaleNamespaces(): string[] {
  const removed: string[] = [];
  let list = '';
  try { list = ip(['netns', 'list']); } catch { return removed; }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${NETNS_PREFIX}(\\d+)-`).exec(name);
    if (m === null || pidAlive(Number(m[1]))) continue;
    try { ip(['netns', 'del', name]); removed.push(name); } catch { /* raced with another cleaner */ }
  }
  return removed;
}

const live = new Set<NetnsPair>();
let hooked = false;

function cleanupAll(): void {
  for (const p of [...live]) p.remove();
}

function hookProcess(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanupAll();
      process.off(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Creates the pair (synchronously, so a signal cannot fall between creation and registration). */
export function createNetnsPair(o: NetnsPairOptions): NetnsPair {
  if (!/^[a-z]{1,3}$/.test(o.tag)) throw new Error(`netns tag ${JSON.stringify(o.tag)}: 1-3 lower-case letters`);
  hookProcess();
  const id = `${process.pid}`;
  const serverNs = `${NETNS_PREFIX}${id}-${o.tag}-s`;
  const clientNs = `${NETNS_PREFIX}${id}-${o.tag}-c`;
  // IFNAMSIZ is 16: "v" + tag (3) + pid (7) + side = 12 at most.
  const serverIf = `v${o.tag}${id}s`;
  const clientIf = `v${o.tag}${id}c`;
  const children = new Set<ChildProcess>();
  let removed = false;

  const pair: NetnsPair = {
    serverNs, clientNs, serverIf, clientIf,
    spawn(ns, cmd, args, opts = {}) {
      const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
      children.add(child);
      child.on('exit', () => children.delete(child));
      return child;
    },
    exec(ns, cmd, args, opts = {}) {
      return new Promise((resolve) => {
        const child = pair.spawn(ns, cmd, args, { env: opts.env ?? process.env });
        let stdout = '';
        let stderr = '';
        child.stdout?.on('data', (b: Buffer) => { stdout += b.toString('utf8'); });
        child.stderr?.on('data', (b: Buffer) => { stderr += b.toString('utf8'); });
        const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
        child.on('error', (err) => { stderr += err.message; });
        child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
      });
    },
    remove() {
      if (removed) return;
      removed = true;
      live.delete(pair);
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      if ([...children].some((c) => c.exitCode === null && c.signalCode === null)) {
        try { execFileSync('sleep', ['0.2']); } catch { /* best effort */ }
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
      for (const ns of [serverNs, clientNs]) {
        try { ip(['netns', 'del', ns]); } catch { /* never created, or already gone */ }
      }
    },
  };
  live.add(pair);
  try {
    ip(['netns', 'add', serverNs]);
    ip(['netns', 'add', clientNs]);
    ip(['link', 'add', serverIf, 'type', 'veth', 'peer', 'name', clientIf]);
    ip(['link', 'set', serverIf, 'netns', serverNs]);
    ip(['link', 'set', clientIf, 'netns', clientNs]);
    for (const [ns, dev, cidr] of [[serverNs, serverIf, o.serverAddress], [clientNs, clientIf, o.clientAddress ?? null]] as const) {
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      if (cidr !== null) ip(['-n', ns, 'addr', 'add', cidr, 'dev', dev]);
      ip(['-n', ns, 'link', 'set', dev, 'up']);
    }
  } catch (err) {
    pair.remove();
    try { ip(['link', 'del', serverIf]); } catch { /* moved into the namespace, or never made */ }
    throw err;
  }
  return pair;
}

/**
 * For tap: creates a pair removed at t.teardown (and on exit/signals). Gate the test first with
 * `t.test(name, { skip: netnsSkipReason() ?? false }, ...)` so the skip and its reason show.
 */
export function netnsPair(t: Test, o: NetnsPairOptions): NetnsPair {
  const reason = netnsSkipReason();
  if (reason !== null) throw new Error(`network namespaces unavailable: ${reason}`);
  const stale = removeStaleNamespaces();
  if (stale.length > 0) t.comment(`removed stale namespaces: ${stale.join(', ')}`);
  const pair = createNetnsPair(o);
  t.teardown(() => pair.remove());
  return pair;
}
