// The closed list of reasons the server engine drops a received message, in the manner of Kea's
// src/bin/dhcp4/dhcp4_messages.mes: each reason has a stable id (scripts, metrics and the control
// socket key on it) and one sentence for operators. Every drop is counted by reason.

export const DROP_REASONS = {
  'malformed': {
    id: 'DHCPD_DROP_MALFORMED',
    text: 'The datagram is not a decodable DHCP message; the detail names the field and byte offset the decoder stopped at.',
  },
  'not-request': {
    id: 'DHCPD_DROP_NOT_REQUEST',
    text: 'The message is a BOOTREPLY (op 2) or has an unknown op: only clients\' BOOTREQUESTs are answered.',
  },
  'bootp': {
    id: 'DHCPD_DROP_BOOTP',
    text: 'The message has no DHCP message type (option 53): plain BOOTP is not served.',
  },
  'unsupported-type': {
    id: 'DHCPD_DROP_UNSUPPORTED_TYPE',
    text: 'The DHCP message type is not one a client sends to a server (DISCOVER, REQUEST, DECLINE, RELEASE, INFORM).',
  },
  'ipoib-no-client-id': {
    id: 'DHCPD_DROP_IPOIB_NO_CLIENT_ID',
    text: 'An InfiniBand client (htype 32) sent no client identifier (option 61), which RFC 4390 requires and without which it cannot be told apart.',
  },
  'no-client-identity': {
    id: 'DHCPD_DROP_NO_CLIENT_IDENTITY',
    text: 'The client sent neither a client identifier nor a usable hardware address (hlen 1..16), so no lease can be keyed on it.',
  },
  'rate-limited': {
    id: 'DHCPD_DROP_RATE_LIMITED',
    text: 'The client sent more messages than its per-client budget allows; the excess is dropped so that it cannot stall other clients.',
  },
  'unknown-interface': {
    id: 'DHCPD_DROP_UNKNOWN_INTERFACE',
    text: 'The message arrived on an interface the engine was not configured with, so it has no server identifier to answer from.',
  },
  'no-subnet': {
    id: 'DHCPD_DROP_NO_SUBNET',
    text: 'No configured subnet matches the relay address, link selection, client address or receiving interface (or the client\'s classes exclude it).',
  },
  'pool-exhausted': {
    id: 'DHCPD_DROP_POOL_EXHAUSTED',
    text: 'Every address of every pool the client may use is leased, offered, reserved or declined: no OFFER is made.',
  },
  'other-server': {
    id: 'DHCPD_DROP_OTHER_SERVER',
    text: 'The message names another server\'s identifier (option 54): the client chose that server, and any offer made to it here is withdrawn.',
  },
  'not-authoritative': {
    id: 'DHCPD_DROP_NOT_AUTHORITATIVE',
    text: 'A REQUEST asked for an address this server has no record of or cannot confirm, and the subnet is not authoritative, so RFC 2131 asks for silence rather than a NAK.',
  },
  'request-invalid': {
    id: 'DHCPD_DROP_REQUEST_INVALID',
    text: 'A REQUEST carries neither ciaddr nor a requested address (option 50), so it names no address to confirm.',
  },
  'decline-invalid': {
    id: 'DHCPD_DROP_DECLINE_INVALID',
    text: 'A DECLINE names no address, or an address that is not leased to this client; nothing is marked declined.',
  },
  'release-invalid': {
    id: 'DHCPD_DROP_RELEASE_INVALID',
    text: 'A RELEASE names an address that is not leased to this client; nothing is released.',
  },
  'reply-too-large': {
    id: 'DHCPD_DROP_REPLY_TOO_LARGE',
    text: 'The reply does not fit the client\'s maximum message size even after optional options were left out.',
  },
} as const;

export type DropReason = keyof typeof DROP_REASONS;
export const DROP_REASON_NAMES = Object.keys(DROP_REASONS) as DropReason[];

export interface Drop {
  reason: DropReason;
  /** What exactly was wrong (a WireError's field and offset, the address, the server id...). */
  detail: string;
}
