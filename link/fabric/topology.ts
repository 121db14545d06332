// Topology files in ibnetdiscover's output format, the one ibsim reads (ibsim net-examples/,
// sim_net.c parse_netconf(); IPOIB-FACTS §7):
//
//   switchguid=0x2c90000000001
//   Switch 8 "S-1"                  # "ISR9024" lid 1
//   [1]  "H-node1"[1]
//   [2]  "H-node2"[1]
//
//   caguid=0x2c90000000100
//   Ca 1 "H-node1"                  # "node1 HCA-1"
//   [1](2c90000000101)  "S-1"[1]    # lid 3 4xSDR
//
// Supported: node lines (Switch | Hca | Ca | Rt, port count, "id"), caguid= / hcaguids= / switchguid=
// / rtguid= before a node, link lines "[n](portguid) "remote"[m](guid)" with the GUIDs optional,
// comments, and the ignored vendid= / devid= / sysimgguid= / width / speed keywords. A host attaches
// by the node's id (or by the first word of its quoted description, e.g. "node1"). GUIDs not given
// are assigned as ibsim does: CAs from 0x100000, switches from 0x200000 (in steps of 0x100), port
// GUID = node GUID + port. Not supported (error): include, do. The fabric still forwards as one
// switch: a topology fixes names, GUIDs and the switch port each HCA port plugs into.
import { FabricError } from './errors.js';

export interface TopologyNode {
  kind: 'Switch' | 'Ca' | 'Rt';
  id: string;
  description: string | undefined;
  ports: number;
  nodeGuid: bigint;
  portGuids: Map<number, bigint>;
  links: Map<number, { remote: string; remotePort: number }>;
  line: number;
}

export interface TopologyHost {
  nodeGuid: bigint;
  ports: number;
  portGuids: Map<number, bigint>;
  /** HCA port -> number of the switch port its cable goes to. */
  switchPorts: Map<number, number>;
}

export interface Topology {
  nodes: Map<string, TopologyNode>;
  /** CAs by id and by description alias. */
  hosts: Map<string, TopologyHost>;
}

const NODE = /^(Switch|Hca|Ca|Rt)\s+(\d+)\s+"([^"]+)"(.*)$/;
const LINK = /^\[(\d+)\](?:\(([0-9a-fA-Fx]+)\))?\s*"([^"]+)"\s*\[(\d+)\](?:\(([0-9a-fA-Fx]+)\))?(.*)$/;
const GUID_KEY = /^(caguid|hcaguids|switchguid|rtguid)\s*=\s*(0x[0-9a-f]+|\d+)/i;
const IGNORED_KEY = /^(vendid|devid|sysimgguid|width|speed|extspeed)\s*=/i;

function hexGuid(s: string): bigint {
  return BigInt(s.startsWith('0x') || s.startsWith('0X') ? s : '0x' + s);
}

export function parseTopology(text: string, file = 'topology'): Topology {
  const nodes = new Map<string, TopologyNode>();
  let current: TopologyNode | undefined;
  let pendingGuid: bigint | undefined;
  let nextCa = 0x100000n;
  let nextSw = 0x200000n;
  const fail = (line: number, msg: string): never => { throw new FabricError('BAD_CONFIG', `${file}:${line}: ${msg}`); };
  text.split(/\r?\n/).forEach((raw, i) => {
    const n = i + 1;
    const line = raw.trim();
    if (line === '') { current = undefined; return; }
    if (line.startsWith('#')) return;
    if (/^(include|do)\b/.test(line)) fail(n, `"${line.split(/\s+/)[0]}" is not supported`);
    const g = GUID_KEY.exec(line);
    if (g) { pendingGuid = BigInt(g[2]!); return; }
    if (IGNORED_KEY.test(line)) return;
    const nm = NODE.exec(line);
    if (nm) {
      const kind = nm[1] === 'Hca' ? 'Ca' : nm[1] as 'Switch' | 'Ca' | 'Rt';
      const ports = Number(nm[2]);
      if (ports < 1 || ports > 254) fail(n, `${nm[3]}: ${ports} ports is out of range 1..254`);
      const id = nm[3]!;
      if (nodes.has(id)) fail(n, `node "${id}" defined twice`);
      const desc = /#\s*"([^"]*)"/.exec(nm[4] ?? '')?.[1];
      let guid = pendingGuid;
      if (guid === undefined) {
        if (kind === 'Switch') { guid = nextSw; nextSw += 0x100n; } else { guid = nextCa; nextCa += 0x100n; }
      }
      pendingGuid = undefined;
      current = { kind, id, description: desc, ports, nodeGuid: guid, portGuids: new Map(), links: new Map(), line: n };
      nodes.set(id, current);
      return;
    }
    const lk = LINK.exec(line);
    if (lk) {
      if (current === undefined) fail(n, 'link line outside a node record');
      const node = current!;
      const port = Number(lk[1]);
      if (port < 1 || port > node.ports) fail(n, `${node.id} has no port ${port}`);
      if (lk[2] !== undefined && node.kind !== 'Switch') node.portGuids.set(port, hexGuid(lk[2]));
      node.links.set(port, { remote: lk[3]!, remotePort: Number(lk[4]) });
      return;
    }
    fail(n, `cannot read "${line}"`);
  });
  const hosts = new Map<string, TopologyHost>();
  let first: TopologyNode | undefined;
  for (const node of nodes.values()) {
    if (node.kind !== 'Ca') continue;
    first ??= node;
    const switchPorts = new Map<number, number>();
    for (let p = 1; p <= node.ports; p++) {
      if (!node.portGuids.has(p)) node.portGuids.set(p, node.nodeGuid + BigInt(p));
      const l = node.links.get(p);
      if (l && nodes.get(l.remote)?.kind === 'Switch') switchPorts.set(p, l.remotePort);
    }
    for (const [remoteId, remote] of nodes) {
      if (remote.kind !== 'Switch') continue;
      for (const [sp, l] of remote.links) if (l.remote === node.id && !switchPorts.has(l.remotePort)) switchPorts.set(l.remotePort, sp);
      void remoteId;
    }
    const h: TopologyHost = { nodeGuid: node.nodeGuid, ports: node.ports, portGuids: node.portGuids, switchPorts };
    hosts.set(node.id, h);
    const alias = node.description?.split(/\s+/)[0];
    if (alias && !nodes.has(alias) && !hosts.has(alias)) hosts.set(alias, h);
  }
  return { nodes, hosts };
}
