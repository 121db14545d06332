// pcap writers of link/wire/pcap.ts, checked byte by byte against pcap-savefile(5) and
// test/vectors/pcap_frames.py, then end to end: the test writes capture files to a temp dir and
// tshark (the independent oracle of IPOIB-FACTS §6) must decode every frame without errors.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as H from './helpers/codec.js';
import {
  decodeIpoibPseudoHeader, encodeIpoibPseudoHeader, IPOIB_PSEUDO_HEADER_LENGTH, ipoibPseudoHeader, LINKTYPE_INFINIBAND,
  LINKTYPE_IPOIB, LINKTYPE_USER0, PCAP_DEFAULT_SNAPLEN, PcapWriter, TSHARK_USER0_INFINIBAND_ARGS,
  type IpoibPseudoHeader,
} from '../link/wire/pcap.js';
import { encodeIpoibHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../link/wire/ipoib-header.js';
import {
  decodeIpoibHwAddress, ipoibBroadcastAddress, ipoibHwAddress, parseIpoibHwAddress, type IpoibHwAddress,
} from '../link/wire/ipoib-hw-address.js';
import { ARP_HTYPE_INFINIBAND, ARP_OP_REPLY, ARP_OP_REQUEST, ARP_PTYPE_IPV4, decodeArp, encodeArp } from '../link/wire/arp.js';
import { decodeIpv4, encodeIpv4, encodeIpv4Header, IP_PROTO_ICMP, IP_PROTO_UDP, IPV4_FLAG_DF, parseIpv4 } from '../link/wire/ipv4.js';
import { encodeUdpHeader, UDP_HEADER_LENGTH } from '../link/wire/udp.js';
import { encodeIcmp, fragmentationNeeded, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST } from '../link/wire/icmp.js';

import { IP_VECTORS } from './vectors/ip-layers.js';

const { roundTrip, fuzzDecode, throwsWire } = H;
const hex = H.hex;

const IP = IP_VECTORS;

// Output of `/usr/bin/python3 test/vectors/pcap_frames.py` (struct; layouts IPOIB-FACTS §1.2-1.6, §6.1).
const F = {
  ibArpRequest: hex(`
    0003c000002100016000000000541b00fe800000000000000002c90300000001ff12401bffff000000000000ffffffff
    6400ffff00ffffff0000000000000b1b0000004808060000002008001404000180000048fe800000000000000002c903
    000000010a00000100000000000000000000000000000000000000000a000002000000000000
  `),
  ibArpReply: hex(`
    00020001001700026400ffff000000480000000000000b1b0000004908060000002008001404000280000049fe800000
    000000000002c903000000020a00000280000048fe800000000000000002c903000000010a000001000000000000
  `),
  ibDhcpDiscover: hex(`
    0003c000005f000160000000014c1b00fe800000000000000002c90300000001ff12401bffff000000000000ffffffff
    6410ffff00ffffff0000000100000b1b00000048080000004500012f00000000401179bf00000000ffffffff00440043
    011b12b8012000003903f326000080000000000000000000000000000000000000000000000000000000000000000000
    000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
    000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
    000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
    000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
    638253633501013d14ff000000000002000002c9000002c9030000000137070103060c0f1c2aff00000000000000
  `),
  ibIcmpEcho: hex(`
    00020002001e00016400ffff000000490000000200000b1b0000004808000000450000541c46400040010a610a000001
    0a00000208002cf612340001101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233
    3435363738393a3b3c3d3e3f4041424344454647000000000000
  `),
  pseudoGrhClientBcast: hex('6000000000000048fe800000000000000002c90300000001ff12401bffff000000000000ffffffff'),
  pseudoGrhFlow: hex('6a5bcdef00123456fe800000000000000002c90300000002ff12401bffff000000000000ffffffff'),
  pseudoUnicastToClient: hex('000000000000000000000000000000000000000080000048fe800000000000000002c90300000001'),
};

const CLIENT = parseIpoibHwAddress('80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01');
const SERVER = parseIpoibHwAddress('80:00:00:49:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:02');
const BCAST = ipoibBroadcastAddress(0xffff);
const CLIENT_IP = parseIpv4('10.0.0.1');
const SERVER_IP = parseIpv4('10.0.0.2');
const T0 = 1_700_000_000_000_000; // µs

const fromClientToGroup: IpoibPseudoHeader = { kind: 'grh', tclass: 0, flowLabel: 0, srcQpn: CLIENT.qpn, sgid: CLIENT.gid, dgid: BCAST.gid };
const toClient: IpoibPseudoHeader = { kind: 'unicast', dest: CLIENT };
const toServer: IpoibPseudoHeader = { kind: 'unicast', dest: SERVER };

t.test('pcap file and record headers (pcap-savefile(5))', async (t) => {
  const w = new PcapWriter(LINKTYPE_IPOIB);
  // magic a1b2c3d4 little-endian, version 2.4, thiszone 0, sigfigs 0, snaplen 262144, linktype 242.
  t.same(w.fileHeader(), hex('d4c3b2a1 0200 0400 00000000 00000000 00000400 f2000000'), 'global header');
  t.equal(new PcapWriter(LINKTYPE_USER0).fileHeader().readUInt32LE(20), 147, 'DLT_USER0 147');
  t.equal(new PcapWriter(LINKTYPE_INFINIBAND).fileHeader().readUInt32LE(20), 247, 'LINKTYPE_INFINIBAND 247');
  t.equal(PCAP_DEFAULT_SNAPLEN, 262144, 'default snaplen holds a 65520-byte connected-mode datagram');

  // ts_sec, ts_usec, incl_len, orig_len, then the parts back to back.
  t.same(w.record(T0 + 123456, hex('0102'), hex('03')),
    hex('00f15365 40e20100 03000000 03000000 010203'), 'record header + concatenated parts');
  t.same(w.record(0), hex('00000000 00000000 00000000 00000000'), 'empty record at the epoch');

  const cut = new PcapWriter(LINKTYPE_IPOIB, 65535).record(T0, Buffer.alloc(60000, 1), Buffer.alloc(10000, 2));
  t.equal(cut.length, 16 + 65535, 'cut at snaplen');
  t.equal(cut.readUInt32LE(8), 65535, 'incl_len = snaplen');
  t.equal(cut.readUInt32LE(12), 70000, 'orig_len = the full length');
  t.equal(cut[16 + 60000], 2, 'the second part follows the first');

  throwsWire(t, () => w.record(-1), 'INVALID_RECORD', 'timestamp');
  throwsWire(t, () => w.record(1.5), 'INVALID_RECORD', 'timestamp');
  throwsWire(t, () => w.record(2 ** 32 * 1e6), 'INVALID_RECORD', 'timestamp');
  throwsWire(t, () => new PcapWriter(LINKTYPE_IPOIB, 1500), 'INVALID_RECORD', 'snaplen');

  t.same([...TSHARK_USER0_INFINIBAND_ARGS], ['-o', 'uat:user_dlts:"User 0 (DLT=147)","infiniband","0","","0",""'],
    'the tshark 4.0 user_dlts argument (IPOIB-FACTS §6.2)');
  t.ok(Object.isFrozen(TSHARK_USER0_INFINIBAND_ARGS), 'one shared, frozen copy');
});

t.test('LINKTYPE_IPOIB pseudo header (IPOIB-FACTS §6.1)', async (t) => {
  t.same(encodeIpoibPseudoHeader(fromClientToGroup), F.pseudoGrhClientBcast, 'GRH form: source QPN in bytes 4-7');
  const flow: IpoibPseudoHeader = {
    kind: 'grh', tclass: 0xa5, flowLabel: 0xbcdef, srcQpn: 0x123456, sgid: SERVER.gid, dgid: BCAST.gid,
  };
  t.same(encodeIpoibPseudoHeader(flow), F.pseudoGrhFlow, 'GRH form with traffic class and flow label');
  t.same(encodeIpoibPseudoHeader(toClient), F.pseudoUnicastToClient, 'unicast form: 20 zeros, then the destination');
  t.same(decodeIpoibPseudoHeader(F.pseudoGrhFlow), flow, 'GRH form decodes');
  t.same(decodeIpoibPseudoHeader(F.pseudoUnicastToClient), toClient, 'unicast form decodes');
  roundTrip(t, ipoibPseudoHeader, fromClientToGroup, 'pseudo GRH');
  roundTrip(t, ipoibPseudoHeader, flow, 'pseudo GRH with flow');
  roundTrip(t, ipoibPseudoHeader, toServer, 'pseudo unicast');
  throwsWire(t, () => decodeIpoibPseudoHeader(F.pseudoGrhFlow.subarray(0, 39)), 'TRUNCATED', 'pseudoHeader');
  throwsWire(t, () => encodeIpoibPseudoHeader({ ...flow, srcQpn: 0x1000000 }), 'INVALID_RECORD', 'srcQpn');
  throwsWire(t, () => encodeIpoibPseudoHeader({ ...flow, sgid: Buffer.alloc(8) }), 'INVALID_RECORD', 'sgid');
  throwsWire(t, () => encodeIpoibPseudoHeader(toClient, Buffer.alloc(39)), 'BUFFER_TOO_SMALL', 'buffer');
  fuzzDecode(t, ipoibPseudoHeader, F.pseudoGrhFlow);
  const w = new PcapWriter(LINKTYPE_IPOIB);
  const rec = w.ipoibRecord(T0, toClient, hex('0806 0000'));
  t.same(rec.subarray(16), Buffer.concat([F.pseudoUnicastToClient, hex('0806 0000')]), 'ipoibRecord = pseudo ‖ packet');
  t.equal(rec.readUInt32LE(8), IPOIB_PSEUDO_HEADER_LENGTH + 4, 'record length counts the pseudo header');
});

// ---- tshark ---------------------------------------------------------------------------------------

const TSHARK = process.env['TSHARK'] ?? 'tshark';
const FIELDS = [
  'frame.protocols', '_ws.expert', '_ws.expert.severity', '_ws.malformed', 'frame.time_epoch',
  'ipoib.grh.sqpn', 'ipoib.grh.sgid', 'ipoib.grh.tclass', 'ipoib.grh.flowlabel', 'ipoib.daddr.qpn', 'ipoib.dgid',
  'ipoib.type', 'arp.opcode', 'arp.src.hw', 'arp.dst.hw', 'ip.checksum.status', 'udp.checksum.status',
  'icmp.checksum.status', 'icmp.type', 'icmp.ident', 'icmp.mtu', 'dhcp.option.dhcp', 'dhcp.hw.type', 'dhcp.hw.len',
  'dhcp.flags.bc', 'dhcp.client_id.enterprise_num', 'infiniband.lrh.pktlen', 'infiniband.bth.destqp',
  'infiniband.deth.srcqp', 'infiniband.grh.dgid',
] as const;
type Row = Record<(typeof FIELDS)[number], string>;
// Wireshark's expert severities (epan/proto.h PI_WARN); Note and Chat are informational.
const PI_WARN = 0x00600000;

/** Runs tshark on file; undefined when tshark is absent and SKIP_TSHARK=1 allows that. */
function tshark(t: Test, file: string, extra: readonly string[] = []): Row[] | undefined {
  const args = [
    ...extra, '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-r', file, '-T', 'fields',
    '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,', ...FIELDS.flatMap((f) => ['-e', f]),
  ];
  const r = spawnSync(TSHARK, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    if (process.env['SKIP_TSHARK'] === '1') {
      t.pass('tshark checks', { skip: 'tshark not found and SKIP_TSHARK=1' });
      return undefined;
    }
    t.fail(`tshark not found (${TSHARK}): install Debian's tshark package, or set SKIP_TSHARK=1 to skip this check`);
    return undefined;
  }
  t.equal(r.error, undefined, `tshark ran within 60 s (${String(r.error)})`);
  t.equal(r.status, 0, `tshark exit status 0 (stderr: ${r.stderr.trim()})`);
  return r.stdout.trimEnd().split('\n').map((line) => {
    const cols = line.split('\t');
    return Object.fromEntries(FIELDS.map((f, i) => [f, cols[i] ?? ''])) as Row;
  });
}

function noErrors(t: Test, rows: Row[]): void {
  rows.forEach((r, i) => {
    t.equal(r['_ws.malformed'], '', `frame ${i + 1}: not malformed`);
    const worst = Math.max(0, ...r['_ws.expert.severity'].split(',').filter(Boolean).map(Number));
    t.ok(worst < PI_WARN, `frame ${i + 1}: no expert warning or error (${r['_ws.expert'] || 'none'})`);
  });
}

function pcapFile(writer: PcapWriter, records: Buffer[]): Buffer {
  return Buffer.concat([writer.fileHeader(), ...records]);
}

const tmp = mkdtempSync(join(tmpdir(), 'link-wire-pcap-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('LINKTYPE_IPOIB capture built by our encoders decodes in tshark', async (t) => {
  const ipoib = (type: number, packet: Buffer): Buffer => Buffer.concat([encodeIpoibHeader({ type, reserved: 0 }), packet]);
  const hw = (a: IpoibHwAddress): Buffer => ipoibHwAddress.encode(a);
  const ip4 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };

  // ARP over IPoIB (RFC 4391 §4.2): request to the broadcast group, unicast reply.
  const arpReq = encodeArp({ htype: ARP_HTYPE_INFINIBAND, ptype: ARP_PTYPE_IPV4, op: ARP_OP_REQUEST,
    sha: hw(CLIENT), spa: ip4(CLIENT_IP), tha: Buffer.alloc(20), tpa: ip4(SERVER_IP) });
  const arpRep = encodeArp({ htype: ARP_HTYPE_INFINIBAND, ptype: ARP_PTYPE_IPV4, op: ARP_OP_REPLY,
    sha: hw(SERVER), spa: ip4(SERVER_IP), tha: hw(CLIENT), tpa: ip4(CLIENT_IP) });
  t.same(arpReq, IP.arpRequest, 'our ARP request equals scapy\'s');
  t.same(arpRep, IP.arpReply, 'our ARP reply equals scapy\'s');

  // IPOIB-FACTS §5.6: DISCOVER 0.0.0.0:68 -> 255.255.255.255:67 around scapy's BOOTP/DHCP bytes,
  // built in place as the send path does.
  const bootp = IP.dhcpDiscoverBootp;
  const dhcp = Buffer.alloc(20 + UDP_HEADER_LENGTH + bootp.length);
  bootp.copy(dhcp, 28);
  const pseudo = { src: 0, dst: 0xffffffff };
  encodeUdpHeader(68, 67, bootp.length, pseudo, dhcp, 20);
  encodeIpv4Header({ tos: 0, id: 0, flags: 0, fragOffset: 0, ttl: 64, protocol: IP_PROTO_UDP, ...pseudo,
    options: Buffer.alloc(0) }, UDP_HEADER_LENGTH + bootp.length, dhcp, 0);
  t.same(dhcp, IP.dhcpDiscoverIp, 'our IPv4/UDP around the DHCP payload equals scapy\'s');

  const echo = (type: typeof ICMP_ECHO_REQUEST | typeof ICMP_ECHO_REPLY, id: number, flags: number,
    src: number, dst: number): Buffer => {
    const data = Buffer.from(Array.from({ length: 56 }, (_, i) => 0x10 + i));
    const msg = encodeIcmp({ kind: 'echo', type, code: 0, id: 0x1234, seq: 1, data });
    return encodeIpv4({ tos: 0, id, flags, fragOffset: 0, ttl: 64, protocol: IP_PROTO_ICMP, src, dst,
      options: Buffer.alloc(0), payload: msg });
  };
  const echoReq = echo(ICMP_ECHO_REQUEST, 0x1c46, IPV4_FLAG_DF, CLIENT_IP, SERVER_IP);
  const echoRep = echo(ICMP_ECHO_REPLY, 0x5d2a, 0, SERVER_IP, CLIENT_IP);
  t.same(echoReq, IP.icmpEchoRequestIp, 'our echo request equals scapy\'s');
  t.same(echoRep, IP.icmpEchoReplyIp, 'our echo reply equals scapy\'s');
  const quoted = decodeIpv4(IP.icmpFragNeededIp).payload.subarray(8);
  const fragNeeded = encodeIpv4({ tos: 0, id: 0x0202, flags: 0, fragOffset: 0, ttl: 64, protocol: IP_PROTO_ICMP,
    src: SERVER_IP, dst: CLIENT_IP, options: Buffer.alloc(0),
    payload: encodeIcmp(fragmentationNeeded(quoted, 2044)) });
  t.same(fragNeeded, IP.icmpFragNeededIp, 'our frag-needed equals scapy\'s');

  const flow: IpoibPseudoHeader = { ...fromClientToGroup, tclass: 0xa5, flowLabel: 0xbcdef };
  const frames: [IpoibPseudoHeader, Buffer, string][] = [
    [fromClientToGroup, ipoib(ETHERTYPE_ARP, arpReq), 'ipoib:arp'],
    [toClient, ipoib(ETHERTYPE_ARP, arpRep), 'ipoib:arp'],
    [fromClientToGroup, ipoib(ETHERTYPE_IPV4, dhcp), 'ipoib:ip:udp:dhcp'],
    [toServer, ipoib(ETHERTYPE_IPV4, echoReq), 'ipoib:ip:icmp:data'],
    [toClient, ipoib(ETHERTYPE_IPV4, echoRep), 'ipoib:ip:icmp:data'],
    [toClient, ipoib(ETHERTYPE_IPV4, fragNeeded), 'ipoib:ip:icmp:ip:udp'],
    [flow, ipoib(ETHERTYPE_IPV4, dhcp), 'ipoib:ip:udp:dhcp'],
  ];
  const w = new PcapWriter(LINKTYPE_IPOIB);
  const file = join(tmp, 'ipoib-242.pcap');
  writeFileSync(file, pcapFile(w, frames.map(([p, pkt], i) => w.ipoibRecord(T0 + i * 1000, p, pkt))));
  const rows = tshark(t, file);
  if (rows === undefined) return;
  t.equal(rows.length, frames.length, 'one line per frame');
  t.same(rows.map((r) => r['frame.protocols']), frames.map((f) => f[2]), 'protocol stacks');
  noErrors(t, rows);
  t.same(rows.map((r) => r['frame.time_epoch']), frames.map((_, i) => `1700000000.00${i}000000`), 'microsecond timestamps');
  const [aReq, aRep, disc, eReq, eRep, fn, disc2] = rows as [Row, Row, Row, Row, Row, Row, Row];
  // GRH form: source QPN, SGID and DGID as Wireshark reads them.
  t.equal(aReq['ipoib.grh.sqpn'], '0x000048', 'pseudo GRH: source QPN');
  t.equal(aReq['ipoib.grh.sgid'], 'fe80::2:c903:0:1', 'pseudo GRH: SGID');
  t.equal(aReq['ipoib.dgid'], 'ff12:401b:ffff::ffff:ffff', 'pseudo GRH: DGID = IPv4 broadcast MGID');
  t.equal(disc2['ipoib.grh.tclass'], '165', 'pseudo GRH: traffic class 0xa5');
  t.equal(disc2['ipoib.grh.flowlabel'], '773615', 'pseudo GRH: flow label 0xbcdef');
  // Unicast form: the destination address.
  t.equal(aRep['ipoib.daddr.qpn'], '0x000048', 'pseudo unicast: destination QPN');
  t.equal(aRep['ipoib.dgid'], 'fe80::2:c903:0:1', 'pseudo unicast: destination GID');
  t.equal(eReq['ipoib.daddr.qpn'], '0x000049', 'to the server QPN');
  t.same([aReq['arp.opcode'], aRep['arp.opcode']], ['1', '2'], 'ARP opcodes');
  t.equal(aReq['arp.src.hw'], '80000048fe800000000000000002c90300000001', 'ARP sender: 20-byte address');
  t.equal(aRep['arp.dst.hw'], '80000048fe800000000000000002c90300000001', 'ARP reply target');
  t.equal(disc['dhcp.option.dhcp'], '1', 'DHCP DISCOVER');
  t.equal(disc['dhcp.hw.type'], '0x20', 'htype 32 (RFC 4390)');
  t.equal(disc['dhcp.hw.len'], '0', 'hlen 0 (RFC 4390)');
  t.equal(disc['dhcp.flags.bc'], '1', 'broadcast flag');
  t.equal(disc['dhcp.client_id.enterprise_num'], '713', 'option 61 in the Mellanox DUID-EN form');
  // Checksum validation was switched on: 1 = good (epan PROTO_CHECKSUM_E_GOOD).
  t.equal(disc['ip.checksum.status'], '1', 'IP checksum verified by tshark');
  t.equal(disc['udp.checksum.status'], '1', 'UDP checksum verified by tshark');
  t.equal(eReq['icmp.checksum.status'], '1', 'ICMP checksum verified by tshark');
  t.same([eReq['icmp.type'], eRep['icmp.type'], eReq['icmp.ident']], ['8', '0', '4660'], 'echo request/reply, id 0x1234');
  t.equal(fn['icmp.mtu'], '2044', 'frag-needed next-hop MTU');
});

t.test('raw InfiniBand frames under DLT_USER0 decode in tshark 4.0', async (t) => {
  const frames = [F.ibArpRequest, F.ibArpReply, F.ibDhcpDiscover, F.ibIcmpEcho];
  // Our decoders agree with the python-built frames: the IPoIB payload after LRH [GRH] BTH DETH.
  const payloadAt = (f: Buffer): number => ((f[1]! & 3) === 3 ? 8 + 40 : 8) + 12 + 8;
  t.same(decodeArp(F.ibArpRequest, payloadAt(F.ibArpRequest) + 4).sha, IP.arpRequest.subarray(8, 28), 'ARP inside the raw frame');
  t.same(decodeIpv4(F.ibDhcpDiscover, payloadAt(F.ibDhcpDiscover) + 4).payload.length, IP.dhcpDiscoverIp.length - 20,
    'IPv4 inside the raw frame (pad, ICRC and VCRC after it are ignored)');
  t.same(decodeIpoibHwAddress(IP.arpReply, 8), SERVER, 'reply sender inside');

  const w = new PcapWriter(LINKTYPE_USER0);
  const file = join(tmp, 'ib-user0.pcap');
  writeFileSync(file, pcapFile(w, frames.map((f, i) => w.record(T0 + i, f))));
  // The same bytes as LINKTYPE_INFINIBAND, for readers newer than tshark 4.0.
  const w247 = new PcapWriter(LINKTYPE_INFINIBAND);
  t.equal(pcapFile(w247, frames.map((f, i) => w247.record(T0 + i, f))).readUInt32LE(20), 247, '247 header');

  const rows = tshark(t, file, TSHARK_USER0_INFINIBAND_ARGS);
  if (rows === undefined) return;
  t.same(rows.map((r) => r['frame.protocols']), [
    'user_dlt:infiniband:ethertype:arp', 'user_dlt:infiniband:ethertype:arp',
    'user_dlt:infiniband:ethertype:ip:udp:dhcp', 'user_dlt:infiniband:ethertype:ip:icmp:data',
  ], 'LRH..VCRC dissected as InfiniBand with an EtherType-encapsulated (IPoIB) payload');
  noErrors(t, rows);
  t.same(rows.map((r) => r['infiniband.lrh.pktlen']), frames.map((f) => String((f.length - 2) / 4)),
    'PktLen covers LRH through ICRC, not the VCRC');
  t.same(rows.map((r) => r['infiniband.bth.destqp']), ['0xffffff', '0x000048', '0xffffff', '0x000049'], 'DestQP');
  t.same(rows.map((r) => r['infiniband.deth.srcqp']), ['0x00000048', '0x00000049', '0x00000048', '0x00000048'], 'SrcQP');
  t.equal(rows[2]!['infiniband.grh.dgid'], 'ff12:401b:ffff::ffff:ffff', 'DISCOVER to the broadcast MGID');
  t.equal(rows[2]!['dhcp.option.dhcp'], '1', 'DHCP DISCOVER inside the IB frame');
  t.equal(rows[1]!['arp.opcode'], '2', 'ARP reply inside the IB frame');
});
