// Client configuration and its defaults, each with its source: RFC 2131 §4.1 (backoff 4..64 s ±1 s),
// §4.4.1 (10 s after DECLINE), §4.4.5 (renew/rebind retransmission: half the remaining time, min 60 s),
// RFC 5227 §1.1 (probe timing), RFC 4390 §2.1-2.2 (identifier, BROADCAST flag), ISC dhclient.conf(5)
// (timeout 60, reboot 10, select-timeout).

import { OptionCode } from '../protocol/index.js';
import type { ProbeConfig } from './actions.js';
import type { ClientIdChoice } from './client-identifier.js';
import type { LinkInfo } from './lease.js';

/** Randomness, injected so tests fix it. */
export interface RandomSource {
  /** Uniform in [0, 1): backoff randomisation, initial delay. */
  float(): number;
  /** Uniform 32-bit unsigned integer: transaction ids. */
  u32(): number;
}

export const mathRandom: RandomSource = {
  float: () => Math.random(),
  u32: () => Math.floor(Math.random() * 0x1_0000_0000) >>> 0,
};

/** Options 1, 3, 6, 15, 26, 28, 51, 54, 58, 59, 121 (RFC 2132 numbering). */
export const DEFAULT_PARAMETER_REQUEST_LIST: readonly number[] = [
  OptionCode.SUBNET_MASK, OptionCode.ROUTERS, OptionCode.DOMAIN_NAME_SERVERS, OptionCode.DOMAIN_NAME,
  OptionCode.INTERFACE_MTU, OptionCode.BROADCAST_ADDRESS, OptionCode.LEASE_TIME, OptionCode.SERVER_IDENTIFIER,
  OptionCode.RENEWAL_TIME, OptionCode.REBINDING_TIME, OptionCode.CLASSLESS_STATIC_ROUTE,
];

export interface ClientConfig {
  /** Interface name, for the hook ($interface) and the lease file. */
  interface: string;
  /** GUID of the port the interface sits on now (the identifier is built from it). */
  portGuid: bigint;
  /** Option 61 form; default duid-en (RFC 4361 "Mellanox" DUID-EN). */
  clientId?: ClientIdChoice;
  /** Rebuild the identifier from the new port's GUID on failover. Default false: identity stays. */
  followPortChange?: boolean;
  /** Option 12, sent when given. */
  hostName?: string;
  /** Interface mode and datagram MTU; default datagram, 2044 (IB MTU 2048 − 4). */
  link?: LinkInfo;
  parameterRequestList?: readonly number[];
  /** Option 57; default the datagram MTU (broadcast replies travel over the UD QP), at least 576. */
  maxMessageSize?: number;
  /** RFC 4390 §2.2: set BROADCAST while ciaddr is 0. Default true. */
  broadcastFlag?: boolean;
  /** Retransmission delays of DISCOVER/REQUEST (ms), the last repeating. Default 4, 8, 16, 32, 64 s. */
  backoffMs?: readonly number[];
  /** Each delay is randomised by a uniform value in ±jitterMs. Default 1000. */
  jitterMs?: number;
  /** Random wait before the first DISCOVER/REQUEST (RFC 2131 §4.4.1 suggests 1-10 s). Default 0..0 (ISC's initial-delay 0). */
  initialDelayMinMs?: number;
  initialDelayMaxMs?: number;
  /** How long to collect OFFERs after the first one (0: take the first). Default 1000. */
  selectWindowMs?: number;
  /** REQUEST transmissions in REQUESTING before giving up to INIT. Default 5 (0, 4, 12, 28, 60 s; gives up at 124 s). */
  requestAttempts?: number;
  /** How long INIT-REBOOT/REBOOTING tries before the fallback. Default 10 s (ISC `reboot 10`). */
  rebootTimeoutMs?: number;
  /** RFC 2131 §3.2: with no answer, `keep` uses the saved lease until it expires (MAY); `discover` starts over. Default keep. */
  rebootFallback?: 'keep' | 'discover';
  /** RFC 2131 §4.4.5: minimum retransmission interval in RENEWING/REBINDING. Default 60 s. */
  renewMinRetransmitMs?: number;
  /** Wait after a DHCPNAK before discovering again (stops a NAK loop from spinning). Default 2 s. */
  nakDelayMs?: number;
  /** RFC 2131 §3.1 step 5: wait after DHCPDECLINE. Default 10 s. */
  declineWaitMs?: number;
  /** No lease after this long: FAIL hook and a `failed` action (ISC `timeout 60`); discovery goes on. */
  failAfterMs?: number;
  probe?: Partial<ProbeConfig>;
}

/** RFC 5227 §1.1: PROBE_WAIT 1 s, PROBE_NUM 3, PROBE_MIN 1 s, PROBE_MAX 2 s, ANNOUNCE_WAIT 2 s. */
export const DEFAULT_PROBE: ProbeConfig = {
  enabled: true, waitMs: 1000, count: 3, minIntervalMs: 1000, maxIntervalMs: 2000, announceWaitMs: 2000,
};

export interface ResolvedClientConfig {
  interface: string;
  portGuid: bigint;
  clientId: ClientIdChoice;
  followPortChange: boolean;
  hostName: string | null;
  link: LinkInfo;
  parameterRequestList: readonly number[];
  maxMessageSize: number | null;
  broadcastFlag: boolean;
  backoffMs: readonly number[];
  jitterMs: number;
  initialDelayMinMs: number;
  initialDelayMaxMs: number;
  selectWindowMs: number;
  requestAttempts: number;
  rebootTimeoutMs: number;
  rebootFallback: 'keep' | 'discover';
  renewMinRetransmitMs: number;
  nakDelayMs: number;
  declineWaitMs: number;
  failAfterMs: number;
  probe: ProbeConfig;
}

export class ClientConfigError extends Error {
  override readonly name = 'ClientConfigError';
  readonly code = 'BAD_CLIENT_CONFIG';
}

function nonNegative(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) throw new ClientConfigError(`${name}: ${v} is not a non-negative number`);
  return v;
}

export function resolveConfig(c: ClientConfig): ResolvedClientConfig {
  const backoffMs = c.backoffMs ?? [4000, 8000, 16000, 32000, 64000];
  if (backoffMs.length === 0) throw new ClientConfigError('backoffMs: at least one delay is needed');
  backoffMs.forEach((d, i) => nonNegative(`backoffMs[${i}]`, d));
  const jitterMs = nonNegative('jitterMs', c.jitterMs ?? 1000);
  if (jitterMs >= Math.min(...backoffMs) && Math.min(...backoffMs) > 0) {
    throw new ClientConfigError(`jitterMs ${jitterMs} must be below the shortest backoff delay`);
  }
  const initialDelayMinMs = nonNegative('initialDelayMinMs', c.initialDelayMinMs ?? 0);
  const initialDelayMaxMs = nonNegative('initialDelayMaxMs', c.initialDelayMaxMs ?? initialDelayMinMs);
  if (initialDelayMaxMs < initialDelayMinMs) throw new ClientConfigError('initialDelayMaxMs is below initialDelayMinMs');
  const requestAttempts = c.requestAttempts ?? 5;
  if (!Number.isInteger(requestAttempts) || requestAttempts < 1) throw new ClientConfigError(`requestAttempts: ${requestAttempts}`);
  const link = c.link ?? { mode: 'datagram', datagramMtu: 2044 };
  const probe = { ...DEFAULT_PROBE, ...c.probe };
  if (probe.maxIntervalMs < probe.minIntervalMs) throw new ClientConfigError('probe.maxIntervalMs is below probe.minIntervalMs');
  return {
    interface: c.interface,
    portGuid: c.portGuid,
    clientId: c.clientId ?? { form: 'duid-en' },
    followPortChange: c.followPortChange ?? false,
    hostName: c.hostName ?? null,
    link,
    parameterRequestList: c.parameterRequestList ?? DEFAULT_PARAMETER_REQUEST_LIST,
    maxMessageSize: c.maxMessageSize ?? null,
    broadcastFlag: c.broadcastFlag ?? true,
    backoffMs,
    jitterMs,
    initialDelayMinMs,
    initialDelayMaxMs,
    selectWindowMs: nonNegative('selectWindowMs', c.selectWindowMs ?? 1000),
    requestAttempts,
    rebootTimeoutMs: nonNegative('rebootTimeoutMs', c.rebootTimeoutMs ?? 10_000),
    rebootFallback: c.rebootFallback ?? 'keep',
    renewMinRetransmitMs: nonNegative('renewMinRetransmitMs', c.renewMinRetransmitMs ?? 60_000),
    nakDelayMs: nonNegative('nakDelayMs', c.nakDelayMs ?? 2000),
    declineWaitMs: nonNegative('declineWaitMs', c.declineWaitMs ?? 10_000),
    failAfterMs: nonNegative('failAfterMs', c.failAfterMs ?? 60_000),
    probe,
  };
}
