// --plot FILE.svg: bound hosts over time and the distribution of time-to-bound. (Being built: issue 9.)
import type { ClusterReport } from './report.js';
import { CliError } from '../cli.js';

export function writePlot(_report: ClusterReport, file: string): void {
  throw new CliError(`--plot ${file}: not built yet`);
}
