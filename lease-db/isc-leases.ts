// ISC dhcpd's lease file, dhcpd.leases(5), as ISC DHCP 4.4 writes it (server/db.c write_lease):
//   lease 10.0.0.5 {
//     starts 3 2026/11/25 02:00:00;      weekday (0 = Sunday) and UTC date/time, or "never"
//     ends 3 2026/11/25 03:00:00;
//     cltt 3 2026/11/25 02:00:00;
//     binding state active;
//     next binding state free;
//     uid "\377\000\000\000\001";        quotify_buf(): octal escapes for unprintable bytes
//     set ipoib-port-guid = "0x0002c90300000001";
//     client-hostname "node1";
//   }
// IPoIB facts ISC has no statement for travel as `set` variables, which dhcpd keeps and
// rewrites untouched. We never write `hardware infiniband` with 20 bytes: dhcpd parses it, but
// its print_hw_addr() buffer (49 bytes) is too small to write a 20-byte address back out.
import { formatGuid, formatIPv4, fromColonHex, HWADDR_LENGTH, parseGuid, parseIPv4 } from './address.js';
import { LeaseStoreError } from './errors.js';
import type { Lease, LeaseState, NewLease } from './lease.js';

const ISC_STATE: Record<LeaseState, string> = {
  bound: 'active', offered: 'free', released: 'released', expired: 'expired', declined: 'abandoned',
};

/** ISC's print_time(): "%w %Y/%m/%d %H:%M:%S" in UTC; times beyond 32 bits are "never". */
export function iscTime(t: number): string {
  if (t >= 0xffff_ffff) return 'never';
  const d = new Date(t * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCDay()} ${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** ISC's quotify_buf(): printable ASCII as is, `"` and `\` escaped, every other byte as \ooo. */
export function iscQuote(b: Uint8Array): string {
  let s = '"';
  for (const c of b) {
    if (c === 0x22 || c === 0x5c) s += '\\' + String.fromCharCode(c);
    else if (c >= 0x20 && c <= 0x7e) s += String.fromCharCode(c);
    else s += '\\' + c.toString(8).padStart(3, '0');
  }
  return s + '"';
}

export function formatIscLeases(leases: Iterable<Lease>, writer = 'ipoib-dhcpd'): string {
  const out: string[] = [
    '# The format of this file is documented in the dhcpd.leases(5) manual page.',
    `# This lease file was written by ${writer}`,
    '',
  ];
  for (const l of leases) {
    const s: string[] = [`lease ${formatIPv4(l.address)} {`];
    s.push(`  starts ${iscTime(l.start)};`, `  ends ${iscTime(l.expiry)};`, `  cltt ${iscTime(l.start)};`);
    const state = ISC_STATE[l.state];
    s.push(`  binding state ${state};`);
    if (state === 'active' || state === 'released' || state === 'expired') s.push('  next binding state free;');
    if (l.clientId !== null) s.push(`  uid ${iscQuote(l.clientId)};`);
    s.push(`  set ipoib-subnet-id = "${l.subnetId}";`);
    if (l.state === 'offered') s.push('  set ipoib-state = "offered";');
    if (l.portGuid !== null) s.push(`  set ipoib-port-guid = "${formatGuid(l.portGuid)}";`);
    if (l.hwaddr !== null) s.push(`  set ipoib-hwaddr = "${[...l.hwaddr].map((x) => x.toString(16).padStart(2, '0')).join(':')}";`);
    // dhcpd itself writes only printable ASCII names; other UTF-8 bytes go out as octal escapes,
    // which its parser reads.
    if (l.hostname !== null) s.push(`  client-hostname ${iscQuote(Buffer.from(l.hostname, 'utf8'))};`);
    s.push('}');
    out.push(s.join('\n'));
  }
  return out.join('\n') + '\n';
}

// ---- reading ----

interface Token { kind: 'word' | 'string' | 'punct'; text: string; bytes?: Buffer; line: number }

function tokenize(text: string, file: string): Token[] {
  const toks: Token[] = [];
  let i = 0, line = 1;
  const fail = (why: string): never => { throw new LeaseStoreError('BAD_INPUT', `${file}:${line}`, why); };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') { line++; i++; continue; }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === '#') { while (i < text.length && text[i] !== '\n') i++; continue; }
    if (c === '{' || c === '}' || c === ';' || c === '=' || c === ',') { toks.push({ kind: 'punct', text: c, line }); i++; continue; }
    if (c === '"') {
      const bytes: number[] = [];
      const start = line;
      i++;
      for (;;) {
        if (i >= text.length) fail(`unterminated string starting on line ${start}`);
        const d = text[i]!;
        if (d === '"') { i++; break; }
        if (d === '\n') line++;
        if (d === '\\') {
          const e = text[i + 1] ?? '';
          const oct = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4));
          if (oct !== null) { bytes.push(parseInt(oct[0], 8) & 0xff); i += 1 + oct[0].length; continue; }
          const map: Record<string, number> = { n: 10, t: 9, r: 13, b: 8 };
          if (e === 'x' && /^[0-9a-f]{1,2}/i.test(text.slice(i + 2, i + 4))) {
            const h = /^[0-9a-f]{1,2}/i.exec(text.slice(i + 2, i + 4))![0];
            bytes.push(parseInt(h, 16)); i += 2 + h.length; continue;
          }
          bytes.push(map[e] ?? e.charCodeAt(0)); i += 2; continue;
        }
        for (const b of Buffer.from(d, 'utf8')) bytes.push(b);
        i++;
      }
      const b = Buffer.from(bytes);
      toks.push({ kind: 'string', text: b.toString('latin1'), bytes: b, line: start });
      continue;
    }
    let j = i;
    while (j < text.length && !/[\s{};=,"#]/.test(text[j]!)) j++;
    toks.push({ kind: 'word', text: text.slice(i, j), line });
    i = j;
  }
  return toks;
}

export interface ImportResult {
  leases: NewLease[];
  /** Entries read but not imported, with why (line numbers point into the file). */
  skipped: { line: number; reason: string }[];
}

export interface ImportOptions {
  /** The subnet of an address the file does not say (ISC has no subnet ids); default 1. */
  subnetOf?: (address: number) => number | undefined;
  server?: string;
}

function parseIscDate(words: string[]): number | null {
  if (words[0] === 'never') return 0xffff_ffff;
  if (words[0] === 'epoch' && /^\d+$/.test(words[1] ?? '')) return Number(words[1]);
  const [, date, time] = words;
  const m = /^(\d{4})\/(\d{1,2})\/(\d{1,2})$/.exec(date ?? '');
  const t = /^(\d{1,2}):(\d{2}):(\d{2})$/.exec(time ?? '');
  if (m === null || t === null) return null;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +t[1]!, +t[2]!, +t[3]!) / 1000;
}

/** Reads a dhcpd.leases file: the last declaration of each address wins, as dhcpd itself reads it. */
export function parseIscLeases(text: string, file: string, opts: ImportOptions = {}): ImportResult {
  const toks = tokenize(text, file);
  const byAddress = new Map<number, NewLease>();
  const skipped: ImportResult['skipped'] = [];
  let i = 0;
  const fail = (why: string, line = toks[i]?.line ?? 0): never => {
    throw new LeaseStoreError('BAD_INPUT', `${file}:${line}`, why);
  };
  // Skips one statement: words up to ';', or a block with nested braces.
  const skipStatement = (): void => {
    while (i < toks.length) {
      const t = toks[i++]!;
      if (t.kind === 'punct' && t.text === ';') return;
      if (t.kind === 'punct' && t.text === '{') {
        let depth = 1;
        while (i < toks.length && depth > 0) {
          const u = toks[i++]!;
          if (u.kind === 'punct' && u.text === '{') depth++;
          if (u.kind === 'punct' && u.text === '}') depth--;
        }
        if (depth > 0) fail('unbalanced braces');
        return;
      }
      if (t.kind === 'punct' && t.text === '}') fail("unexpected '}'", t.line);
    }
  };
  // Collects the tokens of one statement up to its ';'.
  const statement = (): Token[] => {
    const out: Token[] = [];
    while (i < toks.length) {
      const t = toks[i]!;
      if (t.kind === 'punct' && t.text === ';') { i++; return out; }
      if (t.kind === 'punct' && (t.text === '{' || t.text === '}')) fail(`expected ';' before '${t.text}'`, t.line);
      out.push(t); i++;
    }
    return fail('file ends inside a statement');
  };

  while (i < toks.length) {
    const t = toks[i]!;
    if (!(t.kind === 'word' && t.text === 'lease' && toks[i + 2]?.text === '{')) { skipStatement(); continue; }
    const line = t.line;
    const address = parseIPv4(toks[i + 1]!.text);
    i += 3;
    let start = 0, expiry = 0, binding = 'free';
    let clientId: Buffer | null = null, hwaddr: Buffer | null = null, portGuid: bigint | null = null;
    let ethernet: Buffer | null = null, hostname: string | null = null, subnet: number | undefined, ours: string | undefined;
    for (;;) {
      const u = toks[i];
      if (u === undefined) fail(`lease on line ${line} is not closed`);
      if (u!.kind === 'punct' && u!.text === '}') { i++; break; }
      if (u!.kind === 'word' && toks[i + 1]?.kind === 'punct' && toks[i + 1]!.text === '{') { skipStatement(); continue; }
      if (u!.kind === 'word' && u!.text === 'on') { skipStatement(); continue; }
      const st = statement();
      const words = st.map((x) => x.text);
      const [k] = words;
      if (k === 'starts' || k === 'ends') {
        const v = parseIscDate(words.slice(1));
        if (v === null) fail(`${k}: '${words.slice(1).join(' ')}' is not a date`, u!.line);
        if (k === 'starts') start = v!; else expiry = v!;
      } else if (k === 'binding' && words[1] === 'state') {
        binding = words[2] ?? binding;
      } else if (k === 'uid') {
        const v = st[1];
        clientId = v?.kind === 'string' ? v.bytes! : fromColonHex(v?.text ?? '');
        if (clientId === null || clientId.length === 0) fail(`uid: '${v?.text ?? ''}' is neither a string nor hex`, u!.line);
      } else if (k === 'hardware') {
        const b = fromColonHex(words[2] ?? '');
        if (b === null) fail(`hardware: '${words[2] ?? ''}' is not hex`, u!.line);
        if (words[1] === 'infiniband' && b!.length === HWADDR_LENGTH) hwaddr = b;
        if (words[1] === 'ethernet' && b!.length === 6) ethernet = b;
      } else if (k === 'client-hostname') {
        hostname = st[1]?.kind === 'string' ? st[1].bytes!.toString('utf8') : (st[1]?.text ?? null);
      } else if (k === 'set' && words[2] === '=') {
        const val = st[3]?.text ?? '';
        if (words[1] === 'ipoib-port-guid') portGuid = parseGuid(val);
        else if (words[1] === 'ipoib-hwaddr') { const b = fromColonHex(val); if (b?.length === HWADDR_LENGTH) hwaddr = b; }
        else if (words[1] === 'ipoib-subnet-id' && /^\d+$/.test(val)) subnet = Number(val);
        else if (words[1] === 'ipoib-state') ours = val;
      }
    }
    if (address === null) { skipped.push({ line, reason: `'${toks[i]?.text}' is not an IPv4 address` }); continue; }
    // An Ethernet client without option 61 is known by htype 1 + chaddr, the identifier RFC 2132 §9.14 suggests.
    if (clientId === null && ethernet !== null) clientId = Buffer.concat([Buffer.from([1]), ethernet]);
    if (portGuid === null && hwaddr !== null) portGuid = hwaddr.readBigUInt64BE(12);
    const state: LeaseState | undefined = ours === 'offered' ? 'offered' : ({
      active: 'bound', free: 'expired', backup: 'expired', expired: 'expired', released: 'released',
      abandoned: 'declined', reset: 'expired',
    } as Record<string, LeaseState>)[binding];
    if (state === undefined) { skipped.push({ line, reason: `binding state '${binding}' is not one dhcpd writes` }); continue; }
    byAddress.set(address, {
      address, subnetId: subnet ?? opts.subnetOf?.(address) ?? 1, clientId, portGuid, hwaddr, hostname, state,
      start, expiry: Math.max(expiry, start), server: opts.server ?? 'import',
    });
  }
  return { leases: [...byAddress.values()].sort((a, b) => a.address - b.address), skipped };
}
