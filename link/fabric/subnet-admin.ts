// The SA's MAD dispatcher (IBA 15.2-15.4; OpenSM osm_sa_mad_ctrl.c): one 256-byte SubnAdm MAD in,
// at most one MAD out. Supported: PathRecord Get/GetTable, MCMemberRecord Set/Delete/Get/GetTable.
// A MAD that cannot be parsed, belongs to another class, or uses a method the SA never answers is
// dropped with BAD_MAD (OpenSM ignores them too); an unsupported attribute or class version is
// answered with the MAD status the IBA defines for it (UNSUPPORTED method/attribute, class version).
import { isWireError } from '../../codec/wire-error.js';
import { decodeMadHeader, responseMethod } from '../wire/mad.js';
import { ClassVersion, MAD_SIZE, MadStatus, Method, MgmtClass, SaAttr, SA_DATA_SIZE, SaStatus } from '../wire/mad-constants.js';
import { mcMemberRecord, MCMEMBER_RECORD_SIZE } from '../wire/mc-member-record.js';
import { pathRecord, PATH_RECORD_SIZE } from '../wire/path-record.js';
import { decodeSaMad, encodeSaResponse, saStatusWord, type SaMad } from '../wire/sa.js';
import type { MulticastGroups, SaPort } from './multicast-groups.js';
import { pathRecords, type PortDirectory } from './path-records.js';

export type SaOutcome =
  | { kind: 'reply'; mad: Buffer; status: number }
  | { kind: 'drop'; detail: string };

export interface SaContext {
  groups: MulticastGroups;
  ports: PortDirectory;
  subnetPrefix: bigint;
  subnetTimeout: number;
}

export function handleSaMad(bytes: Buffer, requester: SaPort, ctx: SaContext): SaOutcome {
  let req: SaMad;
  try {
    const h = decodeMadHeader(bytes);
    if (h.mgmtClass !== MgmtClass.SUBN_ADM) return { kind: 'drop', detail: `class 0x${h.mgmtClass.toString(16)} has no agent on the SM port` };
    if ((h.method & 0x80) !== 0) return { kind: 'drop', detail: `response method 0x${h.method.toString(16)} to the SA` };
    if (h.classVersion !== ClassVersion.SUBN_ADM) {
      // Answered from the header alone: the rest of the MAD may not even have the SA layout.
      const out = Buffer.from(bytes.subarray(0, MAD_SIZE));
      out[3] = responseMethod(h.method);
      out.writeUInt16BE(MadStatus.UNSUP_CLASS_VERSION, 4);
      return { kind: 'reply', mad: out, status: MadStatus.UNSUP_CLASS_VERSION };
    }
    req = decodeSaMad(bytes);
  } catch (err) {
    if (isWireError(err)) return { kind: 'drop', detail: err.message };
    throw err;
  }
  const reply = (status: number, records?: Buffer[]): SaOutcome =>
    ({ kind: 'reply', mad: encodeSaResponse(req, status, records), status });
  const m = req.method;
  if (m !== Method.GET && m !== Method.GET_TABLE && m !== Method.SET && m !== Method.DELETE) {
    return { kind: 'drop', detail: `method 0x${m.toString(16)} is not one the SA answers` };
  }
  try {
    switch (req.attributeId) {
      case SaAttr.PATH_RECORD: {
        if (m !== Method.GET && m !== Method.GET_TABLE) return reply(MadStatus.UNSUP_METHOD_ATTR);
        const pr = pathRecord.decode(req.data);
        const a = pathRecords(pr, req.componentMask, requester, ctx.ports, ctx.subnetPrefix, ctx.subnetTimeout);
        if (a.status !== SaStatus.SUCCESS) return reply(saStatusWord(a.status));
        return answerRecords(reply, m, a.records.map((r) => pathRecord.encode(r)), PATH_RECORD_SIZE);
      }
      case SaAttr.MCMEMBER_RECORD: {
        const rec = mcMemberRecord.decode(req.data);
        if (m === Method.SET || m === Method.DELETE) {
          const a = m === Method.SET
            ? ctx.groups.join(rec, req.componentMask, requester, (g) => ctx.ports.byGuid(g))
            : ctx.groups.leave(rec, req.componentMask, requester);
          if (a.status !== SaStatus.SUCCESS || a.record === undefined) return reply(saStatusWord(a.status));
          return reply(0, [mcMemberRecord.encode(a.record)]);
        }
        const found = ctx.groups.query(rec, req.componentMask, requester);
        if (found.length === 0) return reply(saStatusWord(SaStatus.NO_RECORDS));
        return answerRecords(reply, m, found.map((r) => mcMemberRecord.encode(r)), MCMEMBER_RECORD_SIZE);
      }
      default:
        return reply(MadStatus.UNSUP_METHOD_ATTR);
    }
  } catch (err) {
    if (isWireError(err)) return reply(saStatusWord(SaStatus.REQ_INVALID));
    throw err;
  }
}

/** A Get answers one record (TOO_MANY_RECORDS otherwise, OpenSM osm_sa_respond()); GetTable all that fit in one MAD. */
function answerRecords(reply: (s: number, r?: Buffer[]) => SaOutcome, method: number, recs: Buffer[], size: number): SaOutcome {
  if (method === Method.GET) return recs.length > 1 ? reply(saStatusWord(SaStatus.TOO_MANY_RECORDS)) : reply(0, recs);
  const stride = Math.ceil(size / 8) * 8;
  const fit = Math.floor(SA_DATA_SIZE / stride);
  // RMPP segmentation is not implemented: a table longer than one MAD is cut (and says so by its length).
  return reply(0, recs.slice(0, fit));
}
