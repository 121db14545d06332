// InfiniBand constants used by the wire codecs, the fabric and the verbs layer, in one place.
// IBA Vol 1 ch. 5/7/9/10 as implemented by Linux (include/rdma/ib_pack.h, ib_verbs.h), OpenSM
// (include/iba/ib_types.h) and rdma-core; each value carries the source tag of /work/shared/IPOIB-FACTS.md §1.

// ---- header sizes (bytes) [K:include/rdma/ib_pack.h], VCRC [WS:packet-infiniband.c]
export const LRH_BYTES = 8;
export const GRH_BYTES = 40;
export const BTH_BYTES = 12;
export const DETH_BYTES = 8;
export const IMMDT_BYTES = 4;
export const ICRC_BYTES = 4;
export const VCRC_BYTES = 2;

// ---- LRH (§1.2)
/** LRH.LVer: the only link version; receivers reject others [K:ud_header.c ib_ud_header_unpack()]. */
export const LRH_LVER = 0;
/** LRH.LNH, "link next header" [K:ib_pack.h IB_LNH_*]. */
export const LNH_RAW = 0;
export const LNH_IP_NON_IBA = 1;
export const LNH_IBA_LOCAL = 2;
export const LNH_IBA_GLOBAL = 3;
/** LRH.PktLen is 11 bits of 4-byte words, LRH through ICRC (§1.2). */
export const PKTLEN_MAX_WORDS = 0x7ff;
/** VL15 carries subnet management (SMPs) only (§1.2). */
export const VL_MANAGEMENT = 15;

// ---- GRH (§1.3)
/** GRH.IPVer [K:ud_header.c ib_ud_header_unpack()]. */
export const GRH_IPVER = 6;
/** GRH.NxtHdr value announcing an IBA transport header (BTH) [K:unpack], [WS]. */
export const GRH_NXTHDR_IBA = 0x1b;

// ---- BTH (§1.4)
/** BTH.TVer [K:ud_header.c ib_ud_header_unpack()]. */
export const BTH_TVER = 0;

/** Opcode bits 7-5 select the transport, bits 4-0 the operation [K:ib_pack.h IB_OPCODE()]. */
export const OPCODE_TRANSPORT_MASK = 0xe0;
export const OPCODE_OP_MASK = 0x1f;
export const TRANSPORT_RC = 0x00;
export const TRANSPORT_UC = 0x20;
export const TRANSPORT_RD = 0x40;
export const TRANSPORT_UD = 0x60;

/** Operation codes within a transport [K:ib_pack.h IB_OPCODE_*]. */
export const OP_SEND_FIRST = 0x00;
export const OP_SEND_MIDDLE = 0x01;
export const OP_SEND_LAST = 0x02;
export const OP_SEND_LAST_WITH_IMMEDIATE = 0x03;
export const OP_SEND_ONLY = 0x04;
export const OP_SEND_ONLY_WITH_IMMEDIATE = 0x05;
export const OP_RDMA_WRITE_FIRST = 0x06;
export const OP_RDMA_WRITE_MIDDLE = 0x07;
export const OP_RDMA_WRITE_LAST = 0x08;
export const OP_RDMA_WRITE_LAST_WITH_IMMEDIATE = 0x09;
export const OP_RDMA_WRITE_ONLY = 0x0a;
export const OP_RDMA_WRITE_ONLY_WITH_IMMEDIATE = 0x0b;
export const OP_RDMA_READ_REQUEST = 0x0c;
export const OP_RDMA_READ_RESPONSE_FIRST = 0x0d;
export const OP_RDMA_READ_RESPONSE_MIDDLE = 0x0e;
export const OP_RDMA_READ_RESPONSE_LAST = 0x0f;
export const OP_RDMA_READ_RESPONSE_ONLY = 0x10;
export const OP_ACKNOWLEDGE = 0x11;
export const OP_ATOMIC_ACKNOWLEDGE = 0x12;
export const OP_COMPARE_SWAP = 0x13;
export const OP_FETCH_ADD = 0x14;
export const OP_SEND_LAST_WITH_INVALIDATE = 0x16;
export const OP_SEND_ONLY_WITH_INVALIDATE = 0x17;

/** Full opcodes IPoIB uses (§1.4): UD SEND_ONLY 0x64, with immediate 0x65; RC for connected mode. */
export const OPCODE_UD_SEND_ONLY = TRANSPORT_UD | OP_SEND_ONLY;
export const OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE = TRANSPORT_UD | OP_SEND_ONLY_WITH_IMMEDIATE;
export const OPCODE_RC_SEND_FIRST = TRANSPORT_RC | OP_SEND_FIRST;
export const OPCODE_RC_SEND_MIDDLE = TRANSPORT_RC | OP_SEND_MIDDLE;
export const OPCODE_RC_SEND_LAST = TRANSPORT_RC | OP_SEND_LAST;
export const OPCODE_RC_SEND_ONLY = TRANSPORT_RC | OP_SEND_ONLY;
export const OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE = TRANSPORT_RC | OP_SEND_ONLY_WITH_IMMEDIATE;
export const OPCODE_RC_ACKNOWLEDGE = TRANSPORT_RC | OP_ACKNOWLEDGE;

export function opcodeTransport(opcode: number): number {
  return opcode & OPCODE_TRANSPORT_MASK;
}

/** UD opcodes (0x60-0x7F) carry a DETH right after the BTH (§1.5). */
export function isUdOpcode(opcode: number): boolean {
  return (opcode & OPCODE_TRANSPORT_MASK) === TRANSPORT_UD;
}

/**
 * True when a 4-byte ImmDt follows the BTH (and DETH) directly: SEND_LAST/ONLY_WITH_IMMEDIATE and
 * RDMA_WRITE_LAST_WITH_IMMEDIATE on RC/UC, SEND_ONLY_WITH_IMMEDIATE on UD [K:ib_pack.h, ud_header.c].
 * RDMA_WRITE_ONLY_WITH_IMMEDIATE is excluded on purpose: its ImmDt sits behind a RETH, which the packet
 * codec does not parse, so both stay at the front of the payload.
 */
export function opcodeHasImmDt(opcode: number): boolean {
  const t = opcode & OPCODE_TRANSPORT_MASK;
  const op = opcode & OPCODE_OP_MASK;
  if (t === TRANSPORT_UD) return op === OP_SEND_ONLY_WITH_IMMEDIATE;
  if (t === TRANSPORT_RC || t === TRANSPORT_UC) {
    return op === OP_SEND_LAST_WITH_IMMEDIATE || op === OP_SEND_ONLY_WITH_IMMEDIATE
      || op === OP_RDMA_WRITE_LAST_WITH_IMMEDIATE;
  }
  return false;
}

// ---- LIDs (§1.7) [OSM:ib_types.h IB_LID_*]
export const LID_INVALID = 0x0000;
export const LID_UNICAST_FIRST = 0x0001;
export const LID_UNICAST_LAST = 0xbfff;
export const LID_MULTICAST_FIRST = 0xc000;
export const LID_MULTICAST_LAST = 0xfffe;
export const LID_PERMISSIVE = 0xffff;

export function isUnicastLid(lid: number): boolean {
  return lid >= LID_UNICAST_FIRST && lid <= LID_UNICAST_LAST;
}

export function isMulticastLid(lid: number): boolean {
  return lid >= LID_MULTICAST_FIRST && lid <= LID_MULTICAST_LAST;
}

// ---- QPs and Q_Keys (§1.7, §1.8, §3.5)
export const QPN_BITS = 24;
export const QPN_MASK = 0xffffff;
/** DestQP of every multicast packet [K:qib_ud.c QIB_MULTICAST_QPN], [K:ipoib_multicast.c IB_MULTICAST_QPN]. */
export const QPN_MULTICAST = 0xffffff;
/** QP0 = SMI, no Q_Key check; QP1 = GSI [K:qib_ud.c], [OSM:ib_types.h]. */
export const QP0 = 0;
export const QP1 = 1;
/** [OSM:ib_types.h IB_QP1_WELL_KNOWN_Q_KEY], [RC:libibmad/mad.h IB_DEFAULT_QP1_QKEY]. */
export const QKEY_QP1_WELL_KNOWN = 0x80010000;
/** What OpenSM gives IPoIB broadcast groups; Linux takes it from the join reply (§3.5) [IL:ibd.c]. */
export const QKEY_IPOIB_BROADCAST = 0x0b1b;
/** A work request Q_Key with this bit set means "use the QP's own Q_Key" [OSM:ib_types.h IB_QP_PRIVILEGED_Q_KEY]. */
export const QKEY_PRIVILEGED_BIT = 0x80000000;

export function isPrivilegedQkey(qkey: number): boolean {
  return (qkey & QKEY_PRIVILEGED_BIT) !== 0;
}

// ---- P_Keys (§1.7, §1.8)
/** [OSM:ib_types.h IB_DEFAULT_PKEY] full member of the default partition. */
export const PKEY_DEFAULT = 0xffff;
/** [OSM:ib_types.h IB_DEFAULT_PARTIAL_PKEY] limited member of the default partition. */
export const PKEY_DEFAULT_LIMITED = 0x7fff;
export const PKEY_FULL_MEMBER_BIT = 0x8000;
export const PKEY_BASE_MASK = 0x7fff;

export function pkeyIsFull(pkey: number): boolean {
  return (pkey & PKEY_FULL_MEMBER_BIT) !== 0;
}

/** The partition number: the low 15 bits. */
export function pkeyBase(pkey: number): number {
  return pkey & PKEY_BASE_MASK;
}

/**
 * Whether two endpoints may talk (§1.8, [K:qib_verbs.h qib_pkey_ok()]): same non-zero partition and at
 * least one full member. Two limited members of one partition may not.
 */
export function pkeysMatch(a: number, b: number): boolean {
  const base = a & PKEY_BASE_MASK;
  return base !== 0 && base === (b & PKEY_BASE_MASK) && ((a | b) & PKEY_FULL_MEMBER_BIT) !== 0;
}

// ---- subnet prefix (§1.7) [OSM:ib_types.h IB_DEFAULT_SUBNET_PREFIX]
export const DEFAULT_SUBNET_PREFIX = 0xfe80000000000000n;

// ---- MTU enum <-> bytes (§1.9) [OSM:ib_types.h IB_MTU_LEN_*]
export const MTU_256 = 1;
export const MTU_512 = 2;
export const MTU_1024 = 3;
export const MTU_2048 = 4;
export const MTU_4096 = 5;

/** Bytes for an IBA MTU enum, or undefined for reserved values (0, 6-15). */
export function mtuToBytes(mtu: number): number | undefined {
  return Number.isInteger(mtu) && mtu >= MTU_256 && mtu <= MTU_4096 ? 128 << mtu : undefined;
}

/** The enum for an exact IBA MTU size, or undefined. */
export function bytesToMtu(bytes: number): number | undefined {
  for (let mtu = MTU_256; mtu <= MTU_4096; mtu++) if (128 << mtu === bytes) return mtu;
  return undefined;
}

/** The largest IBA MTU enum whose size is <= bytes (a port or path that holds `bytes`), or undefined. */
export function mtuAtMost(bytes: number): number | undefined {
  for (let mtu = MTU_4096; mtu >= MTU_256; mtu--) if (128 << mtu <= bytes) return mtu;
  return undefined;
}

// ---- rate enum <-> nominal Gb/s (§1.9) [OSM:ib_types.h IB_PATH_RECORD_RATE_*], [K:ib_verbs.h enum ib_rate];
// 25 (1600 Gb/s) only in newer kernels' ib_verbs.h. The enum order is historical, not sorted by speed.
const RATE_GBPS: ReadonlyMap<number, number> = new Map([
  [2, 2.5], [3, 10], [4, 30], [5, 5], [6, 20], [7, 40], [8, 60], [9, 80], [10, 120],
  [11, 14], [12, 56], [13, 112], [14, 168], [15, 25], [16, 100], [17, 200], [18, 300],
  [19, 28], [20, 50], [21, 400], [22, 600], [23, 800], [24, 1200], [25, 1600],
]);
export const RATE_2_5_GBPS = 2;
export const RATE_10_GBPS = 3;
export const RATE_30_GBPS = 4;
export const RATE_5_GBPS = 5;
export const RATE_20_GBPS = 6;
export const RATE_40_GBPS = 7;

export function rateToGbps(rate: number): number | undefined {
  return RATE_GBPS.get(rate);
}

export function gbpsToRate(gbps: number): number | undefined {
  for (const [rate, g] of RATE_GBPS) if (g === gbps) return rate;
  return undefined;
}

// ---- MGIDs (§1.7, §3.3) [OSM:ib_types.h IB_MC_SCOPE_*], [OSM:osm_prtn_config.c]
export const MC_SCOPE_LINK_LOCAL = 0x2;
export const MC_SCOPE_SITE_LOCAL = 0x5;
export const MC_SCOPE_ORG_LOCAL = 0x8;
export const MC_SCOPE_GLOBAL = 0xe;
/** MGID bytes 2-3 for IPoIB groups: IPv4 and IPv6 signatures (§3.3). */
export const IPOIB_MGID_SIGNATURE_IPV4 = 0x401b;
export const IPOIB_MGID_SIGNATURE_IPV6 = 0x601b;
