#!/usr/bin/env python3
"""Test vectors for link/wire/mad.ts, sa.ts, path-record.ts, mc-member-record.ts and cm.ts.

Built with Python's struct from the tables, not from the TypeScript code:
  - MAD common header and SA header: IPOIB-FACTS.md §2.1 (OpenSM ib_mad_t / ib_sa_mad_t).
  - PathRecord: IPOIB-FACTS.md §2.2; MCMemberRecord: §2.3 (+ Linux sa_query.c mcmember_rec_table).
  - What Linux IPoIB sends: §3.8 (broadcast join mask MGID|PortGID|P_Key|JoinState, JoinState 1) and
    §2.2 "What IPoIB asks" (DGID|SGID|NumbPath|TClass|P_Key, NumbPath 1).
  - What OpenSM answers: §2.2 "What OpenSM answers" and §2.4 broadcast group parameters; response
    framing as opensm/osm_sa.c osm_sa_respond() (header echoed, R bit, SM_Key 0, AttributeOffset =
    record size / 8) and osm_sa_send_error() (whole request echoed with the status).
  - CM messages: Linux include/rdma/ibta_vol1_c12.h byte/bit positions (IBA tables 106-113), with
    the values drivers/infiniband/ulp/ipoib/ipoib_cm.c uses (IPOIB-FACTS §4).

Run: python3 test/vectors/mad.py   (prints one "name: hex" line per vector)
"""
import struct

MAD_SIZE = 256

# Hosts on an OpenSM fabric: SM port LID 1, host A LID 2, host B LID 3 (IPOIB-FACTS §2.4).
GUID_A = 0x0002C90300000001
GUID_B = 0x0002C90300000002
PREFIX = 0xFE80000000000000
GID_A = struct.pack('>QQ', PREFIX, GUID_A)
GID_B = struct.pack('>QQ', PREFIX, GUID_B)
GID_UNKNOWN = struct.pack('>QQ', PREFIX, 0x0002C903000000FF)
# IPv4 broadcast MGID for P_Key 0xFFFF (IPOIB-FACTS §3.3): ff12:401b:ffff::ffff:ffff
BCAST_MGID = bytes.fromhex('ff12401bffff000000000000ffffffff')


def mad_header(mgmt_class, class_version, method, status, tid, attr_id, attr_mod=0, class_specific=0):
    # BaseVersion(1)=1, MgmtClass(1), ClassVersion(1), Method(1), Status(2), ClassSpecific(2),
    # TransactionID(8), AttributeID(2), reserved(2), AttributeModifier(4)
    return struct.pack('>BBBBHHQHHI', 1, mgmt_class, class_version, method, status, class_specific,
                       tid, attr_id, 0, attr_mod)


def sa_mad(method, status, tid, attr_id, comp_mask, data, attr_offset=0, sm_key=0):
    # RMPP header: version, type, resptime/flags, status, seg_num(4), paylen(4) - all zero here.
    rmpp = bytes(12)
    sa_hdr = struct.pack('>QHHQ', sm_key, attr_offset, 0, comp_mask)
    body = data + bytes(200 - len(data))
    m = mad_header(0x03, 2, method, status, tid, attr_id) + rmpp + sa_hdr + body
    assert len(m) == MAD_SIZE
    return m


def path_record(service_id=0, dgid=bytes(16), sgid=bytes(16), dlid=0, slid=0, raw=0, flow=0, hop=0,
                tclass=0, reversible=0, numb_path=0, pkey=0, qos=0, sl=0, mtu_byte=0, rate_byte=0,
                life_byte=0, preference=0):
    word44 = (raw << 31) | (flow << 8) | hop
    b49 = (reversible << 7) | numb_path
    w52 = (qos << 4) | sl
    r = (struct.pack('>Q', service_id) + dgid + sgid +
         struct.pack('>HHIBBHHBBBB', dlid, slid, word44, tclass, b49, pkey, w52,
                     mtu_byte, rate_byte, life_byte, preference) + bytes(6))
    assert len(r) == 64
    return r


def mcmember_record(mgid, port_gid, qkey=0, mlid=0, mtu_byte=0, tclass=0, pkey=0, rate_byte=0,
                    life_byte=0, sl=0, flow=0, hop=0, scope=0, join_state=0, proxy=0):
    sl_flow_hop = (sl << 28) | (flow << 8) | hop
    word48 = (scope << 28) | (join_state << 24) | (proxy << 23)
    r = (mgid + port_gid + struct.pack('>IHBBHBBII', qkey, mlid, mtu_byte, tclass, pkey, rate_byte,
                                       life_byte, sl_flow_hop, word48) + bytes(4))
    assert len(r) == 56
    return r


vectors = {}

# --- MCMemberRecord: Linux IPoIB broadcast join and OpenSM's answer -------------------------------
MCR_MGID, MCR_PORT_GID, MCR_PKEY, MCR_JOIN_STATE = 1 << 0, 1 << 1, 1 << 7, 1 << 16
join_mask = MCR_MGID | MCR_PORT_GID | MCR_PKEY | MCR_JOIN_STATE          # 0x10083
join_rec = mcmember_record(BCAST_MGID, GID_A, pkey=0xFFFF, join_state=0x1)
vectors['mcJoin'] = sa_mad(0x02, 0, 0x0000002A00000001, 0x0038, join_mask, join_rec)

# OpenSM: group parameters (Q_Key 0x0B1B, MLID 0xC000, MTU 2048 "exactly" = 0x84, 10 Gb/s = 0x83,
# lifetime = subnet timeout 0x12 "exactly" = 0x92, SL 0, scope 2) with the requester's
# MGID/PortGID/JoinState; header echoed with GetResp, AttributeOffset 56/8 = 7.
join_resp_rec = mcmember_record(BCAST_MGID, GID_A, qkey=0x0B1B, mlid=0xC000, mtu_byte=0x84, pkey=0xFFFF,
                                rate_byte=0x83, life_byte=0x92, scope=0x2, join_state=0x1)
vectors['mcJoinResp'] = sa_mad(0x81, 0, 0x0000002A00000001, 0x0038, join_mask, join_resp_rec, attr_offset=7)

# --- PathRecord: Linux IPoIB query and OpenSM's answers -------------------------------------------
PR_DGID, PR_SGID, PR_TCLASS, PR_NUMB_PATH, PR_PKEY = 1 << 2, 1 << 3, 1 << 10, 1 << 12, 1 << 13
pr_mask = PR_DGID | PR_SGID | PR_TCLASS | PR_NUMB_PATH | PR_PKEY        # 0x340C
pr_query = path_record(dgid=GID_B, sgid=GID_A, numb_path=1, pkey=0xFFFF)
vectors['prQuery'] = sa_mad(0x01, 0, 0x0000002A00000002, 0x0035, pr_mask, pr_query)

pr_resp = path_record(dgid=GID_B, sgid=GID_A, dlid=3, slid=2, reversible=1, pkey=0xFFFF,
                      mtu_byte=0x84, rate_byte=0x83, life_byte=0x92)
vectors['prResp'] = sa_mad(0x81, 0, 0x0000002A00000002, 0x0035, pr_mask, pr_resp, attr_offset=8)

# Errors: osm_sa_send_error() copies the whole request MAD, sets Status and the R bit.
vectors['prNoRecords'] = sa_mad(0x81, 0x0300, 0x0000002A00000002, 0x0035, pr_mask, pr_query)
pr_query_unknown = path_record(dgid=GID_UNKNOWN, sgid=GID_A, numb_path=1, pkey=0xFFFF)
vectors['prQueryUnknown'] = sa_mad(0x01, 0, 0x0000002A00000003, 0x0035, pr_mask, pr_query_unknown)
vectors['prInvalidGid'] = sa_mad(0x81, 0x0500, 0x0000002A00000003, 0x0035, pr_mask, pr_query_unknown)

# --- CM: IPoIB connected mode between A (UD QPN 0x48, RC QPN 0x49) and B (UD 0x50, RC 0x51) --------
def cm_mad(attr_id, tid, body):
    assert len(body) == 232, len(body)
    return mad_header(0x07, 2, 0x03, 0, tid, attr_id) + body


def ipoib_private(qpn, size, mtu=65524):
    return struct.pack('>II', qpn, mtu) + bytes(size - 8)


TID_A = 0x0000000512345678
TID_B = 0x000000079ABCDEF0
COMM_A, COMM_B = 0x12345678, 0x9ABCDEF0

# REQ (ibta_vol1_c12.h table 106 positions; ipoib_cm_send_req() values)
req = struct.pack('>I', COMM_A) + bytes(4)
req += struct.pack('>QQ', 0x1000000000000050, 0x0002C90300000010)      # ServiceID = IETF_ID | B's UD QPN
req += bytes(4) + struct.pack('>I', 0)                                   # reserved, LocalQ_Key
req += struct.pack('>I', (0x000049 << 8) | 4)                            # LocalQPN, ResponderResources 4
req += struct.pack('>I', (0 << 8) | 0)                                   # LocalEECN, InitiatorDepth
req += struct.pack('>I', (0 << 8) | (20 << 3) | (0 << 1) | 0)            # RemoteEECN, RemoteCMRespTimeout 20, RC, no e2e FC
req += struct.pack('>I', (0 << 8) | (20 << 3) | 0)                       # StartingPSN 0, LocalCMRespTimeout 20, RetryCount 0
req += struct.pack('>H', 0xFFFF)                                         # P_Key
req += struct.pack('>B', (4 << 4) | (0 << 3) | 0)                        # PathMTU 2048, RDCExists 0, RNRRetry 0
req += struct.pack('>B', (15 << 4) | (1 << 3) | 0)                       # MaxCMRetries 15, SRQ 1, ExtTransport 0
req += struct.pack('>HH', 2, 3) + GID_A + GID_B                          # primary LIDs and GIDs
req += struct.pack('>I', (0 << 12) | 3)                                  # FlowLabel 0, PacketRate 3 (10 Gb/s)
req += struct.pack('>BBBB', 0, 0, (0 << 4) | (1 << 3), 18 << 3)          # TClass, HopLimit, SL 0 + SubnetLocal, LocalACKTimeout 18
req += bytes(44)                                                         # no alternate path
req += ipoib_private(0x000048, 92)
vectors['cmReq'] = cm_mad(0x0010, TID_A, req)

# REP (table 110; ipoib_cm_send_rep(): random PSN, SRQ, RNR retry echoed)
rep = struct.pack('>III', COMM_B, COMM_A, 0)
rep += struct.pack('>III', 0x000051 << 8, 0, 0x3A5C7E << 8)              # LocalQPN, LocalEECN, StartingPSN
rep += struct.pack('>BBBB', 0, 0, (15 << 3) | (0 << 1) | 0, (0 << 5) | (1 << 4))  # RespRes, InitDepth, TargetACKDelay 15, RNR 0 + SRQ
rep += struct.pack('>Q', 0x0002C90300000020)
rep += ipoib_private(0x000050, 196)
vectors['cmRep'] = cm_mad(0x0013, TID_B, rep)

vectors['cmRtu'] = cm_mad(0x0014, TID_A, struct.pack('>II', COMM_A, COMM_B) + bytes(224))
vectors['cmDreq'] = cm_mad(0x0015, TID_A, struct.pack('>III', COMM_A, COMM_B, 0x000051 << 8) + bytes(220))
vectors['cmDrep'] = cm_mad(0x0016, TID_B, struct.pack('>II', COMM_B, COMM_A) + bytes(224))

# REJ (table 108) of A's REQ by B: MessageREJected 0 (REQ), RejectedInfoLength 0, Reason 1 (NO_QP).
rej = struct.pack('>II', COMM_B, COMM_A) + struct.pack('>BBH', 0 << 6, 0 << 1, 1) + bytes(72) + bytes(148)
vectors['cmRej'] = cm_mad(0x0012, TID_B, rej)

for name, v in vectors.items():
    assert len(v) == MAD_SIZE, name
    print(f'{name}: {v.hex()}')
