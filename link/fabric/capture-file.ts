// The switch's capture point written to pcap files (IPOIB-FACTS §6): every packet a port sends, as
// raw IB frames (LRH .. ICRC ‖ VCRC) under LINKTYPE_USER0 147 (what tshark 4.0 reads with the
// user_dlts arguments of ../wire/pcap.ts) or LINKTYPE_INFINIBAND 247, and optionally the IPoIB
// packets among them under LINKTYPE_IPOIB 242 with the 40-byte pseudo header Wireshark expects.
// Records are gathered during an event-loop turn and written in one piece; close() flushes.
import { createWriteStream, type WriteStream } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { OPCODE_UD_SEND_ONLY, OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE, QP1 } from '../wire/ib-constants.js';
import { portGid } from '../wire/ib-address.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_RARP, IPOIB_HEADER_LENGTH } from '../wire/ipoib-header.js';
import { LINKTYPE_INFINIBAND, LINKTYPE_IPOIB, LINKTYPE_USER0, PcapWriter, type IpoibPseudoHeader } from '../wire/pcap.js';
import type { Fabric } from './fabric.js';
import { parsePacket } from './packet-view.js';

export type RawLinkType = typeof LINKTYPE_USER0 | typeof LINKTYPE_INFINIBAND;

export interface CaptureOptions {
  /** File for raw IB frames. */
  file: string;
  /** 147 (default: tshark 4.0 with user_dlts) or 247 (Wireshark >= 4.2, libpcap's rdmasniff). */
  linkType?: RawLinkType;
  /** Second file with the IPoIB packets only, LINKTYPE_IPOIB 242. */
  ipoibFile?: string;
  /** Maps the fabric's clock (ms) to microseconds since the epoch (default: performance.now() based). */
  toEpochUs?: (ms: number) => number;
}

/** Bytes queued for the disk beyond which records are counted as lost instead of piling up in memory. */
const MAX_BACKLOG = 64 * 1024 * 1024;

class PcapFile {
  private pending: Buffer[] = [];
  private scheduled = false;
  private readonly stream: WriteStream;
  records = 0;
  lost = 0;
  private error: Error | undefined;

  constructor(path: string, readonly writer: PcapWriter) {
    this.stream = createWriteStream(path);
    this.stream.on('error', (err) => { this.error = err; });
    this.stream.write(writer.fileHeader());
  }

  add(record: Buffer): void {
    if (this.error !== undefined || this.stream.writableLength > MAX_BACKLOG) { this.lost++; return; }
    this.records++;
    this.pending.push(record);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const chunk = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    if (this.error === undefined) this.stream.write(chunk);
  }

  close(): Promise<void> {
    this.flush();
    return new Promise((resolve, reject) => {
      this.stream.end(() => (this.error ? reject(this.error) : resolve()));
    });
  }
}

const IPOIB_TYPES = new Set([ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_RARP, ETHERTYPE_IPV6]);

export class CaptureFile {
  private readonly raw: PcapFile;
  private readonly ipoib: PcapFile | undefined;
  private readonly removeTap: () => void;
  private readonly toEpochUs: (ms: number) => number;

  constructor(private readonly fabric: Fabric, opts: CaptureOptions) {
    this.toEpochUs = opts.toEpochUs ?? ((ms) => Math.round((performance.timeOrigin + ms) * 1000));
    this.raw = new PcapFile(opts.file, new PcapWriter(opts.linkType ?? LINKTYPE_USER0));
    this.ipoib = opts.ipoibFile === undefined ? undefined : new PcapFile(opts.ipoibFile, new PcapWriter(LINKTYPE_IPOIB));
    this.removeTap = fabric.addTap((buf, ms) => this.capture(buf, ms));
  }

  /** Records written (or queued) and lost, per file. */
  get stats(): { frames: number; ipoibPackets: number; lost: number } {
    return { frames: this.raw.records, ipoibPackets: this.ipoib?.records ?? 0, lost: this.raw.lost + (this.ipoib?.lost ?? 0) };
  }

  private capture(buf: Buffer, ms: number): void {
    const us = this.toEpochUs(ms);
    this.raw.add(this.raw.writer.record(us, buf));
    if (this.ipoib !== undefined) this.captureIpoib(buf, us, this.ipoib);
  }

  /**
   * UD datagrams between data QPs whose payload starts with an IPoIB header (a known EtherType,
   * reserved 0: what Wireshark's IB dissector recognises too). MADs (QP1) are not IPoIB.
   */
  private captureIpoib(buf: Buffer, us: number, file: PcapFile): void {
    const v = parsePacket(buf);
    if (v.linkError !== undefined || v.error !== undefined) return;
    if (v.opcode !== OPCODE_UD_SEND_ONLY && v.opcode !== OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE) return;
    if (v.destQp === QP1 || v.srcQp === QP1 || v.payloadLength < IPOIB_HEADER_LENGTH) return;
    const p = v.payloadOffset;
    if (!IPOIB_TYPES.has(buf.readUInt16BE(p)) || buf.readUInt16BE(p + 2) !== 0) return;
    let pseudo: IpoibPseudoHeader;
    if (v.grhOffset >= 0) {
      pseudo = { kind: 'grh', tclass: v.tclass, flowLabel: v.flowLabel, srcQpn: v.srcQp, sgid: v.sgid()!, dgid: v.dgid()! };
    } else {
      const to = this.fabric.switch.unicastPort(v.dlid);
      const gid = to === undefined ? Buffer.alloc(16) : portGid(to.portGuid, to.info.subnetPrefix);
      pseudo = { kind: 'unicast', dest: { flags: 0, qpn: v.destQp, gid } };
    }
    file.add(file.writer.ipoibRecord(us, pseudo, v.payload()));
  }

  /** Stops capturing and writes everything out. */
  async close(): Promise<void> {
    this.removeTap();
    await Promise.all([this.raw.close(), this.ipoib?.close()]);
  }
}
