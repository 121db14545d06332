// Completion queues (ibv_create_cq / ibv_poll_cq / ibv_req_notify_cq): completions are polled in
// batches, or awaited (nextEvent, or `for await` over the queue). Waiters are woken through a
// resolved promise, never by a synchronous callback, so the fabric is never re-entered from inside
// a delivery.

export type WcStatus =
  | 'SUCCESS'
  | 'LOC_LEN_ERR'       // receive buffer too small / send larger than the MTU
  | 'WR_FLUSH_ERR'      // flushed because the QP went to ERR or RESET
  | 'RETRY_EXC_ERR';    // RC: no ACK after retryCnt retransmissions

export type WcOpcode = 'SEND' | 'RECV';

/** IBV_WC_GRH: the first 40 bytes of the receive buffer hold a valid GRH. */
export const WC_GRH = 1;
/** IBV_WC_WITH_IMM. */
export const WC_WITH_IMM = 2;

export interface WorkCompletion {
  wrId: number;
  status: WcStatus;
  opcode: WcOpcode;
  qpNum: number;
  /** RECV: data bytes + 40 for the GRH slot on UD (IPOIB-FACTS §1.10); data bytes on RC. */
  byteLen: number;
  /** WC_GRH | WC_WITH_IMM. */
  wcFlags: number;
  imm: number;
  srcQp: number;
  slid: number;
  sl: number;
  pkeyIndex: number;
  /**
   * RECV without a posted buffer (zero-copy receive, an emulator extension): views of the data and
   * of the GRH (when wcFlags has WC_GRH) inside the shared packet. Read-only: never write to them.
   */
  data?: Buffer;
  grh?: Buffer;
}

export class CompletionQueue {
  private readonly q: WorkCompletion[] = [];
  private head = 0;
  private waiters: (() => void)[] = [];
  /** Completions lost because the queue was full (a real CQ overrun also raises IBV_EVENT_CQ_ERR). */
  overruns = 0;

  constructor(readonly depth: number) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`CQ depth must be a positive integer, got ${depth}`);
  }

  get length(): number {
    return this.q.length - this.head;
  }

  /** Called by QPs. */
  push(wc: WorkCompletion): void {
    if (this.length >= this.depth) { this.overruns++; return; }
    this.q.push(wc);
    if (this.waiters.length > 0) {
      const w = this.waiters;
      this.waiters = [];
      Promise.resolve().then(() => { for (const f of w) f(); }, () => undefined);
    }
  }

  /** Up to n completions, oldest first (ibv_poll_cq). */
  poll(n = 16): WorkCompletion[] {
    const avail = this.length;
    const k = Math.min(n, avail);
    const out = this.q.slice(this.head, this.head + k);
    this.head += k;
    // Drop references to polled completions (and the packet views they hold) early.
    if (this.head === this.q.length) {
      this.q.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.q.length) {
      this.q.splice(0, this.head);
      this.head = 0;
    }
    return out;
  }

  /** Resolves when the queue holds at least one completion (ibv_req_notify_cq + ibv_get_cq_event). */
  nextEvent(): Promise<void> {
    if (this.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WorkCompletion> {
    for (;;) {
      await this.nextEvent();
      for (const wc of this.poll(this.length)) yield wc;
    }
  }
}
