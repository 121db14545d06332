// DHCP/BOOTP code points: RFC 951/2131 §2 (op, flags, cookie), RFC 2132 §9.6 (message types),
// IANA ARP hardware types (RFC 4390 §2.1: InfiniBand = 32), option codes used by name in code.

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;

/** The one flag RFC 2131 §2 defines: the client cannot receive unicast before it is configured. */
export const FLAG_BROADCAST = 0x8000;

/** 99.130.83.99 (RFC 2131 §3, RFC 1497). */
export const MAGIC_COOKIE = 0x63825363;

export const SERVER_PORT = 67;
export const CLIENT_PORT = 68;

/** ARP hardware types (IANA "Hardware Types"). */
export const HTYPE_ETHERNET = 1;
export const HTYPE_IEEE802 = 6;
export const HTYPE_INFINIBAND = 32;

/** Fixed header: op..file = 236 bytes, then the 4-byte cookie (RFC 2131 §2, Figure 1). */
export const FIXED_HEADER_LENGTH = 236;
export const OPTIONS_OFFSET = 240;
export const CHADDR_LENGTH = 16;
export const SNAME_LENGTH = 64;
export const FILE_LENGTH = 128;

/** Option 53 values (RFC 2132 §9.6, RFC 4388 for 10-13). */
export const DhcpMessageType = {
  DHCPDISCOVER: 1,
  DHCPOFFER: 2,
  DHCPREQUEST: 3,
  DHCPDECLINE: 4,
  DHCPACK: 5,
  DHCPNAK: 6,
  DHCPRELEASE: 7,
  DHCPINFORM: 8,
  DHCPFORCERENEW: 9,
  DHCPLEASEQUERY: 10,
  DHCPLEASEUNASSIGNED: 11,
  DHCPLEASEUNKNOWN: 12,
  DHCPLEASEACTIVE: 13,
} as const;
export type DhcpMessageTypeValue = (typeof DhcpMessageType)[keyof typeof DhcpMessageType];

/** Option 52 values (RFC 2132 §9.3). */
export const OVERLOAD_FILE = 1;
export const OVERLOAD_SNAME = 2;

/** Option codes the engines use by name (the full table, with Kea's names, is option-defs.ts). */
export const OptionCode = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTERS: 3,
  DOMAIN_NAME_SERVERS: 6,
  HOST_NAME: 12,
  DOMAIN_NAME: 15,
  INTERFACE_MTU: 26,
  BROADCAST_ADDRESS: 28,
  VENDOR_ENCAPSULATED_OPTIONS: 43,
  REQUESTED_ADDRESS: 50,
  LEASE_TIME: 51,
  OPTION_OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_IDENTIFIER: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS_IDENTIFIER: 60,
  CLIENT_IDENTIFIER: 61,
  TFTP_SERVER_NAME: 66,
  BOOT_FILE_NAME: 67,
  USER_CLASS: 77,
  FQDN: 81,
  AGENT_OPTIONS: 82,
  CLIENT_SYSTEM: 93,
  CLIENT_NDI: 94,
  UUID_GUID: 97,
  SUBNET_SELECTION: 118,
  DOMAIN_SEARCH: 119,
  CLASSLESS_STATIC_ROUTE: 121,
  VIVSO_SUBOPTIONS: 125,
  END: 255,
} as const;

/** Option 82 sub-option codes (RFC 3046, 3527, 5107; names as Kea's dhcp-agent-options-space). */
export const AgentSubOption = {
  CIRCUIT_ID: 1,
  REMOTE_ID: 2,
  LINK_SELECTION: 5,
  SUBSCRIBER_ID: 6,
  SERVER_ID_OVERRIDE: 11,
  RELAY_ID: 12,
  RELAY_PORT: 19,
} as const;
