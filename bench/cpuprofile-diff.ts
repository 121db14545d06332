// Compares two .cpuprofile files by self time per function, each divided by its run's size (argv: A nA B nB), so
// functions whose cost per host grows with the size stand out (issue 9's linearity hunt).
import { selfTimes } from './cpuprofile.js';

const [fa, na, fb, nb] = process.argv.slice(2);
const a = selfTimes(fa!).self;
const b = selfTimes(fb!).self;
const rows = [...new Set([...a.keys(), ...b.keys()])].map((k) => {
  const pa = (a.get(k) ?? 0) / Number(na);
  const pb = (b.get(k) ?? 0) / Number(nb);
  return { k, pa, pb, extra: (pb - pa) * Number(nb) };
}).sort((x, y) => y.extra - x.extra).slice(0, 30);
console.log('µs/host A   µs/host B   extra ms at B  function');
for (const r of rows) console.log(`${r.pa.toFixed(1).padStart(9)} ${r.pb.toFixed(1).padStart(11)} ${(r.extra / 1000).toFixed(0).padStart(13)}  ${r.k}`);
