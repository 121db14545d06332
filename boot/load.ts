// Reading the configuration from disk: openib.conf and a directory of ifcfg files, as openibd and the
// distribution's network scripts find them. Everything after the read is pure (openib-conf, ifcfg, plan).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { diag, type Diagnostic } from './diagnostic.js';
import { configNameOf, detectLayout, parseIfcfg, type IfcfgConfig, type IfcfgLayout } from './ifcfg.js';
import { parseOpenibConf, type OpenibConf } from './openib-conf.js';
import { buildPlan, naturalCompare, type BootPlan } from './plan.js';

/** A file or directory that cannot be read: the CLI reports it in one line and exits 2. */
export class ConfigFileError extends Error {
  readonly code = 'config-unreadable';
  constructor(readonly file: string, reason: string) {
    super(`${file}: ${reason}`);
  }
}

/** Backup and package-manager leftovers the network scripts skip (ifcfg(5) "FILENAMES AND EXTENSIONS"). */
const SKIPPED = /(~|\.old|\.bak|\.orig|\.scpmbackup|\.rpmnew|\.rpmsave|\.rpmorig|\.swp)$/;

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigFileError(path, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? String(err)})`);
  }
}

export function readOpenibConf(path: string): OpenibConf {
  return parseOpenibConf(readText(path), path);
}

export interface IfcfgScan {
  ifcfgs: IfcfgConfig[];
  diagnostics: Diagnostic[];
}

/** ifcfg-ib* and ifcfg-bond* in `dir`, in natural order; other ifcfg files (eth0, lo) are not IPoIB's. */
export function scanIfcfgDir(dir: string, layout?: IfcfgLayout): IfcfgScan {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new ConfigFileError(dir, 'not a directory');
    names = readdirSync(dir);
  } catch (err) {
    if (err instanceof ConfigFileError) throw err;
    throw new ConfigFileError(dir, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : 'cannot read');
  }
  const ifcfgs: IfcfgConfig[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const name of names.sort(naturalCompare)) {
    const cn = configNameOf(name);
    if (cn === null || !/^(ib|bond)/.test(cn)) continue;
    const path = join(dir, name);
    if (SKIPPED.test(name)) {
      diagnostics.push(diag('info', 'backup-file-skipped', { file: path }, 'a backup file; skipped as the network scripts do'));
      continue;
    }
    const text = readText(path);
    ifcfgs.push(parseIfcfg(text, path, layout ?? detectLayout(path, text)));
  }
  return { ifcfgs, diagnostics };
}

export interface LoadOptions {
  conf: string;
  ifcfgDir?: string | null;
  layout?: IfcfgLayout | null;
  ports?: readonly string[] | null;
  host?: string | null;
}

/** Reads both and builds the plan; throws ConfigFileError only when a file cannot be read at all. */
export function loadBootPlan(opts: LoadOptions): BootPlan {
  const conf = readOpenibConf(opts.conf);
  const scan = opts.ifcfgDir != null ? scanIfcfgDir(opts.ifcfgDir, opts.layout ?? undefined) : { ifcfgs: [], diagnostics: [] };
  conf.diagnostics.push(...scan.diagnostics);
  return buildPlan({ conf, ifcfgs: scan.ifcfgs, ifcfgDir: opts.ifcfgDir ?? null, ports: opts.ports ?? null, host: opts.host ?? null });
}
