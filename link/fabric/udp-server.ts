// The fabric daemon's network side: the in-process Fabric (switch + SM) with its end ports
// reachable over UDP through the control protocol of udp-protocol.ts. Each attached HCA port is a
// session; frames from a host are checked as the HCA's link would check them (LRH, lengths,
// transport headers, opcode, ICRC) and put on the switch; frames the switch sends to a port are
// batched per session and sent once per event-loop turn. Bad datagrams are counted and dropped,
// never thrown: nothing a host sends can stop the daemon.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isWireError } from '../../codec/wire-error.js';
import { formatGid, formatGuid } from '../wire/ib-address.js';
import { DROP_REASON_LIST, type DropReason } from './counters.js';
import { FabricError } from './errors.js';
import { Fabric, type FabricOptions, type FabricStatus } from './fabric.js';
import type { FaultStats } from './fault.js';
import { parsePacket } from './packet-view.js';
import { defaultPartitions, type Partition } from './partitions.js';
import type { PortInfo } from './port-info.js';
import { RealScheduler, type Timer } from './scheduler.js';
import type { FabricPort } from './switch.js';
import {
  AttachErrorCode, DEFAULT_FORGET_AFTER_MS, DEFAULT_KEEPALIVE_MS, DEFAULT_KEEPALIVE_TIMEOUT_MS, DetachReason, ErrorCode, HEADER_BYTES, MAX_FRAMES_PER_DATAGRAM, MessageType, SOCKET_BUFFER_BYTES, STATUS_CHUNK_BYTES,
  decodeDatagram, dropCodeOf, encodeControl, forEachFrame, readHeader, writeHeader, batchIsFull, queueFrame, takeDataDatagram,
  defaultMaxBatchBytes, RecentDatagrams, MAX_SECTIONS_PER_DATAGRAM, sectionBytes, takeDataMultiDatagram, type AttachErrorName, type AttachMessage, type ControlMessage, type DropCode,
  type SetMcastFilterMessage,
} from './udp-protocol.js';

/** The part of a pino logger the daemon uses (structured fields first, then the sentence). */
export interface DaemonLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  debug(fields: object, msg: string): void;
}

const SILENT: DaemonLogger = { info: () => undefined, warn: () => undefined, debug: () => undefined };

export interface FabricDaemonOptions {
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** UDP port (0 = any free port; default DEFAULT_FABRIC_PORT is the caller's choice to pass). */
  port: number;
  /** Fabric configuration (partitions, topology, ...); the scheduler is the daemon's real clock. */
  fabric?: Omit<FabricOptions, 'scheduler'>;
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
  /** How long a timed-out port stays listed as DOWN before it is removed. */
  forgetAfterMs?: number;
  /** DATA datagram size limit (default: udp-protocol defaultMaxBatchBytes of each host's address). */
  maxBatchBytes?: number;
  /** Attached ports beyond which ATTACH gets FABRIC_FULL (default 16384). */
  maxPorts?: number;
  log?: DaemonLogger;
}

interface Session {
  id: number;
  /** "address:port" of the host socket that attached it. */
  key: string;
  address: string;
  udpPort: number;
  requestId: number;
  hostName: string;
  portGuid: bigint;
  nodeGuid: bigint;
  port: FabricPort | undefined;
  alive: boolean;
  lastSeen: number;
  deadSince: number;
  seq: number;
  info: PortInfo | undefined;
  /** ATTACH-OK sent: PORT-STATE changes go out from then on. */
  ready: boolean;
  out: Buffer[];
  outBytes: number;
  /** DATA datagram size limit towards this host. */
  maxBatch: number;
  /** The newest SET-MCAST-FILTER seq applied, by MLID. */
  filterSeq: Map<number, number> | undefined;
}

export interface SessionStatus {
  session: number;
  hostName: string;
  portGuid: string;
  address: string;
  alive: boolean;
  lastSeenMsAgo: number;
}

/** A partition as partitions.conf states it (the P_Key tables it yields are in each port's pkeys). */
export interface PartitionStatus {
  name: string;
  pkey: string;
  ipoib: boolean;
  members: string[];
  groups: string[];
}

export interface DaemonStatus {
  partitions: PartitionStatus[];
  daemon: {
    listen: string;
    protocolVersion: number;
    uptimeS: number;
    keepaliveMs: number;
    keepaliveTimeoutMs: number;
    /** multiTx: of tx, the DATA-MULTI datagrams (several sessions of one host socket in one). */
    datagrams: { rx: number; tx: number; rxBytes: number; txBytes: number; multiTx: number };
    /** Datagrams dropped before the fabric, by DropCode. */
    drops: Record<string, number>;
    /** Frames dropped at the daemon's ingress checks (and SA MADs the SM refused), by DropReason. */
    frameDrops: Record<string, number>;
    sessions: SessionStatus[];
    /** What the fabric-wide fault injector did, when one is set (ipoib-fabric --loss ...). */
    faults?: FaultStats;
  };
  fabric: FabricStatus;
}

const ERROR_REPLIES_PER_SECOND = 10;
const SEND_QUEUE_LIMIT = 4096;

export class FabricDaemon {
  readonly fabric: Fabric;
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly forgetAfterMs: number;
  /** The configured DATA size limit; undefined: chosen per host address (defaultMaxBatchBytes). */
  readonly maxBatchBytes: number | undefined;
  readonly maxPorts: number;
  readonly drops: Record<DropCode, number> = {
    BAD_MAGIC: 0, BAD_VERSION: 0, UNKNOWN_TYPE: 0, MALFORMED: 0, UNKNOWN_SESSION: 0, ADDRESS_MISMATCH: 0, UNEXPECTED: 0, SEND_QUEUE_FULL: 0,
  };
  readonly frameDrops: Record<DropReason, number>;
  readonly datagrams = { rx: 0, tx: 0, rxBytes: 0, txBytes: 0, multiTx: 0 };
  /** The fault injector's counters, for STATUS (set by whoever called fabric.setFaults()). */
  faultStats: (() => FaultStats) | undefined;
  private readonly sched = new RealScheduler();
  private readonly log: DaemonLogger;
  private readonly sessions = new Map<number, Session>();
  /**
   * When anything last arrived for a live session from each host address (ADDRESS:PORT): every
   * session of that address is alive while it is heard from at all. One process holds all the
   * ports of its socket, so it lives or dies with them; a host group of a thousand ports whose
   * event loop is busy sends DATA long before it gets to each port's KEEPALIVE.
   */
  private readonly heardFrom = new Map<string, number>();
  private readonly byGuid = new Map<bigint, Session>();
  private nextSession = 1;
  private readonly dirty: Session[] = [];
  /** DATA datagrams received, so their frames can be forwarded without a copy (udp-protocol ReceivedDatagrams). */
  private readonly received = new RecentDatagrams();
  private rxSession: Session | undefined;
  private flushScheduled = false;
  private readonly errorBudget = new Map<string, { second: number; n: number }>();
  private readonly warned = new Map<string, number>();
  private tick: Timer | undefined;
  private closed = false;
  private readonly started = Date.now();
  private readonly partitions: Partition[];

  private constructor(private readonly socket: Socket, opts: FabricDaemonOptions) {
    this.log = opts.log ?? SILENT;
    this.keepaliveMs = opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    this.keepaliveTimeoutMs = opts.keepaliveTimeoutMs ?? Math.max(DEFAULT_KEEPALIVE_TIMEOUT_MS, 3 * this.keepaliveMs);
    this.forgetAfterMs = opts.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS;
    this.maxBatchBytes = opts.maxBatchBytes;
    this.maxPorts = opts.maxPorts ?? 16384;
    const fd = {} as Record<DropReason, number>;
    for (const r of DROP_REASON_LIST) fd[r] = 0;
    this.frameDrops = fd;
    this.partitions = opts.fabric?.partitions ?? defaultPartitions();
    const userSmDrop = opts.fabric?.onSmDrop;
    this.fabric = new Fabric({
      ...opts.fabric,
      scheduler: this.sched,
      onSmDrop: (reason, detail, from) => {
        this.frameDrops[reason]++;
        this.warnOnce(`sm:${reason}`, { reason, detail, from: from === undefined ? undefined : formatGuid(from) }, 'SM dropped a packet');
        userSmDrop?.(reason, detail, from);
      },
    });
  }

  /** Binds the socket and starts serving. */
  static async start(opts: FabricDaemonOptions): Promise<FabricDaemon> {
    const socket = createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(opts.port, opts.host ?? '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const d = new FabricDaemon(socket, opts);
    socket.on('message', (msg, rinfo) => {
      try {
        d.onDatagram(msg, rinfo);
      } catch (err) {
        // A bug must not take every host's fabric down with it: count, log, carry on.
        d.drops.UNEXPECTED++;
        d.log.warn({ err: err instanceof Error ? err.stack : String(err), from: `${rinfo.address}:${rinfo.port}` }, 'internal error on a datagram');
      }
    });
    // ICMP errors from hosts that went away surface here on Linux; they say nothing the
    // keep-alive timeout will not say.
    socket.on('error', (err) => d.log.debug({ err: err.message }, 'socket error'));
    const every = Math.max(50, Math.min(d.keepaliveMs, d.keepaliveTimeoutMs / 4));
    const loop = (): void => {
      d.checkLiveness();
      d.tick = d.sched.setTimer(every, loop);
    };
    d.tick = d.sched.setTimer(every, loop);
    const a = socket.address();
    d.log.info({ listen: `${a.address}:${a.port}`, keepaliveMs: d.keepaliveMs, keepaliveTimeoutMs: d.keepaliveTimeoutMs }, 'fabric daemon listening');
    return d;
  }

  address(): { host: string; port: number } {
    const a = this.socket.address();
    return { host: a.address, port: a.port };
  }

  /** Tells every live host the fabric is going away, then closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    for (const s of this.sessions.values()) if (s.alive) this.sendTo(s.address, s.udpPort, { type: 'DETACH', session: s.id, reason: DetachReason.SHUTDOWN });
    this.closed = true;
    this.tick?.cancel();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  status(): DaemonStatus {
    const now = this.sched.now();
    const a = this.address();
    return {
      partitions: this.partitions.map((p) => ({
        name: p.name, pkey: '0x' + p.pkey.toString(16).padStart(4, '0'), ipoib: p.ipoib,
        members: p.members.map((m) => `${typeof m.who === 'bigint' ? formatGuid(m.who) : m.who}=${m.membership}`),
        groups: p.groups.map((g) => formatGid(g.mgid)),
      })),
      daemon: {
        listen: `${a.host}:${a.port}`,
        protocolVersion: 1,
        uptimeS: Math.round((Date.now() - this.started) / 1000),
        keepaliveMs: this.keepaliveMs,
        keepaliveTimeoutMs: this.keepaliveTimeoutMs,
        datagrams: { ...this.datagrams },
        drops: { ...this.drops },
        frameDrops: { ...this.frameDrops },
        sessions: [...this.sessions.values()].map((s) => ({
          session: s.id, hostName: s.hostName, portGuid: formatGuid(s.portGuid), address: s.key, alive: s.alive,
          lastSeenMsAgo: Math.round(now - s.lastSeen),
        })),
        ...(this.faultStats !== undefined ? { faults: { ...this.faultStats() } } : {}),
      },
      fabric: this.fabric.status(),
    };
  }

  // ---- receive ------------------------------------------------------------------------------

  private onDatagram(buf: Buffer, from: RemoteInfo): void {
    if (this.closed) return;
    this.datagrams.rx++;
    this.datagrams.rxBytes += buf.length;
    let type: number;
    try {
      type = readHeader(buf);
    } catch (err) {
      if (!isWireError(err)) throw err;
      // A host on another protocol version learns why its ATTACH goes unanswered.
      if (err.field === 'version' && buf.length >= HEADER_BYTES && buf[3] === MessageType.ATTACH) {
        this.sendTo(from.address, from.port, { type: 'ATTACH_ERR', requestId: buf.readUInt32BE(4), code: AttachErrorCode.BAD_VERSION, text: err.message });
      }
      return this.drop(dropCodeOf(err), from, err.message);
    }
    if (type === MessageType.DATA) return this.onData(buf, from);
    let m: ControlMessage;
    try {
      m = decodeDatagram(buf);
    } catch (err) {
      if (!isWireError(err)) throw err;
      return this.drop(dropCodeOf(err), from, err.message);
    }
    switch (m.type) {
      case 'ATTACH': return this.onAttach(m, from);
      case 'KEEPALIVE': {
        const s = this.sessionFor(m.session, from);
        if (s === undefined) return;
        this.sendPortState(s);
        return;
      }
      case 'DETACH': {
        const s = this.sessionFor(m.session, from);
        if (s === undefined) return;
        this.log.info({ session: s.id, host: s.hostName, portGuid: formatGuid(s.portGuid) }, 'host detached');
        this.remove(s);
        return;
      }
      case 'STATUS': return this.onStatus(m.requestId, from);
      case 'SET_MCAST_FILTER': return this.onSetFilter(m, from);
      default:
        return this.drop('UNEXPECTED', from, `${m.type} is not sent to the daemon`);
    }
  }

  /** The session a message names, if it exists, is alive and comes from its own address; else counted and answered. */
  private sessionFor(id: number, from: RemoteInfo): Session | undefined {
    const s = this.sessions.get(id);
    if (s === undefined || !s.alive) {
      this.drop('UNKNOWN_SESSION', from, `session ${id} is not attached`);
      this.replyError(from, id, ErrorCode.NOT_ATTACHED, `session ${id} is not attached to this fabric: send ATTACH first`);
      return undefined;
    }
    if (s.address !== from.address || s.udpPort !== from.port) {
      this.drop('ADDRESS_MISMATCH', from, `session ${id} belongs to ${s.key}`);
      this.replyError(from, id, ErrorCode.ADDRESS_MISMATCH, `session ${id} was attached from another address`);
      return undefined;
    }
    const now = this.sched.now();
    s.lastSeen = now;
    this.heardFrom.set(s.key, now);
    return s;
  }

  private onData(buf: Buffer, from: RemoteInfo): void {
    const s = this.sessionFor(buf.readUInt32BE(4), from);
    if (s === undefined) return;
    try {
      forEachFrame(buf, 0, undefined);
    } catch (err) {
      if (!isWireError(err)) throw err;
      return this.drop('MALFORMED', from, err.message);
    }
    // Frames the switch sends on unchanged may leave in place (takeDataDatagram). With nothing
    // queued, no frame can lie in an older datagram: the list is emptied.
    if (this.dirty.length === 0) this.received.clear();
    this.received.add(buf);
    this.rxSession = s;
    forEachFrame(buf, 0, this.onFrame);
    this.rxSession = undefined;
  }

  /** One frame of the DATA datagram being read (rxSession's). A method bound once: no closure per datagram. */
  private readonly onFrame = (frame: Buffer): void => {
    const s = this.rxSession!;
    const port = s.port!;
    const v = parsePacket(frame);
    const reason = v.linkError ?? v.error ?? (v.icrcOk() ? undefined : 'BAD_ICRC');
    if (reason === undefined) {
      port.ingress(frame, v);
      return;
    }
    // Sent by the host, refused at its link: counted as sent and discarded, like FAULT_LOSS.
    const c = port.counters;
    c.xmitPkts++;
    c.xmitBytes += frame.length;
    c.drop(reason);
    this.frameDrops[reason]++;
    this.warnOnce(`frame:${reason}`, { reason, host: s.hostName, session: s.id }, 'frame dropped at ingress');
  };

  /**
   * A host's early filter for one MLID (udp-protocol "Early multicast filters"): applied to its
   * switch port unless a newer seq was applied already (UDP reorders a resend behind its successor);
   * acknowledged either way, so the host stops resending.
   */
  private onSetFilter(m: SetMcastFilterMessage, from: RemoteInfo): void {
    const s = this.sessionFor(m.session, from);
    if (s === undefined) return;
    const last = s.filterSeq?.get(m.mlid);
    if (last === undefined || ((m.seq - last) | 0) > 0) {
      (s.filterSeq ??= new Map()).set(m.mlid, m.seq);
      this.fabric.switch.setMulticastFilter(s.port!, m.mlid, m.filter);
    }
    this.sendTo(s.address, s.udpPort, { type: 'MCAST_FILTER_OK', session: s.id, seq: m.seq, mlid: m.mlid });
  }

  private onAttach(m: AttachMessage, from: RemoteInfo): void {
    const key = `${from.address}:${from.port}`;
    for (const s of this.sessions.values()) {
      // A retry of an ATTACH already served: same answer.
      if (s.alive && s.key === key && s.requestId === m.requestId && s.hostName === m.hostName && s.port?.info.portNum === m.portNum) {
        this.sendAttachOk(s);
        return;
      }
    }
    const refuse = (code: AttachErrorName, text: string): void => {
      this.log.warn({ host: m.hostName, from: key, code }, `attach refused: ${text}`);
      this.sendTo(from.address, from.port, { type: 'ATTACH_ERR', requestId: m.requestId, code: AttachErrorCode[code], text });
    };
    if (this.liveCount() >= this.maxPorts) return refuse('FABRIC_FULL', `the fabric has ${this.maxPorts} attached ports, its limit`);
    const s: Session = {
      id: this.allocSession(), key, address: from.address, udpPort: from.port, requestId: m.requestId, hostName: m.hostName,
      portGuid: m.portGuid ?? 0n, nodeGuid: m.nodeGuid ?? 0n, port: undefined, alive: true, lastSeen: this.sched.now(), deadSince: 0,
      seq: 0, info: undefined, ready: false, out: [], outBytes: 0, maxBatch: this.maxBatchBytes ?? defaultMaxBatchBytes(from.address),
      filterSeq: undefined,
    };
    const req = {
      hostName: m.hostName, portNum: m.portNum, mtuCap: m.mtuCap, rate: m.rate,
      ...(m.nodeGuid !== undefined ? { nodeGuid: m.nodeGuid } : {}), ...(m.portGuid !== undefined ? { portGuid: m.portGuid } : {}),
    };
    const sink = {
      packet: (buf: Buffer) => this.enqueue(s, buf),
      portInfo: (info: PortInfo) => {
        s.info = info;
        s.seq = (s.seq + 1) >>> 0;
        if (s.ready && s.alive) this.sendPortState(s);
      },
    };
    let port: FabricPort;
    try {
      port = this.attachReplacingDead(req, sink);
    } catch (err) {
      if (!(err instanceof FabricError)) throw err;
      const code: AttachErrorName = err.code === 'DUPLICATE_GUID' ? 'DUPLICATE_GUID'
        : err.code === 'UNKNOWN_HOST' ? 'UNKNOWN_HOST'
          : err.code === 'BAD_PORT_NUM' ? 'PORT_OUT_OF_RANGE'
            : err.code === 'NO_LIDS' ? 'FABRIC_FULL' : 'BAD_ATTACH';
      return refuse(code, err.message);
    }
    s.port = port;
    s.portGuid = port.portGuid;
    s.nodeGuid = port.nodeGuid;
    this.sessions.set(s.id, s);
    this.byGuid.set(s.portGuid, s);
    s.ready = true;
    this.sendAttachOk(s);
    this.log.info({ session: s.id, host: s.hostName, portGuid: formatGuid(s.portGuid), switchPort: port.switchPort, from: key }, 'host attached');
  }

  /** A port GUID whose previous session timed out may come back: the old DOWN port is replaced. */
  private attachReplacingDead(req: Parameters<Fabric['attachPort']>[0], sink: Parameters<Fabric['attachPort']>[1]): FabricPort {
    try {
      return this.fabric.attachPort(req, sink);
    } catch (err) {
      if (!(err instanceof FabricError) || err.code !== 'DUPLICATE_GUID') throw err;
      const dead = [...this.sessions.values()].find((s) => !s.alive
        && (req.portGuid !== undefined ? s.portGuid === req.portGuid : s.hostName === req.hostName && s.port?.info.portNum === req.portNum));
      if (dead === undefined) throw err;
      this.log.info({ session: dead.id, host: dead.hostName }, 'timed-out port replaced by a new attach');
      this.remove(dead);
      return this.fabric.attachPort(req, sink);
    }
  }

  private sendAttachOk(s: Session): void {
    const port = s.port!;
    this.sendTo(s.address, s.udpPort, {
      type: 'ATTACH_OK', requestId: s.requestId, session: s.id, switchPort: port.switchPort, keepaliveMs: this.keepaliveMs,
      timeoutMs: this.keepaliveTimeoutMs, nodeGuid: port.nodeGuid, portGuid: port.portGuid, info: port.info,
    });
  }

  private sendPortState(s: Session): void {
    const info = s.info ?? s.port?.info;
    if (info === undefined) return;
    this.flushSession(s);
    this.sendTo(s.address, s.udpPort, { type: 'PORT_STATE', session: s.id, seq: s.seq, info });
  }

  private onStatus(requestId: number, from: RemoteInfo): void {
    const text = Buffer.from(JSON.stringify(this.status()), 'utf8');
    const count = Math.max(1, Math.ceil(text.length / STATUS_CHUNK_BYTES));
    for (let i = 0; i < count; i++) {
      this.sendTo(from.address, from.port, {
        type: 'STATUS_RESP', requestId, index: i, count, chunk: text.subarray(i * STATUS_CHUNK_BYTES, (i + 1) * STATUS_CHUNK_BYTES),
      });
    }
  }

  // ---- sessions -----------------------------------------------------------------------------

  private allocSession(): number {
    for (;;) {
      const id = this.nextSession;
      this.nextSession = this.nextSession >= 0xffffffff ? 1 : this.nextSession + 1;
      if (!this.sessions.has(id)) return id;
    }
  }

  private liveCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.alive) n++;
    return n;
  }

  private remove(s: Session): void {
    this.sessions.delete(s.id);
    if (this.byGuid.get(s.portGuid) === s) this.byGuid.delete(s.portGuid);
    s.alive = false;
    s.out = [];
    s.outBytes = 0;
    if (s.port !== undefined && s.port.attached) this.fabric.detachPort(s.portGuid);
  }

  private checkLiveness(): void {
    const now = this.sched.now();
    for (const s of [...this.sessions.values()]) {
      if (s.alive && now - Math.max(s.lastSeen, this.heardFrom.get(s.key) ?? 0) > this.keepaliveTimeoutMs) {
        s.alive = false;
        s.deadSince = now;
        s.out = [];
        s.outBytes = 0;
        this.log.warn({ session: s.id, host: s.hostName, portGuid: formatGuid(s.portGuid), silentMs: Math.round(now - s.lastSeen) },
          'host timed out: port DOWN, multicast groups left');
        if (s.port?.attached) this.fabric.setLinkState(s.portGuid, false);
        this.sendTo(s.address, s.udpPort, { type: 'DETACH', session: s.id, reason: DetachReason.TIMED_OUT });
      } else if (!s.alive && now - s.deadSince > this.forgetAfterMs) {
        this.remove(s);
      }
    }
    const second = Math.floor(now / 1000);
    for (const [k, b] of this.errorBudget) if (b.second !== second) this.errorBudget.delete(k);
    for (const [k, t] of this.heardFrom) if (now - t > this.forgetAfterMs) this.heardFrom.delete(k);
  }

  // ---- send ---------------------------------------------------------------------------------

  private enqueue(s: Session, frame: Buffer): void {
    if (!s.alive) return;
    if (batchIsFull(s, frame, s.maxBatch)) this.flushSession(s);
    if (s.out.length === 0) this.dirty.push(s);
    queueFrame(s, frame);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const list = this.dirty.splice(0);
    // Sessions behind one host socket share DATA-MULTI datagrams (udp-protocol "DATA carries a batch").
    // A session flushed early in the turn (a full batch) is listed again when it queues more.
    const byKey = new Map<string, Session[]>();
    const seen = new Set<Session>();
    for (const s of list) {
      if (s.out.length === 0 || seen.has(s)) continue;
      seen.add(s);
      const l = byKey.get(s.key);
      if (l === undefined) byKey.set(s.key, [s]);
      else l.push(s);
    }
    for (const group of byKey.values()) {
      if (group.length === 1) this.flushSession(group[0]!);
      else this.flushGroup(group);
    }
    this.received.clear();
  }

  /** Several sessions of one host socket: their batches packed into as few DATA-MULTI datagrams as fit. */
  private flushGroup(group: Session[]): void {
    const limit = group[0]!.maxBatch;
    let pack: Session[] = [];
    let bytes = HEADER_BYTES;
    const send = (): void => {
      if (pack.length === 1) this.flushSession(pack[0]!);
      else if (pack.length > 1) {
        const first = pack[0]!;
        this.datagrams.multiTx++;
        this.sendRaw(takeDataMultiDatagram(pack.map((s) => ({ q: s, session: s.id })), this.received), first.address, first.udpPort, bytes);
      }
      pack = [];
      bytes = HEADER_BYTES;
    };
    for (const s of group) {
      const n = sectionBytes(s);
      if (pack.length > 0 && (bytes + n > limit || pack.length >= MAX_SECTIONS_PER_DATAGRAM)) send();
      pack.push(s);
      bytes += n;
    }
    send();
  }

  private flushSession(s: Session): void {
    if (s.out.length === 0) return;
    const bytes = HEADER_BYTES + 2 + s.outBytes;
    this.sendRaw(takeDataDatagram(s, s.id, this.received), s.address, s.udpPort, bytes);
  }


  private sendTo(address: string, port: number, m: ControlMessage): void {
    this.sendRaw(encodeControl(m), address, port);
  }

  /** buf: a datagram, or its gather list (takeDataDatagram) of `bytes` in all. */
  private sendRaw(buf: Buffer | Buffer[], address: string, port: number, bytes = (buf as Buffer).length): void {
    if (this.closed) return;
    // A host that stopped reading would make the kernel queue grow without bound: UD may drop.
    if (this.socket.getSendQueueCount() > SEND_QUEUE_LIMIT) { this.drops.SEND_QUEUE_FULL++; return; }
    this.datagrams.tx++;
    this.datagrams.txBytes += bytes;
    // No callback: with one, Node queues a completion per datagram even when the send went
    // through at once. A failure surfaces as the socket's 'error' event (logged in start()).
    this.socket.send(buf, port, address);
  }

  private replyError(from: RemoteInfo, id: number, code: number, text: string): void {
    const key = `${from.address}:${from.port}`;
    const second = Math.floor(this.sched.now() / 1000);
    const b = this.errorBudget.get(key);
    if (b !== undefined && b.second === second) {
      if (b.n >= ERROR_REPLIES_PER_SECOND) return;
      b.n++;
    } else {
      this.errorBudget.set(key, { second, n: 1 });
    }
    this.sendTo(from.address, from.port, { type: 'ERROR', session: id, code, text });
  }

  private drop(code: DropCode, from: RemoteInfo, detail: string): void {
    this.drops[code]++;
    this.warnOnce(`dgram:${code}`, { code, from: `${from.address}:${from.port}`, detail }, 'datagram dropped');
  }

  /** Logs a drop reason at most once per second, with the count since the last line. */
  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.sched.now();
    const last = this.warned.get(key);
    if (last !== undefined && now - last < 1000) return;
    this.warned.set(key, now);
    this.log.warn(fields, msg);
  }
}
