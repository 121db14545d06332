// partitions.conf in OpenSM's syntax (opensm doc/partition-config.txt), the common subset:
//
//   # comment
//   Default=0x7fff, ipoib : ALL=full ;
//   storage=0x8001, ipoib, mtu=5, rate=7, sl=1, Q_Key=0x0b1b, TClass=0, FlowLabel=0, scope=2 :
//       0x0002c90300001235=full, 0x0002c90300001236, SELF=full ;
//   mcast=0x0003, ipoib, defmember=full :
//       mgid=ff12:401b::0707, sl=1
//       ALL ;
//
// Supported: PartitionName[=PKey] (low 15 bits kept), flags ipoib, indx0, defmember=full|limited|both,
// rate=, mtu=, sl=, scope=, Q_Key=, TClass=, FlowLabel=; members ALL, ALL_CAS, SELF or a port GUID,
// each =full|limited|both (default: defmember, itself limited by default); "mgid=GID[,flags]" lines
// (one group per line). Not supported (rejected with an error): ALL_SWITCHES, ALL_ROUTERS (the emulated
// fabric has neither as end ports), auto-generated P_Keys (a partition without "=PKey"), several
// scope= on one line. Without a file OpenSM behaves as if it read `Default=0x7fff, ipoib : ALL=full ;`;
// with a file that has no Default rule, `Default=0x7fff : ALL=limited, SELF=full ;` is added.
import { parseGid } from '../wire/ib-address.js';
import { IPOIB_BROADCAST_QKEY } from '../wire/mad-constants.js';
import { ipoibBroadcastMgid } from '../wire/ib-address.js';
import { FabricError } from './errors.js';

export type Membership = 'full' | 'limited' | 'both';

export interface PartitionMember {
  who: 'ALL' | 'ALL_CAS' | 'SELF' | bigint;
  membership: Membership;
}

/** Parameters of a multicast group the SM creates at start (OpenSM osm_prtn_add_mcgroup()). */
export interface McGroupParams {
  mgid: Buffer;
  rate: number;
  mtu: number;
  sl: number;
  scope: number;
  qkey: number;
  tclass: number;
  flowLabel: number;
}

export interface Partition {
  name: string;
  /** Partition number: the low 15 bits (the membership bit comes from each port's membership). */
  pkey: number;
  ipoib: boolean;
  members: PartitionMember[];
  /** The IPv4 broadcast group (when ipoib) followed by the mgid= groups. */
  groups: McGroupParams[];
  /** Line of the rule in the file (0 for the implicit default). */
  line: number;
}

/** OpenSM's defaults for partition groups (osm_base.h): rate 10 Gb/s, MTU 2048, SL 0, link-local. */
const DEFAULT_GROUP = { rate: 3, mtu: 4, sl: 0, scope: 2, tclass: 0, flowLabel: 0 };

export const DEFAULT_PARTITION_PKEY = 0x7fff;

/** What OpenSM runs with when there is no partitions.conf. */
export function defaultPartitions(): Partition[] {
  return [{
    name: 'Default', pkey: DEFAULT_PARTITION_PKEY, ipoib: true, line: 0,
    members: [{ who: 'ALL', membership: 'full' }],
    groups: [{ ...DEFAULT_GROUP, mgid: ipoibBroadcastMgid(DEFAULT_PARTITION_PKEY), qkey: IPOIB_BROADCAST_QKEY }],
  }];
}

interface Flags {
  ipoib: boolean;
  defmember: Membership;
  group: Omit<McGroupParams, 'mgid' | 'qkey'> & { qkey: number | undefined };
}

function fail(file: string, line: number, msg: string): never {
  throw new FabricError('BAD_CONFIG', `${file}:${line}: ${msg}`);
}

function num(file: string, line: number, key: string, text: string, max: number): number {
  const t = text.trim();
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(t)) fail(file, line, `${key}=${text}: not a number`);
  const v = Number(t);
  if (v > max) fail(file, line, `${key}=${text}: above ${max}`);
  return v;
}

function membershipOf(file: string, line: number, text: string | undefined, dflt: Membership): Membership {
  if (text === undefined) return dflt;
  const t = text.trim().toLowerCase();
  if (t === 'full' || t === 'limited' || t === 'both') return t;
  return fail(file, line, `membership "${text.trim()}": expected full, limited or both`);
}

function applyGroupFlag(file: string, line: number, g: Flags['group'], key: string, value: string): boolean {
  switch (key.toLowerCase()) {
    case 'rate': g.rate = num(file, line, key, value, 63); return true;
    case 'mtu': g.mtu = num(file, line, key, value, 5); return true;
    case 'sl': g.sl = num(file, line, key, value, 15); return true;
    case 'scope': g.scope = num(file, line, key, value, 15); return true;
    case 'q_key': case 'qkey': g.qkey = num(file, line, key, value, 0xffffffff); return true;
    case 'tclass': g.tclass = num(file, line, key, value, 255); return true;
    case 'flowlabel': g.flowLabel = num(file, line, key, value, 0xfffff); return true;
    default: return false;
  }
}

/** Parses partitions.conf text; `file` only names the source in error messages. */
export function parsePartitions(text: string, file = 'partitions.conf'): Partition[] {
  // Strip comments but keep line numbers: work on (line, text) pieces.
  const lines = text.split(/\r?\n/).map((l) => l.replace(/#.*$/, ''));
  const out: Partition[] = [];
  let stmt = '';
  let stmtLine = 0;
  const stmtLines: { line: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    let rest = lines[i]!;
    while (rest.length > 0) {
      const semi = rest.indexOf(';');
      const piece = semi < 0 ? rest : rest.slice(0, semi);
      if (stmt.trim() === '' && piece.trim() !== '') stmtLine = i + 1;
      stmt += piece + '\n';
      if (piece.trim() !== '') stmtLines.push({ line: i + 1, text: piece });
      if (semi < 0) break;
      if (stmt.trim() !== '') out.push(parseStatement(file, stmtLine, stmtLines.splice(0)));
      stmt = '';
      stmtLines.length = 0;
      rest = rest.slice(semi + 1);
    }
  }
  if (stmt.trim() !== '') fail(file, stmtLine, 'partition rule not terminated by ";"');
  const seen = new Map<number, number>();
  for (const p of out) {
    const prev = seen.get(p.pkey);
    if (prev !== undefined) fail(file, p.line, `P_Key 0x${p.pkey.toString(16)} already used by the rule on line ${prev}`);
    seen.set(p.pkey, p.line);
  }
  if (!seen.has(DEFAULT_PARTITION_PKEY)) {
    out.unshift({
      name: 'Default', pkey: DEFAULT_PARTITION_PKEY, ipoib: false, line: 0, groups: [],
      members: [{ who: 'ALL', membership: 'limited' }, { who: 'SELF', membership: 'full' }],
    });
  }
  return out;
}

function parseStatement(file: string, line0: number, pieces: { line: number; text: string }[]): Partition {
  const joined = pieces.map((p) => p.text).join('\n');
  const colon = joined.indexOf(':');
  if (colon < 0) fail(file, line0, 'expected "Definition : members ;"');
  const def = joined.slice(0, colon).replace(/\s+/g, ' ').trim();
  const parts = def.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const head = parts.shift() ?? '';
  const eq = head.indexOf('=');
  if (eq < 0) fail(file, line0, `partition "${head}" has no "=PKey" (auto-generated P_Keys are not supported)`);
  const name = head.slice(0, eq).trim();
  const pkey = num(file, line0, 'PKey', head.slice(eq + 1), 0xffff) & 0x7fff;
  if (pkey === 0) fail(file, line0, `P_Key ${head.slice(eq + 1).trim()} has partition number 0, which is invalid`);
  const flags: Flags = { ipoib: false, defmember: 'limited', group: { ...DEFAULT_GROUP, qkey: undefined } };
  for (const f of parts) {
    const [k, v] = f.split('=', 2) as [string, string | undefined];
    const key = k.trim();
    if (key.toLowerCase() === 'ipoib' && v === undefined) flags.ipoib = true;
    else if (key.toLowerCase() === 'indx0' && v === undefined) continue;
    else if (key.toLowerCase() === 'defmember') flags.defmember = membershipOf(file, line0, v, 'limited');
    else if (v === undefined || !applyGroupFlag(file, line0, flags.group, key, v)) fail(file, line0, `unknown partition flag "${f}"`);
  }
  const groups: McGroupParams[] = [];
  if (flags.ipoib) {
    groups.push({ ...flags.group, mgid: ipoibBroadcastMgid(pkey, flags.group.scope), qkey: flags.group.qkey ?? IPOIB_BROADCAST_QKEY });
  }
  const members: PartitionMember[] = [];
  // Members: after the colon, line by line; a line starting with mgid= is one group.
  let first = true;
  for (const piece of pieces) {
    let t = piece.text;
    if (first) {
      const c = t.indexOf(':');
      if (c < 0) continue;
      t = t.slice(c + 1);
      first = false;
    }
    t = t.trim();
    if (t === '') continue;
    if (/^mgid\s*=/i.test(t)) {
      groups.push(parseGroupLine(file, piece.line, t, flags, pkey));
      continue;
    }
    for (const spec of t.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      const [w, m] = spec.split('=', 2) as [string, string | undefined];
      const who = w.trim();
      const membership = membershipOf(file, piece.line, m, flags.defmember);
      if (who === 'ALL' || who === 'ALL_CAS' || who === 'SELF') members.push({ who, membership });
      else if (who === 'ALL_SWITCHES' || who === 'ALL_ROUTERS') fail(file, piece.line, `${who} is not supported (no switch or router end ports)`);
      else if (/^(0x[0-9a-f]{1,16}|[0-9]{1,20})$/i.test(who)) members.push({ who: BigInt(who), membership });
      else fail(file, piece.line, `"${who}" is not a port GUID or ALL / ALL_CAS / SELF`);
    }
  }
  return { name, pkey, ipoib: flags.ipoib, members, groups, line: line0 };
}

function parseGroupLine(file: string, line: number, text: string, flags: Flags, pkey: number): McGroupParams {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const g = { ...flags.group };
  let mgid: Buffer | undefined;
  for (const it of items) {
    const [k, v] = it.split('=', 2) as [string, string | undefined];
    if (v === undefined) fail(file, line, `"${it}": expected key=value`);
    if (k.trim().toLowerCase() === 'mgid') {
      try { mgid = parseGid(v); } catch { fail(file, line, `mgid=${v}: not a GID`); }
      if (mgid[0] !== 0xff) fail(file, line, `mgid=${v}: not a multicast GID (must start with ff)`);
    } else if (!applyGroupFlag(file, line, g, k.trim(), v)) fail(file, line, `unknown group flag "${it}"`);
  }
  if (mgid === undefined) fail(file, line, 'group line without mgid=');
  const sig = (mgid[2]! << 8) | mgid[3]!;
  const ip = sig === 0x401b || sig === 0x601b;
  // OpenSM copies the partition's P_Key into IP MGIDs whose P_Key bytes are zero.
  if (ip && mgid[4] === 0 && mgid[5] === 0) mgid.writeUInt16BE(pkey | 0x8000, 4);
  mgid[1] = (mgid[1]! & 0xf0) | (g.scope & 0x0f);
  return { ...g, mgid, qkey: g.qkey ?? (ip ? IPOIB_BROADCAST_QKEY : 0) };
}

/**
 * The P_Key table of one port (index 0 first): for every partition in file order, the most
 * specific rule that names the port (its GUID, then SELF for the SM port, then ALL/ALL_CAS);
 * "both" adds the full and the limited key.
 */
export function pkeyTableFor(partitions: readonly Partition[], portGuid: bigint, isSmPort: boolean): number[] {
  const table: number[] = [];
  for (const p of partitions) {
    let m: Membership | undefined;
    let rank = 0;
    for (const mem of p.members) {
      const r = mem.who === portGuid ? 3 : mem.who === 'SELF' && isSmPort ? 2 : mem.who === 'ALL' || mem.who === 'ALL_CAS' ? 1 : 0;
      if (r > rank) { rank = r; m = mem.membership; }
    }
    if (m === 'full' || m === 'both') table.push(p.pkey | 0x8000);
    if (m === 'limited' || m === 'both') table.push(p.pkey);
  }
  return table;
}
