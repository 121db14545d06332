// Per-port counters in the spirit of perfquery (IBA 16.1.3.5 PortCounters): packets and bytes
// each way, plus every discard under one reason from a closed list. Every drop in the fabric and
// in the emulated HCA lands in exactly one of these reasons, so nothing disappears silently.

/** Stable reason codes: scripts and dashboards key on them, so never rename one. */
export const DROP_REASONS = {
  BAD_LENGTH: 'byte count contradicts LRH.PktLen or is too short for the headers it announces',
  BAD_LRH: 'LRH.LVer is not 0 or LRH.LNH is not an IBA transport (2 or 3)',
  BAD_GRH: 'GRH.IPVer is not 6 or GRH.NxtHdr is not 0x1B',
  BAD_BTH: 'BTH.TVer is not 0 or PadCnt exceeds the payload',
  BAD_ICRC: 'invariant CRC does not match: the packet was corrupted in flight',
  UNKNOWN_OPCODE: 'BTH.OpCode is not one this HCA implements',
  SLID_MISMATCH: 'LRH.SLID is not the LID the SM assigned to the sending port',
  NO_ROUTE: 'no port has this DLID, or the MLID has no member port',
  PORT_NOT_ACTIVE: 'the sending or the receiving port is not ACTIVE',
  MTU_EXCEEDED: 'payload larger than the MTU of a link on the path',
  PKEY_VIOLATION: 'P_Key does not match the receiving QP (IBA 10.9.3: both limited, or different partitions)',
  QKEY_VIOLATION: 'DETH.Q_Key differs from the receiving QP\'s Q_Key',
  NO_QP: 'BTH.DestQP names no QP on the receiving port',
  QP_STATE: 'the receiving QP is not in RTR or RTS',
  QP_TYPE: 'the opcode belongs to another transport than the receiving QP\'s',
  NO_RECV_WQE: 'a UD datagram arrived with no posted receive (UD has no buffering beyond posted receives)',
  RECV_BUFFER_TOO_SMALL: 'the posted receive buffer is smaller than 40 (GRH) + data',
  NOT_ATTACHED: 'a multicast packet reached a port where no QP is attached to the group',
  RC_SEQUENCE: 'RC packet with an unexpected PSN (duplicate or out of order)',
  BAD_MAD: 'MAD with a bad header: base version, class version, method or attribute the agent refuses',
  FAULT_LOSS: 'dropped by injected loss (fault model)',
} as const;

export type DropReason = keyof typeof DROP_REASONS;

export const DROP_REASON_LIST = Object.keys(DROP_REASONS) as DropReason[];

function zeroDiscards(): Record<DropReason, number> {
  const d = {} as Record<DropReason, number>;
  for (const r of DROP_REASON_LIST) d[r] = 0;
  return d;
}

export interface CounterSnapshot {
  xmitPkts: number;
  xmitBytes: number;
  rcvPkts: number;
  rcvBytes: number;
  mcXmitPkts: number;
  mcRcvPkts: number;
  /** Deliveries a receiver's early filter declined: delivered and counted, never handed over. */
  notListened: number;
  discards: Record<DropReason, number>;
}

export class PortCounters implements CounterSnapshot {
  xmitPkts = 0;
  xmitBytes = 0;
  mcXmitPkts = 0;
  readonly discards: Record<DropReason, number> = zeroDiscards();
  /**
   * Set while the switch owes this port deliveries it counted in bulk (multicast-index.ts): called
   * before any receive counter is read or written, so every reader sees exact values.
   */
  pending: (() => void) | undefined = undefined;
  private rcvPktsN = 0;
  private rcvBytesN = 0;
  private mcRcvPktsN = 0;
  private notListenedN = 0;

  get rcvPkts(): number { if (this.pending !== undefined) this.pending(); return this.rcvPktsN; }
  set rcvPkts(n: number) { if (this.pending !== undefined) this.pending(); this.rcvPktsN = n; }
  get rcvBytes(): number { if (this.pending !== undefined) this.pending(); return this.rcvBytesN; }
  set rcvBytes(n: number) { if (this.pending !== undefined) this.pending(); this.rcvBytesN = n; }
  get mcRcvPkts(): number { if (this.pending !== undefined) this.pending(); return this.mcRcvPktsN; }
  set mcRcvPkts(n: number) { if (this.pending !== undefined) this.pending(); this.mcRcvPktsN = n; }
  /** Deliveries a receiver's early filter declined: delivered and counted, never handed over. */
  get notListened(): number { if (this.pending !== undefined) this.pending(); return this.notListenedN; }
  set notListened(n: number) { if (this.pending !== undefined) this.pending(); this.notListenedN = n; }

  /** One multicast packet delivered to this port (counted as the switch hands it over or filters it). */
  received(bytes: number): void {
    this.rcvPktsN++;
    this.rcvBytesN += bytes;
    this.mcRcvPktsN++;
  }

  /** `pkts` multicast packets of `bytes` in all, delivered and declined by the port's filter, counted at once. */
  addDelivered(pkts: number, bytes: number): void {
    this.rcvPktsN += pkts;
    this.rcvBytesN += bytes;
    this.mcRcvPktsN += pkts;
    this.notListenedN += pkts;
  }

  drop(reason: DropReason): void {
    this.discards[reason]++;
  }

  totalDiscards(): number {
    let n = 0;
    for (const r of DROP_REASON_LIST) n += this.discards[r];
    return n;
  }

  snapshot(): CounterSnapshot {
    return {
      xmitPkts: this.xmitPkts, xmitBytes: this.xmitBytes, rcvPkts: this.rcvPkts, rcvBytes: this.rcvBytes,
      mcXmitPkts: this.mcXmitPkts, mcRcvPkts: this.mcRcvPkts, notListened: this.notListened,
      discards: { ...this.discards },
    };
  }

  /**
   * The names perfquery prints. PortXmitData/PortRcvData are in 4-byte words there (IBA
   * 16.1.3.5), so bytes are divided by 4; errors are grouped as a real HCA groups them.
   */
  perfquery(): Record<string, number> {
    const d = this.discards;
    return {
      PortXmitData: Math.floor(this.xmitBytes / 4),
      PortRcvData: Math.floor(this.rcvBytes / 4),
      PortXmitPkts: this.xmitPkts,
      PortRcvPkts: this.rcvPkts,
      PortMulticastXmitPkts: this.mcXmitPkts,
      PortMulticastRcvPkts: this.mcRcvPkts,
      PortRcvErrors: d.BAD_LENGTH + d.BAD_LRH + d.BAD_GRH + d.BAD_BTH + d.BAD_ICRC,
      PortXmitDiscards: d.NO_ROUTE + d.PORT_NOT_ACTIVE + d.MTU_EXCEEDED,
      PortRcvConstraintErrors: d.PKEY_VIOLATION + d.SLID_MISMATCH,
    };
  }
}
