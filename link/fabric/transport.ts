// How a host's HCA reaches the fabric. A Transport attaches one HCA port and gives back a
// PortLink to send packets on; the fabric talks back through the PortSink the host handed over.
// The in-process transport is a direct call into the Fabric; a UDP transport (a daemon between
// processes) implements the same two interfaces, so nothing above link/verbs can tell them apart.
import type { Fabric } from './fabric.js';
import type { PacketView } from './packet-view.js';
import type { PortSink } from './switch.js';
import type { MulticastFilter } from './multicast-filter.js';

export type { PortSink } from './switch.js';

export interface AttachRequest {
  /** Host name: GUIDs not given are derived from it (stable across restarts). */
  hostName: string;
  nodeGuid?: bigint;
  /** HCA port number, 1..254. */
  portNum: number;
  portGuid?: bigint;
  /** MTU enum the HCA port supports (default 5 = 4096). */
  mtuCap?: number;
  /** Rate enum (default 3 = 10 Gb/s, 4x SDR). */
  rate?: number;
}

export interface PortLink {
  readonly portGuid: bigint;
  readonly nodeGuid: bigint;
  /**
   * Puts an encoded packet (LRH .. VCRC) on the wire. view, when given, must be the parse of buf;
   * the buffer must not be written afterwards (it is shared with every receiver).
   */
  send(buf: Buffer, view?: PacketView): void;
  /**
   * Installs (or, with undefined, removes) this port's early filter for packets to `mlid`: the
   * fabric delivers only packets matching it, and counts the others as delivered-but-not-listened.
   * Optional: a transport without it simply delivers everything (filters are an optimisation).
   */
  setMulticastFilter?(mlid: number, filter: MulticastFilter | undefined): void;
  /** Unplugs the port: the fabric times nothing out, the port just goes away (and leaves its groups). */
  detach(): void;
}

export interface Transport {
  attach(req: AttachRequest, sink: PortSink): Promise<PortLink>;
}

/** The whole fabric in this process: attach and send are plain calls. */
export class InProcessTransport implements Transport {
  constructor(readonly fabric: Fabric) {}

  attach(req: AttachRequest, sink: PortSink): Promise<PortLink> {
    try {
      return Promise.resolve(this.attachSync(req, sink));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Same as attach, without a promise: for simulations that build thousands of hosts in one go. */
  attachSync(req: AttachRequest, sink: PortSink): PortLink {
    const port = this.fabric.attachPort(req, sink);
    const fabric = this.fabric;
    return {
      portGuid: port.portGuid,
      nodeGuid: port.nodeGuid,
      send(buf: Buffer, view?: PacketView): void {
        if (port.attached) port.ingress(buf, view);
      },
      setMulticastFilter(mlid: number, filter: MulticastFilter | undefined): void {
        fabric.switch.setMulticastFilter(port, mlid, filter);
      },
      detach(): void {
        fabric.detachPort(port.portGuid);
      },
    };
  }
}
