// PathRecord answers as OpenSM gives them (opensm/osm_sa_path_record.c; IPOIB-FACTS §2.2): MTU and
// rate = the smallest along the path (here: the two end links of the one switch), encoded with
// selector 2 ("exactly"); PacketLifeTime = subnet timeout, 0 for a loopback path; Reversible set and
// NumbPath 0 (byte 0x80); HopLimit 0 inside the subnet; P_Key = the requested one when both ends
// share it, else the first one they share. Unknown DGID -> INVALID_GID; unknown LID, inactive port
// or no shared partition -> NO_RECORDS.
import { pkeysMatch, pkeyBase } from '../wire/ib-constants.js';
import { portGid } from '../wire/ib-address.js';
import { SaStatus } from '../wire/mad-constants.js';
import { makePathRecord, PathRecordMask as PM, type PathRecord } from '../wire/path-record.js';
import { rateCompare, type SaPort } from './multicast-groups.js';

export interface PortDirectory {
  byGuid(guid: bigint): SaPort | undefined;
  byLid(lid: number): SaPort | undefined;
  all(): Iterable<SaPort>;
}

export interface PathAnswer {
  status: number;
  records: PathRecord[];
}

/** How a selector (0 >, 1 <, 2 =, 3 largest) narrows what the path offers; undefined = impossible. */
function select(sel: number, want: number, have: number, cmp: (a: number, b: number) => number, step: (v: number, d: number) => number): number | undefined {
  switch (sel) {
    case 0: return cmp(have, want) > 0 ? have : undefined;
    case 1: return cmp(have, want) < 0 ? have : step(want, -1) >= 1 ? step(want, -1) : undefined;
    case 2: return cmp(have, want) >= 0 ? want : undefined;
    default: return have;
  }
}

export function pathRecords(req: PathRecord, mask: bigint, requester: SaPort, dir: PortDirectory,
  subnetPrefix: bigint, subnetTimeout: number): PathAnswer {
  const no = (status: number): PathAnswer => ({ status, records: [] });
  // Source: SGID, else SLID, else the requester itself.
  let src: SaPort | undefined = requester;
  if ((mask & PM.SGID) !== 0n) {
    if (req.sgid.readBigUInt64BE(0) !== subnetPrefix) return no(SaStatus.INVALID_GID);
    src = dir.byGuid(req.sgid.readBigUInt64BE(8));
    if (src === undefined) return no(SaStatus.INVALID_GID);
  } else if ((mask & PM.SLID) !== 0n) {
    src = dir.byLid(req.slid);
    if (src === undefined) return no(SaStatus.NO_RECORDS);
  }
  let dests: SaPort[];
  if ((mask & PM.DGID) !== 0n) {
    if (req.dgid[0] === 0xff || req.dgid.readBigUInt64BE(0) !== subnetPrefix) return no(SaStatus.INVALID_GID);
    const d = dir.byGuid(req.dgid.readBigUInt64BE(8));
    if (d === undefined) return no(SaStatus.INVALID_GID);
    dests = [d];
  } else if ((mask & PM.DLID) !== 0n) {
    const d = dir.byLid(req.dlid);
    if (d === undefined) return no(SaStatus.NO_RECORDS);
    dests = [d];
  } else {
    dests = [...dir.all()];
  }
  const records: PathRecord[] = [];
  for (const dst of dests) {
    const r = onePath(req, mask, src, dst, subnetPrefix, subnetTimeout);
    if (r !== undefined) records.push(r);
  }
  return records.length === 0 ? no(SaStatus.NO_RECORDS) : { status: SaStatus.SUCCESS, records };
}

function onePath(req: PathRecord, mask: bigint, src: SaPort, dst: SaPort, prefix: bigint, timeout: number): PathRecord | undefined {
  if (src.info.state !== 'ACTIVE' || dst.info.state !== 'ACTIVE') return undefined;
  // P_Key: the requested one must be usable from both ends (IBA 10.9.3), else the first shared.
  let pkey: number | undefined;
  if ((mask & PM.PKEY) !== 0n) {
    if (pkeyBase(req.pkey) === 0) return undefined;
    // Both ends hold the partition (either membership), and may talk: at least one is full.
    const base = pkeyBase(req.pkey);
    const s = src.info.pkeys.find((p) => pkeyBase(p) === base);
    const d = dst.info.pkeys.find((p) => pkeyBase(p) === base);
    if (s === undefined || d === undefined || !pkeysMatch(s, d)) return undefined;
    pkey = req.pkey;
  } else {
    for (const s of src.info.pkeys) {
      if (dst.info.pkeys.some((d) => pkeysMatch(s, d))) { pkey = s; break; }
    }
    if (pkey === undefined) return undefined;
  }
  const loopback = src === dst;
  const pathMtu = Math.min(src.info.mtuCap, dst.info.mtuCap);
  const pathRate = rateCompare(src.info.rate, dst.info.rate) <= 0 ? src.info.rate : dst.info.rate;
  let mtu: number | undefined = pathMtu;
  if ((mask & PM.MTU) !== 0n && (mask & PM.MTU_SELECTOR) !== 0n) {
    mtu = select(req.mtuSelector, req.mtu, pathMtu, (a, b) => a - b, (v, d) => v + d);
  }
  let rate: number | undefined = pathRate;
  if ((mask & PM.RATE) !== 0n && (mask & PM.RATE_SELECTOR) !== 0n) {
    rate = select(req.rateSelector, req.rate, pathRate, rateCompare, (v, d) => v + d);
  }
  if (mtu === undefined || rate === undefined) return undefined;
  const life = loopback ? 0 : timeout;
  if ((mask & PM.PACKET_LIFE_TIME) !== 0n && (mask & PM.PACKET_LIFE_TIME_SELECTOR) !== 0n
    && select(req.packetLifeTimeSelector, req.packetLifeTime, life, (a, b) => a - b, (v, d) => v + d) === undefined) return undefined;
  if ((mask & PM.SL) !== 0n && req.sl !== 0) return undefined;
  return makePathRecord({
    serviceId: (mask & PM.SERVICE_ID) !== 0n ? req.serviceId : 0n,
    dgid: portGid(dst.portGuid, prefix), sgid: portGid(src.portGuid, prefix),
    dlid: dst.lid, slid: src.lid,
    flowLabel: (mask & PM.FLOW_LABEL) !== 0n ? req.flowLabel : 0,
    hopLimit: 0,
    tclass: (mask & PM.TCLASS) !== 0n ? req.tclass : 0,
    reversible: true, numbPath: 0, pkey, sl: 0,
    mtuSelector: 2, mtu, rateSelector: 2, rate, packetLifeTimeSelector: 2, packetLifeTime: life,
  });
}
