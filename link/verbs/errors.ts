// Errors of the verbs API. libibverbs returns errno values; here each failure has a stable code
// and a sentence, and the errno a C caller would have seen is kept alongside for familiarity.

export type VerbsErrorCode =
  | 'BAD_STATE_TRANSITION' // modify_qp to a state not reachable from the current one (EINVAL)
  | 'MISSING_ATTR'         // a transition without an attribute it requires (EINVAL)
  | 'BAD_ATTR'             // an attribute out of range: P_Key index, port, MTU, QPN (EINVAL)
  | 'QP_STATE'             // post_send/post_recv in a state that does not allow it (EINVAL)
  | 'QUEUE_FULL'           // more outstanding work requests than the queue was created with (ENOMEM)
  | 'BAD_WR'               // a work request that cannot be carried out (missing AH, wrong opcode) (EINVAL)
  | 'DEVICE_CLOSED'        // the device was closed (ENODEV)
  | 'MAD_TIMEOUT'          // no response to a MAD after every retry (ETIMEDOUT)
  | 'SA_STATUS';           // the SA answered with a non-zero status (the status is in `status`)

const ERRNO: Record<VerbsErrorCode, string> = {
  BAD_STATE_TRANSITION: 'EINVAL', MISSING_ATTR: 'EINVAL', BAD_ATTR: 'EINVAL', QP_STATE: 'EINVAL',
  QUEUE_FULL: 'ENOMEM', BAD_WR: 'EINVAL', DEVICE_CLOSED: 'ENODEV', MAD_TIMEOUT: 'ETIMEDOUT', SA_STATUS: 'EIO',
};

export class VerbsError extends Error {
  override readonly name = 'VerbsError';
  readonly errno: string;
  constructor(readonly code: VerbsErrorCode, message: string, readonly status?: number) {
    super(message);
    this.errno = ERRNO[code];
  }
}
