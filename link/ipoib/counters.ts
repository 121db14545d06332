// Counters as `ip -s -s link` shows them per interface (struct rtnl_link_stats64 names), plus the
// reason of every drop; and the host's IP/UDP/ICMP counters as `netstat -s` (SNMP MIB names).

/** Why a packet was dropped at the interface: stable codes, with the sentence for operators. */
export const IFACE_DROP_REASONS = {
  no_carrier: 'the interface has no carrier (broadcast group not joined, port down or admin down)',
  neigh_queue_full: 'more than 3 packets waiting for an unresolved ARP neighbour (unres_qlen)',
  path_queue_full: `more than 3 packets waiting for a neighbour's PathRecord or CM connection`,
  mcast_queue_full: 'more than 64 packets waiting for a send-only multicast join',
  path_failed: 'the PathRecord query failed: the packets queued for that destination are dropped',
  mcast_join_failed: 'the send-only join failed: the packets queued for that group are dropped',
  too_long: 'packet longer than the UD MTU or the connection MTU (Frag-Needed sent to the local sender)',
  send_error: 'the HCA refused the work request (QP state, length)',
  cm_failed: 'the CM connection failed or was rejected: queued packets dropped',
  runt: 'received payload shorter than the 4-byte IPoIB header',
  bad_ethertype_tx: 'an EtherType IPoIB does not transmit (only IPv4, IPv6, ARP, RARP, TIPC)',
} as const;
export type IfaceDropReason = keyof typeof IFACE_DROP_REASONS;

export class InterfaceCounters {
  rxPackets = 0;
  rxBytes = 0;
  rxErrors = 0;
  rxDropped = 0;
  rxMulticast = 0;
  /** Packets with an EtherType no protocol handles (rx_nohandler). */
  rxNohandler = 0;
  txPackets = 0;
  txBytes = 0;
  txErrors = 0;
  txDropped = 0;
  readonly drops: Record<string, number> = {};

  drop(reason: IfaceDropReason, dir: 'rx' | 'tx'): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
    if (dir === 'rx') this.rxDropped++;
    else this.txDropped++;
  }

  snapshot(): InterfaceStats {
    return {
      rxPackets: this.rxPackets, rxBytes: this.rxBytes, rxErrors: this.rxErrors, rxDropped: this.rxDropped,
      rxMulticast: this.rxMulticast, rxNohandler: this.rxNohandler, txPackets: this.txPackets, txBytes: this.txBytes,
      txErrors: this.txErrors, txDropped: this.txDropped, drops: { ...this.drops },
    };
  }
}

export interface InterfaceStats {
  rxPackets: number;
  rxBytes: number;
  rxErrors: number;
  rxDropped: number;
  rxMulticast: number;
  rxNohandler: number;
  txPackets: number;
  txBytes: number;
  txErrors: number;
  txDropped: number;
  drops: Record<string, number>;
}

/** The host's protocol counters (RFC 4293 / netstat -s names). */
export interface IpStats {
  ipInReceives: number;
  ipInHdrErrors: number;
  ipInAddrErrors: number;
  ipInUnknownProtos: number;
  ipInDelivers: number;
  ipOutRequests: number;
  ipOutNoRoutes: number;
  ipReasmFails: number;
  udpInDatagrams: number;
  udpNoPorts: number;
  udpInErrors: number;
  udpInCsumErrors: number;
  udpOutDatagrams: number;
  icmpInMsgs: number;
  icmpInErrors: number;
  icmpInEchos: number;
  icmpInEchoReps: number;
  icmpInDestUnreachs: number;
  icmpOutMsgs: number;
  arpInRequests: number;
  arpInReplies: number;
  arpOutRequests: number;
  arpOutReplies: number;
  arpIgnored: number;
  arpBad: number;
}

export function newIpStats(): IpStats {
  return {
    ipInReceives: 0, ipInHdrErrors: 0, ipInAddrErrors: 0, ipInUnknownProtos: 0, ipInDelivers: 0, ipOutRequests: 0,
    ipOutNoRoutes: 0, ipReasmFails: 0, udpInDatagrams: 0, udpNoPorts: 0, udpInErrors: 0, udpInCsumErrors: 0,
    udpOutDatagrams: 0, icmpInMsgs: 0, icmpInErrors: 0, icmpInEchos: 0, icmpInEchoReps: 0, icmpInDestUnreachs: 0,
    icmpOutMsgs: 0, arpInRequests: 0, arpInReplies: 0, arpOutRequests: 0, arpOutReplies: 0, arpIgnored: 0, arpBad: 0,
  };
}
