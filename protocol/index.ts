// The DHCP protocol layer: message and option codecs (RFC 2131/2132/3396), Kea-named option
// definitions, RFC 4361 client identifiers and RFC 4390 helpers. No I/O; imports only codec/.

export * from './dhcp-constants.js';
export * from './limits.js';
export * from './ipv4.js';
export * from './dhcp-message.js';
export * from './options.js';
export * from './domain-name.js';
export * from './option-types.js';
export * from './option-defs.js';
export * from './client-id.js';
export * from './rfc4390.js';
