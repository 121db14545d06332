// --partitions P: the hosts spread round-robin over P InfiniBand partitions, written as the
// partitions.conf OpenSM would read (opensm doc/partition-config.txt) and handed to the fabric's SM.
//
//   Default=0x7fff, ipoib : SELF=full, <server port GUIDs>=full ;
//   p1=0x0001, ipoib : SELF=full, <servers>=full, <hosts 1, P+1, 2P+1, ...>=full ;
//   ...
//
// A host is a full member of its own partition only, so its port's P_Key table holds that one P_Key
// and its ib0 (which takes P_Key index 0, as the kernel's parent interface does: ipoib_main.c
// ipoib_pkey_dev_check_presence()) is in that partition; no other host is reachable at the link
// layer. The servers are full members of every partition: their ib0 stays in the default partition
// and they serve partition k through a child interface ib0.800k (create_child), each with its own
// subnet 10.k.0.0/16. The SM port is a member of every partition (SELF=full) because a host's SA
// MADs carry the P_Key of its index 0 and the SA answers on the same P_Key.
import { deriveNodeGuid, derivePortGuid } from '../../link/fabric/guid.js';
import { parsePartitions, type Partition } from '../../link/fabric/partitions.js';
import { formatGuid } from '../../link/wire/ib-address.js';

/** Partition k (1-based) is P_Key 0x8000 | k (full membership). */
export function partitionPkey(k: number): number {
  return 0x8000 | k;
}

/** The child interface a server uses for partition k: ib0.8001, like `echo 0x8001 > create_child`. */
export function partitionInterface(k: number): string {
  return `ib0.${partitionPkey(k).toString(16)}`;
}

/** Partition (1-based) of the i-th host (0-based): round-robin. */
export function partitionOfHost(i: number, partitions: number): number {
  return (i % partitions) + 1;
}

/** 10.k.0.0/16: the network of partition k (k = 0 is the unpartitioned 10.0.0.0/16). */
export function partitionNetwork(k: number): number {
  return (0x0a000000 | (k << 16)) >>> 0;
}

function portGuidOf(name: string): string {
  return formatGuid(derivePortGuid(deriveNodeGuid(name), 1));
}

/** The partitions.conf text for hosts (round-robin) and servers (members of all). */
export function partitionsConf(hostNames: readonly string[], serverNames: readonly string[], partitions: number): string {
  const servers = serverNames.map((s) => `${portGuidOf(s)}=full`);
  const lines = [
    `# ipoib-cluster --partitions ${partitions} (generated): hosts round-robin, servers in every partition`,
    `Default=0x7fff, ipoib : ${['SELF=full', ...servers].join(', ')} ;`,
  ];
  for (let k = 1; k <= partitions; k++) {
    const members = ['SELF=full', ...servers];
    for (let i = k - 1; i < hostNames.length; i += partitions) members.push(`${portGuidOf(hostNames[i]!)}=full`);
    lines.push(`p${k}=0x${k.toString(16).padStart(4, '0')}, ipoib : ${members.join(', ')} ;`);
  }
  return lines.join('\n') + '\n';
}

/** parsePartitions() of partitionsConf(): what the fabric's SM runs with. */
export function clusterPartitions(hostNames: readonly string[], serverNames: readonly string[], partitions: number): Partition[] {
  return parsePartitions(partitionsConf(hostNames, serverNames, partitions), 'ipoib-cluster partitions.conf');
}
