// Classic libpcap capture files (magic 0xa1b2c3d4, microsecond timestamps) for the fabric's
// capture points: LINKTYPE_IPOIB 242 with the 40-byte pseudo header Wireshark expects, and raw
// IB frames (LRH..ICRC+VCRC) as LINKTYPE_INFINIBAND 247 or, for tshark 4.0, DLT_USER0 147.
// Facts: IPOIB-FACTS §6.1, §6.2. This module only builds bytes; callers do the file I/O.

import { targetBuffer, type Codec } from '../../codec/contract.js';
import { checkBytes, checkUint, need } from '../../codec/checked.js';
import { WireError } from '../../codec/wire-error.js';
import { decodeIpoibHwAddress, encodeIpoibHwAddress, type IpoibHwAddress } from './ipoib-hw-address.js';

const PROTOCOL = 'pcap';

export const PCAP_MAGIC = 0xa1b2c3d4; // microsecond resolution; 0xa1b23c4d would mean nanoseconds
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const PCAP_FILE_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;
/**
 * tcpdump's MAXIMUM_SNAPLEN. 65535 would cut connected-mode frames: a 65520-byte IP datagram
 * plus the 4-byte IPoIB header and the 40-byte pseudo header is 65564 bytes.
 */
export const PCAP_DEFAULT_SNAPLEN = 262144;

/** DLT_USER0: how raw IB frames reach tshark 4.0, which has no mapping for 247 (§6.2). */
export const LINKTYPE_USER0 = 147;
/** LINKTYPE_IPOIB (libpcap pcap/dlt.h): pseudo header ‖ IPoIB header ‖ IP/ARP (§6.1). */
export const LINKTYPE_IPOIB = 242;
/** LINKTYPE_INFINIBAND (libpcap pcap/dlt.h): raw frames from the LRH through ICRC and VCRC. */
export const LINKTYPE_INFINIBAND = 247;

/**
 * The arguments that make tshark 4.0 dissect DLT_USER0 records as raw InfiniBand: a user_dlts
 * UAT entry (encapsulation, payload dissector, header size, header dissector, trailer size,
 * trailer dissector) given with `-o`, so no preference file is needed. Use as
 * `tshark ...TSHARK_USER0_INFINIBAND_ARGS -r capture.pcap`. Wireshark ≥ 4.2 also reads 247 directly.
 */
export const TSHARK_USER0_INFINIBAND_ARGS: readonly string[] = Object.freeze([
  '-o', 'uat:user_dlts:"User 0 (DLT=147)","infiniband","0","","0",""',
]);

/** A writer for one capture file with one link type. Timestamps are microseconds since the epoch. */
export class PcapWriter {
  constructor(readonly linkType: number, readonly snaplen = PCAP_DEFAULT_SNAPLEN) {
    checkUint(PROTOCOL, 'linkType', linkType, 32);
    checkUint(PROTOCOL, 'snaplen', snaplen, 32);
    if (snaplen < 65535) {
      throw new WireError('INVALID_RECORD', PROTOCOL, 'snaplen', -1, `snaplen ${snaplen} would truncate IPoIB frames`);
    }
  }

  /** The 24-byte global header, written little-endian as libpcap does on x86 and ARM. */
  fileHeader(): Buffer {
    const b = Buffer.alloc(PCAP_FILE_HEADER_LENGTH);
    b.writeUInt32LE(PCAP_MAGIC, 0);
    b.writeUInt16LE(PCAP_VERSION_MAJOR, 4);
    b.writeUInt16LE(PCAP_VERSION_MINOR, 6);
    b.writeInt32LE(0, 8);   // thiszone: timestamps are UTC
    b.writeUInt32LE(0, 12); // sigfigs
    b.writeUInt32LE(this.snaplen, 16);
    b.writeUInt32LE(this.linkType, 20);
    return b;
  }

  /**
   * One record: the 16-byte record header, then the parts back to back, cut at snaplen (the
   * header then keeps the original length). Parts let callers pass headers and payload separately.
   */
  record(timestampUs: number, ...parts: readonly Uint8Array[]): Buffer {
    let length = 0;
    for (const p of parts) length += p.length;
    const captured = Math.min(length, this.snaplen);
    const out = Buffer.allocUnsafe(PCAP_RECORD_HEADER_LENGTH + captured);
    writeRecordHeader(out, timestampUs, captured, length);
    let at = PCAP_RECORD_HEADER_LENGTH;
    for (const p of parts) {
      if (at >= out.length) break;
      const n = Math.min(p.length, out.length - at);
      out.set(n === p.length ? p : p.subarray(0, n), at);
      at += n;
    }
    return out;
  }

  /** A LINKTYPE_IPOIB record: pseudo header, then `packet` = 4-byte IPoIB header ‖ IP/ARP. */
  ipoibRecord(timestampUs: number, pseudo: IpoibPseudoHeader, packet: Uint8Array): Buffer {
    return this.record(timestampUs, encodeIpoibPseudoHeader(pseudo), packet);
  }
}

function writeRecordHeader(out: Buffer, timestampUs: number, captured: number, length: number): void {
  if (!Number.isSafeInteger(timestampUs) || timestampUs < 0 || timestampUs >= 2 ** 32 * 1e6) {
    throw new WireError('INVALID_RECORD', PROTOCOL, 'timestamp', -1, `${timestampUs} µs is not a pcap timestamp`);
  }
  checkUint(PROTOCOL, 'origLen', length, 32);
  out.writeUInt32LE(Math.floor(timestampUs / 1e6), 0);
  out.writeUInt32LE(timestampUs % 1e6, 4);
  out.writeUInt32LE(captured, 8);
  out.writeUInt32LE(length, 12);
}

// ---- the LINKTYPE_IPOIB pseudo header ----------------------------------------------------------

export const IPOIB_PSEUDO_HEADER_LENGTH = 40;

/**
 * The 40 bytes before the IPoIB header in a LINKTYPE_IPOIB record: Solaris' ipoib_pgrh_t, as
 * Wireshark's packet-ipoib.c reads it (IPOIB-FACTS §6.1, checked with tshark 4.0.17).
 * Received with a GRH (multicast/broadcast, or routed unicast):
 * ```
 * +-------+-------+---------------+-------------------------------+
 * |IPVer=6| tclass|             flowLabel (20 bits)               |  0-3
 * +-------+-------+---------------+-------------------------------+
 * |   0 (byte 4)  |              srcQpn (24 bits)                 |  4-7  (replaces PayLen/NxtHdr/HopLmt)
 * +---------------+-----------------------------------------------+
 * |                         sgid (16 bytes)                       |  8-23
 * |                         dgid (16 bytes)                       |  24-39
 * +---------------------------------------------------------------+
 * ```
 * Without a GRH (unicast): bytes 0-19 zero ("GRH not valid" is bytes 0-1 == 0), bytes 20-39 the
 * 20-byte destination address. A record that starts with the IPoIB header directly (a literal
 * reading of RFC 4391 §6) is misparsed by Wireshark, hence this header.
 */
export type IpoibPseudoHeader = IpoibPseudoGrh | IpoibPseudoUnicast;

export interface IpoibPseudoGrh {
  kind: 'grh';
  tclass: number;
  flowLabel: number;
  srcQpn: number;
  sgid: Buffer;
  dgid: Buffer;
}

export interface IpoibPseudoUnicast {
  kind: 'unicast';
  dest: IpoibHwAddress;
}

export function encodeIpoibPseudoHeader(p: IpoibPseudoHeader, buf?: Buffer, offset = 0): Buffer {
  if (p.kind === 'grh') {
    checkUint(PROTOCOL, 'tclass', p.tclass, 8);
    checkUint(PROTOCOL, 'flowLabel', p.flowLabel, 20);
    checkUint(PROTOCOL, 'srcQpn', p.srcQpn, 24);
    checkBytes(PROTOCOL, 'sgid', p.sgid, 16);
    checkBytes(PROTOCOL, 'dgid', p.dgid, 16);
  }
  const out = targetBuffer(PROTOCOL, IPOIB_PSEUDO_HEADER_LENGTH, buf, offset);
  if (p.kind === 'grh') {
    out.writeUInt32BE(((6 << 28) | (p.tclass << 20) | p.flowLabel) >>> 0, offset);
    out.writeUInt32BE(p.srcQpn, offset + 4);
    p.sgid.copy(out, offset + 8);
    p.dgid.copy(out, offset + 24);
  } else {
    encodeIpoibHwAddress(p.dest, out, offset + 20);
    out.fill(0, offset, offset + 20);
  }
  return out;
}

export function decodeIpoibPseudoHeader(buf: Buffer, offset = 0): IpoibPseudoHeader {
  need(buf, offset, IPOIB_PSEUDO_HEADER_LENGTH, PROTOCOL, 'pseudoHeader');
  if (buf.readUInt16BE(offset) === 0) return { kind: 'unicast', dest: decodeIpoibHwAddress(buf, offset + 20) };
  const w = buf.readUInt32BE(offset);
  return {
    kind: 'grh',
    tclass: (w >>> 20) & 0xff,
    flowLabel: w & 0xfffff,
    srcQpn: buf.readUIntBE(offset + 5, 3),
    sgid: Buffer.from(buf.subarray(offset + 8, offset + 24)),
    dgid: Buffer.from(buf.subarray(offset + 24, offset + 40)),
  };
}

export const ipoibPseudoHeader: Codec<IpoibPseudoHeader> = {
  name: PROTOCOL,
  encodedLength: () => IPOIB_PSEUDO_HEADER_LENGTH,
  encode: encodeIpoibPseudoHeader,
  decode: decodeIpoibPseudoHeader,
};
