// Communication Management messages (MgmtClass 0x07, ClassVersion 2): IBA vol. 1 §12.6, tables
// 106 REQ, 108 REJ, 110 REP, 111 RTU, 112 DREQ, 113 DREP. Byte and bit positions are those of the
// Linux kernel's include/rdma/ibta_vol1_c12.h (CM_REQ_*, CM_REP_* ... offsets after the 24-byte MAD
// header); what IPoIB connected mode puts in them is IPOIB-FACTS §4 (RFC 4755 as Linux implements it).

import { type Codec } from '../../codec/contract.js';
import { need } from '../../codec/checked.js';
import { WireError } from '../../codec/wire-error.js';
import {
  checkMadHeader, f, fixedCodec, fixedRecord, MAD_HEADER_FIELDS, madRequestHeader, type FieldProblem, type FixedRecord,
  type MadHeader,
} from './mad.js';
import { ClassVersion, CmAttr, IPOIB_CM_BUF_SIZE, MAD_DATA_SIZE, MAD_HEADER_SIZE, MAD_SIZE, Method, MgmtClass } from './mad-constants.js';

/**
 * REQ, MAD data bytes 0-231 (ibta_vol1_c12.h "Table 106 REQ Message Contents"):
 * ```
 *   0 LocalCommID(32)            4 reserved(32)               8 ServiceID(64)
 *  16 LocalCAGUID(64)           24 reserved(32)              28 LocalQ_Key(32)
 *  32 LocalQPN(24) ResponderResources(8)        36 LocalEECN(24) InitiatorDepth(8)
 *  40 RemoteEECN(24) RemoteCMResponseTimeout(5) TransportServiceType(2) EndToEndFlowControl(1)
 *  44 StartingPSN(24) LocalCMResponseTimeout(5) RetryCount(3)
 *  48 P_Key(16)  50 PathMTU(4) RDCExists(1) RNRRetryCount(3)  51 MaxCMRetries(4) SRQ(1) ExtTransportType(3)
 *  52 PrimaryLocalPortLID(16)   54 PrimaryRemotePortLID(16)
 *  56 PrimaryLocalPortGID(128)  72 PrimaryRemotePortGID(128)
 *  88 PrimaryFlowLabel(20) reserved(6) PrimaryPacketRate(6)
 *  92 PrimaryTrafficClass(8)    93 PrimaryHopLimit(8)
 *  94 PrimarySL(4) PrimarySubnetLocal(1) reserved(3)   95 PrimaryLocalACKTimeout(5) reserved(3)
 *  96 alternate path (44 bytes, same shape as 52-95)  140 PrivateData (92 bytes)
 * ```
 * IPoIB fills localCommId, serviceId (IPOIB_CM_SERVICE_ID_LINUX | peer UD QPN), localCaGuid, localQpn
 * (its RC QP), startingPsn (0), pkey, the primary path and privateData (ipoibCmData); Linux also sets
 * responderResources 4, both CM response timeouts 20, retryCount 0, rnrRetryCount 0, maxCmRetries 15.
 * IPoIB never sets an alternate path, so those 44 bytes stay raw.
 */
export interface CmReq {
  localCommId: number;
  reserved4: Buffer;
  serviceId: bigint;
  localCaGuid: bigint;
  reserved24: Buffer;
  localQkey: number;
  localQpn: number;
  responderResources: number;
  localEecn: number;
  initiatorDepth: number;
  remoteEecn: number;
  remoteCmResponseTimeout: number;
  /** 0 RC, 1 UC, 2 RD, 3 extended (then extendedTransportType). */
  transportServiceType: number;
  endToEndFlowControl: boolean;
  startingPsn: number;
  localCmResponseTimeout: number;
  retryCount: number;
  pkey: number;
  /** IB MTU enum (IbMtu). */
  pathMtu: number;
  rdcExists: boolean;
  rnrRetryCount: number;
  maxCmRetries: number;
  srq: boolean;
  extendedTransportType: number;
  primaryLocalLid: number;
  primaryRemoteLid: number;
  primaryLocalGid: Buffer;
  primaryRemoteGid: Buffer;
  primaryFlowLabel: number;
  primaryReserved88: number;
  primaryPacketRate: number;
  primaryTrafficClass: number;
  primaryHopLimit: number;
  primarySl: number;
  primarySubnetLocal: boolean;
  primaryReserved94: number;
  primaryLocalAckTimeout: number;
  primaryReserved95: number;
  /** Bytes 96-139, the alternate path, as read. */
  alternatePath: Buffer;
  /** 92 bytes; IPoIB's 8 come first (ipoibCmData), the rest zero. */
  privateData: Buffer;
}

/**
 * REP (Table 110):
 * ```
 *   0 LocalCommID  4 RemoteCommID  8 LocalQ_Key
 *  12 LocalQPN(24) reserved(8)    16 LocalEECN(24) reserved(8)    20 StartingPSN(24) reserved(8)
 *  24 ResponderResources(8)  25 InitiatorDepth(8)
 *  26 TargetACKDelay(5) FailoverAccepted(2) EndToEndFlowControl(1)   27 RNRRetryCount(3) SRQ(1) reserved(4)
 *  28 LocalCAGUID(64)  36 PrivateData (196 bytes)
 * ```
 */
export interface CmRep {
  localCommId: number;
  remoteCommId: number;
  localQkey: number;
  localQpn: number;
  reserved15: number;
  localEecn: number;
  reserved19: number;
  startingPsn: number;
  reserved23: number;
  responderResources: number;
  initiatorDepth: number;
  targetAckDelay: number;
  failoverAccepted: number;
  endToEndFlowControl: boolean;
  rnrRetryCount: number;
  srq: boolean;
  reserved27: number;
  localCaGuid: bigint;
  privateData: Buffer;
}

/** RTU (Table 111) and DREP (Table 113) share one shape: two comm ids and 224 bytes of private data. */
export interface CmRtu {
  localCommId: number;
  remoteCommId: number;
  privateData: Buffer;
}
export type CmDrep = CmRtu;

/**
 * REJ (Table 108):
 * ```
 *   0 LocalCommID  4 RemoteCommID  8 MessageREJected(2) reserved(6)  9 RejectedInfoLength(7) reserved(1)
 *  10 Reason(16)  12 ARI (72 bytes)  84 PrivateData (148 bytes)
 * ```
 */
export interface CmRej {
  localCommId: number;
  remoteCommId: number;
  /** 0 REQ, 1 REP, 2 other (CmRejectedMessage). */
  messageRejected: number;
  reserved8: number;
  /** How many bytes of `ari` mean something; at most 72. */
  rejectedInfoLength: number;
  reserved9: number;
  reason: number;
  ari: Buffer;
  privateData: Buffer;
}

/**
 * DREQ (Table 112):
 * ```
 *   0 LocalCommID  4 RemoteCommID  8 RemoteQPN/EECN(24) reserved(8)  12 PrivateData (220 bytes)
 * ```
 */
export interface CmDreq {
  localCommId: number;
  remoteCommId: number;
  remoteQpn: number;
  reserved11: number;
  privateData: Buffer;
}

export const CmRejectedMessage = { REQ: 0, REP: 1, OTHER: 2 } as const;

/** REJ reasons (include/rdma/ib_cm.h enum ib_cm_rej_reason), those an IPoIB peer meets. */
export const CmRejReason = {
  NO_QP: 1,
  NO_RESOURCES: 3,
  TIMEOUT: 4,
  UNSUPPORTED: 5,
  INVALID_COMM_ID: 6,
  INVALID_SERVICE_ID: 8,
  STALE_CONN: 10,
  INVALID_MTU: 26,
  CONSUMER_DEFINED: 28,
  INVALID_CLASS_VERSION: 31,
} as const;

/** Each message is 232 bytes: the whole MAD data. */
export const CM_MESSAGE_SIZE = MAD_DATA_SIZE;
export const CM_REQ_PRIVATE_DATA_SIZE = 92;
export const CM_REP_PRIVATE_DATA_SIZE = 196;
export const CM_REJ_ARI_SIZE = 72;

const REQ = fixedRecord<CmReq>('CM REQ', [
  f.u32be('localCommId'),
  f.blob(4, 'reserved4'),
  f.u64be('serviceId'),
  f.u64be('localCaGuid'),
  f.blob(4, 'reserved24'),
  f.u32be('localQkey'),
  f.bits32(['localQpn', 24], ['responderResources', 8]),
  f.bits32(['localEecn', 24], ['initiatorDepth', 8]),
  f.bits32(['remoteEecn', 24], ['remoteCmResponseTimeout', 5], ['transportServiceType', 2], ['endToEndFlowControl', 'flag']),
  f.bits32(['startingPsn', 24], ['localCmResponseTimeout', 5], ['retryCount', 3]),
  f.u16be('pkey'),
  f.bits8(['pathMtu', 4], ['rdcExists', 'flag'], ['rnrRetryCount', 3]),
  f.bits8(['maxCmRetries', 4], ['srq', 'flag'], ['extendedTransportType', 3]),
  f.u16be('primaryLocalLid'),
  f.u16be('primaryRemoteLid'),
  f.blob(16, 'primaryLocalGid'),
  f.blob(16, 'primaryRemoteGid'),
  f.bits32(['primaryFlowLabel', 20], ['primaryReserved88', 6], ['primaryPacketRate', 6]),
  f.u8('primaryTrafficClass'),
  f.u8('primaryHopLimit'),
  f.bits8(['primarySl', 4], ['primarySubnetLocal', 'flag'], ['primaryReserved94', 3]),
  f.bits8(['primaryLocalAckTimeout', 5], ['primaryReserved95', 3]),
  f.blob(44, 'alternatePath'),
  f.blob(CM_REQ_PRIVATE_DATA_SIZE, 'privateData'),
]);

const REP = fixedRecord<CmRep>('CM REP', [
  f.u32be('localCommId'),
  f.u32be('remoteCommId'),
  f.u32be('localQkey'),
  f.bits32(['localQpn', 24], ['reserved15', 8]),
  f.bits32(['localEecn', 24], ['reserved19', 8]),
  f.bits32(['startingPsn', 24], ['reserved23', 8]),
  f.u8('responderResources'),
  f.u8('initiatorDepth'),
  f.bits8(['targetAckDelay', 5], ['failoverAccepted', 2], ['endToEndFlowControl', 'flag']),
  f.bits8(['rnrRetryCount', 3], ['srq', 'flag'], ['reserved27', 4]),
  f.u64be('localCaGuid'),
  f.blob(CM_REP_PRIVATE_DATA_SIZE, 'privateData'),
]);

const RTU = fixedRecord<CmRtu>('CM RTU', [f.u32be('localCommId'), f.u32be('remoteCommId'), f.blob(224, 'privateData')]);
const DREP = fixedRecord<CmDrep>('CM DREP', [f.u32be('localCommId'), f.u32be('remoteCommId'), f.blob(224, 'privateData')]);

function checkRej(r: CmRej): FieldProblem | undefined {
  if (r.rejectedInfoLength > CM_REJ_ARI_SIZE) {
    return { code: 'BAD_LENGTH', field: 'rejectedInfoLength', detail: `${r.rejectedInfoLength} bytes of ARI, the field holds ${CM_REJ_ARI_SIZE}` };
  }
  return undefined;
}

const REJ = fixedRecord<CmRej>('CM REJ', [
  f.u32be('localCommId'),
  f.u32be('remoteCommId'),
  f.bits8(['messageRejected', 2], ['reserved8', 6]),
  f.bits8(['rejectedInfoLength', 7], ['reserved9', 1]),
  f.u16be('reason'),
  f.blob(CM_REJ_ARI_SIZE, 'ari'),
  f.blob(148, 'privateData'),
], checkRej);

const DREQ = fixedRecord<CmDreq>('CM DREQ', [
  f.u32be('localCommId'),
  f.u32be('remoteCommId'),
  f.bits32(['remoteQpn', 24], ['reserved11', 8]),
  f.blob(220, 'privateData'),
]);

for (const r of [REQ, REP, RTU, REJ, DREQ, DREP] as FixedRecord<object>[]) {
  if (r.span !== CM_MESSAGE_SIZE) throw new Error(`${r.protocol} layout is ${r.span} bytes`);
}

/** Message bodies: decode/encode the 232 bytes after the MAD header. */
export const cmReq: Codec<CmReq> = fixedCodec(REQ);
export const cmRep: Codec<CmRep> = fixedCodec(REP);
export const cmRtu: Codec<CmRtu> = fixedCodec(RTU);
export const cmRej: Codec<CmRej> = fixedCodec(REJ);
export const cmDreq: Codec<CmDreq> = fixedCodec(DREQ);
export const cmDrep: Codec<CmDrep> = fixedCodec(DREP);

// ---------------------------------------------------------------------------------------------
// IPoIB's private data.

/**
 * struct ipoib_cm_data (drivers/infiniband/ulp/ipoib/ipoib.h), the first 8 bytes of REQ and REP
 * private data:
 * ```
 *  0 qpn (32): the sender's UD QPN; the receiver ignores the top byte
 *  4 mtu (32): the sender's receive MTU including the 4-byte IPoIB header (65524)
 * ```
 */
export interface IpoibCmData {
  qpn: number;
  mtu: number;
}

export const IPOIB_CM_DATA_SIZE = 8;
const IPOIB_CM_DATA = fixedRecord<IpoibCmData>('IPoIB CM data', [f.u32be('qpn'), f.u32be('mtu')]);
export const ipoibCmData: Codec<IpoibCmData> = fixedCodec(IPOIB_CM_DATA);

/** A REQ (92) or REP (196) private-data field holding IPoIB's 8 bytes, the rest zero as Linux sends it. */
export function ipoibPrivateData(udQpn: number, size: number, mtu = IPOIB_CM_BUF_SIZE): Buffer {
  const out = Buffer.alloc(size);
  ipoibCmData.encode({ qpn: udQpn, mtu }, out, 0);
  return out;
}

/** The peer's UD QPN and receive MTU from REQ/REP private data (top byte of the QPN dropped, as Linux does). */
export function ipoibCmDataOf(privateData: Buffer): IpoibCmData {
  const d = ipoibCmData.decode(privateData);
  return { qpn: d.qpn & 0xffffff, mtu: d.mtu };
}

// ---------------------------------------------------------------------------------------------
// CM messages inside their MAD.

export type CmMessage =
  | { kind: 'REQ'; body: CmReq }
  | { kind: 'REP'; body: CmRep }
  | { kind: 'RTU'; body: CmRtu }
  | { kind: 'REJ'; body: CmRej }
  | { kind: 'DREQ'; body: CmDreq }
  | { kind: 'DREP'; body: CmDrep }
  /** MRA, LAP, APR, SIDR, ClassPortInfo and unknown attributes: the 232 data bytes as read. */
  | { kind: 'other'; body: Buffer };

type KnownKind = Exclude<CmMessage['kind'], 'other'>;

const CM_ATTR_OF: Record<KnownKind, number> = {
  REQ: CmAttr.REQ, REP: CmAttr.REP, RTU: CmAttr.RTU, REJ: CmAttr.REJ, DREQ: CmAttr.DREQ, DREP: CmAttr.DREP,
};
const CM_BODY: Record<KnownKind, FixedRecord<object>> = {
  REQ: REQ as FixedRecord<object>, REP: REP as FixedRecord<object>, RTU: RTU as FixedRecord<object>,
  REJ: REJ as FixedRecord<object>, DREQ: DREQ as FixedRecord<object>, DREP: DREP as FixedRecord<object>,
};
const KIND_OF = new Map<number, KnownKind>(Object.entries(CM_ATTR_OF).map(([k, v]) => [v, k as KnownKind]));

/** A CM MAD: the common header (MgmtClass 0x07, ClassVersion 2) and the message its AttributeID names. */
export interface CmMad extends MadHeader {
  message: CmMessage;
}

const P = 'CM';
const CM_HEADER = fixedRecord<MadHeader>(P, MAD_HEADER_FIELDS, (h) => checkMadHeader(h) ?? checkCmHeader(h));

function checkCmHeader(h: MadHeader): FieldProblem | undefined {
  if (h.mgmtClass !== MgmtClass.COMM_MGMT) {
    return { code: 'BAD_VALUE', field: 'mgmtClass', detail: `MgmtClass 0x${h.mgmtClass.toString(16)} is not CM (0x07)` };
  }
  if (h.classVersion !== ClassVersion.COMM_MGMT) {
    return { code: 'BAD_VALUE', field: 'classVersion', detail: `CM ClassVersion ${h.classVersion}, expected ${ClassVersion.COMM_MGMT}` };
  }
  return undefined;
}

export function decodeCmMad(buf: Buffer, offset = 0): CmMad {
  const header = CM_HEADER.decode(buf, offset);
  const at = offset + MAD_HEADER_SIZE;
  const kind = KIND_OF.get(header.attributeId);
  let message: CmMessage;
  if (kind === undefined) {
    need(buf, at, MAD_DATA_SIZE, P, 'data');
    message = { kind: 'other', body: Buffer.from(buf.subarray(at, at + MAD_DATA_SIZE)) };
  } else {
    message = { kind, body: CM_BODY[kind].decode(buf, at) } as CmMessage;
  }
  return { ...header, message };
}

export function encodeCmMad(value: CmMad, buf?: Buffer, offset = 0): Buffer {
  const out = buf ?? Buffer.alloc(offset + MAD_SIZE);
  if (buf !== undefined && (!Number.isInteger(offset) || offset < 0 || offset + MAD_SIZE > buf.length)) {
    throw new WireError('BUFFER_TOO_SMALL', P, 'buffer', offset, `needs ${MAD_SIZE} bytes at offset ${offset}, buffer has ${buf.length}`);
  }
  const { message, ...header } = value;
  const known = KIND_OF.get(header.attributeId);
  if (message.kind === 'other' ? known !== undefined : CM_ATTR_OF[message.kind] !== header.attributeId) {
    throw new WireError('INVALID_RECORD', P, 'attributeId', -1,
      `AttributeID 0x${header.attributeId.toString(16)} does not name a ${message.kind} message`);
  }
  // Validate everything before writing anything, so a bad record leaves the caller's buffer alone.
  const scratch = Buffer.alloc(MAD_SIZE);
  CM_HEADER.write(header, scratch, 0);
  if (message.kind === 'other') {
    if (!(message.body instanceof Uint8Array) || message.body.length !== MAD_DATA_SIZE) {
      throw new WireError('INVALID_RECORD', P, 'message', -1, `an unknown CM message must be ${MAD_DATA_SIZE} bytes`);
    }
    Buffer.from(message.body).copy(scratch, MAD_HEADER_SIZE);
  } else {
    CM_BODY[message.kind].write(message.body, scratch, MAD_HEADER_SIZE);
  }
  scratch.copy(out, offset);
  return out;
}

export const cmMad: Codec<CmMad> = {
  name: P,
  encodedLength: () => MAD_SIZE,
  encode: encodeCmMad,
  decode: decodeCmMad,
};

/** A CM MAD as Linux cm_format_mad_hdr() heads it: ComMgtSend, status 0, the caller's TransactionID. */
export function cmMessageMad(transactionId: bigint, message: CmMessage, attributeId?: number): CmMad {
  const attr = message.kind === 'other' ? attributeId : CM_ATTR_OF[message.kind];
  if (attr === undefined) throw new WireError('INVALID_RECORD', P, 'attributeId', -1, 'an unknown CM message needs its AttributeID');
  return {
    ...madRequestHeader({
      mgmtClass: MgmtClass.COMM_MGMT, classVersion: ClassVersion.COMM_MGMT, method: Method.SEND, attributeId: attr, transactionId,
    }),
    message,
  };
}
