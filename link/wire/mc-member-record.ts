// SA MCMemberRecord (attribute 0x0038): IBA vol. 1 §15.2.5.17, laid out as Linux sa_query.c
// mcmember_rec_table (52 bytes) padded to OpenSM's 56-byte ib_member_rec_t, so AttributeOffset is 7;
// component-mask bits and join states as OpenSM IB_MCR_COMPMASK_* / IB_MC_REC_STATE_* (IPOIB-FACTS §2.3, §3.8).

import { type Codec } from '../../codec/contract.js';
import { f, fixedCodec, fixedRecord, type FieldSpec } from './mad.js';
import { Method, SaAttr } from './mad-constants.js';
import { saRecordOf, saRequest, type SaMad } from './sa.js';

export const MCMEMBER_RECORD_SIZE = 56;

/**
 * ```
 *  0               1               2               3
 * +---------------+---------------+---------------+---------------+
 * |                          MGID (16 bytes)                      |  0
 * +---------------------------------------------------------------+
 * |                        PortGID (16 bytes)                     | 16
 * +---------------------------------------------------------------+
 * |                             Q_Key                             | 32
 * +-------------------------------+---+-----------+---------------+
 * |             MLID              |Sel|    MTU    |    TClass     | 36
 * +-------------------------------+---+-----------+---+-----------+
 * |             P_Key             |Sel|   Rate    |Sel|PktLifeTime| 40
 * +-------+-----------------------+---------------+---+-----------+
 * |  SL   |         FlowLabel (20)                |   HopLimit    | 44
 * +-------+-------+-+-------------+---------------+---------------+
 * | Scope |JoinSt.|P|         reserved (23 bits)                  | 48
 * +-------+-------+-+---------------------------------------------+
 * |                     pad (OpenSM, 4 bytes)                     | 52
 * +---------------------------------------------------------------+
 * ```
 * P = ProxyJoin, bit 7 of byte 49 as IBA and Linux place it. (OpenSM declares it as the C bit field
 * `uint8_t proxy_join:1`, which x86 compilers put in bit 0; OpenSM never reads it, so the IBA
 * position is the one that matters.)
 */
export interface McMemberRecord {
  mgid: Buffer;
  portGid: Buffer;
  qkey: number;
  mlid: number;
  mtuSelector: number;
  mtu: number;
  tclass: number;
  pkey: number;
  rateSelector: number;
  rate: number;
  packetLifeTimeSelector: number;
  packetLifeTime: number;
  sl: number;
  flowLabel: number;
  hopLimit: number;
  scope: number;
  /** JoinState bits (JoinState.FULL_MEMBER ...). */
  joinState: number;
  proxyJoin: boolean;
  /** The 23 bits after ProxyJoin: sent as 0, kept as read. */
  reserved49: number;
  /** OpenSM's 4 pad bytes that make the record 56 long. */
  pad: Buffer;
}

/** The record's fields, in wire order (also the reference buffer-layout engine's, in tests). */
export const MCMEMBER_RECORD_FIELDS: readonly FieldSpec[] = [
  f.blob(16, 'mgid'),
  f.blob(16, 'portGid'),
  f.u32be('qkey'),
  f.u16be('mlid'),
  f.bits8(['mtuSelector', 2], ['mtu', 6]),
  f.u8('tclass'),
  f.u16be('pkey'),
  f.bits8(['rateSelector', 2], ['rate', 6]),
  f.bits8(['packetLifeTimeSelector', 2], ['packetLifeTime', 6]),
  f.bits32(['sl', 4], ['flowLabel', 20], ['hopLimit', 8]),
  f.bits32(['scope', 4], ['joinState', 4], ['proxyJoin', 'flag'], ['reserved49', 23]),
  f.blob(4, 'pad'),
];

const MCMEMBER_RECORD = fixedRecord<McMemberRecord>('MCMemberRecord', MCMEMBER_RECORD_FIELDS, undefined, 'direct');
if (MCMEMBER_RECORD.span !== MCMEMBER_RECORD_SIZE) throw new Error('MCMemberRecord layout size');

export const mcMemberRecord: Codec<McMemberRecord> = fixedCodec(MCMEMBER_RECORD);
export const decodeMcMemberRecord = mcMemberRecord.decode;
export const encodeMcMemberRecord = mcMemberRecord.encode;

/** ComponentMask bits (IB_MCR_COMPMASK_*). */
export const McMemberMask = {
  MGID: 1n << 0n,
  PORT_GID: 1n << 1n,
  QKEY: 1n << 2n,
  MLID: 1n << 3n,
  MTU_SELECTOR: 1n << 4n,
  MTU: 1n << 5n,
  TCLASS: 1n << 6n,
  PKEY: 1n << 7n,
  RATE_SELECTOR: 1n << 8n,
  RATE: 1n << 9n,
  PACKET_LIFE_TIME_SELECTOR: 1n << 10n,
  PACKET_LIFE_TIME: 1n << 11n,
  SL: 1n << 12n,
  FLOW_LABEL: 1n << 13n,
  HOP_LIMIT: 1n << 14n,
  SCOPE: 1n << 15n,
  JOIN_STATE: 1n << 16n,
  PROXY_JOIN: 1n << 17n,
} as const;

/** Linux IPoIB's broadcast-group join: it cannot create the group (ipoib_mcast_join()). */
export const IPOIB_BROADCAST_JOIN_MASK =
  McMemberMask.MGID | McMemberMask.PORT_GID | McMemberMask.PKEY | McMemberMask.JOIN_STATE;

/** Linux IPoIB's join of any other group: the broadcast group's parameters, enough to create it (RFC 4391). */
export const IPOIB_GROUP_JOIN_MASK = IPOIB_BROADCAST_JOIN_MASK
  | McMemberMask.QKEY | McMemberMask.MTU_SELECTOR | McMemberMask.MTU | McMemberMask.TCLASS
  | McMemberMask.RATE_SELECTOR | McMemberMask.RATE | McMemberMask.SL | McMemberMask.FLOW_LABEL | McMemberMask.HOP_LIMIT;

/** What OpenSM needs in any join (JOIN_MC_COMP_MASK). */
export const MC_JOIN_REQUIRED_MASK = McMemberMask.MGID | McMemberMask.PORT_GID | McMemberMask.JOIN_STATE;

/** What OpenSM needs to create a group (REQUIRED_MC_CREATE_COMP_MASK). */
export const MC_CREATE_REQUIRED_MASK = MC_JOIN_REQUIRED_MASK | McMemberMask.QKEY | McMemberMask.TCLASS | McMemberMask.PKEY | McMemberMask.FLOW_LABEL | McMemberMask.SL;

export function makeMcMemberRecord(fields: Partial<McMemberRecord> = {}): McMemberRecord {
  return {
    mgid: Buffer.alloc(16), portGid: Buffer.alloc(16), qkey: 0, mlid: 0, mtuSelector: 0, mtu: 0, tclass: 0,
    pkey: 0, rateSelector: 0, rate: 0, packetLifeTimeSelector: 0, packetLifeTime: 0, sl: 0, flowLabel: 0,
    hopLimit: 0, scope: 0, joinState: 0, proxyJoin: false, reserved49: 0, pad: Buffer.alloc(4),
    ...fields,
  };
}

/** SubnAdmSet(MCMemberRecord): a join. */
export function mcJoinRequest(transactionId: bigint, record: McMemberRecord, componentMask: bigint): SaMad {
  return saRequest({ method: Method.SET, attributeId: SaAttr.MCMEMBER_RECORD, transactionId, componentMask, record: mcMemberRecord.encode(record) });
}

/** SubnAdmDelete(MCMemberRecord): a leave of the JoinState bits given. */
export function mcLeaveRequest(transactionId: bigint, record: McMemberRecord, componentMask: bigint): SaMad {
  return saRequest({ method: Method.DELETE, attributeId: SaAttr.MCMEMBER_RECORD, transactionId, componentMask, record: mcMemberRecord.encode(record) });
}

export function mcMemberRecordOf(m: SaMad): McMemberRecord {
  return saRecordOf(m, SaAttr.MCMEMBER_RECORD, mcMemberRecord);
}
