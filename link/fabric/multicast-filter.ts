// Early multicast filters registered by a receiving port at the switch (DESIGN.md "Scale"): with
// thousands of ports in a broadcast group, most deliveries are packets the host would drop at once
// (an ARP for someone else's address, a DHCP DISCOVER reaching a host that is not a server). A host
// describes what it listens to as byte matches on the payload; the switch counts a packet that
// matches none as delivered (rcvPkts, rcvBytes, mcRcvPkts) and notListened, and never hands it
// over. Declarative, so a transport between processes can carry it to the fabric daemon.
import type { PacketView } from './packet-view.js';

/** payload[offset + i] & mask[i] === value[i] for every i (mask defaults to all ones). */
export interface ByteMatch {
  offset: number;
  value: Uint8Array;
  mask?: Uint8Array;
}

/** A packet is delivered when every match of at least one rule holds. No rules: nothing is delivered. */
export interface MulticastFilter {
  rules: readonly (readonly ByteMatch[])[];
}

export type CompiledFilter = (v: PacketView) => boolean;

export function validateMulticastFilter(f: MulticastFilter): void {
  for (const rule of f.rules) {
    for (const m of rule) {
      if (!Number.isInteger(m.offset) || m.offset < 0 || m.offset > 0x10000) throw new RangeError(`filter offset ${m.offset} out of range`);
      if (m.value.length === 0 || m.value.length > 64) throw new RangeError('filter value must be 1..64 bytes');
      if (m.mask !== undefined && m.mask.length !== m.value.length) throw new RangeError('filter mask and value differ in length');
    }
  }
}

export function compileMulticastFilter(f: MulticastFilter): CompiledFilter {
  validateMulticastFilter(f);
  const rules = f.rules.map((r) => r.map((m) => ({
    offset: m.offset, value: Uint8Array.from(m.value), mask: m.mask === undefined ? undefined : Uint8Array.from(m.mask),
  })));
  return (v) => {
    const b = v.buf;
    const base = v.payloadOffset;
    const len = v.payloadLength;
    outer: for (let r = 0; r < rules.length; r++) {
      const rule = rules[r]!;
      for (let k = 0; k < rule.length; k++) {
        const m = rule[k]!;
        const val = m.value;
        if (m.offset + val.length > len) continue outer;
        const at = base + m.offset;
        const mask = m.mask;
        for (let i = 0; i < val.length; i++) {
          const byte = mask === undefined ? b[at + i]! : b[at + i]! & mask[i]!;
          if (byte !== val[i]) continue outer;
        }
      }
      return true;
    }
    return false;
  };
}
