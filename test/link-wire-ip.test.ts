// Codecs of link/wire for the IPoIB and IP layers: IPoIB header, 20-byte hardware address, ARP,
// IPv4, UDP, ICMP and the Internet checksum. Fixtures come from RFC 1071 §3, IPOIB-FACTS §3
// (Linux's own constants) and scapy (test/vectors/ip_layers.py), never from these codecs.
import t from 'tap';
import fc from 'fast-check';
import * as H from './helpers/codec.js';
import { foldChecksum, inetChecksum, onesSum, pseudoHeaderSum } from '../link/wire/inet-checksum.js';
import {
  decodeIpoibHeader, encodeIpoibHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ipoibHeader,
} from '../link/wire/ipoib-header.js';
import {
  decodeIpoibHwAddress, formatIpoibHwAddress, IB_MULTICAST_QPN, ipoibBroadcastAddress, ipoibHwAddress,
  ipoibHwFromKey, ipoibHwKey, ipoibHwKeyAt, ipv4MulticastHwAddress, ipv6MulticastHwAddress, isMulticastHwAddress,
  mgidPkey, parseIpoibHwAddress, portGuid, supportsConnectedMode,
} from '../link/wire/ipoib-hw-address.js';
import { arp, ARP_HTYPE_INFINIBAND, ARP_OP_REPLY, ARP_OP_REQUEST, decodeArp, encodeArp, isIpoibArp, type Arp } from '../link/wire/arp.js';
import {
  decodeIpv4, encodeIpv4, encodeIpv4Header, formatIpv4, IP_PROTO_ICMP, IP_PROTO_UDP, ipv4, IPV4_FLAG_DF,
  IPV4_FLAG_MF, parseIpv4, type Ipv4,
} from '../link/wire/ipv4.js';
import { decodeUdp, encodeUdp, encodeUdpHeader, udpCodec, type Udp } from '../link/wire/udp.js';
import {
  decodeIcmp, encodeIcmp, fragmentationNeeded, icmp, ICMP_CODE_FRAG_NEEDED, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST,
  type Icmp,
} from '../link/wire/icmp.js';
import type { Codec } from '../codec/contract.js';

import { IP_VECTORS } from './vectors/ip-layers.js';

const { roundTrip, fuzzDecode, throwsWire } = H;
const hex = H.hex;

const V = IP_VECTORS;

// IPOIB-FACTS §3.1: the dnsmasq example address, flags 0x80, QPN 0x48, GID fe80::2:c903:0:1.
const CLIENT_TEXT = '80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01';
const CLIENT_BYTES = hex('80000048 fe800000 00000000 0002c903 00000001');
const SERVER_BYTES = hex('80000049 fe800000 00000000 0002c903 00000002');

t.test('Internet checksum', async (t) => {
  // RFC 1071 §3 worked example: the one's complement sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
  const rfc = hex('0001 f203 f4f5 f6f7');
  t.equal(foldChecksum(onesSum(rfc, 0, 8)), (~0xddf2) & 0xffff, 'RFC 1071 §3 example');
  t.equal(inetChecksum(rfc), 0x220d, 'inetChecksum of the whole buffer');
  // Odd length: the last byte is the high byte of a zero-padded word (RFC 1071 §4.1).
  t.equal(inetChecksum(hex('0001 f2')), (~(0x0001 + 0xf200)) & 0xffff, 'odd final byte is padded');
  // scapy computed these headers' checksums: over the whole header the result must be 0.
  for (const name of ['dhcpDiscoverIp', 'icmpEchoRequestIp', 'ipOptionsUdp', 'ipFragment'] as const) {
    const v = V[name];
    t.equal(inetChecksum(v, 0, (v[0]! & 0xf) * 4), 0, `${name}: scapy's IP header checksum verifies`);
  }
  t.equal(inetChecksum(Buffer.alloc(0)), 0xffff, 'empty range');
  // Against a plain reference sum (word by word, fold at the end), over random data, split points
  // and offsets: chained sums over an even first range equal one pass.
  fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(), fc.nat(), (bytes, a, b) => {
    const buf = Buffer.from(bytes);
    const start = buf.length === 0 ? 0 : a % buf.length;
    let ref = 0;
    for (let i = start; i < buf.length; i += 2) ref += (buf[i]! << 8) | (buf[i + 1] ?? 0);
    while (ref > 0xffff) ref = (ref & 0xffff) + (ref >>> 16);
    const want = ~ref & 0xffff;
    const len = buf.length - start;
    const split = len === 0 ? 0 : (b % (len + 1)) & ~1;
    const chained = foldChecksum(onesSum(buf, start + split, len - split, onesSum(buf, start, split)));
    return inetChecksum(buf, start) === want && chained === want;
  }), { numRuns: 500 });
  // Carries beyond 32 bits still fold correctly.
  t.equal(foldChecksum(0x1_0000_0000 * 3 + 5), (~8) & 0xffff, 'folds sums above 2^32');
  t.equal(pseudoHeaderSum(0x0a000001, 0x0a000002, 17, 8), 0x0a00 + 1 + 0x0a00 + 2 + 17 + 8, 'pseudo-header sum');
});

t.test('IPoIB encapsulation header', async (t) => {
  // RFC 4391 §6 / Linux ipoib_hard_header(): EtherType then 16 reserved bits written 0.
  t.same(decodeIpoibHeader(hex('0800 0000')), { type: ETHERTYPE_IPV4, reserved: 0 }, 'IPv4');
  t.same(decodeIpoibHeader(hex('0806 0000')), { type: ETHERTYPE_ARP, reserved: 0 }, 'ARP');
  t.same(encodeIpoibHeader({ type: ETHERTYPE_IPV6, reserved: 0 }), hex('86dd 0000'), 'IPv6');
  // The frames from pcap_frames.py carry the header right after the 8-byte DETH.
  t.same(decodeIpoibHeader(hex('0b1b 00000048 0806 0000'), 6), { type: ETHERTYPE_ARP, reserved: 0 }, 'at an offset');
  roundTrip(t, ipoibHeader, { type: 0x88ca, reserved: 0xbeef });
  t.same(ipoibHeader.decode(hex('0800 1234')).reserved, 0x1234, 'a non-zero reserved field is kept, not rejected');
  throwsWire(t, () => decodeIpoibHeader(hex('0800 00')), 'TRUNCATED', 'type');
  throwsWire(t, () => encodeIpoibHeader({ type: 0x10000, reserved: 0 }), 'INVALID_RECORD', 'type');
  fuzzDecode(t, ipoibHeader, hex('0800 0000'));
});

t.test('IPoIB hardware address', async (t) => {
  const a = parseIpoibHwAddress(CLIENT_TEXT);
  t.equal(a.flags, 0x80, 'flags byte');
  t.equal(a.qpn, 0x48, 'QPN');
  t.same(a.gid, hex('fe800000 00000000 0002c903 00000001'), 'port GID');
  t.ok(supportsConnectedMode(a), '0x80 advertises connected mode');
  t.notOk(isMulticastHwAddress(a), 'a port GID is unicast');
  t.same(portGuid(a), hex('0002c903 00000001'), 'port GUID = GID bytes 8-15');
  t.equal(formatIpoibHwAddress(a), CLIENT_TEXT, 'format(parse(text)) == text');
  t.same(ipoibHwAddress.encode(a), CLIENT_BYTES, 'encodes to the 20 wire bytes');
  t.same(decodeIpoibHwAddress(CLIENT_BYTES), a, 'decode matches parse');
  t.equal(formatIpoibHwAddress(parseIpoibHwAddress(CLIENT_TEXT.toUpperCase())), CLIENT_TEXT,
    'upper-case hex is accepted and formatted lower-case');
  // IPOIB-FACTS §3.1 examples seen in the wild: RC+TSS, and no RC bit. Other flag bits are kept.
  const tss = parseIpoibHwAddress('a0:00:00:27:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01');
  t.equal(tss.flags, 0xa0, 'RC+TSS flags kept whole');
  t.ok(supportsConnectedMode(tss), 'RC bit seen among other flags');
  const noRc = parseIpoibHwAddress('00:00:07:9a:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01');
  t.notOk(supportsConnectedMode(noRc), 'no RC bit: datagram only');
  t.equal(noRc.qpn, 0x079a, 'QPN of the second example');

  for (const [bad, at] of [
    ['80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00', 56],       // 19 bytes
    ['80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01:02', 59], // 21 bytes
    ['80-00-00-48-fe-80-00-00-00-00-00-00-00-02-c9-03-00-00-00-01', 2],
    ['8:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01', 0],
    ['80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:0g', 57],
    [' 80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01', 0],
    ['80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01 ', 59],
    ['', 0],
  ] as const) {
    throwsWire(t, () => parseIpoibHwAddress(bad), 'BAD_VALUE', 'text', `rejects ${JSON.stringify(bad)}`);
    try { parseIpoibHwAddress(bad); } catch (err) {
      t.ok(String(err).includes(JSON.stringify(bad)), 'the error names the bad text');
      t.equal((err as { offset: number }).offset, at, 'and the character where it fails');
    }
  }

  // Map keys: 40 hex digits, readable straight from packet bytes, and reversible.
  const key = ipoibHwKey(a);
  t.equal(key, '80000048fe800000000000000002c90300000001', 'key is the 20 bytes in hex');
  t.equal(ipoibHwKeyAt(V.arpRequest, 8), key, 'key read from the ARP sender address in place');
  t.same(ipoibHwFromKey(key), a, 'key back to the address');
  t.not(ipoibHwKey({ ...a, qpn: 0x49 }), key, 'a new QPN is a new key');
  throwsWire(t, () => ipoibHwFromKey('80000048'), 'BAD_VALUE', 'key');
  throwsWire(t, () => ipoibHwKeyAt(V.arpRequest, 50), 'TRUNCATED', 'address');

  // IPOIB-FACTS §3.3: 00:ff:ff:ff | ff12:401b:PKEY::ffff:ffff, P_Key bit 15 forced on.
  const bcast = ipoibBroadcastAddress(0xffff);
  t.same(ipoibHwAddress.encode(bcast), hex('00ffffff ff12401b ffff0000 00000000 ffffffff'), 'broadcast, P_Key 0xffff');
  t.equal(bcast.qpn, IB_MULTICAST_QPN, 'broadcast QPN 0xffffff');
  t.ok(isMulticastHwAddress(bcast), 'broadcast is multicast');
  t.same(ipoibBroadcastAddress(0x7fff), bcast, 'limited member P_Key 0x7fff maps to the same group');
  t.same(ipoibHwAddress.encode(ipoibBroadcastAddress(0x0001)), hex('00ffffff ff12401b 80010000 00000000 ffffffff'),
    'child interface P_Key 0x0001 -> 0x8001');
  t.same(ipoibBroadcastAddress(0x8001, 5).gid.subarray(0, 2), hex('ff15'), 'site-local scope nibble');
  t.equal(mgidPkey(bcast), 0xffff, 'P_Key read back from the MGID');
  throwsWire(t, () => ipoibBroadcastAddress(0x10000), 'INVALID_RECORD', 'pkey');

  // IPOIB-FACTS §3.4 examples (ip_ib_mc_map / ipv6_ib_mc_map).
  t.same(ipv4MulticastHwAddress(parseIpv4('224.0.0.1'), bcast).gid, hex('ff12401b ffff0000 00000000 00000001'),
    '224.0.0.1 -> ff12:401b:ffff::1');
  t.same(ipv4MulticastHwAddress(parseIpv4('239.255.255.250'), bcast).gid,
    hex('ff12401b ffff0000 00000000 0ffffffa'), '239.255.255.250 -> ff12:401b:ffff::fff:fffa (low 28 bits)');
  const site = ipv4MulticastHwAddress(parseIpv4('224.0.0.251'), ipoibBroadcastAddress(0x8002, 5));
  t.same(ipoibHwAddress.encode(site), hex('00ffffff ff15401b 80020000 00000000 000000fb'),
    'scope and P_Key copied from the broadcast address');
  throwsWire(t, () => ipv4MulticastHwAddress(parseIpv4('10.0.0.1'), bcast), 'INVALID_RECORD', 'group');
  t.same(ipv6MulticastHwAddress(hex('ff02 0000 0000 0000 0000 0000 0000 0001'), bcast).gid,
    hex('ff12601b ffff0000 00000000 00000001'), 'ff02::1 -> ff12:601b:ffff::1');
  t.same(ipv6MulticastHwAddress(hex('ff02 0000 0000 0000 0000 0001 ffab cdef'), bcast).gid,
    hex('ff12601b ffff0000 00000001 ffabcdef'), 'ff02::1:ffab:cdef -> ff12:601b:ffff::1:ffab:cdef');
  throwsWire(t, () => ipv6MulticastHwAddress(hex('fe80 0000 0000 0000 0000 0000 0000 0001'), bcast),
    'INVALID_RECORD', 'group');

  roundTrip(t, ipoibHwAddress, a);
  roundTrip(t, ipoibHwAddress, bcast, 'broadcast');
  throwsWire(t, () => decodeIpoibHwAddress(CLIENT_BYTES.subarray(0, 19)), 'TRUNCATED', 'address');
  throwsWire(t, () => ipoibHwAddress.encode({ ...a, qpn: 0x1000000 }), 'INVALID_RECORD', 'qpn');
  throwsWire(t, () => ipoibHwAddress.encode({ ...a, gid: Buffer.alloc(15) }), 'INVALID_RECORD', 'gid');
  fuzzDecode(t, ipoibHwAddress, CLIENT_BYTES);
});

t.test('ARP over IPoIB (scapy vectors)', async (t) => {
  const req = decodeArp(V.arpRequest);
  t.equal(V.arpRequest.length, 56, 'IPoIB ARP body is 56 bytes (IPOIB-FACTS §3.6)');
  t.equal(req.htype, ARP_HTYPE_INFINIBAND, 'htype 32');
  t.equal(req.ptype, 0x0800, 'ptype IPv4');
  t.equal(req.op, ARP_OP_REQUEST, 'request');
  t.same(req.sha, CLIENT_BYTES, 'sender: the full 20-byte address, flags included');
  t.same(req.spa, hex('0a000001'), 'sender IP');
  t.same(req.tha, Buffer.alloc(20), 'target hardware address unknown');
  t.same(req.tpa, hex('0a000002'), 'target IP');
  t.ok(isIpoibArp(req), 'accepted by an IPoIB interface');
  t.same(encodeArp(req), V.arpRequest, 'encode reproduces scapy');
  const rep = decodeArp(V.arpReply);
  t.equal(rep.op, ARP_OP_REPLY, 'reply');
  t.same(decodeIpoibHwAddress(rep.sha), decodeIpoibHwAddress(SERVER_BYTES), 'reply sender decodes as an IPoIB address');
  t.same(rep.tha, CLIENT_BYTES, 'reply target is the requester');
  t.same(encodeArp(rep), V.arpReply, 'encode reproduces scapy');
  t.ok(req.sha.buffer === V.arpRequest.buffer, 'addresses are views, not copies');

  const eth = decodeArp(V.arpEthernet);
  t.equal(eth.htype, 1, 'Ethernet ARP decodes too');
  t.equal(eth.sha.length, 6, 'hlen 6');
  t.notOk(isIpoibArp(eth), 'but an IPoIB interface would not take it');
  t.same(decodeArp(Buffer.concat([V.arpEthernet, Buffer.alloc(18)])), eth, 'Ethernet padding after the body is ignored');

  const odd: Arp = {
    htype: 0xabcd, ptype: 0x86dd, op: 0x99,
    sha: hex('010203'), spa: hex('0a0b'), tha: hex('040506'), tpa: hex('0c0d'),
  };
  roundTrip(t, arp, odd, 'ARP with unknown htype/op and odd lengths');
  roundTrip(t, arp, req, 'IPoIB ARP request');
  roundTrip(t, arp, { ...odd, sha: Buffer.alloc(0), tha: Buffer.alloc(0), spa: Buffer.alloc(0), tpa: Buffer.alloc(0) },
    'zero-length addresses');

  throwsWire(t, () => decodeArp(V.arpRequest.subarray(0, 7)), 'TRUNCATED', 'header');
  throwsWire(t, () => decodeArp(V.arpRequest.subarray(0, 20)), 'TRUNCATED', 'sha');
  throwsWire(t, () => decodeArp(V.arpRequest.subarray(0, 30)), 'TRUNCATED', 'spa');
  throwsWire(t, () => decodeArp(V.arpRequest.subarray(0, 40)), 'TRUNCATED', 'tha');
  throwsWire(t, () => decodeArp(V.arpRequest.subarray(0, 55)), 'TRUNCATED', 'tpa');
  const long = Buffer.from(V.arpRequest);
  long[4] = 255; // hlen 255 in a 56-byte packet
  throwsWire(t, () => decodeArp(long), 'TRUNCATED', 'sha');
  throwsWire(t, () => encodeArp({ ...req, tha: Buffer.alloc(6) }), 'INVALID_RECORD', 'tha');
  throwsWire(t, () => encodeArp({ ...req, tpa: Buffer.alloc(16) }), 'INVALID_RECORD', 'tpa');
  throwsWire(t, () => encodeArp({ ...req, sha: Buffer.alloc(256), tha: Buffer.alloc(256) }), 'INVALID_RECORD', 'hlen');
  fuzzDecode(t, arp, V.arpRequest);
});

t.test('IPv4 (scapy vectors)', async (t) => {
  const ip = decodeIpv4(V.dhcpDiscoverIp);
  t.equal(ip.src, 0, 'src 0.0.0.0');
  t.equal(ip.dst, 0xffffffff, 'dst 255.255.255.255');
  t.equal(formatIpv4(ip.dst), '255.255.255.255', 'formatted');
  t.equal(ip.ttl, 64, 'ttl');
  t.equal(ip.protocol, IP_PROTO_UDP, 'UDP');
  t.equal(ip.flags, 0, 'no flags');
  t.equal(ip.payload.length, V.dhcpDiscoverIp.length - 20, 'payload = total length - 20');
  t.ok(ip.payload.buffer === V.dhcpDiscoverIp.buffer && ip.payload.byteOffset === V.dhcpDiscoverIp.byteOffset + 20,
    'payload is a view into the received buffer');
  t.same(encodeIpv4(ip), V.dhcpDiscoverIp, 'encode reproduces scapy, checksum included');

  const echo = decodeIpv4(V.icmpEchoRequestIp);
  t.equal(echo.flags, IPV4_FLAG_DF, 'DF');
  t.equal(echo.id, 0x1c46, 'id');
  t.equal(formatIpv4(echo.src), '10.0.0.1', 'src');
  t.equal(echo.protocol, IP_PROTO_ICMP, 'ICMP');

  const opt = decodeIpv4(V.ipOptionsUdp);
  t.same(opt.options, hex('94040000'), 'IHL 6: the Router Alert option (RFC 2113)');
  t.equal(opt.ttl, 1, 'ttl 1');
  t.same(encodeIpv4(opt), V.ipOptionsUdp, 'options re-encoded with IHL and checksum');

  const frag = decodeIpv4(V.ipFragment);
  t.equal(frag.flags, IPV4_FLAG_MF, 'MF');
  t.equal(frag.fragOffset, 185, 'fragment offset in 8-byte units');
  t.same(encodeIpv4(frag), V.ipFragment, 'fragment re-encoded');

  // The send path: payload already in place, only the header written around it.
  const buf = Buffer.alloc(V.dhcpDiscoverIp.length);
  V.dhcpDiscoverIp.copy(buf, 20, 20);
  const { payload: _p, ...header } = ip;
  encodeIpv4Header(header, ip.payload.length, buf, 0);
  t.same(buf, V.dhcpDiscoverIp, 'encodeIpv4Header writes the scapy header in front of an in-place payload');

  t.same(decodeIpv4(Buffer.concat([V.ipFragment, Buffer.alloc(10, 0xee)])), frag, 'bytes after total length are ignored');
  roundTrip(t, ipv4, ip, 'IPv4/UDP/DHCP');
  roundTrip(t, ipv4, opt, 'IPv4 with options');
  const maxOpts: Ipv4 = { ...frag, options: Buffer.alloc(40, 1), payload: Buffer.alloc(0) };
  roundTrip(t, ipv4, maxOpts, 'IHL 15, empty payload');

  // Hostile input.
  const badSum = Buffer.from(V.icmpEchoRequestIp);
  badSum[8] = 63; // ttl changed, checksum not
  throwsWire(t, () => decodeIpv4(badSum), 'BAD_CHECKSUM', 'checksum');
  const ihl4 = Buffer.from(V.icmpEchoRequestIp);
  ihl4[0] = 0x44;
  throwsWire(t, () => decodeIpv4(ihl4), 'BAD_VALUE', 'ihl');
  const v6 = Buffer.from(V.icmpEchoRequestIp);
  v6[0] = 0x65;
  throwsWire(t, () => decodeIpv4(v6), 'BAD_VALUE', 'version');
  throwsWire(t, () => decodeIpv4(V.icmpEchoRequestIp.subarray(0, V.icmpEchoRequestIp.length - 1)),
    'BAD_LENGTH', 'totalLength', 'total length > bytes present');
  const shortTotal = Buffer.from(V.ipOptionsUdp);
  shortTotal.writeUInt16BE(22, 2); // below the 24-byte header
  throwsWire(t, () => decodeIpv4(shortTotal), 'BAD_LENGTH', 'totalLength', 'total length < header length');
  throwsWire(t, () => decodeIpv4(V.ipOptionsUdp.subarray(0, 22)), 'TRUNCATED', 'options');
  throwsWire(t, () => decodeIpv4(V.ipFragment.subarray(0, 19)), 'TRUNCATED', 'header');
  throwsWire(t, () => decodeIpv4(Buffer.alloc(0)), 'TRUNCATED', 'header');
  throwsWire(t, () => encodeIpv4({ ...frag, options: Buffer.alloc(3) }), 'INVALID_RECORD', 'options');
  throwsWire(t, () => encodeIpv4({ ...frag, options: Buffer.alloc(44) }), 'INVALID_RECORD', 'options');
  throwsWire(t, () => encodeIpv4({ ...frag, payload: Buffer.alloc(65516) }), 'INVALID_RECORD', 'totalLength');
  throwsWire(t, () => encodeIpv4({ ...frag, fragOffset: 0x2000 }), 'INVALID_RECORD', 'fragOffset');
  fuzzDecode(t, ipv4, V.icmpEchoRequestIp);
  fuzzDecode(t, ipv4, V.ipOptionsUdp);

  t.equal(parseIpv4('10.0.0.1'), 0x0a000001, 'parse');
  t.equal(parseIpv4('255.255.255.255'), 0xffffffff, 'parse broadcast as an unsigned number');
  for (const bad of ['10.0.0', '10.0.0.1.2', '256.0.0.1', '010.0.0.1', '10.0.0.-1', '', 'a.b.c.d', '1e1.0.0.1']) {
    throwsWire(t, () => parseIpv4(bad), 'BAD_VALUE', 'address', `rejects ${JSON.stringify(bad)}`);
  }
});

t.test('UDP (scapy vectors)', async (t) => {
  const ip = decodeIpv4(V.dhcpDiscoverIp);
  const pseudo = { src: ip.src, dst: ip.dst };
  const u = decodeUdp(ip.payload, 0, pseudo);
  t.equal(u.srcPort, 68, 'client port');
  t.equal(u.dstPort, 67, 'server port');
  t.notOk(u.noChecksum, 'scapy sent a checksum');
  t.same(u.payload, V.dhcpDiscoverBootp, 'payload is the BOOTP message');
  t.same(encodeUdp(u, pseudo), ip.payload, 'encode reproduces scapy, pseudo-header checksum included');

  // In place: payload already after the 8-byte header.
  const buf = Buffer.alloc(ip.payload.length);
  V.dhcpDiscoverBootp.copy(buf, 8);
  encodeUdpHeader(68, 67, V.dhcpDiscoverBootp.length, pseudo, buf, 0);
  t.same(buf, ip.payload, 'encodeUdpHeader checksums an in-place payload');

  // RFC 768: a computed 0 is sent as 0xFFFF (scapy picked the payload that sums to it).
  const zip = decodeIpv4(V.udpZeroSumIp);
  const zpseudo = { src: zip.src, dst: zip.dst };
  t.equal(zip.payload.readUInt16BE(6), 0xffff, 'scapy sent 0xffff');
  const z = decodeUdp(zip.payload, 0, zpseudo);
  t.notOk(z.noChecksum, '0xffff is a checksum, not "none"');
  t.same(encodeUdp(z, zpseudo), zip.payload, 'our encoder also sends 0xffff');

  const nip = decodeIpv4(V.udpNoChecksumIp);
  const n = decodeUdp(nip.payload, 0, { src: 1, dst: 2 });
  t.equal(n.noChecksum, true, 'checksum 0: none, and not verified (even with a wrong pseudo-header)');
  t.same(encodeUdp(n, { src: nip.src, dst: nip.dst }), nip.payload, 'encodes 0 again');

  const codec = udpCodec(pseudo);
  roundTrip(t, codec, u, 'UDP/DHCP');
  roundTrip(t, udpCodec(zpseudo), z, 'UDP with a 0xffff checksum');
  const empty: Udp = { srcPort: 1, dstPort: 2, payload: Buffer.alloc(0) };
  roundTrip(t, codec, empty, 'empty UDP');
  roundTrip(t, codec, { srcPort: 7, dstPort: 9, noChecksum: true, payload: hex('01') }, 'no checksum, odd length');

  // Hostile input.
  const bad = Buffer.from(ip.payload);
  bad[100] = (bad[100]! + 1) & 0xff;
  throwsWire(t, () => decodeUdp(bad, 0, pseudo), 'BAD_CHECKSUM', 'checksum');
  throwsWire(t, () => decodeUdp(ip.payload, 0, { src: ip.src, dst: 0x0a0000ff }), 'BAD_CHECKSUM', 'checksum',
    'the pseudo-header is covered');
  throwsWire(t, () => decodeUdp(ip.payload.subarray(0, ip.payload.length - 1), 0, pseudo), 'BAD_LENGTH', 'length',
    'UDP length > bytes');
  const tiny = Buffer.from(nip.payload);
  tiny.writeUInt16BE(7, 4);
  throwsWire(t, () => decodeUdp(tiny, 0, pseudo), 'BAD_LENGTH', 'length', 'UDP length < 8');
  throwsWire(t, () => decodeUdp(ip.payload.subarray(0, 7), 0, pseudo), 'TRUNCATED', 'header');
  // A UDP length shorter than the IP payload trims it (Linux __udp4_lib_rcv()); the checksum covers the UDP length.
  const padded = Buffer.concat([ip.payload, hex('deadbeef')]);
  t.same(decodeUdp(padded, 0, pseudo), u, 'bytes after the UDP length are ignored');
  throwsWire(t, () => encodeUdp({ ...u, srcPort: 70000 }, pseudo), 'INVALID_RECORD', 'srcPort');
  throwsWire(t, () => encodeUdp({ ...u, payload: Buffer.alloc(65528) }, pseudo), 'INVALID_RECORD', 'length');
  fuzzDecode(t, codec, ip.payload);
});

t.test('ICMP (scapy vectors)', async (t) => {
  const reqIp = decodeIpv4(V.icmpEchoRequestIp);
  const req = decodeIcmp(reqIp.payload);
  t.equal(req.kind, 'echo', 'echo');
  if (req.kind === 'echo') {
    t.equal(req.type, ICMP_ECHO_REQUEST, 'request');
    t.equal(req.id, 0x1234, 'id');
    t.equal(req.seq, 1, 'seq');
    t.equal(req.data.length, 56, '56 data bytes');
  }
  t.same(encodeIcmp(req), reqIp.payload, 'encode reproduces scapy');
  const repIp = decodeIpv4(V.icmpEchoReplyIp);
  const rep = decodeIcmp(repIp.payload);
  t.same(rep, { ...req, type: ICMP_ECHO_REPLY }, 'reply mirrors the request');
  t.same(encodeIcmp(rep), repIp.payload, 'reply re-encoded');

  const fnIp = decodeIpv4(V.icmpFragNeededIp);
  const fn = decodeIcmp(fnIp.payload);
  t.equal(fn.kind, 'unreachable', 'destination unreachable');
  if (fn.kind === 'unreachable') {
    t.equal(fn.code, ICMP_CODE_FRAG_NEEDED, 'code 4');
    t.equal(fn.nextHopMtu, 2044, 'next-hop MTU 2044 (RFC 1191)');
    t.equal(fn.original.length, 28, 'quoted IP header + 8 bytes');
    t.equal(fn.original.readUInt16BE(2), 3028, 'quoted datagram was 3028 bytes');
  }
  t.same(encodeIcmp(fn), fnIp.payload, 'encode reproduces scapy');
  // Rebuilding it from the offending datagram as a sender would: header + first 8 bytes quoted.
  const offending = Buffer.concat([fnIp.payload.subarray(8), Buffer.alloc(3000, 0xab)]);
  t.same(encodeIcmp(fragmentationNeeded(offending, 2044)), fnIp.payload, 'fragmentationNeeded() matches scapy');
  throwsWire(t, () => fragmentationNeeded(offending.subarray(0, 10), 2044), 'TRUNCATED', 'original');

  const teIp = decodeIpv4(V.icmpTimeExceededIp);
  const te = decodeIcmp(teIp.payload);
  t.same(te.kind === 'raw' ? [te.type, te.code, te.rest.length] : [], [11, 0, 32], 'time exceeded kept raw');
  t.same(encodeIcmp(te), teIp.payload, 'raw type re-encoded byte for byte');

  // ICMP has no length field: the Codec decodes to the end of the buffer, so the round trip at
  // an offset inside a larger buffer gives decode the message length, as the IP layer would.
  const bounded = (m: Icmp): Codec<Icmp> => ({ ...icmp, decode: (b, o = 0) => decodeIcmp(b, o, icmp.encodedLength(m)) });
  for (const m of [req, rep, fn, te]) roundTrip(t, bounded(m), m, `ICMP ${m.kind}`);
  const oddEcho: Icmp = { kind: 'echo', type: ICMP_ECHO_REQUEST, code: 0, id: 1, seq: 2, data: hex('010203') };
  roundTrip(t, bounded(oddEcho), oddEcho, 'odd-length echo');
  t.same(icmp.decode(encodeIcmp(oddEcho)), oddEcho, 'the plain codec decodes a whole buffer');

  const bad = Buffer.from(reqIp.payload);
  bad[20] = (bad[20]! + 1) & 0xff;
  throwsWire(t, () => decodeIcmp(bad), 'BAD_CHECKSUM', 'checksum');
  throwsWire(t, () => decodeIcmp(reqIp.payload.subarray(0, 7)), 'TRUNCATED', 'header');
  throwsWire(t, () => decodeIcmp(reqIp.payload, 0, 4), 'TRUNCATED', 'header');
  throwsWire(t, () => decodeIcmp(reqIp.payload, 0, 100), 'TRUNCATED', 'data');
  throwsWire(t, () => encodeIcmp({ kind: 'raw', type: 8, code: 0, rest: Buffer.alloc(4) }), 'INVALID_RECORD', 'type');
  throwsWire(t, () => encodeIcmp({ kind: 'raw', type: 13, code: 0, rest: Buffer.alloc(3) }), 'INVALID_RECORD', 'rest');
  throwsWire(t, () => encodeIcmp({ ...oddEcho, id: 0x10000 }), 'INVALID_RECORD', 'id');
  throwsWire(t, () => encodeIcmp({ ...oddEcho, type: 3 } as unknown as Icmp), 'INVALID_RECORD', 'type');
  throwsWire(t, () => encodeIcmp(oddEcho, Buffer.alloc(12), 2), 'BUFFER_TOO_SMALL', 'buffer');
  fuzzDecode(t, icmp, reqIp.payload);
  fuzzDecode(t, icmp, fnIp.payload);
});
