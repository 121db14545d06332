// The host side of the UDP fabric: a Transport (transport.ts) whose ports live in an
// `ipoib-fabric` daemon, reached through the control protocol of udp-protocol.ts. A Device opened
// on it behaves as on the in-process fabric: attach resolves once the daemon accepted the port,
// PortInfo changes arrive as PORT-STATE, frames travel in batched DATA datagrams. The transport
// keeps its sessions alive, notices a daemon that went silent (the port goes DOWN) and attaches
// again when the daemon answers, so a host outlives a restart of the fabric.
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isWireError } from '../../codec/wire-error.js';
import { copyFilter, sameFilter, validateMulticastFilter, type MulticastFilter } from './multicast-filter.js';
import type { PacketView } from './packet-view.js';
import type { PortInfo } from './port-info.js';
import type { AttachRequest, PortLink, PortSink, Transport } from './transport.js';
import {
  DEFAULT_KEEPALIVE_MS, DEFAULT_KEEPALIVE_TIMEOUT_MS, DetachReason, defaultMaxBatchBytes, ErrorCode, HEADER_BYTES,
  MAX_FRAMES_PER_DATAGRAM, MessageType, SOCKET_BUFFER_BYTES, UdpFabricError, attachErrorName, decodeDatagram,
  detachReasonName, encodeControl, encodedLength, errorName, forEachFrame, forEachSection, readHeader, writeHeader, batchIsFull, queueFrame, takeDataDatagram,
  MAX_DATAGRAM_BYTES, MAX_FILTER_RULES, type AttachMessage, type ControlMessage, type DropCode,
} from './udp-protocol.js';
import type { DaemonStatus } from './udp-server.js';

export interface UdpTransportOptions {
  /** Per ATTACH attempt. */
  attachTimeoutMs?: number;
  /** ATTACH attempts after the first. */
  attachRetries?: number;
  /**
   * How long a first ATTACH refused with DUPLICATE_GUID keeps being retried (default 4000 ms, above
   * the daemon's default keep-alive timeout of 3 s): a host restarted right after it was killed
   * finds its GUID still held by its old session until the daemon times that out. A GUID held by a
   * live host is still refused, this much later. 0: refused at once.
   */
  duplicateGuidWaitMs?: number;
  /** DATA datagram size limit (default: udp-protocol defaultMaxBatchBytes of the daemon's address). */
  maxBatchBytes?: number;
  /** Attach again after the daemon timed the port out, restarted or went silent (default true). */
  reattach?: boolean;
  /** Port events for the host's log. */
  onEvent?: (e: TransportEvent) => void;
}

export type TransportEvent =
  | { type: 'attached'; hostName: string; portNum: number; session: number; switchPort: number }
  | { type: 'link-down'; hostName: string; portNum: number; why: string }
  | { type: 'dropped'; code: DropCode; detail: string };

interface Link {
  req: AttachRequest;
  sink: PortSink;
  session: number;
  requestId: number;
  info: PortInfo | undefined;
  seq: number;
  up: boolean;
  detached: boolean;
  lastHeard: number;
  lastAttachTry: number;
  lastKeepalive: number;
  keepaliveMs: number;
  timeoutMs: number;
  out: Buffer[];
  outBytes: number;
  pending: { resolve: (l: PortLink) => void; reject: (e: Error) => void; tries: number; since: number } | undefined;
  /** Early multicast filters by MLID, as the host last set them (udp-protocol "Early multicast filters"). */
  filters: Map<number, LinkFilter> | undefined;
  filterSeq: number;
}

interface LinkFilter {
  /** What the host asked for (a copy), to recognise a call that changes nothing. */
  want: MulticastFilter | undefined;
  /** What goes to the daemon: want, or undefined (remove) when want cannot be carried. */
  wire: MulticastFilter | undefined;
  seq: number;
  acked: boolean;
  lastSent: number;
  queued: boolean;
}

/** Frames handed to one port before its completion handler gets to run (deliver()); half IPoIB's receive ring. */
const DELIVER_CHUNK = 128;

/** An unacknowledged SET-MCAST-FILTER is sent again after this long. */
const FILTER_RESEND_MS = 200;

const SEND_QUEUE_LIMIT = 4096;

export class UdpTransport implements Transport {
  readonly host: string;
  readonly port: number;
  readonly drops: Record<DropCode, number> = {
    BAD_MAGIC: 0, BAD_VERSION: 0, UNKNOWN_TYPE: 0, MALFORMED: 0, UNKNOWN_SESSION: 0, ADDRESS_MISMATCH: 0, UNEXPECTED: 0, SEND_QUEUE_FULL: 0,
  };
  /** Frames a link could not send because it was not attached. */
  sendWhileDown = 0;
  /** Filters sent as a removal because they did not fit one SET-MCAST-FILTER (the port receives everything). */
  filtersTooLarge = 0;
  /** SET-MCAST-FILTER datagrams sent, resends included. */
  filtersSent = 0;
  private readonly filterDirty: { l: Link; mlid: number }[] = [];
  /** When the daemon last sent anything for a live session of this socket (Date.now()). */
  private heardAt = 0;
  private readonly links = new Set<Link>();
  private readonly bySession = new Map<number, Link>();
  private readonly byRequest = new Map<number, Link>();
  private readonly statusWaiters = new Map<number, { chunks: (Buffer | undefined)[]; got: number; resolve: (s: DaemonStatus) => void }>();
  private nextRequest: number;
  private readonly dirty: Link[] = [];
  private flushScheduled = false;
  /** The DATA-MULTI datagram being read (onSection). */
  private rxBuf: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly attachTimeoutMs: number;
  private readonly attachRetries: number;
  private readonly duplicateGuidWaitMs: number;
  private readonly maxBatchBytes: number;
  private readonly reattach: boolean;
  private readonly onEvent: (e: TransportEvent) => void;

  private constructor(private readonly socket: Socket, host: string, port: number, opts: UdpTransportOptions) {
    this.host = host;
    this.port = port;
    this.attachTimeoutMs = opts.attachTimeoutMs ?? 500;
    this.attachRetries = opts.attachRetries ?? 5;
    this.duplicateGuidWaitMs = opts.duplicateGuidWaitMs ?? 4000;
    this.maxBatchBytes = opts.maxBatchBytes ?? defaultMaxBatchBytes(host);
    this.reattach = opts.reattach ?? true;
    this.onEvent = opts.onEvent ?? (() => undefined);
    this.nextRequest = (Math.random() * 0x7fffffff) >>> 0 || 1;
  }

  /** Opens a socket connected to the daemon at host:port (a name is resolved once, to IPv4). */
  static async connect(host: string, port: number, opts: UdpTransportOptions = {}): Promise<UdpTransport> {
    const { address } = await lookup(host, { family: 4 });
    const socket = createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const t = new UdpTransport(socket, address, port, opts);
    socket.on('message', (msg) => t.onDatagram(msg));
    // ECONNREFUSED while the daemon is away: the keep-alive logic deals with silence.
    socket.on('error', () => undefined);
    t.timer = setInterval(() => t.tick(), 100);
    return t;
  }

  attach(req: AttachRequest, sink: PortSink): Promise<PortLink> {
    if (this.closed) return Promise.reject(new UdpFabricError('CLOSED', 'transport closed'));
    const link: Link = {
      req, sink, session: 0, requestId: 0, info: undefined, seq: 0, up: false, detached: false, lastHeard: 0, lastAttachTry: 0, lastKeepalive: 0,
      keepaliveMs: DEFAULT_KEEPALIVE_MS, timeoutMs: DEFAULT_KEEPALIVE_TIMEOUT_MS, out: [], outBytes: 0, pending: undefined,
      filters: undefined, filterSeq: 0,
    };
    return new Promise<PortLink>((resolve, reject) => {
      link.pending = { resolve, reject, tries: 0, since: Date.now() };
      this.links.add(link);
      this.sendAttach(link);
    });
  }

  /** The daemon's STATUS (what `ipoib-fabric status` prints). */
  status(timeoutMs = 2000): Promise<DaemonStatus> {
    const requestId = this.newRequestId();
    return new Promise<DaemonStatus>((resolve, reject) => {
      const t = setTimeout(() => {
        this.statusWaiters.delete(requestId);
        reject(new UdpFabricError('TIMEOUT', `no STATUS answer from ${this.host}:${this.port} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.statusWaiters.set(requestId, {
        chunks: [], got: 0, resolve: (s) => { clearTimeout(t); resolve(s); },
      });
      this.sendControl({ type: 'STATUS', requestId });
    });
  }

  /** Detaches every port and closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const l of this.links) this.detachLink(l);
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const w of this.statusWaiters.values()) w.chunks.length = 0;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  // ---- attach / keep-alive ------------------------------------------------------------------

  private newRequestId(): number {
    this.nextRequest = (this.nextRequest + 1) >>> 0 || 1;
    return this.nextRequest;
  }

  private sendAttach(link: Link): void {
    if (link.requestId !== 0) this.byRequest.delete(link.requestId);
    link.requestId = this.newRequestId();
    this.byRequest.set(link.requestId, link);
    link.lastAttachTry = Date.now();
    this.resendAttach(link);
  }

  private resendAttach(link: Link): void {
    const r = link.req;
    const m: AttachMessage = {
      type: 'ATTACH', requestId: link.requestId, hostName: r.hostName, portNum: r.portNum, mtuCap: r.mtuCap ?? 5, rate: r.rate ?? 3,
      nodeGuid: r.nodeGuid, portGuid: r.portGuid,
    };
    link.lastAttachTry = Date.now();
    this.sendControl(m);
  }

  private tick(): void {
    const now = Date.now();
    for (const l of this.links) {
      if (l.detached) continue;
      if (l.pending !== undefined) {
        if (now - l.lastAttachTry >= this.attachTimeoutMs) {
          if (l.pending.tries++ >= this.attachRetries) {
            const p = l.pending;
            l.pending = undefined;
            this.forget(l);
            p.reject(new UdpFabricError('TIMEOUT', `no answer from the fabric at ${this.host}:${this.port} to ATTACH of ${l.req.hostName} port ${l.req.portNum} `
              + `after ${this.attachRetries + 1} attempts of ${this.attachTimeoutMs} ms`));
          } else {
            this.resendAttach(l);
          }
        }
        continue;
      }
      if (l.up) {
        // Any word from the daemon for any of this socket's sessions shows the daemon is there.
        if (now - Math.max(l.lastHeard, this.heardAt) > l.timeoutMs) {
          this.linkDown(l, `no word from the fabric for ${l.timeoutMs} ms`);
        } else {
          if (l.filters !== undefined) this.resendFilters(l, now);
          if (now - l.lastKeepalive >= l.keepaliveMs) {
            // Sent even while DATA flows: its PORT-STATE answer is how a sender that receives
            // nothing knows the fabric is still there.
            l.lastKeepalive = now;
            this.sendControl({ type: 'KEEPALIVE', session: l.session });
          }
        }
      } else if (this.reattach && now - l.lastAttachTry >= l.keepaliveMs) {
        this.sendAttach(l);
      }
    }
  }

  private forget(l: Link): void {
    this.links.delete(l);
    if (this.bySession.get(l.session) === l) this.bySession.delete(l.session);
    this.byRequest.delete(l.requestId);
  }

  /** The port lost its fabric: DOWN for the host (its groups are gone on the daemon's side too). */
  private linkDown(l: Link, why: string): void {
    if (!l.up) return;
    l.up = false;
    l.out = [];
    l.outBytes = 0;
    if (this.bySession.get(l.session) === l) this.bySession.delete(l.session);
    this.onEvent({ type: 'link-down', hostName: l.req.hostName, portNum: l.req.portNum, why });
    if (l.info !== undefined && l.info.state !== 'DOWN') {
      l.info = { ...l.info, state: 'DOWN' };
      l.sink.portInfo(l.info);
    }
    l.lastAttachTry = Date.now();
  }

  private detachLink(l: Link): void {
    if (l.detached) return;
    this.flushLink(l);
    l.detached = true;
    if (l.up) this.sendControl({ type: 'DETACH', session: l.session, reason: DetachReason.BY_HOST });
    l.up = false;
    this.forget(l);
  }

  private portLink(l: Link, nodeGuid: bigint, portGuid: bigint): PortLink {
    return {
      nodeGuid, portGuid,
      send: (buf: Buffer, _view?: PacketView) => this.enqueue(l, buf),
      setMulticastFilter: (mlid: number, filter: MulticastFilter | undefined) => this.setFilter(l, mlid, filter),
      detach: () => this.detachLink(l),
    };
  }

  // ---- receive ------------------------------------------------------------------------------

  private onDatagram(buf: Buffer): void {
    if (this.closed) return;
    let type: number;
    try {
      type = readHeader(buf);
    } catch (err) {
      if (!isWireError(err)) throw err;
      return this.drop(err.field === 'magic' ? 'BAD_MAGIC' : err.field === 'version' ? 'BAD_VERSION' : 'MALFORMED', err.message);
    }
    if (type === MessageType.DATA) {
      const l = this.bySession.get(buf.readUInt32BE(4));
      if (l === undefined || !l.up) return this.drop('UNKNOWN_SESSION', `DATA for session ${buf.readUInt32BE(4)}`);
      l.lastHeard = this.heardAt = Date.now();
      try {
        forEachFrame(buf, 0, undefined);
      } catch (err) {
        if (!isWireError(err)) throw err;
        return this.drop('MALFORMED', err.message);
      }
      this.deliver(l, buf, 0);
      return;
    }
    if (type === MessageType.DATA_MULTI) {
      // The whole datagram is checked before any section is delivered.
      try {
        forEachSection(buf, 0, undefined);
      } catch (err) {
        if (!isWireError(err)) throw err;
        return this.drop('MALFORMED', err.message);
      }
      this.rxBuf = buf;
      forEachSection(buf, 0, this.onSection);
      this.rxBuf = undefined;
      return;
    }
    let m: ControlMessage;
    try {
      m = decodeDatagram(buf);
    } catch (err) {
      if (!isWireError(err)) throw err;
      return this.drop(err.field === 'type' ? 'UNKNOWN_TYPE' : 'MALFORMED', err.message);
    }
    this.onControl(m);
  }

  /** One section of a DATA-MULTI: a DATA of its session. Bound once. */
  private readonly onSection = (session: number, at: number): void => {
    const l = this.bySession.get(session);
    if (l === undefined || !l.up) { this.drop('UNKNOWN_SESSION', `DATA-MULTI section for session ${session}`); return; }
    l.lastHeard = this.heardAt = Date.now();
    this.deliver(l, this.rxBuf!, at - 4);
  };

  /**
   * Hands a port the frames of a validated DATA message at `at` (or of a DATA-MULTI section, at its
   * session field less 4), DELIVER_CHUNK at a time. Between chunks every queued promise callback
   * runs (a process.nextTick queued from a microtask runs after the microtask queue is empty), among
   * them the host's completion handler, which reposts its receives: a DATA datagram holds up to a
   * few hundred frames, more than a port's receive ring (IPoIB posts 256), and an HCA's driver too
   * polls while its link keeps delivering. All of it still happens before the next datagram is read,
   * so frames keep their order.
   */
  private deliver(l: Link, buf: Buffer, at: number): void {
    const count = buf.readUInt16BE(at + HEADER_BYTES);
    let p = at + HEADER_BYTES + 2;
    let i = 0;
    const step = (): void => {
      if (!l.up || l.detached) return;
      const end = Math.min(count, i + DELIVER_CHUNK);
      for (; i < end; i++) {
        const len = buf.readUInt16BE(p);
        l.sink.packet(buf.subarray(p + 2, p + 2 + len), undefined);
        p += 2 + len;
      }
      if (i < count) queueMicrotask(() => { process.nextTick(step); });
    };
    step();
  }

  private onControl(m: ControlMessage): void {
    switch (m.type) {
      case 'ATTACH_OK': {
        const l = this.byRequest.get(m.requestId);
        if (l === undefined || l.detached) return;
        if (l.up && l.session === m.session) return;
        this.byRequest.delete(m.requestId);
        l.session = m.session;
        l.up = true;
        l.lastHeard = this.heardAt = Date.now();
        l.lastKeepalive = l.lastHeard;
        l.keepaliveMs = Math.max(50, m.keepaliveMs);
        l.timeoutMs = Math.max(l.keepaliveMs * 2, m.timeoutMs);
        l.seq = 0;
        this.bySession.set(m.session, l);
        // A new session starts with no filters at the daemon (restarted, or it timed the port out).
        if (l.filters !== undefined) {
          for (const [mlid, f] of l.filters) {
            if (f.want === undefined) { l.filters.delete(mlid); continue; }
            f.acked = false;
            this.queueFilter(l, mlid, f);
          }
        }
        this.onEvent({ type: 'attached', hostName: l.req.hostName, portNum: l.req.portNum, session: m.session, switchPort: m.switchPort });
        const p = l.pending;
        l.pending = undefined;
        if (p !== undefined) p.resolve(this.portLink(l, m.nodeGuid, m.portGuid));
        l.info = m.info;
        l.sink.portInfo(m.info);
        return;
      }
      case 'ATTACH_ERR': {
        const l = this.byRequest.get(m.requestId);
        if (l === undefined || l.detached) return;
        const name = attachErrorName(m.code);
        const p = l.pending;
        if (p === undefined) {
          // A re-attach refused (e.g. the old session is not timed out yet): keep trying.
          return;
        }
        if (name === 'DUPLICATE_GUID' && Date.now() - p.since < this.duplicateGuidWaitMs) {
          // Perhaps our own previous life's session, not timed out yet: ask again after attachTimeoutMs.
          p.tries = 0;
          return;
        }
        l.pending = undefined;
        this.forget(l);
        p.reject(new UdpFabricError(name ?? 'REFUSED', `fabric refused ${l.req.hostName} port ${l.req.portNum}: ${name ?? `code ${m.code}`}: ${m.text}`));
        return;
      }
      case 'PORT_STATE': {
        const l = this.bySession.get(m.session);
        if (l === undefined || !l.up) return this.drop('UNKNOWN_SESSION', `PORT-STATE for session ${m.session}`);
        l.lastHeard = this.heardAt = Date.now();
        // seq orders the changes: an older one overtaken by a newer (UDP reorders) is ignored.
        if (((m.seq - l.seq) | 0) < 0) return;
        const changed = l.info === undefined || l.seq !== m.seq;
        l.seq = m.seq;
        if (!changed) return;
        l.info = m.info;
        l.sink.portInfo(m.info);
        return;
      }
      case 'DETACH':
      case 'ERROR': {
        const l = this.bySession.get(m.session);
        if (l === undefined) return;
        const why = m.type === 'DETACH'
          ? `fabric detached the port: ${detachReasonName(m.reason) ?? m.reason}`
          : `fabric error ${errorName(m.code) ?? m.code}: ${m.text}`;
        if (m.type === 'ERROR' && m.code !== ErrorCode.NOT_ATTACHED && m.code !== ErrorCode.ADDRESS_MISMATCH) return;
        this.linkDown(l, why);
        return;
      }
      case 'MCAST_FILTER_OK': {
        const l = this.bySession.get(m.session);
        if (l === undefined || !l.up) return this.drop('UNKNOWN_SESSION', `MCAST-FILTER-OK for session ${m.session}`);
        l.lastHeard = this.heardAt = Date.now();
        const f = l.filters?.get(m.mlid);
        if (f !== undefined && f.seq === m.seq) f.acked = true;
        return;
      }
      case 'STATUS_RESP': {
        const w = this.statusWaiters.get(m.requestId);
        if (w === undefined) return;
        if (w.chunks.length === 0) w.chunks.length = m.count;
        if (w.chunks.length !== m.count || w.chunks[m.index] !== undefined) return;
        w.chunks[m.index] = m.chunk;
        if (++w.got < m.count) return;
        this.statusWaiters.delete(m.requestId);
        try {
          w.resolve(JSON.parse(Buffer.concat(w.chunks as Buffer[]).toString('utf8')) as DaemonStatus);
        } catch {
          this.drop('MALFORMED', 'STATUS answer is not JSON');
        }
        return;
      }
      default:
        this.drop('UNEXPECTED', `${m.type} is not sent to a host`);
    }
  }

  private drop(code: DropCode, detail: string): void {
    this.drops[code]++;
    this.onEvent({ type: 'dropped', code, detail });
  }

  // ---- send ---------------------------------------------------------------------------------

  private sendControl(m: ControlMessage): void {
    this.sendRaw(encodeControl(m));
  }

  /** buf: a datagram or its gather list (takeDataDatagram). */
  private sendRaw(buf: Buffer | Buffer[]): void {
    if (this.closed) return;
    if (this.socket.getSendQueueCount() > SEND_QUEUE_LIMIT) { this.drops.SEND_QUEUE_FULL++; return; }
    // No callback (Node would queue a completion per datagram); errors go to the socket's 'error' listener.
    this.socket.send(buf);
  }

  private enqueue(l: Link, frame: Buffer): void {
    if (!l.up) { this.sendWhileDown++; return; }
    if (batchIsFull(l, frame, this.maxBatchBytes)) this.flushLink(l);
    if (l.out.length === 0) this.dirty.push(l);
    queueFrame(l, frame);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    // Filters first: a widened one should be in force before the frames that may draw an answer.
    if (this.filterDirty.length > 0) {
      const now = Date.now();
      for (const { l, mlid } of this.filterDirty.splice(0)) {
        const f = l.filters?.get(mlid);
        if (f === undefined || !f.queued) continue;
        f.queued = false;
        if (l.up && !f.acked) this.sendFilter(l, mlid, f, now);
      }
    }
    for (const l of this.dirty.splice(0)) this.flushLink(l);
  }

  /** PortLink.setMulticastFilter: records the filter and sends it at the end of this event-loop turn. */
  private setFilter(l: Link, mlid: number, filter: MulticastFilter | undefined): void {
    // Refused at once, as the in-process switch does.
    if (filter !== undefined) validateMulticastFilter(filter);
    if (l.detached) return;
    const was = l.filters?.get(mlid);
    if (filter === undefined ? was === undefined || was.want === undefined : was?.want !== undefined && sameFilter(was.want, filter)) return;
    let wire: MulticastFilter | undefined;
    if (filter !== undefined) {
      wire = copyFilter(filter);
      if (!fitsDatagram(wire)) {
        this.filtersTooLarge++;
        wire = undefined;
      }
    }
    const f: LinkFilter = { want: wire ?? (filter === undefined ? undefined : copyFilter(filter)), wire, seq: 0, acked: false, lastSent: 0, queued: false };
    (l.filters ??= new Map()).set(mlid, f);
    this.queueFilter(l, mlid, f);
  }

  private queueFilter(l: Link, mlid: number, f: LinkFilter): void {
    l.filterSeq = (l.filterSeq + 1) >>> 0;
    f.seq = l.filterSeq;
    f.acked = false;
    if (f.queued) return;
    f.queued = true;
    this.filterDirty.push({ l, mlid });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private sendFilter(l: Link, mlid: number, f: LinkFilter, now: number): void {
    f.lastSent = now;
    this.filtersSent++;
    this.sendControl({ type: 'SET_MCAST_FILTER', session: l.session, seq: f.seq, mlid, filter: f.wire });
  }

  private resendFilters(l: Link, now: number): void {
    for (const [mlid, f] of l.filters!) if (!f.acked && !f.queued && now - f.lastSent >= FILTER_RESEND_MS) this.sendFilter(l, mlid, f, now);
  }

  private flushLink(l: Link): void {
    if (l.out.length === 0 || !l.up) return;
    this.sendRaw(takeDataDatagram(l, l.session));
  }

}

/** Whether f can travel in one SET-MCAST-FILTER: offsets in u16 and the datagram within UDP's limit. */
function fitsDatagram(f: MulticastFilter): boolean {
  for (const rule of f.rules) {
    if (rule.length > 255) return false;
    for (const m of rule) if (m.offset > 0xffff) return false;
  }
  return encodedLength({ type: 'SET_MCAST_FILTER', session: 1, seq: 0, mlid: 0xc000, filter: f }) <= MAX_DATAGRAM_BYTES
    && f.rules.length <= MAX_FILTER_RULES;
}

/** One STATUS query: opens a socket, asks, closes. */
export async function queryFabricStatus(host: string, port: number, timeoutMs = 2000): Promise<DaemonStatus> {
  const t = await UdpTransport.connect(host, port, { reattach: false });
  try {
    return await t.status(timeoutMs);
  } finally {
    await t.close();
  }
}
