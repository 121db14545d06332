// kea-dhcp4.conf for ipoib-dhcpd: Kea's file format ({"Dhcp4": {...}}, Kea ARM "The DHCPv4 Server"),
// the subset declared by CONFIG_SCHEMA (config-schema.ts), validated in three steps: comments and
// JSON (config-text.ts), shapes with ajv (config-schema.ts), then meaning (pools inside subnets, no
// overlaps, unique ids, reservations, option data by Kea name, class tests). Every error names the file,
// the JSON path and the value; every key we do not implement is reported as a warning with its path.
//
// Documented departures from Kea (each also a warning where a file uses it):
// - lease-database "memfile" is read as "sqlite" (ipoib-dhcpd has no CSV store; leases must be durable).
// - calculate-tee-times defaults to true (RFC 2131 §4.4.5's T1 = 0.5, T2 = 0.875 of the lease).
// - offer-lifetime (Kea >= 2.6: seconds an offered lease is held) holds offers in memory only; default 30.
// - host-reservation-identifiers is ignored: every identity form is matched (server/identity.ts).
// - reservations may lie inside a pool (as Kea allows): such an address is never given to anyone else.
// - a subnet without "id" gets its position (1-based), with a warning (leases are keyed on the id).

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { Address4 } from 'ip-address';
import { WireError } from '../codec/wire-error.js';
import {
  OptionCode, encodeValue, optionDef, parseClientIdText, parseGuid, parseHex, parseValue, type OptionDef,
} from '../protocol/index.js';
import { CONFIG_SCHEMA, KEA_UNIMPLEMENTED, META_KEYS } from './config-schema.js';
import { ConfigSyntaxError, parseConfigText } from './config-text.js';
import { ClassExpressionError, parseClassTest, type ClassTest } from './classify.js';
import {
  IdentityIndex, circuitIdKeys, clientIdKeys, duidKeys, hardwareKeys, orderKeys, portGuidKeys,
} from './identity.js';

export type JsonPath = (string | number)[];

export interface ConfigIssue {
  path: string;
  message: string;
}

/** A configuration the server cannot run with. `message` is one line: file: path: value problem. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  constructor(readonly file: string, readonly issues: ConfigIssue[]) {
    super(`${file}: ${issues[0]?.path ?? ''}${issues[0] === undefined ? '' : ': '}${issues[0]?.message ?? 'invalid'}` +
      (issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''));
  }
}

export interface OptionSpec {
  code: number;
  name: string;
  data: Buffer;
  /** Kea "always-send": included even when the client did not ask for it. */
  alwaysSend: boolean;
  /** Kea "never-send": withheld even when asked for (overrides lower levels' values). */
  neverSend: boolean;
}

/** siaddr / sname / file as Kea's "next-server", "server-hostname", "boot-file-name". */
export interface BootFields {
  nextServer: number | null;
  serverHostname: string | null;
  bootFileName: string | null;
}

export interface Lifetimes {
  valid: number;
  min: number;
  max: number;
  renew: number | null;
  rebind: number | null;
  calculateTeeTimes: boolean;
  t1Percent: number;
  t2Percent: number;
}

export interface ClientClassConfig {
  name: string;
  /** null: the class has no test and is assigned only by reservations ("client-classes"). */
  test: ClassTest | null;
  options: OptionSpec[];
  boot: BootFields;
}

export interface PoolConfig {
  /** Position among all pools of the file, from 1: the LeaseStore's pool id. */
  id: number;
  subnetId: number;
  first: number;
  last: number;
  text: string;
  clientClass: string | null;
  options: OptionSpec[];
}

export interface ReservationConfig {
  /** JSON path, for messages. */
  path: string;
  subnetId: number;
  ipAddress: number | null;
  hostname: string | null;
  /** Identity keys (server/identity.ts), most specific first. */
  keys: string[];
  options: OptionSpec[];
  clientClasses: string[];
  boot: BootFields;
}

export interface SubnetConfig {
  id: number;
  /** "10.0.0.0/24" as normalised by ip-address. */
  subnet: string;
  network: number;
  prefixLength: number;
  mask: number;
  broadcast: number;
  pools: PoolConfig[];
  options: OptionSpec[];
  reservations: ReservationConfig[];
  /** Reservation lookup by any identity key. */
  reservationIndex: IdentityIndex<ReservationConfig>;
  /** Reserved address -> its reservation. */
  reservedAddresses: Map<number, ReservationConfig>;
  relayAddresses: number[];
  interface: string | null;
  authoritative: boolean;
  clientClass: string | null;
  lifetimes: Lifetimes;
  boot: BootFields;
}

export interface LeaseDatabaseConfig {
  type: 'sqlite' | 'postgresql';
  name: string;
  host: string | null;
  port: number | null;
  user: string | null;
  password: string | null;
  /** What lease-db/open.ts openLeaseStore() takes: a file name or a postgresql:// URL. */
  spec: string;
}

export interface LoggerConfig {
  name: string;
  severity: string;
  debuglevel: number;
  outputs: { output: string; flush: boolean; maxsize: number | null; maxver: number | null; pattern: string | null }[];
}

export interface IpoibOptions {
  /** Answer an unconfigured client by an IP broadcast in a link-layer unicast when its 20-byte address is known. */
  linkUnicastReplies: boolean;
  /** A client without a lease under its client identifier reuses the lease of its port GUID in the subnet. */
  matchPortGuid: boolean;
  rateLimit: { burst: number; perSecond: number };
}

export interface ServerConfig {
  file: string;
  interfaces: string[];
  socketType: 'raw' | 'udp';
  leaseDatabase: LeaseDatabaseConfig;
  subnets: SubnetConfig[];
  classes: ClientClassConfig[];
  options: OptionSpec[];
  boot: BootFields;
  echoClientId: boolean;
  declineProbationPeriod: number;
  offerLifetime: number;
  ipoib: IpoibOptions;
  loggers: LoggerConfig[];
  controlSocket: { socketType: 'unix'; socketName: string } | null;
  warnings: ConfigIssue[];
}

// ---- defaults (Kea's unless noted) ----

export const DEFAULT_VALID_LIFETIME = 7200;
export const DEFAULT_DECLINE_PROBATION = 86_400;
/** Ours: Kea 2.6's default 0 would not hold offers at all. */
export const DEFAULT_OFFER_LIFETIME = 30;
export const DEFAULT_T1_PERCENT = 0.5;
export const DEFAULT_T2_PERCENT = 0.875;
export const DEFAULT_SQLITE_FILE = '/var/lib/ipoib-dhcpd/dhcp4.leases.sqlite';
/** Per client: a burst of 20 messages, then 10 per second (a DORA is 2; a retrying client sends ~1/s). */
export const DEFAULT_RATE_LIMIT = { burst: 20, perSecond: 10 };

/** Options the engine itself writes; configuring them is an error (Kea refuses most of these too). */
const SERVER_OWNED: Record<number, string> = {
  [OptionCode.REQUESTED_ADDRESS]: 'is sent by clients, not servers',
  [OptionCode.LEASE_TIME]: 'is set with valid-lifetime',
  [OptionCode.OPTION_OVERLOAD]: 'is chosen by the encoder',
  [OptionCode.MESSAGE_TYPE]: 'is set by the server',
  [OptionCode.PARAMETER_REQUEST_LIST]: 'is sent by clients, not servers',
  [OptionCode.RENEWAL_TIME]: 'is set with renew-timer',
  [OptionCode.REBINDING_TIME]: 'is set with rebind-timer',
  [OptionCode.CLIENT_IDENTIFIER]: 'is echoed from the client (echo-client-id)',
  [OptionCode.AGENT_OPTIONS]: 'is echoed from the relay',
};

// ---- helpers ----

export function formatPath(path: JsonPath): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : (s === '' ? p : `.${p}`);
  return s;
}

function showValue(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  const j = JSON.stringify(v);
  return j === undefined ? String(v) : j.length > 80 ? j.slice(0, 77) + '...' : j;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function addrToNumber(a: Address4): number {
  return Number(a.bigInt());
}

function ipToString(n: number): string {
  return Address4.fromInteger(n).correctForm();
}

/** Strict dotted quad through ip-address; null when the text is not one (or carries a prefix). */
function parseAddress(text: string): number | null {
  const t = text.trim();
  if (t.includes('/') || !Address4.isValid(t)) return null;
  return addrToNumber(new Address4(t));
}

class Checker {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];
  error(path: JsonPath, value: unknown, message: string): void {
    this.errors.push({ path: formatPath(path), message: `${showValue(value)} ${message}` });
  }
  warn(path: JsonPath, message: string): void {
    this.warnings.push({ path: formatPath(path), message });
  }
}

// ---- schema walking: unknown keys ----

function resolveRef(s: Json): Json {
  const ref = s['$ref'];
  if (typeof ref === 'string' && ref.startsWith('#/$defs/')) {
    return ((CONFIG_SCHEMA['$defs'] as Json)[ref.slice(8)] as Json);
  }
  return s;
}

function reportUnknownKeys(schema: Json, data: unknown, path: JsonPath, c: Checker): void {
  const s = resolveRef(schema);
  if (Array.isArray(data) && isObject(s['items'])) {
    data.forEach((item, i) => reportUnknownKeys(s['items'] as Json, item, [...path, i], c));
    return;
  }
  if (!isObject(data) || !isObject(s['properties'])) return;
  const props = s['properties'] as Json;
  for (const [k, v] of Object.entries(data)) {
    const sub = props[k];
    if (sub === undefined) {
      if (META_KEYS.has(k)) continue;
      c.warn([...path, k], KEA_UNIMPLEMENTED.has(k)
        ? 'is a Kea key that ipoib-dhcpd does not implement; ignored'
        : 'is not a key ipoib-dhcpd (or Kea) knows; ignored');
    } else if (isObject(sub)) {
      reportUnknownKeys(sub, v, [...path, k], c);
    }
  }
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateShape = ajv.compile(CONFIG_SCHEMA);

function pointerToPath(pointer: string): JsonPath {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((p) => {
    const s = p.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^\d+$/.test(s) ? Number(s) : s;
  });
}

function valueAt(root: unknown, path: JsonPath): unknown {
  let v: unknown = root;
  for (const p of path) v = (v as Record<string | number, unknown> | undefined)?.[p];
  return v;
}

function shapeErrors(root: unknown, errors: ErrorObject[], c: Checker): void {
  for (const e of errors) {
    const path = pointerToPath(e.instancePath);
    if (e.keyword === 'required') {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      c.errors.push({ path: formatPath([...path, missing]), message: 'is required' });
      continue;
    }
    let msg = e.message ?? 'is invalid';
    if (e.keyword === 'enum') msg = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map(showValue).join(', ')}`;
    c.error(path, valueAt(root, path), msg);
  }
}

// ---- option data ----

function parseOptions(list: unknown, path: JsonPath, c: Checker): OptionSpec[] {
  if (!Array.isArray(list)) return [];
  const out: OptionSpec[] = [];
  const seen = new Map<number, number>();
  list.forEach((raw, i) => {
    const p = [...path, i];
    if (!isObject(raw)) return;
    const space = raw['space'];
    if (typeof space === 'string' && space !== 'dhcp4') {
      c.warn([...p, 'space'], `option space '${space}' is not implemented (only dhcp4); option ignored`);
      return;
    }
    const key = raw['name'] ?? raw['code'];
    if (key === undefined) { c.error(p, raw, 'needs a "name" or a "code"'); return; }
    let def: OptionDef;
    try {
      def = optionDef(key as string | number);
    } catch (err) {
      c.error([...p, raw['name'] !== undefined ? 'name' : 'code'], key, `is not a DHCPv4 option Kea names (${errText(err)})`);
      return;
    }
    if (typeof raw['code'] === 'number' && typeof raw['name'] === 'string' && raw['code'] !== def.code) {
      c.error([...p, 'code'], raw['code'], `does not match option name '${raw['name']}' (code ${def.code})`);
      return;
    }
    const owned = SERVER_OWNED[def.code];
    if (owned !== undefined) { c.error([...p, 'name'], def.name, owned); return; }
    const text = typeof raw['data'] === 'string' ? raw['data'] : '';
    let data: Buffer;
    try {
      if (raw['csv-format'] === false) {
        data = parseHex(text, def);
      } else if (def.type === 'vivso' && /^\s*\d+\s*$/.test(text)) {
        // Kea's form: the enterprise number alone, sub-options coming from a vendor space we do not implement.
        c.warn([...p, 'data'], `vivso-suboptions with enterprise ${text.trim()} only: vendor option spaces are not implemented, so it carries no sub-options`);
        data = encodeValue(def, [{ enterpriseId: Number(text), data: Buffer.alloc(0) }]);
      } else {
        data = encodeValue(def, parseValue(def, text));
      }
    } catch (err) {
      c.error([...p, 'data'], text, `is not valid data for ${def.name} (${errText(err)})`);
      return;
    }
    const prev = seen.get(def.code);
    if (prev !== undefined) c.error([...p, 'name'], def.name, `is already set at ${formatPath([...path, prev])}`);
    seen.set(def.code, i);
    out.push({
      code: def.code, name: def.name, data, alwaysSend: raw['always-send'] === true, neverSend: raw['never-send'] === true,
    });
  });
  return out;
}

function errText(err: unknown): string {
  if (err instanceof WireError) return err.message.replace(/^[^:]*: /, '');
  return err instanceof Error ? err.message : String(err);
}

function parseBoot(o: Json, path: JsonPath, c: Checker): BootFields {
  let nextServer: number | null = null;
  if (typeof o['next-server'] === 'string') {
    nextServer = parseAddress(o['next-server']);
    if (nextServer === null) c.error([...path, 'next-server'], o['next-server'], 'is not an IPv4 address');
  }
  const text = (k: string, max: number): string | null => {
    const v = o[k];
    if (typeof v !== 'string') return null;
    if (Buffer.byteLength(v, 'latin1') >= max) { c.error([...path, k], v, `is longer than ${max - 1} bytes`); return null; }
    return v;
  };
  return { nextServer, serverHostname: text('server-hostname', 64), bootFileName: text('boot-file-name', 128) };
}

function parseLifetimes(o: Json, inherit: Lifetimes | null, path: JsonPath, c: Checker): Lifetimes {
  const num = (k: string, d: number): number => (typeof o[k] === 'number' ? o[k] as number : d);
  const opt = (k: string, d: number | null): number | null => (typeof o[k] === 'number' ? o[k] as number : d);
  const valid = num('valid-lifetime', inherit?.valid ?? DEFAULT_VALID_LIFETIME);
  const l: Lifetimes = {
    valid,
    min: num('min-valid-lifetime', typeof o['valid-lifetime'] === 'number' ? valid : inherit?.min ?? valid),
    max: num('max-valid-lifetime', typeof o['valid-lifetime'] === 'number' ? valid : inherit?.max ?? valid),
    renew: opt('renew-timer', inherit?.renew ?? null),
    rebind: opt('rebind-timer', inherit?.rebind ?? null),
    calculateTeeTimes: typeof o['calculate-tee-times'] === 'boolean' ? o['calculate-tee-times'] : inherit?.calculateTeeTimes ?? true,
    t1Percent: num('t1-percent', inherit?.t1Percent ?? DEFAULT_T1_PERCENT),
    t2Percent: num('t2-percent', inherit?.t2Percent ?? DEFAULT_T2_PERCENT),
  };
  if (l.valid === 0) c.error([...path, 'valid-lifetime'], 0, 'must be above 0');
  if (l.min > l.valid || l.valid > l.max) {
    c.error([...path, 'valid-lifetime'], l.valid, `must lie between min-valid-lifetime ${l.min} and max-valid-lifetime ${l.max}`);
  }
  if (l.t1Percent >= l.t2Percent) c.error([...path, 't1-percent'], l.t1Percent, `must be below t2-percent ${l.t2Percent}`);
  if (l.renew !== null && l.rebind !== null && l.renew > l.rebind) {
    c.warn([...path, 'renew-timer'], `${l.renew} is above rebind-timer ${l.rebind}; clients will not be sent T1 (Kea does the same)`);
  }
  if (l.rebind !== null && l.rebind > l.valid) c.warn([...path, 'rebind-timer'], `${l.rebind} is above valid-lifetime ${l.valid}`);
  return l;
}

// ---- subnets, pools, reservations ----

interface ParsedSubnet { addr: Address4; first: bigint; last: bigint; path: JsonPath }

function parsePool(text: string, subnet: ParsedSubnet, path: JsonPath, c: Checker): { first: number; last: number } | null {
  const t = text.trim();
  let first: Address4, last: Address4;
  const range = /^(\S+)\s*-\s*(\S+)$/.exec(t);
  if (range !== null) {
    if (!Address4.isValid(range[1]!) || !Address4.isValid(range[2]!) || range[1]!.includes('/') || range[2]!.includes('/')) {
      c.error(path, text, 'is not "first - last" with two IPv4 addresses');
      return null;
    }
    first = new Address4(range[1]!); last = new Address4(range[2]!);
  } else if (t.includes('/') && Address4.isValid(t)) {
    const a = new Address4(t);
    first = a.startAddress(); last = a.endAddress();
  } else {
    c.error(path, text, 'is neither "first - last" nor a prefix "a.b.c.d/len"');
    return null;
  }
  if (!first.isInSubnet(subnet.addr) || !last.isInSubnet(subnet.addr)) {
    c.error(path, text, `is not inside ${subnet.addr.startAddress().correctForm()}/${subnet.addr.subnetMask}`);
    return null;
  }
  if (first.bigInt() > last.bigInt()) {
    c.error(path, text, `is empty: ${first.correctForm()} is above ${last.correctForm()}`);
    return null;
  }
  return { first: addrToNumber(first), last: addrToNumber(last) };
}

function parseReservation(
  raw: Json, subnet: SubnetConfig, parsed: ParsedSubnet, path: JsonPath, classNames: Set<string>, c: Checker,
): ReservationConfig | null {
  const keys: string[] = [];
  const hex = (k: string, f: (b: Buffer) => void): void => {
    const v = raw[k];
    if (typeof v !== 'string') return;
    let b: Buffer;
    try { b = k === 'client-id' ? parseClientIdText(v) : parseHex(v, optionDef(OptionCode.CLIENT_IDENTIFIER)); } catch {
      c.error([...path, k], v, 'is not hexadecimal bytes ("01:02:0a" or "01020a")'); return;
    }
    if (b.length === 0) { c.error([...path, k], v, 'is empty'); return; }
    f(b);
  };
  hex('client-id', (b) => clientIdKeys(b, false, keys));
  hex('duid', (b) => duidKeys(b, keys));
  hex('circuit-id', (b) => circuitIdKeys(b, keys));
  hex('hw-address', (b) => {
    if (b.length > 20) c.error([...path, 'hw-address'], raw['hw-address'], 'is longer than 20 bytes');
    else hardwareKeys(b, keys);
  });
  hex('ipoib-hw-address', (b) => {
    if (b.length !== 20) c.error([...path, 'ipoib-hw-address'], raw['ipoib-hw-address'], `is ${b.length} bytes; an IPoIB hardware address is 20`);
    else hardwareKeys(b, keys);
  });
  if (typeof raw['port-guid'] === 'string') {
    try { portGuidKeys(parseGuid(raw['port-guid']), keys); } catch {
      c.error([...path, 'port-guid'], raw['port-guid'], 'is not a 64-bit GUID (7c:fe:90:03:00:29:26:52 or 0x7cfe900300292652)');
    }
  }
  if (raw['flex-id'] !== undefined) c.warn([...path, 'flex-id'], 'flex-id needs a Kea hook library and is not implemented; identifier ignored');
  const named = ['client-id', 'duid', 'circuit-id', 'hw-address', 'ipoib-hw-address', 'port-guid'].filter((k) => raw[k] !== undefined);
  if (named.length === 0) {
    if (raw['flex-id'] === undefined) c.error(path, raw, 'names no identifier (client-id, hw-address, duid, circuit-id, port-guid, ipoib-hw-address)');
    else c.warn(path, 'has no identifier ipoib-dhcpd implements; reservation ignored');
    return null;
  }
  let ipAddress: number | null = null;
  if (typeof raw['ip-address'] === 'string') {
    ipAddress = parseAddress(raw['ip-address']);
    if (ipAddress === null) c.error([...path, 'ip-address'], raw['ip-address'], 'is not an IPv4 address');
    else if (!new Address4(raw['ip-address'].trim()).isInSubnet(parsed.addr)) {
      c.error([...path, 'ip-address'], raw['ip-address'], `is not inside ${subnet.subnet}`);
      ipAddress = null;
    } else if (ipAddress === subnet.network || ipAddress === subnet.broadcast) {
      c.error([...path, 'ip-address'], raw['ip-address'], `is the ${ipAddress === subnet.network ? 'network' : 'broadcast'} address of ${subnet.subnet}`);
      ipAddress = null;
    }
  }
  const classes = Array.isArray(raw['client-classes']) ? raw['client-classes'].filter((x): x is string => typeof x === 'string') : [];
  classes.forEach((n, i) => {
    if (!classNames.has(n)) c.error([...path, 'client-classes', i], n, 'is not a class defined in client-classes');
  });
  return {
    path: formatPath(path), subnetId: subnet.id, ipAddress,
    hostname: typeof raw['hostname'] === 'string' ? raw['hostname'] : null,
    keys: orderKeys(keys),
    options: parseOptions(raw['option-data'], [...path, 'option-data'], c),
    clientClasses: classes,
    boot: parseBoot(raw, path, c),
  };
}

function reservationModes(o: Json, path: JsonPath, c: Checker): void {
  const expect: Record<string, boolean> = { 'reservations-global': false, 'reservations-in-subnet': true, 'reservations-out-of-pool': false };
  for (const [k, want] of Object.entries(expect)) {
    if (typeof o[k] === 'boolean' && o[k] !== want) {
      c.warn([...path, k], `${String(o[k])} is not implemented: ipoib-dhcpd behaves as ${k}: ${String(want)}`);
    }
  }
}

// ---- the whole file ----

/** Validates an already-parsed kea-dhcp4.conf object. Throws ConfigError; returns the model with warnings. */
export function buildConfig(root: unknown, file = '(config)'): ServerConfig {
  const c = new Checker();
  if (!validateShape(root)) {
    shapeErrors(root, validateShape.errors ?? [], c);
    throw new ConfigError(file, c.errors);
  }
  const top = root as Json;
  for (const k of Object.keys(top)) {
    if (k !== 'Dhcp4') c.warn([k], KEA_UNIMPLEMENTED.has(k) ? 'is another Kea daemon\'s (or old-style) section; ignored' : 'is not a section ipoib-dhcpd knows; ignored');
  }
  const d = top['Dhcp4'] as Json;
  reportUnknownKeys((CONFIG_SCHEMA['properties'] as Json)['Dhcp4'] as Json, d, ['Dhcp4'], c);
  const P: JsonPath = ['Dhcp4'];

  // interfaces
  const ic = isObject(d['interfaces-config']) ? d['interfaces-config'] : {};
  const interfaces = Array.isArray(ic['interfaces']) ? (ic['interfaces'] as string[]) : [];
  const socketType = ic['dhcp-socket-type'] === 'udp' ? 'udp' : 'raw';

  // lease database
  const ldRaw = isObject(d['lease-database']) ? d['lease-database'] : { type: 'sqlite' };
  const ldPath: JsonPath = [...P, 'lease-database'];
  let type = ldRaw['type'] as string;
  if (type === 'memfile') {
    c.warn([...ldPath, 'type'], "'memfile' is read as 'sqlite': ipoib-dhcpd keeps leases in a SQLite file so that every acknowledged lease is durable");
    type = 'sqlite';
    for (const k of ['lfc-interval', 'persist']) {
      if (ldRaw[k] !== undefined) c.warn([...ldPath, k], 'is a memfile setting; ignored with the SQLite store');
    }
  } else {
    for (const k of ['lfc-interval', 'persist']) {
      if (ldRaw[k] !== undefined) c.warn([...ldPath, k], `is a memfile setting; ignored with type '${type}'`);
    }
  }
  const s = (k: string): string | null => (typeof ldRaw[k] === 'string' ? ldRaw[k] as string : null);
  let name = s('name');
  let spec: string;
  if (type === 'postgresql') {
    if (name === null) { c.errors.push({ path: formatPath([...ldPath, 'name']), message: 'is required for postgresql (the database name)' }); name = ''; }
    const auth = s('user') === null ? '' : `${encodeURIComponent(s('user')!)}${s('password') === null ? '' : ':' + encodeURIComponent(s('password')!)}@`;
    const port = typeof ldRaw['port'] === 'number' ? `:${ldRaw['port']}` : '';
    spec = `postgresql://${auth}${s('host') ?? 'localhost'}${port}/${encodeURIComponent(name)}`;
  } else {
    if (name === null) name = DEFAULT_SQLITE_FILE;
    else if (ldRaw['type'] === 'memfile' && name.endsWith('.csv')) {
      const n2 = name.slice(0, -4) + '.sqlite';
      c.warn([...ldPath, 'name'], `memfile CSV '${name}' becomes the SQLite file '${n2}'`);
      name = n2;
    }
    spec = name;
  }
  const leaseDatabase: LeaseDatabaseConfig = {
    type: type as 'sqlite' | 'postgresql', name, host: s('host'), port: typeof ldRaw['port'] === 'number' ? ldRaw['port'] : null,
    user: s('user'), password: s('password'), spec,
  };

  // globals
  if (d['match-client-id'] === false) c.warn([...P, 'match-client-id'], 'false is not implemented: leases are always keyed on the client identifier (RFC 4390)');
  if (d['host-reservation-identifiers'] !== undefined) {
    c.warn([...P, 'host-reservation-identifiers'], 'is ignored: every identifier form of a reservation is matched, most specific first (client-id, duid, ipoib-hw-address, port-guid, hw-address, circuit-id)');
  }
  reservationModes(d, P, c);
  const lifetimes = parseLifetimes(d, null, P, c);
  const authoritative = d['authoritative'] === true;
  const options = parseOptions(d['option-data'], [...P, 'option-data'], c);
  const boot = parseBoot(d, P, c);

  // classes
  const classes: ClientClassConfig[] = [];
  const classNames = new Set<string>();
  (Array.isArray(d['client-classes']) ? d['client-classes'] as Json[] : []).forEach((raw, i) => {
    const p: JsonPath = [...P, 'client-classes', i];
    const n = raw['name'] as string;
    if (classNames.has(n)) c.error([...p, 'name'], n, 'is defined twice');
    let test: ClassTest | null = null;
    if (typeof raw['test'] === 'string') {
      try {
        test = parseClassTest(raw['test']);
        for (const m of test.members) {
          if (!classNames.has(m)) c.error([...p, 'test'], raw['test'], `uses member('${m}'), which is not a class defined before this one`);
        }
      } catch (err) {
        const e = err as ClassExpressionError;
        c.error([...p, 'test'], raw['test'], `is not a supported class test: ${e.message} (at character ${e.at ?? 0})`);
      }
    }
    classNames.add(n);
    classes.push({ name: n, test, options: parseOptions(raw['option-data'], [...p, 'option-data'], c), boot: parseBoot(raw, p, c) });
  });

  // subnets
  const subnets: SubnetConfig[] = [];
  const parsedSubnets: ParsedSubnet[] = [];
  const ids = new Map<number, number>();
  const allPools: { pool: PoolConfig; path: JsonPath }[] = [];
  let poolId = 0;
  (Array.isArray(d['subnet4']) ? d['subnet4'] as Json[] : []).forEach((raw, i) => {
    const p: JsonPath = [...P, 'subnet4', i];
    const text = (raw['subnet'] as string).trim();
    if (!text.includes('/') || !Address4.isValid(text)) {
      c.error([...p, 'subnet'], raw['subnet'], 'is not an IPv4 prefix (a.b.c.d/len)');
      return;
    }
    const addr = new Address4(text);
    const start = addr.startAddress();
    if (start.correctForm() !== addr.addressMinusSuffix?.trim()) {
      c.error([...p, 'subnet'], raw['subnet'], `is not a network address (did you mean ${start.correctForm()}/${addr.subnetMask}?)`);
      return;
    }
    const ps: ParsedSubnet = { addr, first: start.bigInt(), last: addr.endAddress().bigInt(), path: p };
    for (const o of parsedSubnets) {
      if (ps.first <= o.last && o.first <= ps.last) {
        c.error([...p, 'subnet'], raw['subnet'], `overlaps ${o.addr.startAddress().correctForm()}/${o.addr.subnetMask} at ${formatPath([...o.path, 'subnet'])}`);
        return;
      }
    }
    let id = raw['id'] as number | undefined;
    if (id === undefined) {
      id = i + 1;
      while (ids.has(id)) id++;
      c.warn([...p, 'id'], `is missing: using ${id}. Leases are keyed on the subnet id, so set it explicitly before reordering subnets`);
    } else if (ids.has(id)) {
      c.error([...p, 'id'], id, `is already the id of ${formatPath([...P, 'subnet4', ids.get(id)!])}`);
      return;
    }
    ids.set(id, i);
    parsedSubnets.push(ps);
    const network = Number(ps.first);
    const prefixLength = addr.subnetMask;
    const relayRaw = isObject(raw['relay']) ? raw['relay'] : {};
    const relayTexts: [JsonPath, string][] = [];
    if (Array.isArray(relayRaw['ip-addresses'])) (relayRaw['ip-addresses'] as string[]).forEach((a, k) => relayTexts.push([[...p, 'relay', 'ip-addresses', k], a]));
    if (typeof relayRaw['ip-address'] === 'string') relayTexts.push([[...p, 'relay', 'ip-address'], relayRaw['ip-address']]);
    const relayAddresses: number[] = [];
    for (const [rp, a] of relayTexts) {
      const n = parseAddress(a);
      if (n === null) c.error(rp, a, 'is not an IPv4 address'); else relayAddresses.push(n);
    }
    if (raw['match-client-id'] === false) c.warn([...p, 'match-client-id'], 'false is not implemented: leases are always keyed on the client identifier (RFC 4390)');
    reservationModes(raw, p, c);
    const cc = typeof raw['client-class'] === 'string' ? raw['client-class'] : null;
    if (cc !== null && !classNames.has(cc)) c.error([...p, 'client-class'], cc, 'is not a class defined in client-classes');
    const subnet: SubnetConfig = {
      id, subnet: `${start.correctForm()}/${prefixLength}`, network, prefixLength,
      mask: prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0,
      broadcast: Number(ps.last),
      pools: [], options: parseOptions(raw['option-data'], [...p, 'option-data'], c), reservations: [],
      reservationIndex: new IdentityIndex(), reservedAddresses: new Map(), relayAddresses,
      interface: typeof raw['interface'] === 'string' ? raw['interface'] : null,
      authoritative: typeof raw['authoritative'] === 'boolean' ? raw['authoritative'] : authoritative,
      clientClass: cc,
      lifetimes: parseLifetimes(raw, lifetimes, p, c),
      boot: parseBoot(raw, p, c),
    };
    (Array.isArray(raw['pools']) ? raw['pools'] as Json[] : []).forEach((pr, k) => {
      const pp: JsonPath = [...p, 'pools', k];
      const range = parsePool(pr['pool'] as string, ps, [...pp, 'pool'], c);
      if (range === null) return;
      const pcc = typeof pr['client-class'] === 'string' ? pr['client-class'] : null;
      if (pcc !== null && !classNames.has(pcc)) c.error([...pp, 'client-class'], pcc, 'is not a class defined in client-classes');
      if (range.first === subnet.network || range.last === subnet.broadcast) {
        c.warn([...pp, 'pool'], `includes the ${range.first === subnet.network ? 'network' : 'broadcast'} address of ${subnet.subnet}, which is never offered`);
      }
      const pool: PoolConfig = {
        id: ++poolId, subnetId: id!, first: range.first, last: range.last, text: pr['pool'] as string, clientClass: pcc,
        options: parseOptions(pr['option-data'], [...pp, 'option-data'], c),
      };
      for (const o of allPools) {
        if (pool.first <= o.pool.last && o.pool.first <= pool.last) {
          c.error([...pp, 'pool'], pr['pool'], `overlaps '${o.pool.text}' at ${formatPath([...o.path, 'pool'])}`);
          return;
        }
      }
      allPools.push({ pool, path: pp });
      subnet.pools.push(pool);
    });
    (Array.isArray(raw['reservations']) ? raw['reservations'] as Json[] : []).forEach((rr, k) => {
      const rp: JsonPath = [...p, 'reservations', k];
      const r = parseReservation(rr, subnet, ps, rp, classNames, c);
      if (r === null) return;
      for (const clash of subnet.reservationIndex.add(r.keys, r)) {
        c.error(rp, rr, `names the same client as ${clash.other.path} (${clash.key})`);
      }
      if (r.ipAddress !== null) {
        const other = subnet.reservedAddresses.get(r.ipAddress);
        if (other !== undefined) c.error([...rp, 'ip-address'], rr['ip-address'], `is already reserved by ${other.path}`);
        else subnet.reservedAddresses.set(r.ipAddress, r);
      }
      subnet.reservations.push(r);
    });
    subnets.push(subnet);
  });

  // ours
  const ip = isObject(d['ipoib']) ? d['ipoib'] : {};
  const rl = isObject(ip['client-rate-limit']) ? ip['client-rate-limit'] : {};
  const ipoib: IpoibOptions = {
    linkUnicastReplies: ip['link-unicast-replies'] !== false,
    matchPortGuid: ip['match-port-guid'] !== false,
    rateLimit: {
      burst: typeof rl['burst'] === 'number' ? rl['burst'] : DEFAULT_RATE_LIMIT.burst,
      perSecond: typeof rl['per-second'] === 'number' ? rl['per-second'] : DEFAULT_RATE_LIMIT.perSecond,
    },
  };

  // loggers and control socket: passed to the daemon as written
  const loggers: LoggerConfig[] = (Array.isArray(d['loggers']) ? d['loggers'] as Json[] : []).map((l) => ({
    name: l['name'] as string,
    severity: typeof l['severity'] === 'string' ? l['severity'] : 'INFO',
    debuglevel: typeof l['debuglevel'] === 'number' ? l['debuglevel'] : 0,
    outputs: (Array.isArray(l['output_options']) ? l['output_options'] as Json[] : []).map((o) => ({
      output: o['output'] as string, flush: o['flush'] !== false,
      maxsize: typeof o['maxsize'] === 'number' ? o['maxsize'] : null,
      maxver: typeof o['maxver'] === 'number' ? o['maxver'] : null,
      pattern: typeof o['pattern'] === 'string' ? o['pattern'] : null,
    })),
  }));
  const cs = isObject(d['control-socket']) ? d['control-socket'] : null;
  let controlSocket: ServerConfig['controlSocket'] = null;
  if (cs !== null) {
    if (typeof cs['socket-name'] !== 'string') c.errors.push({ path: formatPath([...P, 'control-socket', 'socket-name']), message: 'is required' });
    else controlSocket = { socketType: 'unix', socketName: cs['socket-name'] };
  }

  if (c.errors.length > 0) throw new ConfigError(file, c.errors);
  return {
    file, interfaces, socketType, leaseDatabase, subnets, classes, options, boot,
    echoClientId: d['echo-client-id'] !== false,
    declineProbationPeriod: typeof d['decline-probation-period'] === 'number' ? d['decline-probation-period'] : DEFAULT_DECLINE_PROBATION,
    offerLifetime: typeof d['offer-lifetime'] === 'number' ? d['offer-lifetime'] : DEFAULT_OFFER_LIFETIME,
    ipoib, loggers, controlSocket, warnings: c.warnings,
  };
}

/** Parses and validates configuration text (Kea syntax, comments allowed). `file` names it in messages. */
export function parseConfig(text: string, file = '(config)'): ServerConfig {
  let root: unknown;
  try {
    root = parseConfigText(text, file);
  } catch (err) {
    if (err instanceof ConfigSyntaxError) throw new ConfigError(file, [{ path: `line ${err.line}, column ${err.column}`, message: err.message.replace(/^.*?:\d+:\d+: /, '') }]);
    throw err;
  }
  return buildConfig(root, file);
}

/** Reads and validates a kea-dhcp4.conf file; messages name it by its base name. */
export function loadConfig(path: string): ServerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(basename(path), [{ path: '(file)', message: `cannot be read: ${(err as Error).message}` }]);
  }
  return parseConfig(text, basename(path));
}

export { ipToString };
