// Kea's memfile lease file for DHCPv4 (src/lib/dhcpsrv/csv_lease_file4.cc, schema 3.0):
//   address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id
// hwaddr and client_id are lowercase colon hex; expire is cltt + valid_lifetime in Unix seconds;
// state is 0 default, 1 declined, 2 expired-reclaimed, 3 released; hostname and user_context are
// written with CSVRow::escapeCharacters (the separator, '&' and bytes outside 0x20-0x7e become
// "&#xHH"). The file is a log: the last row for an address wins, and valid_lifetime 0 deletes it.
// Older files have fewer columns (state since 2.0, user_context since 2.1); columns are found by
// header name. Facts Kea has no column for (port GUID, our offered state, the writing server)
// travel in user_context under "ipoib".
import { formatGuid, formatIPv4, fromColonHex, HWADDR_LENGTH, parseGuid, parseIPv4, toColonHex } from './address.js';
import { LeaseStoreError } from './errors.js';
import type { ImportOptions, ImportResult } from './isc-leases.js';
import type { Lease, LeaseState, NewLease, Pool } from './lease.js';

export const KEA_LEASE4_HEADER =
  'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id';

const KEA_STATE: Record<LeaseState, number> = { offered: 0, bound: 0, declined: 1, expired: 2, released: 3 };

export function keaEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b < 0x20 || b > 0x7e || b === 0x2c || b === 0x26 ? `&#x${b.toString(16).padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}

export function keaUnescape(s: string): string {
  if (!s.includes('&#x')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length;) {
    const m = s.startsWith('&#x', i) ? /^[0-9a-f]{2}/i.exec(s.slice(i + 3, i + 5)) : null;
    if (m !== null) { bytes.push(parseInt(m[0], 16)); i += 5; continue; }
    for (const b of Buffer.from(s[i]!, 'utf8')) bytes.push(b);
    i++;
  }
  return Buffer.from(bytes).toString('utf8');
}

export function formatKeaCsv(leases: Iterable<Lease>, pools: readonly Pool[] = []): string {
  const lines = [KEA_LEASE4_HEADER];
  for (const l of leases) {
    const ctx: Record<string, string> = { server: l.server };
    if (l.portGuid !== null) ctx['port-guid'] = formatGuid(l.portGuid);
    if (l.state === 'offered') ctx['state'] = 'offered';
    const pool = pools.find((p) => l.address >= p.first && l.address <= p.last);
    lines.push([
      formatIPv4(l.address),
      l.hwaddr === null ? '' : toColonHex(l.hwaddr),
      l.clientId === null ? '' : toColonHex(l.clientId),
      String(Math.max(0, l.expiry - l.start)),
      String(l.expiry),
      String(l.subnetId),
      '0', '0',
      keaEscape(l.hostname ?? ''),
      String(KEA_STATE[l.state]),
      keaEscape(JSON.stringify({ ipoib: ctx })),
      String(pool?.id ?? 0),
    ].join(','));
  }
  return lines.join('\n') + '\n';
}

const REQUIRED = ['address', 'hwaddr', 'client_id', 'valid_lifetime', 'expire', 'subnet_id', 'fqdn_fwd', 'fqdn_rev', 'hostname'];

export function parseKeaCsv(text: string, file: string, opts: ImportOptions = {}): ImportResult {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').trim().split(',');
  const missing = REQUIRED.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw new LeaseStoreError('BAD_INPUT', `${file}:1`,
      `not a Kea lease4 CSV file: header lacks ${missing.join(', ')} (expected ${KEA_LEASE4_HEADER})`);
  }
  const col = (name: string): number => header.indexOf(name);
  const byAddress = new Map<number, NewLease>();
  const skipped: ImportResult['skipped'] = [];
  for (let n = 1; n < lines.length; n++) {
    const raw = lines[n]!.trim();
    if (raw === '') continue;
    const f = raw.split(',');
    const at = (name: string): string => (col(name) < 0 ? '' : f[col(name)] ?? '');
    const skip = (reason: string): void => { skipped.push({ line: n + 1, reason }); };
    if (f.length < REQUIRED.length) { skip(`${f.length} columns, at least ${REQUIRED.length} needed`); continue; }
    const address = parseIPv4(at('address'));
    if (address === null) { skip(`address '${at('address')}' is not IPv4`); continue; }
    const valid = Number(at('valid_lifetime'));
    const expire = Number(at('expire'));
    const subnetId = Number(at('subnet_id'));
    if (![valid, expire, subnetId].every((x) => Number.isSafeInteger(x) && x >= 0)) {
      skip('valid_lifetime, expire and subnet_id must be non-negative integers'); continue;
    }
    if (valid === 0) { byAddress.delete(address); continue; }
    const hw = fromColonHex(at('hwaddr'));
    const cid = fromColonHex(at('client_id'));
    if (hw === null || cid === null) { skip('hwaddr or client_id is not hex'); continue; }
    let ctx: { ipoib?: { 'port-guid'?: string; state?: string; server?: string } } = {};
    const uc = keaUnescape(at('user_context'));
    if (uc !== '') {
      try { ctx = JSON.parse(uc) as typeof ctx; } catch { skip('user_context is not JSON'); continue; }
    }
    const stateCode = at('state') === '' ? 0 : Number(at('state'));
    const state: LeaseState | undefined = stateCode === 0 ? (ctx.ipoib?.state === 'offered' ? 'offered' : 'bound')
      : ({ 1: 'declined', 2: 'expired', 3: 'released' } as Record<number, LeaseState>)[stateCode];
    if (state === undefined) { skip(`state ${at('state')} has no IPv4 lease meaning here`); continue; }
    // Kea's own reader refuses these too: nothing would identify the client.
    if (hw.length === 0 && cid.length === 0 && state !== 'declined') { skip('neither hwaddr nor client_id, and not declined'); continue; }
    let clientId: Buffer | null = cid.length > 0 ? cid : null;
    const hwaddr = hw.length === HWADDR_LENGTH ? hw : null;
    if (clientId === null && hw.length === 6) clientId = Buffer.concat([Buffer.from([1]), hw]);
    const g = ctx.ipoib?.['port-guid'];
    const portGuid = g !== undefined ? parseGuid(g) : hwaddr !== null ? hwaddr.readBigUInt64BE(12) : null;
    const hostname = keaUnescape(at('hostname'));
    byAddress.set(address, {
      address, subnetId: subnetId || (opts.subnetOf?.(address) ?? 1), clientId, portGuid, hwaddr,
      hostname: hostname === '' ? null : hostname, state, start: expire - valid, expiry: expire,
      server: ctx.ipoib?.server ?? opts.server ?? 'import',
    });
  }
  return { leases: [...byAddress.values()].sort((a, b) => a.address - b.address), skipped };
}
