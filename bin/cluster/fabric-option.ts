// --fabric of ipoib-cluster: inproc (one process, virtual time), spawn (an ipoib-fabric daemon started
// for the run on 127.0.0.1 and a free port), or HOST:PORT of a daemon already running.
import { InvalidArgumentError } from 'commander';
import { parseFabricAddress } from '../../link/fabric/udp-protocol.js';

export type FabricChoice = 'inproc' | 'spawn' | { host: string; port: number };

export function fabricOption(v: string): FabricChoice {
  if (v === 'inproc' || v === 'spawn') return v;
  try {
    return parseFabricAddress(v);
  } catch (err) {
    throw new InvalidArgumentError(`'${v}' is not inproc, spawn or HOST:PORT (${(err as Error).message})`);
  }
}
