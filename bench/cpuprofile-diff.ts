// Compares two .cpuprofile files by self time per function, each divided by its run's size (argv: A nA B nB), so
// functions whose cost per host grows with the size stand out (issue 9's linearity hunt).
import { readFileSync } from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string }; children?: number[] }
function selfTimes(file: string): Map<string, number> {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const f = byId.get(prof.samples[i]!)!.callFrame;
    const k = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/main\//, '')}`;
    out.set(k, (out.get(k) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  return out;
}
const [fa, na, fb, nb] = process.argv.slice(2);
const a = selfTimes(fa!);
const b = selfTimes(fb!);
const rows = [...new Set([...a.keys(), ...b.keys()])].map((k) => {
  const pa = (a.get(k) ?? 0) / Number(na);
  const pb = (b.get(k) ?? 0) / Number(nb);
  return { k, pa, pb, extra: (pb - pa) * Number(nb) };
}).sort((x, y) => y.extra - x.extra).slice(0, 30);
console.log('µs/host A   µs/host B   extra ms at B  function');
for (const r of rows) console.log(`${r.pa.toFixed(1).padStart(9)} ${r.pb.toFixed(1).padStart(11)} ${(r.extra / 1000).toFixed(0).padStart(13)}  ${r.k}`);
