// The server on the project's link: UDP sockets of an emulated IPoIB Host (link/ipoib), one per
// interface (bound to it, as SO_BINDTODEVICE), so each datagram arrives with its interface and the
// sender's 20-byte hardware address, and a broadcast reply can ride in a link-layer unicast to the
// client (DESIGN.md "Scale"). startServerOnHost() is what ipoib-cluster calls with an in-process
// Host; attachFabricHost() makes a Host attached to an `ipoib-fabric` daemon over UDP (--fabric).
//
// Interfaces are named as in Kea's interfaces-config: "ib0", "ib0/10.0.0.1" (that address), and a
// P_Key child as Linux names it, "ib0.8001" (created on the host when missing). An interface with
// no address gets one: the explicit one, else the first host address of the subnet configured for
// it (subnet4[].interface, or the only subnet), with the subnet's prefix length.
//
// Ports: the OFED release notes ask for free port numbers greater than 0x8000 on IPoIB (the seed);
// a port at or below is refused unless allowLowPort.
import { hostname } from 'node:os';
import { RealScheduler } from '../link/fabric/scheduler.js';
import { UdpTransport } from '../link/fabric/udp-client.js';
import { Host } from '../link/ipoib/host.js';
import { ipv4ToString, tryParseIpv4 } from '../protocol/index.js';
import type { LeaseStore } from '../lease-db/lease.js';
import type { ServerConfig, SubnetConfig } from './config.js';
import { ServerDaemon, type DaemonLogger, type ServerDaemonOptions, type ServerLink } from './daemon.js';

/** The lowest server port allowed on the project's link without allowLowPort. */
export const FABRIC_MIN_PORT = 0x8001;

/** A problem starting the server that the operator must fix (the CLI exits 2 with the message). */
export class ServerStartError extends Error {
  override readonly name = 'ServerStartError';
  constructor(readonly code: 'LOW_PORT' | 'BAD_PORT' | 'NO_INTERFACE' | 'NO_ADDRESS' | 'BAD_INTERFACE', message: string) {
    super(message);
  }
}

/** -p P on the project's link: P and P + 1 must be ports, and P above 0x8000 unless allowed. */
export function checkServerPort(port: number, onFabric: boolean, allowLowPort: boolean): void {
  if (!Number.isInteger(port) || port < 1 || port > 0xfffe) {
    throw new ServerStartError('BAD_PORT', `port ${port}: the server listens on P and answers on P + 1, so P must be in 1..65534`);
  }
  if (onFabric && port <= 0x8000 && !allowLowPort) {
    throw new ServerStartError('LOW_PORT',
      `port ${port} (0x${port.toString(16)}) is at or below 0x8000: on IPoIB free port numbers greater than 0x8000 must be chosen (OFED 1.2 release notes); pass --allow-low-port to use it anyway`);
  }
}

/** "ib0/10.0.0.1" -> name and address; "ib0" -> address null. */
export function parseInterfaceSpec(spec: string): { name: string; address: number | null } {
  const slash = spec.indexOf('/');
  if (slash < 0) return { name: spec, address: null };
  const address = tryParseIpv4(spec.slice(slash + 1));
  if (address === null) throw new ServerStartError('BAD_INTERFACE', `interface '${spec}': '${spec.slice(slash + 1)}' is not an IPv4 address`);
  return { name: spec.slice(0, slash), address };
}

/** The subnet an interface serves: the one naming it, else the only one, else the one holding `address`. */
export function subnetForInterface(config: ServerConfig, name: string, address: number | null): SubnetConfig | null {
  const named = config.subnets.find((s) => s.interface === name);
  if (named !== undefined) return named;
  if (address !== null) {
    const holding = config.subnets.find((s) => ((address & s.mask) >>> 0) === s.network);
    if (holding !== undefined) return holding;
  }
  return config.subnets.length === 1 ? config.subnets[0]! : null;
}

/** The interfaces to serve: those given, else the config's (a "*" means every interface of the host). */
function interfaceSpecs(config: ServerConfig, given: readonly string[] | undefined, host: Host): string[] {
  const list = given !== undefined && given.length > 0 ? [...given] : config.interfaces.filter((i) => i !== '*');
  if (list.length > 0) return list;
  if (config.interfaces.includes('*')) return host.interfaces().map((i) => i.name);
  throw new ServerStartError('NO_INTERFACE', 'no interface to serve: name one (e.g. ib0) or list it in interfaces-config');
}

/** Makes sure `name` exists (creating a P_Key child "ib0.8001"), has an address, and is up. Returns the address. */
export function prepareHostInterface(host: Host, config: ServerConfig, spec: string): number {
  const { name, address } = parseInterfaceSpec(spec);
  if (!host.interfaces().some((i) => i.name === name)) {
    const m = /^(.+)\.([0-9a-f]{4})$/i.exec(name);
    if (m === null || !host.interfaces().some((i) => i.name === m[1])) {
      throw new ServerStartError('BAD_INTERFACE', `interface '${name}' does not exist on host ${host.name} (it has ${host.interfaces().map((i) => i.name).join(', ')})`);
    }
    host.createChild(m[1]!, parseInt(m[2]!, 16));
  }
  const have = host.addrShow(name).map((a) => ({ address: tryParseIpv4(a.address), len: a.prefixlen }));
  let chosen: number | null = address;
  if (chosen !== null && !have.some((a) => a.address === chosen)) {
    const s = subnetForInterface(config, name, chosen);
    host.addrAdd(name, `${ipv4ToString(chosen)}/${s?.prefixLength ?? 24}`);
  } else if (chosen === null) {
    const s = subnetForInterface(config, name, null);
    const inSubnet = have.find((a) => a.address !== null && s !== null && ((a.address & s.mask) >>> 0) === s.network);
    chosen = inSubnet?.address ?? have[0]?.address ?? null;
    if (chosen === null) {
      if (s === null) {
        throw new ServerStartError('NO_ADDRESS', `interface '${name}' has no address and no subnet4 entry names it: write '${name}/ADDRESS' in interfaces-config or set subnet4[].interface`);
      }
      chosen = (s.network + 1) >>> 0;
      host.addrAdd(name, `${ipv4ToString(chosen)}/${s.prefixLength}`);
    }
  }
  host.linkSet(name, { up: true });
  return chosen;
}

export interface HostServerOptions extends Omit<ServerDaemonOptions, 'config' | 'store' | 'links' | 'serverPort'> {
  /** P: listened on; clients answered on P + 1. */
  port: number;
  /** Interface specs ("ib0", "ib0/10.0.0.1", "ib0.8001"); default: the config's interfaces-config. */
  interfaces?: readonly string[];
  allowLowPort?: boolean;
  /** Wait (bounded) until each interface has carrier (its broadcast group joined) before serving. Default true. */
  waitCarrier?: boolean;
}

/**
 * Runs the server on an emulated IPoIB host: prepares its interfaces, opens one UDP socket per
 * interface on port P, and starts a ServerDaemon over them. The caller owns the Host; stop() on the
 * daemon closes the sockets and (unless closeStore is false) the store.
 */
export async function startServerOnHost(host: Host, config: ServerConfig, store: LeaseStore, opts: HostServerOptions): Promise<ServerDaemon> {
  checkServerPort(opts.port, true, opts.allowLowPort ?? false);
  const links: ServerLink[] = [];
  try {
    for (const spec of interfaceSpecs(config, opts.interfaces, host)) {
      const address = prepareHostInterface(host, config, spec);
      const name = parseInterfaceSpec(spec).name;
      if (opts.waitCarrier !== false) {
        const iface = host.iface(name);
        await Promise.race([iface.waitCarrier(), new Promise((r) => setTimeout(r, 10_000).unref())]);
        if (!iface.carrier) opts.log?.warn({ event: 'no-carrier', iface: name }, `${name}: no carrier after 10 s (broadcast group not joined); serving anyway`);
      }
      const sock = host.udpSocket({ interface: name });
      sock.bind('0.0.0.0', opts.port);
      sock.setBroadcast(true);
      links.push({ name, address, endpoint: sock });
    }
  } catch (err) {
    for (const l of links) l.endpoint.close();
    throw err;
  }
  const { port, interfaces: _i, allowLowPort: _a, waitCarrier: _w, ...rest } = opts;
  return ServerDaemon.start({ ...rest, config, store, links, serverPort: port });
}

/** --fabric HOST:PORT: an emulated host attached to an `ipoib-fabric` daemon over UDP, on wall-clock time. */
export async function attachFabricHost(fabric: string, hostName = `ipoib-dhcpd-${hostname()}`): Promise<{ host: Host; transport: UdpTransport }> {
  const m = /^(.+):(\d{1,5})$/.exec(fabric);
  if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new ServerStartError('BAD_INTERFACE', `--fabric '${fabric}' is not HOST:PORT`);
  const transport = await UdpTransport.connect(m[1]!, Number(m[2]));
  try {
    const host = await Host.create(transport, { name: hostName, scheduler: new RealScheduler() });
    return { host, transport };
  } catch (err) {
    await transport.close().catch(() => undefined);
    throw err;
  }
}
