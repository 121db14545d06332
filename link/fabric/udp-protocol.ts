// The control protocol between `ipoib-fabric` (switch + SM daemon) and the hosts whose HCA ports
// are plugged into it over UDP. The project's own protocol: the IB frames it carries are exactly
// the bytes link/wire encodes (LRH .. ICRC ‖ VCRC, IPOIB-FACTS §1.1), except that the per-hop VCRC
// may be left 0: nothing on the path checks it, and the daemon's switch stamps it where a frame is
// captured (packet-view.ts buildPacket says why); the rest is defined here.
//
// Transport: UDP, default daemon address 127.0.0.1:18515 (DEFAULT_FABRIC_PORT). 18515 is the port
// number perftest uses for its out-of-band exchange on TCP; on UDP it is unassigned, and nothing
// else of an IB installation listens there. 4791/udp (RoCEv2) is deliberately not used.
//
// Every datagram starts with the same 8-byte header, big-endian:
//
//    0               1               2               3
//   +---------------+---------------+---------------+---------------+
//   |  magic 0x49 'I'   0x46 'F'    |  version (1)  |     type      |
//   +---------------+---------------+---------------+---------------+
//   |        id: session (session messages) or request id           |
//   +---------------------------------------------------------------+
//
// type  name         dir   id        body
// 0x01  ATTACH       h->d  request   portNum u8, mtuCap u8, rate u8, flags u8 (bit 0: nodeGuid
//                                    given, bit 1: portGuid given), nodeGuid u64, portGuid u64,
//                                    hostNameLength u8 (1..64), hostName (UTF-8)
// 0x02  ATTACH-OK    d->h  request   session u32 (never 0), switchPort u16, keepaliveMs u16,
//                                    timeoutMs u32, nodeGuid u64, portGuid u64, PORT-INFO
// 0x03  ATTACH-ERR   d->h  request   code u8 (AttachErrorCode), textLength u8, text (UTF-8)
// 0x04  KEEPALIVE    h->d  session   (none). The daemon answers with PORT-STATE.
// 0x05  DETACH       both  session   reason u8 (DetachReason)
// 0x06  DATA         both  session   frameCount u16 (1..4096), then each frame: length u16
//                                    (1..8190), bytes
// 0x07  PORT-STATE   d->h  session   seq u32 (per session, grows by 1 per change), PORT-INFO
// 0x08  STATUS       ?->d  request   (none)
// 0x09  STATUS-RESP  d->?  request   index u16, count u16 (1..1024), chunkLength u16, a chunk of
//                                    the JSON status (the chunks in index order are one UTF-8 text)
// 0x0A  ERROR        d->h  session   code u8 (ErrorCode), textLength u8, text (UTF-8)
// 0x0B  SET-MCAST-FILTER h->d session seq u32, mlid u16 (0xC000..0xFFFE), flags u8 (bit 0: a
//                                    filter follows, else remove it; bit 1: scope `only` given;
//                                    bit 2: only.multicastGrh), reserved u8 (0), then with bit 1:
//                                    pkey u16, qkey u32, minPayload u32 (0..65536); with bit 0:
//                                    ruleCount u16 (0..4096), each rule: matchCount u8, each match:
//                                    offset u16, length u8 (1..64), flags u8 (bit 0: negate, bit 1:
//                                    mask given), value (length bytes), mask (length bytes, if given)
// 0x0C  MCAST-FILTER-OK d->h session seq u32, mlid u16: the SET-MCAST-FILTER with this seq is in
//                                    force (or was overtaken by a newer one)
// 0x0D  DATA-MULTI   d->h  count     count (2..4096) sections, each the body of a DATA for one
//                                    session: session u32, frameCount u16 (1..4096), then each
//                                    frame: length u16 (1..8190), bytes
//
// PORT-INFO (IBA 14.2.5.6 PortInfo, the fields port-info.ts keeps), 30 + 2 * pkeyCount bytes:
//   state u8 (1 DOWN, 2 INIT, 3 ARMED, 4 ACTIVE), portNum u8, lmc u8, smSl u8, lid u16, smLid u16,
//   mtuCap u8, activeMtu u8, rate u8, subnetTimeout u8, pkeyCount u8 (0..128), reserved u8 (0),
//   portGuid u64, subnetPrefix u64, pkeys u16[pkeyCount]
//
// Sessions. A host sends ATTACH (one per HCA port) and retries it with the same request id until
// ATTACH-OK or ATTACH-ERR; the daemon answers a retry from the same address with the same
// ATTACH-OK. The session id then names the port in every message; the daemon accepts a session's
// messages only from the address that attached it. The host sends KEEPALIVE every keepaliveMs
// (1000 ms by default); when the daemon hears nothing for timeoutMs (3000 ms by default) from the
// address a session attached from (any message of any of that address's live sessions counts: one
// socket, one process), the session is timed out: its port goes DOWN and leaves its multicast
// groups, and the daemon sends DETACH (reason TIMED_OUT) in case the host is still there. The host
// likewise counts any message from the daemon as word for all its sessions. A timed-out port stays listed as DOWN
// until its GUID attaches again (which replaces it) or it has been gone 5 minutes. DATA or
// KEEPALIVE on a session the daemon does not know gets ERROR NOT_ATTACHED (at most 10 per second
// per source address), so a host whose daemon restarted learns it must attach again.
//
// Early multicast filters (multicast-filter.ts; PortLink.setMulticastFilter). A host asks the
// daemon's switch to hand its port only the packets to `mlid` that match the filter (the switch
// still counts the others as delivered, and notListened). A filter is an optimisation: a host
// without one receives everything and drops it itself. But a stale filter is wrong (it declines
// what the host now listens to), so the host numbers its changes (seq, per session, serial
// arithmetic as PORT-STATE), resends the newest one per MLID every 200 ms until MCAST-FILTER-OK
// names that seq, and sends every filter again after a new ATTACH-OK (a restarted daemon, or one
// that timed the port out, knows none). The daemon applies a seq only if it is newer than the last
// one it applied for that MLID, and acknowledges every well-formed one. A filter that does not fit
// one datagram (or whose offsets exceed u16) is sent as a removal: the port then receives
// everything. A session's filters go away with it. SET-MCAST-FILTER leaves before the DATA queued
// in the same event-loop turn, so on loopback a widened filter is in force before the frames that
// may provoke an answer it lets through.
//
// DATA carries a batch: frames queued during one event-loop turn for the same session travel in
// one datagram of at most maxBatchBytes (by default 65,507 bytes towards a loopback address, where
// IP never fragments a datagram, and 16 KiB elsewhere, where a lost fragment loses the whole
// datagram), which is what lets the UDP fabric keep up with the kernel's datagram rate. A datagram
// is sent as a gather list: large frames go to the kernel from where they lie, and the daemon
// forwards a run of frames it received in one datagram as one slice of it, length prefixes
// included, without copying. Frames keep their order within a session; UDP may lose or reorder
// datagrams, which IB UD allows too. Towards a host socket with several sessions (a process with
// many ports: a host group of ipoib-cluster), the daemon puts the batches of one turn for all of
// them into DATA-MULTI datagrams, a section per session, each section the bytes a DATA would carry
// after its first 4 bytes: a broadcast reaching a thousand ports in one process costs a few datagrams
// instead of a thousand. A host validates the whole datagram before delivering any frame, then
// treats each section as a DATA of its session (an unknown session's section is counted and
// skipped). Hosts of this protocol version accept DATA-MULTI; the daemon never receives one.
//
// Validation. A datagram with a wrong magic, an unknown version or type, a length that contradicts
// its fields (bytes left over after the message included), or text that is not UTF-8 is dropped and counted under a DropCode; a DATA frame is
// checked by the daemon as an HCA's link would (LRH, lengths, transport headers, opcode, ICRC) and
// a bad one is counted under the sending port's discards (counters.ts DropReason) and dropped before
// the switch, so it never reaches a capture or another host.
import type { Codec } from '../../codec/contract.js';
import { checkUint, need } from '../../codec/checked.js';
import { WireError } from '../../codec/wire-error.js';
import { isMulticastLid } from '../wire/ib-constants.js';
import { validateMulticastFilter, type ByteMatch, type MulticastFilter } from './multicast-filter.js';
import { PORT_STATE_CODE, type PortInfo, type PortState } from './port-info.js';

const PROTOCOL = 'fabric-control';

export const DEFAULT_FABRIC_PORT = 18515;
export const DEFAULT_FABRIC_HOST = '127.0.0.1';
export const FABRIC_MAGIC = 0x4946;
export const FABRIC_PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 8;
export const DEFAULT_KEEPALIVE_MS = 1000;
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 3000;
export const DEFAULT_FORGET_AFTER_MS = 300_000;
export const DEFAULT_MAX_BATCH_BYTES = 16384;
/** What both ends ask the kernel for (TOOLCHAIN.md: the 212,992-byte default overflows). */
export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** PktLen is 11 bits of 4-byte words, plus the 2-byte VCRC. */
export const MAX_FRAME_BYTES = 0x7ff * 4 + 2;
export const MAX_HOST_NAME_BYTES = 64;
export const MAX_PKEYS = 128;
export const MAX_STATUS_CHUNKS = 1024;
export const STATUS_CHUNK_BYTES = 32_000;
export const MAX_FRAMES_PER_DATAGRAM = 4096;
/** Rules one SET-MCAST-FILTER may carry (a host's filter grows by one rule per neighbour). */
export const MAX_FILTER_RULES = 4096;
export const MAX_FILTER_MATCH_BYTES = 64;
/** The largest UDP/IPv4 payload: a SET-MCAST-FILTER longer than this cannot be sent. */
export const MAX_DATAGRAM_BYTES = 65507;
const FILTER_FIXED = 8;
const FILTER_SCOPE = 10;

/**
 * DATA datagrams on loopback: the largest UDP/IPv4 payload (65,535 - 20 - 8). Loopback's MTU is
 * 65,536, so such a datagram is never fragmented, and every frame it carries shares the per-datagram
 * costs (a system call at each end, Node's 64 KiB receive allocation, one 'message' event).
 */
export const LOOPBACK_MAX_BATCH_BYTES = 65507;

/** The batch limit towards `address` when none is configured: see DEFAULT_MAX_BATCH_BYTES and LOOPBACK_MAX_BATCH_BYTES. */
export function defaultMaxBatchBytes(address: string): number {
  return /^127\./.test(address) || address === '::1' ? LOOPBACK_MAX_BATCH_BYTES : DEFAULT_MAX_BATCH_BYTES;
}

/** Frames queued for one peer, to go out together as one DATA datagram (see "Batching" above). */
export interface FrameQueue {
  out: Buffer[];
  /** Bytes the queued frames take in a DATA datagram: 2-byte length + frame, each. */
  outBytes: number;
}

/** Whether `frame` no longer fits in the datagram being built: the caller flushes first. */
export function batchIsFull(q: FrameQueue, frame: Buffer, maxBatchBytes: number): boolean {
  return q.out.length > 0 && (HEADER_BYTES + 2 + q.outBytes + 2 + frame.length > maxBatchBytes
    || q.out.length >= MAX_FRAMES_PER_DATAGRAM);
}

export function queueFrame(q: FrameQueue, frame: Buffer): void {
  q.out.push(frame);
  q.outBytes += 2 + frame.length;
}

/**
 * Frames up to this size are copied into the datagram; larger ones are handed to the kernel where
 * they lie (one more gather entry, no copy). It also bounds the gather list: every entry that is not
 * the datagram's own scratch is longer than this, so a 65,507-byte datagram has fewer than 260
 * entries, far below the kernel's 1024 (UIO_MAXIOV).
 */
const COPY_MAX_BYTES = 512;

/**
 * DATA datagrams received by this end, by their memory: a frame inside one is preceded by its
 * 2-byte length, so a run of such frames going to the same peer is forwarded as one slice of the
 * received bytes, prefixes included (Node gives every received datagram its own ArrayBuffer).
 * A WeakMap does (and tests use one), but the daemon keeps a RecentDatagrams: a WeakMap keyed by
 * every received ArrayBuffer grows until a full GC clears it, and at a few thousand datagrams/s
 * that growth alone made the daemon run a mark-compact GC every ~50 ms.
 */
export interface ReceivedDatagrams {
  get(arrayBuffer: ArrayBufferLike): Buffer | undefined;
}

/**
 * The DATA datagrams received since the frames queued from them were last sent: the owner clears it
 * when no frame is queued (its flush), so it holds about a turn's datagrams. A frame not found goes
 * out as its own gather entry (still not copied); one found is checked against the datagram's
 * bounds and its length prefix (takeDataDatagram), so a stale entry cannot misplace it.
 */
export class RecentDatagrams implements ReceivedDatagrams {
  private readonly list: Buffer[] = [];
  private last: Buffer | undefined;

  add(datagram: Buffer): void {
    this.list.push(datagram);
  }

  get(arrayBuffer: ArrayBufferLike): Buffer | undefined {
    const l = this.last;
    if (l !== undefined && l.buffer === arrayBuffer) return l;
    for (let i = this.list.length - 1; i >= 0; i--) {
      const b = this.list[i]!;
      if (b.buffer === arrayBuffer) {
        this.last = b;
        return b;
      }
    }
    return undefined;
  }

  clear(): void {
    this.list.length = 0;
    this.last = undefined;
  }
}

/** The offset of `frame` in `src` when the two bytes before it there are its length; else -1. */
function prefixedOffset(src: Buffer, frame: Buffer): number {
  const o = frame.byteOffset - src.byteOffset;
  if (o < HEADER_BYTES + 4 || o + frame.length > src.length) return -1;
  return ((src[o - 2]! << 8) | src[o - 1]!) === frame.length ? o : -1;
}

/**
 * The DATA datagram carrying every queued frame under `session`, as a gather list for
 * socket.send (sendmsg's iovec): one scratch Buffer holds the header, the frame count, the length
 * prefixes and the small frames; large frames are referenced, not copied, and frames still inside a
 * datagram this end received (`received`) go out as slices of it. Empties the queue.
 */
export function takeDataDatagram(q: FrameQueue, session: number, received?: ReceivedDatagrams): Buffer[] {
  const frames = q.out;
  const n = frames.length;
  let scratchBytes = HEADER_BYTES + 2;
  for (let i = 0; i < n; i++) {
    const f = frames[i]!;
    if (f.length > COPY_MAX_BYTES) {
      const src = received?.get(f.buffer);
      if (src === undefined || prefixedOffset(src, f) < 0) scratchBytes += 2;
    } else {
      scratchBytes += 2 + f.length;
    }
  }
  const scratch = Buffer.allocUnsafe(scratchBytes);
  writeHeader(scratch, 0, MessageType.DATA, session);
  scratch.writeUInt16BE(n, HEADER_BYTES);
  const parts: Buffer[] = [];
  let w = HEADER_BYTES + 2;
  let segStart = 0;
  let run: Buffer | undefined;
  let runStart = 0;
  let runEnd = 0;
  for (let i = 0; i < n; i++) {
    const f = frames[i]!;
    const len = f.length;
    if (len > COPY_MAX_BYTES) {
      const src = received?.get(f.buffer);
      const o = src === undefined ? -1 : prefixedOffset(src, f);
      if (o >= 0) {
        if (run === src && runEnd === o - 2) { runEnd = o + len; continue; }
        if (w > segStart) { parts.push(scratch.subarray(segStart, w)); segStart = w; }
        if (run !== undefined) parts.push(run.subarray(runStart, runEnd));
        run = src;
        runStart = o - 2;
        runEnd = o + len;
        continue;
      }
    }
    if (run !== undefined) { parts.push(run.subarray(runStart, runEnd)); run = undefined; }
    scratch[w] = len >>> 8;
    scratch[w + 1] = len & 0xff;
    w += 2;
    if (len <= COPY_MAX_BYTES) {
      scratch.set(f, w);
      w += len;
    } else {
      parts.push(scratch.subarray(segStart, w));
      segStart = w;
      parts.push(f);
    }
  }
  if (w > segStart) parts.push(segStart === 0 ? scratch : scratch.subarray(segStart, w));
  if (run !== undefined) parts.push(run.subarray(runStart, runEnd));
  q.out = [];
  q.outBytes = 0;
  return parts;
}
/** Bytes a queue's batch takes as a DATA-MULTI section: session, frame count, frames. */
export function sectionBytes(q: FrameQueue): number {
  return 6 + q.outBytes;
}

/**
 * One DATA-MULTI datagram carrying each queue's batch as a section, as a gather list: an 8-byte
 * header, then for each queue the parts takeDataDatagram gives, less the first 4 bytes of its
 * header (magic, version, type), which leaves the session first. Empties the queues. The caller
 * keeps the sum of HEADER_BYTES and their sectionBytes within its batch limit, and 2..4096 queues.
 */
export function takeDataMultiDatagram(queues: readonly { q: FrameQueue; session: number }[], received?: ReceivedDatagrams): Buffer[] {
  const head = Buffer.allocUnsafe(HEADER_BYTES);
  writeHeader(head, 0, MessageType.DATA_MULTI, queues.length);
  const parts: Buffer[] = [head];
  for (const { q, session } of queues) {
    const p = takeDataDatagram(q, session, received);
    parts.push(p[0]!.subarray(4));
    for (let i = 1; i < p.length; i++) parts.push(p[i]!);
  }
  return parts;
}

const PORT_INFO_FIXED = 30;

export const MessageType = {
  ATTACH: 0x01,
  ATTACH_OK: 0x02,
  ATTACH_ERR: 0x03,
  KEEPALIVE: 0x04,
  DETACH: 0x05,
  DATA: 0x06,
  PORT_STATE: 0x07,
  STATUS: 0x08,
  STATUS_RESP: 0x09,
  ERROR: 0x0a,
  SET_MCAST_FILTER: 0x0b,
  MCAST_FILTER_OK: 0x0c,
  DATA_MULTI: 0x0d,
} as const;

/** Sections one DATA-MULTI may carry. */
export const MAX_SECTIONS_PER_DATAGRAM = 4096;

/** ATTACH-ERR codes: stable numbers, one sentence each for the operator. */
export const AttachErrorCode = {
  UNKNOWN_HOST: 1,      // a topology was given and does not name this host
  DUPLICATE_GUID: 2,    // a live session already has this port GUID
  PORT_OUT_OF_RANGE: 3, // HCA port number not 1..254 (or beyond the host's ports in the topology)
  FABRIC_FULL: 4,       // no switch port or LID left, or the daemon's port limit reached
  BAD_ATTACH: 5,        // a field is missing or impossible (MTU enum, empty host name)
  BAD_VERSION: 6,       // the host speaks another protocol version
} as const;
export type AttachErrorName = keyof typeof AttachErrorCode;

export const DetachReason = {
  BY_HOST: 0,
  TIMED_OUT: 1,
  SHUTDOWN: 2,
  REPLACED: 3,
} as const;
export type DetachReasonName = keyof typeof DetachReason;

export const ErrorCode = {
  NOT_ATTACHED: 1,      // DATA / KEEPALIVE / DETACH for a session the daemon does not know (or timed out)
  ADDRESS_MISMATCH: 2,  // a session's message from another address than the one that attached it
} as const;
export type ErrorName = keyof typeof ErrorCode;

function nameOf<T extends Record<string, number>>(table: T, code: number): keyof T | undefined {
  for (const k of Object.keys(table)) if (table[k] === code) return k as keyof T;
  return undefined;
}

export const attachErrorName = (code: number): AttachErrorName | undefined => nameOf(AttachErrorCode, code);
export const detachReasonName = (code: number): DetachReasonName | undefined => nameOf(DetachReason, code);
export const errorName = (code: number): ErrorName | undefined => nameOf(ErrorCode, code);

export interface AttachMessage {
  type: 'ATTACH';
  requestId: number;
  hostName: string;
  portNum: number;
  mtuCap: number;
  rate: number;
  nodeGuid: bigint | undefined;
  portGuid: bigint | undefined;
}

export interface AttachOkMessage {
  type: 'ATTACH_OK';
  requestId: number;
  session: number;
  switchPort: number;
  keepaliveMs: number;
  timeoutMs: number;
  nodeGuid: bigint;
  portGuid: bigint;
  info: PortInfo;
}

export interface AttachErrMessage {
  type: 'ATTACH_ERR';
  requestId: number;
  code: number;
  text: string;
}

export interface KeepaliveMessage {
  type: 'KEEPALIVE';
  session: number;
}

export interface DetachMessage {
  type: 'DETACH';
  session: number;
  reason: number;
}

export interface DataMessage {
  type: 'DATA';
  session: number;
  frames: Buffer[];
}

export interface DataMultiMessage {
  type: 'DATA_MULTI';
  sections: { session: number; frames: Buffer[] }[];
}

export interface PortStateMessage {
  type: 'PORT_STATE';
  session: number;
  seq: number;
  info: PortInfo;
}

export interface StatusMessage {
  type: 'STATUS';
  requestId: number;
}

export interface StatusRespMessage {
  type: 'STATUS_RESP';
  requestId: number;
  index: number;
  count: number;
  chunk: Buffer;
}

export interface ErrorMessage {
  type: 'ERROR';
  session: number;
  code: number;
  text: string;
}

export interface SetMcastFilterMessage {
  type: 'SET_MCAST_FILTER';
  session: number;
  seq: number;
  mlid: number;
  /** undefined: remove the port's filter for mlid. */
  filter: MulticastFilter | undefined;
}

export interface McastFilterOkMessage {
  type: 'MCAST_FILTER_OK';
  session: number;
  seq: number;
  mlid: number;
}

export type ControlMessage =
  | AttachMessage | AttachOkMessage | AttachErrMessage | KeepaliveMessage | DetachMessage | DataMessage | DataMultiMessage
  | PortStateMessage | StatusMessage | StatusRespMessage | ErrorMessage | SetMcastFilterMessage | McastFilterOkMessage;

/** Why a datagram was dropped before reaching the fabric: the daemon and the host count these. */
export type DropCode =
  | 'BAD_MAGIC' | 'BAD_VERSION' | 'UNKNOWN_TYPE' | 'MALFORMED' | 'UNKNOWN_SESSION' | 'ADDRESS_MISMATCH'
  | 'UNEXPECTED' | 'SEND_QUEUE_FULL';

// ---- encode -----------------------------------------------------------------------------------

const STATE_OF: Readonly<Record<number, PortState>> = { 1: 'DOWN', 2: 'INIT', 3: 'ARMED', 4: 'ACTIVE' };

function portInfoLength(info: PortInfo): number {
  return PORT_INFO_FIXED + 2 * info.pkeys.length;
}

function textBytes(field: string, s: string, max: number): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > max) throw new WireError('INVALID_RECORD', PROTOCOL, field, -1, `${b.length} bytes, at most ${max}`);
  return b;
}

/** Error texts are cut (on a character boundary) rather than refused: they are for people. */
function cutText(s: string, max = 255): Buffer {
  // Every character takes at least one byte: cut the characters first, so the loop stays short.
  if (s.length > max) s = s.slice(0, max);
  let b = Buffer.from(s, 'utf8');
  while (b.length > max) {
    s = s.slice(0, -1);
    b = Buffer.from(s, 'utf8');
  }
  return b;
}

export function encodedLength(m: ControlMessage): number {
  switch (m.type) {
    case 'ATTACH': return HEADER_BYTES + 21 + Buffer.byteLength(m.hostName, 'utf8');
    case 'ATTACH_OK': return HEADER_BYTES + 28 + portInfoLength(m.info);
    case 'ATTACH_ERR': case 'ERROR': return HEADER_BYTES + 2 + cutText(m.text).length;
    case 'KEEPALIVE': case 'STATUS': return HEADER_BYTES;
    case 'DETACH': return HEADER_BYTES + 1;
    case 'DATA': return HEADER_BYTES + 2 + m.frames.reduce((n, f) => n + 2 + f.length, 0);
    case 'DATA_MULTI': return HEADER_BYTES + m.sections.reduce((n, x) => n + 6 + x.frames.reduce((k, f) => k + 2 + f.length, 0), 0);
    case 'PORT_STATE': return HEADER_BYTES + 4 + portInfoLength(m.info);
    case 'STATUS_RESP': return HEADER_BYTES + 6 + m.chunk.length;
    case 'SET_MCAST_FILTER': return HEADER_BYTES + FILTER_FIXED + (m.filter === undefined ? 0 : filterLength(m.filter));
    case 'MCAST_FILTER_OK': return HEADER_BYTES + 6;
  }
}

function filterLength(f: MulticastFilter): number {
  let n = (f.only !== undefined ? FILTER_SCOPE : 0) + 2;
  for (const rule of f.rules) {
    n += 1;
    for (const m of rule) n += 4 + m.value.length * (m.mask !== undefined ? 2 : 1);
  }
  return n;
}

function writeFilter(f: MulticastFilter, out: Buffer, o: number): void {
  try {
    validateMulticastFilter(f);
  } catch (err) {
    throw new WireError('INVALID_RECORD', PROTOCOL, 'filter', -1, (err as Error).message);
  }
  if (f.rules.length > MAX_FILTER_RULES) throw new WireError('INVALID_RECORD', PROTOCOL, 'filter.rules', -1, `${f.rules.length} rules, at most ${MAX_FILTER_RULES}`);
  let p = o;
  const s = f.only;
  if (s !== undefined) {
    // minPayload may be 65536 (validateMulticastFilter's limit): u32.
    out.writeUInt16BE(s.pkey, p);
    out.writeUInt32BE(s.qkey, p + 2);
    out.writeUInt32BE(s.minPayload, p + 6);
    p += FILTER_SCOPE;
  }
  out.writeUInt16BE(f.rules.length, p);
  p += 2;
  for (const rule of f.rules) {
    checkUint(PROTOCOL, 'filter.matchCount', rule.length, 8);
    out[p++] = rule.length;
    for (const m of rule) {
      checkUint(PROTOCOL, 'filter.offset', m.offset, 16);
      out.writeUInt16BE(m.offset, p);
      out[p + 2] = m.value.length;
      out[p + 3] = (m.negate === true ? 1 : 0) | (m.mask !== undefined ? 2 : 0);
      out.set(m.value, p + 4);
      p += 4 + m.value.length;
      if (m.mask !== undefined) { out.set(m.mask, p); p += m.mask.length; }
    }
  }
}

function readFilter(buf: Buffer, o: number, hasScope: boolean, grh: boolean): MulticastFilter {
  let p = o;
  let only: MulticastFilter['only'];
  if (hasScope) {
    need(buf, p, FILTER_SCOPE, PROTOCOL, 'filter.only');
    const minPayload = buf.readUInt32BE(p + 6);
    if (minPayload > 0x10000) throw new WireError('BAD_VALUE', PROTOCOL, 'filter.minPayload', p + 6, `${minPayload} (0..65536)`);
    only = { pkey: buf.readUInt16BE(p), qkey: buf.readUInt32BE(p + 2), minPayload, multicastGrh: grh };
    p += FILTER_SCOPE;
  }
  need(buf, p, 2, PROTOCOL, 'filter.ruleCount');
  const ruleCount = buf.readUInt16BE(p);
  if (ruleCount > MAX_FILTER_RULES) throw new WireError('LIMIT', PROTOCOL, 'filter.ruleCount', p, `${ruleCount} rules, at most ${MAX_FILTER_RULES}`);
  p += 2;
  const rules: ByteMatch[][] = [];
  for (let r = 0; r < ruleCount; r++) {
    need(buf, p, 1, PROTOCOL, 'filter.matchCount');
    const n = buf[p++]!;
    const rule: ByteMatch[] = [];
    for (let i = 0; i < n; i++) {
      need(buf, p, 4, PROTOCOL, 'filter.match');
      const len = buf[p + 2]!;
      const flags = buf[p + 3]!;
      if (len < 1 || len > MAX_FILTER_MATCH_BYTES) throw new WireError('BAD_LENGTH', PROTOCOL, 'filter.length', p + 2, `${len} (1..${MAX_FILTER_MATCH_BYTES})`);
      if ((flags & ~3) !== 0) throw new WireError('BAD_VALUE', PROTOCOL, 'filter.flags', p + 3, `unknown match flag bits 0x${flags.toString(16)}`);
      const withMask = (flags & 2) !== 0;
      need(buf, p + 4, withMask ? 2 * len : len, PROTOCOL, 'filter.value');
      const m: ByteMatch = { offset: buf.readUInt16BE(p), value: new Uint8Array(buf.subarray(p + 4, p + 4 + len)) };
      p += 4 + len;
      if (withMask) { m.mask = new Uint8Array(buf.subarray(p, p + len)); p += len; }
      if ((flags & 1) !== 0) m.negate = true;
      rule.push(m);
    }
    rules.push(rule);
  }
  const f: MulticastFilter = only === undefined ? { rules } : { rules, only };
  try {
    validateMulticastFilter(f);
  } catch (err) {
    throw new WireError('BAD_VALUE', PROTOCOL, 'filter', o, (err as Error).message);
  }
  return f;
}

export function writeHeader(out: Buffer, offset: number, type: number, id: number): void {
  out.writeUInt16BE(FABRIC_MAGIC, offset);
  out[offset + 2] = FABRIC_PROTOCOL_VERSION;
  out[offset + 3] = type;
  out.writeUInt32BE(id >>> 0, offset + 4);
}

function writePortInfo(info: PortInfo, out: Buffer, o: number): number {
  checkUint(PROTOCOL, 'info.pkeyCount', info.pkeys.length, 8);
  if (info.pkeys.length > MAX_PKEYS) throw new WireError('INVALID_RECORD', PROTOCOL, 'info.pkeys', -1, `more than ${MAX_PKEYS} P_Keys`);
  out[o] = PORT_STATE_CODE[info.state];
  out[o + 1] = info.portNum;
  out[o + 2] = info.lmc;
  out[o + 3] = info.smSl;
  out.writeUInt16BE(info.lid, o + 4);
  out.writeUInt16BE(info.smLid, o + 6);
  out[o + 8] = info.mtuCap;
  out[o + 9] = info.activeMtu;
  out[o + 10] = info.rate;
  out[o + 11] = info.subnetTimeout;
  out[o + 12] = info.pkeys.length;
  out[o + 13] = 0;
  out.writeBigUInt64BE(info.portGuid, o + 14);
  out.writeBigUInt64BE(info.subnetPrefix, o + 22);
  let p = o + PORT_INFO_FIXED;
  for (const k of info.pkeys) { out.writeUInt16BE(k, p); p += 2; }
  return p;
}

function checkPortInfo(info: PortInfo): void {
  for (const [f, bits] of [['portNum', 8], ['lmc', 8], ['smSl', 8], ['lid', 16], ['smLid', 16], ['mtuCap', 8],
    ['activeMtu', 8], ['rate', 8], ['subnetTimeout', 8]] as const) checkUint(PROTOCOL, `info.${f}`, info[f], bits);
  for (const k of info.pkeys) checkUint(PROTOCOL, 'info.pkeys', k, 16);
  if (PORT_STATE_CODE[info.state] === undefined) throw new WireError('INVALID_RECORD', PROTOCOL, 'info.state', -1, `state ${String(info.state)}`);
}

/** A DATA body (or a DATA-MULTI section after its session): frameCount u16, then length-prefixed frames. Returns the end. */
function writeFrames(frames: readonly Buffer[], out: Buffer, at: number): number {
  if (frames.length === 0 || frames.length > MAX_FRAMES_PER_DATAGRAM) {
    throw new WireError('INVALID_RECORD', PROTOCOL, 'frames', -1, `${frames.length} frames (1..${MAX_FRAMES_PER_DATAGRAM})`);
  }
  out.writeUInt16BE(frames.length, at);
  let p = at + 2;
  for (const f of frames) {
    if (f.length < 1 || f.length > MAX_FRAME_BYTES) throw new WireError('INVALID_RECORD', PROTOCOL, 'frames', -1, `frame of ${f.length} bytes`);
    out.writeUInt16BE(f.length, p);
    out.set(f, p + 2);
    p += 2 + f.length;
  }
  return p;
}

export function encodeControl(m: ControlMessage, buf?: Buffer, offset = 0): Buffer {
  const len = encodedLength(m);
  if (buf !== undefined && (!Number.isInteger(offset) || offset < 0 || offset + len > buf.length)) {
    throw new WireError('BUFFER_TOO_SMALL', PROTOCOL, 'buffer', offset, `needs ${len} bytes at offset ${offset}, buffer has ${buf.length}`);
  }
  const out = buf ?? Buffer.alloc(len);
  const o = offset + HEADER_BYTES;
  switch (m.type) {
    case 'ATTACH': {
      const name = textBytes('hostName', m.hostName, MAX_HOST_NAME_BYTES);
      if (name.length === 0) throw new WireError('INVALID_RECORD', PROTOCOL, 'hostName', -1, 'empty host name');
      checkUint(PROTOCOL, 'requestId', m.requestId, 32);
      checkUint(PROTOCOL, 'portNum', m.portNum, 8);
      checkUint(PROTOCOL, 'mtuCap', m.mtuCap, 8);
      checkUint(PROTOCOL, 'rate', m.rate, 8);
      writeHeader(out, offset, MessageType.ATTACH, m.requestId);
      out[o] = m.portNum;
      out[o + 1] = m.mtuCap;
      out[o + 2] = m.rate;
      out[o + 3] = (m.nodeGuid !== undefined ? 1 : 0) | (m.portGuid !== undefined ? 2 : 0);
      out.writeBigUInt64BE(m.nodeGuid ?? 0n, o + 4);
      out.writeBigUInt64BE(m.portGuid ?? 0n, o + 12);
      out[o + 20] = name.length;
      name.copy(out, o + 21);
      break;
    }
    case 'ATTACH_OK':
      checkUint(PROTOCOL, 'requestId', m.requestId, 32);
      checkUint(PROTOCOL, 'session', m.session, 32);
      checkUint(PROTOCOL, 'switchPort', m.switchPort, 16);
      checkUint(PROTOCOL, 'keepaliveMs', m.keepaliveMs, 16);
      checkUint(PROTOCOL, 'timeoutMs', m.timeoutMs, 32);
      checkPortInfo(m.info);
      writeHeader(out, offset, MessageType.ATTACH_OK, m.requestId);
      out.writeUInt32BE(m.session, o);
      out.writeUInt16BE(m.switchPort, o + 4);
      out.writeUInt16BE(m.keepaliveMs, o + 6);
      out.writeUInt32BE(m.timeoutMs, o + 8);
      out.writeBigUInt64BE(m.nodeGuid, o + 12);
      out.writeBigUInt64BE(m.portGuid, o + 20);
      writePortInfo(m.info, out, o + 28);
      break;
    case 'ATTACH_ERR':
    case 'ERROR': {
      const id = m.type === 'ERROR' ? m.session : m.requestId;
      checkUint(PROTOCOL, 'id', id, 32);
      checkUint(PROTOCOL, 'code', m.code, 8);
      const t = cutText(m.text);
      writeHeader(out, offset, m.type === 'ERROR' ? MessageType.ERROR : MessageType.ATTACH_ERR, id);
      out[o] = m.code;
      out[o + 1] = t.length;
      t.copy(out, o + 2);
      break;
    }
    case 'KEEPALIVE':
      checkUint(PROTOCOL, 'session', m.session, 32);
      writeHeader(out, offset, MessageType.KEEPALIVE, m.session);
      break;
    case 'STATUS':
      checkUint(PROTOCOL, 'requestId', m.requestId, 32);
      writeHeader(out, offset, MessageType.STATUS, m.requestId);
      break;
    case 'DETACH':
      checkUint(PROTOCOL, 'session', m.session, 32);
      checkUint(PROTOCOL, 'reason', m.reason, 8);
      writeHeader(out, offset, MessageType.DETACH, m.session);
      out[o] = m.reason;
      break;
    case 'DATA':
      checkUint(PROTOCOL, 'session', m.session, 32);
      writeHeader(out, offset, MessageType.DATA, m.session);
      writeFrames(m.frames, out, o);
      break;
    case 'DATA_MULTI': {
      if (m.sections.length < 2 || m.sections.length > MAX_SECTIONS_PER_DATAGRAM) {
        throw new WireError('INVALID_RECORD', PROTOCOL, 'sections', -1, `${m.sections.length} sections (2..${MAX_SECTIONS_PER_DATAGRAM})`);
      }
      writeHeader(out, offset, MessageType.DATA_MULTI, m.sections.length);
      let p = o;
      for (const x of m.sections) {
        checkUint(PROTOCOL, 'session', x.session, 32);
        out.writeUInt32BE(x.session, p);
        p = writeFrames(x.frames, out, p + 4);
      }
      break;
    }
    case 'PORT_STATE':
      checkUint(PROTOCOL, 'session', m.session, 32);
      checkUint(PROTOCOL, 'seq', m.seq, 32);
      checkPortInfo(m.info);
      writeHeader(out, offset, MessageType.PORT_STATE, m.session);
      out.writeUInt32BE(m.seq, o);
      writePortInfo(m.info, out, o + 4);
      break;
    case 'STATUS_RESP':
      checkUint(PROTOCOL, 'requestId', m.requestId, 32);
      if (!(m.count >= 1 && m.count <= MAX_STATUS_CHUNKS && Number.isInteger(m.index) && m.index >= 0 && m.index < m.count)) {
        throw new WireError('INVALID_RECORD', PROTOCOL, 'index', -1, `chunk ${m.index} of ${m.count}`);
      }
      checkUint(PROTOCOL, 'chunkLength', m.chunk.length, 16);
      writeHeader(out, offset, MessageType.STATUS_RESP, m.requestId);
      out.writeUInt16BE(m.index, o);
      out.writeUInt16BE(m.count, o + 2);
      out.writeUInt16BE(m.chunk.length, o + 4);
      m.chunk.copy(out, o + 6);
      break;
    case 'SET_MCAST_FILTER':
    case 'MCAST_FILTER_OK':
      checkUint(PROTOCOL, 'session', m.session, 32);
      checkUint(PROTOCOL, 'seq', m.seq, 32);
      if (!isMulticastLid(m.mlid)) throw new WireError('INVALID_RECORD', PROTOCOL, 'mlid', -1, `0x${m.mlid.toString(16)} is not a multicast LID`);
      writeHeader(out, offset, m.type === 'MCAST_FILTER_OK' ? MessageType.MCAST_FILTER_OK : MessageType.SET_MCAST_FILTER, m.session);
      out.writeUInt32BE(m.seq, o);
      out.writeUInt16BE(m.mlid, o + 4);
      if (m.type === 'MCAST_FILTER_OK') break;
      if (m.filter === undefined) {
        out[o + 6] = 0;
      } else {
        out[o + 6] = 1 | (m.filter.only !== undefined ? 2 : 0) | (m.filter.only?.multicastGrh === true ? 4 : 0);
        writeFilter(m.filter, out, o + FILTER_FIXED);
      }
      out[o + 7] = 0;
      break;
  }
  return out;
}

// ---- decode -----------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function readText(buf: Buffer, o: number, len: number, field: string): string {
  need(buf, o, len, PROTOCOL, field);
  try {
    return utf8.decode(buf.subarray(o, o + len));
  } catch {
    throw new WireError('BAD_VALUE', PROTOCOL, field, o, 'not UTF-8');
  }
}


function readPortInfo(buf: Buffer, o: number): { info: PortInfo; end: number } {
  need(buf, o, PORT_INFO_FIXED, PROTOCOL, 'info');
  const state = STATE_OF[buf[o]!];
  if (state === undefined) throw new WireError('BAD_VALUE', PROTOCOL, 'info.state', o, `port state ${buf[o]!}`);
  const n = buf[o + 12]!;
  if (n > MAX_PKEYS) throw new WireError('LIMIT', PROTOCOL, 'info.pkeyCount', o + 12, `${n} P_Keys, at most ${MAX_PKEYS}`);
  if (buf[o + 13] !== 0) throw new WireError('BAD_VALUE', PROTOCOL, 'info.reserved', o + 13, 'must be 0');
  need(buf, o + PORT_INFO_FIXED, 2 * n, PROTOCOL, 'info.pkeys');
  const pkeys: number[] = [];
  for (let i = 0; i < n; i++) pkeys.push(buf.readUInt16BE(o + PORT_INFO_FIXED + 2 * i));
  return {
    info: {
      state, portNum: buf[o + 1]!, lmc: buf[o + 2]!, smSl: buf[o + 3]!, lid: buf.readUInt16BE(o + 4), smLid: buf.readUInt16BE(o + 6),
      mtuCap: buf[o + 8]!, activeMtu: buf[o + 9]!, rate: buf[o + 10]!, subnetTimeout: buf[o + 11]!, pkeys,
      portGuid: buf.readBigUInt64BE(o + 14), subnetPrefix: buf.readBigUInt64BE(o + 22),
    },
    end: o + PORT_INFO_FIXED + 2 * n,
  };
}

/** Checks magic and version; returns the type byte. The message itself runs to the end of buf. */
export function readHeader(buf: Buffer, offset = 0): number {
  need(buf, offset, HEADER_BYTES, PROTOCOL, 'header');
  if (buf.readUInt16BE(offset) !== FABRIC_MAGIC) throw new WireError('BAD_VALUE', PROTOCOL, 'magic', offset, `0x${buf.readUInt16BE(offset).toString(16)} is not 0x4946`);
  if (buf[offset + 2] !== FABRIC_PROTOCOL_VERSION) throw new WireError('BAD_VALUE', PROTOCOL, 'version', offset + 2, `version ${buf[offset + 2]!}, this end speaks ${FABRIC_PROTOCOL_VERSION}`);
  return buf[offset + 3]!;
}

/**
 * Walks the frames of a DATA message at offset (header already checked) without copying. Every
 * length is validated first, so a bad message delivers nothing. Returns the offset after the
 * message.
 */
export function forEachFrame(buf: Buffer, offset: number, fn: ((frame: Buffer) => void) | undefined): number {
  const o = offset + HEADER_BYTES;
  need(buf, o, 2, PROTOCOL, 'frameCount');
  const count = buf.readUInt16BE(o);
  if (count < 1 || count > MAX_FRAMES_PER_DATAGRAM) throw new WireError('BAD_LENGTH', PROTOCOL, 'frameCount', o, `${count} frames (1..${MAX_FRAMES_PER_DATAGRAM})`);
  let p = o + 2;
  for (let i = 0; i < count; i++) {
    need(buf, p, 2, PROTOCOL, 'frames.length');
    const len = buf.readUInt16BE(p);
    if (len < 1 || len > MAX_FRAME_BYTES) throw new WireError('BAD_LENGTH', PROTOCOL, 'frames.length', p, `frame of ${len} bytes (1..${MAX_FRAME_BYTES})`);
    need(buf, p + 2, len, PROTOCOL, 'frames.bytes');
    p += 2 + len;
  }
  if (fn !== undefined) {
    let q = o + 2;
    for (let i = 0; i < count; i++) {
      const len = buf.readUInt16BE(q);
      fn(buf.subarray(q + 2, q + 2 + len));
      q += 2 + len;
    }
  }
  return p;
}

/**
 * Walks the sections of a DATA-MULTI at offset (header already checked), validating every section
 * and frame length first, so a bad message delivers nothing; then calls fn with each section's
 * session and the offset of that section (its session field: forEachFrame(buf, at - 4, ...) walks
 * its frames). Returns the offset after the message.
 */
export function forEachSection(buf: Buffer, offset: number, fn: ((session: number, at: number) => void) | undefined): number {
  const count = buf.readUInt32BE(offset + 4);
  if (count < 2 || count > MAX_SECTIONS_PER_DATAGRAM) {
    throw new WireError('BAD_LENGTH', PROTOCOL, 'sectionCount', offset + 4, `${count} sections (2..${MAX_SECTIONS_PER_DATAGRAM})`);
  }
  let p = offset + HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    need(buf, p, 4, PROTOCOL, 'sections.session');
    p = forEachFrame(buf, p - 4, undefined);
  }
  if (fn !== undefined) {
    let q = offset + HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      fn(buf.readUInt32BE(q), q);
      q = forEachFrame(buf, q - 4, undefined);
    }
  }
  return p;
}

/** Decodes the message at offset; bytes after it are the caller's. Throws WireError on anything malformed. */
export function decodeControl(buf: Buffer, offset = 0): ControlMessage {
  const type = readHeader(buf, offset);
  const id = buf.readUInt32BE(offset + 4);
  const o = offset + HEADER_BYTES;
  switch (type) {
    case MessageType.ATTACH: {
      need(buf, o, 21, PROTOCOL, 'attach');
      const flags = buf[o + 3]!;
      if ((flags & ~3) !== 0) throw new WireError('BAD_VALUE', PROTOCOL, 'flags', o + 3, `unknown flag bits 0x${flags.toString(16)}`);
      const n = buf[o + 20]!;
      if (n < 1 || n > MAX_HOST_NAME_BYTES) throw new WireError('BAD_LENGTH', PROTOCOL, 'hostNameLength', o + 20, `${n} (1..${MAX_HOST_NAME_BYTES})`);
      const hostName = readText(buf, o + 21, n, 'hostName');
      const nodeGuid = buf.readBigUInt64BE(o + 4);
      const portGuid = buf.readBigUInt64BE(o + 12);
      if ((flags & 1) === 0 && nodeGuid !== 0n) throw new WireError('BAD_VALUE', PROTOCOL, 'nodeGuid', o + 4, 'set without its flag');
      if ((flags & 2) === 0 && portGuid !== 0n) throw new WireError('BAD_VALUE', PROTOCOL, 'portGuid', o + 12, 'set without its flag');
      return {
        type: 'ATTACH', requestId: id, hostName, portNum: buf[o]!, mtuCap: buf[o + 1]!, rate: buf[o + 2]!,
        nodeGuid: (flags & 1) !== 0 ? nodeGuid : undefined, portGuid: (flags & 2) !== 0 ? portGuid : undefined,
      };
    }
    case MessageType.ATTACH_OK: {
      need(buf, o, 28, PROTOCOL, 'attachOk');
      const session = buf.readUInt32BE(o);
      if (session === 0) throw new WireError('BAD_VALUE', PROTOCOL, 'session', o, 'session 0 is never assigned');
      const { info } = readPortInfo(buf, o + 28);
      return {
        type: 'ATTACH_OK', requestId: id, session, switchPort: buf.readUInt16BE(o + 4), keepaliveMs: buf.readUInt16BE(o + 6),
        timeoutMs: buf.readUInt32BE(o + 8), nodeGuid: buf.readBigUInt64BE(o + 12), portGuid: buf.readBigUInt64BE(o + 20), info,
      };
    }
    case MessageType.ATTACH_ERR:
    case MessageType.ERROR: {
      need(buf, o, 2, PROTOCOL, 'code');
      const n = buf[o + 1]!;
      const text = readText(buf, o + 2, n, 'text');
      return type === MessageType.ERROR
        ? { type: 'ERROR', session: id, code: buf[o]!, text }
        : { type: 'ATTACH_ERR', requestId: id, code: buf[o]!, text };
    }
    case MessageType.KEEPALIVE:
      return { type: 'KEEPALIVE', session: id };
    case MessageType.STATUS:
      return { type: 'STATUS', requestId: id };
    case MessageType.DETACH:
      need(buf, o, 1, PROTOCOL, 'reason');
      return { type: 'DETACH', session: id, reason: buf[o]! };
    case MessageType.DATA: {
      const frames: Buffer[] = [];
      forEachFrame(buf, offset, (f) => frames.push(Buffer.from(f)));
      return { type: 'DATA', session: id, frames };
    }
    case MessageType.DATA_MULTI: {
      const sections: DataMultiMessage['sections'] = [];
      forEachSection(buf, offset, (session, at) => {
        const frames: Buffer[] = [];
        forEachFrame(buf, at - 4, (f) => frames.push(Buffer.from(f)));
        sections.push({ session, frames });
      });
      return { type: 'DATA_MULTI', sections };
    }
    case MessageType.PORT_STATE: {
      need(buf, o, 4, PROTOCOL, 'seq');
      const { info } = readPortInfo(buf, o + 4);
      return { type: 'PORT_STATE', session: id, seq: buf.readUInt32BE(o), info };
    }
    case MessageType.STATUS_RESP: {
      need(buf, o, 6, PROTOCOL, 'index');
      const index = buf.readUInt16BE(o);
      const count = buf.readUInt16BE(o + 2);
      if (count < 1 || count > MAX_STATUS_CHUNKS) throw new WireError('LIMIT', PROTOCOL, 'count', o + 2, `${count} chunks (1..${MAX_STATUS_CHUNKS})`);
      if (index >= count) throw new WireError('BAD_VALUE', PROTOCOL, 'index', o, `chunk ${index} of ${count}`);
      const n = buf.readUInt16BE(o + 4);
      need(buf, o + 6, n, PROTOCOL, 'chunk');
      return { type: 'STATUS_RESP', requestId: id, index, count, chunk: Buffer.from(buf.subarray(o + 6, o + 6 + n)) };
    }
    case MessageType.SET_MCAST_FILTER:
    case MessageType.MCAST_FILTER_OK: {
      need(buf, o, type === MessageType.MCAST_FILTER_OK ? 6 : FILTER_FIXED, PROTOCOL, 'seq');
      const seq = buf.readUInt32BE(o);
      const mlid = buf.readUInt16BE(o + 4);
      if (!isMulticastLid(mlid)) throw new WireError('BAD_VALUE', PROTOCOL, 'mlid', o + 4, `0x${mlid.toString(16)} is not a multicast LID`);
      if (type === MessageType.MCAST_FILTER_OK) return { type: 'MCAST_FILTER_OK', session: id, seq, mlid };
      const flags = buf[o + 6]!;
      if ((flags & ~7) !== 0) throw new WireError('BAD_VALUE', PROTOCOL, 'flags', o + 6, `unknown flag bits 0x${flags.toString(16)}`);
      if ((flags & 1) === 0 && flags !== 0) throw new WireError('BAD_VALUE', PROTOCOL, 'flags', o + 6, 'scope flags without a filter');
      if ((flags & 2) === 0 && (flags & 4) !== 0) throw new WireError('BAD_VALUE', PROTOCOL, 'flags', o + 6, 'multicastGrh without a scope');
      if (buf[o + 7] !== 0) throw new WireError('BAD_VALUE', PROTOCOL, 'reserved', o + 7, 'must be 0');
      const filter = (flags & 1) === 0 ? undefined : readFilter(buf, o + FILTER_FIXED, (flags & 2) !== 0, (flags & 4) !== 0);
      return { type: 'SET_MCAST_FILTER', session: id, seq, mlid, filter };
    }
    default:
      throw new WireError('BAD_VALUE', PROTOCOL, 'type', offset + 3, `unknown message type 0x${type.toString(16)}`);
  }
}

/** The control protocol as a Codec (a message runs to the end of the buffer it is decoded from). */
export const fabricControl: Codec<ControlMessage> = {
  name: PROTOCOL,
  encodedLength,
  encode: encodeControl,
  decode: decodeControl,
};

/** A whole datagram: one message and nothing after it. */
export function decodeDatagram(buf: Buffer): ControlMessage {
  const m = decodeControl(buf, 0);
  const len = encodedLength(m);
  if (len !== buf.length) throw new WireError('BAD_LENGTH', PROTOCOL, 'datagram', len, `${buf.length - len} byte(s) after the message`);
  return m;
}

/** The DropCode a decode failure is counted under. */
export function dropCodeOf(err: WireError): DropCode {
  if (err.field === 'magic') return 'BAD_MAGIC';
  if (err.field === 'version') return 'BAD_VERSION';
  if (err.field === 'type') return 'UNKNOWN_TYPE';
  return 'MALFORMED';
}

/** "host:port" (IPv4, a name, or [IPv6]:port) as the CLIs take it; port minPort..65535 (0 = any, to listen on). */
export function parseFabricAddress(text: string, minPort = 1): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(text.trim());
  if (m === null) throw new RangeError(`'${text}' is not HOST:PORT`);
  const host = m[1] ?? m[2]!;
  const port = m[3] === undefined ? DEFAULT_FABRIC_PORT : Number(m[3]);
  if (!Number.isInteger(port) || port < minPort || port > 65535) throw new RangeError(`'${text}': port ${m[3]} is not ${minPort}..65535`);
  return { host, port };
}

/** Errors the UDP transport raises to its caller (attach refused, no answer, closed). */
export type UdpFabricErrorCode = AttachErrorName | 'TIMEOUT' | 'CLOSED' | 'REFUSED';

export class UdpFabricError extends Error {
  override readonly name = 'UdpFabricError';
  constructor(readonly code: UdpFabricErrorCode, message: string) {
    super(message);
  }
}
