// Errors of the emulated host, each with the errno a Linux program would have seen, so the
// control socket and the CLI can print one line and scripts can key on the code.

export type IpoibErrorCode =
  | 'EINVAL'        // a bad argument: MTU out of range, unknown mode, malformed address
  | 'ENODEV'        // no such interface
  | 'EEXIST'        // the address, route or child interface exists already
  | 'EADDRNOTAVAIL' // the address is not configured / cannot be bound
  | 'EADDRINUSE'    // the UDP port is taken
  | 'EACCES'        // broadcast without SO_BROADCAST
  | 'ENETUNREACH'   // no route
  | 'ENETDOWN'      // the interface is down
  | 'EMSGSIZE'      // larger than the path MTU (the host does not fragment)
  | 'EOPNOTSUPP'    // connected mode on an interface built without it
  | 'ESRCH'         // no such route / neighbour to delete
  | 'ENOTCONN';     // the socket is closed

export class IpoibError extends Error {
  override readonly name = 'IpoibError';
  constructor(readonly code: IpoibErrorCode, message: string) {
    super(message);
  }
}

export function isIpoibError(e: unknown): e is IpoibError {
  return e instanceof IpoibError;
}
