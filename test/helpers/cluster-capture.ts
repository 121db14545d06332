// The captures of an ipoib-cluster DHCP boot (--pcap DLT 242, --pcap-raw DLT 147) read by tshark,
// the referee: every frame dissected, none malformed, DORA with htype 32 / hlen 0 for every host,
// IPoIB ARP, and one SA MCMemberRecord join per port. Shared by the in-process and the
// multi-process cluster tests.
import { spawnSync } from 'node:child_process';
import type { Test } from 'tap';
import { TSHARK_USER0_INFINIBAND_ARGS } from '../../link/wire/pcap.js';

export interface CaptureCounts {
  /** Records in the --pcap file, as the run reported them. */
  ipoibPackets: number;
  /** Records in the --pcap-raw file, as the run reported them. */
  frames: number;
}

/** `hosts` booting hosts and `servers` DHCP servers, each joining the broadcast group once. */
export function checkBootCaptures(t: Test, ipoib: string, raw: string, counts: CaptureCounts, hosts: number, servers = 1): void {
  // tshark binds DHCP to ports 67/68 only: the cluster's OFED-style ports are named to it.
  const decodeAs = ['-d', `udp.port==${0x8043},dhcp`, '-d', `udp.port==${0x8044},dhcp`];
  const tshark = (args: string[]): string => {
    const p = spawnSync('tshark', [...decodeAs, ...args], { encoding: 'utf8' });
    t.equal(p.status, 0, `tshark ${args.join(' ')}: ${p.stderr}`);
    return p.stdout;
  };
  const protos = tshark(['-r', ipoib, '-T', 'fields', '-e', 'frame.protocols']).trim().split('\n');
  t.equal(protos.length, counts.ipoibPackets, 'one frame per captured IPoIB packet');
  t.ok(protos.every((p) => p.startsWith('ipoib:')), 'LINKTYPE_IPOIB frames dissected as IPoIB');
  for (const want of [':arp', ':ip:udp:dhcp', ':ip:icmp']) t.ok(protos.some((p) => p.includes(want)), `tshark sees ${want.slice(1)}`);
  t.equal(tshark(['-r', ipoib, '-Y', '_ws.malformed || _ws.expert.severity >= "error"']).trim(), '', 'no malformed frame');
  const dhcp = tshark(['-r', ipoib, '-Y', 'dhcp', '-T', 'fields', '-e', 'dhcp.hw.type', '-e', 'dhcp.hw.len', '-e', 'dhcp.option.dhcp']).trim().split('\n');
  t.equal(dhcp.length, 4 * hosts, `DISCOVER, OFFER, REQUEST, ACK for each of ${hosts} hosts`);
  t.ok(dhcp.every((l) => /^(0x0*20|32)\t0\t[1235]$/.test(l)), 'every DHCP message with htype 32 (InfiniBand) and hlen 0');
  t.same([...new Set(dhcp.map((l) => l.split('\t')[2]))].sort(), ['1', '2', '3', '5'], 'DISCOVER, OFFER, REQUEST, ACK');
  const arpHw = tshark(['-r', ipoib, '-Y', 'arp', '-T', 'fields', '-e', 'arp.hw.type', '-e', 'arp.hw.size']).trim().split('\n');
  t.ok(arpHw.length > 0 && arpHw.every((l) => l === '32\t20'), 'ARP with htype 32, hlen 20');

  const rawProtos = tshark([...TSHARK_USER0_INFINIBAND_ARGS, '-r', raw, '-T', 'fields', '-e', 'frame.protocols']).trim().split('\n');
  t.equal(rawProtos.length, counts.frames, 'one frame per captured raw frame');
  t.ok(rawProtos.every((p) => p.startsWith('user_dlt:infiniband')), 'every raw frame dissected as InfiniBand');
  const joins = tshark([...TSHARK_USER0_INFINIBAND_ARGS, '-r', raw, '-Y', 'infiniband.mad.mgmtclass == 0x03 && infiniband.mad.attributeid == 0x0038',
    '-T', 'fields', '-e', 'infiniband.mad.method']).trim().split('\n');
  t.equal(joins.filter((m) => m === '0x02').length, hosts + servers, 'an SA Set(MCMemberRecord) join per host, servers included');
  t.equal(joins.filter((m) => m === '0x81').length, hosts + servers, 'and its GetResp');
  t.equal(tshark([...TSHARK_USER0_INFINIBAND_ARGS, '-r', raw, '-Y', '_ws.malformed']).trim(), '', 'no malformed raw frame');
}
