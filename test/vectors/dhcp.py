#!/usr/bin/python3
"""DHCP test vectors for test/protocol.test.ts, built with Debian's scapy (BOOTP()/DHCP() layers), an
implementation independent of ours, and re-dissected by scapy to print the field values the test
compares against. Run: /usr/bin/python3 test/vectors/dhcp.py  (scapy 2.5.0, Debian bookworm).

Layouts: RFC 2131 §2 (fixed header, magic cookie), RFC 2132 (options), RFC 4390 §2.1 (IPoIB client:
htype 32, hlen 0, chaddr zero, option 61 per RFC 4361), RFC 3442 (option 121), RFC 3397 (option 119),
RFC 3396 (long options split), RFC 2131 §4.1 / RFC 2132 §9.3 (option overload into file/sname).
Where scapy cannot build something (option data > 255 bytes: its i2m packs the length with "!BB";
option areas inside sname/file: BOOTP keeps them as raw fixed-length strings) the bytes are made with
struct and said so below; scapy still dissects the result (DHCP(bytes) for the sname/file areas).
"""
import json
import struct
from scapy.layers.dhcp import BOOTP, DHCP, DHCPRevOptions
from scapy.packet import Raw

COOKIE = b"\x63\x82\x53\x63"
GUID = bytes.fromhex("7cfe900300292652")          # IPOIB-FACTS §5.3 example port GUID
MAC = bytes.fromhex("7cfe90292652")               # the same GUID without bytes 3-4 (FlexBoot MAC)
# IPOIB-FACTS §5.3 "Mellanox prefix": ff | IAID 00000000 | DUID-EN 0002, PEN 0x2c9, 00 | GUID
MELLANOX_CID = bytes.fromhex("ff0000000000020000" "02c900") + GUID
PRL = [1, 3, 6, 12, 15, 26, 28, 42, 51, 54, 58, 59, 119, 121]

# RFC 3397 §3 example: "eng.apple.com." and "marketing.apple.com." with a compression pointer,
# split over three instances of option 119 (RFC 3396).
RFC3397_SEARCH = b"\x03eng\x05apple\x03com\x00" + b"\x09marketing\xc0\x04"


def tlv(code, data):  # struct-built option instance, used only where scapy cannot build it
    return struct.pack("!BB", code, len(data)) + data


def scapy_options(opts):
    """scapy's dissected option list -> [code, scapy-name, value...] with bytes as hex."""
    out = []
    for o in opts:
        if o in ("end", "pad"):
            continue
        if isinstance(o, bytes):
            out.append(["unparsed", o.hex()])
            continue
        name = o[0]
        code = name if isinstance(name, int) else DHCPRevOptions[name][0]
        vals = []
        for v in o[1:]:
            if isinstance(v, bytes):
                vals.append(v.hex())
            elif isinstance(v, list):
                vals.append([x.hex() if isinstance(x, bytes) else x for x in v])
            else:
                vals.append(v)
        out.append([code, str(name)] + vals)
    return out


def emit(name, pkt, areas=()):
    raw = bytes(pkt)
    p = BOOTP(raw)  # re-dissect: the printed values are scapy's reading of the bytes
    fields = {
        "op": p.op, "htype": p.htype, "hlen": p.hlen, "hops": p.hops, "xid": p.xid, "secs": p.secs,
        "flags": int(p.flags), "ciaddr": p.ciaddr, "yiaddr": p.yiaddr, "siaddr": p.siaddr,
        "giaddr": p.giaddr, "chaddr": bytes(p.chaddr).ljust(16, b"\0").hex(),
        "sname": bytes(p.sname).ljust(64, b"\0").hex(), "file": bytes(p.file).ljust(128, b"\0").hex(),
    }
    opts = scapy_options(p[DHCP].options) if DHCP in p else []
    for area in areas:  # RFC 2131 §4.1 order: options, then file, then sname
        opts += scapy_options(DHCP(bytes(getattr(p, area))).options)
    print(json.dumps({"name": name, "length": len(raw), "hex": raw.hex(), "fields": fields, "options": opts}))


# (a) RFC 4390 DISCOVER (systemd-style): htype 32, hlen 0, chaddr zero, broadcast flag, option 61.
emit("rfc4390-discover", BOOTP(op=1, htype=32, hlen=0, xid=0x3903F326, flags=0x8000, chaddr=b"\0" * 16)
     / DHCP(options=[("message-type", "discover"), ("client_id", MELLANOX_CID),
                     ("max_dhcp_size", 1472), ("param_req_list", PRL), "end"]))

# (b) FlexBoot PXE DISCOVER: violates RFC 4390 with hlen 6 and the GUID-derived MAC in chaddr
# (NVIDIA PreBoot docs, IPOIB-FACTS §5.3); PXE options 93/94/97 per RFC 4578, 60 "PXEClient".
emit("flexboot-discover", BOOTP(op=1, htype=32, hlen=6, xid=0x0BADF00D, secs=4, flags=0x8000,
                                chaddr=MAC + b"\0" * 10)
     / DHCP(options=[("message-type", "discover"), ("client_id", MELLANOX_CID),
                     ("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001"),
                     (93, b"\x00\x00"), (94, b"\x01\x02\x01"),
                     (97, b"\x00" + bytes.fromhex("4c4c4544003510328053b4c04f4e3032")),
                     ("max_dhcp_size", 1464), ("param_req_list", [1, 3, 6, 12, 15, 17, 43, 60, 66, 67]),
                     "end"]))

# (c) RHEL 8 / Fedora dhclient with 0014-IPoIB-support-660681.patch (ISC dhcp 4.4): get_hw_addr()
# sets hw_address = {hlen 9, hbuf[0]=32, hbuf[1..8]=last 8 bytes of the 20-byte address = port GUID},
# and make_discover() sends hlen = hw_address.hlen - 1 = 8 with chaddr = GUID. (The older RHEL 7
# dhcp-lpf-ib.patch used hlen 1 -> on-wire hlen 0, i.e. vector (a)'s header.) The patch refuses to
# run without a configured dhcp-client-identifier and forces bootp_broadcast_always.
emit("patched-dhclient-discover", BOOTP(op=1, htype=32, hlen=8, xid=0x5EED1234, flags=0x8000,
                                        chaddr=GUID + b"\0" * 8)
     / DHCP(options=[("message-type", "discover"), ("client_id", MELLANOX_CID), ("hostname", b"node01"),
                     ("param_req_list", [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]), "end"]))

# (d) ACK with many options, as a server answers vector (a).
emit("ack-many-options", BOOTP(op=2, htype=32, hlen=0, xid=0x3903F326, flags=0x8000, yiaddr="10.10.0.42",
                               siaddr="10.10.0.1", chaddr=b"\0" * 16)
     / DHCP(options=[("message-type", "ack"), ("server_id", "10.10.0.1"), ("lease_time", 86400),
                     ("renewal_time", 43200), ("rebinding_time", 75600), ("subnet_mask", "255.255.0.0"),
                     ("router", "10.10.0.254"), ("name_server", "10.10.0.2", "10.10.0.3"),
                     ("domain", b"ib.example.org"), ("interface-mtu", 2044),
                     ("broadcast_address", "10.10.255.255"),
                     ("classless_static_routes", "10.20.0.0/16:10.10.0.253", "0.0.0.0/0:10.10.0.254"),
                     (119, RFC3397_SEARCH), ("client_id", MELLANOX_CID), "end"]))

# (e1) Option overload (RFC 2132 §9.3 value 3): the main area holds 53, 54, 52; file then sname hold
# the rest (RFC 2131 §4.1 order). The sname/file areas are struct-built bytes (scapy keeps them raw).
file_area = (tlv(51, struct.pack("!I", 3600)) + tlv(1, bytes([255, 255, 255, 0])) + tlv(3, bytes([192, 0, 2, 1]))
             + tlv(15, b"overload.example") + b"\xff").ljust(128, b"\0")
sname_area = (tlv(12, b"host-in-sname") + b"\xff").ljust(64, b"\0")
emit("overload-offer", BOOTP(op=2, htype=32, hlen=0, xid=0x00C0FFEE, flags=0x8000, yiaddr="192.0.2.77",
                             chaddr=b"\0" * 16, sname=sname_area, file=file_area)
     / DHCP(options=[("message-type", "offer"), ("server_id", "192.0.2.1"), ("dhcp-option-overload", 3), "end"]),
     areas=("file", "sname"))

# (e2) RFC 3396 long options: a 300-byte option 43 split into 255 + 45 bytes, and RFC 3397's option 119
# example split into three 9-byte instances. scapy cannot emit an option longer than 255 bytes, so
# the option area is struct-built and appended as the BOOTP options field (cookie first).
vendor = bytes(range(256)) + bytes(range(44))
split = (tlv(53, b"\x05") + tlv(43, vendor[:255]) + tlv(119, RFC3397_SEARCH[0:9]) + tlv(43, vendor[255:])
         + tlv(119, RFC3397_SEARCH[9:18]) + tlv(119, RFC3397_SEARCH[18:27]) + b"\xff")
emit("rfc3396-split-ack", BOOTP(op=2, htype=32, hlen=0, xid=0x00005396, yiaddr="192.0.2.78", chaddr=b"\0" * 16,
                                options=COOKIE + split))

# (f) Plain BOOTP request (RFC 951 + RFC 1497 vendor area: cookie, END), no option 53, Ethernet.
emit("bootp-request", BOOTP(op=1, htype=1, hlen=6, xid=0x00000951, chaddr=bytes.fromhex("020000aabbcc") + b"\0" * 10,
                            options=COOKIE + b"\xff" + b"\0" * 59))
