#!/usr/bin/python3
"""Raw InfiniBand frames and LINKTYPE_IPOIB pseudo headers for test/link-wire-pcap.test.ts.

Run: /usr/bin/python3 test/vectors/pcap_frames.py   (prints `name hex` lines)

Built with struct from the layouts in IPOIB-FACTS §1.2-1.6 (LRH, GRH, BTH, DETH, ICRC, VCRC;
from Linux drivers/infiniband/core/ud_header.c) and §6.1 (Solaris ipoib_pgrh_t as Wireshark's
packet-ipoib.c reads it). The IPoIB payloads (ARP, IPv4/UDP/DHCP, ICMP) come from scapy via
ip_layers.py. ICRC and VCRC are zero: Wireshark does not check them (§1.6).
"""
import struct
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ip_layers import (CLIENT_HW, SERVER_HW, arp_request, arp_reply, dhcp_discover_ip,  # noqa: E402
                       icmp_echo_request)

PKEY = 0xFFFF
QKEY = 0x00000B1B                       # OpenSM default IPoIB Q_Key (§3.5)
BCAST_MGID = bytes.fromhex('ff12401bffff000000000000ffffffff')   # §3.3
BCAST_MLID = 0xC000
CLIENT_LID, SERVER_LID = 0x0001, 0x0002
MULTICAST_QPN = 0xFFFFFF


def qpn(hw):
    return int.from_bytes(hw[1:4], 'big')


def gid(hw):
    return hw[4:20]


def ipoib(ethertype, packet):
    return struct.pack('>HH', ethertype, 0) + packet     # RFC 4391 §6 / §3.2


def ib_ud_frame(payload, slid, dlid, src_qpn, dest_qpn, sgid=None, dgid=None, psn=0):
    """LRH [GRH] BTH DETH payload pad ICRC VCRC for a UD SEND_ONLY (opcode 0x64)."""
    pad = (4 - len(payload) % 4) & 3
    grh_len = 40 if dgid is not None else 0
    lnh = 3 if dgid is not None else 2
    pkt_len = (8 + grh_len + 12 + 8 + len(payload) + pad + 4) // 4
    vl, lver, sl = 0, 0, 0
    lrh = struct.pack('>BBHHH', (vl << 4) | lver, (sl << 4) | lnh, dlid, pkt_len & 0x7FF, slid)
    grh = b''
    if dgid is not None:
        pay_len = 12 + 8 + len(payload) + pad + 4
        ipver, tclass, flow = 6, 0, 0
        grh = struct.pack('>IHBB', (ipver << 28) | (tclass << 20) | flow, pay_len, 0x1B, 0) + sgid + dgid
    opcode = 0x64
    bth = struct.pack('>BBHII', opcode, (0 << 7) | (0 << 6) | (pad << 4) | 0, PKEY,
                      dest_qpn & 0xFFFFFF, psn & 0xFFFFFF)
    deth = struct.pack('>II', QKEY, src_qpn & 0xFFFFFF)
    icrc = b'\x00' * 4
    vcrc = b'\x00' * 2
    return lrh + grh + bth + deth + payload + b'\x00' * pad + icrc + vcrc


def pseudo_grh(src_qpn, sgid, dgid, tclass=0, flow=0):
    """§6.1, GRH valid: IPVer/TClass/FlowLabel, then the source QPN in bytes 4-7, SGID, DGID."""
    return struct.pack('>II', (6 << 28) | (tclass << 20) | flow, src_qpn) + sgid + dgid


def pseudo_unicast(dest_hw):
    """§6.1, GRH not valid: 20 zero bytes, then the 20-byte destination address."""
    return b'\x00' * 20 + dest_hw


VECTORS = {
    # Broadcast ARP request from the client, reply unicast from the server (§3.6).
    'ib_arp_request': ib_ud_frame(ipoib(0x0806, arp_request()), CLIENT_LID, BCAST_MLID, qpn(CLIENT_HW),
                                  MULTICAST_QPN, gid(CLIENT_HW), BCAST_MGID),
    'ib_arp_reply': ib_ud_frame(ipoib(0x0806, arp_reply()), SERVER_LID, CLIENT_LID, qpn(SERVER_HW), qpn(CLIENT_HW)),
    # §5.6: DISCOVER to the broadcast group.
    'ib_dhcp_discover': ib_ud_frame(ipoib(0x0800, dhcp_discover_ip()), CLIENT_LID, BCAST_MLID, qpn(CLIENT_HW),
                                    MULTICAST_QPN, gid(CLIENT_HW), BCAST_MGID, psn=1),
    'ib_icmp_echo': ib_ud_frame(ipoib(0x0800, icmp_echo_request()), CLIENT_LID, SERVER_LID, qpn(CLIENT_HW),
                                qpn(SERVER_HW), psn=2),
    # LINKTYPE_IPOIB pseudo headers for a broadcast from the client and a unicast to the client.
    'pseudo_grh_client_bcast': pseudo_grh(qpn(CLIENT_HW), gid(CLIENT_HW), BCAST_MGID),
    'pseudo_grh_flow': pseudo_grh(0x123456, gid(SERVER_HW), BCAST_MGID, tclass=0xA5, flow=0xBCDEF),
    'pseudo_unicast_to_client': pseudo_unicast(CLIENT_HW),
}

if __name__ == '__main__':
    for name, frame in VECTORS.items():
        print(name, frame.hex())
