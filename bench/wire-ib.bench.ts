// InfiniBand wire codecs (link/wire/): ns per packet for what the fabric does per delivery — encode a UD
// packet into a reused buffer, decode and verify it, peek the forwarding fields — plus ICRC/VCRC on a
// 2 KB packet and the hand-written LRH+BTH decoders against the same layout declared with buffer-layout.
import * as lo from 'buffer-layout';
import zlib from 'node:zlib';
import { nsPerOp, type BenchResult } from './harness.js';
import { decodeBth, type Bth } from '../link/wire/bth.js';
import { decodeLrh, type Lrh } from '../link/wire/lrh.js';
import { computeIcrc, computeVcrc } from '../link/wire/ib-crc.js';
import {
  decodeIbPacket, encodeIbPacket, ibPacketLength, peekDestQp, peekDlid, peekLnh, peekOpcode, peekPkey,
  type IbPacket,
} from '../link/wire/ib-packet.js';
import { ipoibBroadcastMgid, portGid } from '../link/wire/ib-address.js';

// LRH + BTH declared with buffer-layout as TOOLCHAIN.md §3 shows (msb-first bit fields).
interface LayoutLrh {
  w0: { vl: number; lver: number; sl: number; rsv2: number; lnh: number };
  dlid: number;
  w2: { rsv5: number; pktLen: number };
  slid: number;
}
interface LayoutBth {
  opcode: number;
  flags: { se: boolean; m: boolean; padCnt: number; tver: number };
  pkey: number;
  resv8: number;
  destQp: number;
  ack: { ackReq: boolean; resv7: number };
  psn: number;
}
const flags = lo.bits(lo.u8(), true, 'flags');
flags.addBoolean('se'); flags.addBoolean('m'); flags.addField(2, 'padCnt'); flags.addField(4, 'tver');
const ack = lo.bits(lo.u8(), true, 'ack');
ack.addBoolean('ackReq'); ack.addField(7, 'resv7');
export const BTH_LAYOUT = lo.struct<LayoutBth>([lo.u8('opcode'), flags, lo.u16be('pkey'), lo.u8('resv8'),
  lo.u24be('destQp'), ack, lo.u24be('psn')], 'bth');
const w0 = lo.bits(lo.u16be(), true, 'w0');
w0.addField(4, 'vl'); w0.addField(4, 'lver'); w0.addField(4, 'sl'); w0.addField(2, 'rsv2'); w0.addField(2, 'lnh');
const w2 = lo.bits(lo.u16be(), true, 'w2');
w2.addField(5, 'rsv5'); w2.addField(11, 'pktLen');
export const LRH_LAYOUT = lo.struct<LayoutLrh>([w0, lo.u16be('dlid'), w2, lo.u16be('slid')], 'lrh');
export const LRH_BTH_LAYOUT = lo.struct<{ lrh: LayoutLrh; bth: LayoutBth }>([LRH_LAYOUT, BTH_LAYOUT]);

/** LRH + BTH of a local (LNH=2) packet through buffer-layout, reshaped to the project's flat records. */
export function decodeLrhBthWithLayout(buf: Buffer, offset = 0): { lrh: Lrh; bth: Bth } {
  const { lrh: l, bth: b } = LRH_BTH_LAYOUT.decode(buf, offset);
  return {
    lrh: { vl: l.w0.vl, sl: l.w0.sl, resv2: l.w0.rsv2, lnh: l.w0.lnh, dlid: l.dlid, resv5: l.w2.rsv5, pktLen: l.w2.pktLen, slid: l.slid },
    bth: {
      opcode: b.opcode, se: b.flags.se, migReq: b.flags.m, padCnt: b.flags.padCnt, pkey: b.pkey,
      fecn: (b.resv8 & 0x80) !== 0, becn: (b.resv8 & 0x40) !== 0, resv6: b.resv8 & 0x3f,
      destQp: b.destQp, ackReq: b.ack.ackReq, resv7: b.ack.resv7, psn: b.psn,
    },
  };
}

function udBroadcast(payloadBytes: number): IbPacket {
  const payload = Buffer.alloc(payloadBytes, 0x5a);
  payload.writeUInt32BE(0x08000000, 0);
  return {
    lrh: { vl: 0, sl: 0, resv2: 0, dlid: 0xc000, resv5: 0, slid: 3 },
    grh: { tclass: 0, flowLabel: 0, hopLmt: 0, sgid: portGid(0x0002c90300000001n), dgid: ipoibBroadcastMgid(0xffff) },
    bth: { opcode: 0x64, se: false, migReq: false, pkey: 0xffff, fecn: false, becn: false, resv6: 0, destQp: 0xffffff, ackReq: false, resv7: 0, psn: 0 },
    deth: { qkey: 0x0b1b, resv8: 0, srcQp: 0x48 },
    payload,
  };
}

export async function run(): Promise<BenchResult[]> {
  const S = 'wire';
  const out: BenchResult[] = [];
  const dhcp = udBroadcast(332);
  const frame = Buffer.alloc(ibPacketLength(dhcp));
  const note = `UD SEND_ONLY + GRH, 332-byte payload, ${frame.length}-byte frame`;

  out.push({ suite: S, name: 'IB UD packet encode into a reused buffer', unit: 'ns/op', note,
    value: nsPerOp(() => encodeIbPacket(dhcp, frame, 0)) });
  out.push({ suite: S, name: 'IB UD packet decode + verify (ICRC, VCRC)', unit: 'ns/op', note,
    value: nsPerOp(() => decodeIbPacket(frame, 0, frame.length)) });
  out.push({ suite: S, name: 'IB peek dlid+lnh+opcode+pkey+destQp', unit: 'ns/op', note: 'five single-field reads, no decode',
    value: nsPerOp(() => peekDlid(frame) + peekLnh(frame) + peekOpcode(frame) + peekPkey(frame) + peekDestQp(frame), 1_000_000) });

  const big = udBroadcast(2048 - 4);
  const bigFrame = encodeIbPacket(big);
  const covered = bigFrame.length - 2;
  const icrcNs = nsPerOp(() => computeIcrc(bigFrame, 0, covered - 4), 20_000);
  const zlibNs = nsPerOp(() => zlib.crc32(bigFrame.subarray(0, covered - 4)), 20_000);
  const bigNote = `${bigFrame.length}-byte frame (2044-byte payload)`;
  out.push({ suite: S, name: 'ICRC (slicing-by-8 table, masked)', unit: 'ns/op', note: bigNote, value: icrcNs,
    ratio: { to: 'zlib.crc32 native, unmasked', value: icrcNs / zlibNs } });
  out.push({ suite: S, name: 'zlib.crc32 native, unmasked (reference)', unit: 'ns/op', note: bigNote, value: zlibNs });
  out.push({ suite: S, name: 'VCRC (slicing-by-8 table)', unit: 'ns/op', note: bigNote,
    value: nsPerOp(() => computeVcrc(bigFrame, 0, covered), 20_000) });

  const { grh: _unused, ...withoutGrh } = dhcp;
  const local = encodeIbPacket(withoutGrh);
  const hand = nsPerOp(() => { decodeLrh(local, 0); return decodeBth(local, 8); }, 1_000_000);
  const layout = nsPerOp(() => decodeLrhBthWithLayout(local, 0), 200_000);
  out.push({ suite: S, name: 'LRH+BTH decode (hand-written)', unit: 'ns/op', value: hand });
  out.push({ suite: S, name: 'LRH+BTH decode (buffer-layout, reshaped)', unit: 'ns/op', value: layout,
    ratio: { to: 'LRH+BTH decode (hand-written)', value: layout / hand } });
  return out;
}
