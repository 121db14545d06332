// The host's IPv4 routing table (the main table of `ip route`): on-link subnets added with their
// addresses (proto kernel, scope link), static routes and a default gateway; lookup by longest
// prefix, then lowest metric. Learned path MTUs (RFC 1191, from ICMP Frag-Needed) are kept beside
// it as Linux keeps them in its route cache (`ip route get` shows "cache expires ... mtu N").
import { formatIpv4 } from '../wire/ipv4.js';
import { PMTU_EXPIRES_MS, PMTU_MIN } from './constants.js';

export interface Route {
  /** Network (host byte order uint32) and prefix length; 0/0 is the default route. */
  dst: number;
  len: number;
  via: number | undefined;
  dev: string;
  metric: number;
  proto: 'kernel' | 'static';
  scope: 'link' | 'global';
  /** Preferred source (set for the subnet routes of an address). */
  src: number | undefined;
}

export function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

export function formatRoute(r: Route): string {
  const dst = r.len === 0 ? 'default' : `${formatIpv4(r.dst)}/${r.len}`;
  let s = dst;
  if (r.via !== undefined) s += ` via ${formatIpv4(r.via)}`;
  s += ` dev ${r.dev}`;
  if (r.proto === 'kernel') s += ' proto kernel';
  if (r.scope === 'link') s += ' scope link';
  if (r.src !== undefined) s += ` src ${formatIpv4(r.src)}`;
  if (r.metric !== 0) s += ` metric ${r.metric}`;
  return s;
}

export class RouteTable {
  private routes: Route[] = [];
  private readonly pmtu = new Map<number, { mtu: number; expires: number }>();

  list(): Route[] {
    return [...this.routes];
  }

  add(r: Route): boolean {
    if (this.routes.some((x) => x.dst === r.dst && x.len === r.len && x.metric === r.metric && x.dev === r.dev)) return false;
    this.routes.push(r);
    this.routes.sort((a, b) => b.len - a.len || a.metric - b.metric);
    return true;
  }

  remove(pred: (r: Route) => boolean): number {
    const before = this.routes.length;
    this.routes = this.routes.filter((r) => !pred(r));
    return before - this.routes.length;
  }

  /** Longest prefix match among routes whose device passes `usable` (and equals `dev` when given). */
  lookup(dst: number, usable: (dev: string) => boolean, dev?: string): Route | undefined {
    for (const r of this.routes) {
      if (dev !== undefined && r.dev !== dev) continue;
      if (((dst & maskOf(r.len)) >>> 0) !== r.dst) continue;
      if (usable(r.dev)) return r;
    }
    return undefined;
  }

  /** RFC 1191: a Frag-Needed lowers the path MTU to dst (never below ip_rt_min_pmtu) for 10 minutes. */
  learnPmtu(dst: number, mtu: number, now: number): number {
    const v = Math.max(mtu, PMTU_MIN);
    this.pmtu.set(dst, { mtu: v, expires: now + PMTU_EXPIRES_MS });
    return v;
  }

  pmtuOf(dst: number, now: number): number | undefined {
    const e = this.pmtu.get(dst);
    if (e === undefined) return undefined;
    if (now >= e.expires) { this.pmtu.delete(dst); return undefined; }
    return e.mtu;
  }

  /** The cached path MTUs, as `ip route show cache` lists them. */
  cache(now: number): { dst: string; mtu: number; expiresMs: number }[] {
    const out: { dst: string; mtu: number; expiresMs: number }[] = [];
    for (const [dst, e] of this.pmtu) if (e.expires > now) out.push({ dst: formatIpv4(dst), mtu: e.mtu, expiresMs: e.expires - now });
    return out;
  }

  flushCache(): void {
    this.pmtu.clear();
  }
}
