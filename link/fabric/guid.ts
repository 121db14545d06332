// GUIDs of emulated HCAs. A GUID not given explicitly is derived from the host name, so a host that
// restarts or re-attaches after a crash comes back with the same GUIDs — and so the SM, which keys
// its guid2lid table on them (OpenSM osm_lid_mgr.c), gives it its LID back.
import { createHash } from 'node:crypto';

/** Mellanox's IEEE OUI (00:02:c9), the prefix most IB GUIDs in the field carry. */
const OUI = 0x0002c9n;

/**
 * Node GUID for a host name: OUI in the top 24 bits, 36 bits of SHA-256 of the name, and the low
 * 4 bits zero so that port GUIDs (node GUID + port number, as ConnectX numbers them) of one HCA
 * never collide with another node's. 36 bits keep the odds of any collision among 10,000 hosts
 * below 1e-3.
 */
export function deriveNodeGuid(hostName: string): bigint {
  const h = createHash('sha256').update(`ipoib-dhcp node ${hostName}`).digest();
  const bits36 = (BigInt(h.readUInt32BE(0)) << 4n) | BigInt(h[4]! >> 4);
  return (OUI << 40n) | (bits36 << 4n);
}

export function derivePortGuid(nodeGuid: bigint, portNum: number): bigint {
  return nodeGuid + BigInt(portNum);
}
