// Hostile-input and size limits of the DHCP codec (RFC 2131 §2, RFC 2132 §9.10, RFC 3396).
// Every decoder loop is bounded by the input length or by one of these (codec/contract.ts, point 1).

/** IPv4 + UDP header bytes that option 57 counts and the DHCP payload does not (RFC 2131 §2: 576 - 20 - 8 - 236 = 312). */
export const IP_UDP_OVERHEAD = 28;

/** Largest DHCP payload we decode or encode: the largest UDP payload over IPv4 (65535 - 20 - 8). */
export const MAX_MESSAGE_SIZE = 65_507;

/** Option 57 "maximum DHCP message size" floor and the default when a peer sent none (RFC 2132 §9.10). */
export const MIN_MAX_MESSAGE_SIZE = 576;
export const DEFAULT_MAX_MESSAGE_SIZE = 576;

/** Encoded messages are padded to this length, like ISC dhcp (BOOTP_MIN_LEN) and RFC 1542 relays expect. */
export const BOOTP_MIN_LENGTH = 300;

/**
 * Option instances per message, counted across options, file and sname (PAD excluded). A legitimate
 * 64 KiB message split into 255-byte instances needs ~256; 10,000 two-byte options are an attack.
 */
export const MAX_OPTION_INSTANCES = 1024;

/**
 * Overload nesting: option 52 in the options field may point into file/sname (depth 1); an option 52
 * found inside file or sname is an error, never followed (so it can never loop).
 */
export const MAX_OVERLOAD_DEPTH = 1;

/** RFC 1035 §2.3.4: a domain name is at most 255 octets on the wire, a label at most 63. */
export const MAX_DOMAIN_NAME_LENGTH = 255;
export const MAX_LABEL_LENGTH = 63;

/** Compression pointers followed while reading one name (each must point backwards, so this is a backstop). */
export const MAX_NAME_POINTERS = 128;

/** Elements of one decoded array option or record (bounded by the option length anyway). */
export const MAX_ARRAY_ELEMENTS = 16_384;
