// Subnet Administration MAD: IBA vol. 1 §15.2.1 (SA header), §13.6.2 (RMPP header), laid out as
// OpenSM's ib_sa_mad_t and rdma-core's IB_SA_DATA_OFFS = 56 (IPOIB-FACTS §2.1). Responses follow
// OpenSM's osm_sa_respond() / osm_sa_send_error() so that a subnet manager built on these helpers
// answers the way the one Linux hosts meet does.

import { zeroed, type Codec } from '../../codec/contract.js';
import { WireError } from '../../codec/wire-error.js';
import {
  checkMadHeader, f, fixedCodec, fixedRecord, MAD_HEADER_FIELDS, madStatusClassCode,
  responseMethod, type FieldProblem, type MadHeader,
} from './mad.js';
import {
  ClassVersion, MAD_BASE_VERSION, MAD_SIZE, Method, MgmtClass, RmppFlag, RmppType, SA_ATTRIBUTE_OFFSET_UNIT, SA_DATA_SIZE,
  SA_HEADER_SIZE, SaStatus,
} from './mad-constants.js';

/**
 * ```
 *  0               1               2               3
 * +---------------+---------------+---------------+---------------+
 * |          common MAD header (24 bytes, see mad.ts)             |  0
 * +---------------+---------------+---------+-----+---------------+
 * |  RMPPVersion  |   RMPPType    |RRespTime|Flags|  RMPPStatus   | 24
 * +---------------+---------------+---------+-----+---------------+
 * |                        SegmentNumber                          | 28
 * +---------------------------------------------------------------+
 * |                   PayloadLength / NewWindowLast               | 32
 * +---------------------------------------------------------------+
 * |                        SM_Key (64 bits)                       | 36
 * +-------------------------------+-------------------------------+
 * |   AttributeOffset (8-byte)    |           Reserved            | 44
 * +-------------------------------+-------------------------------+
 * |                    ComponentMask (64 bits)                    | 48
 * +---------------------------------------------------------------+
 * |                   SA data (200 bytes) ...                     | 56
 * ```
 * `attributeOffset` counts 8-byte words: the stride between records in `data` (7 for an
 * MCMemberRecord, 8 for a PathRecord); 0 when no record follows.
 */
export interface SaMad extends MadHeader {
  rmppVersion: number;
  rmppType: number;
  /** Upper 5 bits of byte 26. */
  rmppRespTime: number;
  /** Lower 3 bits of byte 26: RmppFlag.ACTIVE | FIRST | LAST. */
  rmppFlags: number;
  rmppStatus: number;
  segmentNumber: number;
  /** PayloadLength in DATA segments, NewWindowLast in ACKs. */
  payloadLength: number;
  smKey: bigint;
  attributeOffset: number;
  /** Bytes 46-47: sent as 0, kept as read. */
  reserved2: number;
  componentMask: bigint;
  /** The 200 bytes after the SA header: records, attributeOffset * 8 bytes apart. */
  data: Buffer;
}

const P = 'SA';

function checkSaMad(m: SaMad): FieldProblem | undefined {
  const h = checkMadHeader(m);
  if (h) return h;
  if (m.mgmtClass !== MgmtClass.SUBN_ADM) {
    return { code: 'BAD_VALUE', field: 'mgmtClass', detail: `MgmtClass 0x${m.mgmtClass.toString(16)} is not SubnAdm (0x03)` };
  }
  if (m.classVersion !== ClassVersion.SUBN_ADM) {
    return { code: 'BAD_VALUE', field: 'classVersion', detail: `SA ClassVersion ${m.classVersion}, expected ${ClassVersion.SUBN_ADM}` };
  }
  // Within one MAD a record must fit the 200 data bytes; with RMPP active it may continue into
  // the next segment, which reassembly (not this codec) deals with.
  if ((m.rmppFlags & RmppFlag.ACTIVE) === 0 && m.attributeOffset * SA_ATTRIBUTE_OFFSET_UNIT > SA_DATA_SIZE) {
    return {
      code: 'BAD_LENGTH', field: 'attributeOffset',
      detail: `${m.attributeOffset} words = ${m.attributeOffset * SA_ATTRIBUTE_OFFSET_UNIT} bytes, the SA data holds ${SA_DATA_SIZE}`,
    };
  }
  return undefined;
}

export const SA_MAD_FIELDS = [
  ...MAD_HEADER_FIELDS,
  f.u8('rmppVersion'),
  f.u8('rmppType'),
  f.bits8(['rmppRespTime', 5], ['rmppFlags', 3]),
  f.u8('rmppStatus'),
  f.u32be('segmentNumber'),
  f.u32be('payloadLength'),
  f.u64be('smKey'),
  f.u16be('attributeOffset'),
  f.u16be('reserved2'),
  f.u64be('componentMask'),
  f.blob(SA_DATA_SIZE, 'data'),
];

const SA_MAD = fixedRecord<SaMad>(P, SA_MAD_FIELDS, checkSaMad, 'direct');
if (SA_MAD.span !== MAD_SIZE || SA_MAD.offsetOf('data') !== SA_HEADER_SIZE) throw new Error('SA MAD layout size');

/** The whole 256-byte SA MAD (class 0x03, version 2). */
export const saMad: Codec<SaMad> = fixedCodec(SA_MAD);
export const decodeSaMad = saMad.decode;
export const encodeSaMad = saMad.encode;

// ---------------------------------------------------------------------------------------------
// Building requests and responses.

export interface SaRequestInit {
  /** Method.GET, SET, DELETE, GET_TABLE ... */
  method: number;
  attributeId: number;
  transactionId: bigint;
  componentMask: bigint;
  /** The encoded record (e.g. pathRecord.encode(...)); it goes at data offset 0. */
  record: Buffer;
  attributeModifier?: number;
  smKey?: bigint;
}

/**
 * A request as Linux sa_query.c sends one: no RMPP, SM_Key 0, AttributeOffset 0 (a requester
 * sends one record, so there is no stride to state), the rest of the data zero.
 */
export function saRequest(init: SaRequestInit): SaMad {
  // One literal with every field in SA_MAD_FIELDS order (no spreads): one object shape for every
  // request, built once per SA query of every host at boot.
  return {
    baseVersion: MAD_BASE_VERSION,
    mgmtClass: MgmtClass.SUBN_ADM,
    classVersion: ClassVersion.SUBN_ADM,
    method: init.method,
    status: 0,
    classSpecific: 0,
    transactionId: init.transactionId,
    attributeId: init.attributeId,
    reserved: 0,
    attributeModifier: init.attributeModifier ?? 0,
    rmppVersion: 0,
    rmppType: RmppType.NONE,
    rmppRespTime: 0,
    rmppFlags: 0,
    rmppStatus: 0,
    segmentNumber: 0,
    payloadLength: 0,
    smKey: init.smKey ?? 0n,
    attributeOffset: 0,
    reserved2: 0,
    componentMask: init.componentMask,
    data: dataWith([init.record], 'record'),
  };
}

export function encodeSaRequest(init: SaRequestInit, buf?: Buffer, offset = 0): Buffer {
  return saMad.encode(saRequest(init), buf, offset);
}

/**
 * RMPP PayloadLength counts from SM_Key on: the 20 SA header bytes after the RMPP header, then the
 * records (UNVERIFIED against a capture).
 */
const SA_RMPP_PAYLOAD_HEADER = SA_HEADER_SIZE - 36;

const NO_RMPP = {
  rmppVersion: 0, rmppType: RmppType.NONE, rmppRespTime: 0, rmppFlags: 0, rmppStatus: 0, segmentNumber: 0, payloadLength: 0,
} as const;

function dataWith(records: readonly Buffer[], field: string): Buffer {
  const data = zeroed(SA_DATA_SIZE);
  let at = 0;
  for (const r of records) {
    if (at + r.length > SA_DATA_SIZE) {
      throw new WireError('INVALID_RECORD', P, field, -1, `${at + r.length} bytes of records, one SA MAD holds ${SA_DATA_SIZE} (RMPP segmentation is not implemented)`);
    }
    r.copy(data, at);
    at += r.length;
  }
  return data;
}

/**
 * The answer to `request`, the way OpenSM builds it:
 * - `status` is the whole 16-bit MAD Status; for SA errors use saStatusWord(SaStatus.NO_RECORDS).
 * - Method: the request's with the R bit; a Set is answered by GetResp (0x81), a Delete by
 *   DeleteResp (0x95), a GetTable by GetTableResp (0x92).
 * - TransactionID, AttributeID, AttributeModifier and ComponentMask are echoed; SM_Key is 0 (C15-0.1.5).
 * - On success the records (all the same size, a multiple of 8) follow one another from data
 *   offset 0 and AttributeOffset states their size; no records gives AttributeOffset 0.
 * - On error (status != 0) without records, the whole request MAD comes back, data included, as
 *   osm_sa_send_error() does; a GetTable error has AttributeOffset 0.
 * - A GetTableResp that fits one MAD is one RMPP DATA segment flagged ACTIVE|FIRST|LAST, as
 *   OpenSM without vendor RMPP sends it.
 */
export function saResponse(request: SaMad, status: number, records?: Buffer | readonly Buffer[]): SaMad {
  const list = records === undefined ? [] : Buffer.isBuffer(records) ? [records] : [...records];
  const method = responseMethod(request.method);
  const base: SaMad = { ...request, method, status, smKey: 0n, data: Buffer.from(request.data) };
  if (list.length === 0 && status !== 0) {
    return request.method === Method.GET_TABLE ? { ...base, attributeOffset: 0 } : base;
  }
  const size = list[0]?.length ?? 0;
  for (const r of list) {
    if (r.length !== size || size % SA_ATTRIBUTE_OFFSET_UNIT !== 0) {
      throw new WireError('INVALID_RECORD', P, 'records', -1, `records must share one size that is a multiple of 8, got ${r.length}`);
    }
  }
  const data = dataWith(list, 'records');
  const response: SaMad = { ...base, data, attributeOffset: size / SA_ATTRIBUTE_OFFSET_UNIT };
  if (method === Method.GET_TABLE_RESP) {
    return {
      ...response,
      rmppVersion: 1,
      rmppType: RmppType.DATA,
      rmppFlags: RmppFlag.ACTIVE | RmppFlag.FIRST | RmppFlag.LAST,
      rmppStatus: 0,
      segmentNumber: 1,
      payloadLength: SA_RMPP_PAYLOAD_HEADER + list.length * size,
    };
  }
  return response;
}

export function encodeSaResponse(request: SaMad, status: number, records?: Buffer | readonly Buffer[], buf?: Buffer, offset = 0): Buffer {
  return saMad.encode(saResponse(request, status, records), buf, offset);
}

/** The MAD Status word carrying an SA status code in its upper byte. */
export function saStatusWord(code: number): number {
  return (code & 0xff) << 8;
}

/** The SA status code (SaStatus) of a MAD Status word. */
export const saStatusOf = (status: number): number => madStatusClassCode(status);

const SA_STATUS_NAMES = new Map<number, string>(Object.entries(SaStatus).map(([k, v]) => [v, k]));

/** "NO_RECORDS", ..., or "0x0b" for a code the SA spec does not name. */
export function saStatusName(code: number): string {
  return SA_STATUS_NAMES.get(code) ?? `0x${code.toString(16).padStart(2, '0')}`;
}

/**
 * The records of a response: `data` cut every AttributeOffset * 8 bytes. A single-record answer
 * whose AttributeOffset is 0 (some requesters' own requests) gives the whole data as one record.
 */
export function saRecords(m: SaMad, count = Infinity): Buffer[] {
  const stride = m.attributeOffset * SA_ATTRIBUTE_OFFSET_UNIT;
  if (stride === 0) return [m.data];
  const out: Buffer[] = [];
  for (let at = 0; at + stride <= m.data.length && out.length < count; at += stride) out.push(m.data.subarray(at, at + stride));
  return out;
}

/**
 * Decodes the first record of an SA MAD with `codec`, after checking it carries `attributeId`:
 * the step between "an SA MAD arrived" and "here is the PathRecord".
 */
export function saRecordOf<T>(m: SaMad, attributeId: number, codec: Codec<T>): T {
  if (m.attributeId !== attributeId) {
    throw new WireError('BAD_VALUE', P, 'attributeId', 16,
      `AttributeID 0x${m.attributeId.toString(16).padStart(4, '0')}, expected 0x${attributeId.toString(16).padStart(4, '0')}`);
  }
  const stride = m.attributeOffset * SA_ATTRIBUTE_OFFSET_UNIT;
  const record = codec.decode(m.data);
  if (stride !== 0 && stride < codec.encodedLength(record)) {
    throw new WireError('BAD_LENGTH', P, 'attributeOffset', 44, `${stride}-byte records are too short for a ${codec.name}`);
  }
  return record;
}
