// Management datagram constants: IBA vol. 1 ch. 13.4 (MAD), 15.2 (SA), 12 (CM), as written in
// OpenSM include/iba/ib_types.h, rdma-core libibmad/mad.h and the Linux kernel (IPOIB-FACTS §2, §4).
// Kept apart from ib-constants.ts on purpose: the MAD codecs depend on nothing else in link/wire.

export const MAD_SIZE = 256;
export const MAD_HEADER_SIZE = 24;
export const MAD_DATA_SIZE = MAD_SIZE - MAD_HEADER_SIZE; // 232: where CM message bodies live
export const MAD_BASE_VERSION = 1;

/** SA MAD: MAD header 24 + RMPP header 12 + SM_Key 8 + AttributeOffset 2 + reserved 2 + ComponentMask 8. */
export const SA_HEADER_SIZE = 56;
export const SA_DATA_SIZE = MAD_SIZE - SA_HEADER_SIZE; // 200
/** AttributeOffset counts 8-byte words (OpenSM ib_get_attr_offset()). */
export const SA_ATTRIBUTE_OFFSET_UNIT = 8;

export const MgmtClass = {
  SUBN_LID_ROUTED: 0x01,
  SUBN_ADM: 0x03,
  PERF: 0x04,
  BM: 0x05,
  DEV_MGMT: 0x06,
  COMM_MGMT: 0x07,
  SNMP: 0x08,
  SUBN_DIRECTED_ROUTE: 0x81,
} as const;

/** ClassVersion each class is spoken at (UMAD_SA_CLASS_VERSION = 2; cm_msgs.h IB_CM_CLASS_VERSION = 2). */
export const ClassVersion = {
  SUBN: 1,
  SUBN_ADM: 2,
  PERF: 1,
  COMM_MGMT: 2,
} as const;

/** Method byte; bit 7 (the R bit) marks a response. */
export const Method = {
  GET: 0x01,
  SET: 0x02,
  SEND: 0x03,
  TRAP: 0x05,
  REPORT: 0x06,
  TRAP_REPRESS: 0x07,
  GET_TABLE: 0x12,
  GET_TRACE_TABLE: 0x13,
  GET_MULTI: 0x14,
  DELETE: 0x15,
  GET_RESP: 0x81,
  REPORT_RESP: 0x86,
  GET_TABLE_RESP: 0x92,
  GET_MULTI_RESP: 0x94,
  DELETE_RESP: 0x95,
} as const;
export const METHOD_RESPONSE_BIT = 0x80;

/**
 * The 16-bit MAD Status: bit 0 busy, bit 1 redirect, bits 2-4 an invalid-field code, bits 8-15
 * class specific (for the SA, SaStatus below). Values as OpenSM's IB_MAD_STATUS_*.
 */
export const MadStatus = {
  SUCCESS: 0x0000,
  BUSY: 0x0001,
  REDIRECT: 0x0002,
  UNSUP_CLASS_VERSION: 0x0004,
  UNSUP_METHOD: 0x0008,
  UNSUP_METHOD_ATTR: 0x000c,
  INVALID_FIELD: 0x001c,
} as const;
export const MAD_STATUS_INVALID_FIELD_MASK = 0x001c;
export const MAD_STATUS_CLASS_MASK = 0xff00;

/** SA status codes: the upper byte of the MAD Status (IB_SA_MAD_STATUS_* >> 8). */
export const SaStatus = {
  SUCCESS: 0x00,
  NO_RESOURCES: 0x01,
  REQ_INVALID: 0x02,
  NO_RECORDS: 0x03,
  TOO_MANY_RECORDS: 0x04,
  INVALID_GID: 0x05,
  INSUF_COMPS: 0x06,
  DENIED: 0x07,
  PRIO_SUGGESTED: 0x08,
} as const;

export const SaAttr = {
  CLASS_PORT_INFO: 0x0001,
  NOTICE: 0x0002,
  INFORM_INFO: 0x0003,
  NODE_RECORD: 0x0011,
  PORT_INFO_RECORD: 0x0012,
  LINK_RECORD: 0x0020,
  GUID_INFO_RECORD: 0x0030,
  SERVICE_RECORD: 0x0031,
  PKEY_TABLE_RECORD: 0x0033,
  PATH_RECORD: 0x0035,
  MCMEMBER_RECORD: 0x0038,
  MULTIPATH_RECORD: 0x003a,
} as const;

/** CM attributes [WS:packet-infiniband.c CM_Attributes]. */
export const CmAttr = {
  CLASS_PORT_INFO: 0x0001,
  REQ: 0x0010,
  MRA: 0x0011,
  REJ: 0x0012,
  REP: 0x0013,
  RTU: 0x0014,
  DREQ: 0x0015,
  DREP: 0x0016,
  SIDR_REQ: 0x0017,
  SIDR_REP: 0x0018,
  LAP: 0x0019,
  APR: 0x001a,
} as const;

/** RMPP header (OpenSM IB_RMPP_TYPE_*, IB_RMPP_FLAG_*); flags are the low 3 bits of byte 2. */
export const RmppType = { NONE: 0, DATA: 1, ACK: 2, STOP: 3, ABORT: 4 } as const;
export const RmppFlag = { ACTIVE: 0x1, FIRST: 0x2, LAST: 0x4 } as const;

/** MTU, rate and packet-lifetime selectors of PathRecord and MCMemberRecord (IB_PATH_SELECTOR_*). */
export const Selector = { GREATER_THAN: 0, LESS_THAN: 1, EXACTLY: 2, LARGEST: 3 } as const;

/** MTU enumeration (IBA 7.7.2 / ibv_mtu): 1 = 256 ... 5 = 4096. */
export const IbMtu = { MTU_256: 1, MTU_512: 2, MTU_1024: 3, MTU_2048: 4, MTU_4096: 5 } as const;
/** Static-rate enumeration, the values IPoIB meets most (IB_PATH_RECORD_RATE_*). */
export const IbRate = { RATE_2_5_GBS: 2, RATE_10_GBS: 3, RATE_30_GBS: 4, RATE_5_GBS: 5, RATE_20_GBS: 6, RATE_40_GBS: 7 } as const;

/** MCMemberRecord JoinState bits (IB_MC_REC_STATE_*). */
export const JoinState = {
  FULL_MEMBER: 0x1,
  NON_MEMBER: 0x2,
  SEND_ONLY_NON_MEMBER: 0x4,
  SEND_ONLY_FULL_MEMBER: 0x8,
} as const;

/** MGID / MCMemberRecord scope nibble (IB_MC_SCOPE_*). */
export const McScope = { LINK_LOCAL: 0x2, SITE_LOCAL: 0x5, ORG_LOCAL: 0x8, GLOBAL: 0xe } as const;

// Addressing values a subnet manager answers with (IPOIB-FACTS §1.7, §2.4).
export const SA_QPN = 1;
export const QP1_QKEY = 0x80010000;
export const MULTICAST_LID_MIN = 0xc000;
export const MULTICAST_LID_MAX = 0xfffe;
export const IPOIB_BROADCAST_QKEY = 0x0b1b;
/** OSM_DEFAULT_SUBNET_TIMEOUT: OpenSM's PacketLifeTime for non-loopback paths and groups. */
export const OSM_DEFAULT_SUBNET_TIMEOUT = 0x12;

// IPoIB connected mode (IPOIB-FACTS §4).
/** Linux IPOIB_CM_IETF_ID: the service ID is this OR the listener's UD QPN. */
export const IPOIB_CM_SERVICE_ID_LINUX = 0x1000000000000000n;
/** The RFC 4755 value per illumos ibd.h; OFED has used the Linux one "for many years". */
export const IPOIB_CM_SERVICE_ID_IETF = 0x0100000000000000n;
/** IPOIB_CM_BUF_SIZE: receive MTU advertised in REQ/REP private data (65520 + 4-byte header). */
export const IPOIB_CM_BUF_SIZE = 65524;
