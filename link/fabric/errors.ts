// Errors the fabric raises to its callers (attach requests, configuration, administration). Bad
// packets never become errors: they are counted under a DropReason (counters.ts).

export type FabricErrorCode =
  | 'DUPLICATE_GUID'   // a port with this GUID is already attached
  | 'BAD_PORT_NUM'     // HCA port number outside 1..254
  | 'BAD_ATTACH'       // an attach request with a missing or impossible field
  | 'UNKNOWN_HOST'     // a topology was given and does not name this host
  | 'UNKNOWN_PORT'     // no attached port has this GUID
  | 'DETACHED'         // the link was detached; it cannot send any more
  | 'NO_LIDS'          // the unicast LID space is exhausted
  | 'BAD_CONFIG';      // partitions.conf / topology file error (message names file, line, token)

export class FabricError extends Error {
  override readonly name = 'FabricError';
  constructor(readonly code: FabricErrorCode, message: string) {
    super(message);
  }
}
