// ICRC and VCRC of native InfiniBand packets: IBA Vol 1 §7.8.1 (invariant CRC) and §7.8.2 (variant CRC),
// IPOIB-FACTS §1.6. Table-driven (slicing-by-8), allocation-free; the tables are built once at load.
//
// ICRC = CRC-32 (IEEE 802.3 polynomial, reflected 0xEDB88320, seed 0xFFFFFFFF, final inversion: the value
// zlib.crc32 gives) over LRH .. pad with the fields a switch or router may change replaced by 1s:
//   - local packet (LNH=2):  LRH.VL (byte 0 bits 7-4) and BTH.Resv8a (BTH byte 4: FECN/BECN/resv6);
//   - global packet (LNH=3): the whole LRH (8 bytes; a router rewrites it), GRH.TClass, GRH.FlowLabel,
//     GRH.HopLmt, and BTH.Resv8a. GRH IPVer, PayLen, NxtHdr, SGID and DGID are covered.
// Sources: the field lists of T. Shanley, "InfiniBand Network Architecture" (MindShare, 2002) ch. 25
// "Packet CRCs" (IBA 1.0 text: "replaced with 1s for the ICRC calculation"), and Linux rxe_icrc.c, whose
// RoCE ICRC starts with 8 bytes of 0xFF for the LRH and sets traffic class, flow label, hop limit and the
// BTH byte before DestQP to 1s: the same global-packet rule. Wire byte order: little-endian (the low CRC
// byte first), as rxe stores `~crc32_le` in host order on x86 and interoperates with RoCE hardware.
//
// VCRC = CRC-16, polynomial x^16+x^12+x^3+x+1 (0x100B; reflected 0xD008), seed 0xFFFF, final inversion,
// over every byte from the first LRH byte through the ICRC. Source: Endace DAG capture library dagcrc.c
// (dagcrc_infiniband_vcrc16_r: reflected table with 0xd008, c = crc ^ 0xffff, returns c ^ 0xffff).
// UNVERIFIED: the VCRC byte order on the wire. We write it little-endian (low byte first, the usual order
// for a reflected CRC, same as the ICRC); no public source read in this session settles it.

import { crc32 as zlibCrc32 } from 'node:zlib';

/** Below this many bytes the JS tables beat a call into zlib (a subarray plus a native call). */
const NATIVE_MIN = 192;

/** CRC-32 tables T0..T7 for slicing-by-8, each 256 entries, in one array. */
const CRC32 = new Int32Array(8 * 256);
/** CRC-16/VCRC tables, same layout. */
const CRC16 = new Int32Array(8 * 256);

function buildTables(table: Int32Array, poly: number): void {
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    table[n] = c;
  }
  for (let k = 1; k < 8; k++) {
    for (let n = 0; n < 256; n++) {
      const prev = table[(k - 1) * 256 + n]!;
      table[k * 256 + n] = (prev >>> 8) ^ table[prev & 0xff]!;
    }
  }
}
buildTables(CRC32, 0xedb88320);
buildTables(CRC16, 0xd008);

/** Runs the raw (uninverted) reflected CRC register over buf[start, end). Both CRCs share it. */
function update(t: Int32Array, reg: number, buf: Uint8Array, start: number, end: number): number {
  let i = start;
  let c = reg;
  const end8 = end - 8;
  while (i <= end8) {
    const a = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    c = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^ t[1280 + ((a >>> 16) & 0xff)]!
      ^ t[1024 + (a >>> 24)]! ^ t[768 + buf[i + 4]!]! ^ t[512 + buf[i + 5]!]! ^ t[256 + buf[i + 6]!]!
      ^ t[buf[i + 7]!]!;
    i += 8;
  }
  while (i < end) c = t[(c ^ buf[i++]!) & 0xff]! ^ (c >>> 8);
  return c;
}

/**
 * Plain CRC-32 of buf[start, end), continuing from a previous result `prev` (0 to start) — the same
 * value as zlib.crc32.
 */
export function crc32(buf: Uint8Array, start = 0, end = buf.length, prev = 0): number {
  if (end - start >= NATIVE_MIN) return zlibCrc32(buf.subarray(start, end), prev);
  return ~update(CRC32, ~prev, buf, start, end) >>> 0;
}

/** The VCRC polynomial over buf[start, end). */
export function crc16Vcrc(buf: Uint8Array, start = 0, end = buf.length): number {
  return (update(CRC16, 0xffff, buf, start, end) ^ 0xffff) & 0xffff;
}

// OR-masks for the variant fields, by byte position from the first LRH byte (see the header comment).
const LOCAL_MASK = new Uint8Array(8 + 12);
LOCAL_MASK[0] = 0xf0; // LRH.VL
LOCAL_MASK[8 + 4] = 0xff; // BTH.Resv8a
const GLOBAL_MASK = new Uint8Array(8 + 40 + 12);
GLOBAL_MASK.fill(0xff, 0, 8); // LRH
GLOBAL_MASK[8] = 0x0f; // GRH.TClass high nibble (IPVer kept)
GLOBAL_MASK.fill(0xff, 9, 12); // GRH.TClass low nibble + FlowLabel
GLOBAL_MASK[8 + 7] = 0xff; // GRH.HopLmt
GLOBAL_MASK[48 + 4] = 0xff; // BTH.Resv8a

/**
 * The ICRC of the packet whose LRH starts at `offset`, over `length` bytes (LRH through pad, the ICRC
 * itself excluded). LRH.LNH (byte 1 bits 1-0) selects the local or global masking; raw packets (LNH 0/1)
 * carry no ICRC and are masked as local ones.
 */
export function computeIcrc(buf: Uint8Array, offset: number, length: number): number {
  const mask = (buf[offset + 1]! & 3) === 3 ? GLOBAL_MASK : LOCAL_MASK;
  const end = offset + length;
  const maskEnd = Math.min(end, offset + mask.length);
  let c = -1;
  for (let i = offset; i < maskEnd; i++) c = CRC32[(c ^ (buf[i]! | mask[i - offset]!)) & 0xff]! ^ (c >>> 8);
  return crc32(buf, maskEnd, end, ~c >>> 0);
}

/** The VCRC of `length` bytes from `offset` (LRH through ICRC). */
export function computeVcrc(buf: Uint8Array, offset: number, length: number): number {
  return crc16Vcrc(buf, offset, offset + length);
}
