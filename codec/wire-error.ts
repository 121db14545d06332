// The one error type a decoder may throw (codec/contract.ts, point 1).

/** Stable codes: scripts and drop counters key on these, so never rename one. */
export type WireErrorCode =
  | 'TRUNCATED'        // fewer bytes than the field needs
  | 'BAD_LENGTH'       // a length field contradicts the bytes present or another field
  | 'BAD_VALUE'        // a field holds a value the protocol forbids
  | 'BAD_CHECKSUM'     // a checksum or CRC does not match
  | 'LIMIT'            // a hostile-input limit was reached (sizes, counts, nesting)
  | 'BUFFER_TOO_SMALL' // encode was given a buffer without room
  | 'INVALID_RECORD';  // encode was given a record that no decode could produce

export class WireError extends Error {
  override readonly name = 'WireError';
  constructor(
    readonly code: WireErrorCode,
    /** Which codec: "LRH", "DHCP", "ARP", ... */
    readonly protocol: string,
    /** Which field, by the protocol's own name ("pktLen", "options[53]"). */
    readonly field: string,
    /** Byte offset of the field in the buffer given to the decoder. */
    readonly offset: number,
    detail: string,
  ) {
    super(`${protocol}.${field} at offset ${offset}: ${detail}`);
  }
}

export function isWireError(err: unknown): err is WireError {
  return err instanceof WireError;
}
