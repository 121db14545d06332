#!/usr/bin/python3
"""Independent check of the ICRC and VCRC of every raw InfiniBand frame in a pcap file, for
test/fabric-crc.test.ts. Written from the CRC definitions, NOT from the project's TypeScript code:

ICRC (IBA Vol 1 §7.8.1; T. Shanley, "InfiniBand Network Architecture" ch. 25; Linux rxe_icrc.c for the
global form): zlib.crc32 over LRH .. pad, with the variant fields replaced by ones --
  local packet (LRH.LNH = 2):  LRH.VL (byte 0, high nibble) and BTH.Resv8a (BTH byte 4);
  global packet (LNH = 3):     the whole 8-byte LRH, GRH.TClass and FlowLabel (GRH bits 4..31),
                               GRH.HopLmt (GRH byte 7) and BTH.Resv8a.
Stored little-endian after the pad.
VCRC (IBA Vol 1 §7.8.2; Endace dagcrc.c): CRC-16, polynomial 0x100B reflected (0xD008), init 0xFFFF,
xorout 0xFFFF, bit by bit here, over LRH .. ICRC; stored little-endian (byte order UNVERIFIED, the
project's choice, see test/vectors/ib_headers.py).

pcap-savefile(5): 24-byte file header (magic a1b2c3d4 or d4c3b2a1 for microseconds), then records of a
16-byte header (ts_sec, ts_usec, incl_len, orig_len) and incl_len bytes. Link types 147 (USER0, as the
fabric writes raw frames) and 247 (INFINIBAND) carry the frame from the first LRH byte.

Run: python3 test/vectors/check_pcap_crcs.py FILE.pcap
Prints one JSON object per record: {"len", "lnh", "icrc_ok", "vcrc_ok"} (null when the record is not
a whole frame: PktLen * 4 + 2 != length).
"""
import json
import os
import struct
import sys
import zlib


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ib_headers import vcrc16  # noqa: E402  (the bit-by-bit CRC-16 the IB vectors use)


def icrc(frame, covered):
    """covered = LRH .. ICRC (PktLen * 4); the CRC runs over frame[0 : covered - 4], masked."""
    b = bytearray(frame[:covered - 4])
    lnh = b[1] & 3
    if lnh == 3:
        b[0:8] = b'\xff' * 8
        b[8] |= 0x0F            # TClass high nibble (IPVer kept)
        b[9:12] = b'\xff\xff\xff'  # TClass low nibble, FlowLabel
        b[15] = 0xFF            # HopLmt
        bth = 48
    else:
        b[0] |= 0xF0            # VL
        bth = 8
    if len(b) > bth + 4:
        b[bth + 4] = 0xFF       # BTH.Resv8a
    return zlib.crc32(bytes(b))


def main(path):
    data = open(path, 'rb').read()
    magic = data[:4]
    endian = '<' if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
    linktype = struct.unpack(endian + 'I', data[20:24])[0]
    if linktype not in (147, 247):
        raise SystemExit('link type %d is not raw InfiniBand' % linktype)
    p = 24
    while p + 16 <= len(data):
        _, _, incl, orig = struct.unpack(endian + 'IIII', data[p:p + 16])
        frame = data[p + 16:p + 16 + incl]
        p += 16 + incl
        covered = (((frame[4] & 7) << 8) | frame[5]) * 4 if len(frame) >= 8 else -1
        if covered + 2 != len(frame) or incl != orig or covered < 24:
            print(json.dumps({'len': len(frame), 'lnh': None, 'icrc_ok': None, 'vcrc_ok': None}))
            continue
        icrc_wire = struct.unpack('<I', frame[covered - 4:covered])[0]
        vcrc_wire = struct.unpack('<H', frame[covered:covered + 2])[0]
        print(json.dumps({
            'len': len(frame), 'lnh': frame[1] & 3,
            'icrc_ok': icrc(frame, covered) == icrc_wire,
            'vcrc_ok': vcrc16(frame[:covered]) == vcrc_wire,
        }))


if __name__ == '__main__':
    main(sys.argv[1])
