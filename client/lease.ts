// A lease as the client holds it (RFC 2131 §4.4.1, §4.4.5), the parameters it carries (RFC 2132 §3,
// §5.1 interface MTU, §9.2 lease time, §9.11-9.12 T1/T2; RFC 3442 classless routes) and their use:
// the MTU rule of the IPoIB modes (IPOIB-FACTS §3.5, §4) and the dhclient-script environment
// (ISC dhcp 4.4 client/dhclient.c script_init() / script_write_params(), client/scripts/linux).

import {
  OptionCode, findOption, getOptionValue, ipv4ToString, prefixMask, type DhcpOption, type StaticRoute,
} from '../protocol/index.js';

/** RFC 2132 §9.2: 0xffffffff means infinity. */
export const INFINITE_LEASE = 0xffffffff;

/** RFC 2132 §5.1: the smallest legal interface MTU. */
export const MIN_INTERFACE_MTU = 68;
/** IPOIB-FACTS §4: IPOIB_CM_MTU, the largest connected-mode netdev MTU. */
export const CONNECTED_MODE_MAX_MTU = 65520;

/**
 * What the client holds after a DHCPACK. `options` are the ACK's options (copied), the source of
 * truth written to the lease file; the other parameters are derived from them by `leaseParameters`.
 * Times are in the engine's clock (ms since the Unix epoch); Infinity for an infinite lease.
 */
export interface ClientLease extends LeaseParameters {
  interface: string;
  address: number;
  serverIdentifier: number;
  options: DhcpOption[];
  /** Option 51 in seconds (INFINITE_LEASE for infinity). */
  leaseTime: number;
  /** When the exchange that obtained it began (RFC 2131 §4.4.1: times count from the request). */
  startedAt: number;
  renewAt: number;
  rebindAt: number;
  expiresAt: number;
}

export interface LeaseParameters {
  subnetMask: number;
  prefixLength: number;
  /** Whether option 1 was present (else the classful mask was assumed). */
  subnetMaskGiven: boolean;
  networkNumber: number;
  broadcastAddress: number;
  routers: number[];
  /** Option 121 as sent (RFC 3442). */
  classlessRoutes: StaticRoute[];
  /** The routes to install: option 121 when present (RFC 3442 §3: then option 3 is ignored), else a default route per router. */
  routes: StaticRoute[];
  domainNameServers: number[];
  domainName: string | null;
  hostName: string | null;
  /** Option 26 as offered; whether it is applied depends on the link (mtuDecision). */
  interfaceMtu: number | null;
}

/** The mask of a class A/B/C address, used only when a server sends no option 1 (RFC 1122 §3.3.1.1 era default). */
export function classfulMask(address: number): number {
  const first = address >>> 24;
  if (first < 128) return prefixMask(8);
  if (first < 192) return prefixMask(16);
  return prefixMask(24);
}

/** Prefix length of a contiguous mask, or -1. */
export function maskPrefixLength(mask: number): number {
  const inv = (~mask) >>> 0;
  if ((inv & (inv + 1)) !== 0) return -1;
  let n = 0;
  for (let m = mask >>> 0; m !== 0; m = (m << 1) >>> 0) n++;
  return n;
}

function addresses(options: readonly DhcpOption[], code: number): number[] {
  const v = getOptionValue(options, code);
  return Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];
}

function text(options: readonly DhcpOption[], code: number): string | null {
  const v = getOptionValue(options, code);
  return typeof v === 'string' ? v.replace(/\0+$/, '') : null;
}

/**
 * Derives the parameters of a lease on `address` from its options. Throws the protocol's WireError
 * when an option's data does not match its definition, and LeaseParameterError for a mask that is
 * not contiguous.
 */
export function leaseParameters(address: number, options: readonly DhcpOption[]): LeaseParameters {
  const maskValue = getOptionValue(options, OptionCode.SUBNET_MASK);
  const subnetMaskGiven = typeof maskValue === 'number';
  const subnetMask = subnetMaskGiven ? maskValue : classfulMask(address);
  const prefixLength = maskPrefixLength(subnetMask);
  if (prefixLength < 0) throw new LeaseParameterError('bad-subnet-mask', `subnet mask ${ipv4ToString(subnetMask)} is not contiguous`);
  const networkNumber = (address & subnetMask) >>> 0;
  const given28 = getOptionValue(options, OptionCode.BROADCAST_ADDRESS);
  const broadcastAddress = typeof given28 === 'number' ? given28 : (networkNumber | ~subnetMask) >>> 0;
  const routers = addresses(options, OptionCode.ROUTERS);
  const v121 = getOptionValue(options, OptionCode.CLASSLESS_STATIC_ROUTE);
  const classlessRoutes = Array.isArray(v121) ? (v121 as StaticRoute[]) : [];
  const routes = findOption(options, OptionCode.CLASSLESS_STATIC_ROUTE) !== undefined
    ? classlessRoutes
    : routers.map((router) => ({ destination: 0, prefixLength: 0, router }));
  const mtu = getOptionValue(options, OptionCode.INTERFACE_MTU);
  return {
    subnetMask, prefixLength, subnetMaskGiven, networkNumber, broadcastAddress, routers, classlessRoutes, routes,
    domainNameServers: addresses(options, OptionCode.DOMAIN_NAME_SERVERS),
    domainName: text(options, OptionCode.DOMAIN_NAME),
    hostName: text(options, OptionCode.HOST_NAME),
    interfaceMtu: typeof mtu === 'number' ? mtu : null,
  };
}

export class LeaseParameterError extends Error {
  override readonly name = 'LeaseParameterError';
  constructor(readonly code: 'bad-subnet-mask', message: string) {
    super(message);
  }
}

/**
 * RFC 2131 §4.4.5 timers: T1 and T2 from options 58/59 when they are consistent (0 < T1 < T2 <
 * lease), else 0.5 and 0.875 of the lease; all counted from `startedAt`.
 */
export function leaseTimes(leaseTime: number, options: readonly DhcpOption[], startedAt: number):
  { renewAt: number; rebindAt: number; expiresAt: number } {
  if (leaseTime === INFINITE_LEASE) return { renewAt: Infinity, rebindAt: Infinity, expiresAt: Infinity };
  const t1v = getOptionValue(options, OptionCode.RENEWAL_TIME);
  const t2v = getOptionValue(options, OptionCode.REBINDING_TIME);
  let t1 = typeof t1v === 'number' ? t1v : leaseTime * 0.5;
  let t2 = typeof t2v === 'number' ? t2v : leaseTime * 0.875;
  if (!(t2 > 0 && t2 < leaseTime)) t2 = leaseTime * 0.875;
  if (!(t1 > 0 && t1 < t2)) t1 = Math.min(leaseTime * 0.5, t2 * 0.5);
  return {
    renewAt: startedAt + Math.round(t1 * 1000),
    rebindAt: startedAt + Math.round(t2 * 1000),
    expiresAt: startedAt + leaseTime * 1000,
  };
}

/** IPoIB interface modes (IPOIB-FACTS §3.5, §4); the daemon reports the current one. */
export interface LinkInfo {
  mode: 'datagram' | 'connected';
  /** The datagram-mode MTU: IB MTU − 4 (2044 for a 2048 broadcast group). */
  datagramMtu: number;
}

export type MtuDecision =
  | { apply: true; mtu: number }
  | { apply: false; offered: number | null; reason: string };

/**
 * Option 26 is applied only when it fits the interface mode: at most the datagram MTU in datagram
 * mode (larger frames cannot cross a UD QP), at most 65520 in connected mode, and never below 68.
 */
export function mtuDecision(offered: number | null, link: LinkInfo): MtuDecision {
  if (offered === null) return { apply: false, offered, reason: 'no interface-mtu option' };
  if (offered < MIN_INTERFACE_MTU) {
    return { apply: false, offered, reason: `interface-mtu ${offered} is below the RFC 2132 minimum of ${MIN_INTERFACE_MTU}` };
  }
  const limit = link.mode === 'datagram' ? link.datagramMtu : CONNECTED_MODE_MAX_MTU;
  if (offered > limit) {
    return {
      apply: false, offered,
      reason: link.mode === 'datagram'
        ? `interface-mtu ${offered} exceeds the datagram-mode MTU ${limit}`
        : `interface-mtu ${offered} exceeds the connected-mode maximum ${limit}`,
    };
  }
  return { apply: true, mtu: offered };
}

// ---- dhclient-script environment ------------------------------------------------------------------

/** $reason values of dhclient-script(8) that this client uses. TIMEOUT: a saved lease used without a server's answer. */
export type HookReason = 'PREINIT' | 'BOUND' | 'RENEW' | 'REBIND' | 'REBOOT' | 'TIMEOUT' | 'EXPIRE' | 'FAIL' | 'RELEASE' | 'STOP';

/**
 * ISC option names (common/tables.c) of the options exported to the script, with dashes becoming
 * underscores as dhcp_option_ev_name() does. 121 has no ISC name; Debian's dhclient.conf declares it
 * as `rfc3442-classless-static-routes` (array of unsigned integer 8), which the linux script reads.
 */
const ENV_OPTION_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'subnet_mask'], [2, 'time_offset'], [3, 'routers'], [4, 'time_servers'], [6, 'domain_name_servers'],
  [7, 'log_servers'], [12, 'host_name'], [15, 'domain_name'], [26, 'interface_mtu'], [28, 'broadcast_address'],
  [42, 'ntp_servers'], [44, 'netbios_name_servers'], [47, 'netbios_scope'], [51, 'dhcp_lease_time'],
  [54, 'dhcp_server_identifier'], [58, 'dhcp_renewal_time'], [59, 'dhcp_rebinding_time'], [66, 'tftp_server_name'],
  [67, 'bootfile_name'], [119, 'domain_search'], [121, 'rfc3442_classless_static_routes'],
]);

/** ISC's env name of an option code (undefined when not exported). */
export function envOptionName(code: number): string | undefined {
  return ENV_OPTION_NAMES.get(code);
}

/** An option value as pretty_print_option(…, emit_commas 0, emit_quotes 0) prints it: lists space-separated. */
function envValue(code: number, data: Buffer): string | null {
  if (code === OptionCode.CLASSLESS_STATIC_ROUTE) return [...data].join(' ');
  let v;
  try {
    v = getOptionValue([{ code, data }], code);
  } catch {
    return null;
  }
  const one = (x: unknown): string => (typeof x === 'number' && data.length % 4 === 0 && isAddressOption(code)) ? ipv4ToString(x) : String(x);
  if (Array.isArray(v)) return v.map(one).join(' ');
  if (typeof v === 'string') return v.replace(/\0+$/, '');
  if (typeof v === 'number') return one(v);
  return null;
}

function isAddressOption(code: number): boolean {
  return [1, 3, 4, 6, 7, 28, 42, 44, 54].includes(code);
}

/**
 * The variables script_write_params() writes for one lease under `prefix` (new_ / old_):
 * ip_address, network_number, broadcast_address, every exported option, expiry (epoch seconds).
 * `mtuApplied` false drops interface_mtu, so a script never applies an MTU the engine refused.
 */
export function leaseEnv(prefix: 'new_' | 'old_', lease: ClientLease, mtuApplied = true): Record<string, string> {
  const env: Record<string, string> = {};
  env[`${prefix}ip_address`] = ipv4ToString(lease.address);
  if (lease.subnetMaskGiven) {
    env[`${prefix}network_number`] = ipv4ToString(lease.networkNumber);
    env[`${prefix}broadcast_address`] = ipv4ToString(lease.broadcastAddress);
  }
  for (const opt of lease.options) {
    const name = ENV_OPTION_NAMES.get(opt.code);
    if (name === undefined) continue;
    if (opt.code === OptionCode.INTERFACE_MTU && !mtuApplied) continue;
    const value = envValue(opt.code, opt.data);
    if (value !== null) env[`${prefix}${name}`] = value;
  }
  if (Number.isFinite(lease.expiresAt)) env[`${prefix}expiry`] = String(Math.floor(lease.expiresAt / 1000));
  return env;
}

/** script_write_requested(): requested_<name>=1 for each requested option the script knows. */
export function requestedEnv(parameterRequestList: readonly number[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const code of parameterRequestList) {
    const name = ENV_OPTION_NAMES.get(code);
    if (name !== undefined) env[`requested_${name}`] = '1';
  }
  return env;
}

/** The whole environment of one script run (script_init() + the lease variables). */
export function hookEnv(
  reason: HookReason, iface: string, next: ClientLease | null, old: ClientLease | null,
  opts: { mtuApplied?: boolean; parameterRequestList?: readonly number[] } = {},
): Record<string, string> {
  const env: Record<string, string> = { interface: iface, reason };
  if (old !== null) Object.assign(env, leaseEnv('old_', old));
  if (next !== null) {
    Object.assign(env, leaseEnv('new_', next, opts.mtuApplied ?? true));
    Object.assign(env, requestedEnv(opts.parameterRequestList ?? []));
  }
  return env;
}
