// What interface failover (ha-service.ts) and active-backup bonding (bond.ts) need from a host: the
// `ip`-like part of link/ipoib's Host (link state, addresses, routes, ARP, multicast) and its
// scheduler. Host satisfies it as it is; the unit tests give a small fake. Also the one piece of
// configuration both move between interfaces: an "IP identity" (addresses, static routes, mode,
// MTU, IPv4 multicast groups), captured from one interface and put on another.
import type { Scheduler } from '../fabric/scheduler.js';
import type { AddrRow, IpoibMode } from '../ipoib/index.js';
import type { Route } from '../ipoib/routes.js';
import { parseGid } from '../wire/ib-address.js';
import { formatIpv4 } from '../wire/ipv4.js';

/** The interface facts a link monitor reads (IpoibInterface has them all). */
export interface HaLinkView {
  readonly adminUp: boolean;
  readonly carrier: boolean;
  /** The HCA port is ACTIVE (readable while the interface is administratively down). */
  readonly portActive: boolean;
  readonly mode: IpoibMode;
  readonly mtu: number;
  readonly hwAddressText: string;
  multicastGroups(): { mgid: string; sendOnly: boolean }[];
}

export interface HaHost {
  readonly name: string;
  readonly scheduler: Scheduler;
  iface(name: string): HaLinkView;
  interfaces(): { name: string }[];
  addrShow(dev?: string): AddrRow[];
  addrAdd(dev: string, cidr: string): void;
  addrDel(dev: string, cidr: string): void;
  routeShow(): Route[];
  routeAdd(dst: string, opts: { via?: string; dev?: string; metric?: number }): void;
  routeDel(dst: string): void;
  linkSet(dev: string, change: { up?: boolean; mode?: string; mtu?: number }): void;
  sendGratuitousArp(dev: string, ip?: string): void;
  sendUnsolicitedArpReply(dev: string, ip?: string): void;
  joinGroup(dev: string, group: string): void;
}

/** An interface's IP configuration, as ipoib_ha.pl moves it from the primary to the secondary. */
export interface IpIdentity {
  /** "10.0.0.3/24". */
  addresses: string[];
  /** Static routes through the interface (kernel subnet routes follow the addresses by themselves). */
  routes: { dst: string; via: string | undefined; metric: number }[];
  mode: IpoibMode;
  mtu: number;
  /** IPv4 groups joined on the interface (dotted), rejoined elsewhere with --with-multicast. */
  groups: string[];
}

export function hasLink(v: HaLinkView): boolean {
  return v.adminUp && v.carrier && v.portActive;
}

export function interfaceExists(host: HaHost, dev: string): boolean {
  return host.interfaces().some((i) => i.name === dev);
}

/** IPoIB IPv4 multicast MGID (signature 0x401B, RFC 4391 §4) -> the group; other MGIDs -> null. */
export function ipv4GroupOfMgid(mgid: string): string | null {
  let gid: Buffer;
  try {
    gid = parseGid(mgid);
  } catch {
    return null;
  }
  if (gid[0] !== 0xff || gid.readUInt16BE(2) !== 0x401b) return null;
  // The MGID carries the low 28 bits; every IPv4 multicast address starts 1110.
  return formatIpv4((0xe0000000 | (gid.readUInt32BE(12) & 0x0fffffff)) >>> 0);
}

export function captureIdentity(host: HaHost, dev: string): IpIdentity {
  const v = host.iface(dev);
  return {
    addresses: host.addrShow(dev).map((a) => `${a.address}/${a.prefixlen}`),
    routes: host.routeShow().filter((r) => r.dev === dev && r.proto === 'static')
      .map((r) => ({ dst: r.len === 0 ? 'default' : `${formatIpv4(r.dst)}/${r.len}`, via: r.via === undefined ? undefined : formatIpv4(r.via), metric: r.metric })),
    mode: v.mode,
    mtu: v.mtu,
    groups: v.multicastGroups().filter((g) => !g.sendOnly).map((g) => ipv4GroupOfMgid(g.mgid)).filter((g): g is string => g !== null),
  };
}

/** What went wrong while moving an identity; the move goes on with the rest. */
export type MoveProblem = string;

/** Takes the addresses and static routes off `dev` (the addresses' subnet routes go with them). */
export function stripIdentity(host: HaHost, dev: string, id: IpIdentity): MoveProblem[] {
  const problems: MoveProblem[] = [];
  for (const r of id.routes) {
    try { host.routeDel(r.dst); } catch (err) { problems.push(`route ${r.dst}: ${(err as Error).message}`); }
  }
  const have = new Set(host.addrShow(dev).map((a) => `${a.address}/${a.prefixlen}`));
  for (const a of id.addresses) {
    if (!have.has(a)) continue;
    try { host.addrDel(dev, a); } catch (err) { problems.push(`address ${a}: ${(err as Error).message}`); }
  }
  return problems;
}

/**
 * Mode then MTU (connected mode first, so 65520 is allowed); an MTU the interface cannot carry
 * falls back to what the mode allows, and says so.
 */
export function applyLink(host: HaHost, dev: string, mode: IpoibMode, mtu: number): MoveProblem[] {
  const problems: MoveProblem[] = [];
  try {
    host.linkSet(dev, { mode, mtu });
  } catch (err) {
    problems.push(`${dev}: mode ${mode} mtu ${mtu}: ${(err as Error).message}`);
    try { host.linkSet(dev, { mode }); } catch (err2) { problems.push(`${dev}: mode ${mode}: ${(err2 as Error).message}`); }
  }
  return problems;
}

/** Puts addresses and static routes on `dev` (mode and MTU are applyLink's). */
export function applyAddresses(host: HaHost, dev: string, id: IpIdentity): MoveProblem[] {
  const problems: MoveProblem[] = [];
  const have = new Set(host.addrShow(dev).map((a) => `${a.address}/${a.prefixlen}`));
  for (const a of id.addresses) {
    if (have.has(a)) continue;
    try { host.addrAdd(dev, a); } catch (err) { problems.push(`address ${a}: ${(err as Error).message}`); }
  }
  for (const r of id.routes) {
    try {
      host.routeAdd(r.dst, { dev, metric: r.metric, ...(r.via !== undefined ? { via: r.via } : {}) });
    } catch (err) {
      problems.push(`route ${r.dst}: ${(err as Error).message}`);
    }
  }
  return problems;
}

export function sameIdentity(a: IpIdentity, b: IpIdentity): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export type HaErrorCode = 'ENODEV' | 'EBUSY' | 'EINVAL' | 'EEXIST' | 'ENOENT';

/** A failover or bond request that cannot be carried out; nothing was changed. */
export class HaError extends Error {
  override readonly name = 'HaError';
  constructor(readonly code: HaErrorCode, message: string) {
    super(message);
  }
}

/** Which service owns which interface of a host: a slave of bond0 cannot also be an HA device. */
const claims = new WeakMap<object, Map<string, string>>();

export function claimDevices(host: HaHost, devs: readonly string[], owner: string): void {
  const mine = claims.get(host) ?? new Map<string, string>();
  for (const d of devs) {
    if (!interfaceExists(host, d)) {
      throw new HaError('ENODEV', `${d} does not exist on host ${host.name} (it has ${host.interfaces().map((i) => i.name).join(', ')})`);
    }
    const other = mine.get(d);
    if (other !== undefined && other !== owner) throw new HaError('EBUSY', `${d} is already used by ${other}; ${owner} cannot take it`);
  }
  for (const d of devs) mine.set(d, owner);
  claims.set(host, mine);
}

export function releaseDevices(host: HaHost, owner: string): void {
  const mine = claims.get(host);
  if (mine === undefined) return;
  for (const [d, o] of mine) if (o === owner) mine.delete(d);
}

export function deviceOwner(host: HaHost, dev: string): string | undefined {
  return claims.get(host)?.get(dev);
}
