// What the client engine asks its daemon to do, and why it ignored a reply: the engine's whole
// output (RFC 2131 §4.4 transmissions, RFC 5227 probe/announce requests, lease application, the
// dhclient-script hook, lease persistence, logs). The daemon executes; the engine never does I/O.

import type { DhcpMessage } from '../protocol/index.js';
import type { ClientLease, HookReason, MtuDecision } from './lease.js';

/** Where a message goes: the IPoIB broadcast group (255.255.255.255) or the server by unicast. */
export type Destination = { kind: 'broadcast' } | { kind: 'unicast'; address: number };

/** RFC 5227 §2.1.1 probe parameters (ms), executed by the daemon: PROBE_WAIT, PROBE_NUM, PROBE_MIN/MAX, ANNOUNCE_WAIT. */
export interface ProbeConfig {
  /** Probe before using an address at all (RFC 2131 §4.4.1 SHOULD). */
  enabled: boolean;
  waitMs: number;
  count: number;
  minIntervalMs: number;
  maxIntervalMs: number;
  /** Quiet time after the last probe in which a reply still counts as a conflict. */
  announceWaitMs: number;
}

/** How a lease came to be applied (the hook reason of the same event). */
export type ApplyReason = 'BOUND' | 'RENEW' | 'REBIND' | 'REBOOT' | 'TIMEOUT';

export type ClientAction =
  /** Transmit; `bytes` is `message` encoded. */
  | { kind: 'send'; message: DhcpMessage; bytes: Buffer; destination: Destination }
  /** ARP-probe `address` (sender IP 0, RFC 5227 §2.1.1) and answer with probeResult(). */
  | { kind: 'probe'; address: number; probe: ProbeConfig }
  /** Gratuitous ARP for the now-bound address (RFC 5227 §2.3), also after a port failover. */
  | { kind: 'announce'; address: number }
  /** Configure the interface: address/prefix, routes, DNS, and the MTU if `mtu.apply`. */
  | { kind: 'apply'; reason: ApplyReason; lease: ClientLease; previous: ClientLease | null; mtu: MtuDecision }
  /** Remove the lease's address and routes. */
  | { kind: 'deconfigure'; reason: 'EXPIRE' | 'NAK' | 'RELEASE' | 'DECLINE'; lease: ClientLease }
  /** Run the dhclient-script-style hook with this environment. */
  | { kind: 'hook'; reason: HookReason; env: Record<string, string> }
  /** Persist the lease (lease-file.ts formats it), or forget it (null) after a release or expiry. */
  | { kind: 'save-lease'; lease: ClientLease | null }
  /** A reply was ignored (also counted in engine.drops). */
  | { kind: 'drop'; reason: DropReason; message: string }
  | { kind: 'log'; level: 'debug' | 'info' | 'warn'; event: ClientEvent; message: string }
  /** No lease could be obtained within failAfterMs (`-1` exits 2 on this). */
  | { kind: 'failed'; message: string };

/** Stable names of log events (not drops). */
export type ClientEvent =
  | 'state' | 'selected' | 'bound' | 'conflict' | 'nak' | 'expired' | 'mtu-not-applied' | 'no-subnet-mask'
  | 'reboot-timeout' | 'probe-timeout' | 'client-id-changed' | 'port-changed' | 'released' | 'stopped';

/**
 * Every reason a reply is ignored: a closed list (counters and tests key on it).
 * - malformed: the bytes or an option's data do not decode;
 * - not-a-reply: op is not BOOTREPLY;
 * - htype-mismatch: htype is not 32 (InfiniBand) — a reply to some other client;
 * - xid-mismatch: not the transaction in progress (or none is);
 * - no-message-type: a BOOTP reply (no option 53);
 * - unexpected-type: a message type the current state does not expect;
 * - client-id-mismatch: the server echoed an option 61 that is not ours (RFC 6842);
 * - no-server-id: OFFER/ACK/NAK without option 54 (RFC 2131 Table 3: MUST);
 * - wrong-server: ACK/NAK from a server other than the one requested (REQUESTING, RENEWING);
 * - yiaddr-invalid: yiaddr 0 (or not a unicast address) in an OFFER or ACK;
 * - lease-time-missing / lease-time-zero: option 51 absent or 0 in an ACK;
 * - bad-subnet-mask: option 1 is not a contiguous mask;
 * - router-outside-subnet: a router of option 3 is not inside yiaddr/mask.
 */
export type DropReason =
  | 'malformed' | 'not-a-reply' | 'htype-mismatch' | 'xid-mismatch' | 'no-message-type' | 'unexpected-type'
  | 'client-id-mismatch' | 'no-server-id' | 'wrong-server' | 'yiaddr-invalid' | 'lease-time-missing'
  | 'lease-time-zero' | 'bad-subnet-mask' | 'router-outside-subnet';

export const DROP_REASONS: readonly DropReason[] = [
  'malformed', 'not-a-reply', 'htype-mismatch', 'xid-mismatch', 'no-message-type', 'unexpected-type',
  'client-id-mismatch', 'no-server-id', 'wrong-server', 'yiaddr-invalid', 'lease-time-missing',
  'lease-time-zero', 'bad-subnet-mask', 'router-outside-subnet',
];
