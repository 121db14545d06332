// ifcfg-ib<n> and ifcfg-bond<n> files in the two layouts OFED 1.2 installs them to (release notes §3,
// known issue 4): RedHat /etc/sysconfig/network-scripts (initscripts' ifup-eth/ifup-ib keys: DEVICE,
// ONBOOT, BOOTPROTO, IPADDR, NETMASK/PREFIX, MTU, CONNECTED_MODE, PKEY/PKEY_ID/PHYSDEV, MASTER/SLAVE,
// BONDING_OPTS) and SuSE /etc/sysconfig/network (ifcfg(5), ifcfg-ipoib(5): STARTMODE, BOOTPROTO,
// IPADDR=a.b.c.d/nn, PREFIXLEN, IPOIB_MODE, IPOIB_DEVICE/IPOIB_PKEY, BONDING_MASTER/BONDING_SLAVEn).

import { diag, type Diagnostic } from './diagnostic.js';
import { classfulPrefix, formatIpv4, netmaskToPrefix, parseIpv4, parsePrefix } from './ipv4-text.js';
import type { Located } from './openib-conf.js';
import { parseShellVars, type ShellAssignment } from './shell-vars.js';

export type IfcfgLayout = 'redhat' | 'suse';
export type Addressing = 'dhcp' | 'static' | 'none';
export type IfcfgKind = 'physical' | 'child' | 'bond';

export interface BondingOpts {
  /** As written (mode=1 and mode=active-backup are the same). */
  mode: string | null;
  miimonMs: number | null;
  primary: string | null;
  key: string;
  line: number;
}

export interface IfcfgConfig {
  file: string;
  layout: IfcfgLayout;
  /** The name after `ifcfg-` in the file name: the configuration name SuSE's `ifup IF CONFIG` takes. */
  configName: string;
  /** The interface the file configures. */
  device: string;
  kind: IfcfgKind;
  /** Child interfaces: the physical interface the P_Key child is created on. */
  parent: string | null;
  /** Child interfaces: the P_Key written to create_child. */
  pkey: number | null;
  addressing: Addressing;
  address: string | null;
  prefix: number | null;
  mtu: Located<number> | null;
  /** CONNECTED_MODE (RedHat) or IPOIB_MODE (SuSE); null when the file does not say. */
  connectedMode: (Located<boolean> & { key: string }) | null;
  /** Brought up at boot: RedHat ONBOOT (default yes), SuSE STARTMODE (default manual = no). */
  onboot: boolean;
  name: string | null;
  type: string | null;
  /** RedHat slaves: MASTER=bond0 with SLAVE=yes. */
  master: Located<string> | null;
  /** SuSE masters: BONDING_SLAVE0..n. */
  bondingSlaves: Located<string>[];
  bondingOpts: BondingOpts | null;
  /** Line of each key's effective assignment, for messages. */
  lines: Record<string, number>;
  diagnostics: Diagnostic[];
}

/** Keys both distributions write that do not change what ipoib-boot does. */
const KNOWN_UNUSED_KEYS = new Set([
  'USERCTL', 'USERCONTROL', 'IPV6INIT', 'IPV6_AUTOCONF', 'IPV6ADDR', 'IPV6_DEFROUTE', 'IPV6_FAILURE_FATAL',
  'IPV6_PEERDNS', 'IPV6_PEERROUTES', 'IPV6_PRIVACY', 'IPV6_DAD_WAIT', 'HWADDR', 'LLADDR', 'UUID', 'NM_CONTROLLED',
  'BROADCAST', 'NETWORK', 'GATEWAY', 'DEFROUTE', 'IPV4_FAILURE_FATAL', 'PEERDNS', 'PEERROUTES', 'DHCP_HOSTNAME',
  'DHCLIENT_SET_HOSTNAME', 'DHCLIENTARGS', 'ZONE', 'ETHTOOL_OPTIONS', 'ETHTOOL_OPTS', 'FIREWALL', 'LINKDELAY',
  'DNS1', 'DNS2', 'DOMAIN', 'ARPCHECK', 'PROXY_METHOD', 'BROWSER_ONLY', 'AUTOCONNECT_PRIORITY', 'IPOIB_UMCAST',
  'REMOTE_IPADDR', 'PRIMARY', 'IPOIB', 'SLAVE', 'BONDING_MASTER',
]);

/** RedHat initscripts' is_true()/is_false() words; SuSE's yes/no keys are read the same way. */
function truth(v: string): boolean | null {
  if (/^(yes|y|true|t|1)$/i.test(v)) return true;
  if (/^(no|n|false|f|0)$/i.test(v)) return false;
  return null;
}

/** RedHat keys written by `network-scripts`, SuSE keys by `network`; anything else is decided by content. */
export function detectLayout(path: string, text = ''): IfcfgLayout {
  const p = path.replace(/\\/g, '/');
  if (p.includes('/network-scripts/') || p.endsWith('/network-scripts')) return 'redhat';
  if (/\/sysconfig\/network(\/|$)/.test(p)) return 'suse';
  return /^\s*(STARTMODE|IPOIB_MODE|PREFIXLEN|BONDING_MASTER)=/m.test(text) ? 'suse' : 'redhat';
}

/** The configuration name of a file: ifcfg-ib0 -> ib0; null if the name is not ifcfg-<something>. */
export function configNameOf(path: string): string | null {
  const base = path.replace(/\\/g, '/').split('/').pop() ?? '';
  const m = /^ifcfg-(.+)$/.exec(base);
  return m?.[1] ?? null;
}

/** Shell arithmetic as `$((PKEY_ID))` reads it: 0x hex, leading 0 octal, else decimal. */
function shellNumber(v: string): { n: number; octal: boolean } | null {
  if (/^0x[0-9a-f]{1,8}$/i.test(v)) return { n: parseInt(v.slice(2), 16), octal: false };
  if (/^0[0-7]+$/.test(v)) return { n: parseInt(v, 8), octal: true };
  if (/^\d{1,10}$/.test(v)) return { n: Number(v), octal: false };
  return null;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

export function parseIfcfg(text: string, file: string, layout: IfcfgLayout = detectLayout(file, text)): IfcfgConfig {
  const sv = parseShellVars(text, file);
  const diagnostics = [...sv.diagnostics];
  const configName = configNameOf(file) ?? file;
  const lines: Record<string, number> = {};
  for (const [k, a] of sv.vars) lines[k] = a.line;
  const get = (k: string): ShellAssignment | undefined => sv.vars.get(k);
  const at = (k: string) => ({ file, line: lines[k] ?? null, key: k });
  const used = new Set<string>();
  const val = (k: string): string | undefined => {
    used.add(k);
    const a = get(k);
    return a === undefined || a.value === '' ? undefined : a.value;
  };
  const other = layout === 'redhat' ? 'SuSE' : 'RedHat';
  const foreign = (k: string, instead: string): void => {
    if (get(k) === undefined) return;
    used.add(k);
    diagnostics.push(diag('warning', 'layout-key', at(k),
      `${k} is a ${other} key; in the ${layout === 'redhat' ? 'RedHat' : 'SuSE'} layout ${instead}; ignored`));
  };

  const cfg: IfcfgConfig = {
    file, layout, configName, device: configName, kind: 'physical', parent: null, pkey: null,
    addressing: 'none', address: null, prefix: null, mtu: null, connectedMode: null, onboot: false,
    name: val('NAME') ?? null, type: val('TYPE') ?? null, master: null, bondingSlaves: [], bondingOpts: null,
    lines, diagnostics,
  };

  // ---- which device ----
  const device = val('DEVICE');
  if (device !== undefined) {
    cfg.device = device;
    if (device !== configName) {
      diagnostics.push(diag('warning', 'device-name-mismatch', at('DEVICE'),
        `ifcfg-${configName} configures DEVICE=${device}: the file name and DEVICE differ, DEVICE wins`));
    }
  }

  // ---- kind: bond, P_Key child or physical ----
  const bondOptsKey = layout === 'redhat' ? 'BONDING_OPTS' : 'BONDING_MODULE_OPTS';
  const isBond = /^bond/i.test(cfg.device) || /^bond$/i.test(cfg.type ?? '')
    || truth(val('BONDING_MASTER') ?? '') === true || get(bondOptsKey) !== undefined;
  if (isBond) cfg.kind = 'bond';
  else if (cfg.type !== null && !/^infiniband$/i.test(cfg.type)) {
    diagnostics.push(diag('warning', 'bad-type', at('TYPE'), `TYPE=${cfg.type} on an IPoIB interface; expected InfiniBand`));
  }

  if (layout === 'redhat') {
    const pkeyFlag = val('PKEY');
    if (pkeyFlag !== undefined && truth(pkeyFlag) === null) {
      diagnostics.push(diag('error', 'bad-yes-no', at('PKEY'), `'${pkeyFlag}' is not yes or no; read as no`));
    }
    if (truth(pkeyFlag ?? 'no') === true) {
      const dm = /^(.+)\.([0-9a-f]{1,4})$/i.exec(cfg.device);
      const physdev = val('PHYSDEV') ?? dm?.[1];
      const idText = val('PKEY_ID');
      let id: number | null = null;
      if (idText !== undefined) {
        const sn = shellNumber(idText);
        if (sn === null) diagnostics.push(diag('error', 'bad-pkey', at('PKEY_ID'), `'${idText}' is not a number`));
        else {
          if (sn.octal) {
            diagnostics.push(diag('warning', 'octal-pkey', at('PKEY_ID'),
              `'${idText}' has a leading 0: shell arithmetic reads it as octal (0x${hex4(sn.n)}); write 0x... for hex`));
          }
          id = sn.n;
        }
      } else if (dm?.[2] !== undefined) {
        id = parseInt(dm[2], 16);
      } else {
        diagnostics.push(diag('error', 'missing-pkey', { file, line: lines['PKEY'] ?? null, key: 'PKEY_ID' },
          'PKEY=yes needs PKEY_ID (or DEVICE=<parent>.<pkey>)'));
      }
      if (physdev === undefined) {
        diagnostics.push(diag('error', 'missing-physdev', { file, line: lines['PKEY'] ?? null, key: 'PHYSDEV' },
          'PKEY=yes needs PHYSDEV (or DEVICE=<parent>.<pkey>)'));
      }
      if (id !== null && physdev !== undefined) {
        // initscripts' ifup-ib sets the full-membership bit before writing create_child.
        const pkey = id | 0x8000;
        if (id > 0xffff || (pkey & 0x7fff) === 0) {
          diagnostics.push(diag('error', 'bad-pkey', at('PKEY_ID'),
            `P_Key ${idText ?? '0x' + hex4(id)} is not a valid partition (1..0xffff, not 0x8000); the child is not created`));
        } else {
          cfg.kind = 'child';
          cfg.parent = physdev;
          cfg.pkey = pkey;
          const derived = `${physdev}.${hex4(pkey)}`;
          if (device !== undefined && device !== derived) {
            diagnostics.push(diag('warning', 'device-name-mismatch', at('DEVICE'),
              `the kernel names the child ${derived} (PHYSDEV.PKEY_ID|0x8000); DEVICE=${device} is not used`));
          }
          cfg.device = derived;
        }
      }
    } else {
      for (const k of ['PKEY_ID', 'PHYSDEV']) {
        if (get(k) !== undefined) {
          used.add(k);
          diagnostics.push(diag('warning', 'pkey-without-pkey-yes', at(k), `${k} is ignored without PKEY=yes`));
        }
      }
    }
    foreign('IPOIB_DEVICE', 'use PKEY=yes, PHYSDEV and PKEY_ID');
    foreign('IPOIB_PKEY', 'use PKEY=yes, PHYSDEV and PKEY_ID');
  } else {
    const dm = /^(.+)\.([0-9a-f]{1,4})$/i.exec(cfg.device);
    const parent = val('IPOIB_DEVICE') ?? dm?.[1];
    const pkeyText = val('IPOIB_PKEY') ?? dm?.[2];
    if (parent !== undefined && pkeyText !== undefined) {
      const t = pkeyText.replace(/^0x/i, '');
      const pkey = /^[0-9a-f]{1,4}$/i.test(t) ? parseInt(t, 16) : NaN;
      if (Number.isNaN(pkey) || (pkey & 0x7fff) === 0) {
        diagnostics.push(diag('error', 'bad-pkey', { file, line: lines['IPOIB_PKEY'] ?? null, key: 'IPOIB_PKEY' },
          `P_Key '${pkeyText}' is not a valid partition (hex 1..ffff, not 8000); the child is not created`));
      } else {
        cfg.kind = 'child';
        cfg.parent = parent;
        cfg.pkey = pkey;
        cfg.device = `${parent}.${hex4(pkey)}`;
      }
    } else if (get('IPOIB_DEVICE') !== undefined || get('IPOIB_PKEY') !== undefined) {
      diagnostics.push(diag('error', 'missing-pkey', at(get('IPOIB_DEVICE') !== undefined ? 'IPOIB_DEVICE' : 'IPOIB_PKEY'),
        'a child interface needs both IPOIB_DEVICE and IPOIB_PKEY (or a file named ifcfg-<parent>.<pkey>)'));
    }
    foreign('PKEY', 'use IPOIB_DEVICE and IPOIB_PKEY');
    foreign('PKEY_ID', 'use IPOIB_DEVICE and IPOIB_PKEY');
    foreign('PHYSDEV', 'use IPOIB_DEVICE');
  }

  // ---- addressing ----
  const bootproto = val('BOOTPROTO');
  const ipaddrText = val('IPADDR');
  let hasStatic = false;
  if (ipaddrText !== undefined) {
    const [addrPart, prefixPart] = ipaddrText.split('/', 2) as [string, string | undefined];
    const addr = parseIpv4(addrPart);
    if (addr === null) {
      diagnostics.push(diag('error', 'bad-address', at('IPADDR'), `'${ipaddrText}' is not an IPv4 address`));
    } else {
      hasStatic = true;
      cfg.address = formatIpv4(addr);
      let prefix: number | null = null;
      let from = '';
      if (prefixPart !== undefined) {
        prefix = parsePrefix(prefixPart);
        if (prefix === null) diagnostics.push(diag('error', 'bad-prefix', at('IPADDR'), `'/${prefixPart}' is not a prefix length 0..32`));
        from = 'IPADDR';
      }
      const prefixKey = layout === 'redhat' ? 'PREFIX' : 'PREFIXLEN';
      const pk = val(prefixKey);
      if (pk !== undefined) {
        const p = parsePrefix(pk);
        if (p === null) diagnostics.push(diag('error', 'bad-prefix', at(prefixKey), `'${pk}' is not a prefix length 0..32`));
        else if (prefix === null) {
          prefix = p;
          from = prefixKey;
        } else if (p !== prefix) {
          diagnostics.push(diag('warning', 'prefix-conflict', at(prefixKey), `${prefixKey}=${pk} disagrees with ${from}; ${from} wins`));
        }
      }
      const nm = val('NETMASK');
      if (nm !== undefined) {
        const p = netmaskToPrefix(nm);
        if (p === null) diagnostics.push(diag('error', 'bad-netmask', at('NETMASK'), `'${nm}' is not a contiguous netmask`));
        else if (prefix === null) prefix = p;
        else if (p !== prefix) {
          diagnostics.push(diag('warning', 'prefix-conflict', at('NETMASK'), `NETMASK=${nm} disagrees with ${from}; ${from} wins`));
        }
      }
      if (prefix === null) {
        prefix = classfulPrefix(addr);
        diagnostics.push(diag('info', 'classful-prefix', at('IPADDR'),
          `no prefix or netmask: /${prefix} from the address class, as ipcalc --netmask gives`));
      }
      cfg.prefix = prefix;
    }
  } else {
    for (const k of ['NETMASK', 'PREFIX', 'PREFIXLEN']) used.add(k);
  }
  const noStatic = (why: string): void => {
    if (ipaddrText === undefined) return;
    diagnostics.push(diag('warning', 'address-ignored', at('IPADDR'), `IPADDR is ignored: ${why}`));
    cfg.address = null;
    cfg.prefix = null;
  };
  const bp = bootproto?.toLowerCase();
  if (bp === 'dhcp' || bp === 'dhcp4' || bp === 'bootp' || bp === 'dhcp+autoip') {
    cfg.addressing = 'dhcp';
    if (bp === 'dhcp+autoip') diagnostics.push(diag('warning', 'autoip-unsupported', at('BOOTPROTO'), 'autoip is not supported; DHCP only'));
    noStatic(`BOOTPROTO=${bootproto} asks for DHCP`);
  } else if (bp === 'static') {
    cfg.addressing = hasStatic ? 'static' : 'none';
    if (!hasStatic) diagnostics.push(diag('warning', 'static-without-address', at('BOOTPROTO'), 'BOOTPROTO=static without a usable IPADDR; no address'));
  } else if (bp === 'none' || bp === undefined) {
    if (layout === 'redhat' || (bp === undefined && layout === 'suse')) {
      // RedHat: none (or unset) with IPADDR is a static address; SuSE's default BOOTPROTO is static.
      cfg.addressing = hasStatic ? 'static' : 'none';
    } else {
      cfg.addressing = 'none';
      noStatic('SuSE BOOTPROTO=none sets up no IP address');
    }
  } else {
    const hint = /^d[hc]{2}p$/i.test(bootproto ?? '') ? ` (did you mean 'dhcp'?)` : '';
    diagnostics.push(diag('error', 'bad-bootproto', at('BOOTPROTO'),
      `'${bootproto}' is not dhcp, static or none${hint}; the interface gets no address`));
    cfg.addressing = 'none';
    noStatic(`BOOTPROTO=${bootproto} is not understood`);
  }

  // ---- MTU and mode ----
  const mtuText = val('MTU');
  if (mtuText !== undefined) {
    if (/^\d{1,6}$/.test(mtuText)) cfg.mtu = { value: Number(mtuText), line: lines['MTU'] ?? 0 };
    else diagnostics.push(diag('error', 'bad-mtu', at('MTU'), `'${mtuText}' is not a decimal MTU; ignored`));
  }
  const cmText = val('CONNECTED_MODE');
  const ipoibMode = val('IPOIB_MODE');
  if (cmText !== undefined) {
    const t = truth(cmText);
    if (t === null) diagnostics.push(diag('error', 'bad-yes-no', at('CONNECTED_MODE'), `'${cmText}' is not yes or no; ignored`));
    else cfg.connectedMode = { value: t, line: lines['CONNECTED_MODE'] ?? 0, key: 'CONNECTED_MODE' };
  }
  if (ipoibMode !== undefined) {
    const m = ipoibMode.toLowerCase();
    if (m !== 'connected' && m !== 'datagram') {
      diagnostics.push(diag('error', 'bad-mode', at('IPOIB_MODE'), `'${ipoibMode}' is not connected or datagram; ignored`));
    } else if (cfg.connectedMode !== null && cfg.connectedMode.value !== (m === 'connected')) {
      const wins = layout === 'suse' ? 'IPOIB_MODE' : 'CONNECTED_MODE';
      diagnostics.push(diag('warning', 'mode-conflict', at(wins === 'IPOIB_MODE' ? 'CONNECTED_MODE' : 'IPOIB_MODE'),
        `CONNECTED_MODE and IPOIB_MODE disagree; ${wins} (the ${layout === 'suse' ? 'SuSE' : 'RedHat'} key) wins`));
      if (wins === 'IPOIB_MODE') cfg.connectedMode = { value: m === 'connected', line: lines['IPOIB_MODE'] ?? 0, key: 'IPOIB_MODE' };
    } else if (cfg.connectedMode === null) {
      cfg.connectedMode = { value: m === 'connected', line: lines['IPOIB_MODE'] ?? 0, key: 'IPOIB_MODE' };
    }
  }

  // ---- onboot ----
  if (layout === 'redhat') {
    const ob = val('ONBOOT');
    // initscripts bring an interface up at boot unless ONBOOT says no.
    cfg.onboot = true;
    if (ob !== undefined) {
      const t = truth(ob);
      if (t === null) diagnostics.push(diag('error', 'bad-yes-no', at('ONBOOT'), `'${ob}' is not yes or no; read as yes`));
      else cfg.onboot = t;
    }
    foreign('STARTMODE', 'use ONBOOT');
  } else {
    const sm = val('STARTMODE');
    if (sm === undefined) {
      cfg.onboot = false;
      diagnostics.push(diag('info', 'startmode-default', { file, line: null, key: 'STARTMODE' },
        'no STARTMODE: SuSE defaults to manual, so the interface is not brought up at boot'));
    } else if (/^(auto|onboot|on|boot|hotplug|nfsroot|ifplugd)$/i.test(sm)) cfg.onboot = true;
    else if (/^(manual|off)$/i.test(sm)) cfg.onboot = false;
    else {
      diagnostics.push(diag('error', 'bad-startmode', at('STARTMODE'), `'${sm}' is not auto, onboot, hotplug, nfsroot, manual or off; read as manual`));
    }
    foreign('ONBOOT', 'use STARTMODE');
  }

  // ---- bonding ----
  const master = val('MASTER');
  if (master !== undefined) {
    const slave = val('SLAVE');
    if (slave !== undefined && truth(slave) === false) {
      diagnostics.push(diag('warning', 'master-without-slave', at('SLAVE'), `MASTER=${master} is ignored with SLAVE=${slave}`));
    } else {
      cfg.master = { value: master, line: lines['MASTER'] ?? 0 };
    }
  }
  for (const [k, a] of sv.vars) {
    if (!/^BONDING_SLAVE_?\d+$/.test(k)) continue;
    used.add(k);
    if (a.value !== '') cfg.bondingSlaves.push({ value: a.value, line: a.line });
  }
  const optsText = val(bondOptsKey) ?? val(layout === 'redhat' ? 'BONDING_MODULE_OPTS' : 'BONDING_OPTS');
  if (optsText !== undefined) {
    const key = get(bondOptsKey) !== undefined ? bondOptsKey : (layout === 'redhat' ? 'BONDING_MODULE_OPTS' : 'BONDING_OPTS');
    const opts: BondingOpts = { mode: null, miimonMs: null, primary: null, key, line: lines[key] ?? 0 };
    for (const item of optsText.split(/\s+/).filter((s) => s !== '')) {
      const [k, v] = item.split('=', 2);
      if (k === 'mode' && v !== undefined) opts.mode = v;
      else if (k === 'miimon' && v !== undefined && /^\d+$/.test(v)) opts.miimonMs = Number(v);
      else if (k === 'primary' && v !== undefined) opts.primary = v;
      else {
        diagnostics.push(diag('info', 'bonding-option-unused', at(key), `bonding option '${item}' is not used by ipoib-boot`));
      }
    }
    cfg.bondingOpts = opts;
  }

  // ---- everything else ----
  const handled = new Set(['DEVICE', 'NAME', 'TYPE', 'BOOTPROTO', 'IPADDR', 'NETMASK', 'PREFIX', 'PREFIXLEN', 'MTU',
    'CONNECTED_MODE', 'IPOIB_MODE', 'ONBOOT', 'STARTMODE', 'PKEY', 'PKEY_ID', 'PHYSDEV', 'IPOIB_DEVICE', 'IPOIB_PKEY',
    'MASTER', 'SLAVE', 'BONDING_OPTS', 'BONDING_MODULE_OPTS', 'BONDING_MASTER']);
  for (const [k, a] of sv.vars) {
    if (handled.has(k) || used.has(k)) continue;
    if (KNOWN_UNUSED_KEYS.has(k)) {
      diagnostics.push(diag('info', 'known-key-unused', { file, line: a.line, key: k }, 'known ifcfg key, not used by ipoib-boot'));
    } else {
      diagnostics.push(diag('warning', 'unknown-key', { file, line: a.line, key: k }, 'unknown ifcfg key; ignored'));
    }
  }
  return cfg;
}
