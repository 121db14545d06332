// One emulated machine on the fabric: its HCA (link/verbs), its IPoIB interfaces (interface.ts),
// and a small IPv4 stack as Linux runs it: addresses and routes, ARP with the neighbour state
// machine (neighbour-table.ts) and the arp_ignore / arp_filter sysctls (ip-sysctl.rst), IPv4 with
// header checksums, UDP sockets, ICMP echo and Frag-Needed (RFC 792, RFC 1191). The methods of the
// "control" section are what the host's control socket exposes (ip link/addr/neigh/route, ping,
// sysctl, sysfs) and return plain data. The host does not fragment or reassemble IP datagrams.
import { isWireError } from '../../codec/wire-error.js';
import { zeroed } from '../../codec/contract.js';
import { ARP_HTYPE_INFINIBAND, ARP_OP_REPLY, ARP_OP_REQUEST, ARP_PTYPE_IPV4, IPOIB_ARP_LENGTH, decodeArp, encodeArp, isIpoibArp } from '../wire/arp.js';
import {
  ICMP_CODE_FRAG_NEEDED, ICMP_CODE_HOST_UNREACHABLE, ICMP_CODE_PORT_UNREACHABLE, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST,
  ICMP_HEADER_LENGTH, decodeIcmp, encodeIcmp, fragmentationNeeded, type Icmp,
} from '../wire/icmp.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../wire/ipoib-header.js';
import {
  IPV4_BROADCAST, IPV4_FLAG_DF, IPV4_FLAG_MF, IPV4_MIN_HEADER_LENGTH, IP_PROTO_ICMP, IP_PROTO_UDP, decodeIpv4, encodeIpv4Header,
  formatIpv4, parseIpv4, type Ipv4,
} from '../wire/ipv4.js';
import { decodeIpoibHwAddress, ipv4MulticastHwAddress, type IpoibHwAddress } from '../wire/ipoib-hw-address.js';
import { UDP_HEADER_LENGTH, decodeUdp, encodeUdpHeader } from '../wire/udp.js';
import { formatGuid } from '../wire/ib-address.js';
import type { ByteMatch } from '../fabric/multicast-filter.js';
import type { PacketView } from '../fabric/packet-view.js';
import type { Scheduler } from '../fabric/scheduler.js';
import type { Transport } from '../fabric/transport.js';
import { SaClient, openDevice, type Device, type ProtectionDomain } from '../verbs/index.js';
import { CmAgent } from './connected-mode.js';
import {
  EPHEMERAL_PORT_FIRST, EPHEMERAL_PORT_LAST, IPOIB_ENCAP_LEN, IP_DEFAULT_TTL, PATH_QUERY_TIMEOUT_MS, PING_DEFAULT_INTERVAL_MS,
  PING_DEFAULT_SIZE, PING_TIMEOUT_MS,
} from './constants.js';
import { newIpStats, type InterfaceStats, type IpStats } from './counters.js';
import { IpoibError } from './errors.js';
import { IpoibInterface, type IpoibMode, type LinkUpper, type Listening, type PacketType } from './interface.js';
import { emit, type IpoibLogger, type LogLevel } from './log.js';
import { NeighbourTable, type NeighbourRow } from './neighbour-table.js';
import { RouteTable, formatRoute, maskOf, type Route } from './routes.js';
import { UdpSocket, type SendOptions, type UdpStack } from './udp-socket.js';

export interface HostOptions {
  name: string;
  scheduler: Scheduler;
  logger?: IpoibLogger;
  /** HCA ports (default 1); port n gets interface ib<n-1>, created down. */
  ports?: number;
  nodeGuid?: bigint;
  portGuids?: bigint[];
  /** Port MTU enum (default 5 = 4096). */
  mtuCap?: number;
  /** False: IPoIB "compiled without connected mode" (no RC flag in the address, `mode connected` refused). */
  cmSupported?: boolean;
  /** Mode of the interfaces at creation (default datagram). */
  mode?: IpoibMode;
}

interface Address {
  addr: number;
  len: number;
  broadcast: number;
}

interface IfState {
  readonly index: number;
  readonly iface: IpoibInterface;
  readonly addrs: Address[];
  readonly neigh: NeighbourTable;
  /** IPv4 multicast groups joined (uint32 -> users). */
  readonly mcast: Map<number, number>;
}

/** The sysctls of net.ipv4.conf.{all,default,DEV} the host implements. */
export const CONF_KEYS = ['arp_ignore', 'arp_filter', 'arp_accept', 'arp_notify'] as const;
export type ConfKey = typeof CONF_KEYS[number];
type Conf = Record<ConfKey, number>;
const CONF_DEFAULTS: Conf = { arp_ignore: 0, arp_filter: 0, arp_accept: 0, arp_notify: 0 };
const CONF_RANGE: Record<ConfKey, number[]> = { arp_ignore: [0, 1, 2], arp_filter: [0, 1], arp_accept: [0, 1], arp_notify: [0, 1] };

/** `ip -s link show` for one interface. */
export interface LinkRow {
  ifindex: number;
  name: string;
  parent: string | undefined;
  flags: string[];
  mtu: number;
  mode: IpoibMode;
  operstate: 'UP' | 'DOWN' | 'LOWERLAYERDOWN';
  carrier: boolean;
  address: string;
  broadcast: string;
  pkey: string;
  qpn: number;
  lid: number;
  portGuid: string;
  stats: InterfaceStats;
}

export interface AddrRow {
  dev: string;
  address: string;
  prefixlen: number;
  broadcast: string;
}

export interface PingReply {
  seq: number;
  rttMs: number;
  ttl: number;
  bytes: number;
}

export interface PingResult {
  destination: string;
  transmitted: number;
  received: number;
  lossPercent: number;
  replies: PingReply[];
  /** Per-probe errors, as ping(8) prints them ("Destination Host Unreachable", "Frag needed and DF set (mtu = 2044)", "local error: message too long, mtu=2044"). */
  errors: { seq: number; message: string }[];
  rttMin: number | undefined;
  rttAvg: number | undefined;
  rttMax: number | undefined;
}

export interface PingOptions {
  count?: number;
  /** ICMP data bytes (default 56). */
  size?: number;
  intervalMs?: number;
  timeoutMs?: number;
  /** ping -I DEV. */
  interface?: string;
}

interface PingWaiter {
  start: number;
  settle: (r: { reply?: PingReply; error?: string }) => void;
}

/** One IPv4 datagram to send: the payload is written by `fill` once the source address is known. */
interface IpOut {
  dst: number;
  src: number | undefined;
  protocol: number;
  payloadLength: number;
  fill: (buf: Buffer, offset: number, src: number, dst: number) => void;
  dev?: string | undefined;
  viaHw?: IpoibHwAddress | undefined;
  /** SO_BROADCAST (or the kernel's own ICMP): broadcast destinations allowed. */
  allowBroadcast: boolean;
}

export class Host implements UdpStack, LinkUpper {
  readonly name: string;
  readonly scheduler: Scheduler;
  readonly device: Device;
  readonly stats: IpStats = newIpStats();
  readonly routes = new RouteTable();
  private readonly pd: ProtectionDomain;
  private readonly cm: CmAgent;
  private readonly sa = new Map<number, SaClient>();
  private readonly logger: IpoibLogger | undefined;
  private readonly cmSupported: boolean;
  private readonly defaultMode: IpoibMode;
  private readonly ifs = new Map<string, IfState>();
  private nextIfindex = 2;
  /** Every configured address -> the interfaces holding it (weak host model: any of them is "local"). */
  private readonly localAddrs = new Map<number, number>();
  private readonly udp = new Map<number, UdpSocket[]>();
  private nextEphemeral = EPHEMERAL_PORT_FIRST;
  private ipId = 1;
  private pingId: number;
  private readonly pings = new Map<string, PingWaiter>();
  private readonly conf = new Map<string, Conf>([['all', { ...CONF_DEFAULTS }], ['default', { ...CONF_DEFAULTS }]]);
  private echoIgnoreBroadcasts = 1;

  /** net.ipv4.icmp_echo_ignore_broadcasts. */
  get icmpEchoIgnoreBroadcasts(): number {
    return this.echoIgnoreBroadcasts;
  }

  set icmpEchoIgnoreBroadcasts(v: number) {
    this.echoIgnoreBroadcasts = v;
    this.listenChanged();
  }

  /** Opens the host's HCA on the fabric and creates ib0..ib<n-1> (down). */
  static async create(transport: Transport, opts: HostOptions): Promise<Host> {
    const device = await openDevice(transport, {
      hostName: opts.name, scheduler: opts.scheduler, ports: opts.ports ?? 1,
      ...(opts.nodeGuid !== undefined ? { nodeGuid: opts.nodeGuid } : {}),
      ...(opts.portGuids !== undefined ? { portGuids: opts.portGuids } : {}),
      ...(opts.mtuCap !== undefined ? { mtuCap: opts.mtuCap } : {}),
    });
    return new Host(opts, device);
  }

  constructor(opts: HostOptions, device: Device) {
    this.name = opts.name;
    this.scheduler = opts.scheduler;
    this.device = device;
    this.logger = opts.logger;
    this.cmSupported = opts.cmSupported ?? true;
    this.defaultMode = opts.mode ?? 'datagram';
    this.pd = device.allocPd();
    this.cm = new CmAgent(device, this.pd, this.scheduler);
    this.pingId = Number(device.nodeGuid & 0xffffn);
    for (let p = 1; p <= device.portCount; p++) this.addInterface(`ib${p - 1}`, p);
  }

  private log(level: LogLevel, event: string, msg: string, fields: Record<string, unknown> = {}): void {
    emit(this.logger, { level, event, host: this.name, msg, ...fields });
  }

  private saFor(portNum: number): SaClient {
    let s = this.sa.get(portNum);
    if (s === undefined) {
      s = new SaClient(this.device, portNum, { timeoutMs: PATH_QUERY_TIMEOUT_MS });
      this.sa.set(portNum, s);
    }
    return s;
  }

  private addInterface(name: string, portNum: number, pkey?: number, parent?: string): IfState {
    const iface = new IpoibInterface({
      name, hostName: this.name, device: this.device, pd: this.pd, portNum, sa: this.saFor(portNum), cm: this.cm,
      upper: this, logger: this.logger, cmSupported: this.cmSupported, mode: this.defaultMode,
      ...(pkey !== undefined ? { pkey } : {}), ...(parent !== undefined ? { parent } : {}),
    });
    const st: IfState = {
      index: this.nextIfindex++, iface, addrs: [], mcast: new Map(),
      neigh: new NeighbourTable(name, this.scheduler, {
        solicit: (ip, to) => this.solicit(st, ip, to),
        output: (frame, hw) => iface.send(hw, ETHERTYPE_IPV4, frame),
        failed: (ip, dropped) => this.neighFailed(st, ip, dropped),
        queueOverflow: () => iface.counters.drop('neigh_queue_full', 'tx'),
        changed: () => this.listenChanged(st),
      }),
    };
    this.ifs.set(name, st);
    this.conf.set(name, { ...this.conf.get('default')! });
    return st;
  }

  /** echo 0x8001 > /sys/class/net/ib0/create_child: a P_Key child interface "ib0.8001" with its own UD QP. */
  createChild(parent: string, pkey: number): IpoibInterface {
    const p = this.st(parent);
    if (p.iface.parent !== undefined) throw new IpoibError('EINVAL', `${parent} is itself a child interface`);
    if (!Number.isInteger(pkey) || pkey < 1 || pkey > 0xffff || pkey === 0x8000) {
      throw new IpoibError('EINVAL', `P_Key ${String(pkey)} is not 0x0001..0xffff (0x8000 excluded)`);
    }
    const full = pkey | 0x8000;
    const name = `${parent}.${full.toString(16).padStart(4, '0')}`;
    if (this.ifs.has(name)) throw new IpoibError('EEXIST', `${name} exists already`);
    return this.addInterface(name, p.iface.portNum, full, parent).iface;
  }

  interfaces(): IpoibInterface[] {
    return [...this.ifs.values()].map((s) => s.iface);
  }

  iface(name: string): IpoibInterface {
    return this.st(name).iface;
  }

  private st(name: string): IfState {
    const s = this.ifs.get(name);
    if (s === undefined) throw new IpoibError('ENODEV', `Device "${name}" does not exist.`);
    return s;
  }

  /** Stops everything (interfaces down, QPs destroyed, HCA detached). */
  close(): void {
    for (const s of this.ifs.values()) {
      s.iface.close();
      s.neigh.close();
    }
    this.cm.close();
    for (const s of this.sa.values()) s.close();
    this.device.close();
  }

  // =============================================================================================
  // Control: what the control socket exposes.

  /** ip -s link show [DEV]. */
  linkShow(dev?: string): LinkRow[] {
    const list = dev === undefined ? [...this.ifs.values()] : [this.st(dev)];
    return list.map((s) => {
      const i = s.iface;
      const flags = ['BROADCAST', 'MULTICAST'];
      if (i.adminUp) flags.push('UP');
      if (i.adminUp && i.carrier) flags.push('LOWER_UP');
      const port = this.device.queryPort(i.portNum);
      return {
        ifindex: s.index, name: i.name, parent: i.parent, flags, mtu: i.mtu, mode: i.mode,
        operstate: !i.adminUp ? 'DOWN' : i.carrier ? 'UP' : 'LOWERLAYERDOWN', carrier: i.carrier,
        address: i.hwAddressText, broadcast: formatHw(i.broadcast), pkey: `0x${i.pkey.toString(16).padStart(4, '0')}`,
        qpn: i.udQpn, lid: port.lid, portGuid: formatGuid(port.portGuid), stats: i.counters.snapshot(),
      };
    });
  }

  /** `ip link show` as text: two lines per interface plus the counters. */
  formatLinks(dev?: string): string {
    return this.linkShow(dev).map((l) => [
      `${l.ifindex}: ${l.name}${l.parent ? `@${l.parent}` : ''}: <${l.flags.join(',')}> mtu ${l.mtu} state ${l.operstate} mode ${l.mode}`,
      `    link/infiniband ${l.address} brd ${l.broadcast}`,
      `    RX: bytes ${l.stats.rxBytes} packets ${l.stats.rxPackets} errors ${l.stats.rxErrors} dropped ${l.stats.rxDropped} mcast ${l.stats.rxMulticast} nohandler ${l.stats.rxNohandler}`,
      `    TX: bytes ${l.stats.txBytes} packets ${l.stats.txPackets} errors ${l.stats.txErrors} dropped ${l.stats.txDropped}`,
    ].join('\n')).join('\n');
  }

  /**
   * ip link set DEV [up|down] [mode M] [mtu N]: everything is checked first; on any error nothing
   * changes. Mode is applied before MTU, so "mode connected mtu 65520" works from datagram mode.
   */
  linkSet(dev: string, change: { up?: boolean; mode?: string; mtu?: number }): void {
    const i = this.st(dev).iface;
    const mode = change.mode !== undefined ? i.checkMode(change.mode) : i.mode;
    if (change.mtu !== undefined) i.checkMtu(change.mtu, mode);
    if (change.mode !== undefined) i.setMode(mode);
    if (change.mtu !== undefined) i.setMtu(change.mtu);
    if (change.up === true) i.up();
    if (change.up === false) i.down();
  }

  /** ip addr show [DEV]. */
  addrShow(dev?: string): AddrRow[] {
    const list = dev === undefined ? [...this.ifs.values()] : [this.st(dev)];
    return list.flatMap((s) => s.addrs.map((a) => ({ dev: s.iface.name, address: formatIpv4(a.addr), prefixlen: a.len, broadcast: formatIpv4(a.broadcast) })));
  }

  /** ip addr add A.B.C.D/LEN dev DEV: the address, its subnet route (proto kernel, scope link). */
  addrAdd(dev: string, cidr: string): void {
    const s = this.st(dev);
    const { addr, len } = parseCidr(cidr);
    if (s.addrs.some((a) => a.addr === addr)) throw new IpoibError('EEXIST', `${cidr} is already on ${dev}`);
    const mask = maskOf(len);
    const broadcast = len >= 31 ? IPV4_BROADCAST : ((addr & mask) | ~mask) >>> 0;
    s.addrs.push({ addr, len, broadcast });
    this.localAddrs.set(addr, (this.localAddrs.get(addr) ?? 0) + 1);
    this.listenChanged();
    if (len < 32) {
      this.routes.add({ dst: (addr & mask) >>> 0, len, via: undefined, dev, metric: 0, proto: 'kernel', scope: 'link', src: addr });
    }
    this.log('info', 'addr_add', `${dev}: address ${cidr}`, { dev, address: cidr });
  }

  addrDel(dev: string, cidr: string): void {
    const s = this.st(dev);
    const { addr, len } = parseCidr(cidr);
    const i = s.addrs.findIndex((a) => a.addr === addr && a.len === len);
    if (i < 0) throw new IpoibError('EADDRNOTAVAIL', `${cidr} is not on ${dev}`);
    s.addrs.splice(i, 1);
    const n = (this.localAddrs.get(addr) ?? 1) - 1;
    if (n <= 0) this.localAddrs.delete(addr);
    else this.localAddrs.set(addr, n);
    this.listenChanged();
    this.routes.remove((r) => r.dev === dev && r.proto === 'kernel' && r.src === addr);
  }

  /** ip neigh show [dev DEV]. */
  neighShow(dev?: string): NeighbourRow[] {
    const list = dev === undefined ? [...this.ifs.values()] : [this.st(dev)];
    return list.flatMap((s) => s.neigh.rows());
  }

  /** `ip neigh show` as text: "10.0.0.2 dev ib0 lladdr 80:00:00:48:fe:80:... REACHABLE". */
  formatNeigh(dev?: string): string {
    return this.neighShow(dev).map((r) => `${r.ip} dev ${r.dev}${r.lladdr ? ` lladdr ${r.lladdr}` : ''} ${r.state}`).join('\n');
  }

  /** ip neigh flush [dev DEV]: returns how many entries went. */
  neighFlush(dev?: string): number {
    const list = dev === undefined ? [...this.ifs.values()] : [this.st(dev)];
    return list.reduce((n, s) => n + s.neigh.flushAll(), 0);
  }

  /** ip route show. */
  routeShow(): Route[] {
    return this.routes.list();
  }

  formatRoutes(): string {
    const lines = this.routes.list().map(formatRoute);
    for (const c of this.routes.cache(this.scheduler.now())) lines.push(`cache ${c.dst} mtu ${c.mtu} expires ${Math.round(c.expiresMs / 1000)}sec`);
    return lines.join('\n');
  }

  /** ip route add default|A.B.C.D/LEN [via GW] [dev DEV] [metric N]. */
  routeAdd(dst: string, opts: { via?: string; dev?: string; metric?: number }): void {
    const { addr, len } = dst === 'default' ? { addr: 0, len: 0 } : parseCidr(dst);
    const via = opts.via !== undefined ? parseAddr(opts.via) : undefined;
    let dev = opts.dev;
    if (dev === undefined) {
      if (via === undefined) throw new IpoibError('EINVAL', 'a route needs a gateway (via) or a device (dev)');
      const r = this.routes.lookup(via, () => true);
      if (r === undefined || r.via !== undefined) throw new IpoibError('ENETUNREACH', `gateway ${opts.via} is not on a connected subnet`);
      dev = r.dev;
    } else {
      this.st(dev);
    }
    const ok = this.routes.add({ dst: (addr & maskOf(len)) >>> 0, len, via, dev, metric: opts.metric ?? 0, proto: 'static', scope: via === undefined ? 'link' : 'global', src: undefined });
    if (!ok) throw new IpoibError('EEXIST', `route ${dst} exists already`);
  }

  routeDel(dst: string): void {
    const { addr, len } = dst === 'default' ? { addr: 0, len: 0 } : parseCidr(dst);
    if (this.routes.remove((r) => r.dst === addr && r.len === len && r.proto === 'static') === 0) throw new IpoibError('ESRCH', `no route ${dst}`);
  }

  /** sysctl -n KEY: net.ipv4.conf.{all,default,DEV}.{arp_ignore,arp_filter,arp_accept,arp_notify}, net.ipv4.icmp_echo_ignore_broadcasts. */
  sysctlGet(key: string): number {
    if (key === 'net.ipv4.icmp_echo_ignore_broadcasts') return this.icmpEchoIgnoreBroadcasts;
    const { scope, name } = this.confKey(key);
    return this.conf.get(scope)![name];
  }

  /** sysctl -w KEY=VALUE; a value outside the supported range is refused (EINVAL) and nothing changes. */
  sysctlSet(key: string, value: number): void {
    if (key === 'net.ipv4.icmp_echo_ignore_broadcasts') {
      if (value !== 0 && value !== 1) throw new IpoibError('EINVAL', `${key}: ${value} is not 0 or 1`);
      this.icmpEchoIgnoreBroadcasts = value;
      return;
    }
    const { scope, name } = this.confKey(key);
    if (!CONF_RANGE[name].includes(value)) throw new IpoibError('EINVAL', `${key}: ${value} is not one of ${CONF_RANGE[name].join(', ')}`);
    this.conf.get(scope)![name] = value;
    if (name === 'arp_accept') this.listenChanged();
  }

  private confKey(key: string): { scope: string; name: ConfKey } {
    const m = /^net\.ipv4\.conf\.([^.]+(?:\.[0-9a-f]{4})?)\.([a-z_]+)$/.exec(key);
    if (m === null || !this.conf.has(m[1]!) || !(CONF_KEYS as readonly string[]).includes(m[2]!)) {
      throw new IpoibError('EINVAL', `sysctl ${key}: unknown key`);
    }
    return { scope: m[1]!, name: m[2] as ConfKey };
  }

  /** arp_ignore: the larger of conf.all and conf.DEV (IN_DEV_MAXCONF); arp_filter: either (IN_DEV_ORCONF). */
  private arpIgnore(dev: string): number {
    return Math.max(this.conf.get('all')!.arp_ignore, this.conf.get(dev)!.arp_ignore);
  }

  private confOr(dev: string, k: 'arp_filter' | 'arp_accept' | 'arp_notify'): boolean {
    return this.conf.get('all')![k] !== 0 || this.conf.get(dev)![k] !== 0;
  }

  /** Reads /sys/class/net/DEV/{mode,mtu,address,broadcast,pkey,carrier,operstate}, with the trailing newline. */
  readSysfs(path: string): string {
    const m = /^\/sys\/class\/net\/([^/]+)\/([a-z_]+)$/.exec(path);
    if (m === null) throw new IpoibError('EINVAL', `${path}: not a /sys/class/net/DEV/ATTR path`);
    const i = this.st(m[1]!).iface;
    switch (m[2]) {
      case 'mode': return i.sysfsMode;
      case 'mtu': return `${i.mtu}\n`;
      case 'address': return `${i.hwAddressText}\n`;
      case 'broadcast': return `${formatHw(i.broadcast)}\n`;
      case 'pkey': return `0x${i.pkey.toString(16).padStart(4, '0')}\n`;
      case 'carrier': return `${i.carrier ? 1 : 0}\n`;
      case 'operstate': return `${!i.adminUp ? 'down' : i.carrier ? 'up' : 'lowerlayerdown'}\n`;
      default: throw new IpoibError('EINVAL', `${path}: no such attribute`);
    }
  }

  /** Writes /sys/class/net/DEV/mode or create_child. */
  writeSysfs(path: string, value: string): void {
    const m = /^\/sys\/class\/net\/([^/]+)\/([a-z_]+)$/.exec(path);
    if (m === null) throw new IpoibError('EINVAL', `${path}: not a /sys/class/net/DEV/ATTR path`);
    const v = value.trim();
    if (m[2] === 'mode') { this.linkSet(m[1]!, { mode: v }); return; }
    if (m[2] === 'create_child') {
      if (!/^(0x[0-9a-f]{1,4}|[0-9]+)$/i.test(v)) throw new IpoibError('EINVAL', `create_child: "${v}" is not a P_Key`);
      this.createChild(m[1]!, Number(v));
      return;
    }
    throw new IpoibError('EINVAL', `${path}: not writable`);
  }

  /** A UDP socket (optionally bound to a device, SO_BINDTODEVICE). */
  udpSocket(opts: { interface?: string; reuseAddr?: boolean } = {}): UdpSocket {
    if (opts.interface !== undefined) this.st(opts.interface);
    return new UdpSocket(this, opts);
  }

  /** Joins an IPv4 multicast group on DEV (IP_ADD_MEMBERSHIP): the MGID is joined as a full member. */
  joinGroup(dev: string, group: string): void {
    const s = this.st(dev);
    const g = parseAddr(group);
    if (g >>> 28 !== 0xe) throw new IpoibError('EINVAL', `${group} is not a multicast address`);
    s.mcast.set(g, (s.mcast.get(g) ?? 0) + 1);
    s.iface.joinMulticast(ipv4MulticastHwAddress(g, s.iface.broadcast).gid);
  }

  leaveGroup(dev: string, group: string): void {
    const s = this.st(dev);
    const g = parseAddr(group);
    const n = s.mcast.get(g);
    if (n === undefined) throw new IpoibError('EADDRNOTAVAIL', `${group} is not joined on ${dev}`);
    if (n > 1) s.mcast.set(g, n - 1);
    else s.mcast.delete(g);
    s.iface.leaveMulticast(ipv4MulticastHwAddress(g, s.iface.broadcast).gid);
  }

  /** Gratuitous ARP, request form (arping -U): "who has MY-IP? tell MY-IP", broadcast. */
  sendGratuitousArp(dev: string, ip?: string): void {
    const s = this.st(dev);
    for (const a of this.addrsFor(s, ip)) this.sendArp(s, ARP_OP_REQUEST, a, a, undefined, zeroed(20));
  }

  /** Unsolicited ARP reply (arping -A, OFED's arpingib for HA): "MY-IP is at MY-HW", broadcast. */
  sendUnsolicitedArpReply(dev: string, ip?: string): void {
    const s = this.st(dev);
    for (const a of this.addrsFor(s, ip)) this.sendArp(s, ARP_OP_REPLY, a, a, undefined, bytesOfHw(s.iface.broadcast));
  }

  private addrsFor(s: IfState, ip: string | undefined): number[] {
    if (ip === undefined) return s.addrs.map((a) => a.addr);
    const a = parseAddr(ip);
    if (!s.addrs.some((x) => x.addr === a)) throw new IpoibError('EADDRNOTAVAIL', `${ip} is not on ${s.iface.name}`);
    return [a];
  }

  /** ping [-c N] [-s SIZE] [-i INTERVAL] [-W TIMEOUT] [-I DEV] ADDR, resolved when every probe is answered or timed out. */
  ping(address: string, opts: PingOptions = {}): Promise<PingResult> {
    const dst = parseAddr(address);
    const count = opts.count ?? 1;
    const size = opts.size ?? PING_DEFAULT_SIZE;
    const interval = opts.intervalMs ?? PING_DEFAULT_INTERVAL_MS;
    const timeout = opts.timeoutMs ?? PING_TIMEOUT_MS;
    if (!Number.isInteger(count) || count < 1) throw new IpoibError('EINVAL', `ping: bad count ${count}`);
    if (!Number.isInteger(size) || size < 0 || size > 65507) throw new IpoibError('EINVAL', `ping: bad size ${size}`);
    if (opts.interface !== undefined) this.st(opts.interface);
    const id = this.pingId = (this.pingId + 1) & 0xffff;
    const result: PingResult = {
      destination: address, transmitted: 0, received: 0, lossPercent: 0, replies: [], errors: [],
      rttMin: undefined, rttAvg: undefined, rttMax: undefined,
    };
    return new Promise((resolve) => {
      let pending = count;
      const done = (): void => {
        if (--pending > 0) return;
        const rtts = result.replies.map((r) => r.rttMs);
        result.lossPercent = Math.round(((result.transmitted - result.received) / Math.max(1, result.transmitted)) * 100);
        if (rtts.length > 0) {
          result.rttMin = Math.min(...rtts);
          result.rttMax = Math.max(...rtts);
          result.rttAvg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
        }
        resolve(result);
      };
      for (let i = 0; i < count; i++) {
        const seq = i + 1;
        this.scheduler.setTimer(i * interval, () => {
          const key = `${id}:${seq}`;
          const data = zeroed(size);
          for (let k = 0; k < size; k++) data[k] = (k + 0x10) & 0xff;
          const msg: Icmp = { kind: 'echo', type: ICMP_ECHO_REQUEST, code: 0, id, seq, data };
          let settled = false;
          const settle = (r: { reply?: PingReply; error?: string }): void => {
            if (settled) return;
            settled = true;
            this.pings.delete(key);
            timer.cancel();
            if (r.reply !== undefined) { result.received++; result.replies.push(r.reply); }
            if (r.error !== undefined) result.errors.push({ seq, message: r.error });
            done();
          };
          const timer = this.scheduler.setTimer(timeout, () => settle({}));
          this.pings.set(key, { start: this.scheduler.now(), settle });
          try {
            this.ipSend({
              dst, src: undefined, protocol: IP_PROTO_ICMP, payloadLength: ICMP_HEADER_LENGTH + size, dev: opts.interface, allowBroadcast: false,
              fill: (buf, off) => { encodeIcmp(msg, buf, off); },
            });
            result.transmitted++;
            this.stats.icmpOutMsgs++;
          } catch (err) {
            const e = err as IpoibError;
            settle({ error: e.code === 'EMSGSIZE' ? `local error: ${e.message}` : e.message });
          }
        });
      }
    });
  }

  // =============================================================================================
  // UDP (UdpStack).

  udpBind(sock: UdpSocket, address: string, port: number): { address: number; port: number } {
    const addr = parseAddr(address);
    if (addr !== 0 && addr !== IPV4_BROADCAST && !this.localAddrs.has(addr) && addr >>> 28 !== 0xe) {
      throw new IpoibError('EADDRNOTAVAIL', `bind ${address}:${port}: Cannot assign requested address`);
    }
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new IpoibError('EINVAL', `bind: port ${port} out of range`);
    let p = port;
    if (p === 0) {
      for (let tries = 0; ; tries++) {
        if (tries > EPHEMERAL_PORT_LAST - EPHEMERAL_PORT_FIRST) throw new IpoibError('EADDRINUSE', 'no ephemeral port left');
        p = this.nextEphemeral;
        this.nextEphemeral = p >= EPHEMERAL_PORT_LAST ? EPHEMERAL_PORT_FIRST : p + 1;
        if (!this.udp.has(p)) break;
      }
    }
    const list = this.udp.get(p) ?? [];
    const clash = list.find((s) => (s.boundAddress === addr || s.boundAddress === 0 || addr === 0)
      && (s.boundInterface === sock.boundInterface || s.boundInterface === undefined || sock.boundInterface === undefined));
    if (clash !== undefined && !(clash.reuseAddr && sock.reuseAddr)) {
      throw new IpoibError('EADDRINUSE', `bind ${address}:${p}: Address already in use`);
    }
    list.push(sock);
    this.udp.set(p, list);
    if (list.length === 1) this.listenChanged();
    return { address: addr, port: p };
  }

  udpUnbind(sock: UdpSocket): void {
    const list = this.udp.get(sock.boundPort);
    if (list === undefined) return;
    const rest = list.filter((s) => s !== sock);
    if (rest.length === 0) { this.udp.delete(sock.boundPort); this.listenChanged(); }
    else this.udp.set(sock.boundPort, rest);
  }

  udpSend(sock: UdpSocket, buf: Buffer, address: string, port: number, opts: SendOptions): void {
    const dst = parseAddr(address);
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new IpoibError('EINVAL', `sendto: port ${port} out of range`);
    const srcPort = sock.boundPort;
    this.ipSend({
      dst, src: sock.boundAddress === 0 || sock.boundAddress >>> 28 === 0xe || sock.boundAddress === IPV4_BROADCAST ? undefined : sock.boundAddress,
      protocol: IP_PROTO_UDP, payloadLength: UDP_HEADER_LENGTH + buf.length,
      dev: opts.interface ?? sock.boundInterface, viaHw: opts.viaHwAddress, allowBroadcast: sock.broadcast,
      fill: (out, off, src, d) => {
        buf.copy(out, off + UDP_HEADER_LENGTH);
        encodeUdpHeader(srcPort, port, buf.length, { src, dst: d }, out, off);
      },
    });
    this.stats.udpOutDatagrams++;
  }

  // =============================================================================================
  // IPv4 output.

  private usable = (dev: string): boolean => this.ifs.get(dev)?.iface.adminUp === true;

  /** Chooses interface, next hop and source; builds the datagram; hands it to ARP or the link. */
  private ipSend(o: IpOut): void {
    const dst = o.dst;
    if (this.localAddrs.has(dst)) { this.loopback(o); return; }
    let s: IfState | undefined;
    let nexthop = dst;
    let linkDst: IpoibHwAddress | undefined;
    let isBcast = false;
    if (dst === IPV4_BROADCAST || dst >>> 28 === 0xe) {
      s = o.dev !== undefined ? this.st(o.dev) : this.defaultIfaceFor(dst);
      if (dst === IPV4_BROADCAST) { isBcast = true; linkDst = s.iface.broadcast; }
      else linkDst = ipv4MulticastHwAddress(dst, s.iface.broadcast);
    } else {
      const r = this.routes.lookup(dst, this.usable, o.dev);
      if (r === undefined) {
        if (o.viaHw === undefined || o.dev === undefined) {
          this.stats.ipOutNoRoutes++;
          throw new IpoibError('ENETUNREACH', `sendto ${formatIpv4(dst)}: Network is unreachable`);
        }
        s = this.st(o.dev);
      } else {
        s = this.st(r.dev);
        if (r.via !== undefined) nexthop = r.via;
      }
      if (s.addrs.some((a) => a.broadcast === dst && a.len < 31)) { isBcast = true; linkDst = s.iface.broadcast; }
    }
    if (!s.iface.adminUp) throw new IpoibError('ENETDOWN', `${s.iface.name} is down`);
    if (isBcast && !o.allowBroadcast) {
      throw new IpoibError('EACCES', `sendto ${formatIpv4(dst)}: Permission denied (broadcast without SO_BROADCAST)`);
    }
    const src = o.src ?? this.sourceFor(s, nexthop);
    const total = IPV4_MIN_HEADER_LENGTH + o.payloadLength;
    const pmtu = this.routes.pmtuOf(dst, this.scheduler.now());
    const mtu = Math.min(s.iface.mtu, pmtu ?? Infinity);
    if (total > mtu) throw new IpoibError('EMSGSIZE', `message too long, mtu=${mtu}`);
    const frame = Buffer.allocUnsafe(IPOIB_ENCAP_LEN + total);
    o.fill(frame, IPOIB_ENCAP_LEN + IPV4_MIN_HEADER_LENGTH, src, dst);
    encodeIpv4Header({
      tos: 0, id: this.nextIpId(), flags: IPV4_FLAG_DF, fragOffset: 0, ttl: IP_DEFAULT_TTL, protocol: o.protocol, src, dst, options: EMPTY,
    }, o.payloadLength, frame, IPOIB_ENCAP_LEN);
    this.stats.ipOutRequests++;
    if (o.viaHw !== undefined) s.iface.send(o.viaHw, ETHERTYPE_IPV4, frame);
    else if (linkDst !== undefined) s.iface.send(linkDst, ETHERTYPE_IPV4, frame);
    else s.neigh.send(nexthop, frame);
  }

  /** 255.255.255.255 / multicast without a device: the default route's device, else the only interface with carrier. */
  private defaultIfaceFor(dst: number): IfState {
    const r = this.routes.lookup(dst, this.usable);
    if (r !== undefined) return this.st(r.dev);
    const up = [...this.ifs.values()].filter((s) => s.iface.adminUp && s.iface.carrier);
    if (up.length === 1) return up[0]!;
    this.stats.ipOutNoRoutes++;
    throw new IpoibError('ENETUNREACH', `sendto ${formatIpv4(dst)}: Network is unreachable (name the interface)`);
  }

  /** inet_select_addr(): an address of the interface in the next hop's subnet, else its first, else 0.0.0.0. */
  private sourceFor(s: IfState, nexthop: number): number {
    for (const a of s.addrs) if (((a.addr ^ nexthop) & maskOf(a.len)) === 0) return a.addr;
    return s.addrs[0]?.addr ?? 0;
  }

  private nextIpId(): number {
    const id = this.ipId;
    this.ipId = (this.ipId + 1) & 0xffff;
    return id;
  }

  /** A datagram to one of our own addresses goes round through "lo" (after the current work). */
  private loopback(o: IpOut): void {
    const src = o.src ?? o.dst;
    const pkt = Buffer.allocUnsafe(IPV4_MIN_HEADER_LENGTH + o.payloadLength);
    o.fill(pkt, IPV4_MIN_HEADER_LENGTH, src, o.dst);
    encodeIpv4Header({ tos: 0, id: this.nextIpId(), flags: IPV4_FLAG_DF, fragOffset: 0, ttl: IP_DEFAULT_TTL, protocol: o.protocol, src, dst: o.dst, options: EMPTY }, o.payloadLength, pkt, 0);
    this.stats.ipOutRequests++;
    this.scheduler.setTimer(0, () => this.ipInput(undefined, pkt, undefined));
  }

  // =============================================================================================
  // Link events (LinkUpper).

  /**
   * The early filter (DESIGN.md "Scale"): run on the shared packet by every receiving HCA before a
   * receive is consumed. A broadcast this host would drop without effect — an ARP neither for one
   * of its addresses nor from a known neighbour, a UDP datagram to a port no socket has, a
   * broadcast ping ignored — is only counted (as the interface counts it) and never copied.
   */
  accept(iface: IpoibInterface, v: PacketView): boolean {
    const b = v.buf;
    const o = v.payloadOffset;
    const n = v.payloadLength;
    if (v.srcQp === iface.udQpn && v.slid === iface.lid) return false;
    if (n < IPOIB_ENCAP_LEN + 20) return true;
    const type = b.readUInt16BE(o);
    const p = o + IPOIB_ENCAP_LEN;
    if (type === ETHERTYPE_IPV4) {
      if (this.localAddrs.has(b.readUInt32BE(p + 16))) return true;
      if (v.grhOffset < 0 || b[v.grhOffset + 24] !== 0xff) return true;
      const proto = b[p + 9]!;
      if (proto === IP_PROTO_UDP) {
        const ihl = (b[p]! & 0x0f) * 4;
        if (n < IPOIB_ENCAP_LEN + ihl + UDP_HEADER_LENGTH) return true;
        if (this.udp.has(b.readUInt16BE(p + ihl + 2))) return true;
      } else if (proto === IP_PROTO_ICMP && this.echoIgnoreBroadcasts === 0) {
        return true;
      }
      iface.countFiltered(v);
      return false;
    }
    if (type === ETHERTYPE_ARP) {
      if (n < IPOIB_ENCAP_LEN + IPOIB_ARP_LENGTH || b[p + 4] !== 20) return true;
      if (this.localAddrs.has(b.readUInt32BE(p + 52))) return true;
      const s = this.ifs.get(iface.name);
      if (s !== undefined && s.neigh.has(b.readUInt32BE(p + 28))) return true;
      if (s !== undefined && this.confOr(iface.name, 'arp_accept')) return true;
      iface.countFiltered(v);
      return false;
    }
    return true;
  }

  /** What changed may change what accept() declines: recompute the switch-level filters (all interfaces, or one). */
  private listenChanged(only?: IfState): void {
    if (only !== undefined) { only.iface.setListening(this.listening(only)); return; }
    for (const s of this.ifs.values()) s.iface.setListening(this.listening(s));
  }

  /**
   * accept() as switch-level byte matches on the IPoIB payload (4-byte IPoIB header, then the IPv4
   * header or the 56-byte IPoIB ARP packet). Every packet accept() would take matches a rule; a few
   * it would decline match too (IPv4 with options, short IPv4), which only costs the QP-level check.
   * Undefined (no switch filter) while another interface shares the broadcast group on the port:
   * the switch filters per port, not per QP.
   */
  private listening(s: IfState): Listening | undefined {
    const mlid = s.iface.broadcastMlid;
    if (mlid === undefined) return undefined;
    for (const o of this.ifs.values()) {
      if (o !== s && o.iface.portNum === s.iface.portNum && o.iface.broadcastMlid === mlid) return undefined;
    }
    const rules: ByteMatch[][] = [];
    const ETH = 0; // EtherType in the IPoIB header
    const IP = IPOIB_ENCAP_LEN;
    const v4 = match(ETH, 2, ETHERTYPE_IPV4);
    const arp = match(ETH, 2, ETHERTYPE_ARP);
    rules.push([{ ...v4, negate: true }, { ...arp, negate: true }]);
    // IPv4 to one of the host's addresses (any interface: weak host model).
    for (const a of this.localAddrs.keys()) rules.push([v4, match(IP + 16, 4, a)]);
    // accept() reads the UDP port after the real IHL; the rules below assume 20 bytes.
    rules.push([v4, { offset: IP, value: Uint8Array.of(5), mask: Uint8Array.of(0x0f), negate: true }]);
    if (this.udp.size > MAX_LISTEN_RULES) {
      rules.push([v4, match(IP + 9, 1, IP_PROTO_UDP)]);
    } else {
      for (const port of this.udp.keys()) rules.push([v4, match(IP + 9, 1, IP_PROTO_UDP), match(IP + 22, 2, port)]);
    }
    if (this.echoIgnoreBroadcasts === 0) rules.push([v4, match(IP + 9, 1, IP_PROTO_ICMP)]);
    if (this.confOr(s.iface.name, 'arp_accept') || s.neigh.size > MAX_LISTEN_RULES) {
      rules.push([arp]);
    } else {
      rules.push([arp, { offset: IP + 4, value: Uint8Array.of(20), negate: true }]);
      for (const a of this.localAddrs.keys()) rules.push([arp, match(IP + 52, 4, a)]);
      for (const ip of s.neigh.ips()) rules.push([arp, match(IP + 28, 4, ip)]);
    }
    return { rules, minPayload: IPOIB_ENCAP_LEN + IPOIB_ARP_LENGTH };
  }

  receive(iface: IpoibInterface, ethertype: number, packet: Buffer, src: IpoibHwAddress | undefined, pktType: PacketType): void {
    const s = this.ifs.get(iface.name);
    if (s === undefined) return;
    if (ethertype === ETHERTYPE_IPV4) { this.ipInput(s, packet, src); return; }
    if (ethertype === ETHERTYPE_ARP) { this.arpInput(s, packet, pktType); return; }
    iface.counters.rxNohandler++;
    iface.log('debug', 'drop', `${iface.name}: unknown EtherType 0x${ethertype.toString(16).padStart(4, '0')} dropped`, { reason: 'unknown_ethertype', ethertype });
  }

  tooLong(iface: IpoibInterface, frame: Buffer, mtu: number): void {
    const s = this.ifs.get(iface.name);
    if (s === undefined || frame.length < IPOIB_ENCAP_LEN + IPV4_MIN_HEADER_LENGTH || frame.readUInt16BE(0) !== ETHERTYPE_IPV4) return;
    // ipoib_cm_skb_too_long(): the route learns the MTU and the local sender gets Frag-Needed.
    const ip = Buffer.from(frame.subarray(IPOIB_ENCAP_LEN));
    this.icmpToLocal(s, ip, ICMP_CODE_FRAG_NEEDED, mtu);
  }

  carrierChanged(iface: IpoibInterface, on: boolean): void {
    const s = this.ifs.get(iface.name);
    if (s === undefined) return;
    // Another interface may have joined or left the same broadcast group on the same port.
    this.listenChanged();
    if (!on) return;
    if (this.confOr(iface.name, 'arp_notify')) this.sendGratuitousArp(iface.name);
  }

  // =============================================================================================
  // ARP (RFC 826 with RFC 4391's 20-byte addresses), as net/ipv4/arp.c arp_process().

  private sendArp(s: IfState, op: number, spa: number, tpa: number, to: IpoibHwAddress | undefined, tha: Buffer): void {
    const frame = Buffer.allocUnsafe(IPOIB_ENCAP_LEN + IPOIB_ARP_LENGTH);
    const spaB = zeroed(4);
    spaB.writeUInt32BE(spa);
    const tpaB = zeroed(4);
    tpaB.writeUInt32BE(tpa);
    encodeArp({ htype: ARP_HTYPE_INFINIBAND, ptype: ARP_PTYPE_IPV4, op, sha: s.iface.hwAddressBytes, spa: spaB, tha, tpa: tpaB }, frame, IPOIB_ENCAP_LEN);
    if (op === ARP_OP_REQUEST) this.stats.arpOutRequests++;
    else this.stats.arpOutReplies++;
    s.iface.send(to ?? s.iface.broadcast, ETHERTYPE_ARP, frame);
  }

  private solicit(s: IfState, ip: number, to: IpoibHwAddress | undefined): void {
    this.sendArp(s, ARP_OP_REQUEST, this.sourceFor(s, ip), ip, to, zeroed(20));
  }

  /** arp_ignore (ip-sysctl.rst): 0 any local address; 1 only one on the incoming interface; 2 also the sender in its subnet. */
  private arpIgnored(s: IfState, sip: number, tip: number): boolean {
    switch (this.arpIgnore(s.iface.name)) {
      case 0: return false;
      case 1: return !s.addrs.some((a) => a.addr === tip);
      default: return !s.addrs.some((a) => a.addr === tip && ((a.addr ^ sip) & maskOf(a.len)) === 0);
    }
  }

  /** arp_filter: answer only if our route back to the sender leaves through the interface the request came in on. */
  private arpFiltered(s: IfState, sip: number): boolean {
    if (!this.confOr(s.iface.name, 'arp_filter')) return false;
    const r = this.routes.lookup(sip, this.usable);
    return r === undefined || r.dev !== s.iface.name;
  }

  private arpInput(s: IfState, packet: Buffer, pktType: PacketType): void {
    let a;
    try {
      a = decodeArp(packet);
    } catch (err) {
      if (!isWireError(err)) throw err;
      this.stats.arpBad++;
      return;
    }
    if (!isIpoibArp(a) || (a.op !== ARP_OP_REQUEST && a.op !== ARP_OP_REPLY)) { this.stats.arpBad++; return; }
    const sip = a.spa.readUInt32BE(0);
    const tip = a.tpa.readUInt32BE(0);
    if (sip >>> 28 === 0xe || tip >>> 28 === 0xe) { this.stats.arpBad++; return; }
    const sha = decodeIpoibHwAddress(a.sha);
    s.iface.learnPeer(sha);
    if (a.op === ARP_OP_REQUEST) this.stats.arpInRequests++;
    else this.stats.arpInReplies++;
    if (a.op === ARP_OP_REQUEST && this.localAddrs.has(tip)) {
      if (this.arpIgnored(s, sip, tip) || this.arpFiltered(s, sip)) {
        this.stats.arpIgnored++;
        s.iface.log('debug', 'arp_ignored', `${s.iface.name}: ARP request for ${formatIpv4(tip)} from ${formatIpv4(sip)} not answered (arp_ignore/arp_filter)`);
        return;
      }
      // A duplicate-address probe (sender 0.0.0.0) is answered but teaches nothing.
      if (sip !== 0) s.neigh.update(sip, sha, { confirmed: false, create: true, override: true });
      this.sendArp(s, ARP_OP_REPLY, tip, sip, sha, Buffer.from(a.sha));
      return;
    }
    if (sip === 0) return;
    const garp = a.op === ARP_OP_REQUEST && tip === sip;
    const forUs = a.op === ARP_OP_REPLY && pktType === 'host' && this.localAddrs.has(tip);
    const create = this.confOr(s.iface.name, 'arp_accept') && (a.op === ARP_OP_REPLY || garp);
    s.neigh.update(sip, sha, { confirmed: forUs, create, ...(garp ? { override: true } : {}) });
  }

  private neighFailed(s: IfState, ip: number, dropped: Buffer[]): void {
    s.iface.log('info', 'neigh_failed', `${s.iface.name}: ${formatIpv4(ip)} did not answer ARP: FAILED, ${dropped.length} packet(s) dropped`, { ip: formatIpv4(ip), dropped: dropped.length });
    for (const f of dropped) this.icmpToLocal(s, f.subarray(IPOIB_ENCAP_LEN), ICMP_CODE_HOST_UNREACHABLE, 0);
  }

  // =============================================================================================
  // IPv4 input.

  private ipInput(s: IfState | undefined, packet: Buffer, src: IpoibHwAddress | undefined): void {
    this.stats.ipInReceives++;
    let ip: Ipv4;
    try {
      ip = decodeIpv4(packet);
    } catch (err) {
      if (!isWireError(err)) throw err;
      this.stats.ipInHdrErrors++;
      const dev = s?.iface.name ?? 'lo';
      emit(this.logger, {
        level: 'debug', event: 'drop', host: this.name, dev,
        msg: `${dev}: IPv4 packet dropped: ${err.message}`, reason: err.code === 'BAD_CHECKSUM' ? 'bad_ip_checksum' : 'bad_ip_header',
      });
      return;
    }
    if ((ip.flags & IPV4_FLAG_MF) !== 0 || ip.fragOffset !== 0) { this.stats.ipReasmFails++; return; }
    const dst = ip.dst;
    const local = this.localAddrs.has(dst);
    const bcast = dst === IPV4_BROADCAST || (s !== undefined && s.addrs.some((a) => a.broadcast === dst));
    const mcast = dst >>> 28 === 0xe && s !== undefined && s.mcast.has(dst);
    if (!local && !bcast && !mcast) { this.stats.ipInAddrErrors++; return; }
    if (ip.protocol === IP_PROTO_UDP) this.udpInput(s, ip, src, !local);
    else if (ip.protocol === IP_PROTO_ICMP) this.icmpInput(s, ip, !local);
    else this.stats.ipInUnknownProtos++;
  }

  private udpInput(s: IfState | undefined, ip: Ipv4, src: IpoibHwAddress | undefined, toMany: boolean): void {
    let u;
    try {
      u = decodeUdp(ip.payload, 0, { src: ip.src, dst: ip.dst });
    } catch (err) {
      if (!isWireError(err)) throw err;
      if (err.code === 'BAD_CHECKSUM') this.stats.udpInCsumErrors++;
      this.stats.udpInErrors++;
      return;
    }
    this.stats.ipInDelivers++;
    const dev = s?.iface.name;
    const list = this.udp.get(u.dstPort) ?? [];
    const fits = (k: UdpSocket): boolean => !k.closed && (k.boundInterface === undefined || k.boundInterface === dev)
      && (k.boundAddress === 0 || k.boundAddress === ip.dst);
    let targets: UdpSocket[];
    if (toMany) {
      targets = list.filter(fits);
    } else {
      const exact = list.find((k) => fits(k) && k.boundAddress === ip.dst);
      const any = exact ?? list.find(fits);
      targets = any === undefined ? [] : [any];
    }
    if (targets.length === 0) {
      this.stats.udpNoPorts++;
      if (!toMany && s !== undefined) this.icmpError(s, ip, ICMP_CODE_PORT_UNREACHABLE, 0);
      return;
    }
    this.stats.udpInDatagrams++;
    const data = Buffer.from(u.payload);
    const meta = { address: formatIpv4(ip.src), port: u.srcPort, interface: dev ?? 'lo', hwAddress: src, destination: formatIpv4(ip.dst) };
    for (const k of targets) k.deliver(data, meta);
  }

  private icmpInput(s: IfState | undefined, ip: Ipv4, toMany: boolean): void {
    this.stats.icmpInMsgs++;
    let m: Icmp;
    try {
      m = decodeIcmp(ip.payload);
    } catch (err) {
      if (!isWireError(err)) throw err;
      this.stats.icmpInErrors++;
      return;
    }
    this.stats.ipInDelivers++;
    if (m.kind === 'echo' && m.type === ICMP_ECHO_REQUEST) {
      this.stats.icmpInEchos++;
      if (toMany && this.echoIgnoreBroadcasts !== 0) return;
      const reply: Icmp = { kind: 'echo', type: ICMP_ECHO_REPLY, code: 0, id: m.id, seq: m.seq, data: Buffer.from(m.data) };
      try {
        this.ipSend({
          dst: ip.src, src: toMany ? undefined : ip.dst, protocol: IP_PROTO_ICMP, payloadLength: ICMP_HEADER_LENGTH + m.data.length,
          dev: undefined, allowBroadcast: false, fill: (buf, off) => { encodeIcmp(reply, buf, off); },
        });
        this.stats.icmpOutMsgs++;
      } catch {
        // No route back or too big for the way back: the request goes unanswered, as in Linux.
      }
      return;
    }
    if (m.kind === 'echo' && m.type === ICMP_ECHO_REPLY) {
      this.stats.icmpInEchoReps++;
      const w = this.pings.get(`${m.id}:${m.seq}`);
      w?.settle({ reply: { seq: m.seq, rttMs: this.scheduler.now() - w.start, ttl: ip.ttl, bytes: m.data.length + ICMP_HEADER_LENGTH } });
      return;
    }
    if (m.kind === 'unreachable') {
      this.stats.icmpInDestUnreachs++;
      this.icmpErrorInput(m.code, m.nextHopMtu, m.original);
    }
  }

  /** An ICMP error about one of our datagrams: learn the PMTU, tell the ping or the socket. */
  private icmpErrorInput(code: number, nextHopMtu: number, original: Buffer): void {
    if (original.length < IPV4_MIN_HEADER_LENGTH) return;
    const ihl = (original[0]! & 0x0f) * 4;
    const dst = original.readUInt32BE(16);
    const proto = original[9]!;
    let text: string;
    let errCode: string;
    if (code === ICMP_CODE_FRAG_NEEDED) {
      const mtu = this.routes.learnPmtu(dst, nextHopMtu, this.scheduler.now());
      this.log('info', 'pmtu', `path MTU to ${formatIpv4(dst)} lowered to ${mtu}`, { dst: formatIpv4(dst), mtu });
      text = `Frag needed and DF set (mtu = ${nextHopMtu})`;
      errCode = 'EMSGSIZE';
    } else if (code === ICMP_CODE_PORT_UNREACHABLE) {
      text = 'Destination Port Unreachable';
      errCode = 'ECONNREFUSED';
    } else {
      text = 'Destination Host Unreachable';
      errCode = 'EHOSTUNREACH';
    }
    if (original.length < ihl + 8) return;
    if (proto === IP_PROTO_ICMP && original[ihl] === ICMP_ECHO_REQUEST) {
      this.pings.get(`${original.readUInt16BE(ihl + 4)}:${original.readUInt16BE(ihl + 6)}`)?.settle({ error: text });
    } else if (proto === IP_PROTO_UDP) {
      const sport = original.readUInt16BE(ihl);
      for (const k of this.udp.get(sport) ?? []) {
        k.deliverError({ code: errCode, message: text, address: formatIpv4(dst), port: original.readUInt16BE(ihl + 2) });
      }
    }
  }

  /** Sends an ICMP error about `offending` back to its (remote) source (port unreachable). */
  private icmpError(s: IfState, offending: Ipv4, code: number, mtu: number): void {
    const raw = Buffer.alloc(IPV4_MIN_HEADER_LENGTH + Math.min(8, offending.payload.length));
    encodeIpv4Header({ ...offending, options: EMPTY }, offending.payload.length, raw, 0);
    offending.payload.copy(raw, IPV4_MIN_HEADER_LENGTH, 0, raw.length - IPV4_MIN_HEADER_LENGTH);
    const msg: Icmp = { ...fragmentationNeeded(raw, mtu), code };
    try {
      this.ipSend({
        dst: offending.src, src: offending.dst, protocol: IP_PROTO_ICMP, payloadLength: ICMP_HEADER_LENGTH + msg.original.length,
        dev: s.iface.name, allowBroadcast: false, fill: (buf, off) => { encodeIcmp(msg, buf, off); },
      });
      this.stats.icmpOutMsgs++;
    } catch {
      // Nowhere to send it: errors about errors are not reported.
    }
  }

  /** An ICMP error generated on this host for a datagram this host sent (Frag-Needed, Host Unreachable). */
  private icmpToLocal(s: IfState, ip: Buffer, code: number, mtu: number): void {
    if (ip.length < IPV4_MIN_HEADER_LENGTH || ip[0]! >>> 4 !== 4) return;
    const src = ip.readUInt32BE(12);
    if (src !== 0 && !this.localAddrs.has(src)) return;
    const msg: Icmp = { ...fragmentationNeeded(ip, mtu), code };
    const from = s.addrs[0]?.addr ?? src;
    const dst = src === 0 ? from : src;
    const len = ICMP_HEADER_LENGTH + msg.original.length;
    const pkt = Buffer.allocUnsafe(IPV4_MIN_HEADER_LENGTH + len);
    encodeIcmp(msg, pkt, IPV4_MIN_HEADER_LENGTH);
    encodeIpv4Header({ tos: 0, id: this.nextIpId(), flags: 0, fragOffset: 0, ttl: IP_DEFAULT_TTL, protocol: IP_PROTO_ICMP, src: from, dst, options: EMPTY }, len, pkt, 0);
    this.stats.icmpOutMsgs++;
    if (src === 0) { this.scheduler.setTimer(0, () => { this.stats.icmpInMsgs++; this.icmpErrorInput(code, mtu, msg.original); }); return; }
    this.scheduler.setTimer(0, () => this.ipInput(undefined, pkt, undefined));
  }
}

const EMPTY = Buffer.alloc(0);

/** Beyond this many bound ports or neighbours, the switch filter lets all UDP or all ARP through. */
const MAX_LISTEN_RULES = 64;

/** Big-endian `value` in `len` bytes at payload `offset`. */
function match(offset: number, len: number, value: number): ByteMatch {
  const b = new Uint8Array(len);
  for (let i = len - 1, x = value; i >= 0; i--, x = Math.floor(x / 256)) b[i] = x & 0xff;
  return { offset, value: b };
}

function parseAddr(text: string): number {
  try {
    return parseIpv4(text);
  } catch (err) {
    if (isWireError(err)) throw new IpoibError('EINVAL', `"${text}" is not an IPv4 address`);
    throw err;
  }
}

function parseCidr(text: string): { addr: number; len: number } {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (m === null || Number(m[2]) > 32) throw new IpoibError('EINVAL', `"${text}" is not ADDRESS/PREFIXLEN`);
  return { addr: parseAddr(m[1]!), len: Number(m[2]) };
}

function formatHw(a: IpoibHwAddress): string {
  return [...bytesOfHw(a)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function bytesOfHw(a: IpoibHwAddress): Buffer {
  const b = zeroed(20);
  b[0] = a.flags;
  b.writeUIntBE(a.qpn, 1, 3);
  a.gid.copy(b, 4);
  return b;
}
