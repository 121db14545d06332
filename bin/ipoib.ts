// ipoib: looks at and changes a running emulated host (ipoib-host) through its control socket,
// as `ip`, `ping`, `sysctl` and `cat /sys/...` do with the kernel:
//
//   ipoib [--host NAME] [-j|--json] [-s|--stats] [--runtime-dir DIR | --socket PATH] OBJECT COMMAND
//     link show [[dev] DEV]                 link set [dev] DEV [mode connected|datagram] [mtu N] [up|down]
//     addr show [[dev] DEV]                 addr add|del A.B.C.D/LEN dev DEV
//     neigh show [[dev] DEV]                neigh flush [dev] DEV
//     route show                            route add|del PREFIX|default [via GW] [dev DEV] [metric N]
//     ping [-c N] [-s SIZE] [-i SECONDS] [-W SECONDS] [-I DEV] ADDR
//     sysctl [-w] [-n] KEY[=VALUE]...       sys /sys/class/net/DEV/ATTR [VALUE]
//     hosts
//
// Options come before the object, as with `ip -j -s link`. Without --host: $IPOIB_HOST, else the
// only host in the runtime directory. Text output follows iproute2 / ping(8) / sysctl(8); --json
// prints the host's own records. Exit 0 ok; 2 bad usage or a value the host refuses (nothing is
// changed then); 1 runtime failure (no such host, address in use, ...); ping: 1 when no reply came.
import type { Command } from 'commander';
import type { AddrRow, LinkRow, PingResult } from '../link/ipoib/index.js';
import { ControlClient, ControlError, defaultRuntimeDir, listHosts, socketPath } from '../link/ipoib/control-socket.js';
import type { ControlApi, ControlCommand, RouteCacheRow, RouteRow } from '../link/ipoib/control-commands.js';
import type { NeighbourRow } from '../link/ipoib/neighbour-table.js';
import { CliError, commanderParser, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, intOption, program, run } from './cli.js';

const NAME = 'ipoib';

/** Where the program writes; tests pass their own. */
export interface Io {
  out(s: string): void;
  err(s: string): void;
}

const processIo: Io = {
  out: (s) => { process.stdout.write(s); },
  err: (s) => { process.stderr.write(s); },
};

interface GlobalOptions {
  host?: string;
  json?: boolean;
  stats?: boolean;
  runtimeDir?: string;
  socket?: string;
  timeout: number;
}

/** Host error codes that mean "the request was wrong": usage exit status, nothing changed. */
const USAGE_CODES = new Set(['EINVAL', 'ENODEV', 'EOPNOTSUPP']);

// ---- formatting (iproute2, ping(8), sysctl(8)) ---------------------------------------------------

function linkHeader(l: LinkRow): string {
  return `${l.ifindex}: ${l.name}${l.parent !== undefined ? `@${l.parent}` : ''}: <${l.flags.join(',')}> mtu ${l.mtu} state ${l.operstate}`;
}

function table(rows: (string | number)[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => '    ' + r.map((c, i) => String(c).padStart(widths[i]!)).join(' '));
}

export function formatLinks(rows: LinkRow[], stats = false): string {
  return rows.map((l) => {
    const out = [
      linkHeader(l),
      `    link/infiniband ${l.address} brd ${l.broadcast}`,
      `    ipoib pkey ${l.pkey} mode ${l.mode} qpn 0x${l.qpn.toString(16).padStart(6, '0')} lid ${l.lid} port_guid ${l.portGuid}`,
    ];
    if (stats) {
      const s = l.stats;
      out.push(...table([
        ['RX:', 'bytes', 'packets', 'errors', 'dropped', 'mcast', 'nohandler'],
        ['', s.rxBytes, s.rxPackets, s.rxErrors, s.rxDropped, s.rxMulticast, s.rxNohandler],
      ]));
      out.push(...table([
        ['TX:', 'bytes', 'packets', 'errors', 'dropped'],
        ['', s.txBytes, s.txPackets, s.txErrors, s.txDropped],
      ]));
      const drops = Object.entries(s.drops).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`);
      if (drops.length > 0) out.push(`    drops: ${drops.join(', ')}`);
    }
    return out.join('\n') + '\n';
  }).join('');
}

export function formatAddrs(links: LinkRow[], addrs: AddrRow[]): string {
  return links.map((l) => {
    const out = [linkHeader(l), `    link/infiniband ${l.address} brd ${l.broadcast}`];
    for (const a of addrs.filter((x) => x.dev === l.name)) {
      out.push(`    inet ${a.address}/${a.prefixlen}${a.prefixlen < 31 ? ` brd ${a.broadcast}` : ''} scope global ${a.dev}`);
    }
    return out.join('\n') + '\n';
  }).join('');
}

export function formatNeigh(rows: NeighbourRow[]): string {
  return rows.map((r) => `${r.ip} dev ${r.dev}${r.lladdr !== undefined ? ` lladdr ${r.lladdr}` : ''} ${r.state}\n`).join('');
}

export function formatRoutes(routes: RouteRow[], cache: RouteCacheRow[]): string {
  const lines = routes.map((r) => {
    let s = r.dst;
    if (r.gateway !== undefined) s += ` via ${r.gateway}`;
    s += ` dev ${r.dev}`;
    if (r.protocol === 'kernel') s += ' proto kernel';
    if (r.scope === 'link') s += ' scope link';
    if (r.prefsrc !== undefined) s += ` src ${r.prefsrc}`;
    if (r.metric !== undefined) s += ` metric ${r.metric}`;
    return s;
  });
  for (const c of cache) lines.push(`${c.dst}\n    cache expires ${Math.round(c.expiresMs / 1000)}sec mtu ${c.mtu}`);
  return lines.map((l) => l + '\n').join('');
}

/** ping(8)'s report, replies and errors in sequence order, then the statistics. */
export function formatPing(r: PingResult, size: number, elapsedMs: number): string {
  const out = [`PING ${r.destination} (${r.destination}) ${size}(${size + 28}) bytes of data.`];
  const events = [
    ...r.replies.map((p) => ({ seq: p.seq, text: `${p.bytes} bytes from ${r.destination}: icmp_seq=${p.seq} ttl=${p.ttl} time=${ms(p.rttMs)} ms` })),
    ...r.errors.map((e) => ({ seq: e.seq, text: e.message.startsWith('local error') ? `ping: ${e.message}` : `icmp_seq=${e.seq} ${e.message}` })),
  ].sort((a, b) => a.seq - b.seq);
  for (const e of events) out.push(e.text);
  out.push('', `--- ${r.destination} ping statistics ---`);
  const errors = r.errors.length > 0 ? `, +${r.errors.length} errors` : '';
  out.push(`${r.transmitted} packets transmitted, ${r.received} received${errors}, ${r.lossPercent}% packet loss, time ${Math.round(elapsedMs)}ms`);
  if (r.rttMin !== undefined && r.rttAvg !== undefined && r.rttMax !== undefined) {
    const rtts = r.replies.map((p) => p.rttMs);
    const mean2 = rtts.reduce((a, b) => a + b * b, 0) / rtts.length;
    const mdev = Math.sqrt(Math.max(0, mean2 - r.rttAvg * r.rttAvg));
    out.push(`rtt min/avg/max/mdev = ${ms(r.rttMin)}/${ms(r.rttAvg)}/${ms(r.rttMax)}/${ms(mdev)} ms`);
  }
  return out.join('\n') + '\n';
}

function ms(v: number): string {
  return v.toFixed(3);
}

// ---- argument helpers ---------------------------------------------------------------------------

/** `[dev] DEV` or nothing. */
function optionalDev(object: string, words: string[]): string | undefined {
  const w = words[0] === 'dev' ? words.slice(1) : words;
  if (w.length > 1) throw new CliError(`${object} show: unexpected '${w[1]}'`);
  return w[0];
}

function requiredDev(what: string, words: string[]): string {
  const d = optionalDev(what, words);
  if (d === undefined) throw new CliError(`${what}: which device? (${what} DEV)`);
  return d;
}

/** KEYWORD VALUE pairs of `ip route add` / `ip addr add`. */
function keywords(what: string, words: string[], allowed: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < words.length; i += 2) {
    const k = words[i]!;
    if (!allowed.includes(k)) throw new CliError(`${what}: unexpected '${k}' (expected ${allowed.join(', ')})`);
    const v = words[i + 1];
    if (v === undefined) throw new CliError(`${what}: '${k}' needs a value`);
    if (out[k] !== undefined) throw new CliError(`${what}: '${k}' given twice`);
    out[k] = v;
  }
  return out;
}


function seconds(flag: string, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v) || n * 1000 < 1 || n > max) throw new CliError(`${flag}: '${v}' is not a number of seconds in 0.001..${max}`);
    return Math.round(n * 1000);
  };
}

// ---- the program ----------------------------------------------------------------------------------

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let code = EXIT_OK;
  const p = program(NAME, 'Show and change a running emulated IPoIB host (ipoib-host) through its control socket.')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .enablePositionalOptions()
    .option('--host <name>', 'the host to talk to (default $IPOIB_HOST, else the only one running)')
    .option('-j, --json', 'print JSON for scripts')
    .option('-s, --stats', 'with link show: the interface counters')
    .option('--runtime-dir <dir>', `directory of control sockets (default ${defaultRuntimeDir()})`)
    .option('--socket <path>', 'control socket path (instead of --host and --runtime-dir)')
    .option('--timeout <ms>', 'how long to wait for the host to answer', commanderParser(intOption('--timeout', 1, 3_600_000)), 10_000);
  const g = (): GlobalOptions => p.opts<GlobalOptions>();

  /** Resolves the host's socket, connects, runs fn; maps every failure to one line and a code. */
  const withHost = (fn: (c: Call) => Promise<number | void>) => async (): Promise<void> => {
    let client: ControlClient | undefined;
    try {
      const o = g();
      client = await ControlClient.connect(resolveSocket(o), Math.min(o.timeout, 5000));
      const c = client;
      const call: Call = (cmd, args, timeoutMs) => c.call(cmd, args, timeoutMs ?? o.timeout);
      const r = await fn(call);
      code = typeof r === 'number' ? r : EXIT_OK;
    } catch (err) {
      code = report(io, err);
    } finally {
      client?.close();
    }
  };
  const print = (s: string): void => io.out(s);
  const json = (v: unknown): void => io.out(JSON.stringify(v) + '\n');

  addCommand(p, 'link', ['l'], 'show or change interfaces: show [DEV] | set DEV [mode M] [mtu N] [up|down]', (words) => withHost(async (call) => {
    const [verb = 'show', ...rest] = words;
    if (verb === 'show' || verb === 'list' || verb === 'ls') {
      const rows = await call('link.show', devArgs(optionalDev('link', rest)));
      if (g().json) json(rows); else print(formatLinks(rows, g().stats === true));
      return;
    }
    if (verb === 'set') {
      const w = rest[0] === 'dev' ? rest.slice(1) : rest;
      const dev = w[0];
      if (dev === undefined) throw new CliError('link set: which device? (link set DEV ...)');
      const change: ControlApi['link.set']['args'] = { dev };
      for (let i = 1; i < w.length; i++) {
        const k = w[i]!;
        if (k === 'up' || k === 'down') { change.up = k === 'up'; continue; }
        const v = w[++i];
        if (k !== 'mode' && k !== 'mtu') throw new CliError(`link set: unexpected '${k}' (expected mode, mtu, up or down)`);
        if (v === undefined) throw new CliError(`link set: '${k}' needs a value`);
        if (k === 'mode') change.mode = v;
        else if (/^\d{1,10}$/.test(v)) change.mtu = Number(v);
        else throw new CliError(`link set ${dev}: mtu '${v}' is not a number`);
      }
      if (change.up === undefined && change.mode === undefined && change.mtu === undefined) throw new CliError(`link set ${dev}: nothing to change`);
      await call('link.set', change);
      return;
    }
    throw new CliError(`link: unknown command '${verb}' (show, set)`);
  }));

  addCommand(p, 'addr', ['a', 'address'], 'IPv4 addresses: show [DEV] | add|del A.B.C.D/LEN dev DEV', (words) => withHost(async (call) => {
    const [verb = 'show', ...rest] = words;
    if (verb === 'show' || verb === 'list' || verb === 'ls') {
      const dev = optionalDev('addr', rest);
      const addrs = await call('addr.show', devArgs(dev));
      if (g().json) { json(addrs); return; }
      print(formatAddrs(await call('link.show', devArgs(dev)), addrs));
      return;
    }
    if (verb === 'add' || verb === 'del' || verb === 'delete') {
      const [address, ...kw] = rest;
      if (address === undefined) throw new CliError(`addr ${verb}: which address? (addr ${verb} A.B.C.D/LEN dev DEV)`);
      const { dev } = keywords(`addr ${verb}`, kw, ['dev']);
      if (dev === undefined) throw new CliError(`addr ${verb} ${address}: which device? (dev DEV)`);
      await call(verb === 'add' ? 'addr.add' : 'addr.del', { dev, address });
      return;
    }
    throw new CliError(`addr: unknown command '${verb}' (show, add, del)`);
  }));

  addCommand(p, 'neigh', ['n', 'neighbour', 'neighbor'], 'the ARP cache: show [DEV] | flush DEV', (words) => withHost(async (call) => {
    const [verb = 'show', ...rest] = words;
    if (verb === 'show' || verb === 'list' || verb === 'ls') {
      const rows = await call('neigh.show', devArgs(optionalDev('neigh', rest)));
      if (g().json) json(rows); else print(formatNeigh(rows));
      return;
    }
    if (verb === 'flush') {
      const r = await call('neigh.flush', { dev: requiredDev('neigh flush', rest) });
      if (g().json) json(r);
      return;
    }
    throw new CliError(`neigh: unknown command '${verb}' (show, flush)`);
  }));

  addCommand(p, 'route', ['r'], 'routes: show | add|del PREFIX|default [via GW] [dev DEV] [metric N]', (words) => withHost(async (call) => {
    const [verb = 'show', ...rest] = words;
    if (verb === 'show' || verb === 'list' || verb === 'ls') {
      if (rest.length > 0) throw new CliError(`route show: unexpected '${rest[0]}'`);
      const r = await call('route.show', {});
      if (g().json) json(r); else print(formatRoutes(r.routes, r.cache));
      return;
    }
    if (verb === 'add') {
      const [dst, ...kw] = rest;
      if (dst === undefined) throw new CliError('route add: which prefix? (route add PREFIX [via GW] [dev DEV])');
      const k = keywords('route add', kw, ['via', 'dev', 'metric']);
      const args: ControlApi['route.add']['args'] = { dst };
      if (k['via'] !== undefined) args.via = k['via'];
      if (k['dev'] !== undefined) args.dev = k['dev'];
      if (k['metric'] !== undefined) args.metric = intOption('route add: metric', 0, 0xffffffff)(k['metric']);
      await call('route.add', args);
      return;
    }
    if (verb === 'del' || verb === 'delete') {
      const [dst, ...kw] = rest;
      if (dst === undefined) throw new CliError('route del: which prefix?');
      keywords('route del', kw, ['via', 'dev', 'metric']);
      await call('route.del', { dst });
      return;
    }
    throw new CliError(`route: unknown command '${verb}' (show, add, del)`);
  }));

  p.command('ping')
    .description('ICMP echo from the host, reported like ping(8); exit 1 when no reply came')
    .argument('<address>', 'destination IPv4 address')
    .option('-c <count>', 'echo requests to send', commanderParser(intOption('-c', 1, 10_000)), 1)
    .option('-s <size>', 'ICMP data bytes', commanderParser(intOption('-s', 0, 65507)), 56)
    .option('-i <seconds>', 'interval between requests', commanderParser(seconds('-i', 60)), 1000)
    .option('-W <seconds>', 'time to wait for each reply', commanderParser(seconds('-W', 600)), 10_000)
    .option('-I <dev>', 'send through this interface')
    .action((address: string, o: { c: number; s: number; i: number; W: number; I?: string }) => withHost(async (call) => {
      const args: ControlApi['ping']['args'] = { address, count: o.c, size: o.s, intervalMs: o.i, timeoutMs: o.W };
      if (o.I !== undefined) args.interface = o.I;
      const started = Date.now();
      const r = await call('ping', args, (o.c - 1) * o.i + o.W + g().timeout);
      if (g().json) json(r); else print(formatPing(r, o.s, Date.now() - started));
      return r.received > 0 ? EXIT_OK : EXIT_RUNTIME;
    })());

  p.command('sysctl')
    .description('read or set net.ipv4.conf.{all,default,DEV}.{arp_ignore,arp_filter,arp_accept,arp_notify}, net.ipv4.icmp_echo_ignore_broadcasts')
    .argument('<settings...>', 'KEY to read, KEY=VALUE to set')
    .option('-w', 'every argument is KEY=VALUE')
    .option('-n', 'print values only')
    .action((settings: string[], o: { w?: boolean; n?: boolean }) => withHost(async (call) => {
      const out: Record<string, number> = {};
      for (const s of settings) {
        const eq = s.indexOf('=');
        let v: number;
        if (eq >= 0 || o.w === true) {
          if (eq < 0) throw new CliError(`sysctl: "${s}" must be of the form name=value`);
          const key = s.slice(0, eq).trim();
          const text = s.slice(eq + 1).trim();
          if (!/^-?\d{1,10}$/.test(text)) throw new CliError(`sysctl: ${key}: '${text}' is not an integer`);
          v = await call('sysctl.set', { key, value: Number(text) });
          out[key] = v;
        } else {
          v = await call('sysctl.get', { key: s });
          out[s] = v;
        }
      }
      if (g().json) { json(out); return; }
      for (const [k, v] of Object.entries(out)) print(o.n === true ? `${v}\n` : `${k} = ${v}\n`);
    })());

  p.command('sys')
    .description('read a sysfs attribute like `cat /sys/class/net/ib0/mode`, or write one (mode, create_child)')
    .argument('<path>', '/sys/class/net/DEV/ATTR')
    .argument('[value]', 'value to write')
    .action((path: string, value: string | undefined) => withHost(async (call) => {
      if (value !== undefined) {
        await call('sys.write', { path, value });
        return;
      }
      const text = await call('sys.read', { path });
      if (g().json) json({ path, value: text.trimEnd() }); else print(text);
    })());

  p.command('hosts')
    .description('list the hosts with a control socket in the runtime directory')
    .action(() => {
      const o = g();
      const dir = o.runtimeDir ?? defaultRuntimeDir();
      const names = listHosts(dir);
      if (o.json) json(names.map((n) => ({ name: n, socket: socketPath(n, dir) })));
      else print(names.map((n) => `${n} ${socketPath(n, dir)}\n`).join(''));
    });

  const r = await run(NAME, p, argv);
  return r !== EXIT_OK ? r : code;
}

type Call = <K extends ControlCommand>(cmd: K, args: ControlApi[K]['args'], timeoutMs?: number) => Promise<ControlApi[K]['result']>;

function devArgs(dev: string | undefined): { dev?: string } {
  return dev === undefined ? {} : { dev };
}

/** An iproute2 object: OBJECT [WORDS...], with its abbreviations. */
function addCommand(p: Command, name: string, aliases: string[], description: string, action: (words: string[]) => () => Promise<void>): void {
  const c = p.command(name).description(description).argument('[words...]', 'command and arguments').allowUnknownOption(false);
  for (const a of aliases) c.alias(a);
  c.action((words: string[]) => action(words)());
}

function resolveSocket(o: GlobalOptions): string {
  if (o.socket !== undefined) return o.socket;
  const dir = o.runtimeDir ?? defaultRuntimeDir();
  const name = o.host ?? process.env['IPOIB_HOST'];
  try {
    if (name !== undefined) return socketPath(name, dir);
  } catch (err) {
    throw new CliError(`--host: ${(err as Error).message}`);
  }
  const hosts = listHosts(dir);
  if (hosts.length === 1) return socketPath(hosts[0]!, dir);
  if (hosts.length === 0) throw new CliError(`no host has a control socket in ${dir} (start one with ipoib-host, or name it with --host)`, EXIT_RUNTIME);
  throw new CliError(`${hosts.length} hosts in ${dir} (${hosts.join(', ')}): choose one with --host`);
}

/** One line on stderr; the exit status of the failure. */
function report(io: Io, err: unknown): number {
  if (err instanceof CliError) {
    io.err(`${NAME}: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof ControlError) {
    io.err(`${NAME}: ${err.message}\n`);
    return USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_RUNTIME;
  }
  io.err(`${NAME}: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT_RUNTIME;
}
