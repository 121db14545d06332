// SA queries from a host (Linux drivers/infiniband/core/sa_query.c; IPOIB-FACTS §2.1): a GMP to
// the port's SM LID, QP1, Q_Key 0x80010000, SL = the port's SM SL, the default P_Key; the answer
// is matched by TransactionID; no answer within timeoutMs is retried, then reported as
// MAD_TIMEOUT. A non-zero SA status is reported as SA_STATUS with the status word. Timers come from
// the device's scheduler, so retries run in virtual time in tests.
import { makeMcMemberRecord, mcJoinRequest, mcLeaveRequest, mcMemberRecordOf, type McMemberRecord } from '../wire/mc-member-record.js';
import { IPOIB_PATH_QUERY_MASK, makePathRecord, pathRecordOf, pathRecordQuery, type PathRecord } from '../wire/path-record.js';
import { decodeSaMad, saMad, saStatusName, saStatusOf, type SaMad } from '../wire/sa.js';
import { isWireError } from '../../codec/wire-error.js';
import type { Timer } from '../fabric/scheduler.js';
import type { Device } from './device.js';
import { VerbsError } from './errors.js';
import type { AhAttr } from './qp.js';

export interface SaClientOptions {
  /** Per attempt (Linux IPoIB path queries use 1000 ms). */
  timeoutMs?: number;
  /** Attempts after the first. */
  retries?: number;
}

interface Pending {
  resolve: (m: SaMad) => void;
  reject: (e: Error) => void;
  timer: Timer | undefined;
}

export class SaClient {
  private readonly pending = new Map<bigint, Pending>();
  private tid: bigint;
  private readonly unsubscribe: () => void;
  readonly timeoutMs: number;
  readonly retries: number;
  /** Responses that matched no outstanding request (late answers to retried queries). */
  unmatched = 0;

  constructor(private readonly device: Device, readonly portNum: number, opts: SaClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.retries = opts.retries ?? 3;
    // Like the kernel's MAD agents: a per-agent high half, a counter in the low half.
    this.tid = ((device.nodeGuid & 0xffffn) << 48n) | (BigInt(portNum) << 32n);
    this.unsubscribe = device.onMad((p, m) => {
      if (p !== this.portNum || (m.mad[3]! & 0x80) === 0 || m.mad[1] !== 0x03) return;
      let res: SaMad;
      try {
        res = decodeSaMad(m.mad);
      } catch (err) {
        if (isWireError(err)) return;
        throw err;
      }
      const w = this.pending.get(res.transactionId);
      if (w === undefined) { this.unmatched++; return; }
      this.pending.delete(res.transactionId);
      w.timer?.cancel();
      w.resolve(res);
    });
  }

  close(): void {
    this.unsubscribe();
    for (const [, w] of this.pending) { w.timer?.cancel(); w.reject(new VerbsError('DEVICE_CLOSED', 'SA client closed')); }
    this.pending.clear();
  }

  /** Sends `req` (its TransactionID is replaced by a fresh one) and resolves with the response MAD, whatever its status. */
  request(req: SaMad): Promise<SaMad> {
    const transactionId = this.tid++;
    const bytes = saMad.encode({ ...req, transactionId });
    return new Promise<SaMad>((resolve, reject) => {
      const w: Pending = { resolve, reject, timer: undefined };
      this.pending.set(transactionId, w);
      let attempt = 0;
      const send = (): void => {
        const a = this.device.queryPort(this.portNum);
        this.device.sendMad(this.portNum, bytes, a.smLid, { sl: a.smSl });
        w.timer = this.device.scheduler.setTimer(this.timeoutMs, () => {
          if (!this.pending.has(transactionId)) return;
          if (attempt++ < this.retries) { send(); return; }
          this.pending.delete(transactionId);
          reject(new VerbsError('MAD_TIMEOUT', `no SA response to TID 0x${transactionId.toString(16)} after ${this.retries + 1} attempts of ${this.timeoutMs} ms`));
        });
      };
      send();
    });
  }

  private async ok(req: SaMad): Promise<SaMad> {
    const res = await this.request(req);
    if (res.status !== 0) {
      const code = saStatusOf(res.status);
      throw new VerbsError('SA_STATUS', `SA answered status 0x${res.status.toString(16).padStart(4, '0')} (${code ? saStatusName(code) : 'MAD status'})`, res.status);
    }
    return res;
  }

  /** The path to dgid as Linux IPoIB asks for it (DGID, SGID, P_Key, NumbPath 1, TClass). */
  async pathRecord(dgid: Buffer, pkey: number, opts: { tclass?: number; mask?: bigint; fields?: Partial<PathRecord> } = {}): Promise<PathRecord> {
    const rec = makePathRecord({ dgid, sgid: this.device.queryGid(this.portNum), pkey, numbPath: 1, tclass: opts.tclass ?? 0, ...opts.fields });
    return pathRecordOf(await this.ok(pathRecordQuery(0n, rec, opts.mask ?? IPOIB_PATH_QUERY_MASK)));
  }

  /** SubnAdmSet(MCMemberRecord) for this port; resolves with the SA's record (Q_Key, MLID, MTU...). */
  async join(fields: Partial<McMemberRecord>, mask: bigint): Promise<McMemberRecord> {
    const rec = makeMcMemberRecord({ portGid: this.device.queryGid(this.portNum), ...fields });
    return mcMemberRecordOf(await this.ok(mcJoinRequest(0n, rec, mask)));
  }

  /** SubnAdmDelete(MCMemberRecord). */
  async leave(fields: Partial<McMemberRecord>, mask: bigint): Promise<McMemberRecord> {
    const rec = makeMcMemberRecord({ portGid: this.device.queryGid(this.portNum), ...fields });
    return mcMemberRecordOf(await this.ok(mcLeaveRequest(0n, rec, mask)));
  }
}

/** ib_init_ah_attr_from_path(): a GRH only when the path leaves the subnet (HopLimit > 0, IPOIB-FACTS §1.10). */
export function ahAttrFromPathRecord(pr: PathRecord, portNum: number): AhAttr {
  return {
    dlid: pr.dlid, sl: pr.sl, portNum, staticRate: pr.rate,
    ...(pr.hopLimit > 0 ? { grh: { dgid: Buffer.from(pr.dgid), flowLabel: pr.flowLabel, hopLimit: pr.hopLimit, trafficClass: pr.tclass } } : {}),
  };
}

/** What ipoib_mcast_join_finish() builds: DLID = MLID, always a GRH with DGID = MGID. */
export function ahAttrFromMcMember(rec: McMemberRecord, portNum: number): AhAttr {
  return {
    dlid: rec.mlid, sl: rec.sl, portNum, staticRate: rec.rate,
    grh: { dgid: Buffer.from(rec.mgid), flowLabel: rec.flowLabel, hopLimit: rec.hopLimit, trafficClass: rec.tclass },
  };
}

