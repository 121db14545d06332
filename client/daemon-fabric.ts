// Readiness of an emulated IPoIB interface for the client daemon on the project's link: carrier
// comes on only once the port is ACTIVE (the SM gave it a LID) and the interface has joined its
// partition's broadcast group (link/ipoib/interface.ts, ipoib_mcast_join_task()). Sending a
// DISCOVER before that goes into the void, so the daemon waits, bounded, and when the bound passes
// says which of the steps is missing instead of "no carrier".
import type { Host, IpoibEvent, IpoibInterface } from '../link/ipoib/index.js';

/** What stands between an interface and its carrier, in the order the steps happen. */
export type CarrierProblem = 'admin-down' | 'port-down' | 'no-sm' | 'pkey-missing' | 'join-refused' | 'join-pending';

export interface CarrierStatus {
  iface: string;
  carrier: boolean;
  problem: CarrierProblem | null;
  /** One sentence for the operator naming what is missing. */
  message: string;
}

/**
 * Remembers the interface events that explain a missing carrier (a refused broadcast join, a
 * P_Key absent from the port's table): feed it every event of the Host's logger.
 */
export class CarrierWatch {
  private readonly joinFailure = new Map<string, string>();
  private readonly pkeyMissing = new Set<string>();

  observe(e: IpoibEvent): void {
    if (e.dev === undefined) return;
    if (e.event === 'bcast_join_failed') this.joinFailure.set(e.dev, e.msg);
    else if (e.event === 'pkey_missing') this.pkeyMissing.add(e.dev);
    else if (e.event === 'bcast_joined') { this.joinFailure.delete(e.dev); this.pkeyMissing.delete(e.dev); }
  }

  diagnose(iface: IpoibInterface): CarrierStatus {
    const name = iface.name;
    const ok = (problem: CarrierProblem, message: string): CarrierStatus => ({ iface: name, carrier: false, problem, message: `${name}: no carrier: ${message}` });
    if (iface.carrier) return { iface: name, carrier: true, problem: null, message: `${name}: carrier on` };
    if (!iface.adminUp) return ok('admin-down', 'the interface is down (ip link set dev ... up)');
    const port = iface.device.queryPort(iface.portNum);
    if (port.state === 'DOWN') {
      return ok('port-down', `HCA port ${iface.portNum} is DOWN: not attached to the fabric, or its link is down`);
    }
    if (port.state !== 'ACTIVE') {
      return ok('no-sm', `HCA port ${iface.portNum} is ${port.state}${port.lid === 0 ? ' with no LID' : ''}: no subnet manager has answered (is the fabric's SM running?)`);
    }
    if (this.pkeyMissing.has(name)) {
      return ok('pkey-missing', `P_Key 0x${iface.pkey.toString(16).padStart(4, '0')} is not in port ${iface.portNum}'s P_Key table: the SM has not put it in this partition`);
    }
    const refused = this.joinFailure.get(name);
    if (refused !== undefined) return ok('join-refused', `the SA refused the broadcast group join (${refused})`);
    return ok('join-pending', 'port ACTIVE, but the broadcast group join has had no answer from the SA');
  }
}

/**
 * Waits until every named interface has carrier, `timeoutMs` passes on the host's scheduler, or
 * `abandoned()` (a stop request) says to give up; returns each interface's status at the end.
 */
export async function waitForCarrier(host: Host, names: readonly string[], timeoutMs: number, watch: CarrierWatch,
  opts: { pollMs?: number; abandoned?: () => boolean } = {}): Promise<CarrierStatus[]> {
  const s = host.scheduler;
  const pollMs = opts.pollMs ?? 20;
  const end = s.now() + timeoutMs;
  for (;;) {
    const ifaces = names.map((n) => host.iface(n));
    if (ifaces.every((i) => i.carrier) || s.now() >= end || opts.abandoned?.() === true) return ifaces.map((i) => watch.diagnose(i));
    await new Promise<void>((resolve) => { s.setTimer(Math.min(pollMs, Math.max(0, end - s.now())), resolve); });
  }
}
