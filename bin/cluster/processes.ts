// ipoib-cluster --fabric spawn|HOST:PORT: the fabric daemon, the DHCP server and the hosts as separate
// OS processes in real time. (Being built: see issue 9.)
import type { ClusterRunOptions } from '../ipoib-cluster.js';
import type { FabricChoice } from './fabric-option.js';
import type { Progress } from './progress.js';
import type { ClusterReport } from './report.js';
import { CliError } from '../cli.js';

export interface ProcessesOptions extends ClusterRunOptions {
  progress: Progress;
  fabric: Exclude<FabricChoice, 'inproc'>;
  processes: number;
  killServerEveryMs: number | undefined;
}

export function runProcesses(_o: ProcessesOptions): Promise<ClusterReport> {
  return Promise.reject(new CliError('--fabric spawn|HOST:PORT is not built yet'));
}
