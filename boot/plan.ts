// openib.conf + ifcfg files -> the bring-up plan: a typed, JSON-serialisable value an executor walks
// (interfaces in order: physical, P_Key children, bonds; then HA). The rules are OFED 1.2's IPoIB
// release notes (shared/seed): §2 connected mode and its MTU, §3 known issues 1, 2b, 4 and 6,
// §5 the HA service, §6 ib-bonding. Every rule that changes or drops a setting leaves a Diagnostic.

import { IPOIB_CM_MTU, IPOIB_DEFAULT_UD_MTU, IPOIB_MIN_MTU } from '../link/ipoib/constants.js';
import { diag, type Diagnostic, type Where } from './diagnostic.js';
import type { Addressing, IfcfgConfig, IfcfgLayout } from './ifcfg.js';
import { classfulPrefix, formatIpv4, netmaskToPrefix, networkOf, parseIpv4, parsePrefix } from './ipv4-text.js';
import type { OpenibConf } from './openib-conf.js';

export type { Addressing } from './ifcfg.js';
export type InterfaceKind = 'physical' | 'child' | 'bond';
export type IpoibMode = 'datagram' | 'connected';
export type HaRole = 'primary' | 'secondary' | 'none';

/** The mode Linux allows for bonding IPoIB slaves (no shared hardware address, so no other mode). */
export const BOND_MODE = 'active-backup';
/** Link monitoring interval when neither BONDING_OPTS nor openib.conf sets one. UNVERIFIED: ib-bond's default. */
export const DEFAULT_MIIMON_MS = 100;
/** The P_Key of a physical interface (index 0 of the port's table; the default partition). */
export const DEFAULT_PKEY = 0xffff;

export interface PlanInterface {
  name: string;
  kind: InterfaceKind;
  /** Child: the physical interface it is created on. */
  parent: string | null;
  /** Child: the P_Key written to create_child; physical and bond: null (the port's default). */
  pkey: number | null;
  /** Bond: the IPoIB mode its slaves run in. */
  mode: IpoibMode;
  mtu: number;
  addressing: Addressing;
  address: string | null;
  prefix: number | null;
  /** Brought up by `start` (ONBOOT / STARTMODE, or a bond slave). */
  onboot: boolean;
  /** The ifcfg file that configures it, or null (a port with no file, a bond from openib.conf). */
  configFile: string | null;
  /** The configuration name passed to ifup together with the interface name (SuSE: `ifup ib1 ib1`). */
  configName: string | null;
  haRole: HaRole;
  /** Slave: the bond it is enslaved to. */
  bondMaster: string | null;
  /** Bond: its slaves, in order; otherwise empty. */
  slaves: string[];
  warnings: Diagnostic[];
}

export interface PlanBond {
  name: string;
  mode: typeof BOND_MODE;
  slaves: string[];
  /** The slave made active first. */
  primary: string;
  address: string;
  prefix: number;
  miimonMs: number;
  /** Where it was defined: openib.conf (bondN_IP/bondN_SLAVES) or an ifcfg-bondN file. */
  source: { file: string; line: number | null };
  warnings: Diagnostic[];
}

export interface PlanHaTakeover {
  addressing: Addressing;
  address: string | null;
  prefix: number | null;
  mode: IpoibMode;
  mtu: number;
  /** With DHCP the secondary keeps the primary's lease: it asks with the primary's client identifier. */
  clientIdentifierOf: string | null;
}

export interface PlanHa {
  primary: string;
  secondary: string;
  /** What the secondary is configured with when the primary fails (release notes §5). */
  takeover: PlanHaTakeover;
  source: { file: string; line: number | null };
}

export interface BootPlan {
  host: string | null;
  openibConf: string;
  ifcfgDir: string | null;
  layout: IfcfgLayout | null;
  /** ONBOOT in openib.conf (default yes): whether the driver starts at boot. */
  onboot: boolean;
  /** Whether IPoIB is loaded: IPOIB_LOAD=yes, or any ifcfg-ib<n> file (known issue 4). */
  ipoibLoaded: boolean;
  /** The physical IPoIB interfaces the host has (given, or inferred from the ifcfg files). */
  ports: string[];
  interfaces: PlanInterface[];
  bonds: PlanBond[];
  ha: PlanHa | null;
  /** Every diagnostic, from parsing and planning; each also appears on the interface or bond it concerns. */
  warnings: Diagnostic[];
}

export interface PlanInput {
  conf: OpenibConf;
  ifcfgs: readonly IfcfgConfig[];
  ifcfgDir?: string | null;
  /** The host's physical IPoIB interfaces (ib0, ib1, ...). Null: those the ifcfg files name. */
  ports?: readonly string[] | null;
  host?: string | null;
}

const SEED = 'OFED 1.2 IPoIB release notes';

/** ib2 before ib10. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export function buildPlan(input: PlanInput): BootPlan {
  const { conf } = input;
  const warnings: Diagnostic[] = [...conf.diagnostics];
  for (const c of input.ifcfgs) warnings.push(...c.diagnostics);
  const perIface = new Map<string, Diagnostic[]>();
  const perBond = new Map<string, Diagnostic[]>();
  const add = (d: Diagnostic, iface?: string | null, bond?: string | null): void => {
    warnings.push(d);
    if (iface != null) perIface.set(iface, [...(perIface.get(iface) ?? []), d]);
    if (bond != null) perBond.set(bond, [...(perBond.get(bond) ?? []), d]);
  };
  const confAt = (key: string, line: number | null | undefined): Where => ({ file: conf.file, line: line ?? null, key });

  // ---- ifcfg files: layout, one file per device ----
  const layouts = [...new Set(input.ifcfgs.map((c) => c.layout))];
  const layout = layouts.length === 1 ? (layouts[0] ?? null) : layouts.length === 0 ? null : 'redhat';
  if (layouts.length > 1) {
    add(diag('warning', 'mixed-layouts', { file: input.ifcfgDir ?? null },
      'both RedHat and SuSE ifcfg files are present; each file is read in its own layout'));
  }
  const sorted = [...input.ifcfgs].sort((a, b) => naturalCompare(a.configName, b.configName));
  const byDevice = new Map<string, IfcfgConfig>();
  for (const c of sorted) {
    const prev = byDevice.get(c.device);
    if (prev !== undefined) {
      add(diag('warning', 'duplicate-device', { file: c.file, line: c.lines['DEVICE'] ?? null, key: 'DEVICE' },
        `${c.device} is already configured by ${prev.file}; this file is ignored`));
      continue;
    }
    byDevice.set(c.device, c);
  }
  const ipoibCfgs = [...byDevice.values()].filter((c) => c.kind !== 'bond');
  const bondCfgs = [...byDevice.values()].filter((c) => c.kind === 'bond');

  // ---- ports ----
  let ports: string[];
  if (input.ports != null) {
    ports = [...new Set(input.ports)].sort(naturalCompare);
  } else {
    const inferred = new Set<string>();
    for (const c of ipoibCfgs) inferred.add(c.kind === 'child' ? (c.parent as string) : c.device);
    ports = [...inferred].sort(naturalCompare);
  }
  const portSet = new Set(ports);

  // ---- IPOIB_LOAD and known issue 4 ----
  const ipoibIfcfgFiles = ipoibCfgs.map((c) => c.file);
  const loadSetting = conf.ipoibLoad;
  let ipoibLoaded = loadSetting?.value === true;
  if (!ipoibLoaded && ipoibIfcfgFiles.length > 0) {
    ipoibLoaded = true;
    const names = ipoibCfgs.map((c) => `ifcfg-${c.configName}`).join(', ');
    if (loadSetting !== null) {
      add(diag('warning', 'ipoib-load-ignored', confAt('IPOIB_LOAD', loadSetting.line),
        `IPOIB_LOAD=no does not prevent loading IPoIB: ${names} exist in the standard networking scripts location, ` +
        `so these interfaces are brought up anyway (${SEED} §3, known issue 4)`));
    } else {
      add(diag('info', 'ipoib-load-unset', confAt('IPOIB_LOAD', null),
        `IPOIB_LOAD is not set, but ${names} exist, so IPoIB is loaded and they are brought up (known issue 4)`));
    }
  }
  const onboot = conf.onboot?.value ?? true;
  if (!onboot) {
    add(diag('info', 'onboot-no', confAt('ONBOOT', conf.onboot?.line),
      'ONBOOT=no: the driver is not started at boot; `ipoib-boot start` still runs this plan, as `openibd start` does'));
  }

  // ---- mode and MTU defaults (§2) ----
  const cm = conf.setIpoibCm?.value === true;
  let cmMtu = IPOIB_CM_MTU;
  let cmMtuFrom: Where | null = null;
  if (conf.ipoibMtu !== null) {
    const v = conf.ipoibMtu.value;
    const where = confAt('IPOIB_MTU', conf.ipoibMtu.line);
    if (v > IPOIB_CM_MTU || v < IPOIB_MIN_MTU) {
      add(diag('warning', 'mtu-out-of-range', where,
        `${v} cannot be carried in connected mode (${IPOIB_MIN_MTU}..${IPOIB_CM_MTU}); ${IPOIB_CM_MTU} is used`));
    } else {
      cmMtu = v;
      cmMtuFrom = where;
    }
    if (!cm) {
      add(diag('info', 'ipoib-mtu-unused', where,
        'IPOIB_MTU is applied with connected mode (SET_IPOIB_CM=yes or CONNECTED_MODE=yes); datagram interfaces keep 2044'));
    }
  }

  // ---- interfaces ----
  const interfaces: PlanInterface[] = [];
  const make = (name: string, kind: InterfaceKind, c: IfcfgConfig | null): PlanInterface => {
    const mode: IpoibMode = (c?.connectedMode?.value ?? cm) ? 'connected' : 'datagram';
    const max = mode === 'connected' ? IPOIB_CM_MTU : IPOIB_DEFAULT_UD_MTU;
    let mtu = mode === 'connected' ? cmMtu : IPOIB_DEFAULT_UD_MTU;
    let mtuWhere: Where | null = mode === 'connected' ? cmMtuFrom : null;
    if (c?.mtu != null) {
      mtuWhere = { file: c.file, line: c.mtu.line, key: 'MTU' };
      mtu = c.mtu.value;
    }
    if (mtu > max || mtu < IPOIB_MIN_MTU) {
      const why = c?.connectedMode != null ? `${c.connectedMode.key}=${c.connectedMode.value ? 'yes' : 'no'}` : `SET_IPOIB_CM=${cm ? 'yes' : 'no'}`;
      add(diag('warning', 'mtu-out-of-range', mtuWhere ?? { file: c?.file ?? conf.file },
        `${name}: MTU ${mtu} cannot be carried in ${mode} mode (${why}; ${IPOIB_MIN_MTU}..${max}); ${name} uses ${max}`), name);
      mtu = max;
    }
    if (mtu > IPOIB_DEFAULT_UD_MTU) {
      add(diag('info', 'mtu-above-2k', mtuWhere ?? { file: c?.file ?? conf.file },
        `${name}: MTU ${mtu} > ${IPOIB_DEFAULT_UD_MTU}: the driver logs a warning, and datagram (multicast) packets above ` +
        `${IPOIB_DEFAULT_UD_MTU} are dropped until path MTU discovery lowers the MTU (${SEED} §3, known issue 6)`), name);
    }
    return {
      name, kind, parent: c?.parent ?? null, pkey: c?.pkey ?? null, mode, mtu,
      addressing: c?.addressing ?? 'none', address: c?.address ?? null, prefix: c?.prefix ?? null,
      onboot: c?.onboot ?? false, configFile: c?.file ?? null, configName: c?.configName ?? null,
      haRole: 'none', bondMaster: null, slaves: [], warnings: [],
    };
  };
  const byName = new Map<string, PlanInterface>();
  if (ipoibLoaded) {
    for (const p of ports) {
      const c = byDevice.get(p);
      byName.set(p, make(p, 'physical', c !== undefined && c.kind === 'physical' ? c : null));
    }
    for (const c of ipoibCfgs) {
      if (c.kind === 'physical' && !portSet.has(c.device)) {
        add(diag('warning', 'no-such-port', { file: c.file, line: c.lines['DEVICE'] ?? null, key: 'DEVICE' },
          `the host has no IPoIB port ${c.device} (ports: ${ports.join(', ') || 'none'}); this file is not used`));
      }
    }
    const children = ipoibCfgs.filter((c) => c.kind === 'child').sort((a, b) => naturalCompare(a.device, b.device));
    for (const c of children) {
      if (!portSet.has(c.parent as string)) {
        const key = c.layout === 'redhat' ? 'PHYSDEV' : 'IPOIB_DEVICE';
        add(diag('warning', 'no-such-parent', { file: c.file, line: c.lines[key] ?? null, key },
          `${c.device}: parent ${c.parent} is not an IPoIB port of this host (ports: ${ports.join(', ') || 'none'}); the child is not created`));
        continue;
      }
      byName.set(c.device, make(c.device, 'child', c));
    }
  }

  // Known issue 2b: SuSE 10's ifup picks ifcfg-ib0 for ib1. ipoib-boot always pairs each interface with
  // its own configuration name, which is the seed's workaround (`ifup ib1 ib1`), and never reproduces it.
  if (layout === 'suse') {
    const suseIb0 = [...byDevice.values()].find((c) => c.layout === 'suse' && c.configName === 'ib0');
    for (const i of byName.values()) {
      if (i.kind !== 'physical' || i.name === 'ib0') continue;
      if (i.configName !== null) {
        add(diag('info', 'suse-config-name', { file: i.configFile },
          `${i.name} is brought up with its own configuration (ifup ${i.name} ${i.configName}): the workaround for ` +
          `"The ib1 interface uses the configuration script of ib0" (${SEED} §3, known issue 2b)`), i.name);
      } else if (suseIb0 !== undefined) {
        add(diag('info', 'suse-config-name', { file: suseIb0.file },
          `${i.name} has no ifcfg-${i.name}: SuSE 10's ifup would configure it from ifcfg-ib0 (known issue 2b); ` +
          `ipoib-boot leaves it unconfigured`), i.name);
      }
    }
  }

  // ---- HA (§5) ----
  let ha: PlanHa | null = null;
  const haOn = conf.ipoibhaEnable?.value === true;
  if (haOn) {
    const primary = conf.primaryIpoibDev?.value ?? 'ib0';
    const secondary = conf.secondaryIpoibDev?.value ?? 'ib1';
    const haWhere = confAt('IPOIBHA_ENABLE', conf.ipoibhaEnable?.line);
    const p = byName.get(primary);
    const s = byName.get(secondary);
    if (!ipoibLoaded) {
      add(diag('warning', 'ha-not-started', haWhere, 'IPoIB is not loaded (IPOIB_LOAD is not yes and no ifcfg-ib<n> files): the HA service is not started'));
    } else if (primary === secondary) {
      add(diag('warning', 'ha-not-started', confAt('SECONDARY_IPOIB_DEV', conf.secondaryIpoibDev?.line),
        `the secondary is the primary (${primary}): the HA service is not started`));
    } else if (p === undefined || s === undefined) {
      const [missing, key, line] = p === undefined
        ? [primary, 'PRIMARY_IPOIB_DEV', conf.primaryIpoibDev?.line]
        : [secondary, 'SECONDARY_IPOIB_DEV', conf.secondaryIpoibDev?.line];
      add(diag('warning', 'ha-not-started', confAt(key, line),
        `${missing}${line === undefined ? ' (the default)' : ''} is not an IPoIB interface of this host: the HA service is not started`));
    } else {
      p.haRole = 'primary';
      s.haRole = 'secondary';
      ha = {
        primary, secondary,
        takeover: {
          addressing: p.addressing, address: p.address, prefix: p.prefix, mode: p.mode, mtu: p.mtu,
          clientIdentifierOf: p.addressing === 'dhcp' ? primary : null,
        },
        source: { file: conf.file, line: conf.ipoibhaEnable?.line ?? null },
      };
      if (p.addressing === 'none') {
        add(diag('warning', 'ha-nothing-to-take', { file: p.configFile ?? conf.file, key: p.configFile !== null ? 'BOOTPROTO' : 'PRIMARY_IPOIB_DEV' },
          `the HA primary ${primary} has no IP configuration; a failover has nothing to move to ${secondary}`), primary);
      }
      if (s.addressing !== 'none') {
        add(diag('info', 'ha-secondary-replaced', { file: s.configFile, key: s.addressing === 'dhcp' ? 'BOOTPROTO' : 'IPADDR' },
          `on failover ${secondary} is configured with ${primary}'s parameters, replacing its own (${s.addressing}${s.address !== null ? ' ' + s.address : ''})`), secondary);
      }
    }
  }

  // ---- bonds (§6) ----
  interface BondDef {
    name: string;
    slaves: string[];
    slavesWhere: Where;
    ip: string | null;
    ipWhere: Where;
    miimonMs: number;
    primary: string | null;
    source: { file: string; line: number | null };
  }
  const defs: BondDef[] = [];
  const bondEnabled = conf.ipoibbondEnable?.value === true;
  const listed = conf.bonds.filter((b) => b.listed);
  if (!bondEnabled && listed.length > 0) {
    add(diag('info', 'bonding-disabled', confAt('IPOIBBOND_ENABLE', conf.ipoibbondEnable?.line),
      `IPOIBBOND_ENABLE is not yes: no bond from IPOIB_BONDS (${listed.map((b) => b.name).join(', ')}) is created`));
  }
  if (bondEnabled) {
    if (conf.ipoibBonds === null || listed.length === 0) {
      add(diag('warning', 'bond-incomplete', confAt('IPOIB_BONDS', conf.ipoibBonds?.line),
        'IPOIBBOND_ENABLE=yes but IPOIB_BONDS names no bond: no bond is created'));
    }
    for (const b of listed) {
      const missing = [b.ip === null ? `${b.name}_IP` : null, b.slaves === null || b.slaves.value.length === 0 ? `${b.name}_SLAVES` : null]
        .filter((x): x is string => x !== null);
      if (missing.length > 0) {
        add(diag('warning', 'bond-incomplete', confAt(missing[0] as string, conf.ipoibBonds?.line),
          `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing: ${b.name} is not created ` +
          `("If bondX name is defined but one of bondX_SLAVES or bondX_IP is missing, then that specific bond will not be created", ${SEED} §6)`),
        null, b.name);
        continue;
      }
      defs.push({
        name: b.name, slaves: b.slaves?.value ?? [], slavesWhere: confAt(`${b.name}_SLAVES`, b.slaves?.line),
        ip: b.ip?.value ?? null, ipWhere: confAt(`${b.name}_IP`, b.ip?.line), miimonMs: DEFAULT_MIIMON_MS, primary: null,
        source: { file: conf.file, line: b.ip?.line ?? null },
      });
    }
  }
  for (const c of bondCfgs) {
    if (defs.some((d) => d.name === c.device)) {
      add(diag('warning', 'bond-defined-twice', { file: c.file, line: c.lines['DEVICE'] ?? null, key: 'DEVICE' },
        `${c.device} is also defined in ${conf.file} (IPOIB_BONDS); openib.conf's definition is used`), null, c.device);
      continue;
    }
    const slaves = [
      ...c.bondingSlaves.map((s) => s.value),
      ...ipoibCfgs.filter((s) => s.master?.value === c.device).map((s) => s.device),
    ];
    const slaveKey = c.layout === 'suse' ? 'BONDING_SLAVE0' : 'MASTER';
    if (c.bondingOpts?.mode != null && !/^(1|active-backup)$/.test(c.bondingOpts.mode)) {
      add(diag('warning', 'bond-mode', { file: c.file, line: c.bondingOpts.line, key: c.bondingOpts.key },
        `mode=${c.bondingOpts.mode}: only active-backup is possible over IPoIB; ${c.device} uses active-backup`), null, c.device);
    }
    if (!c.onboot) continue;
    if (c.addressing !== 'static' || c.address === null) {
      add(diag('warning', 'bond-incomplete', { file: c.file, line: c.lines['IPADDR'] ?? null, key: 'IPADDR' },
        `${c.device} needs a static IPADDR (ib-bonding configures the bond's own address); it is not created`), null, c.device);
      continue;
    }
    defs.push({
      name: c.device, slaves, slavesWhere: { file: c.file, line: c.lines[slaveKey] ?? null, key: slaveKey },
      ip: `${c.address}/${c.prefix ?? classfulPrefix(parseIpv4(c.address) ?? 0)}`, ipWhere: { file: c.file, line: c.lines['IPADDR'] ?? null, key: 'IPADDR' },
      miimonMs: c.bondingOpts?.miimonMs ?? DEFAULT_MIIMON_MS, primary: c.bondingOpts?.primary ?? null,
      source: { file: c.file, line: c.lines['DEVICE'] ?? null },
    });
  }
  for (const s of ipoibCfgs) {
    if (s.master !== null && !defs.some((d) => d.name === s.master?.value)
      && !bondCfgs.some((b) => b.device === s.master?.value) && !listed.some((b) => b.name === s.master?.value)) {
      add(diag('warning', 'no-such-bond', { file: s.file, line: s.master.line, key: 'MASTER' },
        `MASTER=${s.master.value}: no such bond is defined; ${s.device} is configured on its own`), s.device);
    }
  }

  const bonds: PlanBond[] = [];
  if (defs.length > 0 && haOn) {
    add(diag('warning', 'bond-skipped-ha', confAt('IPOIBBOND_ENABLE', conf.ipoibbondEnable?.line),
      `${defs.map((d) => d.name).join(', ')} not created: "The ib-bonding driver doesn't load when the HA service is configured to load" (${SEED} §6; IPOIBHA_ENABLE=yes)`));
    const haDevs = [conf.primaryIpoibDev?.value ?? 'ib0', conf.secondaryIpoibDev?.value ?? 'ib1'];
    for (const d of defs) {
      const both = d.slaves.filter((x) => haDevs.includes(x));
      if (both.length === 0) continue;
      add(diag('warning', 'ha-bond-conflict', d.slavesWhere,
        `${both.join(', ')} ${both.length > 1 ? 'are' : 'is'} both a slave of ${d.name} and an HA device ` +
        `(PRIMARY_IPOIB_DEV/SECONDARY_IPOIB_DEV in ${conf.file}); HA keeps ${both.length > 1 ? 'them' : 'it'}`), null, d.name);
    }
  } else if (defs.length > 0 && !ipoibLoaded) {
    add(diag('warning', 'bond-skipped', confAt('IPOIB_LOAD', conf.ipoibLoad?.line),
      'IPoIB is not loaded (IPOIB_LOAD is not yes and no ifcfg-ib<n> files): no bond is created'));
  } else {
    const taken = new Map<string, string>();
    for (const d of defs) {
      const addr = parseBondAddress(d.ip ?? '');
      if (addr === null) {
        add(diag('error', 'bad-address', d.ipWhere, `'${d.ip}' is not an IPv4 address[/prefix|/netmask]; ${d.name} is not created`), null, d.name);
        continue;
      }
      if (addr.classful) {
        add(diag('info', 'classful-prefix', d.ipWhere, `${d.name}: no prefix: /${addr.prefix} from the address class. UNVERIFIED: the mask ib-bond gives`), null, d.name);
      }
      const slaves: string[] = [];
      for (const s of d.slaves) {
        const iface = byName.get(s);
        if (iface === undefined || iface.kind === 'bond') {
          add(diag('warning', 'slave-missing', d.slavesWhere,
            `${s} does not exist on this host as an IPoIB interface (ports: ${ports.join(', ') || 'none'}); ${d.name} goes on without it`), null, d.name);
          continue;
        }
        const other = taken.get(s);
        if (other !== undefined) {
          add(diag('warning', 'slave-in-two-bonds', d.slavesWhere, `${s} is already a slave of ${other}; ${d.name} goes on without it`), s, d.name);
          continue;
        }
        if (slaves.includes(s)) continue;
        slaves.push(s);
      }
      if (slaves.length === 0) {
        add(diag('warning', 'bond-no-slaves', d.slavesWhere, `${d.name} has no usable slave; it is not created`), null, d.name);
        continue;
      }
      for (const s of slaves) {
        taken.set(s, d.name);
        const iface = byName.get(s) as PlanInterface;
        iface.bondMaster = d.name;
        iface.onboot = true;
        if (iface.addressing !== 'none') {
          add(diag('warning', 'slave-address-ignored', { file: iface.configFile, key: iface.addressing === 'dhcp' ? 'BOOTPROTO' : 'IPADDR' },
            `${s} is a slave of ${d.name}: its own ${iface.addressing} configuration is not used (a slave carries no address)`), s, d.name);
          iface.addressing = 'none';
          iface.address = null;
          iface.prefix = null;
        }
      }
      const mtus = new Set(slaves.map((s) => (byName.get(s) as PlanInterface).mtu));
      const mtu = Math.min(...mtus);
      if (mtus.size > 1) {
        add(diag('warning', 'slave-mtu-differs', d.slavesWhere, `the slaves of ${d.name} have different MTUs; the bond uses the smallest, ${mtu}`), null, d.name);
      }
      const modes = new Set(slaves.map((s) => (byName.get(s) as PlanInterface).mode));
      if (modes.size > 1) {
        add(diag('warning', 'slave-mode-differs', d.slavesWhere, `the slaves of ${d.name} run in different IPoIB modes`), null, d.name);
      }
      let primary = slaves[0] as string;
      if (d.primary !== null) {
        if (slaves.includes(d.primary)) primary = d.primary;
        else add(diag('warning', 'bond-primary', d.slavesWhere, `primary=${d.primary} is not a slave of ${d.name}; ${primary} is used`), null, d.name);
      }
      if (slaves.length === 1) {
        add(diag('info', 'bond-one-slave', d.slavesWhere, `${d.name} has one slave: no failover is possible`), null, d.name);
      }
      bonds.push({
        name: d.name, mode: BOND_MODE, slaves, primary, address: addr.address, prefix: addr.prefix,
        miimonMs: d.miimonMs, source: d.source, warnings: [],
      });
      byName.set(d.name, {
        name: d.name, kind: 'bond', parent: null, pkey: null,
        mode: modes.size === 1 ? [...modes][0] as IpoibMode : 'datagram', mtu,
        addressing: 'static', address: addr.address, prefix: addr.prefix, onboot: true,
        configFile: d.source.file === conf.file ? null : d.source.file, configName: null,
        haRole: 'none', bondMaster: null, slaves, warnings: [],
      });
    }
  }

  // ---- known issue 1: two IP subnets on one partition ----
  const byPartition = new Map<number, PlanInterface[]>();
  for (const i of byName.values()) {
    if (i.addressing !== 'static' || i.address === null || i.prefix === null) continue;
    const partition = (i.pkey ?? DEFAULT_PKEY) & 0x7fff;
    byPartition.set(partition, [...(byPartition.get(partition) ?? []), i]);
  }
  for (const [partition, list] of byPartition) {
    const nets = new Map<string, string[]>();
    for (const i of list) {
      const net = `${formatIpv4(networkOf(parseIpv4(i.address as string) ?? 0, i.prefix as number))}/${i.prefix}`;
      nets.set(net, [...(nets.get(net) ?? []), i.name]);
    }
    if (nets.size < 2) continue;
    const desc = [...nets].map(([n, names]) => `${names.join(', ')} (${n})`).join(' and ');
    const d = diag('warning', 'two-subnets-one-partition', { file: list[0]?.configFile ?? conf.file },
      `${desc} are different IP subnets on one partition (P_Key 0x${(partition | 0x8000).toString(16)}): the host may build ` +
      `an incorrect ARP table (${SEED} §3, known issue 1). Work-around: sysctl -w net.ipv4.conf.all.arp_ignore=2, ` +
      `or echo 1 > /proc/sys/net/ipv4/conf/<ib>/arp_filter for each of them`);
    warnings.push(d);
    for (const i of list) perIface.set(i.name, [...(perIface.get(i.name) ?? []), d]);
  }

  // ---- order and attach ----
  const rank: Record<InterfaceKind, number> = { physical: 0, child: 1, bond: 2 };
  for (const i of byName.values()) {
    const own = i.configFile === null ? [] : warnings.filter((d) => d.file === i.configFile && !(perIface.get(i.name) ?? []).includes(d));
    i.warnings = [...own, ...(perIface.get(i.name) ?? [])];
    if (i.kind === 'bond') i.warnings.push(...(perBond.get(i.name) ?? []).filter((d) => !i.warnings.includes(d)));
  }
  for (const b of bonds) b.warnings = perBond.get(b.name) ?? [];
  interfaces.push(...[...byName.values()].sort((a, b) => rank[a.kind] - rank[b.kind] || naturalCompare(a.name, b.name)));

  return {
    host: input.host ?? null, openibConf: conf.file, ifcfgDir: input.ifcfgDir ?? null, layout, onboot, ipoibLoaded,
    ports, interfaces, bonds, ha, warnings,
  };
}

/** bondN_IP: an address, optionally /prefix or /netmask; without one, the classful mask. */
export function parseBondAddress(s: string): { address: string; prefix: number; classful: boolean } | null {
  const [a, m] = s.split('/', 2) as [string, string | undefined];
  const addr = parseIpv4(a);
  if (addr === null) return null;
  if (m === undefined) return { address: formatIpv4(addr), prefix: classfulPrefix(addr), classful: true };
  const prefix = parsePrefix(m) ?? netmaskToPrefix(m);
  return prefix === null ? null : { address: formatIpv4(addr), prefix, classful: false };
}
