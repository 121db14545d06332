// DHCP message codec (protocol/): ns per message for what a server does per packet — decode an RFC 4390
// DISCOVER and encode an ACK with ~12 options into a reused buffer — plus the reverse directions and
// the typed read of a few options a server looks at.
import { nsPerOp, type BenchResult } from './harness.js';
import {
  BOOTREPLY, BOOTREQUEST, FLAG_BROADCAST, decodeDhcpMessage, dhcpMessageLength, emptyDhcpMessage, encodeDhcpMessage,
  getClientIdentifier, getMessageType, getParameterRequestList, mellanoxClientId, optionFromText, parseIpv4,
  type DhcpMessage,
} from '../protocol/index.js';

const GUID = 0x7cfe900300292652n;

function discover(): DhcpMessage {
  return {
    ...emptyDhcpMessage(BOOTREQUEST), htype: 32, hlen: 0, xid: 0x3903f326, flags: FLAG_BROADCAST,
    options: [
      { code: 53, data: Buffer.from([1]) },
      { code: 61, data: mellanoxClientId(GUID) },
      { code: 57, data: Buffer.from([0x05, 0xc0]) },
      { code: 55, data: Buffer.from([1, 3, 6, 12, 15, 26, 28, 42, 51, 54, 58, 59, 119, 121]) },
    ],
  };
}

function ack(): DhcpMessage {
  const o = (name: string, text: string): { code: number; data: Buffer } => optionFromText(name, text);
  return {
    ...emptyDhcpMessage(BOOTREPLY), htype: 32, hlen: 0, xid: 0x3903f326, flags: FLAG_BROADCAST,
    yiaddr: parseIpv4('10.10.0.42'), siaddr: parseIpv4('10.10.0.1'),
    options: [
      o('dhcp-message-type', '5'), o('dhcp-server-identifier', '10.10.0.1'), o('dhcp-lease-time', '86400'),
      o('dhcp-renewal-time', '43200'), o('dhcp-rebinding-time', '75600'), o('subnet-mask', '255.255.0.0'),
      o('routers', '10.10.0.254'), o('domain-name-servers', '10.10.0.2, 10.10.0.3'), o('domain-name', 'ib.example.org'),
      o('interface-mtu', '2044'), o('classless-static-route', '10.20.0.0/16 - 10.10.0.253, 0.0.0.0/0 - 10.10.0.254'),
      o('domain-search', 'ib.example.org, example.org'), o('dhcp-client-identifier', 'ff:00:00:00:00:00:02:00:00:02:c9:00:7c:fe:90:03:00:29:26:52'),
    ],
  };
}

export async function run(): Promise<BenchResult[]> {
  const d = discover();
  const a = ack();
  const dBytes = encodeDhcpMessage(d);
  const aBytes = encodeDhcpMessage(a);
  const dBuf = Buffer.alloc(dBytes.length);
  const aBuf = Buffer.alloc(aBytes.length);
  const suite = 'dhcp';
  const results: BenchResult[] = [];
  const add = (name: string, fn: () => unknown, note: string): void => {
    results.push({ suite, name, value: nsPerOp(fn, 50_000), unit: 'ns/op', note });
  };
  add(`decode DISCOVER (${dBytes.length} B, 4 options)`, () => decodeDhcpMessage(dBytes), 'RFC 4390 client, Mellanox client-id');
  add(`encode DISCOVER into a reused buffer`, () => encodeDhcpMessage(d, dBuf), `${dhcpMessageLength(d)} B`);
  add(`decode ACK (${aBytes.length} B, ${a.options.length} options)`, () => decodeDhcpMessage(aBytes), 'incl. 119, 121');
  add(`encode ACK (${a.options.length} options) into a reused buffer`, () => encodeDhcpMessage(a, aBuf), `${aBytes.length} B`);
  add('encode ACK, allocating', () => encodeDhcpMessage(a), `${aBytes.length} B`);
  add('decode DISCOVER + read type, client-id, PRL', () => {
    const m = decodeDhcpMessage(dBytes);
    return getMessageType(m)! + getClientIdentifier(m)!.length + getParameterRequestList(m).length;
  }, 'what a server reads per request');
  return results;
}
