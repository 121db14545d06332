// SA PathRecord (attribute 0x0035), 64 bytes: IBA vol. 1 §15.2.5.16, laid out as OpenSM's
// ib_path_rec_t and Linux sa_query.c path_rec_table; component-mask bits as IB_PR_COMPMASK_*
// (IPOIB-FACTS §2.2). IPoIB asks for one to reach every unicast neighbour.

import { type Codec } from '../../codec/contract.js';
import { f, fixedCodec, fixedRecord, type FieldSpec } from './mad.js';
import { Method, SaAttr } from './mad-constants.js';
import { saRecordOf, saRequest, type SaMad } from './sa.js';

export const PATH_RECORD_SIZE = 64;

/**
 * ```
 *  0               1               2               3
 * +---------------+---------------+---------------+---------------+
 * |                      ServiceID (64 bits)                      |  0
 * +---------------------------------------------------------------+
 * |                          DGID (16 bytes)                      |  8
 * +---------------------------------------------------------------+
 * |                          SGID (16 bytes)                      | 24
 * +-------------------------------+-------------------------------+
 * |             DLID              |             SLID              | 40
 * +-+-----+---------------------------------------+---------------+
 * |R| rsv |            FlowLabel (20)             |   HopLimit    | 44
 * +-+-----+-------+-+-------------+---------------+---------------+
 * |    TClass     |V|  NumbPath   |             P_Key             | 48
 * +---------------+-+-----+-------+---+-----------+---+-----------+
 * |     QoSClass (12)     |  SL   |Sel|    MTU    |Sel|   Rate    | 52
 * +---+-----------+-------+-------+---+-----------+---+-----------+
 * |Sel|PktLifeTime|  Preference   |      reserved (6 bytes)       | 56
 * +---+-----------+---------------+-------------------------------+
 * ```
 * R = RawTraffic, V = Reversible, Sel = the 2-bit selector (Selector.*) of the 6-bit value after it.
 * OpenSM answers with selectors "exactly": MTU 2048 is the byte 0x84, 10 Gb/s 0x83, lifetime 0x92.
 */
export interface PathRecord {
  serviceId: bigint;
  /** 16-byte GIDs. */
  dgid: Buffer;
  sgid: Buffer;
  dlid: number;
  slid: number;
  rawTraffic: boolean;
  /** The 3 bits between RawTraffic and FlowLabel: sent as 0, kept as read. */
  reserved44: number;
  flowLabel: number;
  hopLimit: number;
  tclass: number;
  reversible: boolean;
  numbPath: number;
  pkey: number;
  qosClass: number;
  sl: number;
  mtuSelector: number;
  mtu: number;
  rateSelector: number;
  rate: number;
  packetLifeTimeSelector: number;
  packetLifeTime: number;
  preference: number;
  /** Bytes 58-63. */
  reserved58: Buffer;
}

/** The record's fields, in wire order (also the reference buffer-layout engine's, in tests). */
export const PATH_RECORD_FIELDS: readonly FieldSpec[] = [
  f.u64be('serviceId'),
  f.blob(16, 'dgid'),
  f.blob(16, 'sgid'),
  f.u16be('dlid'),
  f.u16be('slid'),
  f.bits32(['rawTraffic', 'flag'], ['reserved44', 3], ['flowLabel', 20], ['hopLimit', 8]),
  f.u8('tclass'),
  f.bits8(['reversible', 'flag'], ['numbPath', 7]),
  f.u16be('pkey'),
  f.bits16(['qosClass', 12], ['sl', 4]),
  f.bits8(['mtuSelector', 2], ['mtu', 6]),
  f.bits8(['rateSelector', 2], ['rate', 6]),
  f.bits8(['packetLifeTimeSelector', 2], ['packetLifeTime', 6]),
  f.u8('preference'),
  f.blob(6, 'reserved58'),
];

const PATH_RECORD = fixedRecord<PathRecord>('PathRecord', PATH_RECORD_FIELDS, undefined, 'direct');
if (PATH_RECORD.span !== PATH_RECORD_SIZE) throw new Error('PathRecord layout size');

export const pathRecord: Codec<PathRecord> = fixedCodec(PATH_RECORD);
export const decodePathRecord = pathRecord.decode;
export const encodePathRecord = pathRecord.encode;

/** ComponentMask bits of a PathRecord query (IB_PR_COMPMASK_*; Preference as Linux IB_SA_PATH_REC_PREFERENCE). */
export const PathRecordMask = {
  SERVICE_ID_MSB: 1n << 0n,
  SERVICE_ID_LSB: 1n << 1n,
  SERVICE_ID: 3n,
  DGID: 1n << 2n,
  SGID: 1n << 3n,
  DLID: 1n << 4n,
  SLID: 1n << 5n,
  RAW_TRAFFIC: 1n << 6n,
  FLOW_LABEL: 1n << 8n,
  HOP_LIMIT: 1n << 9n,
  TCLASS: 1n << 10n,
  REVERSIBLE: 1n << 11n,
  NUMB_PATH: 1n << 12n,
  PKEY: 1n << 13n,
  QOS_CLASS: 1n << 14n,
  SL: 1n << 15n,
  MTU_SELECTOR: 1n << 16n,
  MTU: 1n << 17n,
  RATE_SELECTOR: 1n << 18n,
  RATE: 1n << 19n,
  PACKET_LIFE_TIME_SELECTOR: 1n << 20n,
  PACKET_LIFE_TIME: 1n << 21n,
  PREFERENCE: 1n << 22n,
} as const;

/** What Linux IPoIB sets in its query (ipoib_main.c path_rec_start()). */
export const IPOIB_PATH_QUERY_MASK =
  PathRecordMask.DGID | PathRecordMask.SGID | PathRecordMask.NUMB_PATH | PathRecordMask.TCLASS | PathRecordMask.PKEY;

/** An all-zero PathRecord with the given fields: what a requester fills before masking. */
export function makePathRecord(fields: Partial<PathRecord> = {}): PathRecord {
  return {
    serviceId: 0n, dgid: Buffer.alloc(16), sgid: Buffer.alloc(16), dlid: 0, slid: 0,
    rawTraffic: false, reserved44: 0, flowLabel: 0, hopLimit: 0, tclass: 0, reversible: false, numbPath: 0,
    pkey: 0, qosClass: 0, sl: 0, mtuSelector: 0, mtu: 0, rateSelector: 0, rate: 0,
    packetLifeTimeSelector: 0, packetLifeTime: 0, preference: 0, reserved58: Buffer.alloc(6),
    ...fields,
  };
}

/** SubnAdmGet(PathRecord), as ipoib path_rec_start() asks it (mask and record given by the caller). */
export function pathRecordQuery(transactionId: bigint, record: PathRecord, componentMask = IPOIB_PATH_QUERY_MASK): SaMad {
  return saRequest({
    method: Method.GET,
    attributeId: SaAttr.PATH_RECORD,
    transactionId,
    componentMask,
    record: pathRecord.encode(record),
  });
}

/** The PathRecord of an SA MAD (request or response); WireError if it carries another attribute. */
export function pathRecordOf(m: SaMad): PathRecord {
  return saRecordOf(m, SaAttr.PATH_RECORD, pathRecord);
}
