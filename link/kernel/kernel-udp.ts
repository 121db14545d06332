// The DatagramEndpoint (DESIGN.md "The seam between DHCP and the network") on the kernel's UDP
// sockets (node:dgram): how the DHCP server and client serve real hosts (a real ib0) and talk to
// standard peers (dnsmasq, ISC dhcpd) in network namespaces.
//
// What node:dgram can and cannot do, checked on Linux 6.x inside network namespaces (veth pair):
// - SO_BROADCAST: setBroadcast(true); without it a send to 255.255.255.255 fails with EACCES.
// - A client with no address can send from 0.0.0.0 to 255.255.255.255 only when a route covers
//   255.255.255.255; with none the send fails with ENETUNREACH. `ip route add 255.255.255.255 dev
//   IFACE` (scope link) — or any default route through IFACE — is enough; the source is then 0.0.0.0.
// - The broadcast reply reaches a socket bound to 0.0.0.0:PORT on an interface without an address,
//   but only when reverse-path filtering lets it in: rp_filter 0, or a route back to the server's
//   source (a default route through IFACE passes even strict rp_filter 1). With rp_filter 1 or 2
//   and only the 255.255.255.255 route the kernel drops the reply silently.
// - node has no SO_BINDTODEVICE and no IP_PKTINFO. So the interface is scoped by the namespace:
//   one DHCP interface per network namespace (the tests do that), and `meta.interface` is the
//   interface this endpoint was opened for. `meta.destination` is the address the socket is bound to
//   (the real destination of a datagram is not reported by node:dgram), and `meta.hwAddress` is
//   undefined (no link layer here). SendOptions.viaHwAddress cannot be honoured (the kernel resolves
//   the link layer) and is ignored; SendOptions.interface naming another interface is refused.
import dgram from 'node:dgram';
import type { DatagramEndpoint, DatagramMeta, SendOptions, SocketError } from '../ipoib/udp-socket.js';

/** Receive buffer asked for (SO_RCVBUF); the kernel caps it at net.core.rmem_max. */
export const DEFAULT_RECV_BUFFER_BYTES = 4 * 1024 * 1024;

export interface KernelUdpOptions {
  /** The interface this endpoint serves (reported as meta.interface; see the scoping note above). */
  interface: string;
  port: number;
  /** Local address to bind; default 0.0.0.0 (needed to receive broadcasts). */
  address?: string;
  /** SO_REUSEADDR, so a server and a test peer can share a port in one namespace. Default false. */
  reuseAddr?: boolean;
  /** SO_BROADCAST. Default true (DHCP sends to 255.255.255.255). */
  broadcast?: boolean;
  recvBufferBytes?: number;
}

export class KernelUdpError extends Error {
  override readonly name = 'KernelUdpError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** What to tell an operator about an errno seen on a DHCP socket. */
export function socketErrorHint(code: string, address: string, iface: string): string {
  switch (code) {
    case 'ENETUNREACH':
      return address === '255.255.255.255'
        ? `no route covers 255.255.255.255: add one with \`ip route add 255.255.255.255 dev ${iface}\``
        : `no route to ${address}`;
    case 'EACCES': return 'broadcast not permitted on this socket (SO_BROADCAST off)';
    case 'EADDRINUSE': return 'the port is in use (another DHCP client or server?)';
    case 'EPERM': return 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; or a firewall refused it)';
    default: return code;
  }
}

export class KernelUdpEndpoint implements DatagramEndpoint {
  readonly interface: string;
  private readonly socket: dgram.Socket;
  private handlers: ((buf: Buffer, meta: DatagramMeta) => void)[] = [];
  private errorHandlers: ((e: SocketError) => void)[] = [];
  private closed = false;
  private boundAddress = '0.0.0.0';
  private boundPortValue = 0;
  /** Datagrams received with no handler registered. */
  unhandled = 0;
  private inFlight = 0;
  private drained: (() => void)[] = [];

  private constructor(socket: dgram.Socket, iface: string) {
    this.socket = socket;
    this.interface = iface;
  }

  /** Opens and binds the socket; rejects with a KernelUdpError naming the errno and what to do. */
  static open(opts: KernelUdpOptions): Promise<KernelUdpEndpoint> {
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: opts.reuseAddr ?? false });
    const ep = new KernelUdpEndpoint(socket, opts.interface);
    const address = opts.address ?? '0.0.0.0';
    return new Promise((resolve, reject) => {
      const onBindError = (err: NodeJS.ErrnoException): void => {
        socket.close();
        const code = err.code ?? 'EIO';
        reject(new KernelUdpError(code, `bind ${address}:${opts.port}: ${socketErrorHint(code, address, opts.interface)}`));
      };
      socket.once('error', onBindError);
      socket.bind(opts.port, address, () => {
        socket.off('error', onBindError);
        socket.setBroadcast(opts.broadcast ?? true);
        try {
          socket.setRecvBufferSize(opts.recvBufferBytes ?? DEFAULT_RECV_BUFFER_BYTES);
        } catch {
          // Capped or refused: the kernel keeps its default; recvBufferSize reports what we got.
        }
        const a = socket.address();
        ep.boundAddress = a.address;
        ep.boundPortValue = a.port;
        socket.on('message', (buf, rinfo) => ep.deliver(buf, rinfo));
        socket.on('error', (err: NodeJS.ErrnoException) => ep.reportError(err.code ?? 'EIO', err.message, '', 0));
        resolve(ep);
      });
    });
  }

  get port(): number { return this.boundPortValue; }
  get address(): string { return this.boundAddress; }
  /** SO_RCVBUF as the kernel reports it (Linux doubles the value asked for, up to 2 × rmem_max). */
  get recvBufferSize(): number { return this.socket.getRecvBufferSize(); }

  send(buf: Buffer, address: string, port: number, opts: SendOptions = {}): void {
    if (this.closed) throw new KernelUdpError('ENOTCONN', 'socket is closed');
    if (opts.interface !== undefined && opts.interface !== this.interface) {
      throw new KernelUdpError('EINVAL',
        `cannot send out of ${opts.interface}: this kernel socket serves ${this.interface} (node:dgram has no SO_BINDTODEVICE)`);
    }
    this.inFlight++;
    this.socket.send(buf, port, address, (err) => {
      if (--this.inFlight === 0) for (const d of this.drained.splice(0)) d();
      if (err !== null && err !== undefined) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        this.reportError(code, `send to ${address}:${port}: ${socketErrorHint(code, address, this.interface)}`, address, port);
      }
    });
  }

  /**
   * Resolves when every send so far has been handed to the kernel (node:dgram sends complete
   * asynchronously): a DHCPRELEASE must leave before the address is removed or the socket closed.
   */
  flush(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  onMessage(handler: (buf: Buffer, meta: DatagramMeta) => void): void {
    this.handlers.push(handler);
  }

  /** Asynchronous socket errors (a failed send: ENETUNREACH, EACCES, ...). Without a handler they are dropped. */
  onError(handler: (e: SocketError) => void): void {
    this.errorHandlers.push(handler);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers = [];
    this.socket.close();
    for (const d of this.drained.splice(0)) d();
  }

  private deliver(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.handlers.length === 0) { this.unhandled++; return; }
    const meta: DatagramMeta = {
      address: rinfo.address, port: rinfo.port, interface: this.interface, hwAddress: undefined,
      destination: this.boundAddress,
    };
    for (const h of [...this.handlers]) h(buf, meta);
  }

  private reportError(code: string, message: string, address: string, port: number): void {
    for (const h of this.errorHandlers) h({ code, message, address, port });
  }
}
