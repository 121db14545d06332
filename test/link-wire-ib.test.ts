// InfiniBand transport headers and packets (link/wire/): LRH, GRH, BTH, DETH, ICRC/VCRC, the whole
// packet, the peek accessors, constants and addresses. IPOIB-FACTS §1, §3.3-3.4.
import t from 'tap';
import fc from 'fast-check';
import zlib from 'node:zlib';
import * as H from './helpers/codec.js';
import { WireError } from '../codec/wire-error.js';
import { decodeLrh, encodeLrh, lrh, type Lrh } from '../link/wire/lrh.js';
import { decodeGrh, encodeGrh, grh, type Grh } from '../link/wire/grh.js';
import { bth, decodeBth, encodeBth, type Bth } from '../link/wire/bth.js';
import { deth, type Deth } from '../link/wire/deth.js';
import { computeIcrc, computeVcrc, crc16Vcrc, crc32 } from '../link/wire/ib-crc.js';
import {
  bthOffset, decodeIbFrame, decodeIbPacket, encodeIbPacket, ibHeaderLength, ibPacket, ibPacketLength,
  isPlausibleIbFrame, peekDestQp, peekDlid, peekLnh, peekOpcode, peekPkey, peekPktLen, peekPsn, peekQkey,
  peekSl, peekSlid, peekSrcQp, peekVl, restampVcrc, type IbPacket,
} from '../link/wire/ib-packet.js';
import {
  bytesToMtu, gbpsToRate, isMulticastLid, isPrivilegedQkey, isUdOpcode, isUnicastLid, mtuAtMost, mtuToBytes,
  opcodeHasImmDt, pkeyBase, pkeyIsFull, pkeysMatch, rateToGbps, OPCODE_UD_SEND_ONLY,
  OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE, QKEY_IPOIB_BROADCAST, QKEY_QP1_WELL_KNOWN, QPN_MULTICAST,
} from '../link/wire/ib-constants.js';
import {
  formatGid, formatGuid, gidEquals, gidGuid, gidSubnetPrefix, ipoibBroadcastMgid, ipv4MulticastMgid,
  ipv6InterfaceId, ipv6MulticastMgid, isMgid, mgidPkey, mgidScope, mgidSignature, parseGid, parseGuid,
  portGid, readGuid, writeGuid,
} from '../link/wire/ib-address.js';
import { decodeLrhBthWithLayout } from '../bench/wire-ib.bench.js';

const { roundTrip, fuzzDecode, throwsWire } = H;
const hex = H.hex;

// Output of test/vectors/ib_headers.py (Python struct + zlib.crc32 + a bitwise CRC-16, built from the bit
// tables of IPOIB-FACTS §1.2-1.5 and the ICRC/VCRC rules written in link/wire/ib-crc.ts; not from this
// project's code). Re-run the script to regenerate.
const V = {
  ud_bcast_grh: hex(`
    0003c000001800036000000000301b00fe800000000000000002c90300000001ff12401bffff000000000000ffffffff
    6430ffff00ffffff0000000000000b1b0000004808000000404142434445464748494a4b4c4d4e4f50000000ba1aa9d7
    48c2`),
  ud_bcast_grh_variant: hex(`
    2003c000001800036a51234500301b40fe800000000000000002c90300000001ff12401bffff000000000000ffffffff
    6430ffffc0ffffff0000000000000b1b0000004808000000404142434445464748494a4b4c4d4e4f50000000ba1aa9d7
    2fcf`),
  ud_unicast: hex(`
    002200050010000364008001000000490000012300000b1b0000004808060000808182838485868788898a8b8c8d8e8f
    909192939495969798999a9ba9a6f26c84ff`),
  ud_unicast_variant: hex(`
    502200050010000364008001400000490000012300000b1b0000004808060000808182838485868788898a8b8c8d8e8f
    909192939495969798999a9ba9a6f26c37ae`),
  ud_unicast_bad_icrc: hex(`
    003200050010000364008001000000490000012300000b1b0000004808060000808182838485868788898a8b8c8d8e8f
    909192939495969798999a9ba9a6f26ca9f0`),
  ud_imm: hex(`
    00020007000b00036520ffff0000004a0000000500000b1b00000048deadbeef0800000001020000e201d06aa2f7`),
  rc_send_only: hex(`
    00020007000800030400ffff0000004b00000010080000004500001469fed52bb9cb`),
  ud_bcast_332: hex(`
    0003c000006500036000000001641b00fe800000000000000002c90300000001ff12401bffff000000000000ffffffff
    6400ffff00ffffff0000000000000b1b0000004808000000000102030405060708090a0b0c0d0e0f1011121314151617
    18191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041424344454647
    48494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071727374757677
    78797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7
    a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7
    d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0001020304050607
    08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637
    38393a3b3c3d3e3f404142434445464769b59174e299`),
  bad_lver: hex(`
    01020005001000036400ffff000000490000000000000b1b0000004808060000808182838485868788898a8b8c8d8e8f
    909192939495969798999a9b51039558c39e`),
  bad_nxthdr: hex(`
    0003c000001800036000000000301c00fe800000000000000002c90300000001ff12401bffff000000000000ffffffff
    6430ffff00ffffff0000000000000b1b0000004808000000404142434445464748494a4b4c4d4e4f500000008272534a
    66ff`),
  bad_ipver: hex(`
    0003c000001800034000000000301b00fe800000000000000002c90300000001ff12401bffff000000000000ffffffff
    6430ffff00ffffff0000000000000b1b0000004808000000404142434445464748494a4b4c4d4e4f500000009522024c
    e6f1`),
  bad_tver: hex(`
    00020005001000036401ffff000000490000000000000b1b0000004808060000808182838485868788898a8b8c8d8e8f
    909192939495969798999a9b4d7e7858ef03`),
  bad_padcnt: hex(`
    00020007000600030430ffff0000004b000000009d86fceadc89`),
  ud_without_deth: hex(`
    00020007000600036400ffff0000004b0000000089a1c4eae2c9`),
};

const SGID = hex('fe80 0000 0000 0000 0002 c903 0000 0001');
const BCAST_MGID = hex('ff12 401b ffff 0000 0000 0000 ffff ffff');
const IPOIB_PAYLOAD = Buffer.concat([hex('08000000'), Buffer.from(Array.from({ length: 17 }, (_, i) => 0x40 + i))]);
const ARP_PAYLOAD = Buffer.concat([hex('08060000'), Buffer.from(Array.from({ length: 28 }, (_, i) => 0x80 + i))]);

const lrhOf = (p: Partial<IbPacket['lrh']>): IbPacket['lrh'] => ({ vl: 0, sl: 0, resv2: 0, dlid: 0, resv5: 0, slid: 3, ...p });
const bthOf = (p: Partial<IbPacket['bth']>): IbPacket['bth'] => ({
  opcode: OPCODE_UD_SEND_ONLY, se: false, migReq: false, pkey: 0xffff, fecn: false, becn: false, resv6: 0,
  destQp: 0, ackReq: false, resv7: 0, psn: 0, ...p,
});

// The records the Python script was given, field by field.
const A: IbPacket = {
  lrh: lrhOf({ dlid: 0xc000 }),
  grh: { tclass: 0, flowLabel: 0, hopLmt: 0, sgid: SGID, dgid: BCAST_MGID },
  bth: bthOf({ destQp: QPN_MULTICAST }),
  deth: { qkey: QKEY_IPOIB_BROADCAST, resv8: 0, srcQp: 0x48 },
  payload: IPOIB_PAYLOAD,
};
const B: IbPacket = {
  lrh: lrhOf({ sl: 2, dlid: 0x0005 }),
  bth: bthOf({ pkey: 0x8001, destQp: 0x49, psn: 0x123 }),
  deth: { qkey: 0x0b1b, resv8: 0, srcQp: 0x48 },
  payload: ARP_PAYLOAD,
};
const C: IbPacket = {
  lrh: lrhOf({ dlid: 0x0007 }),
  bth: bthOf({ opcode: OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE, destQp: 0x4a, psn: 5 }),
  deth: { qkey: 0x0b1b, resv8: 0, srcQp: 0x48 },
  immDt: 0xdeadbeef,
  payload: hex('080000000102'),
};
const D: IbPacket = {
  lrh: lrhOf({ dlid: 0x0007 }),
  bth: bthOf({ opcode: 0x04, destQp: 0x4b, psn: 0x10 }),
  payload: hex('08000000 45000014'),
};
const E: IbPacket = {
  ...A,
  payload: Buffer.concat([hex('08000000'), Buffer.from(Array.from({ length: 328 }, (_, i) => i & 0xff))]),
};

t.test('constants: LIDs, opcodes, Q_Keys, MTU and rate enums (IPOIB-FACTS §1.4, §1.7, §1.9)', async (t) => {
  t.same([0, 1, 0xbfff, 0xc000, 0xfffe, 0xffff].map(isUnicastLid), [false, true, true, false, false, false]);
  t.same([0, 1, 0xbfff, 0xc000, 0xfffe, 0xffff].map(isMulticastLid), [false, false, false, true, true, false]);
  t.equal(OPCODE_UD_SEND_ONLY, 0x64);
  t.equal(OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE, 0x65);
  t.same([0x04, 0x44, 0x60, 0x64, 0x7f, 0x80].map(isUdOpcode), [false, false, true, true, true, false]);
  t.same([0x65, 0x64, 0x05, 0x03, 0x09, 0x0b, 0x25, 0x45, 0x63].map(opcodeHasImmDt),
    [true, false, true, true, true, false, true, false, false], 'ImmDt only where it directly follows BTH/DETH');
  t.equal(QKEY_QP1_WELL_KNOWN, 0x80010000);
  t.ok(isPrivilegedQkey(QKEY_QP1_WELL_KNOWN));
  t.notOk(isPrivilegedQkey(0x0b1b));
  t.same([1, 2, 3, 4, 5].map(mtuToBytes), [256, 512, 1024, 2048, 4096]);
  t.same([0, 6, 15, 2.5].map(mtuToBytes), [undefined, undefined, undefined, undefined]);
  t.equal(bytesToMtu(2048), 4);
  t.equal(bytesToMtu(2044), undefined);
  t.equal(mtuAtMost(2044), 3, 'the IPoIB link MTU fits a 1024 IB MTU, not 2048');
  t.equal(mtuAtMost(100), undefined);
  t.same([2, 3, 5, 6, 7, 24].map(rateToGbps), [2.5, 10, 5, 20, 40, 1200]);
  t.equal(rateToGbps(0), undefined);
  t.equal(gbpsToRate(10), 3);
  t.equal(gbpsToRate(2.5), 2);
  t.equal(gbpsToRate(7), undefined);
});

t.test('pkeysMatch follows §1.8: same non-zero partition and at least one full member', async (t) => {
  const cases: [number, number, boolean, string][] = [
    [0xffff, 0xffff, true, 'full-full'],
    [0xffff, 0x7fff, true, 'full-limited'],
    [0x7fff, 0xffff, true, 'limited-full'],
    [0x7fff, 0x7fff, false, 'limited-limited'],
    [0x8001, 0x8002, false, 'different partitions'],
    [0x8001, 0x0001, true, 'partition 1, full-limited'],
    [0x8000, 0x8000, false, 'partition 0 (invalid) full-full'],
    [0x0000, 0x8000, false, 'partition 0 limited-full'],
  ];
  for (const [a, b, want, label] of cases) t.equal(pkeysMatch(a, b), want, `${label}: 0x${a.toString(16)} vs 0x${b.toString(16)}`);
  t.equal(pkeyBase(0x8001), 1);
  t.ok(pkeyIsFull(0x8001));
  t.notOk(pkeyIsFull(0x7fff));
});

t.test('LRH codec', async (t) => {
  const v: Lrh = { vl: 15, sl: 9, resv2: 2, lnh: 3, dlid: 0xc001, resv5: 0x15, pktLen: 0x7ff, slid: 0xbfff };
  const bytes = roundTrip(t, lrh, v);
  t.same(bytes, hex('f0 9b c001 afff bfff'), 'bit positions of §1.2, reserved bits kept');
  t.same(decodeLrh(V.ud_bcast_grh), { vl: 0, sl: 0, resv2: 0, lnh: 3, dlid: 0xc000, resv5: 0, pktLen: 24, slid: 3 });
  roundTrip(t, lrh, { vl: 0, sl: 0, resv2: 0, lnh: 2, dlid: 1, resv5: 0, pktLen: 0, slid: 0 });
  fuzzDecode(t, lrh, V.ud_unicast.subarray(0, 8));
  throwsWire(t, () => decodeLrh(V.bad_lver), 'BAD_VALUE', 'lver');
  throwsWire(t, () => decodeLrh(V.ud_unicast.subarray(0, 7)), 'TRUNCATED', 'lrh');
  throwsWire(t, () => encodeLrh({ ...v, pktLen: 0x800 }), 'INVALID_RECORD', 'pktLen');
  throwsWire(t, () => encodeLrh(v, Buffer.alloc(8), 1), 'BUFFER_TOO_SMALL');
});

t.test('GRH codec', async (t) => {
  const v: Grh = { tclass: 0xa5, flowLabel: 0x12345, payLen: 0x1234, nxtHdr: 0x1b, hopLmt: 0x40, sgid: SGID, dgid: BCAST_MGID };
  const bytes = roundTrip(t, grh, v);
  t.same(bytes.subarray(0, 8), hex('6a51 2345 1234 1b 40'), 'IPVer 6, TClass across the nibble boundary (§1.3)');
  const g = decodeGrh(V.ud_bcast_grh, 8);
  t.same(g, { tclass: 0, flowLabel: 0, payLen: 0x30, nxtHdr: 0x1b, hopLmt: 0, sgid: SGID, dgid: BCAST_MGID });
  t.equal(g.dgid.buffer, V.ud_bcast_grh.buffer, 'GIDs are views, not copies');
  fuzzDecode(t, grh, V.ud_bcast_grh.subarray(8, 48));
  throwsWire(t, () => decodeGrh(V.bad_ipver, 8), 'BAD_VALUE', 'ipVer');
  throwsWire(t, () => decodeGrh(V.ud_bcast_grh.subarray(0, 47), 8), 'TRUNCATED', 'grh');
  throwsWire(t, () => encodeGrh({ ...v, sgid: Buffer.alloc(15) }), 'INVALID_RECORD', 'sgid');
  throwsWire(t, () => encodeGrh({ ...v, flowLabel: 1 << 20 }), 'INVALID_RECORD', 'flowLabel');
});

t.test('BTH codec', async (t) => {
  const v: Bth = {
    opcode: 0xff, se: true, migReq: false, padCnt: 3, pkey: 0x7fff, fecn: true, becn: false, resv6: 0x2a,
    destQp: 0xabcdef, ackReq: true, resv7: 0x55, psn: 0xfedcba,
  };
  const bytes = roundTrip(t, bth, v);
  t.same(bytes, hex('ff b0 7fff aa abcdef d5 fedcba'), 'bit positions of §1.4, unknown opcode kept');
  t.same(decodeBth(V.ud_bcast_grh, 48), {
    opcode: 0x64, se: false, migReq: false, padCnt: 3, pkey: 0xffff, fecn: false, becn: false, resv6: 0,
    destQp: 0xffffff, ackReq: false, resv7: 0, psn: 0,
  });
  fuzzDecode(t, bth, V.ud_unicast.subarray(8, 20));
  throwsWire(t, () => decodeBth(V.bad_tver, 8), 'BAD_VALUE', 'tver');
  throwsWire(t, () => decodeBth(Buffer.alloc(11)), 'TRUNCATED', 'bth');
  throwsWire(t, () => encodeBth({ ...v, destQp: 0x1000000 }), 'INVALID_RECORD', 'destQp');
});

t.test('DETH codec', async (t) => {
  const v: Deth = { qkey: 0x80010000, resv8: 0x7e, srcQp: 1 };
  t.same(roundTrip(t, deth, v), hex('80010000 7e 000001'));
  t.same(deth.decode(V.ud_unicast, 20), { qkey: 0x0b1b, resv8: 0, srcQp: 0x48 });
  fuzzDecode(t, deth, V.ud_unicast.subarray(20, 28));
  throwsWire(t, () => deth.decode(Buffer.alloc(7)), 'TRUNCATED', 'deth');
  throwsWire(t, () => deth.encode({ ...v, qkey: 2 ** 32 }), 'INVALID_RECORD', 'qkey');
});

t.test('CRCs: check values and zlib agreement', async (t) => {
  const nine = Buffer.from('123456789');
  t.equal(crc32(nine), 0xcbf43926, 'CRC-32 check value (ib_headers.py check_crc32)');
  t.equal(crc16Vcrc(nine), 0x0a3d, 'VCRC polynomial check value from the bitwise Python CRC-16 (check_vcrc)');
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(300), (bytes, cut) => {
    const b = Buffer.from(bytes);
    const k = Math.min(cut, b.length);
    return crc32(b) === zlib.crc32(b) && crc32(b, k, b.length, crc32(b, 0, k)) === zlib.crc32(b);
  }), { numRuns: 300 });
  t.pass('crc32 equals zlib.crc32 on random inputs, whole and chained');
  const a = V.ud_bcast_grh;
  t.equal(computeIcrc(a, 0, a.length - 6), a.readUInt32LE(a.length - 6), 'ICRC of vector (a), global masking');
  t.equal(computeVcrc(a, 0, a.length - 2), a.readUInt16LE(a.length - 2), 'VCRC of vector (a)');
  const b = V.ud_unicast;
  t.equal(computeIcrc(b, 0, b.length - 6), b.readUInt32LE(b.length - 6), 'ICRC of vector (b), local masking');
  const inner = Buffer.concat([Buffer.alloc(5, 0xee), a, Buffer.alloc(3, 0xee)]);
  t.equal(computeIcrc(inner, 5, a.length - 6), a.readUInt32LE(a.length - 6), 'ICRC at an offset');
});

t.test('IB packet: encode gives the Python vectors byte for byte, decode gives the records', async (t) => {
  const cases: [string, IbPacket, Buffer][] = [
    ['(a) UD SEND_ONLY to the broadcast group, GRH', A, V.ud_bcast_grh],
    ['(b) unicast UD SEND_ONLY, LNH=2', B, V.ud_unicast],
    ['(c) UD SEND_ONLY_WITH_IMMEDIATE', C, V.ud_imm],
    ['(d) RC SEND_ONLY, no DETH', D, V.rc_send_only],
    ['(e) GRH + 332-byte payload', E, V.ud_bcast_332],
  ];
  for (const [label, rec, bytes] of cases) {
    t.same(encodeIbPacket(rec), bytes, `${label}: encode`);
    t.equal(ibPacketLength(rec), bytes.length, `${label}: length`);
    t.same(decodeIbFrame(bytes), rec, `${label}: decode`);
  }
  const e = decodeIbFrame(V.ud_bcast_332);
  t.equal(peekPktLen(V.ud_bcast_332), 101, '§1.2 worked example: PktLen 101');
  t.equal(V.ud_bcast_332.length, 406, '§1.2 worked example: 406-byte frame with VCRC');
  t.equal(e.payload.length, 332);
  t.equal(e.payload.buffer, V.ud_bcast_332.buffer, 'payload is a view into the frame');
  t.equal(V.ud_bcast_grh[49]! >>> 4 & 3, 3, '(a) PadCnt 3 for a 21-byte payload');
  t.equal(ibHeaderLength(A), 8 + 40 + 12 + 8);
});

t.test('IB packet: variant fields are outside the ICRC', async (t) => {
  const a = decodeIbFrame(V.ud_bcast_grh_variant);
  t.same(a.grh, { tclass: 0xa5, flowLabel: 0x12345, hopLmt: 0x40, sgid: SGID, dgid: BCAST_MGID });
  t.equal(a.lrh.vl, 2);
  t.ok(a.bth.fecn && a.bth.becn, 'FECN and BECN decoded');
  const b = decodeIbFrame(V.ud_unicast_variant);
  t.equal(b.lrh.vl, 5);
  t.ok(b.bth.becn && !b.bth.fecn);
  throwsWire(t, () => decodeIbFrame(V.ud_unicast_bad_icrc), 'BAD_CHECKSUM', 'icrc', 'SL is covered by the ICRC of a local packet');
  // A switch changes VL and sets BECN, then restamps only the VCRC: the result is the Python vector (b').
  const hop = Buffer.from(V.ud_unicast);
  hop[0] = 0x50;
  hop[12] = 0x40;
  restampVcrc(hop);
  t.same(hop, V.ud_unicast_variant, 'restampVcrc after a hop');
});

t.test('IB packet: round trip and fuzz', async (t) => {
  const unknown: IbPacket = { lrh: lrhOf({ vl: 7, resv2: 1, resv5: 31, dlid: 0xffff }), bth: bthOf({ opcode: 0xc5, resv7: 3 }), payload: hex('01') };
  const rdmaWriteImm: IbPacket = { lrh: lrhOf({}), bth: bthOf({ opcode: 0x0b }), payload: Buffer.alloc(16 + 4 + 9, 1) };
  const ucLastImm: IbPacket = { lrh: lrhOf({}), bth: bthOf({ opcode: 0x29 }), immDt: 0, payload: Buffer.alloc(0) };
  for (const rec of [A, B, C, D, E, unknown, rdmaWriteImm, ucLastImm]) roundTrip(t, ibPacket, rec, `IB opcode 0x${rec.bth.opcode.toString(16)}`);
  fuzzDecode(t, ibPacket, V.ud_bcast_grh, { runs: 1000 });
  fuzzDecode(t, ibPacket, V.ud_imm, { runs: 1000 });
  const max: IbPacket = { ...D, payload: Buffer.alloc(2047 * 4 - 24) };
  t.equal(peekPktLen(encodeIbPacket(max)), 2047, 'largest payload PktLen can describe');
  throwsWire(t, () => encodeIbPacket({ ...max, payload: Buffer.alloc(2047 * 4 - 23) }), 'INVALID_RECORD', 'payload');
  throwsWire(t, () => encodeIbPacket({ ...D, deth: { qkey: 1, resv8: 0, srcQp: 1 } }), 'INVALID_RECORD', 'deth');
  const { deth: _d, ...noDeth } = B;
  throwsWire(t, () => encodeIbPacket(noDeth), 'INVALID_RECORD', 'deth');
  const { immDt: _i, ...noImm } = C;
  throwsWire(t, () => encodeIbPacket(noImm), 'INVALID_RECORD', 'immDt');
  throwsWire(t, () => encodeIbPacket(A, Buffer.alloc(V.ud_bcast_grh.length - 1)), 'BUFFER_TOO_SMALL');
  const reused = Buffer.alloc(200, 0xcc);
  t.equal(encodeIbPacket(B, reused, 10), reused, 'encodes into the caller buffer');
  t.same(reused.subarray(10, 10 + V.ud_unicast.length), V.ud_unicast);
});

t.test('IB packet: hostile frames', async (t) => {
  const a = V.ud_bcast_grh;
  for (const cut of [0, 1, 7]) throwsWire(t, () => decodeIbFrame(a.subarray(0, cut)), 'TRUNCATED', 'lrh', `cut at ${cut}`);
  for (const cut of [8, 48, 60, 68, 72, 89, a.length - 6, a.length - 2, a.length - 1]) {
    throwsWire(t, () => decodeIbFrame(a.subarray(0, cut)), 'BAD_LENGTH', 'pktLen', `cut at ${cut} (header boundary or CRC)`);
  }
  for (let cut = 0; cut < a.length; cut++) {
    try {
      decodeIbPacket(a.subarray(0, cut));
      t.fail(`cut at ${cut} decoded`);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
    }
  }
  t.pass('every truncation of (a) is a WireError');

  const longer = Buffer.from(a);
  longer[5] = longer[5]! + 1;
  throwsWire(t, () => decodeIbPacket(longer), 'BAD_LENGTH', 'pktLen', 'PktLen larger than the buffer');
  const shorter = Buffer.from(a);
  shorter[5] = shorter[5]! - 1;
  throwsWire(t, () => decodeIbFrame(shorter), 'BAD_LENGTH', 'pktLen', 'PktLen smaller than the frame');
  throwsWire(t, () => decodeIbFrame(Buffer.concat([a, hex('00')])), 'BAD_LENGTH', 'pktLen', 'a byte after the VCRC');
  t.ok(decodeIbPacket(Buffer.concat([a, hex('00')])), 'the Codec form leaves trailing bytes alone');
  const tiny = Buffer.from(a);
  tiny[5] = 14;
  throwsWire(t, () => decodeIbPacket(tiny), 'BAD_LENGTH', 'pktLen', 'PktLen too short for LRH+GRH+BTH+ICRC');
  throwsWire(t, () => decodeIbPacket(a, 0, a.length + 1), 'TRUNCATED', 'frame');

  const badV = Buffer.from(a);
  badV[badV.length - 1] = badV[badV.length - 1]! ^ 1;
  throwsWire(t, () => decodeIbFrame(badV), 'BAD_CHECKSUM', 'vcrc');
  const flipped = Buffer.from(a);
  flipped[80] = flipped[80]! ^ 0x10;
  throwsWire(t, () => decodeIbFrame(flipped), 'BAD_CHECKSUM', 'vcrc', 'a payload bit flip fails the link CRC first');
  throwsWire(t, () => decodeIbFrame(V.ud_unicast_bad_icrc), 'BAD_CHECKSUM', 'icrc');

  throwsWire(t, () => decodeIbFrame(V.bad_lver), 'BAD_VALUE', 'lver');
  throwsWire(t, () => decodeIbFrame(V.bad_nxthdr), 'BAD_VALUE', 'nxtHdr');
  throwsWire(t, () => decodeIbFrame(V.bad_ipver), 'BAD_VALUE', 'ipVer');
  throwsWire(t, () => decodeIbFrame(V.bad_tver), 'BAD_VALUE', 'tver');
  throwsWire(t, () => decodeIbFrame(V.bad_padcnt), 'BAD_LENGTH', 'padCnt');
  throwsWire(t, () => decodeIbFrame(V.ud_without_deth), 'BAD_LENGTH', 'pktLen', 'UD opcode without room for a DETH');
  const raw = Buffer.from(V.ud_unicast);
  raw[1] = raw[1]! & 0xfc;
  throwsWire(t, () => decodeIbFrame(raw), 'BAD_VALUE', 'lnh', 'LNH 0 (raw)');
  const badPayLen = Buffer.from(a);
  badPayLen[13] = badPayLen[13]! + 4;
  restampForTest(badPayLen);
  throwsWire(t, () => decodeIbFrame(badPayLen), 'BAD_LENGTH', 'payLen');
  const err = (() => { try { decodeIbFrame(V.bad_nxthdr); } catch (e) { return e; } })();
  t.equal(err instanceof WireError ? err.offset : -1, 14, 'the error names the byte offset of NxtHdr');
});

// GRH.PayLen is covered by the ICRC, so a hostile PayLen needs both CRCs redone for the check under
// test (PayLen against PktLen) to be the one that fires.
function restampForTest(frame: Buffer): void {
  const covered = peekPktLen(frame) * 4;
  frame.writeUInt32LE(computeIcrc(frame, 0, covered - 4), covered - 4);
  restampVcrc(frame);
}

t.test('peek accessors read single fields and never throw', async (t) => {
  const a = V.ud_bcast_grh;
  t.same([peekVl(a), peekSl(a), peekLnh(a), peekDlid(a), peekSlid(a), peekPktLen(a)], [0, 0, 3, 0xc000, 3, 24]);
  t.equal(bthOffset(a), 48);
  t.same([peekOpcode(a), peekPkey(a), peekDestQp(a), peekPsn(a), peekQkey(a), peekSrcQp(a)], [0x64, 0xffff, 0xffffff, 0, 0x0b1b, 0x48]);
  const b = V.ud_unicast;
  t.equal(bthOffset(b), 8);
  t.same([peekSl(b), peekLnh(b), peekDlid(b), peekPkey(b), peekDestQp(b), peekPsn(b), peekQkey(b)], [2, 2, 5, 0x8001, 0x49, 0x123, 0x0b1b]);
  const inner = Buffer.concat([Buffer.alloc(3), b]);
  t.same([peekDlid(inner, 3), peekDestQp(inner, 3), peekSrcQp(inner, 3)], [5, 0x49, 0x48], 'at an offset');
  const empty = Buffer.alloc(0);
  t.same([peekDlid(empty), peekOpcode(empty), peekDestQp(empty), peekQkey(empty)], [0, 0, 0, 0], 'short buffers read as zeros');
  for (const [name, v] of Object.entries(V)) {
    if (name.startsWith('bad_') || name === 'ud_without_deth') continue;
    t.ok(isPlausibleIbFrame(v), `${name} is plausible`);
  }
  t.notOk(isPlausibleIbFrame(a.subarray(0, a.length - 1)), 'truncated');
  t.notOk(isPlausibleIbFrame(V.bad_lver), 'LVer 1');
  t.notOk(isPlausibleIbFrame(V.ud_without_deth), 'UD without room for DETH');
  t.notOk(isPlausibleIbFrame(a, 0, a.length + 1), 'length past the buffer');
  // Mutations of valid frames, CRCs redone so that decode looks past them: whenever the cheap check
  // passes, the full decoder agrees on framing (it may still reject a field value, never the length).
  let plausible = 0;
  for (const good of [V.ud_bcast_grh, V.ud_unicast, V.ud_imm, V.rc_send_only]) {
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { maxLength: 3 }), (edits) => {
      const buf = Buffer.from(good);
      for (const [i, v] of edits) buf[i] = v;
      if (!isPlausibleIbFrame(buf)) return true;
      plausible++;
      restampForTest(buf);
      try { decodeIbFrame(buf); } catch (e) {
        return e instanceof WireError && e.code !== 'TRUNCATED' && !(e.code === 'BAD_LENGTH' && e.field === 'pktLen');
      }
      return true;
    }), { numRuns: 500 });
  }
  t.ok(plausible > 500, `${plausible} mutated frames passed the cheap check and were decoded`);
  t.pass('a plausible frame never fails decode on framing');
});

t.test('hand-written LRH+BTH agree with the buffer-layout declaration (TOOLCHAIN.md §3)', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), (bytes) => {
    const b = Buffer.from(bytes);
    b[0] = b[0]! & 0xf0;
    b[9] = b[9]! & 0xf0;
    const oracle = decodeLrhBthWithLayout(b);
    const l = decodeLrh(b, 0);
    const h = decodeBth(b, 8);
    return JSON.stringify(oracle) === JSON.stringify({ lrh: l, bth: h });
  }), { numRuns: 2000 });
  t.pass('2000 random headers decode alike');
});

t.test('GUIDs, GIDs and IPoIB MGIDs (§1.7, §3.3, §3.4)', async (t) => {
  const guid = 0x0002c90300000001n;
  t.equal(formatGuid(guid), '0x0002c90300000001');
  t.equal(parseGuid('0x0002c90300000001'), guid);
  t.equal(parseGuid('0002:c903:0000:0001'), guid);
  t.equal(parseGuid('0X2C90300000001'), guid);
  t.equal(parseGuid('0xffffffffffffffff'), 0xffffffffffffffffn, 'all 64 bits survive (beyond 2^53)');
  t.equal(formatGuid(0x0020000000000001n), '0x0020000000000001', 'the value nu64be would round');
  for (const bad of ['', '0x', 'xyz', '0x00000000000000001', '1:2:3']) throwsWire(t, () => parseGuid(bad), 'BAD_VALUE', 'text', `GUID "${bad}"`);
  throwsWire(t, () => formatGuid(-1n), 'INVALID_RECORD');
  const g8 = Buffer.alloc(8);
  writeGuid(guid, g8);
  t.same(g8, hex('0002c90300000001'));
  t.equal(readGuid(g8), guid);

  const gid = portGid(guid);
  t.same(gid, SGID, 'port GID = fe80::/64 prefix ‖ GUID');
  t.equal(formatGid(gid), 'fe80::2:c903:0:1');
  t.same(parseGid('fe80::2:c903:0:1'), SGID);
  t.same(parseGid('FE80:0000:0000:0000:0002:C903:0000:0001'), SGID);
  t.equal(gidGuid(gid), guid);
  t.equal(gidSubnetPrefix(gid), 0xfe80000000000000n);
  t.equal(formatGid(portGid(1n, 0xfec0000000000001n)), 'fec0:0:0:1::1', 'site prefix');
  t.ok(gidEquals(parseGid('::'), Buffer.alloc(16)));
  for (const bad of ['zz', 'fe80::1/64', 'fe80::1%ib0', '1.2.3.4']) throwsWire(t, () => parseGid(bad), 'BAD_VALUE', 'text', `GID "${bad}"`);
  throwsWire(t, () => formatGid(Buffer.alloc(15)), 'INVALID_RECORD');

  const bc = ipoibBroadcastMgid(0xffff);
  t.same(bc, BCAST_MGID);
  t.same(Buffer.concat([hex('00ffffff'), bc]),
    hex('00:ff:ff:ff:ff:12:40:1b:ff:ff:00:00:00:00:00:00:ff:ff:ff:ff'), 'Linux ipv4_bcast_addr for P_Key 0xFFFF (§3.3)');
  t.equal(formatGid(bc), 'ff12:401b:ffff::ffff:ffff');
  t.equal(formatGid(ipoibBroadcastMgid(0x7fff)), 'ff12:401b:ffff::ffff:ffff', 'limited member joins the full-member group');
  t.equal(formatGid(ipoibBroadcastMgid(0x0001)), 'ff12:401b:8001::ffff:ffff', 'bit 15 forced on');
  t.equal(formatGid(ipoibBroadcastMgid(0x8001, 0x5)), 'ff15:401b:8001::ffff:ffff', 'site-local scope');
  t.ok(isMgid(bc));
  t.notOk(isMgid(gid));
  t.same([mgidScope(bc), mgidSignature(bc), mgidPkey(bc)], [2, 0x401b, 0xffff]);
  t.equal(formatGid(ipv4MulticastMgid('224.0.0.1', 0xffff)), 'ff12:401b:ffff::1', '§3.4 example');
  t.equal(formatGid(ipv4MulticastMgid('239.255.255.250', 0xffff)), 'ff12:401b:ffff::fff:fffa', '§3.4 example');
  t.equal(formatGid(ipv4MulticastMgid(0xe0000116, 0x0002)), 'ff12:401b:8002::116', 'numeric group, P_Key bit 15');
  throwsWire(t, () => ipv4MulticastMgid('10.0.0.1', 0xffff), 'BAD_VALUE', 'text');
  throwsWire(t, () => ipv4MulticastMgid('224.0.0.1/4', 0xffff), 'BAD_VALUE', 'text');
  throwsWire(t, () => ipoibBroadcastMgid(0x10000), 'INVALID_RECORD', 'pkey');
  t.equal(formatGid(ipv6MulticastMgid('ff02::1', 0xffff)), 'ff12:601b:ffff::1', '§3.4 example');
  t.equal(formatGid(ipv6MulticastMgid('ff02::1:ffab:cdef', 0xffff)), 'ff12:601b:ffff::1:ffab:cdef', '§3.4 example');
  throwsWire(t, () => ipv6MulticastMgid('fe80::1', 0xffff), 'BAD_VALUE', 'text');
  t.equal(ipv6InterfaceId(guid), 0x0202c90300000001n, 'GUID with 0x02 in the first byte (§3.4)');
});
