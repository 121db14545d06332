// Standard DHCPv4 option definitions with Kea's names (isc-projects/kea src/lib/dhcp/std_option_defs.h,
// STANDARD_V4_OPTION_DEFINITIONS and DHCP_AGENT_OPTION_DEFINITIONS, read at d179a1e3): RFC 2132 §3-9
// plus RFC 3004, 3046, 3397, 3442, 3925, 4578, 4702, 3011 and the others named per line.
// One table drives decode, encode and the Kea "data" text of every option (option-types.ts).

import { WireError } from '../codec/wire-error.js';
import { targetBuffer, type Codec } from '../codec/contract.js';
import { need } from '../codec/checked.js';
import { findOption, optionWireLength, type DhcpOption } from './options.js';
import {
  decodeValue, encodeValue, formatHex, formatValue, parseValue,
  type FieldType, type OptionDef, type OptionType, type OptionValue, type SubOption,
} from './option-types.js';

function def(code: number, name: string, type: OptionType, array = false, fields: readonly FieldType[] = []): OptionDef {
  return Object.freeze({ code, name, type, array, fields: Object.freeze([...fields]) });
}
const A = true; // array

/**
 * Where this table departs from Kea, it is to decode more, never differently: 43 and 122 are kept as
 * binary (Kea: empty with an encapsulated space), 82 decodes its sub-options, 121 uses its own route
 * type (Kea: "internal" with the same text), 125 decodes RFC 3925 blocks (Kea: uint32 enterprise id),
 * and 143/159/162/212, whose Kea types (tuple, psid, ipv6-address, internal) are not implemented
 * here, are binary.
 */
export const OPTION_DEFS: readonly OptionDef[] = Object.freeze([
  def(1, 'subnet-mask', 'ipv4-address'),
  def(2, 'time-offset', 'int32'),
  def(3, 'routers', 'ipv4-address', A),
  def(4, 'time-servers', 'ipv4-address', A),
  def(5, 'name-servers', 'ipv4-address', A),
  def(6, 'domain-name-servers', 'ipv4-address', A),
  def(7, 'log-servers', 'ipv4-address', A),
  def(8, 'cookie-servers', 'ipv4-address', A),
  def(9, 'lpr-servers', 'ipv4-address', A),
  def(10, 'impress-servers', 'ipv4-address', A),
  def(11, 'resource-location-servers', 'ipv4-address', A),
  def(12, 'host-name', 'string'),
  def(13, 'boot-size', 'uint16'),
  def(14, 'merit-dump', 'string'),
  def(15, 'domain-name', 'string'),
  def(16, 'swap-server', 'ipv4-address'),
  def(17, 'root-path', 'string'),
  def(18, 'extensions-path', 'string'),
  def(19, 'ip-forwarding', 'boolean'),
  def(20, 'non-local-source-routing', 'boolean'),
  def(21, 'policy-filter', 'ipv4-address', A),
  def(22, 'max-dgram-reassembly', 'uint16'),
  def(23, 'default-ip-ttl', 'uint8'),
  def(24, 'path-mtu-aging-timeout', 'uint32'),
  def(25, 'path-mtu-plateau-table', 'uint16', A),
  def(26, 'interface-mtu', 'uint16'),
  def(27, 'all-subnets-local', 'boolean'),
  def(28, 'broadcast-address', 'ipv4-address'),
  def(29, 'perform-mask-discovery', 'boolean'),
  def(30, 'mask-supplier', 'boolean'),
  def(31, 'router-discovery', 'boolean'),
  def(32, 'router-solicitation-address', 'ipv4-address'),
  def(33, 'static-routes', 'ipv4-address', A),
  def(34, 'trailer-encapsulation', 'boolean'),
  def(35, 'arp-cache-timeout', 'uint32'),
  def(36, 'ieee802-3-encapsulation', 'boolean'),
  def(37, 'default-tcp-ttl', 'uint8'),
  def(38, 'tcp-keepalive-interval', 'uint32'),
  def(39, 'tcp-keepalive-garbage', 'boolean'),
  def(40, 'nis-domain', 'string'),
  def(41, 'nis-servers', 'ipv4-address', A),
  def(42, 'ntp-servers', 'ipv4-address', A),
  def(43, 'vendor-encapsulated-options', 'binary'),
  def(44, 'netbios-name-servers', 'ipv4-address', A),
  def(45, 'netbios-dd-server', 'ipv4-address', A),
  def(46, 'netbios-node-type', 'uint8'),
  def(47, 'netbios-scope', 'string'),
  def(48, 'font-servers', 'ipv4-address', A),
  def(49, 'x-display-manager', 'ipv4-address', A),
  def(50, 'dhcp-requested-address', 'ipv4-address'),
  def(51, 'dhcp-lease-time', 'uint32'),
  def(52, 'dhcp-option-overload', 'uint8'),
  def(53, 'dhcp-message-type', 'uint8'),
  def(54, 'dhcp-server-identifier', 'ipv4-address'),
  def(55, 'dhcp-parameter-request-list', 'uint8', A),
  def(56, 'dhcp-message', 'string'),
  def(57, 'dhcp-max-message-size', 'uint16'),
  def(58, 'dhcp-renewal-time', 'uint32'),
  def(59, 'dhcp-rebinding-time', 'uint32'),
  def(60, 'vendor-class-identifier', 'string'),
  def(61, 'dhcp-client-identifier', 'binary'),
  def(62, 'nwip-domain-name', 'string'),                  // RFC 2242
  def(63, 'nwip-suboptions', 'binary'),
  def(64, 'nisplus-domain-name', 'string'),
  def(65, 'nisplus-servers', 'ipv4-address', A),
  def(66, 'tftp-server-name', 'string'),
  def(67, 'boot-file-name', 'string'),
  def(68, 'mobile-ip-home-agent', 'ipv4-address', A),
  def(69, 'smtp-server', 'ipv4-address', A),
  def(70, 'pop-server', 'ipv4-address', A),
  def(71, 'nntp-server', 'ipv4-address', A),
  def(72, 'www-server', 'ipv4-address', A),
  def(73, 'finger-server', 'ipv4-address', A),
  def(74, 'irc-server', 'ipv4-address', A),
  def(75, 'streettalk-server', 'ipv4-address', A),
  def(76, 'streettalk-directory-assistance-server', 'ipv4-address', A),
  def(77, 'user-class', 'binary'),                        // RFC 3004
  def(78, 'slp-directory-agent', 'record', A, ['boolean', 'ipv4-address']), // RFC 2610
  def(79, 'slp-service-scope', 'record', false, ['boolean', 'string']),
  def(81, 'fqdn', 'record', false, ['uint8', 'uint8', 'uint8', 'fqdn']),   // RFC 4702
  def(82, 'dhcp-agent-options', 'suboptions'),            // RFC 3046
  def(85, 'nds-servers', 'ipv4-address', A),              // RFC 2241
  def(86, 'nds-tree-name', 'string'),
  def(87, 'nds-context', 'string'),
  def(88, 'bcms-controller-names', 'fqdn', A),            // RFC 4280
  def(89, 'bcms-controller-address', 'ipv4-address', A),
  def(90, 'authenticate', 'binary'),                      // RFC 3118
  def(91, 'client-last-transaction-time', 'uint32'),      // RFC 4388
  def(92, 'associated-ip', 'ipv4-address', A),
  def(93, 'client-system', 'uint16', A),                  // RFC 4578
  def(94, 'client-ndi', 'record', false, ['uint8', 'uint8', 'uint8']),
  def(97, 'uuid-guid', 'record', false, ['uint8', 'binary']),
  def(98, 'uap-servers', 'string'),                       // RFC 2485
  def(99, 'geoconf-civic', 'binary'),                     // RFC 4776
  def(100, 'pcode', 'string'),                            // RFC 4833
  def(101, 'tcode', 'string'),
  def(108, 'v6-only-preferred', 'uint32'),                // RFC 8925
  def(112, 'netinfo-server-address', 'ipv4-address', A), // RFC 3679
  def(113, 'netinfo-server-tag', 'string'),
  def(114, 'v4-captive-portal', 'string'),                // RFC 8910
  def(116, 'auto-config', 'uint8'),                       // RFC 2563
  def(117, 'name-service-search', 'uint16', A),           // RFC 2937
  def(118, 'subnet-selection', 'ipv4-address'),           // RFC 3011
  def(119, 'domain-search', 'fqdn', A),                   // RFC 3397
  def(121, 'classless-static-route', 'classless-static-route'), // RFC 3442
  def(122, 'cablelabs-client-conf', 'binary'),            // RFC 3495
  def(124, 'vivco-suboptions', 'record', false, ['uint32', 'binary']), // RFC 3925
  def(125, 'vivso-suboptions', 'vivso'),
  def(136, 'pana-agent', 'ipv4-address', A),              // RFC 5192
  def(137, 'v4-lost', 'fqdn'),                            // RFC 5223
  def(138, 'capwap-ac-v4', 'ipv4-address', A),            // RFC 5417
  def(141, 'sip-ua-cs-domains', 'fqdn', A),               // RFC 6011
  def(143, 'v4-sztp-redirect', 'binary'),                 // RFC 8572
  def(146, 'rdnss-selection', 'record', A, ['uint8', 'ipv4-address', 'ipv4-address', 'fqdn']), // RFC 6731
  def(151, 'status-code', 'record', false, ['uint8', 'string']),  // RFC 6926
  def(152, 'base-time', 'uint32'),
  def(153, 'start-time-of-state', 'uint32'),
  def(154, 'query-start-time', 'uint32'),
  def(155, 'query-end-time', 'uint32'),
  def(156, 'dhcp-state', 'uint8'),
  def(157, 'data-source', 'uint8'),
  def(159, 'v4-portparams', 'binary'),                    // RFC 7618
  def(162, 'v4-dnr', 'binary'),                           // RFC 9463
  def(212, 'option-6rd', 'binary'),                       // RFC 5969
  def(213, 'v4-access-domain', 'fqdn'),                   // RFC 5986
]);

/** Option 82 sub-options (Kea's dhcp-agent-options-space; RFC 3046, 3256, 3527, 3993, 4014, 4030, 4243, 5010, 5107, 6925, 7839, 8357, 6607). */
export const AGENT_SUBOPTION_DEFS: readonly OptionDef[] = Object.freeze([
  def(1, 'circuit-id', 'binary'),
  def(2, 'remote-id', 'binary'),
  def(4, 'docsis-device-class', 'uint32'),
  def(5, 'link-selection', 'ipv4-address'),
  def(6, 'subscriber-id', 'string'),
  def(7, 'radius', 'binary'),
  def(8, 'auth', 'binary'),
  def(9, 'vendor-specific-info', 'binary'),
  def(10, 'relay-flags', 'uint8'),
  def(11, 'server-id-override', 'ipv4-address'),
  def(12, 'relay-id', 'binary'),
  def(13, 'access-techno-type', 'uint16'),
  def(14, 'access-network-name', 'string'),
  def(15, 'access-point-name', 'string'),
  def(16, 'access-point-bssid', 'binary'),
  def(17, 'operator-id', 'uint32'),
  def(18, 'operator-realm', 'string'),
  def(19, 'relay-port', 'uint16'),
  def(151, 'virtual-subnet-select', 'binary'),
]);

function index(defs: readonly OptionDef[]): [Map<number, OptionDef>, Map<string, OptionDef>] {
  return [new Map(defs.map((d) => [d.code, d])), new Map(defs.map((d) => [d.name, d]))];
}
const [BY_CODE, BY_NAME] = index(OPTION_DEFS);
const [AGENT_BY_CODE, AGENT_BY_NAME] = index(AGENT_SUBOPTION_DEFS);

function lookup(byCode: Map<number, OptionDef>, byName: Map<string, OptionDef>, key: string | number, what: string): OptionDef {
  if (typeof key === 'number' || /^\d+$/.test(key)) {
    const code = Number(key);
    if (!Number.isInteger(code) || code < 1 || code > 254) {
      throw new WireError('BAD_VALUE', 'DHCP', 'code', -1, `${what} code ${key} is not 1..254`);
    }
    // Unknown codes are opaque bytes, as Kea treats options without a definition.
    return byCode.get(code) ?? def(code, String(code), 'binary');
  }
  const d = byName.get(key);
  if (d === undefined) throw new WireError('BAD_VALUE', 'DHCP', 'name', -1, `unknown ${what} name ${JSON.stringify(key)}`);
  return d;
}

/** The definition of an option by Kea name or code; unknown codes get a binary definition, unknown names throw. */
export function optionDef(nameOrCode: string | number): OptionDef {
  return lookup(BY_CODE, BY_NAME, nameOrCode, 'option');
}

export function agentSubOptionDef(nameOrCode: string | number): OptionDef {
  return lookup(AGENT_BY_CODE, AGENT_BY_NAME, nameOrCode, 'dhcp-agent-options sub-option');
}

/** Option data -> typed value (WireError on malformed data, naming the option). */
export function decodeOptionValue(nameOrCode: string | number, data: Buffer): OptionValue {
  return decodeValue(optionDef(nameOrCode), data);
}

/** Typed value -> option data. */
export function encodeOptionValue(nameOrCode: string | number, value: OptionValue): Buffer {
  return encodeValue(optionDef(nameOrCode), value);
}

/** Kea "data" text -> typed value: parseOptionData('interface-mtu', '2044') === 2044. */
export function parseOptionData(nameOrCode: string | number, text: string): OptionValue {
  return parseValue(optionDef(nameOrCode), text);
}

/** Typed value -> Kea "data" text. */
export function formatOptionData(nameOrCode: string | number, value: OptionValue): string {
  return formatValue(optionDef(nameOrCode), value);
}

/** A config entry `{"name": ..., "data": ...}` (or `{"code": ...}`) to a wire option. */
export function optionFromText(nameOrCode: string | number, text: string): DhcpOption {
  const d = optionDef(nameOrCode);
  return { code: d.code, data: encodeValue(d, parseValue(d, text)) };
}

/** A wire option as Kea-style text; data that does not match its definition is shown as hex. */
export function optionToText(opt: DhcpOption): { code: number; name: string; data: string } {
  const d = optionDef(opt.code);
  let data: string;
  try {
    data = formatValue(d, decodeValue(d, opt.data));
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    data = formatHex(opt.data);
  }
  return { code: d.code, name: d.name, data };
}

/** The typed value of an option in a list, or undefined when absent. */
export function getOptionValue(options: readonly DhcpOption[], nameOrCode: string | number): OptionValue | undefined {
  const d = optionDef(nameOrCode);
  const data = findOption(options, d.code);
  return data === undefined ? undefined : decodeValue(d, data);
}

/** The typed value of one option 82 sub-option (e.g. 'circuit-id'), or undefined. */
export function getAgentSubOption(subOptions: readonly SubOption[], nameOrCode: string | number): OptionValue | undefined {
  const d = agentSubOptionDef(nameOrCode);
  const s = subOptions.find((x) => x.code === d.code);
  return s === undefined ? undefined : decodeValue(d, s.data);
}

/**
 * A codec for one option as it sits in an option area: code, length, data, split into instances of
 * at most 255 bytes (RFC 3396); decode joins consecutive instances of the code and types the data.
 */
export function optionCodec(nameOrCode: string | number): Codec<OptionValue> {
  const d = optionDef(nameOrCode);
  const name = `DHCP option ${d.name}`;
  return {
    name,
    encodedLength: (v) => optionWireLength(encodeValue(d, v).length),
    encode: (v, buf, offset = 0) => {
      const data = encodeValue(d, v);
      const out = targetBuffer(name, optionWireLength(data.length), buf, offset);
      let p = offset;
      let from = 0;
      do {
        const n = Math.min(255, data.length - from);
        out[p] = d.code; out[p + 1] = n; data.copy(out, p + 2, from, from + n);
        p += 2 + n; from += n;
      } while (from < data.length);
      return out;
    },
    decode: (buf, offset = 0) => {
      const parts: Buffer[] = [];
      let p = offset;
      do {
        need(buf, p, 2, name, `options[${d.code}]`);
        if (buf[p] !== d.code) throw new WireError('BAD_VALUE', name, 'code', p, `option code ${buf[p]!} is not ${d.code}`);
        const len = buf[p + 1]!;
        need(buf, p + 2, len, name, `options[${d.code}]`);
        parts.push(buf.subarray(p + 2, p + 2 + len));
        p += 2 + len;
      } while (p < buf.length && buf[p] === d.code);
      return decodeValue(d, parts.length === 1 ? parts[0]! : Buffer.concat(parts), offset + 2);
    },
  };
}
