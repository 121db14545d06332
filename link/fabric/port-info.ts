// What a port knows about itself (IBA 14.2.5.6 PortInfo, the fields an end node uses): state,
// LID and SM LID assigned by the subnet manager, P_Key table, MTU and rate. The fabric owns the
// authoritative copy and pushes every change to the host's side of the link.
import { mtuToBytes } from '../wire/ib-constants.js';

/** PortInfo.PortState: 1 Down, 2 Initialize, 3 Armed, 4 Active. */
export type PortState = 'DOWN' | 'INIT' | 'ARMED' | 'ACTIVE';

export const PORT_STATE_CODE: Readonly<Record<PortState, number>> = { DOWN: 1, INIT: 2, ARMED: 3, ACTIVE: 4 };

export interface PortInfo {
  readonly portGuid: bigint;
  readonly portNum: number;
  readonly state: PortState;
  /** 0 until the SM assigns one. */
  readonly lid: number;
  readonly lmc: number;
  readonly smLid: number;
  readonly smSl: number;
  readonly subnetPrefix: bigint;
  /** P_Key table, index 0 first; bit 15 = full membership. */
  readonly pkeys: readonly number[];
  /** MTU enums (1=256 .. 5=4096, IPOIB-FACTS §1.9). */
  readonly mtuCap: number;
  readonly activeMtu: number;
  /** Rate enum (3 = 10 Gb/s). */
  readonly rate: number;
  /** PortInfo.SubnetTimeout, used by the SA as PacketLifeTime. */
  readonly subnetTimeout: number;
}

export const MTU_4096 = 5;
export const RATE_10G = 3;

/** Bytes of an MTU enum; 0 for a reserved value (so a comparison against it always fails). */
export function mtuBytes(mtuEnum: number): number {
  return mtuToBytes(mtuEnum) ?? 0;
}

