// UDP sockets on the emulated host, shaped as the DatagramEndpoint the DHCP server and client use
// (DESIGN.md "The seam between DHCP and the network"): bind(address, port), send to a unicast or
// broadcast address (broadcast needs setBroadcast(true), as SO_BROADCAST: EACCES otherwise), and
// receive with the sender's address, port, interface and 20-byte hardware address. A send may
// name a link-layer destination (viaHwAddress): an IP datagram — a broadcast included — carried in
// a link-layer unicast, as a DHCP server answers an unconfigured client it knows by address.
import type { IpoibHwAddress } from '../wire/ipoib-hw-address.js';
import { IpoibError } from './errors.js';

/** Where a datagram came from. */
export interface DatagramMeta {
  address: string;
  port: number;
  /** The receiving interface, e.g. "ib0". */
  interface: string;
  /** The sender's IPoIB address when known (UD: QPN + GID from the completion; flags byte from ARP/CM). */
  hwAddress: IpoibHwAddress | undefined;
  /** The datagram's destination address (255.255.255.255 for a broadcast). */
  destination: string;
}

export interface SendOptions {
  /** Carry the datagram in a link-layer unicast to this address instead of resolving by ARP/broadcast. */
  viaHwAddress?: IpoibHwAddress;
  /** Send out of this interface (like IP_PKTINFO / SO_BINDTODEVICE for one datagram). */
  interface?: string;
}

/** The seam the DHCP engines' daemons talk to; `node:dgram` on the kernel is the other implementation. */
export interface DatagramEndpoint {
  send(buf: Buffer, address: string, port: number, opts?: SendOptions): void;
  onMessage(handler: (buf: Buffer, meta: DatagramMeta) => void): void;
  close(): void;
}

/** What a socket needs from its host. */
export interface UdpStack {
  udpBind(sock: UdpSocket, address: string, port: number): { address: number; port: number };
  udpUnbind(sock: UdpSocket): void;
  udpSend(sock: UdpSocket, buf: Buffer, address: string, port: number, opts: SendOptions): void;
}

export interface SocketError {
  /** "EMSGSIZE" (a Frag-Needed came back), "EHOSTUNREACH", "ECONNREFUSED" (port unreachable). */
  code: string;
  message: string;
  address: string;
  port: number;
}

export class UdpSocket implements DatagramEndpoint {
  /** Bound address and port (uint32, 0 = INADDR_ANY); port 0 until bound. */
  boundAddress = 0;
  boundPort = 0;
  /** SO_BINDTODEVICE. */
  boundInterface: string | undefined;
  broadcast = false;
  reuseAddr = false;
  closed = false;
  private handlers: ((buf: Buffer, meta: DatagramMeta) => void)[] = [];
  private errorHandlers: ((e: SocketError) => void)[] = [];
  /** Datagrams received with no handler registered. */
  unhandled = 0;

  constructor(private readonly stack: UdpStack, opts: { interface?: string; reuseAddr?: boolean } = {}) {
    this.boundInterface = opts.interface;
    this.reuseAddr = opts.reuseAddr ?? false;
  }

  /** Binds to address (default 0.0.0.0) and port (0 = an ephemeral port). EADDRINUSE, EADDRNOTAVAIL. */
  bind(address = '0.0.0.0', port = 0): this {
    if (this.closed) throw new IpoibError('ENOTCONN', 'socket is closed');
    if (this.boundPort !== 0) throw new IpoibError('EINVAL', `socket already bound to port ${this.boundPort}`);
    const b = this.stack.udpBind(this, address, port);
    this.boundAddress = b.address;
    this.boundPort = b.port;
    return this;
  }

  /** SO_BROADCAST. */
  setBroadcast(on: boolean): void {
    this.broadcast = on;
  }

  /** SO_BINDTODEVICE. */
  bindToDevice(dev: string | undefined): void {
    this.boundInterface = dev;
  }

  send(buf: Buffer, address: string, port: number, opts: SendOptions = {}): void {
    if (this.closed) throw new IpoibError('ENOTCONN', 'socket is closed');
    if (this.boundPort === 0) this.bind();
    this.stack.udpSend(this, buf, address, port, opts);
  }

  onMessage(handler: (buf: Buffer, meta: DatagramMeta) => void): void {
    this.handlers.push(handler);
  }

  onError(handler: (e: SocketError) => void): void {
    this.errorHandlers.push(handler);
  }

  /** The next datagram, as a promise (tests, request/response code). */
  receive(): Promise<{ buf: Buffer; meta: DatagramMeta }> {
    return new Promise((resolve) => {
      const h = (buf: Buffer, meta: DatagramMeta): void => {
        this.handlers = this.handlers.filter((x) => x !== h);
        resolve({ buf, meta });
      };
      this.handlers.push(h);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stack.udpUnbind(this);
    this.handlers = [];
  }

  /** Called by the host. */
  deliver(buf: Buffer, meta: DatagramMeta): void {
    if (this.handlers.length === 0) { this.unhandled++; return; }
    for (const h of [...this.handlers]) h(buf, meta);
  }

  deliverError(e: SocketError): void {
    for (const h of this.errorHandlers) h(e);
  }
}
