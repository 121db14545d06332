// The plan as people read it (`ipoib-boot --dry-run`): one row per interface, one per bond, the HA
// pairing, then every diagnostic on one line each. `--json` prints planJson() instead.

import { formatDiagnostic } from './diagnostic.js';
import type { BootPlan, PlanInterface } from './plan.js';

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}

function addr(i: { address: string | null; prefix: number | null }): string {
  return i.address === null ? '-' : `${i.address}/${i.prefix ?? 32}`;
}

export function formatPlanTable(plan: BootPlan, verb = 'start', verbose = false): string {
  const out: string[] = [];
  out.push(`ipoib-boot ${verb} plan${plan.host !== null ? ` for ${plan.host}` : ''}: ${plan.openibConf}` +
    `${plan.ifcfgDir !== null ? ` + ${plan.ifcfgDir} (${plan.layout ?? 'no ifcfg files'})` : ''}`);
  out.push(`IPoIB ${plan.ipoibLoaded ? 'loaded' : 'not loaded'}; ports: ${plan.ports.join(', ') || 'none'}` +
    `${plan.onboot ? '' : '; ONBOOT=no'}`);
  out.push('');
  if (plan.interfaces.length === 0) out.push('no interfaces');
  else {
    const rows = plan.interfaces.map((i: PlanInterface) => [
      i.name, i.kind, i.parent ?? '-', i.pkey === null ? '-' : `0x${i.pkey.toString(16)}`, i.mode, String(i.mtu),
      i.addressing, addr(i), i.onboot ? 'yes' : 'no', i.haRole === 'none' ? '-' : i.haRole,
      i.kind === 'bond' ? i.slaves.join(',') : (i.bondMaster ?? '-'),
    ]);
    out.push(...table(['NAME', 'KIND', 'PARENT', 'PKEY', 'MODE', 'MTU', 'ADDRESSING', 'ADDRESS', 'ONBOOT', 'HA', 'BOND'], rows));
  }
  if (plan.bonds.length > 0) {
    out.push('');
    out.push(...table(['BOND', 'MODE', 'SLAVES', 'PRIMARY', 'ADDRESS', 'MIIMON'],
      plan.bonds.map((b) => [b.name, b.mode, b.slaves.join(','), b.primary, addr(b), `${b.miimonMs} ms`])));
  }
  if (plan.ha !== null) {
    const t = plan.ha.takeover;
    out.push('');
    out.push(`HA: ${plan.ha.primary} primary, ${plan.ha.secondary} secondary; on failover ${plan.ha.secondary} takes ` +
      `${t.addressing === 'dhcp' ? `DHCP (client identifier of ${t.clientIdentifierOf})` : t.addressing === 'static' ? addr(t) : 'no address'}` +
      `, ${t.mode}, MTU ${t.mtu}`);
  }
  const shown = verbose ? plan.warnings : plan.warnings.filter((d) => d.severity !== 'info');
  const hidden = plan.warnings.length - shown.length;
  if (shown.length > 0 || hidden > 0) out.push('');
  out.push(...shown.map(formatDiagnostic));
  if (hidden > 0) out.push(`(${hidden} info note${hidden > 1 ? 's' : ''} not shown; -v shows them)`);
  return out.join('\n') + '\n';
}

/** The --json shape: {interfaces, bonds, warnings} plus the plan's other fields. */
export function planJson(plan: BootPlan): string {
  return JSON.stringify(plan, null, 2) + '\n';
}
