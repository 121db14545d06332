// LID assignment by OpenSM's rules (opensm/osm_lid_mgr.c header comment; IPOIB-FACTS §2.4):
// a guid2lid table survives ports going away; the SM's own port is assigned first; a port keeps
// the LID the table holds for its GUID unless another port uses it; a new port takes the lowest
// LID that is neither in use nor remembered for another GUID. With LMC 0 a "range" is one LID.
import { LID_UNICAST_FIRST, LID_UNICAST_LAST } from '../wire/ib-constants.js';
import { FabricError } from './errors.js';

export class LidManager {
  private readonly guid2lid = new Map<bigint, number>();
  private readonly lid2guid = new Map<number, bigint>();
  /** LIDs held by a port that is up now. */
  private readonly inUse = new Map<number, bigint>();
  /**
   * Every LID below this one is in use or remembered, so the search for a new port's LID starts
   * here, not at 1 (10,000 ports attaching would otherwise scan 50 million LIDs). A LID can only
   * become neither when lid2guid forgets it, which lowers the mark.
   */
  private firstCandidate = LID_UNICAST_FIRST;

  /** The LID for a port coming up; remembered for its GUID. */
  assign(guid: bigint): number {
    const remembered = this.guid2lid.get(guid);
    if (remembered !== undefined) {
      const holder = this.inUse.get(remembered);
      if (holder === undefined || holder === guid) {
        this.inUse.set(remembered, guid);
        return remembered;
      }
    }
    let lid = this.firstFree(true) ?? this.firstFree(false);
    if (lid === undefined) throw new FabricError('NO_LIDS', `no free unicast LID for port ${guid.toString(16)}`);
    if (remembered !== undefined) this.forget(remembered);
    const previousOwner = this.lid2guid.get(lid);
    if (previousOwner !== undefined) this.guid2lid.delete(previousOwner);
    this.guid2lid.set(guid, lid);
    this.lid2guid.set(lid, guid);
    this.inUse.set(lid, guid);
    return lid;
  }

  /** The port went down or away: its LID stays remembered for it. */
  release(guid: bigint): void {
    const lid = this.guid2lid.get(guid);
    if (lid !== undefined && this.inUse.get(lid) === guid) this.inUse.delete(lid);
  }

  lidOf(guid: bigint): number | undefined {
    return this.guid2lid.get(guid);
  }

  private forget(lid: number): void {
    this.lid2guid.delete(lid);
    if (lid < this.firstCandidate) this.firstCandidate = lid;
  }

  private firstFree(skipRemembered: boolean): number | undefined {
    for (let lid = skipRemembered ? this.firstCandidate : LID_UNICAST_FIRST; lid <= LID_UNICAST_LAST; lid++) {
      if (this.inUse.has(lid)) continue;
      if (skipRemembered && this.lid2guid.has(lid)) continue;
      if (skipRemembered) this.firstCandidate = lid;
      return lid;
    }
    if (skipRemembered) this.firstCandidate = LID_UNICAST_LAST + 1;
    return undefined;
  }

  /** OpenSM's guid2lid file format: "0x<guid> 0x<min lid> 0x<max lid>" per line. */
  exportGuid2Lid(): string {
    return [...this.guid2lid].sort((a, b) => a[1] - b[1])
      .map(([g, l]) => `0x${g.toString(16).padStart(16, '0')} 0x${l.toString(16).padStart(4, '0')} 0x${l.toString(16).padStart(4, '0')}`)
      .join('\n') + '\n';
  }

  importGuid2Lid(text: string, file = 'guid2lid'): void {
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.replace(/#.*$/, '').trim();
      if (line === '') return;
      const m = /^(0x[0-9a-f]{1,16})\s+(0x[0-9a-f]{1,4}|\d+)(?:\s+(0x[0-9a-f]{1,4}|\d+))?$/i.exec(line);
      const lid = m ? Number(m[2]) : NaN;
      if (!m || !(lid >= LID_UNICAST_FIRST && lid <= LID_UNICAST_LAST)) {
        throw new FabricError('BAD_CONFIG', `${file}:${i + 1}: expected "0xGUID 0xLID 0xLID", got "${line}"`);
      }
      const guid = BigInt(m[1]!);
      const other = this.lid2guid.get(lid);
      if (other !== undefined && other !== guid) throw new FabricError('BAD_CONFIG', `${file}:${i + 1}: LID ${lid} given to two GUIDs`);
      this.guid2lid.set(guid, lid);
      this.lid2guid.set(lid, guid);
    });
  }
}
