// The client lease file in ISC dhclient.leases(5) syntax, as dhclient 4.4 writes it (client/dhclient.c
// write_client_lease(): `lease { interface; fixed-address; option ...; renew/rebind/expire <time>; }`,
// times as common/print.c print_time(): "W YYYY/MM/DD HH:MM:SS;" in UTC, "epoch N;" or "never;").
// The last block for an interface is the current one (dhclient.leases(5): "written as a log").

import {
  OptionCode, decodeOptionValue, encodeOptionValue, formatHex, ipv4ToString, optionDef, tryParseIpv4,
  type DhcpOption, type OptionValue,
} from '../protocol/index.js';
import { INFINITE_LEASE, leaseParameters, leaseTimes, type ClientLease } from './lease.js';

/** ISC names where they differ from Kea's (option-defs.ts); 121 as Debian's dhclient.conf declares it. */
const ISC_NAMES: ReadonlyMap<number, string> = new Map([
  [67, 'bootfile-name'],
  [121, 'rfc3442-classless-static-routes'],
]);
const CODES_BY_ISC_NAME: ReadonlyMap<string, number> = new Map([...ISC_NAMES].map(([c, n]) => [n, c]));

function iscName(code: number): string {
  const special = ISC_NAMES.get(code);
  if (special !== undefined) return special;
  const d = optionDef(code);
  return d.name === String(code) ? `unknown-${code}` : d.name;
}

function codeOf(name: string): number | undefined {
  const special = CODES_BY_ISC_NAME.get(name);
  if (special !== undefined) return special;
  const unknown = /^unknown-(\d{1,3})$/.exec(name);
  if (unknown !== null) return Number(unknown[1]);
  try {
    return optionDef(name).code;
  } catch {
    return undefined;
  }
}

function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

const SCALAR_TYPES = new Set(['ipv4-address', 'uint8', 'uint16', 'uint32', 'int8', 'int16', 'int32', 'string', 'boolean']);

/** An option's value as write_lease_option() prints it (commas between list items, strings quoted). */
function formatLeaseValue(opt: DhcpOption): string {
  if (opt.code === OptionCode.CLASSLESS_STATIC_ROUTE) return [...opt.data].join(',');
  const d = optionDef(opt.code);
  if (SCALAR_TYPES.has(d.type)) {
    try {
      const v = decodeOptionValue(opt.code, opt.data);
      const one = (x: unknown): string =>
        d.type === 'ipv4-address' ? ipv4ToString(x as number) : d.type === 'string' ? quote(String(x)) : String(x);
      return Array.isArray(v) ? v.map(one).join(',') : one(v);
    } catch {
      // Data that does not match its definition is kept byte for byte.
    }
  }
  return formatHex(opt.data);
}

function formatTime(ms: number): string {
  if (!Number.isFinite(ms)) return 'never;';
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCDay()} ${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())};`;
}

/** One `lease { ... }` block. */
export function formatLease(lease: ClientLease): string {
  const lines = ['lease {', `  interface ${quote(lease.interface)};`, `  fixed-address ${ipv4ToString(lease.address)};`];
  for (const opt of lease.options) lines.push(`  option ${iscName(opt.code)} ${formatLeaseValue(opt)};`);
  lines.push(`  renew ${formatTime(lease.renewAt)}`, `  rebind ${formatTime(lease.rebindAt)}`, `  expire ${formatTime(lease.expiresAt)}`, '}');
  return lines.join('\n') + '\n';
}

export function formatLeaseFile(leases: readonly ClientLease[]): string {
  return leases.map(formatLease).join('');
}

// ---- parsing --------------------------------------------------------------------------------------

export interface LeaseFileProblem {
  line: number;
  message: string;
}

export interface ParsedLeaseFile {
  leases: ClientLease[];
  /** Blocks or statements skipped, with the line they start on (a daemon logs them and carries on). */
  problems: LeaseFileProblem[];
}

interface Statement {
  line: number;
  words: string[];
  /** Text after the first word(s), up to the ';' (for option values). */
  raw: string;
}

class Scanner {
  pos = 0;
  line = 1;
  constructor(readonly text: string) {}

  skipSpace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t[this.pos]!;
      if (c === '\n') { this.line++; this.pos++; }
      else if (c === ' ' || c === '\t' || c === '\r') this.pos++;
      else if (c === '#') { while (this.pos < t.length && t[this.pos] !== '\n') this.pos++; }
      else break;
    }
  }

  peek(): string | undefined {
    this.skipSpace();
    return this.text[this.pos];
  }

  word(): string {
    this.skipSpace();
    const m = /^[^\s;{}"#]+/.exec(this.text.slice(this.pos, this.pos + 256));
    if (m === null) return '';
    this.pos += m[0].length;
    return m[0];
  }

  /** Raw text up to the next ';' outside quotes (consumed), or null at end of input / a brace. */
  untilSemicolon(): string | null {
    const t = this.text;
    const start = this.pos;
    let quoted = false;
    while (this.pos < t.length) {
      const c = t[this.pos]!;
      if (c === '\n') this.line++;
      if (quoted) {
        if (c === '\\') this.pos++;
        else if (c === '"') quoted = false;
      } else if (c === '"') quoted = true;
      else if (c === ';') { this.pos++; return t.slice(start, this.pos - 1).trim(); }
      else if (c === '{' || c === '}') return null;
      this.pos++;
    }
    return null;
  }

  /** Skips a statement or a balanced `{ ... }` block (lease6, unknown top-level declarations). */
  skipDeclaration(): void {
    let depth = 0;
    const t = this.text;
    let quoted = false;
    while (this.pos < t.length) {
      const c = t[this.pos++]!;
      if (c === '\n') this.line++;
      if (quoted) { if (c === '\\') this.pos++; else if (c === '"') quoted = false; continue; }
      if (c === '"') quoted = true;
      else if (c === '{') depth++;
      else if (c === '}') { if (--depth <= 0) return; }
      else if (c === ';' && depth === 0) return;
    }
  }
}

function unquote(raw: string): string | null {
  const m = /^"((?:[^"\\]|\\.)*)"$/.exec(raw.trim());
  return m === null ? null : m[1]!.replace(/\\(.)/g, '$1');
}

function parseHexBytes(raw: string): Buffer | null {
  const t = raw.trim();
  if (!/^[0-9a-f]{1,2}(:[0-9a-f]{1,2})*$/i.test(t)) return null;
  return Buffer.from(t.split(':').map((h) => parseInt(h, 16)));
}

/** An option value as written by formatLeaseValue (or by ISC dhclient for these types). */
function parseLeaseValue(code: number, raw: string): Buffer | null {
  if (code === OptionCode.CLASSLESS_STATIC_ROUTE) {
    const parts = raw.split(',').map((s) => s.trim());
    if (parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return Buffer.from(parts.map(Number));
    return parseHexBytes(raw);
  }
  const d = optionDef(code);
  if (SCALAR_TYPES.has(d.type)) {
    const items = d.type === 'string' ? [raw] : raw.split(',').map((s) => s.trim());
    const values: (number | string | boolean)[] = [];
    let ok = true;
    for (const item of items) {
      if (d.type === 'ipv4-address') {
        const a = tryParseIpv4(item);
        if (a === null) { ok = false; break; }
        values.push(a);
      } else if (d.type === 'string') {
        const s = unquote(item);
        if (s === null) { ok = false; break; }
        values.push(s);
      } else if (d.type === 'boolean') {
        if (item !== 'true' && item !== 'false') { ok = false; break; }
        values.push(item === 'true');
      } else {
        if (!/^-?\d+$/.test(item)) { ok = false; break; }
        values.push(Number(item));
      }
    }
    if (ok && (d.array || values.length === 1)) {
      try {
        return encodeOptionValue(code, (d.array ? values : values[0]!) as OptionValue);
      } catch {
        // Fall through to hex: what formatLeaseValue writes for data that did not decode.
      }
    }
  }
  return parseHexBytes(raw);
}

const WEEKDAY_TIME = /^\d\s+(\d{4})\/(\d{1,2})\/(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})$/;

function parseTime(raw: string): number | null {
  const t = raw.trim();
  if (t === 'never') return Infinity;
  const epoch = /^epoch\s+(\d+)$/.exec(t);
  if (epoch !== null) return Number(epoch[1]) * 1000;
  const m = WEEKDAY_TIME.exec(t);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
}

function parseBlock(sc: Scanner, startLine: number, problems: LeaseFileProblem[]): ClientLease | null {
  let iface: string | null = null;
  let address: number | null = null;
  const options: DhcpOption[] = [];
  const times: { renew?: number; rebind?: number; expire?: number } = {};
  for (;;) {
    const c = sc.peek();
    if (c === undefined) {
      problems.push({ line: startLine, message: 'lease block not closed' });
      return null;
    }
    if (c === '}') { sc.pos++; break; }
    const line = sc.line;
    const keyword = sc.word();
    if (keyword === '') {
      problems.push({ line, message: `unexpected ${JSON.stringify(c)}` });
      sc.skipDeclaration();
      continue;
    }
    if (keyword === 'option') {
      const name = sc.word();
      const raw = sc.untilSemicolon();
      const code = codeOf(name);
      if (raw === null) { problems.push({ line, message: `option ${name}: missing ';'` }); return null; }
      if (code === undefined) { problems.push({ line, message: `unknown option ${name}` }); continue; }
      const data = parseLeaseValue(code, raw);
      if (data === null) { problems.push({ line, message: `option ${name}: cannot read ${JSON.stringify(raw)}` }); continue; }
      const at = options.findIndex((o) => o.code === code);
      if (at >= 0) options[at] = { code, data }; else options.push({ code, data });
      continue;
    }
    const raw = sc.untilSemicolon();
    if (raw === null) { problems.push({ line, message: `${keyword}: missing ';'` }); return null; }
    switch (keyword) {
      case 'interface': iface = unquote(raw); break;
      case 'fixed-address': address = tryParseIpv4(raw); break;
      case 'renew': case 'rebind': case 'expire': {
        const t = parseTime(raw);
        if (t === null) problems.push({ line, message: `${keyword}: cannot read time ${JSON.stringify(raw)}` });
        else times[keyword] = t;
        break;
      }
      default: break; // bootp, filename, server-name, medium, name, ...: not used by this client
    }
  }
  const fail = (message: string): null => { problems.push({ line: startLine, message }); return null; };
  if (iface === null) return fail('lease without interface');
  if (address === null) return fail('lease without a valid fixed-address');
  const sid = options.find((o) => o.code === OptionCode.SERVER_IDENTIFIER)?.data;
  if (sid === undefined || sid.length !== 4) return fail('lease without dhcp-server-identifier');
  const lt = options.find((o) => o.code === OptionCode.LEASE_TIME)?.data;
  if (lt === undefined || lt.length !== 4) return fail('lease without dhcp-lease-time');
  if (times.expire === undefined) return fail('lease without expire');
  const leaseTime = lt.readUInt32BE(0);
  const startedAt = leaseTime === INFINITE_LEASE ? 0 : times.expire - leaseTime * 1000;
  const derived = leaseTimes(leaseTime, options, startedAt);
  let params;
  try {
    params = leaseParameters(address, options);
  } catch (err) {
    return fail(`lease parameters: ${(err as Error).message}`);
  }
  return {
    ...params, interface: iface, address, serverIdentifier: sid.readUInt32BE(0), options, leaseTime, startedAt,
    renewAt: times.renew ?? derived.renewAt, rebindAt: times.rebind ?? derived.rebindAt, expiresAt: times.expire,
  };
}

/** Every well-formed `lease { }` block, in file order; everything else becomes a problem or is skipped. */
export function parseLeaseFile(text: string): ParsedLeaseFile {
  const sc = new Scanner(text);
  const leases: ClientLease[] = [];
  const problems: LeaseFileProblem[] = [];
  while (sc.peek() !== undefined) {
    const line = sc.line;
    const word = sc.word();
    if (word === 'lease' && sc.peek() === '{') {
      sc.pos++;
      const lease = parseBlock(sc, line, problems);
      if (lease !== null) leases.push(lease);
    } else {
      if (word === '') sc.pos++;
      else sc.skipDeclaration(); // default-duid, lease6 { ... }, ...
    }
  }
  return { leases, problems };
}

/** The lease INIT-REBOOT starts from: the last block for `iface` (dhclient.leases(5)). */
export function currentLease(file: ParsedLeaseFile, iface: string): ClientLease | null {
  for (let i = file.leases.length - 1; i >= 0; i--) if (file.leases[i]!.interface === iface) return file.leases[i]!;
  return null;
}
