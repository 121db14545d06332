// Self time per function of a V8 .cpuprofile, shared by cpuprofile-top.ts and cpuprofile-diff.ts.
import { readFileSync } from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }

/** Microseconds of self time per function ("name file" or, with line, "name file:line"), and their total. */
export function selfTimes(file: string, opts: { line?: boolean } = {}): { total: number; self: Map<string, number> } {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const f = byId.get(prof.samples[i]!)!.callFrame;
    const dt = prof.timeDeltas[i] ?? 0;
    total += dt;
    const where = f.url.replace(/^.*\/main\//, '');
    const key = `${f.functionName || '(anon)'} ${opts.line === true ? `${where}:${f.lineNumber + 1}` : where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  return { total, self };
}
