// Drop reasons the daemon adds to the engine's closed list (drop-reasons.ts): the engine decides
// about a message, the daemon about whether its answer may leave — and it may not before the lease
// writes are durable. Same shape as DROP_REASONS: a stable id and one sentence for operators.
import { DROP_REASON_NAMES, type DropReason } from './drop-reasons.js';

export const DAEMON_DROP_REASONS = {
  'db-unavailable': {
    id: 'DHCPD_DROP_DB_UNAVAILABLE',
    text: 'The lease database is unreachable or failing, so no lease can be made durable: the message is not answered (no lease is acknowledged before it is durable); answers resume once the database is back.',
  },
  'commit-failed': {
    id: 'DHCPD_DROP_COMMIT_FAILED',
    text: 'The lease database refused a lease write (another server sharing the pool took the address, or the version read was stale): the reply is withheld and the client retries.',
  },
  'overloaded': {
    id: 'DHCPD_DROP_OVERLOADED',
    text: 'The server is past its capacity (too many lease commits in flight, or too many DISCOVERs waiting): new DISCOVERs are shed first, then messages that would need a commit; the client retries, and exchanges already under way are finished first.',
  },
  'stale': {
    id: 'DHCPD_DROP_STALE',
    text: 'The message waited in the server\'s receive queue longer than its client waits for an answer (by then it has retransmitted or given up), so answering it would only delay fresher messages.',
  },
} as const;

export type DaemonDropReason = keyof typeof DAEMON_DROP_REASONS;
export type AnyDropReason = DropReason | DaemonDropReason;

/** Every reason a received message can go unanswered: the engine's, then the daemon's. */
export const ALL_DROP_REASONS: readonly AnyDropReason[] = [
  ...DROP_REASON_NAMES, ...(Object.keys(DAEMON_DROP_REASONS) as DaemonDropReason[]),
];
