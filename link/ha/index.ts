// Interface high availability in one import: the HA service (primary/secondary failover, OFED's
// ipoib_ha.pl) and active-backup bonding (ib-bonding), over the host operations in ha-host.ts.
export { HaService, HA_CARRIER_TIMEOUT_MS, HA_DEFAULT_PRIMARY, HA_DEFAULT_SECONDARY, HA_POLL_MS, formatHaStatus,
  type HaEvent, type HaEventKind, type HaFailover, type HaOptions, type HaState, type HaStatus } from './ha-service.js';
export { Bond, BOND_DEFAULT_SLAVES, BOND_MIIMON_MS, formatBondStatus, type BondEvent, type BondOptions, type BondSlaveStatus, type BondStatus } from './bond.js';
export { HaError, captureIdentity, deviceOwner, ipv4GroupOfMgid, type HaErrorCode, type HaHost, type HaLinkView, type IpIdentity } from './ha-host.js';
