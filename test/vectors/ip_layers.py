#!/usr/bin/python3
"""Test vectors for link/wire/{arp,ipv4,udp,icmp}.ts, built by an independent stack.

Run with Debian's python3-scapy (2.5.0): /usr/bin/python3 test/vectors/ip_layers.py
Prints one `name hex` line per vector; test/link-wire-ip.test.ts pastes them verbatim.

Layouts: RFC 791 (IPv4), RFC 768 (UDP), RFC 792 + RFC 1191 (ICMP), RFC 826 + RFC 4391 §4.2
(ARP over IPoIB: htype 32, hlen 20). scapy computes every length and checksum here; the
ARP packets use scapy's ARP layer, which carries 20-byte hardware addresses via hwlen=20.
"""
from scapy.all import ARP, ICMP, IP, UDP, BOOTP, DHCP, IPOption_Router_Alert, raw

# 20-byte IPoIB hardware addresses (RFC 4391 §9.1.1 / IPOIB-FACTS §3.1): flags 0x80 (RC capable),
# QPN, port GID fe80::<port GUID>.
CLIENT_HW = bytes.fromhex('80000048' 'fe80000000000000' '0002c90300000001')
SERVER_HW = bytes.fromhex('80000049' 'fe80000000000000' '0002c90300000002')
CLIENT_GUID = CLIENT_HW[12:]

# RFC 4390 DISCOVER as in IPOIB-FACTS §5.6: htype 32, hlen 0, chaddr zero, broadcast flag,
# option 61 in the 20-byte "Mellanox" form (ff | IAID 0 | DUID-EN 713 | 00 | GUID), option 55.
MELLANOX_CLIENT_ID = bytes.fromhex('ff00000000000200' '0002c900') + CLIENT_GUID


def dhcp_discover():
    return raw(BOOTP(op=1, htype=32, hlen=0, hops=0, xid=0x3903F326, secs=0, flags=0x8000,
                     chaddr=b'\x00' * 16) /
               DHCP(options=[('message-type', 'discover'),
                             ('client_id', MELLANOX_CLIENT_ID),
                             ('param_req_list', [1, 3, 6, 12, 15, 28, 42]),
                             'end']))


def dhcp_discover_ip():
    return raw(IP(src='0.0.0.0', dst='255.255.255.255', id=0, ttl=64) /
               UDP(sport=68, dport=67) / dhcp_discover())


def echo_payload():
    return bytes(range(0x10, 0x10 + 56))   # the 56 data bytes ping sends by default


def icmp_echo_request():
    return raw(IP(src='10.0.0.1', dst='10.0.0.2', id=0x1c46, flags='DF', ttl=64) /
               ICMP(type=8, code=0, id=0x1234, seq=1) / echo_payload())


def icmp_echo_reply():
    return raw(IP(src='10.0.0.2', dst='10.0.0.1', id=0x5d2a, ttl=64) /
               ICMP(type=0, code=0, id=0x1234, seq=1) / echo_payload())


def icmp_frag_needed():
    # RFC 1191: the original datagram's IP header + first 8 payload bytes come back, with the
    # next-hop MTU (here the IPoIB datagram-mode MTU 2044 of IPOIB-FACTS §3.5).
    original = raw(IP(src='10.0.0.1', dst='10.0.0.2', id=0x0101, flags='DF', ttl=64) /
                   UDP(sport=4000, dport=5000) / (b'\xab' * 3000))
    quoted = original[:28]
    return raw(IP(src='10.0.0.2', dst='10.0.0.1', id=0x0202, ttl=64, proto=1) /
               ICMP(type=3, code=4, nexthopmtu=2044) / quoted)


def icmp_time_exceeded():
    # A type with no record of its own (11, RFC 792): kept as raw bytes by icmp.ts.
    quoted = raw(IP(src='10.0.0.1', dst='10.9.9.9', id=0x0303, ttl=1) / UDP(sport=33434, dport=33435))[:28]
    return raw(IP(src='10.0.0.254', dst='10.0.0.1', id=0x0404, ttl=64) / ICMP(type=11, code=0) / quoted)


def arp_request():
    return raw(ARP(hwtype=32, ptype=0x0800, hwlen=20, plen=4, op=1,
                   hwsrc=CLIENT_HW, psrc='10.0.0.1', hwdst=b'\x00' * 20, pdst='10.0.0.2'))


def arp_reply():
    return raw(ARP(hwtype=32, ptype=0x0800, hwlen=20, plen=4, op=2,
                   hwsrc=SERVER_HW, psrc='10.0.0.2', hwdst=CLIENT_HW, pdst='10.0.0.1'))


def arp_ethernet():
    return raw(ARP(hwtype=1, ptype=0x0800, op=1, hwsrc='02:00:00:00:00:01', psrc='192.168.1.1',
                   hwdst='00:00:00:00:00:00', pdst='192.168.1.2'))


def ip_options_udp():
    # IHL 6: one 4-byte Router Alert option (RFC 2113).
    return raw(IP(src='10.0.0.1', dst='224.0.0.22', id=7, ttl=1, options=[IPOption_Router_Alert()]) /
               UDP(sport=1234, dport=5678) / b'hello')


def ip_fragment():
    # A middle fragment: MF set, fragment offset 185 (×8 = 1480 bytes).
    return raw(IP(src='10.0.0.1', dst='10.0.0.2', id=0x4242, flags='MF', frag=185, ttl=64, proto=17) /
               (b'\x5a' * 16))


def udp_zero_sum():
    # A datagram whose checksum computes to 0, so RFC 768 sends it as 0xFFFF. Two payload bytes
    # are chosen to make the one's complement sum 0xFFFF; scapy then does the encoding.
    base = IP(src='10.0.0.1', dst='10.0.0.2', id=9, ttl=64) / UDP(sport=1000, dport=2000)
    for word in range(0x10000):
        pkt = base / word.to_bytes(2, 'big')
        b = raw(pkt)
        if b[26:28] == b'\xff\xff':
            return b
    raise SystemExit('no zero-sum payload found')


def udp_no_checksum():
    return raw(IP(src='10.0.0.1', dst='10.0.0.2', id=10, ttl=64) / UDP(sport=1000, dport=2000, chksum=0) /
               b'no checksum')


VECTORS = {
    'dhcp_discover_bootp': dhcp_discover,
    'dhcp_discover_ip': dhcp_discover_ip,
    'icmp_echo_request_ip': icmp_echo_request,
    'icmp_echo_reply_ip': icmp_echo_reply,
    'icmp_frag_needed_ip': icmp_frag_needed,
    'icmp_time_exceeded_ip': icmp_time_exceeded,
    'arp_request': arp_request,
    'arp_reply': arp_reply,
    'arp_ethernet': arp_ethernet,
    'ip_options_udp': ip_options_udp,
    'ip_fragment': ip_fragment,
    'udp_zero_sum_ip': udp_zero_sum,
    'udp_no_checksum_ip': udp_no_checksum,
}

if __name__ == '__main__':
    for name, build in VECTORS.items():
        print(name, build().hex())
