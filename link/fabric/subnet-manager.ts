// The subnet manager and its SA, on their own port of the switch (as OpenSM runs on an HCA port):
// brings ports from INIT to ACTIVE with a LID (lid-manager.ts) and a P_Key table (partitions.ts),
// creates the partitions' IPoIB broadcast groups at start, keeps multicast membership
// (multicast-groups.ts) and programs the switch's forwarding tables from it, and answers SA MADs
// arriving on QP1 of its port as real bytes through the switch. Independent of any transport: it
// sees FabricPorts, never hosts.
import { OPCODE_UD_SEND_ONLY, QKEY_QP1_WELL_KNOWN, QP1, pkeysMatch } from '../wire/ib-constants.js';
import { portGid } from '../wire/ib-address.js';
import { MAD_SIZE } from '../wire/mad-constants.js';
import type { DropReason } from './counters.js';
import { MulticastGroups } from './multicast-groups.js';
import { buildPacket, newPacketFields, parsePacket, type PacketView } from './packet-view.js';
import { pkeyTableFor, type Partition } from './partitions.js';
import type { PortDirectory } from './path-records.js';
import type { Scheduler, Timer } from './scheduler.js';
import { handleSaMad } from './subnet-admin.js';
import type { FabricPort, Switch } from './switch.js';
import { LidManager } from './lid-manager.js';

export interface SmOptions {
  subnetPrefix: bigint;
  /** PortInfo.SubnetTimeout (OSM_DEFAULT_SUBNET_TIMEOUT 0x12): the SA's PacketLifeTime. */
  subnetTimeout: number;
  /** Virtual time between a link coming up and the sweep that activates it. */
  sweepDelayMs: number;
  /** Time the SA takes to answer. */
  saDelayMs: number;
}

/** One line per SA MAD handled, for logs and tests. */
export interface SaEvent {
  from: bigint;
  method: number;
  attributeId: number;
  status: number;
}

/** The fabric's attached ports, as the SM looks them up. */
export interface FabricDirectory extends PortDirectory {
  byGuid(guid: bigint): FabricPort | undefined;
  byLid(lid: number): FabricPort | undefined;
  all(): Iterable<FabricPort>;
}

export class SubnetManager {
  readonly lids = new LidManager();
  readonly groups: MulticastGroups;
  private smPort: FabricPort | undefined;
  private readonly pending = new Set<FabricPort>();
  private sweepTimer: Timer | undefined;
  readonly saLog: SaEvent[] = [];
  /** Drops the SA decided on (bad MADs), with the detail an operator needs. */
  onDrop: (reason: DropReason, detail: string, from: FabricPort | undefined) => void = () => undefined;

  constructor(
    private readonly sw: Switch,
    private readonly sched: Scheduler,
    private readonly ports: FabricDirectory,
    private partitions: Partition[],
    readonly opts: SmOptions,
  ) {
    this.groups = new MulticastGroups(opts.subnetPrefix, opts.subnetTimeout, (mlid, receivers) => {
      this.sw.setMulticast(mlid, receivers as FabricPort[]);
    }, (mlid, port) => this.sw.addMulticastPort(mlid, port as FabricPort), (mlid, port) => this.sw.removeMulticastPort(mlid, port as FabricPort));
  }

  get port(): FabricPort | undefined { return this.smPort; }

  /** Takes the SM's own port: LID first (OpenSM assigns its own port before any other), then the partition groups. */
  start(port: FabricPort): void {
    this.smPort = port;
    this.activate(port);
    for (const p of this.partitions) {
      for (const g of p.groups) this.groups.createWellKnown(g, p.pkey);
    }
  }

  pkeysFor(guid: bigint): number[] {
    return pkeyTableFor(this.partitions, guid, guid === this.smPort?.portGuid);
  }

  /** A link came up (attach or hotplug): the next sweep makes the port ACTIVE. */
  linkUp(port: FabricPort): void {
    this.pending.add(port);
    if (this.sweepTimer === undefined) {
      this.sweepTimer = this.sched.setTimer(this.opts.sweepDelayMs, () => this.sweep());
    }
  }

  /** A link went down or away: the port leaves every group and its LID route; its LID stays remembered. */
  linkDown(port: FabricPort): void {
    this.pending.delete(port);
    this.groups.removePort(port.portGuid);
    if (port.lid !== 0 && this.sw.unicastPort(port.lid) === port) this.sw.setUnicast(port.lid, undefined);
    this.lids.release(port.portGuid);
  }

  private sweep(): void {
    this.sweepTimer = undefined;
    for (const p of [...this.pending]) {
      this.pending.delete(p);
      if (p.attached && p.state === 'INIT') this.activate(p);
    }
  }

  private activate(p: FabricPort): void {
    const lid = this.lids.assign(p.portGuid);
    const smLid = this.smPort?.lid || lid;
    p.update({ lid, smLid, pkeys: this.pkeysFor(p.portGuid), subnetTimeout: this.opts.subnetTimeout, state: 'ARMED' });
    this.sw.setUnicast(lid, p);
    p.update({ state: 'ACTIVE' });
  }

  /** A packet for the SM port: the checks its HCA makes, then the SA (after saDelayMs). */
  receive(buf: Buffer, given: PacketView | undefined): void {
    const me = this.smPort;
    if (me === undefined) return;
    const v = given ?? parsePacket(buf);
    const drop = (r: DropReason, detail: string): void => {
      me.counters.drop(r);
      this.onDrop(r, detail, this.ports.byLid(v.slid));
    };
    if (v.linkError !== undefined) return drop(v.linkError, 'malformed LRH');
    if (!v.icrcOk()) return drop('BAD_ICRC', 'ICRC mismatch');
    if (v.error !== undefined) return drop(v.error, 'malformed transport headers');
    if (v.opcode !== OPCODE_UD_SEND_ONLY) return drop('QP_TYPE', `opcode 0x${v.opcode.toString(16)} to the SM port`);
    if (v.destQp !== QP1) return drop('NO_QP', `DestQP ${v.destQp} on the SM port (only QP1, the GSI, is served)`);
    if (!me.info.pkeys.some((p) => pkeysMatch(p, v.pkey))) return drop('PKEY_VIOLATION', `P_Key 0x${v.pkey.toString(16)}`);
    if (v.qkey !== QKEY_QP1_WELL_KNOWN) return drop('QKEY_VIOLATION', `Q_Key 0x${v.qkey.toString(16)} to QP1`);
    if (v.payloadLength < MAD_SIZE) return drop('BAD_MAD', `${v.payloadLength}-byte MAD (256 expected)`);
    const requester = this.ports.byLid(v.slid);
    if (requester === undefined) return drop('BAD_MAD', `no port has SLID ${v.slid}`);
    const mad = Buffer.from(buf.subarray(v.payloadOffset, v.payloadOffset + MAD_SIZE));
    const req = { slid: v.slid, sl: v.sl, pkey: v.pkey, srcQp: v.srcQp, sgid: v.grhOffset >= 0 ? Buffer.from(v.sgid()!) : undefined };
    this.sched.setTimer(this.opts.saDelayMs, () => this.answer(mad, requester, req));
  }

  private answer(mad: Buffer, requester: FabricPort, req: { slid: number; sl: number; pkey: number; srcQp: number; sgid: Buffer | undefined }): void {
    const me = this.smPort;
    if (me === undefined || me.state !== 'ACTIVE') return;
    let out: ReturnType<typeof handleSaMad>;
    try {
      out = handleSaMad(mad, requester, {
        groups: this.groups, ports: this.ports, subnetPrefix: this.opts.subnetPrefix, subnetTimeout: this.opts.subnetTimeout,
      });
    } catch (err) {
      // A request the SA code did not foresee must cost one MAD, not the daemon.
      out = { kind: 'drop', detail: `SA failed on this MAD: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (out.kind === 'drop') {
      me.counters.drop('BAD_MAD');
      this.onDrop('BAD_MAD', out.detail, requester);
      return;
    }
    this.saLog.push({ from: requester.portGuid, method: mad[3]!, attributeId: mad.readUInt16BE(16), status: out.status });
    const f = newPacketFields();
    f.sl = req.sl;
    f.dlid = req.slid;
    f.slid = me.lid;
    f.opcode = OPCODE_UD_SEND_ONLY;
    f.pkey = req.pkey;
    f.destQp = req.srcQp;
    f.qkey = QKEY_QP1_WELL_KNOWN;
    f.srcQp = QP1;
    if (req.sgid !== undefined) {
      f.grh = { sgid: portGid(me.portGuid, this.opts.subnetPrefix), dgid: req.sgid, tclass: 0, flowLabel: 0, hopLmt: 0 };
    }
    me.ingress(buildPacket(f, out.mad), undefined);
  }

  /** Replaces the partition configuration: every active port gets its new P_Key table. */
  setPartitions(partitions: Partition[], allPorts: Iterable<FabricPort>): void {
    this.partitions = partitions;
    for (const g of partitions.flatMap((p) => p.groups.map((gg) => ({ gg, pkey: p.pkey })))) this.groups.createWellKnown(g.gg, g.pkey);
    for (const p of allPorts) if (p.state === 'ACTIVE') p.update({ pkeys: this.pkeysFor(p.portGuid) });
  }
}

