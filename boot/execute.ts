// The bring-up plan (plan.ts) executed on an emulated host, in openibd's order: P_Key children
// created; every interface's mode and MTU set (mode first, so 65520 is allowed); static addresses;
// interfaces up (ONBOOT / STARTMODE; the HA secondary stays down, as ipoibtools' HA notes say);
// carriers awaited; the DHCP client started on EVERY BOOTPROTO=dhcp interface at once (an initramfs
// that configures only the first is a classic failure) and all of them awaited, each bounded; then
// the bonds (ib-bonding) and the HA service (ipoib_ha.pl --with-arping --with-multicast, as openibd
// starts it). Nothing here stops at a failure: each interface reports what happened to it, and a
// problem names the file and key it comes from, as the plan's diagnostics do.
//
// The DHCP client is injected (boot/ must not import bin/): bin/ipoib-boot.ts starts client/daemon.ts
// with the host ports of bin/cluster/host-ports.ts.
import { Bond, HaService, type BondStatus, type HaEvent, type BondEvent, type HaStatus } from '../link/ha/index.js';
import type { Host, IpoibMode } from '../link/ipoib/index.js';
import { diag, formatDiagnostic, type Diagnostic } from './diagnostic.js';
import type { BootPlan, PlanInterface } from './plan.js';

/** Bounded wait for carriers and for each DHCP lease (virtual or real ms, the host scheduler's). */
export const DEFAULT_READY_MS = 60_000;
const WAIT_STEP_MS = 10;

export interface DhcpStartRequest {
  host: Host;
  /** The plan's interface: the client's identity (hook $interface, lease file, the port the client identifier is built from). */
  name: string;
  /** The device carrying the interface now; an HA primary's follows the failover. */
  device(): string;
  portGuid: bigint;
  mode: IpoibMode;
  datagramMtu: number;
}

export interface DhcpHandle {
  /** Resolves with "address/prefix" once bound (never rejects; a client that never binds leaves it pending). */
  bound: Promise<string>;
  address(): string | null;
  /** The client identifier, hex. */
  clientId(): string;
  /** The interface moved to another device (HA failover): traffic and the lease's configuration follow. */
  moved(device: string): void;
  stop(): Promise<void>;
}

export type DhcpStarter = (req: DhcpStartRequest) => Promise<DhcpHandle>;

export interface ExecuteOptions {
  startDhcpClient?: DhcpStarter | null;
  readyMs?: number;
  /** HA link monitor interval (default 100 ms). */
  haPollMs?: number;
  /** openibd starts ipoib_ha.pl with --with-arping --with-multicast; both default true. */
  haArping?: boolean;
  haMulticast?: boolean;
  haFailback?: boolean;
  onHaEvent?: (e: HaEvent) => void;
  onBondEvent?: (e: BondEvent) => void;
}

export type OutcomeState = 'up' | 'bound' | 'down' | 'standby' | 'slave' | 'no-carrier' | 'dhcp-timeout' | 'failed' | 'skipped';

export interface InterfaceOutcome {
  name: string;
  kind: PlanInterface['kind'];
  state: OutcomeState;
  mode: IpoibMode | null;
  mtu: number | null;
  addressing: PlanInterface['addressing'];
  /** "10.0.0.3/24" once configured. */
  address: string | null;
  carrier: boolean;
  /** Virtual/real ms from the start of the bring-up to ready (carrier; bound for DHCP). */
  readyMs: number | null;
  notes: string[];
}

export interface BootReport {
  host: string;
  startedAt: number;
  elapsedMs: number;
  interfaces: InterfaceOutcome[];
  bonds: BondStatus[];
  ha: HaStatus | null;
  /** The plan's diagnostics and what went wrong while executing it. */
  problems: Diagnostic[];
  ok: boolean;
}

export class BootExecution {
  readonly dhcp = new Map<string, DhcpHandle>();
  readonly bonds = new Map<string, Bond>();
  ha: HaService | null = null;
  readonly outcomes = new Map<string, InterfaceOutcome>();
  readonly problems: Diagnostic[] = [];
  private stoppedFlag = false;
  /** When executePlan returned (the bring-up's end). */
  finishedAt: number | null = null;

  constructor(readonly host: Host, readonly plan: BootPlan, readonly startedAt: number) {}

  report(): BootReport {
    const outs = [...this.outcomes.values()].map((o) => this.refresh(o));
    const bad = outs.filter((o) => o.state === 'failed' || o.state === 'no-carrier' || o.state === 'dhcp-timeout');
    return {
      host: this.host.name, startedAt: this.startedAt, elapsedMs: (this.finishedAt ?? this.host.scheduler.now()) - this.startedAt, interfaces: outs,
      bonds: [...this.bonds.values()].map((b) => b.status()), ha: this.ha?.status() ?? null,
      problems: [...this.plan.warnings, ...this.problems], ok: bad.length === 0 && !this.problems.some((p) => p.severity === 'error'),
    };
  }

  private refresh(o: InterfaceOutcome): InterfaceOutcome {
    if (!this.host.interfaces().some((i) => i.name === o.name)) return { ...o };
    const v = this.host.iface(o.name);
    const addr = this.host.addrShow(o.name)[0];
    return { ...o, mode: v.mode, mtu: v.mtu, carrier: v.carrier, address: addr !== undefined ? `${addr.address}/${addr.prefixlen}` : o.kind === 'bond' ? o.address : null };
  }

  get stopped(): boolean {
    return this.stoppedFlag;
  }

  /** openibd stop: services stopped (DHCP leases kept for INIT-REBOOT), addresses removed, interfaces down. */
  async stop(): Promise<void> {
    if (this.stoppedFlag) return;
    this.stoppedFlag = true;
    this.ha?.stop();
    for (const b of this.bonds.values()) b.stop();
    await Promise.all([...this.dhcp.values()].map((d) => d.stop().catch(() => undefined)));
    for (const i of this.host.interfaces()) {
      for (const a of this.host.addrShow(i.name)) {
        try { this.host.addrDel(i.name, `${a.address}/${a.prefixlen}`); } catch { /* already gone */ }
      }
      try { this.host.linkSet(i.name, { up: false }); } catch { /* a closed interface */ }
    }
  }
}

/** Resolves true when `cond` holds, false after limitMs, polling on the host's scheduler. */
export function waitFor(host: Host, cond: () => boolean, limitMs: number): Promise<boolean> {
  const end = host.scheduler.now() + limitMs;
  return new Promise((resolve) => {
    const check = (): void => {
      if (cond()) { resolve(true); return; }
      if (host.scheduler.now() >= end) { resolve(false); return; }
      host.scheduler.setTimer(Math.min(WAIT_STEP_MS, end - host.scheduler.now()), check);
    };
    check();
  });
}

function whereOf(i: PlanInterface, key: string | null): { file: string | null; key: string | null } {
  return { file: i.configFile, key };
}

export async function executePlan(host: Host, plan: BootPlan, opts: ExecuteOptions = {}): Promise<BootExecution> {
  const sched = host.scheduler;
  const t0 = sched.now();
  const ex = new BootExecution(host, plan, t0);
  const readyMs = opts.readyMs ?? DEFAULT_READY_MS;
  const problem = (i: PlanInterface | null, key: string | null, message: string, severity: 'error' | 'warning' = 'warning'): void => {
    const d = diag(severity, 'execute', i !== null ? whereOf(i, key) : { file: plan.openibConf, key }, message);
    ex.problems.push(d);
    if (i !== null) ex.outcomes.get(i.name)?.notes.push(formatDiagnostic(d));
  };
  if (!plan.ipoibLoaded) return ex;

  const exists = (name: string): boolean => host.interfaces().some((x) => x.name === name);
  const ipoib = plan.interfaces.filter((i) => i.kind !== 'bond');
  for (const i of ipoib) {
    ex.outcomes.set(i.name, {
      name: i.name, kind: i.kind, state: 'down', mode: null, mtu: null, addressing: i.addressing, address: null, carrier: false, readyMs: null, notes: [],
    });
  }

  // ---- create children, set mode and MTU, static addresses, up ----
  const up: PlanInterface[] = [];
  for (const i of ipoib) {
    const out = ex.outcomes.get(i.name) as InterfaceOutcome;
    if (i.kind === 'child' && !exists(i.name)) {
      try {
        const made = host.createChild(i.parent as string, i.pkey as number).name;
        if (made !== i.name) {
          problem(i, 'DEVICE', `the P_Key child of ${i.parent} for 0x${(i.pkey as number).toString(16)} is named ${made}, not ${i.name}; it is left unconfigured`);
          out.state = 'failed';
          continue;
        }
        out.notes.push(`created as P_Key 0x${((i.pkey as number) | 0x8000).toString(16)} child of ${i.parent}`);
      } catch (err) {
        problem(i, 'PKEY_ID', `cannot create ${i.name}: ${(err as Error).message}`, 'error');
        out.state = 'failed';
        continue;
      }
    }
    if (!exists(i.name)) {
      problem(i, 'DEVICE', `${i.name} does not exist on host ${host.name} (it has ${host.interfaces().map((x) => x.name).join(', ')}); skipped`, 'error');
      out.state = 'failed';
      continue;
    }
    setLink(host, i, problem);
    if (i.addressing === 'static' && i.address !== null && i.prefix !== null && i.bondMaster === null) {
      try {
        host.addrAdd(i.name, `${i.address}/${i.prefix}`);
      } catch (err) {
        problem(i, 'IPADDR', `${i.address}/${i.prefix}: ${(err as Error).message}`, 'error');
      }
    }
    if (i.haRole === 'secondary') { out.state = 'standby'; continue; }
    if (!i.onboot && i.bondMaster === null && i.haRole !== 'primary') { out.notes.push('not brought up (ONBOOT=no / STARTMODE)'); continue; }
    try {
      host.linkSet(i.name, { up: true });
      up.push(i);
    } catch (err) {
      problem(i, null, `cannot bring ${i.name} up: ${(err as Error).message}`, 'error');
      out.state = 'failed';
    }
  }

  // ---- carriers (broadcast group joined), all at once, bounded ----
  await Promise.all(up.map(async (i) => {
    const out = ex.outcomes.get(i.name) as InterfaceOutcome;
    const ok = await waitFor(host, () => host.iface(i.name).carrier, readyMs);
    if (ok) {
      out.readyMs = sched.now() - t0;
      out.state = i.bondMaster !== null ? 'slave' : 'up';
    } else {
      out.state = 'no-carrier';
      problem(i, null, `${i.name}: no carrier within ${readyMs} ms (port down or broadcast group not joined)`);
    }
  }));

  // ---- DHCP on every BOOTPROTO=dhcp interface, in parallel ----
  const haPrimary = plan.ha?.primary ?? null;
  const deviceOf = new Map<string, string>();
  const dhcpIfs = up.filter((i) => i.addressing === 'dhcp' && i.bondMaster === null);
  if (dhcpIfs.length > 0 && !opts.startDhcpClient) {
    for (const i of dhcpIfs) problem(i, 'BOOTPROTO', `BOOTPROTO=dhcp but no DHCP client is available here; ${i.name} stays unaddressed`);
  } else {
    await Promise.all(dhcpIfs.map(async (i) => {
      const out = ex.outcomes.get(i.name) as InterfaceOutcome;
      if (!host.iface(i.name).carrier) { out.notes.push('DHCP started without carrier; it retransmits until the link is up'); }
      deviceOf.set(i.name, i.name);
      let handle: DhcpHandle;
      try {
        const v = host.iface(i.name);
        handle = await (opts.startDhcpClient as DhcpStarter)({
          host, name: i.name, device: () => deviceOf.get(i.name) ?? i.name,
          portGuid: host.device.queryPort(v.portNum).portGuid, mode: v.mode, datagramMtu: v.mcastMtu,
        });
      } catch (err) {
        problem(i, 'BOOTPROTO', `the DHCP client did not start on ${i.name}: ${(err as Error).message}`, 'error');
        out.state = 'failed';
        return;
      }
      ex.dhcp.set(i.name, handle);
      const got = await Promise.race([handle.bound.then((a) => a), waitFor(host, () => false, readyMs).then(() => null)]);
      if (got === null) {
        out.state = 'dhcp-timeout';
        problem(i, 'BOOTPROTO', `${i.name}: no DHCP lease within ${readyMs} ms; the client keeps trying`);
        return;
      }
      out.state = 'bound';
      out.address = got;
      out.readyMs = sched.now() - t0;
      out.notes.push(`bound ${got}, client identifier ${handle.clientId()}`);
    }));
  }

  // ---- bonds ----
  for (const b of plan.bonds) {
    const planIf = plan.interfaces.find((x) => x.name === b.name);
    const slaves = b.slaves.filter((s) => exists(s));
    for (const s of b.slaves.filter((x) => !exists(x))) {
      problem(null, `${b.name}_SLAVES`, `${b.name}: slave ${s} does not exist on host ${host.name}; the bond goes on without it`);
    }
    const out: InterfaceOutcome = {
      name: b.name, kind: 'bond', state: 'failed', mode: planIf?.mode ?? null, mtu: planIf?.mtu ?? null, addressing: 'static',
      address: `${b.address}/${b.prefix}`, carrier: false, readyMs: null, notes: [],
    };
    ex.outcomes.set(b.name, out);
    if (slaves.length === 0) { out.notes.push('no slave exists: not created'); continue; }
    try {
      const bond = Bond.start(host, {
        name: b.name, slaves, address: `${b.address}/${b.prefix}`, miimonMs: b.miimonMs, initialActive: slaves.includes(b.primary) ? b.primary : null,
        ...(planIf !== undefined ? { link: { mode: planIf.mode, mtu: planIf.mtu } } : {}),
        ...(opts.onBondEvent ? { onEvent: opts.onBondEvent } : {}),
      });
      ex.bonds.set(b.name, bond);
      const ok = await waitFor(host, () => bond.active !== null, readyMs);
      out.state = ok ? 'up' : 'no-carrier';
      out.readyMs = ok ? sched.now() - t0 : null;
      out.notes.push(ok ? `active slave ${bond.active}` : `no slave has link within ${readyMs} ms`);
    } catch (err) {
      problem(null, `${b.name}_SLAVES`, `${b.name}: ${(err as Error).message}`, 'error');
    }
  }

  // ---- HA ----
  if (plan.ha !== null) {
    const { primary, secondary } = plan.ha;
    try {
      const pIf = plan.interfaces.find((x) => x.name === primary);
      ex.ha = HaService.start(host, {
        primary, secondary, withArping: opts.haArping ?? true, withMulticast: opts.haMulticast ?? true, failback: opts.haFailback ?? false,
        ...(opts.haPollMs !== undefined ? { pollMs: opts.haPollMs } : {}),
        ...(pIf !== undefined ? { link: { mode: pIf.mode, mtu: pIf.mtu } } : {}),
        ...(opts.onHaEvent ? { onEvent: opts.onHaEvent } : {}),
      });
      ex.ha.onMove((dev) => {
        if (haPrimary === null) return;
        deviceOf.set(haPrimary, dev);
        ex.dhcp.get(haPrimary)?.moved(dev);
      });
    } catch (err) {
      problem(null, 'IPOIBHA_ENABLE', `the HA service did not start: ${(err as Error).message}`, 'error');
    }
  }
  ex.finishedAt = sched.now();
  return ex;
}

/** Mode, then MTU; an MTU the port or mode cannot carry is reported (file, key) and the largest allowed is used. */
function setLink(host: Host, i: PlanInterface, problem: (i: PlanInterface, key: string | null, m: string, s?: 'error' | 'warning') => void): void {
  const v = host.iface(i.name);
  let mode: IpoibMode = i.mode;
  try {
    v.checkMode(mode);
  } catch (err) {
    problem(i, i.configFile !== null ? 'CONNECTED_MODE' : 'SET_IPOIB_CM', `${(err as Error).message}; ${i.name} stays in datagram mode`);
    mode = 'datagram';
  }
  const range = v.mtuRange(mode);
  let mtu = i.mtu;
  if (mtu > range.max || mtu < range.min) {
    problem(i, 'MTU', `${i.name}: MTU ${mtu} cannot be carried in ${mode} mode on this port (${range.min}..${range.max}); ${range.max} is used`);
    mtu = Math.min(Math.max(mtu, range.min), range.max);
  }
  try {
    host.linkSet(i.name, { mode, mtu });
  } catch (err) {
    problem(i, 'MTU', `${i.name}: mode ${mode} mtu ${mtu}: ${(err as Error).message}`, 'error');
  }
}

/** One line per interface, bond and the HA service: what `ipoib-boot start|status` prints. */
export function formatBootReport(r: BootReport): string {
  const lines = [`${r.host}: brought up in ${Math.round(r.elapsedMs)} ms${r.ok ? '' : ' (with problems)'}`];
  for (const o of r.interfaces) {
    lines.push(`  ${o.name.padEnd(10)} ${o.state.padEnd(12)} ${(o.mode ?? '-').padEnd(9)} mtu ${String(o.mtu ?? '-').padEnd(6)} ` +
      `${o.addressing.padEnd(6)} ${(o.address ?? '-').padEnd(18)}${o.readyMs !== null ? ` ready at ${Math.round(o.readyMs)} ms` : ''}`);
    for (const n of o.notes) lines.push(`      ${n}`);
  }
  for (const b of r.bonds) {
    lines.push(`  ${b.name}: active-backup over ${b.slaves.map((s) => `${s.name}${s.active ? '*' : ''}(${s.link})`).join(', ')}, miimon ${b.miimonMs} ms, ` +
      `${b.addresses.join(', ')}, hw ${b.hwAddress ?? 'none'}`);
  }
  if (r.ha !== null) {
    lines.push(`  HA ${r.ha.primary} -> ${r.ha.secondary}: ${r.ha.state} on ${r.ha.active}, poll ${r.ha.pollMs} ms, ${r.ha.failovers} failover(s)`);
  }
  const shown = r.problems.filter((p) => p.severity !== 'info');
  for (const p of shown) lines.push(`  ${formatDiagnostic(p)}`);
  return lines.join('\n') + '\n';
}
