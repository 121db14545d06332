// The JSON Schema (draft 2020-12 subset that ajv checks) of the kea-dhcp4.conf keys ipoib-dhcpd
// implements. It checks types and shapes only; config.ts adds the semantic checks (pools inside
// subnets, overlaps, duplicates) and reports every key the schema does not list as a warning.
// Key names and defaults are Kea's (Kea ARM, "The DHCPv4 Server"), plus our "ipoib" map and the
// reservation identifiers "port-guid" and "ipoib-hw-address".

type Schema = Record<string, unknown>;

const u32 = { type: 'integer', minimum: 0, maximum: 0xffffffff };
const str = { type: 'string' };
const bool = { type: 'boolean' };
const meta = { comment: str, 'user-context': { type: 'object' } };

const optionData: Schema = {
  type: 'object',
  properties: {
    ...meta,
    name: str, code: { type: 'integer', minimum: 1, maximum: 254 }, data: str,
    'csv-format': bool, 'always-send': bool, 'never-send': bool, space: str,
  },
};
const optionList: Schema = { type: 'array', items: { $ref: '#/$defs/option' } };

const lifetimes: Schema = {
  'valid-lifetime': u32, 'min-valid-lifetime': u32, 'max-valid-lifetime': u32,
  'renew-timer': u32, 'rebind-timer': u32, 'calculate-tee-times': bool,
  't1-percent': { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
  't2-percent': { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
};
const bootFields: Schema = { 'next-server': str, 'server-hostname': str, 'boot-file-name': str };
const reservationModes: Schema = { 'reservations-global': bool, 'reservations-in-subnet': bool, 'reservations-out-of-pool': bool };

const reservation: Schema = {
  type: 'object',
  properties: {
    ...meta,
    'ip-address': str, hostname: str,
    'client-id': str, 'hw-address': str, duid: str, 'circuit-id': str, 'flex-id': str,
    'port-guid': str, 'ipoib-hw-address': str,
    'option-data': optionList, 'client-classes': { type: 'array', items: str },
    ...bootFields,
  },
};

const pool: Schema = {
  type: 'object',
  required: ['pool'],
  properties: { ...meta, pool: str, 'option-data': optionList, 'client-class': str },
};

const subnet: Schema = {
  type: 'object',
  required: ['subnet'],
  properties: {
    ...meta,
    id: { type: 'integer', minimum: 1, maximum: 0xffffffff },
    subnet: str,
    pools: { type: 'array', items: { $ref: '#/$defs/pool' } },
    'option-data': optionList,
    reservations: { type: 'array', items: { $ref: '#/$defs/reservation' } },
    relay: { type: 'object', properties: { 'ip-addresses': { type: 'array', items: str }, 'ip-address': str } },
    interface: str,
    authoritative: bool,
    'client-class': str,
    'match-client-id': bool,
    ...lifetimes, ...bootFields, ...reservationModes,
  },
};

const clientClass: Schema = {
  type: 'object',
  required: ['name'],
  properties: { ...meta, name: str, test: str, 'option-data': optionList, ...bootFields },
};

const logger: Schema = {
  type: 'object',
  required: ['name'],
  properties: {
    ...meta,
    name: str,
    severity: { enum: ['FATAL', 'ERROR', 'WARN', 'INFO', 'DEBUG', 'NONE'] },
    debuglevel: { type: 'integer', minimum: 0, maximum: 99 },
    output_options: {
      type: 'array',
      items: {
        type: 'object',
        required: ['output'],
        properties: { output: str, flush: bool, maxsize: { type: 'integer', minimum: 0 }, maxver: { type: 'integer', minimum: 0 }, pattern: str },
      },
    },
  },
};

export const CONFIG_SCHEMA: Schema = {
  type: 'object',
  required: ['Dhcp4'],
  $defs: { option: optionData, pool, reservation, subnet },
  properties: {
    Dhcp4: {
      type: 'object',
      properties: {
        ...meta,
        'interfaces-config': {
          type: 'object',
          properties: { ...meta, interfaces: { type: 'array', items: str }, 'dhcp-socket-type': { enum: ['raw', 'udp'] } },
        },
        'lease-database': {
          type: 'object',
          required: ['type'],
          properties: {
            ...meta,
            type: { enum: ['sqlite', 'postgresql', 'memfile'] },
            name: str, host: str, port: { type: 'integer', minimum: 1, maximum: 65535 }, user: str, password: str,
            persist: bool, 'lfc-interval': u32,
          },
        },
        authoritative: bool,
        'echo-client-id': bool,
        'match-client-id': bool,
        'decline-probation-period': u32,
        'offer-lifetime': u32,
        'host-reservation-identifiers': { type: 'array', items: str },
        ...lifetimes, ...bootFields, ...reservationModes,
        'option-data': optionList,
        subnet4: { type: 'array', items: { $ref: '#/$defs/subnet' } },
        'client-classes': { type: 'array', items: clientClass },
        loggers: { type: 'array', items: logger },
        'control-socket': {
          type: 'object',
          properties: { ...meta, 'socket-type': { enum: ['unix'] }, 'socket-name': str },
        },
        ipoib: {
          type: 'object',
          properties: {
            ...meta,
            'link-unicast-replies': bool,
            'match-port-guid': bool,
            'client-rate-limit': {
              type: 'object',
              properties: { burst: { type: 'integer', minimum: 1, maximum: 100000 }, 'per-second': { type: 'number', exclusiveMinimum: 0 } },
            },
          },
        },
      },
    },
  },
};

/** Keys that may appear in any map without being reported (Kea's own metadata). */
export const META_KEYS: ReadonlySet<string> = new Set(['comment', 'user-context']);

/**
 * Kea keys ipoib-dhcpd knows of but does not implement: reported as "not implemented", as opposed to
 * keys that Kea does not know either (probably typos).
 */
export const KEA_UNIMPLEMENTED: ReadonlySet<string> = new Set([
  'shared-networks', 'option-def', 'hooks-libraries', 'dhcp-ddns', 'expired-leases-processing', 'hosts-database',
  'hosts-databases', 'config-control', 'server-tag', 'sanity-checks', 'multi-threading', 'dhcp-queue-control',
  'dhcp4o6-port', 'reservations', 'compatibility', 'statistic-default-sample-count', 'statistic-default-sample-age',
  'store-extended-info', 'early-global-reservations-lookup', 'ip-reservations-unique', 'reservations-lookup-first',
  'parked-packet-limit', 'cache-threshold', 'cache-max-age', 'ddns-send-updates', 'ddns-override-no-update',
  'ddns-override-client-update', 'ddns-replace-client-name', 'ddns-generated-prefix', 'ddns-qualifying-suffix',
  'ddns-update-on-renew', 'ddns-use-conflict-resolution', 'hostname-char-set', 'hostname-char-replacement',
  'server-id', 'allocator', 'flex-id', '4o6-interface', '4o6-interface-id', '4o6-subnet', 'require-client-classes',
  'evaluate-additional-classes', 'only-if-required', 'only-in-additional-list', 're-detect', 'service-sockets-max-retries',
  'service-sockets-retry-wait-time', 'service-sockets-require-all', 'outbound-interface', 'lfc-interval', 'persist',
  'connect-timeout', 'max-reconnect-tries', 'reconnect-wait-time', 'on-fail', 'retry-on-startup', 'trust-anchor',
  'cert-file', 'key-file', 'cipher-list', 'max-row-errors', 'read-timeout', 'write-timeout', 'tcp-user-timeout',
  'Logging', 'Control-agent', 'Dhcp6', 'DhcpDdns', 'Netconf', 'pool-id',
]);
