// The IPoIB layer in one import: hosts, interfaces, UDP sockets (the DatagramEndpoint seam), errors, logs.
export { Host, CONF_KEYS, type HostOptions, type LinkRow, type AddrRow, type PingResult, type PingReply, type PingOptions, type ConfKey } from './host.js';
export { IpoibInterface, type IpoibMode, type PacketType, type IpoibNeighRow } from './interface.js';
export { UdpSocket, type DatagramEndpoint, type DatagramMeta, type SendOptions, type SocketError } from './udp-socket.js';
export { IpoibError, isIpoibError, type IpoibErrorCode } from './errors.js';
export { IPOIB_EVENT_CHANNEL, type IpoibEvent, type IpoibLogger, type LogLevel } from './log.js';
export { IFACE_DROP_REASONS, type InterfaceStats, type IpStats } from './counters.js';
export type { NeighbourRow, NeighState } from './neighbour-table.js';
export type { Route } from './routes.js';
export * as constants from './constants.js';
