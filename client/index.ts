// The DHCP client: a pure RFC 2131 state machine for IPoIB (engine.ts) and what it needs around it —
// configuration, client identifiers, leases, the dhclient-script environment and the lease file.
// The daemon (sockets, ARP, interface configuration, hooks) lives elsewhere and executes its actions.

export * from './actions.js';
export * from './config.js';
export * from './client-identifier.js';
export * from './lease.js';
export * from './lease-file.js';
export * from './engine.js';
