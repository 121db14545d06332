// What crosses the fabric, counted by kind at the switch's capture point (one tap, header peeks
// only, no decoding): SA and CM MADs on QP1, and on data QPs the IPoIB EtherType with, for IPv4,
// ICMP and UDP (DHCP when the ports are the server's or the client's); RC acknowledgements apart.
// Layouts: IBA 9.2 (BTH), 9.3 (DETH), 13.4 (MAD header), RFC 4391 §6 (IPoIB header), RFC 791, RFC 768.
import type { Fabric } from '../../link/fabric/fabric.js';
import {
  BTH_BYTES, DETH_BYTES, GRH_BYTES, IMMDT_BYTES, LNH_IBA_GLOBAL, LRH_BYTES, OPCODE_RC_ACKNOWLEDGE, OPCODE_RC_SEND_FIRST, OPCODE_RC_SEND_ONLY,
  OPCODE_UD_SEND_ONLY, OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE, QP1,
} from '../../link/wire/ib-constants.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../../link/wire/ipoib-header.js';

export const TRAFFIC_KINDS = ['sa', 'cm', 'mad', 'arp', 'dhcp', 'icmp', 'udp', 'ip', 'rc-ack', 'other'] as const;
export type TrafficKind = typeof TRAFFIC_KINDS[number];
export type TrafficCounts = Record<TrafficKind, number> & { total: number; multicast: number };

const MULTICAST_LID_FIRST = 0xc000;
const MGMT_CLASS_SA = 0x03;
const MGMT_CLASS_CM = 0x07;
const IP_PROTO_ICMP = 1;
const IP_PROTO_UDP = 17;

export function zeroCounts(): TrafficCounts {
  const c = { total: 0, multicast: 0 } as TrafficCounts;
  for (const k of TRAFFIC_KINDS) c[k] = 0;
  return c;
}

export function diffCounts(a: TrafficCounts, b: TrafficCounts): TrafficCounts {
  const c = zeroCounts();
  for (const k of [...TRAFFIC_KINDS, 'total', 'multicast'] as const) c[k] = a[k] - b[k];
  return c;
}

/** The kind of one raw IB packet (LRH .. VCRC); dhcpPorts are the server's and the client's UDP ports. */
export function classify(buf: Buffer, dhcpPorts: ReadonlySet<number>): TrafficKind {
  if (buf.length < LRH_BYTES + BTH_BYTES) return 'other';
  const bth = LRH_BYTES + ((buf[1]! & 3) === LNH_IBA_GLOBAL ? GRH_BYTES : 0);
  if (buf.length < bth + BTH_BYTES) return 'other';
  const opcode = buf[bth]!;
  const destQp = buf.readUIntBE(bth + 5, 3);
  let p: number;
  if (opcode === OPCODE_UD_SEND_ONLY || opcode === OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE) {
    // UD SEND only (with immediate): DETH, then the immediate data, then the payload.
    p = bth + BTH_BYTES + DETH_BYTES + (opcode === OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE ? IMMDT_BYTES : 0);
    if (destQp === QP1) {
      if (buf.length < p + 2) return 'other';
      const cls = buf[p + 1]!;
      return cls === MGMT_CLASS_SA ? 'sa' : cls === MGMT_CLASS_CM ? 'cm' : 'mad';
    }
  } else if (opcode === OPCODE_RC_SEND_ONLY || opcode === OPCODE_RC_SEND_FIRST) {
    // RC SEND only / first (connected mode): the IPoIB header follows the BTH.
    p = bth + BTH_BYTES;
  } else {
    return opcode === OPCODE_RC_ACKNOWLEDGE ? 'rc-ack' : 'other';
  }
  if (buf.length < p + 4 + 20) return 'other';
  const type = buf.readUInt16BE(p);
  if (type === ETHERTYPE_ARP) return 'arp';
  if (type !== ETHERTYPE_IPV4) return 'other';
  const ip = p + 4;
  const proto = buf[ip + 9]!;
  if (proto === IP_PROTO_ICMP) return 'icmp';
  if (proto !== IP_PROTO_UDP) return 'ip';
  const ihl = (buf[ip]! & 0x0f) * 4;
  if (buf.length < ip + ihl + 4) return 'udp';
  return dhcpPorts.has(buf.readUInt16BE(ip + ihl + 2)) ? 'dhcp' : 'udp';
}

/** Counts every packet a port sends into the switch, by kind, for as long as it is installed. */
export class TrafficCounter {
  readonly counts: TrafficCounts = zeroCounts();
  private readonly remove: () => void;

  constructor(fabric: Fabric, dhcpPorts: ReadonlySet<number>) {
    const c = this.counts;
    this.remove = fabric.addTap((buf) => {
      c.total++;
      if (buf.length >= 4 && buf.readUInt16BE(2) >= MULTICAST_LID_FIRST && buf.readUInt16BE(2) !== 0xffff) c.multicast++;
      c[classify(buf, dhcpPorts)]++;
    });
  }

  snapshot(): TrafficCounts {
    return { ...this.counts };
  }

  close(): void {
    this.remove();
  }
}

/** Deliveries the switch made (packets received by end ports), from the port counters. */
export function fabricDeliveries(fabric: Fabric): { delivered: number; notListened: number } {
  let delivered = 0;
  let notListened = 0;
  for (const p of fabric.ports()) {
    delivered += p.counters.rcvPkts;
    notListened += p.counters.notListened;
  }
  return { delivered, notListened };
}
