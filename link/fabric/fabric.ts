// The emulated fabric: one switch, the subnet manager on its own port, fault injection and a
// capture point, and the registry of attached end ports. Transports (transport.ts) connect hosts
// to it; everything here runs on the injected Scheduler and Random.
import { DEFAULT_SUBNET_PREFIX } from '../wire/ib-constants.js';
import { formatGid, formatGuid } from '../wire/ib-address.js';
import { OSM_DEFAULT_SUBNET_TIMEOUT } from '../wire/mad-constants.js';
import { type CounterSnapshot, type DropReason } from './counters.js';
import { FabricError } from './errors.js';
import { FaultInjector, type FaultConfig } from './fault.js';
import { deriveNodeGuid, derivePortGuid } from './guid.js';
import { defaultPartitions, type Partition } from './partitions.js';
import { MTU_4096, RATE_10G, type PortInfo, type PortState } from './port-info.js';
import { seededRandom, type Random, type Scheduler } from './scheduler.js';
import { SubnetManager } from './subnet-manager.js';
import { FabricPort, Switch, type PortSink, type Tap } from './switch.js';
import type { AttachRequest } from './transport.js';
import type { Topology } from './topology.js';

export interface FabricOptions {
  scheduler: Scheduler;
  /** Seeded randomness for faults (default: seed 1). */
  random?: Random;
  /** Partitions (parsePartitions()); default: OpenSM without partitions.conf. */
  partitions?: Partition[];
  /** ibnetdiscover topology: host names, GUIDs and switch ports are then taken from it. */
  topology?: Topology;
  /** A guid2lid table to start from (OpenSM's file format). */
  guid2lid?: string;
  subnetPrefix?: bigint;
  smHostName?: string;
  subnetTimeout?: number;
  sweepDelayMs?: number;
  saDelayMs?: number;
  /** Called for every drop the SM port decides on (bad MADs and the like), with a sentence for the log. */
  onSmDrop?: (reason: DropReason, detail: string, from: bigint | undefined) => void;
}

export interface PortStatus {
  hostName: string;
  nodeGuid: string;
  portGuid: string;
  portNum: number;
  switchPort: number;
  lid: number;
  state: PortState;
  pkeys: string[];
  mtuCap: number;
  counters: CounterSnapshot;
}

export interface GroupStatus {
  mgid: string;
  mlid: number;
  qkey: number;
  pkey: string;
  mtu: number;
  rate: number;
  sl: number;
  wellKnown: boolean;
  members: { portGuid: string; joinState: number; proxyJoin: boolean }[];
}

export interface FabricStatus {
  smLid: number;
  smPortGuid: string;
  ports: PortStatus[];
  groups: GroupStatus[];
}

const MAX_SWITCH_PORTS = 0xfffe;

export class Fabric {
  readonly switch: Switch;
  readonly sm: SubnetManager;
  readonly scheduler: Scheduler;
  readonly subnetPrefix: bigint;
  private readonly rnd: Random;
  private readonly byGuid = new Map<bigint, FabricPort>();
  private readonly usedSwitchPorts = new Set<number>();
  private fabricFaults: FaultInjector | undefined;
  private readonly topology: Topology | undefined;

  constructor(opts: FabricOptions) {
    this.scheduler = opts.scheduler;
    this.rnd = opts.random ?? seededRandom(1);
    this.subnetPrefix = opts.subnetPrefix ?? DEFAULT_SUBNET_PREFIX;
    this.topology = opts.topology;
    const sched = opts.scheduler;
    this.switch = new Switch(() => sched.now());
    const dir = {
      byGuid: (g: bigint) => this.byGuid.get(g),
      byLid: (lid: number) => this.switch.unicastPort(lid),
      all: () => this.byGuid.values(),
    };
    this.sm = new SubnetManager(this.switch, sched, dir, opts.partitions ?? defaultPartitions(), {
      subnetPrefix: this.subnetPrefix,
      subnetTimeout: opts.subnetTimeout ?? OSM_DEFAULT_SUBNET_TIMEOUT,
      sweepDelayMs: opts.sweepDelayMs ?? 0,
      saDelayMs: opts.saDelayMs ?? 0,
    });
    const onSmDrop = opts.onSmDrop;
    if (onSmDrop) this.sm.onDrop = (r, d, from) => onSmDrop(r, d, from?.portGuid);
    if (opts.guid2lid !== undefined) this.sm.lids.importGuid2Lid(opts.guid2lid);
    const smHost = opts.smHostName ?? 'opensm';
    const sm = this.sm;
    const smPort = this.newPort({ hostName: smHost, portNum: 1 }, {
      packet: (buf, view) => sm.receive(buf, view),
      portInfo: () => undefined,
    }, true);
    this.sm.start(smPort);
  }

  /** A host's HCA port is plugged in: the link comes up (INIT) and the next SM sweep activates it. */
  attachPort(req: AttachRequest, sink: PortSink): FabricPort {
    const port = this.newPort(req, sink);
    sink.portInfo(port.info);
    this.sm.linkUp(port);
    return port;
  }

  private newPort(req: AttachRequest, sink: PortSink, isSm = false): FabricPort {
    if (typeof req.hostName !== 'string' || req.hostName.length === 0) {
      throw new FabricError('BAD_ATTACH', 'attach request without a host name');
    }
    if (!Number.isInteger(req.portNum) || req.portNum < 1 || req.portNum > 254) {
      throw new FabricError('BAD_PORT_NUM', `${req.hostName}: HCA port ${String(req.portNum)} is out of range 1..254`);
    }
    const mtuCap = req.mtuCap ?? MTU_4096;
    if (!Number.isInteger(mtuCap) || mtuCap < 1 || mtuCap > 5) throw new FabricError('BAD_ATTACH', `${req.hostName}: MTU enum ${mtuCap} is not 1..5`);
    let nodeGuid = req.nodeGuid;
    let portGuid = req.portGuid;
    let switchPort: number | undefined;
    if (this.topology !== undefined && !isSm) {
      const node = this.topology.hosts.get(req.hostName);
      if (node === undefined) throw new FabricError('UNKNOWN_HOST', `host "${req.hostName}" is not in the topology`);
      if (req.portNum > node.ports) throw new FabricError('BAD_PORT_NUM', `${req.hostName} has ${node.ports} port(s), not ${req.portNum}`);
      nodeGuid ??= node.nodeGuid;
      portGuid ??= node.portGuids.get(req.portNum);
      switchPort = node.switchPorts.get(req.portNum);
    }
    nodeGuid ??= deriveNodeGuid(req.hostName);
    portGuid ??= derivePortGuid(nodeGuid, req.portNum);
    if (this.byGuid.has(portGuid)) {
      throw new FabricError('DUPLICATE_GUID', `port GUID ${formatGuid(portGuid)} (${req.hostName} port ${req.portNum}) is already attached`);
    }
    if (switchPort === undefined || this.usedSwitchPorts.has(switchPort)) {
      switchPort = 1;
      while (this.usedSwitchPorts.has(switchPort) && switchPort < MAX_SWITCH_PORTS) switchPort++;
    }
    this.usedSwitchPorts.add(switchPort);
    const info: PortInfo = {
      portGuid, portNum: req.portNum, state: 'INIT', lid: 0, lmc: 0, smLid: 0, smSl: 0, subnetPrefix: this.subnetPrefix,
      pkeys: [], mtuCap, activeMtu: mtuCap, rate: req.rate ?? RATE_10G, subnetTimeout: 0,
    };
    const port = new FabricPort(switchPort, req.hostName, nodeGuid, info, sink,
      (p, buf, view) => this.switch.forward(p, buf, view));
    this.byGuid.set(portGuid, port);
    if (this.fabricFaults) this.wrapIngress(port, this.fabricFaults);
    return port;
  }

  /** Unplugs a port: it goes DOWN, leaves its groups and the registry; its LID stays remembered for it. */
  detachPort(portGuid: bigint): void {
    const port = this.byGuid.get(portGuid);
    if (port === undefined) return;
    if (port === this.sm.port) throw new FabricError('BAD_ATTACH', 'the SM port cannot be detached');
    port.update({ state: 'DOWN' });
    port.attached = false;
    this.sm.linkDown(port);
    this.byGuid.delete(portGuid);
    this.usedSwitchPorts.delete(port.switchPort);
  }

  /** Hotplug: the physical link goes down (port DOWN, groups left) or comes back (INIT, then ACTIVE at the next sweep). */
  setLinkState(portGuid: bigint, up: boolean): void {
    const port = this.port(portGuid);
    if (!up) {
      if (port.state === 'DOWN') return;
      port.update({ state: 'DOWN' });
      this.sm.linkDown(port);
      return;
    }
    if (port.state !== 'DOWN') return;
    port.update({ state: 'INIT', lid: 0 });
    this.sm.linkUp(port);
  }

  port(portGuid: bigint): FabricPort {
    const p = this.byGuid.get(portGuid);
    if (p === undefined) throw new FabricError('UNKNOWN_PORT', `no attached port has GUID ${formatGuid(portGuid)}`);
    return p;
  }

  ports(): IterableIterator<FabricPort> {
    return this.byGuid.values();
  }

  /** Faults on every port's transmit path (host -> switch); undefined removes them. */
  setFaults(config: FaultConfig | undefined): FaultInjector | undefined {
    this.fabricFaults = config === undefined ? undefined : this.injector(config);
    for (const p of this.byGuid.values()) {
      if (p === this.sm.port) continue;
      if (this.fabricFaults) this.wrapIngress(p, this.fabricFaults);
      else p.ingress = (buf, view) => this.switch.forward(p, buf, view);
    }
    return this.fabricFaults;
  }

  /** Faults on one port: `tx` on what it sends, `rx` on what it receives. */
  setPortFaults(portGuid: bigint, faults: { tx?: FaultConfig; rx?: FaultConfig }): { tx?: FaultInjector; rx?: FaultInjector } {
    const p = this.port(portGuid);
    const out: { tx?: FaultInjector; rx?: FaultInjector } = {};
    if (faults.tx) { out.tx = this.injector(faults.tx, p); this.wrapIngress(p, out.tx); }
    else if (this.fabricFaults) this.wrapIngress(p, this.fabricFaults);
    else p.ingress = (buf, view) => this.switch.forward(p, buf, view);
    if (faults.rx) {
      const rx = this.injector(faults.rx, p);
      out.rx = rx;
      p.egress = rx.wrap((buf, view) => p.sink.packet(buf, view));
    } else {
      p.egress = (buf, view) => p.sink.packet(buf, view);
    }
    return out;
  }

  private injector(config: FaultConfig, port?: FabricPort): FaultInjector {
    return new FaultInjector(config, this.rnd, this.scheduler, port ? () => port.counters.drop('FAULT_LOSS') : () => undefined);
  }

  private wrapIngress(p: FabricPort, inj: FaultInjector): void {
    // A packet lost on the way in was still sent by the host: count it as sent, then as lost.
    p.ingress = inj.wrap((buf, view) => { if (p.attached) this.switch.forward(p, buf, view); }, (buf) => {
      p.counters.xmitPkts++;
      p.counters.xmitBytes += buf.length;
      p.counters.drop('FAULT_LOSS');
    });
  }

  addTap(tap: Tap): () => void {
    return this.switch.addTap(tap);
  }

  counters(portGuid: bigint): CounterSnapshot {
    return this.port(portGuid).counters.snapshot();
  }

  /** Everything `ipoib-fabric status` prints: ports (like ibstat) and groups with members (like saquery -m). */
  status(): FabricStatus {
    const sm = this.sm.port!;
    return {
      smLid: sm.lid,
      smPortGuid: formatGuid(sm.portGuid),
      ports: [...this.byGuid.values()].sort((a, b) => a.switchPort - b.switchPort).map((p) => ({
        hostName: p.hostName, nodeGuid: formatGuid(p.nodeGuid), portGuid: formatGuid(p.portGuid), portNum: p.info.portNum,
        switchPort: p.switchPort, lid: p.lid, state: p.state,
        pkeys: p.info.pkeys.map((k) => '0x' + k.toString(16).padStart(4, '0')), mtuCap: p.info.mtuCap,
        counters: p.counters.snapshot(),
      })),
      groups: [...this.sm.groups.groups()].map((g) => ({
        mgid: formatGid(g.rec.mgid), mlid: g.rec.mlid, qkey: g.rec.qkey, pkey: '0x' + g.rec.pkey.toString(16),
        mtu: g.rec.mtu, rate: g.rec.rate, sl: g.rec.sl, wellKnown: g.wellKnown,
        members: [...g.members.values()].map((m) => ({ portGuid: formatGuid(m.port.portGuid), joinState: m.joinState, proxyJoin: m.proxyJoin })),
      })),
    };
  }
}
