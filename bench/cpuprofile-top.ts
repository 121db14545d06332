// Summarises a V8 .cpuprofile by self time (top functions with their file:line), for issue 9's profiling.
import { selfTimes } from './cpuprofile.js';

const { total, self } = selfTimes(process.argv[2]!, { line: true });
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 40));
console.log(`total ${(total / 1000).toFixed(0)} ms`);
for (const [k, v] of top) console.log(`${(v / 1000).toFixed(0).padStart(7)} ms ${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`);
