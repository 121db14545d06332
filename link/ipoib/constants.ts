// Every number the IPoIB driver and the host's IP stack run on, in one place, each with where it
// comes from: the Linux IPoIB driver (drivers/infiniband/ulp/ipoib/ipoib.h, ipoib_cm.c; IPOIB-FACTS
// §3-4), the IPv4 neighbour table defaults of net/ipv4/arp.c (arp_tbl), and OFED 1.2's release notes.

// ---- IPoIB link layer (ipoib.h) ----------------------------------------------------------------

/** IPOIB_ENCAP_LEN: the 4-byte IPoIB header in front of every packet. */
export const IPOIB_ENCAP_LEN = 4;
/** IPOIB_MAX_PATH_REC_QUEUE: packets held per neighbour while its PathRecord (or CM connection) is pending. */
export const IPOIB_MAX_PATH_REC_QUEUE = 3;
/** IPOIB_MAX_MCAST_QUEUE: packets held per send-only multicast group while it is being joined. */
export const IPOIB_MAX_MCAST_QUEUE = 64;
/** IPOIB_CM_MTU: 0x10000 - 0x10, the connected-mode netdev maximum (OFED 1.2 notes §2). */
export const IPOIB_CM_MTU = 65520;
/** IPOIB_CM_BUF_SIZE: the receive MTU advertised in CM private data (65520 + the 4-byte header). */
export const IPOIB_CM_BUF_SIZE = IPOIB_CM_MTU + IPOIB_ENCAP_LEN;
/**
 * Smallest datagram-mode MTU: ETH_MIN_MTU (68) + IPOIB_ENCAP_LEN, as IPOIB-FACTS §3.5 reads
 * ipoib_change_mtu(). Connected mode uses the same floor.
 */
export const IPOIB_MIN_MTU = 68 + IPOIB_ENCAP_LEN;
/** The datagram MTU of OpenSM's default broadcast group (MTU enum 4 = 2048 bytes, minus 4). */
export const IPOIB_DEFAULT_UD_MTU = 2044;
/** path_rec_start(): SA PathRecord query timeout. */
export const PATH_QUERY_TIMEOUT_MS = 1000;
/** Broadcast-join retry backoff doubles from 1 s up to IPOIB_MAX_BACKOFF_SECONDS (16 s). */
export const JOIN_BACKOFF_FIRST_MS = 1000;
export const JOIN_BACKOFF_MAX_MS = 16_000;
/** Receive WRs kept posted on the UD QP (ipoib_recvq_size default, IPOIB_RX_RING_SIZE). */
export const IPOIB_RX_RING_SIZE = 256;
/** Receive WRs posted on each passive RC QP (non-SRQ rings use ipoib_recvq_size too). */
export const IPOIB_CM_RX_RING_SIZE = 256;
/** Linux's CM service ID for IPoIB: 0x1000000000000000 | UD QPN (IPOIB_CM_IETF_ID, IPOIB-FACTS §4). */
export const IPOIB_CM_SERVICE_ID = 0x1000000000000000n;
/**
 * CM response timeout: ipoib_cm_send_req() asks for 20, i.e. 4.096 us * 2^20 = 4.3 s per attempt,
 * and max_cm_retries 15. The emulation retries the REQ on that timeout.
 */
export const CM_RESPONSE_TIMEOUT_MS = 4295;
export const CM_MAX_RETRIES = 15;
/** A connection unused for this long is torn down with DREQ/DREP (IPOIB_CM_RX_TIMEOUT = 2 * 256 s). */
export const CM_IDLE_TIMEOUT_MS = 2 * 256_000;
/** How often idle connections are looked for (IPOIB_CM_RX_DELAY = 3 * 256 s). */
export const CM_REAP_INTERVAL_MS = 3 * 256_000;
/** RC QP retransmission timeout (IBA encoding 14 = 4.096 us * 2^14, about 67 ms) and retries. */
export const CM_RC_TIMEOUT_ENUM = 14;
export const CM_RC_RETRY_COUNT = 7;

// ---- IPv4 neighbours (net/ipv4/arp.c arp_tbl defaults; Documentation/networking/ip-sysctl.rst) --

/** base_reachable_time: a confirmed neighbour stays REACHABLE this long (Linux randomises 0.5-1.5x; the emulation does not, to stay deterministic). */
export const NEIGH_REACHABLE_TIME_MS = 30_000;
/** delay_first_probe_time: a STALE entry used for sending waits this long in DELAY before probing. */
export const NEIGH_DELAY_FIRST_PROBE_MS = 5_000;
/** retrans_time: between two ARP requests for one neighbour. */
export const NEIGH_RETRANS_TIME_MS = 1_000;
/** mcast_solicit: broadcast requests while INCOMPLETE before FAILED. */
export const NEIGH_MCAST_SOLICIT = 3;
/** ucast_solicit: unicast requests while PROBE before FAILED. */
export const NEIGH_UCAST_SOLICIT = 3;
/** unres_qlen: packets queued per unresolved neighbour (the historic arp_tbl default of 3). */
export const NEIGH_UNRES_QLEN = 3;
/** locktime: a second, different answer within this time of the last update is ignored. */
export const NEIGH_LOCKTIME_MS = 1_000;
/** gc_stale_time: STALE and FAILED entries unused this long are removed. */
export const NEIGH_GC_STALE_TIME_MS = 60_000;
/** gc_interval: how often the table is swept. */
export const NEIGH_GC_INTERVAL_MS = 30_000;

// ---- IPv4, UDP, ICMP --------------------------------------------------------------------------

/** net.ipv4.ip_default_ttl. */
export const IP_DEFAULT_TTL = 64;
/** net.ipv4.ip_local_port_range. */
export const EPHEMERAL_PORT_FIRST = 32768;
export const EPHEMERAL_PORT_LAST = 60999;
/** ip_rt_mtu_expires: a learned path MTU is forgotten after 10 minutes. */
export const PMTU_EXPIRES_MS = 600_000;
/** ip_rt_min_pmtu: a Frag-Needed never lowers a path MTU below this. */
export const PMTU_MIN = 552;
/** ping(8) waits this long for the reply to each probe (iputils' linger default, -W 10). */
export const PING_TIMEOUT_MS = 10_000;
/** ping(8) default payload and interval. */
export const PING_DEFAULT_SIZE = 56;
export const PING_DEFAULT_INTERVAL_MS = 1_000;
