// DHCP client engine (client/): cost of one client's whole acquisition in virtual time — DISCOVER,
// OFFER, REQUEST, ACK, probe answer, bind — and of one renewal, with replies built and encoded by a
// minimal server loop, so a 10,000-host boot simulation knows its client-side budget.
import { performance } from 'node:perf_hooks';
import { median, type BenchResult } from './harness.js';
import {
  BOOTREPLY, DhcpMessageType, decodeDhcpMessage, emptyDhcpMessage, encodeDhcpMessage, getMessageType, optionFromText,
  type DhcpMessage,
} from '../protocol/index.js';
import { ClientEngine, type ClientAction } from '../client/index.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const COMMON = [
  optionFromText('dhcp-server-identifier', '10.0.0.1'), optionFromText('dhcp-lease-time', '3600'),
  optionFromText('subnet-mask', '255.255.0.0'), optionFromText('routers', '10.0.0.1'),
  optionFromText('domain-name-servers', '10.0.0.2'), optionFromText('interface-mtu', '2044'),
];

function reply(req: DhcpMessage, type: number, yiaddr: number): Buffer {
  const m = emptyDhcpMessage(BOOTREPLY);
  m.htype = 32; m.xid = req.xid; m.flags = req.flags; m.yiaddr = yiaddr;
  m.options = [{ code: 53, data: Buffer.from([type]) }, ...COMMON];
  return encodeDhcpMessage(m);
}

/** Feeds each send to the server and the reply back, until the engine stops sending. */
function exchange(e: ClientEngine, actions: ClientAction[], now: number, yiaddr: number): number {
  let sends = 0;
  const queue = [...actions];
  while (queue.length > 0) {
    const a = queue.shift()!;
    if (a.kind === 'probe') queue.push(...e.probeResult(false, now));
    if (a.kind !== 'send') continue;
    sends++;
    const req = decodeDhcpMessage(a.bytes);
    const type = getMessageType(req);
    if (type === DhcpMessageType.DHCPDISCOVER) queue.push(...e.handle(reply(req, DhcpMessageType.DHCPOFFER, yiaddr), now));
    else if (type === DhcpMessageType.DHCPREQUEST) queue.push(...e.handle(reply(req, DhcpMessageType.DHCPACK, yiaddr), now));
  }
  return sends;
}

export async function run(): Promise<BenchResult[]> {
  const clients = 2000;
  const acquire: number[] = [];
  const renew: number[] = [];
  for (let round = 0; round < 7; round++) {
    const engines: ClientEngine[] = [];
    let t = performance.now();
    for (let i = 0; i < clients; i++) {
      const e = new ClientEngine({ interface: 'ib0', portGuid: 0x7cfe900300000000n + BigInt(i), selectWindowMs: 0 });
      exchange(e, e.start(T0, null), T0, 0x0a000100 + i);
      if (e.state !== 'BOUND') throw new Error(`client ${i} not bound: ${e.state}`);
      engines.push(e);
    }
    acquire.push(((performance.now() - t) * 1000) / clients);
    t = performance.now();
    const at = T0 + 1800_000;
    for (let i = 0; i < clients; i++) exchange(engines[i]!, engines[i]!.poll(at), at, 0x0a000100 + i);
    renew.push(((performance.now() - t) * 1000) / clients);
  }
  const note = `${clients} clients per round, median of 7 rounds, server replies encoded/decoded in the loop`;
  return [
    { suite: 'client', name: 'acquire a lease (DORA + probe + bind)', value: median(acquire), unit: 'µs/client', note },
    { suite: 'client', name: 'renew at T1 (REQUEST + ACK)', value: median(renew), unit: 'µs/client', note },
  ];
}
