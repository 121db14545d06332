#!/usr/bin/python3
"""Independent InfiniBand packet vectors for test/link-wire-ib.test.ts.

Built with Python's struct from the bit tables of /work/shared/IPOIB-FACTS.md §1.2-1.5 (LRH, GRH, BTH,
DETH; Linux ud_header.c field tables), NOT from the project's TypeScript code:

  LRH  (8):  VL:4 LVer:4 | SL:4 resv:2 LNH:2 | DLID:16 | resv:5 PktLen:11 | SLID:16
  GRH (40):  IPVer:4 TClass:8 FlowLabel:20 | PayLen:16 | NxtHdr:8 | HopLmt:8 | SGID:128 | DGID:128
  BTH (12):  OpCode:8 | SE:1 M:1 PadCnt:2 TVer:4 | P_Key:16 | Resv8a:8 | DestQP:24 | A:1 resv:7 | PSN:24
  DETH (8):  Q_Key:32 | resv:8 | SrcQP:24
  ImmDt(4), payload, pad (PadCnt zero bytes), ICRC (4), VCRC (2)

PktLen = bytes LRH..ICRC / 4; GRH PayLen = bytes BTH..ICRC (§1.2, §1.3).

ICRC (IBA §7.8.1, T. Shanley "InfiniBand Network Architecture" ch. 25; Linux rxe_icrc.c for the global
form): zlib.crc32 over the packet from LRH through pad with the variant fields replaced by ones --
local packet: LRH.VL and BTH.Resv8a; global packet: the whole LRH, GRH TClass/FlowLabel/HopLmt and
BTH.Resv8a. Written little-endian (rxe stores ~crc32_le in host order).
VCRC: CRC-16 poly 0x100B, reflected (0xD008), init 0xFFFF, xorout 0xFFFF (Endace dagcrc.c), over LRH..ICRC,
computed here bit by bit; written little-endian (byte order UNVERIFIED, same choice as ib-crc.ts).

Run: python3 test/vectors/ib_headers.py  -> one "name hex" line per vector.
"""
import struct
import zlib

SGID = bytes.fromhex('fe800000000000000002c90300000001')      # fe80::2:c903:0:1
DGID_BCAST = bytes.fromhex('ff12401bffff000000000000ffffffff')  # ff12:401b:ffff::ffff:ffff (§3.3)


def lrh(vl, sl, lnh, dlid, pktlen, slid, lver=0, resv2=0, resv5=0):
    return struct.pack('>BBHHH', (vl << 4) | lver, (sl << 4) | (resv2 << 2) | lnh, dlid,
                       (resv5 << 11) | pktlen, slid)


def grh(tclass, flow, paylen, nxthdr, hoplmt, sgid, dgid, ipver=6):
    return struct.pack('>IHBB', (ipver << 28) | (tclass << 20) | flow, paylen, nxthdr, hoplmt) + sgid + dgid


def bth(opcode, pad, pkey, destqp, psn, se=0, m=0, tver=0, resv8a=0, ackreq=0):
    return struct.pack('>BBHII', opcode, (se << 7) | (m << 6) | (pad << 4) | tver, pkey,
                       (resv8a << 24) | destqp, (ackreq << 31) | psn)


def deth(qkey, srcqp):
    return struct.pack('>II', qkey, srcqp)


def vcrc16(data):
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xD008 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def packet(*, vl=0, sl=0, dlid, slid, g=None, opcode, pkey, destqp, psn=0, resv8a=0,
           qkey=None, srcqp=None, imm=None, payload, lver=0, ipver=6, nxthdr=0x1B, tver=0,
           icrc_override=None, padcnt_override=None):
    """g = dict(tclass, flow, hoplmt, dgid) for a global packet, None for a local one."""
    pad = (4 - len(payload) % 4) % 4
    padcnt = pad if padcnt_override is None else padcnt_override
    ext = b''
    if qkey is not None:
        ext += deth(qkey, srcqp)
    if imm is not None:
        ext += struct.pack('>I', imm)
    after_grh = 12 + len(ext) + len(payload) + pad + 4            # BTH .. ICRC
    covered = 8 + (40 if g else 0) + after_grh                    # LRH .. ICRC
    assert covered % 4 == 0
    lnh = 3 if g else 2
    body = bth(opcode, padcnt, pkey, destqp, psn, tver=tver, resv8a=resv8a) + ext + payload + bytes(pad)
    real = lrh(vl, sl, lnh, dlid, covered // 4, slid, lver=lver)
    masked_lrh = b'\xff' * 8 if g else lrh(0xF, sl, lnh, dlid, covered // 4, slid, lver=lver)
    masked_bth = bth(opcode, padcnt, pkey, destqp, psn, tver=tver, resv8a=0xFF) + ext + payload + bytes(pad)
    if g:
        real += grh(g['tclass'], g['flow'], after_grh, nxthdr, g['hoplmt'], SGID, g['dgid'], ipver=ipver)
        masked = masked_lrh + grh(0xFF, 0xFFFFF, after_grh, nxthdr, 0xFF, SGID, g['dgid'], ipver=ipver)
    else:
        masked = masked_lrh
    masked += masked_bth
    real += body
    icrc = zlib.crc32(masked) if icrc_override is None else icrc_override
    real += struct.pack('<I', icrc)
    return real + struct.pack('<H', vcrc16(real)), icrc


def emit(name, data):
    print(name, data.hex())


def main():
    # IPoIB payload: 4-byte encapsulation header (EtherType 0x0800 + 2 reserved, §3.2) + 17 bytes.
    ipoib_payload = bytes.fromhex('08000000') + bytes(range(0x40, 0x51))
    BCAST = dict(tclass=0, flow=0, hoplmt=0, dgid=DGID_BCAST)

    # (a) UD SEND_ONLY to the IPv4 broadcast group, with GRH (§1.10: multicast always has a GRH).
    a, a_icrc = packet(dlid=0xC000, slid=0x0003, g=BCAST, opcode=0x64, pkey=0xFFFF, destqp=0xFFFFFF, psn=0,
                       qkey=0x0B1B, srcqp=0x000048, payload=ipoib_payload)
    emit('ud_bcast_grh', a)
    # (a') the same packet after hops changed every variant field: same ICRC, new VCRC.
    emit('ud_bcast_grh_variant', packet(vl=2, sl=0, dlid=0xC000, slid=0x0003,
                                        g=dict(tclass=0xA5, flow=0x12345, hoplmt=0x40, dgid=DGID_BCAST),
                                        opcode=0x64, pkey=0xFFFF, destqp=0xFFFFFF, resv8a=0xC0, qkey=0x0B1B,
                                        srcqp=0x000048, payload=ipoib_payload, icrc_override=a_icrc)[0])

    # (b) unicast UD SEND_ONLY without GRH (LNH=2), ARP-sized payload (no pad), limited-member P_Key.
    arp_payload = bytes.fromhex('08060000') + bytes(range(0x80, 0x80 + 28))
    b, b_icrc = packet(vl=0, sl=2, dlid=0x0005, slid=0x0003, opcode=0x64, pkey=0x8001, destqp=0x000049,
                       psn=0x000123, qkey=0x0B1B, srcqp=0x000048, payload=arp_payload)
    emit('ud_unicast', b)
    # (b') VL and Resv8a changed by a switch: same ICRC, new VCRC -> still valid.
    emit('ud_unicast_variant', packet(vl=5, sl=2, dlid=0x0005, slid=0x0003, opcode=0x64, pkey=0x8001,
                                      destqp=0x000049, psn=0x000123, resv8a=0x40, qkey=0x0B1B, srcqp=0x000048,
                                      payload=arp_payload, icrc_override=b_icrc)[0])
    # (b'') SL changed (an invariant field for a local packet) with the old ICRC -> bad ICRC, good VCRC.
    emit('ud_unicast_bad_icrc', packet(vl=0, sl=3, dlid=0x0005, slid=0x0003, opcode=0x64, pkey=0x8001,
                                       destqp=0x000049, psn=0x000123, qkey=0x0B1B, srcqp=0x000048,
                                       payload=arp_payload, icrc_override=b_icrc)[0])

    # (c) UD SEND_ONLY_WITH_IMMEDIATE (0x65), ImmDt 0xDEADBEEF, 6-byte payload (PadCnt 2).
    emit('ud_imm', packet(dlid=0x0007, slid=0x0003, opcode=0x65, pkey=0xFFFF, destqp=0x00004A, psn=5,
                          qkey=0x0B1B, srcqp=0x000048, imm=0xDEADBEEF, payload=bytes.fromhex('080000000102'))[0])

    # (d) RC SEND_ONLY (connected mode): BTH then payload, no DETH.
    emit('rc_send_only', packet(dlid=0x0007, slid=0x0003, opcode=0x04, pkey=0xFFFF, destqp=0x00004B, psn=0x10,
                                payload=bytes.fromhex('0800000045000014'))[0])

    # (e) §1.2 worked example: GRH + 332-byte payload => PktLen 101, 406-byte frame with VCRC.
    big_payload = bytes.fromhex('08000000') + bytes(i & 0xFF for i in range(328))
    emit('ud_bcast_332', packet(dlid=0xC000, slid=0x0003, g=BCAST, opcode=0x64, pkey=0xFFFF,
                                destqp=0xFFFFFF, qkey=0x0B1B, srcqp=0x000048, payload=big_payload)[0])

    # Hostile, each with valid CRCs so that only the named field is wrong.
    emit('bad_lver', packet(dlid=0x0005, slid=0x0003, opcode=0x64, pkey=0xFFFF, destqp=0x49, qkey=0x0B1B,
                            srcqp=0x48, payload=arp_payload, lver=1)[0])
    emit('bad_nxthdr', packet(dlid=0xC000, slid=0x0003, g=BCAST, opcode=0x64, pkey=0xFFFF, destqp=0xFFFFFF,
                              qkey=0x0B1B, srcqp=0x48, payload=ipoib_payload, nxthdr=0x1C)[0])
    emit('bad_ipver', packet(dlid=0xC000, slid=0x0003, g=BCAST, opcode=0x64, pkey=0xFFFF, destqp=0xFFFFFF,
                             qkey=0x0B1B, srcqp=0x48, payload=ipoib_payload, ipver=4)[0])
    emit('bad_tver', packet(dlid=0x0005, slid=0x0003, opcode=0x64, pkey=0xFFFF, destqp=0x49, qkey=0x0B1B,
                            srcqp=0x48, payload=arp_payload, tver=1)[0])
    # PadCnt 3 on an RC packet with no payload bytes at all.
    emit('bad_padcnt', packet(dlid=0x0007, slid=0x0003, opcode=0x04, pkey=0xFFFF, destqp=0x4B, payload=b'',
                              padcnt_override=3)[0])
    # A UD opcode whose PktLen leaves no room for the DETH (LRH+BTH+ICRC only).
    emit('ud_without_deth', packet(dlid=0x0007, slid=0x0003, opcode=0x64, pkey=0xFFFF, destqp=0x4B, payload=b'')[0])

    # CRC check values over the ASCII string "123456789".
    print('check_crc32', '%08x' % zlib.crc32(b'123456789'))
    print('check_vcrc', '%04x' % vcrc16(b'123456789'))


if __name__ == '__main__':
    main()
