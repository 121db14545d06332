// --pcap and --pcap-raw: the switch's capture point (link/fabric/capture-file.ts) written to files.
// --pcap FILE holds the IPoIB packets (ARP, IPv4: DHCP, ICMP) under LINKTYPE_IPOIB 242 with
// Wireshark's 40-byte pseudo header, which tshark decodes with no option; --pcap-raw FILE holds
// every raw IB frame (SA and CM MADs too) under DLT_USER0 147, which tshark 4.0 decodes with the
// user_dlts option of link/wire/pcap.ts (TSHARK_USER0_INFINIBAND_ARGS). Timestamps are the fabric's
// virtual clock placed at the run's wall-clock start.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureFile } from '../../link/fabric/capture-file.js';
import type { Fabric } from '../../link/fabric/fabric.js';

export interface ClusterCapture {
  stats(): { frames: number; ipoibPackets: number; lost: number };
  close(): Promise<void>;
}

export function startCapture(fabric: Fabric, files: { ipoib?: string | undefined; raw?: string | undefined }, epochMs: number): ClusterCapture | undefined {
  if (files.ipoib === undefined && files.raw === undefined) return undefined;
  // CaptureFile always writes the raw frames; without --pcap-raw they go to a scratch file.
  const scratch = files.raw === undefined ? mkdtempSync(join(tmpdir(), 'ipoib-cluster-pcap-')) : undefined;
  const cap = new CaptureFile(fabric, {
    file: files.raw ?? join(scratch!, 'raw.pcap'),
    ...(files.ipoib !== undefined ? { ipoibFile: files.ipoib } : {}),
    toEpochUs: (ms) => Math.round((epochMs + ms) * 1000),
  });
  let closing: Promise<void> | undefined;
  return {
    stats: () => cap.stats,
    close(): Promise<void> {
      closing ??= cap.close().finally(() => {
        if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
      });
      return closing;
    },
  };
}
