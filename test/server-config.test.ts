// server/config.ts: Kea's kea-dhcp4.conf format. A file from Kea's own documentation loads with only
// the documented warnings; every error names the file, the JSON path and the value; keys we do not
// implement are reported with their paths; Kea's three comment styles are accepted.
import t from 'tap';
import { ConfigError, parseConfig, type ServerConfig } from '../server/config.js';
import { parseIpv4 } from '../protocol/index.js';

// isc-projects/kea doc/examples/kea4/reservations.json (commit 0493faea8db5e5b1019397a53bb5614286e83682),
// verbatim: one subnet, reservations by hw-address, client-id, duid, circuit-id and flex-id, memfile.
const KEA_RESERVATIONS_EXAMPLE = `// This is an example configuration file for the DHCPv4 server in Kea.
// It contains one subnet in which there are two static address reservations
// for the clients identified by the MAC addresses.
{ "Dhcp4":

{
// Kea is told to listen on ethX interface only.
  "interfaces-config": {
    "interfaces": [ "ethX" ]
  },

// We need to specify the database used to store leases. As of September
// 2016, four database backends are supported: MySQL, PostgreSQL, Cassandra, and
// the in-memory database, Memfile.  We'll use memfile because it doesn't
// require any prior set up.
  "lease-database": {
      "type": "memfile",
      "lfc-interval": 3600
  },

// Addresses will be assigned with a lifetime of 4000 seconds.
  "valid-lifetime": 4000,

// Renew and rebind timers are commented out. This implies that options
// 58 and 59 will not be sent to the client. In this case it is up to
// the client to pick the timer values according to RFC2131. Uncomment the
// timers to send these options to the client.
//  "renew-timer": 1000,
//  "rebind-timer": 2000,

// Kea supports reservations by several different types of identifiers:
// hw-address (hardware/MAC address of the client), duid (DUID inserted by the
// client), client-id (client identifier inserted by the client), circuit-id
// (circuit identifier inserted by the relay agent) and flex-id (flexible
// identifier available when flex_id hook library is loaded). When told to do
// so, Kea can check for all of those identifier types, but it takes a costly
// database lookup to do so. It is therefore useful from a performance
// perspective to use only the reservation types that are actually used in a
// given network.

// The example below is not optimal from a performance perspective, but it
// nicely showcases the host reservation capabilities. Please use the minimum
// set of identifier types used in your network.
"host-reservation-identifiers": [ "circuit-id", "hw-address", "duid",
                                  "client-id", "flex-id" ],

// Define a subnet with four reservations. Some of the reservations belong
// to the dynamic pool. Kea is able to handle this case, but it is not
// recommended from a performance perspective, as Kea would not only need to
// check if a given address is free, but also whether it is reserved.
// To avoid this check, one can change reservation-mode to out-of-pool, rather
// than 'all'. If a subnet does not have reservations at all, the reservation
// lookup can be skipped altogether (reservation-mode is set to 'disabled').
// The reservation-mode has been replaced by reservations-global,
// reservations-in-subnet and reservations-out-of-pool.

// Note that the second reservation is for an address which is within the
// range of the pool of the dynamically allocated address. The server will
// exclude this address from this pool and only assign it to the client which
// has a reservation for it.
  "subnet4": [
    {
        "pools": [ { "pool":  "192.0.2.1 - 192.0.2.200" } ],
        "subnet": "192.0.2.0/24",
        "interface": "eth0",
        // This directive tells Kea that reservations may be made both in-pool
        // and out-of-pool. For improved performance, you may move all reservations
        // out of the dynamic pool and change reservation-mode to "out-of-pool".
        // Kea will then be able to skip querying for host reservations when
        // assigning leases from dynamic pool.
        // "reservation-mode": "all",
        // It is replaced by the "reservations-global", "reservations-in-subnet"
        // and "reservations-out-of-pool" parameters.

        // Specify if server should lookup global reservations.
        "reservations-global": false,

        // Specify if server should lookup in-subnet reservations.
        "reservations-in-subnet": true,

        // Specify if server can assume that all reserved addresses
        // are out-of-pool.
        // Ignored when reservations-in-subnet is false.
        // If specified, it is inherited by "shared-networks" and
        // "subnet4" levels.
        "reservations-out-of-pool": false,

        "reservations": [

// This is a reservation for a specific hardware/MAC address. It's a very
// simple reservation: just an address and nothing else.
        {
            "hw-address": "1a:1b:1c:1d:1e:1f",
            "ip-address": "192.0.2.201"
        },

// This is a reservation for a specific client-id. It also shows
// the this client will get a reserved hostname. A hostname can be defined
// for any identifier type, not just client-id.
        {
            "client-id": "01:11:22:33:44:55:66",
            "ip-address": "192.0.2.202",
            "hostname": "special-snowflake"
        },

// The third reservation is based on DUID. This reservation also
// defines special option values for this particular client. If
// the domain-name-servers option would have been defined on a global,
// subnet or class level, the host specific values take preference.
        {
            "duid": "01:02:03:04:05",
            "ip-address": "192.0.2.203",
            "option-data": [ {
                "name": "domain-name-servers",
                "data": "10.1.1.202,10.1.1.203"
            } ]
        },

// The fourth reservation is based on circuit-id. This is an option inserted
// by the relay agent that forwards the packet from client to the server.
// In this example the host is also assigned vendor specific options.
        {
            "circuit-id": "01:11:22:33:44:55:66",
            "ip-address": "192.0.2.204",
            "option-data": [
                {
                    "name": "vivso-suboptions",
                    "data": "4491"
                },
                {
                    "name": "tftp-servers",
                    "space": "vendor-4491",
                    "data": "10.1.1.202,10.1.1.203"
                }
            ]
        },
// This reservation is for a client that needs specific DHCPv4 fields to be
// set. Three supported fields are next-server, server-hostname and
// boot-file-name
        {
            "client-id": "01:0a:0b:0c:0d:0e:0f",
            "ip-address": "192.0.2.205",
            "next-server": "192.0.2.1",
            "server-hostname": "hal9000",
            "boot-file-name": "/dev/null"
        },

// This reservation is using flexible identifier. Instead of relying
// on specific field, sysadmin can define an expression similar to what
// is used for client classification,
// e.g. substring(relay[0].option[17],0,6). Then, based on the value of
// that expression for incoming packet, the reservation is matched.
// Expression can be specified either as hex or plain text using single
// quotes.
// Note: flexible identifier requires flex_id hook library to be
// loaded to work.
        {
            "flex-id": "s0mEVaLue",
            "ip-address": "192.0.2.206"
        }

      ]
    }
  ],

// The following configures logging. It assumes that messages with at
// least informational level (info, warn, error and fatal) should be
// logged to stdout.
    "loggers": [
        {
            "name": "kea-dhcp4",
            "output_options": [
                {
                    "output": "stdout"
                }
            ],
            "severity": "INFO"
        }
    ]
}

}
`;

function errorOf(text: string, file = 'kea.conf'): ConfigError {
  try {
    parseConfig(text, file);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('config was accepted');
}

const conf = (dhcp4: Record<string, unknown>): string => JSON.stringify({ Dhcp4: dhcp4 });
const subnet = (extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ id: 1, subnet: '10.0.0.0/24', pools: [{ pool: '10.0.0.10 - 10.0.0.200' }], ...extra });

t.test("Kea's reservations.json example loads with only documented warnings", async (t) => {
  const c: ServerConfig = parseConfig(KEA_RESERVATIONS_EXAMPLE, 'reservations.json');
  t.same(c.warnings.map((w) => w.path), [
    'Dhcp4.lease-database.type',                              // memfile read as sqlite
    'Dhcp4.lease-database.lfc-interval',                      // memfile-only setting
    'Dhcp4.host-reservation-identifiers',                     // every identity is matched
    'Dhcp4.subnet4[0].id',                                    // auto-numbered subnet
    'Dhcp4.subnet4[0].reservations[3].option-data[0].data',   // vivso with enterprise id only
    'Dhcp4.subnet4[0].reservations[3].option-data[1].space',  // vendor option space
    'Dhcp4.subnet4[0].reservations[5].flex-id',               // hook-library identifier
    'Dhcp4.subnet4[0].reservations[5]',                       // ...so that reservation is ignored
  ]);
  t.equal(c.leaseDatabase.type, 'sqlite');
  t.equal(c.subnets.length, 1);
  const s = c.subnets[0]!;
  t.same([s.id, s.subnet, s.interface, s.lifetimes.valid], [1, '192.0.2.0/24', 'eth0', 4000]);
  t.same(s.pools.map((p) => [p.first, p.last]), [[parseIpv4('192.0.2.1'), parseIpv4('192.0.2.200')]]);
  t.equal(s.reservations.length, 5, 'five reservations with identifiers we implement');
  t.same(s.reservations.map((r) => r.keys[0]), [
    'mac:1a:1b:1c:1d:1e:1f', 'cid:01:11:22:33:44:55:66', 'duid:01:02:03:04:05', 'circuit:01:11:22:33:44:55:66', 'cid:01:0a:0b:0c:0d:0e:0f',
  ]);
  t.equal(s.reservations[1]!.hostname, 'special-snowflake');
  t.same(s.reservations[4]!.boot, { nextServer: parseIpv4('192.0.2.1'), serverHostname: 'hal9000', bootFileName: '/dev/null' });
  t.same(s.reservations[2]!.options.map((o) => [o.name, o.data.toString('hex')]), [['domain-name-servers', '0a0101ca0a0101cb']]);
  t.same(c.loggers, [{ name: 'kea-dhcp4', severity: 'INFO', debuglevel: 0, outputs: [{ output: 'stdout', flush: true, maxsize: null, maxver: null, pattern: null }] }]);
});

t.test('comments: //, # and /* */ as Kea accepts them, never inside strings', async (t) => {
  const c = parseConfig(`# hash comment
  { "Dhcp4": { // line comment
    /* block
       comment */ "valid-lifetime": 600,
    "subnet4": [ { "id": 7, "subnet": "10.1.0.0/16", "option-data": [ { "name": "domain-name", "data": "a//b#c/*d*/" } ] } ]
  } }`, 'c.conf');
  t.equal(c.subnets[0]!.lifetimes.valid, 600);
  t.equal(c.subnets[0]!.options[0]!.data.toString(), 'a//b#c/*d*/', 'comment markers inside strings are text');
  t.match(errorOf('{ "Dhcp4": {} /* never closed', 'c.conf').message, /^c\.conf: line 1, column 15: comment opened with \/\* is never closed/);
  t.match(errorOf('{ "Dhcp4": {\n  "valid-lifetime": 5,\n} }', 'c.conf').message, /^c\.conf: line 3, column 1: not valid JSON/);
  t.match(errorOf('<?include "x.json"?>').message, /include/);
});

t.test('errors name the file, the JSON path and the value', async (t) => {
  const cases: [string, string][] = [
    [conf({ subnet4: [subnet({ pools: [{ pool: '10.0.0.5 - 10.0.0.9' }, { pool: '10.0.1.5 - 10.0.0.9' }] })] }),
      "kea.conf: Dhcp4.subnet4[0].pools[1].pool: '10.0.1.5 - 10.0.0.9' is not inside 10.0.0.0/24"],
    [conf({ subnet4: [subnet({ pools: [{ pool: '10.0.0.9 - 10.0.0.5' }] })] }),
      "kea.conf: Dhcp4.subnet4[0].pools[0].pool: '10.0.0.9 - 10.0.0.5' is empty: 10.0.0.9 is above 10.0.0.5"],
    [conf({ subnet4: [subnet({ pools: [{ pool: '10.0.0.64/26' }, { pool: '10.0.0.100 - 10.0.0.110' }] })] }),
      "kea.conf: Dhcp4.subnet4[0].pools[1].pool: '10.0.0.100 - 10.0.0.110' overlaps '10.0.0.64/26' at Dhcp4.subnet4[0].pools[0].pool"],
    [conf({ subnet4: [subnet(), { id: 2, subnet: '10.0.0.128/25' }] }),
      "kea.conf: Dhcp4.subnet4[1].subnet: '10.0.0.128/25' overlaps 10.0.0.0/24 at Dhcp4.subnet4[0].subnet"],
    [conf({ subnet4: [subnet(), { id: 1, subnet: '10.1.0.0/24' }] }),
      'kea.conf: Dhcp4.subnet4[1].id: 1 is already the id of Dhcp4.subnet4[0]'],
    [conf({ subnet4: [{ id: 1, subnet: '10.0.0.5/24' }] }),
      "kea.conf: Dhcp4.subnet4[0].subnet: '10.0.0.5/24' is not a network address (did you mean 10.0.0.0/24?)"],
    [conf({ subnet4: [subnet({ reservations: [{ 'hw-address': '02:00:00:00:00:01', 'ip-address': '10.9.0.1' }] })] }),
      "kea.conf: Dhcp4.subnet4[0].reservations[0].ip-address: '10.9.0.1' is not inside 10.0.0.0/24"],
    [conf({ subnet4: [subnet({ reservations: [
      { 'port-guid': '7c:fe:90:03:00:29:26:52', 'ip-address': '10.0.0.5' },
      { 'client-id': 'ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:52', 'ip-address': '10.0.0.6' }] })] }),
      'kea.conf: Dhcp4.subnet4[0].reservations[1]: {"client-id":"ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:52","i... names the same client as Dhcp4.subnet4[0].reservations[0] (guid:7cfe900300292652)'],
    [conf({ subnet4: [subnet({ reservations: [{ 'port-guid': '1', 'ip-address': '10.0.0.5' }, { 'port-guid': '2', 'ip-address': '10.0.0.5' }] })] }),
      "kea.conf: Dhcp4.subnet4[0].reservations[1].ip-address: '10.0.0.5' is already reserved by Dhcp4.subnet4[0].reservations[0]"],
    [conf({ 'valid-lifetime': 'abc' }), "kea.conf: Dhcp4.valid-lifetime: 'abc' must be integer"],
    [conf({ 'lease-database': { type: 'mysql' } }), "kea.conf: Dhcp4.lease-database.type: 'mysql' must be one of 'sqlite', 'postgresql', 'memfile'"],
    [conf({ 'option-data': [{ name: 'interface-mtu', data: '70000' }] }),
      "kea.conf: Dhcp4.option-data[0].data: '70000' is not valid data for interface-mtu (\"70000\": out of range for uint16)"],
    [conf({ 'option-data': [{ name: 'no-such-option', data: '1' }] }),
      "kea.conf: Dhcp4.option-data[0].name: 'no-such-option' is not a DHCPv4 option Kea names (unknown option name \"no-such-option\")"],
    [conf({ 'option-data': [{ name: 'dhcp-lease-time', data: '60' }] }),
      "kea.conf: Dhcp4.option-data[0].name: 'dhcp-lease-time' is set with valid-lifetime"],
    [conf({ 'client-classes': [{ name: 'x', test: "ifelse(option[60].exists, 'a', 'b') == 'a'" }] }),
      "kea.conf: Dhcp4.client-classes[0].test: 'ifelse(option[60].exists, 'a', 'b') == 'a'' is not a supported class test: 'ifelse' is not supported in ipoib-dhcpd's class tests (at character 0)"],
    [conf({ subnet4: [subnet({ 'client-class': 'nope' })] }), "kea.conf: Dhcp4.subnet4[0].client-class: 'nope' is not a class defined in client-classes"],
    [conf({ subnet4: [{ id: 1 }] }), 'kea.conf: Dhcp4.subnet4[0].subnet: is required'],
    [conf({ 'lease-database': { type: 'postgresql', host: 'db' } }), 'kea.conf: Dhcp4.lease-database.name: is required for postgresql (the database name)'],
  ];
  for (const [text, message] of cases) {
    const e = errorOf(text);
    t.equal(e.message.replace(/ \(and \d+ more\)$/, ''), message, message.slice(10, 60));
    t.equal(e.file, 'kea.conf');
    t.equal(e.code, 'CONFIG_INVALID');
  }
  t.match(errorOf(conf({ 'valid-lifetime': -1, 'renew-timer': 'x' })).message, /\(and 1 more\)$/, 'all problems are collected');
});

t.test('unknown keys are reported with their paths, not silently ignored', async (t) => {
  const c = parseConfig(JSON.stringify({
    Dhcp4: {
      'shared-networks': [], 'hooks-libraries': [], 'valid-lifetme': 5, comment: 'ok', 'user-context': { a: 1 },
      subnet4: [subnet({ 'pools': [{ pool: '10.0.0.10 - 10.0.0.20', 'pool-id': 3, bogus: 1 }], 'match-client-id': false })],
    },
    Logging: {},
  }), 'u.conf');
  const byPath = Object.fromEntries(c.warnings.map((w) => [w.path, w.message]));
  t.match(byPath, {
    'Logging': /another Kea daemon/,
    'Dhcp4.shared-networks': /Kea key that ipoib-dhcpd does not implement/,
    'Dhcp4.hooks-libraries': /does not implement/,
    'Dhcp4.valid-lifetme': /not a key ipoib-dhcpd \(or Kea\) knows/,
    'Dhcp4.subnet4[0].pools[0].pool-id': /does not implement/,
    'Dhcp4.subnet4[0].pools[0].bogus': /not a key/,
    'Dhcp4.subnet4[0].match-client-id': /always keyed on the client identifier/,
  });
  t.notOk('Dhcp4.comment' in byPath, 'comment and user-context are Kea metadata, accepted silently');
});

t.test('lease-database, defaults, inheritance and our ipoib map', async (t) => {
  const pg = parseConfig(conf({ 'lease-database': { type: 'postgresql', name: 'leases', host: 'db.example', port: 5433, user: 'kea', password: 'p@ss' } }));
  t.equal(pg.leaseDatabase.spec, 'postgresql://kea:p%40ss@db.example:5433/leases');
  const mem = parseConfig(conf({ 'lease-database': { type: 'memfile', name: '/var/lib/kea/kea-leases4.csv' } }));
  t.same([mem.leaseDatabase.type, mem.leaseDatabase.spec], ['sqlite', '/var/lib/kea/kea-leases4.sqlite']);
  const d = parseConfig(conf({ 'renew-timer': 100, 'valid-lifetime': 1000, subnet4: [subnet({ 'valid-lifetime': 500, 'calculate-tee-times': false })] }));
  t.same(d.subnets[0]!.lifetimes, { valid: 500, min: 500, max: 500, renew: 100, rebind: null, calculateTeeTimes: false, t1Percent: 0.5, t2Percent: 0.875 }, 'subnet overrides, global inherited');
  t.same([d.declineProbationPeriod, d.offerLifetime, d.echoClientId, d.subnets[0]!.authoritative], [86400, 30, true, false], 'Kea defaults (and ours for offer-lifetime)');
  t.same(d.ipoib, { linkUnicastReplies: true, matchPortGuid: true, rateLimit: { burst: 20, perSecond: 10 } });
  const cidr = parseConfig(conf({ subnet4: [subnet({ pools: [{ pool: '10.0.0.64/26' }] })] }));
  t.same([cidr.subnets[0]!.pools[0]!.first, cidr.subnets[0]!.pools[0]!.last], [parseIpv4('10.0.0.64'), parseIpv4('10.0.0.127')], 'CIDR pool');
  const ctl = parseConfig(conf({ 'control-socket': { 'socket-type': 'unix', 'socket-name': '/run/kea4.sock' } }));
  t.same(ctl.controlSocket, { socketType: 'unix', socketName: '/run/kea4.sock' });
});
