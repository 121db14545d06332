// DHCP over InfiniBand: RFC 4390 §2.1 (client: htype 32, hlen 0, chaddr zero, option 61 per RFC
// 4361) and §2.2 / RFC 2131 §4.1 (where a server sends its reply), read leniently: the field has
// FlexBoot (hlen 6 + MAC), RHEL 8 dhclient (hlen 8 + GUID) and others (IPOIB-FACTS §5.3-5.4).

import { FLAG_BROADCAST, HTYPE_ETHERNET, HTYPE_INFINIBAND, DhcpMessageType, CHADDR_LENGTH } from './dhcp-constants.js';
import { getClientIdentifier, getMessageType, type DhcpMessage } from './dhcp-message.js';
import { clientIdForm, type ClientIdForm } from './client-id.js';
import { formatHex } from './option-types.js';

/** Which hardware-address convention a message's htype/hlen/chaddr follow. */
export type HardwareVariant =
  | 'rfc4390'          // htype 32, hlen 0 (systemd, RHEL 7 dhclient, RFC-conformant clients)
  | 'flexboot'         // htype 32, hlen 6, GUID-derived MAC in chaddr (NVIDIA FlexBoot PXE)
  | 'patched-dhclient' // htype 32, hlen 8, port GUID in chaddr (RHEL 8 / Fedora ISC dhclient IPoIB patch)
  | 'ipoib-20'         // htype 32, hlen 20: the full IPoIB address cannot fit the 16-byte chaddr (invalid)
  | 'ethernet'         // htype 1, hlen 6
  | 'other';

export function isIpoibMessage(m: DhcpMessage): boolean {
  return m.htype === HTYPE_INFINIBAND;
}

export function classifyHardware(m: DhcpMessage): HardwareVariant {
  if (m.htype === HTYPE_INFINIBAND) {
    switch (m.hlen) {
      case 0: return 'rfc4390';
      case 6: return 'flexboot';
      case 8: return 'patched-dhclient';
      case 20: return 'ipoib-20';
      default: return 'other';
    }
  }
  return m.htype === HTYPE_ETHERNET && m.hlen === 6 ? 'ethernet' : 'other';
}

export interface Rfc4390Report {
  ipoib: boolean;
  variant: HardwareVariant;
  /** Option 61 present (RFC 4390 §2.1: MUST for IPoIB clients). */
  hasClientId: boolean;
  clientIdForm: ClientIdForm | null;
  /** Every RFC 4390 §2.1 rule holds (only meaningful when ipoib). */
  conformant: boolean;
  /** One sentence per broken rule, for logs; servers still answer (be liberal). */
  problems: string[];
}

/** What RFC 4390 §2.1 says about a client message, without rejecting anything. */
export function checkRfc4390(m: DhcpMessage): Rfc4390Report {
  const ipoib = isIpoibMessage(m);
  const cid = getClientIdentifier(m);
  const form = cid === undefined ? null : clientIdForm(cid);
  const problems: string[] = [];
  if (ipoib) {
    if (m.hlen !== 0) problems.push(`hlen is ${m.hlen}, RFC 4390 requires 0`);
    if (m.hlen > CHADDR_LENGTH) problems.push(`hlen ${m.hlen} exceeds the ${CHADDR_LENGTH}-byte chaddr`);
    if (!m.chaddr.every((b) => b === 0)) problems.push('chaddr is not all zero');
    if (cid === undefined) problems.push('no client identifier (option 61)');
    else if (cid[0] !== 0xff) problems.push(`client identifier type ${cid[0] ?? '(empty)'} is not RFC 4361 (255)`);
  }
  return {
    ipoib, variant: classifyHardware(m), hasClientId: cid !== undefined, clientIdForm: form,
    conformant: ipoib && problems.length === 0, problems,
  };
}

/**
 * The key a server files a client under: option 61's bytes as lowercase colon hex (the text Kea's
 * "client-id", dnsmasq's "id:" and ISC's dhcp-client-identifier use). Without option 61, a client with
 * a usable chaddr (hlen 1..16) gets "hw:<htype>:<chaddr hex>" (never equal to a client-id key);
 * otherwise null: an IPoIB client without option 61 has no stable identity (chaddr is empty or a
 * FlexBoot/dhclient guess), so the server cannot key it.
 */
export function clientIdentityKey(m: DhcpMessage): string | null {
  const cid = getClientIdentifier(m);
  if (cid !== undefined && cid.length > 0) return formatHex(cid);
  if (m.hlen >= 1 && m.hlen <= CHADDR_LENGTH) return `hw:${m.htype}:${formatHex(m.chaddr.subarray(0, m.hlen))}`;
  return null;
}

/** Where a server sends its reply to `request` (RFC 2131 §4.1, RFC 4390 §2.2). Addresses are numbers. */
export type ReplyRoute =
  | { kind: 'relay'; address: number }    // giaddr != 0: to the relay's server port
  | { kind: 'ciaddr'; address: number }   // client has an address (renew/rebind/inform): unicast
  | { kind: 'broadcast' }                 // 255.255.255.255 to the client port (IPoIB: the broadcast group)
  | { kind: 'yiaddr'; address: number };  // link-layer unicast to chaddr, IP to yiaddr (Ethernet-style only)

/**
 * RFC 2131 §4.1: relay if giaddr is set; else a NAK is broadcast; else unicast to ciaddr if set;
 * else broadcast when the BROADCAST flag is set. Otherwise RFC 2131 would unicast to yiaddr at
 * chaddr — impossible on IPoIB (the link needs the 20-byte address, which chaddr never holds; hlen
 * 0 is the norm, RFC 4390 §2.2) and for any hlen 0 or > 16 (dnsmasq's rule), so those broadcast too.
 * A server that learned the client's 20-byte address from the datagram may still send the broadcast
 * IP packet as a link-layer unicast; that is the link layer's choice, not this function's.
 */
export function replyRoute(request: DhcpMessage, reply: DhcpMessage): ReplyRoute {
  if (request.giaddr !== 0) return { kind: 'relay', address: request.giaddr };
  if (getMessageType(reply) === DhcpMessageType.DHCPNAK) return { kind: 'broadcast' };
  if (request.ciaddr !== 0) return { kind: 'ciaddr', address: request.ciaddr };
  if ((request.flags & FLAG_BROADCAST) !== 0) return { kind: 'broadcast' };
  if (request.htype === HTYPE_INFINIBAND || request.hlen === 0 || request.hlen > CHADDR_LENGTH) return { kind: 'broadcast' };
  return { kind: 'yiaddr', address: reply.yiaddr };
}

/** True when the reply goes to 255.255.255.255 (see replyRoute). */
export function shouldBroadcastReply(request: DhcpMessage, reply: DhcpMessage): boolean {
  return replyRoute(request, reply).kind === 'broadcast';
}
