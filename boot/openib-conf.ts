// /etc/infiniband/openib.conf: the keys OFED 1.2's IPoIB release notes give a meaning to (§2 "Usage
// and configuration" 3, §5 "Enabling the HA Service", §6 "Automatic operation"), plus the other keys
// OFED's ofed_scripts/openib.conf and its install-time additions (ofa_kernel.spec) write, which are
// accepted with an info note. Unknown keys are reported as warnings, never fatal.

import { diag, type Diagnostic } from './diagnostic.js';
import { parseShellVars, type ShellAssignment, type ShellVarsOptions } from './shell-vars.js';

export interface Located<T> {
  value: T;
  line: number;
}

/** What openib.conf says about one bond: bondN_IP and bondN_SLAVES, each possibly missing. */
export interface OpenibBondVars {
  name: string;
  /** Listed in IPOIB_BONDS (a bondN_IP/bondN_SLAVES for an unlisted bond is reported and unused). */
  listed: boolean;
  ip: Located<string> | null;
  slaves: Located<string[]> | null;
}

export interface OpenibConf {
  file: string;
  /** ONBOOT: start the driver at boot (default yes). */
  onboot: Located<boolean> | null;
  /** IPOIB_LOAD: openibd loads ib_ipoib only when yes. */
  ipoibLoad: Located<boolean> | null;
  /** SET_IPOIB_CM: put every IPoIB interface in connected mode (§2). */
  setIpoibCm: Located<boolean> | null;
  /** IPOIB_MTU: the connected-mode MTU openibd sets (default 65520, §2); range is checked by the plan. */
  ipoibMtu: Located<number> | null;
  ipoibhaEnable: Located<boolean> | null;
  primaryIpoibDev: Located<string> | null;
  secondaryIpoibDev: Located<string> | null;
  ipoibbondEnable: Located<boolean> | null;
  /** IPOIB_BONDS, comma separated, in order. */
  ipoibBonds: Located<string[]> | null;
  /** Every bond named in IPOIB_BONDS or by a bondN_IP / bondN_SLAVES key, in first-seen order. */
  bonds: OpenibBondVars[];
  /** Known keys ipoib-boot does not act on, with their values. */
  other: Record<string, string>;
  diagnostics: Diagnostic[];
}

/** Keys OFED's openib.conf carries that concern other drivers or services (yes/no valued). */
export const KNOWN_YES_NO_KEYS: readonly string[] = [
  'UCM_LOAD', 'RDMA_CM_LOAD', 'RDMA_UCM_LOAD', 'RENICE_IB_MAD', 'RUN_SYSCTL', 'MTHCA_LOAD', 'IPATH_LOAD',
  'EHCA_LOAD', 'MLX4_LOAD', 'MLX5_LOAD', 'MLX4_EN_LOAD', 'CXGB3_LOAD', 'CXGB4_LOAD', 'NES_LOAD', 'QIB_LOAD',
  'OCRDMA_LOAD', 'SDP_LOAD', 'SRP_LOAD', 'SRPT_LOAD', 'SRPHA_ENABLE', 'SRP_DAEMON_ENABLE', 'ISER_LOAD',
  'ISERT_LOAD', 'RDS_LOAD', 'VNIC_LOAD', 'QLGC_VNIC_LOAD', 'NFSRDMA_LOAD', 'ALLOW_STOP', 'CX3_ETH_ONLY',
  'RUN_AFFINITY_TUNER', 'RUN_MLNX_TUNE', 'LOAD_EIPOIB', 'E_IPOIB_LOAD', 'ENABLE_FW_TRACER', 'SET_IPOIB_CHANNELS',
];
/** Known keys with free-form values. */
export const KNOWN_OTHER_KEYS: readonly string[] = [
  'NODE_DESC', 'NODE_DESC_TIME_BEFORE_UPDATE', 'NODE_DESC_UPDATE_TIMEOUT', 'POST_START_DELAY', 'QIB_QME_BPVER',
];
/** The keys with a meaning for ipoib-boot (seed §2, §5, §6) besides bondN_IP / bondN_SLAVES. */
export const IPOIB_KEYS: readonly string[] = [
  'ONBOOT', 'IPOIB_LOAD', 'SET_IPOIB_CM', 'IPOIB_MTU', 'IPOIBHA_ENABLE', 'PRIMARY_IPOIB_DEV',
  'SECONDARY_IPOIB_DEV', 'IPOIBBOND_ENABLE', 'IPOIB_BONDS',
];

const IFNAME = /^[A-Za-z0-9_.:-]{1,15}$/;

/** A comma list as OFED's scripts split it (`${X//,/ }`): blanks around items are dropped, empty items skipped. */
export function splitCommaList(s: string): string[] {
  return s.split(/[,\s]+/).filter((x) => x !== '');
}

export function parseOpenibConf(text: string, file: string, opts: ShellVarsOptions = {}): OpenibConf {
  const sv = parseShellVars(text, file, opts);
  const diagnostics = [...sv.diagnostics];
  const conf: OpenibConf = {
    file, onboot: null, ipoibLoad: null, setIpoibCm: null, ipoibMtu: null, ipoibhaEnable: null,
    primaryIpoibDev: null, secondaryIpoibDev: null, ipoibbondEnable: null, ipoibBonds: null,
    bonds: [], other: {}, diagnostics,
  };
  const bondByName = new Map<string, OpenibBondVars>();
  const bond = (name: string): OpenibBondVars => {
    let b = bondByName.get(name);
    if (b === undefined) {
      b = { name, listed: false, ip: null, slaves: null };
      bondByName.set(name, b);
      conf.bonds.push(b);
    }
    return b;
  };

  // openibd tests `"X${KEY}" == "Xyes"`: only the exact word yes enables, so anything else acts as no.
  const yesNo = (a: ShellAssignment): Located<boolean> | null => {
    if (a.value === 'yes') return { value: true, line: a.line };
    if (a.value === 'no') return { value: false, line: a.line };
    if (a.value === '') {
      diagnostics.push(diag('info', 'empty-value', { file, line: a.line, key: a.key }, `${a.key} is empty; treated as unset`));
      return null;
    }
    diagnostics.push(diag('error', 'bad-yes-no', { file, line: a.line, key: a.key },
      `'${a.value}' is not yes or no; openibd compares with 'yes', so it acts as no`));
    return { value: false, line: a.line };
  };
  const ifname = (a: ShellAssignment): Located<string> | null => {
    if (IFNAME.test(a.value)) return { value: a.value, line: a.line };
    diagnostics.push(diag('error', 'bad-interface-name', { file, line: a.line, key: a.key },
      `'${a.value}' is not an interface name; the default is used`));
    return null;
  };

  const listedNames = new Set(splitCommaList(sv.vars.get('IPOIB_BONDS')?.value ?? ''));
  for (const a of sv.vars.values()) {
    const where = { file, line: a.line, key: a.key };
    switch (a.key) {
      case 'ONBOOT': conf.onboot = yesNo(a); continue;
      case 'IPOIB_LOAD': conf.ipoibLoad = yesNo(a); continue;
      case 'SET_IPOIB_CM': conf.setIpoibCm = yesNo(a); continue;
      case 'IPOIBHA_ENABLE': conf.ipoibhaEnable = yesNo(a); continue;
      case 'IPOIBBOND_ENABLE': conf.ipoibbondEnable = yesNo(a); continue;
      case 'PRIMARY_IPOIB_DEV': conf.primaryIpoibDev = ifname(a); continue;
      case 'SECONDARY_IPOIB_DEV': conf.secondaryIpoibDev = ifname(a); continue;
      case 'IPOIB_MTU':
        if (/^\d{1,6}$/.test(a.value)) conf.ipoibMtu = { value: Number(a.value), line: a.line };
        else {
          diagnostics.push(diag('error', 'bad-mtu', where,
            `'${a.value}' is not a decimal MTU; the default 65520 is used`));
        }
        continue;
      case 'IPOIB_BONDS': {
        const names = splitCommaList(a.value);
        const good = names.filter((n) => {
          if (IFNAME.test(n)) return true;
          diagnostics.push(diag('error', 'bad-interface-name', where, `'${n}' is not an interface name; skipped`));
          return false;
        });
        const dup = good.filter((n, i) => good.indexOf(n) !== i);
        for (const d of new Set(dup)) {
          diagnostics.push(diag('warning', 'duplicate-bond', where, `${d} is listed more than once; created once`));
        }
        conf.ipoibBonds = { value: [...new Set(good)], line: a.line };
        continue;
      }
    }
    const bm = /^(.+)_(IP|SLAVES)$/.exec(a.key);
    if (bm !== null && bm[1] !== undefined && IFNAME.test(bm[1]) && (/^bond/i.test(bm[1]) || listedNames.has(bm[1]))) {
      const b = bond(bm[1]);
      if (bm[2] === 'IP') b.ip = { value: a.value, line: a.line };
      else b.slaves = { value: splitCommaList(a.value), line: a.line };
      continue;
    }
    if (KNOWN_YES_NO_KEYS.includes(a.key)) {
      conf.other[a.key] = a.value;
      if (yesNo(a) !== null && (a.value === 'yes' || a.value === 'no')) {
        diagnostics.push(diag('info', 'known-key-unused', where, `known openib.conf key, not used by ipoib-boot`));
      }
      continue;
    }
    if (KNOWN_OTHER_KEYS.includes(a.key)) {
      conf.other[a.key] = a.value;
      diagnostics.push(diag('info', 'known-key-unused', where, `known openib.conf key, not used by ipoib-boot`));
      continue;
    }
    diagnostics.push(diag('warning', 'unknown-key', where, `unknown openib.conf key; ignored`));
  }

  // Bonds appear in IPOIB_BONDS order first, then any only named by bondN_* keys.
  if (conf.ipoibBonds !== null) {
    const listed = conf.ipoibBonds.value.map((n) => {
      const b = bond(n);
      b.listed = true;
      return b;
    });
    conf.bonds = [...listed, ...conf.bonds.filter((b) => !b.listed)];
  }
  for (const b of conf.bonds) {
    if (b.listed) continue;
    const at = b.ip ?? b.slaves;
    diagnostics.push(diag('warning', 'bond-not-listed', { file, line: at?.line ?? null, key: b.ip !== null ? `${b.name}_IP` : `${b.name}_SLAVES` },
      `${b.name} is not in IPOIB_BONDS; this setting is not used`));
  }
  return conf;
}
