// DHCP protocol layer (protocol/): message codec against scapy-built vectors (test/vectors/dhcp.py),
// option overload and RFC 3396 in both directions, Kea-named typed options and their "data" text,
// RFC 4361 client identifiers, RFC 4390 helpers, hostile input, and fast-check properties.
import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { fuzzDecode, hex, roundTrip, throwsWire } from './helpers/codec.js';
import { WireError } from '../codec/wire-error.js';
import {
  AGENT_SUBOPTION_DEFS, BOOTREPLY, BOOTREQUEST, DhcpMessageType, FLAG_BROADCAST, MAX_OPTION_INSTANCES, OPTION_DEFS,
  OptionCode, checkRfc4390, classifyHardware, clientIdForm, clientIdOption, clientIdentityKey, decodeDhcpMessage,
  decodeOptionValue, dhcpMessage, dhcpMessageCodec, dhcpMessageLength, emptyDhcpMessage, encodeClientId,
  encodeDhcpMessage, encodeOptionValue, fieldText, findOption, formatClientId, formatGuid, formatOptionData,
  getAgentSubOption, getClientIdentifier, getMaxMessageSize, getMessageType, getOptionValue, getParameterRequestList,
  guidToMac, ibGuidClientId, ibHwaddrClientId, ipv4ToString, isBootp, isIpoibMessage, macClientId, macToGuid,
  mellanoxClientId, optionCodec, optionDef, optionFromText, optionToText, parseClientId, parseClientIdText,
  parseGuid, parseIpv4, parseOptionData, payloadLimit, portGuidOf, replyRoute, rfc4361ClientId, shouldBroadcastReply,
  type ClientId, type DhcpMessage, type DhcpOption, type OptionDef, type OptionValue, type FieldType, type FieldValue,
} from '../protocol/index.js';

interface ScapyVector {
  name: string;
  length: number;
  hex: string;
  fields: Record<string, string | number>;
  options: unknown[][];
}

// Output of test/vectors/dhcp.py (scapy 2.5.0 BOOTP()/DHCP(), Debian bookworm), pasted verbatim:
// hex = the bytes scapy built; fields/options = scapy's own dissection of those bytes.
const SCAPY: ScapyVector[] = [
  {
    name: "rfc4390-discover", length: 286,
    hex: `
      012000003903f326000080000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      000000000000000000000000638253633501013d14ff000000000002000002c9007cfe900300292652390205c0370e0103060c0f1a1c2a33
      363a3b7779ff
    `,
    fields: {"op": 1, "htype": 32, "hlen": 0, "hops": 0, "xid": 956560166, "secs": 0, "flags": 32768, "ciaddr": "0.0.0.0", "yiaddr": "0.0.0.0", "siaddr": "0.0.0.0", "giaddr": "0.0.0.0", "chaddr": "00000000000000000000000000000000", "sname": "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", "file": "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    options: [[53, "message-type", 1], [61, "client_id", "ff000000000002000002c9007cfe900300292652"], [57, "max_dhcp_size", 1472], [55, "param_req_list", [1, 3, 6, 12, 15, 26, 28, 42, 51, 54, 58, 59, 119, 121]]],
  },
  {
    name: "flexboot-discover", length: 344,
    hex: `
      012006000badf00d00048000000000000000000000000000000000007cfe9029265200000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      000000000000000000000000638253633501013d14ff000000000002000002c9007cfe9003002926523c20505845436c69656e743a417263
      683a30303030303a554e44493a3030323030315d0200005e030102016111004c4c4544003510328053b4c04f4e3032390205b8370a010306
      0c0f112b3c4243ff
    `,
    fields: {"op": 1, "htype": 32, "hlen": 6, "hops": 0, "xid": 195948557, "secs": 4, "flags": 32768, "ciaddr": "0.0.0.0", "yiaddr": "0.0.0.0", "siaddr": "0.0.0.0", "giaddr": "0.0.0.0", "chaddr": "7cfe9029265200000000000000000000", "sname": "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", "file": "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    options: [[53, "message-type", 1], [61, "client_id", "ff000000000002000002c9007cfe900300292652"], [60, "vendor_class_id", "505845436c69656e743a417263683a30303030303a554e44493a303032303031"], [93, "pxe_client_architecture", "0000"], [94, "pxe_client_network_interface", "010201"], [97, "pxe_client_machine_identifier", "004c4c4544003510328053b4c04f4e3032"], [57, "max_dhcp_size", 1464], [55, "param_req_list", [1, 3, 6, 12, 15, 17, 43, 60, 66, 67]]],
  },
  {
    name: "patched-dhclient-discover", length: 289,
    hex: `
      012008005eed123400008000000000000000000000000000000000007cfe9003002926520000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      000000000000000000000000638253633501013d14ff000000000002000002c9007cfe9003002926520c066e6f64653031370d011c02030f
      06770c2c2f1a792aff
    `,
    fields: {"op": 1, "htype": 32, "hlen": 8, "hops": 0, "xid": 1592594996, "secs": 0, "flags": 32768, "ciaddr": "0.0.0.0", "yiaddr": "0.0.0.0", "siaddr": "0.0.0.0", "giaddr": "0.0.0.0", "chaddr": "7cfe9003002926520000000000000000", "sname": "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", "file": "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    options: [[53, "message-type", 1], [61, "client_id", "ff000000000002000002c9007cfe900300292652"], [12, "hostname", "6e6f64653031"], [55, "param_req_list", [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]]],
  },
  {
    name: "ack-many-options", length: 381,
    hex: `
      022000003903f32600008000000000000a0a002a0a0a00010000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000006382536335010536040a0a00013304000151803a040000a8c03b04000127500104ffff000003040a0a00fe06
      080a0a00020a0a00030f0e69622e6578616d706c652e6f72671a0207fc1c040a0affff790c100a140a0a00fd000a0a00fe771b03656e6705
      6170706c6503636f6d00096d61726b6574696e67c0043d14ff000000000002000002c9007cfe900300292652ff
    `,
    fields: {"op": 2, "htype": 32, "hlen": 0, "hops": 0, "xid": 956560166, "secs": 0, "flags": 32768, "ciaddr": "0.0.0.0", "yiaddr": "10.10.0.42", "siaddr": "10.10.0.1", "giaddr": "0.0.0.0", "chaddr": "00000000000000000000000000000000", "sname": "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", "file": "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    options: [[53, "message-type", 5], [54, "server_id", "10.10.0.1"], [51, "lease_time", 86400], [58, "renewal_time", 43200], [59, "rebinding_time", 75600], [1, "subnet_mask", "255.255.0.0"], [3, "router", "10.10.0.254"], [6, "name_server", "10.10.0.2", "10.10.0.3"], [15, "domain", "69622e6578616d706c652e6f7267"], [26, "interface-mtu", 2044], [28, "broadcast_address", "10.10.255.255"], [121, "classless_static_routes", ["10.20.0.0/16:10.10.0.253", "0.0.0.0/0:10.10.0.254"]], [119, "119", "03656e67056170706c6503636f6d00096d61726b6574696e67c004"], [61, "client_id", "ff000000000002000002c9007cfe900300292652"]],
  },
  {
    name: "overload-offer", length: 253,
    hex: `
      0220000000c0ffee0000800000000000c000024d0000000000000000000000000000000000000000000000000c0d686f73742d696e2d736e
      616d65ff00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000033040000
      0e100104ffffff000304c00002010f106f7665726c6f61642e6578616d706c65ff0000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      000000000000000000000000638253633501023604c0000201340103ff
    `,
    fields: {"op": 2, "htype": 32, "hlen": 0, "hops": 0, "xid": 12648430, "secs": 0, "flags": 32768, "ciaddr": "0.0.0.0", "yiaddr": "192.0.2.77", "siaddr": "0.0.0.0", "giaddr": "0.0.0.0", "chaddr": "00000000000000000000000000000000", "sname": "0c0d686f73742d696e2d736e616d65ff000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", "file": "330400000e100104ffffff000304c00002010f106f7665726c6f61642e6578616d706c65ff00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    options: [[53, "message-type", 2], [54, "server_id", "192.0.2.1"], [52, "dhcp-option-overload", 3], [51, "lease_time", 3600], [1, "subnet_mask", "255.255.255.0"], [3, "router", "192.0.2.1"], [15, "domain", "6f7665726c6f61642e6578616d706c65"], [12, "hostname", "686f73742d696e2d736e616d65"]],
  },
  {
    name: "rfc3396-split-ack", length: 581,
    hex: `
      02200000000053960000000000000000c000024e000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      000000000000000000000000638253633501052bff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122
      232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a
      5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192
      939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9ca
      cbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfe77090365
      6e67056170706c2b2dff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b7709
      6503636f6d00096d617709726b6574696e67c004ff
    `,
    fields: {"op": 2, "htype": 32, "hlen": 0, "hops": 0, "xid": 21398, "secs": 0, "flags": 0, "ciaddr": "0.0.0.0", "yiaddr": "192.0.2.78", "siaddr": "0.0.0.0", "giaddr": "0.0.0.0", "chaddr": "00000000000000000000000000000000", "sname": "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", "file": "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    options: [[53, "message-type", 5], [43, "vendor_specific", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfe"], [119, "119", "03656e67056170706c"], [43, "vendor_specific", "ff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b"], [119, "119", "6503636f6d00096d61"], [119, "119", "726b6574696e67c004"]],
  },
  {
    name: "bootp-request", length: 300,
    hex: `
      01010600000009510000000000000000000000000000000000000000020000aabbcc00000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
      00000000000000000000000063825363ff000000000000000000000000000000000000000000000000000000000000000000000000000000
      0000000000000000000000000000000000000000
    `,
    fields: {"op": 1, "htype": 1, "hlen": 6, "hops": 0, "xid": 2385, "secs": 0, "flags": 0, "ciaddr": "0.0.0.0", "yiaddr": "0.0.0.0", "siaddr": "0.0.0.0", "giaddr": "0.0.0.0", "chaddr": "020000aabbcc00000000000000000000", "sname": "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", "file": "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    options: [],
  },
];

function vector(name: string): { v: ScapyVector; bytes: Buffer; m: DhcpMessage } {
  const v = SCAPY.find((x) => x.name === name);
  if (v === undefined) throw new Error(`no vector ${name}`);
  const bytes = hex(v.hex);
  return { v, bytes, m: decodeDhcpMessage(bytes) };
}

const GUID = 0x7cfe900300292652n; // IPOIB-FACTS §5.3
// IPOIB-FACTS §5.3 / NVIDIA FlexBoot docs / dnsmasq.conf.example: the Mellanox-prefix client-id, as text.
const MELLANOX_TEXT = 'ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:52';

// scapy option families (scapy.layers.dhcp DHCPOptions): how to compare scapy's values with ours.
const SCAPY_IP = new Set([1, 3, 6, 28, 54]);
const SCAPY_INT = new Set([26, 51, 53, 57, 58, 59]);

t.test('decode agrees with scapy field by field on every vector', async (t) => {
  for (const v of SCAPY) {
    const bytes = hex(v.hex);
    t.equal(bytes.length, v.length, `${v.name}: vector length`);
    const m = decodeDhcpMessage(bytes);
    const f = v.fields;
    for (const k of ['op', 'htype', 'hlen', 'hops', 'xid', 'secs', 'flags'] as const) t.equal(m[k], f[k], `${v.name}: ${k}`);
    for (const k of ['ciaddr', 'yiaddr', 'siaddr', 'giaddr'] as const) t.equal(ipv4ToString(m[k]), f[k], `${v.name}: ${k}`);
    t.equal(m.chaddr.toString('hex'), f.chaddr, `${v.name}: chaddr`);
    const overloaded = v.name === 'overload-offer';
    t.equal(m.sname.toString('hex'), overloaded ? '00'.repeat(64) : f.sname, `${v.name}: sname (zeroed when it carried options)`);
    t.equal(m.file.toString('hex'), overloaded ? '00'.repeat(128) : f.file, `${v.name}: file (zeroed when it carried options)`);
    // scapy lists option instances; RFC 3396 says all instances of a code are one option, in order.
    const byCode = new Map<number, unknown[][]>();
    for (const o of v.options) {
      const code = o[0] as number;
      if (code === OptionCode.OPTION_OVERLOAD) continue;
      byCode.set(code, [...(byCode.get(code) ?? []), o.slice(2)]);
    }
    t.same(m.options.map((o) => o.code), [...byCode.keys()], `${v.name}: option codes in order of first appearance`);
    for (const [code, instances] of byCode) {
      const data = findOption(m.options, code)!;
      const label = `${v.name}: option ${code}`;
      if (SCAPY_IP.has(code)) {
        const ours = decodeOptionValue(code, data);
        t.same((Array.isArray(ours) ? ours : [ours]).map((x) => ipv4ToString(x as number)), instances[0], label);
      } else if (SCAPY_INT.has(code)) {
        t.equal(decodeOptionValue(code, data), instances[0]![0], label);
      } else if (code === OptionCode.PARAMETER_REQUEST_LIST) {
        t.same(getParameterRequestList(m), instances[0]![0], label);
      } else if (code === OptionCode.CLASSLESS_STATIC_ROUTE) {
        const routes = decodeOptionValue(code, data) as { destination: number; prefixLength: number; router: number }[];
        t.same(routes.map((r) => `${ipv4ToString(r.destination)}/${r.prefixLength}:${ipv4ToString(r.router)}`), instances[0]![0], label);
      } else {
        t.equal(data.toString('hex'), instances.map((i) => i[0]).join(''), `${label} (raw, instances concatenated)`);
      }
    }
  }
});

t.test('each vector round-trips, and re-encoding reproduces scapy\'s bytes where the layout is canonical', async (t) => {
  for (const v of SCAPY) {
    const { bytes, m } = vector(v.name);
    const enc = roundTrip(t, dhcpMessageCodec(1500), m, v.name);
    if (['rfc4390-discover', 'flexboot-discover', 'patched-dhclient-discover', 'ack-many-options', 'bootp-request'].includes(v.name)) {
      // Ours pads to 300 bytes (BOOTP_MIN_LENGTH, as ISC dhcp does); scapy does not pad.
      t.same(enc.subarray(0, bytes.length), bytes, `${v.name}: same bytes as scapy`);
      t.ok(enc.subarray(bytes.length).every((b) => b === 0), `${v.name}: only zero padding after`);
      t.equal(enc.length, Math.max(300, bytes.length), `${v.name}: length`);
    }
  }
});

t.test('vector semantics: RFC 4390 variants, identities, typed options', async (t) => {
  const a = vector('rfc4390-discover').m;
  t.equal(getMessageType(a), DhcpMessageType.DHCPDISCOVER);
  t.ok(isIpoibMessage(a));
  t.equal(classifyHardware(a), 'rfc4390');
  t.same(checkRfc4390(a), { ipoib: true, variant: 'rfc4390', hasClientId: true, clientIdForm: 'mellanox', conformant: true, problems: [] });
  t.equal(clientIdentityKey(a), MELLANOX_TEXT);
  t.equal(portGuidOf(getClientIdentifier(a)!), GUID);
  t.equal(getMaxMessageSize(a), 1472);

  const b = vector('flexboot-discover').m;
  t.equal(classifyHardware(b), 'flexboot');
  const rb = checkRfc4390(b);
  t.equal(rb.conformant, false);
  t.same(rb.problems, ['hlen is 6, RFC 4390 requires 0', 'chaddr is not all zero']);
  t.same(guidToMac(portGuidOf(getClientIdentifier(b)!)!), b.chaddr.subarray(0, 6), 'FlexBoot chaddr = GUID with bytes 3-4 dropped');
  t.equal(clientIdentityKey(b), MELLANOX_TEXT, 'keyed on option 61, never chaddr');
  t.same(getOptionValue(b.options, 'client-system'), [0]);
  t.same(getOptionValue(b.options, 'client-ndi'), [1, 2, 1]);
  t.same(getOptionValue(b.options, 'uuid-guid'), [0, hex('4c4c4544003510328053b4c04f4e3032')]);
  t.equal(getOptionValue(b.options, 'vendor-class-identifier'), 'PXEClient:Arch:00000:UNDI:002001');

  const c = vector('patched-dhclient-discover').m;
  t.equal(classifyHardware(c), 'patched-dhclient');
  t.equal(c.chaddr.readBigUInt64BE(0), GUID, 'RHEL 8 dhclient: port GUID in chaddr, hlen 8');
  t.equal(getOptionValue(c.options, 'host-name'), 'node01');

  const d = vector('ack-many-options').m;
  t.equal(getMessageType(d), DhcpMessageType.DHCPACK);
  t.equal(getOptionValue(d.options, 'interface-mtu'), 2044);
  t.same(getOptionValue(d.options, 'domain-search'), ['eng.apple.com', 'marketing.apple.com'], 'RFC 3397 example names');
  t.equal(optionToText({ code: 121, data: findOption(d.options, 121)! }).data, '10.20.0.0/16 - 10.10.0.253, 0.0.0.0/0 - 10.10.0.254');
  t.equal(getOptionValue(d.options, 'dhcp-renewal-time'), 43200);

  const e1 = vector('overload-offer').m;
  t.same(e1.options.map((o) => o.code), [53, 54, 51, 1, 3, 15, 12], 'options, then file, then sname (RFC 2131 §4.1); 52 consumed');
  t.equal(getOptionValue(e1.options, 'host-name'), 'host-in-sname');

  const e2 = vector('rfc3396-split-ack').m;
  t.equal(findOption(e2.options, 43)!.length, 300, '255 + 45 bytes joined');
  t.same(findOption(e2.options, 43), Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from(Array.from({ length: 44 }, (_, i) => i))]));
  t.same(getOptionValue(e2.options, 'domain-search'), ['eng.apple.com', 'marketing.apple.com'], 'three 9-byte instances joined, then decompressed');

  const f = vector('bootp-request').m;
  t.ok(isBootp(f), 'no option 53: BOOTP');
  t.equal(getMessageType(f), undefined);
  t.equal(classifyHardware(f), 'ethernet');
  t.equal(clientIdentityKey(f), 'hw:1:02:00:00:aa:bb:cc');
  t.same(checkRfc4390(f).problems, []);
  t.equal(checkRfc4390(f).conformant, false, 'not IPoIB, so not RFC 4390-conformant');
});

function ackWith(options: DhcpOption[], init: Partial<DhcpMessage> = {}): DhcpMessage {
  return { ...emptyDhcpMessage(BOOTREPLY), htype: 32, xid: 0x1234, flags: FLAG_BROADCAST, yiaddr: parseIpv4('10.0.0.9'), options, ...init };
}

/** Independent re-reading of an option area with a plain TLV walk (RFC 2132 §2), for layout checks. */
function tlvs(area: Buffer): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < area.length;) {
    const c = area[i]!;
    if (c === 0) { i++; continue; }
    if (c === 255) break;
    out.push([c, area[i + 1]!]);
    i += 2 + area[i + 1]!;
  }
  return out;
}

t.test('encode overloads file then sname when options exceed the receiver\'s size', async (t) => {
  const options: DhcpOption[] = [
    { code: 53, data: Buffer.from([5]) },
    { code: 54, data: hex('0a000001') },
    { code: 43, data: Buffer.alloc(200, 0x11) },
    { code: 15, data: Buffer.from('x'.repeat(90)) },
    { code: 17, data: Buffer.from('r'.repeat(120)) },
    { code: 12, data: Buffer.from('host-name-in-sname') },
  ];
  const m = ackWith(options);
  const enc = encodeDhcpMessage(m); // 576 default
  t.ok(enc.length <= payloadLimit(576), `${enc.length} <= 548 (576 - IP/UDP headers)`);
  t.same([...enc.subarray(240, 243)], [52, 1, 3], 'option 52 first, value 3 (file and sname)');
  t.same(tlvs(enc.subarray(243)).map(([c]) => c), [53, 54, 43, 15], 'options field: 3 + 6 + 202 + 92 of 304 bytes');
  t.same(tlvs(enc.subarray(108, 236)), [[17, 120]], 'option 17 went whole into file (5 bytes left there)');
  t.same(tlvs(enc.subarray(44, 108)), [[12, 18]], 'option 12 went whole into sname');
  const back = decodeDhcpMessage(enc);
  t.same(back, m, 'decode restores the options (split 17 joined) and zeroed sname/file');
  t.equal(dhcpMessageLength(m), enc.length);

  const withFile = ackWith([...options.slice(0, 4), options[5]!], { file: Buffer.concat([Buffer.from('pxelinux.0'), Buffer.alloc(118)]) });
  const enc2 = encodeDhcpMessage(withFile);
  t.same([...enc2.subarray(240, 243)], [52, 1, 2], 'file in use: options spill into sname only');
  t.equal(fieldText(decodeDhcpMessage(enc2).file), 'pxelinux.0');
  t.same(decodeDhcpMessage(enc2), withFile);

  const bothUsed = ackWith(options, { sname: Buffer.concat([Buffer.from('srv'), Buffer.alloc(61)]), file: Buffer.concat([Buffer.from('f'), Buffer.alloc(127)]) });
  throwsWire(t, () => encodeDhcpMessage(bothUsed), 'LIMIT', 'options', 'no room and sname/file in use');
  t.equal(encodeDhcpMessage(bothUsed, undefined, 0, 1500).length, 240 + 3 + 6 + 202 + 92 + 122 + 20 + 1, 'fits at 1500 without overload');
  throwsWire(t, () => encodeDhcpMessage(ackWith([{ code: 43, data: Buffer.alloc(2000) }])), 'LIMIT', 'options', 'too big even with overload');
});

t.test('RFC 3396: a long option is split into 255-byte instances and joined back', async (t) => {
  const data = Buffer.from(Array.from({ length: 600 }, (_, i) => i & 0xff));
  const m = ackWith([{ code: 53, data: Buffer.from([5]) }, { code: 77, data }]);
  const enc = encodeDhcpMessage(m, undefined, 0, 1500);
  t.same(tlvs(enc.subarray(240)), [[53, 1], [77, 255], [77, 255], [77, 90]]);
  t.same(decodeDhcpMessage(enc), m);
  const oc = optionCodec('user-class');
  const bytes = roundTrip(t, oc, data);
  t.same(tlvs(bytes), [[77, 255], [77, 255], [77, 90]], 'optionCodec splits the same way');
  // Split across the options field and file at 576: the 300-byte option cannot fit whole anywhere.
  const big = ackWith([{ code: 53, data: Buffer.from([5]) }, { code: 43, data: Buffer.alloc(250, 7) }, { code: 77, data: Buffer.alloc(150, 9) }]);
  const enc3 = encodeDhcpMessage(big);
  t.same(decodeDhcpMessage(enc3), big, 'option continued from options into file is joined');
  t.ok(tlvs(enc3.subarray(108, 236)).some(([c]) => c === 77), 'part of option 77 is in file');
});

t.test('hostile messages: each a WireError with the right code and field', async (t) => {
  const good = vector('rfc4390-discover').bytes;
  throwsWire(t, () => decodeDhcpMessage(Buffer.alloc(0)), 'TRUNCATED', 'op');
  throwsWire(t, () => decodeDhcpMessage(good.subarray(0, 100)), 'TRUNCATED', 'sname', 'cut inside sname');
  throwsWire(t, () => decodeDhcpMessage(good.subarray(0, 238)), 'TRUNCATED', 'cookie', 'cut inside the cookie');
  throwsWire(t, () => decodeDhcpMessage(good, 200), 'TRUNCATED', 'sname', 'offset leaves 86 bytes: cut inside sname');

  const badCookie = Buffer.from(good); badCookie[239] = 0x64;
  throwsWire(t, () => decodeDhcpMessage(badCookie), 'BAD_VALUE', 'cookie');

  const pastEnd = Buffer.from(good.subarray(0, 246)); // 53/1/1, then 61 with length 20 but 1 byte left
  t.equal(pastEnd[243], 61);
  throwsWire(t, () => decodeDhcpMessage(pastEnd), 'BAD_LENGTH', 'options[61]', 'option length past the end');
  try { decodeDhcpMessage(pastEnd); } catch (e) { t.equal((e as WireError).offset, 244, 'offset of the length byte'); }
  throwsWire(t, () => decodeDhcpMessage(Buffer.from(good.subarray(0, 244))), 'TRUNCATED', 'options[61]', 'code without length');

  const header = Buffer.from(good.subarray(0, 240));
  const withOpts = (opts: number[], sname?: number[], file?: number[]): Buffer => {
    const b = Buffer.concat([header, Buffer.from(opts)]);
    if (sname) Buffer.from(sname).copy(b, 44);
    if (file) Buffer.from(file).copy(b, 108);
    return b;
  };
  throwsWire(t, () => decodeDhcpMessage(withOpts([52, 1, 2, 255], [52, 1, 2, 255])), 'BAD_VALUE', 'sname.options[52]', 'overload inside sname');
  throwsWire(t, () => decodeDhcpMessage(withOpts([52, 1, 1, 255], undefined, [52, 1, 1, 255])), 'BAD_VALUE', 'file.options[52]', 'overload in file pointing at file');
  throwsWire(t, () => decodeDhcpMessage(withOpts([52, 1, 4, 255])), 'BAD_VALUE', 'options[52]', 'overload value 4');
  throwsWire(t, () => decodeDhcpMessage(withOpts([52, 2, 1, 1, 255])), 'BAD_LENGTH', 'options[52]', 'overload length 2');
  throwsWire(t, () => decodeDhcpMessage(withOpts([52, 1, 1, 52, 1, 1, 255])), 'BAD_LENGTH', 'options[52]', 'two overload instances');
  throwsWire(t, () => decodeDhcpMessage(withOpts([52, 1, 1, 255], undefined, [12, 200])), 'BAD_LENGTH', 'file.options[12]', 'file option past the file field');
  t.same(decodeDhcpMessage(withOpts([52, 1, 3, 255], [12, 1, 0x61, 255], [15, 1, 0x62])).options.map((o) => o.code), [15, 12],
    'missing END in file is tolerated; sname read after file');

  const tiny = Buffer.alloc(10_000 * 2);
  for (let i = 0; i < 10_000; i++) { tiny[2 * i] = 200 + (i % 50); tiny[2 * i + 1] = 0; }
  throwsWire(t, () => decodeDhcpMessage(Buffer.concat([header, tiny])), 'LIMIT', 'options', `10k options > ${MAX_OPTION_INSTANCES}`);
  throwsWire(t, () => decodeDhcpMessage(Buffer.concat([header, Buffer.alloc(70_000)])), 'LIMIT', 'message');
  t.equal(decodeDhcpMessage(Buffer.concat([header, Buffer.alloc(60_000)])).options.length, 0, 'a large all-PAD area is fine');
});

t.test('encode rejects records no decode could produce', async (t) => {
  const m = ackWith([{ code: 53, data: Buffer.from([5]) }]);
  throwsWire(t, () => dhcpMessage.encode({ ...m, options: [{ code: 52, data: Buffer.from([1]) }] }), 'INVALID_RECORD', 'options[52]');
  throwsWire(t, () => dhcpMessage.encode({ ...m, options: [...m.options, { code: 53, data: Buffer.from([1]) }] }), 'INVALID_RECORD', 'options[53]');
  throwsWire(t, () => dhcpMessage.encode({ ...m, options: [{ code: 255, data: Buffer.alloc(0) }] }), 'INVALID_RECORD', 'options');
  throwsWire(t, () => dhcpMessage.encode({ ...m, chaddr: Buffer.alloc(15) }), 'INVALID_RECORD', 'chaddr');
  throwsWire(t, () => dhcpMessage.encode({ ...m, xid: 2 ** 32 }), 'INVALID_RECORD', 'xid');
  throwsWire(t, () => dhcpMessage.encode(m, Buffer.alloc(299)), 'BUFFER_TOO_SMALL', 'buffer');
});

t.test('fuzz: the message codec and option codecs throw only WireError', async (t) => {
  fuzzDecode(t, dhcpMessage, vector('ack-many-options').bytes, { runs: 1500 });
  fuzzDecode(t, dhcpMessage, vector('overload-offer').bytes, { runs: 1500 });
  fuzzDecode(t, dhcpMessage, vector('rfc3396-split-ack').bytes, { runs: 500 });
  // Option TLVs written by hand from their RFC layouts (RFC 2132, 3046, 3397 §3, 3442 + Kea's doc example, 3925, 2610, 4578, 4702, 6926, 6731).
  const samples: [string, string][] = [
    ['subnet-mask', '0104 ffffff00'], ['routers', '0308 0a000001 0a000002'], ['interface-mtu', '1a02 07fc'],
    ['time-offset', '0204 ffffffc4'], ['ip-forwarding', '1301 01'], ['host-name', '0c03 6e3031'],
    ['domain-search', '771b 03656e67 056170706c65 03636f6d00 096d61726b6574696e67 c004'],
    ['classless-static-route', '7912 19 0ae50080 0ae50001 20 0ac67a2f 0ac67a01'],
    ['dhcp-agent-options', '5210 0104 00000001 0202 abcd 0504 0a000000'],
    ['vivso-suboptions', '7d08 0000118b 03 010101'],
    ['slp-directory-agent', '4e09 01 0a000001 0a000002'], ['client-ndi', '5e03 010201'],
    ['uuid-guid', '6111 00 000102030405060708090a0b0c0d0e0f'], ['fqdn', '5108 03 00 00 036e3031 00'],
    ['status-code', '9703 00 4f4b'], ['rdnss-selection', '920f 01 0a000001 0a000002 016100 016200'],
  ];
  for (const [name, h] of samples) {
    const codec = optionCodec(name);
    const good = hex(h);
    t.equal(good.length, good[1]! + 2, `${name}: sample length byte`);
    t.doesNotThrow(() => codec.decode(good), `${name}: sample decodes`);
    fuzzDecode(t, codec, good, { runs: 300 });
  }
  fuzzDecode(t, clientIdOption, Buffer.concat([Buffer.from([61, 20]), mellanoxClientId(GUID)]), { runs: 500 });
});

t.test('option table: Kea names, RFC 2132 coverage, one generic codec', async (t) => {
  const codes = OPTION_DEFS.map((d) => d.code);
  const names = OPTION_DEFS.map((d) => d.name);
  t.equal(new Set(codes).size, codes.length, 'codes unique');
  t.equal(new Set(names).size, names.length, 'names unique');
  for (let c = 1; c <= 76; c++) t.ok(codes.includes(c), `RFC 2132 option ${c} defined`);
  // Names as in Kea's std_option_defs.h (STANDARD_V4_OPTION_DEFINITIONS / DHCP_AGENT_OPTION_DEFINITIONS).
  const kea: [number, string][] = [
    [1, 'subnet-mask'], [3, 'routers'], [6, 'domain-name-servers'], [15, 'domain-name'], [26, 'interface-mtu'],
    [51, 'dhcp-lease-time'], [52, 'dhcp-option-overload'], [53, 'dhcp-message-type'], [54, 'dhcp-server-identifier'],
    [55, 'dhcp-parameter-request-list'], [57, 'dhcp-max-message-size'], [58, 'dhcp-renewal-time'], [59, 'dhcp-rebinding-time'],
    [60, 'vendor-class-identifier'], [61, 'dhcp-client-identifier'], [77, 'user-class'], [82, 'dhcp-agent-options'],
    [93, 'client-system'], [94, 'client-ndi'], [97, 'uuid-guid'], [118, 'subnet-selection'], [119, 'domain-search'],
    [121, 'classless-static-route'], [125, 'vivso-suboptions'],
  ];
  for (const [code, name] of kea) {
    t.equal(optionDef(code).name, name, `option ${code} is ${name}`);
    t.equal(optionDef(name).code, code);
  }
  t.same(AGENT_SUBOPTION_DEFS.filter((d) => [1, 2, 5].includes(d.code)).map((d) => d.name), ['circuit-id', 'remote-id', 'link-selection']);
  t.same(optionDef(224), { code: 224, name: '224', type: 'binary', array: false, fields: [] }, 'unknown code: opaque bytes');
  t.equal(optionDef('224').code, 224, 'a numeric string is a code');
  throwsWire(t, () => optionDef('no-such-option'), 'BAD_VALUE', 'name');
  throwsWire(t, () => optionDef(0), 'BAD_VALUE', 'code');
});

t.test('Kea "data" text: parse, encode, format', async (t) => {
  t.equal(parseOptionData('interface-mtu', '2044'), 2044);
  t.same(optionFromText('interface-mtu', '2044'), { code: 26, data: hex('07fc') });
  t.same(optionFromText('routers', '10.0.0.1, 10.0.0.2'), { code: 3, data: hex('0a000001 0a000002') });
  t.same(parseOptionData('domain-name-servers', '192.0.3.1,192.0.3.2'), [parseIpv4('192.0.3.1'), parseIpv4('192.0.3.2')]);
  t.equal(formatOptionData('routers', [parseIpv4('10.0.0.1'), parseIpv4('10.0.0.2')]), '10.0.0.1, 10.0.0.2');
  t.equal(parseOptionData('time-offset', '-3600'), -3600);
  t.equal(parseOptionData('dhcp-lease-time', '0xffffffff'), 0xffffffff);
  t.equal(parseOptionData('ip-forwarding', 'true'), true);
  t.equal(parseOptionData('host-name', 'node, with comma'), 'node, with comma', 'a single string is not split');
  // Binary: every hex spelling Kea's ARM lists, plus a quoted string.
  for (const s of ['01:02:0a', '01 02 0a', '0x01020a', '01020a', '1:2:a']) t.same(parseOptionData('dhcp-client-identifier', s), hex('01020a'), s);
  t.same(parseOptionData('dhcp-client-identifier', "'abc'"), Buffer.from('abc'));
  t.equal(formatOptionData(61, hex('ff0001')), 'ff:00:01');
  // Kea ARM's classless-static-route example; bytes per RFC 3442 §1 (width, significant octets, router).
  const csr = '10.229.0.128/25 - 10.229.0.1, 10.198.122.47/32 - 10.198.122.1';
  t.same(optionFromText('classless-static-route', csr).data, hex('19 0ae50080 0ae50001 20 0ac67a2f 0ac67a01'));
  t.equal(formatOptionData('classless-static-route', parseOptionData('classless-static-route', csr)), csr);
  t.same(optionFromText('classless-static-route', '0.0.0.0/0 - 10.0.0.1').data, hex('00 0a000001'), 'default route: width 0, no octets');
  // RFC 3397 §3's example: encoding the two names must produce its compressed bytes exactly.
  t.same(optionFromText('domain-search', 'eng.apple.com., marketing.apple.com.').data,
    hex('03656e67 056170706c65 03636f6d00 096d61726b6574696e67 c004'));
  t.same(parseOptionData('client-ndi', '1, 2, 1'), [1, 2, 1]);
  t.same(parseOptionData('uuid-guid', '0, 00:11:22'), [0, hex('001122')]);
  t.same(parseOptionData('slp-directory-agent', 'true, 10.0.0.1, 10.0.0.2'), [true, parseIpv4('10.0.0.1'), parseIpv4('10.0.0.2')]);
  t.same(parseOptionData('status-code', '0, all, fine'), [0, 'all, fine'], 'a trailing string field takes the rest');
  t.same(parseOptionData('vivso-suboptions', '4491=01:01:01'), [{ enterpriseId: 4491, data: hex('010101') }]);
  t.same(parseOptionData(80, ''), Buffer.alloc(0), 'code 80 (no Kea definition) is binary; empty text is zero bytes');
  t.same(optionToText({ code: 26, data: hex('07fc') }), { code: 26, name: 'interface-mtu', data: '2044' });
  t.same(optionToText({ code: 26, data: hex('07') }), { code: 26, name: 'interface-mtu', data: '07' }, 'malformed data shown as hex');
  throwsWire(t, () => parseOptionData('interface-mtu', '70000'), 'BAD_VALUE', 'interface-mtu');
  throwsWire(t, () => parseOptionData('routers', '10.0.0.1, 300.1.1.1'), 'BAD_VALUE', 'routers');
  throwsWire(t, () => parseOptionData('classless-static-route', '10.0.0.0/33 - 1.1.1.1'), 'BAD_VALUE', 'classless-static-route');
  throwsWire(t, () => parseOptionData('dhcp-client-identifier', 'zz:01'), 'BAD_VALUE', 'dhcp-client-identifier');
  throwsWire(t, () => parseOptionData('client-ndi', '1, 2'), 'BAD_VALUE', 'client-ndi');
});

t.test('typed option decode errors name the option', async (t) => {
  throwsWire(t, () => decodeOptionValue('interface-mtu', hex('07fc00')), 'BAD_LENGTH', 'interface-mtu');
  throwsWire(t, () => decodeOptionValue('routers', hex('0a0000')), 'BAD_LENGTH', 'routers');
  throwsWire(t, () => decodeOptionValue('ip-forwarding', hex('02')), 'BAD_VALUE', 'ip-forwarding');
  throwsWire(t, () => decodeOptionValue('classless-static-route', hex('21 0a000000 00 0a000001')), 'BAD_VALUE', 'classless-static-route');
  throwsWire(t, () => decodeOptionValue('classless-static-route', hex('18 0a0000 0a00')), 'BAD_LENGTH', 'classless-static-route');
  throwsWire(t, () => decodeOptionValue('domain-search', hex('c000')), 'BAD_VALUE', 'domain-search', 'pointer to itself');
  throwsWire(t, () => decodeOptionValue('domain-search', hex('016100 0162c004')), 'BAD_VALUE', 'domain-search', 'pointer forward/into its own name');
  throwsWire(t, () => decodeOptionValue('domain-search', hex('0561')), 'TRUNCATED', 'domain-search');
  throwsWire(t, () => decodeOptionValue('domain-search', hex('4161')), 'BAD_VALUE', 'domain-search', 'extended label type');
  throwsWire(t, () => decodeOptionValue('domain-search', Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61), Buffer.from([63]), Buffer.alloc(63, 0x61), Buffer.from([63]), Buffer.alloc(63, 0x61), Buffer.from([63]), Buffer.alloc(63, 0x61), Buffer.from([0])])), 'BAD_VALUE', 'domain-search', '> 255 bytes');
  throwsWire(t, () => decodeOptionValue('dhcp-agent-options', hex('0105 0000')), 'BAD_LENGTH', 'dhcp-agent-options[1]');
  throwsWire(t, () => decodeOptionValue('vivso-suboptions', hex('0000118b')), 'TRUNCATED', 'vivso-suboptions');
  throwsWire(t, () => encodeOptionValue('interface-mtu', -1), 'INVALID_RECORD', 'interface-mtu');
  throwsWire(t, () => encodeOptionValue('domain-search', ['a..b']), 'INVALID_RECORD', 'domain-search');
  throwsWire(t, () => encodeOptionValue('classless-static-route', [{ destination: parseIpv4('10.1.2.3'), prefixLength: 8, router: 1 }]), 'INVALID_RECORD', 'classless-static-route', 'bits beyond the significant octets');
});

t.test('option 82 sub-options (RFC 3046 §2.0 layout, hand-built)', async (t) => {
  // circuit-id "ib0/1", remote-id 8-byte GUID, link-selection 10.20.0.0 (RFC 3527).
  const data = hex('0105 6962302f31  0208 7cfe900300292652  0504 0a140000');
  const subs = decodeOptionValue('dhcp-agent-options', data) as { code: number; data: Buffer }[];
  t.same(subs.map((s) => s.code), [1, 2, 5]);
  t.same(getAgentSubOption(subs, 'circuit-id'), Buffer.from('ib0/1'));
  t.same(getAgentSubOption(subs, 'remote-id'), guidBytes(GUID));
  t.equal(getAgentSubOption(subs, 'link-selection'), parseIpv4('10.20.0.0'));
  t.equal(getAgentSubOption(subs, 'relay-port'), undefined);
  t.same(encodeOptionValue(82, subs), data);
  t.equal(formatOptionData(82, subs), '01:05:69:62:30:2f:31:02:08:7c:fe:90:03:00:29:26:52:05:04:0a:14:00:00');
  t.same(parseOptionData(82, formatOptionData(82, subs)), subs);
});

function guidBytes(g: bigint): Buffer {
  const b = Buffer.alloc(8); b.writeBigUInt64BE(g); return b;
}

t.test('client identifiers (RFC 4361, IPOIB-FACTS §5.3)', async (t) => {
  const mellanox = parseClientIdText(MELLANOX_TEXT);
  t.same(mellanoxClientId(GUID), mellanox, 'builder = the documented text');
  t.same(parseClientId(mellanox), {
    kind: 'rfc4361', iaid: 0, duid: { kind: 'en', enterpriseNumber: 713, identifier: hex('00 7cfe900300292652') },
  }, 'decoded as tshark shows it: IAID 0, DUID-EN 713, 00 + GUID');
  t.equal(clientIdForm(mellanox), 'mellanox');
  t.equal(portGuidOf(mellanox), GUID);
  t.equal(formatClientId(mellanox), MELLANOX_TEXT);
  t.equal(formatGuid(GUID), '7c:fe:90:03:00:29:26:52');
  t.equal(parseGuid('7cfe:9003:0029:2652'), GUID, 'ibstat style');
  t.equal(parseGuid('0x7cfe900300292652'), GUID);
  t.equal(parseGuid('7c:fe:90:03:00:29:26:52'), GUID);
  throwsWire(t, () => parseGuid('7c:fe'), 'BAD_VALUE', 'guid');
  t.same(guidToMac(GUID), hex('7c:fe:90:29:26:52'), '§5.3: drop GUID bytes 3-4');
  t.equal(macToGuid(hex('7c:fe:90:29:26:52')), GUID, 'inverse, inserting 03:00');

  const ibGuid = ibGuidClientId(GUID);
  t.same(ibGuid, hex('20 7cfe900300292652'));
  t.equal(clientIdForm(ibGuid), 'ib-guid');
  t.equal(portGuidOf(ibGuid), GUID);
  // Legacy 20: + 20-byte IPoIB hardware address (flags/QPN 00000048, GID fe80::7cfe:9003:29:2652).
  const hw20 = hex('00000048 fe800000 00000000 7cfe9003 00292652');
  const legacy = ibHwaddrClientId(hw20);
  t.equal(legacy.length, 21);
  t.equal(clientIdForm(legacy), 'ib-hwaddr');
  t.equal(portGuidOf(legacy), GUID, 'GUID = last 8 bytes of the hardware address');
  const mac = macClientId(hex('020000aabbcc'));
  t.equal(clientIdForm(mac), 'ethernet-mac');
  t.equal(portGuidOf(mac), null);
  // systemd default: ff, IAID, DUID-EN with PEN 43793 and a machine-id hash — no GUID in it.
  const systemd = rfc4361ClientId(0x6c0a2b3d, { kind: 'en', enterpriseNumber: 43793, identifier: hex('0102030405060708') });
  t.same(systemd, hex('ff 6c0a2b3d 0002 0000ab11 0102030405060708'));
  t.equal(clientIdForm(systemd), 'rfc4361');
  t.equal(portGuidOf(systemd), null);
  const duidLl = rfc4361ClientId(1, { kind: 'll', htype: 32, linkLayerAddress: hw20 });
  t.equal(portGuidOf(duidLl), GUID, 'DUID-LL over an IB address: last 8 bytes (documented assumption)');
  t.same(parseClientId(hex('ff 00000001 0001 0020 12345678 7cfe900300292652')), {
    kind: 'rfc4361', iaid: 1, duid: { kind: 'llt', htype: 32, time: 0x12345678, linkLayerAddress: guidBytes(GUID) },
  });
  t.equal(portGuidOf(hex('ff 00000001 0001 0020 12345678 7cfe900300292652')), GUID);
  t.same(parseClientId(hex('ff 00000001 0004 000102030405060708090a0b0c0d0e0f')).kind, 'rfc4361');
  t.same((parseClientId(hex('ff 00000001 0004 000102030405060708090a0b0c0d0e0f')) as { duid: unknown }).duid,
    { kind: 'uuid', uuid: hex('000102030405060708090a0b0c0d0e0f') });
  t.same(parseClientId(hex('ff 00000001 0009 abcd')), { kind: 'rfc4361', iaid: 1, duid: { kind: 'other', type: 9, data: hex('abcd') } });
  t.same(parseClientId(hex('00 6e6f6465')), { kind: 'raw', bytes: hex('00 6e6f6465') }, 'type 0: opaque');
  t.same(parseClientId(hex('ff 0000')), { kind: 'raw', bytes: hex('ff 0000') }, 'too short for RFC 4361');

  const values: ClientId[] = [
    parseClientId(mellanox), parseClientId(ibGuid), parseClientId(legacy), parseClientId(mac), parseClientId(systemd),
    parseClientId(duidLl), { kind: 'raw', bytes: hex('00 41') },
  ];
  for (const v of values) roundTrip(t, clientIdOption, v, `client-id ${clientIdForm(v)}`);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => encodeClientId(parseClientId(Buffer.from(b))).equals(Buffer.from(b))),
    { numRuns: 2000 });
  t.pass('every byte string parses to a client-id that encodes back to the same bytes');
  throwsWire(t, () => encodeClientId({ kind: 'hwaddr', htype: 0, address: hex('01') }), 'INVALID_RECORD', 'htype');
  throwsWire(t, () => ibHwaddrClientId(hex('0102')), 'INVALID_RECORD', 'hwaddr');
});

t.test('reply routing (RFC 2131 §4.1, RFC 4390 §2.2)', async (t) => {
  const discover = vector('rfc4390-discover').m;
  const offer = ackWith([{ code: 53, data: Buffer.from([DhcpMessageType.DHCPOFFER]) }]);
  const nak = ackWith([{ code: 53, data: Buffer.from([DhcpMessageType.DHCPNAK]) }]);
  t.same(replyRoute(discover, offer), { kind: 'broadcast' }, 'broadcast flag');
  t.same(replyRoute({ ...discover, flags: 0 }, offer), { kind: 'broadcast' }, 'IPoIB without the flag: still broadcast');
  t.same(replyRoute({ ...discover, giaddr: parseIpv4('10.1.0.1') }, offer), { kind: 'relay', address: parseIpv4('10.1.0.1') });
  t.same(replyRoute({ ...discover, ciaddr: parseIpv4('10.0.0.9') }, offer), { kind: 'ciaddr', address: parseIpv4('10.0.0.9') });
  t.same(replyRoute({ ...discover, ciaddr: parseIpv4('10.0.0.9') }, nak), { kind: 'broadcast' }, 'NAK without relay: broadcast');
  const eth = vector('bootp-request').m;
  t.same(replyRoute(eth, offer), { kind: 'yiaddr', address: offer.yiaddr }, 'Ethernet, no flag: unicast to yiaddr at chaddr');
  t.ok(shouldBroadcastReply(discover, offer));
  t.notOk(shouldBroadcastReply(eth, offer));
  t.same(replyRoute({ ...eth, hlen: 0 }, offer), { kind: 'broadcast' }, 'hlen 0: cannot unicast');
  t.equal(classifyHardware({ ...discover, hlen: 20 }), 'ipoib-20');
  t.ok(checkRfc4390({ ...discover, hlen: 20 }).problems.includes('hlen 20 exceeds the 16-byte chaddr'));
  t.equal(classifyHardware({ ...discover, hlen: 7 }), 'other');
  t.equal(classifyHardware({ ...eth, htype: 6 }), 'other');
  t.equal(clientIdentityKey({ ...discover, options: [] }), null, 'IPoIB without option 61: no identity');
  t.same(checkRfc4390({ ...discover, options: [] }).problems, ['no client identifier (option 61)']);
  t.same(checkRfc4390({ ...discover, options: [{ code: 61, data: ibGuidClientId(GUID) }] }).problems,
    ['client identifier type 32 is not RFC 4361 (255)']);
});

// ---- properties -----------------------------------------------------------------------------------

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytesOf = (min: number, max: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength: min, maxLength: max, size: 'max' }).map((b) => Buffer.from(b));
const zeroOr = (len: number): fc.Arbitrary<Buffer> => fc.oneof(fc.constant(Buffer.alloc(len)), bytesOf(len, len));
const optionList = fc.uniqueArray(
  fc.record({ code: fc.integer({ min: 1, max: 254 }).filter((c) => c !== 52), data: fc.oneof(bytesOf(0, 40), bytesOf(0, 600)) }, { noNullPrototype: true }),
  { selector: (o) => o.code, maxLength: 12 });
const messageArb: fc.Arbitrary<DhcpMessage> = fc.record({
  op: fc.constantFrom(BOOTREQUEST, BOOTREPLY), htype: fc.integer({ min: 0, max: 255 }), hlen: fc.integer({ min: 0, max: 255 }),
  hops: fc.integer({ min: 0, max: 255 }), xid: u32, secs: fc.integer({ min: 0, max: 0xffff }), flags: fc.integer({ min: 0, max: 0xffff }),
  ciaddr: u32, yiaddr: u32, siaddr: u32, giaddr: u32, chaddr: bytesOf(16, 16), sname: zeroOr(64), file: zeroOr(128),
  options: optionList,
}, { noNullPrototype: true });

t.test('property: arbitrary valid messages round-trip at any receiver size, or are refused with LIMIT', async (t) => {
  let fitted = 0;
  let overloaded = 0;
  const check = (m: DhcpMessage, mms: number): boolean => {
    let enc: Buffer;
    try {
      enc = encodeDhcpMessage(m, undefined, 0, mms);
    } catch (err) {
      if (err instanceof WireError && err.code === 'LIMIT') return true;
      throw err;
    }
    fitted++;
    if (enc[240] === 52) overloaded++;
    if (enc.length > Math.max(300, payloadLimit(mms))) return false;
    return isDeepStrictEqual(decodeDhcpMessage(enc), m);
  };
  fc.assert(fc.property(messageArb, fc.integer({ min: 0, max: 3000 }), check), { numRuns: 300 });
  // Near the 576-byte default, where overload and splits across areas happen.
  const nearLimit = messageArb.chain((m) => fc.uniqueArray(
    fc.record({ code: fc.integer({ min: 1, max: 254 }).filter((c) => c !== 52), data: bytesOf(0, 130) }, { noNullPrototype: true }),
    { selector: (o) => o.code, minLength: 2, maxLength: 8 }).map((options) => ({ ...m, options })));
  fc.assert(fc.property(nearLimit, (m) => check(m, 576)), { numRuns: 300 });
  t.ok(fitted > 200 && overloaded > 20, `exercised fits (${fitted}) and overloads (${overloaded})`);
  fc.assert(fc.property(messageArb.filter((m) => m.options.every((o) => o.data.length < 30)), (m) => {
    roundTrip(t, dhcpMessageCodec(3000), m);
  }), { numRuns: 20 });
});

const ipArb = u32;
function fieldArb(ft: FieldType, last: boolean): fc.Arbitrary<FieldValue> {
  switch (ft) {
    case 'ipv4-address': case 'uint32': return ipArb;
    case 'uint8': return fc.integer({ min: 0, max: 255 });
    case 'uint16': return fc.integer({ min: 0, max: 0xffff });
    case 'int8': return fc.integer({ min: -128, max: 127 });
    case 'int16': return fc.integer({ min: -32768, max: 32767 });
    case 'int32': return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case 'boolean': return fc.boolean();
    case 'binary': return bytesOf(last ? 0 : 0, 20);
    case 'string': return fc.stringMatching(/^[a-z0-9][a-z0-9 ,.]{0,18}[a-z0-9]$/);
    case 'fqdn': return fc.array(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
  }
}
function valueArb(d: OptionDef): fc.Arbitrary<OptionValue> {
  switch (d.type) {
    case 'empty': return fc.constant(null);
    case 'classless-static-route':
      return fc.array(fc.record({ prefixLength: fc.integer({ min: 0, max: 32 }), destination: ipArb, router: ipArb }, { noNullPrototype: true })
        .map((r) => { const o = (r.prefixLength + 7) >> 3; return { ...r, destination: o === 0 ? 0 : (r.destination & ((0xffffffff << (32 - 8 * o)) >>> 0)) >>> 0 }; }), { maxLength: 5 });
    case 'suboptions': return fc.array(fc.record({ code: fc.integer({ min: 0, max: 255 }), data: bytesOf(0, 20) }, { noNullPrototype: true }), { maxLength: 5 });
    case 'vivso': return fc.array(fc.record({ enterpriseId: ipArb, data: bytesOf(0, 20) }, { noNullPrototype: true }), { maxLength: 4 });
    case 'record': {
      const n = d.fields.length;
      const head = d.fields.slice(0, d.array ? n - 1 : n).map((f, k) => fieldArb(f, k === n - 1));
      const tail = d.array ? fc.array(fieldArb(d.fields[n - 1]!, true), { maxLength: 4 }) : fc.constant([] as FieldValue[]);
      return fc.tuple(fc.tuple(...head), tail).map(([h, rest]) => [...h, ...rest]);
    }
    default:
      return d.array ? fc.array(fieldArb(d.type, true), { maxLength: 6 }) : fieldArb(d.type, true);
  }
}

t.test('property: every option definition round-trips values through bytes and through Kea text', async (t) => {
  let checked = 0;
  for (const d of [...OPTION_DEFS, optionDef(224)]) {
    const codec = optionCodec(d.code);
    fc.assert(fc.property(valueArb(d), (v) => {
      const data = encodeOptionValue(d.code, v);
      const back = decodeOptionValue(d.code, data);
      const text = formatOptionData(d.code, v);
      const fromText = parseOptionData(d.code, text);
      const ok = isDeepStrictEqual(back, v) && isDeepStrictEqual(fromText, v);
      if (!ok) t.fail(`${d.name}: ${JSON.stringify(v)} -> ${JSON.stringify(back)} / text ${JSON.stringify(text)} -> ${JSON.stringify(fromText)}`);
      return ok;
    }), { numRuns: 60 });
    fc.assert(fc.property(valueArb(d), (v) => {
      const enc = codec.encode(v);
      return isDeepStrictEqual(codec.decode(enc), v);
    }), { numRuns: 20 });
    checked++;
  }
  t.equal(checked, OPTION_DEFS.length + 1, 'every definition checked');
  const one = valueArb(optionDef('domain-search'));
  roundTrip(t, optionCodec('domain-search'), fc.sample(one, 1)[0]!);
  roundTrip(t, optionCodec('classless-static-route'), [{ destination: parseIpv4('10.20.0.0'), prefixLength: 16, router: parseIpv4('10.10.0.253') }]);
  roundTrip(t, optionCodec('interface-mtu'), 2044);
  roundTrip(t, optionCodec('dhcp-parameter-request-list'), [1, 3, 6, 15, 26, 119, 121]);
  roundTrip(t, optionCodec('vivso-suboptions'), [{ enterpriseId: 4491, data: hex('010101') }]);
  roundTrip(t, optionCodec('rdnss-selection'), [1, parseIpv4('10.0.0.1'), parseIpv4('10.0.0.2'), 'a.example', 'b.example']);
});
