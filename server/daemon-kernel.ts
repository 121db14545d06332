// The server on the kernel's UDP sockets (--link kernel): node:dgram through link/kernel's
// DatagramEndpoint, for a real ib0 and for interop with standard peers in network namespaces. node
// has no SO_BINDTODEVICE and no IP_PKTINFO, so one process serves one interface (the socket is
// bound to 0.0.0.0 to receive broadcasts, or to the address written as "IFACE/ADDRESS", Kea's
// interfaces-config form), and the server identifier is that interface's IPv4 address.
//
// Broadcast replies go to 255.255.255.255: the kernel needs a route covering it (any default route,
// or `ip route add 255.255.255.255 dev IFACE`); without one a send fails with ENETUNREACH, which the
// daemon logs with that hint (link/kernel/kernel-udp.ts).
import { networkInterfaces } from 'node:os';
import { KernelUdpEndpoint, KernelUdpError } from '../link/kernel/kernel-udp.js';
import { ipv4ToString, tryParseIpv4 } from '../protocol/index.js';
import type { ServerConfig } from './config.js';
import type { DaemonLogger, ServerLink } from './daemon.js';
import { ServerStartError, parseInterfaceSpec } from './daemon-host.js';

/** The first IPv4 address of a kernel interface, or null. */
export function kernelInterfaceAddress(name: string): number | null {
  const list = networkInterfaces()[name];
  const v4 = list?.find((a) => a.family === 'IPv4');
  return v4 === undefined ? null : tryParseIpv4(v4.address);
}

/**
 * SO_RCVBUF asked for the server socket. Linux doubles what is asked (bookkeeping) and charges each
 * datagram its buffer's true size, about 1,280 bytes for a 300-byte DHCP message (measured on this
 * project's machine), so 2 MiB holds ~3,200 messages: under a second of work at the daemon's
 * capacity (~2,000-2,500 DORA/s, 4,000-5,000 messages/s, on 2 shared cores), so what waits there is
 * still worth answering. 512 KiB (~800 messages) was too small for the stalls of a busy machine:
 * under perfdhcp at 2,000 DORA/s the kernel dropped ~500 messages a step with it and none with 2 MiB
 * (bench/server-perfdhcp.bench.ts prints these drops). A larger buffer only queues messages whose
 * answers come too late (daemon.ts, "Overload"); link/kernel's default (4 MiB asked, 8 MiB granted)
 * held ~6,500, and 4,000 DORA/s offered collapsed to 24 answered.
 */
export const SERVER_RECV_BUFFER_BYTES = 2048 * 1024;

/** Opens the server socket for one interface spec ("ib0" or "ib0/10.0.0.1") on port P. */
export async function openKernelLink(
  config: ServerConfig, given: readonly string[], port: number, log?: DaemonLogger, recvBufferBytes = SERVER_RECV_BUFFER_BYTES,
): Promise<ServerLink> {
  const specs = given.length > 0 ? [...given] : config.interfaces.filter((i) => i !== '*');
  if (specs.length === 0) {
    throw new ServerStartError('NO_INTERFACE', 'no interface to serve: name one on the command line or in interfaces-config (not "*": --link kernel serves one interface per process)');
  }
  if (specs.length > 1) {
    throw new ServerStartError('NO_INTERFACE', `--link kernel serves one interface per process (node:dgram has no SO_BINDTODEVICE); got ${specs.join(', ')}`);
  }
  const { name, address: bindAddress } = parseInterfaceSpec(specs[0]!);
  if (networkInterfaces()[name] === undefined) {
    throw new ServerStartError('BAD_INTERFACE', `interface '${name}' does not exist (or is down without an address) in this network namespace`);
  }
  const address = bindAddress ?? kernelInterfaceAddress(name);
  if (address === null) {
    throw new ServerStartError('NO_ADDRESS', `interface '${name}' has no IPv4 address: the server needs one as its server identifier`);
  }
  let endpoint: KernelUdpEndpoint;
  try {
    endpoint = await KernelUdpEndpoint.open({
      interface: name, port, address: bindAddress === null ? '0.0.0.0' : ipv4ToString(bindAddress), recvBufferBytes,
    });
  } catch (err) {
    if (err instanceof KernelUdpError) throw new ServerStartError('BAD_PORT', err.message);
    throw err;
  }
  endpoint.onError((e) => log?.warn({ event: 'socket-error', code: e.code }, e.message));
  return { name, address, endpoint };
}
