// Multicast groups as OpenSM keeps them (opensm/osm_sa_mcmember_record.c, osm_multicast.c @ fa74b98c,
// IPOIB-FACTS §2.3): join = SubnAdmSet(MCMemberRecord), leave = SubnAdmDelete, with OpenSM's create
// rules, its validation order and status codes, and its membership arithmetic (JoinState bits OR-ed
// per port; a group whose last full or send-only-full member leaves is deleted, unless it is one of
// the partition groups the SM created itself, which stay, emptied).
import { gidEquals } from '../wire/ib-address.js';
import { mtuToBytes, pkeyBase, pkeyIsFull, pkeysMatch, rateToGbps } from '../wire/ib-constants.js';
import { JoinState, SaStatus } from '../wire/mad-constants.js';
import { makeMcMemberRecord, McMemberMask as M, type McMemberRecord } from '../wire/mc-member-record.js';
import type { McGroupParams } from './partitions.js';

/** What the SA needs to know of a port. */
export interface SaPort {
  readonly portGuid: bigint;
  readonly lid: number;
  readonly info: { readonly pkeys: readonly number[]; readonly mtuCap: number; readonly rate: number; readonly state: string };
}

export interface Member {
  port: SaPort;
  portGid: Buffer;
  joinState: number;
  /** Scope nibble as the port joined with it (kept for its records). */
  scope: number;
  proxyJoin: boolean;
}

export interface McGroup {
  /** The group's record: MGID, Q_Key, MLID, MTU, rate, P_Key, SL, FlowLabel, HopLimit, TClass, scope. */
  rec: McMemberRecord;
  wellKnown: boolean;
  /** Members holding FullMember or SendOnlyFullMember (OpenSM mgrp->full_members). */
  fullMembers: number;
  readonly members: Map<bigint, Member>;
}

export interface SaAnswer {
  /** SaStatus code (0 = success). */
  status: number;
  record?: McMemberRecord;
}

const FULLISH = JoinState.FULL_MEMBER | JoinState.SEND_ONLY_FULL_MEMBER;
/** Join states that receive: OpenSM osm_mcast_mgr.c adds only these ports to the MFT. */
const RECEIVING = JoinState.FULL_MEMBER | JoinState.NON_MEMBER;

function mgidKey(mgid: Uint8Array): string {
  return Buffer.from(mgid.buffer, mgid.byteOffset, 16).toString('hex');
}

/** Rates are an enum not ordered by speed: compare through Gb/s (OpenSM ib_path_compare_rates()). */
export function rateCompare(a: number, b: number): number {
  return (rateToGbps(a) ?? 0) - (rateToGbps(b) ?? 0);
}

function hasPkey(port: SaPort, pkey: number): boolean {
  const base = pkeyBase(pkey);
  return port.info.pkeys.some((p) => pkeyBase(p) === base && base !== 0);
}

function sharePkey(a: SaPort, b: SaPort): boolean {
  return a.info.pkeys.some((pa) => b.info.pkeys.some((pb) => pkeysMatch(pa, pb)));
}

export class MulticastGroups {
  private readonly byMgid = new Map<string, McGroup>();
  private readonly byMlid = new Map<number, McGroup>();
  private uniq = 0;

  constructor(
    private readonly subnetPrefix: bigint,
    private readonly subnetTimeout: number,
    /** Called with the MLID whose set of receiving ports changed (the SM reprograms the switch). */
    private readonly reroute: (mlid: number, receivers: SaPort[]) => void,
    /**
     * Called instead of reroute when the receivers list only grew by one port at its end (a new
     * receiving member: the common case, 10,000 times in a boot storm), so a join costs O(1) and
     * not O(members). Without it, reroute gets the whole list every time.
     */
    private readonly appendReceiver?: (mlid: number, port: SaPort) => void,
    /** Likewise when one port left the receivers list (the others keep their order). */
    private readonly removeReceiver?: (mlid: number, port: SaPort) => void,
  ) {}

  groups(): IterableIterator<McGroup> {
    return this.byMgid.values();
  }

  byMgidOf(mgid: Uint8Array): McGroup | undefined {
    return this.byMgid.get(mgidKey(mgid));
  }

  byMlidOf(mlid: number): McGroup | undefined {
    return this.byMlid.get(mlid);
  }

  /** A partition's group created by the SM at start (osm_prtn_add_mcgroup()): kept when empty. */
  createWellKnown(p: McGroupParams, pkey: number): McGroup | undefined {
    const existing = this.byMgidOf(p.mgid);
    if (existing) { existing.wellKnown = true; return existing; }
    const mlid = this.newMlid(0);
    if (mlid === 0) return undefined;
    const rec = makeMcMemberRecord({
      mgid: Buffer.from(p.mgid), qkey: p.qkey, mlid, mtuSelector: 2, mtu: p.mtu, tclass: p.tclass,
      pkey: pkey | 0x8000, rateSelector: 2, rate: p.rate, packetLifeTimeSelector: 2, packetLifeTime: this.subnetTimeout,
      sl: p.sl, flowLabel: p.flowLabel, hopLimit: p.scope === 2 ? 0 : 0xff, scope: p.scope, joinState: JoinState.FULL_MEMBER,
    });
    return this.insert(rec, true);
  }

  private insert(rec: McMemberRecord, wellKnown: boolean): McGroup {
    const g: McGroup = { rec, wellKnown, fullMembers: 0, members: new Map() };
    this.byMgid.set(mgidKey(rec.mgid), g);
    this.byMlid.set(rec.mlid, g);
    return g;
  }

  /** get_new_mlid(): the requested MLID when valid and free, else the lowest free from 0xC000. */
  private newMlid(requested: number): number {
    if (requested >= 0xc000 && requested <= 0xfffe && !this.byMlid.has(requested)) return requested;
    for (let m = 0xc000; m <= 0xfffe; m++) if (!this.byMlid.has(m)) return m;
    return 0;
  }

  /** SubnAdmSet(MCMemberRecord) from `requester` (mcmr_rcv_join_mgrp()). */
  join(req: McMemberRecord, mask: bigint, requester: SaPort, portOf: (guid: bigint) => SaPort | undefined): SaAnswer {
    const need = M.MGID | M.PORT_GID | M.JOIN_STATE;
    if ((mask & need) !== need) return { status: SaStatus.INSUF_COMPS };
    const port = portOf(req.portGid.readBigUInt64BE(8));
    if (port === undefined) return { status: SaStatus.REQ_INVALID };
    const proxy = port !== requester;
    if (proxy && !sharePkey(port, requester)) return { status: SaStatus.REQ_INVALID };
    if ((mask & M.PKEY) !== 0n && pkeyBase(req.pkey) === 0) return { status: SaStatus.REQ_INVALID };
    const joinState = req.joinState & 0xf;
    let g = this.byMgidOf(req.mgid);
    let isNew = false;
    if (g === undefined) {
      if ((joinState & FULLISH) === 0) return { status: SaStatus.REQ_INVALID };
      const create = need | M.QKEY | M.TCLASS | M.PKEY | M.FLOW_LABEL | M.SL;
      if ((mask & create) !== create) return { status: SaStatus.INSUF_COMPS };
      const made = this.create(req, mask, port);
      if (typeof made === 'number') return { status: made };
      g = made;
      isNew = true;
    } else if (!this.otherFieldsMatch(req, mask, g)) {
      return { status: SaStatus.REQ_INVALID };
    }
    const grp = g;
    const undo = (status: number): SaAnswer => {
      if (isNew) this.cleanup(grp);
      return { status };
    };
    if (!this.moreFieldsMatch(req, mask, g) || port.info.mtuCap < g.rec.mtu
      || rateCompare(port.info.rate, g.rec.rate) < 0 || joinState === 0) return undo(SaStatus.REQ_INVALID);
    if (!hasPkey(port, g.rec.pkey)) return undo(SaStatus.REQ_INVALID);
    const existing = g.members.get(port.portGuid);
    if (!isNew && existing !== undefined && !existing.proxyJoin && requester !== port) return undo(SaStatus.REQ_INVALID);
    // osm_mgrp_add_port(): OR the join states; count a new full (or send-only full) member.
    const prev = existing?.joinState ?? 0;
    if (existing) existing.joinState = prev | joinState;
    else g.members.set(port.portGuid, { port, portGid: Buffer.from(req.portGid), joinState, scope: req.scope, proxyJoin: proxy });
    if ((joinState & FULLISH) !== 0 && (prev & FULLISH) === 0) g.fullMembers++;
    if (existing === undefined && this.appendReceiver !== undefined) {
      // g.members keeps insertion order: a new member is last among the receivers too.
      if ((joinState & RECEIVING) !== 0) this.appendReceiver(g.rec.mlid, port);
    } else if (existing === undefined || ((prev ^ (prev | joinState)) & RECEIVING) !== 0) {
      this.rerouteGroup(g);
    }
    const m = g.members.get(port.portGuid)!;
    const r = g.rec;
    return {
      status: SaStatus.SUCCESS,
      record: {
        ...req, mgid: Buffer.from(r.mgid), portGid: Buffer.from(req.portGid), qkey: r.qkey, mlid: r.mlid, tclass: r.tclass,
        pkey: r.pkey, sl: r.sl, flowLabel: r.flowLabel, hopLimit: r.hopLimit, mtuSelector: 2, mtu: r.mtu,
        rateSelector: 2, rate: r.rate, packetLifeTimeSelector: 2, packetLifeTime: r.packetLifeTime,
        scope: m.scope, joinState: m.joinState,
      },
    };
  }

  /** mcmr_rcv_create_new_mgrp(): a status code on failure. */
  private create(req: McMemberRecord, mask: bigint, port: SaPort): McGroup | number {
    const mgid = Buffer.from(req.mgid);
    if (mgid.every((b) => b === 0)) {
      // build_new_mgid(): ff1S:a01b:<subnet prefix>:<counter>.
      const scope = (mask & M.SCOPE) !== 0n ? req.scope : 2;
      mgid[0] = 0xff; mgid[1] = 0x10 | scope; mgid[2] = 0xa0; mgid[3] = 0x1b;
      mgid.writeBigUInt64BE(this.subnetPrefix, 4);
      do { mgid.writeUInt32LE(this.uniq++ >>> 0, 10); } while (this.byMgidOf(mgid) !== undefined);
    } else {
      // validate_requested_mgid(): IPoIB-signed MGIDs skip the checks.
      if (mgid[0] !== 0xff) return SaStatus.REQ_INVALID;
      const sig = (mgid[2]! << 8) | mgid[3]!;
      if (sig !== 0x401b && sig !== 0x601b) {
        if ((mgid[1]! & 0xe0) !== 0) return SaStatus.REQ_INVALID;
        if (sig === 0xa01b && (mgid[1]! & 0x0f) === 2) return SaStatus.REQ_INVALID;
      } else if (!this.ipoibCreateOk(mgid, req, mask)) {
        return SaStatus.REQ_INVALID;
      }
    }
    const realized = this.realize(req, mask, port);
    if (realized === undefined) return SaStatus.REQ_INVALID;
    const mlid = this.newMlid(req.mlid);
    if (mlid === 0) return SaStatus.NO_RESOURCES;
    // OpenSM keeps a copy of the whole request record as the group's record.
    const rec: McMemberRecord = {
      ...req, mgid, portGid: Buffer.alloc(16), mlid, mtuSelector: 2, mtu: realized.mtu, rateSelector: 2, rate: realized.rate,
      packetLifeTimeSelector: 2, pad: Buffer.from(req.pad),
    };
    return this.insert(rec, false);
  }

  /**
   * OpenSM's ipoib_mcgroup_creation_validation (on by default): an IPoIB group other than a
   * broadcast group may only be created in a partition whose broadcast group exists, with its
   * Q_Key, MTU and rate (when given).
   */
  private ipoibCreateOk(mgid: Buffer, req: McMemberRecord, mask: bigint): boolean {
    const isBroadcast = mgid.readUInt32BE(12) === 0xffffffff && mgid.subarray(6, 12).every((b) => b === 0) && mgid[3] === 0x1b && mgid[2] === 0x40;
    if (isBroadcast) return true;
    const bc = Buffer.alloc(16);
    bc[0] = 0xff; bc[1] = mgid[1]!; bc[2] = 0x40; bc[3] = 0x1b; bc[4] = mgid[4]!; bc[5] = mgid[5]!;
    bc.writeUInt32BE(0xffffffff, 12);
    const b = this.byMgidOf(bc);
    if (b === undefined) return false;
    if ((mask & M.QKEY) !== 0n && req.qkey !== b.rec.qkey) return false;
    if ((mask & M.MTU) !== 0n && req.mtu !== b.rec.mtu) return false;
    if ((mask & M.RATE) !== 0n && req.rate !== b.rec.rate) return false;
    return true;
  }

  /** mgrp_request_is_realizable(): MTU and rate from the selectors and the port's caps. */
  private realize(req: McMemberRecord, mask: bigint, port: SaPort): { mtu: number; rate: number } | undefined {
    const portMtu = port.info.mtuCap;
    let mtu: number;
    const mtuSel = req.mtuSelector;
    if ((mask & M.MTU) === 0n || (mask & M.MTU_SELECTOR) === 0n || mtuSel === 3) mtu = portMtu;
    else {
      mtu = req.mtu;
      if (mtuSel === 0) { if (req.mtu >= portMtu) return undefined; mtu = portMtu; }
      else if (mtuSel === 1) mtu = req.mtu > portMtu ? portMtu : req.mtu - 1;
      if (mtuToBytes(mtu) === undefined) return undefined;
    }
    const portRate = port.info.rate;
    let rate: number;
    const rateSel = req.rateSelector;
    if ((mask & M.RATE) === 0n || (mask & M.RATE_SELECTOR) === 0n || rateSel === 3) rate = portRate;
    else {
      rate = req.rate;
      if (rateSel === 0) { if (rateCompare(req.rate, portRate) >= 0) return undefined; rate = portRate; }
      else if (rateSel === 1) rate = rateCompare(req.rate, portRate) > 0 ? portRate : req.rate - 1;
      if (rateToGbps(rate) === undefined) return undefined;
    }
    return { mtu, rate };
  }

  /** validate_other_comp_fields() (mcgroup_join_validation, on by default). */
  private otherFieldsMatch(req: McMemberRecord, mask: bigint, g: McGroup): boolean {
    const r = g.rec;
    if ((mask & M.QKEY) !== 0n && req.qkey !== r.qkey) return false;
    if ((mask & M.PKEY) !== 0n) {
      if (!pkeyIsFull(req.pkey) && !pkeyIsFull(r.pkey)) return false;
      if (pkeyBase(req.pkey) !== pkeyBase(r.pkey)) return false;
    }
    if ((mask & M.TCLASS) !== 0n && req.tclass !== r.tclass) return false;
    if ((mask & M.SL) !== 0n && req.sl !== r.sl) return false;
    if ((mask & M.FLOW_LABEL) !== 0n && req.flowLabel !== r.flowLabel) return false;
    if ((mask & M.HOP_LIMIT) !== 0n && req.hopLimit !== r.hopLimit) return false;
    return true;
  }

  /** validate_more_comp_fields(): the MTU and rate selectors against the group's values. */
  private moreFieldsMatch(req: McMemberRecord, mask: bigint, g: McGroup): boolean {
    const check = (sel: number, want: number, have: number, cmp: (a: number, b: number) => number): boolean =>
      sel === 0 ? cmp(have, want) > 0 : sel === 1 ? cmp(have, want) < 0 : sel === 2 ? cmp(have, want) === 0 : true;
    if ((mask & M.MTU_SELECTOR) !== 0n && !check(req.mtuSelector, req.mtu, g.rec.mtu, (a, b) => a - b)) return false;
    if ((mask & M.RATE_SELECTOR) !== 0n && !check(req.rateSelector, req.rate, g.rec.rate, rateCompare)) return false;
    return true;
  }

  /** SubnAdmDelete(MCMemberRecord) (mcmr_rcv_leave_mgrp() + validate_delete() + osm_mgrp_remove_port()). */
  leave(req: McMemberRecord, mask: bigint, requester: SaPort): SaAnswer {
    const need = M.MGID | M.PORT_GID | M.JOIN_STATE;
    if ((mask & need) !== need) return { status: SaStatus.INSUF_COMPS };
    const g = this.byMgidOf(req.mgid);
    if (g === undefined) return { status: SaStatus.REQ_INVALID };
    const m = g.members.get(req.portGid.readBigUInt64BE(8));
    const js = req.joinState & 0xf;
    if (m === undefined || (js & m.joinState) === 0 || (js | m.joinState) !== m.joinState) return { status: SaStatus.REQ_INVALID };
    if (!m.proxyJoin && m.port !== requester) return { status: SaStatus.REQ_INVALID };
    if (m.proxyJoin && !hasPkey(requester, g.rec.pkey)) return { status: SaStatus.REQ_INVALID };
    const left = this.removeState(g, m, js);
    return { status: SaStatus.SUCCESS, record: { ...req, scope: m.scope, joinState: left } };
  }

  /** Removes `js` bits of member m; returns the join state the member is left with (0 = removed). */
  private removeState(g: McGroup, m: Member, js: number): number {
    const before = m.joinState;
    const after = before & ~js;
    const othersFull = g.fullMembers > ((before & FULLISH) !== 0 ? 1 : 0);
    let left: number;
    if ((after & JoinState.FULL_MEMBER) !== 0 || (after !== 0 && othersFull)) {
      m.joinState = after;
      left = after;
    } else {
      g.members.delete(m.port.portGuid);
      left = 0;
    }
    if ((before & RECEIVING) !== 0 && (left & RECEIVING) === 0) {
      if (this.removeReceiver !== undefined) this.removeReceiver(g.rec.mlid, m.port);
      else this.rerouteGroup(g);
    }
    if ((before & FULLISH) !== 0 && (left & FULLISH) === 0 && --g.fullMembers === 0) this.cleanup(g);
    return left;
  }

  /** osm_mgrp_cleanup(): with no full member left, every member goes; the group too unless well known. */
  private cleanup(g: McGroup): void {
    if (g.fullMembers > 0) return;
    g.members.clear();
    this.rerouteGroup(g);
    if (g.wellKnown) return;
    this.byMgid.delete(mgidKey(g.rec.mgid));
    this.byMlid.delete(g.rec.mlid);
  }

  /** A port went down or away: it leaves every group (osm_mgrp_delete_port(), JoinState 0xF). */
  removePort(guid: bigint): void {
    for (const g of [...this.byMgid.values()]) {
      const m = g.members.get(guid);
      if (m !== undefined) this.removeState(g, m, 0xf);
    }
  }

  private rerouteGroup(g: McGroup): void {
    const receivers: SaPort[] = [];
    for (const m of g.members.values()) if ((m.joinState & RECEIVING) !== 0) receivers.push(m.port);
    this.reroute(g.rec.mlid, receivers);
  }

  /** SubnAdmGet/GetTable(MCMemberRecord) from an untrusted requester (SM_Key 0): group records only. */
  query(req: McMemberRecord, mask: bigint, requester: SaPort): McMemberRecord[] {
    const out: McMemberRecord[] = [];
    for (const g of this.byMgid.values()) {
      const r = g.rec;
      if ((mask & M.MGID) !== 0n && !gidEquals(req.mgid, r.mgid)) continue;
      if ((mask & M.MLID) !== 0n && req.mlid !== r.mlid) continue;
      if (!hasPkey(requester, r.pkey)) continue;
      if ((mask & M.QKEY) !== 0n && req.qkey !== r.qkey) continue;
      if ((mask & M.PKEY) !== 0n && req.pkey !== r.pkey) continue;
      if ((mask & M.TCLASS) !== 0n && req.tclass !== r.tclass) continue;
      if ((mask & M.SL) !== 0n && req.sl !== r.sl) continue;
      if (!this.moreFieldsMatch(req, mask, g)) continue;
      out.push({ ...r, portGid: Buffer.alloc(16), joinState: 0, proxyJoin: false });
    }
    return out;
  }
}
