// The requests a Host answers on its control socket (control-socket.ts), as `ip`, `ping`, `sysctl`
// and sysfs reach the kernel: one table naming each command, its arguments and its result. Every
// argument is checked here before the Host sees it, so a malformed request becomes an EINVAL
// answer and never an exception inside the host; the Host's own checks (MTU range, mode, address
// syntax) then answer with its IpoibError codes.
import type { AddrRow, Host, LinkRow, PingResult } from './host.js';
import type { IpStats } from './counters.js';
import { isIpoibError, type IpoibErrorCode } from './errors.js';
import type { NeighbourRow } from './neighbour-table.js';
import type { Route } from './routes.js';
import { formatIpv4 } from '../wire/ipv4.js';
import { formatGuid } from '../wire/ib-address.js';

/** Codes an answer may carry: the Host's errno-like codes plus the control channel's own. */
export type ControlErrorCode =
  | IpoibErrorCode
  | 'EBADMSG'   // the request line is not a JSON object {cmd, args}
  | 'ENOSYS'    // no such command
  | 'E2BIG'     // the request line is longer than the server accepts
  | 'EIO'       // the host failed unexpectedly (logged there)
  | 'ENOHOST'   // client side: no host serves the socket
  | 'ETIMEDOUT' // client side: no answer in time
  | 'EPROTO';   // client side: the answer is not a control response

export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(readonly code: ControlErrorCode, message: string) {
    super(message);
  }
}

/** `ip -j route` keys (iproute2 JSON): gateway and prefsrc only when set, metric only when not 0. */
export interface RouteRow {
  dst: string;
  gateway?: string;
  dev: string;
  protocol: 'kernel' | 'static';
  scope: 'link' | 'global';
  prefsrc?: string;
  metric?: number;
}

/** A path MTU learnt from Frag-Needed (`ip route show cache`). */
export interface RouteCacheRow {
  dst: string;
  mtu: number;
  expiresMs: number;
}

export interface HostInfo {
  name: string;
  pid: number;
  nodeGuid: string;
  interfaces: string[];
  stats: IpStats;
}

export interface PingArgs {
  address: string;
  count?: number;
  size?: number;
  intervalMs?: number;
  timeoutMs?: number;
  interface?: string;
}

/** Every command: its arguments and its result. */
export interface ControlApi {
  'host.info': { args: Record<string, never>; result: HostInfo };
  'link.show': { args: { dev?: string }; result: LinkRow[] };
  'link.set': { args: { dev: string; up?: boolean; mode?: string; mtu?: number }; result: null };
  'addr.show': { args: { dev?: string }; result: AddrRow[] };
  'addr.add': { args: { dev: string; address: string }; result: null };
  'addr.del': { args: { dev: string; address: string }; result: null };
  'neigh.show': { args: { dev?: string }; result: NeighbourRow[] };
  'neigh.flush': { args: { dev?: string }; result: { flushed: number } };
  'route.show': { args: Record<string, never>; result: { routes: RouteRow[]; cache: RouteCacheRow[] } };
  'route.add': { args: { dst: string; via?: string; dev?: string; metric?: number }; result: null };
  'route.del': { args: { dst: string }; result: null };
  'ping': { args: PingArgs; result: PingResult };
  'sysctl.get': { args: { key: string }; result: number };
  'sysctl.set': { args: { key: string; value: number }; result: number };
  'sys.read': { args: { path: string }; result: string };
  'sys.write': { args: { path: string; value: string }; result: null };
}

export type ControlCommand = keyof ControlApi;

/** Bounds on what one request may ask for, so a request cannot keep the host busy for hours. */
export const PING_MAX_COUNT = 10_000;
export const PING_MAX_INTERVAL_MS = 60_000;
export const PING_MAX_TIMEOUT_MS = 600_000;

type Args = Record<string, unknown>;

function bad(cmd: string, what: string): ControlError {
  return new ControlError('EINVAL', `${cmd}: ${what}`);
}

function str(cmd: string, a: Args, k: string): string {
  const v = a[k];
  if (typeof v !== 'string' || v.length === 0 || v.length > 4096) throw bad(cmd, `argument "${k}" must be a non-empty string`);
  return v;
}

function optStr(cmd: string, a: Args, k: string): string | undefined {
  return a[k] === undefined || a[k] === null ? undefined : str(cmd, a, k);
}

function optInt(cmd: string, a: Args, k: string, min: number, max: number): number | undefined {
  const v = a[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(cmd, `argument "${k}" must be an integer in ${min}..${max}`);
  return v;
}

function int(cmd: string, a: Args, k: string, min: number, max: number): number {
  const v = optInt(cmd, a, k, min, max);
  if (v === undefined) throw bad(cmd, `argument "${k}" is missing`);
  return v;
}

function optBool(cmd: string, a: Args, k: string): boolean | undefined {
  const v = a[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(cmd, `argument "${k}" must be true or false`);
  return v;
}

export function routeRow(r: Route): RouteRow {
  const row: RouteRow = {
    dst: r.len === 0 ? 'default' : `${formatIpv4(r.dst)}/${r.len}`, dev: r.dev, protocol: r.proto, scope: r.scope,
  };
  if (r.via !== undefined) row.gateway = formatIpv4(r.via);
  if (r.src !== undefined) row.prefsrc = formatIpv4(r.src);
  if (r.metric !== 0) row.metric = r.metric;
  return row;
}

type Handler = (host: Host, a: Args) => unknown;

// MTUs and metrics pass through as any 32-bit value: the Host owns their ranges and their messages.
const U32 = 0xffffffff;

const HANDLERS: Record<ControlCommand, Handler> = {
  'host.info': (h) => ({
    name: h.name, pid: process.pid, nodeGuid: formatGuid(h.device.nodeGuid), interfaces: h.interfaces().map((i) => i.name), stats: { ...h.stats },
  }),
  'link.show': (h, a) => h.linkShow(optStr('link.show', a, 'dev')),
  'link.set': (h, a) => {
    const c = 'link.set';
    const change: { up?: boolean; mode?: string; mtu?: number } = {};
    const up = optBool(c, a, 'up');
    const mode = optStr(c, a, 'mode');
    const mtu = optInt(c, a, 'mtu', 0, U32);
    if (up !== undefined) change.up = up;
    if (mode !== undefined) change.mode = mode;
    if (mtu !== undefined) change.mtu = mtu;
    h.linkSet(str(c, a, 'dev'), change);
    return null;
  },
  'addr.show': (h, a) => h.addrShow(optStr('addr.show', a, 'dev')),
  'addr.add': (h, a) => { h.addrAdd(str('addr.add', a, 'dev'), str('addr.add', a, 'address')); return null; },
  'addr.del': (h, a) => { h.addrDel(str('addr.del', a, 'dev'), str('addr.del', a, 'address')); return null; },
  'neigh.show': (h, a) => h.neighShow(optStr('neigh.show', a, 'dev')),
  'neigh.flush': (h, a) => ({ flushed: h.neighFlush(optStr('neigh.flush', a, 'dev')) }),
  'route.show': (h) => ({ routes: h.routeShow().map(routeRow), cache: h.routes.cache(h.scheduler.now()) }),
  'route.add': (h, a) => {
    const c = 'route.add';
    const opts: { via?: string; dev?: string; metric?: number } = {};
    const via = optStr(c, a, 'via');
    const dev = optStr(c, a, 'dev');
    const metric = optInt(c, a, 'metric', 0, U32);
    if (via !== undefined) opts.via = via;
    if (dev !== undefined) opts.dev = dev;
    if (metric !== undefined) opts.metric = metric;
    h.routeAdd(str(c, a, 'dst'), opts);
    return null;
  },
  'route.del': (h, a) => { h.routeDel(str('route.del', a, 'dst')); return null; },
  'ping': (h, a) => {
    const c = 'ping';
    const o: { count?: number; size?: number; intervalMs?: number; timeoutMs?: number; interface?: string } = {};
    const count = optInt(c, a, 'count', 1, PING_MAX_COUNT);
    const size = optInt(c, a, 'size', 0, U32);
    const intervalMs = optInt(c, a, 'intervalMs', 1, PING_MAX_INTERVAL_MS);
    const timeoutMs = optInt(c, a, 'timeoutMs', 1, PING_MAX_TIMEOUT_MS);
    const dev = optStr(c, a, 'interface');
    if (count !== undefined) o.count = count;
    if (size !== undefined) o.size = size;
    if (intervalMs !== undefined) o.intervalMs = intervalMs;
    if (timeoutMs !== undefined) o.timeoutMs = timeoutMs;
    if (dev !== undefined) o.interface = dev;
    return h.ping(str(c, a, 'address'), o);
  },
  'sysctl.get': (h, a) => h.sysctlGet(str('sysctl.get', a, 'key')),
  'sysctl.set': (h, a) => {
    const key = str('sysctl.set', a, 'key');
    h.sysctlSet(key, int('sysctl.set', a, 'value', -U32, U32));
    return h.sysctlGet(key);
  },
  'sys.read': (h, a) => h.readSysfs(str('sys.read', a, 'path')),
  'sys.write': (h, a) => { h.writeSysfs(str('sys.write', a, 'path'), str('sys.write', a, 'value')); return null; },
};

export const CONTROL_COMMANDS = Object.keys(HANDLERS) as ControlCommand[];

export function isControlCommand(cmd: string): cmd is ControlCommand {
  return Object.prototype.hasOwnProperty.call(HANDLERS, cmd);
}

/**
 * Runs one request against the host. Resolves with the result; rejects only with a ControlError
 * (the Host's IpoibErrors keep their code; anything else becomes EIO, reported by `onUnexpected`).
 */
export async function dispatch(host: Host, cmd: unknown, args: unknown, onUnexpected?: (err: unknown) => void): Promise<unknown> {
  if (typeof cmd !== 'string' || !isControlCommand(cmd)) {
    throw new ControlError('ENOSYS', `unknown command ${JSON.stringify(cmd)} (known: ${CONTROL_COMMANDS.join(', ')})`);
  }
  if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
    throw new ControlError('EINVAL', `${cmd}: "args" must be an object`);
  }
  try {
    return await HANDLERS[cmd](host, (args ?? {}) as Args);
  } catch (err) {
    if (err instanceof ControlError) throw err;
    if (isIpoibError(err)) throw new ControlError(err.code, err.message);
    onUnexpected?.(err);
    throw new ControlError('EIO', `${cmd}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
